//! Verification behaviour against the trust policy, one scenario per test: namespaces, key
//! windows, plan expiry, unknown and duplicate signers, threshold messages, garbled signature
//! files, edits after signing, destination mismatch, and the documented check order.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::Path;

use common::{encode, now, policy, sample_bytes, sample_plan, sig, signers_text};
use writ_exec::Error;
use writ_exec::signature::SignatureFile;
use writ_exec::trust::Rejection;
use writ_exec::verify::verify;

fn reasons(e: &Error) -> Vec<Rejection> {
    match e {
        Error::BelowThreshold { report, .. } => {
            report.rejected.iter().map(|r| r.reason.clone()).collect()
        }
        other => panic!("expected BelowThreshold, got {other}"),
    }
}

#[test]
fn two_allowed_signers_meet_a_threshold_of_two() {
    let bytes = sample_bytes();
    let sigs = [
        sig("alice", "production", &bytes),
        sig("bob", "production", &bytes),
    ];
    let v = verify(
        bytes.clone(),
        &sigs,
        &policy(&signers_text(), 2, "production"),
        now(),
    )
    .unwrap();
    assert_eq!(v.bytes(), &bytes[..]);
    assert_eq!(v.id(), writ_exec::plan::plan_id(&bytes));
    let who: Vec<_> = v.signers().iter().map(|s| s.principal.as_str()).collect();
    assert_eq!(who, ["alice@example.com", "bob@example.com"]);
    assert!(v.signers()[0].fingerprint.starts_with("SHA256:"));
    assert_eq!(v.plan().destination, "production");
}

#[test]
fn below_threshold_lists_who_signed_and_how_many_are_missing() {
    let bytes = sample_bytes();
    let sigs = [sig("alice", "production", &bytes)];
    let err = verify(
        bytes.clone(),
        &sigs,
        &policy(&signers_text(), 3, "production"),
        now(),
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 10);
    let fp = sigs[0].fingerprint();
    assert_eq!(
        err.to_string(),
        format!(
            "plan {}: 1 of 3 required signatures: alice@example.com ({fp}); 2 more needed",
            writ_exec::plan::plan_id(&bytes)
        )
    );
}

#[test]
fn staging_signature_does_not_count_on_a_production_plan() {
    let bytes = sample_bytes();
    let sigs = [
        sig("alice", "production", &bytes),
        sig("bob", "staging", &bytes),
    ];
    let err = verify(
        bytes,
        &sigs,
        &policy(&signers_text(), 2, "production"),
        now(),
    )
    .unwrap_err();
    assert_eq!(
        reasons(&err),
        [Rejection::WrongNamespace {
            found: "writ-plan:staging".into(),
            expected: "writ-plan:production".into()
        }]
    );
    assert!(err.to_string().contains("1 of 2 required"), "{err}");
}

#[test]
fn key_restricted_to_staging_by_allowed_signers_does_not_count_for_production() {
    let bytes = sample_bytes();
    let sigs = [
        sig("alice", "production", &bytes),
        sig("carol", "production", &bytes),
    ];
    let err = verify(
        bytes,
        &sigs,
        &policy(&signers_text(), 2, "production"),
        now(),
    )
    .unwrap_err();
    assert_eq!(reasons(&err), [Rejection::NamespaceNotAllowed { line: 3 }]);
}

#[test]
fn key_outside_its_validity_window_does_not_count() {
    let bytes = sample_bytes();
    let text = format!(
        "alice@example.com {}\nbob@example.com valid-before=\"20270101Z\" {}\ncarol@example.com valid-after=\"20280101Z\" {}\n",
        common::public("alice"),
        common::public("bob"),
        common::public("carol")
    );
    let sigs = [
        sig("alice", "production", &bytes),
        sig("bob", "production", &bytes),
        sig("carol", "production", &bytes),
    ];
    let err = verify(bytes.clone(), &sigs, &policy(&text, 2, "production"), now()).unwrap_err();
    let r = reasons(&err);
    assert!(
        matches!(
            r[0],
            Rejection::OutsideWindow {
                line: 2,
                window: writ_exec::allowed_signers::Window::Expired(_)
            }
        ),
        "{r:?}"
    );
    assert!(
        matches!(
            r[1],
            Rejection::OutsideWindow {
                line: 3,
                window: writ_exec::allowed_signers::Window::NotYetValid(_)
            }
        ),
        "{r:?}"
    );
    // The same signatures count at a time inside both windows: the executor's clock decides.
    let earlier = "2026-12-31T00:00:00Z".parse().unwrap();
    let mut late_text = text.replace("20280101Z", "20261201Z");
    late_text.push('\n');
    assert!(verify(bytes, &sigs, &policy(&late_text, 3, "production"), earlier).is_ok());
}

#[test]
fn expired_plan_is_refused_after_its_signatures_check_out() {
    let mut p = sample_plan();
    p.created = "2026-01-01T00:00:00Z".parse().unwrap();
    p.expires = "2026-01-02T00:00:00Z".parse().unwrap();
    let bytes = encode(&p);
    let sigs = [
        sig("alice", "production", &bytes),
        sig("bob", "production", &bytes),
    ];
    let err = verify(
        bytes,
        &sigs,
        &policy(&signers_text(), 2, "production"),
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::PlanExpired { .. }), "{err}");
    assert_eq!(err.exit_code(), 15);
    assert!(
        err.to_string().contains("expired at 2026-01-02T00:00:00Z"),
        "{err}"
    );
}

#[test]
fn plan_for_another_destination_is_refused_even_when_signed_for_ours() {
    let mut p = sample_plan();
    p.destination = "staging".into();
    let bytes = encode(&p);
    // Signed with the production namespace, so the signatures count; the header still decides.
    let sigs = [
        sig("alice", "production", &bytes),
        sig("bob", "production", &bytes),
    ];
    let err = verify(
        bytes,
        &sigs,
        &policy(&signers_text(), 2, "production"),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::WrongDestination { expected, found } if expected == "production" && found == "staging"),
        "{err}"
    );
    assert_eq!(err.exit_code(), 14);
}

#[test]
fn unknown_signer_is_reported_and_not_counted() {
    let bytes = sample_bytes();
    let sigs = [
        sig("alice", "production", &bytes),
        sig("mallory", "production", &bytes),
    ];
    let err = verify(
        bytes.clone(),
        &sigs,
        &policy(&signers_text(), 2, "production"),
        now(),
    )
    .unwrap_err();
    let Error::BelowThreshold { report, .. } = &err else {
        panic!("{err}")
    };
    let unknown: Vec<_> = report.unknown().map(|r| r.fingerprint.clone()).collect();
    assert_eq!(unknown, [sigs[1].fingerprint()]);
    // With threshold 1 the plan verifies, and the unknown signer is still in the report.
    let v = verify(
        bytes,
        &sigs,
        &policy(&signers_text(), 1, "production"),
        now(),
    )
    .unwrap();
    assert_eq!(v.signers().len(), 1);
    assert_eq!(v.report().unknown().count(), 1);
}

#[test]
fn same_key_twice_counts_once() {
    let bytes = sample_bytes();
    let a = sig("alice", "production", &bytes);
    let mut again = a.clone();
    again.path = "alice-again.sig".into();
    let err = verify(
        bytes,
        &[a, again],
        &policy(&signers_text(), 2, "production"),
        now(),
    )
    .unwrap_err();
    assert_eq!(
        reasons(&err),
        [Rejection::Duplicate {
            of: "alice@example.com".into()
        }]
    );
}

#[test]
fn same_principal_through_two_keys_counts_once() {
    let bytes = sample_bytes();
    // bob's key is listed as a second key of alice.
    let text = format!(
        "alice@example.com {}\nalice@example.com {}\n",
        common::public("alice"),
        common::public("bob")
    );
    let sigs = [
        sig("alice", "production", &bytes),
        sig("bob", "production", &bytes),
    ];
    let err = verify(bytes, &sigs, &policy(&text, 2, "production"), now()).unwrap_err();
    assert!(err.to_string().starts_with("plan sha256:"), "{err}");
    assert!(err.to_string().contains("1 of 2 required"), "{err}");
    // A line that gives one key two principals still makes one signer, not two.
    let text = format!(
        "alice@example.com,bob@example.com {}\n",
        common::public("alice")
    );
    let bytes = sample_bytes();
    let sigs = [sig("alice", "production", &bytes)];
    let err = verify(bytes, &sigs, &policy(&text, 2, "production"), now()).unwrap_err();
    assert!(err.to_string().contains("1 of 2 required"), "{err}");
}

#[test]
fn plan_edited_after_signing_fails_every_signature() {
    let bytes = sample_bytes();
    let sigs = [
        sig("alice", "production", &bytes),
        sig("bob", "production", &bytes),
    ];
    let edited = String::from_utf8(bytes)
        .unwrap()
        .replace("hey:3f2a1c9", "hey:evil000")
        .into_bytes();
    let err = verify(
        edited,
        &sigs,
        &policy(&signers_text(), 2, "production"),
        now(),
    )
    .unwrap_err();
    assert_eq!(
        reasons(&err),
        [Rejection::BadSignature, Rejection::BadSignature]
    );
    assert!(
        err.to_string()
            .contains("0 of 2 required signatures; 2 more needed"),
        "{err}"
    );
}

#[test]
fn truncated_or_garbled_signature_files_are_errors() {
    let bytes = sample_bytes();
    let good = writ_exec::signature::sign(&common::key("alice"), "production", &bytes).unwrap();
    let mut cases: Vec<(String, &str)> = vec![
        (good[..good.len() / 2].to_owned(), "truncated"),
        (
            good.replacen("SSH SIGNATURE", "SSH SIGNATUR", 1),
            "bad armor",
        ),
        ("hello\n".into(), "not armored"),
        (String::new(), "empty"),
    ];
    // Flip one base64 character in the body.
    let mut body: Vec<char> = good.chars().collect();
    let at = good.find('\n').unwrap() + 10;
    body[at] = if body[at] == 'A' { 'B' } else { 'A' };
    let flipped: String = body.into_iter().collect();
    for (text, what) in cases.drain(..) {
        let err = SignatureFile::parse(Path::new("x.sig"), text.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::SignatureFile { .. }), "{what}: {err}");
        assert_eq!(err.exit_code(), 11);
        assert!(
            err.to_string().starts_with("signature file x.sig: "),
            "{what}: {err}"
        );
    }
    // A flipped byte either breaks the parse or breaks the signature: never counts.
    match SignatureFile::parse(Path::new("x.sig"), flipped.as_bytes()) {
        Err(e) => assert_eq!(e.exit_code(), 11),
        Ok(s) => {
            let err = verify(
                bytes,
                &[s],
                &policy(&signers_text(), 1, "production"),
                now(),
            )
            .unwrap_err();
            assert_eq!(err.exit_code(), 10, "{err}");
        }
    }
}

#[test]
fn garbled_file_in_the_signatures_dir_stops_verification() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("production.plan");
    std::fs::write(&plan, sample_bytes()).unwrap();
    let sigs = writ_exec::signature::signatures_dir(&plan);
    std::fs::create_dir(&sigs).unwrap();
    let good =
        writ_exec::signature::sign(&common::key("alice"), "production", &sample_bytes()).unwrap();
    std::fs::write(sigs.join("alice.sig"), &good).unwrap();
    std::fs::write(sigs.join("notes.txt"), "ignored: not a .sig file").unwrap();
    let p = policy(&signers_text(), 1, "production");
    assert!(writ_exec::verify::verify_file(&plan, &sigs, &p, now()).is_ok());
    std::fs::write(sigs.join("bob.sig"), &good[..100]).unwrap();
    let err = writ_exec::verify::verify_file(&plan, &sigs, &p, now()).unwrap_err();
    assert!(err.to_string().contains("bob.sig"), "{err}");
    assert_eq!(err.exit_code(), 11);
}

#[test]
fn signatures_are_checked_before_the_plan_is_parsed() {
    // Signed garbage: the signatures count, then the canonical decode refuses it.
    let junk = b"writ-plan 1\nservice hey\r\n".to_vec();
    let sigs = [sig("alice", "production", &junk)];
    let err = verify(
        junk.clone(),
        &sigs,
        &policy(&signers_text(), 1, "production"),
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Decode { line: 2, .. }), "{err}");
    assert_eq!(err.exit_code(), 13);
    // Unsigned garbage never reaches the decoder: the error is about signatures.
    let err = verify(junk, &[], &policy(&signers_text(), 1, "production"), now()).unwrap_err();
    assert_eq!(err.exit_code(), 10, "{err}");
}

#[test]
fn oversize_plan_is_refused_before_hashing() {
    let big = vec![b'a'; writ_exec::plan::MAX_PLAN_BYTES + 1];
    let err = verify(big, &[], &policy(&signers_text(), 1, "production"), now()).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[test]
fn policy_refuses_an_invalid_destination() {
    let signers = writ_exec::allowed_signers::AllowedSigners::default();
    let one = std::num::NonZeroUsize::MIN;
    for bad in ["", "prod uction", "-x", "a/b", "prod:x"] {
        let err = writ_exec::trust::Policy::new(signers.clone(), one, bad).unwrap_err();
        assert_eq!(err.exit_code(), 12, "{bad}");
    }
}

#[test]
fn signers_linked_through_a_shared_principal_count_once_transitively() {
    // alice's key is p1; bob's key is listed for p1 and p2; carol's key is p2. alice and carol
    // share nothing directly, but bob's line ties them together: one signer, not two or three.
    let text = format!(
        "p1@example.com {}\np1@example.com,p2@example.com {}\np2@example.com {}\n",
        common::public("alice"),
        common::public("bob"),
        common::public("carol")
    );
    let bytes = sample_bytes();
    let sigs = [
        sig("alice", "production", &bytes),
        sig("bob", "production", &bytes),
        sig("carol", "production", &bytes),
    ];
    let err = verify(bytes.clone(), &sigs, &policy(&text, 2, "production"), now()).unwrap_err();
    assert!(
        err.to_string()
            .contains("1 of 2 required signatures: p1@example.com"),
        "{err}"
    );
    assert_eq!(reasons(&err).len(), 2);
    // Without bob's bridging signature, alice and carol are two signers.
    let v = verify(
        bytes,
        &[sigs[0].clone(), sigs[2].clone()],
        &policy(&text, 2, "production"),
        now(),
    )
    .unwrap();
    assert_eq!(v.signers().len(), 2);
}
