//! SSH transport against real sshd: a jump host from the plan (itself pinned), ssh-agent
//! authentication, and passphrase-protected identities.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use writ_exec::plan::{Plan, Strategy};
use writ_tests::world::{World, phase, step, text};

fn plan_on(w: &World, host: &str) -> Plan {
    let mut p = w.plan();
    p.phases = vec![phase(
        "run",
        Strategy::Parallel,
        &[(host, vec![step("echo via-jump >> ran.txt")])],
    )];
    p
}

/// `apply` flags without `--identity` (for agent tests).
fn args_without_identity(w: &World, path: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec!["apply".into()];
    let trust = w.trust_args(path);
    let mut it = trust.into_iter();
    while let Some(a) = it.next() {
        if a == "--identity" {
            it.next();
        } else {
            args.push(a);
        }
    }
    args
}

#[test]
fn jump_host_from_the_plan_is_used_and_pinned() {
    let w = World::new(2);
    let mut plan = plan_on(&w, "web-2");
    plan.hosts[1].via = Some("web-1".into());
    let (path, _) = w.write_signed("p", &plan);
    let out = w.apply(&path, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(w.host("web-2").home.join("ran.txt")).unwrap(),
        "via-jump\n"
    );
    // The jump host only forwarded: no command ran on it.
    assert!(w.host("web-1").commands().is_empty());

    // A wrong key pinned for the jump host refuses before anything reaches the target.
    let mut bad = plan_on(&w, "web-2");
    bad.serial = 2;
    bad.previous = writ_exec::plan::Previous::Plan(writ_exec::plan::plan_id(
        &writ_exec::plan::encode(&plan).unwrap(),
    ));
    bad.hosts[1].via = Some("web-1".into());
    bad.hosts[0].keys = bad.hosts[1].keys.clone();
    let before = w.host("web-2").commands().len();
    let (path, _) = w.write_signed("bad", &bad);
    let out = w.apply(&path, &[], &[]);
    assert_eq!(out.status.code(), Some(23), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("host `web-1`"),
        "{}",
        text(&out)
    );
    assert_eq!(w.host("web-2").commands().len(), before);
}

struct Agent {
    child: Child,
    sock: std::path::PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(dir: &Path, key: &Path) -> Agent {
    let sock = dir.join("agent.sock");
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh-agent runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(key)
        .env("SSH_AUTH_SOCK", &sock)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(added.success(), "ssh-add failed");
    Agent { child, sock }
}

#[test]
fn ssh_agent_authenticates_without_an_identity_file() {
    let w = World::new(1);
    let plan = plan_on(&w, "web-1");
    let (path, _) = w.write_signed("p", &plan);
    let args = args_without_identity(&w, &path);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();

    // No identity and no agent: a clear authentication error, nothing ran.
    let out = w.writ_exec(&refs, &[]);
    assert_eq!(out.status.code(), Some(24), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SSH_AUTH_SOCK"));
    assert!(!w.host("web-1").home.join("ran.txt").exists());

    let agent = start_agent(w.dir.path(), &w.identity);
    let out = w.writ_exec(&refs, &[("SSH_AUTH_SOCK", agent.sock.to_str().unwrap())]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(w.host("web-1").home.join("ran.txt").exists());
}

#[test]
fn passphrase_protected_identity_needs_its_passphrase() {
    let w = World::new(1);
    let plan = plan_on(&w, "web-1");
    let (path, _) = w.write_signed("p", &plan);
    let enc = w.dir.path().join("deploy_key_enc");
    std::fs::copy(&w.identity, &enc).unwrap();
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "correct horse", "-f"])
        .arg(&enc)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut args = args_without_identity(&w, &path);
    args.extend(["--identity".into(), enc.display().to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();

    let out = w.writ_exec(&refs, &[]);
    assert_eq!(out.status.code(), Some(24), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WRIT_IDENTITY_PASSPHRASE"));
    let out = w.writ_exec(&refs, &[("WRIT_IDENTITY_PASSPHRASE", "wrong")]);
    assert_eq!(out.status.code(), Some(24), "{}", text(&out));
    assert!(!w.host("web-1").home.join("ran.txt").exists());
    assert!(
        w.host("web-1").commands().is_empty(),
        "a bad key never connects"
    );

    let out = w.writ_exec(&refs, &[("WRIT_IDENTITY_PASSPHRASE", "correct horse")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(w.host("web-1").home.join("ran.txt").exists());
}

#[test]
fn a_host_that_never_answers_hits_the_connect_timeout() {
    let w = World::new(1);
    // Accepts TCP but never speaks SSH.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(8));
        drop(held);
    });
    let mut plan = plan_on(&w, "web-1");
    plan.hosts[0].port = port;
    let (path, _) = w.write_signed("p", &plan);
    let mut args: Vec<String> = vec!["apply".into()];
    args.extend(w.trust_args(&path));
    let at = args.iter().position(|a| a == "--connect-timeout").unwrap();
    args[at + 1] = "2".into();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = Instant::now();
    let out = w.writ_exec(&refs, &[]);
    assert!(t.elapsed() < Duration::from_secs(7), "{:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(22), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("connect timed out after 2 s"));
    holder.join().unwrap();
}
