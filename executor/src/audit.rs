//! The local audit log: JSON Lines, one record per run start/end, per step and per operator
//! action, each holding `prev` (sha256 of the previous line's exact bytes) and `hash` (sha256
//! of its own bytes before `,"hash"`), so [`verify`] detects an edited, removed or reordered
//! line. Field names follow ECS where one fits.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Error;
use crate::plan::Sha256Digest;

/// `prev` of the first line of a file.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit event. Empty optional fields are left out.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Record {
    /// When (RFC 3339, UTC, milliseconds).
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    /// `run.start`, `run.end`, `step`, `host.refused`, `lock.release`, ….
    #[serde(rename = "event.action")]
    pub action: String,
    /// `success`, `failure`, `unknown`.
    #[serde(rename = "event.outcome", skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Plan id (hex).
    #[serde(rename = "writ.plan.id")]
    pub plan_id: String,
    /// Plan serial.
    #[serde(rename = "writ.plan.serial")]
    pub serial: u64,
    /// Service.
    #[serde(rename = "service.name")]
    pub service: String,
    /// Destination.
    #[serde(rename = "writ.destination")]
    pub destination: String,
    /// Signers as `principal SHA256:…` (run records).
    #[serde(rename = "writ.signers", skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<String>,
    /// Who ran it.
    #[serde(rename = "user.name")]
    pub actor: String,
    /// Plan host name.
    #[serde(rename = "host.name", skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `SHA256:` fingerprint of the key the host presented.
    #[serde(rename = "writ.host_key", skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// Phase name.
    #[serde(rename = "writ.phase", skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// 1-based step number on the host.
    #[serde(rename = "writ.step", skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// sha256 (hex) of the exact command line sent.
    #[serde(
        rename = "process.command_line.sha256",
        skip_serializing_if = "Option::is_none"
    )]
    pub command_sha256: Option<String>,
    /// Exit code.
    #[serde(rename = "process.exit_code", skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u32>,
    /// Start of the step or run.
    #[serde(rename = "event.start", skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Duration in milliseconds.
    #[serde(rename = "event.duration_ms", skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Free text (masked; never a secret value).
    #[serde(rename = "message", skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Now, as the audit log writes times.
#[must_use]
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// An append-only audit file, continuing the chain of what is already in it.
pub struct AuditLog {
    path: PathBuf,
    file: File,
    prev: String,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Open (or create) `path`; the existing chain must verify, so a run never extends a
    /// tampered log.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let prev = if path.exists() {
            verify(path)?.head
        } else {
            GENESIS_PREV.to_owned()
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            prev,
        })
    }

    /// Append one record (written and flushed before this returns).
    pub fn append(&mut self, record: &Record) -> Result<(), Error> {
        let line = chain_line(record, &self.prev);
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\n');
        self.file.write_all(&bytes).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })?;
        self.prev = Sha256Digest::of(line.as_bytes()).hex();
        Ok(())
    }

    /// Flush to disk.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.file.sync_data().map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// sha256 of the last line written: anchors the chain (also sent to the hosts' logs).
    #[must_use]
    pub fn head(&self) -> &str {
        &self.prev
    }
}

fn chain_line(record: &Record, prev: &str) -> String {
    let json = serde_json::to_string(record).unwrap_or_else(|_| "{}".into());
    let body = json.strip_suffix('}').unwrap_or(&json);
    let prefix = format!("{body},\"prev\":\"{prev}\"");
    let hash = Sha256Digest::of(prefix.as_bytes()).hex();
    format!("{prefix},\"hash\":\"{hash}\"}}")
}

/// Result of a successful [`verify`].
#[derive(Debug)]
pub struct Verified {
    /// Number of records.
    pub lines: usize,
    /// sha256 of the last line (or [`GENESIS_PREV`] for an empty file).
    pub head: String,
}

/// Check every line of an audit file: valid JSON object, its own `hash`, and `prev` equal to
/// the sha256 of the previous line (the first line: [`GENESIS_PREV`]).
pub fn verify(path: &Path) -> Result<Verified, Error> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let broken = |line: usize, message: String| Error::AuditChain {
        path: path.to_owned(),
        line,
        message,
    };
    let mut prev = GENESIS_PREV.to_owned();
    let mut count = 0;
    let mut reader = BufReader::new(file);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let n = reader
            .read_until(b'\n', &mut raw)
            .map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        count += 1;
        if raw.pop() != Some(b'\n') {
            return Err(broken(
                count,
                "the last line has no newline (truncated?)".into(),
            ));
        }
        let line = std::str::from_utf8(&raw).map_err(|_| broken(count, "not UTF-8".into()))?;
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| broken(count, format!("not a JSON record: {e}")))?;
        let field = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(got_prev), Some(got_hash)) = (field("prev"), field("hash")) else {
            return Err(broken(count, "missing `prev` or `hash`".into()));
        };
        let suffix = format!(",\"hash\":\"{got_hash}\"}}");
        let Some(prefix) = line.strip_suffix(&suffix) else {
            return Err(broken(count, "`hash` is not the last field".into()));
        };
        if Sha256Digest::of(prefix.as_bytes()).hex() != got_hash {
            return Err(broken(
                count,
                "the line was changed after it was written".into(),
            ));
        }
        if got_prev != prev {
            return Err(broken(
                count,
                "`prev` does not match the line before it (a line was removed, reordered or changed)"
                    .into(),
            ));
        }
        prev = Sha256Digest::of(line.as_bytes()).hex();
    }
    Ok(Verified {
        lines: count,
        head: prev,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(action: &str) -> Record {
        Record {
            timestamp: "2026-12-03T00:00:00.000Z".into(),
            action: action.into(),
            plan_id: "ab".into(),
            ..Record::default()
        }
    }

    #[test]
    fn detects_edit_removal_and_reordering_of_any_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut log = AuditLog::open(&path).unwrap();
        for a in ["run.start", "step", "step", "run.end"] {
            log.append(&rec(a)).unwrap();
        }
        drop(log);
        // Continuing the chain in a second run keeps it valid.
        AuditLog::open(&path)
            .unwrap()
            .append(&rec("run.start"))
            .unwrap();
        let good = std::fs::read_to_string(&path).unwrap();
        assert_eq!(verify(&path).unwrap().lines, 5);
        let lines: Vec<&str> = good.lines().collect();
        for i in 0..lines.len() {
            let mut edited = lines.clone();
            let changed = edited[i]
                .replace("\"step\"", "\"stop\"")
                .replace("run.", "ran.");
            edited[i] = &changed;
            std::fs::write(&path, edited.join("\n") + "\n").unwrap();
            assert!(verify(&path).is_err(), "edit of line {i}");
            let mut removed = lines.clone();
            removed.remove(i);
            std::fs::write(&path, removed.join("\n") + "\n").unwrap();
            if i + 1 < lines.len() {
                assert!(verify(&path).is_err(), "removal of line {i}");
            }
            if i + 1 < lines.len() {
                let mut swapped = lines.clone();
                swapped.swap(i, i + 1);
                std::fs::write(&path, swapped.join("\n") + "\n").unwrap();
                assert!(verify(&path).is_err(), "swap of line {i}");
            }
        }
    }
}
