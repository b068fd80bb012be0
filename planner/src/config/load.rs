//! Reading the config files from disk: `config/deploy.yml`, the destination overlay and the
//! pinned host keys, then merge, validation and the source digest.

use std::path::Path;

use crate::Error;
use crate::config::Config;

/// Load `config/deploy.yml` (and `config/deploy.<destination>.yml` when `destination` is
/// given) from `config_dir_or_file` — a directory holding `config/`, the `config` directory,
/// or the `deploy.yml` file — validate it and pin every host's key from the known_hosts file
/// named by `x-writ.host_keys`. A host without a pinned key is an error.
pub fn load(config_dir_or_file: &Path, destination: Option<&str>) -> Result<Config, Error> {
    let _ = (config_dir_or_file, destination);
    Err(not_yet())
}

/// Like [`load`], but hosts without a pinned key are allowed (their `host_keys` entry is
/// absent) and a missing known_hosts file is not an error. For `writ hostkeys`, which collects
/// the keys; never for planning.
pub fn load_unpinned(
    config_dir_or_file: &Path,
    destination: Option<&str>,
) -> Result<Config, Error> {
    let _ = (config_dir_or_file, destination);
    Err(not_yet())
}

fn not_yet() -> Error {
    Error::Config {
        diagnostic: Box::new(crate::diagnostic::Diagnostic::new(
            crate::diagnostic::Location::default(),
            "",
            "config loading is not implemented yet",
        )),
    }
}
