//! A serde Deserializer over the located YAML tree ([`super::yaml::Node`]). The raw mirror
//! ([`super::raw`]) is derived with serde as usual; this deserializer makes every error carry
//! the YAML path and the position of the offending node, and [`Sp`] fields receive the
//! position of their value so validation errors can point at it too.

use std::fmt::{self, Write as _};
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::yaml::{Key, Node, Pos, Value};
use crate::diagnostic::suggest;

/// Marker name through which [`Sp`] asks for its node's position.
const SPANNED: &str = "$writ::Sp";

/// A deserialization error: message, optional hint, where, and the path segments collected
/// from the innermost node outwards.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeError {
    pub message: String,
    pub hint: Option<String>,
    pub pos: Option<Pos>,
    /// Caret width (the length of an offending key), 1 when unknown.
    pub width: usize,
    /// Path segments, innermost first.
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl DeError {
    fn at(mut self, pos: Pos) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
        }
        self
    }

    fn within(mut self, segment: Segment) -> Self {
        self.segments.push(segment);
        self
    }

    /// The YAML path, outermost first: `servers.web.hosts[0]`.
    pub(crate) fn path(&self) -> String {
        let mut out = String::new();
        for s in self.segments.iter().rev() {
            match s {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            hint: None,
            pos: None,
            width: 1,
            segments: Vec::new(),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::custom(format!("unknown key `{}`", field.escape_debug()));
        e.width = field.chars().count().max(1);
        e.hint = Some(match suggest(field, expected) {
            Some(s) => format!("did you mean `{s}`?"),
            None if expected.is_empty() => "no keys are allowed here".into(),
            None => format!("valid keys here: {}", expected.join(", ")),
        });
        e
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing required key `{field}`"))
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "expected {}, found {}",
            expected(exp),
            describe(&unexp)
        ))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "invalid value {}: expected {}",
            describe(&unexp),
            expected(exp)
        ))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::custom(format!("duplicate key `{field}`"))
    }
}

/// serde names integer targets by their Rust type; users read "a whole number".
fn expected(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" => "a whole number".into(),
        "a boolean" | "bool" => "`true` or `false`".into(),
        _ => text,
    }
}

fn describe(u: &de::Unexpected<'_>) -> String {
    match u {
        de::Unexpected::Str(s) => format!("the string `{}`", s.escape_debug()),
        de::Unexpected::Unit => "nothing (null)".into(),
        de::Unexpected::Map => "a mapping".into(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Bool(b) => format!("`{b}`"),
        de::Unexpected::Signed(i) => format!("the number {i}"),
        de::Unexpected::Unsigned(i) => format!("the number {i}"),
        de::Unexpected::Float(x) => format!("the number {x}"),
        other => other.to_string(),
    }
}

/// Deserialize a `T` from a located tree.
pub(crate) fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, DeError> {
    T::deserialize(NodeDe { node })
}

/// A value with the position of its YAML node.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sp<T> {
    pub value: T,
    pub pos: Pos,
}

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Sp<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: de::Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Sp<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a located value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sp<T>, A::Error> {
                let missing = || de::Error::custom("internal: located value without position");
                let file: usize = seq.next_element()?.ok_or_else(missing)?;
                let line: usize = seq.next_element()?.ok_or_else(missing)?;
                let column: usize = seq.next_element()?.ok_or_else(missing)?;
                let value: T = seq.next_element()?.ok_or_else(missing)?;
                Ok(Sp {
                    value,
                    pos: Pos { file, line, column },
                })
            }
        }
        d.deserialize_newtype_struct(SPANNED, V(PhantomData))
    }
}

#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
}

impl NodeDe<'_> {
    fn fail(self, message: String, hint: Option<&str>) -> DeError {
        let mut e = <DeError as de::Error>::custom(message);
        e.hint = hint.map(str::to_owned);
        e.at(self.node.pos)
    }
}

fn visit_int<'de, V: Visitor<'de>>(i: i128, visitor: V) -> Result<V::Value, DeError> {
    if let Ok(u) = u64::try_from(i) {
        visitor.visit_u64(u)
    } else if let Ok(s) = i64::try_from(i) {
        visitor.visit_i64(s)
    } else {
        visitor.visit_i128(i)
    }
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visit_int(*i, visitor),
            Value::Float(x) => visitor.visit_f64(*x),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                index: 0,
            }),
            Value::Map(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
            }),
        };
        r.map_err(|e| e.at(pos))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Bool(b) => visitor
                .visit_bool(*b)
                .map_err(|e: DeError| e.at(self.node.pos)),
            Value::Str(s) => Err(self.fail(
                format!("expected `true` or `false`, found `{}`", s.escape_debug()),
                Some(
                    "writ reads YAML strictly: booleans are `true` or `false` (not yes/no/on/off)",
                ),
            )),
            other => Err(self.fail(
                format!("expected `true` or `false`, found {}", other.kind()),
                None,
            )),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) => visitor
                .visit_borrowed_str(s)
                .map_err(|e: DeError| e.at(self.node.pos)),
            other => Err(self.fail(format!("expected a string, found {}", other.kind()), None)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED {
            let p = self.node.pos;
            return visitor.visit_seq(Located {
                head: [p.file, p.line, p.column],
                next: 0,
                node: Some(self),
            });
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(_) => self.deserialize_any(visitor),
            other => Err(self.fail(format!("expected a mapping, found {}", other.kind()), None)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(_) => self.deserialize_any(visitor),
            other => Err(self.fail(format!("expected a mapping, found {}", other.kind()), None)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(_) => self.deserialize_any(visitor),
            other => Err(self.fail(format!("expected a list, found {}", other.kind()), None)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) => visitor
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: DeError| e.at(self.node.pos)),
            other => Err(self.fail(format!("expected a string, found {}", other.kind()), None)),
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct
        tuple tuple_struct identifier
    }
}

/// The sequence `[file, line, column, value]` that [`Sp`] reads.
struct Located<'a> {
    head: [usize; 3],
    next: usize,
    node: Option<NodeDe<'a>>,
}

impl<'de> SeqAccess<'de> for Located<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        if self.next < 3 {
            let v = self.head[self.next] as u64;
            self.next += 1;
            return seed.deserialize(v.into_deserializer()).map(Some);
        }
        match self.node.take() {
            Some(node) => seed.deserialize(node).map(Some),
            None => Ok(None),
        }
    }
}

struct Seq<'a> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(NodeDe { node })
            .map(Some)
            .map_err(|e| e.at(node.pos).within(Segment::Index(i)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'a> {
    entries: std::slice::Iter<'a, (Key, Node)>,
    value: Option<(&'a Key, &'a Node)>,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, node)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, node));
        seed.deserialize(KeyDe { key })
            .map(Some)
            .map_err(|e| e.at(key.pos).within(Segment::Key(key.name.clone())))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, node) = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("internal: value before key"))?;
        seed.deserialize(NodeDe { node })
            .map_err(|e| e.at(node.pos).within(Segment::Key(key.name.clone())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A mapping key: a string, or a located string for `Sp<String>` keys.
struct KeyDe<'a> {
    key: &'a Key,
}

impl<'de> de::Deserializer<'de> for KeyDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(&self.key.name)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED {
            let p = self.key.pos;
            return visitor.visit_seq(LocatedKey {
                head: [p.file, p.line, p.column],
                next: 0,
                key: Some(self.key),
            });
        }
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct LocatedKey<'a> {
    head: [usize; 3],
    next: usize,
    key: Option<&'a Key>,
}

impl<'de> SeqAccess<'de> for LocatedKey<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        if self.next < 3 {
            let v = self.head[self.next] as u64;
            self.next += 1;
            return seed.deserialize(v.into_deserializer()).map(Some);
        }
        match self.key.take() {
            Some(key) => seed.deserialize(KeyDe { key }).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::config::yaml::parse;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        hosts: Vec<Sp<String>>,
        #[serde(default)]
        flag: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        servers: std::collections::BTreeMap<String, Inner>,
    }

    #[test]
    fn located_values_and_paths() {
        let n = parse("servers:\n  web:\n    hosts: [a, b]\n", 0).unwrap();
        let o: Outer = from_node(&n).unwrap();
        assert_eq!(o.servers["web"].flag, None);
        let h = &o.servers["web"].hosts[1];
        assert_eq!(h.value, "b");
        assert_eq!((h.pos.line, h.pos.column), (3, 16));
    }

    #[test]
    fn unknown_key_gets_path_position_and_suggestion() {
        let n = parse("servers:\n  web:\n    hots: [a]\n", 0).unwrap();
        let e = from_node::<Outer>(&n).unwrap_err();
        assert_eq!(e.path(), "servers.web.hots");
        assert_eq!(e.message, "unknown key `hots`");
        assert_eq!(e.hint.as_deref(), Some("did you mean `hosts`?"));
        let p = e.pos.unwrap();
        assert_eq!((p.line, p.column), (3, 5));
    }

    #[test]
    fn strict_booleans_and_list_indexes_in_paths() {
        let n = parse("servers:\n  web:\n    hosts: [a]\n    flag: yes\n", 0).unwrap();
        let e = from_node::<Outer>(&n).unwrap_err();
        assert_eq!(e.path(), "servers.web.flag");
        assert!(e.message.contains("`true` or `false`"), "{}", e.message);
        let n = parse("servers:\n  web:\n    hosts: [a, 3]\n", 0).unwrap();
        let e = from_node::<Outer>(&n).unwrap_err();
        assert_eq!(e.path(), "servers.web.hosts[1]");
    }
}
