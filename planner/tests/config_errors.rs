//! Bad-config fixtures (tests/fixtures/bad): each must fail to load with a config error whose
//! rendered text (location, YAML path, source line with caret, message, hint) is snapshotted.
//! A `NAME.yml` fixture is copied to a temp dir as config/deploy.yml next to the shared
//! bad/known_hosts; its first line may be `# args: -d DEST`. A directory fixture is loaded
//! in place and may hold an `args` file with the same syntax.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bad")
}

fn destination(args: &str) -> Option<String> {
    let args = args.trim();
    args.strip_prefix("-d ").map(|d| d.trim().to_owned())
}

/// Load one fixture and render its error the way `writ` prints it.
fn render(name: &str) -> String {
    let path = fixtures().join(name);
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dest) = if path.is_dir() {
        let args = std::fs::read_to_string(path.join("args")).unwrap_or_default();
        (path.clone(), destination(&args))
    } else {
        let text = std::fs::read_to_string(&path).unwrap();
        let dest = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# args:"))
            .and_then(destination);
        let config = tmp.path().join("config");
        std::fs::create_dir(&config).unwrap();
        std::fs::write(config.join("deploy.yml"), &text).unwrap();
        std::fs::copy(fixtures().join("known_hosts"), config.join("known_hosts")).unwrap();
        (tmp.path().to_path_buf(), dest)
    };
    let Err(err) = writ::config::load(&dir, dest.as_deref()) else {
        panic!("{name}: loaded without error")
    };
    assert!(
        matches!(err, writ::Error::Config { .. }),
        "{name}: not a config error: {err:?}"
    );
    assert_eq!(err.exit_code(), 78, "{name}");
    let mut out = format!("error: {err}");
    if let Some(h) = err.hint() {
        out = format!("{out}\nhint: {h}");
    }
    out
}

fn names() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir() || e.path().extension().is_some_and(|x| x == "yml"))
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    out.sort();
    out
}

#[test]
fn every_bad_fixture_fails_with_a_located_diagnostic() {
    let names = names();
    assert!(names.len() >= 30, "only {} bad fixtures", names.len());
    for name in names {
        let text = render(&name);
        let stem = name.trim_end_matches(".yml");
        insta::assert_snapshot!(stem, text);
    }
}

#[test]
fn values_that_may_be_secrets_are_never_echoed() {
    for (fixture, secret) in [
        ("registry-literal-password.yml", "hunter2"),
        ("registry-password-value-in-list.yml", "hunter2"),
        ("ssl-pem-inline.yml", "SecretMaterial"),
        ("env-secret-value-written.yml", "s3cr3t"),
        ("env-secret-not-a-list.yml", "s3cr3t"),
    ] {
        let text = render(fixture);
        assert!(!text.contains(secret), "{fixture}: {text}");
    }
}

#[test]
fn errors_in_the_overlay_point_at_the_overlay_file() {
    let text = render("overlay-unknown-key");
    assert!(
        text.starts_with("error: config/deploy.staging.yml:4:3: proxy.app_prot: unknown key"),
        "{text}"
    );
    assert!(text.contains("did you mean `app_port`?"), "{text}");
}
