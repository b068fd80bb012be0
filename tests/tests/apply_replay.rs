//! `writ-exec apply` against real sshd hosts: exact byte-for-byte replay across phases, the
//! executor protocol around it, dry run, and the plan chain across runs.
#![allow(clippy::unwrap_used)]

use writ_exec::plan::{Plan, Previous, Sha256Digest, Step, Strategy};
use writ_exec::state;
use writ_tests::world::{World, phase, step, text};

/// Plan commands of `host` in plan order.
fn plan_lines(plan: &Plan, host: &str) -> Vec<String> {
    plan.phases
        .iter()
        .flat_map(|p| &p.hosts)
        .filter(|h| h.host == host)
        .flat_map(|h| h.steps.iter().map(|s| s.command.clone()))
        .collect()
}

fn protocol(plan: &Plan, id: Sha256Digest) -> Vec<String> {
    vec![
        state::PROBE_COMMAND.to_owned(),
        state::acquire_command(plan, id),
        state::recorder_command(plan),
        state::finish_command(plan, id),
        state::release_command(plan),
        state::status_command(plan, id),
    ]
}

fn three_host_plan(w: &World) -> Plan {
    let mut p = w.plan();
    let tricky: Vec<Step> = vec![
        step("printf '%s\\n' \"a  b\" 'it'\"'\"'s' \"$HOME\" > quoted.txt"),
        step("echo phase1 >> ran.txt"),
        step("cat <<'EOF' >> ran.txt\nmulti  line\n\n  indented $NOT_EXPANDED\nEOF"),
    ];
    p.phases = vec![
        phase(
            "prepare",
            Strategy::Parallel,
            &[
                ("web-1", tricky.clone()),
                ("web-2", tricky.clone()),
                ("web-3", tricky),
            ],
        ),
        phase(
            "boot",
            Strategy::Rolling { limit: 1, wait: 0 },
            &[
                ("web-3", vec![step("echo boot-3 >> ran.txt")]),
                ("web-1", vec![step("echo boot-1 >> ran.txt"), step("true")]),
            ],
        ),
    ];
    p
}

#[test]
fn three_hosts_two_phases_replay_every_command_byte_for_byte() {
    let w = World::new(3);
    let plan = three_host_plan(&w);
    let (path, id) = w.write_signed("p1", &plan);
    let out = w.apply(&path, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));

    let proto = protocol(&plan, id);
    for h in &w.hosts {
        let logged = h.commands();
        // Exactly the plan's lines, in order, once logged protocol commands are set aside...
        let steps: Vec<String> = logged
            .iter()
            .filter(|c| !proto.contains(c))
            .cloned()
            .collect();
        assert_eq!(steps, plan_lines(&plan, &h.name), "host {}", h.name);
        // ...and those protocol commands are the documented ones, in their places.
        assert_eq!(logged[0], state::PROBE_COMMAND, "{}", h.name);
        assert_eq!(logged[1], state::acquire_command(&plan, id));
        assert_eq!(logged.last().unwrap(), &state::finish_command(&plan, id));
        assert_eq!(
            logged
                .iter()
                .filter(|c| **c == state::recorder_command(&plan))
                .count(),
            1
        );
        assert_eq!(logged.len(), steps.len() + 4, "{logged:#?}");
        let quoted = std::fs::read_to_string(h.home.join("quoted.txt")).unwrap();
        // `$HOME` is the host user's (the test user's is /nonexistent): expanded there.
        assert_eq!(quoted, "a  b\nit's\n/nonexistent\n");
        let ran = std::fs::read_to_string(h.home.join("ran.txt")).unwrap();
        assert!(
            ran.starts_with("phase1\nmulti  line\n\n  indented $NOT_EXPANDED\n"),
            "{ran}"
        );
        let record =
            std::fs::read_to_string(h.home.join(".kamal/writ/hey-production/applied")).unwrap();
        assert_eq!(record, format!("serial=1 plan={}\n", id.hex()));
        assert!(!h.home.join(".kamal/writ/hey-production/lock").exists());
        let audit =
            std::fs::read_to_string(h.home.join(".kamal/hey-production-audit.log")).unwrap();
        assert!(
            audit.contains(&id.hex()) && audit.contains("applied"),
            "{audit}"
        );
    }
    // The audit log has one record per step (command sha256, exit code, host key) and one
    // per protocol command, for every host.
    let records: Vec<serde_json::Value> = std::fs::read_to_string(w.audit_file())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sha = |c: &str| Sha256Digest::of(c.as_bytes()).hex();
    for h in &w.hosts {
        let of = |action: &str| -> Vec<&serde_json::Value> {
            records
                .iter()
                .filter(|r| r["host.name"] == h.name.as_str() && r["event.action"] == action)
                .collect()
        };
        let steps: Vec<String> = of("step")
            .iter()
            .map(|r| {
                r["process.command_line.sha256"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let want: Vec<String> = plan_lines(&plan, &h.name).iter().map(|c| sha(c)).collect();
        assert_eq!(steps, want, "{}", h.name);
        for r in of("step") {
            assert_eq!(r["process.exit_code"], 0);
            assert_eq!(r["writ.plan.id"], id.hex().as_str());
            assert!(r["writ.host_key"].as_str().unwrap().starts_with("SHA256:"));
        }
        let proto: Vec<String> = of("protocol")
            .iter()
            .map(|r| {
                r["process.command_line.sha256"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let mut want = vec![
            sha(state::PROBE_COMMAND),
            sha(&state::acquire_command(&plan, id)),
            sha(&state::recorder_command(&plan)),
            sha(&state::finish_command(&plan, id)),
        ];
        let mut proto_sorted = proto.clone();
        proto_sorted.sort();
        want.sort();
        assert_eq!(proto_sorted, want, "{}", h.name);
    }
    assert_eq!(records[0]["event.action"], "run.start");
    assert_eq!(records[0]["writ.signers"].as_array().unwrap().len(), 2);
    assert_eq!(records.last().unwrap()["event.action"], "run.end");
    assert_eq!(records.last().unwrap()["event.outcome"], "success");

    // Rolling phase ran web-3 before web-1 (its listed order).
    assert!(
        std::fs::read_to_string(w.host("web-3").home.join("ran.txt"))
            .unwrap()
            .ends_with("boot-3\n")
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("web-1") && stdout.contains("5/5") && stdout.contains("ok"),
        "{stdout}"
    );

    // The same plan again: every host has applied it, nothing runs.
    let before: Vec<usize> = w.hosts.iter().map(|h| h.commands().len()).collect();
    let again = w.apply(&path, &[], &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already applied"));
    for (h, n) in w.hosts.iter().zip(before) {
        let logged = h.commands();
        assert!(
            logged[n..].iter().all(|c| proto.contains(c)),
            "{:#?}",
            &logged[n..]
        );
    }

    // The next plan in the chain runs; the host records follow it.
    let mut next = three_host_plan(&w);
    next.serial = 2;
    next.previous = Previous::Plan(id);
    next.phases.truncate(1);
    next.phases[0].hosts.truncate(1);
    next.phases[0].hosts[0].steps = vec![step("echo serial-2 >> ran.txt")];
    let (path2, id2) = w.write_signed("p2", &next);
    let out = w.apply(&path2, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let record = std::fs::read_to_string(
        w.host("web-1")
            .home
            .join(".kamal/writ/hey-production/applied"),
    )
    .unwrap();
    assert_eq!(record, format!("serial=2 plan={}\n", id2.hex()));
}

#[test]
fn dry_run_connects_and_checks_but_runs_no_plan_step() {
    let w = World::new(2);
    let plan = three_host_plan_two(&w);
    let (path, id) = w.write_signed("p", &plan);
    let out = w.apply(&path, &["--dry-run"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("would run: echo hi > dry.txt"), "{stdout}");
    for h in &w.hosts {
        assert_eq!(
            h.commands(),
            vec![
                state::PROBE_COMMAND.to_owned(),
                state::status_command(&plan, id)
            ]
        );
        assert!(!h.home.join("dry.txt").exists());
    }
    assert!(!w.audit_file().exists());
}

fn three_host_plan_two(w: &World) -> Plan {
    let mut p = w.plan();
    p.phases = vec![phase(
        "only",
        Strategy::PrimaryFirst,
        &[
            ("web-1", vec![step("echo hi > dry.txt")]),
            ("web-2", vec![step("echo hi > dry.txt")]),
        ],
    )];
    p
}

#[test]
fn primary_first_and_rolling_groups_keep_their_order_and_wait() {
    let w = World::new(3);
    // A directory every host (and the test user) can write to.
    let shared = w.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let d = shared.display().to_string();
    let mut p = w.plan();
    let after_primary = format!("test -e {d}/primary-done");
    let group1 = |h: &str| format!("touch {d}/g1-{h}");
    let after_group1 = format!("test -e {d}/g1-web-1 && test -e {d}/g1-web-2");
    p.phases = vec![
        phase(
            "primary",
            Strategy::PrimaryFirst,
            &[
                (
                    "web-1",
                    vec![step(&format!("sleep 0.3 && touch {d}/primary-done"))],
                ),
                ("web-2", vec![step(&after_primary)]),
                ("web-3", vec![step(&after_primary)]),
            ],
        ),
        phase(
            "rolling",
            Strategy::Rolling { limit: 2, wait: 1 },
            &[
                ("web-1", vec![step(&group1("web-1"))]),
                ("web-2", vec![step(&group1("web-2"))]),
                ("web-3", vec![step(&after_group1)]),
            ],
        ),
    ];
    let (path, _) = w.write_signed("p", &p);
    let out = w.apply(&path, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    // The rolling wait: web-3's step started at least 1 s after group 1 ended.
    let audit = std::fs::read_to_string(w.audit_file()).unwrap();
    let steps: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event.action"] == "step" && r["writ.phase"] == "rolling")
        .collect();
    let start = |r: &serde_json::Value| {
        r["event.start"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond()
    };
    let end = |r: &serde_json::Value| start(r) + r["event.duration_ms"].as_i64().unwrap();
    let g1_end = steps
        .iter()
        .filter(|r| r["host.name"] != "web-3")
        .map(end)
        .max()
        .unwrap();
    let g2 = steps.iter().find(|r| r["host.name"] == "web-3").unwrap();
    assert!(start(g2) - g1_end >= 1000, "{steps:#?}");
}
