//! Secret references: names of secrets (never values) and Kamal's `NAME:ALIAS` env entries.

use std::fmt;
use std::str::FromStr;

use crate::name::EnvName;

/// The name of a secret the executor resolves at apply time (`KAMAL_REGISTRY_PASSWORD`).
///
/// Invariant: matches the plan format's secret-name rule (`[A-Za-z_][A-Za-z0-9_]*`, ≤ 128).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

impl SecretName {
    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SecretName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= writ_exec::plan::MAX_NAME
            && (s.as_bytes()[0].is_ascii_alphabetic() || s.as_bytes()[0] == b'_')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "secret name `{}` is invalid: use letters, digits and `_`, not starting with a digit",
                s.escape_debug()
            ))
        }
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `env.secret` entry: the container variable `var` takes the value of secret `secret`.
/// `NAME` means both are `NAME`; `NAME:ALIAS` reads secret `ALIAS` into variable `NAME`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretEnv {
    /// The environment variable set in the container.
    pub var: EnvName,
    /// The secret whose value it gets.
    pub secret: SecretName,
}

impl FromStr for SecretEnv {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (var, secret) = match s.split_once(':') {
            Some((var, alias)) => {
                if var.is_empty() || alias.is_empty() || alias.contains(':') {
                    return Err(format!(
                        "secret entry `{}` is not `NAME` or `NAME:ALIAS`",
                        s.escape_debug()
                    ));
                }
                (var, alias)
            }
            None => (s, s),
        };
        Ok(Self {
            var: var.parse()?,
            secret: secret.parse()?,
        })
    }
}

impl fmt::Display for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.var.as_str() == self.secret.as_str() {
            write!(f, "{}", self.var)
        } else {
            write!(f, "{}:{}", self.var, self.secret)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn name_and_alias_forms_parse() {
        let plain: SecretEnv = "DB_PASSWORD".parse().unwrap();
        assert_eq!(plain.var.as_str(), "DB_PASSWORD");
        assert_eq!(plain.secret.as_str(), "DB_PASSWORD");
        let alias: SecretEnv = "DB_PASSWORD:MAIN_DB_PASSWORD".parse().unwrap();
        assert_eq!(alias.var.as_str(), "DB_PASSWORD");
        assert_eq!(alias.secret.as_str(), "MAIN_DB_PASSWORD");
        assert_eq!(alias.to_string(), "DB_PASSWORD:MAIN_DB_PASSWORD");
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for bad in ["", ":A", "A:", "A:B:C", "A B", "1A", "A:b-c", "A=B"] {
            assert!(bad.parse::<SecretEnv>().is_err(), "{bad}");
        }
    }
}
