//! End to end with real parts: the example app's config (examples/hey: web role behind the
//! caddy proxy, a worker, plus an accessory) → `writ plan` → `writ sign` ×2 → `writ-exec apply`
//! over a real sshd on loopback to the real dockerd, pulling from a real registry with basic
//! auth. `curl` through Caddy sees v1 after setup, v2 after deploy and redeploy, v1 after
//! rollback; app exec, app stop/start, proxy reboot, prune, then app, accessory and proxy
//! remove leave nothing behind. The registry password and the app's secret reach the host only
//! on stdin: neither is in a plan, the review, the executor's output, the audit log or any
//! command the host received.
//! Needs `scripts/e2e-env` (dockerd, registry, images); fails, never skips, without it.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use writ_tests::docker_env::{DockerEnv, curl_until, docker_ok, reset_host, writ_bin};
use writ_tests::world::{DESTINATION, World, text};

/// The proxy host the site answers for (`proxy.host`); curl sends it as `Host:`.
const SITE: &str = "hey.e2e.test";
/// The caddy driver publishes the proxy on the host's port 80.
const PROXY_PORT: u16 = 80;

/// examples/hey/config/deploy.yml adjusted to the test host: the local registry, `ssh.user`
/// root on the sshd's port, a proxy host (plus `proxy_extra` YAML lines), the caddy driver,
/// a 1 s readiness delay, and an accessory.
fn deploy_yml(env: &DockerEnv, ssh_port: u16, proxy_extra: &str) -> String {
    let example = std::fs::read_to_string(repo_root().join("examples/hey/config/deploy.yml"))
        .expect("examples/hey/config/deploy.yml");
    assert!(
        example.contains("server: registry.example.com") && example.contains("user: deploy"),
        "examples/hey/config/deploy.yml changed shape; update the e2e adjustments"
    );
    let yml = example
        .replace("image: acme/hey", &format!("image: {}", env.image))
        .replace(
            "server: registry.example.com",
            &format!("server: {}", env.registry),
        )
        .replace(
            "username: acme-deploy",
            &format!("username: {}", env.registry_user),
        )
        .replace(
            "  app_port: 8080",
            &format!("  app_port: 8080\n  host: {SITE}\n{proxy_extra}"),
        )
        .replace(
            "  user: deploy",
            &format!("  user: root\n  port: {ssh_port}"),
        )
        .replace(
            "  plan_lifetime: 72h",
            "  plan_lifetime: 1h\n  proxy: caddy",
        );
    // An accessory on the same host, from the app's image: a file from the repo mounted in,
    // a data directory, a secret in its env file, reachable by name on the `kamal` network.
    let accessory = format!(
        "accessories:\n  \
           cache:\n    \
             image: {}/{}:v1\n    \
             host: 127.0.0.1\n    \
             cmd: /bin/busybox sh -c 'trap \"exit 0\" TERM; /bin/busybox httpd -f -p 8081 -h /srv & wait'\n    \
             files:\n      - config/cache.html:/srv/index.html\n    \
             directories:\n      - data:/data\n    \
             env:\n      secret:\n        - HEY_API_TOKEN\n",
        env.registry, env.image
    );
    format!("{yml}\nreadiness_delay: 1\n{accessory}")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The app's config directory, as a user of writ would have it.
struct App {
    root: PathBuf,
}

impl App {
    fn new(world: &World, env: &DockerEnv, proxy_extra: &str) -> Self {
        let root = world.dir.path().join("app");
        let config = root.join("config");
        std::fs::create_dir_all(&config).unwrap();
        let host = &world.hosts[0];
        std::fs::write(
            config.join("deploy.yml"),
            deploy_yml(env, host.port, proxy_extra),
        )
        .unwrap();
        std::fs::write(
            config.join(format!("deploy.{DESTINATION}.yml")),
            // Like the example's production: web behind the proxy, a worker without one.
            "servers:\n  web:\n    hosts:\n      - 127.0.0.1\n  \
             worker:\n    hosts:\n      - 127.0.0.1\n    cmd: /bin/hey-worker\n    proxy: false\n",
        )
        .unwrap();
        std::fs::write(config.join("cache.html"), "cache ok\n").unwrap();
        std::fs::write(
            config.join("known_hosts"),
            format!("[127.0.0.1]:{} {}\n", host.port, host.host_key),
        )
        .unwrap();
        Self { root }
    }

    fn plan_path(&self) -> PathBuf {
        self.root.join(format!("plans/{DESTINATION}.plan"))
    }

    /// `writ plan -d production ARGS` in the app root (created a minute ago, so the
    /// executor's clock sees it as current).
    fn plan(&self, args: &[&str], secrets: &[&str]) -> String {
        let created = jiff::Timestamp::now().as_second() - 60;
        let out = Command::new(writ_bin())
            .args(["plan", "-d", DESTINATION])
            .args(args)
            .current_dir(&self.root)
            .env("SOURCE_DATE_EPOCH", created.to_string())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_no_secret("writ plan output", &text(&out), secrets);
        assert!(out.status.success(), "writ plan {args:?}: {}", text(&out));
        std::fs::read_to_string(self.plan_path()).unwrap()
    }

    /// `writ sign` with both approvers' keys (fresh signatures for the current plan).
    fn sign(&self, world: &World) {
        let sigs = self.root.join(format!("plans/{DESTINATION}.plan.sigs"));
        let _ = std::fs::remove_dir_all(&sigs);
        for (who, key) in &world.signers {
            let out = Command::new(writ_bin())
                .arg("sign")
                .arg(self.plan_path())
                .arg("--key")
                .arg(key)
                .args(["--principal", who])
                .env_remove("WRIT_KEY_PASSPHRASE")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(out.status.success(), "writ sign as {who}: {}", text(&out));
        }
    }
}

/// No value of `secrets` in `haystack`; a failure shows where, with the values masked (the
/// test log must not carry them either).
fn assert_no_secret(what: &str, haystack: &str, secrets: &[&str]) {
    if secrets.iter().any(|s| haystack.contains(s)) {
        let mut shown = haystack.to_owned();
        for (i, s) in secrets.iter().enumerate() {
            shown = shown.replace(s, &format!("[LEAKED SECRET #{i}]"));
        }
        panic!("a secret value leaked into {what}:\n{shown}");
    }
}

/// Puts the host back to its fresh state however the test ends.
struct ResetOnDrop(String);

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        reset_host("hey", &self.0);
    }
}

/// `writ-exec apply` of the app's current plan with `vars` (the secrets) in its environment;
/// no secret value (nor any of `also_secret`) may show in its output.
fn apply(world: &World, app: &App, vars: &[(&str, &str)], also_secret: &[&str]) {
    // A step that hangs (say, a command the image ignores) fails instead of stalling CI.
    let out = world.apply(&app.plan_path(), &["--step-timeout", "120"], vars);
    let values: Vec<&str> = vars
        .iter()
        .map(|(_, v)| *v)
        .chain(also_secret.iter().copied())
        .collect();
    assert_no_secret("writ-exec apply output", &text(&out), &values);
    assert!(out.status.success(), "writ-exec apply: {}", text(&out));
}

fn serves(want: &str) {
    let url = format!("http://127.0.0.1:{PROXY_PORT}/");
    let host = format!("Host: {SITE}");
    let body = curl_until(&["-H", &host, &url], want, Duration::from_secs(15));
    assert!(
        body.contains(want),
        "curl -H 'Host: {SITE}' http://127.0.0.1:{PROXY_PORT}/ should serve {want:?}, got: {body}\n\
         proxy logs:\n{}",
        docker_ok(&["logs", "--tail", "20", "writ-caddy"])
    );
}

/// The containers that run `version`: the web role's and the worker's.
fn running(version: &str) -> Vec<String> {
    vec![
        format!("hey-web-production-{version}"),
        format!("hey-worker-production-{version}"),
    ]
}

/// stdout and stderr of `docker ARGS` (`docker logs` writes the container's stderr there).
fn docker_output(args: &[&str]) -> String {
    let out = writ_tests::docker_env::docker(args);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Requests through the proxy in a loop on another thread, for the zero-downtime check.
struct Traffic {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Vec<String>>,
}

impl Traffic {
    fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let url = format!("http://127.0.0.1:{PROXY_PORT}/");
            let host = format!("Host: {SITE}");
            let mut seen = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push(curl_until(&["-H", &host, &url], "", Duration::ZERO));
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        });
        Self { stop, handle }
    }

    fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// Every response `Traffic` saw came from the app (Caddy answers 502 with an empty body when
/// it cannot reach the upstream).
fn assert_no_failed_request(seen: &[String], during: &str) {
    let failed: Vec<&String> = seen.iter().filter(|b| !b.contains("hey v")).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed while {during}: {failed:?}",
        failed.len(),
        seen.len()
    );
}

fn running_app_containers() -> Vec<String> {
    let names = docker_ok(&[
        "ps",
        "--filter",
        "label=service=hey",
        "--format",
        "{{.Names}}",
    ]);
    let mut names: Vec<String> = names.lines().map(str::to_owned).collect();
    names.sort();
    names
}

#[test]
fn example_app_deploys_v1_v2_rolls_back_and_tears_down_on_real_docker_with_secrets_only_on_stdin() {
    let env = DockerEnv::require();
    let _lock = env.lock();
    reset_host("hey", &env.repository());
    let _reset = ResetOnDrop(env.repository());
    let world = World::new(1);
    let app = App::new(&world, &env, "");
    let token = format!("hey-token-{}-lifecycle", std::process::id());
    let secrets = [env.registry_password.as_str(), token.as_str()];
    let vars = [
        ("KAMAL_REGISTRY_PASSWORD", env.registry_password.as_str()),
        ("HEY_API_TOKEN", token.as_str()),
    ];

    // setup v1 on a fresh host: bootstrap, pull (registry login on stdin), proxy, boot.
    let plan_v1 = app.plan(&["setup", "--version", "v1"], &secrets);
    assert!(plan_v1.contains("--password-stdin\n      < secret KAMAL_REGISTRY_PASSWORD\n"));
    app.sign(&world);
    apply(&world, &app, &vars, &[]);
    serves("hey v1");
    assert_eq!(running_app_containers(), running("v1"));

    // The worker runs its own `cmd:` (no proxy: booted once Docker reports it running).
    let logs = docker_output(&["logs", "hey-worker-production-v1"]);
    assert!(
        logs.contains("hey-worker: hey there"),
        "worker logs: {logs}"
    );

    // The accessory serves its file from the repo to the app over the `kamal` network, and
    // got the secret through its own env file.
    let from_app = docker_ok(&[
        "exec",
        "hey-web-production-v1",
        "/bin/busybox",
        "wget",
        "-q",
        "-O",
        "-",
        "http://hey-cache:8081/",
    ]);
    assert_eq!(from_app, "cache ok");
    let cache_env = docker_ok(&["exec", "hey-cache", "/bin/busybox", "env"]);
    assert!(
        cache_env
            .lines()
            .any(|l| l == format!("HEY_API_TOKEN={token}"))
    );
    assert!(world.hosts[0].home.join("hey-cache/data").is_dir());

    // The app's secret reached the container through the 0600 env file, written from stdin.
    let env_file = world.hosts[0]
        .home
        .join(".kamal/apps/hey-production/env/roles/web.env");
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", env_file.display());
    let container_env = docker_ok(&["exec", "hey-web-production-v1", "/bin/busybox", "env"]);
    assert!(
        container_env
            .lines()
            .any(|l| l == format!("HEY_API_TOKEN={token}")),
        "the container lacks HEY_API_TOKEN from the env file"
    );

    // deploy v2: chained onto the setup plan; the old container is stopped, v2 serves.
    let plan_v2 = app.plan(&["deploy", "--version", "v2"], &secrets);
    assert!(plan_v2.contains("\nserial 2\n"), "{plan_v2}");
    app.sign(&world);
    let traffic = Traffic::start();
    apply(&world, &app, &vars, &[]);
    serves("hey v2");
    let seen = traffic.stop();
    assert_no_failed_request(&seen, "v2 replaced v1");
    let saw = |v: &str| seen.iter().any(|b| b.contains(v));
    assert!(
        saw("hey v1") && saw("hey v2"),
        "the traffic did not span the switch"
    );
    assert_eq!(running_app_containers(), running("v2"));

    // redeploy v2: the running v2 containers are renamed aside, replaced and stopped.
    let plan_redeploy = app.plan(&["redeploy", "--version", "v2"], &secrets);
    app.sign(&world);
    // The running container Caddy routes to by name is renamed before its replacement
    // starts: Caddy's dial retries (lb_try_duration) must bridge that moment.
    let traffic = Traffic::start();
    apply(&world, &app, &vars, &[]);
    serves("hey v2");
    assert_no_failed_request(&traffic.stop(), "a new v2 replaced v2");
    assert_eq!(running_app_containers(), running("v2"));
    let replaced = docker_ok(&[
        "ps",
        "--all",
        "--filter",
        "name=hey-web-production-v2_replaced_",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(replaced.lines().count(), 1, "{replaced}");

    // rollback to v1: its stopped container's image is still there; no pull.
    let plan_rollback = app.plan(&["rollback", "v1"], &secrets);
    assert!(!plan_rollback.contains("docker pull"), "{plan_rollback}");
    app.sign(&world);
    let traffic = Traffic::start();
    apply(&world, &app, &vars, &[]);
    serves("hey v1");
    assert_no_failed_request(&traffic.stop(), "v1 replaced v2");
    assert_eq!(running_app_containers(), running("v1"));

    // app exec runs the reviewed command in a new container of the deployed image.
    let plan_exec = app.plan(
        &[
            "app",
            "exec",
            "--roles",
            "web",
            "--version",
            "v1",
            "--",
            "/bin/busybox grep -q 'hey v1' /www/index.html",
        ],
        &secrets,
    );
    app.sign(&world);
    apply(&world, &app, &vars, &[]);

    // app stop takes v1 out of the proxy and stops it; app start brings it back.
    let plan_stop = app.plan(&["app", "stop", "--version", "v1"], &secrets);
    app.sign(&world);
    apply(&world, &app, &vars, &[]);
    assert_eq!(running_app_containers(), Vec::<String>::new());
    let url = format!("http://127.0.0.1:{PROXY_PORT}/");
    let host = format!("Host: {SITE}");
    let body = curl_until(&["-H", &host, &url], "never", Duration::ZERO);
    assert!(
        !body.contains("hey v"),
        "a stopped app still answers: {body}"
    );
    let plan_start = app.plan(&["app", "start", "--version", "v1"], &secrets);
    app.sign(&world);
    apply(&world, &app, &vars, &[]);
    serves("hey v1");

    // proxy reboot recreates the Caddy container; the routes live in the site files.
    let plan_reboot = app.plan(&["proxy", "reboot", "--version", "v1"], &secrets);
    app.sign(&world);
    apply(&world, &app, &vars, &[]);
    serves("hey v1");
    assert_eq!(running_app_containers(), running("v1"));

    // prune keeps the newest `retain_containers` (3) stopped containers of the service.
    let stopped = || {
        docker_ok(&[
            "ps",
            "--all",
            "--filter",
            "label=service=hey",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}",
        ])
        .lines()
        .count()
    };
    assert!(
        stopped() > 3,
        "the flow leaves more than 3 stopped containers"
    );
    let plan_prune = app.plan(&["prune", "--version", "v1"], &secrets);
    app.sign(&world);
    apply(&world, &app, &vars, &[]);
    assert_eq!(stopped(), 3);
    serves("hey v1");

    // Tear down through writ: app, accessory, proxy; nothing of the service is left.
    let plan_app_remove = app.plan(&["app", "remove", "--version", "v1"], &secrets);
    app.sign(&world);
    apply(&world, &app, &vars, &[]);
    let left = docker_ok(&[
        "ps",
        "--all",
        "--filter",
        "label=service=hey",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(left, "", "app remove left containers");
    let plan_acc_remove = app.plan(
        &["accessory", "remove", "cache", "--version", "v1"],
        &secrets,
    );
    app.sign(&world);
    apply(&world, &app, &vars, &[]);
    let plan_proxy_remove = app.plan(&["proxy", "remove", "--version", "v1"], &secrets);
    app.sign(&world);
    apply(&world, &app, &vars, &[]);
    let left = docker_ok(&["ps", "--all", "--format", "{{.Names}}"]);
    let left: Vec<&str> = left
        .lines()
        .filter(|n| n.starts_with("hey-") || *n == "writ-caddy")
        .collect();
    assert!(left.is_empty(), "teardown left containers: {left:?}");
    assert!(!world.hosts[0].home.join("hey-cache").exists());
    assert!(!world.hosts[0].home.join(".kamal/proxy/caddy").exists());

    // No secret value in any plan, the audit log or any command the host received.
    for (name, plan) in [
        ("v1", &plan_v1),
        ("v2", &plan_v2),
        ("redeploy", &plan_redeploy),
        ("rollback", &plan_rollback),
        ("app exec", &plan_exec),
        ("app stop", &plan_stop),
        ("app start", &plan_start),
        ("proxy reboot", &plan_reboot),
        ("prune", &plan_prune),
        ("app remove", &plan_app_remove),
        ("accessory remove", &plan_acc_remove),
        ("proxy remove", &plan_proxy_remove),
    ] {
        assert_no_secret(&format!("the {name} plan"), plan, &secrets);
    }
    let audit = std::fs::read_to_string(world.audit_file()).unwrap();
    assert_no_secret("the audit log", &audit, &secrets);
    let commands = world.hosts[0].commands();
    assert!(commands.iter().any(|c| c.starts_with("docker login ")));
    assert_no_secret("the host's commands", &commands.join("\n"), &secrets);
    let verify = world.writ_exec(
        &["audit", "verify", &world.audit_file().display().to_string()],
        &[],
    );
    assert!(verify.status.success(), "audit verify: {}", text(&verify));
}

#[test]
fn caddy_serves_https_with_a_custom_certificate_whose_key_travels_only_as_a_secret() {
    let env = DockerEnv::require();
    let _lock = env.lock();
    reset_host("hey", &env.repository());
    let _reset = ResetOnDrop(env.repository());
    let world = World::new(1);
    // A real certificate for the site, made by openssl.
    let tls = world.dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={SITE}")])
        .args(["-addext", &format!("subjectAltName=DNS:{SITE}")])
        .arg("-keyout")
        .arg(tls.join("key.pem"))
        .arg("-out")
        .arg(tls.join("cert.pem"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl req failed");
    let cert = std::fs::read_to_string(tls.join("cert.pem")).unwrap();
    let key = std::fs::read_to_string(tls.join("key.pem")).unwrap();
    // A line of the key's base64: a leak of any part of the key shows it.
    let key_line = key.lines().nth(1).unwrap().to_owned();
    let app = App::new(
        &world,
        &env,
        "  ssl:\n    certificate_pem: TLS_CERTIFICATE_PEM\n    private_key_pem: TLS_PRIVATE_KEY_PEM\n",
    );
    let token = format!("hey-token-{}-tls", std::process::id());
    let vars = [
        ("KAMAL_REGISTRY_PASSWORD", env.registry_password.as_str()),
        ("HEY_API_TOKEN", token.as_str()),
        ("TLS_CERTIFICATE_PEM", cert.as_str()),
        ("TLS_PRIVATE_KEY_PEM", key.as_str()),
    ];
    let secrets = [
        env.registry_password.as_str(),
        token.as_str(),
        key_line.as_str(),
    ];

    let plan = app.plan(&["setup", "--version", "v1"], &secrets);
    assert!(plan.contains("< secret TLS_PRIVATE_KEY_PEM"), "{plan}");
    app.sign(&world);
    apply(&world, &app, &vars, &[&key_line]);

    let resolve = format!("{SITE}:443:127.0.0.1");
    let cacert = tls.join("cert.pem").display().to_string();
    let url = format!("https://{SITE}/");
    let body = curl_until(
        &["--resolve", &resolve, "--cacert", &cacert, &url],
        "hey v1",
        Duration::from_secs(15),
    );
    assert!(
        body.contains("hey v1"),
        "https://{SITE}/ with the custom certificate should serve v1, got: {body}\nproxy logs:\n{}",
        docker_ok(&["logs", "--tail", "20", "writ-caddy"])
    );
    let key_file = world.hosts[0]
        .home
        .join(".kamal/proxy/caddy/tls/hey-production/web/key.pem");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", key_file.display());

    assert_no_secret("the plan", &plan, &secrets);
    let audit = std::fs::read_to_string(world.audit_file()).unwrap();
    assert_no_secret("the audit log", &audit, &secrets);
    let commands = world.hosts[0].commands().join("\n");
    assert_no_secret("the host's commands", &commands, &secrets);
}
