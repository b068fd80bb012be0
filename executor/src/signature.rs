//! Detached plan signatures: OpenSSH SSHSIG (`-----BEGIN SSH SIGNATURE-----`) over the exact
//! plan bytes, namespace `writ-plan:<destination>`, one armored file per signer in
//! `<plan>.sigs/*.sig`. Stock `ssh-keygen -Y sign -n writ-plan:<destination>` output is one of
//! these files as is; [`sign`] makes the same thing from a key file.

use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, LineEnding, PrivateKey, SshSig};

use crate::Error;

/// Largest signature file accepted, in bytes (an RSA-16384 signature is about 6 KiB armored).
pub const MAX_SIGNATURE_BYTES: usize = 16 * 1024;
/// Most signature files read from one directory.
pub const MAX_SIGNATURES: usize = 256;
/// File name suffix of signature files.
pub const SIGNATURE_SUFFIX: &str = ".sig";

/// The SSHSIG namespace for plans of `destination`.
#[must_use]
pub fn namespace(destination: &str) -> String {
    format!("writ-plan:{destination}")
}

/// The signatures directory of a plan file: `PLAN.sigs` beside it.
#[must_use]
pub fn signatures_dir(plan: &Path) -> PathBuf {
    let mut name = plan.as_os_str().to_owned();
    name.push(".sigs");
    PathBuf::from(name)
}

/// One parsed signature file.
#[derive(Clone, Debug)]
pub struct SignatureFile {
    /// The file it came from.
    pub path: PathBuf,
    /// The parsed SSHSIG.
    pub sig: SshSig,
}

impl SignatureFile {
    /// Parse armored SSHSIG text; `path` names the source in errors.
    pub fn parse(path: &Path, text: &[u8]) -> Result<Self, Error> {
        let bad = |message: String| Error::SignatureFile {
            path: path.to_owned(),
            message,
        };
        if text.len() > MAX_SIGNATURE_BYTES {
            return Err(bad(format!("over the {MAX_SIGNATURE_BYTES}-byte limit")));
        }
        let sig = SshSig::from_pem(text)
            .map_err(|e| bad(format!("not an armored OpenSSH signature: {e}")))?;
        if sig.version() != 1 {
            return Err(bad(format!("SSHSIG version {} is not 1", sig.version())));
        }
        Ok(Self {
            path: path.to_owned(),
            sig,
        })
    }

    /// Read and parse one signature file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = crate::input::read_capped(path, MAX_SIGNATURE_BYTES).map_err(|e| match e {
            Error::TooLarge { .. } => Error::SignatureFile {
                path: path.to_owned(),
                message: format!("over the {MAX_SIGNATURE_BYTES}-byte limit"),
            },
            other => other,
        })?;
        Self::parse(path, &bytes)
    }

    /// OpenSSH `SHA256:` fingerprint of the key inside the signature.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        self.sig
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }
}

/// Read every `*.sig` file of `dir`, sorted by file name. A missing directory holds no
/// signatures; an unreadable or garbled file is an error (a reviewer must look at it), and so
/// is a directory entry named `*.sig` that is not a regular file.
pub fn load_dir(dir: &Path) -> Result<Vec<SignatureFile>, Error> {
    let io = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if !name.to_string_lossy().ends_with(SIGNATURE_SUFFIX) {
            continue;
        }
        let path = entry.path();
        if !entry.file_type().map_err(io)?.is_file() {
            return Err(Error::SignatureFile {
                path,
                message: "not a regular file".into(),
            });
        }
        paths.push(path);
        if paths.len() > MAX_SIGNATURES {
            return Err(Error::SignatureFile {
                path: dir.to_owned(),
                message: format!("more than {MAX_SIGNATURES} signature files"),
            });
        }
    }
    paths.sort();
    paths.iter().map(|p| SignatureFile::load(p)).collect()
}

/// Sign `plan_bytes` for `destination` with an unencrypted private key; returns the armored
/// SSHSIG text (LF line endings), byte-compatible with `ssh-keygen -Y sign`.
pub fn sign(key: &PrivateKey, destination: &str, plan_bytes: &[u8]) -> Result<String, Error> {
    let sig = key
        .sign(&namespace(destination), HashAlg::Sha512, plan_bytes)
        .map_err(|e| Error::Sign(e.to_string()))?;
    let mut pem = sig
        .to_pem(LineEnding::LF)
        .map_err(|e| Error::Sign(e.to_string()))?;
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    Ok(pem)
}
