//! The serde mirror of deploy.yml: one struct per Kamal section, `deny_unknown_fields`
//! everywhere, positions kept with [`Sp`], and no logic beyond telling YAML shapes apart
//! (Kamal's "string or list", "list or hash" forms). Rules live in [`super::validate`].

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::de::Sp;

/// A present-but-unread value (for keys writ rejects or ignores by name).
pub(crate) type Present = Option<Sp<IgnoredAny>>;

/// A mapping kept in file order with located keys.
#[derive(Debug, Clone)]
pub(crate) struct OMap<V>(pub Vec<(Sp<String>, V)>);

impl<V> Default for OMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OMap<V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = OMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OMap<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Sp<String>>()? {
                    out.push((k, map.next_value()?));
                }
                Ok(OMap(out))
            }
        }
        d.deserialize_map(Vis(PhantomData))
    }
}

/// A scalar Kamal accepts where it wants a string: strings, integers and booleans
/// ("stringish"). Fractional numbers must be quoted (`1.10` would lose its zero).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stringish(pub String);

impl<'de> Deserialize<'de> for Stringish {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl Visitor<'_> for Vis {
            type Value = Stringish;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, v: &str) -> Result<Stringish, E> {
                Ok(Stringish(v.to_owned()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Stringish, E> {
                Ok(Stringish(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Stringish, E> {
                Ok(Stringish(v.to_string()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Stringish, E> {
                Ok(Stringish(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Stringish, E> {
                Ok(Stringish(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Stringish, E> {
                Err(E::custom(format!(
                    "the number {v} must be quoted to be used as text (write \"{v}\")"
                )))
            }
        }
        d.deserialize_any(Vis)
    }
}

/// The whole of deploy.yml (after `x-*` keys other than `x-writ` are set aside).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Root {
    pub service: Option<Sp<String>>,
    pub image: Option<Sp<String>>,
    pub registry: Option<Sp<Registry>>,
    pub servers: Option<Sp<Servers>>,
    pub env: Option<Sp<Env>>,
    pub labels: Option<OMap<Sp<Stringish>>>,
    pub volumes: Option<Vec<Sp<String>>>,
    pub proxy: Option<Sp<Proxy>>,
    pub accessories: Option<OMap<Sp<Accessory>>>,
    pub logging: Option<Sp<Logging>>,
    pub ssh: Option<Sp<Ssh>>,
    pub boot: Option<Sp<Boot>>,
    pub primary_role: Option<Sp<String>>,
    pub retain_containers: Option<Sp<i64>>,
    pub readiness_delay: Option<Sp<i64>>,
    pub deploy_timeout: Option<Sp<i64>>,
    pub drain_timeout: Option<Sp<i64>>,
    pub stop_timeout: Option<Sp<i64>>,
    pub require_destination: Option<Sp<bool>>,
    pub allow_empty_roles: Option<Sp<bool>>,
    #[serde(rename = "x-writ")]
    pub x_writ: Option<Sp<Writ>>,
    // Kamal keys writ does not act on: each is rejected or reported as ignored by name.
    pub builder: Present,
    pub hooks_path: Present,
    pub hooks_output: Present,
    pub secrets_path: Present,
    pub error_pages_path: Present,
    pub asset_path: Present,
    pub minimum_version: Present,
    pub run_directory: Present,
    pub sshkit: Present,
    pub output: Present,
    pub aliases: Present,
    pub hooks: Present,
    pub healthcheck: Present,
    pub traefik: Present,
    pub stop_wait_time: Present,
}

/// `x-writ:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Writ {
    pub proxy: Option<Sp<String>>,
    pub host_keys: Option<Sp<String>>,
    pub plan_lifetime: Option<Sp<Stringish>>,
}

/// `registry:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Registry {
    pub server: Option<Sp<Stringish>>,
    pub username: Option<Sp<Credential>>,
    pub password: Option<Sp<Credential>>,
}

/// A registry credential: literal string or `[SECRET_NAME]`.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    Literal(String),
    Secret(Vec<Sp<String>>),
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = Credential;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a one-element list naming a secret")
            }
            fn visit_str<E>(self, v: &str) -> Result<Credential, E> {
                Ok(Credential::Literal(v.to_owned()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Credential, E> {
                Ok(Credential::Literal(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Credential, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Credential::Secret(out))
            }
        }
        d.deserialize_any(Vis)
    }
}

/// `servers:` — a list of hosts (role `web`) or a map of roles.
#[derive(Debug)]
pub(crate) enum Servers {
    List(Vec<Sp<ServerHost>>),
    Roles(OMap<Sp<RoleEntry>>),
}

impl<'de> Deserialize<'de> for Servers {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = Servers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of hosts or a mapping of roles")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Servers, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Servers::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Servers, A::Error> {
                OMap::deserialize(MapAccessDeserializer::new(map)).map(Servers::Roles)
            }
        }
        d.deserialize_any(Vis)
    }
}

/// A host entry: `"host"` or `{"host": tag}` / `{"host": [tag, …]}`.
#[derive(Debug)]
pub(crate) struct ServerHost {
    pub host: Sp<String>,
    pub tags: Vec<Sp<String>>,
    /// More than one entry in the `{host: tags}` mapping (Kamal: "multiple hosts found").
    pub extra: Option<Sp<String>>,
}

impl<'de> Deserialize<'de> for ServerHost {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = ServerHost;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a host name or a `host: tag(s)` mapping")
            }
            fn visit_str<E>(self, v: &str) -> Result<ServerHost, E> {
                // Position is filled in by the enclosing Sp.
                Ok(ServerHost {
                    host: Sp {
                        value: v.to_owned(),
                        pos: super::yaml::Pos::default(),
                    },
                    tags: Vec::new(),
                    extra: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServerHost, A::Error> {
                let Some(host) = map.next_key::<Sp<String>>()? else {
                    return Err(de::Error::custom("empty host mapping: write `- host: tag`"));
                };
                let tags: Sp<StrOrList> = map.next_value()?;
                let tags = match tags.value {
                    StrOrList::One(t) => vec![Sp {
                        value: t,
                        pos: tags.pos,
                    }],
                    StrOrList::Many(ts) => ts,
                };
                let extra = map.next_key::<Sp<String>>()?;
                if extra.is_some() {
                    let _: IgnoredAny = map.next_value()?;
                }
                Ok(ServerHost { host, tags, extra })
            }
        }
        d.deserialize_any(Vis)
    }
}

/// A role: a plain host list or a hash.
#[derive(Debug)]
pub(crate) enum RoleEntry {
    List(Vec<Sp<ServerHost>>),
    Hash(Box<Role>),
}

impl<'de> Deserialize<'de> for RoleEntry {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = RoleEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of hosts or a role mapping (`hosts:`, `cmd:`, …)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RoleEntry, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(RoleEntry::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RoleEntry, A::Error> {
                Role::deserialize(MapAccessDeserializer::new(map))
                    .map(|r| RoleEntry::Hash(Box::new(r)))
            }
        }
        d.deserialize_any(Vis)
    }
}

/// `servers.<role>` in hash form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Role {
    pub hosts: Option<Vec<Sp<ServerHost>>>,
    pub cmd: Option<Sp<Stringish>>,
    pub options: Option<OMap<Sp<DockerOption>>>,
    pub labels: Option<OMap<Sp<Stringish>>>,
    pub env: Option<Sp<Env>>,
    pub logging: Option<Sp<Logging>>,
    pub proxy: Option<Sp<RoleProxy>>,
    pub stop_timeout: Option<Sp<i64>>,
    pub asset_path: Present,
}

/// An `options` value: `true` (bare flag), a scalar, or a list of scalars.
#[derive(Debug, Clone)]
pub(crate) enum DockerOption {
    Flag(bool),
    Value(String),
    Values(Vec<Sp<Stringish>>),
}

impl<'de> Deserialize<'de> for DockerOption {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = DockerOption;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true`, a value or a list of values")
            }
            fn visit_bool<E>(self, v: bool) -> Result<DockerOption, E> {
                Ok(DockerOption::Flag(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<DockerOption, E> {
                Ok(DockerOption::Value(v.to_owned()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<DockerOption, E> {
                Ok(DockerOption::Value(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<DockerOption, E> {
                Ok(DockerOption::Value(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DockerOption, E> {
                Err(E::custom(format!(
                    "the number {v} must be quoted (write \"{v}\")"
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DockerOption, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(DockerOption::Values(out))
            }
        }
        d.deserialize_any(Vis)
    }
}

/// `env:` in either form. Simple entries and `clear`/`secret`/`tags` are collected apart;
/// validation rejects a mix.
#[derive(Debug, Default)]
pub(crate) struct Env {
    pub simple: Vec<(Sp<String>, Sp<Stringish>)>,
    pub clear: Option<(Sp<String>, OMap<Sp<Stringish>>)>,
    pub secret: Option<(Sp<String>, Vec<Sp<String>>)>,
    pub tags: Option<(Sp<String>, OMap<Sp<Env>>)>,
}

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = Env;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of variables or `clear:` / `secret:` / `tags:`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Env, A::Error> {
                let mut env = Env::default();
                while let Some(k) = map.next_key::<Sp<String>>()? {
                    match k.value.as_str() {
                        "clear" => env.clear = Some((k, map.next_value()?)),
                        "secret" => env.secret = Some((k, map.next_value()?)),
                        "tags" => env.tags = Some((k, map.next_value()?)),
                        _ => {
                            let v = map.next_value()?;
                            env.simple.push((k, v));
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(Vis)
    }
}

/// A string or a list of located strings (a host's tags).
#[derive(Debug, Clone)]
pub(crate) enum StrOrList {
    One(String),
    Many(Vec<Sp<String>>),
}

impl<'de> Deserialize<'de> for StrOrList {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = StrOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a tag or a list of tags")
            }
            fn visit_str<E>(self, v: &str) -> Result<StrOrList, E> {
                Ok(StrOrList::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrOrList, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(StrOrList::Many(out))
            }
        }
        d.deserialize_any(Vis)
    }
}

/// A role's `proxy`: `true`/`false` or a hash merged over the root proxy.
#[derive(Debug)]
pub(crate) enum RoleProxy {
    Enabled(bool),
    Hash(Box<Proxy>),
}

impl<'de> Deserialize<'de> for RoleProxy {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = RoleProxy;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true`, `false` or a proxy mapping")
            }
            fn visit_bool<E>(self, v: bool) -> Result<RoleProxy, E> {
                Ok(RoleProxy::Enabled(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RoleProxy, A::Error> {
                Proxy::deserialize(MapAccessDeserializer::new(map))
                    .map(|p| RoleProxy::Hash(Box::new(p)))
            }
        }
        d.deserialize_any(Vis)
    }
}

/// `proxy:`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct Proxy {
    pub host: Option<Sp<String>>,
    pub hosts: Option<Vec<Sp<String>>>,
    pub app_port: Option<Sp<i64>>,
    pub ssl: Option<Sp<Ssl>>,
    pub ssl_redirect: Option<Sp<bool>>,
    pub forward_headers: Option<Sp<bool>>,
    pub response_timeout: Option<Sp<i64>>,
    pub healthcheck: Option<Sp<Healthcheck>>,
    pub buffering: Option<Sp<Buffering>>,
    pub path_prefix: Option<Sp<String>>,
    pub path_prefixes: Option<Vec<Sp<String>>>,
    pub strip_path_prefix: Option<Sp<bool>>,
    pub logging: Option<Sp<ProxyLogging>>,
    pub run: Present,
}

/// `proxy.ssl`: boolean or custom certificate secrets.
#[derive(Debug, Clone)]
pub(crate) enum Ssl {
    Enabled(bool),
    Custom(SslCustom),
}

/// `proxy.ssl` hash.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct SslCustom {
    pub certificate_pem: Option<Sp<String>>,
    pub private_key_pem: Option<Sp<String>>,
}

impl<'de> Deserialize<'de> for Ssl {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = Ssl;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "`true`, `false` or `{certificate_pem: SECRET, private_key_pem: SECRET}`",
                )
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ssl, E> {
                Ok(Ssl::Enabled(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Ssl, A::Error> {
                SslCustom::deserialize(MapAccessDeserializer::new(map)).map(Ssl::Custom)
            }
        }
        d.deserialize_any(Vis)
    }
}

/// `proxy.healthcheck`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct Healthcheck {
    pub path: Option<Sp<String>>,
    pub interval: Option<Sp<i64>>,
    pub timeout: Option<Sp<i64>>,
}

/// `proxy.buffering`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct Buffering {
    pub requests: Option<Sp<bool>>,
    pub responses: Option<Sp<bool>>,
    pub max_request_body: Option<Sp<i64>>,
    pub max_response_body: Option<Sp<i64>>,
    pub memory: Option<Sp<i64>>,
}

/// `proxy.logging`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProxyLogging {
    pub request_headers: Option<Vec<Sp<String>>>,
    pub response_headers: Option<Vec<Sp<String>>>,
}

/// `accessories.<name>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Accessory {
    pub image: Option<Sp<String>>,
    pub service: Option<Sp<String>>,
    pub host: Option<Sp<String>>,
    pub hosts: Option<Vec<Sp<String>>>,
    pub role: Option<Sp<String>>,
    pub roles: Option<Vec<Sp<String>>>,
    pub tag: Option<Sp<String>>,
    pub tags: Option<Vec<Sp<String>>>,
    pub cmd: Option<Sp<Stringish>>,
    pub port: Option<Sp<Stringish>>,
    pub env: Option<Sp<Env>>,
    pub volumes: Option<Vec<Sp<String>>>,
    pub directories: Option<Vec<Sp<PathEntry>>>,
    pub files: Option<Vec<Sp<PathEntry>>>,
    pub labels: Option<OMap<Sp<Stringish>>>,
    pub options: Option<OMap<Sp<DockerOption>>>,
    pub network: Option<Sp<String>>,
    pub registry: Option<Sp<Registry>>,
    pub proxy: Option<Sp<Proxy>>,
}

/// An accessory `files` / `directories` entry: `local:remote[:opts]` or a hash.
#[derive(Debug)]
pub(crate) enum PathEntry {
    Short(String),
    Long(PathHash),
}

/// The hash form of a `files` / `directories` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PathHash {
    pub local: Option<Sp<String>>,
    pub remote: Option<Sp<String>>,
    pub mode: Option<Sp<Stringish>>,
    pub owner: Option<Sp<Stringish>>,
}

impl<'de> Deserialize<'de> for PathEntry {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = PathEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`local:remote` or `{local:, remote:, mode:, owner:}`")
            }
            fn visit_str<E>(self, v: &str) -> Result<PathEntry, E> {
                Ok(PathEntry::Short(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PathEntry, A::Error> {
                PathHash::deserialize(MapAccessDeserializer::new(map)).map(PathEntry::Long)
            }
        }
        d.deserialize_any(Vis)
    }
}

/// `logging:`.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Logging {
    pub driver: Option<Sp<String>>,
    pub options: Option<OMap<Sp<Stringish>>>,
}

/// `ssh:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ssh {
    pub user: Option<Sp<String>>,
    pub port: Option<Sp<i64>>,
    pub proxy: Option<Sp<String>>,
    pub proxy_command: Present,
    pub forward_agent: Option<Sp<bool>>,
    pub keys: Present,
    pub keys_only: Present,
    pub key_data: Present,
    pub config: Present,
    pub log_level: Present,
}

/// `boot:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Boot {
    pub limit: Option<Sp<Stringish>>,
    pub wait: Option<Sp<i64>>,
    pub parallel_roles: Option<Sp<bool>>,
}
