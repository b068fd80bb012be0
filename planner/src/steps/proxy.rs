//! The proxy in front of proxied roles, one driver per `x-writ.proxy`: `kamal-proxy` (Kamal 2's
//! container, volume and `kamal-proxy deploy` flags), `caddy` (a Caddy container switched by a
//! graceful config reload) and `none`.

use minijinja::value::Value;
use writ_exec::plan::Step;

use super::app::{AppSteps, NETWORK};
use super::host::HostSteps;
use super::{Context, push, v, words};
use crate::Error;
use crate::command::{Command, Word};
use crate::config::{Proxy, ProxyDriver, Ssl};
use crate::template::Templates;

/// The kamal-proxy image Kamal 2.12 runs by default (its minimum version).
pub const KAMAL_PROXY_IMAGE: &str = "basecamp/kamal-proxy:v0.9.2";
/// The Caddy image the caddy driver runs (tag a local build with this name to use your own).
pub const CADDY_IMAGE: &str = "caddy:2";
/// How long Caddy retries reaching an upstream that is being replaced (`lb_try_duration`).
pub const CADDY_RETRY_SECS: u32 = 10;

/// Builds proxy steps for the configured driver.
#[derive(Debug)]
pub struct ProxySteps<'a, 'c> {
    ctx: &'a Context<'c>,
    driver: ProxyDriver,
}

impl<'a, 'c> ProxySteps<'a, 'c> {
    /// Proxy steps in `ctx`, for the driver in `x-writ.proxy`.
    #[must_use]
    pub fn new(ctx: &'a Context<'c>) -> Self {
        Self {
            ctx,
            driver: ctx.config.writ.proxy_driver,
        }
    }

    /// Whether `role_proxy` puts the role behind a proxy with this driver.
    #[must_use]
    pub fn routes(&self, role_proxy: Option<&Proxy>) -> bool {
        role_proxy.is_some() && self.driver != ProxyDriver::None
    }

    fn template(&self) -> &'static str {
        match self.driver {
            ProxyDriver::Caddy => "caddy.j2",
            ProxyDriver::KamalProxy | ProxyDriver::None => "kamal-proxy.j2",
        }
    }

    fn step(&self, steps: &mut Vec<Step>, name: &str, args: &[Value]) -> Result<(), Error> {
        push(steps, self.ctx.step(self.template(), name, args)?);
        Ok(())
    }

    /// The command that creates the proxy container.
    #[must_use]
    pub fn run_command(&self) -> Command {
        match self.driver {
            ProxyDriver::Caddy => Command::docker([
                "run",
                "--name",
                "writ-caddy",
                "--network",
                NETWORK,
                "--detach",
                "--restart",
                "unless-stopped",
                "--label",
                "org.opencontainers.image.title=writ-caddy",
                "--volume",
            ])
            .arg(Word::under_pwd(".kamal/proxy/caddy:/etc/caddy"))
            .args([
                "--volume",
                "writ-caddy-data:/data",
                "--publish",
                "80:80",
                "--publish",
                "443:443",
                "--log-opt",
                "max-size=10m",
                CADDY_IMAGE,
                "caddy",
                "run",
                "--config",
                "/etc/caddy/Caddyfile",
                "--adapter",
                "caddyfile",
            ]),
            ProxyDriver::KamalProxy | ProxyDriver::None => Command::docker([
                "run",
                "--name",
                "kamal-proxy",
                "--network",
                NETWORK,
                "--detach",
                "--restart",
                "unless-stopped",
                "--volume",
                "kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy",
                "--volume",
            ])
            .arg(Word::under_pwd(
                ".kamal/proxy/apps-config:/home/kamal-proxy/.apps-config",
            ))
            .args([
                "--publish",
                "80:80",
                "--publish",
                "443:443",
                "--log-opt",
                "max-size=10m",
                KAMAL_PROXY_IMAGE,
                "kamal-proxy",
                "run",
            ]),
        }
    }

    fn require_driver(&self, operation: &str) -> Result<(), Error> {
        if self.driver == ProxyDriver::None {
            return Err(Error::Operation {
                operation: operation.into(),
                message: "x-writ.proxy is `none`, so there is no proxy to manage".into(),
            });
        }
        Ok(())
    }

    /// The state directory and network, then the proxy itself ([`ProxySteps::boot_container`]).
    pub fn boot(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.require_driver("proxy boot")?;
        let host = HostSteps::new(self.ctx);
        host.ensure_state_dir(steps)?;
        host.create_network(NETWORK, steps)?;
        self.boot_container(steps)
    }

    /// Create the proxy's config directory and start the proxy container (or create it).
    pub fn boot_container(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.require_driver("proxy boot")?;
        self.step(steps, "make_config_dir", &[])?;
        self.step(
            steps,
            "start_or_run",
            &[Templates::shell(&self.run_command().script())?],
        )
    }

    /// Stop and recreate the proxy container (routes persist in its volume / site files).
    pub fn reboot(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.require_driver("proxy reboot")?;
        self.step(steps, "stop_proxy", &[])?;
        self.step(steps, "remove_proxy_containers", &[])?;
        self.step(steps, "make_config_dir", &[])?;
        self.step(
            steps,
            "start_or_run",
            &[Templates::shell(&self.run_command().script())?],
        )
    }

    /// Remove the proxy, refusing while apps are still deployed on the host.
    pub fn remove(&self, steps: &mut Vec<Step>) -> Result<(), Error> {
        self.require_driver("proxy remove")?;
        self.step(steps, "refuse_if_apps", &[])?;
        self.step(steps, "stop_proxy", &[])?;
        self.step(steps, "remove_proxy_containers", &[])?;
        if self.driver == ProxyDriver::KamalProxy {
            self.step(steps, "remove_proxy_images", &[])?;
        }
        self.step(steps, "remove_proxy_directory", &[])
    }

    /// Write the role's custom TLS certificate and key (0600, from secrets) where the proxy
    /// reads them; nothing for other TLS settings.
    pub fn write_certificates(
        &self,
        app: &AppSteps<'_, '_>,
        steps: &mut Vec<Step>,
    ) -> Result<(), Error> {
        let Some(Ssl::Custom {
            certificate_pem,
            private_key_pem,
        }) = app.role().proxy.as_ref().map(|p| &p.ssl)
        else {
            return Ok(());
        };
        if !self.routes(app.role().proxy.as_ref()) {
            return Ok(());
        }
        let dir = self.tls_dir(app);
        let host = HostSteps::new(self.ctx);
        host.write_secret_file(
            &dir,
            &format!("{dir}/cert.pem"),
            certificate_pem.as_str(),
            steps,
        )?;
        host.write_secret_file(
            &dir,
            &format!("{dir}/key.pem"),
            private_key_pem.as_str(),
            steps,
        )
    }

    fn tls_dir(&self, app: &AppSteps<'_, '_>) -> String {
        let (app_name, role) = (self.ctx.app_name(), &app.role().name);
        match self.driver {
            ProxyDriver::Caddy => format!(".kamal/proxy/caddy/tls/{app_name}/{role}"),
            ProxyDriver::KamalProxy | ProxyDriver::None => {
                format!(".kamal/proxy/apps-config/{app_name}/tls/{role}")
            }
        }
    }

    /// Send traffic for the role to its new container (the proxy health-checks it first with
    /// kamal-proxy; with Caddy the container is waited for, then the site is switched).
    pub fn route(&self, app: &AppSteps<'_, '_>, steps: &mut Vec<Step>) -> Result<(), Error> {
        let Some(proxy) = app.role().proxy.as_ref() else {
            return Ok(());
        };
        match self.driver {
            ProxyDriver::None => Ok(()),
            ProxyDriver::KamalProxy => {
                let flags = self.kamal_proxy_flags(app, proxy);
                self.step(
                    steps,
                    "deploy",
                    &[
                        v(app.container_prefix()),
                        v(app.container()),
                        Value::from(proxy.app_port),
                        words(&flags)?,
                    ],
                )
            }
            ProxyDriver::Caddy => {
                app.wait_until_ready(steps)?;
                let lines = self.caddy_site(app, proxy)?;
                self.step(
                    steps,
                    "route",
                    &[
                        v(caddy_site_file(app)),
                        Value::from(lines.into_iter().map(Value::from).collect::<Vec<_>>()),
                    ],
                )
            }
        }
    }

    /// Stop sending traffic to the role.
    pub fn unroute(&self, app: &AppSteps<'_, '_>, steps: &mut Vec<Step>) -> Result<(), Error> {
        if !self.routes(app.role().proxy.as_ref()) {
            return Ok(());
        }
        match self.driver {
            ProxyDriver::None => Ok(()),
            ProxyDriver::KamalProxy => {
                self.step(steps, "remove_route", &[v(app.container_prefix())])
            }
            ProxyDriver::Caddy => self.step(steps, "remove_route", &[v(caddy_site_file(app))]),
        }
    }

    /// The Caddyfile site block for the role, one line per element.
    fn caddy_site(&self, app: &AppSteps<'_, '_>, proxy: &Proxy) -> Result<Vec<String>, Error> {
        if !proxy.path_prefixes.is_empty() {
            return Err(Error::Operation {
                operation: "proxy route".into(),
                message: "proxy.path_prefix is not supported by the caddy driver; use kamal-proxy"
                    .into(),
            });
        }
        for h in &proxy.hosts {
            let ok = !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-*".contains(&b));
            if !ok {
                return Err(Error::Operation {
                    operation: "proxy route".into(),
                    message: format!(
                        "proxy host `{}` is not a DNS name the caddy driver can route",
                        h.escape_debug()
                    ),
                });
            }
        }
        let scheme = if matches!(proxy.ssl, Ssl::Off) {
            "http://"
        } else {
            ""
        };
        let address = if proxy.hosts.is_empty() {
            ":80".to_owned()
        } else {
            proxy
                .hosts
                .iter()
                .map(|h| format!("{scheme}{h}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut lines = vec![format!("{address} {{")];
        if let Ssl::Custom { .. } = proxy.ssl {
            let dir = self
                .tls_dir(app)
                .replacen(".kamal/proxy/caddy", "/etc/caddy", 1);
            lines.push(format!("  tls {dir}/cert.pem {dir}/key.pem"));
        }
        // A redeploy of the running version renames its container before the replacement with
        // the same name starts; meanwhile the name resolves to nothing. Caddy retries the dial
        // for a while instead of answering 502 (found by tests/tests/e2e_docker.rs).
        lines.push(format!(
            "  reverse_proxy {}:{} {{",
            app.container(),
            proxy.app_port
        ));
        lines.push(format!("    lb_try_duration {CADDY_RETRY_SECS}s"));
        lines.push("  }".to_owned());
        lines.push("}".to_owned());
        Ok(lines)
    }

    /// `kamal-proxy deploy` flags from the role's proxy settings (Kamal 2's mapping).
    fn kamal_proxy_flags(&self, app: &AppSteps<'_, '_>, proxy: &Proxy) -> Vec<Word> {
        let c = self.ctx.config;
        let mut f = Vec::new();
        for h in &proxy.hosts {
            f.push(Word::flag("--host=", h.clone()));
        }
        match &proxy.ssl {
            Ssl::Off => {}
            Ssl::Automatic => f.push(Word::from("--tls")),
            Ssl::Custom { .. } => {
                let dir = format!(
                    "/home/kamal-proxy/.apps-config/{}/tls/{}",
                    self.ctx.app_name(),
                    app.role().name
                );
                f.push(Word::from("--tls"));
                f.push(Word::flag(
                    "--tls-certificate-path=",
                    format!("{dir}/cert.pem"),
                ));
                f.push(Word::flag(
                    "--tls-private-key-path=",
                    format!("{dir}/key.pem"),
                ));
            }
        }
        if !matches!(proxy.ssl, Ssl::Off)
            && let Some(r) = proxy.ssl_redirect
        {
            f.push(Word::flag("--tls-redirect=", r.to_string()));
        }
        f.push(Word::flag(
            "--deploy-timeout=",
            format!("{}s", c.deploy_timeout),
        ));
        f.push(Word::flag(
            "--drain-timeout=",
            format!("{}s", c.drain_timeout),
        ));
        let hc = &proxy.healthcheck;
        if let Some(p) = &hc.path {
            f.push(Word::flag("--health-check-path=", p.clone()));
        }
        if let Some(i) = hc.interval {
            f.push(Word::flag("--health-check-interval=", format!("{i}s")));
        }
        if let Some(t) = hc.timeout {
            f.push(Word::flag("--health-check-timeout=", format!("{t}s")));
        }
        if let Some(t) = proxy.response_timeout {
            f.push(Word::flag("--target-timeout=", format!("{t}s")));
        }
        let b = &proxy.buffering;
        if b.requests != Some(false) {
            f.push(Word::from("--buffer-requests"));
        }
        if b.responses != Some(false) {
            f.push(Word::from("--buffer-responses"));
        }
        if let Some(n) = b.max_request_body {
            f.push(Word::flag("--max-request-body=", n.to_string()));
        }
        if let Some(n) = b.max_response_body {
            f.push(Word::flag("--max-response-body=", n.to_string()));
        }
        if let Some(n) = b.memory {
            f.push(Word::flag("--buffer-memory=", n.to_string()));
        }
        for p in &proxy.path_prefixes {
            f.push(Word::flag("--path-prefix=", p.clone()));
        }
        if let Some(s) = proxy.strip_path_prefix {
            f.push(Word::flag("--strip-path-prefix=", s.to_string()));
        }
        if let Some(fh) = proxy.forward_headers {
            f.push(Word::flag("--forward-headers=", fh.to_string()));
        }
        let defaults = ["Cache-Control", "Last-Modified", "User-Agent"];
        if proxy.request_headers.is_empty() {
            for h in defaults {
                f.push(Word::flag("--log-request-header=", h));
            }
        } else {
            for h in &proxy.request_headers {
                f.push(Word::flag("--log-request-header=", h.clone()));
            }
        }
        for h in &proxy.response_headers {
            f.push(Word::flag("--log-response-header=", h.clone()));
        }
        f
    }
}

/// `.kamal/proxy/caddy/sites/<service>-<role>-<destination>.caddy`.
fn caddy_site_file(app: &AppSteps<'_, '_>) -> String {
    format!(".kamal/proxy/caddy/sites/{}.caddy", app.container_prefix())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Buffering;
    use crate::steps::fixture::config;

    fn flags(c: &crate::config::Config) -> String {
        let t = Templates::builtin().unwrap();
        let ctx = Context {
            config: c,
            templates: &t,
            destination: "production",
            version: "123",
            image_digest: None,
        };
        let web = &c.roles[0];
        let app = AppSteps::new(&ctx, web, &web.hosts[0]);
        let f = ProxySteps::new(&ctx).kamal_proxy_flags(&app, web.proxy.as_ref().unwrap());
        f.iter()
            .map(|w| w.render().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn kamal_proxy_flags_map_every_proxy_setting() {
        let mut c = config();
        let p = c.roles[0].proxy.as_mut().unwrap();
        p.hosts.push("www.example.com".into());
        p.ssl = Ssl::Automatic;
        p.ssl_redirect = Some(false);
        p.healthcheck.path = Some("/health".into());
        p.healthcheck.interval = Some(2);
        p.healthcheck.timeout = Some(4);
        p.response_timeout = Some(60);
        p.buffering = Buffering {
            requests: Some(false),
            responses: None,
            max_request_body: Some(1024),
            max_response_body: Some(2048),
            memory: Some(4096),
        };
        p.path_prefixes = vec!["/api".into()];
        p.strip_path_prefix = Some(false);
        p.forward_headers = Some(true);
        p.request_headers = vec!["X-Request-Id".into()];
        p.response_headers = vec!["X-Runtime".into()];
        assert_eq!(
            flags(&c),
            "--host=app.example.com --host=www.example.com --tls --tls-redirect=false \
             --deploy-timeout=30s --drain-timeout=30s --health-check-path=/health \
             --health-check-interval=2s --health-check-timeout=4s --target-timeout=60s \
             --buffer-responses --max-request-body=1024 --max-response-body=2048 \
             --buffer-memory=4096 --path-prefix=/api --strip-path-prefix=false \
             --forward-headers=true --log-request-header=X-Request-Id \
             --log-response-header=X-Runtime"
        );
    }

    #[test]
    fn proxy_containers_match_kamal_and_caddy_layouts() {
        let mut c = config();
        let t = Templates::builtin().unwrap();
        let run = |c: &crate::config::Config| {
            let ctx = Context {
                config: c,
                templates: &t,
                destination: "production",
                version: "123",
                image_digest: None,
            };
            ProxySteps::new(&ctx)
                .run_command()
                .script()
                .render()
                .unwrap()
        };
        assert_eq!(
            run(&c),
            "docker run --name kamal-proxy --network kamal --detach --restart unless-stopped --volume kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy --volume \"$PWD\"/.kamal/proxy/apps-config:/home/kamal-proxy/.apps-config --publish 80:80 --publish 443:443 --log-opt max-size=10m basecamp/kamal-proxy:v0.9.2 kamal-proxy run"
        );
        c.writ.proxy_driver = ProxyDriver::Caddy;
        assert_eq!(
            run(&c),
            "docker run --name writ-caddy --network kamal --detach --restart unless-stopped --label org.opencontainers.image.title=writ-caddy --volume \"$PWD\"/.kamal/proxy/caddy:/etc/caddy --volume writ-caddy-data:/data --publish 80:80 --publish 443:443 --log-opt max-size=10m caddy:2 caddy run --config /etc/caddy/Caddyfile --adapter caddyfile"
        );
    }
}
