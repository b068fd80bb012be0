//! `writ plan OPERATION -d DESTINATION`: render the config into `plans/<destination>.plan`,
//! chained onto the plan it replaces, and print the review (summary + diff); with `--check`,
//! only compare the committed plan with what the inputs render to.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use jiff::SignedDuration;
use writ::chain::{self, Base, Provenance};
use writ::config::Config;
use writ::operation::{
    AccessoryAction, AccessoryTarget, AppAction, Operation, PlanInputs, ProxyAction,
};
use writ::plan_diff::{LineDiff, Summary};
use writ::render;
use writ::template::Templates;
use writ_exec::plan::{Plan, encode, plan_id};

/// Exit code of `--check` when the committed plan is missing or stale (docs/exit-codes.md).
pub const EXIT_STALE: u8 = 3;
/// Exit code for a usage error (as clap's).
const EXIT_USAGE: u8 = 2;

/// Arguments of `writ plan`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  writ plan deploy -d production
  writ plan deploy -d production --version 9b0e4d2 --image-digest sha256:…
  writ plan rollback 3f2a1c9 -d production
  writ plan server exec --roles web -d production -- 'df -h' 'uptime'
  writ plan deploy -d production --check          # in CI: is the committed plan current?
  writ plan deploy -d production --previous-ref origin/main --format markdown > review.md")]
pub struct Args {
    #[command(subcommand)]
    operation: OperationArg,
    #[command(flatten)]
    options: Options,
}

/// Everything but the operation; global, so it may come before or after the operation.
#[derive(clap::Args)]
struct Options {
    /// The destination (`production`, `staging`…): reads config/deploy.<DESTINATION>.yml and
    /// writes plans/<DESTINATION>.plan.
    #[arg(short, long, global = true, value_name = "DESTINATION")]
    destination: Option<String>,
    /// The app's root directory (holding config/deploy.yml), or the deploy.yml file.
    #[arg(short, long, global = true, value_name = "DIR", default_value = ".")]
    config: PathBuf,
    /// The version to deploy (the image tag). Default: the first 7 hex digits of git HEAD.
    #[arg(long, global = true, value_name = "VERSION")]
    version: Option<String>,
    /// Pin the image by digest (`sha256:<64 hex>`) in every pull and run.
    #[arg(long, global = true, value_name = "sha256:HEX")]
    image_digest: Option<String>,
    /// Render with the templates in DIR instead of the built-in ones.
    #[arg(long, global = true, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Chain onto and diff against this plan file instead of plans/<DESTINATION>.plan.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "previous_ref"
    )]
    previous: Option<PathBuf>,
    /// Chain onto and diff against plans/<DESTINATION>.plan as of this git revision
    /// (e.g. origin/main in a pull request).
    #[arg(long, global = true, value_name = "GITREF")]
    previous_ref: Option<String>,
    /// Write nothing; exit 3 naming the difference when the committed plan is stale with
    /// respect to config, templates, operation and version, 0 when it is current.
    #[arg(long, global = true)]
    check: bool,
    /// How to print the review.
    #[arg(long, global = true, value_enum, default_value_t = Format::Terminal)]
    format: Format,
    /// Write the plan here instead of plans/<DESTINATION>.plan (the diff is still against the
    /// plan it replaces).
    #[arg(long, global = true, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// How the review is printed.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Coloured on a terminal (NO_COLOR and pipes turn colour off).
    Terminal,
    /// Markdown for a pull-request comment.
    Markdown,
}

#[derive(Subcommand)]
enum OperationArg {
    /// Prepare hosts (Docker check, network, proxy, accessories), then deploy.
    Setup,
    /// Pull, boot in rolling groups, tag latest, prune.
    Deploy,
    /// Deploy without booting the proxy or pruning.
    Redeploy,
    /// Boot an earlier version whose containers still exist.
    Rollback {
        /// The version to roll back to.
        version: String,
    },
    /// Start, stop or remove the app, or run a one-off command in a new app container.
    App {
        #[command(subcommand)]
        action: AppArg,
    },
    /// Boot, reboot or remove the proxy.
    Proxy {
        #[command(subcommand)]
        action: ProxyArg,
    },
    /// Boot, reboot or remove an accessory (or `all`).
    Accessory {
        #[command(subcommand)]
        action: AccessoryArg,
    },
    /// Remove old containers and dangling images.
    Prune,
    /// Run shell lines on the servers, as reviewed one-offs.
    Server {
        #[command(subcommand)]
        action: ServerArg,
    },
}

#[derive(Subcommand)]
enum AppArg {
    /// Start the deployed version's containers.
    Start,
    /// Stop the app's containers.
    Stop,
    /// Remove the app's containers, images and directories.
    Remove,
    /// Run commands in new containers of the deployed image: `app exec -- 'CMD' …`.
    Exec(ExecArgs),
}

#[derive(Subcommand)]
enum ServerArg {
    /// Run shell lines on the hosts: `server exec -- 'CMD' …` (each shown and run verbatim).
    Exec(ExecArgs),
}

#[derive(clap::Args)]
struct ExecArgs {
    /// Only the hosts of these roles (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "ROLE")]
    roles: Vec<String>,
    /// The command lines, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    commands: Vec<String>,
}

#[derive(Subcommand)]
enum ProxyArg {
    /// Boot the proxy container.
    Boot,
    /// Recreate the proxy container, host by host.
    Reboot,
    /// Remove the proxy.
    Remove,
}

#[derive(Subcommand)]
enum AccessoryArg {
    /// Boot the accessory unless it runs.
    Boot {
        /// Accessory name, or `all`.
        name: String,
    },
    /// Pull, stop, remove and boot the accessory again.
    Reboot {
        /// Accessory name, or `all`.
        name: String,
    },
    /// Remove the accessory with its image and directory (data included).
    Remove {
        /// Accessory name, or `all`.
        name: String,
    },
}

fn operation(arg: OperationArg) -> Operation {
    let target = |name: String| {
        if name == "all" {
            AccessoryTarget::All
        } else {
            AccessoryTarget::Named(name)
        }
    };
    match arg {
        OperationArg::Setup => Operation::Setup,
        OperationArg::Deploy => Operation::Deploy,
        OperationArg::Redeploy => Operation::Redeploy,
        OperationArg::Rollback { version } => Operation::Rollback { version },
        OperationArg::App { action } => match action {
            AppArg::Start => Operation::App(AppAction::Start),
            AppArg::Stop => Operation::App(AppAction::Stop),
            AppArg::Remove => Operation::App(AppAction::Remove),
            AppArg::Exec(e) => Operation::AppExec {
                roles: e.roles,
                commands: e.commands,
            },
        },
        OperationArg::Proxy { action } => Operation::Proxy(match action {
            ProxyArg::Boot => ProxyAction::Boot,
            ProxyArg::Reboot => ProxyAction::Reboot,
            ProxyArg::Remove => ProxyAction::Remove,
        }),
        OperationArg::Accessory { action } => match action {
            AccessoryArg::Boot { name } => {
                Operation::Accessory(AccessoryAction::Boot, target(name))
            }
            AccessoryArg::Reboot { name } => {
                Operation::Accessory(AccessoryAction::Reboot, target(name))
            }
            AccessoryArg::Remove { name } => {
                Operation::Accessory(AccessoryAction::Remove, target(name))
            }
        },
        OperationArg::Prune => Operation::Prune,
        OperationArg::Server {
            action: ServerArg::Exec(e),
        } => Operation::ServerExec {
            roles: e.roles,
            commands: e.commands,
        },
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let op = operation(args.operation);
    let args = args.options;
    let Some(destination) = args.destination.clone() else {
        eprintln!(
            "error: the argument '--destination <DESTINATION>' is required\n\nhint: writ plan OPERATION -d DESTINATION (plans and signatures are per destination)"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let config = writ::config::load(&args.config, Some(&destination))?;
    for i in &config.ignored {
        eprintln!(
            "warning: {}: `{}` is ignored: {}",
            render::sanitize(&i.location),
            render::sanitize(&i.path),
            render::sanitize(&i.reason)
        );
    }
    let templates = match &args.templates {
        Some(dir) => Templates::from_dir(dir)?,
        None => Templates::builtin()?,
    };
    let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let provenance = Provenance::of(&config.root, source_date_epoch.as_deref())?;
    let lifetime = SignedDuration::try_from(config.plan_lifetime())
        .context("x-writ.plan_lifetime is out of range")?;
    let relative = chain::plan_file(&destination);
    let default_path = config.root.join(&relative);
    let output = args.out.clone().unwrap_or_else(|| default_path.clone());

    if args.check {
        return check(
            &args,
            &config,
            &op,
            &templates,
            &provenance,
            lifetime,
            &output,
        );
    }

    let version = match (&args.version, &op) {
        (Some(v), _) => v.clone(),
        (None, Operation::Rollback { version }) => version.clone(),
        (None, _) => provenance.default_version().ok_or(writ::Error::NoVersion)?,
    };
    let rendered = render_plan(
        &config,
        &op,
        &templates,
        &provenance,
        lifetime,
        &args,
        version,
    )?;
    let base = match (&args.previous, &args.previous_ref) {
        (Some(file), _) => Some(Base::read(file)?.ok_or_else(|| writ::Error::Io {
            path: file.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?),
        (None, Some(gitref)) => Base::from_git(gitref, &config.root, &relative)?,
        (None, None) => Base::read(&default_path)?,
    };
    let linked = chain::link(&rendered, base.as_ref(), &provenance, lifetime)?;
    chain::write_atomic(&output, &linked.bytes)?;

    let id = plan_id(&linked.bytes);
    if linked.up_to_date {
        eprintln!(
            "plan is up to date: {} (serial {}, {id}); inputs unchanged since {}",
            shown(&output),
            linked.plan.serial,
            render::sanitize(base.as_ref().map_or("-", |b| b.origin.as_str()))
        );
    } else {
        eprintln!(
            "wrote {} (serial {}, {id})",
            shown(&output),
            linked.plan.serial
        );
    }
    warn_if_expired(&linked.plan);
    if !linked.up_to_date {
        let old_text = base
            .as_ref()
            .map(|b| String::from_utf8_lossy(&b.bytes).into_owned())
            .unwrap_or_default();
        let new_text = String::from_utf8_lossy(&linked.bytes);
        let summary = Summary::between(base.as_ref().map(|b| &b.plan), &linked.plan);
        let diff = LineDiff::between(&old_text, &new_text);
        print_review(args.format, &summary, &diff, &relative)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Build the plan body with provisional chain fields (`chain::link` sets the real ones).
fn render_plan(
    config: &Config,
    op: &Operation,
    templates: &Templates,
    provenance: &Provenance,
    lifetime: SignedDuration,
    args: &Options,
    version: String,
) -> anyhow::Result<Plan> {
    let expires = provenance
        .created
        .checked_add(lifetime)
        .context("created + x-writ.plan_lifetime is out of range")?;
    let inputs = PlanInputs {
        version,
        image_digest: args.image_digest.clone(),
        serial: 1,
        previous: writ_exec::plan::Previous::Genesis,
        created: provenance.created,
        expires,
        templates,
        commit: provenance.commit.clone(),
    };
    Ok(writ::operation::build(config, op, &inputs)?)
}

/// `--check`: compare the plan at `output` with what the inputs render to, ignoring the chain
/// and provenance fields.
fn check(
    args: &Options,
    config: &Config,
    op: &Operation,
    templates: &Templates,
    provenance: &Provenance,
    lifetime: SignedDuration,
    output: &Path,
) -> anyhow::Result<ExitCode> {
    let Some(committed) = Base::read(output)? else {
        eprintln!(
            "writ plan --check: {} does not exist; run `writ plan` and commit it",
            shown(output)
        );
        return Ok(ExitCode::from(EXIT_STALE));
    };
    // The default version names the commit the plan was made from, which can never be the
    // commit that contains the plan; so without --version the committed version is kept.
    let version = match &args.version {
        Some(v) => v.clone(),
        None => committed.plan.version.clone(),
    };
    let rendered = render_plan(config, op, templates, provenance, lifetime, args, version)?;
    if chain::body(&committed.plan) == chain::body(&rendered) {
        eprintln!(
            "plan is current: {} (serial {}, {})",
            shown(output),
            committed.plan.serial,
            plan_id(&committed.bytes)
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Show the difference as a review of "committed → what it should be", with the committed
    // chain fields so only real differences appear.
    let candidate = Plan {
        serial: committed.plan.serial,
        previous: committed.plan.previous,
        created: committed.plan.created,
        expires: committed.plan.expires,
        source: writ_exec::plan::Source {
            commit: committed.plan.source.commit.clone(),
            ..rendered.source.clone()
        },
        ..rendered
    };
    let bytes = encode(&candidate)?;
    let summary = Summary::between(Some(&committed.plan), &candidate);
    let mut named: Vec<String> = summary
        .header
        .iter()
        .map(|f| {
            format!(
                "{} {} → {}",
                f.field,
                render::sanitize(&f.old),
                render::sanitize(&f.new)
            )
        })
        .collect();
    let (add, del, chg) = summary.phases.iter().fold((0, 0, 0), |(a, d, c), p| {
        (a + p.added, d + p.removed, c + p.changed)
    });
    if add + del + chg > 0 {
        named.push(format!(
            "commands: {add} to add, {chg} to change, {del} to remove"
        ));
    }
    for p in &summary.phases {
        if let Some(old) = &p.old_strategy {
            named.push(format!("phase {} strategy {old} → {}", p.name, p.strategy));
        }
        if p.reordered {
            named.push(format!("phase {} host order", p.name));
        }
    }
    if !summary.hosts_changed.is_empty()
        || !summary.hosts_added.is_empty()
        || !summary.hosts_removed.is_empty()
    {
        named.push("hosts or pinned host keys".into());
    }
    if named.is_empty() {
        named.push("the plan text (see the diff)".into());
    }
    eprintln!(
        "writ plan --check: {} is stale: {}",
        shown(output),
        named.join("; ")
    );
    if args.version.is_none() {
        eprintln!(
            "note: version {} taken from the committed plan; pass --version to check it too",
            render::sanitize(&committed.plan.version)
        );
    }
    let diff = LineDiff::between(
        &String::from_utf8_lossy(&committed.bytes),
        &String::from_utf8_lossy(&bytes),
    );
    let label = shown(output);
    print_review(args.format, &summary, &diff, &label)?;
    Ok(ExitCode::from(EXIT_STALE))
}

fn print_review(
    format: Format,
    summary: &Summary,
    diff: &LineDiff,
    label: &str,
) -> anyhow::Result<()> {
    let text = match format {
        Format::Terminal => render::terminal(summary, diff, label),
        Format::Markdown => render::markdown(summary, diff, label),
    };
    let mut out = anstream::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// A path as printed: control bytes and non-ASCII escaped like everything else shown.
fn shown(path: &Path) -> String {
    render::sanitize(&path.to_string_lossy()).into_owned()
}

/// The wall clock is used for this warning only, never for the plan.
fn warn_if_expired(plan: &Plan) {
    if plan.expires <= jiff::Timestamp::now() {
        eprintln!(
            "warning: this plan expired at {} (created {} from the commit time or SOURCE_DATE_EPOCH); the executor will refuse it: commit again or set SOURCE_DATE_EPOCH",
            plan.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            plan.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        );
    }
}
