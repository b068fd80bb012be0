//! `writ keygen`, `writ sign` and `writ show` as a user runs them, with the real `ssh-keygen`
//! as the second opinion: keys writ makes load in ssh-keygen, signatures writ makes pass
//! `ssh-keygen -Y verify`, and the executor library accepts them.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command as Std, Stdio};

use assert_cmd::Command;
use predicates::prelude::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn writ() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("writ"));
    c.env_remove("WRIT_KEY_PASSPHRASE")
        .env_remove("WRIT_SIGNING_KEY");
    c
}

fn copy_sample(dir: &Path) -> PathBuf {
    let plan = dir.join("production.plan");
    std::fs::copy(repo().join("plans/sample/production.plan"), &plan).unwrap();
    plan
}

fn ssh_keygen_verify(
    allowed: &Path,
    principal: &str,
    ns: &str,
    sig: &Path,
    msg: &[u8],
) -> (bool, String) {
    let mut child = Std::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", principal, "-n", ns, "-s"])
        .arg(sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(msg).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn keygen_writes_a_key_pair_ssh_keygen_reads_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("sub/alice");
    writ()
        .args([
            "keygen",
            "--no-passphrase",
            "-C",
            "alice@example.com",
            "--out",
        ])
        .arg(&key)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("fingerprint SHA256:"))
        .stdout(predicate::str::contains(
            "alice@example.com namespaces=\"writ-plan:*\" ssh-ed25519 ",
        ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // ssh-keygen derives the same public key from the private file.
    let out = Std::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let derived = String::from_utf8(out.stdout).unwrap();
    let public = std::fs::read_to_string(dir.path().join("sub/alice.pub")).unwrap();
    assert_eq!(derived.split(' ').nth(1), public.split(' ').nth(1));
    let before = std::fs::read(&key).unwrap();
    writ()
        .args(["keygen", "--no-passphrase", "--out"])
        .arg(&key)
        .assert()
        .code(41)
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn passphrase_protected_key_from_keygen_signs_only_with_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    writ()
        .args(["keygen", "--out"])
        .arg(&key)
        .env("WRIT_KEY_PASSPHRASE", "s3cret pass")
        .assert()
        .code(0);
    // ssh-keygen agrees it is encrypted with that passphrase.
    let wrong = Std::new("ssh-keygen")
        .args(["-y", "-P", "nope", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let right = Std::new("ssh-keygen")
        .args(["-y", "-P", "s3cret pass", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let plan = copy_sample(dir.path());
    writ()
        .arg("sign")
        .arg(&plan)
        .arg("--key")
        .arg(&key)
        .env("WRIT_KEY_PASSPHRASE", "wrong")
        .assert()
        .code(40)
        .stderr(predicate::str::contains("wrong passphrase"))
        .stderr(predicate::str::contains("s3cret").not());
    // No terminal and no env var: a clear error, not a hang.
    writ()
        .arg("sign")
        .arg(&plan)
        .arg("--key")
        .arg(&key)
        .assert()
        .code(40)
        .stderr(predicate::str::contains("WRIT_KEY_PASSPHRASE"));
    writ()
        .arg("sign")
        .arg(&plan)
        .arg("--key")
        .arg(&key)
        .env("WRIT_KEY_PASSPHRASE", "s3cret pass")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("s3cret").not());
}

#[test]
fn committed_encrypted_test_key_signs_with_its_documented_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let plan = copy_sample(dir.path());
    writ()
        .arg("sign")
        .arg(&plan)
        .arg("--key")
        .arg(repo().join("tests/keys/erin_test_ed25519_passphrase"))
        .args(["--principal", "erin@example.com"])
        .env("WRIT_KEY_PASSPHRASE", "writ-test-passphrase")
        .assert()
        .code(0);
    assert!(
        dir.path()
            .join("production.plan.sigs/erin@example.com.sig")
            .is_file()
    );
}

#[test]
fn writ_sign_output_passes_ssh_keygen_verify_and_writ_exec_verify() {
    let dir = tempfile::tempdir().unwrap();
    let plan = copy_sample(dir.path());
    for who in ["alice", "bob"] {
        writ()
            .arg("sign")
            .arg(&plan)
            .arg("--key")
            .arg(repo().join(format!("tests/keys/{who}_test_ed25519")))
            .args(["--principal", &format!("{who}@example.com")])
            .assert()
            .code(0)
            .stdout(predicate::str::contains("namespace writ-plan:production"));
    }
    let allowed = repo().join("plans/sample/allowed_signers");
    let bytes = std::fs::read(&plan).unwrap();
    let sigs = dir.path().join("production.plan.sigs");
    let (ok, out) = ssh_keygen_verify(
        &allowed,
        "alice@example.com",
        "writ-plan:production",
        &sigs.join("alice@example.com.sig"),
        &bytes,
    );
    assert!(ok, "{out}");
    // The signature is the committed one, byte for byte (ssh-keygen made that one).
    assert_eq!(
        std::fs::read(sigs.join("bob@example.com.sig")).unwrap(),
        std::fs::read(repo().join("plans/sample/production.plan.sigs/bob@example.com.sig"))
            .unwrap()
    );
    let signers = writ_exec::allowed_signers::AllowedSigners::load(&allowed).unwrap();
    let policy = writ_exec::trust::Policy::new(
        signers,
        std::num::NonZeroUsize::new(2).unwrap(),
        "production",
    )
    .unwrap();
    let v = writ_exec::verify::verify_file(
        &plan,
        &sigs,
        &policy,
        "2027-01-01T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    assert_eq!(v.signers().len(), 2);
}

#[test]
fn sign_names_the_file_after_the_key_without_a_principal_and_refuses_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let plan = copy_sample(dir.path());
    let key = repo().join("tests/keys/carol_test_ed25519");
    writ()
        .arg("sign")
        .arg(&plan)
        .arg("--key")
        .arg(&key)
        .assert()
        .code(0);
    let names: Vec<String> = std::fs::read_dir(dir.path().join("production.plan.sigs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(
        names[0].starts_with("key-")
            && std::path::Path::new(&names[0])
                .extension()
                .is_some_and(|e| e == "sig"),
        "{names:?}"
    );
    assert!(!names[0].contains('/'));
    for bad in ["../evil", ".hidden", "a b", ""] {
        writ()
            .arg("sign")
            .arg(&plan)
            .arg("--key")
            .arg(&key)
            .args(["--principal", bad])
            .assert()
            .code(2);
    }
}

#[test]
fn sign_refuses_a_non_canonical_plan_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let plan = copy_sample(dir.path());
    let text = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("serial 1\n", "serial 1 \n");
    std::fs::write(&plan, text).unwrap();
    writ()
        .arg("sign")
        .arg(&plan)
        .arg("--key")
        .arg(repo().join("tests/keys/alice_test_ed25519"))
        .assert()
        .code(13)
        .stderr(predicate::str::contains("plan line 6: trailing space"));
    assert!(!dir.path().join("production.plan.sigs").exists());
}

#[test]
fn sign_refuses_a_file_that_is_not_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let plan = copy_sample(dir.path());
    writ()
        .arg("sign")
        .arg(&plan)
        .arg("--key")
        .arg(repo().join("tests/keys/alice_test_ed25519.pub"))
        .assert()
        .code(40)
        .stderr(predicate::str::contains("not an OpenSSH private key"));
}

#[test]
fn show_outlines_the_sample_plan() {
    let out = writ()
        .arg("show")
        .arg(repo().join("plans/sample/production.plan"))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    insta::assert_snapshot!("show_sample_plan", String::from_utf8(out).unwrap());
}

#[test]
fn show_refuses_a_non_canonical_plan() {
    let dir = tempfile::tempdir().unwrap();
    let plan = copy_sample(dir.path());
    let text = std::fs::read_to_string(&plan)
        .unwrap()
        .replace('\n', "\r\n");
    std::fs::write(&plan, text).unwrap();
    writ()
        .arg("show")
        .arg(&plan)
        .assert()
        .code(13)
        .stderr(predicate::str::contains("plan line 1: carriage return"));
}
