//! Step builders, one per component (Kamal's `Kamal::Commands::*`): each method is named for
//! its remote effect and returns plan steps rendered from `templates/*.j2`. Nothing here
//! decides anything that depends on a host's state; that is shell inside the steps.

pub mod accessory;
pub mod app;
pub mod exec;
#[cfg(test)]
pub(crate) mod fixture;
pub mod host;
pub mod proxy;
pub mod prune;
pub mod registry;

use minijinja::value::Value;
use writ_exec::plan::{Stdin, Step};

use crate::Error;
use crate::command::Word;
use crate::config::Config;
use crate::template::Templates;

/// Everything a builder needs to know besides the component itself.
#[derive(Debug)]
pub struct Context<'a> {
    /// The validated config.
    pub config: &'a Config,
    /// The templates steps are rendered from.
    pub templates: &'a Templates,
    /// The destination (`production`).
    pub destination: &'a str,
    /// The app version this plan deploys or addresses.
    pub version: &'a str,
    /// `sha256:…` when the image is pinned by digest.
    pub image_digest: Option<&'a str>,
}

impl Context<'_> {
    /// `<service>-<destination>`: the app's directory name under `.kamal/apps` (Kamal's
    /// service-with-destination).
    #[must_use]
    pub fn app_name(&self) -> String {
        format!("{}-{}", self.config.service, self.destination)
    }

    /// The image every pull and run uses: `repo@sha256:…` when pinned, else `repo:version`.
    #[must_use]
    pub fn image(&self) -> String {
        match self.image_digest {
            Some(d) => format!("{}@{d}", self.config.image_repository()),
            None => format!("{}:{}", self.config.image_repository(), self.version),
        }
    }

    /// `repo:latest-<destination>`, Kamal's per-destination latest tag.
    #[must_use]
    pub fn latest(&self) -> String {
        format!(
            "{}:latest-{}",
            self.config.image_repository(),
            self.destination
        )
    }

    /// Render one step from macro `name` of `template`; `None` when it renders nothing.
    pub fn step(&self, template: &str, name: &str, args: &[Value]) -> Result<Option<Step>, Error> {
        Ok(self
            .templates
            .step(template, name, args)?
            .map(|command| Step {
                command,
                stdin: None,
            }))
    }

    /// Like [`Context::step`], with stdin for the step; a step that reads stdin must exist.
    pub fn step_with_stdin(
        &self,
        template: &str,
        name: &str,
        args: &[Value],
        stdin: Stdin,
    ) -> Result<Step, Error> {
        let command =
            self.templates
                .step(template, name, args)?
                .ok_or_else(|| Error::Template {
                    name: format!("{template} macro {name}"),
                    message: "renders nothing, but the step reads a secret on stdin".into(),
                })?;
        Ok(Step {
            command,
            stdin: Some(stdin),
        })
    }
}

/// A string value for a template (quoted when printed).
pub(crate) fn v(s: impl Into<String>) -> Value {
    Value::from(s.into())
}

/// Shell words rendered by writ (each quoted), joined by spaces, for a `*_sh` argument.
pub(crate) fn words(words: &[Word]) -> Result<Value, Error> {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&w.render().map_err(|e| Error::Unquotable(e.to_string()))?);
    }
    Ok(Value::from_safe_string(out.replace('\n', "\u{1f}")))
}

/// Append the step if the template rendered one.
pub(crate) fn push(steps: &mut Vec<Step>, step: Option<Step>) {
    steps.extend(step);
}
