//! `writ`: the planner CLI.
fn main() {}
