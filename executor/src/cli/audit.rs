//! `writ-exec audit verify FILE`: check an audit log's hash chain.
#![allow(clippy::print_stdout, reason = "the CLI edge prints the result")]

use std::path::PathBuf;
use std::process::ExitCode;

/// `writ-exec audit` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Check that no line of an audit log was edited, removed or reordered.
    Verify {
        /// The audit log (JSON Lines).
        file: PathBuf,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Verify { file } => {
            let v = writ_exec::audit::verify(&file)?;
            println!(
                "{}: audit chain ok, {} records, head sha256:{}",
                file.display(),
                v.lines,
                v.head
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
