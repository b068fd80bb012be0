//! Commands as data: `Command { program, args }`, pipelines, `&&`/`||` lists and redirects.
//!
//! Step builders return these values, never strings. [`Script::render`] is the only way to
//! turn one into shell text, and it quotes every word through [`crate::shell::quote`], so a
//! config value always stays one argument. The only unquoted text a script can carry is what
//! this module itself writes: operators, redirect symbols, and `"$PWD"` (a fixed variable the
//! host expands to the SSH user's home directory, Kamal's working directory).

use crate::shell::{self, NulByte};

/// One piece of a shell word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Literal text from config or any other value, quoted on output.
    Text(String),
    /// Literal text written in the planner's source (`--detach`, `-p`): shown bare when it is
    /// only dashes followed by safe characters, quoted otherwise.
    Fixed(&'static str),
    /// `"$PWD"`: the host's working directory (the SSH user's home), expanded on the host.
    Pwd,
    /// `"$(…)"`: the output of a script run on the host.
    Output(Box<Script>),
}

/// One shell word, concatenated from parts (`"$PWD"'/app-db/data:/var/lib/mysql'`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word(pub Vec<Part>);

impl Word {
    /// A literal word.
    #[must_use]
    pub fn text(s: impl Into<String>) -> Self {
        Self(vec![Part::Text(s.into())])
    }

    /// Fixed planner text followed by a value: `--host=` + `example.com`.
    #[must_use]
    pub fn flag(flag: &'static str, value: impl Into<String>) -> Self {
        Self(vec![Part::Fixed(flag), Part::Text(value.into())])
    }

    /// `"$PWD"/` followed by the literal `rest`.
    #[must_use]
    pub fn under_pwd(rest: &str) -> Self {
        Self(vec![Part::Pwd, Part::Text(format!("/{rest}"))])
    }

    /// The word as shell text.
    pub fn render(&self) -> Result<String, NulByte> {
        let mut out = String::new();
        self.render_into(&mut out)?;
        Ok(out)
    }

    fn render_into(&self, out: &mut String) -> Result<(), NulByte> {
        if self.0.is_empty() {
            out.push_str("''");
        }
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(&shell::quote(t)?),
                Part::Fixed(t) if is_fixed_bare(t) => out.push_str(t),
                Part::Fixed(t) => out.push_str(&shell::quote(t)?),
                Part::Pwd => out.push_str("\"$PWD\""),
                Part::Output(s) => {
                    out.push_str("\"$(");
                    s.render_into(out, Prec::Seq)?;
                    out.push_str(")\"");
                }
            }
        }
        Ok(())
    }
}

/// A `&'static str` is planner source text, never a config value.
impl From<&'static str> for Word {
    fn from(s: &'static str) -> Self {
        Self(vec![Part::Fixed(s)])
    }
}

/// Planner source text made only of the quoter's safe characters (dashes anywhere) means
/// the same to the shell bare.
fn is_fixed_bare(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:@,+%=-".contains(&b))
}

impl From<String> for Word {
    fn from(s: String) -> Self {
        Self::text(s)
    }
}

impl From<&String> for Word {
    fn from(s: &String) -> Self {
        Self::text(s.clone())
    }
}

/// A simple command: a program and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The program (`docker`, `mkdir`, …).
    pub program: String,
    /// Its arguments in order.
    pub args: Vec<Word>,
}

impl Command {
    /// `program` with no arguments yet.
    #[must_use]
    pub fn new(program: &str) -> Self {
        Self {
            program: program.to_owned(),
            args: Vec::new(),
        }
    }

    /// `docker` followed by fixed `args`.
    #[must_use]
    pub fn docker(args: impl IntoIterator<Item = &'static str>) -> Self {
        Self::new("docker").args(args)
    }

    /// Append one argument.
    #[must_use]
    pub fn arg(mut self, a: impl Into<Word>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Append fixed arguments written in the planner's source.
    #[must_use]
    pub fn args(mut self, args: impl IntoIterator<Item = &'static str>) -> Self {
        self.args.extend(args.into_iter().map(Word::from));
        self
    }

    /// Append `flag value` for every value (`--env A=1 --env B=2`).
    #[must_use]
    pub fn repeat<I, S>(mut self, flag: &'static str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Word>,
    {
        for v in values {
            self.args.push(Word::from(flag));
            self.args.push(v.into());
        }
        self
    }

    /// Append more words.
    #[must_use]
    pub fn words(mut self, words: impl IntoIterator<Item = Word>) -> Self {
        self.args.extend(words);
        self
    }

    /// As a one-command script.
    #[must_use]
    pub fn script(self) -> Script {
        Script::Command(self)
    }
}

/// Where a redirect points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `> FILE`
    Stdout(Word),
    /// `>> FILE`
    Append(Word),
    /// `< FILE`
    Stdin(Word),
    /// `> /dev/null`
    StdoutToNull,
    /// `2> /dev/null`
    StderrToNull,
    /// `2>&1`
    StderrToStdout,
}

/// A shell script built from commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Script {
    /// A simple command.
    Command(Command),
    /// `a | b | c`
    Pipe(Vec<Script>),
    /// `a && b && c`
    And(Vec<Script>),
    /// `a || b || c`
    Or(Vec<Script>),
    /// `a; b; c`
    Seq(Vec<Script>),
    /// A script with redirects applied (`{ a; } 2>&1` when it is not a simple command).
    Redirected(Box<Script>, Vec<Redirect>),
}

/// Binding strength of shell operators, loosest first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    Seq,
    AndOr,
    Pipe,
    Simple,
}

impl Script {
    /// Render as one shell command line; every word is quoted by [`shell::quote`].
    pub fn render(&self) -> Result<String, NulByte> {
        let mut out = String::new();
        self.render_into(&mut out, Prec::Seq)?;
        Ok(out)
    }

    /// `self | next`
    #[must_use]
    pub fn pipe(self, next: impl Into<Script>) -> Script {
        Script::Pipe(vec![self, next.into()])
    }

    /// `self && next`
    #[must_use]
    pub fn and(self, next: impl Into<Script>) -> Script {
        Script::And(vec![self, next.into()])
    }

    /// `self || next`
    #[must_use]
    pub fn or(self, next: impl Into<Script>) -> Script {
        Script::Or(vec![self, next.into()])
    }

    /// `self` with a redirect added.
    #[must_use]
    pub fn redirect(self, r: Redirect) -> Script {
        match self {
            Script::Redirected(s, mut rs) => {
                rs.push(r);
                Script::Redirected(s, rs)
            }
            other => Script::Redirected(Box::new(other), vec![r]),
        }
    }

    fn prec(&self) -> Prec {
        match self {
            Script::Command(_) | Script::Redirected(..) => Prec::Simple,
            Script::Pipe(_) => Prec::Pipe,
            Script::And(_) | Script::Or(_) => Prec::AndOr,
            Script::Seq(_) => Prec::Seq,
        }
    }

    fn render_into(&self, out: &mut String, context: Prec) -> Result<(), NulByte> {
        // A looser construct inside a tighter one needs braces: `{ a && b; } | c`.
        let braces = self.prec() < context;
        if braces {
            out.push_str("{ ");
        }
        match self {
            Script::Command(c) => {
                out.push_str(&shell::quote(&c.program)?);
                for a in &c.args {
                    out.push(' ');
                    a.render_into(out)?;
                }
            }
            Script::Pipe(v) => join(v, " | ", Prec::Simple, out)?,
            Script::And(v) => join_andor(v, " && ", out)?,
            Script::Or(v) => join_andor(v, " || ", out)?,
            Script::Seq(v) => join(v, "; ", Prec::AndOr, out)?,
            Script::Redirected(s, rs) => {
                if matches!(**s, Script::Command(_)) {
                    s.render_into(out, Prec::Simple)?;
                } else {
                    out.push_str("{ ");
                    s.render_into(out, Prec::Seq)?;
                    out.push_str("; }");
                }
                for r in rs {
                    match r {
                        Redirect::Stdout(w) => {
                            out.push_str(" > ");
                            w.render_into(out)?;
                        }
                        Redirect::Append(w) => {
                            out.push_str(" >> ");
                            w.render_into(out)?;
                        }
                        Redirect::Stdin(w) => {
                            out.push_str(" < ");
                            w.render_into(out)?;
                        }
                        Redirect::StdoutToNull => out.push_str(" > /dev/null"),
                        Redirect::StderrToNull => out.push_str(" 2> /dev/null"),
                        Redirect::StderrToStdout => out.push_str(" 2>&1"),
                    }
                }
            }
        }
        if braces {
            out.push_str("; }");
        }
        Ok(())
    }
}

fn join(v: &[Script], sep: &str, each: Prec, out: &mut String) -> Result<(), NulByte> {
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        s.render_into(out, each)?;
    }
    Ok(())
}

/// `&&` and `||` share one precedence and associate left: a list may start with another
/// list inline, but any later list element needs braces.
fn join_andor(v: &[Script], sep: &str, out: &mut String) -> Result<(), NulByte> {
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        if i > 0 && matches!(s, Script::And(_) | Script::Or(_)) {
            out.push_str("{ ");
            s.render_into(out, Prec::Seq)?;
            out.push_str("; }");
        } else {
            s.render_into(out, Prec::AndOr)?;
        }
    }
    Ok(())
}

impl From<Command> for Script {
    fn from(c: Command) -> Self {
        Script::Command(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::shell::tests::run;

    fn echo(s: &str) -> Script {
        Command::new("echo").arg(s.to_owned()).script()
    }

    #[test]
    fn renders_golden_lines() {
        let cases: Vec<(Script, &str)> = vec![
            (
                Command::docker(["pull", "dhh/app:123"]).script(),
                "docker pull dhh/app:123",
            ),
            (
                Command::new("mkdir")
                    .args(["-p"])
                    .arg(String::from(".kamal/apps/app one"))
                    .arg(String::from("-rf"))
                    .script(),
                "mkdir -p '.kamal/apps/app one' '-rf'",
            ),
            (
                echo("a").and(echo("b")).or(echo("c")),
                "echo a && echo b || echo c",
            ),
            (
                echo("a").and(echo("b").or(echo("c"))),
                "echo a && { echo b || echo c; }",
            ),
            (
                Script::Seq(vec![echo("a"), echo("b")]).pipe(Command::new("cat")),
                "{ echo a; echo b; } | cat",
            ),
            (
                echo("x").redirect(Redirect::Append(Word::text(".kamal/a log"))),
                "echo x >> '.kamal/a log'",
            ),
            (
                echo("a")
                    .pipe(Command::new("cat"))
                    .redirect(Redirect::StderrToNull),
                "{ echo a | cat; } 2> /dev/null",
            ),
            (
                Command::docker(["run"])
                    .arg(Word(vec![
                        Part::Pwd,
                        Part::Text("/app-db/data:/var/lib/mysql".into()),
                    ]))
                    .script(),
                "docker run \"$PWD\"/app-db/data:/var/lib/mysql",
            ),
            (
                Command::new("echo")
                    .arg(Word(vec![
                        Part::Text("id=".into()),
                        Part::Output(Box::new(echo("a b"))),
                    ]))
                    .script(),
                "echo id=\"$(echo 'a b')\"",
            ),
        ];
        for (script, want) in cases {
            assert_eq!(script.render().unwrap(), want);
        }
    }

    #[test]
    fn dash_values_are_quoted_and_fixed_flags_bare() {
        // A leading dash from a value is quoted so a reviewer sees it; the argv is the same.
        let line = Command::new("printf")
            .args(["%s|", "-p"])
            .arg(String::from("-x"))
            .script()
            .render()
            .unwrap();
        assert_eq!(line, "printf '%s|' -p '-x'");
        assert_eq!(run("/bin/sh", &line), b"-p|-x|");
    }

    #[test]
    fn rendered_scripts_run_as_built() {
        let s = echo("a")
            .and(Command::new("false").script().or(echo("b c")))
            .pipe(Command::new("tr").args(["a-z", "A-Z"]));
        let line = s.render().unwrap();
        assert_eq!(run("/bin/sh", &line), b"A\nB C\n");
        assert_eq!(run("bash", &line), b"A\nB C\n");
    }

    #[test]
    fn nul_anywhere_is_an_error() {
        assert!(echo("a\0").render().is_err());
        assert!(Command::new("x\0").script().render().is_err());
    }

    /// A small model of what sh does with our operators, to check rendering (braces,
    /// precedence) against real shells.
    #[derive(Clone, Debug)]
    enum Model {
        Print(String),
        False,
        Cat,
        Pipe(Vec<Model>),
        And(Vec<Model>),
        Or(Vec<Model>),
        Seq(Vec<Model>),
    }

    impl Model {
        fn script(&self) -> Script {
            let all = |v: &[Model]| v.iter().map(Model::script).collect();
            match self {
                Model::Print(s) => Command::new("printf").args(["%s|"]).arg(s.clone()).script(),
                Model::False => Command::new("false").script(),
                Model::Cat => Command::new("cat").script(),
                Model::Pipe(v) => Script::Pipe(all(v)),
                Model::And(v) => Script::And(all(v)),
                Model::Or(v) => Script::Or(all(v)),
                Model::Seq(v) => Script::Seq(all(v)),
            }
        }

        /// (stdout, exit status) reading from `stdin`, which `cat` consumes.
        fn run(&self, stdin: &mut String) -> (String, bool) {
            match self {
                Model::Print(s) => (format!("{s}|"), true),
                Model::False => (String::new(), false),
                Model::Cat => (std::mem::take(stdin), true),
                Model::Pipe(v) => {
                    let (mut input, mut ok) = v[0].run(stdin);
                    for m in &v[1..] {
                        (input, ok) = m.run(&mut input);
                    }
                    (input, ok)
                }
                Model::And(v) | Model::Or(v) => {
                    let and = matches!(self, Model::And(_));
                    let (mut out, mut ok) = v[0].run(stdin);
                    for m in &v[1..] {
                        if ok == and {
                            let (o, k) = m.run(stdin);
                            out.push_str(&o);
                            ok = k;
                        }
                    }
                    (out, ok)
                }
                Model::Seq(v) => {
                    let mut out = String::new();
                    let mut ok = true;
                    for m in v {
                        let (o, k) = m.run(stdin);
                        out.push_str(&o);
                        ok = k;
                    }
                    (out, ok)
                }
            }
        }
    }

    fn model() -> impl Strategy<Value = Model> {
        let leaf = prop_oneof![
            "[a-z' $]{0,4}".prop_map(Model::Print),
            Just(Model::False),
            Just(Model::Cat),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            let list = proptest::collection::vec(inner, 2..4);
            prop_oneof![
                list.clone().prop_map(Model::Pipe),
                list.clone().prop_map(Model::And),
                list.clone().prop_map(Model::Or),
                list.prop_map(Model::Seq),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn rendered_scripts_mean_what_the_tree_says(m in model()) {
            let line = m.script().render().unwrap();
            let (want, ok) = m.run(&mut String::new());
            for shell in ["/bin/sh", "bash"] {
                let out = std::process::Command::new(shell)
                    .args(["-c", &line])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .unwrap();
                prop_assert_eq!(String::from_utf8_lossy(&out.stdout), want.as_str(), "{} {}", shell, line);
                prop_assert_eq!(out.status.success(), ok, "{} {}", shell, line);
            }
        }
    }
}
