//! Secrets reach the host only on stdin, land in 0600 files, and never appear in the
//! executor's output, the audit log, any logged command line or a failing step's error.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;

use writ_exec::plan::{Stdin, Step, Strategy};
use writ_tests::world::{World, phase, step, text};

const VALUE: &str = "s3cr3t-V@lue 'quoted' $HOME";
const OTHER: &str = "second-secret-9f8e7d";

fn secret_plan(w: &World) -> writ_exec::plan::Plan {
    let mut p = w.plan();
    p.phases = vec![phase(
        "secrets",
        Strategy::Parallel,
        &[(
            "web-1",
            vec![
                Step {
                    command: "umask 077 && cat > secret.txt".into(),
                    stdin: Some(Stdin::Secret("DB_PASSWORD".into())),
                },
                Step {
                    command: "umask 077 && cat > app.env".into(),
                    stdin: Some(Stdin::EnvFile(vec![
                        ("DATABASE_PASSWORD".into(), "DB_PASSWORD".into()),
                        ("API_TOKEN".into(), "API_TOKEN".into()),
                    ])),
                },
                step("test -s secret.txt"),
                // A failing step that echoes the secret on stdout and stderr.
                Step {
                    command: "cat; echo \"leak: $(cat secret.txt)\" >&2; exit 3".into(),
                    stdin: Some(Stdin::Secret("API_TOKEN".into())),
                },
            ],
        )],
    )];
    p
}

fn assert_secret_free(w: &World, out: &std::process::Output) {
    let all = format!(
        "{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(w.audit_file()).unwrap_or_default()
    );
    for v in [VALUE, OTHER] {
        assert!(!all.contains(v), "secret leaked:\n{all}");
        for c in w.host("web-1").commands() {
            assert!(!c.contains(v), "secret in a command line: {c}");
        }
    }
    let host_audit =
        std::fs::read_to_string(w.host("web-1").home.join(".kamal/hey-production-audit.log"))
            .unwrap_or_default();
    assert!(!host_audit.contains(VALUE) && !host_audit.contains(OTHER));
}

#[test]
fn secrets_from_env_are_delivered_on_stdin_to_0600_files_and_masked_everywhere() {
    let w = World::new(1);
    let plan = secret_plan(&w);
    let (path, _) = w.write_signed("p", &plan);
    let out = w.apply(&path, &[], &[("DB_PASSWORD", VALUE), ("API_TOKEN", OTHER)]);
    assert_eq!(out.status.code(), Some(20), "{}", text(&out));

    let home = &w.host("web-1").home;
    assert_eq!(
        std::fs::read_to_string(home.join("secret.txt")).unwrap(),
        VALUE
    );
    let mode = std::fs::metadata(home.join("secret.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(home.join("app.env")).unwrap(),
        format!("DATABASE_PASSWORD={VALUE}\nAPI_TOKEN={OTHER}\n")
    );
    let mode = std::fs::metadata(home.join("app.env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The failing step's report shows masked output.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("leak: [secret:DB_PASSWORD]"),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("[secret:API_TOKEN]"), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exit code 3"));
    assert_secret_free(&w, &out);
}

#[test]
fn secrets_file_and_command_adapter_are_sources_too() {
    let w = World::new(1);
    let mut plan = secret_plan(&w);
    plan.phases[0].hosts[0].steps.truncate(3);
    let (path, _) = w.write_signed("p", &plan);
    let env_file = w.dir.path().join("secrets.env");
    std::fs::write(
        &env_file,
        format!(
            "# deploy secrets\nDB_PASSWORD=\"{}\"\nexport API_TOKEN={OTHER}\n",
            VALUE.replace('$', "\\$")
        ),
    )
    .unwrap();
    let out = w.apply(
        &path,
        &["--secrets-file", env_file.to_str().unwrap()],
        &[("DB_PASSWORD", "from-env-must-not-be-used")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let home = &w.host("web-1").home;
    assert_eq!(
        std::fs::read_to_string(home.join("secret.txt")).unwrap(),
        VALUE
    );
    assert_secret_free(&w, &out);

    // Command adapter: a script printing the value for {name}.
    let mut p2 = plan.clone();
    p2.serial = 2;
    p2.previous = writ_exec::plan::Previous::Plan(writ_exec::plan::plan_id(
        &writ_exec::plan::encode(&plan).unwrap(),
    ));
    let (path2, _) = w.write_signed("p2", &p2);
    let adapter = w.dir.path().join("adapter.sh");
    std::fs::write(&adapter, "#!/bin/sh\nprintf 'adapted-%s\\n' \"$1\"\n").unwrap();
    std::fs::set_permissions(&adapter, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = w.apply(
        &path2,
        &[
            "--secrets-command",
            &format!("{} {{name}}", adapter.display()),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(home.join("secret.txt")).unwrap(),
        "adapted-DB_PASSWORD"
    );
}
