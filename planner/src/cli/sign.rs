//! `writ sign`. (Stub: replaced by the owner of this command.)

use std::process::ExitCode;

/// Arguments of `writ sign`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`writ sign` is not implemented yet")
}
