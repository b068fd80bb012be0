//! `writ plan` end to end through the real binary: chain, determinism, `--check`, secrets,
//! git provenance, colour, exit codes, and the committed example plans.
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::path::Path;
use std::process::Command;

use support::{EPOCH, example_app, plan, read_plan, workspace, writ};
use writ_exec::plan::{Previous, decode, plan_id};

#[test]
fn planning_twice_and_from_another_directory_gives_identical_bytes() {
    let a = example_app();
    plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "3f2a1c9"],
        0,
    );
    let first = read_plan(a.path(), "production");

    // A second copy, planned with a relative --config from its own directory.
    let b = example_app();
    let out = writ()
        .current_dir(b.path())
        .args(["plan", "deploy", "-d", "production", "--version", "3f2a1c9"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_plan(b.path(), "production"), first);

    // And from an unrelated working directory with an absolute --config.
    let c = example_app();
    let out = writ()
        .current_dir("/")
        .args([
            "plan",
            "deploy",
            "-d",
            "production",
            "--version",
            "3f2a1c9",
            "--config",
        ])
        .arg(c.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_plan(c.path(), "production"), first);
}

#[test]
fn replanning_unchanged_inputs_keeps_the_file_and_says_up_to_date() {
    let a = example_app();
    plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "3f2a1c9"],
        0,
    );
    let first = read_plan(a.path(), "production");
    let (stdout, stderr) = plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "3f2a1c9"],
        0,
    );
    assert!(stderr.contains("plan is up to date"), "{stderr}");
    assert!(
        stdout.is_empty(),
        "no review for an unchanged plan: {stdout}"
    );
    assert_eq!(read_plan(a.path(), "production"), first);
}

#[test]
fn a_new_version_chains_onto_the_plan_it_replaces() {
    let a = example_app();
    plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "3f2a1c9"],
        0,
    );
    let first = read_plan(a.path(), "production");
    let p1 = decode(first.as_bytes()).unwrap();
    assert_eq!((p1.serial, p1.previous), (1, Previous::Genesis));
    assert_eq!(p1.created.as_second().to_string(), EPOCH);
    assert_eq!(p1.expires.as_second() - p1.created.as_second(), 72 * 3600);

    let (stdout, _) = plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "9b0e4d2"],
        0,
    );
    let second = read_plan(a.path(), "production");
    let p2 = decode(second.as_bytes()).unwrap();
    assert_eq!(p2.serial, 2);
    assert_eq!(p2.previous, Previous::Plan(plan_id(first.as_bytes())));
    // The summary folds the version change over every app host.
    assert!(
        stdout.contains("~ `3f2a1c9` → `9b0e4d2` in 32 commands on 4 hosts"),
        "summary missing the folded version change:\n{stdout}"
    );
    assert!(stdout.contains("\n-version 3f2a1c9\n"), "{stdout}");
    assert!(stdout.contains("\n+version 9b0e4d2\n"), "{stdout}");
}

#[test]
fn check_passes_when_current_and_catches_a_one_character_config_change() {
    let a = example_app();
    plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "3f2a1c9"],
        0,
    );
    let committed = read_plan(a.path(), "production");
    let (_, stderr) = plan(a.path(), &["deploy", "-d", "production", "--check"], 0);
    assert!(stderr.contains("plan is current"), "{stderr}");

    let file = a.path().join("config/deploy.yml");
    let yml = std::fs::read_to_string(&file).unwrap();
    assert!(yml.contains("GREETING: \"hey there\""));
    std::fs::write(
        &file,
        yml.replace("GREETING: \"hey there\"", "GREETING: \"hey therE\""),
    )
    .unwrap();
    let (stdout, stderr) = plan(a.path(), &["deploy", "-d", "production", "--check"], 3);
    assert!(stderr.contains("is stale"), "{stderr}");
    assert!(
        stderr.contains("source config"),
        "names the config digest: {stderr}"
    );
    assert!(
        stderr.contains("to change"),
        "names the command change: {stderr}"
    );
    assert!(
        stdout.contains("hey therE"),
        "the diff shows the new value: {stdout}"
    );
    assert_eq!(
        read_plan(a.path(), "production"),
        committed,
        "--check writes nothing"
    );
}

#[test]
fn check_names_a_version_change_and_a_missing_plan() {
    let a = example_app();
    plan(a.path(), &["deploy", "-d", "production", "--check"], 3);
    plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "3f2a1c9"],
        0,
    );
    let (_, stderr) = plan(
        a.path(),
        &[
            "deploy",
            "-d",
            "production",
            "--check",
            "--version",
            "3f2a1c8",
        ],
        3,
    );
    assert!(stderr.contains("version 3f2a1c9 → 3f2a1c8"), "{stderr}");
    let (_, stderr) = plan(a.path(), &["redeploy", "-d", "production", "--check"], 3);
    assert!(stderr.contains("operation deploy → redeploy"), "{stderr}");
}

#[test]
fn no_secret_value_reaches_the_plan_or_the_review() {
    let secrets = [
        ("KAMAL_REGISTRY_PASSWORD", "s3cret-registry-VALUE-91x"),
        ("HEY_API_TOKEN", "tok-VALUE-must-not-leak-77"),
    ];
    let a = example_app();
    let mut outputs = String::new();
    for (version, format) in [("3f2a1c9", "terminal"), ("9b0e4d2", "markdown")] {
        let mut cmd = writ();
        for (k, v) in secrets {
            cmd.env(k, v);
        }
        let out = cmd
            .args([
                "plan",
                "deploy",
                "-d",
                "production",
                "--version",
                version,
                "--format",
                format,
            ])
            .arg("--config")
            .arg(a.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        outputs.push_str(&String::from_utf8_lossy(&out.stdout));
        outputs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let plan_text = read_plan(a.path(), "production");
    assert!(
        plan_text.contains("secret KAMAL_REGISTRY_PASSWORD\n"),
        "{plan_text}"
    );
    assert!(plan_text.contains("secret HEY_API_TOKEN\n"), "{plan_text}");
    for (name, value) in secrets {
        assert!(!plan_text.contains(value), "{name}'s value is in the plan");
        assert!(!outputs.contains(value), "{name}'s value is in the output");
        // Not even a fragment of it.
        assert!(!plan_text.contains(&value[..10]) && !outputs.contains(&value[..10]));
    }
}

#[test]
fn colour_follows_no_color_and_clicolor_force() {
    let a = example_app();
    let (plain, _) = plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "v1"],
        0,
    );
    assert!(!plain.contains('\u{1b}'), "NO_COLOR output has escapes");
    assert!(plain.contains("+phase "), "{plain}");
    let out = writ()
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .args([
            "plan",
            "deploy",
            "-d",
            "production",
            "--version",
            "v2",
            "--config",
        ])
        .arg(a.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let coloured = String::from_utf8(out.stdout).unwrap();
    assert!(
        coloured.contains("\u{1b}[31m-"),
        "removed lines are red: {coloured}"
    );
    assert!(coloured.contains("\u{1b}[32m+"), "added lines are green");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_AUTHOR_DATE", "2026-11-30T10:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-11-30T10:00:00Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn in_git_the_version_commit_and_created_come_from_head() {
    let a = example_app();
    git(a.path(), &["init", "-q", "-b", "main"]);
    git(a.path(), &["add", "."]);
    git(a.path(), &["commit", "-q", "-m", "config"]);
    let head = git(a.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    let out = writ()
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["plan", "deploy", "-d", "staging", "--config"])
        .arg(a.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = decode(read_plan(a.path(), "staging").as_bytes()).unwrap();
    assert_eq!(p.version, head[..7]);
    assert_eq!(p.source.commit.as_deref(), Some(head.as_str()));
    assert_eq!(p.created.to_string(), "2026-11-30T10:00:00Z");

    // Commit the plan, change the config, and chain onto the committed plan by git ref even
    // though the working copy holds another plan.
    git(a.path(), &["add", "plans"]);
    git(a.path(), &["commit", "-q", "-m", "plan"]);
    let committed = read_plan(a.path(), "staging");
    std::fs::write(a.path().join("plans/staging.plan"), "garbage\n").unwrap();
    plan(
        a.path(),
        &[
            "deploy",
            "-d",
            "staging",
            "--version",
            "9b0e4d2",
            "--previous-ref",
            "HEAD",
        ],
        0,
    );
    let p2 = decode(read_plan(a.path(), "staging").as_bytes()).unwrap();
    assert_eq!(p2.serial, 2);
    assert_eq!(p2.previous, Previous::Plan(plan_id(committed.as_bytes())));

    // An unknown ref is an error naming it.
    let (_, stderr) = plan(
        a.path(),
        &[
            "deploy",
            "-d",
            "staging",
            "--previous-ref",
            "no-such-branch",
        ],
        84,
    );
    assert!(stderr.contains("no-such-branch"), "{stderr}");
}

#[test]
fn previous_file_sets_the_chain_and_a_foreign_plan_is_refused() {
    let a = example_app();
    plan(a.path(), &["deploy", "-d", "staging", "--version", "v1"], 0);
    let staging = a.path().join("plans/staging.plan");
    let missing = a.path().join("missing.plan");
    let (_, stderr) = plan(
        a.path(),
        &[
            "deploy",
            "-d",
            "production",
            "--version",
            "v1",
            "--previous",
            missing.to_str().unwrap(),
        ],
        74,
    );
    assert!(stderr.contains("missing.plan"), "{stderr}");
    let out = writ()
        .args([
            "plan",
            "deploy",
            "-d",
            "production",
            "--version",
            "v1",
            "--previous",
        ])
        .arg(&staging)
        .arg("--config")
        .arg(a.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(83));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is for destination `staging`, not `production`"),
        "{stderr}"
    );
}

#[test]
fn exit_codes_are_documented_and_distinct() {
    let doc = std::fs::read_to_string(workspace().join("docs/exit-codes.md")).unwrap();
    let writ_section = &doc[doc.find("## writ\n").unwrap()..];
    for code in [2, 3, 74, 78, 80, 82, 83, 84] {
        assert!(
            writ_section.contains(&format!("\n| {code} |")),
            "exit {code} undocumented"
        );
    }
    let a = example_app();
    // Usage: no destination, unknown operation, exec without commands.
    plan(a.path(), &["deploy"], 2);
    plan(a.path(), &["launch", "-d", "production"], 2);
    plan(a.path(), &["server", "exec", "-d", "production"], 2);
    // Outside git without SOURCE_DATE_EPOCH: no created time.
    let out = writ()
        .env_remove("SOURCE_DATE_EPOCH")
        .args([
            "plan",
            "deploy",
            "-d",
            "production",
            "--version",
            "v1",
            "--config",
        ])
        .arg(a.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(82));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint: commit the config to git"));
    // A bad SOURCE_DATE_EPOCH.
    let out = writ()
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .args([
            "plan",
            "deploy",
            "-d",
            "production",
            "--version",
            "v1",
            "--config",
        ])
        .arg(a.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(82));
    // No version and no git.
    let (_, stderr) = plan(a.path(), &["deploy", "-d", "production"], 82);
    assert!(stderr.contains("--version"), "{stderr}");
    // A malformed image digest.
    plan(
        a.path(),
        &[
            "deploy",
            "-d",
            "production",
            "--version",
            "v1",
            "--image-digest",
            "sha256:xyz",
        ],
        80,
    );
    // A plan file that is not a plan.
    std::fs::create_dir_all(a.path().join("plans")).unwrap();
    std::fs::write(a.path().join("plans/production.plan"), "not a plan\n").unwrap();
    let (_, stderr) = plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "v1"],
        83,
    );
    assert!(stderr.contains("is not a valid plan"), "{stderr}");
    assert!(stderr.contains("caused by: plan line 1"), "{stderr}");
}

#[test]
fn out_writes_elsewhere_but_diffs_against_the_committed_plan() {
    let a = example_app();
    plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "v1"],
        0,
    );
    let committed = read_plan(a.path(), "production");
    let out_file = a.path().join("elsewhere.plan");
    let (stdout, _) = plan(
        a.path(),
        &[
            "deploy",
            "-d",
            "production",
            "--version",
            "v2",
            "--out",
            out_file.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(read_plan(a.path(), "production"), committed);
    let p = decode(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(p.previous, Previous::Plan(plan_id(committed.as_bytes())));
    assert!(stdout.contains("+version v2"), "{stdout}");
}

/// The example app's committed plans are what the planner produces from its config today.
/// Regenerate them with `scripts/plan-examples` after changing the config or the templates.
#[test]
fn committed_example_plans_are_reproduced_byte_for_byte() {
    for destination in ["production", "staging"] {
        let a = example_app();
        plan(
            a.path(),
            &["deploy", "-d", destination, "--version", "3f2a1c9"],
            0,
        );
        let committed = std::fs::read_to_string(
            workspace().join(format!("examples/hey/plans/{destination}.plan")),
        )
        .unwrap();
        assert!(
            read_plan(a.path(), destination) == committed,
            "examples/hey/plans/{destination}.plan is stale: run scripts/plan-examples"
        );
    }
}

#[test]
fn templates_override_is_recorded_and_check_catches_a_template_change() {
    let a = example_app();
    plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "3f2a1c9"],
        0,
    );
    let builtin = read_plan(a.path(), "production");

    // The repository's templates/ are the built-in ones: same digest, same plan.
    let templates = a.path().join("templates");
    support::copy_dir(&workspace().join("templates"), &templates);
    let dir = templates.to_str().unwrap();
    let (_, stderr) = plan(
        a.path(),
        &[
            "deploy",
            "-d",
            "production",
            "--version",
            "3f2a1c9",
            "--templates",
            dir,
        ],
        0,
    );
    assert!(stderr.contains("plan is up to date"), "{stderr}");
    assert_eq!(read_plan(a.path(), "production"), builtin);

    // A template edit that renders the same commands still makes the committed plan stale.
    let app = templates.join("app.j2");
    let mut text = std::fs::read_to_string(&app).unwrap();
    text.push_str("{# reviewed #}\n");
    std::fs::write(&app, text).unwrap();
    let (_, stderr) = plan(
        a.path(),
        &["deploy", "-d", "production", "--check", "--templates", dir],
        3,
    );
    assert!(stderr.contains("source templates sha256:"), "{stderr}");
    assert!(
        !stderr.contains("commands:"),
        "no command changed: {stderr}"
    );
}

#[test]
fn check_names_a_boot_limit_change_as_a_strategy_change() {
    let a = example_app();
    plan(
        a.path(),
        &["deploy", "-d", "production", "--version", "3f2a1c9"],
        0,
    );
    let file = a.path().join("config/deploy.production.yml");
    let yml = std::fs::read_to_string(&file).unwrap();
    assert!(yml.contains("limit: 50%"));
    std::fs::write(&file, yml.replace("limit: 50%", "limit: 1")).unwrap();
    let (stdout, stderr) = plan(a.path(), &["deploy", "-d", "production", "--check"], 3);
    assert!(
        stderr.contains("phase boot strategy rolling limit=2 wait=5 → rolling limit=1 wait=5"),
        "{stderr}"
    );
    assert!(stdout.contains("(was rolling limit=2 wait=5)"), "{stdout}");
}
