//! Exhaustive tamper test on the committed signed sample (plans/sample/): every single-byte
//! change of the plan file — each position, several replacement values, plus deleting the
//! byte — fails verification with the committed signatures and allowed_signers. The count of
//! mutations tried is printed (`cargo test -- --nocapture`).
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "tests")]

mod common;

use std::num::NonZeroUsize;

use common::{now, repo};
use writ_exec::allowed_signers::AllowedSigners;
use writ_exec::signature;
use writ_exec::trust::Policy;
use writ_exec::verify::verify;

fn sample_policy() -> Policy {
    let signers = AllowedSigners::load(&repo().join("plans/sample/allowed_signers")).unwrap();
    Policy::new(signers, NonZeroUsize::new(2).unwrap(), "production").unwrap()
}

#[test]
fn every_single_byte_mutation_of_the_signed_sample_fails_verification() {
    let plan_path = repo().join("plans/sample/production.plan");
    let bytes = std::fs::read(&plan_path).unwrap();
    let sigs = signature::load_dir(&signature::signatures_dir(&plan_path)).unwrap();
    assert_eq!(sigs.len(), 2, "the sample carries two signatures");
    let policy = sample_policy();
    // The unmodified sample verifies: the mutations below are what breaks it.
    verify(bytes.clone(), &sigs, &policy, now()).unwrap();

    let mut tried = 0usize;
    let mut accepted = Vec::new();
    for i in 0..bytes.len() {
        let original = bytes[i];
        let mut values: Vec<u8> = vec![
            original ^ 0x01,
            original ^ 0x20,
            original ^ 0x80,
            b'\n',
            b' ',
            b'0',
        ];
        values.sort_unstable();
        values.dedup();
        for v in values.into_iter().filter(|v| *v != original) {
            let mut m = bytes.clone();
            m[i] = v;
            tried += 1;
            if verify(m, &sigs, &policy, now()).is_ok() {
                accepted.push(format!("byte {i}: {original:#04x} -> {v:#04x}"));
            }
        }
        let mut m = bytes.clone();
        m.remove(i);
        tried += 1;
        if verify(m, &sigs, &policy, now()).is_ok() {
            accepted.push(format!("byte {i}: deleted"));
        }
    }
    println!(
        "tried {tried} single-byte mutations over {} bytes of plans/sample/production.plan: all rejected",
        bytes.len()
    );
    assert!(accepted.is_empty(), "accepted mutations: {accepted:#?}");
    assert!(tried >= bytes.len() * 6, "{tried}");
}

#[test]
fn the_committed_sample_verifies_with_its_committed_policy() {
    let plan_path = repo().join("plans/sample/production.plan");
    let v = writ_exec::verify::verify_file(
        &plan_path,
        &signature::signatures_dir(&plan_path),
        &sample_policy(),
        now(),
    )
    .unwrap();
    let who: Vec<_> = v.signers().iter().map(|s| s.principal.as_str()).collect();
    assert_eq!(who, ["alice@example.com", "bob@example.com"]);
    assert_eq!(v.plan().expires.to_string(), "2036-01-01T00:00:00Z");
}
