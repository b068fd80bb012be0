//! SSH transport on russh: one connection per host, the host key compared byte for byte
//! against the keys pinned in the plan before authentication, key-file or ssh-agent
//! authentication (never forwarded), an optional jump host (itself pinned), curve25519 key
//! exchange, TCP_NODELAY, keepalive, connect and per-command timeouts.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, kex};
use zeroize::Zeroizing;

use crate::Error;
use crate::plan::Host;

/// Largest amount of stdout (and of stderr) kept per command; older bytes are dropped.
pub const MAX_CAPTURE: usize = 4 * 1024 * 1024;

/// How to authenticate and how long to wait.
#[derive(Clone)]
pub struct SshOptions {
    /// Private key to offer, already decrypted.
    pub identity: Option<Arc<PrivateKey>>,
    /// Path of the identity, for messages.
    pub identity_path: Option<PathBuf>,
    /// ssh-agent socket to ask for keys (`SSH_AUTH_SOCK`).
    pub agent: Option<PathBuf>,
    /// Limit for TCP connect + key exchange + authentication.
    pub connect_timeout: Duration,
    /// Interval of SSH keepalives; three unanswered ones drop the connection.
    pub keepalive: Duration,
}

impl SshOptions {
    /// Load an OpenSSH private key; `passphrase` is needed if it is encrypted.
    pub fn load_identity(
        path: &std::path::Path,
        passphrase: Option<&Zeroizing<String>>,
    ) -> Result<PrivateKey, Error> {
        let err = |message: String| Error::Identity {
            path: path.to_owned(),
            message,
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        russh::keys::decode_secret_key(&text, passphrase.map(|p| p.as_str())).map_err(|e| match e {
            russh::keys::Error::KeyIsEncrypted => err(
                "the key is encrypted: give the passphrase (prompt on a terminal, or WRIT_IDENTITY_PASSPHRASE)"
                    .into(),
            ),
            e => err(e.to_string()),
        })
    }

    /// True if the identity file is passphrase-protected.
    #[must_use]
    pub fn identity_is_encrypted(path: &std::path::Path) -> bool {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| russh::keys::decode_secret_key(&t, None).err())
            .is_some_and(|e| matches!(e, russh::keys::Error::KeyIsEncrypted))
    }
}

/// What a command did.
#[derive(Debug, Default)]
pub struct ExecOutput {
    /// Exit status, if the host sent one.
    pub exit: Option<u32>,
    /// Signal name, if the command was killed.
    pub signal: Option<String>,
    /// Captured stdout (the last [`MAX_CAPTURE`] bytes).
    pub stdout: Vec<u8>,
    /// Captured stderr (the last [`MAX_CAPTURE`] bytes).
    pub stderr: Vec<u8>,
    /// Set when the command ran past its time limit (it was sent SIGTERM and abandoned).
    pub timed_out: Option<Duration>,
}

impl ExecOutput {
    /// Exit status 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.exit == Some(0)
    }

    /// `exit code N` / `signal S` / `no exit status`.
    #[must_use]
    pub fn status(&self) -> String {
        if let Some(t) = self.timed_out {
            return format!("timeout after {} s", t.as_secs());
        }
        match (&self.exit, &self.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("signal {s}"),
            (None, None) => "no exit status (connection lost)".into(),
        }
    }
}

/// Client side of the pinned-key check; remembers what the host presented.
struct Pinned {
    keys: Vec<PublicKey>,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            if let Ok(mut s) = self.seen.lock() {
                *s = Some("a host certificate (not supported; pin the plain key)".into());
            }
            return Ok(false);
        };
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(key.fingerprint(HashAlg::Sha256).to_string());
        }
        Ok(self.keys.iter().any(|k| k.key_data() == key.key_data()))
    }
}

/// An authenticated connection to one plan host.
pub struct Connection {
    host: String,
    handle: Handle<Pinned>,
    seen: String,
    // Keeps the jump host's connection (and so the tunnel) alive.
    jump: Option<Box<Connection>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("via", &self.jump.as_ref().map(|j| j.host.as_str()))
            .finish_non_exhaustive()
    }
}

fn pinned_keys(host: &Host) -> Result<Vec<PublicKey>, Error> {
    host.keys
        .iter()
        .map(|k| {
            k.public_key().map_err(|message| Error::Protocol {
                host: host.name.clone(),
                message,
            })
        })
        .collect()
}

fn config_for(keys: &[PublicKey], opts: &SshOptions) -> Arc<client::Config> {
    let mut algorithms = Vec::new();
    for k in keys {
        let a = k.algorithm();
        if a.clone().is_rsa() {
            for hash in [Some(HashAlg::Sha512), Some(HashAlg::Sha256)] {
                algorithms.push(russh::keys::Algorithm::Rsa { hash });
            }
        } else if !algorithms.contains(&a) {
            algorithms.push(a);
        }
    }
    let preferred = russh::Preferred {
        // curve25519 first: OpenSSH's default sntrup761 hybrid costs ~75 ms CPU per connection.
        kex: Cow::Owned(vec![
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::MLKEM768X25519_SHA256,
            kex::DH_GEX_SHA256,
            kex::DH_G16_SHA512,
            kex::DH_G14_SHA256,
            kex::EXTENSION_SUPPORT_AS_CLIENT,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
        ]),
        // Only the algorithms of the pinned keys, so the host presents a pinned one if it can.
        key: Cow::Owned(algorithms),
        ..russh::Preferred::default()
    };
    Arc::new(client::Config {
        preferred,
        nodelay: true,
        keepalive_interval: Some(opts.keepalive),
        keepalive_max: 3,
        inactivity_timeout: None,
        ..client::Config::default()
    })
}

fn fingerprints(keys: &[PublicKey]) -> String {
    keys.iter()
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Connection {
    /// Connect to `host` (through `jump` when the plan says `via`), check its key against the
    /// pinned ones before anything else, then authenticate.
    pub async fn open(host: &Host, jump: Option<&Host>, opts: &SshOptions) -> Result<Self, Error> {
        let fut = async {
            let jump_conn = match jump {
                Some(j) => Some(Box::new(Box::pin(Self::open_direct(j, opts)).await?)),
                None => None,
            };
            match jump_conn {
                Some(j) => {
                    let channel = j
                        .handle
                        .channel_open_direct_tcpip(
                            host.address.clone(),
                            u32::from(host.port),
                            "127.0.0.1",
                            0,
                        )
                        .await
                        .map_err(|e| Error::Connect {
                            host: host.name.clone(),
                            message: format!("jump host `{}` cannot reach it: {e}", j.host),
                        })?;
                    let mut conn = Self::handshake(host, channel.into_stream(), opts).await?;
                    conn.jump = Some(j);
                    Ok(conn)
                }
                None => Self::open_direct(host, opts).await,
            }
        };
        tokio::time::timeout(opts.connect_timeout, fut)
            .await
            .map_err(|_| Error::Connect {
                host: host.name.clone(),
                message: format!(
                    "connect timed out after {} s",
                    opts.connect_timeout.as_secs()
                ),
            })?
    }

    async fn open_direct(host: &Host, opts: &SshOptions) -> Result<Self, Error> {
        let addr = (host.address.as_str(), host.port);
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| Error::Connect {
                host: host.name.clone(),
                message: format!("cannot connect to {}:{}: {e}", host.address, host.port),
            })?;
        let _ = tcp.set_nodelay(true);
        Self::handshake(host, tcp, opts).await
    }

    async fn handshake<S>(host: &Host, stream: S, opts: &SshOptions) -> Result<Self, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let keys = pinned_keys(host)?;
        let seen = Arc::new(Mutex::new(None));
        let handler = Pinned {
            keys: keys.clone(),
            seen: seen.clone(),
        };
        let connected = client::connect_stream(config_for(&keys, opts), stream, handler).await;
        let seen_fp = seen.lock().ok().and_then(|s| s.clone());
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                let expected = fingerprints(&keys);
                return Err(match (e, seen_fp) {
                    (russh::Error::UnknownKey, Some(seen)) => Error::HostKeyMismatch {
                        host: host.name.clone(),
                        expected,
                        seen,
                    },
                    (russh::Error::NoCommonAlgo { .. }, _) => Error::HostKeyMismatch {
                        host: host.name.clone(),
                        expected,
                        seen: "no key of a pinned algorithm".into(),
                    },
                    (e, _) => Error::Connect {
                        host: host.name.clone(),
                        message: format!("SSH handshake failed: {e}"),
                    },
                });
            }
        };
        let seen = seen_fp.unwrap_or_default();
        authenticate(&mut handle, host, opts).await?;
        Ok(Self {
            host: host.name.clone(),
            handle,
            seen,
            jump: None,
        })
    }

    /// The `SHA256:` fingerprint of the key the host presented (one of the pinned ones).
    #[must_use]
    pub fn seen_fingerprint(&self) -> &str {
        &self.seen
    }

    fn lost(&self, e: &russh::Error) -> Error {
        Error::Connect {
            host: self.host.clone(),
            message: format!("connection lost: {e}"),
        }
    }

    /// Run `command` as the exec request, byte for byte; stream `stdin` (then EOF); collect
    /// output and status. `limit` bounds the whole command.
    pub async fn exec(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        limit: Option<Duration>,
    ) -> Result<ExecOutput, Error> {
        let started = async {
            let ch = self
                .handle
                .channel_open_session()
                .await
                .map_err(|e| self.lost(&e))?;
            ch.exec(true, command.as_bytes())
                .await
                .map_err(|e| self.lost(&e))?;
            if let Some(bytes) = stdin {
                ch.data(bytes).await.map_err(|e| self.lost(&e))?;
            }
            ch.eof().await.map_err(|e| self.lost(&e))?;
            Ok::<_, Error>(ch)
        };
        let deadline = limit.map(|l| tokio::time::Instant::now() + l);
        let mut ch = match deadline {
            None => started.await?,
            Some(d) => {
                tokio::time::timeout_at(d, started)
                    .await
                    .map_err(|_| Error::Connect {
                        host: self.host.clone(),
                        message: "timed out starting a command".into(),
                    })??
            }
        };
        match (deadline, limit) {
            (Some(d), Some(limit)) => {
                if let Ok(r) = tokio::time::timeout_at(d, self.collect(&mut ch)).await {
                    r
                } else {
                    // Ask the host to stop it, then drop the channel.
                    let _ = ch.signal(russh::Sig::TERM).await;
                    let _ = ch.close().await;
                    Ok(ExecOutput {
                        timed_out: Some(limit),
                        ..ExecOutput::default()
                    })
                }
            }
            _ => self.collect(&mut ch).await,
        }
    }

    async fn collect(&self, ch: &mut russh::Channel<client::Msg>) -> Result<ExecOutput, Error> {
        let mut out = ExecOutput::default();
        let mut closed = false;
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => push_capped(&mut out.stdout, &data),
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    push_capped(&mut out.stderr, &data);
                }
                ChannelMsg::ExitStatus { exit_status } => out.exit = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.signal = Some(format!("{signal_name:?}"));
                }
                ChannelMsg::Close => {
                    closed = true;
                    break;
                }
                ChannelMsg::Failure => {
                    return Err(Error::Protocol {
                        host: self.host.clone(),
                        message: "the host refused the exec request".into(),
                    });
                }
                _ => {}
            }
        }
        if !closed && out.exit.is_none() && out.signal.is_none() {
            return Err(Error::Connect {
                host: self.host.clone(),
                message: "connection lost while a command was running".into(),
            });
        }
        Ok(out)
    }

    /// Start a long-lived command that reads lines on stdin and answers each (the progress
    /// recorder of the executor protocol).
    pub async fn open_line_channel(&self, command: &str) -> Result<LineChannel, Error> {
        let ch = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.lost(&e))?;
        ch.exec(true, command.as_bytes())
            .await
            .map_err(|e| self.lost(&e))?;
        Ok(LineChannel {
            host: self.host.clone(),
            ch,
            buf: Vec::new(),
        })
    }

    /// Close the connection politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// A command that echoes each line it durably handled; see [`Connection::open_line_channel`].
pub struct LineChannel {
    host: String,
    ch: russh::Channel<client::Msg>,
    buf: Vec<u8>,
}

impl LineChannel {
    /// Send `line` (without newline) and wait until the host echoes it back.
    pub async fn send(&mut self, line: &str) -> Result<(), Error> {
        let lost = |m: String| Error::Connect {
            host: self.host.clone(),
            message: m,
        };
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.ch
            .data(&bytes[..])
            .await
            .map_err(|e| lost(format!("progress recorder lost: {e}")))?;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let got: Vec<u8> = self.buf.drain(..=pos).collect();
                if got[..pos] == *line.as_bytes() {
                    return Ok(());
                }
                return Err(Error::Protocol {
                    host: self.host.clone(),
                    message: format!(
                        "progress recorder answered `{}`",
                        String::from_utf8_lossy(&got[..pos])
                    ),
                });
            }
            match self.ch.wait().await {
                Some(ChannelMsg::Data { data }) => self.buf.extend_from_slice(&data),
                Some(ChannelMsg::ExitStatus { .. } | ChannelMsg::Eof | ChannelMsg::Close)
                | None => {
                    return Err(lost("progress recorder stopped".into()));
                }
                Some(_) => {}
            }
        }
    }

    /// End the recorder (EOF on its stdin).
    pub async fn finish(self) {
        let _ = self.ch.eof().await;
    }
}

fn push_capped(buf: &mut Vec<u8>, data: &[u8]) {
    buf.extend_from_slice(data);
    if buf.len() > MAX_CAPTURE {
        let cut = buf.len() - MAX_CAPTURE;
        buf.drain(..cut);
    }
}

async fn authenticate(
    handle: &mut Handle<Pinned>,
    host: &Host,
    opts: &SshOptions,
) -> Result<(), Error> {
    let fail = |message: String| Error::AuthFailed {
        host: host.name.clone(),
        user: host.user.clone(),
        message,
    };
    let mut tried = Vec::new();
    if let Some(key) = &opts.identity {
        let hash = if key.algorithm().is_rsa() {
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| fail(e.to_string()))?
                .flatten()
        } else {
            None
        };
        let result = handle
            .authenticate_publickey(
                host.user.clone(),
                PrivateKeyWithHashAlg::new(key.clone(), hash),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        if result.success() {
            return Ok(());
        }
        tried.push(format!(
            "identity {}",
            opts.identity_path
                .as_ref()
                .map_or_else(|| "key".into(), |p| p.display().to_string())
        ));
    }
    if let Some(sock) = &opts.agent {
        let mut agent = russh::keys::agent::client::AgentClient::connect_uds(sock)
            .await
            .map_err(|e| fail(format!("ssh-agent at {}: {e}", sock.display())))?;
        let identities = agent
            .request_identities()
            .await
            .map_err(|e| fail(format!("ssh-agent: {e}")))?;
        for id in identities {
            let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = id else {
                continue;
            };
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .flatten()
            } else {
                None
            };
            let fp = key.fingerprint(HashAlg::Sha256).to_string();
            match handle
                .authenticate_publickey_with(host.user.clone(), key, hash, &mut agent)
                .await
            {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) | Err(_) => tried.push(format!("agent key {fp}")),
            }
        }
    }
    if tried.is_empty() {
        return Err(fail(
            "no key to offer: pass --identity FILE or run an ssh-agent (SSH_AUTH_SOCK)".into(),
        ));
    }
    Err(fail(format!("refused {}", tried.join(", "))))
}
