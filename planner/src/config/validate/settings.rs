//! Validation of the top-level sections that stand alone: image, registry (secrets by name
//! only), x-writ, ssh (jump host, refused options) and boot.

#[allow(
    clippy::wildcard_imports,
    reason = "a part of validate.rs, sharing its helpers and imports"
)]
use super::*;

/// A repository name as Docker accepts it, without tag or digest (writ appends those).
pub(super) fn image_name(i: &Sp<String>) -> R<String> {
    let s = &i.value;
    let last = s.rsplit('/').next().unwrap_or(s);
    if s.contains('@') || last.contains(':') {
        return Err(problem(i.pos, "image", format!("image `{}` includes a tag or digest", s.escape_debug()))
            .hint("write the repository only (`acme/hey`); writ adds the version, and --image-digest pins a digest"));
    }
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.split('/').enumerate().all(|(n, part)| {
            !part.is_empty()
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"._-".contains(&b)
                        || (n == 0 && (b == b':' || b.is_ascii_uppercase()))
                })
        });
    if ok {
        Ok(s.clone())
    } else {
        Err(problem(i.pos, "image", format!("image `{}` is not a valid repository name", s.escape_debug()))
            .hint("use lower-case letters, digits, `.`, `_`, `-` and `/` (a registry host may carry `:port`)"))
    }
}

pub(super) fn registry(r: &Sp<raw::Registry>, path: &str) -> R<Registry> {
    let server = r.value.server.as_ref().map(|s| s.value.0.clone());
    if let Some(s) = &server {
        let ok = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
        if !ok {
            let pos = r.value.server.as_ref().map_or(r.pos, |s| s.pos);
            return Err(problem(
                pos,
                format!("{path}.server"),
                format!(
                    "registry server `{}` is not a host[:port]",
                    s.escape_debug()
                ),
            ));
        }
    }
    let username = match &r.value.username {
        None => {
            return Err(problem(r.pos, path, "missing required key `username`")
                .hint("add `username: <user>` (or `username: [SECRET_NAME]`)"));
        }
        Some(u) => match &u.value {
            raw::Credential::Literal(s) => Credential::Literal(s.clone()),
            raw::Credential::Secret(names) => {
                Credential::Secret(secret_list(names, u.pos, &format!("{path}.username"))?)
            }
        },
    };
    let password = match &r.value.password {
        None => {
            return Err(problem(r.pos, path, "missing required key `password`")
                .hint("add `password: [KAMAL_REGISTRY_PASSWORD]`; writ-exec reads the secret at apply time"));
        }
        Some(p) => match &p.value {
            raw::Credential::Literal(_) => {
                return Err(Box::new(Problem {
                    pos: p.pos,
                    path: format!("{path}.password"),
                    message: "the registry password is written in the config; writ only accepts a secret name here".into(),
                    hint: Some("write `password: [KAMAL_REGISTRY_PASSWORD]` and set that secret where writ-exec runs; remove the password from the file and its git history".into()),
                    redact: true,
                    at_key: false,
                }));
            }
            raw::Credential::Secret(names) => {
                secret_list(names, p.pos, &format!("{path}.password"))?
            }
        },
    };
    Ok(Registry {
        server,
        username,
        password,
    })
}

/// A field that must hold a secret *name*. If it does not parse, the value may well be the
/// secret itself, so the error neither quotes it nor shows the source line.
pub(super) fn secret_name(v: &Sp<String>, path: &str, hint: &str) -> R<SecretName> {
    v.value.parse().map_err(|_: String| {
        Box::new(Problem {
            pos: v.pos,
            path: path.to_owned(),
            message: "expected the name of a secret (letters, digits and `_`, not starting with a digit); \
                      the value is not shown because it may be the secret itself"
                .into(),
            hint: Some(hint.to_owned()),
            redact: true,
            at_key: false,
        })
    })
}

pub(super) fn secret_list(names: &[Sp<String>], pos: Pos, path: &str) -> R<SecretName> {
    match names {
        [one] => secret_name(
            one,
            &format!("{path}[0]"),
            "write `[SECRET_NAME]` and set that secret where writ-exec runs",
        ),
        _ => Err(problem(
            pos,
            path,
            format!(
                "expected a list with exactly one secret name, found {} entries",
                names.len()
            ),
        )
        .hint("write `[SECRET_NAME]`")),
    }
}

pub(super) fn writ_settings(w: Option<&Sp<raw::Writ>>) -> R<WritSettings> {
    let mut out = WritSettings::default();
    let Some(w) = w else { return Ok(out) };
    if let Some(p) = &w.value.proxy {
        out.proxy_driver = match p.value.as_str() {
            "kamal-proxy" => ProxyDriver::KamalProxy,
            "caddy" => ProxyDriver::Caddy,
            "none" => ProxyDriver::None,
            other => {
                let choices = ["kamal-proxy", "caddy", "none"];
                let hint = suggest(other, &choices).map_or_else(
                    || "choose `kamal-proxy`, `caddy` or `none`".to_owned(),
                    |s| format!("did you mean `{s}`?"),
                );
                return Err(problem(
                    p.pos,
                    "x-writ.proxy",
                    format!("unknown proxy driver `{}`", other.escape_debug()),
                )
                .hint(hint));
            }
        };
    }
    if let Some(h) = &w.value.host_keys {
        let path = Path::new(&h.value);
        let bad = h.value.is_empty()
            || path.is_absolute()
            || path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        if bad {
            return Err(problem(h.pos, "x-writ.host_keys", format!("`{}` must be a relative path inside the config root", h.value.escape_debug()))
                .hint("the pinned keys are reviewed with the config: keep the file in the repository, e.g. `config/known_hosts`"));
        }
        out.host_keys = path.to_path_buf();
    }
    if let Some(l) = &w.value.plan_lifetime {
        out.plan_lifetime = lifetime(&l.value.0).ok_or_else(|| {
            problem(
                l.pos,
                "x-writ.plan_lifetime",
                format!(
                    "`{}` is not a lifetime between 1m and 366d",
                    l.value.0.escape_debug()
                ),
            )
            .hint("write a number with a unit: `72h`, `3d`, `90m`, `1d12h`")
        })?;
    }
    Ok(out)
}

/// `72h`, `3d`, `90m`, `1d12h`, `30s` → duration, within 1 minute ..= 366 days.
pub(crate) fn lifetime(s: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut num = String::new();
    if s.is_empty() {
        return None;
    }
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            if num.len() > 9 {
                return None;
            }
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !num.is_empty() {
        return None;
    }
    (60..=366 * 86_400)
        .contains(&total)
        .then(|| Duration::from_secs(total))
}

pub(super) fn ssh(s: Option<&Sp<raw::Ssh>>, ctx: &mut Ctx<'_>) -> R<Ssh> {
    let mut out = Ssh::default();
    let Some(s) = s else { return Ok(out) };
    let s = &s.value;
    reject(
        &s.proxy_command,
        "ssh.proxy_command",
        "`ssh.proxy_command` runs a local command to connect and cannot be pinned",
        "use `ssh.proxy: user@jump-host` instead; its key is pinned like any other host's",
    )?;
    if let Some(f) = &s.forward_agent
        && f.value
    {
        return Err(problem(
            f.pos,
            "ssh.forward_agent",
            "agent forwarding is never enabled by writ",
        )
        .hint("remove `forward_agent`; it would expose your ssh-agent to every host"));
    }
    ctx.ignore(
        &s.keys,
        "ssh.keys",
        "writ-exec takes SSH keys from its own --identity flag or ssh-agent",
    );
    ctx.ignore(
        &s.keys_only,
        "ssh.keys_only",
        "writ-exec takes SSH keys from its own --identity flag or ssh-agent",
    );
    ctx.ignore(
        &s.key_data,
        "ssh.key_data",
        "writ-exec takes SSH keys from its own --identity flag or ssh-agent",
    );
    ctx.ignore(
        &s.config,
        "ssh.config",
        "writ-exec never reads OpenSSH config files; everything it uses is in the plan",
    );
    ctx.ignore(
        &s.log_level,
        "ssh.log_level",
        "writ-exec has its own output options",
    );
    if let Some(u) = &s.user {
        out.user = ssh_user(u, "ssh.user")?;
    }
    if let Some(p) = &s.port {
        out.port = port(p, "ssh.port")?;
    }
    if let Some(p) = &s.proxy {
        let (user, rest) = match p.value.split_once('@') {
            Some((u, r)) => (
                ssh_user(
                    &Sp {
                        value: u.to_owned(),
                        pos: p.pos,
                    },
                    "ssh.proxy",
                )?,
                r,
            ),
            None => ("root".to_owned(), p.value.as_str()),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, port)) if !h.contains(':') => {
                let n = port.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    problem(
                        p.pos,
                        "ssh.proxy",
                        format!("jump host port `{}` is not 1..65535", port.escape_debug()),
                    )
                })?;
                (h, n)
            }
            _ => (rest, 22),
        };
        let host: HostName = parse_sp(
            &Sp {
                value: host.to_owned(),
                pos: p.pos,
            },
            "ssh.proxy",
        )?;
        out.proxy = Some(JumpHost { user, host, port });
    }
    Ok(out)
}

pub(super) fn ssh_user(u: &Sp<String>, path: &str) -> R<String> {
    let s = &u.value;
    let ok = !s.is_empty()
        && s.len() <= 32
        && (s.as_bytes()[0].is_ascii_lowercase() || s.as_bytes()[0] == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(s.clone())
    } else {
        Err(problem(
            u.pos,
            path,
            format!("`{}` is not a valid login name", s.escape_debug()),
        )
        .hint("use lower-case letters, digits, `_`, `.` and `-`, starting with a letter or `_`"))
    }
}

pub(super) fn boot(b: Option<&Sp<raw::Boot>>) -> R<Boot> {
    let mut out = Boot::default();
    let Some(b) = b else { return Ok(out) };
    if let Some(l) = &b.value.limit {
        let text = l.value.0.trim();
        let limit = if let Some(pct) = text.strip_suffix('%') {
            pct.parse::<u8>()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .map(BootLimit::Percent)
        } else {
            text.parse::<u32>()
                .ok()
                .and_then(NonZeroU32::new)
                .map(BootLimit::Count)
        };
        out.limit = Some(limit.ok_or_else(|| {
            problem(l.pos, "boot.limit", format!("boot limit `{}` must be a number of hosts (at least 1) or a percentage from 1% to 100%", l.value.0.escape_debug()))
                .hint("e.g. `limit: 2` or `limit: 25%`")
        })?);
    }
    if let Some(w) = &b.value.wait {
        out.wait = seconds(Some(w), "boot.wait", 0, 0)?;
    }
    out.parallel_roles = b.value.parallel_roles.as_ref().is_some_and(|p| p.value);
    Ok(out)
}
