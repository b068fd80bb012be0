//! Operations (`writ plan OPERATION`) and [`build`], which turns a validated config and an
//! operation into a complete [`writ_exec::plan::Plan`].
//!
//! Phases follow Kamal 2's order: pull on every app host in parallel; boot in rolling groups
//! of `boot.limit` (primary role's hosts first, `boot.wait` seconds between groups; without a
//! limit, the first primary host alone and then the rest, like Kamal's barrier); tag the
//! `latest-<destination>` image only after every group; prune. Everything that depends on a
//! host's state (which version runs, whether a container exists) is shell inside the steps.
//! docs/operations.md lists each operation's phases and the files it leaves on hosts.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use writ_exec::plan::{Host, HostSteps, Phase, Plan, Previous, Source, Step, Strategy};

use crate::Error;
use crate::config::{Config, HostName, Role, RoleHost};
use crate::steps::Context;
use crate::steps::accessory::AccessorySteps;
use crate::steps::app::{AppSteps, ImageSteps, NETWORK};
use crate::steps::exec::{ExecSteps, check_exec_command};
use crate::steps::host::HostSteps as HostPrep;
use crate::steps::proxy::ProxySteps;
use crate::steps::prune::PruneSteps;
use crate::steps::registry::RegistrySteps;
use crate::template::Templates;

/// What `writ app …` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppAction {
    /// Start the current version's containers and route traffic to them.
    Start,
    /// Unroute and stop the role containers.
    Stop,
    /// Stop, then remove containers, images and the app's directories.
    Remove,
}

/// What `writ proxy …` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyAction {
    /// Start (or create) the proxy container.
    Boot,
    /// Recreate the proxy container, one host at a time.
    Reboot,
    /// Remove the proxy (refused while apps are deployed on the host).
    Remove,
}

/// What `writ accessory …` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessoryAction {
    /// Boot unless a container exists.
    Boot,
    /// Pull, stop, remove and boot again.
    Reboot,
    /// Stop and remove the container, its image and its directory (data included).
    Remove,
}

/// Which accessories an accessory operation addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessoryTarget {
    /// One accessory by name.
    Named(String),
    /// Every accessory (`all`).
    All,
}

/// An operation to plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Check Docker, create the network, boot the proxy and all accessories, then deploy.
    Setup,
    /// Pull, boot the proxy, boot the app in rolling groups, tag latest, prune.
    Deploy,
    /// Deploy without proxy boot and prune.
    Redeploy,
    /// Boot an earlier version from its existing container's image; no pull.
    Rollback {
        /// The version to roll back to (its containers must still exist).
        version: String,
    },
    /// `app start|stop|remove`.
    App(AppAction),
    /// `proxy boot|reboot|remove`.
    Proxy(ProxyAction),
    /// `accessory boot|reboot|remove NAME|all`.
    Accessory(AccessoryAction, AccessoryTarget),
    /// Remove old containers and unused images.
    Prune,
    /// Run shell lines on the hosts of `roles` (all hosts when empty), verbatim.
    ServerExec {
        /// Role names; empty = every host.
        roles: Vec<String>,
        /// The command lines, each shown and run as written.
        commands: Vec<String>,
    },
    /// Run commands in new containers of the deployed image on the hosts of `roles`.
    AppExec {
        /// Role names; empty = every role.
        roles: Vec<String>,
        /// The command lines, each appended verbatim to `docker run … IMAGE`.
        commands: Vec<String>,
    },
}

impl Operation {
    /// The `operation` header line of the plan (`deploy`, `rollback 3f2a1c9`, `accessory boot db`).
    #[must_use]
    pub fn header(&self) -> String {
        match self {
            Operation::Setup => "setup".to_owned(),
            Operation::Deploy => "deploy".to_owned(),
            Operation::Redeploy => "redeploy".to_owned(),
            Operation::Rollback { version } => format!("rollback {version}"),
            Operation::App(a) => format!(
                "app {}",
                match a {
                    AppAction::Start => "start",
                    AppAction::Stop => "stop",
                    AppAction::Remove => "remove",
                }
            ),
            Operation::Proxy(a) => format!(
                "proxy {}",
                match a {
                    ProxyAction::Boot => "boot",
                    ProxyAction::Reboot => "reboot",
                    ProxyAction::Remove => "remove",
                }
            ),
            Operation::Accessory(a, t) => format!(
                "accessory {} {}",
                match a {
                    AccessoryAction::Boot => "boot",
                    AccessoryAction::Reboot => "reboot",
                    AccessoryAction::Remove => "remove",
                },
                match t {
                    AccessoryTarget::Named(n) => n.as_str(),
                    AccessoryTarget::All => "all",
                }
            ),
            Operation::Prune => "prune".to_owned(),
            Operation::ServerExec { roles, .. } => with_roles("server exec", roles),
            Operation::AppExec { roles, .. } => with_roles("app exec", roles),
        }
    }
}

fn with_roles(base: &str, roles: &[String]) -> String {
    if roles.is_empty() {
        base.to_owned()
    } else {
        format!("{base} --roles {}", roles.join(","))
    }
}

/// Inputs to a plan besides the config and the operation.
#[derive(Debug)]
pub struct PlanInputs<'a> {
    /// The app version (`--version`, else the git HEAD commit).
    pub version: String,
    /// `sha256:<64 hex>` to pin the image by digest in every pull and run.
    pub image_digest: Option<String>,
    /// Position in the chain (previous + 1; 1 for genesis).
    pub serial: u64,
    /// The plan this one replaces.
    pub previous: Previous,
    /// When the plan was made (commit time or SOURCE_DATE_EPOCH).
    pub created: Timestamp,
    /// When the plan stops being valid.
    pub expires: Timestamp,
    /// The templates to render.
    pub templates: &'a Templates,
    /// The git commit of the config, if any (lower-case hex).
    pub commit: Option<String>,
}

/// Build the plan for `op`.
pub fn build(config: &Config, op: &Operation, inputs: &PlanInputs<'_>) -> Result<Plan, Error> {
    let fail = |message: String| Error::Operation {
        operation: op.header(),
        message,
    };
    let destination = config
        .destination()
        .map(ToString::to_string)
        .ok_or_else(|| fail("plans are per destination; pass `-d DESTINATION`".into()))?;
    check_positional_values(config).map_err(fail)?;
    if let Some(d) = &inputs.image_digest {
        let hex = d.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(fail(format!(
                "image digest `{}` is not `sha256:` and 64 lower-case hex digits",
                d.escape_debug()
            )));
        }
    }
    let version = match op {
        Operation::Rollback { version } => version.as_str(),
        _ => inputs.version.as_str(),
    };
    if !is_docker_tag(version) {
        return Err(fail(format!(
            "version `{}` cannot be a docker image tag and container name suffix (letters, \
             digits, `_`, `.` and `-`, starting with a letter or digit, at most 128)",
            version.escape_debug()
        )));
    }
    let ctx = Context {
        config,
        templates: inputs.templates,
        destination: &destination,
        version,
        image_digest: match op {
            // A rollback boots the image of the old version's container, not a new digest.
            Operation::Rollback { .. } => None,
            _ => inputs.image_digest.as_deref(),
        },
    };
    let phases = Phases::new(&ctx).build(op)?;
    if phases.is_empty() {
        return Err(fail(
            "there is nothing to do: no host has a step for this operation".into(),
        ));
    }
    let hosts = plan_hosts(config, &phases).map_err(fail)?;
    Ok(Plan {
        service: config.service.to_string(),
        destination,
        operation: op.header(),
        version: version.to_owned(),
        serial: inputs.serial,
        previous: inputs.previous,
        created: inputs.created,
        expires: inputs.expires,
        source: Source {
            config: config.source_digest(),
            templates: inputs.templates.digest(),
            commit: inputs.commit.clone(),
        },
        hosts,
        phases,
    })
}

/// Values that land where a program reads options (`docker pull IMAGE`, `docker login
/// SERVER`, `rm -rf SERVICE`, `chown OWNER`, `chmod MODE`) must not be able to become one:
/// quoting keeps a value one word, but a word starting with `-` is still an option.
fn check_positional_values(config: &Config) -> Result<(), String> {
    let not_option = |field: &str, v: &str| {
        if v.is_empty() || v.starts_with('-') {
            Err(format!(
                "{field} `{}` is empty or starts with `-`, so a command would read it as an option",
                v.escape_debug()
            ))
        } else {
            Ok(())
        }
    };
    not_option("image", &config.image)?;
    let registries = std::iter::once(("registry.server", config.registry.as_ref())).chain(
        config
            .accessories
            .iter()
            .map(|a| ("accessories.*.registry.server", a.registry.as_ref())),
    );
    for (field, r) in registries {
        if let Some(server) = r.and_then(|r| r.server.as_deref()) {
            not_option(field, server)?;
        }
    }
    for a in &config.accessories {
        let path = format!("accessories.{}", a.name);
        not_option(&format!("{path}.image"), &a.image)?;
        let container_name = a
            .service
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
            && a.service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !container_name {
            return Err(format!(
                "{path}.service `{}` is not a container name (letters, digits, `_`, `.`, `-`, \
                 starting with a letter or digit); it also names the accessory's directory",
                a.service.escape_debug()
            ));
        }
        for f in &a.files {
            if let Some(mode) = &f.mode {
                let octal = (3..=4).contains(&mode.len())
                    && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
                if !octal {
                    return Err(format!(
                        "{path}.files mode `{}` is not an octal mode like 0644",
                        mode.escape_debug()
                    ));
                }
            }
            if let Some(owner) = &f.owner {
                not_option(&format!("{path}.files owner"), owner)?;
            }
        }
    }
    Ok(())
}

/// Whether `v` is a valid docker tag that also works as the end of a container name.
fn is_docker_tag(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The name a host has in the plan: the host itself, or for an IPv6 address `ip6-` and the
/// address with `:` as `-` (plan names cannot hold `:`).
#[must_use]
pub fn plan_host_name(host: &HostName) -> String {
    let s = host.as_str();
    if s.contains(':') {
        format!("ip6-{}", s.replace(':', "-"))
    } else {
        s.to_owned()
    }
}

/// Declare every host a phase uses (plus the jump host) with its pinned keys, sorted by name.
fn plan_hosts(config: &Config, phases: &[Phase]) -> Result<Vec<Host>, String> {
    let mut by_name: BTreeMap<String, &HostName> = BTreeMap::new();
    for h in config.all_hosts() {
        by_name.insert(plan_host_name(h), h);
    }
    let keys = |h: &HostName| {
        config
            .host_keys
            .get(h)
            .filter(|k| !k.is_empty())
            .cloned()
            .ok_or_else(|| {
                format!(
                    "host `{h}` has no pinned key in {}; run `writ hostkeys`",
                    config.writ.host_keys.display()
                )
            })
    };
    let jump = config.ssh.proxy.as_ref();
    let jump_name = jump.map(|j| plan_host_name(&j.host));
    let mut out: BTreeMap<String, Host> = BTreeMap::new();
    for name in phases.iter().flat_map(|p| p.hosts.iter().map(|h| &h.host)) {
        if out.contains_key(name) {
            continue;
        }
        let host = by_name
            .get(name)
            .ok_or_else(|| format!("internal: phase host `{name}` is not in the config"))?;
        if jump_name.as_deref() == Some(name.as_str()) {
            return Err(format!(
                "host `{host}` is both a deploy target and the ssh.proxy jump host"
            ));
        }
        out.insert(
            name.clone(),
            Host {
                name: name.clone(),
                user: config.ssh.user.clone(),
                address: host.as_str().to_owned(),
                port: config.ssh.port,
                via: jump_name.clone(),
                keys: keys(host)?,
            },
        );
    }
    if let (Some(j), Some(name)) = (jump, jump_name) {
        out.insert(
            name.clone(),
            Host {
                name,
                user: j.user.clone(),
                address: j.host.as_str().to_owned(),
                port: j.port,
                via: None,
                keys: keys(&j.host)?,
            },
        );
    }
    Ok(out.into_values().collect())
}

/// Assembles phases for an operation.
struct Phases<'a, 'c> {
    ctx: &'a Context<'c>,
    /// `Config::app_hosts`, computed once.
    app_hosts: Vec<&'c HostName>,
    out: Vec<Phase>,
}

impl<'a, 'c> Phases<'a, 'c> {
    fn new(ctx: &'a Context<'c>) -> Self {
        Self {
            ctx,
            app_hosts: ctx.config.app_hosts(),
            out: Vec::new(),
        }
    }

    fn config(&self) -> &'c Config {
        self.ctx.config
    }

    /// Add a phase over `hosts` (in order), with each host's steps from `f`; hosts without
    /// steps are left out, and so is a phase without hosts.
    fn phase<F>(
        &mut self,
        name: &str,
        strategy: Strategy,
        hosts: &[&HostName],
        mut f: F,
    ) -> Result<(), Error>
    where
        F: FnMut(&HostName, &mut Vec<Step>) -> Result<(), Error>,
    {
        let mut list = Vec::new();
        for h in hosts {
            let mut steps = Vec::new();
            f(h, &mut steps)?;
            if !steps.is_empty() {
                list.push(HostSteps {
                    host: plan_host_name(h),
                    steps,
                });
            }
        }
        if !list.is_empty() {
            self.out.push(Phase {
                name: name.to_owned(),
                strategy,
                hosts: list,
            });
        }
        Ok(())
    }

    fn build(mut self, op: &Operation) -> Result<Vec<Phase>, Error> {
        match op {
            Operation::Setup => {
                self.bootstrap()?;
                self.pull()?;
                self.proxy_boot()?;
                self.accessories(AccessoryAction::Boot, &AccessoryTarget::All)?;
                self.boot()?;
                self.tag()?;
                self.prune()?;
            }
            Operation::Deploy => {
                self.pull()?;
                self.proxy_boot()?;
                self.boot()?;
                self.tag()?;
                self.prune()?;
            }
            Operation::Redeploy => {
                self.pull()?;
                self.boot()?;
                self.tag()?;
            }
            Operation::Rollback { .. } => {
                self.rollback_check()?;
                self.boot()?;
            }
            Operation::App(a) => self.app(*a)?,
            Operation::Proxy(a) => self.proxy(*a)?,
            Operation::Accessory(a, t) => self.accessories(*a, t)?,
            Operation::Prune => self.prune()?,
            Operation::ServerExec { roles, commands } => self.server_exec(roles, commands)?,
            Operation::AppExec { roles, commands } => self.app_exec(roles, commands)?,
        }
        Ok(self.out)
    }

    /// For each host, the roles on it with their host entry, in role order (built once, so
    /// a 10,000-host plan does not scan every role's host list per host).
    fn role_map<'r>(roles: &[&'r Role]) -> BTreeMap<&'r HostName, Vec<(&'r Role, &'r RoleHost)>> {
        let mut map: BTreeMap<&HostName, Vec<(&Role, &RoleHost)>> = BTreeMap::new();
        for r in roles {
            for h in &r.hosts {
                map.entry(&h.host).or_default().push((r, h));
            }
        }
        map
    }

    fn bootstrap(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let hosts = self.config().all_hosts();
        self.phase("bootstrap", Strategy::Parallel, &hosts, |_, steps| {
            let prep = HostPrep::new(ctx);
            prep.require_docker(steps)?;
            prep.ensure_state_dir(steps)?;
            prep.create_network(NETWORK, steps)
        })
    }

    fn pull(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let hosts = self.app_hosts.clone();
        self.phase("pull", Strategy::Parallel, &hosts, |_, steps| {
            RegistrySteps::new(ctx).login(ctx.config.registry.as_ref(), steps)?;
            ImageSteps::new(ctx).pull_image(steps)
        })
    }

    fn proxy_hosts(&self) -> Vec<&'c HostName> {
        let proxy = ProxySteps::new(self.ctx);
        hosts_of(
            self.config()
                .roles
                .iter()
                .filter(|r| proxy.routes(r.proxy.as_ref())),
        )
    }

    /// Kamal's proxy boot within deploy: the state directory and network on every app host,
    /// and the proxy container where a role is proxied.
    fn proxy_boot(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let proxied: BTreeSet<&HostName> = self.proxy_hosts().into_iter().collect();
        let hosts = self.app_hosts.clone();
        self.phase("proxy", Strategy::Parallel, &hosts, |h, steps| {
            let prep = HostPrep::new(ctx);
            prep.ensure_state_dir(steps)?;
            prep.create_network(NETWORK, steps)?;
            if proxied.contains(&h) {
                ProxySteps::new(ctx).boot_container(steps)?;
            }
            Ok(())
        })
    }

    fn boot_strategy(&self, hosts: usize) -> Strategy {
        let boot = &self.config().boot;
        match boot.limit {
            Some(limit) => Strategy::Rolling {
                limit: limit.group_size(hosts),
                wait: boot.wait,
            },
            None if hosts > 1 => Strategy::PrimaryFirst,
            None => Strategy::Parallel,
        }
    }

    fn boot(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let config = self.config();
        let hosts = self.app_hosts.clone();
        let strategy = self.boot_strategy(hosts.len());
        let roles_on = Self::role_map(&config.roles.iter().collect::<Vec<_>>());
        self.phase("boot", strategy, &hosts, |h, steps| {
            let proxy = ProxySteps::new(ctx);
            for (role, rh) in roles_on.get(h).map(Vec::as_slice).unwrap_or_default() {
                let app = AppSteps::new(ctx, role, rh);
                let proxied = proxy.routes(role.proxy.as_ref());
                app.write_env_file(steps)?;
                proxy.write_certificates(&app, steps)?;
                app.rename_existing(steps)?;
                app.run_container(steps)?;
                if proxied {
                    proxy.route(&app, steps)?;
                } else {
                    app.wait_until_ready(steps)?;
                }
                app.stop_other_containers(proxied, steps)?;
            }
            Ok(())
        })
    }

    fn tag(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let hosts = self.app_hosts.clone();
        self.phase("tag", Strategy::Parallel, &hosts, |_, steps| {
            ImageSteps::new(ctx).tag_latest(steps)
        })
    }

    fn prune(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let hosts = self.app_hosts.clone();
        self.phase("prune", Strategy::Parallel, &hosts, |_, steps| {
            let p = PruneSteps::new(ctx);
            p.prune_containers(steps)?;
            p.prune_images(steps)
        })
    }

    fn rollback_check(&mut self) -> Result<(), Error> {
        let ctx = self.ctx;
        let config = self.config();
        let hosts = self.app_hosts.clone();
        let roles_on = Self::role_map(&config.roles.iter().collect::<Vec<_>>());
        self.phase("check", Strategy::Parallel, &hosts, |h, steps| {
            for (r, rh) in roles_on.get(h).map(Vec::as_slice).unwrap_or_default() {
                AppSteps::new(ctx, r, rh).require_container(steps)?;
            }
            Ok(())
        })
    }

    fn app(&mut self, action: AppAction) -> Result<(), Error> {
        let ctx = self.ctx;
        let config = self.config();
        let hosts = self.app_hosts.clone();
        let roles_on = Self::role_map(&config.roles.iter().collect::<Vec<_>>());
        self.phase("app", Strategy::Parallel, &hosts, |h, steps| {
            let proxy = ProxySteps::new(ctx);
            for (r, rh) in roles_on.get(h).map(Vec::as_slice).unwrap_or_default() {
                let app = AppSteps::new(ctx, r, rh);
                let proxied = proxy.routes(r.proxy.as_ref());
                match action {
                    AppAction::Start => {
                        app.start_container(steps)?;
                        if proxied {
                            proxy.route(&app, steps)?;
                        }
                    }
                    AppAction::Stop | AppAction::Remove => {
                        proxy.unroute(&app, steps)?;
                        app.stop_containers(proxied, steps)?;
                        if action == AppAction::Remove {
                            app.remove_containers(steps)?;
                        }
                    }
                }
            }
            if action == AppAction::Remove {
                let images = ImageSteps::new(ctx);
                images.remove_images(steps)?;
                images.remove_app_directories(steps)?;
            }
            Ok(())
        })
    }

    fn proxy(&mut self, action: ProxyAction) -> Result<(), Error> {
        let ctx = self.ctx;
        let hosts = self.proxy_hosts();
        if hosts.is_empty() {
            return Err(Error::Operation {
                operation: Operation::Proxy(action).header(),
                message: "no role is proxied (or x-writ.proxy is `none`)".into(),
            });
        }
        let strategy = match action {
            ProxyAction::Boot | ProxyAction::Remove => Strategy::Parallel,
            // A reboot drops traffic on the host while the proxy restarts: one host at a time.
            ProxyAction::Reboot => Strategy::Rolling { limit: 1, wait: 0 },
        };
        self.phase("proxy", strategy, &hosts, |_, steps| {
            let p = ProxySteps::new(ctx);
            match action {
                ProxyAction::Boot => p.boot(steps),
                ProxyAction::Reboot => p.reboot(steps),
                ProxyAction::Remove => p.remove(steps),
            }
        })
    }

    fn accessories(
        &mut self,
        action: AccessoryAction,
        target: &AccessoryTarget,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        let config = self.config();
        let selected: Vec<_> = match target {
            AccessoryTarget::All => config.accessories.iter().collect(),
            AccessoryTarget::Named(n) => vec![config.accessory(n).ok_or_else(|| {
                let known: Vec<&str> = config.accessories.iter().map(|a| a.name.as_str()).collect();
                Error::Operation {
                    operation: Operation::Accessory(action, target.clone()).header(),
                    message: format!(
                        "no accessory `{n}`; the config has {}",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                }
            })?],
        };
        let mut hosts: Vec<&HostName> = selected.iter().flat_map(|a| &a.hosts).collect();
        hosts.sort();
        hosts.dedup();
        self.phase("accessories", Strategy::Parallel, &hosts, |h, steps| {
            for acc in &selected {
                if !acc.hosts.contains(h) {
                    continue;
                }
                let a = AccessorySteps::new(ctx, acc, h);
                match action {
                    AccessoryAction::Boot => {
                        a.prepare(steps)?;
                        a.boot(steps)?;
                    }
                    AccessoryAction::Reboot => {
                        a.prepare(steps)?;
                        a.reboot(steps)?;
                    }
                    AccessoryAction::Remove => a.remove(steps)?,
                }
            }
            Ok(())
        })
    }

    fn selected_roles(&self, roles: &[String], header: &str) -> Result<Vec<&'c Role>, Error> {
        let config = self.config();
        if roles.is_empty() {
            return Ok(config.roles.iter().collect());
        }
        roles
            .iter()
            .map(|name| {
                config.role(name).ok_or_else(|| {
                    let known: Vec<&str> = config.roles.iter().map(|r| r.name.as_str()).collect();
                    Error::Operation {
                        operation: header.to_owned(),
                        message: format!("no role `{name}`; the config has {}", known.join(", ")),
                    }
                })
            })
            .collect()
    }

    fn server_exec(&mut self, roles: &[String], commands: &[String]) -> Result<(), Error> {
        check_commands(commands)?;
        let ctx = self.ctx;
        let header = with_roles("server exec", roles);
        let hosts: Vec<&HostName> = if roles.is_empty() {
            self.config().all_hosts()
        } else {
            hosts_of(self.selected_roles(roles, &header)?.into_iter())
        };
        self.phase("exec", Strategy::Parallel, &hosts, |_, steps| {
            let e = ExecSteps::new(ctx);
            for c in commands {
                e.server_exec(c, steps)?;
            }
            Ok(())
        })
    }

    fn app_exec(&mut self, roles: &[String], commands: &[String]) -> Result<(), Error> {
        check_commands(commands)?;
        let ctx = self.ctx;
        let selected = self.selected_roles(roles, &with_roles("app exec", roles))?;
        let hosts = hosts_of(selected.iter().copied());
        let roles_on = Self::role_map(&selected);
        self.phase("exec", Strategy::Parallel, &hosts, |h, steps| {
            for (r, rh) in roles_on.get(h).map(Vec::as_slice).unwrap_or_default() {
                let app = AppSteps::new(ctx, r, rh);
                for c in commands {
                    app.exec_in_new_container(c, steps)?;
                }
            }
            Ok(())
        })
    }
}

/// The hosts of `roles`, de-duplicated, in role then file order.
fn hosts_of<'r>(roles: impl Iterator<Item = &'r Role>) -> Vec<&'r HostName> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in roles {
        for h in &r.hosts {
            if seen.insert(&h.host) {
                out.push(&h.host);
            }
        }
    }
    out
}

fn check_commands(commands: &[String]) -> Result<(), Error> {
    if commands.is_empty() {
        return Err(Error::ExecCommand {
            index: 0,
            message: "no command given (`-- 'CMD' ['CMD'…]`)".into(),
        });
    }
    for (i, c) in commands.iter().enumerate() {
        check_exec_command(i + 1, c)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
