//! Verification of a signed plan, in the documented order. [`VerifiedPlan`] can only be built
//! here, so code that runs plans (apply) cannot be handed an unverified one.
//!
//! SKELETON: the types below are the contract other modules build on; the trust-core work
//! fills in `verify` (allowed_signers policy, SSHSIG, threshold, canonical decode, destination,
//! expiry).

use crate::plan::{Plan, Sha256Digest};

/// One signer whose signature counted: the principal from allowed_signers and the key's
/// OpenSSH `SHA256:` fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The allowed_signers principal the key matched.
    pub principal: String,
    /// OpenSSH `SHA256:…` fingerprint of the signing key.
    pub fingerprint: String,
}

/// A plan whose bytes passed every check. Only [`crate::verify`] constructs it.
#[derive(Debug)]
pub struct VerifiedPlan {
    bytes: Vec<u8>,
    plan: Plan,
    id: Sha256Digest,
    signers: Vec<Signer>,
}

impl VerifiedPlan {
    /// The decoded plan.
    #[must_use]
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The exact bytes that were verified.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The plan id: sha256 of [`Self::bytes`].
    #[must_use]
    pub fn id(&self) -> Sha256Digest {
        self.id
    }

    /// Who signed (each distinct principal once).
    #[must_use]
    pub fn signers(&self) -> &[Signer] {
        &self.signers
    }
}
