//! The plan wire format, version 1: the data model, canonical [`encode`] and strict [`decode`].
//!
//! The normative spec is docs/plan-format.md. The one rule that matters most: [`decode`] accepts
//! exactly the byte strings that [`encode`] produces, so the bytes a reviewer reads, the bytes
//! that are signed and the plan that is executed cannot disagree. Every command is printable
//! ASCII; a command that needs a newline carries it on a continuation line (`> `), so nothing in
//! a command is invisible to a reviewer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use jiff::Timestamp;
use sha2::{Digest as _, Sha256};

use crate::Error;

/// The format version written in the first line (`writ-plan 1`).
pub const FORMAT_VERSION: u32 = 1;
/// Largest plan file accepted, in bytes.
pub const MAX_PLAN_BYTES: usize = 64 * 1024 * 1024;
/// Largest single command (all of its lines), in bytes.
pub const MAX_COMMAND_BYTES: usize = 256 * 1024;
/// Largest number of hosts in one plan.
pub const MAX_HOSTS: usize = 100_000;
/// Longest name (service, destination, host, phase, secret, version).
pub const MAX_NAME: usize = 128;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// Hash `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Lower-case hex.
    #[must_use]
    pub fn hex(&self) -> String {
        base16ct::lower::encode_string(&self.0)
    }

    /// Parse 64 lower-case hex digits (upper case is not canonical and is rejected).
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        let mut out = [0u8; 32];
        base16ct::lower::decode(s, &mut out).ok()?;
        Some(Self(out))
    }
}

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl std::fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The plan a plan replaces: nothing (`genesis`) or the sha256 of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Previous {
    /// The first plan for this service and destination.
    Genesis,
    /// sha256 of the previous plan file's bytes.
    Plan(Sha256Digest),
}

/// Where the plan came from: digests of the planner's inputs and the source commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// sha256 over the config files that were read (see docs/plan-format.md).
    pub config: Sha256Digest,
    /// sha256 over the templates that were rendered.
    pub templates: Sha256Digest,
    /// The git commit the config came from, if any (hex).
    pub commit: Option<String>,
}

/// One pinned host key, in OpenSSH public key form (`ssh-ed25519 AAAA…`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostKey {
    /// The key algorithm name, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// The base64 key blob exactly as OpenSSH writes it.
    pub base64: String,
}

impl HostKey {
    /// Parse `algorithm base64` (as in a known_hosts line without the host field); the key
    /// must decode and re-encode to the same text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (algorithm, base64) = text
            .split_once(' ')
            .ok_or_else(|| format!("host key `{text}` is not `ALGORITHM BASE64`"))?;
        let key = Self {
            algorithm: algorithm.to_owned(),
            base64: base64.to_owned(),
        };
        key.check()?;
        Ok(key)
    }

    /// The key as an ssh-key public key.
    pub fn public_key(&self) -> Result<ssh_key::PublicKey, String> {
        ssh_key::PublicKey::from_openssh(&format!("{} {}", self.algorithm, self.base64)).map_err(
            |e| {
                format!(
                    "host key `{} {}` does not parse: {e}",
                    self.algorithm,
                    short(&self.base64)
                )
            },
        )
    }

    /// The OpenSSH `SHA256:…` fingerprint.
    pub fn fingerprint(&self) -> Result<String, String> {
        Ok(self
            .public_key()?
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string())
    }

    fn check(&self) -> Result<(), String> {
        const ALGORITHMS: &[&str] = &[
            "ssh-ed25519",
            "ssh-rsa",
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp521",
        ];
        if !ALGORITHMS.contains(&self.algorithm.as_str()) {
            return Err(format!(
                "unsupported host key algorithm `{}`",
                self.algorithm
            ));
        }
        let key = self.public_key()?;
        let again = key
            .to_openssh()
            .map_err(|e| format!("host key does not re-encode: {e}"))?;
        if again != format!("{} {}", self.algorithm, self.base64) {
            return Err("host key is not in canonical OpenSSH form".into());
        }
        Ok(())
    }
}

fn short(s: &str) -> String {
    if s.len() > 24 {
        format!("{}…", &s[..24])
    } else {
        s.to_owned()
    }
}

/// A host the plan may connect to, with its pinned keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// The host's name in the plan (what `on NAME` refers to).
    pub name: String,
    /// SSH user.
    pub user: String,
    /// DNS name, IPv4 address or IPv6 address (without brackets).
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// Name of the jump host to connect through, itself a host of this plan.
    pub via: Option<String>,
    /// Pinned host keys, sorted, at least one.
    pub keys: Vec<HostKey>,
}

/// How the hosts of a phase are scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// All hosts of the phase at once (bounded by the executor's `--parallel`).
    Parallel,
    /// Groups of `limit` hosts in the listed order, `wait` seconds between groups.
    Rolling {
        /// Hosts per group, at least 1.
        limit: u32,
        /// Seconds to wait after each group but the last.
        wait: u32,
    },
    /// The first listed host alone, then all the others in parallel.
    PrimaryFirst,
}

/// Where a step's stdin comes from. Only secret *names* ever appear in a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stdin {
    /// The value of one secret, as is.
    Secret(String),
    /// An env file: one `VAR=value` line per pair, the value taken from the named secret.
    EnvFile(Vec<(String, String)>),
}

/// One command to run on one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The exact command line sent as the SSH exec request (may contain `\n`).
    pub command: String,
    /// What to stream on the channel's stdin, if anything.
    pub stdin: Option<Stdin>,
}

/// The steps of one host within one phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSteps {
    /// A host declared in [`Plan::hosts`].
    pub host: String,
    /// Steps in order, at least one.
    pub steps: Vec<Step>,
}

/// A phase: a set of per-host step lists and how to schedule them across hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    /// The phase's name (`pull`, `boot-web`, …).
    pub name: String,
    /// The cross-host schedule.
    pub strategy: Strategy,
    /// Hosts in schedule order, each at most once.
    pub hosts: Vec<HostSteps>,
}

/// A whole plan. Build one, [`encode`] it; or [`decode`] bytes into one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Kamal `service`.
    pub service: String,
    /// Destination (`production`, `staging`…); also the signature namespace suffix.
    pub destination: String,
    /// What the plan does, e.g. `deploy`, `rollback 3f2a1c9`, `accessory boot db`.
    pub operation: String,
    /// The app version deployed.
    pub version: String,
    /// Position in the chain of plans for this destination.
    pub serial: u64,
    /// The plan this one replaces.
    pub previous: Previous,
    /// When the plan was made (from the commit time, never the wall clock).
    pub created: Timestamp,
    /// After this instant the executor refuses the plan.
    pub expires: Timestamp,
    /// Digests of the inputs.
    pub source: Source,
    /// Hosts, sorted by name.
    pub hosts: Vec<Host>,
    /// Phases in execution order.
    pub phases: Vec<Phase>,
}

impl Plan {
    /// The set of secret names the plan's steps read, sorted. This is what the header lists.
    #[must_use]
    pub fn secrets(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for step in self
            .phases
            .iter()
            .flat_map(|p| &p.hosts)
            .flat_map(|h| &h.steps)
        {
            match &step.stdin {
                Some(Stdin::Secret(s)) => {
                    out.insert(s.as_str());
                }
                Some(Stdin::EnvFile(pairs)) => out.extend(pairs.iter().map(|(_, s)| s.as_str())),
                None => {}
            }
        }
        out
    }

    /// The host declared under `name`.
    #[must_use]
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts
            .binary_search_by(|h| h.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.hosts[i])
    }

    /// Total number of steps over all phases and hosts.
    #[must_use]
    pub fn step_count(&self) -> usize {
        self.phases
            .iter()
            .flat_map(|p| &p.hosts)
            .map(|h| h.steps.len())
            .sum()
    }
}

/// The plan id: sha256 of the plan file's exact bytes.
#[must_use]
pub fn plan_id(bytes: &[u8]) -> Sha256Digest {
    Sha256Digest::of(bytes)
}

// ---------------------------------------------------------------------------------------------
// Lexical rules shared by encode and decode.

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn is_secret_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && (s.as_bytes()[0].is_ascii_alphabetic() || s.as_bytes()[0] == b'_')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_version(s: &str) -> bool {
    is_name(s) || (!s.is_empty() && s.len() <= MAX_NAME && is_name(&s.replace('+', "_")))
}

fn is_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && (s.as_bytes()[0].is_ascii_lowercase() || s.as_bytes()[0] == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

fn is_address(s: &str) -> bool {
    if s.contains(':') {
        return s
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|a| a.to_string() == s);
    }
    !s.is_empty()
        && s.len() <= 253
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b))
}

fn is_operation(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.split(' ')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_graphic()))
}

fn is_commit(s: &str) -> bool {
    (7..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why a command line is not representable, if it is not.
fn command_problem(command: &str) -> Option<String> {
    if command.is_empty() {
        return Some("empty command".into());
    }
    if command.len() > MAX_COMMAND_BYTES {
        return Some(format!("command over {MAX_COMMAND_BYTES} bytes"));
    }
    if command.starts_with(' ') {
        return Some("command starts with a space".into());
    }
    if command.starts_with('\n') {
        // The first line would encode as `    $ ` with a trailing space, which decode refuses.
        return Some("command starts with an empty line".into());
    }
    for (i, line) in command.split('\n').enumerate() {
        if let Some(b) = line.bytes().find(|b| !(0x20..=0x7e).contains(b)) {
            return Some(format!(
                "command line {} holds byte 0x{b:02x}; only printable ASCII is allowed",
                i + 1
            ));
        }
        if line.ends_with(' ') {
            return Some(format!("command line {} ends with a space", i + 1));
        }
    }
    None
}

fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_time(s: &str) -> Option<Timestamp> {
    let t: Timestamp = s.parse().ok()?;
    (format_time(t) == s).then_some(t)
}

// ---------------------------------------------------------------------------------------------
// Encode

/// Encode a plan in canonical form. Fails if any field cannot be represented (the planner
/// must never build such a plan; the error says which field).
pub fn encode(plan: &Plan) -> Result<Vec<u8>, Error> {
    validate(plan).map_err(Error::Encode)?;
    let mut out = String::with_capacity(4096);
    write_plan(&mut out, plan);
    if out.len() > MAX_PLAN_BYTES {
        return Err(Error::TooLarge {
            size: out.len(),
            max: MAX_PLAN_BYTES,
        });
    }
    Ok(out.into_bytes())
}

fn write_plan(out: &mut String, plan: &Plan) {
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "writ-plan {FORMAT_VERSION}");
    let _ = writeln!(out, "service {}", plan.service);
    let _ = writeln!(out, "destination {}", plan.destination);
    let _ = writeln!(out, "operation {}", plan.operation);
    let _ = writeln!(out, "version {}", plan.version);
    let _ = writeln!(out, "serial {}", plan.serial);
    match plan.previous {
        Previous::Genesis => out.push_str("previous genesis\n"),
        Previous::Plan(d) => {
            let _ = writeln!(out, "previous {d}");
        }
    }
    let _ = writeln!(out, "created {}", format_time(plan.created));
    let _ = writeln!(out, "expires {}", format_time(plan.expires));
    let _ = writeln!(
        out,
        "source config={} templates={} commit={}",
        plan.source.config,
        plan.source.templates,
        plan.source.commit.as_deref().unwrap_or("none")
    );
    for s in plan.secrets() {
        let _ = writeln!(out, "secret {s}");
    }
    for h in &plan.hosts {
        let _ = write!(out, "host {} {}@", h.name, h.user);
        if h.address.contains(':') {
            let _ = write!(out, "[{}]", h.address);
        } else {
            out.push_str(&h.address);
        }
        let _ = write!(out, ":{}", h.port);
        if let Some(via) = &h.via {
            let _ = write!(out, " via {via}");
        }
        out.push('\n');
        for k in &h.keys {
            let _ = writeln!(out, "  key {} {}", k.algorithm, k.base64);
        }
    }
    for p in &plan.phases {
        let _ = write!(out, "phase {} ", p.name);
        match p.strategy {
            Strategy::Parallel => out.push_str("parallel\n"),
            Strategy::PrimaryFirst => out.push_str("primary-first\n"),
            Strategy::Rolling { limit, wait } => {
                let _ = writeln!(out, "rolling limit={limit} wait={wait}");
            }
        }
        for hs in &p.hosts {
            let _ = writeln!(out, "  on {}", hs.host);
            for step in &hs.steps {
                let mut lines = step.command.split('\n');
                let _ = writeln!(out, "    $ {}", lines.next().unwrap_or_default());
                for cont in lines {
                    if cont.is_empty() {
                        out.push_str("    >\n");
                    } else {
                        let _ = writeln!(out, "    > {cont}");
                    }
                }
                match &step.stdin {
                    None => {}
                    Some(Stdin::Secret(s)) => {
                        let _ = writeln!(out, "      < secret {s}");
                    }
                    Some(Stdin::EnvFile(pairs)) => {
                        out.push_str("      < env");
                        for (var, secret) in pairs {
                            let _ = write!(out, " {var}={secret}");
                        }
                        out.push('\n');
                    }
                }
            }
        }
    }
}

/// Check every rule of the format that is not purely lexical layout.
fn validate(plan: &Plan) -> Result<(), String> {
    if !is_name(&plan.service) {
        return Err(format!("service `{}` is not a valid name", plan.service));
    }
    if !is_name(&plan.destination) {
        return Err(format!(
            "destination `{}` is not a valid name",
            plan.destination
        ));
    }
    if !is_operation(&plan.operation) {
        return Err(format!(
            "operation `{}` is not printable words",
            plan.operation
        ));
    }
    if !is_version(&plan.version) {
        return Err(format!("version `{}` is not a valid version", plan.version));
    }
    if plan.serial == 0 {
        return Err("serial must be at least 1".into());
    }
    if (plan.serial == 1) != (plan.previous == Previous::Genesis) {
        return Err("serial 1 goes with `previous genesis`, and only serial 1".into());
    }
    for t in [plan.created, plan.expires] {
        if t.subsec_nanosecond() != 0 || t.as_second() < 0 {
            return Err(format!("timestamp {t} must be whole seconds after 1970"));
        }
    }
    if plan.expires <= plan.created {
        return Err("expires must be after created".into());
    }
    if let Some(c) = &plan.source.commit
        && !is_commit(c)
    {
        return Err(format!("commit `{c}` is not 7 to 64 lower-case hex digits"));
    }
    if plan.hosts.is_empty() || plan.hosts.len() > MAX_HOSTS {
        return Err(format!("a plan has 1 to {MAX_HOSTS} hosts"));
    }
    let mut names = BTreeMap::new();
    for (i, h) in plan.hosts.iter().enumerate() {
        if !is_name(&h.name) {
            return Err(format!("host name `{}` is not a valid name", h.name));
        }
        if i > 0 && plan.hosts[i - 1].name >= h.name {
            return Err(format!(
                "hosts must be sorted by name without duplicates (at `{}`)",
                h.name
            ));
        }
        if !is_user(&h.user) {
            return Err(format!(
                "host `{}`: user `{}` is not a valid user name",
                h.name, h.user
            ));
        }
        if !is_address(&h.address) {
            return Err(format!(
                "host `{}`: address `{}` is not a host name or IP address",
                h.name, h.address
            ));
        }
        if h.port == 0 {
            return Err(format!("host `{}`: port 0", h.name));
        }
        if h.keys.is_empty() {
            return Err(format!("host `{}` has no pinned host key", h.name));
        }
        for (j, k) in h.keys.iter().enumerate() {
            k.check().map_err(|e| format!("host `{}`: {e}", h.name))?;
            if j > 0 && h.keys[j - 1] >= *k {
                return Err(format!(
                    "host `{}`: keys must be sorted without duplicates",
                    h.name
                ));
            }
        }
        names.insert(h.name.as_str(), h);
    }
    for h in &plan.hosts {
        if let Some(via) = &h.via {
            match names.get(via.as_str()) {
                None => {
                    return Err(format!(
                        "host `{}` goes via undeclared host `{via}`",
                        h.name
                    ));
                }
                Some(j) if j.via.is_some() => {
                    return Err(format!(
                        "host `{}` goes via `{via}`, which itself goes via another host",
                        h.name
                    ));
                }
                Some(_) if via == &h.name => {
                    return Err(format!("host `{}` goes via itself", h.name));
                }
                Some(_) => {}
            }
        }
    }
    if plan.phases.is_empty() {
        return Err("a plan has at least one phase".into());
    }
    for p in &plan.phases {
        if !is_name(&p.name) {
            return Err(format!("phase name `{}` is not a valid name", p.name));
        }
        if let Strategy::Rolling { limit: 0, .. } = p.strategy {
            return Err(format!(
                "phase `{}`: rolling limit must be at least 1",
                p.name
            ));
        }
        if p.hosts.is_empty() {
            return Err(format!("phase `{}` has no hosts", p.name));
        }
        let mut seen = BTreeSet::new();
        for hs in &p.hosts {
            if !names.contains_key(hs.host.as_str()) {
                return Err(format!(
                    "phase `{}`: host `{}` is not declared",
                    p.name, hs.host
                ));
            }
            if !seen.insert(hs.host.as_str()) {
                return Err(format!(
                    "phase `{}`: host `{}` appears twice",
                    p.name, hs.host
                ));
            }
            if hs.steps.is_empty() {
                return Err(format!(
                    "phase `{}`: host `{}` has no steps",
                    p.name, hs.host
                ));
            }
            for s in &hs.steps {
                if let Some(problem) = command_problem(&s.command) {
                    return Err(format!("phase `{}`, host `{}`: {problem}", p.name, hs.host));
                }
                match &s.stdin {
                    Some(Stdin::Secret(name)) if !is_secret_name(name) => {
                        return Err(format!(
                            "secret name `{name}` is not [A-Za-z_][A-Za-z0-9_]*"
                        ));
                    }
                    Some(Stdin::EnvFile(pairs)) => {
                        if pairs.is_empty() {
                            return Err("env stdin with no variables".into());
                        }
                        let mut vars = BTreeSet::new();
                        for (var, secret) in pairs {
                            if !is_secret_name(var) || !is_secret_name(secret) {
                                return Err(format!("env pair `{var}={secret}` is not two names"));
                            }
                            if !vars.insert(var) {
                                return Err(format!("env variable `{var}` appears twice"));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decode

/// Decode canonical plan bytes. Rejects anything [`encode`] would not produce byte for byte,
/// naming the first offending line.
pub fn decode(bytes: &[u8]) -> Result<Plan, Error> {
    if bytes.len() > MAX_PLAN_BYTES {
        return Err(Error::TooLarge {
            size: bytes.len(),
            max: MAX_PLAN_BYTES,
        });
    }
    let lines = lex(bytes)?;
    let plan = Parser {
        lines: &lines,
        pos: 0,
    }
    .plan()?;
    let again = encode(&plan).map_err(|e| match e {
        Error::Encode(m) => Error::decode(lines.len(), m),
        other => other,
    })?;
    if again != bytes {
        let line = first_difference(bytes, &again);
        return Err(Error::decode(line, "not in canonical form"));
    }
    Ok(plan)
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    1 + a[..at].iter().filter(|&&c| c == b'\n').count()
}

/// Split into lines, checking the byte-level rules: LF only, final newline, printable ASCII,
/// no trailing space.
fn lex(bytes: &[u8]) -> Result<Vec<&str>, Error> {
    if bytes.is_empty() {
        return Err(Error::decode(1, "empty plan"));
    }
    if bytes.last() != Some(&b'\n') {
        let line = 1 + bytes.iter().filter(|&&c| c == b'\n').count();
        return Err(Error::decode(line, "missing final newline"));
    }
    let body = &bytes[..bytes.len() - 1];
    let mut out = Vec::new();
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        if let Some(b) = raw.iter().find(|b| !(0x20..=0x7e).contains(*b)) {
            let what = match b {
                b'\r' => "carriage return (CRLF line endings are not allowed)".to_owned(),
                b'\t' => "tab character".to_owned(),
                0x80.. => format!("non-ASCII byte 0x{b:02x}"),
                _ => format!("control byte 0x{b:02x}"),
            };
            return Err(Error::decode(n, what));
        }
        if raw.ends_with(b" ") {
            return Err(Error::decode(n, "trailing space"));
        }
        if raw.is_empty() {
            return Err(Error::decode(n, "empty line"));
        }
        // Checked above: every byte is printable ASCII, hence valid UTF-8.
        out.push(std::str::from_utf8(raw).map_err(|_| Error::decode(n, "invalid UTF-8"))?);
    }
    Ok(out)
}

struct Parser<'a> {
    lines: &'a [&'a str],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn line_no(&self) -> usize {
        self.pos + 1
    }

    fn err(&self, message: impl Into<String>) -> Error {
        Error::decode(self.line_no().min(self.lines.len().max(1)), message)
    }

    fn peek(&self) -> Option<&'a str> {
        self.lines.get(self.pos).copied()
    }

    /// The value of header line `key VALUE`, advancing past it.
    fn field(&mut self, key: &str) -> Result<&'a str, Error> {
        let Some(line) = self.peek() else {
            return Err(Error::decode(
                self.lines.len(),
                format!("plan ends before `{key}`"),
            ));
        };
        let Some(value) = line.strip_prefix(key).and_then(|r| r.strip_prefix(' ')) else {
            let found = line.split(' ').next().unwrap_or_default();
            return Err(self.err(format!("expected `{key}`, found `{found}`")));
        };
        self.pos += 1;
        Ok(value)
    }

    fn plan(mut self) -> Result<Plan, Error> {
        let version = self.field("writ-plan")?;
        if version != FORMAT_VERSION.to_string() {
            self.pos -= 1;
            return Err(self.err(format!(
                "plan format version `{version}` is not supported (this executor reads version {FORMAT_VERSION})"
            )));
        }
        let service = self.name_field("service", is_name)?;
        let destination = self.name_field("destination", is_name)?;
        let operation = self.name_field("operation", is_operation)?;
        let version = self.name_field("version", is_version)?;
        let serial = self.number_field("serial")?;
        let previous = match self.field("previous")? {
            "genesis" => Previous::Genesis,
            v => Previous::Plan(
                v.strip_prefix("sha256:")
                    .and_then(Sha256Digest::from_hex)
                    .ok_or_else(|| {
                        self.back_err("previous must be `genesis` or `sha256:` and 64 hex digits")
                    })?,
            ),
        };
        let created = self.time_field("created")?;
        let expires = self.time_field("expires")?;
        let source = self.source()?;
        let mut secrets = Vec::new();
        while let Some(rest) = self.peek().and_then(|l| l.strip_prefix("secret ")) {
            if !is_secret_name(rest) {
                return Err(self.err(format!(
                    "secret name `{rest}` is not [A-Za-z_][A-Za-z0-9_]*"
                )));
            }
            secrets.push((rest, self.line_no()));
            self.pos += 1;
        }
        let mut hosts = Vec::new();
        while self.peek().is_some_and(|l| l.starts_with("host ")) {
            hosts.push(self.host()?);
        }
        if hosts.is_empty() {
            return Err(self.err("expected at least one `host` line"));
        }
        let mut phases = Vec::new();
        let declared: BTreeSet<&str> = hosts.iter().map(|h: &Host| h.name.as_str()).collect();
        while self.peek().is_some() {
            phases.push(self.phase(&declared)?);
        }
        if phases.is_empty() {
            return Err(self.err("expected at least one `phase`"));
        }
        let plan = Plan {
            service: service.into(),
            destination: destination.into(),
            operation: operation.into(),
            version: version.into(),
            serial,
            previous,
            created,
            expires,
            source,
            hosts,
            phases,
        };
        let used = plan.secrets();
        let listed: BTreeSet<&str> = secrets.iter().map(|(s, _)| *s).collect();
        if let Some((s, line)) = secrets.iter().find(|(s, _)| !used.contains(s)) {
            return Err(Error::decode(
                *line,
                format!("secret `{s}` is listed but no step reads it"),
            ));
        }
        if let Some(s) = used.iter().find(|s| !listed.contains(*s)) {
            return Err(Error::decode(
                11 + secrets.len(),
                format!("secret `{s}` is read by a step but not listed in the header"),
            ));
        }
        Ok(plan)
    }

    fn back_err(&self, message: &str) -> Error {
        Error::decode(self.pos, message)
    }

    fn name_field(&mut self, key: &str, ok: fn(&str) -> bool) -> Result<&'a str, Error> {
        let v = self.field(key)?;
        if !ok(v) {
            return Err(self.back_err(&format!("`{v}` is not a valid {key}")));
        }
        Ok(v)
    }

    fn number_field(&mut self, key: &str) -> Result<u64, Error> {
        let v = self.field(key)?;
        parse_number(v)
            .ok_or_else(|| self.back_err(&format!("{key} `{v}` is not a canonical decimal number")))
    }

    fn time_field(&mut self, key: &str) -> Result<Timestamp, Error> {
        let v = self.field(key)?;
        parse_time(v).ok_or_else(|| {
            self.back_err(&format!(
                "{key} `{v}` is not a UTC time like 2026-12-03T15:04:05Z"
            ))
        })
    }

    fn source(&mut self) -> Result<Source, Error> {
        let v = self.field("source")?;
        let bad = || {
            self.back_err("source must be `config=sha256:HEX templates=sha256:HEX commit=HEX|none`")
        };
        let mut parts = v.split(' ');
        let mut digest = |key: &str| {
            parts
                .next()
                .and_then(|p| p.strip_prefix(key))
                .and_then(|p| p.strip_prefix("=sha256:"))
                .and_then(Sha256Digest::from_hex)
        };
        let config = digest("config").ok_or_else(bad)?;
        let templates = digest("templates").ok_or_else(bad)?;
        let commit = match parts.next().and_then(|p| p.strip_prefix("commit=")) {
            Some("none") => None,
            Some(c) if is_commit(c) => Some(c.to_owned()),
            _ => return Err(bad()),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Source {
            config,
            templates,
            commit,
        })
    }

    fn host(&mut self) -> Result<Host, Error> {
        let line = self.field("host")?;
        let bad = |m: &str| Error::decode(self.pos, m.to_owned());
        let mut words = line.split(' ');
        let name = words
            .next()
            .filter(|n| is_name(n))
            .ok_or_else(|| bad("host name is not a valid name"))?;
        let target = words
            .next()
            .ok_or_else(|| bad("expected `USER@ADDRESS:PORT`"))?;
        let (user, rest) = target
            .split_once('@')
            .ok_or_else(|| bad("expected `USER@ADDRESS:PORT`"))?;
        let (address, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("expected `USER@ADDRESS:PORT`"))?;
        let address = match address.strip_prefix('[') {
            Some(v6) => v6
                .strip_suffix(']')
                .filter(|a| a.contains(':'))
                .ok_or_else(|| bad("bad IPv6 address"))?,
            None if address.contains(':') => {
                return Err(bad("an IPv6 address must be in brackets"));
            }
            None => address,
        };
        if !is_user(user) {
            return Err(bad(&format!("`{user}` is not a valid user name")));
        }
        if !is_address(address) {
            return Err(bad(&format!(
                "`{address}` is not a host name or IP address"
            )));
        }
        let port = parse_number(port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(&format!("port `{port}` is not 1 to 65535")))?;
        let via = match (words.next(), words.next(), words.next()) {
            (None, ..) => None,
            (Some("via"), Some(v), None) if is_name(v) => Some(v.to_owned()),
            _ => return Err(bad("expected nothing or `via HOST` after the address")),
        };
        let mut keys = Vec::new();
        while let Some(rest) = self.peek().and_then(|l| l.strip_prefix("  key ")) {
            keys.push(HostKey::parse(rest).map_err(|m| self.err(m))?);
            self.pos += 1;
        }
        if keys.is_empty() {
            return Err(self.err(format!("host `{name}` needs at least one `  key` line")));
        }
        Ok(Host {
            name: name.into(),
            user: user.into(),
            address: address.into(),
            port,
            via,
            keys,
        })
    }

    fn phase(&mut self, declared: &BTreeSet<&str>) -> Result<Phase, Error> {
        let line = self.field("phase")?;
        let bad = |m: String| Error::decode(self.pos, m);
        let (name, strategy) = line
            .split_once(' ')
            .ok_or_else(|| bad("expected `phase NAME STRATEGY`".into()))?;
        if !is_name(name) {
            return Err(bad(format!("phase name `{name}` is not a valid name")));
        }
        let strategy = match strategy {
            "parallel" => Strategy::Parallel,
            "primary-first" => Strategy::PrimaryFirst,
            s => {
                let parsed = s.strip_prefix("rolling limit=").and_then(|r| {
                    let (limit, wait) = r.split_once(" wait=")?;
                    Some(Strategy::Rolling {
                        limit: parse_number(limit).and_then(|n| u32::try_from(n).ok())?,
                        wait: parse_number(wait).and_then(|n| u32::try_from(n).ok())?,
                    })
                });
                parsed.ok_or_else(|| {
                    bad(format!(
                        "strategy `{s}` is not `parallel`, `primary-first` or `rolling limit=N wait=SECONDS`"
                    ))
                })?
            }
        };
        let mut hosts = Vec::new();
        while let Some(host) = self.peek().and_then(|l| l.strip_prefix("  on ")) {
            if !declared.contains(host) {
                return Err(self.err(format!("host `{host}` is not declared by a `host` line")));
            }
            self.pos += 1;
            let mut steps = Vec::new();
            while self.peek().is_some_and(|l| l.starts_with("    $ ")) {
                steps.push(self.step()?);
            }
            if steps.is_empty() {
                return Err(self.err(format!(
                    "host `{host}` in phase `{name}` has no `    $` step"
                )));
            }
            hosts.push(HostSteps {
                host: host.into(),
                steps,
            });
        }
        if hosts.is_empty() {
            let found = self.peek().unwrap_or("end of file");
            return Err(self.err(format!(
                "expected `  on HOST` in phase `{name}`, found `{}`",
                short(found)
            )));
        }
        Ok(Phase {
            name: name.into(),
            strategy,
            hosts,
        })
    }

    fn step(&mut self) -> Result<Step, Error> {
        let first = self
            .peek()
            .and_then(|l| l.strip_prefix("    $ "))
            .unwrap_or_default();
        self.pos += 1;
        let mut command = first.to_owned();
        while let Some(l) = self.peek() {
            let cont = if l == "    >" {
                ""
            } else if let Some(c) = l.strip_prefix("    > ") {
                c
            } else {
                break;
            };
            command.push('\n');
            command.push_str(cont);
            if command.len() > MAX_COMMAND_BYTES {
                return Err(self.err(format!("command over {MAX_COMMAND_BYTES} bytes")));
            }
            self.pos += 1;
        }
        let stdin = match self.peek().and_then(|l| l.strip_prefix("      < ")) {
            None => None,
            Some(src) => {
                let parsed = if let Some(name) = src.strip_prefix("secret ") {
                    is_secret_name(name).then(|| Stdin::Secret(name.into()))
                } else if let Some(pairs) = src.strip_prefix("env ") {
                    pairs
                        .split(' ')
                        .map(|p| {
                            let (v, s) = p.split_once('=')?;
                            (is_secret_name(v) && is_secret_name(s))
                                .then(|| (v.to_owned(), s.to_owned()))
                        })
                        .collect::<Option<Vec<_>>>()
                        .map(Stdin::EnvFile)
                } else {
                    None
                };
                let stdin = parsed.ok_or_else(|| {
                    self.err("stdin must be `< secret NAME` or `< env VAR=SECRET …`")
                })?;
                self.pos += 1;
                Some(stdin)
            }
        };
        Ok(Step { command, stdin })
    }
}

fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    pub(crate) fn sample() -> Plan {
        let key = HostKey::parse(KEY).unwrap();
        Plan {
            service: "hey".into(),
            destination: "production".into(),
            operation: "deploy".into(),
            version: "3f2a1c9".into(),
            serial: 2,
            previous: Previous::Plan(Sha256Digest([7; 32])),
            created: "2026-12-03T15:04:05Z".parse().unwrap(),
            expires: "2026-12-06T15:04:05Z".parse().unwrap(),
            source: Source {
                config: Sha256Digest([1; 32]),
                templates: Sha256Digest([2; 32]),
                commit: Some("3f2a1c9".into()),
            },
            hosts: vec![
                Host {
                    name: "web-1".into(),
                    user: "deploy".into(),
                    address: "10.0.0.11".into(),
                    port: 22,
                    via: None,
                    keys: vec![key.clone()],
                },
                Host {
                    name: "web-2".into(),
                    user: "deploy".into(),
                    address: "::1".into(),
                    port: 2222,
                    via: Some("web-1".into()),
                    keys: vec![key],
                },
            ],
            phases: vec![
                Phase {
                    name: "pull".into(),
                    strategy: Strategy::Parallel,
                    hosts: vec![HostSteps {
                        host: "web-1".into(),
                        steps: vec![
                            Step {
                                command: "docker login r.example -u deploy --password-stdin".into(),
                                stdin: Some(Stdin::Secret("KAMAL_REGISTRY_PASSWORD".into())),
                            },
                            Step {
                                command: "printf '%s' 'a'\"\n\"'' b'".into(),
                                stdin: None,
                            },
                        ],
                    }],
                },
                Phase {
                    name: "boot".into(),
                    strategy: Strategy::Rolling { limit: 1, wait: 10 },
                    hosts: vec![
                        HostSteps {
                            host: "web-2".into(),
                            steps: vec![Step {
                                command: "cat > env".into(),
                                stdin: Some(Stdin::EnvFile(vec![(
                                    "DB_PASSWORD".into(),
                                    "DB_PASSWORD".into(),
                                )])),
                            }],
                        },
                        HostSteps {
                            host: "web-1".into(),
                            steps: vec![Step {
                                command: "true".into(),
                                stdin: None,
                            }],
                        },
                    ],
                },
            ],
        }
    }

    #[test]
    fn sample_round_trips() {
        let bytes = encode(&sample()).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("host web-2 deploy@[::1]:2222 via web-1\n"),
            "{text}"
        );
        assert!(text.contains("    > \"'' b'\n"), "{text}");
        assert_eq!(decode(&bytes).unwrap(), sample());
    }

    fn mutate(find: &str, replace: &str) -> Error {
        let text = String::from_utf8(encode(&sample()).unwrap()).unwrap();
        assert!(text.contains(find), "{find}");
        decode(text.replacen(find, replace, 1).as_bytes()).unwrap_err()
    }

    #[test]
    fn rejects_non_canonical_inputs_naming_the_line() {
        let cases: &[(&str, &str, usize, &str)] = &[
            ("service hey\n", "service hey\r\n", 2, "carriage return"),
            ("serial 2", "serial\t2", 6, "tab"),
            ("serial 2", "serial 02", 6, "canonical decimal"),
            ("operation deploy", "operation deploy ", 4, "trailing space"),
            (
                "service hey\ndestination",
                "destination production\nservice hey\ndestination",
                2,
                "expected `service`",
            ),
            (
                "version 3f2a1c9\n",
                "version 3f2a1c9\nversion 3f2a1c9\n",
                6,
                "expected `serial`",
            ),
            ("    $ true", "    $ true\u{202e}", 0, "non-ASCII"),
            ("    $ true", "    $ tr\x07ue", 0, "control byte"),
            (
                "created 2026-12-03T15:04:05Z",
                "created 2026-12-03T15:04:05+00:00",
                8,
                "UTC time",
            ),
            ("writ-plan 1", "writ-plan 2", 1, "not supported"),
            (
                "  on web-1\n    $ true",
                "  on web-1\n  colour red\n    $ true",
                0,
                "no `    $` step",
            ),
            ("secret KAMAL_REGISTRY_PASSWORD\n", "", 0, "not listed"),
            (
                "phase boot rolling limit=1 wait=10",
                "phase boot rolling limit=0 wait=10",
                0,
                "at least 1",
            ),
            ("  on web-1", "  on web-9", 18, "not declared"),
            ("host web-1", "host web-0", 0, "declared"),
        ];
        for (find, replace, line, needle) in cases {
            let err = mutate(find, replace);
            let msg = err.to_string();
            assert!(msg.contains(needle), "{find:?}: {msg}");
            if *line > 0 {
                assert!(
                    msg.starts_with(&format!("plan line {line}:")),
                    "{find:?}: {msg}"
                );
            }
        }
    }

    #[test]
    fn rejects_missing_final_newline_and_oversize() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.pop();
        assert!(
            decode(&bytes)
                .unwrap_err()
                .to_string()
                .contains("final newline")
        );
        let big = vec![b'a'; MAX_PLAN_BYTES + 1];
        assert!(matches!(decode(&big), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn encode_refuses_unrepresentable_commands() {
        for bad in ["", " x", "x \ny", "caf\u{e9}", "a\tb", "x\r", "\nx"] {
            let mut p = sample();
            p.phases[0].hosts[0].steps[1].command = bad.into();
            assert!(matches!(encode(&p), Err(Error::Encode(_))), "{bad:?}");
        }
    }
}
