//! Registry login with the password on stdin (`docker login … --password-stdin`), never `-p`.

use minijinja::value::Value;
use writ_exec::plan::{Stdin, Step};

use super::{Context, v, words};
use crate::Error;
use crate::command::Word;
use crate::config::{Credential, Registry};

/// Builds registry steps.
#[derive(Debug)]
pub struct RegistrySteps<'a, 'c> {
    ctx: &'a Context<'c>,
}

impl<'a, 'c> RegistrySteps<'a, 'c> {
    /// Registry steps in `ctx`.
    #[must_use]
    pub fn new(ctx: &'a Context<'c>) -> Self {
        Self { ctx }
    }

    /// `docker login [SERVER] -u USER --password-stdin` with `< secret PASSWORD`, when a
    /// registry is configured.
    pub fn login(&self, registry: Option<&Registry>, steps: &mut Vec<Step>) -> Result<(), Error> {
        let Some(registry) = registry else {
            return Ok(());
        };
        let username = match &registry.username {
            Credential::Literal(u) => u.clone(),
            Credential::Secret(name) => {
                return Err(Error::Operation {
                    operation: "registry login".into(),
                    message: format!(
                        "registry.username is the secret `{name}`, but docker login only reads \
                         the password from stdin and a username on the command line would \
                         expose it; write the username literally (it is not a secret)"
                    ),
                });
            }
        };
        let server: Value = match &registry.server {
            Some(s) => words(&[Word::text(s.clone())])?,
            None => Value::from_safe_string(String::new()),
        };
        steps.push(self.ctx.step_with_stdin(
            "registry.j2",
            "login",
            &[server, v(username)],
            Stdin::Secret(registry.password.to_string()),
        )?);
        Ok(())
    }
}
