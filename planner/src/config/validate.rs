//! Kamal's hand-written validation rules (service name, primary role, restart policy, accessory
//! host selectors, proxy host/ssl rules, …) plus writ's own (secrets only by name, host names,
//! x-writ settings), turning the raw mirror into the validated [`Config`].

use std::num::NonZeroU32;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::de::Sp;
use super::raw;
use super::yaml::Pos;
use super::{
    Accessory, AccessoryFile, Boot, BootLimit, Buffering, Config, Credential, DockerOption, Env,
    EnvLayer, Healthcheck, HostName, HostSelector, Ignored, JumpHost, Logging, Proxy, ProxyDriver,
    Registry, RestartPolicy, Role, RoleHost, RoleName, SecretEnv, SecretName, ServiceName, Ssh,
    Ssl, TagName, WritSettings,
};
use crate::diagnostic::suggest;
use crate::name::{AccessoryName, EnvName, is_simple_name};

mod accessory;
mod env;
mod proxy;
mod role;
mod settings;

use accessory::accessory;
use env::{env_layer, labels, logging, merge_logging, root_env};
use proxy::{overlay_proxy, proxy, ssl_rules};
use role::{Context, options, role, role_hosts, volume};
use settings::{boot, image_name, registry, secret_name, ssh, writ_settings};

/// A validation failure at a position.
#[derive(Debug)]
pub(crate) struct Problem {
    pub pos: Pos,
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
    /// Leave the source line out (the value may be a secret).
    pub redact: bool,
    /// Point at the key named by `path` rather than at `pos` (for whole sections).
    pub at_key: bool,
}

type R<T> = Result<T, Box<Problem>>;

#[allow(
    clippy::unnecessary_box_returns,
    reason = "problems are boxed so every validator's Result stays small"
)]
fn problem(pos: Pos, path: impl Into<String>, message: impl Into<String>) -> Box<Problem> {
    Box::new(Problem {
        pos,
        path: path.into(),
        message: message.into(),
        hint: None,
        redact: false,
        at_key: false,
    })
}

trait Hint {
    fn hint(self, hint: impl Into<String>) -> Self;
}

impl Hint for Box<Problem> {
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Validation state: file names (for ignored-key locations) and the ignored keys found.
pub(crate) struct Ctx<'a> {
    pub file_names: &'a [String],
    pub tree: &'a super::yaml::Node,
    pub ignored: Vec<Ignored>,
}

impl Ctx<'_> {
    fn location(&self, pos: Pos) -> String {
        let file = self.file_names.get(pos.file).map_or("?", String::as_str);
        format!("{file}:{}:{}", pos.line, pos.column)
    }

    fn ignore(&mut self, present: &raw::Present, path: &str, reason: &str) {
        if let Some(p) = present {
            let pos = key_pos(self.tree, path).unwrap_or(p.pos);
            self.ignored.push(Ignored {
                path: path.to_owned(),
                location: self.location(pos),
                reason: reason.to_owned(),
            });
        }
    }
}

/// The position of the key at dotted `path` (no list indexes) in the merged tree.
pub(crate) fn key_pos(tree: &super::yaml::Node, path: &str) -> Option<Pos> {
    let mut node = tree;
    let mut pos = None;
    for part in path.split('.') {
        let super::yaml::Value::Map(entries) = &node.value else {
            return None;
        };
        let (k, v) = entries.iter().find(|(k, _)| k.name == part)?;
        pos = Some(k.pos);
        node = v;
    }
    pos
}

fn reject(present: &raw::Present, path: &str, message: &str, hint: &str) -> R<()> {
    match present {
        Some(p) => {
            let mut e = problem(p.pos, path, message).hint(hint);
            e.at_key = true;
            Err(e)
        }
        None => Ok(()),
    }
}

fn parse_sp<T: std::str::FromStr<Err = String>>(v: &Sp<String>, path: &str) -> R<T> {
    v.value.parse().map_err(|e: String| problem(v.pos, path, e))
}

fn seconds(v: Option<&Sp<i64>>, path: &str, default: u32, min: u32) -> R<u32> {
    match v {
        None => Ok(default),
        Some(s) => u32::try_from(s.value)
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| {
                problem(
                    s.pos,
                    path,
                    format!(
                        "must be a whole number of seconds, at least {min} (found {})",
                        s.value
                    ),
                )
            }),
    }
}

fn port(v: &Sp<i64>, path: &str) -> R<u16> {
    u16::try_from(v.value)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            problem(
                v.pos,
                path,
                format!("port must be 1..65535 (found {})", v.value),
            )
        })
}

fn no_nul(v: &Sp<String>, path: &str) -> R<String> {
    if v.value.contains('\0') {
        return Err(problem(v.pos, path, "value contains a NUL character"));
    }
    Ok(v.value.clone())
}

/// Validate the merged raw config. `destination` is the `-d` name (already checked).
pub(crate) fn validate(
    root: &raw::Root,
    destination: Option<super::Destination>,
    ctx: &mut Ctx<'_>,
) -> R<Config> {
    let top = Pos::default();
    // Kamal keys writ rejects outright: acting as if they were absent would deploy something
    // other than what the file says.
    reject(
        &root.asset_path,
        "asset_path",
        "asset bridging between versions is not supported by writ",
        "remove `asset_path`; serve fingerprinted assets from the new container or a CDN",
    )?;
    reject(
        &root.error_pages_path,
        "error_pages_path",
        "custom proxy error pages are not supported by writ",
        "remove `error_pages_path`",
    )?;
    reject(
        &root.hooks,
        "hooks",
        "Kamal has no `hooks:` key and writ runs no local hooks",
        "run such steps in CI, or as a reviewed plan with `writ plan server exec`",
    )?;
    for (present, key) in [
        (&root.healthcheck, "healthcheck"),
        (&root.traefik, "traefik"),
        (&root.stop_wait_time, "stop_wait_time"),
    ] {
        reject(
            present,
            key,
            &format!("`{key}` is a Kamal 1 key that Kamal 2 and writ do not support"),
            "health checks live in `proxy.healthcheck` (or a Docker HEALTHCHECK); the proxy is kamal-proxy or caddy",
        )?;
    }
    ctx.ignore(&root.builder, "builder", "writ does not build images; build and push in CI, then plan with --version (and --image-digest)");
    ctx.ignore(
        &root.hooks_path,
        "hooks_path",
        "writ runs no local hooks; run them in CI or as a `writ plan server exec` plan",
    );
    ctx.ignore(
        &root.hooks_output,
        "hooks_output",
        "writ runs no local hooks",
    );
    ctx.ignore(&root.secrets_path, "secrets_path", "secrets are resolved by writ-exec at apply time (environment or --secrets-file), never read by the planner");
    ctx.ignore(
        &root.minimum_version,
        "minimum_version",
        "it names a Kamal version",
    );
    ctx.ignore(
        &root.run_directory,
        "run_directory",
        "Kamal ignores it too; the host layout is fixed (.kamal/)",
    );
    ctx.ignore(
        &root.sshkit,
        "sshkit",
        "writ-exec has its own connection limits (--parallel)",
    );
    ctx.ignore(
        &root.output,
        "output",
        "writ-exec writes its own hash-chained audit log and --json events",
    );
    ctx.ignore(
        &root.aliases,
        "aliases",
        "CLI aliases are not plans; use `writ plan server exec` / `app exec`",
    );

    let service: ServiceName = match &root.service {
        Some(s) => s.value.parse().map_err(|e: String| {
            problem(s.pos, "service", e).hint("Kamal's rule: /^[a-z0-9_-]+$/i")
        })?,
        None => {
            return Err(problem(top, "", "missing required key `service`")
                .hint("add `service: <name>` (letters, digits, `_`, `-`)"));
        }
    };
    let image = match &root.image {
        Some(i) => image_name(i)?,
        None => {
            return Err(problem(top, "", "missing required key `image`")
                .hint("add `image: <repository>`, e.g. `image: acme/hey`"));
        }
    };
    let registry = root
        .registry
        .as_ref()
        .map(|r| registry(r, "registry"))
        .transpose()?;

    let writ = writ_settings(root.x_writ.as_ref())?;
    let env = root_env(root.env.as_ref())?;
    let root_labels = labels(root.labels.as_ref(), "labels")?;
    let root_logging = logging(root.logging.as_ref().map(|l| &l.value), "logging")?;
    let root_proxy_raw = root.proxy.as_ref().map(|p| p.value.clone());
    let root_proxy = root
        .proxy
        .as_ref()
        .map(|p| {
            reject(
                &p.value.run,
                "proxy.run",
                "`proxy.run` (a custom proxy container) is not supported by writ",
                "remove `proxy.run`; writ starts the proxy container the driver defines",
            )?;
            proxy(&p.value, "proxy")
        })
        .transpose()?;
    let stop_timeout = root
        .stop_timeout
        .as_ref()
        .map(|s| seconds(Some(s), "stop_timeout", 0, 0))
        .transpose()?;
    let allow_empty_roles = root.allow_empty_roles.as_ref().is_some_and(|b| b.value);

    let primary_role: RoleName = match &root.primary_role {
        Some(p) => parse_sp(p, "primary_role")?,
        None => RoleName::web(),
    };

    // Roles.
    let mut roles: Vec<Role> = Vec::new();
    let mut role_pos: Vec<Pos> = Vec::new();
    match root.servers.as_ref().map(|s| &s.value) {
        None => {
            if root.accessories.is_none() {
                return Err(problem(top, "", "missing required key `servers`")
                    .hint("add `servers: [host1, host2]` or a mapping of roles"));
            }
        }
        Some(raw::Servers::List(hosts)) => {
            let role_hosts = role_hosts(hosts, "servers")?;
            roles.push(role(
                RoleName::web(),
                role_hosts,
                None,
                &primary_role,
                &Context {
                    root_labels: &root_labels,
                    root_logging: &root_logging,
                    root_proxy: root_proxy_raw.as_ref(),
                    stop_timeout,
                },
                "servers",
            )?);
            role_pos.push(root.servers.as_ref().map_or(top, |s| s.pos));
        }
        Some(raw::Servers::Roles(map)) => {
            for (name, entry) in &map.0 {
                let path = format!("servers.{}", name.value);
                let role_name: RoleName = parse_sp(name, &path)?;
                let (hosts, hash) = match &entry.value {
                    raw::RoleEntry::List(h) => (role_hosts(h, &path)?, None),
                    raw::RoleEntry::Hash(r) => {
                        let hosts = match &r.hosts {
                            Some(h) => role_hosts(h, &format!("{path}.hosts"))?,
                            None => Vec::new(),
                        };
                        (hosts, Some(r.as_ref()))
                    }
                };
                roles.push(role(
                    role_name,
                    hosts,
                    hash,
                    &primary_role,
                    &Context {
                        root_labels: &root_labels,
                        root_logging: &root_logging,
                        root_proxy: root_proxy_raw.as_ref(),
                        stop_timeout,
                    },
                    &path,
                )?);
                role_pos.push(name.pos);
            }
        }
    }
    for (r, pos) in roles.iter().zip(&role_pos) {
        if r.hosts.is_empty() && !allow_empty_roles {
            return Err(problem(
                *pos,
                format!("servers.{}", r.name),
                format!("role `{}` has no hosts", r.name),
            )
            .hint("add hosts, remove the role, or set `allow_empty_roles: true`"));
        }
    }
    if !roles.is_empty() {
        let Some(i) = roles.iter().position(|r| r.name == primary_role) else {
            let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
            let pos = root
                .primary_role
                .as_ref()
                .map_or_else(|| root.servers.as_ref().map_or(top, |s| s.pos), |p| p.pos);
            let hint = match suggest(primary_role.as_str(), &names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "roles defined: {}; set `primary_role` to one of them",
                    names.join(", ")
                ),
            };
            return Err(problem(
                pos,
                "primary_role",
                format!("primary role `{primary_role}` is not defined in `servers`"),
            )
            .hint(hint));
        };
        if roles[i].hosts.is_empty() {
            return Err(problem(
                role_pos[i],
                format!("servers.{primary_role}"),
                format!("the primary role `{primary_role}` has no hosts"),
            )
            .hint("the primary role needs at least one host, even with allow_empty_roles"));
        }
        let primary = roles.remove(i);
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        roles.insert(0, primary);
    }
    if writ.proxy_driver == ProxyDriver::None {
        for r in &mut roles {
            r.proxy = None;
        }
    }
    ssl_rules(&roles, root.servers.as_ref().map_or(top, |s| s.pos))?;

    // Accessories.
    let mut accessories = Vec::new();
    if let Some(map) = &root.accessories {
        for (name, acc) in &map.0 {
            accessories.push(accessory(name, acc, &service, &roles)?);
        }
    }
    accessories.sort_by(|a: &Accessory, b| a.name.cmp(&b.name));

    let volumes = root
        .volumes
        .as_ref()
        .map(|v| {
            v.iter()
                .enumerate()
                .map(|(i, s)| volume(s, &format!("volumes[{i}]")))
                .collect::<R<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    let ssh = ssh(root.ssh.as_ref(), ctx)?;
    let boot = boot(root.boot.as_ref())?;

    let retain_containers = seconds(root.retain_containers.as_ref(), "retain_containers", 5, 1)
        .map_err(|p| {
            let mut p = p;
            p.message = "must be a whole number, at least 1".into();
            p
        })?;
    let readiness_delay = seconds(root.readiness_delay.as_ref(), "readiness_delay", 7, 0)?;
    let deploy_timeout = seconds(root.deploy_timeout.as_ref(), "deploy_timeout", 30, 1)?;
    let drain_timeout = seconds(root.drain_timeout.as_ref(), "drain_timeout", 30, 0)?;

    Ok(Config {
        service,
        image,
        registry,
        roles,
        primary_role,
        env,
        proxy: root_proxy,
        accessories,
        volumes,
        labels: root_labels,
        logging: root_logging,
        ssh,
        boot,
        retain_containers,
        readiness_delay,
        deploy_timeout,
        drain_timeout,
        stop_timeout,
        require_destination: root.require_destination.as_ref().is_some_and(|b| b.value),
        allow_empty_roles,
        writ,
        destination,
        host_keys: std::collections::BTreeMap::new(),
        ignored: Vec::new(),
        root: PathBuf::new(),
        files: Vec::new(),
        source_digest: writ_exec::plan::Sha256Digest([0; 32]),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::role::restart_policy;
    use super::settings::lifetime;
    use super::*;

    #[test]
    fn lifetimes_parse_with_units_and_bounds() {
        assert_eq!(lifetime("72h"), Some(Duration::from_secs(72 * 3600)));
        assert_eq!(lifetime("1d12h"), Some(Duration::from_secs(36 * 3600)));
        assert_eq!(lifetime("90m"), Some(Duration::from_secs(5400)));
        for bad in [
            "",
            "72",
            "h",
            "0m",
            "30s",
            "367d",
            "1w",
            "-1h",
            "99999999999d",
        ] {
            assert_eq!(lifetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn restart_policies_follow_docker() {
        assert_eq!(
            restart_policy("on-failure:3"),
            Some(RestartPolicy::OnFailure(Some(3)))
        );
        assert_eq!(restart_policy("always"), Some(RestartPolicy::Always));
        for bad in ["sometimes", "on-failure:", "on-failure:x", "Always"] {
            assert_eq!(restart_policy(bad), None, "{bad}");
        }
    }
}
