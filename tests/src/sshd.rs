//! Real OpenSSH `sshd` instances on loopback, one per simulated host: own host key, own home
//! directory, authorized key from the test, and a `ForceCommand` wrapper that logs every
//! `$SSH_ORIGINAL_COMMAND` exactly (length-prefixed) before running it with the user's login
//! shell, as sshd itself would.
#![allow(
    clippy::must_use_candidate,
    reason = "test harness helpers, results are obvious"
)]

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the OpenSSH server (Debian `openssh-server`).
pub const SSHD: &str = "/usr/sbin/sshd";

/// The SSH user of the simulated hosts: a dedicated account with `/bin/sh` as login shell, so
/// the tests never depend on root's shell start-up files (Debian's bash sources `~/.bashrc`
/// for commands run by sshd, and this machine's runs `pyenv init`, which can block).
pub const TEST_USER: &str = "writtest";

/// Create `name` with login shell `shell` if missing, and make key logins possible (password
/// field `*`: with `UsePAM no` sshd refuses accounts whose password is locked with `!`).
pub fn ensure_user(name: &str, shell: &str) {
    let exists = || {
        Command::new("id")
            .arg(name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !exists() {
        let _ = Command::new("useradd")
            .args(["-M", "-d", "/nonexistent", "-s", shell, name])
            .stderr(Stdio::null())
            .status();
        // A concurrent test may have created it meanwhile; either way it must exist now.
        assert!(
            exists(),
            "cannot create test user {name} (run the tests as root)"
        );
    }
    let ok = Command::new("usermod")
        .args(["-s", shell, "-p", "*", name])
        .status()
        .expect("usermod runs");
    assert!(ok.success(), "usermod {name} failed");
}

/// Generate a key with real `ssh-keygen`; returns the public key line (`type base64`).
pub fn keygen(path: &Path, kind: &str, passphrase: &str) -> String {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", "writ-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
    public_key(&path.with_extension("pub"))
}

/// `type base64` of an OpenSSH public key file (comment dropped).
pub fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("public key readable");
    let mut words = text.split_whitespace();
    format!(
        "{} {}",
        words.next().expect("key type"),
        words.next().expect("key data")
    )
}

/// A free TCP port on 127.0.0.1 (free when asked; sshd binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One running sshd.
pub struct Sshd {
    /// Name of the simulated host.
    pub name: String,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// The host's own directory (config, keys, log).
    pub dir: PathBuf,
    /// The simulated host's home directory (commands run here).
    pub home: PathBuf,
    /// Public host key (`ssh-ed25519 AAAA…`).
    pub host_key: String,
    log: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl Sshd {
    /// Start an sshd for `name` under `root`, accepting `authorized` (public key line) for any
    /// user. `host_key_type` is an ssh-keygen `-t` value.
    pub fn start(root: &Path, name: &str, authorized: &str, host_key_type: &str) -> Self {
        let dir = root.join(name);
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("host dirs");
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        // Another (non-root) test user must reach the wrapper and write log and home.
        for d in [root, &dir] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let key_path = dir.join(format!("host_{host_key_type}"));
        let host_key = keygen(&key_path, host_key_type, "");
        let auth = dir.join("authorized_keys");
        std::fs::write(&auth, format!("{authorized}\n")).expect("authorized_keys");
        std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let log = dir.join("commands.log");
        std::fs::write(&log, "").expect("log");
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let wrapper = dir.join("force-command.sh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n\
                 # Logs the exact command (length-prefixed), then runs it as sshd would.\n\
                 cd '{home}' || exit 125\n\
                 printf '%s\\n%s\\n' \"${{#SSH_ORIGINAL_COMMAND}}\" \"$SSH_ORIGINAL_COMMAND\" >> '{log}'\n\
                 exec \"$SHELL\" -c \"$SSH_ORIGINAL_COMMAND\"\n",
                home = home.display(),
                log = log.display()
            ),
        )
        .expect("wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {key}\n\
                 PidFile none\n\
                 AuthorizedKeysFile {auth}\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PermitRootLogin prohibit-password\n\
                 AllowAgentForwarding no\n\
                 AllowTcpForwarding yes\n\
                 X11Forwarding no\n\
                 PrintMotd no\n\
                 MaxSessions 64\n\
                 MaxStartups 200\n\
                 LogLevel ERROR\n\
                 ForceCommand {wrapper}\n",
                key = key_path.display(),
                auth = auth.display(),
                wrapper = wrapper.display()
            ),
        )
        .expect("sshd_config");
        let mut sshd = Self {
            name: name.to_owned(),
            port,
            dir,
            home,
            host_key,
            log,
            config,
            child: None,
        };
        sshd.spawn();
        sshd
    }

    fn spawn(&mut self) {
        let stderr = std::fs::File::create(self.dir.join("sshd.stderr")).expect("stderr file");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("sshd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 8];
                if s.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "sshd for {} did not come up: {}",
                self.name,
                std::fs::read_to_string(self.dir.join("sshd.stderr")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill sshd and every session process under it (a host crash, as far as SSH goes).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_tree(child.id());
            let _ = child.wait();
        }
    }

    /// Start sshd again on the same port with the same key.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Every command this host received, exactly, in order.
    pub fn commands(&self) -> Vec<String> {
        parse_log(&std::fs::read(&self.log).expect("log readable"))
    }

    /// The plan line for this host: `host NAME USER@127.0.0.1:PORT` plus its pinned key.
    pub fn plan_host(&self, user: &str) -> writ_exec_plan::Host {
        writ_exec_plan::Host {
            name: self.name.clone(),
            user: user.to_owned(),
            address: "127.0.0.1".into(),
            port: self.port,
            via: None,
            keys: vec![writ_exec_plan::HostKey::parse(&self.host_key).expect("host key parses")],
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Re-export of the plan types the harness builds (the executor's wire format).
pub use writ_exec::plan as writ_exec_plan;

/// Parse a wrapper log: `LEN\nBYTES\n` records.
pub fn parse_log(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let nl = bytes[i..]
            .iter()
            .position(|b| *b == b'\n')
            .expect("length line");
        let len: usize = std::str::from_utf8(&bytes[i..i + nl])
            .expect("ascii length")
            .parse()
            .expect("decimal length");
        let start = i + nl + 1;
        let end = start + len;
        assert_eq!(
            bytes.get(end),
            Some(&b'\n'),
            "record separator after {len} bytes"
        );
        out.push(String::from_utf8(bytes[start..end].to_vec()).expect("utf-8 command"));
        i = end + 1;
    }
    out
}

/// SIGKILL `pid` and all its descendants (found through /proc).
pub fn kill_tree(pid: u32) {
    let mut all = vec![pid];
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for child in children_of(p) {
            all.push(child);
            frontier.push(child);
        }
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(all.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(candidate) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after the `(comm)`: state, ppid, …
        let Some(fields) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let parent = fields
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if parent == Some(pid) {
            out.push(candidate);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn log_records_are_length_prefixed() {
        let log = b"3\na\nb\n0\n\n5\nx y z\n";
        assert_eq!(parse_log(log), vec!["a\nb", "", "x y z"]);
    }
}
