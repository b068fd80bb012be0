//! `writ-exec verify`. (Stub: replaced by the owner of this command.)

use std::process::ExitCode;

/// Arguments of `writ-exec verify`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`writ-exec verify` is not implemented yet")
}
