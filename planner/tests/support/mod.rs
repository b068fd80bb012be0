//! Shared helpers for the `writ plan` CLI tests: run the real binary with pinned inputs in
//! temporary copies of config directories (outside any git repository).
#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::path::{Path, PathBuf};

/// `SOURCE_DATE_EPOCH` every test plans with: 2026-12-03T12:00:00Z.
pub const EPOCH: &str = "1796299200";

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `writ` with a clean environment for planning: fixed SOURCE_DATE_EPOCH, no colour forcing,
/// no git discovery above the temporary directories.
pub fn writ() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_writ"));
    cmd.env("SOURCE_DATE_EPOCH", EPOCH)
        .env_remove("CLICOLOR_FORCE")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A temporary copy of `examples/hey/config` as `<tmp>/config` (no plans, no git).
pub fn example_app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &workspace().join("examples/hey/config"),
        &dir.path().join("config"),
    );
    dir
}

/// Plan `args` (an operation and flags) for the config at `root`; panics with stderr unless
/// the exit code is `code`. Returns (stdout, stderr).
pub fn plan(root: &Path, args: &[&str], code: i32) -> (String, String) {
    let out = writ()
        .arg("plan")
        .arg("--config")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "writ plan {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// The plan file of `destination` under `root`.
pub fn read_plan(root: &Path, destination: &str) -> String {
    std::fs::read_to_string(root.join("plans").join(format!("{destination}.plan"))).unwrap()
}
