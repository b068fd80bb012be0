//! A test world for `writ-exec apply`: a temp dir with a deploy key, two approver keys, an
//! allowed_signers policy, real sshd hosts, and helpers to build, sign (with real
//! `ssh-keygen -Y sign`) and apply plans through the real `writ-exec` binary.
#![allow(
    clippy::must_use_candidate,
    reason = "test harness helpers, results are obvious"
)]

use std::fmt::Write as _;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use writ_exec::plan::{
    self, HostSteps, Phase, Plan, Previous, Sha256Digest, Source, Step, Strategy,
};

use crate::sshd::{Sshd, keygen};

/// Destination used by every test plan.
pub const DESTINATION: &str = "production";

/// The test world. Dropping it stops its sshd instances and removes the temp dir.
pub struct World {
    /// Temp root.
    pub dir: tempfile::TempDir,
    /// Private key the executor authenticates with.
    pub identity: PathBuf,
    /// Its public key line.
    pub identity_pub: String,
    /// Approver keys (private key paths) and principals.
    pub signers: Vec<(String, PathBuf)>,
    /// allowed_signers file.
    pub allowed_signers: PathBuf,
    /// The sshd hosts.
    pub hosts: Vec<Sshd>,
}

impl World {
    /// A world with `n` hosts named `web-1` … `web-n`.
    pub fn new(n: usize) -> Self {
        crate::sshd::ensure_user(crate::sshd::TEST_USER, "/bin/sh");
        let dir = tempfile::tempdir().expect("tempdir");
        // Test users other than root must reach the hosts' wrapper, keys and homes.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let identity = dir.path().join("deploy_key");
        let identity_pub = keygen(&identity, "ed25519", "");
        let mut signers = Vec::new();
        let mut allowed = String::new();
        for who in ["alice@example.com", "bob@example.com"] {
            let path = dir
                .path()
                .join(format!("signer-{}", &who[..who.find('@').unwrap_or(0)]));
            let public = keygen(&path, "ed25519", "");
            let _ = writeln!(
                allowed,
                "{who} namespaces=\"writ-plan:{DESTINATION}\" {public}"
            );
            signers.push((who.to_owned(), path));
        }
        let allowed_signers = dir.path().join("allowed_signers");
        std::fs::write(&allowed_signers, allowed).expect("allowed_signers");
        let hosts_root = dir.path().join("hosts");
        std::fs::create_dir_all(&hosts_root).expect("hosts dir");
        let hosts = (1..=n)
            .map(|i| Sshd::start(&hosts_root, &format!("web-{i}"), &identity_pub, "ed25519"))
            .collect();
        Self {
            dir,
            identity,
            identity_pub,
            signers,
            allowed_signers,
            hosts,
        }
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &Sshd {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .expect("host exists")
    }

    /// A plan skeleton (serial 1, genesis) over every host as [`crate::sshd::TEST_USER`], no
    /// phases yet.
    pub fn plan(&self) -> Plan {
        let now = jiff::Timestamp::now().as_second();
        Plan {
            service: "hey".into(),
            destination: DESTINATION.into(),
            operation: "deploy".into(),
            version: "v1".into(),
            serial: 1,
            previous: Previous::Genesis,
            created: jiff::Timestamp::from_second(now - 60).expect("time"),
            expires: jiff::Timestamp::from_second(now + 3600).expect("time"),
            source: Source {
                config: Sha256Digest([1; 32]),
                templates: Sha256Digest([2; 32]),
                commit: None,
            },
            hosts: {
                // The format wants hosts sorted by name (web-10 before web-2).
                let mut hosts: Vec<_> = self
                    .hosts
                    .iter()
                    .map(|h| h.plan_host(crate::sshd::TEST_USER))
                    .collect();
                hosts.sort_by(|a, b| a.name.cmp(&b.name));
                hosts
            },
            phases: Vec::new(),
        }
    }

    /// Encode `plan`, write it under `name`, sign it with both approvers (real ssh-keygen);
    /// returns the plan path and its id.
    pub fn write_signed(&self, name: &str, plan: &Plan) -> (PathBuf, Sha256Digest) {
        let bytes = plan::encode(plan).expect("plan encodes");
        let path = self.dir.path().join(format!("{name}.plan"));
        std::fs::write(&path, &bytes).expect("plan written");
        let sigs = self.dir.path().join(format!("{name}.plan.sigs"));
        std::fs::create_dir_all(&sigs).expect("sigs dir");
        for (who, key) in &self.signers {
            sign(
                key,
                &plan.destination,
                &path,
                &sigs.join(format!("{}.sig", &who[..who.find('@').unwrap_or(0)])),
            );
        }
        (path, plan::plan_id(&bytes))
    }

    /// Run `writ-exec` with `args` (the trust and identity flags are added by [`Self::apply`]).
    pub fn writ_exec(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(writ_exec_bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("WRIT_IDENTITY_PASSPHRASE")
            .env("USER", "tester")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("writ-exec runs")
    }

    /// The common flags of `apply` / `lock` for plan `path`.
    pub fn trust_args(&self, path: &Path) -> Vec<String> {
        vec![
            path.display().to_string(),
            "--allowed-signers".into(),
            self.allowed_signers.display().to_string(),
            "--threshold".into(),
            "2".into(),
            "--destination".into(),
            DESTINATION.into(),
            "--identity".into(),
            self.identity.display().to_string(),
            "--connect-timeout".into(),
            "10".into(),
        ]
    }

    /// `writ-exec apply PLAN …trust… extra…`.
    pub fn apply(&self, path: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut args: Vec<String> = vec!["apply".into()];
        args.extend(self.trust_args(path));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.writ_exec(&refs, env)
    }

    /// The default audit file of runs in this world.
    pub fn audit_file(&self) -> PathBuf {
        self.dir.path().join(".writ/audit.jsonl")
    }
}

/// Sign `plan` with real `ssh-keygen -Y sign` into `out`.
pub fn sign(key: &Path, destination: &str, plan: &Path, out: &Path) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-Y",
            "sign",
            "-n",
            &format!("writ-plan:{destination}"),
            "-f",
        ])
        .arg(key)
        .arg(plan)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("ssh-keygen -Y sign runs");
    assert!(status.success(), "ssh-keygen -Y sign failed");
    std::fs::rename(plan.with_extension("plan.sig"), out).expect("move signature");
}

/// A phase running `steps` on each of `hosts`.
pub fn phase(name: &str, strategy: Strategy, hosts: &[(&str, Vec<Step>)]) -> Phase {
    Phase {
        name: name.into(),
        strategy,
        hosts: hosts
            .iter()
            .map(|(h, steps)| HostSteps {
                host: (*h).to_owned(),
                steps: steps.clone(),
            })
            .collect(),
    }
}

/// A step without stdin.
pub fn step(command: &str) -> Step {
    Step {
        command: command.into(),
        stdin: None,
    }
}

/// The `writ-exec` binary next to the test executable (`cargo test --workspace` builds it;
/// for `-p writ-tests`, run `cargo build -p writ-exec` first).
pub fn writ_exec_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("writ-exec");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p writ-exec` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// stdout + stderr as text, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
