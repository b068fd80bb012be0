//! Kamal's deep merge of `deploy.yml` and `deploy.<destination>.yml` (ActiveSupport
//! `deep_merge`): mappings merge key by key, recursively; lists and scalars from the overlay
//! replace the base's. It works on located trees, so every merged value keeps the file, line
//! and column it was written at.

use super::yaml::{Node, Value};

/// Merge `overlay` over `base`. Existing keys keep their place in the base's order; new keys
/// are appended in the overlay's order.
pub(crate) fn deep_merge(base: Node, overlay: Node) -> Node {
    match (base.value, overlay.value) {
        (Value::Map(mut entries), Value::Map(over)) => {
            for (key, value) in over {
                match entries.iter().position(|(k, _)| k.name == key.name) {
                    Some(i) => {
                        let old = std::mem::replace(
                            &mut entries[i].1,
                            Node {
                                value: Value::Null,
                                pos: value.pos,
                            },
                        );
                        entries[i].1 = deep_merge(old, value);
                    }
                    None => entries.push((key, value)),
                }
            }
            Node {
                value: Value::Map(entries),
                pos: base.pos,
            }
        }
        (_, value) => Node {
            value,
            pos: overlay.pos,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    fn keys(n: &Node) -> Vec<String> {
        let Value::Map(m) = &n.value else { panic!() };
        m.iter().map(|(k, _)| k.name.clone()).collect()
    }

    #[test]
    fn maps_merge_lists_and_scalars_replace() {
        let base = parse("a: 1\nb:\n  x: 1\n  y: [1, 2]\nc: [1]\n", 0).unwrap();
        let over = parse("b:\n  y: [3]\n  z: 2\nc: 5\nd: new\n", 1).unwrap();
        let m = deep_merge(base, over);
        assert_eq!(keys(&m), ["a", "b", "c", "d"]);
        let Value::Map(top) = &m.value else { panic!() };
        let b = &top[1].1;
        assert_eq!(keys(b), ["x", "y", "z"]);
        let Value::Map(bm) = &b.value else { panic!() };
        let Value::Seq(y) = &bm[1].1.value else {
            panic!()
        };
        assert_eq!(y.len(), 1);
        assert_eq!(y[0].pos.file, 1, "replaced values keep the overlay's file");
        assert_eq!(bm[0].1.pos.file, 0, "untouched values keep the base's file");
        assert_eq!(top[2].1.value, Value::Int(5));
    }
}
