//! `writ-exec verify` as a user runs it: flags and env vars, stdout report, stderr errors and
//! one documented exit code per failure class (docs/exit-codes.md).
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn cmd() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("writ-exec"));
    c.env_remove("WRIT_ALLOWED_SIGNERS")
        .env_remove("WRIT_THRESHOLD")
        .env_remove("WRIT_DESTINATION");
    c
}

fn sample() -> (PathBuf, PathBuf) {
    let root = common::repo();
    (
        root.join("plans/sample/production.plan"),
        root.join("plans/sample/allowed_signers"),
    )
}

fn verify(plan: &Path, signers: &Path, threshold: &str, dest: &str) -> Command {
    let mut c = cmd();
    c.arg("verify")
        .arg(plan)
        .arg("--allowed-signers")
        .arg(signers)
        .args(["--threshold", threshold, "--destination", dest]);
    c
}

/// A copy of the sample in a temp dir, with `bytes` as the plan and signatures by `signers`.
fn signed_copy(dir: &Path, bytes: &[u8], signers: &[&str]) -> PathBuf {
    let plan = dir.join("production.plan");
    std::fs::write(&plan, bytes).unwrap();
    let sigs = writ_exec::signature::signatures_dir(&plan);
    std::fs::create_dir_all(&sigs).unwrap();
    for who in signers {
        let text = writ_exec::signature::sign(&common::key(who), "production", bytes).unwrap();
        std::fs::write(sigs.join(format!("{who}.sig")), text).unwrap();
    }
    plan
}

#[test]
fn verifies_the_committed_sample_and_names_the_signers() {
    let (plan, signers) = sample();
    let id = writ_exec::plan::plan_id(&std::fs::read(&plan).unwrap());
    verify(&plan, &signers, "2", "production")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!("plan {id} verified")))
        .stdout(predicate::str::contains("signed by 2 of 2 required:"))
        .stdout(predicate::str::contains("alice@example.com SHA256:"))
        .stdout(predicate::str::contains("bob@example.com SHA256:"));
}

#[test]
fn takes_its_policy_from_the_environment() {
    let (plan, signers) = sample();
    cmd()
        .arg("verify")
        .arg(&plan)
        .env("WRIT_ALLOWED_SIGNERS", &signers)
        .env("WRIT_THRESHOLD", "2")
        .env("WRIT_DESTINATION", "production")
        .assert()
        .code(0);
}

#[test]
fn below_threshold_exits_10_and_says_what_is_missing() {
    let (plan, signers) = sample();
    verify(&plan, &signers, "3", "production")
        .assert()
        .code(10)
        .stderr(predicate::str::contains(
            "2 of 3 required signatures: alice@example.com (SHA256:",
        ))
        .stderr(predicate::str::contains("; 1 more needed"));
}

#[test]
fn wrong_destination_namespace_exits_10_listing_why_each_signature_did_not_count() {
    let (plan, signers) = sample();
    verify(&plan, &signers, "1", "staging")
        .assert()
        .code(10)
        .stderr(predicate::str::contains("not counted:"))
        .stderr(predicate::str::contains(
            "signed for namespace `writ-plan:production`, not `writ-plan:staging`",
        ));
}

#[test]
fn unknown_signer_is_listed_but_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let plan = signed_copy(
        dir.path(),
        &common::sample_bytes(),
        &["alice", "bob", "mallory"],
    );
    verify(&plan, &sample().1, "2", "production")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("(mallory.sig): unknown key"));
}

#[test]
fn garbled_signature_file_exits_11() {
    let dir = tempfile::tempdir().unwrap();
    let plan = signed_copy(dir.path(), &common::sample_bytes(), &["alice", "bob"]);
    let bob = writ_exec::signature::signatures_dir(&plan).join("bob.sig");
    let text = std::fs::read_to_string(&bob).unwrap();
    std::fs::write(&bob, &text[..text.len() - 40]).unwrap();
    verify(&plan, &sample().1, "2", "production")
        .assert()
        .code(11)
        .stderr(
            predicate::str::contains("signature file").and(predicate::str::contains("bob.sig")),
        );
}

#[test]
fn invalid_allowed_signers_exits_12_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let signers = dir.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!(
            "# policy\nalice@example.com cert-authority {}\n",
            common::public("alice")
        ),
    )
    .unwrap();
    verify(&sample().0, &signers, "1", "production")
        .assert()
        .code(12)
        .stderr(predicate::str::contains(format!(
            "{}:2:19: `cert-authority` is not supported",
            signers.display()
        )));
}

#[test]
fn signed_but_non_canonical_plan_exits_13_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        String::from_utf8(common::sample_bytes())
            .unwrap()
            .replacen("serial 1", "serial 01", 1);
    let plan = signed_copy(dir.path(), text.as_bytes(), &["alice", "bob"]);
    verify(&plan, &sample().1, "2", "production")
        .assert()
        .code(13)
        .stderr(predicate::str::contains("plan line 6:"));
}

#[test]
fn plan_for_another_destination_exits_14() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = common::sample_plan();
    p.destination = "staging".into();
    let plan = signed_copy(dir.path(), &common::encode(&p), &["alice", "bob"]);
    verify(&plan, &sample().1, "2", "production")
        .assert()
        .code(14)
        .stderr(predicate::str::contains("destination `staging`"));
}

#[test]
fn expired_plan_exits_15() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = common::sample_plan();
    p.created = "2026-01-01T00:00:00Z".parse().unwrap();
    p.expires = "2026-01-02T00:00:00Z".parse().unwrap();
    let plan = signed_copy(dir.path(), &common::encode(&p), &["alice", "bob"]);
    verify(&plan, &sample().1, "2", "production")
        .assert()
        .code(15)
        .stderr(predicate::str::contains("expired at 2026-01-02T00:00:00Z"));
}

#[test]
fn signatures_dir_can_be_given_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let plan = signed_copy(dir.path(), &common::sample_bytes(), &["alice", "bob"]);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::rename(writ_exec::signature::signatures_dir(&plan), &elsewhere).unwrap();
    verify(&plan, &sample().1, "2", "production")
        .assert()
        .code(10);
    verify(&plan, &sample().1, "2", "production")
        .arg("--signatures")
        .arg(&elsewhere)
        .assert()
        .code(0);
}

#[test]
fn usage_errors_exit_2() {
    let (plan, signers) = sample();
    verify(&plan, &signers, "0", "production").assert().code(2);
    cmd().arg("verify").arg(&plan).assert().code(2);
    verify(&plan, &signers, "2", "prod/uction")
        .assert()
        .code(12);
}

#[test]
fn missing_plan_file_exits_74() {
    let (_, signers) = sample();
    verify(
        Path::new("/nonexistent/x.plan"),
        &signers,
        "1",
        "production",
    )
    .assert()
    .code(74)
    .stderr(predicate::str::contains("/nonexistent/x.plan"));
}
