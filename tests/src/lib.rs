//! Test-host harness: starts real sshd instances, keys and daemons for the end-to-end tests.

pub mod docker_env;
pub mod sshd;
pub mod world;
