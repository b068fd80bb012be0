//! A serde Deserializer over the located YAML tree, so errors carry path and location.
