//! writ planner library: loads Kamal deploy config, renders it through shell-quoting templates
//! into a canonical plan (the format lives in `writ_exec::plan`), diffs plans and signs them.
//! The library never prints; the `writ` binary does.

pub mod chain;
pub mod command;
mod error;
pub mod plan_diff;
pub mod render;
pub mod shell;
pub mod template;

pub use error::Error;
