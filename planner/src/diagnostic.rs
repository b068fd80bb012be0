//! Config diagnostics: one error with its place (`file:line:col`), the YAML path
//! (`servers.web.options.restart`), the source line with a caret under the spot, and an
//! optional hint such as "did you mean `hosts`?" found by edit distance.

use std::fmt;

/// A position in a config file (1-based line and column; 0 = unknown).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// The file as shown to the user (relative to the config root when possible).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column in characters, 0 when unknown.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => f.write_str(&self.file),
            (l, 0) => write!(f, "{}:{l}", self.file),
            (l, c) => write!(f, "{}:{l}:{c}", self.file),
        }
    }
}

/// One config error, ready to render.
///
/// Invariant: no secret value is ever put in `message`, `hint` or `snippet`; for errors about
/// a value that may be secret the snippet is left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is.
    pub location: Location,
    /// The YAML path of the offending node (`servers.web.hosts`), empty for file-level errors.
    pub path: String,
    /// What is wrong, one sentence.
    pub message: String,
    /// The source line, sanitised, if it is safe and known.
    pub snippet: Option<String>,
    /// Width of the caret underline (at least 1).
    pub width: usize,
    /// A suggestion for fixing it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `location` for the node at `path`.
    #[must_use]
    pub fn new(location: Location, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location,
            path: path.into(),
            message: message.into(),
            snippet: None,
            width: 1,
            hint: None,
        }
    }

    /// Attach a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Attach the source line from `text` (the file's contents) with a caret `width` wide.
    #[must_use]
    pub fn with_source(mut self, text: &str, width: usize) -> Self {
        if self.location.line > 0 {
            self.snippet = text.lines().nth(self.location.line - 1).map(sanitise);
            self.width = width.max(1);
        }
        self
    }

    /// The message with its location and path, the snippet and caret; without the hint
    /// (the CLI prints the hint on its own `hint:` line).
    fn render(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(line) = &self.snippet {
            let number = self.location.line.to_string();
            let pad = " ".repeat(number.len());
            let col = self.location.column.max(1);
            // The snippet is sanitised, so characters and display columns agree except for
            // escaped controls, which only appear where the caret cannot point.
            let lead: String = line
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{pad} |\n{number} | {line}\n{pad} | {lead}{}",
                "^".repeat(self.width)
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(f)
    }
}

/// Make a source line safe to print on a terminal: control and bidi characters are escaped.
fn sanitise(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c == '\t' || (!c.is_control() && !is_bidi(c)) {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
}

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo
/// (distance at most 1 for short words, at most a third of the length otherwise).
#[must_use]
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters, with a cap on input length to keep it cheap.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["hosts", "cmd", "options", "labels"];
        assert_eq!(suggest("hots", &keys), Some("hosts"));
        assert_eq!(suggest("option", &keys), Some("options"));
        assert_eq!(suggest("zzzzzz", &keys), None);
        assert_eq!(suggest("cm", &keys), Some("cmd"));
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn renders_location_path_snippet_and_caret() {
        let text = "service: hey\nservers:\n  web:\n    hots: [a]\n";
        let d = Diagnostic::new(
            Location {
                file: "config/deploy.yml".into(),
                line: 4,
                column: 5,
            },
            "servers.web.hots",
            "unknown key `hots`",
        )
        .with_source(text, 4);
        assert_eq!(
            d.to_string(),
            "config/deploy.yml:4:5: servers.web.hots: unknown key `hots`\n  |\n4 |     hots: [a]\n  |     ^^^^"
        );
    }

    #[test]
    fn snippets_escape_terminal_controls() {
        assert_eq!(sanitise("a\u{1b}[2Jb\u{202e}"), "a\\u{1b}[2Jb\\u{202e}");
    }
}
