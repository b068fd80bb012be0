//! The one POSIX shell quoter: the only code that turns a value into shell text.
//!
//! [`quote`] makes any string (without NUL) into exactly one shell word that `/bin/sh` (dash)
//! and bash read back as the same bytes. The output is printable ASCII plus LF, and no physical
//! line of it ends in a space, because the plan format allows nothing else (see
//! docs/plan-format.md):
//!
//! - `[A-Za-z0-9_./:@,+%=-]+` not starting with `-` stays bare (`app-web-123`);
//! - everything else is single-quoted, a `'` written as `'\''`;
//! - a newline closes the quote and is written as `"<LF>"` (so the line before it ends in `"`);
//! - any other byte outside 0x20..=0x7E (tab, CR, U+00A0, bidi controls, any non-ASCII UTF-8) is
//!   written as `"$(printf '\ooo…')"`, 3-digit octal per byte. dash has no `$'…'`, and command
//!   substitution strips only trailing newlines, which is why LF takes the other route.
//!
//! ```
//! assert_eq!(writ::shell::quote("app-web-123").unwrap(), "app-web-123");
//! assert_eq!(writ::shell::quote("it's").unwrap(), r"'it'\''s'");
//! assert_eq!(writ::shell::quote("").unwrap(), "''");
//! assert_eq!(writ::shell::quote("a\nb").unwrap(), "'a'\"\n\"'b'");
//! assert_eq!(writ::shell::quote("\u{e9}").unwrap(), r#""$(printf '\303\251')""#);
//! assert!(writ::shell::quote("a\0b").is_err());
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

/// A value that cannot be one shell word: it holds a NUL byte (no C string can).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value holds a NUL byte, which no shell argument can carry")]
pub struct NulByte;

/// Whether `s` is a word the shell reads literally without any quoting.
#[must_use]
pub fn is_bare(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:@,+%=-".contains(&b))
}

/// Quote `s` as exactly one POSIX shell word (see the module docs for the rules).
pub fn quote(s: &str) -> Result<Cow<'_, str>, NulByte> {
    if s.contains('\0') {
        return Err(NulByte);
    }
    if is_bare(s) {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\'' => out.push_str(r"'\''"),
            b'\n' => out.push_str("'\"\n\"'"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                out.push_str("'\"$(printf '");
                while i < bytes.len() && !(0x20..=0x7e).contains(&bytes[i]) && bytes[i] != b'\n' {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\{:03o}", bytes[i]);
                    i += 1;
                }
                out.push_str("')\"'");
                continue;
            }
        }
        i += 1;
    }
    out.push('\'');
    // Drop the empty `''` a leading or trailing escape leaves behind (`''\''x'` → `\''x'`).
    if out.len() > 2 && out.ends_with("''") {
        out.truncate(out.len() - 2);
    }
    if out.len() > 2 && out.starts_with("''") {
        out.drain(..2);
    }
    Ok(Cow::Owned(out))
}

/// Quote every word and join them with single spaces.
pub fn join<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<String, NulByte> {
    let mut out = String::new();
    for (i, w) in words.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote(w)?);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;

    /// Run `script` with `shell -c` and return its stdout bytes; panics on a non-zero exit.
    pub(crate) fn run(shell: &str, script: &str) -> Vec<u8> {
        let out = Command::new(shell).arg("-c").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{shell} failed on {script:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The argv a shell hands to a program, as seen by a printf probe: each argument followed
    /// by a NUL.
    pub(crate) fn probe_args(shell: &str, words: &str) -> Vec<Vec<u8>> {
        let out = run(shell, &format!("printf '%s\\0' {words}"));
        let mut args: Vec<Vec<u8>> = out.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
        assert_eq!(args.pop(), Some(Vec::new()), "probe output ends with NUL");
        args
    }

    #[test]
    fn golden_quotes() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("a=b,c:d@e%f+g/h.i_j-k", "a=b,c:d@e%f+g/h.i_j-k"),
            ("", "''"),
            ("-rf", "'-rf'"),
            ("a b", "'a b'"),
            ("it's", r"'it'\''s'"),
            ("'", r"\'"),
            ("''", r"\'''\'"),
            ("$(touch x)", "'$(touch x)'"),
            ("`id`", "'`id`'"),
            ("{a,b}", "'{a,b}'"),
            ("a\nb", "'a'\"\n\"'b'"),
            ("\n", "\"\n\""),
            ("a \n", "'a '\"\n\""),
            ("tab\there", r#"'tab'"$(printf '\011')"'here'"#),
            ("\u{a0}", r#""$(printf '\302\240')""#),
            ("x\u{202e}y", r#"'x'"$(printf '\342\200\256')"'y'"#),
            ("\r", r#""$(printf '\015')""#),
        ];
        for (input, want) in cases {
            assert_eq!(quote(input).unwrap(), *want, "{input:?}");
        }
    }

    #[test]
    fn nul_is_an_error() {
        assert_eq!(quote("a\0"), Err(NulByte));
        assert_eq!(join(["ok", "\0"]), Err(NulByte));
    }

    #[test]
    fn output_is_printable_ascii_lines_without_trailing_space() {
        for s in ["a \n b", " \n", "\t\n\t", "é \n", "x  "] {
            let q = quote(s).unwrap();
            for line in q.split('\n') {
                assert!(line.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{q:?}");
                assert!(!line.ends_with(' '), "{q:?}");
            }
        }
    }

    #[test]
    fn injection_corpus_never_runs() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let m = marker.display();
        let corpus = [
            format!("$(touch {m})"),
            format!("`touch {m}`"),
            format!("'; touch {m}; '"),
            format!("\"; touch {m}; \""),
            format!("x\ntouch {m}"),
            format!("x'\ntouch {m}\n'"),
            format!("${{IFS}}$(touch${{IFS}}{m})"),
            format!("\\'; touch {m} #"),
            format!("a\u{a0}$(touch {m})"),
            format!("\t`touch {m}`\r\n"),
        ];
        for shell in ["/bin/sh", "bash"] {
            for value in &corpus {
                let args = probe_args(shell, &quote(value).unwrap());
                assert_eq!(args, vec![value.as_bytes().to_vec()], "{shell} {value:?}");
                assert!(!marker.exists(), "{shell} ran {value:?}");
            }
        }
    }

    fn value() -> impl Strategy<Value = String> {
        let biased = proptest::collection::vec(
            prop_oneof![
                Just('\''),
                Just('"'),
                Just('\\'),
                Just('$'),
                Just('`'),
                Just('\n'),
                Just('{'),
                Just('}'),
                Just('\u{a0}'),
                Just('\u{202e}'),
                Just('!'),
                Just('*'),
                Just('~'),
                Just('#'),
                Just('-'),
                Just(' '),
                Just('\t'),
                Just('\r'),
                Just('('),
                Just(';'),
                Just('&'),
                Just('|'),
                Just('='),
                Just('a'),
                Just('é'),
            ],
            0..24,
        )
        .prop_map(|v| v.into_iter().collect::<String>());
        prop_oneof![biased, "[^\\x00]{0,40}"]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn quoted_value_is_one_argument_in_sh_and_bash(v in value()) {
            let q = quote(&v).unwrap();
            for line in q.split('\n') {
                prop_assert!(line.bytes().all(|b| (0x20..=0x7e).contains(&b)));
                prop_assert!(!line.ends_with(' '));
            }
            for shell in ["/bin/sh", "bash"] {
                let args = probe_args(shell, &q);
                prop_assert_eq!(&args, &vec![v.as_bytes().to_vec()], "{} {:?} -> {}", shell, v, q);
            }
        }

        #[test]
        fn joined_words_stay_separate(a in value(), b in value()) {
            let line = join([a.as_str(), b.as_str()]).unwrap();
            let args = probe_args("/bin/sh", &line);
            prop_assert_eq!(args, vec![a.into_bytes(), b.into_bytes()]);
        }
    }
}
