//! writ executor library: the plan wire format ([`plan`]), signature verification, and (with
//! the default `ssh` feature) replay of verified plans over SSH.
//!
//! The planner depends on this crate with `default-features = false`, so it shares the one
//! implementation of the format and of signatures without pulling in the SSH stack.

mod error;
pub mod plan;

pub use error::Error;
pub mod allowed_signers;
mod input;
pub mod signature;
pub mod trust;
pub mod verify;

#[cfg(feature = "ssh")]
pub mod audit;
#[cfg(feature = "ssh")]
pub mod lock;
#[cfg(feature = "ssh")]
pub mod progress;
#[cfg(feature = "ssh")]
pub mod replay;
#[cfg(feature = "ssh")]
pub mod secrets;
#[cfg(feature = "ssh")]
pub mod ssh;
#[cfg(feature = "ssh")]
pub mod state;
