//! `writ keygen`: a new ed25519 signing key in OpenSSH format, optionally passphrase-protected
//! (bcrypt-pbkdf + aes256-ctr, as `ssh-keygen` writes it). The private key is created with mode
//! 0600 and the public key beside it as `FILE.pub`; an existing file is never overwritten.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::{HashAlg, LineEnding, PrivateKey};
use zeroize::Zeroizing;

use crate::Error;

/// What [`write_new_key`] wrote.
#[derive(Clone, Debug)]
pub struct NewKey {
    /// The private key file (mode 0600).
    pub private: PathBuf,
    /// The public key file (`FILE.pub`).
    pub public: PathBuf,
    /// The public key line (`ssh-ed25519 AAAA… comment`).
    pub public_line: String,
    /// OpenSSH `SHA256:` fingerprint.
    pub fingerprint: String,
}

/// A fresh ed25519 key from the operating system's random source.
pub fn generate(comment: &str) -> Result<PrivateKey, Error> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut seed[..]).map_err(|e| Error::KeyFile {
        path: PathBuf::new(),
        message: format!("no randomness from the operating system: {e}"),
    })?;
    let pair = Ed25519Keypair::from_seed(&seed);
    PrivateKey::new(KeypairData::Ed25519(pair), comment).map_err(|e| Error::KeyFile {
        path: PathBuf::new(),
        message: e.to_string(),
    })
}

/// The public key path for a private key path: `FILE.pub`.
#[must_use]
pub fn public_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Write `key` to `out` (0600) and `out.pub`, encrypting with `passphrase` when given. Fails
/// without writing anything if either file exists.
pub fn write_new_key(
    key: &PrivateKey,
    out: &Path,
    passphrase: Option<&Zeroizing<String>>,
) -> Result<NewKey, Error> {
    let public = public_path(out);
    for p in [out, public.as_path()] {
        if p.symlink_metadata().is_ok() {
            return Err(Error::WouldOverwrite { path: p.to_owned() });
        }
    }
    let key_err = |message: String| Error::KeyFile {
        path: out.to_owned(),
        message,
    };
    let stored = match passphrase {
        Some(p) if !p.is_empty() => key
            .encrypt(&mut getrandom::SysRng, p.as_bytes())
            .map_err(|e| key_err(format!("cannot encrypt the key: {e}")))?,
        _ => key.clone(),
    };
    let private_text = stored
        .to_openssh(LineEnding::LF)
        .map_err(|e| key_err(e.to_string()))?;
    let public_line = key
        .public_key()
        .to_openssh()
        .map_err(|e| key_err(e.to_string()))?;
    write_exclusive(out, private_text.as_bytes(), 0o600)?;
    write_exclusive(&public, format!("{public_line}\n").as_bytes(), 0o644)?;
    Ok(NewKey {
        private: out.to_owned(),
        public,
        public_line,
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    })
}

fn write_exclusive(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            Error::WouldOverwrite {
                path: path.to_owned(),
            }
        } else {
            Error::Io {
                path: path.to_owned(),
                source,
            }
        }
    };
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_0600_key_that_round_trips_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("k");
        let key = generate("me@example.com").unwrap();
        let written = write_new_key(&key, &out, None).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let back = PrivateKey::read_openssh_file(&out).unwrap();
        assert!(!back.is_encrypted());
        assert_eq!(back.public_key(), key.public_key());
        assert!(written.public_line.ends_with(" me@example.com"));
        let again = generate("x").unwrap();
        assert!(matches!(
            write_new_key(&again, &out, None),
            Err(Error::WouldOverwrite { .. })
        ));
        assert_eq!(
            PrivateKey::read_openssh_file(&out).unwrap().public_key(),
            key.public_key()
        );
    }

    #[test]
    fn passphrase_encrypts_the_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("k");
        let key = generate("c").unwrap();
        let pass = Zeroizing::new("correct horse".to_owned());
        write_new_key(&key, &out, Some(&pass)).unwrap();
        let stored = PrivateKey::read_openssh_file(&out).unwrap();
        assert!(stored.is_encrypted());
        assert!(stored.decrypt("wrong").is_err());
        assert_eq!(
            stored.decrypt("correct horse").unwrap().public_key(),
            key.public_key()
        );
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(
            generate("a").unwrap().public_key(),
            generate("a").unwrap().public_key()
        );
    }
}
