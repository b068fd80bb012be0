//! Run control and output: Ctrl-C lets in-flight steps finish and starts nothing new; a
//! rerun resumes; `--restart-from-step` re-runs and is audited; `--step-timeout`; `--json`.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use writ_exec::plan::Strategy;
use writ_tests::world::{World, phase, step, text, writ_exec_bin};

#[test]
fn ctrl_c_finishes_in_flight_steps_then_rerun_resumes_and_restart_is_audited() {
    let w = World::new(1);
    let mut plan = w.plan();
    let steps = vec![
        step("until test -e release; do sleep 0.05; done; echo 1 >> ran.txt"),
        step("echo 2 >> ran.txt"),
    ];
    plan.phases = vec![phase("a", Strategy::Parallel, &[("web-1", steps.clone())])];
    let (path, id) = w.write_signed("p", &plan);
    let mut args: Vec<String> = vec!["apply".into()];
    args.extend(w.trust_args(&path));
    let child = std::process::Command::new(writ_exec_bin())
        .args(&args)
        .current_dir(w.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .env("USER", "tester")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !w.hosts[0].commands().contains(&steps[0].command) {
        assert!(Instant::now() < deadline, "step 1 never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(w.hosts[0].home.join("release"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(21), "{}", text(&out));
    let home = &w.hosts[0].home;
    // The in-flight step finished and was recorded; the next one never started.
    assert_eq!(
        std::fs::read_to_string(home.join("ran.txt")).unwrap(),
        "1\n"
    );
    assert!(!w.hosts[0].commands().contains(&steps[1].command));
    assert!(!home.join(".kamal/writ/hey-production/lock").exists());
    assert_eq!(
        std::fs::read_to_string(home.join(".kamal/writ/hey-production/progress")).unwrap(),
        format!("plan={} step=1\n", id.hex())
    );

    // A rerun with --restart-from-step 1 runs step 1 again (operator's choice, audited).
    let out = w.apply(&path, &["--restart-from-step", "1"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(home.join("ran.txt")).unwrap(),
        "1\n1\n2\n"
    );
    let audit = std::fs::read_to_string(w.audit_file()).unwrap();
    assert!(audit.contains("run.restart_from_step"), "{audit}");
    let ok = w.writ_exec(&["audit", "verify", w.audit_file().to_str().unwrap()], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
}

#[test]
fn step_timeout_fails_the_step_and_json_mode_emits_events() {
    let w = World::new(1);
    let mut plan = w.plan();
    plan.phases = vec![phase(
        "a",
        Strategy::Parallel,
        &[(
            "web-1",
            vec![step("echo fast"), step("sleep 30"), step("echo never")],
        )],
    )];
    let (path, _) = w.write_signed("p", &plan);
    let t = Instant::now();
    let out = w.apply(&path, &["--step-timeout", "2", "--json"], &[]);
    assert!(
        t.elapsed() < Duration::from_secs(25),
        "timeout not enforced"
    );
    assert_eq!(out.status.code(), Some(20), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timeout after 2 s"));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        kinds.contains(&"connected") && kinds.contains(&"step_start"),
        "{kinds:?}"
    );
    let ends: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "step_end").collect();
    assert_eq!(ends.len(), 2, "{events:#?}");
    assert_eq!(ends[0]["status"], "ok");
    assert_eq!(ends[1]["status"], "timeout after 2 s");
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["hosts"][0]["result"], "failed");
    assert_eq!(summary["hosts"][0]["done"], 1);
}
