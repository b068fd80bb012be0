//! `writ-exec apply` refuses, each with its own message and exit code, and runs nothing:
//! host key mismatch, unpinned host, failed verification (no TCP connection at all), stale
//! plan, replayed plan, genesis on a used host, expired plan, held lock, non-POSIX shell.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use writ_exec::plan::{HostKey, Plan, Previous, Sha256Digest, Strategy};
use writ_exec::state;
use writ_tests::sshd::keygen;
use writ_tests::world::{World, phase, step, text};

fn marker_plan(w: &World, tag: &str) -> Plan {
    let mut p = w.plan();
    let hosts: Vec<(&str, Vec<_>)> = w
        .hosts
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                vec![step(&format!("echo {tag} >> ran.txt"))],
            )
        })
        .collect();
    p.phases = vec![phase("run", Strategy::Parallel, &hosts)];
    p
}

/// No plan step reached any host: only protocol commands in the logs, no `ran.txt`.
fn assert_nothing_ran(w: &World, plan: &Plan) {
    let steps: Vec<String> = plan
        .phases
        .iter()
        .flat_map(|p| &p.hosts)
        .flat_map(|h| h.steps.iter().map(|s| s.command.clone()))
        .collect();
    for h in &w.hosts {
        for c in h.commands() {
            assert!(!steps.contains(&c), "{} ran a plan step: {c}", h.name);
        }
    }
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn host_key_mismatch_reaches_no_host_and_shows_both_fingerprints() {
    let w = World::new(2);
    let mut plan = marker_plan(&w, "mismatch");
    // Pin web-1's key for web-2.
    plan.hosts[1].keys = plan.hosts[0].keys.clone();
    let (path, _) = w.write_signed("p", &plan);
    let out = w.apply(&path, &[], &[]);
    assert_eq!(code(&out), 23, "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = plan.hosts[0].keys[0].fingerprint().unwrap();
    let seen = HostKey::parse(&w.host("web-2").host_key)
        .unwrap()
        .fingerprint()
        .unwrap();
    assert!(stderr.contains("host key mismatch"), "{stderr}");
    assert!(
        stderr.contains(&expected) && stderr.contains(&seen),
        "{stderr}"
    );
    assert!(w.host("web-2").commands().is_empty(), "web-2 got commands");
    assert_nothing_ran(&w, &plan);
    assert!(
        !w.host("web-1")
            .home
            .join(".kamal/writ/hey-production/lock")
            .exists()
    );
}

#[test]
fn unpinned_host_key_algorithm_reaches_no_host() {
    let w = World::new(1);
    let mut plan = marker_plan(&w, "unpinned");
    let other = keygen(&w.dir.path().join("unrelated_ecdsa"), "ecdsa", "");
    plan.hosts[0].keys = vec![HostKey::parse(&other).unwrap()];
    let (path, _) = w.write_signed("p", &plan);
    let out = w.apply(&path, &[], &[]);
    assert_eq!(code(&out), 23, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no key of a pinned algorithm"),
        "{}",
        text(&out)
    );
    assert!(w.host("web-1").commands().is_empty());
}

/// A listener that counts TCP accepts, standing in for a host.
fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        for _ in l.incoming() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, n)
}

#[test]
fn plan_failing_verification_opens_no_tcp_connection() {
    let w = World::new(1);
    let (port, accepts) = counting_listener();
    let mut plan = marker_plan(&w, "unverified");
    plan.hosts[0].port = port;
    let (path, _) = w.write_signed("p", &plan);
    // Only one of the two required signatures.
    std::fs::remove_file(w.dir.path().join("p.plan.sigs/bob.sig")).unwrap();
    let out = w.apply(&path, &[], &[]);
    assert_eq!(code(&out), 10, "{}", text(&out));
    // Edited after signing.
    let (path, _) = w.write_signed("q", &plan);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(10).position(|x| x == b"unverified").unwrap();
    bytes[at] = b'U';
    std::fs::write(&path, bytes).unwrap();
    let out = w.apply(&path, &[], &[]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    // A missing secret also fails before the first connection.
    let mut secret_plan = plan.clone();
    secret_plan.phases[0].hosts[0].steps[0].stdin = Some(writ_exec::plan::Stdin::Secret(
        "WRIT_TEST_MISSING_SECRET".into(),
    ));
    let (path, _) = w.write_signed("s", &secret_plan);
    let out = w.apply(&path, &[], &[]);
    assert_eq!(code(&out), 26, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WRIT_TEST_MISSING_SECRET"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(accepts.load(Ordering::SeqCst), 0);
    // Sanity: the listener does count a connection.
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(accepts.load(Ordering::SeqCst), 1);
}

fn applied(w: &World, plan: &Plan, name: &str) -> Sha256Digest {
    let (path, id) = w.write_signed(name, plan);
    let out = w.apply(&path, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    id
}

fn next(plan: &Plan, prev: Sha256Digest, tag: &str, w: &World) -> Plan {
    let mut p = marker_plan(w, tag);
    p.serial = plan.serial + 1;
    p.previous = Previous::Plan(prev);
    p
}

#[test]
fn stale_replayed_and_genesis_plans_are_refused_with_their_own_codes() {
    let w = World::new(1);
    let p1 = marker_plan(&w, "one");
    let id1 = applied(&w, &p1, "p1");
    let p2 = next(&p1, id1, "two", &w);
    let id2 = applied(&w, &p2, "p2");
    let p3 = next(&p2, id2, "three", &w);
    let id3 = applied(&w, &p3, "p3");
    let ran = || std::fs::read_to_string(w.host("web-1").home.join("ran.txt")).unwrap();
    assert_eq!(ran(), "one\ntwo\nthree\n");

    // Stale: follows a plan the host never applied.
    let stale = next(&p3, Sha256Digest([5; 32]), "stale", &w);
    let (path, _) = w.write_signed("stale", &stale);
    let out = w.apply(&path, &[], &[]);
    assert_eq!(code(&out), 28, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stale plan") && err.contains(&id3.hex()),
        "{err}"
    );
    assert!(err.contains(&Sha256Digest([5; 32]).hex()), "{err}");

    // Replay: the older signed plan p2 again.
    let out = w.apply(&w.dir.path().join("p2.plan"), &[], &[]);
    assert_eq!(code(&out), 29, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("replayed plan"));

    // Genesis on a used host.
    let genesis = marker_plan(&w, "genesis-again");
    let (path, _) = w.write_signed("g", &genesis);
    let out = w.apply(&path, &[], &[]);
    assert_eq!(code(&out), 30, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("genesis plan refused"));

    assert_eq!(ran(), "one\ntwo\nthree\n", "nothing else ran");
    assert!(
        !w.host("web-1")
            .home
            .join(".kamal/writ/hey-production/lock")
            .exists()
    );
}

#[test]
fn expired_plan_is_refused_before_connecting() {
    let w = World::new(1);
    let mut plan = marker_plan(&w, "expired");
    plan.expires = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - 10).unwrap();
    plan.created = jiff::Timestamp::from_second(plan.expires.as_second() - 100).unwrap();
    let (path, _) = w.write_signed("p", &plan);
    let out = w.apply(&path, &[], &[]);
    assert_eq!(code(&out), 15, "{}", text(&out));
    assert!(w.host("web-1").commands().is_empty());
}

#[test]
fn held_lock_refuses_shows_holder_and_force_release_is_audited() {
    let w = World::new(2);
    let plan = marker_plan(&w, "locked");
    let lock = w.host("web-2").home.join(".kamal/writ/hey-production/lock");
    std::fs::create_dir_all(&lock).unwrap();
    std::fs::write(
        lock.join("info"),
        "owner=github:mallory run 99\nplan=abc\ntime=2026-12-01T00:00:00Z\n",
    )
    .unwrap();
    // As if another executor (the same SSH user) had taken it.
    let owned = std::process::Command::new("chown")
        .args(["-R", writ_tests::sshd::TEST_USER])
        .arg(w.host("web-2").home.join(".kamal"))
        .status()
        .unwrap();
    assert!(owned.success());
    let (path, _) = w.write_signed("p", &plan);
    let out = w.apply(&path, &[], &[]);
    assert_eq!(code(&out), 27, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("held by github:mallory run 99")
            && String::from_utf8_lossy(&out.stderr).contains("hint: wait for that run"),
        "{}",
        text(&out)
    );
    assert_nothing_ran(&w, &plan);
    // web-1's lock, taken during preflight, was given back.
    assert!(
        !w.host("web-1")
            .home
            .join(".kamal/writ/hey-production/lock")
            .exists()
    );

    let mut args: Vec<String> = vec!["lock".into(), "status".into()];
    args.extend(w.trust_args(&path));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let status = w.writ_exec(&refs, &[]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains("web-2: lock held by github:mallory"));

    args[1] = "release".into();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = w.writ_exec(&refs, &[]);
    assert_eq!(code(&refused), 33, "{}", text(&refused));
    assert!(lock.exists());
    args.push("--force".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let forced = w.writ_exec(&refs, &[]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(!lock.exists());
    let audit = std::fs::read_to_string(w.audit_file()).unwrap();
    assert!(
        audit.contains("lock.release.force") && audit.contains("mallory"),
        "{audit}"
    );
    let host_log =
        std::fs::read_to_string(w.host("web-2").home.join(".kamal/hey-production-audit.log"))
            .unwrap();
    assert!(host_log.contains("FORCE-released"), "{host_log}");

    let out = w.apply(&path, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn fish_login_shell_is_refused_before_any_plan_step() {
    let user = "writfish";
    writ_tests::sshd::ensure_user(user, fish());
    let w = World::new(1);
    let mut plan = marker_plan(&w, "fish");
    plan.hosts[0].user = user.into();
    let (path, _) = w.write_signed("p", &plan);
    let out = w.apply(&path, &[], &[]);
    assert_eq!(code(&out), 25, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a POSIX shell"), "{err}");
    assert_eq!(
        w.host("web-1").commands(),
        vec![state::PROBE_COMMAND.to_owned()]
    );
}

fn fish() -> &'static str {
    ["/usr/bin/fish", "/bin/fish"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("fish is installed (scripts/ci-deps.sh)")
}
