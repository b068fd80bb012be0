//! `writ-exec`: the executor CLI.
fn main() {}
