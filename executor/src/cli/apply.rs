//! `writ-exec apply`. (Stub: replaced by the owner of this command.)

use std::process::ExitCode;

/// Arguments of `writ-exec apply`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`writ-exec apply` is not implemented yet")
}
