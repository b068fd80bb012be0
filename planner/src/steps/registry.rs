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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::steps::fixture::config;
    use crate::template::Templates;

    #[test]
    fn login_reads_the_password_from_stdin_with_or_without_a_server() {
        let mut c = config();
        let t = Templates::builtin().unwrap();
        let mut registry = c.registry.take().unwrap();
        let ctx = Context {
            config: &c,
            templates: &t,
            destination: "production",
            version: "123",
            image_digest: None,
        };
        let mut steps = Vec::new();
        RegistrySteps::new(&ctx)
            .login(Some(&registry), &mut steps)
            .unwrap();
        registry.server = None;
        RegistrySteps::new(&ctx)
            .login(Some(&registry), &mut steps)
            .unwrap();
        RegistrySteps::new(&ctx).login(None, &mut steps).unwrap();
        let lines: Vec<&str> = steps.iter().map(|s| s.command.as_str()).collect();
        assert_eq!(
            lines,
            [
                "docker login registry.example.com -u deploy --password-stdin",
                "docker login -u deploy --password-stdin"
            ]
        );
        assert!(
            steps
                .iter()
                .all(|s| s.stdin == Some(Stdin::Secret("KAMAL_REGISTRY_PASSWORD".into())))
        );
    }
}
