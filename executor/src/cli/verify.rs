//! `writ-exec verify PLAN --allowed-signers FILE --threshold N --destination NAME`: run every
//! trust check on a plan without connecting anywhere, and say who signed or what is missing.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the CLI edge prints the report"
)]

use std::process::ExitCode;

use writ_exec::Error;
use writ_exec::trust::{Rejected, SignatureReport};

use super::apply::TrustArgs;

/// Arguments of `writ-exec verify`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    trust: TrustArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args { trust } = args;
    match trust.verify() {
        Ok(verified) => {
            let plan = verified.plan();
            println!("plan {} verified", verified.id());
            println!(
                "  {} {} to {}, serial {}, expires {}",
                plan.service, plan.operation, plan.destination, plan.serial, plan.expires
            );
            print!("{}", signer_lines(verified.report()));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if let Error::BelowThreshold { plan_id, report } = &e {
                eprintln!("plan {plan_id}");
                eprint!("{}", signer_lines(report));
            }
            Err(e.into())
        }
    }
}

/// Who counted, then what did not and why.
fn signer_lines(report: &SignatureReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "signed by {} of {} required:",
        report.counted.len(),
        report.threshold
    );
    if report.counted.is_empty() {
        out.push_str("  (nobody)\n");
    }
    for s in &report.counted {
        let _ = writeln!(out, "  {} {}", s.principal, s.fingerprint);
    }
    if !report.rejected.is_empty() {
        out.push_str("not counted:\n");
        for r in &report.rejected {
            let _ = writeln!(out, "  {}", rejected_line(r));
        }
    }
    out
}

fn rejected_line(r: &Rejected) -> String {
    let file = r.file.file_name().map_or_else(
        || r.file.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    match &r.principal {
        Some(p) => format!("{p} {} ({file}): {}", r.fingerprint, r.reason),
        None => format!("{} ({file}): {}", r.fingerprint, r.reason),
    }
}
