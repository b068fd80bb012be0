//! `writ hostkeys` against a real `sshd` on loopback: it shows the host's real SHA256
//! fingerprint, writes nothing without `--write`, pins the key with it (after which `load`
//! succeeds), and refuses to replace a pinned key that changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt as _;

struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start sshd with a fresh ed25519 host key; returns it and its fingerprint line.
fn sshd(dir: &Path, port: u16) -> (Sshd, String) {
    let key = dir.join("host_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    let fp = String::from_utf8(fp.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    std::fs::create_dir_all("/run/sshd").ok();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f", "/dev/null", "-o", "PidFile=none", "-o"])
        .arg(format!("HostKey={}", key.display()))
        .args(["-o", &format!("ListenAddress=127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Sshd(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (guard, fp)
}

fn app(dir: &Path, port: u16) {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config/deploy.yml"),
        format!("service: hey\nimage: acme/hey\nservers: [127.0.0.1]\nssh:\n  port: {port}\n"),
    )
    .unwrap();
}

fn hostkeys(dir: &Path, extra: &[&str]) -> std::process::Output {
    Command::cargo_bin("writ")
        .unwrap()
        .args(["hostkeys", "--timeout", "5", "--config"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn scans_shows_fingerprints_and_writes_only_with_write() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_sshd, fp) = sshd(tmp.path(), port);
    let root = tmp.path().join("app");
    app(&root, port);
    let known = root.join("config/known_hosts");

    let out = hostkeys(&root, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&fp), "{stdout}");
    assert!(stdout.contains(" new "), "{stdout}");
    assert!(stdout.contains("not written"), "{stdout}");
    assert!(!known.exists(), "nothing is written without --write");
    assert!(writ::config::load(&root, None).is_err());

    let out = hostkeys(&root, &["--write"]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&known).unwrap();
    assert!(
        text.starts_with(&format!("[127.0.0.1]:{port} ssh-ed25519 ")),
        "{text}"
    );
    let config = writ::config::load(&root, None).unwrap();
    let key = &config.host_keys.values().next().unwrap()[0];
    assert_eq!(key.fingerprint().unwrap(), fp);

    let out = hostkeys(&root, &["--write"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(" pinned "));
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        text,
        "a pinned key is not appended again"
    );
}

#[test]
fn a_changed_host_key_is_reported_and_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_sshd, fp) = sshd(tmp.path(), port);
    let root = tmp.path().join("app");
    app(&root, port);
    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOC+y6QoPD8+3H8APSg7IQgLsla9JchE6VK5cQr4XVIs";
    let pinned = format!("[127.0.0.1]:{port} {other}\n");
    std::fs::write(root.join("config/known_hosts"), &pinned).unwrap();
    let out = hostkeys(&root, &["--write"]);
    assert_eq!(out.status.code(), Some(42));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("CHANGED") && stdout.contains(&fp),
        "{stdout}"
    );
    assert!(stderr.contains("Do not replace it"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(root.join("config/known_hosts")).unwrap(),
        pinned
    );
}

#[test]
fn an_unreachable_host_fails_with_the_keyscan_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    app(&root, free_port());
    let out = hostkeys(&root, &[]);
    assert_eq!(out.status.code(), Some(42));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ssh-keyscan -p"), "{stderr}");
}
