//! `writ sign PLAN --key FILE [--principal NAME]`: sign a plan into `PLAN.sigs/`. The
//! passphrase of an encrypted key comes from WRIT_KEY_PASSPHRASE or a prompt, never echoed.
#![allow(clippy::print_stdout, reason = "the CLI edge prints the result")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use zeroize::Zeroizing;

/// Arguments of `writ sign`.
#[derive(clap::Args)]
pub struct Args {
    /// The plan file to sign (its destination header sets the namespace).
    plan: PathBuf,
    /// OpenSSH private key to sign with (ssh-agent or hardware keys: use `ssh-keygen -Y sign`).
    #[arg(long, short = 'k', env = "WRIT_SIGNING_KEY", value_name = "FILE")]
    key: PathBuf,
    /// Name the signature file PLAN.sigs/<NAME>.sig (default: derived from the key fingerprint).
    #[arg(long, value_name = "NAME")]
    principal: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        plan,
        key: key_path,
        principal,
    } = args;
    let key = writ::sign::load_key(&key_path, || passphrase(&key_path))?;
    let signed = writ::sign::sign_plan(&plan, &key, principal.as_deref())?;
    println!("signed plan {}", signed.plan_id);
    println!("  namespace {}", signed.namespace);
    println!("  key {}", signed.fingerprint);
    println!("wrote {}", signed.path.display());
    Ok(ExitCode::SUCCESS)
}

fn passphrase(key: &Path) -> Result<Zeroizing<String>, writ::Error> {
    if let Some(v) = std::env::var_os("WRIT_KEY_PASSPHRASE") {
        return v
            .into_string()
            .map(Zeroizing::new)
            .map_err(|_| writ::Error::KeyFile {
                path: key.to_owned(),
                message: "WRIT_KEY_PASSPHRASE is not UTF-8".into(),
            });
    }
    rpassword::prompt_password(format!("Passphrase for {}: ", key.display()))
        .map(Zeroizing::new)
        .map_err(|e| writ::Error::KeyFile {
            path: key.to_owned(),
            message: format!("the key is encrypted and no passphrase could be read ({e}); set WRIT_KEY_PASSPHRASE"),
        })
}
