//! `writ`: the planner CLI. Parses arguments, runs one command, prints the error chain and maps
//! it to a documented exit code (docs/exit-codes.md).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
