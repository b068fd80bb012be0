//! Our own parser for OpenSSH allowed_signers files (ssh-keygen(1), "ALLOWED SIGNERS"): the
//! executor's list of who may sign plans, for which namespaces and when.
//!
//! Each non-comment line is `principals [options] keytype base64 [comment]`. Supported options:
//! `namespaces="pattern-list"`, `valid-after="TIME"`, `valid-before="TIME"`. `cert-authority`
//! and any other option are rejected by name, so a policy never means less than it says.
//! Deliberate differences from OpenSSH, each failing closed:
//! - times must carry the `Z` (UTC) suffix, so a window does not depend on the executor's
//!   time zone;
//! - negated principals (`!bob@x`) are rejected: writ counts principals, and a negation
//!   names nobody;
//! - quoted principals and backslash escapes inside option values are rejected.
//!
//! Errors name `file:line:col`.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use ssh_key::PublicKey;

use crate::Error;

/// Largest allowed_signers file accepted, in bytes.
pub const MAX_ALLOWED_SIGNERS_BYTES: usize = 1024 * 1024;

/// One line of an allowed_signers file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    /// The principals field, split on commas; never empty, no negations.
    pub principals: Vec<String>,
    /// The `namespaces=` pattern list, split on commas; `None` allows every namespace.
    pub namespaces: Option<Vec<String>>,
    /// `valid-after=`: the key does not count before this instant.
    pub valid_after: Option<Timestamp>,
    /// `valid-before=`: the key does not count after this instant.
    pub valid_before: Option<Timestamp>,
    /// The signer's public key.
    pub key: PublicKey,
}

/// Why an [`Entry`] does not apply at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The instant is inside the window.
    Open,
    /// The instant is before `valid-after`.
    NotYetValid(Timestamp),
    /// The instant is after `valid-before`.
    Expired(Timestamp),
}

impl Entry {
    /// Whether `namespace` matches the line's `namespaces=` pattern list (OpenSSH
    /// `match_pattern_list` semantics: a matching negated pattern wins).
    #[must_use]
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|patterns| match_pattern_list(namespace, patterns))
    }

    /// Whether `now` is inside `[valid-after, valid-before]` (both ends inclusive, as in
    /// OpenSSH).
    #[must_use]
    pub fn window(&self, now: Timestamp) -> Window {
        if let Some(after) = self.valid_after
            && now < after
        {
            return Window::NotYetValid(after);
        }
        if let Some(before) = self.valid_before
            && now > before
        {
            return Window::Expired(before);
        }
        Window::Open
    }

    /// The principals as written (comma-joined): the identity shown and counted.
    #[must_use]
    pub fn principal(&self) -> String {
        self.principals.join(",")
    }
}

/// A parsed allowed_signers file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedSigners {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// The lines that name a key, in file order.
    pub entries: Vec<Entry>,
}

impl AllowedSigners {
    /// Read and parse the file at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes =
            crate::input::read_capped(path, MAX_ALLOWED_SIGNERS_BYTES).map_err(|e| match e {
                Error::TooLarge { .. } => Error::AllowedSigners {
                    path: path.to_owned(),
                    line: 1,
                    col: 1,
                    message: format!("file is over {MAX_ALLOWED_SIGNERS_BYTES} bytes"),
                },
                other => other,
            })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let before = &bytes[..e.valid_up_to()];
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            let col = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
            Error::AllowedSigners {
                path: path.to_owned(),
                line,
                col,
                message: "not valid UTF-8".into(),
            }
        })?;
        Self::parse(path, text)
    }

    /// Parse `text`; `path` only names the source in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        if text.len() > MAX_ALLOWED_SIGNERS_BYTES {
            return Err(Error::AllowedSigners {
                path: path.to_owned(),
                line: 1,
                col: 1,
                message: format!("file is over {MAX_ALLOWED_SIGNERS_BYTES} bytes"),
            });
        }
        let mut entries = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line = i + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            match parse_line(raw) {
                Ok(None) => {}
                Ok(Some(mut entry)) => {
                    entry.line = line;
                    entries.push(entry);
                }
                Err((col, message)) => {
                    return Err(Error::AllowedSigners {
                        path: path.to_owned(),
                        line,
                        col,
                        message,
                    });
                }
            }
        }
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    /// The lines that name `key` (compared by key data; comments do not matter).
    pub fn entries_for<'a>(
        &'a self,
        key: &'a ssh_key::public::KeyData,
    ) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.key.key_data() == key)
    }
}

/// A parse failure: 1-based column and message.
type LineError = (usize, String);

/// A whitespace-separated token and its byte offset in the line.
struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_space(&mut self) {
        while self
            .line
            .as_bytes()
            .get(self.pos)
            .is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            self.pos += 1;
        }
    }

    /// Next token (up to whitespace outside double quotes); returns (1-based column, token).
    fn token(&mut self) -> Result<Option<(usize, &'a str)>, LineError> {
        self.skip_space();
        let start = self.pos;
        let bytes = self.line.as_bytes();
        let mut quoted = None;
        while let Some(&b) = bytes.get(self.pos) {
            if b == b'"' {
                quoted = if quoted.is_some() {
                    None
                } else {
                    Some(self.pos)
                };
            } else if quoted.is_none() && (b == b' ' || b == b'\t') {
                break;
            }
            self.pos += 1;
        }
        if let Some(q) = quoted {
            return Err((q + 1, "unterminated double quote".into()));
        }
        Ok((self.pos > start).then(|| (start + 1, &self.line[start..self.pos])))
    }
}

fn parse_line(line: &str) -> Result<Option<Entry>, LineError> {
    if let Some((i, c)) = line
        .char_indices()
        .find(|(_, c)| c.is_control() && *c != '\t')
    {
        return Err((i + 1, format!("control character U+{:04X}", u32::from(c))));
    }
    let mut cur = Cursor { line, pos: 0 };
    cur.skip_space();
    if cur.pos == line.len() || line[cur.pos..].starts_with('#') {
        return Ok(None);
    }
    let (pcol, principals) = cur
        .token()?
        .ok_or_else(|| (cur.pos + 1, "expected principals".to_owned()))?;
    let principals = parse_principals(pcol, principals)?;
    let (col, second) = cur.token()?.ok_or_else(|| {
        (
            line.len() + 1,
            "expected a key type after the principals".to_owned(),
        )
    })?;
    let mut entry = Entry {
        line: 0,
        principals,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key: PublicKey::from(ssh_key::public::Ed25519PublicKey([0; 32])),
    };
    let (kcol, keytype) = if is_key_type(second) {
        (col, second)
    } else if ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|p| second.starts_with(p))
    {
        return Err((col, format!("key type `{second}` is not supported")));
    } else {
        parse_options(col, second, &mut entry)?;
        cur.token()?.ok_or_else(|| {
            (
                line.len() + 1,
                "expected a key type after the options".to_owned(),
            )
        })?
    };
    if !is_key_type(keytype) {
        return Err((kcol, format!("`{keytype}` is not a supported key type")));
    }
    let (bcol, base64) = cur.token()?.ok_or_else(|| {
        (
            line.len() + 1,
            format!("expected the base64 key after `{keytype}`"),
        )
    })?;
    // Anything after the key is a comment, as in OpenSSH.
    entry.key = PublicKey::from_openssh(&format!("{keytype} {base64}"))
        .map_err(|e| (bcol, format!("invalid {keytype} key: {e}")))?;
    if entry.key.algorithm().as_str() != keytype {
        return Err((
            kcol,
            format!(
                "key type `{keytype}` does not match the key, which is `{}`",
                entry.key.algorithm()
            ),
        ));
    }
    Ok(Some(entry))
}

fn is_key_type(s: &str) -> bool {
    matches!(
        s,
        "ssh-ed25519"
            | "ssh-rsa"
            | "ecdsa-sha2-nistp256"
            | "ecdsa-sha2-nistp384"
            | "ecdsa-sha2-nistp521"
            | "sk-ssh-ed25519@openssh.com"
            | "sk-ecdsa-sha2-nistp256@openssh.com"
    ) || s.contains("-cert-v01@openssh.com")
}

fn parse_principals(col: usize, field: &str) -> Result<Vec<String>, LineError> {
    if field.starts_with('"') {
        return Err((col, "quoted principals are not supported".into()));
    }
    let mut out = Vec::new();
    let mut offset = 0;
    for p in field.split(',') {
        let at = col + offset;
        offset += p.len() + 1;
        if p.is_empty() {
            return Err((at, "empty principal in the principals list".into()));
        }
        if p.starts_with('!') {
            return Err((
                at,
                format!(
                    "negated principal `{p}` is not supported: writ counts principals, and a negation names nobody"
                ),
            ));
        }
        if let Some((i, c)) = p
            .char_indices()
            .find(|(_, c)| *c == '"' || !c.is_ascii_graphic())
        {
            return Err((at + i, format!("character `{c}` in principal `{p}`")));
        }
        out.push(p.to_owned());
    }
    Ok(out)
}

fn parse_options(col: usize, field: &str, entry: &mut Entry) -> Result<(), LineError> {
    let mut offset = 0;
    for opt in split_unquoted_commas(field) {
        let at = col + offset;
        offset += opt.len() + 1;
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        let lower = name.to_ascii_lowercase();
        let value_at = at + name.len() + 1;
        match lower.as_str() {
            "cert-authority" => {
                return Err((
                    at,
                    "`cert-authority` is not supported: list each signer's own key".into(),
                ));
            }
            "namespaces" => {
                if entry.namespaces.is_some() {
                    return Err((at, "`namespaces` given twice".into()));
                }
                let v = dequote(value_at, value, &lower)?;
                let patterns: Vec<String> = v.split(',').map(str::to_owned).collect();
                if patterns.iter().any(String::is_empty) {
                    return Err((value_at, "empty pattern in `namespaces`".into()));
                }
                entry.namespaces = Some(patterns);
            }
            "valid-after" | "valid-before" => {
                let v = dequote(value_at, value, &lower)?;
                let t = parse_time(v).map_err(|m| (value_at, format!("{lower}: {m}")))?;
                let slot = if lower == "valid-after" {
                    &mut entry.valid_after
                } else {
                    &mut entry.valid_before
                };
                if slot.is_some() {
                    return Err((at, format!("`{lower}` given twice")));
                }
                *slot = Some(t);
            }
            "" => return Err((at, "empty option".into())),
            _ => {
                return Err((
                    at,
                    format!(
                        "unknown option `{name}` (supported: namespaces, valid-after, valid-before)"
                    ),
                ));
            }
        }
    }
    if let (Some(a), Some(b)) = (entry.valid_after, entry.valid_before)
        && b <= a
    {
        return Err((col, "valid-before is not after valid-after".into()));
    }
    Ok(())
}

fn split_unquoted_commas(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn dequote<'a>(col: usize, value: Option<&'a str>, name: &str) -> Result<&'a str, LineError> {
    let v = value.ok_or_else(|| (col - 1, format!("`{name}` needs a value: {name}=\"…\"")))?;
    let inner = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|_| v.len() >= 2)
        .ok_or_else(|| {
            (
                col,
                format!("the value of `{name}` must be in double quotes"),
            )
        })?;
    if let Some(i) = inner.find(['"', '\\']) {
        return Err((col + 1 + i, format!("quote or backslash inside `{name}`")));
    }
    if inner.is_empty() {
        return Err((col, format!("empty `{name}`")));
    }
    Ok(inner)
}

/// `YYYYMMDD[HHMM[SS]]Z`, UTC.
fn parse_time(s: &str) -> Result<Timestamp, String> {
    let digits = s.strip_suffix('Z').ok_or_else(|| {
        format!(
            "`{s}` has no `Z` suffix; writ reads UTC times only (write `{s}Z`) so a key's window does not depend on the executor's time zone"
        )
    })?;
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not YYYYMMDD[HHMM[SS]]Z"));
    }
    let field = |r: std::ops::Range<usize>| digits.get(r).unwrap_or("00");
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        field(0..4),
        field(4..6),
        field(6..8),
        field(8..10),
        field(10..12),
        field(12..14)
    );
    iso.parse::<Timestamp>()
        .map_err(|e| format!("`{s}` is not a valid time: {e}"))
}

/// OpenSSH `match_pattern_list`: true if some pattern matches and no negated pattern does.
#[must_use]
pub fn match_pattern_list(s: &str, patterns: &[String]) -> bool {
    let mut positive = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(s.as_bytes(), neg.as_bytes()) {
                return false;
            }
        } else if glob(s.as_bytes(), p.as_bytes()) {
            positive = true;
        }
    }
    positive
}

/// `*` matches any run, `?` any one byte; everything else literally. Iterative with one
/// backtrack point, so it is linear-ish and cannot blow the stack on hostile patterns.
fn glob(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn parse(text: &str) -> Result<AllowedSigners, Error> {
        AllowedSigners::parse(Path::new("signers"), text)
    }

    #[test]
    fn accepts_the_openssh_forms() {
        let text = format!(
            "# comment\n\n   \nalice@x {KEY}\nbob@y,robert@y namespaces=\"writ-plan:prod*,!writ-plan:prod-eu\",VALID-AFTER=\"20260101Z\",valid-before=\"202712312359Z\" {KEY} bob's key\r\n  \tcarol@z namespaces=\"a b\" {KEY}\n"
        );
        let s = parse(&text).unwrap();
        assert_eq!(s.entries.len(), 3);
        let [a, b, c] = &s.entries[..] else { panic!() };
        assert_eq!((a.line, a.principal()), (4, "alice@x".to_owned()));
        assert!(a.allows_namespace("anything"));
        assert_eq!(b.line, 5);
        assert_eq!(b.principals, ["bob@y", "robert@y"]);
        assert!(b.allows_namespace("writ-plan:production"));
        assert!(!b.allows_namespace("writ-plan:prod-eu"));
        assert!(!b.allows_namespace("writ-plan:staging"));
        assert_eq!(b.valid_after, Some("2026-01-01T00:00:00Z".parse().unwrap()));
        assert_eq!(
            b.valid_before,
            Some("2027-12-31T23:59:00Z".parse().unwrap())
        );
        assert_eq!(c.namespaces.as_deref(), Some(&["a b".to_owned()][..]));
    }

    #[test]
    fn window_is_inclusive_at_both_ends() {
        let s = parse(&format!(
            "a@x valid-after=\"20260101Z\",valid-before=\"20260102Z\" {KEY}"
        ))
        .unwrap();
        let e = &s.entries[0];
        let t = |x: &str| x.parse::<Timestamp>().unwrap();
        assert_eq!(e.window(t("2026-01-01T00:00:00Z")), Window::Open);
        assert_eq!(e.window(t("2026-01-02T00:00:00Z")), Window::Open);
        assert!(matches!(
            e.window(t("2025-12-31T23:59:59Z")),
            Window::NotYetValid(_)
        ));
        assert!(matches!(
            e.window(t("2026-01-02T00:00:01Z")),
            Window::Expired(_)
        ));
    }

    #[test]
    fn rejects_bad_lines_with_line_and_column() {
        let k = KEY;
        let cases: Vec<(String, usize, usize, &str)> =
            vec![
            (format!("a@x cert-authority {k}"), 1, 5, "cert-authority"),
            (format!("a@x no-touch-required {k}"), 1, 5, "unknown option"),
            (format!("a@x namespaces=\"x\",verify-required {k}"), 1, 20, "unknown option"),
            (format!("a@x namespaces=x {k}"), 1, 16, "double quotes"),
            (format!("a@x namespaces {k}"), 1, 15, "needs a value"),
            (format!("a@x namespaces=\"\" {k}"), 1, 16, "empty `namespaces`"),
            (format!("a@x namespaces=\"a\",namespaces=\"b\" {k}"), 1, 20, "twice"),
            (format!("a@x valid-before=\"20271231\" {k}"), 1, 18, "no `Z` suffix"),
            (format!("a@x valid-before=\"2027123Z\" {k}"), 1, 18, "YYYYMMDD"),
            (format!("a@x valid-before=\"20271331Z\" {k}"), 1, 18, "not a valid time"),
            (
                format!("a@x valid-after=\"20280101Z\",valid-before=\"20270101Z\" {k}"),
                1,
                5,
                "not after",
            ),
            (format!("a@x namespaces=\"x {k}"), 1, 16, "unterminated"),
            (format!("\n\n  !a@x {k}"), 3, 3, "negated"),
            (format!("a@x,!b@x {k}"), 1, 5, "negated"),
            (format!("a@x,,b@x {k}"), 1, 5, "empty principal"),
            (format!("\"a@x\" {k}"), 1, 1, "quoted principals"),
            ("a@x".into(), 1, 4, "expected a key type"),
            ("a@x ssh-ed25519".into(), 1, 16, "expected the base64 key"),
            ("a@x ssh-ed25519 AAAA".into(), 1, 17, "invalid ssh-ed25519 key"),
            ("a@x ssh-dss AAAA".into(), 1, 5, "key type `ssh-dss` is not supported"),
            (
                "a@x ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
                    .into(),
                1,
                13,
                "invalid ssh-rsa key",
            ),
            ("a@x namespaces=\"x\"".into(), 1, 19, "expected a key type after the options"),
            (format!("a@x\u{7} {k}"), 1, 4, "control character"),
            (format!("al\u{202e}ce@x {k}"), 1, 3, "character"),
        ];
        let mut failures = Vec::new();
        for (text, line, col, needle) in cases {
            let msg = parse(&text).unwrap_err().to_string();
            if !(msg.starts_with(&format!("signers:{line}:{col}: ")) && msg.contains(needle)) {
                failures.push(format!("{text:?}: {msg}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn pattern_lists_follow_openssh() {
        let l = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
        assert!(match_pattern_list(
            "writ-plan:production",
            &l("writ-plan:*")
        ));
        assert!(match_pattern_list("abc", &l("a?c")));
        assert!(!match_pattern_list("abcd", &l("a?c")));
        assert!(match_pattern_list("x", &l("*")));
        assert!(!match_pattern_list("x", &l("*,!x")));
        assert!(!match_pattern_list("x", &l("!y")));
        assert!(match_pattern_list("aXbXc", &l("a*b*c")));
        assert!(!match_pattern_list("aXbXd", &l("a*b*c")));
        assert!(match_pattern_list("", &l("*")));
    }

    #[test]
    fn load_reports_invalid_utf8_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("as");
        std::fs::write(&path, b"# ok\nab\xffc").unwrap();
        let msg = AllowedSigners::load(&path).unwrap_err().to_string();
        assert!(msg.ends_with(":2:3: not valid UTF-8"), "{msg}");
    }
}
