//! `writ hostkeys`: fetch the SSH host keys of every host in the config with `ssh-keyscan`,
//! show their SHA256 fingerprints next to what is pinned, and — only with `--write` — append
//! the missing ones to the pinned keys file. A key that differs from the pinned one is never
//! replaced: that is exactly the attack pinning exists to stop.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the CLI edge prints the table and the problems"
)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use writ::config::HostName;
use writ::hostkeys::{KnownHosts, append_entries, keyscan_command, scan};
use writ_exec::plan::HostKey;

/// Exit code when a host could not be scanned or presents a changed key (docs/exit-codes.md).
pub const EXIT_HOSTKEYS: u8 = 42;

/// Arguments of `writ hostkeys`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  writ hostkeys -d production            # show fingerprints, write nothing
  writ hostkeys -d production --write    # append missing keys, after checking them")]
pub struct Args {
    /// The app's root directory (holding config/deploy.yml), or the deploy.yml file.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    config: PathBuf,
    /// The destination whose hosts to scan (reads config/deploy.<DESTINATION>.yml).
    #[arg(short, long, value_name = "DESTINATION")]
    destination: Option<String>,
    /// Append keys of hosts that have none to the pinned keys file.
    #[arg(long)]
    write: bool,
    /// Seconds to wait for each host.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    timeout: u32,
}

fn fingerprints(keys: &[HostKey]) -> String {
    keys.iter()
        .map(|k| k.fingerprint().unwrap_or_else(|e| e))
        .collect::<Vec<_>>()
        .join(", ")
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "every subcommand's run takes its Args by value"
)]
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = writ::config::load_unpinned(&args.config, args.destination.as_deref())?;
    let keys_path = config.root.join(&config.writ.host_keys);
    let keys_name = config.writ.host_keys.display().to_string();
    let existing = match std::fs::read_to_string(&keys_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", keys_path.display())),
    };
    let pinned = KnownHosts::parse(&existing)
        .map_err(|e| anyhow::anyhow!("{keys_name}:{}:{}: {}", e.line, e.column, e.message))?;

    let mut hosts: Vec<(HostName, u16)> = config
        .all_hosts()
        .into_iter()
        .map(|h| (h.clone(), config.ssh.port))
        .collect();
    if let Some(j) = &config.ssh.proxy {
        hosts.push((j.host.clone(), j.port));
    }

    let mut new_entries: Vec<(String, HostKey)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    println!("{:<32} {:>5}  {:<10} FINGERPRINT", "HOST", "PORT", "STATUS");
    for (host, port) in &hosts {
        let have = pinned.keys_for(host, *port);
        let (status, shown) = match scan(host, *port, args.timeout) {
            Err(e) => {
                problems.push(format!(
                    "{e}; if the host is only reachable through the jump host, run `{}` there",
                    keyscan_command(host, *port)
                ));
                (
                    if have.is_empty() { "UNKNOWN" } else { "pinned" },
                    fingerprints(&have),
                )
            }
            Ok(found) if have.is_empty() => {
                new_entries.extend(
                    found
                        .iter()
                        .map(|k| (host.known_hosts_name(*port), k.clone())),
                );
                ("new", fingerprints(&found))
            }
            Ok(found) if found.iter().all(|k| have.contains(k)) => ("pinned", fingerprints(&found)),
            Ok(found) => {
                problems.push(format!(
                    "{}: the host now presents {} but {keys_name} pins {}. Do not replace it until you know why \
                     (reinstalled host, or someone in the middle); if the change is legitimate, remove the old \
                     line by hand and run again",
                    host.known_hosts_name(*port),
                    fingerprints(&found),
                    fingerprints(&have)
                ));
                ("CHANGED", fingerprints(&found))
            }
        };
        println!("{:<32} {port:>5}  {status:<10} {shown}", host.as_str());
    }

    if !new_entries.is_empty() {
        if args.write {
            let text = append_entries(&existing, &new_entries);
            let dir = keys_path
                .parent()
                .map_or_else(|| PathBuf::from("."), PathBuf::from);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)
                .with_context(|| format!("writing {}", keys_path.display()))?;
            std::io::Write::write_all(&mut tmp, text.as_bytes())?;
            tmp.persist(&keys_path)
                .with_context(|| format!("writing {}", keys_path.display()))?;
            println!(
                "\nwrote {} key(s) to {keys_name}. Before committing, compare each fingerprint above with the \
                 host's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console, or your cloud \
                 provider's instance details).",
                new_entries.len()
            );
        } else {
            println!(
                "\n{} new key(s) not written. Check the fingerprints out of band (the host's console: \
                 `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`, or your cloud provider), then run again \
                 with --write.",
                new_entries.len()
            );
        }
    }
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for p in &problems {
        eprintln!("error: {p}");
    }
    Ok(ExitCode::from(EXIT_HOSTKEYS))
}
