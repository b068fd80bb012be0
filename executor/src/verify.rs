//! Verification of a signed plan, in the documented order (docs/plan-format.md, "Verify"):
//! size cap → sha256 of the bytes → signatures against the policy at the executor's clock →
//! threshold → canonical decode → destination → not expired. [`VerifiedPlan`] can only be
//! built here, so code that runs plans (apply) cannot be handed an unverified one.
//!
//! Signatures are checked before the bytes are parsed: an unsigned plan never reaches the
//! decoder, which keeps the parser out of the attack surface of anyone who cannot sign.

use std::path::Path;

use jiff::Timestamp;

use crate::Error;
use crate::plan::{self, MAX_PLAN_BYTES, Plan, Sha256Digest};
use crate::signature::SignatureFile;
use crate::trust::{Policy, SignatureReport};

/// One signer whose signature counted: the principal from allowed_signers and the key's
/// OpenSSH `SHA256:` fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The allowed_signers principal(s) the key matched, comma-joined.
    pub principal: String,
    /// OpenSSH `SHA256:…` fingerprint of the signing key.
    pub fingerprint: String,
}

/// A plan whose bytes passed every check. Only [`verify`] and [`verify_file`] construct it.
#[derive(Debug)]
pub struct VerifiedPlan {
    bytes: Vec<u8>,
    plan: Plan,
    id: Sha256Digest,
    signers: Vec<Signer>,
    report: SignatureReport,
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

    /// The full signature report, including signatures that did not count (unknown keys,
    /// duplicates, …), for display and audit.
    #[must_use]
    pub fn report(&self) -> &SignatureReport {
        &self.report
    }
}

/// Verify `bytes` against `policy` with `signatures`, at the instant `now` (the executor's
/// clock: pass [`Timestamp::now`] outside tests).
pub fn verify(
    bytes: Vec<u8>,
    signatures: &[SignatureFile],
    policy: &Policy,
    now: Timestamp,
) -> Result<VerifiedPlan, Error> {
    if bytes.len() > MAX_PLAN_BYTES {
        return Err(Error::TooLarge {
            size: bytes.len(),
            max: MAX_PLAN_BYTES,
        });
    }
    let id = plan::plan_id(&bytes);
    let report = policy.evaluate(&bytes, signatures, now);
    if !report.is_met() {
        return Err(Error::BelowThreshold {
            plan_id: id,
            report: Box::new(report),
        });
    }
    let plan = plan::decode(&bytes)?;
    if plan.destination != policy.destination() {
        return Err(Error::WrongDestination {
            expected: policy.destination().to_owned(),
            found: plan.destination,
        });
    }
    if now >= plan.expires {
        return Err(Error::PlanExpired {
            expires: plan.expires,
            now,
        });
    }
    Ok(VerifiedPlan {
        bytes,
        plan,
        id,
        signers: report.counted.clone(),
        report,
    })
}

/// Read the plan at `plan_path` (size-capped) and the signatures in `signatures_dir`
/// (see [`crate::signature::signatures_dir`] for the default), then [`verify`].
pub fn verify_file(
    plan_path: &Path,
    signatures_dir: &Path,
    policy: &Policy,
    now: Timestamp,
) -> Result<VerifiedPlan, Error> {
    let bytes = crate::input::read_capped(plan_path, MAX_PLAN_BYTES)?;
    let signatures = crate::signature::load_dir(signatures_dir)?;
    verify(bytes, &signatures, policy, now)
}
