//! Golden plans and reviews: every good fixture config (tests/fixtures/good/*) and the
//! CLI-driven cases (image digest, rollback, prune, one-offs, …) planned through the real
//! binary, with insta snapshots of the plan text and of the markdown review of a change.
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::path::Path;

use support::{copy_dir, example_app, plan, read_plan, workspace};

/// Destinations of a fixture: one per `config/deploy.<destination>.yml`, `production` if none.
fn destinations(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root.join("config"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let d = name.strip_prefix("deploy.")?.strip_suffix(".yml")?;
            (!d.is_empty()).then(|| d.to_owned())
        })
        .collect();
    out.sort();
    if out.is_empty() {
        out.push("production".into());
    }
    out
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots/plan");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

/// For each good fixture and destination: the genesis plan at version 3f2a1c9, and the
/// markdown review of replanning it at 9b0e4d2.
#[test]
fn good_fixtures_plan_and_review_snapshots() {
    let fixtures = workspace().join("tests/fixtures/good");
    let mut names: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| fixtures.join(n).join("config/deploy.yml").is_file())
        .collect();
    names.sort();
    assert!(
        names.len() >= 12,
        "expected at least 12 good fixtures, found {names:?}"
    );
    let _guard = settings().bind_to_scope();
    for name in names {
        for destination in destinations(&fixtures.join(&name)) {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(&fixtures.join(&name), dir.path());
            let _ = std::fs::remove_dir_all(dir.path().join("plans"));
            // A destination needs its overlay file (Kamal's rule); single-file fixtures get an
            // empty one.
            let overlay = dir.path().join(format!("config/deploy.{destination}.yml"));
            if !overlay.exists() {
                std::fs::write(&overlay, "{}\n").unwrap();
            }
            let out = support::writ()
                .args([
                    "plan",
                    "deploy",
                    "-d",
                    &destination,
                    "--version",
                    "3f2a1c9",
                    "--config",
                ])
                .arg(dir.path())
                .output()
                .unwrap();
            if !out.status.success() {
                // A config the loader accepts but the operation refuses: its error is the
                // golden output (a reviewed, located message), not a plan.
                insta::assert_snapshot!(
                    format!("{name}.{destination}.error"),
                    format!(
                        "exit {:?}\n{}",
                        out.status.code(),
                        String::from_utf8_lossy(&out.stderr)
                    )
                );
                continue;
            }
            insta::assert_snapshot!(
                format!("{name}.{destination}.plan"),
                read_plan(dir.path(), &destination)
            );
            let (review, _) = plan(
                dir.path(),
                &[
                    "deploy",
                    "-d",
                    &destination,
                    "--version",
                    "9b0e4d2",
                    "--format",
                    "markdown",
                ],
                0,
            );
            insta::assert_snapshot!(format!("{name}.{destination}.review.md"), review);
        }
    }
}

/// Operations and options the CLI adds on top of a config, on the example app: each planned
/// after a deploy of 3f2a1c9, snapshotting the plan and the markdown review against it.
#[test]
fn cli_driven_plans_and_reviews_on_the_example_app() {
    let digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let cases: &[(&str, &[&str])] = &[
        (
            "image-digest",
            &["deploy", "--version", "9b0e4d2", "--image-digest", digest],
        ),
        ("rollback", &["rollback", "2e1f0a7"]),
        ("prune", &["prune", "--version", "3f2a1c9"]),
        ("redeploy", &["redeploy", "--version", "9b0e4d2"]),
        ("setup", &["setup", "--version", "3f2a1c9"]),
        ("app-stop", &["app", "stop", "--version", "3f2a1c9"]),
        ("proxy-reboot", &["proxy", "reboot", "--version", "3f2a1c9"]),
        (
            "server-exec",
            &[
                "server",
                "exec",
                "--roles",
                "web",
                "--version",
                "3f2a1c9",
                "--",
                "df -h /",
                "uptime | tee -a /tmp/x",
            ],
        ),
        (
            "app-exec",
            &[
                "app",
                "exec",
                "--version",
                "3f2a1c9",
                "--",
                "bin/hey --migrate",
            ],
        ),
    ];
    let _guard = settings().bind_to_scope();
    for (name, args) in cases {
        let a = example_app();
        plan(
            a.path(),
            &["deploy", "-d", "production", "--version", "3f2a1c9"],
            0,
        );
        let mut full = args.to_vec();
        // -d goes before `--` (after it everything is a command line).
        let at = full.iter().position(|a| *a == "--").unwrap_or(full.len());
        full.splice(at..at, ["-d", "production", "--format", "markdown"]);
        let (review, _) = plan(a.path(), &full, 0);
        insta::assert_snapshot!(
            format!("cli-{name}.production.plan"),
            read_plan(a.path(), "production")
        );
        insta::assert_snapshot!(format!("cli-{name}.production.review.md"), review);
    }
}

/// The terminal review of the README's main job (example app, production, new version).
#[test]
fn terminal_review_of_a_version_change_snapshot() {
    let a = example_app();
    plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "3f2a1c9"],
        0,
    );
    let (review, _) = plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "9b0e4d2"],
        0,
    );
    let _guard = settings().bind_to_scope();
    insta::assert_snapshot!("example.production.review.txt", review);
}
