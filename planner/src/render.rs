//! Human renderings of a plan change ([`Summary`] + [`LineDiff`]): a coloured terminal review
//! and a markdown review for pull-request comments.
//!
//! Both return strings; the `writ` binary prints the terminal one through `anstream`, which
//! strips the colour when stdout is not a terminal or `NO_COLOR` is set. Every value taken from
//! a plan goes through [`sanitize`], so no control byte or escape sequence reaches a terminal or
//! a comment even if a plan somehow held one.

use std::borrow::Cow;
use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use similar::ChangeTag;
use writ_exec::plan::Previous;

use crate::plan_diff::{CommandChange, FoldedChange, LineDiff, PhaseStatus, Summary};

/// At most this many folded command changes are listed; the diff shows the rest.
pub const MAX_CHANGES_SHOWN: usize = 30;
/// At most this many word-level edits are listed in the summary.
pub const MAX_EDITS_SHOWN: usize = 12;
/// At most this many bytes of diff go into a markdown review (GitHub caps a comment at 65,536
/// characters); the rest is cut with a note.
pub const MARKDOWN_DIFF_BUDGET: usize = 50_000;
/// Commands longer than this are cut with `…` in the summary (never in the diff).
const MAX_COMMAND_SHOWN: usize = 160;
/// Host names listed before "and N more".
const HOSTS_NAMED: usize = 3;

/// Escape everything that is not printable ASCII (`\u{1b}`), so text is inert on a terminal.
#[must_use]
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    Cow::Owned(out)
}

fn cut(s: &str, max: usize) -> Cow<'_, str> {
    let s = sanitize(s);
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &s[..end]))
}

fn short_digest(p: Previous) -> String {
    match p {
        Previous::Genesis => "genesis (first plan of the chain)".into(),
        Previous::Plan(d) => format!("replaces sha256:{}…", &d.hex()[..12]),
    }
}

fn hosts_phrase(hosts: &[String]) -> String {
    let named: Vec<&str> = hosts.iter().take(HOSTS_NAMED).map(String::as_str).collect();
    let more = hosts.len().saturating_sub(HOSTS_NAMED);
    let list = sanitize(&named.join(", ")).into_owned();
    let noun = if hosts.len() == 1 { "host" } else { "hosts" };
    if more > 0 {
        format!("on {} {noun} ({list}, … {more} more)", hosts.len())
    } else {
        format!("on {} {noun} ({list})", hosts.len())
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one-line verdict: what the plan does and how much changes.
fn headline(s: &Summary, diff: &LineDiff) -> String {
    if !s.has_base {
        return format!(
            "new plan: {} on {} in {}",
            plural(s.step_count, "command", "commands"),
            plural(s.host_count, "host", "hosts"),
            plural(s.phases.len(), "phase", "phases"),
        );
    }
    let (mut add, mut del, mut chg) = (0, 0, 0);
    for p in &s.phases {
        add += p.added;
        del += p.removed;
        chg += p.changed;
    }
    format!(
        "{add} to add, {chg} to change, {del} to remove (commands); {} header {}; +{} -{} plan lines",
        s.header.len(),
        if s.header.len() == 1 {
            "field"
        } else {
            "fields"
        },
        diff.added,
        diff.removed
    )
}

// ---------------------------------------------------------------------------------------------
// Terminal

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const RED: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
const GREEN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
const YELLOW: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
const CYAN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// The terminal review: header, summary, per-phase counts, folded changes, then the coloured
/// unified diff of the plan files, labelled `label` (e.g. the plan's path).
#[must_use]
pub fn terminal(s: &Summary, diff: &LineDiff, label: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} {} → {} · {} · version {}",
        paint(BOLD, "writ plan"),
        sanitize(&s.service),
        sanitize(&s.destination),
        sanitize(&s.operation),
        sanitize(&s.version)
    );
    let _ = writeln!(
        o,
        "{}",
        paint(
            DIM,
            &format!(
                "serial {} · {} · {} · {}",
                s.serial,
                short_digest(s.previous),
                plural(s.host_count, "host", "hosts"),
                plural(s.step_count, "command", "commands")
            )
        )
    );
    let _ = writeln!(o, "{}", headline(s, diff));
    o.push('\n');

    let _ = writeln!(o, "{}", paint(BOLD, "Summary"));
    let mut any = false;
    for f in &s.header {
        any = true;
        let _ = writeln!(
            o,
            "  {} {:<16} {} → {}",
            paint(YELLOW, "~"),
            f.field,
            sanitize(&f.old),
            sanitize(&f.new)
        );
    }
    for e in s.edits.iter().take(MAX_EDITS_SHOWN) {
        any = true;
        let what = match (e.old.is_empty(), e.new.is_empty()) {
            (true, _) => paint(GREEN, &format!("+ `{}`", sanitize(&e.new))),
            (_, true) => paint(RED, &format!("- `{}`", sanitize(&e.old))),
            _ => format!(
                "{} `{}` → `{}`",
                paint(YELLOW, "~"),
                sanitize(&e.old),
                sanitize(&e.new)
            ),
        };
        let _ = writeln!(
            o,
            "  {what} in {} on {}",
            plural(e.commands, "command", "commands"),
            plural(e.hosts, "host", "hosts")
        );
    }
    if s.edits.len() > MAX_EDITS_SHOWN {
        let _ = writeln!(
            o,
            "  … {} more word edits: see the changes below",
            s.edits.len() - MAX_EDITS_SHOWN
        );
    }
    for name in &s.secrets_added {
        any = true;
        let _ = writeln!(o, "  {} secret {}", paint(GREEN, "+"), sanitize(name));
    }
    for name in &s.secrets_removed {
        any = true;
        let _ = writeln!(o, "  {} secret {}", paint(RED, "-"), sanitize(name));
    }
    if s.has_base {
        for h in &s.hosts_added {
            any = true;
            let _ = writeln!(o, "  {} host {}", paint(GREEN, "+"), sanitize(h));
        }
        for h in &s.hosts_removed {
            any = true;
            let _ = writeln!(o, "  {} host {}", paint(RED, "-"), sanitize(h));
        }
    }
    for h in &s.hosts_changed {
        any = true;
        for f in &h.fields {
            let mark = if f.field == "keys" {
                paint(RED, "! pinned host key changed:")
            } else {
                paint(YELLOW, "~")
            };
            let _ = writeln!(
                o,
                "  {mark} host {} {} {} → {}",
                sanitize(&h.host),
                f.field,
                sanitize(&f.old),
                sanitize(&f.new)
            );
        }
    }
    if !any {
        let _ = writeln!(o, "  {}", paint(DIM, "no change"));
    }
    o.push('\n');

    let _ = writeln!(
        o,
        "{}  {}",
        paint(BOLD, "Phases"),
        paint(DIM, "(+ added  - removed  ~ changed commands)")
    );
    let width = s.phases.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let swidth = s.phases.iter().map(|p| p.strategy.len()).max().unwrap_or(0);
    for p in &s.phases {
        let mut status = match p.status {
            PhaseStatus::Added if s.has_base => paint(GREEN, " (new phase)"),
            PhaseStatus::Removed => paint(RED, " (phase removed)"),
            _ => String::new(),
        };
        if let Some(old) = &p.old_strategy {
            status.push_str(&paint(YELLOW, &format!(" (was {old})")));
        }
        if p.reordered {
            status.push_str(&paint(YELLOW, " (host order changed)"));
        }
        let _ = writeln!(
            o,
            "  {:<width$}  {:<swidth$}  {} {} {}  on {} of {} hosts{status}",
            sanitize(&p.name),
            p.strategy,
            paint(GREEN, &format!("+{:<3}", p.added)),
            paint(RED, &format!("-{:<3}", p.removed)),
            paint(YELLOW, &format!("~{:<3}", p.changed)),
            p.hosts_changed,
            p.hosts,
        );
    }
    o.push('\n');

    if !s.changes.is_empty() {
        let _ = writeln!(
            o,
            "{}  {}",
            paint(BOLD, "Changes"),
            paint(
                DIM,
                "(identical per-host changes folded; <host> = the host's own name)"
            )
        );
        write_changes(&mut o, &s.changes, |o, c| {
            let _ = writeln!(
                o,
                "  {} {}",
                sanitize(&c.phase),
                paint(DIM, &hosts_phrase(&c.hosts))
            );
            for line in change_lines(&c.changes) {
                let style = if line.starts_with('-') { RED } else { GREEN };
                let _ = writeln!(o, "    {}", paint(style, &line));
            }
        });
        o.push('\n');
    }

    if diff.is_empty() {
        let _ = writeln!(
            o,
            "{} {}",
            paint(BOLD, "Diff"),
            paint(DIM, "(plan text unchanged)")
        );
        return o;
    }
    let label = sanitize(label);
    let _ = writeln!(o, "{}", paint(BOLD, &format!("--- a/{label}")));
    let _ = writeln!(o, "{}", paint(BOLD, &format!("+++ b/{label}")));
    for h in &diff.hunks {
        let _ = writeln!(o, "{}", paint(CYAN, &h.header));
        for l in &h.lines {
            let text = sanitize(&l.text);
            let _ = match l.tag {
                ChangeTag::Equal => writeln!(o, " {text}"),
                ChangeTag::Delete => writeln!(o, "{}", paint(RED, &format!("-{text}"))),
                ChangeTag::Insert => writeln!(o, "{}", paint(GREEN, &format!("+{text}"))),
            };
        }
    }
    o
}

/// The `- old` / `+ new` lines of a folded entry, commands cut at [`MAX_COMMAND_SHOWN`].
fn change_lines(changes: &[CommandChange]) -> Vec<String> {
    let mut out = Vec::new();
    for c in changes {
        match c {
            CommandChange::Added(cmd) => out.push(format!("+ {}", cut(cmd, MAX_COMMAND_SHOWN))),
            CommandChange::Removed(cmd) => out.push(format!("- {}", cut(cmd, MAX_COMMAND_SHOWN))),
            CommandChange::Changed { old, new } => {
                // Show both from a little before their first difference, so a cut never hides
                // what changed.
                let at = old
                    .bytes()
                    .zip(new.bytes())
                    .position(|(a, b)| a != b)
                    .unwrap_or(old.len().min(new.len()));
                let from = at.saturating_sub(CONTEXT_BEFORE_CHANGE);
                out.push(format!("- {}", window(old, from)));
                out.push(format!("+ {}", window(new, from)));
            }
        }
    }
    out
}

/// Characters kept before the first difference of a changed command.
const CONTEXT_BEFORE_CHANGE: usize = 60;

/// `s` from byte `from` (snapped back to a space), marked `…` when it does not start at 0, cut
/// at [`MAX_COMMAND_SHOWN`].
fn window(s: &str, from: usize) -> String {
    if from == 0 || s.len() <= MAX_COMMAND_SHOWN {
        return cut(s, MAX_COMMAND_SHOWN).into_owned();
    }
    let mut start = from.min(s.len());
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    if let Some(space) = s[..start].rfind(' ') {
        start = space + 1;
    }
    format!("…{}", cut(&s[start..], MAX_COMMAND_SHOWN))
}

fn write_changes(
    o: &mut String,
    changes: &[FoldedChange],
    mut each: impl FnMut(&mut String, &FoldedChange),
) {
    for c in changes.iter().take(MAX_CHANGES_SHOWN) {
        each(o, c);
    }
    if changes.len() > MAX_CHANGES_SHOWN {
        let _ = writeln!(
            o,
            "  … {} more distinct changes: see the diff",
            changes.len() - MAX_CHANGES_SHOWN
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown

/// `text` as a markdown code span: a backtick fence longer than any run inside, padded when the
/// text starts or ends with a backtick.
fn code(text: &str) -> String {
    let text = sanitize(text);
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') || text.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// A fenced code block opener/closer longer than any backtick run in the lines.
fn block_fence<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut longest = 2;
    for l in lines {
        let mut run = 0;
        for c in l.chars() {
            if c == '`' {
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
    }
    "`".repeat(longest + 1)
}

/// The markdown review for a pull-request comment: the same content as [`terminal`], with the
/// diff in a collapsible ```` ```diff ```` block cut at [`MARKDOWN_DIFF_BUDGET`] bytes.
#[must_use]
pub fn markdown(s: &Summary, diff: &LineDiff, label: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### writ plan: {} → {} · {} · version {}\n",
        code(&s.service),
        code(&s.destination),
        code(&s.operation),
        code(&s.version)
    );
    let _ = writeln!(
        o,
        "Serial {} · {} · {} · {}\n",
        s.serial,
        match s.previous {
            Previous::Genesis => "genesis (first plan of the chain)".to_owned(),
            Previous::Plan(d) =>
                format!("replaces {}", code(&format!("sha256:{}", &d.hex()[..12]))),
        },
        plural(s.host_count, "host", "hosts"),
        plural(s.step_count, "command", "commands")
    );
    let _ = writeln!(o, "**{}**\n", headline(s, diff));

    let mut items = Vec::new();
    for f in &s.header {
        items.push(format!("{}: {} → {}", f.field, code(&f.old), code(&f.new)));
    }
    for e in s.edits.iter().take(MAX_EDITS_SHOWN) {
        let what = match (e.old.is_empty(), e.new.is_empty()) {
            (true, _) => format!("added {}", code(&e.new)),
            (_, true) => format!("removed {}", code(&e.old)),
            _ => format!("{} → {}", code(&e.old), code(&e.new)),
        };
        items.push(format!(
            "{what} in {} on {}",
            plural(e.commands, "command", "commands"),
            plural(e.hosts, "host", "hosts")
        ));
    }
    if s.edits.len() > MAX_EDITS_SHOWN {
        items.push(format!(
            "… {} more word edits: see the command changes",
            s.edits.len() - MAX_EDITS_SHOWN
        ));
    }
    if !s.secrets_added.is_empty() {
        let names: Vec<String> = s.secrets_added.iter().map(|n| code(n)).collect();
        items.push(format!("secrets added: {}", names.join(", ")));
    }
    if !s.secrets_removed.is_empty() {
        let names: Vec<String> = s.secrets_removed.iter().map(|n| code(n)).collect();
        items.push(format!("secrets removed: {}", names.join(", ")));
    }
    if s.has_base {
        if !s.hosts_added.is_empty() {
            let names: Vec<String> = s.hosts_added.iter().map(|n| code(n)).collect();
            items.push(format!("hosts added: {}", names.join(", ")));
        }
        if !s.hosts_removed.is_empty() {
            let names: Vec<String> = s.hosts_removed.iter().map(|n| code(n)).collect();
            items.push(format!("hosts removed: {}", names.join(", ")));
        }
    }
    for h in &s.hosts_changed {
        for f in &h.fields {
            let warn = if f.field == "keys" {
                "⚠️ **pinned host key changed** on "
            } else {
                "host "
            };
            items.push(format!(
                "{warn}{} {}: {} → {}",
                code(&h.host),
                f.field,
                code(&f.old),
                code(&f.new)
            ));
        }
    }
    if items.is_empty() {
        items.push("no change".into());
    }
    for i in items {
        let _ = writeln!(o, "- {i}");
    }
    o.push('\n');

    o.push_str("| phase | strategy | added | removed | changed | hosts changed |\n");
    o.push_str("|---|---|--:|--:|--:|--:|\n");
    for p in &s.phases {
        let mut status = match p.status {
            PhaseStatus::Added if s.has_base => " (new)",
            PhaseStatus::Removed => " (removed)",
            _ => "",
        }
        .to_owned();
        if let Some(old) = &p.old_strategy {
            let _ = write!(status, " (was {})", code(old));
        }
        if p.reordered {
            status.push_str(" (host order changed)");
        }
        let _ = writeln!(
            o,
            "| {}{status} | {} | {} | {} | {} | {} of {} |",
            code(&p.name),
            code(&p.strategy),
            p.added,
            p.removed,
            p.changed,
            p.hosts_changed,
            p.hosts
        );
    }
    o.push('\n');

    if !s.changes.is_empty() {
        o.push_str(
            "<details><summary>Command changes, folded over hosts (<code>&lt;host&gt;</code> = the host's own name)</summary>\n\n",
        );
        write_changes(&mut o, &s.changes, |o, c| {
            let hosts = hosts_phrase(&c.hosts).replace('_', "\\_");
            let _ = writeln!(o, "- {} {hosts}:", code(&c.phase));
            let lines = change_lines(&c.changes);
            let fence = block_fence(lines.iter().map(String::as_str));
            let _ = writeln!(o, "  {fence}diff");
            for l in &lines {
                let _ = writeln!(o, "  {l}");
            }
            let _ = writeln!(o, "  {fence}");
        });
        o.push_str("\n</details>\n\n");
    }

    if diff.is_empty() {
        o.push_str("Plan text unchanged.\n");
        return o;
    }
    let label = sanitize(label);
    let mut body = String::new();
    let mut cut_lines = 0usize;
    let _ = writeln!(body, "--- a/{label}\n+++ b/{label}");
    for h in &diff.hunks {
        for (i, line) in std::iter::once(h.header.clone())
            .chain(h.lines.iter().map(|l| {
                let mark = match l.tag {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                format!("{mark}{}", sanitize(&l.text))
            }))
            .enumerate()
        {
            if body.len() + line.len() >= MARKDOWN_DIFF_BUDGET {
                cut_lines += usize::from(i > 0);
                continue;
            }
            body.push_str(&line);
            body.push('\n');
        }
    }
    let fence = block_fence(body.lines());
    let _ = writeln!(
        o,
        "<details><summary>Plan diff (+{} −{} lines)</summary>\n\n{fence}diff\n{body}{fence}\n",
        diff.added, diff.removed
    );
    if cut_lines > 0 {
        let _ = writeln!(
            o,
            "The diff is cut here: {cut_lines} more lines. Read the whole plan file in the pull request.\n"
        );
    }
    o.push_str("</details>\n");
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::plan_diff::tests::fleet;
    use writ_exec::plan::encode;

    fn review(old: &writ_exec::plan::Plan, new: &writ_exec::plan::Plan) -> (Summary, LineDiff) {
        let o = String::from_utf8(encode(old).unwrap()).unwrap();
        let n = String::from_utf8(encode(new).unwrap()).unwrap();
        (Summary::between(Some(old), new), LineDiff::between(&o, &n))
    }

    #[test]
    fn terminal_review_folds_a_fleet_wide_change_and_colours_the_diff() {
        let (s, d) = review(&fleet(40, "3f2a1c9"), &fleet(40, "9b0e4d2"));
        let text = terminal(&s, &d, "plans/production.plan");
        assert!(
            text.contains("`3f2a1c9` → `9b0e4d2` in 80 commands on 40 hosts"),
            "{text}"
        );
        assert!(
            text.contains("on 40 hosts (web-1, web-10, web-11, … 37 more)"),
            "{text}"
        );
        assert!(
            text.contains("0 to add, 80 to change, 0 to remove"),
            "{text}"
        );
        assert!(text.contains("\u{1b}[31m-version 3f2a1c9"), "{text}");
        assert!(text.contains("\u{1b}[32m+version 9b0e4d2"), "{text}");
    }

    #[test]
    fn markdown_review_of_a_fleet_change_snapshot() {
        let old = fleet(3, "3f2a1c9");
        let mut new = fleet(4, "9b0e4d2");
        new.hosts[0].port = 2222;
        let (s, d) = review(&old, &new);
        insta::assert_snapshot!(markdown(&s, &d, "plans/production.plan"));
    }

    #[test]
    fn a_changed_pinned_host_key_is_flagged_in_both_renderings() {
        let old = fleet(2, "v1");
        let mut new = old.clone();
        new.hosts[1].keys = vec![
            writ_exec::plan::HostKey::parse(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMQ4aAdRTvBk2fKnn/IzAKTk9Oz5jwP8Gg9dra7w0G4I",
            )
            .unwrap(),
        ];
        let (s, d) = review(&old, &new);
        assert!(!s.commands_unchanged() && s.phases.iter().all(|p| !p.is_changed()));
        let text = terminal(&s, &d, "p");
        assert!(text.contains("! pinned host key changed:"), "{text}");
        assert!(text.contains("host web-2 keys SHA256:"), "{text}");
        let md = markdown(&s, &d, "p");
        assert!(
            md.contains("**pinned host key changed** on `web-2`"),
            "{md}"
        );
    }

    #[test]
    fn markdown_cuts_a_huge_diff_with_a_note() {
        let (s, d) = review(&fleet(2000, "3f2a1c9"), &fleet(2000, "9b0e4d2"));
        let md = markdown(&s, &d, "plans/production.plan");
        assert!(md.len() < MARKDOWN_DIFF_BUDGET + 20_000, "{}", md.len());
        assert!(md.contains("The diff is cut here"), "{md}");
        assert!(md.trim_end().ends_with("</details>"));
    }

    #[test]
    fn a_cut_changed_command_still_shows_its_change() {
        let tail = "x ".repeat(150);
        let lines = change_lines(&[CommandChange::Changed {
            old: format!("docker {tail}hey:3f2a1c9 end"),
            new: format!("docker {tail}hey:9b0e4d2 end"),
        }]);
        assert!(
            lines[0].starts_with("- …x ") && lines[0].contains("hey:3f2a1c9 end"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("+ …x ") && lines[1].contains("hey:9b0e4d2 end"),
            "{lines:?}"
        );
    }

    #[test]
    fn sanitize_escapes_control_and_non_ascii() {
        assert_eq!(sanitize("ok $(x) `y`"), "ok $(x) `y`");
        assert_eq!(sanitize("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(sanitize("rtl\u{202e}x\n"), "rtl\\u{202e}x\\u{a}");
    }

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(block_fence(["ok", "has ```` four"].into_iter()), "`````");
    }
}
