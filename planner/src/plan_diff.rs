//! The review model of a plan change: what differs between the plan a new plan replaces and the
//! new one — header fields, hosts and their pinned keys, secret names, and per-phase command
//! changes folded over hosts — plus the line diff of the two plan texts.
//!
//! Folding works on per-host step lists with the host's own name and address replaced by
//! [`HOST_PLACEHOLDER`] and [`ADDRESS_PLACEHOLDER`], so 40 hosts that get the same change show as
//! one entry "on 40 hosts". This module is a model only; [`crate::render`] turns it into text.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use similar::{Algorithm, ChangeTag, DiffOp, TextDiff, capture_diff_slices_deadline};
use writ_exec::plan::{Host, Plan, Previous, Stdin, Step};

/// What a host's own name is replaced with when per-host step lists are compared.
pub const HOST_PLACEHOLDER: &str = "<host>";
/// What a host's own address is replaced with when per-host step lists are compared.
pub const ADDRESS_PLACEHOLDER: &str = "<address>";
/// How long the line diff of two plan texts may search for a minimal diff. On expiry the diff
/// stays correct, it is only no longer minimal.
pub const LINE_DIFF_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest word-level edit (each side, in bytes) folded into the headline list; longer edits
/// are shown as whole-command changes only.
const MAX_EDIT: usize = 120;

/// One header field that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    /// The field's name as in the plan file (`version`, `source config`, …).
    pub field: &'static str,
    /// The old value.
    pub old: String,
    /// The new value.
    pub new: String,
}

/// A change to one command of one host's step list. Commands are shown as the step's command
/// followed by its stdin source (` < secret NAME`), host name and address normalised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CommandChange {
    /// A command only the new plan runs.
    Added(String),
    /// A command only the old plan runs.
    Removed(String),
    /// A command that takes the place of another at the same position.
    Changed {
        /// The old command.
        old: String,
        /// The new command.
        new: String,
    },
}

/// The same command changes on several hosts of one phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldedChange {
    /// The phase.
    pub phase: String,
    /// The changes, host name and address normalised, in step order.
    pub changes: Vec<CommandChange>,
    /// The hosts that have exactly these changes (among others, listed in other entries).
    pub hosts: Vec<String>,
}

/// A word-level edit inside changed commands (`3f2a1c9` → `9b0e4d2`), folded over all phases
/// and hosts. An empty side means words were only added or only removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldedEdit {
    /// The old words.
    pub old: String,
    /// The new words.
    pub new: String,
    /// How many changed commands contain this edit.
    pub commands: usize,
    /// How many distinct hosts they run on.
    pub hosts: usize,
}

/// Whether a phase is new, gone or in both plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseStatus {
    /// Only in the new plan.
    Added,
    /// Only in the old plan.
    Removed,
    /// In both.
    Kept,
}

/// Command counts of one phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseCounts {
    /// The phase name.
    pub name: String,
    /// New, gone or kept.
    pub status: PhaseStatus,
    /// The scheduling strategy as written in the new plan (old plan for removed phases).
    pub strategy: String,
    /// Commands added.
    pub added: usize,
    /// Commands removed.
    pub removed: usize,
    /// Commands changed in place.
    pub changed: usize,
    /// Hosts with at least one change in this phase.
    pub hosts_changed: usize,
    /// Hosts in the phase in either plan.
    pub hosts: usize,
    /// The old strategy, when a kept phase's strategy changed (`boot.limit`, `boot.wait`).
    pub old_strategy: Option<String>,
    /// Whether a kept phase runs its hosts in another order (rolling groups change).
    pub reordered: bool,
}

impl PhaseCounts {
    /// Whether anything in the phase differs.
    #[must_use]
    pub fn is_changed(&self) -> bool {
        self.status != PhaseStatus::Kept
            || self.added + self.removed + self.changed > 0
            || self.old_strategy.is_some()
            || self.reordered
    }
}

/// A host present in both plans whose connection details or pinned keys differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostChange {
    /// The host.
    pub host: String,
    /// What differs (`user`, `address`, `port`, `via`, `keys`).
    pub fields: Vec<FieldChange>,
}

/// Everything a reviewer needs to know about a plan change, before the line diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The new plan's service.
    pub service: String,
    /// The new plan's destination.
    pub destination: String,
    /// The new plan's operation.
    pub operation: String,
    /// The new plan's version.
    pub version: String,
    /// The new plan's serial.
    pub serial: u64,
    /// The plan it replaces.
    pub previous: Previous,
    /// Whether there was an old plan to compare with (false: everything is new).
    pub has_base: bool,
    /// Header fields that differ.
    pub header: Vec<FieldChange>,
    /// Hosts only in the new plan.
    pub hosts_added: Vec<String>,
    /// Hosts only in the old plan.
    pub hosts_removed: Vec<String>,
    /// Hosts whose details or keys differ.
    pub hosts_changed: Vec<HostChange>,
    /// Secret names only the new plan reads.
    pub secrets_added: Vec<String>,
    /// Secret names only the old plan read.
    pub secrets_removed: Vec<String>,
    /// Word-level edits, most widespread first.
    pub edits: Vec<FoldedEdit>,
    /// Command changes folded over hosts, in phase order.
    pub changes: Vec<FoldedChange>,
    /// Per-phase counts, in the new plan's phase order, removed phases last.
    pub phases: Vec<PhaseCounts>,
    /// Hosts in the new plan.
    pub host_count: usize,
    /// Steps in the new plan.
    pub step_count: usize,
}

impl Summary {
    /// Compare `new` with the plan it replaces (`None` for the first plan of a chain).
    #[must_use]
    pub fn between(old: Option<&Plan>, new: &Plan) -> Self {
        let empty = empty_like(new);
        let base = old.unwrap_or(&empty);
        let (hosts_added, hosts_removed, hosts_changed) = compare_hosts(&base.hosts, &new.hosts);
        let old_secrets = base.secrets();
        let new_secrets = new.secrets();
        let mut phases = Vec::new();
        let mut changes = Vec::new();
        let mut edits = EditFold::default();
        let old_phases = phase_keys(base);
        let new_phases = phase_keys(new);
        for (key, p) in &new_phases {
            let old_phase = old_phases.get(key).map(|(_, op)| *op);
            let status = if old_phase.is_some() {
                PhaseStatus::Kept
            } else {
                PhaseStatus::Added
            };
            phases.push(compare_phase(
                base,
                old_phase,
                new,
                Some(p.1),
                status,
                &mut changes,
                &mut edits,
            ));
        }
        for (key, p) in &old_phases {
            if !new_phases.contains_key(key) {
                phases.push(compare_phase(
                    base,
                    Some(p.1),
                    new,
                    None,
                    PhaseStatus::Removed,
                    &mut changes,
                    &mut edits,
                ));
            }
        }
        // `phase_keys` is keyed by (name, occurrence); restore the plans' own order.
        phases.sort_by_key(|c| phase_order(&new_phases, &old_phases, c));
        Summary {
            service: new.service.clone(),
            destination: new.destination.clone(),
            operation: new.operation.clone(),
            version: new.version.clone(),
            serial: new.serial,
            previous: new.previous,
            has_base: old.is_some(),
            header: old.map(|o| header_changes(o, new)).unwrap_or_default(),
            hosts_added,
            hosts_removed,
            hosts_changed,
            secrets_added: new_secrets
                .difference(&old_secrets)
                .map(|s| (*s).to_owned())
                .collect(),
            secrets_removed: old_secrets
                .difference(&new_secrets)
                .map(|s| (*s).to_owned())
                .collect(),
            edits: edits.finish(),
            changes,
            phases,
            host_count: new.hosts.len(),
            step_count: new.step_count(),
        }
    }

    /// Whether the two plans run the same commands on the same hosts with the same secrets
    /// (header fields may still differ).
    #[must_use]
    pub fn commands_unchanged(&self) -> bool {
        self.hosts_added.is_empty()
            && self.hosts_removed.is_empty()
            && self.hosts_changed.is_empty()
            && self.secrets_added.is_empty()
            && self.secrets_removed.is_empty()
            && self.phases.iter().all(|p| !p.is_changed())
    }
}

/// A plan with the same header as `new` and nothing to run: the base for the first plan.
fn empty_like(new: &Plan) -> Plan {
    Plan {
        hosts: Vec::new(),
        phases: Vec::new(),
        ..new.clone()
    }
}

type PhaseKey<'a> = (&'a str, usize);
type PhaseMap<'a> = BTreeMap<PhaseKey<'a>, (usize, &'a writ_exec::plan::Phase)>;

/// Phases keyed by (name, occurrence of that name), with their position.
fn phase_keys(plan: &Plan) -> PhaseMap<'_> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (i, p) in plan.phases.iter().enumerate() {
        let n = seen.entry(p.name.as_str()).or_default();
        out.insert((p.name.as_str(), *n), (i, p));
        *n += 1;
    }
    out
}

fn phase_order(new: &PhaseMap<'_>, old: &PhaseMap<'_>, c: &PhaseCounts) -> (usize, usize) {
    // Counts are pushed in key order, so find the position by name; removed phases go last.
    let pos = |m: &PhaseMap<'_>| {
        m.iter()
            .find(|((name, _), _)| *name == c.name)
            .map(|(_, (i, _))| *i)
    };
    match c.status {
        PhaseStatus::Removed => (1, pos(old).unwrap_or(usize::MAX)),
        _ => (0, pos(new).unwrap_or(usize::MAX)),
    }
}

fn strategy_text(s: writ_exec::plan::Strategy) -> String {
    match s {
        writ_exec::plan::Strategy::Parallel => "parallel".into(),
        writ_exec::plan::Strategy::PrimaryFirst => "primary-first".into(),
        writ_exec::plan::Strategy::Rolling { limit, wait } => {
            format!("rolling limit={limit} wait={wait}")
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one comparison, its inputs and two sinks"
)]
fn compare_phase(
    old_plan: &Plan,
    old: Option<&writ_exec::plan::Phase>,
    new_plan: &Plan,
    new: Option<&writ_exec::plan::Phase>,
    status: PhaseStatus,
    changes: &mut Vec<FoldedChange>,
    edits: &mut EditFold,
) -> PhaseCounts {
    let shown = new
        .or(old)
        .expect("a compared phase exists in at least one plan");
    let old_hosts: BTreeMap<&str, &[Step]> = old
        .map(|p| {
            p.hosts
                .iter()
                .map(|h| (h.host.as_str(), h.steps.as_slice()))
                .collect()
        })
        .unwrap_or_default();
    let new_hosts: BTreeMap<&str, &[Step]> = new
        .map(|p| {
            p.hosts
                .iter()
                .map(|h| (h.host.as_str(), h.steps.as_slice()))
                .collect()
        })
        .unwrap_or_default();
    let mut counts = PhaseCounts {
        name: shown.name.clone(),
        status,
        strategy: strategy_text(shown.strategy),
        added: 0,
        removed: 0,
        changed: 0,
        hosts_changed: 0,
        hosts: 0,
        old_strategy: match (old, new) {
            (Some(o), Some(n)) if o.strategy != n.strategy => Some(strategy_text(o.strategy)),
            _ => None,
        },
        reordered: match (old, new) {
            (Some(o), Some(n)) => common_order(o, n) != common_order(n, o),
            _ => false,
        },
    };
    // Fold: the host's normalised change list -> hosts with exactly that list.
    let mut fold: BTreeMap<Vec<CommandChange>, BTreeSet<&str>> = BTreeMap::new();
    let all_hosts: BTreeSet<&str> = old_hosts.keys().chain(new_hosts.keys()).copied().collect();
    counts.hosts = all_hosts.len();
    for host in all_hosts {
        let o = old_hosts.get(host).copied().unwrap_or_default();
        let n = new_hosts.get(host).copied().unwrap_or_default();
        if o == n && old_plan.host(host) == new_plan.host(host) {
            continue;
        }
        let o = normalised(o, old_plan.host(host));
        let n = normalised(n, new_plan.host(host));
        let list = command_changes(&o, &n);
        if list.is_empty() {
            continue;
        }
        counts.hosts_changed += 1;
        for c in &list {
            match c {
                CommandChange::Added(_) => counts.added += 1,
                CommandChange::Removed(_) => counts.removed += 1,
                CommandChange::Changed { old, new } => {
                    counts.changed += 1;
                    edits.add(old, new, host);
                }
            }
        }
        fold.entry(list).or_default().insert(host);
    }
    // Each distinct change with the hosts that have it and its first position in a step list;
    // then changes with the same host set form one entry, in step order, widest entries first.
    let mut per_change: BTreeMap<CommandChange, (usize, BTreeSet<&str>)> = BTreeMap::new();
    for (list, hosts) in fold {
        for (i, c) in list.into_iter().enumerate() {
            let e = per_change.entry(c).or_insert_with(|| (i, BTreeSet::new()));
            e.0 = e.0.min(i);
            e.1.extend(hosts.iter().copied());
        }
    }
    let mut groups: BTreeMap<Vec<&str>, Vec<(usize, CommandChange)>> = BTreeMap::new();
    for (change, (pos, hosts)) in per_change {
        groups
            .entry(hosts.into_iter().collect())
            .or_default()
            .push((pos, change));
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    for (_, list) in &mut groups {
        list.sort();
    }
    groups.sort_by(|a, b| {
        b.0.len()
            .cmp(&a.0.len())
            .then_with(|| a.1[0].0.cmp(&b.1[0].0))
            .then_with(|| a.0.cmp(&b.0))
    });
    changes.extend(groups.into_iter().map(|(hosts, list)| FoldedChange {
        phase: shown.name.clone(),
        changes: list.into_iter().map(|(_, c)| c).collect(),
        hosts: hosts.into_iter().map(str::to_owned).collect(),
    }));
    counts
}

/// The hosts of `a` that `b` also has, in `a`'s order.
fn common_order<'p>(a: &'p writ_exec::plan::Phase, b: &writ_exec::plan::Phase) -> Vec<&'p str> {
    let in_b: BTreeSet<&str> = b.hosts.iter().map(|h| h.host.as_str()).collect();
    a.hosts
        .iter()
        .map(|h| h.host.as_str())
        .filter(|h| in_b.contains(h))
        .collect()
}

/// A step as one comparable line: the command, then its stdin source.
fn step_line(step: &Step) -> String {
    let mut s = step.command.replace('\n', "\\n");
    match &step.stdin {
        None => {}
        Some(Stdin::Secret(name)) => {
            s.push_str(" < secret ");
            s.push_str(name);
        }
        Some(Stdin::EnvFile(pairs)) => {
            s.push_str(" < env");
            for (var, secret) in pairs {
                s.push(' ');
                s.push_str(var);
                s.push('=');
                s.push_str(secret);
            }
        }
    }
    s
}

/// Steps as lines with the host's own name and address replaced by placeholders.
fn normalised(steps: &[Step], host: Option<&Host>) -> Vec<String> {
    steps
        .iter()
        .map(|s| {
            let line = step_line(s);
            match host {
                Some(h) => {
                    let line = replace_word(&line, &h.name, HOST_PLACEHOLDER);
                    if h.address == h.name {
                        line
                    } else {
                        replace_word(&line, &h.address, ADDRESS_PLACEHOLDER)
                    }
                }
                None => line,
            }
        })
        .collect()
}

/// Replace `word` where it is not part of a longer name (`web-1` is not in `web-10`).
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(word) {
        if i < last {
            continue;
        }
        let end = i + word.len();
        let before_ok = i == 0 || !is_name_byte(bytes[i - 1]);
        // After the name, `-` may start a suffix (`--hostname web-1-0f52a6`) and a trailing
        // dot ends a sentence-like token (`web-1.`); digits and letters continue the name.
        let after_ok = end == bytes.len()
            || !is_name_byte(bytes[end])
            || bytes[end] == b'-'
            || (bytes[end] == b'.' && (end + 1 == bytes.len() || !is_name_byte(bytes[end + 1])));
        if before_ok && after_ok {
            out.push_str(&text[last..i]);
            out.push_str(with);
            last = end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The changes that turn `old` into `new`; a replaced run pairs commands position by position.
fn command_changes(old: &[String], new: &[String]) -> Vec<CommandChange> {
    let deadline = std::time::Instant::now().checked_add(Duration::from_millis(200));
    let ops = capture_diff_slices_deadline(Algorithm::Myers, old, new, deadline);
    let mut out = Vec::new();
    for op in ops {
        match op {
            DiffOp::Equal { .. } => {}
            DiffOp::Delete {
                old_index, old_len, ..
            } => out.extend(
                old[old_index..old_index + old_len]
                    .iter()
                    .map(|c| CommandChange::Removed(c.clone())),
            ),
            DiffOp::Insert {
                new_index, new_len, ..
            } => out.extend(
                new[new_index..new_index + new_len]
                    .iter()
                    .map(|c| CommandChange::Added(c.clone())),
            ),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let o = &old[old_index..old_index + old_len];
                let n = &new[new_index..new_index + new_len];
                let paired = old_len.min(new_len);
                for (a, b) in o.iter().zip(n) {
                    out.push(CommandChange::Changed {
                        old: a.clone(),
                        new: b.clone(),
                    });
                }
                out.extend(
                    o[paired..]
                        .iter()
                        .map(|c| CommandChange::Removed(c.clone())),
                );
                out.extend(n[paired..].iter().map(|c| CommandChange::Added(c.clone())));
            }
        }
    }
    out
}

#[derive(Default)]
struct EditFold {
    map: BTreeMap<(String, String), (usize, BTreeSet<String>)>,
    /// Word edits per (old, new) command pair: normalised commands repeat on every host, so
    /// each distinct pair is diffed once.
    cache: HashMap<String, HashMap<String, Vec<(String, String)>>>,
}

impl EditFold {
    fn add(&mut self, old: &str, new: &str, host: &str) {
        let edits = match self.cache.get(old).and_then(|m| m.get(new)) {
            Some(e) => e,
            None => self
                .cache
                .entry(old.to_owned())
                .or_default()
                .entry(new.to_owned())
                .or_insert_with(|| word_edits(old, new).into_iter().collect()),
        };
        for edit in edits {
            match self.map.get_mut(edit) {
                Some(e) => {
                    e.0 += 1;
                    if !e.1.contains(host) {
                        e.1.insert(host.to_owned());
                    }
                }
                None => {
                    self.map
                        .insert(edit.clone(), (1, BTreeSet::from([host.to_owned()])));
                }
            }
        }
    }

    fn finish(self) -> Vec<FoldedEdit> {
        let mut out: Vec<FoldedEdit> = self
            .map
            .into_iter()
            .map(|((old, new), (commands, hosts))| FoldedEdit {
                old,
                new,
                commands,
                hosts: hosts.len(),
            })
            .collect();
        out.sort_by(|a, b| {
            b.hosts
                .cmp(&a.hosts)
                .then(b.commands.cmp(&a.commands))
                .then_with(|| (&a.old, &a.new).cmp(&(&b.old, &b.new)))
        });
        out
    }
}

/// The distinct word-level edits between two commands. Words are runs of ASCII letters and
/// digits; every other character is a word of its own, so `hey:3f2a1c9` → `hey:9b0e4d2` is the
/// edit `3f2a1c9` → `9b0e4d2`, wherever the version appears.
fn word_edits(old: &str, new: &str) -> BTreeSet<(String, String)> {
    let o = words(old);
    let n = words(new);
    let deadline = std::time::Instant::now().checked_add(Duration::from_millis(50));
    let mut out = BTreeSet::new();
    for op in capture_diff_slices_deadline(Algorithm::Myers, &o, &n, deadline) {
        if let DiffOp::Equal { .. } = op {
            continue;
        }
        let a = o[op.old_range()].concat();
        let b = n[op.new_range()].concat();
        let (a, b) = (a.trim(), b.trim());
        if a.len() <= MAX_EDIT && b.len() <= MAX_EDIT && (a, b) != ("", "") {
            out.insert((a.to_owned(), b.to_owned()));
        }
    }
    out
}

fn words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphanumeric() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(st) = start.take() {
            out.push(&s[st..i]);
        }
        out.push(&s[i..i + c.len_utf8()]);
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

fn header_changes(old: &Plan, new: &Plan) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut field = |field: &'static str, o: String, n: String| {
        if o != n {
            out.push(FieldChange {
                field,
                old: o,
                new: n,
            });
        }
    };
    field("service", old.service.clone(), new.service.clone());
    field(
        "destination",
        old.destination.clone(),
        new.destination.clone(),
    );
    field("operation", old.operation.clone(), new.operation.clone());
    field("version", old.version.clone(), new.version.clone());
    field(
        "source config",
        old.source.config.to_string(),
        new.source.config.to_string(),
    );
    field(
        "source templates",
        old.source.templates.to_string(),
        new.source.templates.to_string(),
    );
    field(
        "source commit",
        old.source.commit.clone().unwrap_or_else(|| "none".into()),
        new.source.commit.clone().unwrap_or_else(|| "none".into()),
    );
    let lifetime = |p: &Plan| {
        let secs = p.expires.as_second() - p.created.as_second();
        format!("{}h", secs / 3600)
    };
    field("lifetime", lifetime(old), lifetime(new));
    out
}

type HostComparison = (Vec<String>, Vec<String>, Vec<HostChange>);

fn compare_hosts(old: &[Host], new: &[Host]) -> HostComparison {
    let o: BTreeMap<&str, &Host> = old.iter().map(|h| (h.name.as_str(), h)).collect();
    let n: BTreeMap<&str, &Host> = new.iter().map(|h| (h.name.as_str(), h)).collect();
    let added = n
        .keys()
        .filter(|k| !o.contains_key(*k))
        .map(|k| (*k).to_owned())
        .collect();
    let removed = o
        .keys()
        .filter(|k| !n.contains_key(*k))
        .map(|k| (*k).to_owned())
        .collect();
    let mut changed = Vec::new();
    for (name, nh) in &n {
        let Some(oh) = o.get(name) else { continue };
        let mut fields = Vec::new();
        let mut field = |f: &'static str, a: String, b: String| {
            if a != b {
                fields.push(FieldChange {
                    field: f,
                    old: a,
                    new: b,
                });
            }
        };
        field("user", oh.user.clone(), nh.user.clone());
        field("address", oh.address.clone(), nh.address.clone());
        field("port", oh.port.to_string(), nh.port.to_string());
        field(
            "via",
            oh.via.clone().unwrap_or_else(|| "-".into()),
            nh.via.clone().unwrap_or_else(|| "-".into()),
        );
        let keys = |h: &Host| {
            h.keys
                .iter()
                .map(|k| k.fingerprint().unwrap_or_else(|_| k.algorithm.clone()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        field("keys", keys(oh), keys(nh));
        if !fields.is_empty() {
            changed.push(HostChange {
                host: (*name).to_owned(),
                fields,
            });
        }
    }
    (added, removed, changed)
}

/// One line of a [`LineDiff`] hunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    /// Context, removed or added.
    pub tag: ChangeTag,
    /// The line without its newline.
    pub text: String,
}

/// A unified-diff hunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@` header.
    pub header: String,
    /// Lines with three lines of context around changes.
    pub lines: Vec<DiffLine>,
}

/// The line diff of two plan texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineDiff {
    /// Hunks in file order.
    pub hunks: Vec<Hunk>,
    /// Lines added.
    pub added: usize,
    /// Lines removed.
    pub removed: usize,
}

impl LineDiff {
    /// Diff two texts line by line (Myers, [`LINE_DIFF_TIMEOUT`]), three lines of context.
    #[must_use]
    pub fn between(old: &str, new: &str) -> Self {
        let diff = TextDiff::configure()
            .algorithm(Algorithm::Myers)
            .timeout(LINE_DIFF_TIMEOUT)
            .diff_lines(old, new);
        let mut hunks = Vec::new();
        let (mut added, mut removed) = (0, 0);
        for group in diff.grouped_ops(3) {
            let header = similar::udiff::UnifiedHunkHeader::new(&group).to_string();
            let mut lines = Vec::new();
            for op in &group {
                for ch in diff.iter_changes(op) {
                    match ch.tag() {
                        ChangeTag::Insert => added += 1,
                        ChangeTag::Delete => removed += 1,
                        ChangeTag::Equal => {}
                    }
                    lines.push(DiffLine {
                        tag: ch.tag(),
                        text: ch.value().trim_end_matches('\n').to_owned(),
                    });
                }
            }
            hunks.push(Hunk { header, lines });
        }
        LineDiff {
            hunks,
            added,
            removed,
        }
    }

    /// Whether the texts are equal.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.hunks.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use writ_exec::plan::{HostKey, HostSteps, Phase, Sha256Digest, Source, Strategy};

    pub(crate) const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    /// A deploy plan over `n` hosts `web-1..n` pulling and running `hey:VERSION`.
    pub(crate) fn fleet(n: usize, version: &str) -> Plan {
        let key = HostKey::parse(KEY).unwrap();
        let names: Vec<String> = (1..=n).map(|i| format!("web-{i}")).collect();
        let mut hosts: Vec<Host> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Host {
                name: name.clone(),
                user: "deploy".into(),
                address: format!("10.0.{}.{}", i / 250, i % 250 + 1),
                port: 22,
                via: None,
                keys: vec![key.clone()],
            })
            .collect();
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        let steps = |name: &str| {
            vec![
                Step {
                    command: "docker login r.example -u deploy --password-stdin".into(),
                    stdin: Some(Stdin::Secret("KAMAL_REGISTRY_PASSWORD".into())),
                },
                Step {
                    command: format!("docker pull r.example/hey:{version}"),
                    stdin: None,
                },
                Step {
                    command: format!(
                        "docker run -d --name hey-web-{version} --hostname {name} r.example/hey:{version}"
                    ),
                    stdin: None,
                },
            ]
        };
        Plan {
            service: "hey".into(),
            destination: "production".into(),
            operation: "deploy".into(),
            version: version.into(),
            serial: 1,
            previous: Previous::Genesis,
            created: "2026-12-03T15:04:05Z".parse().unwrap(),
            expires: "2026-12-06T15:04:05Z".parse().unwrap(),
            source: Source {
                config: Sha256Digest([1; 32]),
                templates: Sha256Digest([2; 32]),
                commit: None,
            },
            hosts,
            phases: vec![Phase {
                name: "deploy".into(),
                strategy: Strategy::Rolling { limit: 2, wait: 5 },
                hosts: names
                    .iter()
                    .map(|n| HostSteps {
                        host: n.clone(),
                        steps: steps(n),
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn identical_change_on_many_hosts_folds_into_one_entry() {
        let s = Summary::between(Some(&fleet(40, "3f2a1c9")), &fleet(40, "9b0e4d2"));
        assert_eq!(s.edits.len(), 1, "{:?}", s.edits);
        assert_eq!(
            s.edits[0],
            FoldedEdit {
                old: "3f2a1c9".into(),
                new: "9b0e4d2".into(),
                commands: 80,
                hosts: 40
            }
        );
        // The run command names each host; normalised, all 40 hosts share one entry.
        assert_eq!(s.changes.len(), 1, "{:?}", s.changes);
        assert_eq!(s.changes[0].hosts.len(), 40);
        assert_eq!(s.changes[0].changes.len(), 2);
        assert!(matches!(&s.changes[0].changes[1],
            CommandChange::Changed { new, .. } if new.contains("--hostname <host> ")));
        assert_eq!(s.phases[0].changed, 80);
        assert_eq!(s.phases[0].hosts_changed, 40);
        assert_eq!(s.header[0].field, "version");
        assert!(!s.commands_unchanged());
    }

    #[test]
    fn host_name_is_not_replaced_inside_a_longer_name() {
        assert_eq!(
            replace_word("a web-1 web-10 web-1.", "web-1", "<h>"),
            "a <h> web-10 <h>."
        );
        assert_eq!(replace_word("x=web-1,y", "web-1", "<h>"), "x=<h>,y");
        assert_eq!(replace_word("web-1x", "web-1", "<h>"), "web-1x");
        assert_eq!(
            replace_word("h=10.0.1.1-0f52 10.0.1.11", "10.0.1.1", "<h>"),
            "h=<h>-0f52 10.0.1.11"
        );
    }

    #[test]
    fn added_hosts_secrets_and_commands_are_counted() {
        let old = fleet(2, "v1");
        let mut new = fleet(3, "v1");
        new.phases[0].hosts[0].steps.push(Step {
            command: "cat > .kamal/apps/hey/env".into(),
            stdin: Some(Stdin::EnvFile(vec![("DB".into(), "DB_PASSWORD".into())])),
        });
        let s = Summary::between(Some(&old), &new);
        assert_eq!(s.hosts_added, vec!["web-3"]);
        assert_eq!(s.secrets_added, vec!["DB_PASSWORD"]);
        assert!(s.secrets_removed.is_empty());
        assert_eq!(s.phases[0].added, 4);
        assert_eq!(s.phases[0].hosts_changed, 2);
    }

    #[test]
    fn removed_phase_and_changed_host_key_are_reported() {
        let old = fleet(1, "v1");
        let mut new = old.clone();
        new.phases[0].name = "boot".into();
        new.hosts[0].port = 2222;
        let s = Summary::between(Some(&old), &new);
        let statuses: Vec<_> = s
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.status))
            .collect();
        assert_eq!(
            statuses,
            vec![
                ("boot", PhaseStatus::Added),
                ("deploy", PhaseStatus::Removed)
            ]
        );
        assert_eq!(s.hosts_changed[0].fields[0].field, "port");
    }

    #[test]
    fn strategy_and_host_order_changes_are_phase_changes() {
        let old = fleet(3, "v1");
        let mut new = old.clone();
        new.phases[0].strategy = Strategy::Rolling { limit: 1, wait: 5 };
        new.phases[0].hosts.swap(0, 2);
        let s = Summary::between(Some(&old), &new);
        assert_eq!(
            s.phases[0].old_strategy.as_deref(),
            Some("rolling limit=2 wait=5")
        );
        assert!(s.phases[0].reordered);
        assert!(!s.commands_unchanged());
        let same = Summary::between(Some(&old), &old);
        assert!(!same.phases[0].reordered && same.phases[0].old_strategy.is_none());
        assert!(same.commands_unchanged());
    }

    #[test]
    fn no_base_means_everything_is_added() {
        let s = Summary::between(None, &fleet(3, "v1"));
        assert!(!s.has_base);
        assert!(s.header.is_empty());
        assert_eq!(s.phases[0].added, 9);
        assert_eq!(s.hosts_added.len(), 3);
        assert_eq!(s.secrets_added, vec!["KAMAL_REGISTRY_PASSWORD"]);
    }

    #[test]
    fn word_edits_isolate_the_changed_words() {
        let e = word_edits(
            "run --name hey-web-3f2a1c9 'name=^hey-3f2a1c9$' hey:3f2a1c9",
            "run --name hey-web-9b0e4d2 'name=^hey-9b0e4d2$' hey:9b0e4d2",
        );
        assert_eq!(
            e.into_iter().collect::<Vec<_>>(),
            vec![("3f2a1c9".into(), "9b0e4d2".into())]
        );
        let e = word_edits("docker run a", "docker run --rm a");
        assert_eq!(
            e.into_iter().collect::<Vec<_>>(),
            vec![(String::new(), "--rm".into())]
        );
    }

    #[test]
    fn line_diff_counts_and_hunks() {
        let d = LineDiff::between("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!((d.added, d.removed, d.hunks.len()), (1, 1, 1));
        assert_eq!(d.hunks[0].header, "@@ -1,3 +1,3 @@");
        assert!(LineDiff::between("x\n", "x\n").is_empty());
    }
}
