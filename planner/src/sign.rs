//! `writ sign`: sign a plan file with an OpenSSH private key, writing one armored SSHSIG file
//! per signer into `PLAN.sigs/`. The namespace comes from the plan's own `destination` header
//! (`writ-plan:<destination>`), and only canonical plans are signed, so a signature is never
//! made over bytes the executor would refuse. The output is the file `ssh-keygen -Y sign`
//! would write.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, PrivateKey};
use writ_exec::plan::{self, Sha256Digest};
use writ_exec::signature;
use zeroize::Zeroizing;

use crate::Error;

/// Largest private key file read.
const MAX_KEY_BYTES: usize = 64 * 1024;

/// What [`sign_plan`] wrote.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The signature file.
    pub path: PathBuf,
    /// sha256 of the signed plan bytes.
    pub plan_id: Sha256Digest,
    /// `writ-plan:<destination>`.
    pub namespace: String,
    /// `SHA256:` fingerprint of the signing key.
    pub fingerprint: String,
}

/// Read an OpenSSH private key; when it is encrypted, `passphrase` is asked for it (and the
/// answer is zeroed after use).
pub fn load_key(
    path: &Path,
    passphrase: impl FnOnce() -> Result<Zeroizing<String>, Error>,
) -> Result<PrivateKey, Error> {
    let bad = |message: String| Error::KeyFile {
        path: path.to_owned(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    if meta.len() > MAX_KEY_BYTES as u64 {
        return Err(bad(format!(
            "over {MAX_KEY_BYTES} bytes; not a private key"
        )));
    }
    let text = Zeroizing::new(std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?);
    let key = PrivateKey::from_openssh(&*text).map_err(|e| {
        bad(format!(
            "not an OpenSSH private key ({e}); `ssh-keygen -p -f KEY` converts other formats"
        ))
    })?;
    if !key.is_encrypted() {
        return Ok(key);
    }
    let pass = passphrase()?;
    key.decrypt(pass.as_bytes())
        .map_err(|_| bad("wrong passphrase".into()))
}

/// The signature file name for a signer: `<principal>.sig`, or `key-<fingerprint>.sig` (the
/// base64 made file-name safe) without a principal.
pub fn signature_file_name(principal: Option<&str>, key: &PrivateKey) -> Result<String, Error> {
    if let Some(p) = principal {
        let ok = !p.is_empty()
            && p.len() <= 128
            && !p.starts_with('.')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"@._+-".contains(&b));
        if !ok {
            return Err(Error::BadPrincipal(p.to_owned()));
        }
        return Ok(format!("{p}{}", signature::SIGNATURE_SUFFIX));
    }
    let fp = key.fingerprint(HashAlg::Sha256).to_string();
    let b64 = fp.strip_prefix("SHA256:").unwrap_or(&fp);
    let safe: String = b64
        .chars()
        .map(|c| match c {
            '/' => '_',
            '+' => '-',
            c => c,
        })
        .collect();
    Ok(format!("key-{safe}{}", signature::SIGNATURE_SUFFIX))
}

/// Sign the plan at `plan_path` with `key` into `PLAN.sigs/<name>.sig` (see
/// [`signature_file_name`]); replaces an earlier signature file of the same name atomically.
pub fn sign_plan(
    plan_path: &Path,
    key: &PrivateKey,
    principal: Option<&str>,
) -> Result<Signed, Error> {
    let bytes = std::fs::read(plan_path).map_err(|source| Error::Io {
        path: plan_path.to_owned(),
        source,
    })?;
    let plan = plan::decode(&bytes)?;
    let name = signature_file_name(principal, key)?;
    let text = signature::sign(key, &plan.destination, &bytes)?;
    let dir = signature::signatures_dir(plan_path);
    let io = |path: &Path, source| Error::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let path = dir.join(name);
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| io(&dir, e))?;
    tmp.write_all(text.as_bytes()).map_err(|e| io(&path, e))?;
    tmp.persist(&path).map_err(|e| io(&path, e.error))?;
    Ok(Signed {
        path,
        plan_id: plan::plan_id(&bytes),
        namespace: signature::namespace(&plan.destination),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    })
}
