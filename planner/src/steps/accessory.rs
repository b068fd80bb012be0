//! Accessories (Kamal's `Kamal::Commands::Accessory`): long-lived containers such as databases,
//! with their directories and files under `~/<service>/` and a 0600 env file.

use minijinja::value::Value;
use writ_exec::plan::Step;

use super::app::{cmd_words, logging_flags, option_flags};
use super::host::HostSteps;
use super::registry::RegistrySteps;
use super::{Context, push, v};
use crate::Error;
use crate::command::{Command, Word};
use crate::config::{Accessory, HostName, Logging};
use crate::template::Templates;

/// Largest accessory file shown in a plan.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Builds the steps for one accessory on one host.
#[derive(Debug)]
pub struct AccessorySteps<'a, 'c> {
    ctx: &'a Context<'c>,
    acc: &'a Accessory,
    host: &'a HostName,
}

impl<'a, 'c> AccessorySteps<'a, 'c> {
    /// Steps for `acc` on `host`.
    #[must_use]
    pub fn new(ctx: &'a Context<'c>, acc: &'a Accessory, host: &'a HostName) -> Self {
        Self { ctx, acc, host }
    }

    fn step(&self, steps: &mut Vec<Step>, name: &str, args: &[Value]) -> Result<(), Error> {
        push(steps, self.ctx.step("accessory.j2", name, args)?);
        Ok(())
    }

    fn env_dir(&self) -> String {
        format!(".kamal/apps/{}/env/accessories", self.ctx.app_name())
    }

    fn env_file(&self) -> String {
        format!("{}/{}.env", self.env_dir(), self.acc.name)
    }

    /// Log in to the accessory's registry (or the app's), create its network.
    pub fn prepare(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        let registry = self
            .acc
            .registry
            .as_ref()
            .or(self.ctx.config.registry.as_ref());
        RegistrySteps::new(self.ctx).login(registry, steps)?;
        HostSteps::new(self.ctx).create_network(&self.acc.network, steps)
    }

    /// Boot: directories, files, env file, then `docker run` unless a container exists.
    pub fn boot(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        if self.acc.proxy.is_some() {
            return Err(Error::Operation {
                operation: format!("accessory boot {}", self.acc.name),
                message: "a proxied accessory (`accessories.*.proxy`) is not supported yet".into(),
            });
        }
        for (host_path, _) in self.directories() {
            self.step(steps, "make_directory", &[v(host_path)])?;
        }
        self.write_files(steps)?;
        HostSteps::new(self.ctx).write_env_file(
            &self.env_dir(),
            &self.env_file(),
            &self.acc.env,
            steps,
        )?;
        let run = self.run_command()?;
        self.step(
            steps,
            "run_unless_exists",
            &[v(&self.acc.service), Templates::shell(&run.script())?],
        )
    }

    /// Reboot: pull the image, stop and remove the container, boot again.
    pub fn reboot(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.step(steps, "pull_image", &[v(&self.acc.image)])?;
        self.step(steps, "stop_container", &[v(&self.acc.service)])?;
        self.step(steps, "remove_container", &[v(&self.acc.service)])?;
        self.boot(steps)
    }

    /// Remove the container, its image and its directory on the host (data included, as
    /// with Kamal).
    pub fn remove(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.step(steps, "stop_container", &[v(&self.acc.service)])?;
        self.step(steps, "remove_container", &[v(&self.acc.service)])?;
        self.step(steps, "remove_image", &[v(&self.acc.image)])?;
        self.step(steps, "remove_service_directory", &[v(&self.acc.service)])
    }

    /// `directories:` as (host path relative to the home directory, container path).
    fn directories(&self) -> Vec<(String, String)> {
        self.acc
            .directories
            .iter()
            .map(|d| {
                let (host, container) = d.split_once(':').unwrap_or((d.as_str(), d.as_str()));
                let host = if host.starts_with('/') {
                    host.to_owned()
                } else {
                    format!("{}/{host}", self.acc.service)
                };
                (host, container.to_owned())
            })
            .collect()
    }

    fn file_host_path(&self, remote: &str) -> String {
        format!("{}/{}", self.acc.service, remote.trim_start_matches('/'))
    }

    fn write_files(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        for f in &self.acc.files {
            let local = self.ctx.config.root.join(&f.local);
            let bad = |message: String| Error::Operation {
                operation: format!("accessory boot {}", self.acc.name),
                message: format!("file `{}`: {message}", f.local.display()),
            };
            let meta = std::fs::metadata(&local).map_err(|source| Error::Io {
                path: local.clone(),
                source,
            })?;
            if meta.len() > MAX_FILE_BYTES {
                return Err(bad(format!(
                    "over {MAX_FILE_BYTES} bytes; plans show file contents for review"
                )));
            }
            let content =
                std::fs::read_to_string(&local).map_err(|_| bad("is not UTF-8 text".into()))?;
            let path = self.file_host_path(&f.remote);
            let dir = path
                .rsplit_once('/')
                .map_or_else(|| self.acc.service.clone(), |(d, _)| d.to_owned());
            self.step(
                steps,
                "write_file",
                &[
                    v(dir),
                    v(&path),
                    v(content),
                    v(f.mode.clone().unwrap_or_else(|| "755".into())),
                ],
            )?;
            if let Some(owner) = &f.owner {
                self.step(steps, "change_owner", &[v(owner), v(&path)])?;
            }
        }
        Ok(())
    }

    /// The accessory's `docker run`, Kamal's flag order.
    pub fn run_command(&self) -> Result<Command, Error> {
        let a = self.acc;
        let mut run = Command::docker(["run", "--name"])
            .arg(a.service.clone())
            .args(["--detach", "--restart"])
            .arg(a.restart.to_string())
            .arg("--network")
            .arg(a.network.clone());
        run = logging_flags(run, &Logging::default());
        if let Some(p) = &a.port {
            let publish = if p.contains(':') {
                p.clone()
            } else {
                format!("{p}:{p}")
            };
            run = run.arg("--publish").arg(publish);
        }
        run = run
            .arg("--env")
            .arg(Word::flag("KAMAL_HOST=", self.host.as_str()));
        for (k, val) in &a.env.clear {
            run = run.arg("--env").arg(format!("{k}={val}"));
        }
        run = run.arg("--env-file").arg(self.env_file());
        for f in &a.files {
            run = run.arg("--volume").arg(Word::under_pwd(&format!(
                "{}:{}",
                self.file_host_path(&f.remote),
                f.remote
            )));
        }
        for (host, container) in self.directories() {
            let w = if host.starts_with('/') {
                Word::text(format!("{host}:{container}"))
            } else {
                Word::under_pwd(&format!("{host}:{container}"))
            };
            run = run.arg("--volume").arg(w);
        }
        run = run.repeat("--volume", a.volumes.iter());
        run = run
            .arg("--label")
            .arg(Word::flag("service=", a.service.clone()));
        for (k, val) in &a.labels {
            run = run.arg("--label").arg(format!("{k}={val}"));
        }
        run = option_flags(run, &a.options);
        run = run.arg(a.image.clone());
        if let Some(cmd) = &a.cmd {
            run = run.words(cmd_words(cmd, "accessories.cmd")?);
        }
        Ok(run)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::steps::fixture::config;

    #[test]
    fn run_command_maps_ports_directories_volumes_and_cmd() {
        let mut c = config();
        let db = &mut c.accessories[0];
        db.port = Some("127.0.0.1:3306:3306".into());
        db.directories = vec!["data:/var/lib/mysql".into(), "/srv/backup:/backup".into()];
        db.volumes = vec!["logs:/var/log/mysql".into()];
        db.cmd = Some("mysqld --max-connections 10".into());
        db.labels = vec![("tier".into(), "db".into())];
        let t = Templates::builtin().unwrap();
        let ctx = Context {
            config: &c,
            templates: &t,
            destination: "production",
            version: "123",
            image_digest: None,
        };
        let db = &c.accessories[0];
        let run = AccessorySteps::new(&ctx, db, &db.hosts[0])
            .run_command()
            .unwrap()
            .script()
            .render()
            .unwrap();
        assert_eq!(
            run,
            "docker run --name app-db --detach --restart unless-stopped --network kamal --log-opt max-size=10m --publish 127.0.0.1:3306:3306 --env KAMAL_HOST=1.1.1.4 --env MYSQL_ROOT_HOST=% --env-file .kamal/apps/app-production/env/accessories/db.env --volume \"$PWD\"/app-db/data:/var/lib/mysql --volume /srv/backup:/backup --volume logs:/var/log/mysql --label service=app-db --label tier=db mysql:8.0 mysqld '--max-connections' 10"
        );
    }
}
