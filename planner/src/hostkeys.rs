//! Pinned SSH host keys from a known_hosts-format file committed with the config. Only exact,
//! unhashed host entries are accepted: a pinned key must be readable and reviewable, so hashed
//! names (`|1|…`), wildcards, negations and `@cert-authority`/`@revoked` markers are refused.

use std::collections::BTreeMap;

use writ_exec::plan::HostKey;

use crate::host::HostName;

/// A parsed known_hosts file: keys by lookup name (`host` or `[host]:port`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownHosts {
    keys: BTreeMap<String, Vec<HostKey>>,
}

/// A known_hosts line that cannot be used, with its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownHostsError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column of the offending field.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl KnownHosts {
    /// Parse known_hosts text: `names algorithm base64 [comment]` per line; `#` comments and
    /// blank lines are skipped.
    pub fn parse(text: &str) -> Result<Self, KnownHostsError> {
        let mut keys: BTreeMap<String, Vec<HostKey>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let column = line.len() - trimmed.len() + 1;
            let err = |column: usize, message: String, hint: Option<&str>| KnownHostsError {
                line: n,
                column,
                message,
                hint: hint.map(str::to_owned),
            };
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            if fields[0].starts_with('@') {
                return Err(err(
                    column,
                    format!("marker `{}` is not supported", fields[0].escape_debug()),
                    Some(
                        "pin each host's own key; certificate authorities and revocations are not used",
                    ),
                ));
            }
            if fields[0].starts_with('|') {
                return Err(err(
                    column,
                    "hashed host names cannot be reviewed".into(),
                    Some("write plain entries: run `ssh-keyscan` without `-H`"),
                ));
            }
            if fields.len() < 3 {
                return Err(err(
                    column,
                    "expected `HOST[,HOST…] ALGORITHM BASE64 [COMMENT]`".into(),
                    None,
                ));
            }
            let key = HostKey::parse(&format!("{} {}", fields[1], fields[2])).map_err(|m| {
                let col = line.find(fields[1]).map_or(column, |c| c + 1);
                err(
                    col,
                    m,
                    Some("copy the key exactly as `ssh-keyscan` prints it"),
                )
            })?;
            for name in fields[0].split(',') {
                if name.is_empty()
                    || name.starts_with('!')
                    || name.contains('*')
                    || name.contains('?')
                {
                    return Err(err(
                        column,
                        format!(
                            "host pattern `{}` is not an exact host",
                            name.escape_debug()
                        ),
                        Some(
                            "list each host by its exact name (wildcards and negations are not pinning)",
                        ),
                    ));
                }
                let entry = keys.entry(name.to_owned()).or_default();
                if !entry.contains(&key) {
                    entry.push(key.clone());
                    entry.sort();
                }
            }
        }
        Ok(Self { keys })
    }

    /// The keys pinned for `host` reached on `port` (`[host]:port` entries for ports other
    /// than 22; for port 22 both `host` and `[host]:22` are looked up), sorted.
    #[must_use]
    pub fn keys_for(&self, host: &HostName, port: u16) -> Vec<HostKey> {
        let mut out: Vec<HostKey> = self
            .keys
            .get(&host.known_hosts_name(port))
            .cloned()
            .unwrap_or_default();
        if port == 22
            && let Some(more) = self.keys.get(&format!("[{host}]:22"))
        {
            out.extend(more.iter().cloned());
        }
        out.sort();
        out.dedup();
        out
    }

    /// Number of distinct lookup names.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is pinned.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The command that fetches a host's ed25519 key, for error hints and `writ hostkeys`.
#[must_use]
pub fn keyscan_command(host: &HostName, port: u16) -> String {
    format!("ssh-keyscan -p {port} -t ed25519 {host}")
}

/// The hint shown when a host has no pinned key: how to fetch it and check it out of band.
#[must_use]
pub fn missing_key_hint(host: &HostName, port: u16, file: &str) -> String {
    format!(
        "fetch the key with `{} >> {file}` (or `writ hostkeys --write`), then check it out of band: \
         `ssh-keygen -lf {file}` prints its SHA256 fingerprint; compare it with the one the host shows \
         on its console (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) or that your cloud provider \
         shows for the instance, and commit the file only if they match",
        keyscan_command(host, port)
    )
}

/// Fetch `host`'s ed25519 key on `port` with the system `ssh-keyscan` (no shell involved).
/// The result is *unverified*: it is what the network answered, and must be checked out of
/// band before it is pinned.
pub fn scan(host: &HostName, port: u16, timeout_secs: u32) -> Result<Vec<HostKey>, String> {
    let out = std::process::Command::new("ssh-keyscan")
        .args([
            "-T",
            &timeout_secs.max(1).to_string(),
            "-p",
            &port.to_string(),
            "-t",
            "ed25519",
            "--",
        ])
        .arg(host.as_str())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh-keyscan: {e}"))?;
    let keys = parse_keyscan(&String::from_utf8_lossy(&out.stdout));
    if keys.is_empty() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .unwrap_or("no answer")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>();
        return Err(format!(
            "no ed25519 key from {}: {last}",
            host.known_hosts_name(port)
        ));
    }
    Ok(keys)
}

/// The keys in `ssh-keyscan` output (`name algorithm base64` lines; `#` lines skipped),
/// sorted and de-duplicated. Lines that do not parse are skipped.
#[must_use]
pub fn parse_keyscan(text: &str) -> Vec<HostKey> {
    let mut out: Vec<HostKey> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let _name = f.next()?;
            HostKey::parse(&format!("{} {}", f.next()?, f.next()?)).ok()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `existing` known_hosts text with one `name algorithm base64` line appended per entry
/// (a final newline is added to `existing` first when missing).
#[must_use]
pub fn append_entries(existing: &str, entries: &[(String, HostKey)]) -> String {
    let mut out = existing.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for (name, key) in entries {
        for part in [name.as_str(), " ", &key.algorithm, " ", &key.base64, "\n"] {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOC+y6QoPD8+3H8APSg7IQgLsla9JchE6VK5cQr4XVIs";

    #[test]
    fn looks_up_plain_and_bracketed_names() {
        let text = format!("# pinned\nweb-1,10.0.0.1 {KEY} c\n[web-2]:2222 {KEY}\n");
        let k = KnownHosts::parse(&text).unwrap();
        let h1: HostName = "web-1".parse().unwrap();
        let ip: HostName = "10.0.0.1".parse().unwrap();
        let h2: HostName = "web-2".parse().unwrap();
        assert_eq!(k.keys_for(&h1, 22).len(), 1);
        assert_eq!(k.keys_for(&ip, 22).len(), 1);
        assert!(k.keys_for(&h1, 2222).is_empty());
        assert_eq!(k.keys_for(&h2, 2222).len(), 1);
        assert!(k.keys_for(&h2, 22).is_empty());
    }

    #[test]
    fn keyscan_output_and_appending() {
        let out =
            format!("# web:22 SSH-2.0-OpenSSH_9.2\nweb {KEY}\nweb {KEY}\nweb ssh-ed25519 broken\n");
        let keys = parse_keyscan(&out);
        assert_eq!(keys.len(), 1);
        let text = append_entries("old line", &[("[web]:2222".into(), keys[0].clone())]);
        assert_eq!(text, format!("old line\n[web]:2222 {KEY}\n"));
        let parsed = KnownHosts::parse(&text.replace("old line", "# old"));
        assert_eq!(parsed.unwrap().len(), 1);
    }

    #[test]
    fn refuses_hashed_wildcard_marker_and_bad_keys() {
        for (text, line) in [
            (format!("|1|abc=|def= {KEY}\n"), 1),
            (format!("\n*.example.com {KEY}\n"), 2),
            (format!("@cert-authority * {KEY}\n"), 1),
            ("web ssh-ed25519 AAAAnot-a-key\n".to_owned(), 1),
            ("web ssh-ed25519\n".to_owned(), 1),
            (format!("!web {KEY}\n"), 1),
        ] {
            let e = KnownHosts::parse(&text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {}", e.message);
        }
    }
}
