//! Interop with stock OpenSSH `ssh-keygen -Y` (real binary): its signatures verify in writ
//! unchanged, writ's signatures pass `ssh-keygen -Y verify` against the same allowed_signers
//! file, and both sides agree on what does not verify.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{now, policy, sample_bytes};
use writ_exec::signature::{self, SignatureFile};
use writ_exec::verify::verify;

fn ssh_keygen(args: &[&str], stdin: Option<&[u8]>) -> (bool, String) {
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh-keygen (openssh-client) must be installed for this test");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A fresh key made by ssh-keygen itself, in `dir`.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let (ok, out) = ssh_keygen(
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            name,
            "-f",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{out}");
    path
}

fn pubkey(path: &Path) -> String {
    let text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    text.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

#[test]
fn ssh_keygen_signatures_verify_in_writ_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("production.plan");
    std::fs::write(&plan, sample_bytes()).unwrap();
    let alice = keygen(dir.path(), "alice");
    let bob = keygen(dir.path(), "bob");
    let sigs_dir = signature::signatures_dir(&plan);
    std::fs::create_dir(&sigs_dir).unwrap();
    // alice with the default hash (sha512), bob with sha256: both are valid SSHSIG.
    for (key, extra) in [(&alice, None), (&bob, Some("hashalg=sha256"))] {
        let mut args = vec![
            "-Y",
            "sign",
            "-f",
            key.to_str().unwrap(),
            "-n",
            "writ-plan:production",
        ];
        if let Some(o) = extra {
            args.extend(["-O", o]);
        }
        args.push(plan.to_str().unwrap());
        let (ok, out) = ssh_keygen(&args, None);
        assert!(ok, "{out}");
        let name = key.file_name().unwrap().to_str().unwrap();
        std::fs::rename(
            plan.with_extension("plan.sig"),
            sigs_dir.join(format!("{name}.sig")),
        )
        .unwrap();
    }
    let text = format!(
        "alice@example.com namespaces=\"writ-plan:production\" {}\nbob@example.com {}\n",
        pubkey(&alice),
        pubkey(&bob)
    );
    let v =
        writ_exec::verify::verify_file(&plan, &sigs_dir, &policy(&text, 2, "production"), now())
            .unwrap();
    let who: Vec<_> = v.signers().iter().map(|s| s.principal.as_str()).collect();
    assert_eq!(who, ["alice@example.com", "bob@example.com"]);
    // The fingerprints writ shows are the ones ssh-keygen shows.
    let (ok, out) = ssh_keygen(
        &["-l", "-f", alice.with_extension("pub").to_str().unwrap()],
        None,
    );
    assert!(ok && out.contains(&v.signers()[0].fingerprint), "{out}");
}

#[test]
fn writ_signatures_pass_ssh_keygen_verify_with_the_same_allowed_signers() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = sample_bytes();
    let key = common::key("alice");
    let allowed = dir.path().join("allowed_signers");
    let text = format!(
        "# same file for both verifiers\nalice@example.com namespaces=\"writ-plan:production\",valid-after=\"20260101Z\",valid-before=\"20360101Z\" {}\n",
        common::public("alice")
    );
    std::fs::write(&allowed, &text).unwrap();
    let sig_path = dir.path().join("alice.sig");
    std::fs::write(
        &sig_path,
        signature::sign(&key, "production", &bytes).unwrap(),
    )
    .unwrap();
    let verify_args = |ns: &str| {
        vec![
            "-Y".to_owned(),
            "verify".into(),
            "-f".into(),
            allowed.to_str().unwrap().into(),
            "-I".into(),
            "alice@example.com".into(),
            "-n".into(),
            ns.into(),
            "-s".into(),
            sig_path.to_str().unwrap().into(),
            "-O".into(),
            "verify-time=20270601Z".into(),
        ]
    };
    let args = verify_args("writ-plan:production");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = ssh_keygen(&args, Some(&bytes));
    assert!(
        ok && out.contains("Good \"writ-plan:production\" signature"),
        "{out}"
    );
    // writ agrees, with the file it parses itself.
    let signers = writ_exec::allowed_signers::AllowedSigners::load(&allowed).unwrap();
    let p =
        writ_exec::trust::Policy::new(signers, std::num::NonZeroUsize::MIN, "production").unwrap();
    let s = SignatureFile::load(&sig_path).unwrap();
    assert!(verify(bytes.clone(), std::slice::from_ref(&s), &p, now()).is_ok());

    // Both refuse: edited bytes, and another namespace.
    let mut edited = bytes.clone();
    edited[20] ^= 1;
    let (ok, out) = ssh_keygen(&args, Some(&edited));
    assert!(!ok, "{out}");
    assert!(verify(edited, std::slice::from_ref(&s), &p, now()).is_err());
    let staging = verify_args("writ-plan:staging");
    let staging: Vec<&str> = staging.iter().map(String::as_str).collect();
    let (ok, out) = ssh_keygen(&staging, Some(&bytes));
    assert!(!ok, "{out}");
    // And both refuse outside the key's window.
    let mut late = args.clone();
    let last = late.len() - 1;
    late[last] = "verify-time=20370101Z";
    let (ok, out) = ssh_keygen(&late, Some(&bytes));
    assert!(!ok, "{out}");
    let err = verify(bytes, &[s], &p, "2037-01-01T00:00:00Z".parse().unwrap()).unwrap_err();
    assert_eq!(err.exit_code(), 10, "{err}");
}

#[test]
fn writ_signature_text_is_what_ssh_keygen_writes() {
    // ed25519 SSHSIG is deterministic: same key, namespace and bytes give the same file.
    let dir = tempfile::tempdir().unwrap();
    let bytes = sample_bytes();
    let plan = dir.path().join("p.plan");
    std::fs::write(&plan, &bytes).unwrap();
    let key = dir.path().join("key");
    std::fs::write(
        &key,
        std::fs::read(common::repo().join("tests/keys/alice_test_ed25519")).unwrap(),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (ok, out) = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-f",
            key.to_str().unwrap(),
            "-n",
            "writ-plan:production",
            plan.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{out}");
    let theirs = std::fs::read_to_string(plan.with_extension("plan.sig")).unwrap();
    let ours = signature::sign(&common::key("alice"), "production", &bytes).unwrap();
    assert_eq!(ours, theirs);
}
