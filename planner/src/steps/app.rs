//! App containers of one role on one host (Kamal's `Kamal::Commands::App`): env file, boot,
//! readiness, stopping the old version, start/stop/remove, latest tag, exec containers.

use minijinja::value::Value;
use sha2::{Digest as _, Sha256};
use writ_exec::plan::Step;

use super::host::HostSteps;
use super::{Context, push, v, words};
use crate::Error;
use crate::command::{Command, Word};
use crate::config::{DockerOption, Logging, Role, RoleHost};
use crate::template::Templates;

/// The docker network app containers, accessories and the proxy share (Kamal's).
pub const NETWORK: &str = "kamal";

/// Builds the steps for one role on one host.
#[derive(Debug)]
pub struct AppSteps<'a, 'c> {
    ctx: &'a Context<'c>,
    role: &'a Role,
    host: &'a RoleHost,
}

impl<'a, 'c> AppSteps<'a, 'c> {
    /// Steps for `role` on `host`.
    #[must_use]
    pub fn new(ctx: &'a Context<'c>, role: &'a Role, host: &'a RoleHost) -> Self {
        Self { ctx, role, host }
    }

    /// The role this builder is for.
    #[must_use]
    pub fn role(&self) -> &Role {
        self.role
    }

    /// `<service>-<role>-<destination>`: container prefix and kamal-proxy service name.
    #[must_use]
    pub fn container_prefix(&self) -> String {
        format!(
            "{}-{}-{}",
            self.ctx.config.service, self.role.name, self.ctx.destination
        )
    }

    /// `<prefix>-<version>`: the container this plan boots.
    #[must_use]
    pub fn container(&self) -> String {
        format!("{}-{}", self.container_prefix(), self.ctx.version)
    }

    /// `.kamal/apps/<service>-<destination>/env/roles`.
    #[must_use]
    pub fn env_dir(&self) -> String {
        format!(".kamal/apps/{}/env/roles", self.ctx.app_name())
    }

    /// `.kamal/apps/<service>-<destination>/env/roles/<role>.env` (mode 0600).
    #[must_use]
    pub fn env_file(&self) -> String {
        format!("{}/{}.env", self.env_dir(), self.role.name)
    }

    fn step(&self, steps: &mut Vec<Step>, name: &str, args: &[Value]) -> Result<(), Error> {
        push(steps, self.ctx.step("app.j2", name, args)?);
        Ok(())
    }

    /// Write the role's env file (secrets from stdin, 0600).
    pub fn write_env_file(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        let env = self.ctx.config.env_for(self.role, self.host);
        HostSteps::new(self.ctx).write_env_file(&self.env_dir(), &self.env_file(), &env, steps)
    }

    /// Fail unless this version's container exists (rollback needs it).
    pub fn require_container(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.step(
            steps,
            "require_container",
            &[v(self.container()), v(self.ctx.version)],
        )
    }

    /// Rename a container that already has the new name out of the way.
    pub fn rename_existing(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.step(steps, "rename_existing", &[v(self.container())])
    }

    /// `docker run --detach …` the new container.
    pub fn run_container(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        let run = self.run_command()?;
        self.step(steps, "run_container", &[Templates::shell(&run.script())?])
    }

    /// The `docker run` command for the role's container, Kamal's flag order: restart, name,
    /// network, hostname, KAMAL_* env, clear env, env file, logging, volumes, labels, options,
    /// image, cmd.
    pub fn run_command(&self) -> Result<Command, Error> {
        let c = self.ctx.config;
        let container = self.container();
        let env = c.env_for(self.role, self.host);
        let mut run = Command::docker(["run", "--detach", "--restart"])
            .arg(self.role.restart.to_string())
            .args(["--name"])
            .arg(container.clone())
            .args(["--network", NETWORK, "--hostname"])
            .arg(self.hostname())
            .arg("--env")
            .arg(Word::flag("KAMAL_CONTAINER_NAME=", container.clone()))
            .arg("--env")
            .arg(Word::flag("KAMAL_VERSION=", self.ctx.version))
            .arg("--env")
            .arg(Word::flag("KAMAL_HOST=", self.host.host.as_str()))
            .arg("--env")
            .arg(Word::flag("KAMAL_DESTINATION=", self.ctx.destination));
        for (k, val) in &env.clear {
            run = run.arg("--env").arg(format!("{k}={val}"));
        }
        run = run.arg("--env-file").arg(self.env_file());
        run = logging_flags(run, &self.role.logging);
        run = run.repeat("--volume", c.volumes.iter());
        run = run
            .arg("--label")
            .arg(Word::flag("service=", c.service.as_str()))
            .arg("--label")
            .arg(Word::flag("role=", self.role.name.as_str()))
            .arg("--label")
            .arg(Word::flag("destination=", self.ctx.destination));
        for (k, val) in &self.role.labels {
            run = run.arg("--label").arg(format!("{k}={val}"));
        }
        run = option_flags(run, &self.role.options);
        run = run.arg(self.ctx.image());
        if let Some(cmd) = &self.role.cmd {
            run = run.words(cmd_words(cmd, "cmd")?);
        }
        Ok(run)
    }

    /// `--hostname`: the host (at most 51 characters, Kamal's limit) and 12 hex digits derived
    /// from the container name, so plans stay deterministic where Kamal uses random ones.
    #[must_use]
    pub fn hostname(&self) -> String {
        // An IPv6 address is not a valid hostname: its `:` become `-`.
        let host: String = self
            .host
            .host
            .as_str()
            .chars()
            .take(51)
            .map(|c| if c == ':' { '-' } else { c })
            .collect();
        let host = host.trim_end_matches('.');
        let hex = base16ct::lower::encode_string(&Sha256::digest(self.container().as_bytes()));
        format!("{host}-{}", &hex[..12])
    }

    /// Wait until Docker reports the new container ready (roles without a proxy).
    pub fn wait_until_ready(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        let c = self.ctx.config;
        self.step(
            steps,
            "wait_until_ready",
            &[
                v(self.container()),
                Value::from(c.readiness_delay),
                Value::from(c.deploy_timeout),
            ],
        )
    }

    fn stop_flags(&self, proxied: bool) -> Result<Value, Error> {
        let timeout = match (self.role.stop_timeout, proxied) {
            (Some(t), _) => Some(t),
            (None, false) => Some(self.ctx.config.drain_timeout),
            (None, true) => None,
        };
        match timeout {
            Some(t) => words(&[Word::from("-t"), Word::text(t.to_string())]),
            None => words(&[]),
        }
    }

    /// Stop every running container of the role except the new one (old and stale versions).
    pub fn stop_other_containers(&self, proxied: bool, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.step(
            steps,
            "stop_other_containers",
            &[
                v(self.ctx.config.service.as_str()),
                v(self.ctx.destination),
                v(self.role.name.as_str()),
                v(self.container()),
                self.stop_flags(proxied)?,
            ],
        )
    }

    /// Stop every running container of the role.
    pub fn stop_containers(&self, proxied: bool, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.step(
            steps,
            "stop_containers",
            &[
                v(self.ctx.config.service.as_str()),
                v(self.ctx.destination),
                v(self.role.name.as_str()),
                self.stop_flags(proxied)?,
            ],
        )
    }

    /// `docker start` this version's container.
    pub fn start_container(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.step(steps, "start_container", &[v(self.container())])
    }

    /// Remove the role's stopped containers.
    pub fn remove_containers(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.step(
            steps,
            "remove_containers",
            &[
                v(self.ctx.config.service.as_str()),
                v(self.ctx.destination),
                v(self.role.name.as_str()),
            ],
        )
    }

    /// `docker run --rm` a throwaway container of this version with the role's env, running
    /// the author's `command` verbatim.
    pub fn exec_in_new_container(&self, command: &str, steps: &mut Vec<Step>) -> Result<(), Error> {
        let hex = base16ct::lower::encode_string(&Sha256::digest(command.as_bytes()));
        let name = format!(
            "{}-exec-{}-{}",
            self.container_prefix(),
            self.ctx.version,
            &hex[..6]
        );
        let env = self.ctx.config.env_for(self.role, self.host);
        let mut run = Command::docker(["run", "--rm", "--name"])
            .arg(name)
            .args(["--network", NETWORK]);
        for (k, val) in &env.clear {
            run = run.arg("--env").arg(format!("{k}={val}"));
        }
        run = run.arg("--env-file").arg(self.env_file());
        run = logging_flags(run, &self.role.logging);
        run = run.repeat("--volume", self.ctx.config.volumes.iter());
        run = option_flags(run, &self.role.options);
        run = run.arg(self.ctx.image());
        push(
            steps,
            self.ctx.step(
                "exec.j2",
                "app_exec",
                &[
                    Templates::shell(&run.script())?,
                    Value::from_safe_string(command.to_owned()),
                ],
            )?,
        );
        Ok(())
    }
}

/// Image-level app steps on one host (not per role).
#[derive(Debug)]
pub struct ImageSteps<'a, 'c> {
    ctx: &'a Context<'c>,
}

impl<'a, 'c> ImageSteps<'a, 'c> {
    /// Image steps in `ctx`.
    #[must_use]
    pub fn new(ctx: &'a Context<'c>) -> Self {
        Self { ctx }
    }

    /// Pull the image (dropping a stale copy of a mutable tag first) and check its `service`
    /// label, as Kamal does. An image pinned by digest is also tagged `repo:<version>`, the
    /// name Kamal uses and `rollback` boots from.
    pub fn pull_image(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        let image = self.ctx.image();
        if self.ctx.image_digest.is_none() {
            push(
                steps,
                self.ctx.step("app.j2", "remove_image", &[v(&image)])?,
            );
        }
        push(steps, self.ctx.step("app.j2", "pull_image", &[v(&image)])?);
        push(
            steps,
            self.ctx.step(
                "app.j2",
                "check_service_label",
                &[v(&image), v(self.ctx.config.service.as_str())],
            )?,
        );
        if self.ctx.image_digest.is_some() {
            let tag = format!(
                "{}:{}",
                self.ctx.config.image_repository(),
                self.ctx.version
            );
            push(
                steps,
                self.ctx.step("app.j2", "tag_image", &[v(&image), v(tag)])?,
            );
        }
        Ok(())
    }

    /// Tag the deployed image as `latest-<destination>`.
    pub fn tag_latest(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        push(
            steps,
            self.ctx.step(
                "app.j2",
                "tag_image",
                &[v(self.ctx.image()), v(self.ctx.latest())],
            )?,
        );
        Ok(())
    }

    /// Remove every image of the service.
    pub fn remove_images(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        push(
            steps,
            self.ctx.step(
                "app.j2",
                "remove_images",
                &[v(self.ctx.config.service.as_str())],
            )?,
        );
        Ok(())
    }

    /// `rm -rf` the app's env and proxy directories.
    pub fn remove_app_directories(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        let app = self.ctx.app_name();
        push(
            steps,
            self.ctx.step(
                "app.j2",
                "remove_app_directories",
                &[
                    v(format!(".kamal/apps/{app}")),
                    v(format!(".kamal/proxy/apps-config/{app}")),
                ],
            )?,
        );
        Ok(())
    }
}

/// `--log-driver` / `--log-opt` flags; Kamal's `--log-opt max-size=10m` when none are set.
pub(crate) fn logging_flags(mut run: Command, logging: &Logging) -> Command {
    if logging.driver.is_none() && logging.options.is_empty() {
        return run.args(["--log-opt", "max-size=10m"]);
    }
    if let Some(d) = &logging.driver {
        run = run.arg("--log-driver").arg(d.clone());
    }
    for (k, val) in &logging.options {
        run = run.arg("--log-opt").arg(format!("{k}={val}"));
    }
    run
}

/// `options:` as `--key value` flags (`--` then the quoted key, so a key stays one word).
pub(crate) fn option_flags(mut run: Command, options: &[(String, DockerOption)]) -> Command {
    for (k, opt) in options {
        let flag = Word::flag("--", k.clone());
        match opt {
            DockerOption::Flag => run = run.arg(flag),
            DockerOption::Value(val) => run = run.arg(flag).arg(val.clone()),
            DockerOption::Values(vals) => {
                for val in vals {
                    run = run.arg(flag.clone()).arg(val.clone());
                }
            }
        }
    }
    run
}

/// Split a `cmd:` into argument words the way a shell would, but without any expansion:
/// quotes and backslashes group words; unquoted `$ \` | & ; < > ( )` are refused, because on
/// the host they would be shell syntax, not part of the container's command.
pub fn cmd_words(cmd: &str, field: &str) -> Result<Vec<Word>, Error> {
    let bad = |message: String| Error::Operation {
        operation: "docker run".into(),
        message: format!("`{field}`: {message}"),
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = cmd.chars();
    while let Some(ch) = chars.next() {
        match ch {
            ' ' | '\t' | '\n' => {
                if in_word {
                    out.push(Word::text(std::mem::take(&mut cur)));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(bad("unterminated single quote".into())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(bad("unterminated double quote".into())),
                        },
                        Some(c @ ('$' | '`')) => {
                            return Err(bad(format!(
                                "`{c}` inside double quotes would expand on the host; use single quotes"
                            )));
                        }
                        Some(c) => cur.push(c),
                        None => return Err(bad("unterminated double quote".into())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err(bad("ends with a backslash".into())),
                }
            }
            '$' | '`' | '|' | '&' | ';' | '<' | '>' | '(' | ')' => {
                return Err(bad(format!(
                    "unquoted `{ch}` would be shell syntax on the host; the command is split into \
                     words without expansion (quote it, or run a shell in the container: \
                     sh -c '…')"
                )));
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(Word::text(cur));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::steps::fixture::config;

    fn with_ctx<R>(f: impl FnOnce(&Context<'_>) -> R) -> R {
        let c = config();
        let t = Templates::builtin().unwrap();
        let ctx = Context {
            config: &c,
            templates: &t,
            destination: "production",
            version: "123",
            image_digest: None,
        };
        f(&ctx)
    }

    #[test]
    fn names_and_paths_follow_kamal() {
        with_ctx(|ctx| {
            let web = &ctx.config.roles[0];
            let app = AppSteps::new(ctx, web, &web.hosts[0]);
            assert_eq!(app.container_prefix(), "app-web-production");
            assert_eq!(app.container(), "app-web-production-123");
            assert_eq!(
                app.env_file(),
                ".kamal/apps/app-production/env/roles/web.env"
            );
            assert_eq!(app.hostname(), "1.1.1.1-e281f798462b");
            assert_eq!(
                ctx.latest(),
                "registry.example.com/dhh/app:latest-production"
            );
        });
    }

    #[test]
    fn run_command_carries_options_logging_volumes_and_cmd() {
        let mut c = config();
        let workers = &mut c.roles[1];
        workers.logging = Logging {
            driver: Some("json-file".into()),
            options: vec![("max-file".into(), "3".into())],
        };
        workers.options.push(("init".into(), DockerOption::Flag));
        workers.options.push((
            "add-host".into(),
            DockerOption::Values(vec!["a:1.2.3.4".into(), "b:5.6.7.8".into()]),
        ));
        workers.labels.push(("team".into(), "ops & dev".into()));
        c.volumes.push("/data:/data".into());
        let t = Templates::builtin().unwrap();
        let ctx = Context {
            config: &c,
            templates: &t,
            destination: "production",
            version: "123",
            image_digest: None,
        };
        let w = &c.roles[1];
        let run = AppSteps::new(&ctx, w, &w.hosts[0])
            .run_command()
            .unwrap()
            .script()
            .render()
            .unwrap();
        assert!(
            run.ends_with(
                " --log-driver json-file --log-opt max-file=3 --volume /data:/data --label service=app --label role=workers --label destination=production --label 'team=ops & dev' --memory 512m --init --add-host a:1.2.3.4 --add-host b:5.6.7.8 registry.example.com/dhh/app:123 bin/jobs '--queue' default"
            ),
            "{run}"
        );
    }

    #[test]
    fn exec_container_name_is_stable_per_command() {
        with_ctx(|ctx| {
            let web = &ctx.config.roles[0];
            let app = AppSteps::new(ctx, web, &web.hosts[0]);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            app.exec_in_new_container("bin/rails db:migrate", &mut a)
                .unwrap();
            app.exec_in_new_container("bin/rails db:migrate", &mut b)
                .unwrap();
            assert_eq!(a, b);
            assert!(
                a[0].command
                    .starts_with("docker run --rm --name app-web-production-exec-123-")
            );
        });
    }
}
