//! `writ plan`. (Stub: replaced by the owner of this command.)

use std::process::ExitCode;

/// Arguments of `writ plan`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`writ plan` is not implemented yet")
}
