//! The located YAML tree: one config file parsed strictly (serde-saphyr with strict booleans,
//! duplicate keys rejected, an alias budget, unsupported tags rejected) into nodes that keep
//! their file, line and column, so merged values still point at the file they came from.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Largest config file accepted, in bytes.
pub(crate) const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Where a node came from: the index of its file in the loader's file table, line and column
/// (1-based; 0 = unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub file: usize,
    pub line: usize,
    pub column: usize,
}

/// A YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// A mapping key with its position.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub pos: Pos,
}

/// The YAML data model after strict typing. Plain scalars are typed (YAML 1.2 core booleans
/// only, integers, floats, null); quoted scalars are always strings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// A short name of the node's kind, for "expected X, found Y" messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax or strictness error with its position.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

/// Parse one file's text (already checked for size, UTF-8 and ERB) into a tree.
pub(crate) fn parse(text: &str, file: usize) -> Result<Node, ParseError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        reject_unsupported_tags: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_events: 500_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: 64,
            max_nodes: 250_000,
            max_documents: 1,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
    };
    if text.trim().is_empty() {
        return Err(ParseError {
            pos: Pos {
                file,
                line: 0,
                column: 0,
            },
            message: "the file is empty".into(),
            hint: Some("a deploy.yml needs at least `service`, `image` and `servers`".into()),
        });
    }
    let parsed: Spanned<Raw> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| parse_error(&e, file))?;
    convert(parsed, file)
}

fn parse_error(e: &serde_saphyr::Error, file: usize) -> ParseError {
    let (line, column) = e.location().map_or((0, 0), |l| {
        (
            usize::try_from(l.line()).unwrap_or(0),
            usize::try_from(l.column()).unwrap_or(0),
        )
    });
    let text = e.without_snippet().to_string();
    // serde-saphyr appends " at line L column C"; the location is shown separately.
    let mut message = match text.find(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        message = format!("duplicate key `{key}`");
    }
    let lower = message.to_ascii_lowercase();
    let hint = if lower.contains("budget") || lower.contains("alias") {
        Some(
            "anchors and aliases are limited; write the values out instead of nesting aliases"
                .into(),
        )
    } else if lower.contains("duplicate") {
        Some("each key may appear once per mapping; remove one of them".into())
    } else if lower.contains("tag") {
        Some("YAML tags (`!foo`) are not supported in deploy.yml".into())
    } else {
        None
    };
    ParseError {
        pos: Pos { file, line, column },
        message,
        hint,
    }
}

/// The serde-facing shape that serde-saphyr fills; converted to [`Node`] right away.
#[derive(Debug)]
enum Raw {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        i128::try_from(v)
            .map(Raw::Int)
            .map_err(|_| E::custom("integer is too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Raw::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            out.push((k, v));
        }
        Ok(Raw::Map(out))
    }
}

fn pos_of<T>(s: &Spanned<T>, file: usize) -> Pos {
    Pos {
        file,
        line: usize::try_from(s.referenced.line()).unwrap_or(0),
        column: usize::try_from(s.referenced.column()).unwrap_or(0),
    }
}

fn convert(raw: Spanned<Raw>, file: usize) -> Result<Node, ParseError> {
    let pos = pos_of(&raw, file);
    let value = match raw.value {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::Int(i),
        Raw::Float(x) => Value::Float(x),
        Raw::Str(s) => Value::Str(s),
        Raw::Seq(items) => Value::Seq(
            items
                .into_iter()
                .map(|i| convert(i, file))
                .collect::<Result<_, _>>()?,
        ),
        Raw::Map(entries) => {
            let mut out: Vec<(Key, Node)> = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let kpos = pos_of(&k, file);
                let name = match k.value {
                    Raw::Str(s) => s,
                    Raw::Int(i) => i.to_string(),
                    Raw::Bool(b) => b.to_string(),
                    other => {
                        return Err(ParseError {
                            pos: kpos,
                            message: format!(
                                "mapping keys must be strings, found {}",
                                convert(
                                    Spanned {
                                        value: other,
                                        referenced: k.referenced,
                                        defined: k.defined
                                    },
                                    file
                                )?
                                .value
                                .kind()
                            ),
                            hint: None,
                        });
                    }
                };
                if let Some((first, _)) = out.iter().find(|(key, _)| key.name == name) {
                    return Err(ParseError {
                        pos: kpos,
                        message: format!(
                            "duplicate key `{}` (first defined at line {})",
                            name.escape_debug(),
                            first.pos.line
                        ),
                        hint: Some(
                            "each key may appear once per mapping; remove one of them".into(),
                        ),
                    });
                }
                out.push((Key { name, pos: kpos }, convert(v, file)?));
            }
            Value::Map(out)
        }
    };
    Ok(Node { value, pos })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_and_types() {
        let n = parse("a: 1\nb:\n  - x\n  - 'true'\nc: true\n", 3).unwrap();
        let Value::Map(m) = &n.value else { panic!() };
        assert_eq!(m[0].0.name, "a");
        assert_eq!(m[0].1.value, Value::Int(1));
        assert_eq!((m[0].1.pos.line, m[0].1.pos.column), (1, 4));
        let Value::Seq(items) = &m[1].1.value else {
            panic!()
        };
        assert_eq!(items[1].value, Value::Str("true".into()));
        assert_eq!((items[1].pos.file, items[1].pos.line), (3, 4));
        assert_eq!(m[2].1.value, Value::Bool(true));
    }

    #[test]
    fn yaml11_booleans_stay_strings() {
        let n = parse("a: yes\n", 0).unwrap();
        let Value::Map(m) = &n.value else { panic!() };
        assert_eq!(m[0].1.value, Value::Str("yes".into()));
    }

    #[test]
    fn rejects_duplicates_tags_and_alias_bombs() {
        assert!(parse("a: 1\na: 2\n", 0).is_err());
        assert!(parse("a: !custom 1\n", 0).is_err());
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            let item = format!("*a{p}");
            let line = format!("a{i}: &a{i} [{}]\n", [item.as_str(); 9].join(", "));
            bomb.push_str(&line);
        }
        let e = parse(&bomb, 0).unwrap_err();
        assert!(
            e.message.to_lowercase().contains("budget") || e.message.contains("alias"),
            "{}",
            e.message
        );
    }
}
