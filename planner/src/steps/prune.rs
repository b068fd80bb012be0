//! `prune`: old stopped containers beyond `retain_containers` and images no container uses.

use minijinja::value::Value;
use writ_exec::plan::Step;

use super::{Context, push, v};
use crate::Error;

/// Builds prune steps.
#[derive(Debug)]
pub struct PruneSteps<'a, 'c> {
    ctx: &'a Context<'c>,
}

impl<'a, 'c> PruneSteps<'a, 'c> {
    /// Prune steps in `ctx`.
    #[must_use]
    pub fn new(ctx: &'a Context<'c>) -> Self {
        Self { ctx }
    }

    /// Remove stopped containers of the service beyond the newest `retain_containers`.
    pub fn prune_containers(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        let c = self.ctx.config;
        push(
            steps,
            self.ctx.step(
                "prune.j2",
                "prune_containers",
                &[v(c.service.as_str()), Value::from(c.retain_containers)],
            )?,
        );
        Ok(())
    }

    /// Remove dangling images and tagged images of the service no container uses, keeping
    /// the latest tag.
    pub fn prune_images(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        let c = self.ctx.config;
        push(
            steps,
            self.ctx.step(
                "prune.j2",
                "prune_images",
                &[
                    v(c.service.as_str()),
                    v(c.image_repository()),
                    v(self.ctx.latest()),
                ],
            )?,
        );
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
    fn prune_keeps_retained_containers_and_used_images() {
        let mut c = config();
        c.retain_containers = 2;
        let t = Templates::builtin().unwrap();
        let ctx = Context {
            config: &c,
            templates: &t,
            destination: "production",
            version: "123",
            image_digest: None,
        };
        let mut steps = Vec::new();
        let p = PruneSteps::new(&ctx);
        p.prune_containers(&mut steps).unwrap();
        p.prune_images(&mut steps).unwrap();
        assert!(
            steps[0].command.contains("| tail -n +3 |"),
            "{}",
            steps[0].command
        );
        assert_eq!(
            steps[1].command,
            "docker image prune --force --filter label=service=app && docker image ls --filter label=service=app --format '{{.ID}} {{.Repository}}:{{.Tag}}' | grep -v -w \"$(docker container ls -a --format '{{.Image}}\\|' --filter label=service=app | tr -d '\\n')\"'registry.example.com/dhh/app:latest-production\\|registry.example.com/dhh/app:<none>' | while read -r image tag; do docker rmi \"$tag\"; done"
        );
    }
}
