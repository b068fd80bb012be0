//! One-off commands (`server exec`): the author's command line, shown and run verbatim.

use minijinja::value::Value;
use writ_exec::plan::Step;

use super::{Context, push};
use crate::Error;

/// Check that an exec command can stand in a plan as written: one line of printable ASCII,
/// not empty, no leading or trailing space. `index` is 1-based for the error.
pub fn check_exec_command(index: usize, command: &str) -> Result<(), Error> {
    let bad = |message: &str| Error::ExecCommand {
        index,
        message: message.to_owned(),
    };
    if command.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    if let Some(b) = command.bytes().find(|b| !(0x20..=0x7e).contains(b)) {
        return Err(bad(&format!(
            "it holds byte 0x{b:02x}; only printable ASCII on one line can be shown verbatim"
        )));
    }
    if command.starts_with(' ') || command.ends_with(' ') {
        return Err(bad("it starts or ends with a space"));
    }
    Ok(())
}

/// Builds `server exec` steps.
#[derive(Debug)]
pub struct ExecSteps<'a, 'c> {
    ctx: &'a Context<'c>,
}

impl<'a, 'c> ExecSteps<'a, 'c> {
    /// Exec steps in `ctx`.
    #[must_use]
    pub fn new(ctx: &'a Context<'c>) -> Self {
        Self { ctx }
    }

    /// Run `command` on the host as written (checked by [`check_exec_command`] first).
    pub fn server_exec(&self, command: &str, steps: &mut Vec<Step>) -> Result<(), Error> {
        push(
            steps,
            self.ctx.step(
                "exec.j2",
                "server_exec",
                &[Value::from_safe_string(command.to_owned())],
            )?,
        );
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exec_commands_must_read_exactly_as_they_run() {
        for ok in [
            "uptime",
            "cat /etc/os-release | head -1",
            "echo \"$HOME\" 'x'",
        ] {
            assert!(check_exec_command(1, ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "  ",
            "a\nb",
            "a\tb",
            "caf\u{e9}",
            "a\u{202e}",
            " x",
            "x ",
        ] {
            let err = check_exec_command(3, bad).unwrap_err().to_string();
            assert!(err.starts_with("exec command 3"), "{bad:?}: {err}");
        }
    }
}
