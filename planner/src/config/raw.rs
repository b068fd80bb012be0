//! The serde mirror of deploy.yml: deny_unknown_fields, no logic.
