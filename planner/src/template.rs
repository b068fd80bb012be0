//! The shell-only minijinja environment that renders `templates/*.j2` into plan steps.
//!
//! Every `{{ value }}` is shell-quoted by [`crate::shell::quote`] (the formatter ignores
//! `{% autoescape %}`, so it cannot be switched off); the `safe` filter is removed; undefined
//! values are errors; lists and maps cannot be printed; fuel bounds every render. Raw shell
//! can only come from Rust, through [`Templates::shell`], which renders a
//! [`crate::command::Script`] (itself quoted word by word).
//!
//! Each template file defines one macro per remote effect, and **each macro call is one plan
//! step**: the planner never splits rendered text on newlines. A newline inside a quoted value
//! travels through rendering as a placeholder byte that neither templates nor the quoter can
//! produce (templates are printable ASCII, checked at load), so a literal newline in a macro's
//! output can only be template text, which is refused instead of becoming a second command.
//!
//! The built-in templates are embedded in the binary; [`Templates::from_dir`] replaces any of
//! them by a file of the same name (regular files only, no symlinks, no other names).
//! [`Templates::digest`] is recorded in the plan header (`source … templates=sha256:…`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use writ_exec::plan::{MAX_COMMAND_BYTES, Sha256Digest};

use crate::Error;
use crate::command::Script;
use crate::shell;

/// The built-in templates, by file name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("accessory.j2", include_str!("../../templates/accessory.j2")),
    ("app.j2", include_str!("../../templates/app.j2")),
    ("caddy.j2", include_str!("../../templates/caddy.j2")),
    ("exec.j2", include_str!("../../templates/exec.j2")),
    ("host.j2", include_str!("../../templates/host.j2")),
    (
        "kamal-proxy.j2",
        include_str!("../../templates/kamal-proxy.j2"),
    ),
    ("prune.j2", include_str!("../../templates/prune.j2")),
    ("registry.j2", include_str!("../../templates/registry.j2")),
];

/// Instructions one render may execute (one unit ≈ one instruction or 64 output bytes).
const FUEL: u64 = 100_000;
/// Largest template file accepted from `--templates DIR`.
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;
/// Stands for a newline inside quoted text while a macro renders; never valid template text.
const NEWLINE: char = '\u{1f}';

/// A loaded, checked set of templates.
pub struct Templates {
    env: Environment<'static>,
    digest: Sha256Digest,
    /// Rendered steps by (template, macro, arguments): rendering is a pure function of
    /// these, and thousands of hosts share most steps.
    cache: Mutex<HashMap<String, Option<String>>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The built-in templates embedded in the binary.
    pub fn builtin() -> Result<Self, Error> {
        Self::from_sources(
            BUILTIN
                .iter()
                .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
                .collect(),
        )
    }

    /// The built-in templates with every `NAME.j2` file in `dir` replacing the built-in one of
    /// the same name. Symlinks, non-regular files, unknown names and oversized files are errors.
    pub fn from_dir(dir: &Path) -> Result<Self, Error> {
        let mut sources: BTreeMap<String, String> = BUILTIN
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect();
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        let meta = std::fs::symlink_metadata(dir).map_err(io)?;
        if !meta.is_dir() {
            return Err(Error::Template {
                name: dir.display().to_string(),
                message: "--templates must name a directory (not a symlink)".into(),
            });
        }
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let bad = |message: String| Error::Template {
                name: path.display().to_string(),
                message,
            };
            let meta = std::fs::symlink_metadata(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            if !meta.file_type().is_file() {
                return Err(bad(
                    "only regular files are allowed in a templates directory (no symlinks or subdirectories)"
                        .into(),
                ));
            }
            if !sources.contains_key(&name) {
                let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
                return Err(bad(format!(
                    "not a writ template name; the templates are {}",
                    known.join(", ")
                )));
            }
            if meta.len() > MAX_TEMPLATE_BYTES {
                return Err(bad(format!("larger than {MAX_TEMPLATE_BYTES} bytes")));
            }
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            sources.insert(name, text);
        }
        Self::from_sources(sources)
    }

    fn from_sources(sources: BTreeMap<String, String>) -> Result<Self, Error> {
        let digest = digest(&sources);
        let mut env = shell_environment();
        for (name, text) in sources {
            if let Some((line, b)) = text.split('\n').enumerate().find_map(|(i, l)| {
                l.bytes()
                    .find(|b| !(0x20..=0x7e).contains(b))
                    .map(|b| (i + 1, b))
            }) {
                return Err(Error::Template {
                    name,
                    message: format!(
                        "line {line} holds byte 0x{b:02x}; templates are printable ASCII"
                    ),
                });
            }
            env.add_template_owned(name.clone(), text)
                .map_err(|e| template_error(&name, &e))?;
        }
        Ok(Self {
            env,
            digest,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// sha256 over every template in name order: for each, the name's length as a big-endian
    /// u64, the name, the source's length as a big-endian u64, the source bytes.
    #[must_use]
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }

    /// Render `script` to shell text for use as a macro argument: it is printed as is.
    pub fn shell(script: &Script) -> Result<Value, Error> {
        let text = script
            .render()
            .map_err(|e| Error::Unquotable(e.to_string()))?;
        Ok(Value::from_safe_string(text.replace('\n', "\u{1f}")))
    }

    /// Call macro `name` of template `template` with `args`: the result is one step's command
    /// line, or `None` when the macro renders nothing (a step the template leaves out).
    pub fn step(
        &self,
        template: &str,
        name: &str,
        args: &[Value],
    ) -> Result<Option<String>, Error> {
        if args.iter().any(has_nul) {
            return Err(Error::Unquotable(format!(
                "a value for {template} macro {name} holds a NUL byte, which no shell argument can carry"
            )));
        }
        let key = cache_key(template, name, args);
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hit);
        }
        let out = self.render_step(template, name, args)?;
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, out.clone());
        }
        Ok(out)
    }

    fn render_step(
        &self,
        template: &str,
        name: &str,
        args: &[Value],
    ) -> Result<Option<String>, Error> {
        let tmpl = self
            .env
            .get_template(template)
            .map_err(|e| template_error(template, &e))?;
        let mut captured = tmpl
            .render_captured(())
            .map_err(|e| template_error(template, &e))?;
        let out = captured
            .with_state_mut(|state| state.call_macro(name, args))
            .map_err(|e| template_error(&format!("{template} macro {name}"), &e))?;
        if out.contains('\n') {
            return Err(Error::Template {
                name: format!("{template} macro {name}"),
                message: "renders a literal newline; one macro call is one command line, so \
                          join lines with `{%- -%}` whitespace control"
                    .into(),
            });
        }
        let out = out.trim_matches(' ').replace(NEWLINE, "\n");
        if out.len() > MAX_COMMAND_BYTES {
            return Err(Error::Template {
                name: format!("{template} macro {name}"),
                message: format!(
                    "renders a command of {} bytes; a plan step holds at most {MAX_COMMAND_BYTES}",
                    out.len()
                ),
            });
        }
        Ok((!out.is_empty()).then_some(out))
    }
}

/// The environment every template renders in (see the module docs).
fn shell_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Custom("sh".into()));
    env.set_formatter(|out, _state, value| {
        if value.is_safe() {
            return out
                .write_str(value.as_str().unwrap_or_default())
                .map_err(minijinja::Error::from);
        }
        if value.is_undefined() || value.is_none() || value.as_str().is_none() && !is_scalar(value)
        {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "cannot print a {} in a shell template; print its items one by one",
                    value.kind()
                ),
            ));
        }
        let text = value.to_string();
        let quoted = shell::quote(&text)
            .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
        out.write_str(&quoted.replace('\n', "\u{1f}"))
            .map_err(minijinja::Error::from)
    });
    env.remove_filter("safe");
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_reload(false);
    env
}

/// A key that tells apart every argument list that could render differently: each value's
/// kind, whether it is safe (pre-rendered shell) and its text.
fn cache_key(template: &str, name: &str, args: &[Value]) -> String {
    let mut key = format!("{template}\0{name}");
    for a in args {
        let text = if a.as_str().is_some() || is_scalar(a) {
            a.to_string()
        } else {
            format!("{a:?}")
        };
        let _ = write!(
            key,
            "\0{}{}{}\0{text}",
            a.kind(),
            u8::from(a.is_safe()),
            text.len()
        );
    }
    key
}

/// Whether a value, or any item of a list value, is text with a NUL byte.
fn has_nul(v: &Value) -> bool {
    match v.as_str() {
        Some(s) => s.contains('\0'),
        None => v
            .try_iter()
            .is_ok_and(|mut items| items.any(|item| has_nul(&item))),
    }
}

fn is_scalar(v: &Value) -> bool {
    use minijinja::value::ValueKind;
    matches!(
        v.kind(),
        ValueKind::Number | ValueKind::Bool | ValueKind::String
    )
}

fn template_error(name: &str, e: &minijinja::Error) -> Error {
    let mut message = e.to_string();
    if let Some(line) = e.line() {
        message = format!("line {line}: {message}");
    }
    Error::Template {
        name: name.to_owned(),
        message,
    }
}

fn digest(sources: &BTreeMap<String, String>) -> Sha256Digest {
    let mut bytes = Vec::new();
    for (name, text) in sources {
        bytes.extend_from_slice(&(name.len() as u64).to_be_bytes());
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(&(text.len() as u64).to_be_bytes());
        bytes.extend_from_slice(text.as_bytes());
    }
    Sha256Digest::of(&bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::command::Command;

    fn with(name: &str, text: &str) -> Result<Templates, Error> {
        let mut sources: BTreeMap<String, String> = BUILTIN
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect();
        sources.insert(name.into(), text.into());
        Templates::from_sources(sources)
    }

    fn one(text: &str, args: &[Value]) -> Result<Option<String>, Error> {
        with("host.j2", text)?.step("host.j2", "m", args)
    }

    #[test]
    fn values_are_quoted_and_bypasses_fail() {
        let v = || vec![Value::from("a b; rm -rf ~")];
        let m = |body: &str| format!("{{% macro m(x) -%}}{body}{{%- endmacro %}}");
        let quoted = "echo 'a b; rm -rf ~'";
        assert_eq!(one(&m("echo {{ x }}"), &v()).unwrap().unwrap(), quoted);
        assert_eq!(
            one(
                &m("{% autoescape false %}echo {{ x }}{% endautoescape %}"),
                &v()
            )
            .unwrap()
            .unwrap(),
            quoted
        );
        assert_eq!(one(&m("echo {{ x|e }}"), &v()).unwrap().unwrap(), quoted);
        assert_eq!(
            one(&m("echo {{ x|upper }}"), &v()).unwrap().unwrap(),
            "echo 'A B; RM -RF ~'"
        );
        assert_eq!(
            one(&m("echo {{ 'p-' ~ x }}"), &v()).unwrap().unwrap(),
            "echo 'p-a b; rm -rf ~'"
        );
        for bad in [
            "echo {{ x|safe }}",
            "echo {{ y }}",
            "echo {{ [x] }}",
            "echo {{ none }}",
            "{% for i in range(100000) %}{{ i }}{% endfor %}",
        ] {
            assert!(one(&m(bad), &v()).is_err(), "{bad}");
        }
    }

    #[test]
    fn newlines_in_values_survive_but_template_newlines_are_refused() {
        let m = "{% macro m(x) -%}\necho {{ x }}\n{%- endmacro %}";
        assert_eq!(
            one(m, &[Value::from("a\nb")]).unwrap().unwrap(),
            "echo 'a'\"\n\"'b'"
        );
        let two = "{% macro m(x) -%}\necho {{ x }}\necho two\n{%- endmacro %}";
        let err = one(two, &[Value::from("a")]).unwrap_err().to_string();
        assert!(err.contains("literal newline"), "{err}");
        let script = Command::new("echo").arg(String::from("x\ny")).script();
        let m = "{% macro m(x) -%}{{ x }} && true{%- endmacro %}";
        assert_eq!(
            one(m, &[Templates::shell(&script).unwrap()])
                .unwrap()
                .unwrap(),
            "echo 'x'\"\n\"'y' && true"
        );
    }

    #[test]
    fn cache_tells_safe_shell_from_plain_values() {
        let t = with("host.j2", "{% macro m(x) -%}echo {{ x }}{%- endmacro %}").unwrap();
        let plain = t.step("host.j2", "m", &[Value::from("a b")]).unwrap();
        let safe = t
            .step("host.j2", "m", &[Value::from_safe_string("a b".into())])
            .unwrap();
        assert_eq!(plain.as_deref(), Some("echo 'a b'"));
        assert_eq!(safe.as_deref(), Some("echo a b"));
        let again = t.step("host.j2", "m", &[Value::from("a b")]).unwrap();
        assert_eq!(again, plain);
    }

    #[test]
    fn oversized_commands_are_refused_at_render() {
        let big = "\u{e9}".repeat(40_000);
        let err = one(
            "{% macro m(x) -%}echo {{ x }}{%- endmacro %}",
            &[Value::from(big)],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("a plan step holds at most"), "{err}");
    }

    #[test]
    fn empty_macro_output_is_no_step() {
        let m = "{% macro m(x) -%}{% if x %}echo{% endif %}{%- endmacro %}";
        assert_eq!(one(m, &[Value::from(false)]).unwrap(), None);
    }

    #[test]
    fn non_ascii_or_control_bytes_in_templates_are_refused() {
        for text in ["echo \u{1f}", "caf\u{e9}", "a\tb", "a\r\nb"] {
            assert!(with("host.j2", text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn digest_changes_with_any_byte_and_name() {
        let base = Templates::builtin().unwrap().digest();
        assert_eq!(base, Templates::builtin().unwrap().digest());
        let src = BUILTIN.iter().find(|(n, _)| *n == "host.j2").unwrap().1;
        assert_ne!(with("host.j2", &format!("{src} ")).unwrap().digest(), base);
    }

    #[test]
    fn template_dir_overrides_and_refuses_symlinks_and_unknown_names() {
        let dir = tempfile::tempdir().unwrap();
        let src = BUILTIN.iter().find(|(n, _)| *n == "host.j2").unwrap().1;
        std::fs::write(dir.path().join("host.j2"), format!("{src}{{# local #}}\n")).unwrap();
        let t = Templates::from_dir(dir.path()).unwrap();
        assert_ne!(t.digest(), Templates::builtin().unwrap().digest());

        std::os::unix::fs::symlink(dir.path().join("host.j2"), dir.path().join("app.j2")).unwrap();
        let err = Templates::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no symlinks"), "{err}");
        std::fs::remove_file(dir.path().join("app.j2")).unwrap();

        std::fs::write(dir.path().join("evil.j2"), "x").unwrap();
        let err = Templates::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a writ template name"), "{err}");
    }
}
