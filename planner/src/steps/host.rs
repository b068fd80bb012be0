//! Host preparation: Docker present, the `.kamal` state directory, the shared network, and
//! 0600 env files written from stdin.

use writ_exec::plan::{Stdin, Step};

use super::{Context, push, v};
use crate::Error;
use crate::config::EnvLayer;

/// Builds host-level steps.
#[derive(Debug)]
pub struct HostSteps<'a, 'c> {
    ctx: &'a Context<'c>,
}

impl<'a, 'c> HostSteps<'a, 'c> {
    /// Host steps in `ctx`.
    #[must_use]
    pub fn new(ctx: &'a Context<'c>) -> Self {
        Self { ctx }
    }

    /// Refuse to go on when Docker is missing (writ never installs it by piping a script).
    pub fn require_docker(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        push(steps, self.ctx.step("host.j2", "require_docker", &[])?);
        Ok(())
    }

    /// `mkdir -p .kamal`.
    pub fn ensure_state_dir(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        push(steps, self.ctx.step("host.j2", "ensure_state_dir", &[])?);
        Ok(())
    }

    /// Create the docker network unless it exists.
    pub fn create_network(&self, network: &str, steps: &mut Vec<Step>) -> Result<(), Error> {
        push(
            steps,
            self.ctx.step("host.j2", "create_network", &[v(network)])?,
        );
        Ok(())
    }

    /// Write `dir/file` with mode 0600 from the env's secrets streamed on stdin (an empty
    /// file when there are none, so `--env-file` always names a fresh file).
    pub fn write_env_file(
        &self,
        dir: &str,
        file: &str,
        env: &EnvLayer,
        steps: &mut Vec<Step>,
    ) -> Result<(), Error> {
        let pairs: Vec<(String, String)> = env
            .secret
            .iter()
            .map(|s| (s.var.to_string(), s.secret.to_string()))
            .collect();
        if pairs.is_empty() {
            push(
                steps,
                self.ctx
                    .step("host.j2", "write_empty_env_file", &[v(dir), v(file)])?,
            );
        } else {
            steps.push(self.ctx.step_with_stdin(
                "host.j2",
                "write_env_file",
                &[v(dir), v(file)],
                Stdin::EnvFile(pairs),
            )?);
        }
        Ok(())
    }

    /// Write `dir/file` with mode 0600 from one secret streamed on stdin.
    pub fn write_secret_file(
        &self,
        dir: &str,
        file: &str,
        secret: &str,
        steps: &mut Vec<Step>,
    ) -> Result<(), Error> {
        steps.push(self.ctx.step_with_stdin(
            "host.j2",
            "write_secret_file",
            &[v(dir), v(file)],
            Stdin::Secret(secret.to_owned()),
        )?);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::steps::fixture::config;
    use crate::template::Templates;

    #[test]
    fn env_files_are_0600_from_stdin_or_empty_and_run_as_written() {
        let c = config();
        let t = Templates::builtin().unwrap();
        let ctx = Context {
            config: &c,
            templates: &t,
            destination: "production",
            version: "123",
            image_digest: None,
        };
        let h = HostSteps::new(&ctx);
        let mut steps = Vec::new();
        h.write_env_file("d/env", "d/env/a.env", &c.env.base, &mut steps)
            .unwrap();
        h.write_env_file("d/env", "d/env/b.env", &EnvLayer::default(), &mut steps)
            .unwrap();
        assert_eq!(
            steps[0].stdin,
            Some(Stdin::EnvFile(vec![(
                "DATABASE_URL".into(),
                "PROD_DATABASE_URL".into()
            )]))
        );
        assert_eq!(steps[1].stdin, None);
        // Run both for real: the files are created 0600 (the stdin here is a stand-in).
        let dir = tempfile::tempdir().unwrap();
        for s in &steps {
            let st = std::process::Command::new("/bin/sh")
                .args(["-c", &s.command])
                .current_dir(dir.path())
                .stdin(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "{}", s.command);
        }
        for f in ["d/env/a.env", "d/env/b.env"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        assert!(!dir.path().join("d/env/a.env.tmp").exists());
    }
}
