//! `writ keygen`. (Stub: replaced by the owner of this command.)

use std::process::ExitCode;

/// Arguments of `writ keygen`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`writ keygen` is not implemented yet")
}
