//! Validation of roles: hosts and tags, docker options and the restart policy, labels, env,
//! logging and the role's effective proxy.

#[allow(
    clippy::wildcard_imports,
    reason = "a part of validate.rs, sharing its helpers and imports"
)]
use super::*;

pub(super) fn role_hosts(hosts: &[Sp<raw::ServerHost>], path: &str) -> R<Vec<RoleHost>> {
    let mut out: Vec<RoleHost> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, h) in hosts.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if let Some(extra) = &h.value.extra {
            return Err(problem(
                extra.pos,
                &p,
                format!(
                    "more than one host in one entry (`{}`)",
                    extra.value.escape_debug()
                ),
            )
            .hint("write each host as its own list item: `- host: tag`"));
        }
        let host_sp = if h.value.host.pos.line == 0 {
            Sp {
                value: h.value.host.value.clone(),
                pos: h.pos,
            }
        } else {
            h.value.host.clone()
        };
        let host: HostName = parse_sp(&host_sp, &p)?;
        if !seen.insert(host.clone()) {
            return Err(problem(
                host_sp.pos,
                &p,
                format!("host `{host}` is listed twice in this role"),
            ));
        }
        let tags = h
            .value
            .tags
            .iter()
            .map(|t| parse_sp::<TagName>(t, &p))
            .collect::<R<Vec<_>>>()?;
        out.push(RoleHost { host, tags });
    }
    Ok(out)
}

pub(super) struct Context<'a> {
    pub(super) root_labels: &'a [(String, String)],
    pub(super) root_logging: &'a Logging,
    pub(super) root_proxy: Option<&'a raw::Proxy>,
    pub(super) stop_timeout: Option<u32>,
}

pub(super) fn role(
    name: RoleName,
    hosts: Vec<RoleHost>,
    hash: Option<&raw::Role>,
    primary: &RoleName,
    cx: &Context<'_>,
    path: &str,
) -> R<Role> {
    let is_primary = &name == primary;
    let mut role = Role {
        name,
        hosts,
        cmd: None,
        options: Vec::new(),
        restart: RestartPolicy::UnlessStopped,
        labels: cx.root_labels.to_vec(),
        env: EnvLayer::default(),
        logging: cx.root_logging.clone(),
        proxy: None,
        stop_timeout: cx.stop_timeout,
    };
    let mut proxy_setting: Option<&raw::RoleProxy> = None;
    if let Some(r) = hash {
        reject(
            &r.asset_path,
            &format!("{path}.asset_path"),
            "asset bridging between versions is not supported by writ",
            "remove `asset_path`",
        )?;
        role.cmd = r
            .cmd
            .as_ref()
            .map(|c| {
                no_nul(
                    &Sp {
                        value: c.value.0.clone(),
                        pos: c.pos,
                    },
                    &format!("{path}.cmd"),
                )
            })
            .transpose()?;
        if let Some(opts) = &r.options {
            let (options, restart) = options(opts, &format!("{path}.options"))?;
            role.options = options;
            role.restart = restart;
        }
        for (k, v) in labels(r.labels.as_ref(), &format!("{path}.labels"))? {
            match role.labels.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => role.labels.push((k, v)),
            }
        }
        if let Some(e) = &r.env {
            if let Some((k, _)) = &e.value.tags {
                return Err(problem(
                    k.pos,
                    format!("{path}.env.tags"),
                    "`tags` is only allowed in the root `env`",
                )
                .hint("move tag-specific env to `env.tags.<tag>` at the top level"));
            }
            role.env = env_layer(&e.value, &format!("{path}.env"))?;
        }
        if let Some(l) = &r.logging {
            role.logging = merge_logging(
                cx.root_logging,
                &logging(Some(&l.value), &format!("{path}.logging"))?,
            );
        }
        if let Some(s) = &r.stop_timeout {
            role.stop_timeout = Some(seconds(Some(s), &format!("{path}.stop_timeout"), 0, 0)?);
        }
        proxy_setting = r.proxy.as_ref().map(|p| &p.value);
    }
    let base = cx.root_proxy.cloned().unwrap_or_default();
    let proxied = match proxy_setting {
        Some(raw::RoleProxy::Enabled(on)) => *on,
        Some(raw::RoleProxy::Hash(_)) => true,
        None => is_primary,
    };
    let effective = match proxy_setting {
        _ if !proxied => None,
        Some(raw::RoleProxy::Hash(h)) => Some(overlay_proxy(&base, h)),
        _ => Some(base),
    };
    role.proxy = effective
        .map(|p| proxy(&p, &format!("{path}.proxy")))
        .transpose()?;
    Ok(role)
}

pub(super) fn options(
    opts: &raw::OMap<Sp<raw::DockerOption>>,
    path: &str,
) -> R<(Vec<(String, DockerOption)>, RestartPolicy)> {
    let mut out = Vec::new();
    let mut restart = RestartPolicy::UnlessStopped;
    for (k, v) in &opts.0 {
        let p = format!("{path}.{}", k.value);
        if k.value == "restart" {
            restart = match &v.value {
                raw::DockerOption::Value(s) => restart_policy(s),
                _ => None,
            }
            .ok_or_else(|| {
                problem(
                    v.pos,
                    &p,
                    "restart policy must be `no`, `always`, `unless-stopped` or `on-failure[:N]`",
                )
                .hint("Kamal's default is `unless-stopped`")
            })?;
            continue;
        }
        let ok = !k.value.is_empty()
            && k.value.as_bytes()[0].is_ascii_alphanumeric()
            && k.value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(problem(
                k.pos,
                &p,
                format!(
                    "docker option `{}` is not a flag name",
                    k.value.escape_debug()
                ),
            )
            .hint("write the flag without dashes, e.g. `memory: 1g` for `--memory 1g`"));
        }
        let value = match &v.value {
            raw::DockerOption::Flag(true) => DockerOption::Flag,
            raw::DockerOption::Flag(false) => {
                return Err(problem(v.pos, &p, "`false` is not a docker option value")
                    .hint("remove the option, or use `true` for a bare flag"));
            }
            raw::DockerOption::Value(s) => DockerOption::Value(no_nul(
                &Sp {
                    value: s.clone(),
                    pos: v.pos,
                },
                &p,
            )?),
            raw::DockerOption::Values(list) => DockerOption::Values(
                list.iter()
                    .map(|s| {
                        no_nul(
                            &Sp {
                                value: s.value.0.clone(),
                                pos: s.pos,
                            },
                            &p,
                        )
                    })
                    .collect::<R<Vec<_>>>()?,
            ),
        };
        out.push((k.value.clone(), value));
    }
    Ok((out, restart))
}

pub(super) fn restart_policy(s: &str) -> Option<RestartPolicy> {
    match s {
        "no" => Some(RestartPolicy::No),
        "always" => Some(RestartPolicy::Always),
        "unless-stopped" => Some(RestartPolicy::UnlessStopped),
        "on-failure" => Some(RestartPolicy::OnFailure(None)),
        _ => {
            let n = s.strip_prefix("on-failure:")?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n.parse().ok().map(|n| RestartPolicy::OnFailure(Some(n)))
        }
    }
}

pub(super) fn volume(v: &Sp<String>, path: &str) -> R<String> {
    let s = no_nul(v, path)?;
    // `source:target[:options]`, or an absolute container path alone (an anonymous volume).
    let ok = (s.contains(':') && !s.starts_with(':')) || s.starts_with('/');
    if !ok {
        return Err(problem(
            v.pos,
            path,
            format!(
                "volume `{}` is not `host_path:container_path[:options]` or `/container_path`",
                s.escape_debug()
            ),
        ));
    }
    Ok(s)
}
