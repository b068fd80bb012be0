//! Secret values for a run: resolved once, before the first connection, from the environment,
//! a dotenv file (parsed, never executed) or an explicit command adapter; held in zeroizing
//! memory; streamed only on a step's stdin; masked as `[secret:NAME]` in everything shown.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use crate::Error;
use crate::plan::Stdin;

/// Where secret values come from.
#[derive(Clone, Debug)]
pub enum SecretSource {
    /// Environment variables of the same name (the default).
    Env,
    /// A dotenv file: `NAME=value` lines, `#` comments, optional `export `, single or double
    /// quotes. Nothing in it is expanded or executed.
    File(PathBuf),
    /// A command template run once per secret, `{name}` replaced by the secret's name, e.g.
    /// `op read op://deploy/{name}/password`. Split on spaces, run without a shell; its stdout
    /// (one trailing newline removed) is the value.
    Command(String),
}

/// The resolved values of the secrets one plan names.
#[derive(Default)]
pub struct Secrets {
    values: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values.keys()).finish()
    }
}

impl Secrets {
    /// Resolve every name in `names` from `source`. A missing or empty secret is an error that
    /// names it (and never shows a value).
    pub fn resolve(names: &BTreeSet<&str>, source: &SecretSource) -> Result<Self, Error> {
        let mut values = BTreeMap::new();
        let file = match source {
            SecretSource::File(path) => Some(parse_dotenv_file(path)?),
            _ => None,
        };
        for &name in names {
            let value = match source {
                SecretSource::Env => match std::env::var_os(name) {
                    Some(v) => Zeroizing::new(v.into_encoded_bytes()),
                    None => return Err(missing(name, "not set in the environment")),
                },
                SecretSource::File(path) => match file.as_ref().and_then(|f| f.get(name)) {
                    Some(v) => Zeroizing::new(v.to_vec()),
                    None => {
                        return Err(missing(name, &format!("not defined in {}", path.display())));
                    }
                },
                SecretSource::Command(template) => run_adapter(template, name)?,
            };
            if value.is_empty() {
                return Err(missing(name, "is empty"));
            }
            values.insert(name.to_owned(), value);
        }
        Ok(Self { values })
    }

    /// Values given directly (tests and embedders).
    #[must_use]
    pub fn from_values(values: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        Self {
            values: values
                .into_iter()
                .map(|(k, v)| (k, Zeroizing::new(v)))
                .collect(),
        }
    }

    /// The bytes to stream on a step's stdin.
    pub fn stdin_bytes(&self, stdin: &Stdin) -> Result<Zeroizing<Vec<u8>>, Error> {
        let get = |name: &str| {
            self.values
                .get(name)
                .ok_or_else(|| missing(name, "was not resolved"))
        };
        match stdin {
            Stdin::Secret(name) => Ok(get(name)?.clone()),
            Stdin::EnvFile(pairs) => {
                let mut out = Zeroizing::new(Vec::new());
                for (var, name) in pairs {
                    let value = get(name)?;
                    if value.contains(&b'\n') {
                        return Err(missing(
                            name,
                            "contains a newline, which an env file line cannot carry",
                        ));
                    }
                    out.extend_from_slice(var.as_bytes());
                    out.push(b'=');
                    out.extend_from_slice(value);
                    out.push(b'\n');
                }
                Ok(out)
            }
        }
    }

    /// Check that every step's stdin of `plan` can be built from these values, so a bad
    /// value fails before the first connection rather than mid-run.
    pub fn check_plan(&self, plan: &crate::plan::Plan) -> Result<(), Error> {
        for stdin in plan
            .phases
            .iter()
            .flat_map(|p| &p.hosts)
            .flat_map(|h| &h.steps)
            .filter_map(|s| s.stdin.as_ref())
        {
            self.stdin_bytes(stdin)?;
        }
        Ok(())
    }

    /// `bytes` with every occurrence of every secret value replaced by `[secret:NAME]`
    /// (longest values first, so a value containing another is masked whole).
    #[must_use]
    pub fn mask(&self, bytes: &[u8]) -> Vec<u8> {
        let mut order: Vec<(&String, &Zeroizing<Vec<u8>>)> = self.values.iter().collect();
        order.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        let mut out = bytes.to_vec();
        for (name, value) in order {
            if value.is_empty() || out.len() < value.len() {
                continue;
            }
            let label = format!("[secret:{name}]");
            let mut next = Vec::with_capacity(out.len());
            let mut i = 0;
            while i < out.len() {
                if out[i..].starts_with(value) {
                    next.extend_from_slice(label.as_bytes());
                    i += value.len();
                } else {
                    next.push(out[i]);
                    i += 1;
                }
            }
            out = next;
        }
        out
    }

    /// [`Self::mask`] for text; invalid UTF-8 is shown lossily.
    #[must_use]
    pub fn mask_str(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.mask(text.as_bytes())).into_owned()
    }

    /// True when no secret was resolved.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

fn missing(name: &str, why: &str) -> Error {
    Error::SecretUnavailable {
        name: name.to_owned(),
        message: why.to_owned(),
    }
}

fn run_adapter(template: &str, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let words: Vec<String> = template
        .split_whitespace()
        .map(|w| w.replace("{name}", name))
        .collect();
    let Some((program, args)) = words.split_first() else {
        return Err(missing(name, "--secrets-command is empty"));
    };
    if !template.contains("{name}") {
        return Err(missing(name, "--secrets-command must contain `{name}`"));
    }
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| missing(name, &format!("cannot run `{program}`: {e}")))?;
    let mut value = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return Err(missing(
            name,
            &format!("`{program}` exited with {}", output.status),
        ));
    }
    if value.last() == Some(&b'\n') {
        value.pop();
        if value.last() == Some(&b'\r') {
            value.pop();
        }
    }
    Ok(value)
}

type DotEnv = BTreeMap<String, Zeroizing<Vec<u8>>>;

fn parse_dotenv_file(path: &Path) -> Result<DotEnv, Error> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?);
    parse_dotenv(&text).map_err(|(line, message)| Error::SecretsFile {
        path: path.to_owned(),
        line,
        message,
    })
}

/// Parse dotenv text. Errors carry the 1-based line and never a value.
fn parse_dotenv(text: &str) -> Result<DotEnv, (usize, String)> {
    let mut out = DotEnv::new();
    let mut lines = text.split('\n').enumerate();
    while let Some((i, raw)) = lines.next() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (name, rest) = line
            .split_once('=')
            .ok_or_else(|| (line_no, "expected `NAME=value`".to_owned()))?;
        let name = name.trim_end();
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || name.as_bytes()[0].is_ascii_digit()
        {
            return Err((line_no, format!("`{name}` is not a variable name")));
        }
        let value = if let Some(body) = rest.strip_prefix('\'') {
            // Single quotes: literal, may span lines.
            let mut acc = String::from(body);
            loop {
                if let Some(end) = acc.find('\'') {
                    check_trailer(&acc[end + 1..], line_no)?;
                    acc.truncate(end);
                    break acc;
                }
                let (_, next) = lines
                    .next()
                    .ok_or_else(|| (line_no, "unterminated single quote".to_owned()))?;
                acc.push('\n');
                acc.push_str(next);
            }
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut acc = String::new();
            let mut cur = body.to_owned();
            'outer: loop {
                let mut chars = cur.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            check_trailer(chars.as_str(), line_no)?;
                            break 'outer;
                        }
                        '\\' => match chars.next() {
                            Some('n') => acc.push('\n'),
                            Some('t') => acc.push('\t'),
                            Some(c @ ('"' | '\\' | '$')) => acc.push(c),
                            Some(c) => {
                                acc.push('\\');
                                acc.push(c);
                            }
                            None => acc.push('\\'),
                        },
                        c => acc.push(c),
                    }
                }
                let (_, next) = lines
                    .next()
                    .ok_or_else(|| (line_no, "unterminated double quote".to_owned()))?;
                acc.push('\n');
                next.clone_into(&mut cur);
            }
            acc
        } else {
            let v = rest.split(" #").next().unwrap_or_default().trim();
            v.to_owned()
        };
        out.insert(name.to_owned(), Zeroizing::new(value.into_bytes()));
    }
    Ok(out)
}

fn check_trailer(rest: &str, line: usize) -> Result<(), (usize, String)> {
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err((line, "unexpected text after the closing quote".to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_parses_without_expanding_or_executing() {
        let text = "# c\nexport A=1\nB='x $(touch /tmp/writ-never) y'\nC=\"l1\\nl2 \\\"q\\\" $HOME\"\nD=plain value # note\nE='multi\nline'\n\n";
        let env = parse_dotenv(text).unwrap();
        let get = |k: &str| String::from_utf8(env[k].to_vec()).unwrap();
        assert_eq!(get("A"), "1");
        assert_eq!(get("B"), "x $(touch /tmp/writ-never) y");
        assert_eq!(get("C"), "l1\nl2 \"q\" $HOME");
        assert_eq!(get("D"), "plain value");
        assert_eq!(get("E"), "multi\nline");
        assert!(!Path::new("/tmp/writ-never").exists());
    }

    #[test]
    fn dotenv_errors_name_the_line_and_hide_values() {
        let cases = [
            ("A=1\nnot a pair\n", 2, "NAME=value"),
            ("A='open\n", 1, "unterminated"),
            ("9X=1\n", 1, "variable name"),
            ("A=\"sekrit\" tail\n", 1, "after the closing quote"),
        ];
        for (text, line, needle) in cases {
            let (l, m) = parse_dotenv(text).unwrap_err();
            assert_eq!(l, line, "{text:?}");
            assert!(m.contains(needle), "{m}");
            assert!(!m.contains("sekrit"));
        }
    }

    #[test]
    fn mask_replaces_every_value_longest_first() {
        let s = Secrets::from_values([
            ("SHORT".to_owned(), b"abc".to_vec()),
            ("LONG".to_owned(), b"abcdef".to_vec()),
        ]);
        assert_eq!(
            s.mask_str("x abcdef abc abcabc"),
            "x [secret:LONG] [secret:SHORT] [secret:SHORT][secret:SHORT]"
        );
    }

    #[test]
    fn env_file_stdin_is_one_line_per_pair() {
        let s = Secrets::from_values([("P".to_owned(), b"v1".to_vec())]);
        let bytes = s
            .stdin_bytes(&Stdin::EnvFile(vec![
                ("DB".into(), "P".into()),
                ("X".into(), "P".into()),
            ]))
            .unwrap();
        assert_eq!(&bytes[..], b"DB=v1\nX=v1\n");
        let multi = Secrets::from_values([("P".to_owned(), b"a\nb".to_vec())]);
        let e = multi
            .stdin_bytes(&Stdin::EnvFile(vec![("DB".into(), "P".into())]))
            .unwrap_err();
        assert!(e.to_string().contains("newline") && !e.to_string().contains("a\nb"));
        assert!(multi.stdin_bytes(&Stdin::Secret("P".into())).is_ok());
    }

    #[test]
    fn missing_and_adapter_sources_fail_by_name() {
        let names: BTreeSet<&str> = ["WRIT_TEST_SURELY_UNSET_42"].into();
        let e = Secrets::resolve(&names, &SecretSource::Env).unwrap_err();
        assert!(e.to_string().contains("WRIT_TEST_SURELY_UNSET_42"), "{e}");
        let ok =
            Secrets::resolve(&names, &SecretSource::Command("printf v-{name}".into())).unwrap();
        assert_eq!(
            ok.mask_str("v-WRIT_TEST_SURELY_UNSET_42"),
            "[secret:WRIT_TEST_SURELY_UNSET_42]"
        );
        let e =
            Secrets::resolve(&names, &SecretSource::Command("false {name}".into())).unwrap_err();
        assert!(e.to_string().contains("exited"), "{e}");
    }
}
