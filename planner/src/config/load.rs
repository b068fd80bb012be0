//! Reading the config files from disk: `config/deploy.yml`, the destination overlay and the
//! pinned host keys; then strict parse, merge, validation, host-key pinning and the source
//! digest. Every failure becomes an [`Error::Config`] with a rendered diagnostic.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use writ_exec::plan::Sha256Digest;

use super::de::from_node;
use super::merge::deep_merge;
use super::raw;
use super::validate::{Ctx, Problem, key_pos, validate};
use super::yaml::{self, MAX_FILE_BYTES, Node, Pos, Value};
use super::{Config, Destination, HostName, root_of};
use crate::Error;
use crate::diagnostic::{Diagnostic, Location, suggest};
use crate::hostkeys::{KnownHosts, missing_key_hint};

/// Load `config/deploy.yml` (and `config/deploy.<destination>.yml` when `destination` is
/// given) from `config_dir_or_file` — a directory holding `config/`, the `config` directory,
/// or the `deploy.yml` file — validate it and pin every host's key from the known_hosts file
/// named by `x-writ.host_keys`. A host without a pinned key is an error whose hint gives the
/// `ssh-keyscan` line to run and how to check the fingerprint out of band.
pub fn load(config_dir_or_file: &Path, destination: Option<&str>) -> Result<Config, Error> {
    load_with(config_dir_or_file, destination, true)
}

/// Like [`load`], but hosts without a pinned key are allowed (they have no `host_keys` entry)
/// and a missing known_hosts file is not an error. For `writ hostkeys`, which collects keys;
/// never for planning.
pub fn load_unpinned(
    config_dir_or_file: &Path,
    destination: Option<&str>,
) -> Result<Config, Error> {
    load_with(config_dir_or_file, destination, false)
}

/// Validate one deploy.yml given as text (named `config/deploy.yml` in diagnostics), without
/// destination overlay or host keys. For fuzzing and property tests: it runs the same strict
/// parse, checks and validation as [`load`], and must never panic.
pub fn from_str_unpinned(text: &str) -> Result<Config, Error> {
    if text.len() > MAX_FILE_BYTES {
        return Err(file_error(
            "config/deploy.yml",
            "the file is over the size limit",
            None,
        ));
    }
    let sources = vec![Source {
        name: "config/deploy.yml".into(),
        bytes: text.as_bytes().to_vec(),
    }];
    let mut tree = parse(&sources, 0)?;
    drop_extensions(&mut tree);
    let mut config = model(&sources, &tree, None, None)?;
    config.files = vec![PathBuf::from("config/deploy.yml")];
    config.source_digest = digest(&sources);
    Ok(config)
}

/// One file read, named relative to the config root with `/` separators.
struct Source {
    name: String,
    bytes: Vec<u8>,
}

impl Source {
    fn text(&self) -> &str {
        // Only constructed from validated UTF-8 (see `read`).
        std::str::from_utf8(&self.bytes).unwrap_or("")
    }
}

fn config_error(d: Diagnostic) -> Error {
    Error::Config {
        diagnostic: Box::new(d),
    }
}

fn file_error(file: &str, message: impl Into<String>, hint: Option<String>) -> Error {
    let mut d = Diagnostic::new(
        Location {
            file: file.to_owned(),
            line: 0,
            column: 0,
        },
        "",
        message,
    );
    d.hint = hint;
    config_error(d)
}

/// A diagnostic at `pos` in one of `sources`, with the source line unless `redact`.
fn at(
    sources: &[Source],
    pos: Pos,
    path: String,
    message: String,
    hint: Option<String>,
    width: usize,
    redact: bool,
) -> Error {
    let (file, text) = sources
        .get(pos.file)
        .map_or(("?", ""), |s| (s.name.as_str(), s.text()));
    let mut d = Diagnostic::new(
        Location {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
        },
        path,
        message,
    );
    if !redact {
        d = d.with_source(text, width);
    }
    d.hint = hint;
    config_error(d)
}

fn display_name(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Read a config file: size cap, UTF-8, no ERB. `Ok(None)` when it does not exist.
fn read(root: &Path, path: &Path) -> Result<Option<Source>, Error> {
    let name = display_name(root, path);
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(file_error(
            &name,
            format!(
                "the file is {} bytes, over the {MAX_FILE_BYTES}-byte limit",
                bytes.len()
            ),
            None,
        ));
    }
    if let Err(e) = std::str::from_utf8(&bytes) {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let mut d = Diagnostic::new(
            Location {
                file: name,
                line,
                column: 0,
            },
            "",
            "the file is not valid UTF-8",
        );
        d.hint = Some("save the file as UTF-8".into());
        return Err(config_error(d));
    }
    Ok(Some(Source { name, bytes }))
}

/// ERB is not evaluated: a `<%` anywhere is an error with the alternative.
fn reject_erb(sources: &[Source], index: usize) -> Result<(), Error> {
    let text = sources[index].text();
    if let Some(offset) = text.find("<%") {
        let line = text[..offset].matches('\n').count() + 1;
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..offset].chars().count() + 1;
        return Err(at(
            sources,
            Pos {
                file: index,
                line,
                column,
            },
            String::new(),
            "ERB (`<% … %>`) is not supported: writ never runs code from the config".into(),
            Some(
                "use plain values; for secrets list the name under `env.secret` or `registry.password: [NAME]` \
                 (writ-exec reads it at apply time); for per-environment values use `config/deploy.<destination>.yml`"
                    .into(),
            ),
            2,
            false,
        ));
    }
    Ok(())
}

fn parse(sources: &[Source], index: usize) -> Result<Node, Error> {
    reject_erb(sources, index)?;
    let node = yaml::parse(sources[index].text(), index)
        .map_err(|e| at(sources, e.pos, String::new(), e.message, e.hint, 1, false))?;
    if !matches!(node.value, Value::Map(_)) {
        return Err(at(
            sources,
            node.pos,
            String::new(),
            format!(
                "the top level must be a mapping, found {}",
                node.value.kind()
            ),
            Some("start the file with `service: <name>`".into()),
            1,
            false,
        ));
    }
    Ok(node)
}

/// Top-level `x-*` keys are YAML anchor holders for Kamal; writ sets them aside too, except
/// its own `x-writ`.
fn drop_extensions(node: &mut Node) {
    if let Value::Map(entries) = &mut node.value {
        entries.retain(|(k, _)| k.name == "x-writ" || !k.name.starts_with("x-"));
    }
}

/// Where `text` first appears as a scalar in the tree (for pointing at a host).
fn find_scalar(node: &Node, text: &str, path: &str) -> Option<(Pos, String)> {
    match &node.value {
        Value::Str(s) if s == text => Some((node.pos, path.to_owned())),
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, n)| find_scalar(n, text, &format!("{path}[{i}]"))),
        Value::Map(entries) => entries.iter().find_map(|(k, v)| {
            let p = if path.is_empty() {
                k.name.clone()
            } else {
                format!("{path}.{}", k.name)
            };
            if k.name == text {
                return Some((k.pos, p));
            }
            find_scalar(v, text, &p)
        }),
        _ => None,
    }
}

fn load_with(
    config_dir_or_file: &Path,
    destination: Option<&str>,
    pinned: bool,
) -> Result<Config, Error> {
    let (root, deploy) = root_of(config_dir_or_file);
    let mut sources: Vec<Source> = Vec::new();
    let Some(base) = read(&root, &deploy)? else {
        return Err(file_error(
            &deploy.display().to_string(),
            "config file not found",
            Some("point --config at the directory that holds config/deploy.yml".into()),
        ));
    };
    sources.push(base);
    let mut tree = parse(&sources, 0)?;

    let destination = match destination {
        None => None,
        Some(d) => {
            let dest: Destination = d.parse().map_err(|m: String| {
                file_error(
                    "-d",
                    m,
                    Some("destinations name config/deploy.<destination>.yml".into()),
                )
            })?;
            let file = deploy.with_file_name(format!("deploy.{dest}.yml"));
            let Some(overlay) = read(&root, &file)? else {
                let name = display_name(&root, &file);
                let known = known_destinations(&deploy);
                let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
                let hint = match suggest(dest.as_str(), &known_refs) {
                    Some(s) => format!("did you mean `-d {s}`?"),
                    None if known.is_empty() => {
                        format!("create {name} (it may hold only the keys that differ)")
                    }
                    None => format!("destinations found: {}", known.join(", ")),
                };
                return Err(file_error(
                    &name,
                    format!("destination file for `{dest}` not found"),
                    Some(hint),
                ));
            };
            sources.push(overlay);
            let over = parse(&sources, 1)?;
            tree = deep_merge(tree, over);
            Some(dest)
        }
    };
    drop_extensions(&mut tree);
    let mut config = model(&sources, &tree, destination, Some(&deploy))?;

    // Pinned host keys.
    let keys_path = root.join(&config.writ.host_keys);
    let keys_name = display_name(&root, &keys_path);
    let known = match read(&root, &keys_path)? {
        Some(src) => {
            let parsed = KnownHosts::parse(src.text());
            sources.push(src);
            let index = sources.len() - 1;
            parsed.map_err(|e| {
                at(
                    &sources,
                    Pos {
                        file: index,
                        line: e.line,
                        column: e.column,
                    },
                    String::new(),
                    e.message,
                    e.hint,
                    1,
                    false,
                )
            })?
        }
        None if pinned => {
            let first = config.all_hosts().first().map(|h| (*h).clone());
            let hint = first.map(|h| missing_key_hint(&h, config.ssh.port, &keys_name));
            return Err(file_error(
                &keys_name,
                "the pinned host keys file does not exist",
                hint.or_else(|| {
                    Some("set `x-writ.host_keys` to the known_hosts file in this repository".into())
                }),
            ));
        }
        None => KnownHosts::default(),
    };
    let mut wanted: Vec<(HostName, u16)> = config
        .all_hosts()
        .into_iter()
        .map(|h| (h.clone(), config.ssh.port))
        .collect();
    if let Some(j) = &config.ssh.proxy {
        wanted.push((j.host.clone(), j.port));
    }
    for (host, port) in wanted {
        let keys = known.keys_for(&host, port);
        if keys.is_empty() {
            if !pinned {
                continue;
            }
            let (pos, path) =
                find_scalar(&tree, host.as_str(), "").unwrap_or((Pos::default(), String::new()));
            return Err(at(
                &sources,
                pos,
                path,
                format!(
                    "no pinned host key for `{}` in {keys_name}",
                    host.known_hosts_name(port)
                ),
                Some(missing_key_hint(&host, port, &keys_name)),
                host.as_str().chars().count(),
                false,
            ));
        }
        config.host_keys.insert(host, keys);
    }

    config.files = sources.iter().map(|s| PathBuf::from(&s.name)).collect();
    config.source_digest = digest(&sources);
    config.root = root;
    Ok(config)
}

/// Merged tree → raw mirror → validated model (no host keys yet).
fn model(
    sources: &[Source],
    tree: &Node,
    destination: Option<Destination>,
    deploy: Option<&Path>,
) -> Result<Config, Error> {
    let raw: raw::Root = from_node(tree).map_err(|e| {
        let pos = e.pos.unwrap_or_default();
        let path = e.path();
        if may_hold_secret(&path) {
            // Never quote what may be a secret value, nor show its line.
            let kind = e.message.split(", found").next().unwrap_or("invalid value");
            let message = format!("{kind}; the value is not shown because it may be a secret");
            return at(sources, pos, path, message, e.hint.clone(), 1, true);
        }
        at(
            sources,
            pos,
            path,
            e.message.clone(),
            e.hint.clone(),
            e.width,
            false,
        )
    })?;
    if raw.require_destination.as_ref().is_some_and(|r| r.value) && destination.is_none() {
        let pos = raw
            .require_destination
            .as_ref()
            .map_or(Pos::default(), |r| r.pos);
        return Err(at(
            sources,
            pos,
            "require_destination".into(),
            "this config requires a destination".into(),
            Some(format!(
                "pass `-d <destination>`{}",
                match deploy
                    .map(known_destinations)
                    .unwrap_or_default()
                    .as_slice()
                {
                    [] => String::new(),
                    k => format!(" (found: {})", k.join(", ")),
                }
            )),
            1,
            false,
        ));
    }

    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let mut ctx = Ctx {
        file_names: &names,
        tree,
        ignored: Vec::new(),
    };
    let mut config = validate(&raw, destination, &mut ctx).map_err(|p| {
        let Problem {
            pos,
            path,
            message,
            hint,
            redact,
            at_key,
        } = *p;
        // A role's effective setting may come from the root section: point there if the
        // role does not write it itself.
        let key = at_key
            .then(|| {
                key_pos(tree, &path).or_else(|| {
                    let (_, rest) = path.strip_prefix("servers.")?.split_once('.')?;
                    key_pos(tree, rest)
                })
            })
            .flatten();
        let width = if key.is_some() {
            path.rsplit('.').next().map_or(1, |k| k.chars().count())
        } else {
            1
        };
        at(
            sources,
            key.unwrap_or(pos),
            path,
            message,
            hint,
            width,
            redact,
        )
    })?;
    config.ignored = ctx.ignored;
    Ok(config)
}

/// Paths whose values are secret references: if one is malformed, it may be the secret.
fn may_hold_secret(path: &str) -> bool {
    path.split('.').any(|p| {
        let p = p.split('[').next().unwrap_or(p);
        p == "password" || p == "secret" || p.ends_with("_pem")
    })
}

/// Destinations for which `deploy.<name>.yml` exists next to `deploy`, sorted.
fn known_destinations(deploy: &Path) -> Vec<String> {
    let Some(dir) = deploy.parent() else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let d = name.strip_prefix("deploy.")?.strip_suffix(".yml")?;
            d.parse::<Destination>().ok().map(|d| d.to_string())
        })
        .collect();
    out.sort();
    out
}

/// sha256 over (name length, name, content length, content) of each file, in read order.
fn digest(sources: &[Source]) -> Sha256Digest {
    let mut h = Sha256::new();
    for s in sources {
        h.update((s.name.len() as u64).to_be_bytes());
        h.update(s.name.as_bytes());
        h.update((s.bytes.len() as u64).to_be_bytes());
        h.update(&s.bytes);
    }
    Sha256Digest(h.finalize().into())
}
