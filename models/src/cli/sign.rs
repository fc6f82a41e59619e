//! `obguard-models sign`: sign a model file with a PKCS#8 PEM Ed25519 key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use obguard_models::{Model, PublicKey, SignaturePolicy};

// No doc comment: the subcommand's help is the `Command::Sign` variant's.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// PKCS#8 PEM Ed25519 secret key (from keygen, or `openssl genpkey -algorithm ed25519`).
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    model: PathBuf,
    /// Where to write the signed file (may be the same as --model).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: SignArgs) -> Result<()> {
    let SignArgs { key, model, out } = &args;
    let pem = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let secret = obguard_models::secret_key_from_pem(&pem)
        .with_context(|| format!("reading {}", key.display()))?;
    let public = PublicKey::from_secret_key(&secret);
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let signed = obguard_models::sign_model_file(&bytes, &secret)
        .with_context(|| format!("signing {}", model.display()))?;
    // Only write what this build would load with the signer's key as the trusted one.
    let m = Model::load_verified(
        &signed,
        SignaturePolicy::Required(std::slice::from_ref(&public)),
    )
    .with_context(|| format!("checking the signed {}", model.display()))?;
    write_replacing(out, &signed)?;
    println!(
        "signed {}: digest {}, key {}",
        out.display(),
        m.digest_hex(),
        public.key_id()
    );
    Ok(())
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`, so a
/// reader never sees half a file (and `--out` may be the input).
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
