//! Shared fixtures for the executor's trust tests: the committed test keys, the committed
//! signed sample plan, and helpers to build signed variants of it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test support; each test uses a subset"
)]

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use ssh_key::PrivateKey;
use writ_exec::allowed_signers::AllowedSigners;
use writ_exec::plan::{self, Plan};
use writ_exec::signature::{self, SignatureFile};
use writ_exec::trust::Policy;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn key(name: &str) -> PrivateKey {
    PrivateKey::read_openssh_file(repo().join(format!("tests/keys/{name}_test_ed25519"))).unwrap()
}

pub fn public(name: &str) -> String {
    key(name).public_key().to_openssh().unwrap()
}

pub fn sample_bytes() -> Vec<u8> {
    std::fs::read(repo().join("plans/sample/production.plan")).unwrap()
}

pub fn sample_plan() -> Plan {
    plan::decode(&sample_bytes()).unwrap()
}

/// A time when the sample plan and every sample key are valid.
pub fn now() -> Timestamp {
    "2027-06-01T12:00:00Z".parse().unwrap()
}

pub fn sig(key_name: &str, destination: &str, bytes: &[u8]) -> SignatureFile {
    let text = signature::sign(&key(key_name), destination, bytes).unwrap();
    SignatureFile::parse(Path::new(&format!("{key_name}.sig")), text.as_bytes()).unwrap()
}

/// allowed_signers text: alice and bob for every writ namespace, carol for staging only.
pub fn signers_text() -> String {
    format!(
        "alice@example.com {}\nbob@example.com namespaces=\"writ-plan:*\" {}\ncarol@example.com namespaces=\"writ-plan:staging\" {}\n",
        public("alice"),
        public("bob"),
        public("carol")
    )
}

pub fn policy(text: &str, threshold: usize, destination: &str) -> Policy {
    let signers = AllowedSigners::parse(Path::new("allowed_signers"), text).unwrap();
    Policy::new(signers, NonZeroUsize::new(threshold).unwrap(), destination).unwrap()
}

pub fn encode(p: &Plan) -> Vec<u8> {
    plan::encode(p).unwrap()
}
