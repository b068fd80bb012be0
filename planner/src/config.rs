//! The validated deploy configuration: what `config/deploy.yml` (plus the destination overlay
//! and the pinned host keys) means once loaded, merged and checked. Everything downstream
//! (command builders, plan output) reads this model, never the YAML.
//!
//! Loading is [`load`]: read files → strict YAML into a located tree ([`yaml`]) → Kamal deep
//! merge ([`merge`]) → serde mirror ([`raw`]) → Kamal's hand-written rules ([`validate`]) →
//! pinned host keys ([`crate::hostkeys`]). Every error is a [`crate::diagnostic::Diagnostic`]
//! naming `file:line:col` and the YAML path.

pub(crate) mod de;
pub(crate) mod load;
pub(crate) mod merge;
pub(crate) mod raw;
pub(crate) mod validate;
pub(crate) mod yaml;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use writ_exec::plan::{HostKey, Sha256Digest};

pub use crate::host::HostName;
pub use crate::name::{AccessoryName, Destination, EnvName, ServiceName, TagName};
pub use crate::role::RoleName;
pub use crate::secret_ref::{SecretEnv, SecretName};
pub use load::{from_str_unpinned, load, load_unpinned};

/// Default plan lifetime when `x-writ.plan_lifetime` is absent: 72 hours.
pub const DEFAULT_PLAN_LIFETIME: Duration = Duration::from_secs(72 * 3600);
/// Default path of the pinned host keys file, relative to the config root.
pub const DEFAULT_HOST_KEYS: &str = "config/known_hosts";

/// A loaded, merged and validated deploy configuration.
///
/// Invariants: `roles` is non-empty unless `allow_empty_roles`; the primary role is first and
/// the others follow in name order (Kamal's order); every host of every role and accessory has
/// at least one pinned key in `host_keys` (when loaded with [`load`]); no secret *value* is
/// stored anywhere — only [`SecretName`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Kamal `service`: container-name prefix and `service` label.
    pub service: ServiceName,
    /// Kamal `image` as written (`dhh/app`, `hey`), without registry server or tag.
    pub image: String,
    /// Registry to log in to before pulling; `None` = no login (public images).
    pub registry: Option<Registry>,
    /// Roles, primary first, then by name. Each carries its effective settings.
    pub roles: Vec<Role>,
    /// Kamal `primary_role` (default `web`); always the name of `roles[0]` when roles exist.
    pub primary_role: RoleName,
    /// Root `env` (clear, secret, per-tag).
    pub env: Env,
    /// Root `proxy` settings, if any (roles hold their effective copy in [`Role::proxy`]).
    pub proxy: Option<Proxy>,
    /// Accessories by name order.
    pub accessories: Vec<Accessory>,
    /// Root `volumes` (`host:container[:opts]`), passed as `--volume` to app containers.
    pub volumes: Vec<String>,
    /// Root `labels`, in file order.
    pub labels: Vec<(String, String)>,
    /// Root `logging` (roles hold their effective copy).
    pub logging: Logging,
    /// `ssh` settings.
    pub ssh: Ssh,
    /// `boot` settings.
    pub boot: Boot,
    /// `retain_containers` (default 5, at least 1).
    pub retain_containers: u32,
    /// `readiness_delay` in seconds (default 7).
    pub readiness_delay: u32,
    /// `deploy_timeout` in seconds (default 30).
    pub deploy_timeout: u32,
    /// `drain_timeout` in seconds (default 30).
    pub drain_timeout: u32,
    /// Root `stop_timeout` in seconds, if set.
    pub stop_timeout: Option<u32>,
    /// `require_destination` (default false).
    pub require_destination: bool,
    /// `allow_empty_roles` (default false).
    pub allow_empty_roles: bool,
    /// writ's own settings from `x-writ`.
    pub writ: WritSettings,
    /// The destination this config was loaded for (`-d`), if any.
    pub destination: Option<Destination>,
    /// Pinned host keys per host (every role, accessory and jump host), sorted.
    pub host_keys: BTreeMap<HostName, Vec<HostKey>>,
    /// Kamal keys that were accepted but have no effect in writ, with the reason, in file
    /// order. The CLI shows them; they are never dropped silently.
    pub ignored: Vec<Ignored>,
    /// The directory that holds `config/` (relative paths in the config resolve from here).
    pub root: PathBuf,
    /// The config files read, relative to `root`, in digest order.
    pub files: Vec<PathBuf>,
    /// See [`Config::source_digest`].
    pub(crate) source_digest: Sha256Digest,
}

impl Config {
    /// sha256 over the files actually read, in this order: `config/deploy.yml`, the destination
    /// overlay (if any), the pinned host keys file (if read). For each file: its path relative
    /// to the config root as UTF-8 with `/` separators, then the file's bytes, each preceded by
    /// its length as a big-endian u64. Documented in docs/config-reference.md.
    #[must_use]
    pub fn source_digest(&self) -> Sha256Digest {
        self.source_digest
    }

    /// The destination name, if the config was loaded for one.
    #[must_use]
    pub fn destination(&self) -> Option<&Destination> {
        self.destination.as_ref()
    }

    /// How long a plan stays valid after `created` (`x-writ.plan_lifetime`, default 72h).
    #[must_use]
    pub fn plan_lifetime(&self) -> Duration {
        self.writ.plan_lifetime
    }

    /// The role named `name`.
    #[must_use]
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name.as_str() == name)
    }

    /// The accessory named `name`.
    #[must_use]
    pub fn accessory(&self, name: &str) -> Option<&Accessory> {
        self.accessories.iter().find(|a| a.name.as_str() == name)
    }

    /// The image repository with the registry server prefixed when one is set
    /// (`registry.example.com/hey`), without tag or digest.
    #[must_use]
    pub fn image_repository(&self) -> String {
        match self.registry.as_ref().and_then(|r| r.server.as_deref()) {
            Some(server) => format!("{server}/{}", self.image),
            None => self.image.clone(),
        }
    }

    /// Every app host (all roles), de-duplicated, primary role's hosts first, then in role
    /// and file order (Kamal's boot order).
    #[must_use]
    pub fn app_hosts(&self) -> Vec<&HostName> {
        let mut seen = std::collections::HashSet::new();
        self.roles
            .iter()
            .flat_map(|r| &r.hosts)
            .map(|h| &h.host)
            .filter(|h| seen.insert(*h))
            .collect()
    }

    /// Every host the config names (roles, accessories), de-duplicated, sorted by name.
    /// The jump host (`ssh.proxy`) is not included; see [`Ssh::proxy`].
    #[must_use]
    pub fn all_hosts(&self) -> Vec<&HostName> {
        let mut out: Vec<&HostName> = self
            .roles
            .iter()
            .flat_map(|r| r.hosts.iter().map(|h| &h.host))
            .chain(self.accessories.iter().flat_map(|a| &a.hosts))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The effective env of `role` on `host`: root env ← role env ← each of the host's tag
    /// envs (Kamal's order). Clear values: later layers replace a key in place (new keys are
    /// appended); secret lists are unioned, keeping the first occurrence of each variable.
    #[must_use]
    pub fn env_for(&self, role: &Role, host: &RoleHost) -> EnvLayer {
        let mut out = self.env.base.clone();
        out.overlay(&role.env);
        for tag in &host.tags {
            if let Some(tagged) = self.env.tags.iter().find(|(t, _)| t == tag) {
                out.overlay(&tagged.1);
            }
        }
        out
    }
}

/// `registry:` — where to log in before pulling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    /// `server` (`registry.example.com`, `ghcr.io`); `None` = Docker Hub.
    pub server: Option<String>,
    /// `username`: a literal or a secret reference (`[NAME]`).
    pub username: Credential,
    /// `password`: always a secret reference (a literal password would end up in the plan).
    pub password: SecretName,
}

/// A registry credential: a literal value or the name of a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// Written in the config as a plain string.
    Literal(String),
    /// Written as a one-element list naming a secret (`[KAMAL_REGISTRY_USERNAME]`).
    Secret(SecretName),
}

/// One role (`servers.<name>`), with its effective settings (root settings merged in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// The role name.
    pub name: RoleName,
    /// Hosts in file order, each with its tags.
    pub hosts: Vec<RoleHost>,
    /// `cmd`: the container command, as written (passed as one shell-quoted argument list
    /// by the command builders; never interpreted by the planner).
    pub cmd: Option<String>,
    /// `options` without `restart`, in file order: `--key value` docker run flags.
    pub options: Vec<(String, DockerOption)>,
    /// Restart policy (`options.restart`, default `unless-stopped`).
    pub restart: RestartPolicy,
    /// Role `labels` (root labels merged under them), in order.
    pub labels: Vec<(String, String)>,
    /// The role's own env layer (root env is in [`Config::env`]; see [`Config::env_for`]).
    pub env: EnvLayer,
    /// Effective logging (root logging deep-merged with the role's).
    pub logging: Logging,
    /// Effective proxy: `Some` when the role is proxied (the primary role unless
    /// `proxy: false`; other roles with `proxy: true` or a hash, merged over root `proxy`).
    pub proxy: Option<Proxy>,
    /// Effective stop timeout (role's, else root's).
    pub stop_timeout: Option<u32>,
}

/// A host of a role, with its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleHost {
    /// The host.
    pub host: HostName,
    /// Tags from `{host: tag}` / `{host: [t1, t2]}`, in order.
    pub tags: Vec<TagName>,
}

/// A value in a role's or accessory's `options` hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DockerOption {
    /// `true`: a bare `--key` flag.
    Flag,
    /// A value: `--key value`.
    Value(String),
    /// A list: `--key v1 --key v2`.
    Values(Vec<String>),
}

/// Docker restart policy (`no|always|unless-stopped|on-failure[:N]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    /// `no`
    No,
    /// `always`
    Always,
    /// `unless-stopped` (Kamal's default).
    UnlessStopped,
    /// `on-failure` with an optional retry limit.
    OnFailure(Option<u32>),
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
            RestartPolicy::OnFailure(None) => f.write_str("on-failure"),
            RestartPolicy::OnFailure(Some(n)) => write!(f, "on-failure:{n}"),
        }
    }
}

/// Root `env`: a base layer plus per-tag layers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// `env` (simple form) or `env.clear` / `env.secret`.
    pub base: EnvLayer,
    /// `env.tags.<tag>`, in file order.
    pub tags: Vec<(TagName, EnvLayer)>,
}

/// One layer of environment: clear values and secret references.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvLayer {
    /// Clear variables, in file order (on the docker command line, visible to reviewers).
    pub clear: Vec<(EnvName, String)>,
    /// Secret variables (`NAME` / `NAME:ALIAS`), in file order; written to a 0600 env file.
    pub secret: Vec<SecretEnv>,
}

impl EnvLayer {
    /// Apply `other` over `self`: clear keys replaced in place or appended; secrets unioned.
    pub fn overlay(&mut self, other: &EnvLayer) {
        for (k, v) in &other.clear {
            match self.clear.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1.clone_from(v),
                None => self.clear.push((k.clone(), v.clone())),
            }
        }
        for s in &other.secret {
            match self.secret.iter_mut().find(|e| e.var == s.var) {
                Some(slot) => slot.clone_from(s),
                None => self.secret.push(s.clone()),
            }
        }
    }
}

/// `proxy:` settings (kamal-proxy flags; the caddy driver maps what it can).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// `host` (comma list) or `hosts`: the public host names routed to the app.
    pub hosts: Vec<String>,
    /// `app_port` (default 80).
    pub app_port: u16,
    /// `ssl`.
    pub ssl: Ssl,
    /// `ssl_redirect`.
    pub ssl_redirect: Option<bool>,
    /// `forward_headers`.
    pub forward_headers: Option<bool>,
    /// `response_timeout` in seconds.
    pub response_timeout: Option<u32>,
    /// `healthcheck`.
    pub healthcheck: Healthcheck,
    /// `buffering`.
    pub buffering: Buffering,
    /// `path_prefix` (comma list) or `path_prefixes`.
    pub path_prefixes: Vec<String>,
    /// `strip_path_prefix`.
    pub strip_path_prefix: Option<bool>,
    /// `logging.request_headers`.
    pub request_headers: Vec<String>,
    /// `logging.response_headers`.
    pub response_headers: Vec<String>,
}

/// TLS for the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ssl {
    /// No TLS (`ssl: false` or absent).
    Off,
    /// Automatic certificates (`ssl: true`, Let's Encrypt).
    Automatic,
    /// A custom certificate and key, both secret names.
    Custom {
        /// `certificate_pem`: secret holding the PEM certificate chain.
        certificate_pem: SecretName,
        /// `private_key_pem`: secret holding the PEM private key (written 0600).
        private_key_pem: SecretName,
    },
}

/// `proxy.healthcheck`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Healthcheck {
    /// `path` (kamal-proxy default `/up`).
    pub path: Option<String>,
    /// `interval` in seconds.
    pub interval: Option<u32>,
    /// `timeout` in seconds.
    pub timeout: Option<u32>,
}

/// `proxy.buffering`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Buffering {
    /// `requests` (kamal-proxy default true).
    pub requests: Option<bool>,
    /// `responses` (kamal-proxy default true).
    pub responses: Option<bool>,
    /// `max_request_body` in bytes.
    pub max_request_body: Option<u64>,
    /// `max_response_body` in bytes.
    pub max_response_body: Option<u64>,
    /// `memory` in bytes.
    pub memory: Option<u64>,
}

/// An accessory (`accessories.<name>`): a long-lived container such as a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accessory {
    /// The key under `accessories:`.
    pub name: AccessoryName,
    /// `service` (default `<service>-<name>`): container name and `service` label.
    pub service: String,
    /// `image` as written (may include a registry and tag, e.g. `mysql:8.0`).
    pub image: String,
    /// The selector as written (`host`, `hosts`, `role`, `roles`, `tag`, `tags`).
    pub selector: HostSelector,
    /// The hosts the selector resolves to, in order, de-duplicated.
    pub hosts: Vec<HostName>,
    /// `cmd`, as written.
    pub cmd: Option<String>,
    /// `port` as written (`"3306"` or `"127.0.0.1:3306:3306"`).
    pub port: Option<String>,
    /// `env` (no tags).
    pub env: EnvLayer,
    /// `volumes`.
    pub volumes: Vec<String>,
    /// `directories` (`host:container`).
    pub directories: Vec<String>,
    /// `files`.
    pub files: Vec<AccessoryFile>,
    /// `labels`, in order.
    pub labels: Vec<(String, String)>,
    /// `options` without `restart`, in order.
    pub options: Vec<(String, DockerOption)>,
    /// Restart policy (default `unless-stopped`).
    pub restart: RestartPolicy,
    /// `network` (default `kamal`).
    pub network: String,
    /// The accessory's own `registry`, if any.
    pub registry: Option<Registry>,
    /// `proxy`, if the accessory is proxied.
    pub proxy: Option<Proxy>,
}

/// How an accessory picks its hosts (exactly one selector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostSelector {
    /// `host` / `hosts`.
    Hosts(Vec<HostName>),
    /// `role` / `roles`: every host of these roles.
    Roles(Vec<RoleName>),
    /// `tag` / `tags`: every app host carrying one of these tags.
    Tags(Vec<TagName>),
}

/// One accessory `files` entry: a local file (relative to the config root) copied to the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessoryFile {
    /// `local`: path relative to the config root.
    pub local: PathBuf,
    /// `remote`: path inside the container.
    pub remote: String,
    /// `mode` (e.g. `0644`), if set.
    pub mode: Option<String>,
    /// `owner` (e.g. `999:999`), if set.
    pub owner: Option<String>,
}

/// `logging:` — docker log driver and options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Logging {
    /// `driver` (docker default when `None`).
    pub driver: Option<String>,
    /// `options`, in order (`--log-opt key=value`). Kamal adds `max-size=10m` when the whole
    /// `logging` section is absent; the builders decide that, not the loader.
    pub options: Vec<(String, String)>,
}

/// `ssh:` — how the executor connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ssh {
    /// `user` (default `root`).
    pub user: String,
    /// `port` (default 22).
    pub port: u16,
    /// `proxy`: a jump host (`host` or `user@host`, optional `:port`).
    pub proxy: Option<JumpHost>,
}

impl Default for Ssh {
    fn default() -> Self {
        Self {
            user: "root".to_owned(),
            port: 22,
            proxy: None,
        }
    }
}

/// A jump host from `ssh.proxy`. Its key must be pinned like every other host's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JumpHost {
    /// Login user on the jump host (default `root`, like Kamal).
    pub user: String,
    /// The jump host.
    pub host: HostName,
    /// SSH port of the jump host (default 22).
    pub port: u16,
}

/// `boot:` — rolling boot settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Boot {
    /// `limit`: hosts per group; `None` = all hosts at once.
    pub limit: Option<BootLimit>,
    /// `wait`: seconds between groups (default 0).
    pub wait: u32,
    /// `parallel_roles` (default false).
    pub parallel_roles: bool,
}

/// `boot.limit`: an absolute count or a percentage of all app hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootLimit {
    /// `limit: 2`.
    Count(NonZeroU32),
    /// `limit: "25%"` (1..=100).
    Percent(u8),
}

impl BootLimit {
    /// Hosts per boot group for `total` app hosts: the count, or the floor of the percentage
    /// with a minimum of 1 (Kamal's rule). Never 0, never more than `max(total, 1)`.
    #[must_use]
    pub fn group_size(self, total: usize) -> u32 {
        let total = u32::try_from(total.max(1)).unwrap_or(u32::MAX);
        match self {
            BootLimit::Count(n) => n.get().min(total),
            BootLimit::Percent(p) => {
                let size = u64::from(total) * u64::from(p) / 100;
                u32::try_from(size).unwrap_or(u32::MAX).clamp(1, total)
            }
        }
    }
}

/// writ's own settings (`x-writ:`), ignored by Kamal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WritSettings {
    /// `proxy`: which proxy driver the plans use (default `kamal-proxy`).
    pub proxy_driver: ProxyDriver,
    /// `host_keys`: the known_hosts-format file of pinned keys, relative to the config root
    /// (default `config/known_hosts`).
    pub host_keys: PathBuf,
    /// `plan_lifetime`: how long a plan is valid (`72h`, `3d`, `90m`; default 72h).
    pub plan_lifetime: Duration,
}

impl Default for WritSettings {
    fn default() -> Self {
        Self {
            proxy_driver: ProxyDriver::KamalProxy,
            host_keys: PathBuf::from(DEFAULT_HOST_KEYS),
            plan_lifetime: DEFAULT_PLAN_LIFETIME,
        }
    }
}

/// The proxy driver (`x-writ.proxy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyDriver {
    /// `kamal-proxy`: Kamal 2's proxy, same containers and flags.
    KamalProxy,
    /// `caddy`: Caddy as the proxy container, switched through config reload.
    Caddy,
    /// `none`: no proxy at all (roles are not proxied even if `proxy:` is set).
    None,
}

impl ProxyDriver {
    /// The name as written in `x-writ.proxy`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyDriver::KamalProxy => "kamal-proxy",
            ProxyDriver::Caddy => "caddy",
            ProxyDriver::None => "none",
        }
    }
}

/// A Kamal key that writ accepted without effect, reported to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// YAML path (`ssh.keys`).
    pub path: String,
    /// `file:line:col`.
    pub location: String,
    /// Why writ does not use it.
    pub reason: String,
}

/// The config root for `path`: a directory holding `config/deploy.yml`, a `config` directory,
/// or the `deploy.yml` file itself.
pub(crate) fn root_of(path: &Path) -> (PathBuf, PathBuf) {
    if path.is_file() {
        let config_dir = path.parent().unwrap_or(Path::new("."));
        let root = config_dir.parent().unwrap_or(Path::new("."));
        let root = if root.as_os_str().is_empty() {
            Path::new(".")
        } else {
            root
        };
        return (root.to_path_buf(), path.to_path_buf());
    }
    if path.join("config").join("deploy.yml").is_file() || !path.join("deploy.yml").is_file() {
        return (path.to_path_buf(), path.join("config").join("deploy.yml"));
    }
    let root = path.parent().unwrap_or(Path::new("."));
    (root.to_path_buf(), path.join("deploy.yml"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn boot_limit_group_sizes_follow_kamal() {
        let pct = |p| BootLimit::Percent(p);
        assert_eq!(pct(25).group_size(10), 2);
        assert_eq!(pct(25).group_size(3), 1);
        assert_eq!(pct(100).group_size(7), 7);
        assert_eq!(pct(1).group_size(0), 1);
        let n = BootLimit::Count(NonZeroU32::new(3).unwrap());
        assert_eq!(n.group_size(10), 3);
        assert_eq!(n.group_size(2), 2);
    }

    #[test]
    fn env_overlay_replaces_in_place_and_unions_secrets() {
        let mut base = EnvLayer {
            clear: vec![
                ("A".parse().unwrap(), "1".into()),
                ("B".parse().unwrap(), "2".into()),
            ],
            secret: vec!["S".parse().unwrap()],
        };
        base.overlay(&EnvLayer {
            clear: vec![
                ("A".parse().unwrap(), "9".into()),
                ("C".parse().unwrap(), "3".into()),
            ],
            secret: vec!["S:OTHER".parse().unwrap(), "T".parse().unwrap()],
        });
        let clear: Vec<_> = base.clear.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(clear, ["A=9", "B=2", "C=3"]);
        let secret: Vec<_> = base.secret.iter().map(ToString::to_string).collect();
        assert_eq!(secret, ["S:OTHER", "T"]);
    }
}
