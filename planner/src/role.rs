//! Role names (`web`, `workers`): the keys of `servers:` and the `role` container label.

use crate::name::{is_simple_name, name_type};

name_type!(
    /// A role name. Kamal's default single role is `web`.
    RoleName,
    "role name",
    is_simple_name,
    "use letters, digits, `_` and `-`, starting with a letter or digit (at most 128)"
);

impl RoleName {
    /// The role a plain `servers: [...]` list defines, and Kamal's default `primary_role`.
    #[must_use]
    pub fn web() -> Self {
        Self("web".to_owned())
    }
}
