//! writ planner library: loads Kamal deploy config, renders it through shell-quoting templates
//! into a canonical plan (the format lives in `writ_exec::plan`), diffs plans and signs them.
//! The library never prints; the `writ` binary does.

pub mod chain;
pub mod command;
pub mod config;
pub mod diagnostic;
mod error;
pub mod host;
pub mod hostkeys;
pub mod keygen;
pub mod name;
pub mod operation;
pub mod plan_diff;
pub mod render;
pub mod role;
pub mod secret_ref;
pub mod shell;
pub mod show;
pub mod sign;
pub mod steps;
pub mod template;

pub use error::Error;
