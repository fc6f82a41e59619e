//! `obguard-models verify`: check a model file's signature against trusted public keys.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use obguard_models::{Model, PublicKey, SignaturePolicy};

// No doc comment: the subcommand's help is the `Command::Verify` variant's.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[arg(long)]
    model: PathBuf,
    /// A trusted public key: a .pub file, or the base64 key itself. Repeat for several
    /// (e.g. old and new key during a rotation).
    #[arg(long = "public-key", value_name = "FILE_OR_BASE64", required = true)]
    public_keys: Vec<String>,
}

/// Ok when the signature verifies; an error (exit status 1) when it does not.
pub fn run(args: VerifyArgs) -> Result<()> {
    let model = &args.model;
    let trusted = args
        .public_keys
        .iter()
        .map(|arg| read_public_key(arg))
        .collect::<Result<Vec<_>>>()?;
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let m =
        Model::load_verified(&bytes, SignaturePolicy::Required(&trusted)).with_context(|| {
            let ids: Vec<&str> = trusted.iter().map(PublicKey::key_id).collect();
            format!(
                "verifying {} against {} trusted key{} ({})",
                model.display(),
                ids.len(),
                if ids.len() == 1 { "" } else { "s" },
                ids.join(", ")
            )
        })?;
    let key_id = m.signature().map_or("?", |s| s.key_id.as_str());
    println!("signature ok: key {key_id}, digest {}", m.digest_hex());
    Ok(())
}

/// A `--public-key` argument: an existing file holding the base64 key, or the key itself.
fn read_public_key(arg: &str) -> Result<PublicKey> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading public key file {arg}"))?;
        PublicKey::from_base64(&text).with_context(|| format!("public key file {arg}"))
    } else {
        PublicKey::from_base64(arg).with_context(|| {
            format!("--public-key {arg:?} is neither an existing file nor a base64 public key")
        })
    }
}
