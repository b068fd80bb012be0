//! Validation of env (simple and clear/secret/tags forms, `NAME:ALIAS` secrets), labels and
//! logging, with Kamal's layering rules.

#[allow(
    clippy::wildcard_imports,
    reason = "a part of validate.rs, sharing its helpers and imports"
)]
use super::*;

pub(super) fn root_env(e: Option<&Sp<raw::Env>>) -> R<Env> {
    let Some(e) = e else {
        return Ok(Env::default());
    };
    let base = env_layer(&e.value, "env")?;
    let mut tags = Vec::new();
    if let Some((_, map)) = &e.value.tags {
        for (tag, env) in &map.0 {
            let path = format!("env.tags.{}", tag.value);
            let t: TagName = parse_sp(tag, &path)?;
            if let Some((k, _)) = &env.value.tags {
                return Err(problem(
                    k.pos,
                    format!("{path}.tags"),
                    "`tags` is only allowed in the root `env`",
                ));
            }
            tags.push((t, env_layer(&env.value, &path)?));
        }
    }
    Ok(Env { base, tags })
}

pub(super) fn env_layer(e: &raw::Env, path: &str) -> R<EnvLayer> {
    let complex = e.clear.is_some() || e.secret.is_some() || e.tags.is_some();
    if complex && let Some((k, _)) = e.simple.first() {
        return Err(problem(
            k.pos,
            format!("{path}.{}", k.value),
            format!(
                "unknown key `{}` next to `clear`/`secret`",
                k.value.escape_debug()
            ),
        )
        .hint("with `clear:` or `secret:`, put every variable under one of them"));
    }
    let mut layer = EnvLayer::default();
    let clear_entries = e
        .clear
        .as_ref()
        .map(|(_, m)| m.0.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k, v))
        .chain(e.simple.iter().map(|(k, v)| (k, v)));
    let clear_path = if e.clear.is_some() {
        format!("{path}.clear")
    } else {
        path.to_owned()
    };
    for (k, v) in clear_entries {
        let p = format!("{clear_path}.{}", k.value);
        let name: EnvName = parse_sp(k, &p)?;
        let value = no_nul(
            &Sp {
                value: v.value.0.clone(),
                pos: v.pos,
            },
            &p,
        )?;
        layer.clear.push((name, value));
    }
    if let Some((_, list)) = &e.secret {
        for (i, s) in list.iter().enumerate() {
            let p = format!("{path}.secret[{i}]");
            let entry: SecretEnv = s.value.parse().map_err(|_: String| {
                Box::new(Problem {
                    pos: s.pos,
                    path: p.clone(),
                    message: "expected `NAME` or `NAME:SECRET_NAME` (letters, digits and `_`); \
                              the entry is not shown because it may hold a secret value"
                        .into(),
                    hint: Some(
                        "the container variable NAME gets the value of the secret SECRET_NAME, \
                         which writ-exec resolves at apply time; never write the value here"
                            .into(),
                    ),
                    redact: true,
                    at_key: false,
                })
            })?;
            if layer.secret.iter().any(|x| x.var == entry.var) {
                return Err(problem(
                    s.pos,
                    p,
                    format!("secret variable `{}` is listed twice", entry.var),
                ));
            }
            layer.secret.push(entry);
        }
    }
    if let Some((name, _)) = layer
        .clear
        .iter()
        .find(|(n, _)| layer.secret.iter().any(|s| &s.var == n))
    {
        let pos = e.secret.as_ref().map_or(Pos::default(), |(k, _)| k.pos);
        return Err(problem(
            pos,
            format!("{path}.secret"),
            format!("`{name}` is both a clear and a secret variable"),
        ));
    }
    Ok(layer)
}

pub(super) fn labels(
    l: Option<&raw::OMap<Sp<raw::Stringish>>>,
    path: &str,
) -> R<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (k, v) in l.map(|m| m.0.as_slice()).unwrap_or_default() {
        let p = format!("{path}.{}", k.value);
        if ["service", "role", "destination"].contains(&k.value.as_str()) {
            return Err(
                problem(k.pos, p, format!("label `{}` is reserved", k.value)).hint(
                    "writ sets `service`, `role` and `destination` itself; pick another label name",
                ),
            );
        }
        let ok = !k.value.is_empty() && k.value.bytes().all(|b| b.is_ascii_graphic() && b != b'=');
        if !ok {
            return Err(problem(
                k.pos,
                p,
                format!(
                    "label name `{}` must be printable ASCII without `=` or spaces",
                    k.value.escape_debug()
                ),
            ));
        }
        let value = no_nul(
            &Sp {
                value: v.value.0.clone(),
                pos: v.pos,
            },
            &p,
        )?;
        out.push((k.value.clone(), value));
    }
    Ok(out)
}

pub(super) fn logging(l: Option<&raw::Logging>, path: &str) -> R<Logging> {
    let mut out = Logging::default();
    let Some(l) = l else { return Ok(out) };
    if let Some(d) = &l.driver {
        if !is_simple_name(&d.value) {
            return Err(problem(
                d.pos,
                format!("{path}.driver"),
                format!(
                    "log driver `{}` is not a simple name",
                    d.value.escape_debug()
                ),
            ));
        }
        out.driver = Some(d.value.clone());
    }
    for (k, v) in l
        .options
        .as_ref()
        .map(|m| m.0.as_slice())
        .unwrap_or_default()
    {
        let p = format!("{path}.options.{}", k.value);
        if k.value.is_empty()
            || !k
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(problem(
                k.pos,
                p,
                format!(
                    "log option `{}` is not a simple name",
                    k.value.escape_debug()
                ),
            ));
        }
        out.options.push((
            k.value.clone(),
            no_nul(
                &Sp {
                    value: v.value.0.clone(),
                    pos: v.pos,
                },
                &p,
            )?,
        ));
    }
    Ok(out)
}

/// Role logging: Kamal deep-merges the role's over the root's.
pub(super) fn merge_logging(root: &Logging, role: &Logging) -> Logging {
    let mut out = root.clone();
    if role.driver.is_some() {
        out.driver.clone_from(&role.driver);
    }
    for (k, v) in &role.options {
        match out.options.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1.clone_from(v),
            None => out.options.push((k.clone(), v.clone())),
        }
    }
    out
}
