//! `writ hostkeys`. (Stub: replaced by the owner of this command.)

use std::process::ExitCode;

/// Arguments of `writ hostkeys`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`writ hostkeys` is not implemented yet")
}
