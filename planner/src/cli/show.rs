//! `writ show PLAN`: print a plan's header and a per-host, per-phase outline for humans.
#![allow(clippy::print_stdout, reason = "the CLI edge prints the result")]

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `writ show`.
#[derive(clap::Args)]
pub struct Args {
    /// The plan file.
    plan: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args { plan: path } = args;
    let bytes = std::fs::read(&path).map_err(|source| writ::Error::Io {
        path: path.clone(),
        source,
    })?;
    let plan = writ_exec::plan::decode(&bytes).map_err(writ::Error::from)?;
    let signatures = writ_exec::signature::load_dir(&writ_exec::signature::signatures_dir(&path))
        .map_or(0, |s| s.len());
    print!(
        "{}",
        writ::show::render(&plan, writ_exec::plan::plan_id(&bytes), signatures)
    );
    Ok(ExitCode::SUCCESS)
}
