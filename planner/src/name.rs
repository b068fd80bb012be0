//! Small validated names used across the config model (service, destination, accessory, tag,
//! env var). Each is parsed with `FromStr`, so no unchecked `String` crosses module boundaries.

/// Declares a string newtype with a validating `FromStr`, `Display`, `as_str` and `Borrow<str>`.
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The name as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The rule a valid value follows, for error messages.
            pub const RULE: &'static str = $rule;
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(format!("{} `{}` is invalid: {}", $what, s.escape_debug(), $rule))
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

pub(crate) use name_type;

/// Longest name accepted for services, destinations, roles, accessories and tags (the plan
/// format's own cap).
pub const MAX_NAME: usize = writ_exec::plan::MAX_NAME;

/// `[a-zA-Z0-9_-]+`, at most [`MAX_NAME`] bytes, not starting with `-` (Kamal's service rule
/// plus the plan format's name rule).
pub(crate) fn is_simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

name_type!(
    /// Kamal `service`: container-name prefix and `service` label.
    ServiceName,
    "service name",
    is_simple_name,
    "use letters, digits, `_` and `-`, starting with a letter or digit (at most 128)"
);

name_type!(
    /// A destination (`production`, `staging`): selects `config/deploy.<destination>.yml`.
    Destination,
    "destination",
    is_simple_name,
    "use letters, digits, `_` and `-`, starting with a letter or digit (at most 128)"
);

name_type!(
    /// The name of an accessory (the key under `accessories:`).
    AccessoryName,
    "accessory name",
    is_simple_name,
    "use letters, digits, `_` and `-`, starting with a letter or digit (at most 128)"
);

name_type!(
    /// A host tag (`servers: [{host: tag}]`), selecting tag-specific env.
    TagName,
    "tag",
    is_simple_name,
    "use letters, digits, `_` and `-`, starting with a letter or digit (at most 128)"
);

name_type!(
    /// An environment variable name inside a container (`[A-Za-z_][A-Za-z0-9_]*`).
    EnvName,
    "environment variable name",
    |s| {
        !s.is_empty()
            && s.len() <= MAX_NAME
            && (s.as_bytes()[0].is_ascii_alphabetic() || s.as_bytes()[0] == b'_')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    },
    "use letters, digits and `_`, not starting with a digit (at most 128)"
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn simple_names_follow_the_rule() {
        for ok in ["hey", "my_app-2", "A1"] {
            assert!(ok.parse::<ServiceName>().is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a b", "a.b", "a/b", "é", &"a".repeat(129)] {
            assert!(bad.parse::<ServiceName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names_reject_leading_digits_and_dashes() {
        assert!("DATABASE_URL".parse::<EnvName>().is_ok());
        assert!("_X".parse::<EnvName>().is_ok());
        for bad in ["1X", "A-B", "", "A B"] {
            assert!(bad.parse::<EnvName>().is_err(), "{bad}");
        }
    }
}
