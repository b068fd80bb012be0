//! A small config built in code for the builder and plan tests (no YAML involved), and a
//! probe that runs a rendered step in a real shell with `docker` replaced by an argv printer.
#![allow(clippy::unwrap_used, reason = "test fixture")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use jiff::Timestamp;
use writ_exec::plan::{HostKey, Previous, Sha256Digest};

use crate::config::{
    Accessory, Boot, Buffering, Config, Credential, DockerOption, Env, EnvLayer, Healthcheck,
    HostName, HostSelector, Logging, Proxy, ProxyDriver, Registry, RestartPolicy, Role, RoleHost,
    Ssh, Ssl, WritSettings,
};
use crate::operation::PlanInputs;
use crate::template::Templates;

/// An ed25519 host key (public).
pub const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

fn host(s: &str) -> HostName {
    s.parse().unwrap()
}

/// A proxy with Kamal's defaults for `hosts`.
pub fn proxy(hosts: &[&str]) -> Proxy {
    Proxy {
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        app_port: 80,
        ssl: Ssl::Off,
        ssl_redirect: None,
        forward_headers: None,
        response_timeout: None,
        healthcheck: Healthcheck::default(),
        buffering: Buffering::default(),
        path_prefixes: Vec::new(),
        strip_path_prefix: None,
        request_headers: Vec::new(),
        response_headers: Vec::new(),
    }
}

/// Service `app`, image `dhh/app` on `registry.example.com`, role `web` on 1.1.1.1 and
/// 1.1.1.2 (proxied, host 1.1.1.2 tagged `eu`), role `workers` on 1.1.1.3 with a cmd,
/// accessory `db` on 1.1.1.4, destination `production`.
pub fn config() -> Config {
    let web = Role {
        name: "web".parse().unwrap(),
        hosts: vec![
            RoleHost {
                host: host("1.1.1.1"),
                tags: vec![],
            },
            RoleHost {
                host: host("1.1.1.2"),
                tags: vec!["eu".parse().unwrap()],
            },
        ],
        cmd: None,
        options: vec![],
        restart: RestartPolicy::UnlessStopped,
        labels: vec![],
        env: EnvLayer::default(),
        logging: Logging::default(),
        proxy: Some(proxy(&["app.example.com"])),
        stop_timeout: None,
    };
    let workers = Role {
        name: "workers".parse().unwrap(),
        hosts: vec![RoleHost {
            host: host("1.1.1.3"),
            tags: vec![],
        }],
        cmd: Some("bin/jobs --queue default".into()),
        options: vec![("memory".into(), DockerOption::Value("512m".into()))],
        restart: RestartPolicy::UnlessStopped,
        labels: vec![],
        env: EnvLayer::default(),
        logging: Logging::default(),
        proxy: None,
        stop_timeout: None,
    };
    let db = Accessory {
        name: "db".parse().unwrap(),
        service: "app-db".into(),
        image: "mysql:8.0".into(),
        selector: HostSelector::Hosts(vec![host("1.1.1.4")]),
        hosts: vec![host("1.1.1.4")],
        cmd: None,
        port: Some("3306".into()),
        env: EnvLayer {
            clear: vec![("MYSQL_ROOT_HOST".parse().unwrap(), "%".into())],
            secret: vec!["MYSQL_ROOT_PASSWORD".parse().unwrap()],
        },
        volumes: vec![],
        directories: vec!["data:/var/lib/mysql".into()],
        files: vec![],
        labels: vec![],
        options: vec![],
        restart: RestartPolicy::UnlessStopped,
        network: "kamal".into(),
        registry: None,
        proxy: None,
    };
    let mut host_keys = BTreeMap::new();
    for h in [
        "1.1.1.1",
        "1.1.1.2",
        "1.1.1.3",
        "1.1.1.4",
        "bastion.example.com",
    ] {
        host_keys.insert(host(h), vec![HostKey::parse(KEY).unwrap()]);
    }
    Config {
        service: "app".parse().unwrap(),
        image: "dhh/app".into(),
        registry: Some(Registry {
            server: Some("registry.example.com".into()),
            username: Credential::Literal("deploy".into()),
            password: "KAMAL_REGISTRY_PASSWORD".parse().unwrap(),
        }),
        roles: vec![web, workers],
        primary_role: "web".parse().unwrap(),
        env: Env {
            base: EnvLayer {
                clear: vec![("RAILS_ENV".parse().unwrap(), "production".into())],
                secret: vec!["DATABASE_URL:PROD_DATABASE_URL".parse().unwrap()],
            },
            tags: vec![(
                "eu".parse().unwrap(),
                EnvLayer {
                    clear: vec![("REGION".parse().unwrap(), "eu".into())],
                    secret: vec![],
                },
            )],
        },
        proxy: Some(proxy(&["app.example.com"])),
        accessories: vec![db],
        volumes: vec![],
        labels: vec![],
        logging: Logging::default(),
        ssh: Ssh {
            user: "deploy".into(),
            port: 22,
            proxy: None,
        },
        boot: Boot::default(),
        retain_containers: 5,
        readiness_delay: 7,
        deploy_timeout: 30,
        drain_timeout: 30,
        stop_timeout: None,
        require_destination: false,
        allow_empty_roles: false,
        writ: WritSettings {
            proxy_driver: ProxyDriver::KamalProxy,
            ..WritSettings::default()
        },
        destination: Some("production".parse().unwrap()),
        host_keys,
        ignored: vec![],
        root: PathBuf::from("."),
        files: vec![],
        source_digest: Sha256Digest([3; 32]),
    }
}

/// Plan inputs for version `123` with `templates`.
pub fn inputs(templates: &Templates) -> PlanInputs<'_> {
    PlanInputs {
        version: "123".into(),
        image_digest: None,
        serial: 1,
        previous: Previous::Genesis,
        created: "2026-12-03T15:04:05Z".parse::<Timestamp>().unwrap(),
        expires: "2026-12-06T15:04:05Z".parse::<Timestamp>().unwrap(),
        templates,
        commit: None,
    }
}

/// Shell functions that stand in for `docker` (and `chown`, `sleep`, `xargs`) on a test machine: the argv of
/// every mutating docker call is printed NUL-separated; queries print nothing.
pub const PROBE: &str = "docker() { case \"$1\" in run|exec|login|pull|tag|rename|stop|start|rm|rmi) printf '%s\\0' \"$@\" ;; esac; }; chown() { :; }; sleep() { :; }; xargs() { :; }; ";

/// Run `command` with `shell -c` in `dir` behind [`PROBE`]; returns the printed argv
/// (whatever the exit status: some steps exit non-zero without a docker daemon).
pub fn probe(shell: &str, dir: &Path, command: &str) -> Vec<Vec<u8>> {
    let out = Command::new(shell)
        .arg("-c")
        .arg(format!("{PROBE}{command}"))
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let mut args: Vec<Vec<u8>> = out.stdout.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
    if args.last().is_some_and(Vec::is_empty) {
        args.pop();
    }
    args
}
