//! The trust policy: an allowed_signers file, a threshold of distinct principals and the
//! expected destination — all inputs of the executor, never taken from the plan or the PR.
//!
//! Counting rule: a signature counts when its SSHSIG namespace is `writ-plan:<destination>`,
//! its key is listed on at least one allowed_signers line whose `namespaces=` and validity
//! window admit it at the executor's clock, and it verifies over the plan bytes. Two counted
//! signatures that share a key *or* a principal are one signer (transitively), so one person
//! signing twice, or with two keys, counts once. Unknown keys are reported, never counted.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use jiff::Timestamp;
use sha2::{Digest as _, Sha256, Sha512};
use ssh_key::HashAlg;

use crate::Error;
use crate::allowed_signers::{AllowedSigners, Window};
use crate::signature::{SignatureFile, namespace};
use crate::verify::Signer;

/// Who may sign, how many distinct principals must, and for which destination.
#[derive(Clone, Debug)]
pub struct Policy {
    signers: AllowedSigners,
    threshold: NonZeroUsize,
    destination: String,
}

impl Policy {
    /// A policy; `destination` must be a valid plan name (it becomes the namespace suffix).
    pub fn new(
        signers: AllowedSigners,
        threshold: NonZeroUsize,
        destination: &str,
    ) -> Result<Self, Error> {
        let ok = !destination.is_empty()
            && destination.len() <= crate::plan::MAX_NAME
            && destination.as_bytes()[0].is_ascii_alphanumeric()
            && destination
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return Err(Error::InvalidDestination(destination.to_owned()));
        }
        Ok(Self {
            signers,
            threshold,
            destination: destination.to_owned(),
        })
    }

    /// The expected destination.
    #[must_use]
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Distinct principals required.
    #[must_use]
    pub fn threshold(&self) -> usize {
        self.threshold.get()
    }

    /// The allowed signers.
    #[must_use]
    pub fn allowed_signers(&self) -> &AllowedSigners {
        &self.signers
    }

    /// Check every signature against the policy at `now`. Never fails: what does not count is
    /// listed in the report with the reason.
    #[must_use]
    pub fn evaluate(
        &self,
        plan_bytes: &[u8],
        signatures: &[SignatureFile],
        now: Timestamp,
    ) -> SignatureReport {
        let ns = namespace(&self.destination);
        // Hash the plan once per algorithm, not once per signature (a plan may be megabytes).
        let mut sha256: Option<Vec<u8>> = None;
        let mut sha512: Option<Vec<u8>> = None;
        let mut valid: Vec<(usize, Vec<String>)> = Vec::new();
        let mut rejected = Vec::new();
        for (i, s) in signatures.iter().enumerate() {
            let reject = |reason| Rejected {
                file: s.path.clone(),
                fingerprint: s.fingerprint(),
                principal: None,
                reason,
            };
            if s.sig.namespace() != ns {
                rejected.push(reject(Rejection::WrongNamespace {
                    found: s.sig.namespace().to_owned(),
                    expected: ns.clone(),
                }));
                continue;
            }
            let lines: Vec<_> = self.signers.entries_for(s.sig.public_key()).collect();
            let Some(first) = lines.first() else {
                rejected.push(reject(Rejection::UnknownKey));
                continue;
            };
            let prehash: &[u8] = match s.sig.hash_alg() {
                HashAlg::Sha256 => {
                    sha256.get_or_insert_with(|| Sha256::digest(plan_bytes).to_vec())
                }
                HashAlg::Sha512 => {
                    sha512.get_or_insert_with(|| Sha512::digest(plan_bytes).to_vec())
                }
                _ => {
                    rejected.push(reject(Rejection::BadSignature));
                    continue;
                }
            };
            if first.key.verify_prehash(&ns, prehash, &s.sig).is_err() {
                let mut r = reject(Rejection::BadSignature);
                r.principal = Some(first.principal());
                rejected.push(r);
                continue;
            }
            let mut principals: Vec<String> = Vec::new();
            let mut problem = None;
            for e in &lines {
                let window = e.window(now);
                if !e.allows_namespace(&ns) {
                    problem.get_or_insert(Rejection::NamespaceNotAllowed { line: e.line });
                } else if window != Window::Open {
                    problem.get_or_insert(Rejection::OutsideWindow {
                        line: e.line,
                        window,
                    });
                } else {
                    for p in &e.principals {
                        if !principals.contains(p) {
                            principals.push(p.clone());
                        }
                    }
                }
            }
            if principals.is_empty() {
                let mut r = reject(problem.unwrap_or(Rejection::UnknownKey));
                r.principal = Some(first.principal());
                rejected.push(r);
                continue;
            }
            valid.push((i, principals));
        }

        // Union signatures that share a key or a principal; each group is one signer.
        let mut group: Vec<usize> = (0..valid.len()).collect();
        for a in 0..valid.len() {
            for b in 0..a {
                let (sa, sb) = (&signatures[valid[a].0], &signatures[valid[b].0]);
                let same_key = sa.sig.public_key() == sb.sig.public_key();
                let same_principal = valid[a].1.iter().any(|p| valid[b].1.contains(p));
                if same_key || same_principal {
                    let (ra, rb) = (root(&mut group, a), root(&mut group, b));
                    // Keep the earliest signature as the group's representative.
                    group[ra.max(rb)] = ra.min(rb);
                }
            }
        }
        let mut counted = Vec::new();
        for (k, (i, principals)) in valid.iter().enumerate() {
            let s = &signatures[*i];
            let r = root(&mut group, k);
            if r == k {
                counted.push(Signer {
                    principal: principals.join(","),
                    fingerprint: s.fingerprint(),
                });
            } else {
                rejected.push(Rejected {
                    file: s.path.clone(),
                    fingerprint: s.fingerprint(),
                    principal: Some(principals.join(",")),
                    reason: Rejection::Duplicate {
                        of: valid[r].1.join(","),
                    },
                });
            }
        }
        SignatureReport {
            counted,
            rejected,
            threshold: self.threshold.get(),
        }
    }
}

/// Union-find root of `i`, with path halving.
fn root(g: &mut [usize], mut i: usize) -> usize {
    while g[i] != i {
        g[i] = g[g[i]];
        i = g[i];
    }
    i
}

/// Why a signature file did not count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The key is on no allowed_signers line.
    UnknownKey,
    /// The SSHSIG namespace is for another destination (or not a writ plan).
    WrongNamespace {
        /// Namespace inside the signature.
        found: String,
        /// `writ-plan:<destination>`.
        expected: String,
    },
    /// The key's allowed_signers line does not allow this namespace.
    NamespaceNotAllowed {
        /// allowed_signers line.
        line: usize,
    },
    /// The executor's clock is outside the key's validity window.
    OutsideWindow {
        /// allowed_signers line.
        line: usize,
        /// Which side.
        window: Window,
    },
    /// The signature does not verify over these plan bytes (the plan changed after signing,
    /// or the signature was altered).
    BadSignature,
    /// Same key or principal as a signature already counted.
    Duplicate {
        /// The principal that counted.
        of: String,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::UnknownKey => f.write_str("unknown key: not in the allowed signers"),
            Rejection::WrongNamespace { found, expected } => {
                write!(f, "signed for namespace `{found}`, not `{expected}`")
            }
            Rejection::NamespaceNotAllowed { line } => write!(
                f,
                "allowed_signers line {line} does not allow this destination's namespace"
            ),
            Rejection::OutsideWindow { line, window } => match window {
                Window::NotYetValid(t) => {
                    write!(f, "key not valid until {t} (allowed_signers line {line})")
                }
                Window::Expired(t) => {
                    write!(f, "key expired at {t} (allowed_signers line {line})")
                }
                Window::Open => write!(f, "allowed_signers line {line}"),
            },
            Rejection::BadSignature => f.write_str(
                "signature does not match these plan bytes (plan changed after signing?)",
            ),
            Rejection::Duplicate { of } => write!(f, "same signer as {of}, counted once"),
        }
    }
}

/// A signature file that did not count, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The signature file.
    pub file: PathBuf,
    /// `SHA256:` fingerprint of the key inside it.
    pub fingerprint: String,
    /// The allowed_signers principal of the key, when it is known.
    pub principal: Option<String>,
    /// Why it did not count.
    pub reason: Rejection,
}

/// The outcome of checking signatures against a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureReport {
    /// Distinct signers that counted, in signature-file order.
    pub counted: Vec<Signer>,
    /// Signatures that did not count.
    pub rejected: Vec<Rejected>,
    /// Distinct principals required.
    pub threshold: usize,
}

impl SignatureReport {
    /// Whether enough distinct principals signed.
    #[must_use]
    pub fn is_met(&self) -> bool {
        self.counted.len() >= self.threshold
    }

    /// Signatures by keys not in the allowed signers.
    pub fn unknown(&self) -> impl Iterator<Item = &Rejected> {
        self.rejected
            .iter()
            .filter(|r| r.reason == Rejection::UnknownKey)
    }
}

impl fmt::Display for SignatureReport {
    /// `2 of 3 required signatures: alice@x (SHA256:…), bob@y (SHA256:…); 1 more needed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} required signatures",
            self.counted.len(),
            self.threshold
        )?;
        for (i, s) in self.counted.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{} ({})", s.principal, s.fingerprint)?;
        }
        if !self.is_met() {
            write!(f, "; {} more needed", self.threshold - self.counted.len())?;
        }
        Ok(())
    }
}
