//! Validation of proxy settings: host/hosts, ssl forms, healthcheck, buffering, path
//! prefixes; Kamal's deep merge of a role's proxy over the root one; cross-role TLS rules.

#[allow(
    clippy::wildcard_imports,
    reason = "a part of validate.rs, sharing its helpers and imports"
)]
use super::*;

/// Kamal's deep merge of a role's proxy hash over the root proxy.
pub(super) fn overlay_proxy(base: &raw::Proxy, over: &raw::Proxy) -> raw::Proxy {
    let hc = match (&base.healthcheck, &over.healthcheck) {
        (Some(b), Some(o)) => Some(Sp {
            value: raw::Healthcheck {
                path: o.value.path.clone().or_else(|| b.value.path.clone()),
                interval: o
                    .value
                    .interval
                    .clone()
                    .or_else(|| b.value.interval.clone()),
                timeout: o.value.timeout.clone().or_else(|| b.value.timeout.clone()),
            },
            pos: o.pos,
        }),
        (b, o) => o.clone().or_else(|| b.clone()),
    };
    let buf = match (&base.buffering, &over.buffering) {
        (Some(b), Some(o)) => Some(Sp {
            value: raw::Buffering {
                requests: o
                    .value
                    .requests
                    .clone()
                    .or_else(|| b.value.requests.clone()),
                responses: o
                    .value
                    .responses
                    .clone()
                    .or_else(|| b.value.responses.clone()),
                max_request_body: o
                    .value
                    .max_request_body
                    .clone()
                    .or_else(|| b.value.max_request_body.clone()),
                max_response_body: o
                    .value
                    .max_response_body
                    .clone()
                    .or_else(|| b.value.max_response_body.clone()),
                memory: o.value.memory.clone().or_else(|| b.value.memory.clone()),
            },
            pos: o.pos,
        }),
        (b, o) => o.clone().or_else(|| b.clone()),
    };
    let log = match (&base.logging, &over.logging) {
        (Some(b), Some(o)) => Some(Sp {
            value: raw::ProxyLogging {
                request_headers: o
                    .value
                    .request_headers
                    .clone()
                    .or_else(|| b.value.request_headers.clone()),
                response_headers: o
                    .value
                    .response_headers
                    .clone()
                    .or_else(|| b.value.response_headers.clone()),
            },
            pos: o.pos,
        }),
        (b, o) => o.clone().or_else(|| b.clone()),
    };
    // `host` and `hosts` are one setting: the overlay's choice replaces the base's.
    let (host, hosts) = if over.host.is_some() || over.hosts.is_some() {
        (over.host.clone(), over.hosts.clone())
    } else {
        (base.host.clone(), base.hosts.clone())
    };
    let (path_prefix, path_prefixes) = if over.path_prefix.is_some() || over.path_prefixes.is_some()
    {
        (over.path_prefix.clone(), over.path_prefixes.clone())
    } else {
        (base.path_prefix.clone(), base.path_prefixes.clone())
    };
    raw::Proxy {
        host,
        hosts,
        app_port: over.app_port.clone().or_else(|| base.app_port.clone()),
        ssl: over.ssl.clone().or_else(|| base.ssl.clone()),
        ssl_redirect: over
            .ssl_redirect
            .clone()
            .or_else(|| base.ssl_redirect.clone()),
        forward_headers: over
            .forward_headers
            .clone()
            .or_else(|| base.forward_headers.clone()),
        response_timeout: over
            .response_timeout
            .clone()
            .or_else(|| base.response_timeout.clone()),
        healthcheck: hc,
        buffering: buf,
        path_prefix,
        path_prefixes,
        strip_path_prefix: over
            .strip_path_prefix
            .clone()
            .or_else(|| base.strip_path_prefix.clone()),
        logging: log,
        run: over.run.clone().or_else(|| base.run.clone()),
    }
}

pub(super) fn proxy(p: &raw::Proxy, path: &str) -> R<Proxy> {
    reject(
        &p.run,
        &format!("{path}.run"),
        "`proxy.run` (a custom proxy container) is not supported by writ",
        "remove `proxy.run`",
    )?;
    let mut hosts = Vec::new();
    match (&p.host, &p.hosts) {
        (Some(h), Some(_)) => {
            return Err(problem(
                h.pos,
                format!("{path}.host"),
                "set either `host` or `hosts`, not both",
            ));
        }
        (Some(h), None) => {
            for part in h.value.split(',') {
                hosts.push(proxy_host(
                    &Sp {
                        value: part.trim().to_owned(),
                        pos: h.pos,
                    },
                    &format!("{path}.host"),
                )?);
            }
        }
        (None, Some(list)) => {
            for (i, h) in list.iter().enumerate() {
                hosts.push(proxy_host(h, &format!("{path}.hosts[{i}]"))?);
            }
        }
        (None, None) => {}
    }
    let ssl = match &p.ssl {
        None
        | Some(Sp {
            value: raw::Ssl::Enabled(false),
            ..
        }) => Ssl::Off,
        Some(
            s @ Sp {
                value: raw::Ssl::Enabled(true),
                ..
            },
        ) => {
            if hosts.is_empty() {
                return Err(problem(
                    s.pos,
                    format!("{path}.ssl"),
                    "`ssl: true` needs `host` or `hosts`",
                )
                .hint("add `host: app.example.com` so the certificate has a name"));
            }
            Ssl::Automatic
        }
        Some(
            s @ Sp {
                value: raw::Ssl::Custom(c),
                ..
            },
        ) => {
            if hosts.is_empty() {
                return Err(problem(
                    s.pos,
                    format!("{path}.ssl"),
                    "`ssl` needs `host` or `hosts`",
                ));
            }
            let need = |v: &Option<Sp<String>>, key: &str| -> R<SecretName> {
                match v {
                    Some(v) => secret_name(
                        v,
                        &format!("{path}.ssl.{key}"),
                        "name the secret holding the PEM (e.g. `private_key_pem: TLS_KEY`), never the PEM itself",
                    ),
                    None => Err(problem(
                        s.pos,
                        format!("{path}.ssl"),
                        format!("missing `{key}` (custom certificates need both PEM secrets)"),
                    )),
                }
            };
            Ssl::Custom {
                certificate_pem: need(&c.certificate_pem, "certificate_pem")?,
                private_key_pem: need(&c.private_key_pem, "private_key_pem")?,
            }
        }
    };
    let app_port = p
        .app_port
        .as_ref()
        .map(|v| port(v, &format!("{path}.app_port")))
        .transpose()?
        .unwrap_or(80);
    let mut path_prefixes = Vec::new();
    if let Some(pp) = &p.path_prefix {
        for part in pp.value.split(',') {
            path_prefixes.push(url_path(
                &Sp {
                    value: part.trim().to_owned(),
                    pos: pp.pos,
                },
                &format!("{path}.path_prefix"),
            )?);
        }
    }
    if let Some(list) = &p.path_prefixes {
        if let Some(pp) = &p.path_prefix {
            return Err(problem(
                pp.pos,
                format!("{path}.path_prefix"),
                "set either `path_prefix` or `path_prefixes`, not both",
            ));
        }
        for (i, pp) in list.iter().enumerate() {
            path_prefixes.push(url_path(pp, &format!("{path}.path_prefixes[{i}]"))?);
        }
    }
    let healthcheck = match &p.healthcheck {
        None => Healthcheck::default(),
        Some(h) => Healthcheck {
            path: h
                .value
                .path
                .as_ref()
                .map(|v| url_path(v, &format!("{path}.healthcheck.path")))
                .transpose()?,
            interval: h
                .value
                .interval
                .as_ref()
                .map(|v| seconds(Some(v), &format!("{path}.healthcheck.interval"), 0, 1))
                .transpose()?,
            timeout: h
                .value
                .timeout
                .as_ref()
                .map(|v| seconds(Some(v), &format!("{path}.healthcheck.timeout"), 0, 1))
                .transpose()?,
        },
    };
    let bytes = |v: &Option<Sp<i64>>, key: &str| -> R<Option<u64>> {
        v.as_ref()
            .map(|v| {
                u64::try_from(v.value).map_err(|_| {
                    problem(
                        v.pos,
                        format!("{path}.buffering.{key}"),
                        "must be a number of bytes, at least 0",
                    )
                })
            })
            .transpose()
    };
    let buffering = match &p.buffering {
        None => Buffering::default(),
        Some(b) => Buffering {
            requests: b.value.requests.as_ref().map(|v| v.value),
            responses: b.value.responses.as_ref().map(|v| v.value),
            max_request_body: bytes(&b.value.max_request_body, "max_request_body")?,
            max_response_body: bytes(&b.value.max_response_body, "max_response_body")?,
            memory: bytes(&b.value.memory, "memory")?,
        },
    };
    let header_list = |v: Option<&Vec<Sp<String>>>, key: &str| -> R<Vec<String>> {
        v.map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|h| {
                if !h.value.is_empty()
                    && h.value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    Ok(h.value.clone())
                } else {
                    Err(problem(
                        h.pos,
                        format!("{path}.logging.{key}"),
                        format!("`{}` is not an HTTP header name", h.value.escape_debug()),
                    ))
                }
            })
            .collect()
    };
    let (request_headers, response_headers) = match &p.logging {
        None => (Vec::new(), Vec::new()),
        Some(l) => (
            header_list(l.value.request_headers.as_ref(), "request_headers")?,
            header_list(l.value.response_headers.as_ref(), "response_headers")?,
        ),
    };
    Ok(Proxy {
        hosts,
        app_port,
        ssl,
        ssl_redirect: p.ssl_redirect.as_ref().map(|v| v.value),
        forward_headers: p.forward_headers.as_ref().map(|v| v.value),
        response_timeout: p
            .response_timeout
            .as_ref()
            .map(|v| seconds(Some(v), &format!("{path}.response_timeout"), 0, 1))
            .transpose()?,
        healthcheck,
        buffering,
        path_prefixes,
        strip_path_prefix: p.strip_path_prefix.as_ref().map(|v| v.value),
        request_headers,
        response_headers,
    })
}

pub(super) fn proxy_host(h: &Sp<String>, path: &str) -> R<String> {
    let s = &h.value;
    let body = s.strip_prefix("*.").unwrap_or(s);
    let ok = !body.is_empty()
        && body.len() <= 253
        && body.as_bytes()[0].is_ascii_alphanumeric()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok {
        Ok(s.clone())
    } else {
        Err(problem(
            h.pos,
            path,
            format!("proxy host `{}` is not a DNS name", s.escape_debug()),
        ))
    }
}

pub(super) fn url_path(p: &Sp<String>, path: &str) -> R<String> {
    let ok = p.value.starts_with('/') && p.value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(p.value.clone())
    } else {
        Err(problem(
            p.pos,
            path,
            format!(
                "`{}` is not a URL path (it must start with `/`, printable ASCII)",
                p.value.escape_debug()
            ),
        ))
    }
}

/// Kamal: automatic TLS works on one server per role; and two roles may not share TLS hosts.
pub(super) fn ssl_rules(roles: &[Role], pos: Pos) -> R<()> {
    let mut seen: Vec<(&str, &RoleName)> = Vec::new();
    for r in roles {
        let Some(p) = &r.proxy else { continue };
        if p.ssl == Ssl::Automatic && r.hosts.len() > 1 {
            let mut e = problem(
                pos,
                format!("servers.{}.proxy.ssl", r.name),
                format!(
                    "automatic TLS (`ssl: true`) needs a single server, but role `{}` has {}",
                    r.name,
                    r.hosts.len()
                ),
            )
            .hint("use custom certificates (`ssl: {certificate_pem: …, private_key_pem: …}`) or terminate TLS in a load balancer");
            e.at_key = true;
            return Err(e);
        }
        if p.ssl == Ssl::Off {
            continue;
        }
        for h in &p.hosts {
            if let Some((_, other)) = seen.iter().find(|(x, n)| x == h && *n != &r.name) {
                let mut e = problem(
                    pos,
                    format!("servers.{}.proxy", r.name),
                    format!("roles `{other}` and `{}` both serve TLS for `{h}`", r.name),
                );
                e.at_key = true;
                return Err(e);
            }
            seen.push((h, &r.name));
        }
    }
    Ok(())
}
