//! Validation of accessories: exactly one host selector resolved to hosts, ports, env,
//! directories and files, options, registry and proxy.

#[allow(
    clippy::wildcard_imports,
    reason = "a part of validate.rs, sharing its helpers and imports"
)]
use super::*;

pub(super) fn accessory(
    name: &Sp<String>,
    acc: &Sp<raw::Accessory>,
    service: &ServiceName,
    roles: &[Role],
) -> R<Accessory> {
    let path = format!("accessories.{}", name.value);
    let spec = &acc.value;
    let acc_name: AccessoryName = parse_sp(name, &path)?;
    let image = match &spec.image {
        Some(i) => {
            if i.value.is_empty() || !i.value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(problem(
                    i.pos,
                    format!("{path}.image"),
                    "image must be printable ASCII without spaces",
                ));
            }
            i.value.clone()
        }
        None => {
            return Err(problem(acc.pos, &path, "missing required key `image`")
                .hint("add `image: mysql:8.0` (any image reference)"));
        }
    };
    let acc_service = match &spec.service {
        Some(s) => {
            if !is_simple_name(&s.value) {
                return Err(problem(
                    s.pos,
                    format!("{path}.service"),
                    format!(
                        "service `{}` is not a valid container name",
                        s.value.escape_debug()
                    ),
                ));
            }
            s.value.clone()
        }
        None => format!("{service}-{acc_name}"),
    };
    // Exactly one host selector.
    let selectors: Vec<(&str, Pos)> = [
        ("host", spec.host.as_ref().map(|x| x.pos)),
        (
            "hosts",
            spec.hosts
                .as_ref()
                .and_then(|x| x.first())
                .map(|x| x.pos)
                .or(spec.hosts.as_ref().map(|_| acc.pos)),
        ),
        ("role", spec.role.as_ref().map(|x| x.pos)),
        (
            "roles",
            spec.roles
                .as_ref()
                .and_then(|x| x.first())
                .map(|x| x.pos)
                .or(spec.roles.as_ref().map(|_| acc.pos)),
        ),
        ("tag", spec.tag.as_ref().map(|x| x.pos)),
        (
            "tags",
            spec.tags
                .as_ref()
                .and_then(|x| x.first())
                .map(|x| x.pos)
                .or(spec.tags.as_ref().map(|_| acc.pos)),
        ),
    ]
    .into_iter()
    .filter_map(|(k, p)| p.map(|p| (k, p)))
    .collect();
    match selectors.as_slice() {
        [] => {
            return Err(problem(
                acc.pos,
                &path,
                format!("accessory `{acc_name}` has no host selector"),
            )
            .hint("set exactly one of `host`, `hosts`, `role`, `roles`, `tag`, `tags`"));
        }
        [_] => {}
        [(a1, _), (a2, p2), ..] => {
            return Err(problem(
                *p2,
                format!("{path}.{a2}"),
                format!("accessory `{acc_name}` sets both `{a1}` and `{a2}`"),
            )
            .hint("set exactly one of `host`, `hosts`, `role`, `roles`, `tag`, `tags`"));
        }
    }
    let one_or_list =
        |one: &Option<Sp<String>>, many: &Option<Vec<Sp<String>>>| -> Vec<Sp<String>> {
            one.iter()
                .cloned()
                .chain(many.iter().flatten().cloned())
                .collect()
        };
    let mut hosts: Vec<HostName> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |hosts: &mut Vec<HostName>, h: &HostName| {
        if seen.insert(h.clone()) {
            hosts.push(h.clone());
        }
    };
    let selector = if spec.host.is_some() || spec.hosts.is_some() {
        let list = one_or_list(&spec.host, &spec.hosts);
        let mut names = Vec::new();
        for h in &list {
            let hn: HostName = parse_sp(h, &format!("{path}.host"))?;
            push(&mut hosts, &hn);
            names.push(hn);
        }
        HostSelector::Hosts(names)
    } else if spec.role.is_some() || spec.roles.is_some() {
        let list = one_or_list(&spec.role, &spec.roles);
        let mut names = Vec::new();
        for r in &list {
            let rn: RoleName = parse_sp(r, &format!("{path}.role"))?;
            let Some(role) = roles.iter().find(|x| x.name == rn) else {
                let known: Vec<&str> = roles.iter().map(|x| x.name.as_str()).collect();
                let hint = suggest(rn.as_str(), &known).map_or_else(
                    || format!("roles defined: {}", known.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
                return Err(problem(
                    r.pos,
                    format!("{path}.role"),
                    format!("role `{rn}` is not defined in `servers`"),
                )
                .hint(hint));
            };
            for h in &role.hosts {
                push(&mut hosts, &h.host);
            }
            names.push(rn);
        }
        HostSelector::Roles(names)
    } else {
        let list = one_or_list(&spec.tag, &spec.tags);
        let mut names = Vec::new();
        for t in &list {
            let tn: TagName = parse_sp(t, &format!("{path}.tag"))?;
            let before = hosts.len();
            for h in roles
                .iter()
                .flat_map(|r| &r.hosts)
                .filter(|h| h.tags.contains(&tn))
            {
                push(&mut hosts, &h.host);
            }
            if hosts.len() == before
                && !roles
                    .iter()
                    .flat_map(|r| &r.hosts)
                    .any(|h| h.tags.contains(&tn))
            {
                return Err(problem(
                    t.pos,
                    format!("{path}.tag"),
                    format!("no host has the tag `{tn}`"),
                ));
            }
            names.push(tn);
        }
        HostSelector::Tags(names)
    };
    let port = spec
        .port
        .as_ref()
        .map(|p| {
            accessory_port(
                &Sp {
                    value: p.value.0.clone(),
                    pos: p.pos,
                },
                &format!("{path}.port"),
            )
        })
        .transpose()?;
    let env = match &spec.env {
        Some(e) => {
            if let Some((k, _)) = &e.value.tags {
                return Err(problem(
                    k.pos,
                    format!("{path}.env.tags"),
                    "`tags` is only allowed in the root `env`",
                ));
            }
            env_layer(&e.value, &format!("{path}.env"))?
        }
        None => EnvLayer::default(),
    };
    let volumes = spec
        .volumes
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| volume(v, &format!("{path}.volumes[{i}]")))
        .collect::<R<Vec<_>>>()?;
    let mut directories = Vec::new();
    for (i, d) in spec.directories.iter().flatten().enumerate() {
        let p = format!("{path}.directories[{i}]");
        let text = match &d.value {
            raw::PathEntry::Short(s) => s.clone(),
            raw::PathEntry::Long(h) => match (&h.local, &h.remote) {
                (Some(l), Some(r)) => format!("{}:{}", l.value, r.value),
                _ => return Err(problem(d.pos, p, "a directory needs `local` and `remote`")),
            },
        };
        directories.push(volume(
            &Sp {
                value: text,
                pos: d.pos,
            },
            &p,
        )?);
    }
    let mut files = Vec::new();
    for (i, f) in spec.files.iter().flatten().enumerate() {
        let p = format!("{path}.files[{i}]");
        let (local, remote, mode, owner) = match &f.value {
            raw::PathEntry::Short(s) => {
                let mut parts = s.splitn(3, ':');
                let (Some(l), Some(r)) = (parts.next(), parts.next()) else {
                    return Err(problem(
                        f.pos,
                        p,
                        format!("file `{}` is not `local:remote`", s.escape_debug()),
                    ));
                };
                (l.to_owned(), r.to_owned(), None, None)
            }
            raw::PathEntry::Long(h) => match (&h.local, &h.remote) {
                (Some(l), Some(r)) => (
                    l.value.clone(),
                    r.value.clone(),
                    h.mode.as_ref().map(|m| m.value.0.clone()),
                    h.owner.as_ref().map(|o| o.value.0.clone()),
                ),
                _ => return Err(problem(f.pos, p, "a file needs `local` and `remote`")),
            },
        };
        let local_path = PathBuf::from(&local);
        if local.is_empty()
            || local_path.is_absolute()
            || local_path
                .components()
                .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(problem(
                f.pos,
                p,
                format!(
                    "local file `{}` must be a relative path inside the config root",
                    local.escape_debug()
                ),
            ));
        }
        if local_path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("erb"))
        {
            return Err(problem(f.pos, p, "ERB templates are not supported")
                .hint("commit the rendered file; put secret values in `env.secret`"));
        }
        if !remote.starts_with('/') || remote.contains('\0') {
            return Err(problem(
                f.pos,
                p,
                format!("remote path `{}` must be absolute", remote.escape_debug()),
            ));
        }
        if let Some(m) = &mode
            && (!(m.len() == 3 || m.len() == 4) || !m.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        {
            return Err(problem(
                f.pos,
                p,
                format!("mode `{m}` is not octal like `0644`"),
            ));
        }
        files.push(AccessoryFile {
            local: local_path,
            remote,
            mode,
            owner,
        });
    }
    let labels = labels(spec.labels.as_ref(), &format!("{path}.labels"))?;
    let (options, restart) = match &spec.options {
        Some(o) => options(o, &format!("{path}.options"))?,
        None => (Vec::new(), RestartPolicy::UnlessStopped),
    };
    let network = match &spec.network {
        Some(n) => {
            if !is_simple_name(&n.value) {
                return Err(problem(
                    n.pos,
                    format!("{path}.network"),
                    format!("network `{}` is not a simple name", n.value.escape_debug()),
                ));
            }
            n.value.clone()
        }
        None => "kamal".to_owned(),
    };
    let registry = spec
        .registry
        .as_ref()
        .map(|r| registry(r, &format!("{path}.registry")))
        .transpose()?;
    let proxy = spec
        .proxy
        .as_ref()
        .map(|p| proxy(&p.value, &format!("{path}.proxy")))
        .transpose()?;
    Ok(Accessory {
        name: acc_name,
        service: acc_service,
        image,
        selector,
        hosts,
        cmd: spec
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
            .transpose()?,
        port,
        env,
        volumes,
        directories,
        files,
        labels,
        options,
        restart,
        network,
        registry,
        proxy,
    })
}

/// `3306`, `3306:3306`, `127.0.0.1:3306:3306` (optionally `/tcp` or `/udp`).
pub(super) fn accessory_port(p: &Sp<String>, path: &str) -> R<String> {
    let s = &p.value;
    let body = s
        .strip_suffix("/tcp")
        .or_else(|| s.strip_suffix("/udp"))
        .unwrap_or(s);
    let parts: Vec<&str> = body.split(':').collect();
    let is_port = |x: &str| x.parse::<u16>().is_ok_and(|n| n > 0);
    let ok = match parts.as_slice() {
        [a] => is_port(a),
        [a, b] => is_port(a) && is_port(b),
        [ip, a, b] => ip.parse::<std::net::Ipv4Addr>().is_ok() && is_port(a) && is_port(b),
        _ => false,
    };
    if ok {
        Ok(s.clone())
    } else {
        Err(problem(
            p.pos,
            path,
            format!(
                "port `{}` is not `PORT`, `HOST_PORT:PORT` or `IP:HOST_PORT:PORT`",
                s.escape_debug()
            ),
        ))
    }
}
