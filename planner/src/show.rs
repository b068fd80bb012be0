//! `writ show`: a plan rendered for people — the header, the hosts with their pinned key
//! fingerprints, and a per-phase, per-host outline of the steps (first line of each command,
//! its stdin source). A reading aid only: what is signed and run is the plan file itself.

use std::fmt::Write as _;

use writ_exec::plan::{Plan, Previous, Sha256Digest, Stdin, Strategy};

/// Longest command excerpt shown per step.
const COMMAND_WIDTH: usize = 96;

/// Render `plan` (whose file hashes to `id`); `signatures` is the number of signature files
/// found beside it (not verified here: `writ-exec verify` does that).
#[must_use]
pub fn render(plan: &Plan, id: Sha256Digest, signatures: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "plan {id}");
    let field = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "  {k:<12}{v}");
    };
    field(&mut out, "service", &plan.service);
    field(&mut out, "destination", &plan.destination);
    field(&mut out, "operation", &plan.operation);
    field(&mut out, "version", &plan.version);
    let previous = match plan.previous {
        Previous::Genesis => "genesis (first plan)".to_owned(),
        Previous::Plan(d) => format!("after {d}"),
    };
    field(&mut out, "serial", &format!("{}, {previous}", plan.serial));
    field(&mut out, "created", &plan.created.to_string());
    field(&mut out, "expires", &plan.expires.to_string());
    field(
        &mut out,
        "source",
        &format!(
            "commit {}, config {}, templates {}",
            plan.source.commit.as_deref().unwrap_or("none"),
            short(plan.source.config),
            short(plan.source.templates)
        ),
    );
    let secrets: Vec<&str> = plan.secrets().into_iter().collect();
    field(
        &mut out,
        "secrets",
        &if secrets.is_empty() {
            "none".to_owned()
        } else {
            format!(
                "{} (names only; values come from the executor)",
                secrets.join(", ")
            )
        },
    );
    field(
        &mut out,
        "signatures",
        &format!("{signatures} file(s) in PLAN.sigs/ (check with `writ-exec verify`)"),
    );
    let _ = writeln!(out, "\nhosts ({}):", plan.hosts.len());
    for h in &plan.hosts {
        let addr = if h.address.contains(':') {
            format!("[{}]", h.address)
        } else {
            h.address.clone()
        };
        let via = h
            .via
            .as_deref()
            .map(|v| format!(" via {v}"))
            .unwrap_or_default();
        let keys: Vec<String> = h
            .keys
            .iter()
            .map(|k| {
                let fp = k.fingerprint().unwrap_or_else(|e| e);
                format!("{} {fp}", k.algorithm)
            })
            .collect();
        let _ = writeln!(out, "  {} {}@{addr}:{}{via}", h.name, h.user, h.port);
        for k in keys {
            let _ = writeln!(out, "      pinned {k}");
        }
    }
    let _ = writeln!(
        out,
        "\nphases ({}, {} steps):",
        plan.phases.len(),
        plan.step_count()
    );
    for (i, p) in plan.phases.iter().enumerate() {
        let strategy = match p.strategy {
            Strategy::Parallel => "all hosts in parallel".to_owned(),
            Strategy::PrimaryFirst => "first host alone, then the rest in parallel".to_owned(),
            Strategy::Rolling { limit, wait } => {
                format!("rolling, {limit} host(s) at a time, {wait}s between groups")
            }
        };
        let _ = writeln!(out, "  {}. {} ({strategy})", i + 1, p.name);
        for hs in &p.hosts {
            let _ = writeln!(out, "     on {} ({} steps)", hs.host, hs.steps.len());
            for s in &hs.steps {
                let mut lines = s.command.split('\n');
                let first = lines.next().unwrap_or_default();
                let more = lines.count();
                let mut text = excerpt(first);
                if more > 0 {
                    let _ = write!(text, " [+{more} line(s)]");
                }
                let _ = writeln!(out, "       $ {text}");
                match &s.stdin {
                    None => {}
                    Some(Stdin::Secret(name)) => {
                        let _ = writeln!(out, "         < secret {name}");
                    }
                    Some(Stdin::EnvFile(pairs)) => {
                        let vars: Vec<String> = pairs
                            .iter()
                            .map(|(v, s)| format!("{v} (secret {s})"))
                            .collect();
                        let _ = writeln!(out, "         < env file: {}", vars.join(", "));
                    }
                }
            }
        }
    }
    out
}

fn short(d: Sha256Digest) -> String {
    format!("sha256:{}…", &d.hex()[..12])
}

fn excerpt(s: &str) -> String {
    if s.len() <= COMMAND_WIDTH {
        s.to_owned()
    } else {
        // Commands are printable ASCII, so byte slicing is on a char boundary.
        format!("{}…", &s[..COMMAND_WIDTH])
    }
}
