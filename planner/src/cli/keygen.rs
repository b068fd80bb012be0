//! `writ keygen [--out FILE] [--comment C] [--no-passphrase]`: write a new ed25519 signing key
//! pair and print the allowed_signers line to hand to whoever runs the executor.
#![allow(clippy::print_stdout, reason = "the CLI edge prints the result")]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use zeroize::Zeroizing;

/// Arguments of `writ keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// Private key file to create (its public key goes to FILE.pub) [default: ~/.ssh/writ_ed25519].
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
    /// Comment stored in the key, usually your principal (e.g. alice@example.com).
    #[arg(long, short = 'C', default_value = "writ signing key")]
    comment: String,
    /// Store the private key unencrypted, without asking for a passphrase.
    #[arg(long)]
    no_passphrase: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let out = match args.out {
        Some(p) => p,
        None => std::env::home_dir()
            .context("no home directory; pass --out FILE")?
            .join(".ssh/writ_ed25519"),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let passphrase = if args.no_passphrase {
        None
    } else {
        new_passphrase(&out)?
    };
    let key = writ::keygen::generate(&args.comment)?;
    let written = writ::keygen::write_new_key(&key, &out, passphrase.as_ref())?;
    println!("wrote {} (private, mode 0600)", written.private.display());
    println!("wrote {}", written.public.display());
    println!("fingerprint {}", written.fingerprint);
    let mut words = written.public_line.splitn(3, ' ');
    let (alg, b64) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    println!("allowed_signers line (give it to whoever runs the executor):");
    println!(
        "  {} namespaces=\"writ-plan:*\" {alg} {b64}",
        principal_hint(&args.comment)
    );
    Ok(ExitCode::SUCCESS)
}

/// WRIT_KEY_PASSPHRASE if set (empty: none), else asked twice on the terminal.
fn new_passphrase(out: &std::path::Path) -> anyhow::Result<Option<Zeroizing<String>>> {
    if let Some(v) = std::env::var_os("WRIT_KEY_PASSPHRASE") {
        let v = Zeroizing::new(
            v.into_string()
                .map_err(|_| anyhow::anyhow!("WRIT_KEY_PASSPHRASE is not UTF-8"))?,
        );
        return Ok((!v.is_empty()).then_some(v));
    }
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .context("cannot read a passphrase from the terminal; set WRIT_KEY_PASSPHRASE or pass --no-passphrase")
    };
    let first = ask(format!(
        "Passphrase for {} (empty for none): ",
        out.display()
    ))?;
    if first.is_empty() {
        return Ok(None);
    }
    let second = ask("Same passphrase again: ".to_owned())?;
    anyhow::ensure!(
        *first == *second,
        "the passphrases do not match; nothing was written"
    );
    Ok(Some(first))
}

fn principal_hint(comment: &str) -> &str {
    if comment.contains('@') && !comment.contains(' ') {
        comment
    } else {
        "YOU@EXAMPLE.COM"
    }
}
