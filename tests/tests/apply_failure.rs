//! Failures mid-run: a failing step stops everything new and is reported by host, step and
//! exit code; an sshd killed mid-apply is resumed by a rerun without repeating a completed
//! step; the audit chain of real runs verifies and breaks when any line is edited.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use writ_exec::plan::Strategy;
use writ_tests::world::{World, phase, step, text, writ_exec_bin};

#[test]
fn failing_step_stops_later_phases_and_the_report_names_host_step_and_exit_code() {
    let w = World::new(3);
    let mut plan = w.plan();
    // web-2's first step is still running when web-1 fails: it waits until the executor has
    // recorded web-1's failure in the audit log (which it does just before it stops new work).
    let in_flight = format!(
        "until grep -q '\"process.exit_code\":7' {}; do sleep 0.05; done; echo slow-done >> ran.txt",
        w.audit_file().display()
    );
    plan.phases = vec![
        phase(
            "first",
            Strategy::Parallel,
            &[
                (
                    "web-1",
                    vec![
                        step("echo a1 >> ran.txt"),
                        step("echo boom >&2; exit 7"),
                        step("echo never >> ran.txt"),
                    ],
                ),
                ("web-2", vec![step(&in_flight), step("echo b2 >> ran.txt")]),
                ("web-3", vec![step("echo c1 >> ran.txt")]),
            ],
        ),
        phase(
            "second",
            Strategy::Parallel,
            &[
                ("web-1", vec![step("echo phase2 >> ran.txt")]),
                ("web-2", vec![step("echo phase2 >> ran.txt")]),
                ("web-3", vec![step("echo phase2 >> ran.txt")]),
            ],
        ),
    ];
    let (path, _) = w.write_signed("p", &plan);
    let out = w.apply(&path, &[], &[]);
    assert_eq!(out.status.code(), Some(20), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("host `web-1`: step 2 in phase `first` failed with exit code 7"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAILED at step 2: exit code 7"), "{stdout}");
    assert!(stdout.contains("| boom"), "{stdout}");
    let ran = |h: &str| std::fs::read_to_string(w.host(h).home.join("ran.txt")).unwrap_or_default();
    assert_eq!(ran("web-1"), "a1\n");
    // web-2's in-flight step finished; its next one never started.
    assert_eq!(ran("web-2"), "slow-done\n", "{}", text(&out));
    assert_eq!(ran("web-3"), "c1\n");
    for h in &w.hosts {
        assert!(
            !h.commands()
                .iter()
                .any(|c| c.contains("phase2") || c.contains("never"))
        );
        assert!(
            !h.home.join(".kamal/writ/hey-production/lock").exists(),
            "{}",
            h.name
        );
        assert!(!h.home.join(".kamal/writ/hey-production/applied").exists());
    }

    // The audit chain of this real run verifies...
    let audit = w.audit_file();
    let ok = w.writ_exec(&["audit", "verify", audit.to_str().unwrap()], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
    let original = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 6, "{original}");
    assert!(original.contains("\"process.exit_code\":7"));
    // ...and breaks when any one line is edited.
    let copy = w.dir.path().join("edited.jsonl");
    for i in 0..lines.len() {
        let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        edited[i] = edited[i].replacen("\"event.action\":\"", "\"event.action\":\"x", 1);
        assert_ne!(edited[i], lines[i]);
        std::fs::write(&copy, edited.join("\n") + "\n").unwrap();
        let bad = w.writ_exec(&["audit", "verify", copy.to_str().unwrap()], &[]);
        assert_eq!(bad.status.code(), Some(31), "line {i}: {}", text(&bad));
        assert!(String::from_utf8_lossy(&bad.stderr).contains(&format!(":{}:", i + 1)));
    }
}

#[test]
fn sshd_killed_mid_apply_then_rerun_completes_without_repeating_a_completed_step() {
    let mut w = World::new(1);
    let mut plan = w.plan();
    let steps = [
        step("echo 1 >> ran.txt"),
        step("echo 2 >> ran.txt"),
        step("if test -e go; then echo 3 >> ran.txt; else sleep 60; fi"),
        step("echo 4 >> ran.txt"),
    ];
    plan.phases = vec![
        phase("a", Strategy::Parallel, &[("web-1", steps[..2].to_vec())]),
        phase("b", Strategy::Parallel, &[("web-1", steps[2..].to_vec())]),
    ];
    let (path, _) = w.write_signed("p", &plan);
    let mut args: Vec<String> = vec!["apply".into()];
    args.extend(w.trust_args(&path));
    let mut child = std::process::Command::new(writ_exec_bin())
        .args(&args)
        .current_dir(w.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .env("USER", "tester")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.hosts[0].commands().contains(&steps[2].command) {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("step 3 never started\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    w.hosts[0].kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(20), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("connection"),
        "{}",
        text(&out)
    );

    w.hosts[0].restart();
    std::fs::write(w.hosts[0].home.join("go"), "").unwrap();
    let out = w.apply(&path, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let home = &w.hosts[0].home;
    assert_eq!(
        std::fs::read_to_string(home.join("ran.txt")).unwrap(),
        "1\n2\n3\n4\n"
    );
    let logged = w.hosts[0].commands();
    let count = |c: &str| logged.iter().filter(|l| *l == c).count();
    assert_eq!(count(&steps[0].command), 1, "{logged:#?}");
    assert_eq!(count(&steps[1].command), 1, "{logged:#?}");
    // Step 3 was in flight (not completed) when sshd died: it is the only one run again.
    assert_eq!(count(&steps[2].command), 2, "{logged:#?}");
    assert_eq!(count(&steps[3].command), 1, "{logged:#?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resuming"),
        "{}",
        text(&out)
    );
    let ok = w.writ_exec(&["audit", "verify", w.audit_file().to_str().unwrap()], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
}
