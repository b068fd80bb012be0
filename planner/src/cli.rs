//! Argument parsing and dispatch for `writ`. Each subcommand lives in `cli/<name>.rs` with its
//! own `Args` and `run`; this file only wires them and renders errors.
#![allow(
    clippy::print_stderr,
    reason = "the CLI edge is where errors are printed"
)]

mod hostkeys;
mod keygen;
mod plan;
mod show;
mod sign;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// writ plans Kamal-style deploys as reviewable, signed plans.
#[derive(Parser)]
#[command(name = "writ", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render the deploy config into plans/<destination>.plan and show the diff.
    Plan(plan::Args),
    /// Show a plan's header and a per-host, per-phase outline.
    Show(show::Args),
    /// Sign a plan (OpenSSH SSHSIG, namespace writ-plan:<destination>).
    Sign(sign::Args),
    /// Write a new ed25519 OpenSSH key pair for signing.
    Keygen(keygen::Args),
    /// Collect SSH host keys for the pinned-keys file (writes nothing without --write).
    Hostkeys(hostkeys::Args),
}

/// Exit code for a usage error (documented in docs/exit-codes.md).
const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Plan(a) => plan::run(a),
        Command::Show(a) => show::run(a),
        Command::Sign(a) => sign::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Hostkeys(a) => hostkeys::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Print `error:`, the `caused by:` chain and a `hint:` when the error carries one.
fn report(e: &anyhow::Error) {
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("caused by: {cause}");
    }
    if let Some(hint) = e.downcast_ref::<writ::Error>().and_then(writ::Error::hint) {
        eprintln!("hint: {hint}");
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(e) = e.downcast_ref::<writ::Error>() {
        return e.exit_code();
    }
    if let Some(e) = e.downcast_ref::<writ_exec::Error>() {
        return e.exit_code();
    }
    1
}
