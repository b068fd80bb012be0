//! Benchmark: verify a 1 MiB plan carrying 5 signatures (threshold 5), the whole trust path
//! from bytes to `VerifiedPlan` (size cap, sha256, 5 × SSHSIG ed25519, canonical decode,
//! destination, expiry). Prints the median of several runs; numbers go to docs/benchmarks.md.
//!
//! `cargo bench -p writ-exec --bench verify`
#![allow(clippy::print_stdout, clippy::unwrap_used, reason = "benchmark binary")]

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::{Duration, Instant};

use ssh_key::PrivateKey;
use ssh_key::private::{Ed25519Keypair, KeypairData};
use writ_exec::allowed_signers::AllowedSigners;
use writ_exec::plan::{self, Step};
use writ_exec::signature::{self, SignatureFile};
use writ_exec::trust::Policy;

const TARGET_BYTES: usize = 1024 * 1024;
const SIGNERS: u8 = 5;
const RUNS: usize = 31;

fn main() {
    let sample = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plans/sample/production.plan"),
    )
    .unwrap();
    let mut p = plan::decode(&sample).unwrap();
    let base = sample.len();
    let mut size = base;
    let mut n = 0;
    while size < TARGET_BYTES {
        let command = format!(
            "docker run --rm registry.example.com/hey:3f2a1c9 bin/rails runner 'Task.perform({n:06})' --quiet"
        );
        size += "    $ \n".len() + command.len();
        p.phases[1].hosts[0].steps.push(Step {
            command,
            stdin: None,
        });
        n += 1;
    }
    let bytes = plan::encode(&p).unwrap();
    let keys: Vec<PrivateKey> = (1..=SIGNERS)
        .map(|i| {
            let pair = Ed25519Keypair::from_seed(&[i; 32]);
            PrivateKey::new(KeypairData::Ed25519(pair), format!("signer{i}")).unwrap()
        })
        .collect();
    let mut text = String::new();
    for (i, k) in keys.iter().enumerate() {
        let _ = writeln!(
            text,
            "signer{i}@example.com namespaces=\"writ-plan:production\" {}",
            k.public_key().to_openssh().unwrap()
        );
    }
    let signers = AllowedSigners::parse(Path::new("bench"), &text).unwrap();
    let policy = Policy::new(
        signers,
        NonZeroUsize::new(usize::from(SIGNERS)).unwrap(),
        "production",
    )
    .unwrap();
    let sigs: Vec<SignatureFile> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let pem = signature::sign(k, "production", &bytes).unwrap();
            SignatureFile::parse(Path::new(&format!("{i}.sig")), pem.as_bytes()).unwrap()
        })
        .collect();
    let now = "2027-01-01T00:00:00Z".parse().unwrap();

    let time = |f: &mut dyn FnMut()| -> Duration {
        f(); // warm up
        let mut t: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect();
        t.sort();
        t[RUNS / 2]
    };
    let whole = time(&mut || {
        let v = writ_exec::verify::verify(bytes.clone(), &sigs, &policy, now).unwrap();
        assert_eq!(v.signers().len(), usize::from(SIGNERS));
    });
    let signatures = time(&mut || {
        let r = policy.evaluate(&bytes, &sigs, now);
        assert!(r.is_met());
    });
    let decode = time(&mut || {
        plan::decode(&bytes).unwrap();
    });
    println!(
        "verify: {} byte plan ({} steps), {SIGNERS} ed25519 signatures, threshold {SIGNERS}, median of {RUNS}",
        bytes.len(),
        p.step_count()
    );
    println!("  whole verify (sha256, signatures, threshold, decode, checks): {whole:.2?}");
    println!("  signatures only (sha512 once + {SIGNERS} verifications):      {signatures:.2?}");
    println!("  canonical decode only (parse + re-encode + compare):          {decode:.2?}");
}
