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

/// A repository name as Docker accepts it, without tag or digest (writ appends those).
fn image_name(i: &Sp<String>) -> R<String> {
    let s = &i.value;
    let last = s.rsplit('/').next().unwrap_or(s);
    if s.contains('@') || last.contains(':') {
        return Err(problem(i.pos, "image", format!("image `{}` includes a tag or digest", s.escape_debug()))
            .hint("write the repository only (`acme/hey`); writ adds the version, and --image-digest pins a digest"));
    }
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.split('/').enumerate().all(|(n, part)| {
            !part.is_empty()
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"._-".contains(&b)
                        || (n == 0 && (b == b':' || b.is_ascii_uppercase()))
                })
        });
    if ok {
        Ok(s.clone())
    } else {
        Err(problem(i.pos, "image", format!("image `{}` is not a valid repository name", s.escape_debug()))
            .hint("use lower-case letters, digits, `.`, `_`, `-` and `/` (a registry host may carry `:port`)"))
    }
}

fn registry(r: &Sp<raw::Registry>, path: &str) -> R<Registry> {
    let server = r.value.server.as_ref().map(|s| s.value.0.clone());
    if let Some(s) = &server {
        let ok = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
        if !ok {
            let pos = r.value.server.as_ref().map_or(r.pos, |s| s.pos);
            return Err(problem(
                pos,
                format!("{path}.server"),
                format!(
                    "registry server `{}` is not a host[:port]",
                    s.escape_debug()
                ),
            ));
        }
    }
    let username = match &r.value.username {
        None => {
            return Err(problem(r.pos, path, "missing required key `username`")
                .hint("add `username: <user>` (or `username: [SECRET_NAME]`)"));
        }
        Some(u) => match &u.value {
            raw::Credential::Literal(s) => Credential::Literal(s.clone()),
            raw::Credential::Secret(names) => {
                Credential::Secret(secret_list(names, u.pos, &format!("{path}.username"))?)
            }
        },
    };
    let password = match &r.value.password {
        None => {
            return Err(problem(r.pos, path, "missing required key `password`")
                .hint("add `password: [KAMAL_REGISTRY_PASSWORD]`; writ-exec reads the secret at apply time"));
        }
        Some(p) => match &p.value {
            raw::Credential::Literal(_) => {
                return Err(Box::new(Problem {
                    pos: p.pos,
                    path: format!("{path}.password"),
                    message: "the registry password is written in the config; writ only accepts a secret name here".into(),
                    hint: Some("write `password: [KAMAL_REGISTRY_PASSWORD]` and set that secret where writ-exec runs; remove the password from the file and its git history".into()),
                    redact: true,
                    at_key: false,
                }));
            }
            raw::Credential::Secret(names) => {
                secret_list(names, p.pos, &format!("{path}.password"))?
            }
        },
    };
    Ok(Registry {
        server,
        username,
        password,
    })
}

/// A field that must hold a secret *name*. If it does not parse, the value may well be the
/// secret itself, so the error neither quotes it nor shows the source line.
fn secret_name(v: &Sp<String>, path: &str, hint: &str) -> R<SecretName> {
    v.value.parse().map_err(|_: String| {
        Box::new(Problem {
            pos: v.pos,
            path: path.to_owned(),
            message: "expected the name of a secret (letters, digits and `_`, not starting with a digit); \
                      the value is not shown because it may be the secret itself"
                .into(),
            hint: Some(hint.to_owned()),
            redact: true,
            at_key: false,
        })
    })
}

fn secret_list(names: &[Sp<String>], pos: Pos, path: &str) -> R<SecretName> {
    match names {
        [one] => secret_name(
            one,
            &format!("{path}[0]"),
            "write `[SECRET_NAME]` and set that secret where writ-exec runs",
        ),
        _ => Err(problem(
            pos,
            path,
            format!(
                "expected a list with exactly one secret name, found {} entries",
                names.len()
            ),
        )
        .hint("write `[SECRET_NAME]`")),
    }
}

fn writ_settings(w: Option<&Sp<raw::Writ>>) -> R<WritSettings> {
    let mut out = WritSettings::default();
    let Some(w) = w else { return Ok(out) };
    if let Some(p) = &w.value.proxy {
        out.proxy_driver = match p.value.as_str() {
            "kamal-proxy" => ProxyDriver::KamalProxy,
            "caddy" => ProxyDriver::Caddy,
            "none" => ProxyDriver::None,
            other => {
                let choices = ["kamal-proxy", "caddy", "none"];
                let hint = suggest(other, &choices).map_or_else(
                    || "choose `kamal-proxy`, `caddy` or `none`".to_owned(),
                    |s| format!("did you mean `{s}`?"),
                );
                return Err(problem(
                    p.pos,
                    "x-writ.proxy",
                    format!("unknown proxy driver `{}`", other.escape_debug()),
                )
                .hint(hint));
            }
        };
    }
    if let Some(h) = &w.value.host_keys {
        let path = Path::new(&h.value);
        let bad = h.value.is_empty()
            || path.is_absolute()
            || path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        if bad {
            return Err(problem(h.pos, "x-writ.host_keys", format!("`{}` must be a relative path inside the config root", h.value.escape_debug()))
                .hint("the pinned keys are reviewed with the config: keep the file in the repository, e.g. `config/known_hosts`"));
        }
        out.host_keys = path.to_path_buf();
    }
    if let Some(l) = &w.value.plan_lifetime {
        out.plan_lifetime = lifetime(&l.value.0).ok_or_else(|| {
            problem(
                l.pos,
                "x-writ.plan_lifetime",
                format!(
                    "`{}` is not a lifetime between 1m and 366d",
                    l.value.0.escape_debug()
                ),
            )
            .hint("write a number with a unit: `72h`, `3d`, `90m`, `1d12h`")
        })?;
    }
    Ok(out)
}

/// `72h`, `3d`, `90m`, `1d12h`, `30s` → duration, within 1 minute ..= 366 days.
pub(crate) fn lifetime(s: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut num = String::new();
    if s.is_empty() {
        return None;
    }
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            if num.len() > 9 {
                return None;
            }
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !num.is_empty() {
        return None;
    }
    (60..=366 * 86_400)
        .contains(&total)
        .then(|| Duration::from_secs(total))
}

fn root_env(e: Option<&Sp<raw::Env>>) -> R<Env> {
    let Some(e) = e else {
        return Ok(Env::default());
    };
    let base = env_layer(&e.value, "env")?;
    let mut tags = Vec::new();
    if let Some((_, map)) = &e.value.tags {
        for (tag, env) in &map.0 {
            let path = format!("env.tags.{}", tag.value);
            let t: TagName = parse_sp(tag, &path)?;
            if let Some((k, _)) = &env.value.tags {
                return Err(problem(
                    k.pos,
                    format!("{path}.tags"),
                    "`tags` is only allowed in the root `env`",
                ));
            }
            tags.push((t, env_layer(&env.value, &path)?));
        }
    }
    Ok(Env { base, tags })
}

fn env_layer(e: &raw::Env, path: &str) -> R<EnvLayer> {
    let complex = e.clear.is_some() || e.secret.is_some() || e.tags.is_some();
    if complex && let Some((k, _)) = e.simple.first() {
        return Err(problem(
            k.pos,
            format!("{path}.{}", k.value),
            format!(
                "unknown key `{}` next to `clear`/`secret`",
                k.value.escape_debug()
            ),
        )
        .hint("with `clear:` or `secret:`, put every variable under one of them"));
    }
    let mut layer = EnvLayer::default();
    let clear_entries = e
        .clear
        .as_ref()
        .map(|(_, m)| m.0.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k, v))
        .chain(e.simple.iter().map(|(k, v)| (k, v)));
    let clear_path = if e.clear.is_some() {
        format!("{path}.clear")
    } else {
        path.to_owned()
    };
    for (k, v) in clear_entries {
        let p = format!("{clear_path}.{}", k.value);
        let name: EnvName = parse_sp(k, &p)?;
        let value = no_nul(
            &Sp {
                value: v.value.0.clone(),
                pos: v.pos,
            },
            &p,
        )?;
        layer.clear.push((name, value));
    }
    if let Some((_, list)) = &e.secret {
        for (i, s) in list.iter().enumerate() {
            let p = format!("{path}.secret[{i}]");
            let entry: SecretEnv = s.value.parse().map_err(|_: String| {
                Box::new(Problem {
                    pos: s.pos,
                    path: p.clone(),
                    message: "expected `NAME` or `NAME:SECRET_NAME` (letters, digits and `_`); \
                              the entry is not shown because it may hold a secret value"
                        .into(),
                    hint: Some(
                        "the container variable NAME gets the value of the secret SECRET_NAME, \
                         which writ-exec resolves at apply time; never write the value here"
                            .into(),
                    ),
                    redact: true,
                    at_key: false,
                })
            })?;
            if layer.secret.iter().any(|x| x.var == entry.var) {
                return Err(problem(
                    s.pos,
                    p,
                    format!("secret variable `{}` is listed twice", entry.var),
                ));
            }
            layer.secret.push(entry);
        }
    }
    if let Some((name, _)) = layer
        .clear
        .iter()
        .find(|(n, _)| layer.secret.iter().any(|s| &s.var == n))
    {
        let pos = e.secret.as_ref().map_or(Pos::default(), |(k, _)| k.pos);
        return Err(problem(
            pos,
            format!("{path}.secret"),
            format!("`{name}` is both a clear and a secret variable"),
        ));
    }
    Ok(layer)
}

fn labels(l: Option<&raw::OMap<Sp<raw::Stringish>>>, path: &str) -> R<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (k, v) in l.map(|m| m.0.as_slice()).unwrap_or_default() {
        let p = format!("{path}.{}", k.value);
        if ["service", "role", "destination"].contains(&k.value.as_str()) {
            return Err(
                problem(k.pos, p, format!("label `{}` is reserved", k.value)).hint(
                    "writ sets `service`, `role` and `destination` itself; pick another label name",
                ),
            );
        }
        let ok = !k.value.is_empty() && k.value.bytes().all(|b| b.is_ascii_graphic() && b != b'=');
        if !ok {
            return Err(problem(
                k.pos,
                p,
                format!(
                    "label name `{}` must be printable ASCII without `=` or spaces",
                    k.value.escape_debug()
                ),
            ));
        }
        let value = no_nul(
            &Sp {
                value: v.value.0.clone(),
                pos: v.pos,
            },
            &p,
        )?;
        out.push((k.value.clone(), value));
    }
    Ok(out)
}

fn logging(l: Option<&raw::Logging>, path: &str) -> R<Logging> {
    let mut out = Logging::default();
    let Some(l) = l else { return Ok(out) };
    if let Some(d) = &l.driver {
        if !is_simple_name(&d.value) {
            return Err(problem(
                d.pos,
                format!("{path}.driver"),
                format!(
                    "log driver `{}` is not a simple name",
                    d.value.escape_debug()
                ),
            ));
        }
        out.driver = Some(d.value.clone());
    }
    for (k, v) in l
        .options
        .as_ref()
        .map(|m| m.0.as_slice())
        .unwrap_or_default()
    {
        let p = format!("{path}.options.{}", k.value);
        if k.value.is_empty()
            || !k
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(problem(
                k.pos,
                p,
                format!(
                    "log option `{}` is not a simple name",
                    k.value.escape_debug()
                ),
            ));
        }
        out.options.push((
            k.value.clone(),
            no_nul(
                &Sp {
                    value: v.value.0.clone(),
                    pos: v.pos,
                },
                &p,
            )?,
        ));
    }
    Ok(out)
}

/// Role logging: Kamal deep-merges the role's over the root's.
fn merge_logging(root: &Logging, role: &Logging) -> Logging {
    let mut out = root.clone();
    if role.driver.is_some() {
        out.driver.clone_from(&role.driver);
    }
    for (k, v) in &role.options {
        match out.options.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1.clone_from(v),
            None => out.options.push((k.clone(), v.clone())),
        }
    }
    out
}

fn role_hosts(hosts: &[Sp<raw::ServerHost>], path: &str) -> R<Vec<RoleHost>> {
    let mut out: Vec<RoleHost> = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if let Some(extra) = &h.value.extra {
            return Err(problem(
                extra.pos,
                &p,
                format!(
                    "more than one host in one entry (`{}`)",
                    extra.value.escape_debug()
                ),
            )
            .hint("write each host as its own list item: `- host: tag`"));
        }
        let host_sp = if h.value.host.pos.line == 0 {
            Sp {
                value: h.value.host.value.clone(),
                pos: h.pos,
            }
        } else {
            h.value.host.clone()
        };
        let host: HostName = parse_sp(&host_sp, &p)?;
        if out.iter().any(|x| x.host == host) {
            return Err(problem(
                host_sp.pos,
                &p,
                format!("host `{host}` is listed twice in this role"),
            ));
        }
        let tags = h
            .value
            .tags
            .iter()
            .map(|t| parse_sp::<TagName>(t, &p))
            .collect::<R<Vec<_>>>()?;
        out.push(RoleHost { host, tags });
    }
    Ok(out)
}

struct Context<'a> {
    root_labels: &'a [(String, String)],
    root_logging: &'a Logging,
    root_proxy: Option<&'a raw::Proxy>,
    stop_timeout: Option<u32>,
}

fn role(
    name: RoleName,
    hosts: Vec<RoleHost>,
    hash: Option<&raw::Role>,
    primary: &RoleName,
    cx: &Context<'_>,
    path: &str,
) -> R<Role> {
    let is_primary = &name == primary;
    let mut role = Role {
        name,
        hosts,
        cmd: None,
        options: Vec::new(),
        restart: RestartPolicy::UnlessStopped,
        labels: cx.root_labels.to_vec(),
        env: EnvLayer::default(),
        logging: cx.root_logging.clone(),
        proxy: None,
        stop_timeout: cx.stop_timeout,
    };
    let mut proxy_setting: Option<&raw::RoleProxy> = None;
    if let Some(r) = hash {
        reject(
            &r.asset_path,
            &format!("{path}.asset_path"),
            "asset bridging between versions is not supported by writ",
            "remove `asset_path`",
        )?;
        role.cmd = r
            .cmd
            .as_ref()
            .map(|c| {
                no_nul(
                    &Sp {
                        value: c.value.0.clone(),
                        pos: c.pos,
                    },
                    &format!("{path}.cmd"),
                )
            })
            .transpose()?;
        if let Some(opts) = &r.options {
            let (options, restart) = options(opts, &format!("{path}.options"))?;
            role.options = options;
            role.restart = restart;
        }
        for (k, v) in labels(r.labels.as_ref(), &format!("{path}.labels"))? {
            match role.labels.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => role.labels.push((k, v)),
            }
        }
        if let Some(e) = &r.env {
            if let Some((k, _)) = &e.value.tags {
                return Err(problem(
                    k.pos,
                    format!("{path}.env.tags"),
                    "`tags` is only allowed in the root `env`",
                )
                .hint("move tag-specific env to `env.tags.<tag>` at the top level"));
            }
            role.env = env_layer(&e.value, &format!("{path}.env"))?;
        }
        if let Some(l) = &r.logging {
            role.logging = merge_logging(
                cx.root_logging,
                &logging(Some(&l.value), &format!("{path}.logging"))?,
            );
        }
        if let Some(s) = &r.stop_timeout {
            role.stop_timeout = Some(seconds(Some(s), &format!("{path}.stop_timeout"), 0, 0)?);
        }
        proxy_setting = r.proxy.as_ref().map(|p| &p.value);
    }
    let base = cx.root_proxy.cloned().unwrap_or_default();
    let proxied = match proxy_setting {
        Some(raw::RoleProxy::Enabled(on)) => *on,
        Some(raw::RoleProxy::Hash(_)) => true,
        None => is_primary,
    };
    let effective = match proxy_setting {
        _ if !proxied => None,
        Some(raw::RoleProxy::Hash(h)) => Some(overlay_proxy(&base, h)),
        _ => Some(base),
    };
    role.proxy = effective
        .map(|p| proxy(&p, &format!("{path}.proxy")))
        .transpose()?;
    Ok(role)
}

fn options(
    opts: &raw::OMap<Sp<raw::DockerOption>>,
    path: &str,
) -> R<(Vec<(String, DockerOption)>, RestartPolicy)> {
    let mut out = Vec::new();
    let mut restart = RestartPolicy::UnlessStopped;
    for (k, v) in &opts.0 {
        let p = format!("{path}.{}", k.value);
        if k.value == "restart" {
            restart = match &v.value {
                raw::DockerOption::Value(s) => restart_policy(s),
                _ => None,
            }
            .ok_or_else(|| {
                problem(
                    v.pos,
                    &p,
                    "restart policy must be `no`, `always`, `unless-stopped` or `on-failure[:N]`",
                )
                .hint("Kamal's default is `unless-stopped`")
            })?;
            continue;
        }
        let ok = !k.value.is_empty()
            && k.value.as_bytes()[0].is_ascii_alphanumeric()
            && k.value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(problem(
                k.pos,
                &p,
                format!(
                    "docker option `{}` is not a flag name",
                    k.value.escape_debug()
                ),
            )
            .hint("write the flag without dashes, e.g. `memory: 1g` for `--memory 1g`"));
        }
        let value = match &v.value {
            raw::DockerOption::Flag(true) => DockerOption::Flag,
            raw::DockerOption::Flag(false) => {
                return Err(problem(v.pos, &p, "`false` is not a docker option value")
                    .hint("remove the option, or use `true` for a bare flag"));
            }
            raw::DockerOption::Value(s) => DockerOption::Value(no_nul(
                &Sp {
                    value: s.clone(),
                    pos: v.pos,
                },
                &p,
            )?),
            raw::DockerOption::Values(list) => DockerOption::Values(
                list.iter()
                    .map(|s| {
                        no_nul(
                            &Sp {
                                value: s.value.0.clone(),
                                pos: s.pos,
                            },
                            &p,
                        )
                    })
                    .collect::<R<Vec<_>>>()?,
            ),
        };
        out.push((k.value.clone(), value));
    }
    Ok((out, restart))
}

fn restart_policy(s: &str) -> Option<RestartPolicy> {
    match s {
        "no" => Some(RestartPolicy::No),
        "always" => Some(RestartPolicy::Always),
        "unless-stopped" => Some(RestartPolicy::UnlessStopped),
        "on-failure" => Some(RestartPolicy::OnFailure(None)),
        _ => {
            let n = s.strip_prefix("on-failure:")?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n.parse().ok().map(|n| RestartPolicy::OnFailure(Some(n)))
        }
    }
}

/// Kamal's deep merge of a role's proxy hash over the root proxy.
fn overlay_proxy(base: &raw::Proxy, over: &raw::Proxy) -> raw::Proxy {
    let hc = match (&base.healthcheck, &over.healthcheck) {
        (Some(b), Some(o)) => Some(Sp {
            value: raw::Healthcheck {
                path: o.value.path.clone().or_else(|| b.value.path.clone()),
                interval: o
                    .value
                    .interval
                    .clone()
                    .or_else(|| b.value.interval.clone()),
                timeout: o.value.timeout.clone().or_else(|| b.value.timeout.clone()),
            },
            pos: o.pos,
        }),
        (b, o) => o.clone().or_else(|| b.clone()),
    };
    let buf = match (&base.buffering, &over.buffering) {
        (Some(b), Some(o)) => Some(Sp {
            value: raw::Buffering {
                requests: o
                    .value
                    .requests
                    .clone()
                    .or_else(|| b.value.requests.clone()),
                responses: o
                    .value
                    .responses
                    .clone()
                    .or_else(|| b.value.responses.clone()),
                max_request_body: o
                    .value
                    .max_request_body
                    .clone()
                    .or_else(|| b.value.max_request_body.clone()),
                max_response_body: o
                    .value
                    .max_response_body
                    .clone()
                    .or_else(|| b.value.max_response_body.clone()),
                memory: o.value.memory.clone().or_else(|| b.value.memory.clone()),
            },
            pos: o.pos,
        }),
        (b, o) => o.clone().or_else(|| b.clone()),
    };
    let log = match (&base.logging, &over.logging) {
        (Some(b), Some(o)) => Some(Sp {
            value: raw::ProxyLogging {
                request_headers: o
                    .value
                    .request_headers
                    .clone()
                    .or_else(|| b.value.request_headers.clone()),
                response_headers: o
                    .value
                    .response_headers
                    .clone()
                    .or_else(|| b.value.response_headers.clone()),
            },
            pos: o.pos,
        }),
        (b, o) => o.clone().or_else(|| b.clone()),
    };
    // `host` and `hosts` are one setting: the overlay's choice replaces the base's.
    let (host, hosts) = if over.host.is_some() || over.hosts.is_some() {
        (over.host.clone(), over.hosts.clone())
    } else {
        (base.host.clone(), base.hosts.clone())
    };
    let (path_prefix, path_prefixes) = if over.path_prefix.is_some() || over.path_prefixes.is_some()
    {
        (over.path_prefix.clone(), over.path_prefixes.clone())
    } else {
        (base.path_prefix.clone(), base.path_prefixes.clone())
    };
    raw::Proxy {
        host,
        hosts,
        app_port: over.app_port.clone().or_else(|| base.app_port.clone()),
        ssl: over.ssl.clone().or_else(|| base.ssl.clone()),
        ssl_redirect: over
            .ssl_redirect
            .clone()
            .or_else(|| base.ssl_redirect.clone()),
        forward_headers: over
            .forward_headers
            .clone()
            .or_else(|| base.forward_headers.clone()),
        response_timeout: over
            .response_timeout
            .clone()
            .or_else(|| base.response_timeout.clone()),
        healthcheck: hc,
        buffering: buf,
        path_prefix,
        path_prefixes,
        strip_path_prefix: over
            .strip_path_prefix
            .clone()
            .or_else(|| base.strip_path_prefix.clone()),
        logging: log,
        run: over.run.clone().or_else(|| base.run.clone()),
    }
}

fn proxy(p: &raw::Proxy, path: &str) -> R<Proxy> {
    reject(
        &p.run,
        &format!("{path}.run"),
        "`proxy.run` (a custom proxy container) is not supported by writ",
        "remove `proxy.run`",
    )?;
    let mut hosts = Vec::new();
    match (&p.host, &p.hosts) {
        (Some(h), Some(_)) => {
            return Err(problem(
                h.pos,
                format!("{path}.host"),
                "set either `host` or `hosts`, not both",
            ));
        }
        (Some(h), None) => {
            for part in h.value.split(',') {
                hosts.push(proxy_host(
                    &Sp {
                        value: part.trim().to_owned(),
                        pos: h.pos,
                    },
                    &format!("{path}.host"),
                )?);
            }
        }
        (None, Some(list)) => {
            for (i, h) in list.iter().enumerate() {
                hosts.push(proxy_host(h, &format!("{path}.hosts[{i}]"))?);
            }
        }
        (None, None) => {}
    }
    let ssl = match &p.ssl {
        None
        | Some(Sp {
            value: raw::Ssl::Enabled(false),
            ..
        }) => Ssl::Off,
        Some(
            s @ Sp {
                value: raw::Ssl::Enabled(true),
                ..
            },
        ) => {
            if hosts.is_empty() {
                return Err(problem(
                    s.pos,
                    format!("{path}.ssl"),
                    "`ssl: true` needs `host` or `hosts`",
                )
                .hint("add `host: app.example.com` so the certificate has a name"));
            }
            Ssl::Automatic
        }
        Some(
            s @ Sp {
                value: raw::Ssl::Custom(c),
                ..
            },
        ) => {
            if hosts.is_empty() {
                return Err(problem(
                    s.pos,
                    format!("{path}.ssl"),
                    "`ssl` needs `host` or `hosts`",
                ));
            }
            let need = |v: &Option<Sp<String>>, key: &str| -> R<SecretName> {
                match v {
                    Some(v) => secret_name(
                        v,
                        &format!("{path}.ssl.{key}"),
                        "name the secret holding the PEM (e.g. `private_key_pem: TLS_KEY`), never the PEM itself",
                    ),
                    None => Err(problem(
                        s.pos,
                        format!("{path}.ssl"),
                        format!("missing `{key}` (custom certificates need both PEM secrets)"),
                    )),
                }
            };
            Ssl::Custom {
                certificate_pem: need(&c.certificate_pem, "certificate_pem")?,
                private_key_pem: need(&c.private_key_pem, "private_key_pem")?,
            }
        }
    };
    let app_port = p
        .app_port
        .as_ref()
        .map(|v| port(v, &format!("{path}.app_port")))
        .transpose()?
        .unwrap_or(80);
    let mut path_prefixes = Vec::new();
    if let Some(pp) = &p.path_prefix {
        for part in pp.value.split(',') {
            path_prefixes.push(url_path(
                &Sp {
                    value: part.trim().to_owned(),
                    pos: pp.pos,
                },
                &format!("{path}.path_prefix"),
            )?);
        }
    }
    if let Some(list) = &p.path_prefixes {
        if let Some(pp) = &p.path_prefix {
            return Err(problem(
                pp.pos,
                format!("{path}.path_prefix"),
                "set either `path_prefix` or `path_prefixes`, not both",
            ));
        }
        for (i, pp) in list.iter().enumerate() {
            path_prefixes.push(url_path(pp, &format!("{path}.path_prefixes[{i}]"))?);
        }
    }
    let healthcheck = match &p.healthcheck {
        None => Healthcheck::default(),
        Some(h) => Healthcheck {
            path: h
                .value
                .path
                .as_ref()
                .map(|v| url_path(v, &format!("{path}.healthcheck.path")))
                .transpose()?,
            interval: h
                .value
                .interval
                .as_ref()
                .map(|v| seconds(Some(v), &format!("{path}.healthcheck.interval"), 0, 1))
                .transpose()?,
            timeout: h
                .value
                .timeout
                .as_ref()
                .map(|v| seconds(Some(v), &format!("{path}.healthcheck.timeout"), 0, 1))
                .transpose()?,
        },
    };
    let bytes = |v: &Option<Sp<i64>>, key: &str| -> R<Option<u64>> {
        v.as_ref()
            .map(|v| {
                u64::try_from(v.value).map_err(|_| {
                    problem(
                        v.pos,
                        format!("{path}.buffering.{key}"),
                        "must be a number of bytes, at least 0",
                    )
                })
            })
            .transpose()
    };
    let buffering = match &p.buffering {
        None => Buffering::default(),
        Some(b) => Buffering {
            requests: b.value.requests.as_ref().map(|v| v.value),
            responses: b.value.responses.as_ref().map(|v| v.value),
            max_request_body: bytes(&b.value.max_request_body, "max_request_body")?,
            max_response_body: bytes(&b.value.max_response_body, "max_response_body")?,
            memory: bytes(&b.value.memory, "memory")?,
        },
    };
    let header_list = |v: Option<&Vec<Sp<String>>>, key: &str| -> R<Vec<String>> {
        v.map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|h| {
                if !h.value.is_empty()
                    && h.value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    Ok(h.value.clone())
                } else {
                    Err(problem(
                        h.pos,
                        format!("{path}.logging.{key}"),
                        format!("`{}` is not an HTTP header name", h.value.escape_debug()),
                    ))
                }
            })
            .collect()
    };
    let (request_headers, response_headers) = match &p.logging {
        None => (Vec::new(), Vec::new()),
        Some(l) => (
            header_list(l.value.request_headers.as_ref(), "request_headers")?,
            header_list(l.value.response_headers.as_ref(), "response_headers")?,
        ),
    };
    Ok(Proxy {
        hosts,
        app_port,
        ssl,
        ssl_redirect: p.ssl_redirect.as_ref().map(|v| v.value),
        forward_headers: p.forward_headers.as_ref().map(|v| v.value),
        response_timeout: p
            .response_timeout
            .as_ref()
            .map(|v| seconds(Some(v), &format!("{path}.response_timeout"), 0, 1))
            .transpose()?,
        healthcheck,
        buffering,
        path_prefixes,
        strip_path_prefix: p.strip_path_prefix.as_ref().map(|v| v.value),
        request_headers,
        response_headers,
    })
}

fn proxy_host(h: &Sp<String>, path: &str) -> R<String> {
    let s = &h.value;
    let body = s.strip_prefix("*.").unwrap_or(s);
    let ok = !body.is_empty()
        && body.len() <= 253
        && body.as_bytes()[0].is_ascii_alphanumeric()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok {
        Ok(s.clone())
    } else {
        Err(problem(
            h.pos,
            path,
            format!("proxy host `{}` is not a DNS name", s.escape_debug()),
        ))
    }
}

fn url_path(p: &Sp<String>, path: &str) -> R<String> {
    let ok = p.value.starts_with('/') && p.value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(p.value.clone())
    } else {
        Err(problem(
            p.pos,
            path,
            format!(
                "`{}` is not a URL path (it must start with `/`, printable ASCII)",
                p.value.escape_debug()
            ),
        ))
    }
}

/// Kamal: automatic TLS works on one server per role; and two roles may not share TLS hosts.
fn ssl_rules(roles: &[Role], pos: Pos) -> R<()> {
    let mut seen: Vec<(&str, &RoleName)> = Vec::new();
    for r in roles {
        let Some(p) = &r.proxy else { continue };
        if p.ssl == Ssl::Automatic && r.hosts.len() > 1 {
            return Err(problem(pos, format!("servers.{}.proxy.ssl", r.name), format!("automatic TLS (`ssl: true`) needs a single server, but role `{}` has {}", r.name, r.hosts.len()))
                .hint("use custom certificates (`ssl: {certificate_pem: …, private_key_pem: …}`) or terminate TLS in a load balancer"));
        }
        if p.ssl == Ssl::Off {
            continue;
        }
        for h in &p.hosts {
            if let Some((_, other)) = seen.iter().find(|(x, n)| x == h && *n != &r.name) {
                return Err(problem(
                    pos,
                    format!("servers.{}.proxy", r.name),
                    format!("roles `{other}` and `{}` both serve TLS for `{h}`", r.name),
                ));
            }
            seen.push((h, &r.name));
        }
    }
    Ok(())
}

fn volume(v: &Sp<String>, path: &str) -> R<String> {
    let s = no_nul(v, path)?;
    if s.is_empty() || !s.contains(':') {
        return Err(problem(
            v.pos,
            path,
            format!(
                "volume `{}` is not `host_path:container_path[:options]`",
                s.escape_debug()
            ),
        ));
    }
    Ok(s)
}

fn accessory(
    name: &Sp<String>,
    acc: &Sp<raw::Accessory>,
    service: &ServiceName,
    roles: &[Role],
) -> R<Accessory> {
    let path = format!("accessories.{}", name.value);
    let spec = &acc.value;
    let acc_name: AccessoryName = parse_sp(name, &path)?;
    let image = match &spec.image {
        Some(i) => {
            if i.value.is_empty() || !i.value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(problem(
                    i.pos,
                    format!("{path}.image"),
                    "image must be printable ASCII without spaces",
                ));
            }
            i.value.clone()
        }
        None => {
            return Err(problem(acc.pos, &path, "missing required key `image`")
                .hint("add `image: mysql:8.0` (any image reference)"));
        }
    };
    let acc_service = match &spec.service {
        Some(s) => {
            if !is_simple_name(&s.value) {
                return Err(problem(
                    s.pos,
                    format!("{path}.service"),
                    format!(
                        "service `{}` is not a valid container name",
                        s.value.escape_debug()
                    ),
                ));
            }
            s.value.clone()
        }
        None => format!("{service}-{acc_name}"),
    };
    // Exactly one host selector.
    let selectors: Vec<(&str, Pos)> = [
        ("host", spec.host.as_ref().map(|x| x.pos)),
        (
            "hosts",
            spec.hosts
                .as_ref()
                .and_then(|x| x.first())
                .map(|x| x.pos)
                .or(spec.hosts.as_ref().map(|_| acc.pos)),
        ),
        ("role", spec.role.as_ref().map(|x| x.pos)),
        (
            "roles",
            spec.roles
                .as_ref()
                .and_then(|x| x.first())
                .map(|x| x.pos)
                .or(spec.roles.as_ref().map(|_| acc.pos)),
        ),
        ("tag", spec.tag.as_ref().map(|x| x.pos)),
        (
            "tags",
            spec.tags
                .as_ref()
                .and_then(|x| x.first())
                .map(|x| x.pos)
                .or(spec.tags.as_ref().map(|_| acc.pos)),
        ),
    ]
    .into_iter()
    .filter_map(|(k, p)| p.map(|p| (k, p)))
    .collect();
    match selectors.as_slice() {
        [] => {
            return Err(problem(
                acc.pos,
                &path,
                format!("accessory `{acc_name}` has no host selector"),
            )
            .hint("set exactly one of `host`, `hosts`, `role`, `roles`, `tag`, `tags`"));
        }
        [_] => {}
        [(a1, _), (a2, p2), ..] => {
            return Err(problem(
                *p2,
                format!("{path}.{a2}"),
                format!("accessory `{acc_name}` sets both `{a1}` and `{a2}`"),
            )
            .hint("set exactly one of `host`, `hosts`, `role`, `roles`, `tag`, `tags`"));
        }
    }
    let one_or_list =
        |one: &Option<Sp<String>>, many: &Option<Vec<Sp<String>>>| -> Vec<Sp<String>> {
            one.iter()
                .cloned()
                .chain(many.iter().flatten().cloned())
                .collect()
        };
    let mut hosts: Vec<HostName> = Vec::new();
    let push = |hosts: &mut Vec<HostName>, h: &HostName| {
        if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    };
    let selector = if spec.host.is_some() || spec.hosts.is_some() {
        let list = one_or_list(&spec.host, &spec.hosts);
        let mut names = Vec::new();
        for h in &list {
            let hn: HostName = parse_sp(h, &format!("{path}.host"))?;
            push(&mut hosts, &hn);
            names.push(hn);
        }
        HostSelector::Hosts(names)
    } else if spec.role.is_some() || spec.roles.is_some() {
        let list = one_or_list(&spec.role, &spec.roles);
        let mut names = Vec::new();
        for r in &list {
            let rn: RoleName = parse_sp(r, &format!("{path}.role"))?;
            let Some(role) = roles.iter().find(|x| x.name == rn) else {
                let known: Vec<&str> = roles.iter().map(|x| x.name.as_str()).collect();
                let hint = suggest(rn.as_str(), &known).map_or_else(
                    || format!("roles defined: {}", known.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
                return Err(problem(
                    r.pos,
                    format!("{path}.role"),
                    format!("role `{rn}` is not defined in `servers`"),
                )
                .hint(hint));
            };
            for h in &role.hosts {
                push(&mut hosts, &h.host);
            }
            names.push(rn);
        }
        HostSelector::Roles(names)
    } else {
        let list = one_or_list(&spec.tag, &spec.tags);
        let mut names = Vec::new();
        for t in &list {
            let tn: TagName = parse_sp(t, &format!("{path}.tag"))?;
            let before = hosts.len();
            for h in roles
                .iter()
                .flat_map(|r| &r.hosts)
                .filter(|h| h.tags.contains(&tn))
            {
                push(&mut hosts, &h.host);
            }
            if hosts.len() == before
                && !roles
                    .iter()
                    .flat_map(|r| &r.hosts)
                    .any(|h| h.tags.contains(&tn))
            {
                return Err(problem(
                    t.pos,
                    format!("{path}.tag"),
                    format!("no host has the tag `{tn}`"),
                ));
            }
            names.push(tn);
        }
        HostSelector::Tags(names)
    };
    let port = spec
        .port
        .as_ref()
        .map(|p| {
            accessory_port(
                &Sp {
                    value: p.value.0.clone(),
                    pos: p.pos,
                },
                &format!("{path}.port"),
            )
        })
        .transpose()?;
    let env = match &spec.env {
        Some(e) => {
            if let Some((k, _)) = &e.value.tags {
                return Err(problem(
                    k.pos,
                    format!("{path}.env.tags"),
                    "`tags` is only allowed in the root `env`",
                ));
            }
            env_layer(&e.value, &format!("{path}.env"))?
        }
        None => EnvLayer::default(),
    };
    let volumes = spec
        .volumes
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| volume(v, &format!("{path}.volumes[{i}]")))
        .collect::<R<Vec<_>>>()?;
    let mut directories = Vec::new();
    for (i, d) in spec.directories.iter().flatten().enumerate() {
        let p = format!("{path}.directories[{i}]");
        let text = match &d.value {
            raw::PathEntry::Short(s) => s.clone(),
            raw::PathEntry::Long(h) => match (&h.local, &h.remote) {
                (Some(l), Some(r)) => format!("{}:{}", l.value, r.value),
                _ => return Err(problem(d.pos, p, "a directory needs `local` and `remote`")),
            },
        };
        directories.push(volume(
            &Sp {
                value: text,
                pos: d.pos,
            },
            &p,
        )?);
    }
    let mut files = Vec::new();
    for (i, f) in spec.files.iter().flatten().enumerate() {
        let p = format!("{path}.files[{i}]");
        let (local, remote, mode, owner) = match &f.value {
            raw::PathEntry::Short(s) => {
                let mut parts = s.splitn(3, ':');
                let (Some(l), Some(r)) = (parts.next(), parts.next()) else {
                    return Err(problem(
                        f.pos,
                        p,
                        format!("file `{}` is not `local:remote`", s.escape_debug()),
                    ));
                };
                (l.to_owned(), r.to_owned(), None, None)
            }
            raw::PathEntry::Long(h) => match (&h.local, &h.remote) {
                (Some(l), Some(r)) => (
                    l.value.clone(),
                    r.value.clone(),
                    h.mode.as_ref().map(|m| m.value.0.clone()),
                    h.owner.as_ref().map(|o| o.value.0.clone()),
                ),
                _ => return Err(problem(f.pos, p, "a file needs `local` and `remote`")),
            },
        };
        let local_path = PathBuf::from(&local);
        if local.is_empty()
            || local_path.is_absolute()
            || local_path
                .components()
                .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(problem(
                f.pos,
                p,
                format!(
                    "local file `{}` must be a relative path inside the config root",
                    local.escape_debug()
                ),
            ));
        }
        if local_path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("erb"))
        {
            return Err(problem(f.pos, p, "ERB templates are not supported")
                .hint("commit the rendered file; put secret values in `env.secret`"));
        }
        if !remote.starts_with('/') || remote.contains('\0') {
            return Err(problem(
                f.pos,
                p,
                format!("remote path `{}` must be absolute", remote.escape_debug()),
            ));
        }
        if let Some(m) = &mode
            && (!(m.len() == 3 || m.len() == 4) || !m.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        {
            return Err(problem(
                f.pos,
                p,
                format!("mode `{m}` is not octal like `0644`"),
            ));
        }
        files.push(AccessoryFile {
            local: local_path,
            remote,
            mode,
            owner,
        });
    }
    let labels = labels(spec.labels.as_ref(), &format!("{path}.labels"))?;
    let (options, restart) = match &spec.options {
        Some(o) => options(o, &format!("{path}.options"))?,
        None => (Vec::new(), RestartPolicy::UnlessStopped),
    };
    let network = match &spec.network {
        Some(n) => {
            if !is_simple_name(&n.value) {
                return Err(problem(
                    n.pos,
                    format!("{path}.network"),
                    format!("network `{}` is not a simple name", n.value.escape_debug()),
                ));
            }
            n.value.clone()
        }
        None => "kamal".to_owned(),
    };
    let registry = spec
        .registry
        .as_ref()
        .map(|r| registry(r, &format!("{path}.registry")))
        .transpose()?;
    let proxy = spec
        .proxy
        .as_ref()
        .map(|p| proxy(&p.value, &format!("{path}.proxy")))
        .transpose()?;
    Ok(Accessory {
        name: acc_name,
        service: acc_service,
        image,
        selector,
        hosts,
        cmd: spec
            .cmd
            .as_ref()
            .map(|c| {
                no_nul(
                    &Sp {
                        value: c.value.0.clone(),
                        pos: c.pos,
                    },
                    &format!("{path}.cmd"),
                )
            })
            .transpose()?,
        port,
        env,
        volumes,
        directories,
        files,
        labels,
        options,
        restart,
        network,
        registry,
        proxy,
    })
}

/// `3306`, `3306:3306`, `127.0.0.1:3306:3306` (optionally `/tcp` or `/udp`).
fn accessory_port(p: &Sp<String>, path: &str) -> R<String> {
    let s = &p.value;
    let body = s
        .strip_suffix("/tcp")
        .or_else(|| s.strip_suffix("/udp"))
        .unwrap_or(s);
    let parts: Vec<&str> = body.split(':').collect();
    let is_port = |x: &str| x.parse::<u16>().is_ok_and(|n| n > 0);
    let ok = match parts.as_slice() {
        [a] => is_port(a),
        [a, b] => is_port(a) && is_port(b),
        [ip, a, b] => ip.parse::<std::net::Ipv4Addr>().is_ok() && is_port(a) && is_port(b),
        _ => false,
    };
    if ok {
        Ok(s.clone())
    } else {
        Err(problem(
            p.pos,
            path,
            format!(
                "port `{}` is not `PORT`, `HOST_PORT:PORT` or `IP:HOST_PORT:PORT`",
                s.escape_debug()
            ),
        ))
    }
}

fn ssh(s: Option<&Sp<raw::Ssh>>, ctx: &mut Ctx<'_>) -> R<Ssh> {
    let mut out = Ssh::default();
    let Some(s) = s else { return Ok(out) };
    let s = &s.value;
    reject(
        &s.proxy_command,
        "ssh.proxy_command",
        "`ssh.proxy_command` runs a local command to connect and cannot be pinned",
        "use `ssh.proxy: user@jump-host` instead; its key is pinned like any other host's",
    )?;
    if let Some(f) = &s.forward_agent
        && f.value
    {
        return Err(problem(
            f.pos,
            "ssh.forward_agent",
            "agent forwarding is never enabled by writ",
        )
        .hint("remove `forward_agent`; it would expose your ssh-agent to every host"));
    }
    ctx.ignore(
        &s.keys,
        "ssh.keys",
        "writ-exec takes SSH keys from its own --identity flag or ssh-agent",
    );
    ctx.ignore(
        &s.keys_only,
        "ssh.keys_only",
        "writ-exec takes SSH keys from its own --identity flag or ssh-agent",
    );
    ctx.ignore(
        &s.key_data,
        "ssh.key_data",
        "writ-exec takes SSH keys from its own --identity flag or ssh-agent",
    );
    ctx.ignore(
        &s.config,
        "ssh.config",
        "writ-exec never reads OpenSSH config files; everything it uses is in the plan",
    );
    ctx.ignore(
        &s.log_level,
        "ssh.log_level",
        "writ-exec has its own output options",
    );
    if let Some(u) = &s.user {
        out.user = ssh_user(u, "ssh.user")?;
    }
    if let Some(p) = &s.port {
        out.port = port(p, "ssh.port")?;
    }
    if let Some(p) = &s.proxy {
        let (user, rest) = match p.value.split_once('@') {
            Some((u, r)) => (
                ssh_user(
                    &Sp {
                        value: u.to_owned(),
                        pos: p.pos,
                    },
                    "ssh.proxy",
                )?,
                r,
            ),
            None => ("root".to_owned(), p.value.as_str()),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, port)) if !h.contains(':') => {
                let n = port.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    problem(
                        p.pos,
                        "ssh.proxy",
                        format!("jump host port `{}` is not 1..65535", port.escape_debug()),
                    )
                })?;
                (h, n)
            }
            _ => (rest, 22),
        };
        let host: HostName = parse_sp(
            &Sp {
                value: host.to_owned(),
                pos: p.pos,
            },
            "ssh.proxy",
        )?;
        out.proxy = Some(JumpHost { user, host, port });
    }
    Ok(out)
}

fn ssh_user(u: &Sp<String>, path: &str) -> R<String> {
    let s = &u.value;
    let ok = !s.is_empty()
        && s.len() <= 32
        && (s.as_bytes()[0].is_ascii_lowercase() || s.as_bytes()[0] == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(s.clone())
    } else {
        Err(problem(
            u.pos,
            path,
            format!("`{}` is not a valid login name", s.escape_debug()),
        )
        .hint("use lower-case letters, digits, `_`, `.` and `-`, starting with a letter or `_`"))
    }
}

fn boot(b: Option<&Sp<raw::Boot>>) -> R<Boot> {
    let mut out = Boot::default();
    let Some(b) = b else { return Ok(out) };
    if let Some(l) = &b.value.limit {
        let text = l.value.0.trim();
        let limit = if let Some(pct) = text.strip_suffix('%') {
            pct.parse::<u8>()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .map(BootLimit::Percent)
        } else {
            text.parse::<u32>()
                .ok()
                .and_then(NonZeroU32::new)
                .map(BootLimit::Count)
        };
        out.limit = Some(limit.ok_or_else(|| {
            problem(l.pos, "boot.limit", format!("boot limit `{}` must be a number of hosts (at least 1) or a percentage from 1% to 100%", l.value.0.escape_debug()))
                .hint("e.g. `limit: 2` or `limit: 25%`")
        })?);
    }
    if let Some(w) = &b.value.wait {
        out.wait = seconds(Some(w), "boot.wait", 0, 0)?;
    }
    out.parallel_roles = b.value.parallel_roles.as_ref().is_some_and(|p| p.value);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
