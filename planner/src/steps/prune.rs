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
