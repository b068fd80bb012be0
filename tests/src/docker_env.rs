//! The real-Docker environment `scripts/e2e-env` prepares (dockerd, a local registry with basic
//! auth, the example app's images v1/v2, the caddy driver's `caddy:2`), found through the env
//! file it leaves, plus the `docker` and `curl` calls the end-to-end test makes from outside
//! the deploy host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/e2e-env` writes its env file unless `WRIT_E2E_DIR` moves it.
pub const DEFAULT_ENV_FILE: &str = "/tmp/writ-e2e/env";

/// What `scripts/e2e-env` set up.
pub struct DockerEnv {
    /// `127.0.0.1:PORT` of the local registry.
    pub registry: String,
    /// The registry's basic-auth user.
    pub registry_user: String,
    /// The registry's password (a secret: it must reach the host only on stdin).
    pub registry_password: String,
    /// The app's repository inside the registry (`acme/hey`).
    pub image: String,
    /// The env file's directory (holds the lock that serializes runs on the shared dockerd).
    dir: PathBuf,
}

/// Exclusive use of the shared dockerd (fixed container names, the proxy on port 80) by one
/// test process at a time; released when dropped.
#[derive(Debug)]
pub struct DockerLock {
    _file: std::fs::File,
}

impl std::fmt::Debug for DockerEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerEnv")
            .field("registry", &self.registry)
            .field("registry_user", &self.registry_user)
            .field("registry_password", &"[secret]")
            .field("image", &self.image)
            .field("dir", &self.dir)
            .finish()
    }
}

impl DockerEnv {
    /// Load the env file and check that dockerd and the registry answer.
    /// Panics with the way to fix it: the end-to-end test must fail, never skip, without Docker.
    pub fn require() -> Self {
        let fix = "run `scripts/e2e-env` first (as root or with sudo): it installs and starts \
                   dockerd and a local registry and builds the example app's images";
        let path = std::env::var_os("WRIT_E2E_ENV")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("WRIT_E2E_DIR").map(|d| PathBuf::from(d).join("env")))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ENV_FILE));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the Docker end-to-end environment is missing ({}: {e}); {fix}",
                path.display()
            )
        });
        let vars = parse_env(&text);
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{} has no {k}; {fix}", path.display()))
        };
        let env = Self {
            registry: get("WRIT_E2E_REGISTRY"),
            registry_user: get("WRIT_E2E_REGISTRY_USER"),
            registry_password: get("WRIT_E2E_REGISTRY_PASSWORD"),
            image: get("WRIT_E2E_IMAGE"),
            dir: path.parent().unwrap_or(Path::new(".")).to_owned(),
        };
        let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
        assert!(
            info.status.success(),
            "docker does not answer ({}); {fix}",
            String::from_utf8_lossy(&info.stderr).trim()
        );
        let code = curl_status(&format!("http://{}/v2/", env.registry));
        assert_eq!(
            code.as_deref(),
            Some("401"),
            "the registry at {} does not answer with 401 (basic auth); {fix}",
            env.registry
        );
        env
    }

    /// Wait for exclusive use of dockerd: two test runs (say, the suite and a focused run)
    /// would otherwise remove each other's containers.
    #[must_use]
    pub fn lock(&self) -> DockerLock {
        let path = self.dir.join("docker.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        file.lock()
            .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
        DockerLock { _file: file }
    }

    /// `REGISTRY/IMAGE` (the repository every plan pulls).
    #[must_use]
    pub fn repository(&self) -> String {
        format!("{}/{}", self.registry, self.image)
    }
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect()
}

/// Run `docker ARGS` on the local dockerd (the deploy host's), capturing output.
#[must_use]
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker ({e}); run `scripts/e2e-env` first"))
}

/// `docker ARGS` stdout as trimmed text; panics with its stderr when it fails.
#[must_use]
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Remove what a deploy of `service` with the caddy driver leaves in dockerd (app and
/// accessory containers, the proxy and its data volume, the `kamal` network, the app's local
/// images), so every run starts from a fresh host, and log out of the registry. Errors are
/// ignored: most of it is usually absent.
pub fn reset_host(service: &str, repository: &str) {
    // The app's containers are labelled `service=<service>`, accessories `<service>-<name>`.
    let all = docker(&["ps", "-a", "--format", "{{.ID}} {{.Label \"service\"}}"]);
    let all = String::from_utf8_lossy(&all.stdout).into_owned();
    let accessory = format!("{service}-");
    let mut rm = vec!["rm", "--force", "writ-caddy"];
    rm.extend(all.lines().filter_map(|l| {
        let (id, label) = l.split_once(' ')?;
        (label == service || label.starts_with(&accessory)).then_some(id)
    }));
    let _ = docker(&rm);
    let _ = docker(&["volume", "rm", "--force", "writ-caddy-data"]);
    let _ = docker(&["network", "rm", "kamal"]);
    let images = docker(&[
        "image",
        "ls",
        repository,
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    let images = String::from_utf8_lossy(&images.stdout).into_owned();
    let mut rmi = vec!["image", "rm", "--force"];
    rmi.extend(images.split_whitespace());
    if rmi.len() > 3 {
        let _ = docker(&rmi);
    }
    // The plans' `docker login` stored the registry credentials for the host's user.
    if let Some((registry, _)) = repository.split_once('/') {
        let _ = docker(&["logout", registry]);
    }
}

/// The HTTP status `curl` gets for `url` (`None` when curl cannot connect or is missing).
#[must_use]
pub fn curl_status(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            url,
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (code != "000").then_some(code)
}

/// Run real `curl -sS --max-time 5 ARGS…` until its body contains `want` or `timeout` passes;
/// returns the last body (or curl's error).
#[must_use]
pub fn curl_until(args: &[&str], want: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .args(args)
            .stdin(Stdio::null())
            .output();
        let body = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => format!("curl failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => format!("cannot run curl: {e}"),
        };
        if body.contains(want) || Instant::now() >= deadline {
            return body;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `writ` binary next to the test executable (`cargo test --workspace` builds it; for
/// `-p writ-tests`, run `cargo build -p writ` first).
#[must_use]
pub fn writ_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("writ");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p writ` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_are_split_at_the_first_equals_sign() {
        let vars = parse_env("A=1\nB=x=y\n\nnot a pair\n");
        assert_eq!(vars.get("A").unwrap(), "1");
        assert_eq!(vars.get("B").unwrap(), "x=y");
        assert_eq!(vars.len(), 2);
    }
}
