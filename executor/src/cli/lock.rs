//! `writ-exec lock`. (Stub: replaced by the owner of this command.)

use std::process::ExitCode;

/// `writ-exec lock` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Not implemented yet.
    Status,
}

pub fn run(_command: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`writ-exec lock` is not implemented yet")
}
