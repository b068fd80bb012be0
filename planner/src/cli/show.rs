//! `writ show`. (Stub: replaced by the owner of this command.)

use std::process::ExitCode;

/// Arguments of `writ show`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`writ show` is not implemented yet")
}
