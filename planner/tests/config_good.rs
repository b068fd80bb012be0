//! Good-config fixtures (tests/fixtures/good/<name>/config/…): each loads for every destination
//! it defines, and its validated model is snapshotted. Plus behaviour the plan builders rely on:
//! role order, effective env, boot groups, pinned keys, ignored keys, the source digest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use writ::config::{self, BootLimit, Config, ProxyDriver, Ssl};

fn good(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/good")
        .join(name)
}

fn destinations(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join("config"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            Some(n.strip_prefix("deploy.")?.strip_suffix(".yml")?.to_owned())
        })
        .collect();
    out.sort();
    out
}

/// A stable text summary of a loaded config (the model without machine paths).
fn summary(c: &Config) -> String {
    let mut c = c.clone();
    c.root = PathBuf::from("<root>");
    let mut out = String::new();
    writeln!(out, "source_digest: {}", c.source_digest()).unwrap();
    writeln!(out, "files: {:?}", c.files).unwrap();
    write!(out, "{c:#?}").unwrap();
    out
}

#[test]
fn every_good_fixture_loads_for_each_destination() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/good");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 12, "only {} good fixtures", names.len());
    for name in names {
        let dir = root.join(&name);
        let dests = destinations(&dir);
        let mut runs: Vec<Option<String>> = dests.iter().cloned().map(Some).collect();
        let base = config::load(&dir, None);
        match base {
            Ok(c) => {
                assert!(!c.require_destination, "{name}");
                runs.insert(0, None);
            }
            Err(e) => assert!(!dests.is_empty(), "{name}: {e}"),
        }
        for dest in runs {
            let c = config::load(&dir, dest.as_deref())
                .unwrap_or_else(|e| panic!("{name} -d {dest:?}: {e}"));
            for h in c.all_hosts() {
                assert!(!c.host_keys[h].is_empty(), "{name}: {h} has no key");
            }
            let snap = match &dest {
                Some(d) => format!("{name}.{d}"),
                None => name.clone(),
            };
            insta::assert_snapshot!(snap, summary(&c));
        }
    }
}

#[test]
fn roles_put_the_primary_first_then_sort_by_name() {
    let c = config::load(&good("boot-limit-percent"), None).unwrap();
    let names: Vec<&str> = c.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["web", "workers"]);
    let c = config::load(&good("proxy-none-workers"), None).unwrap();
    assert_eq!(c.roles[0].name.as_str(), "workers");
    assert!(c.roles[0].proxy.is_none());
    assert_eq!(c.writ.proxy_driver, ProxyDriver::None);
}

#[test]
fn effective_env_layers_root_role_and_host_tags() {
    let c = config::load(&good("roles-with-tags"), None).unwrap();
    let web = c.role("web").unwrap();
    let us_host = &web.hosts[2];
    assert_eq!(us_host.host.as_str(), "10.0.1.3");
    let env = c.env_for(web, us_host);
    let clear: Vec<String> = env.clear.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(clear, ["RAILS_ENV=production", "REGION=us-east-1"]);
    let secret: Vec<String> = env.secret.iter().map(ToString::to_string).collect();
    assert_eq!(secret, ["DATABASE_URL", "STRIPE_KEY:STRIPE_KEY_US"]);
    let workers = c.role("workers").unwrap();
    let env = c.env_for(workers, &workers.hosts[0]);
    let clear: Vec<String> = env.clear.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        clear,
        ["RAILS_ENV=production", "QUEUE=default", "REGION=eu-west-1"]
    );
    assert!(
        workers.proxy.is_none(),
        "non-primary roles are not proxied by default"
    );
    assert!(
        web.proxy.is_some(),
        "the primary role is proxied by default"
    );
}

#[test]
fn destination_overlays_merge_maps_and_replace_lists() {
    let dir = good("destinations");
    let prod = config::load(&dir, Some("production")).unwrap();
    let hosts: Vec<&str> = prod.app_hosts().iter().map(|h| h.as_str()).collect();
    assert_eq!(hosts, ["app-1.example.com", "app-2.example.com"]);
    let clear: Vec<String> = prod
        .env
        .base
        .clear
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(clear, ["LOG_LEVEL=info", "FEATURE_X=true"]);
    let proxy = prod.proxy.as_ref().unwrap();
    assert_eq!(proxy.app_port, 8080, "base keys survive the overlay");
    assert_eq!(proxy.healthcheck.path.as_deref(), Some("/up"));
    assert_eq!(prod.plan_lifetime().as_secs(), 72 * 3600);
    let staging = config::load(&dir, Some("staging")).unwrap();
    assert_eq!(staging.plan_lifetime().as_secs(), 24 * 3600);
    assert_eq!(staging.destination().unwrap().as_str(), "staging");
    assert_ne!(prod.source_digest(), staging.source_digest());
    assert_eq!(
        staging.files,
        [
            PathBuf::from("config/deploy.yml"),
            "config/deploy.staging.yml".into(),
            "config/known_hosts".into()
        ]
    );
}

#[test]
fn boot_limits_as_count_and_percentage() {
    let c = config::load(&good("boot-limit-count"), None).unwrap();
    assert_eq!(c.boot.limit.unwrap().group_size(c.app_hosts().len()), 2);
    assert_eq!(c.boot.wait, 5);
    let c = config::load(&good("boot-limit-percent"), None).unwrap();
    assert_eq!(c.boot.limit, Some(BootLimit::Percent(25)));
    assert_eq!(c.boot.limit.unwrap().group_size(c.app_hosts().len()), 2);
}

#[test]
fn jump_host_key_is_pinned_at_its_own_port() {
    let c = config::load(&good("jump-host"), None).unwrap();
    let jump = c.ssh.proxy.as_ref().unwrap();
    assert_eq!(
        (jump.user.as_str(), jump.host.as_str(), jump.port),
        ("jump", "bastion.example.com", 2200)
    );
    assert_eq!(c.ssh.port, 2222);
    assert_eq!(c.host_keys[&jump.host].len(), 1);
}

#[test]
fn ssl_forms_are_modelled() {
    let c = config::load(&good("ssl"), None).unwrap();
    assert_eq!(c.roles[0].proxy.as_ref().unwrap().ssl, Ssl::Automatic);
    let c = config::load(&good("ssl-custom-certificate"), None).unwrap();
    let Ssl::Custom {
        certificate_pem,
        private_key_pem,
    } = &c.roles[0].proxy.as_ref().unwrap().ssl
    else {
        panic!("custom ssl expected");
    };
    assert_eq!(certificate_pem.as_str(), "TLS_CERTIFICATE_PEM");
    assert_eq!(private_key_pem.as_str(), "TLS_PRIVATE_KEY_PEM");
}

#[test]
fn accessories_resolve_their_hosts() {
    let c = config::load(&good("accessories"), None).unwrap();
    let db = c.accessory("db").unwrap();
    assert_eq!(db.service, "blog-db");
    let hosts: Vec<&str> = db
        .hosts
        .iter()
        .map(writ::config::HostName::as_str)
        .collect();
    assert_eq!(hosts, ["10.0.3.10"]);
    let redis = c.accessory("redis").unwrap();
    let hosts: Vec<&str> = redis
        .hosts
        .iter()
        .map(writ::config::HostName::as_str)
        .collect();
    assert_eq!(hosts, ["10.0.3.3"]);
    assert!(c.all_hosts().iter().any(|h| h.as_str() == "10.0.3.10"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn source_digest_is_stable_and_sees_one_character() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&good("single-host"), tmp.path());
    let a = config::load(tmp.path(), None).unwrap();
    let b = config::load(&good("single-host"), None).unwrap();
    assert_eq!(
        a.source_digest(),
        b.source_digest(),
        "the digest does not depend on where the files are"
    );
    let path = tmp.path().join("config/deploy.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("8080", "8081")).unwrap();
    let c = config::load(tmp.path(), None).unwrap();
    assert_ne!(a.source_digest(), c.source_digest());
    // The known_hosts file is part of the digest too.
    let kh = tmp.path().join("config/known_hosts");
    let mut keys = std::fs::read_to_string(&kh).unwrap();
    keys.push_str("# reviewed\n");
    std::fs::write(&kh, keys).unwrap();
    assert_ne!(
        c.source_digest(),
        config::load(tmp.path(), None).unwrap().source_digest()
    );
}

#[test]
fn ignored_kamal_keys_are_reported_not_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&good("single-host"), tmp.path());
    let path = tmp.path().join("config/deploy.yml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(
        "builder:\n  arch: amd64\nssh:\n  keys: [~/.ssh/id_ed25519]\nx-anchors:\n  a: 1\n",
    );
    std::fs::write(&path, text).unwrap();
    let c = config::load(tmp.path(), None).unwrap();
    let ignored: Vec<String> = c
        .ignored
        .iter()
        .map(|i| format!("{} {}", i.location, i.path))
        .collect();
    assert_eq!(
        ignored,
        [
            "config/deploy.yml:15:1 builder",
            "config/deploy.yml:18:3 ssh.keys"
        ]
    );
}

#[test]
fn load_accepts_the_root_the_config_dir_or_the_file() {
    let dir = good("single-host");
    let a = config::load(&dir, None).unwrap();
    let b = config::load(&dir.join("config"), None).unwrap();
    let c = config::load(&dir.join("config/deploy.yml"), None).unwrap();
    assert_eq!(a.source_digest(), b.source_digest());
    assert_eq!(a.source_digest(), c.source_digest());
}

#[test]
fn unpinned_load_allows_missing_keys() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&good("single-host"), tmp.path());
    std::fs::remove_file(tmp.path().join("config/known_hosts")).unwrap();
    assert!(config::load(tmp.path(), None).is_err());
    let c = config::load_unpinned(tmp.path(), None).unwrap();
    assert!(c.host_keys.is_empty());
}

#[test]
fn x_anchors_and_merge_keys_work_like_kamal() {
    let text = "\
x-common-env: &common
  RAILS_ENV: production
  LOG_LEVEL: info
service: hey
image: acme/hey
servers:
  web:
    hosts: [web-1]
    env:
      clear:
        <<: *common
        LOG_LEVEL: debug
";
    let c = config::from_str_unpinned(text).unwrap();
    let clear: Vec<String> = c.roles[0]
        .env
        .clear
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert!(
        clear.contains(&"RAILS_ENV=production".to_owned()),
        "{clear:?}"
    );
    assert!(clear.contains(&"LOG_LEVEL=debug".to_owned()), "{clear:?}");
}

#[test]
fn ten_thousand_hosts_with_tags_and_an_accessory_on_every_host() {
    let mut text = String::from("service: big\nimage: acme/big\nservers:\n  web:\n");
    let host = |i: usize| format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
    for i in 0..8000 {
        let _ = writeln!(text, "    - {}", host(i));
    }
    text.push_str("  workers:\n    hosts:\n");
    for i in 8000..10_000 {
        let _ = writeln!(text, "      - {}: [t{}]", host(i), i % 5);
    }
    text.push_str("accessories:\n  redis:\n    image: redis\n    roles: [web, workers]\n");
    let start = std::time::Instant::now();
    let c = config::from_str_unpinned(&text).unwrap();
    eprintln!("loaded 10,000 hosts in {:?}", start.elapsed());
    assert_eq!(c.app_hosts().len(), 10_000);
    assert_eq!(c.all_hosts().len(), 10_000);
    assert_eq!(c.accessory("redis").unwrap().hosts.len(), 10_000);
}
