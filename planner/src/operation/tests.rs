//! Plan-level tests: golden command lines (like Kamal's suite), phase order and strategies,
//! and every config value that reaches a command run through real `sh` and `bash`.

use std::num::NonZeroU32;

use proptest::prelude::*;
use writ_exec::plan::{Stdin, Strategy as PlanStrategy, decode, encode};

use super::*;
use crate::config::{BootLimit, Credential, DockerOption, JumpHost, Logging, ProxyDriver, Ssl};
use crate::steps::fixture::{config, inputs, probe};

fn plan(config: &Config, op: &Operation) -> Plan {
    let t = Templates::builtin().unwrap();
    let plan = build(config, op, &inputs(&t)).unwrap();
    let bytes = encode(&plan).unwrap();
    assert_eq!(decode(&bytes).unwrap(), plan);
    plan
}

fn plan_err(config: &Config, op: &Operation) -> String {
    let t = Templates::builtin().unwrap();
    build(config, op, &inputs(&t)).unwrap_err().to_string()
}

fn phase_names(p: &Plan) -> Vec<&str> {
    p.phases.iter().map(|p| p.name.as_str()).collect()
}

fn steps_on<'p>(p: &'p Plan, phase: &str, host: &str) -> Vec<&'p Step> {
    p.phases
        .iter()
        .filter(|ph| ph.name == phase)
        .flat_map(|ph| &ph.hosts)
        .filter(|h| h.host == host)
        .flat_map(|h| &h.steps)
        .collect()
}

fn commands(p: &Plan) -> Vec<&str> {
    p.phases
        .iter()
        .flat_map(|ph| &ph.hosts)
        .flat_map(|h| &h.steps)
        .map(|s| s.command.as_str())
        .collect()
}

#[test]
fn each_operation_has_kamals_phases() {
    let c = config();
    let cases: Vec<(Operation, Vec<&str>)> = vec![
        (
            Operation::Setup,
            vec![
                "bootstrap",
                "pull",
                "proxy",
                "accessories",
                "boot",
                "tag",
                "prune",
            ],
        ),
        (
            Operation::Deploy,
            vec!["pull", "proxy", "boot", "tag", "prune"],
        ),
        (Operation::Redeploy, vec!["pull", "boot", "tag"]),
        (
            Operation::Rollback {
                version: "122".into(),
            },
            vec!["check", "boot"],
        ),
        (Operation::App(AppAction::Start), vec!["app"]),
        (Operation::App(AppAction::Stop), vec!["app"]),
        (Operation::App(AppAction::Remove), vec!["app"]),
        (Operation::Proxy(ProxyAction::Boot), vec!["proxy"]),
        (Operation::Proxy(ProxyAction::Reboot), vec!["proxy"]),
        (Operation::Proxy(ProxyAction::Remove), vec!["proxy"]),
        (
            Operation::Accessory(AccessoryAction::Boot, AccessoryTarget::All),
            vec!["accessories"],
        ),
        (
            Operation::Accessory(AccessoryAction::Remove, AccessoryTarget::Named("db".into())),
            vec!["accessories"],
        ),
        (Operation::Prune, vec!["prune"]),
        (
            Operation::ServerExec {
                roles: vec![],
                commands: vec!["uptime".into()],
            },
            vec!["exec"],
        ),
        (
            Operation::AppExec {
                roles: vec!["web".into()],
                commands: vec!["bin/rails db:migrate".into()],
            },
            vec!["exec"],
        ),
    ];
    for (op, phases) in cases {
        let p = plan(&c, &op);
        assert_eq!(phase_names(&p), phases, "{}", op.header());
        assert_eq!(p.operation, op.header());
    }
}

#[test]
fn deploy_renders_kamals_command_lines() {
    let p = plan(&config(), &Operation::Deploy);
    let pull = steps_on(&p, "pull", "1.1.1.1");
    assert_eq!(
        pull[0].command,
        "docker login registry.example.com -u deploy --password-stdin"
    );
    assert_eq!(
        pull[0].stdin,
        Some(Stdin::Secret("KAMAL_REGISTRY_PASSWORD".into()))
    );
    assert_eq!(
        pull[2].command,
        "docker pull registry.example.com/dhh/app:123"
    );

    let boot = steps_on(&p, "boot", "1.1.1.2");
    assert_eq!(
        boot[0].command,
        "umask 077 && mkdir -p .kamal/apps/app-production/env/roles && cat > .kamal/apps/app-production/env/roles/web.env.tmp && mv .kamal/apps/app-production/env/roles/web.env.tmp .kamal/apps/app-production/env/roles/web.env"
    );
    assert_eq!(
        boot[0].stdin,
        Some(Stdin::EnvFile(vec![(
            "DATABASE_URL".into(),
            "PROD_DATABASE_URL".into()
        )]))
    );
    assert_eq!(
        boot[2].command,
        "docker run --detach --restart unless-stopped --name app-web-production-123 --network kamal --hostname 1.1.1.2-e281f798462b --env KAMAL_CONTAINER_NAME=app-web-production-123 --env KAMAL_VERSION=123 --env KAMAL_HOST=1.1.1.2 --env KAMAL_DESTINATION=production --env RAILS_ENV=production --env REGION=eu --env-file .kamal/apps/app-production/env/roles/web.env --log-opt max-size=10m --label service=app --label role=web --label destination=production registry.example.com/dhh/app:123"
    );
    assert_eq!(
        boot[3].command,
        "docker exec kamal-proxy kamal-proxy deploy app-web-production --target=\"$(docker container ls --all --filter 'name=^app-web-production-123$' --quiet)\":80 --host=app.example.com --deploy-timeout=30s --drain-timeout=30s --buffer-requests --buffer-responses --log-request-header=Cache-Control --log-request-header=Last-Modified --log-request-header=User-Agent"
    );
    let workers = steps_on(&p, "boot", "1.1.1.3");
    assert!(
        workers[2]
            .command
            .ends_with("--memory 512m registry.example.com/dhh/app:123 bin/jobs '--queue' default"),
        "{}",
        workers[2].command
    );
    assert!(workers[3].command.starts_with("i=0; while :;"));
    assert!(workers[4].command.contains("docker stop -t 30 \"$name\""));
    assert_eq!(
        steps_on(&p, "tag", "1.1.1.3")[0].command,
        "docker tag registry.example.com/dhh/app:123 registry.example.com/dhh/app:latest-production"
    );
    // Workers need the network even without a proxy; only web hosts run the proxy.
    let proxy_on = |h| {
        steps_on(&p, "proxy", h)
            .iter()
            .any(|s| s.command.contains("kamal-proxy run"))
    };
    assert!(proxy_on("1.1.1.1") && !proxy_on("1.1.1.3"));
    assert!(
        steps_on(&p, "proxy", "1.1.1.3")
            .iter()
            .any(|s| s.command.contains("docker network create kamal"))
    );
}

#[test]
fn boot_groups_follow_boot_limit_and_primary_role_first() {
    let mut c = config();
    assert_eq!(
        plan(&c, &Operation::Deploy).phases[2].strategy,
        PlanStrategy::PrimaryFirst
    );
    c.boot.limit = Some(BootLimit::Count(NonZeroU32::new(2).unwrap()));
    c.boot.wait = 10;
    let p = plan(&c, &Operation::Deploy);
    let boot = &p.phases[2];
    assert_eq!(boot.strategy, PlanStrategy::Rolling { limit: 2, wait: 10 });
    let order: Vec<&str> = boot.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(order, ["1.1.1.1", "1.1.1.2", "1.1.1.3"]);
    c.boot.limit = Some(BootLimit::Percent(34));
    assert_eq!(
        plan(&c, &Operation::Deploy).phases[2].strategy,
        PlanStrategy::Rolling { limit: 1, wait: 10 }
    );
}

#[test]
fn image_digest_pins_every_pull_run_and_tag() {
    let c = config();
    let t = Templates::builtin().unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let mut i = inputs(&t);
    i.image_digest = Some(digest.clone());
    let p = build(&c, &Operation::Deploy, &i).unwrap();
    let pinned = format!("registry.example.com/dhh/app@{digest}");
    for cmd in commands(&p) {
        assert!(
            !cmd.contains("dhh/app:123") || cmd.starts_with("docker tag"),
            "{cmd}"
        );
        if cmd.starts_with("docker pull")
            || cmd.starts_with("docker run")
            || cmd.starts_with("docker tag")
        {
            assert!(cmd.contains(&pinned), "{cmd}");
        }
    }
    assert!(
        !commands(&p)
            .iter()
            .any(|c| c.starts_with("docker image rm"))
    );
    // Tagged with the version too, so a later rollback to it finds `repo:version`.
    let tag = format!("docker tag {pinned} registry.example.com/dhh/app:123");
    assert!(commands(&p).contains(&tag.as_str()));
    i.image_digest = Some("sha256:ABC".into());
    assert!(
        build(&c, &Operation::Deploy, &i)
            .unwrap_err()
            .to_string()
            .contains("64 lower-case hex")
    );
}

#[test]
fn rollback_requires_the_old_container_and_never_pulls() {
    let p = plan(
        &config(),
        &Operation::Rollback {
            version: "122".into(),
        },
    );
    assert_eq!(p.version, "122");
    assert_eq!(p.operation, "rollback 122");
    let check = steps_on(&p, "check", "1.1.1.1");
    assert_eq!(
        check[0].command,
        "if [ -z \"$(docker container ls --all --filter 'name=^app-web-production-122$' --quiet)\" ]; then echo 'version 122 is not available as a container on this host (app-web-production-122)' >&2; exit 1; fi"
    );
    assert!(!commands(&p).iter().any(|c| c.contains("docker pull")));
    assert!(
        commands(&p)
            .iter()
            .any(|c| c.contains("--name app-web-production-122 "))
    );
}

#[test]
fn jump_host_is_declared_with_its_key_and_used_via() {
    let mut c = config();
    c.ssh.proxy = Some(JumpHost {
        user: "jump".into(),
        host: "bastion.example.com".parse().unwrap(),
        port: 2222,
    });
    let p = plan(&c, &Operation::Deploy);
    let bastion = p.host("bastion.example.com").unwrap();
    assert_eq!(
        (bastion.user.as_str(), bastion.port, bastion.via.as_ref()),
        ("jump", 2222, None)
    );
    assert_eq!(
        p.host("1.1.1.1").unwrap().via.as_deref(),
        Some("bastion.example.com")
    );
    c.host_keys.remove(&"bastion.example.com".parse().unwrap());
    assert!(plan_err(&c, &Operation::Deploy).contains("no pinned key"));
}

#[test]
fn exec_commands_run_verbatim_and_must_be_printable_ascii() {
    let c = config();
    let p = plan(
        &c,
        &Operation::ServerExec {
            roles: vec!["workers".into()],
            commands: vec!["cat /etc/os-release | head -1".into(), "df -h $HOME".into()],
        },
    );
    assert_eq!(p.operation, "server exec --roles workers");
    let steps = steps_on(&p, "exec", "1.1.1.3");
    assert_eq!(steps[0].command, "cat /etc/os-release | head -1");
    assert_eq!(steps[1].command, "df -h $HOME");
    assert_eq!(p.hosts.len(), 1);
    for bad in ["two\nlines", "caf\u{e9}", "", "tab\there", " lead"] {
        let err = plan_err(
            &c,
            &Operation::ServerExec {
                roles: vec![],
                commands: vec!["ok".into(), bad.into()],
            },
        );
        assert!(err.contains("exec command 2"), "{bad:?}: {err}");
    }
    assert!(
        plan_err(
            &c,
            &Operation::ServerExec {
                roles: vec!["nope".into()],
                commands: vec!["ok".into()]
            }
        )
        .contains("no role `nope`")
    );
    let p = plan(
        &c,
        &Operation::AppExec {
            roles: vec!["web".into()],
            commands: vec!["bin/rails runner 'puts 1'".into()],
        },
    );
    let step = &steps_on(&p, "exec", "1.1.1.1")[0].command;
    assert!(
        step.starts_with("docker run --rm --name app-web-production-exec-123-"),
        "{step}"
    );
    assert!(
        step.ends_with(" registry.example.com/dhh/app:123 bin/rails runner 'puts 1'"),
        "{step}"
    );
}

#[test]
fn accessories_boot_with_pwd_volumes_and_unknown_names_fail() {
    let c = config();
    let p = plan(
        &c,
        &Operation::Accessory(AccessoryAction::Boot, AccessoryTarget::Named("db".into())),
    );
    let steps = steps_on(&p, "accessories", "1.1.1.4");
    assert_eq!(steps[2].command, "mkdir -p app-db/data");
    assert_eq!(
        steps[4].command,
        "if [ -n \"$(docker ps -a -q --filter label=service=app-db)\" ]; then echo 'app-db already has a container; not booted again (use accessory reboot)'; else docker run --name app-db --detach --restart unless-stopped --network kamal --log-opt max-size=10m --publish 3306:3306 --env KAMAL_HOST=1.1.1.4 --env MYSQL_ROOT_HOST=% --env-file .kamal/apps/app-production/env/accessories/db.env --volume \"$PWD\"/app-db/data:/var/lib/mysql --label service=app-db mysql:8.0; fi"
    );
    assert!(
        plan_err(
            &c,
            &Operation::Accessory(
                AccessoryAction::Boot,
                AccessoryTarget::Named("redis".into())
            )
        )
        .contains("no accessory `redis`; the config has db")
    );
    let p = plan(
        &c,
        &Operation::Accessory(AccessoryAction::Remove, AccessoryTarget::All),
    );
    let cmds: Vec<&str> = steps_on(&p, "accessories", "1.1.1.4")
        .iter()
        .map(|s| s.command.as_str())
        .collect();
    assert_eq!(
        cmds,
        [
            "docker container stop app-db",
            "docker container prune --force --filter label=service=app-db",
            "docker image rm --force mysql:8.0",
            "rm -rf app-db"
        ]
    );
}

#[test]
fn custom_tls_keys_are_written_0600_from_secrets() {
    let mut c = config();
    c.roles[0].proxy.as_mut().unwrap().ssl = Ssl::Custom {
        certificate_pem: "CERT_PEM".parse().unwrap(),
        private_key_pem: "KEY_PEM".parse().unwrap(),
    };
    let p = plan(&c, &Operation::Deploy);
    let boot = steps_on(&p, "boot", "1.1.1.1");
    assert_eq!(
        boot[2].command,
        "umask 077 && mkdir -p .kamal/proxy/apps-config/app-production/tls/web && cat > .kamal/proxy/apps-config/app-production/tls/web/key.pem.tmp && mv .kamal/proxy/apps-config/app-production/tls/web/key.pem.tmp .kamal/proxy/apps-config/app-production/tls/web/key.pem"
    );
    assert_eq!(boot[2].stdin, Some(Stdin::Secret("KEY_PEM".into())));
    assert!(boot[5].command.contains(" --tls --tls-certificate-path=/home/kamal-proxy/.apps-config/app-production/tls/web/cert.pem --tls-private-key-path=/home/kamal-proxy/.apps-config/app-production/tls/web/key.pem "));
}

#[test]
fn none_driver_waits_for_readiness_instead_of_routing() {
    let mut c = config();
    c.writ.proxy_driver = ProxyDriver::None;
    let p = plan(&c, &Operation::Deploy);
    assert!(!commands(&p).iter().any(|c| c.contains("kamal-proxy")));
    assert!(
        steps_on(&p, "boot", "1.1.1.1")[3]
            .command
            .starts_with("i=0; while :;")
    );
    assert!(plan_err(&c, &Operation::Proxy(ProxyAction::Boot)).contains("no role is proxied"));
}

#[test]
fn caddy_driver_writes_a_site_caddy_accepts() {
    let mut c = config();
    c.writ.proxy_driver = ProxyDriver::Caddy;
    c.roles[0].proxy.as_mut().unwrap().hosts =
        vec!["app.example.com".into(), "www.example.com".into()];
    let p = plan(&c, &Operation::Deploy);
    let boot = steps_on(&p, "boot", "1.1.1.1");
    let route = &boot[4].command;
    assert_eq!(
        route,
        "printf '%s\\n' 'http://app.example.com, http://www.example.com {' '  reverse_proxy app-web-production-123:80 {' '    lb_try_duration 10s' '  }' '}' > .kamal/proxy/caddy/sites/app-web-production.caddy.tmp && mv .kamal/proxy/caddy/sites/app-web-production.caddy.tmp .kamal/proxy/caddy/sites/app-web-production.caddy && docker exec writ-caddy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile"
    );
    // Run the proxy setup and the route for real (docker stubbed) and let caddy parse the result.
    let dir = tempfile::tempdir().unwrap();
    let proxy = steps_on(&p, "proxy", "1.1.1.1");
    let setup = proxy
        .iter()
        .find(|s| s.command.contains("Caddyfile"))
        .unwrap();
    probe("/bin/sh", dir.path(), &setup.command);
    probe("/bin/sh", dir.path(), route);
    let caddy_dir = dir.path().join(".kamal/proxy/caddy");
    let main = std::fs::read_to_string(caddy_dir.join("Caddyfile")).unwrap();
    std::fs::write(
        caddy_dir.join("Caddyfile"),
        main.replace("/etc/caddy", &caddy_dir.display().to_string()),
    )
    .unwrap();
    let out = std::process::Command::new("caddy")
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(caddy_dir.join("Caddyfile"))
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(json.contains("app-web-production-123:80"), "{json}");
    assert!(json.contains("\"try_duration\":10000000000"), "{json}");
    assert!(json.contains("www.example.com"), "{json}");

    c.roles[0].proxy.as_mut().unwrap().hosts = vec!["evil.com { }".into()];
    assert!(plan_err(&c, &Operation::Deploy).contains("caddy driver"));
}

#[test]
fn ipv6_hosts_get_plan_names_and_valid_hostnames() {
    let mut c = config();
    let v6: HostName = "2001:db8::7".parse().unwrap();
    c.roles[1].hosts[0].host = v6.clone();
    c.host_keys
        .insert(v6, c.host_keys.values().next().unwrap().clone());
    let p = plan(&c, &Operation::Deploy);
    let h = p.host("ip6-2001-db8--7").unwrap();
    assert_eq!(h.address, "2001:db8::7");
    let run = &steps_on(&p, "boot", "ip6-2001-db8--7")[2].command;
    assert!(run.contains(" --hostname 2001-db8--7-"), "{run}");
    assert!(run.contains(" --env KAMAL_HOST=2001:db8::7 "), "{run}");
}

#[test]
fn values_read_as_options_are_refused() {
    type Change = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|c| c.image = "--privileged".into()), "image"),
        (
            Box::new(|c| c.registry.as_mut().unwrap().server = Some("-x".into())),
            "registry.server",
        ),
        (
            Box::new(|c| c.accessories[0].image = "-i".into()),
            "accessories.db.image",
        ),
        (
            Box::new(|c| c.accessories[0].service = "/".into()),
            "accessories.db.service",
        ),
        (
            Box::new(|c| c.accessories[0].service = "-rf".into()),
            "accessories.db.service",
        ),
    ];
    for (change, field) in cases {
        let mut c = config();
        change(&mut c);
        let err = plan_err(&c, &Operation::Deploy);
        assert!(err.contains(field), "{field}: {err}");
    }
    let mut c = config();
    c.accessories[0].files = vec![crate::config::AccessoryFile {
        local: "x".into(),
        remote: "/x".into(),
        mode: Some("-w".into()),
        owner: None,
    }];
    assert!(plan_err(&c, &Operation::Deploy).contains("octal mode"));
}

#[test]
fn versions_must_work_as_docker_tags() {
    let c = config();
    for bad in [
        "",
        "-x",
        "1.0 beta",
        "v1+build",
        "caf\u{e9}",
        "a/b",
        &"a".repeat(129),
    ] {
        let err = plan_err(
            &c,
            &Operation::Rollback {
                version: bad.to_owned(),
            },
        );
        assert!(
            err.contains("cannot be a docker image tag"),
            "{bad:?}: {err}"
        );
    }
    plan(
        &c,
        &Operation::Rollback {
            version: "v1.2.3_rc-1".into(),
        },
    );
}

#[test]
fn secret_registry_username_is_refused() {
    let mut c = config();
    c.registry.as_mut().unwrap().username = Credential::Secret("REG_USER".parse().unwrap());
    assert!(plan_err(&c, &Operation::Deploy).contains("write the username literally"));
}

#[test]
fn cmd_words_split_like_a_shell_without_expansion() {
    use crate::steps::app::cmd_words;
    let words = |s: &str| -> Vec<String> {
        cmd_words(s, "cmd")
            .unwrap()
            .iter()
            .map(|w| w.render().unwrap())
            .collect()
    };
    assert_eq!(
        words("bin/jobs  --queue default"),
        ["bin/jobs", "'--queue'", "default"]
    );
    assert_eq!(
        words(r#"sh -c 'echo $HOME' "a b" c\ d"#),
        ["sh", "'-c'", "'echo $HOME'", "'a b'", "'c d'"]
    );
    for bad in ["echo $HOME", "a | b", "a; b", "`id`", "'open", "\"$(x)\""] {
        assert!(cmd_words(bad, "cmd").is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Every config value that reaches a command, through real shells.

/// Put `x` in every config field that reaches a command.
fn config_with(x: &str) -> Config {
    let mut c = config();
    let sq = format!("'{}'", x.replace('\'', "'\\''"));
    c.registry.as_mut().unwrap().username = Credential::Literal(x.to_owned());
    c.registry.as_mut().unwrap().server = Some(format!("r{x}"));
    c.image = format!("i{x}");
    c.env
        .base
        .clear
        .push(("X_ROOT".parse().unwrap(), x.to_owned()));
    c.env.tags[0]
        .1
        .clear
        .push(("X_TAG".parse().unwrap(), x.to_owned()));
    c.volumes.push(x.to_owned());
    let web = &mut c.roles[0];
    web.env
        .clear
        .push(("X_ROLE".parse().unwrap(), x.to_owned()));
    web.labels.push(("xlabel".into(), x.to_owned()));
    web.labels.push((x.to_owned(), "key".into()));
    web.options
        .push(("xopt".into(), DockerOption::Value(x.to_owned())));
    web.options.push((x.to_owned(), DockerOption::Flag));
    web.logging = Logging {
        driver: Some(x.to_owned()),
        options: vec![("xlog".into(), x.to_owned()), (x.to_owned(), "key".into())],
    };
    web.cmd = Some(format!("run {sq}"));
    let proxy = web.proxy.as_mut().unwrap();
    proxy.hosts = vec![x.to_owned()];
    proxy.healthcheck.path = Some(x.to_owned());
    proxy.path_prefixes = vec![x.to_owned()];
    proxy.request_headers = vec![x.to_owned()];
    proxy.response_headers = vec![x.to_owned()];
    let db = &mut c.accessories[0];
    db.image = format!("a{x}");
    db.network = format!("n{x}");
    db.cmd = Some(sq);
    db.port = Some(format!("1:{x}"));
    db.env.clear.push(("X_ACC".parse().unwrap(), x.to_owned()));
    db.volumes.push(x.to_owned());
    db.directories = vec![format!("d{}:/data", x.replace(':', "_"))];
    db.labels.push(("xlabel".into(), x.to_owned()));
    db.options
        .push(("xopt".into(), DockerOption::Values(vec![x.to_owned()])));
    c
}

/// The argv lists of every docker call the plan's docker steps make, via real `shell`.
fn docker_argvs(shell: &str, p: &Plan, dir: &std::path::Path) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for cmd in commands(p) {
        let is_docker = cmd.starts_with("docker run")
            || cmd.starts_with("docker exec kamal-proxy")
            || cmd.starts_with("docker login")
            || cmd.contains("; else docker run");
        if is_docker {
            let args = probe(shell, dir, cmd);
            assert!(!args.is_empty(), "{shell}: no argv from {cmd}");
            out.push(args);
        }
    }
    out
}

fn has(argvs: &[Vec<Vec<u8>>], want: &str) -> bool {
    argvs
        .iter()
        .any(|argv| argv.iter().any(|a| a.as_slice() == want.as_bytes()))
}

fn check_every_field(x: &str) {
    let c = config_with(x);
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let pwd = dir.path().display().to_string();
    let deploy = plan(&c, &Operation::Deploy);
    let acc = plan(
        &c,
        &Operation::Accessory(AccessoryAction::Boot, AccessoryTarget::All),
    );
    let dir_word = format!("{pwd}/app-db/d{}:/data", x.replace(':', "_"));
    let expected: Vec<String> = vec![
        x.to_owned(),
        format!("X_ROOT={x}"),
        format!("X_TAG={x}"),
        format!("X_ROLE={x}"),
        format!("xlabel={x}"),
        format!("--{x}"),
        format!("xlog={x}"),
        format!("--host={x}"),
        format!("--health-check-path={x}"),
        format!("--path-prefix={x}"),
        format!("--log-request-header={x}"),
        format!("--log-response-header={x}"),
        format!("1:{x}"),
        format!("X_ACC={x}"),
        dir_word,
        format!("r{x}"),
        format!("r{x}/i{x}:123"),
        format!("a{x}"),
        format!("{x}=key"),
        format!("n{x}"),
    ];
    for shell in ["/bin/sh", "bash"] {
        let mut argvs = docker_argvs(shell, &deploy, dir.path());
        argvs.extend(docker_argvs(shell, &acc, dir.path()));
        for want in &expected {
            assert!(
                has(&argvs, want),
                "{shell}: no argument {want:?} for value {x:?}"
            );
        }
        // The app image of a `cmd` role ends with `run X`; the accessory's with `X X`.
        assert!(
            argvs.iter().any(|a| a.len() >= 2
                && a[a.len() - 2] == b"run"
                && a[a.len() - 1] == x.as_bytes()),
            "{shell}: cmd word {x:?}"
        );
        assert!(!marker.exists(), "{shell}: value {x:?} ran a command");
    }
}

#[test]
fn injection_corpus_through_every_field_never_runs() {
    let corpus = [
        "$(touch pwned)",
        "`touch pwned`",
        "'; touch pwned; '",
        "\"; touch pwned; \"",
        "x\ntouch pwned",
        "x' && touch pwned && echo '",
        "${IFS}$(touch${IFS}pwned)",
        "-rf",
        "{a,b}",
        "a\u{a0}$(touch pwned)",
        "\u{202e}bidi\ttab\r",
        "",
        " ",
        "*",
    ];
    for x in corpus {
        check_every_field(x);
    }
}

#[test]
fn injection_corpus_through_every_step_of_every_operation_never_runs() {
    // Every step, not only docker calls: mkdir, env and site files, rm -rf of the accessory
    // directory… with docker stubbed, in a scratch home directory.
    let corpus = [
        "$(touch pwned)",
        "`touch pwned`",
        "'; touch pwned; '",
        "\"; touch pwned; \"",
        "x\ntouch pwned",
        "${IFS}$(touch${IFS}pwned)",
    ];
    let ops = [
        Operation::Setup,
        Operation::App(AppAction::Remove),
        Operation::Accessory(AccessoryAction::Reboot, AccessoryTarget::All),
        Operation::Accessory(AccessoryAction::Remove, AccessoryTarget::All),
        Operation::Prune,
        Operation::Rollback {
            version: "122".into(),
        },
    ];
    for x in corpus {
        let c = config_with(x);
        let dir = tempfile::tempdir().unwrap();
        for op in &ops {
            let p = plan(&c, op);
            // One shell per plan: each step in its own subshell, as its own exec would be.
            let mut script = String::new();
            for c in commands(&p) {
                script.push_str("(\n");
                script.push_str(c);
                script.push_str("\n)\n");
            }
            for shell in ["/bin/sh", "bash"] {
                probe(shell, dir.path(), &script);
                assert!(
                    !dir.path().join("pwned").exists(),
                    "{shell}: {x:?} ran a command in {}",
                    op.header()
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_value_in_any_field_is_one_argument(x in "[^\\x00]{0,12}|[-'\"$`{}() ;|&\\\\\n\t\u{a0}a]{0,12}") {
        check_every_field(&x);
    }
}

#[test]
fn accessory_file_contents_round_trip_through_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let content = "[mysqld]\nbind = '0.0.0.0' $(touch pwned) \\ \"x\"\n\ttab \u{e9}\n";
    std::fs::write(dir.path().join("my.cnf"), content).unwrap();
    let mut c = config();
    c.root = dir.path().to_path_buf();
    c.accessories[0].files = vec![crate::config::AccessoryFile {
        local: "my.cnf".into(),
        remote: "/etc/mysql/my.cnf".into(),
        mode: Some("0644".into()),
        owner: None,
    }];
    let p = plan(
        &c,
        &Operation::Accessory(AccessoryAction::Boot, AccessoryTarget::All),
    );
    let write = steps_on(&p, "accessories", "1.1.1.4")
        .into_iter()
        .find(|s| s.command.contains("printf '%s'"))
        .unwrap();
    let run = tempfile::tempdir().unwrap();
    for shell in ["/bin/sh", "bash"] {
        probe(shell, run.path(), &write.command);
        let written = std::fs::read_to_string(run.path().join("app-db/etc/mysql/my.cnf")).unwrap();
        assert_eq!(written, content, "{shell}");
        assert!(!run.path().join("pwned").exists());
    }
    assert!(
        commands(&p)
            .iter()
            .any(|c| c.contains("--volume \"$PWD\"/app-db/etc/mysql/my.cnf:/etc/mysql/my.cnf"))
    );
}

#[test]
fn app_proxy_and_prune_builders_render_golden_lines() {
    let c = config();
    let lines = |op: Operation, phase: &str, host: &str| -> Vec<String> {
        steps_on(&plan(&c, &op), phase, host)
            .iter()
            .map(|s| s.command.clone())
            .collect()
    };
    assert_eq!(
        lines(Operation::App(AppAction::Stop), "app", "1.1.1.1"),
        [
            "docker exec kamal-proxy kamal-proxy remove app-web-production",
            "docker ps --filter label=service=app --filter label=destination=production --filter label=role=web --format '{{.Names}}' | while read -r name; do docker stop \"$name\"; done",
        ]
    );
    assert_eq!(
        lines(Operation::App(AppAction::Remove), "app", "1.1.1.3"),
        [
            "docker ps --filter label=service=app --filter label=destination=production --filter label=role=workers --format '{{.Names}}' | while read -r name; do docker stop -t 30 \"$name\"; done",
            "docker container prune --force --filter label=service=app --filter label=destination=production --filter label=role=workers",
            "docker image prune --all --force --filter label=service=app",
            "rm -rf .kamal/apps/app-production .kamal/proxy/apps-config/app-production",
        ]
    );
    let start = lines(Operation::App(AppAction::Start), "app", "1.1.1.1");
    assert_eq!(start[0], "docker start app-web-production-123");
    assert!(start[1].starts_with("docker exec kamal-proxy kamal-proxy deploy app-web-production "));
    let reboot = plan(&c, &Operation::Proxy(ProxyAction::Reboot));
    assert_eq!(
        reboot.phases[0].strategy,
        PlanStrategy::Rolling { limit: 1, wait: 0 }
    );
    let reboot: Vec<&str> = steps_on(&reboot, "proxy", "1.1.1.2")
        .iter()
        .map(|s| s.command.as_str())
        .collect();
    assert_eq!(
        &reboot[..3],
        [
            "docker container stop kamal-proxy",
            "docker container prune --force --filter label=org.opencontainers.image.title=kamal-proxy",
            "mkdir -p .kamal/proxy/apps-config",
        ]
    );
    let remove = lines(Operation::Proxy(ProxyAction::Remove), "proxy", "1.1.1.1");
    assert!(
        remove[0].starts_with("if [ -d .kamal/apps ] && [ -n \"$(ls -A .kamal/apps)\" ]; then")
    );
    assert_eq!(remove.last().unwrap(), "rm -rf .kamal/proxy");
    assert_eq!(
        lines(Operation::Prune, "prune", "1.1.1.3")[0],
        "docker ps -q -a --filter label=service=app --filter status=created --filter status=exited --filter status=dead | tail -n +6 | while read -r container_id; do docker rm \"$container_id\"; done"
    );
    // Every rendered line is valid shell syntax for dash and bash.
    for op in [
        Operation::Setup,
        Operation::App(AppAction::Remove),
        Operation::Proxy(ProxyAction::Remove),
    ] {
        for cmd in commands(&plan(&c, &op)) {
            for shell in ["/bin/sh", "bash"] {
                let ok = std::process::Command::new(shell)
                    .args(["-n", "-c", cmd])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "{shell} -n rejects {cmd}");
            }
        }
    }
}

#[test]
fn a_templates_dir_overrides_the_built_in_steps_and_changes_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let app = crate::template::BUILTIN
        .iter()
        .find(|(n, _)| *n == "app.j2")
        .unwrap()
        .1
        .replace("docker pull {{ image }}", "docker pull --quiet {{ image }}");
    std::fs::write(dir.path().join("app.j2"), app).unwrap();
    let t = Templates::from_dir(dir.path()).unwrap();
    let p = build(&config(), &Operation::Deploy, &inputs(&t)).unwrap();
    assert_eq!(
        steps_on(&p, "pull", "1.1.1.1")[2].command,
        "docker pull --quiet registry.example.com/dhh/app:123"
    );
    assert_eq!(p.source.templates, t.digest());
    assert_ne!(t.digest(), Templates::builtin().unwrap().digest());
}

#[test]
fn a_nul_byte_in_any_value_is_an_error_not_a_panic() {
    let t = Templates::builtin().unwrap();
    let c = config_with("a\0b");
    for op in [
        Operation::Deploy,
        Operation::Accessory(AccessoryAction::Boot, AccessoryTarget::All),
    ] {
        let err = build(&c, &op, &inputs(&t)).unwrap_err();
        assert!(matches!(err, Error::Unquotable(_)), "{err:?}");
        assert_eq!(err.exit_code(), 78);
        assert!(err.to_string().contains("NUL"), "{err}");
    }
}
