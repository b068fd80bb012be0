//! Host names as written in `servers:` and `accessories.*.host(s)`: a DNS name, an IPv4 address
//! or an IPv6 address. Users, ports and paths are not part of a host (`ssh.user`, `ssh.port`).

use std::fmt;
use std::str::FromStr;

/// A host to deploy to: DNS name, IPv4 or IPv6 address (canonical form, no brackets).
///
/// Invariant: the text is a valid `writ_exec::plan::Host::address` and contains no shell
/// metacharacters, so it can name the host in a plan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostName(String);

impl HostName {
    /// The host as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `known_hosts` lookup name for this host on `port` (`host` or `[host]:port`).
    #[must_use]
    pub fn known_hosts_name(&self, port: u16) -> String {
        if port == 22 {
            self.0.clone()
        } else {
            format!("[{}]:{port}", self.0)
        }
    }
}

impl FromStr for HostName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.contains('@') {
            return Err(format!(
                "host `{}` contains `@`: set the login user with `ssh.user`, not in the host",
                s.escape_debug()
            ));
        }
        if let Some(ip) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return Err(format!(
                "host `{}`: write the IPv6 address without brackets (`{ip}`)",
                s.escape_debug()
            ));
        }
        if s.contains(':') {
            return match s.parse::<std::net::Ipv6Addr>() {
                Ok(a) if a.to_string() == s => Ok(Self(s.to_owned())),
                Ok(a) => Err(format!(
                    "host `{s}`: write the IPv6 address in canonical form (`{a}`)"
                )),
                Err(_) => Err(format!(
                    "host `{}` is not a host name or IP address (a port goes in `ssh.port`)",
                    s.escape_debug()
                )),
            };
        }
        let ok = !s.is_empty()
            && s.len() <= writ_exec::plan::MAX_NAME
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && !s.ends_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "host `{}` is not a host name or IP address (letters, digits, `.` and `-`)",
                s.escape_debug()
            ))
        }
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for HostName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_names_and_addresses() {
        for ok in ["web-1", "10.0.0.1", "app.example.com", "::1", "2001:db8::1"] {
            assert_eq!(ok.parse::<HostName>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_users_ports_brackets_and_shell_text() {
        for bad in [
            "",
            "deploy@web",
            "web:22",
            "[::1]",
            "2001:DB8::1",
            "a b",
            "$(id)",
            "-oProxyCommand",
            "web.",
        ] {
            assert!(bad.parse::<HostName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn known_hosts_name_brackets_non_default_ports() {
        let h: HostName = "web-1".parse().unwrap();
        assert_eq!(h.known_hosts_name(22), "web-1");
        assert_eq!(h.known_hosts_name(2222), "[web-1]:2222");
    }
}
