//! `obguard-models keygen`: an Ed25519 model signing key pair, PREFIX.key and PREFIX.pub.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use obguard_models::PublicKey;

// No doc comment: the subcommand's help is the `Command::Keygen` variant's.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Path prefix of the two files; existing files are never overwritten.
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
}

/// PREFIX.key (mode 0600) and PREFIX.pub, never overwriting either.
pub fn run(args: KeygenArgs) -> Result<()> {
    let with_ext = |ext: &str| {
        let mut p = args.out.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (key_path, pub_path) = (with_ext(".key"), with_ext(".pub"));
    for p in [&key_path, &pub_path] {
        if p.exists() {
            bail!(
                "{} already exists; refusing to overwrite a key",
                p.display()
            );
        }
    }
    let secret = obguard_models::generate_secret_key();
    let public = PublicKey::from_secret_key(&secret);
    let pem = obguard_models::secret_key_to_pem(&secret);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&key_path)
        .with_context(|| format!("creating {}", key_path.display()))?;
    f.write_all(pem.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", key_path.display()))?;
    let line = public.to_base64();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&pub_path)
        .with_context(|| format!("creating {}", pub_path.display()))?;
    writeln!(f, "{line}").with_context(|| format!("writing {}", pub_path.display()))?;
    println!("secret key: {} (keep it offline)", key_path.display());
    println!("public key: {}", pub_path.display());
    println!("key id:     {}", public.key_id());
    println!("{line}");
    Ok(())
}
