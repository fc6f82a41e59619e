//! `obguard-models`: simulate traffic, train, evaluate, inspect, explain and sign obguard models.
//!
//! Exit status: 0 success, 1 error, 2 command line mistake (clap), 3 an `eval` gate failed
//! ([`cli::EXIT_GATE_FAILED`]).

mod cli;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use obguard_models::{Model, PublicKey, SignaturePolicy, schema, sim, sim_b};

#[derive(Parser)]
#[command(name = "obguard-models", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which simulated world `simulate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum World {
    A,
    B,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate Open Banking traffic with labelled attack episodes (JSONL records).
    Simulate {
        /// `a`: the world the features were designed with (models/src/sim.rs); `b`: an
        /// independently designed one (models/src/sim_b/), for cross-world evaluation.
        #[arg(long, value_enum, default_value_t = World::A)]
        world: World,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// World A: legitimate clients.
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Days simulated (world B default: 14).
        #[arg(long)]
        days: Option<u32>,
        /// Attack episodes per simulated day (world A default 20, world B 4).
        #[arg(long)]
        attacks_per_day: Option<f64>,
        /// World B: first day (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        start: Option<String>,
        /// World B: traffic volume (1.0 = default size).
        #[arg(long, default_value_t = 1.0)]
        scale: f32,
        #[arg(long)]
        out: PathBuf,
    },
    /// Train a model from labelled records, or from a bank's own unlabelled records with
    /// `--unlabelled` (attack episodes are injected into the real clients' streams).
    Train(cli::train::TrainArgs),
    /// Inject labelled attack episodes into real (unlabelled) records, as `train
    /// --unlabelled` does, and write the result for inspection.
    Inject(cli::train::InjectCmd),
    /// Set a model's thresholds on a bank's own records for a target false-alarm rate.
    Calibrate(cli::train::CalibrateArgs),
    /// Score labelled records: detection per attack type, false positives, ROC/PR/histogram
    /// PNGs; text or JSON; CI gates (exit 3 when one fails).
    Eval(cli::eval::EvalArgs),
    /// Model file metadata, schema, thresholds and size.
    Inspect {
        #[arg(long)]
        model: PathBuf,
    },
    /// Score records and print each non-allowed request with its reasons (text or JSON Lines).
    Explain(cli::explain::ExplainArgs),
    /// Generate an Ed25519 model signing key: PREFIX.key (PKCS#8 PEM secret key, mode 0600)
    /// and PREFIX.pub (base64 public key, the line to configure as a trusted key).
    Keygen {
        /// Path prefix of the two files; existing files are never overwritten.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
    /// Sign a model file (replaces any existing signature; the model itself is unchanged).
    Sign {
        /// PKCS#8 PEM Ed25519 secret key (from keygen, or `openssl genpkey -algorithm ed25519`).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        model: PathBuf,
        /// Where to write the signed file (may be the same as --model).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a model file's signature against trusted public keys (exit status 1 if it fails).
    Verify {
        #[arg(long)]
        model: PathBuf,
        /// A trusted public key: a .pub file, or the base64 key itself. Repeat for several
        /// (e.g. old and new key during a rotation).
        #[arg(long = "public-key", value_name = "FILE_OR_BASE64", required = true)]
        public_keys: Vec<String>,
    },
}

/// `writeln!` into a String (cannot fail).
macro_rules! outln {
    ($o:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($arg)*);
    }};
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("obguard-models: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Simulate {
            world,
            seed,
            clients,
            days,
            attacks_per_day,
            start,
            scale,
            out,
        } => {
            let started = Instant::now();
            let mut w = BufWriter::new(
                File::create(&out).with_context(|| format!("creating {}", out.display()))?,
            );
            let (records, attack_records, episodes) = match world {
                World::A => {
                    let summary = sim::simulate(
                        sim::SimConfig {
                            seed,
                            clients,
                            days: days.unwrap_or(10),
                            attacks_per_day: attacks_per_day.unwrap_or(20.0),
                        },
                        &mut w,
                    )?;
                    (
                        summary.records as u64,
                        summary.attack_records as u64,
                        summary.episodes,
                    )
                }
                World::B => {
                    let defaults = sim_b::WorldBConfig::default();
                    let stats = sim_b::simulate(
                        &sim_b::WorldBConfig {
                            seed,
                            days: days.unwrap_or(defaults.days),
                            start: start.unwrap_or(defaults.start),
                            attacks_per_day: attacks_per_day
                                .map_or(defaults.attacks_per_day, |a| a.round().max(0.0) as u32),
                            scale,
                        },
                        &mut w,
                    )?;
                    (stats.records, stats.attack_records, stats.episodes)
                }
            };
            w.flush()?;
            eprintln!(
                "wrote {records} records ({attack_records} attack records, {episodes} episodes) to {} in {:.1}s",
                out.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Train(args) => cli::train::run_train(args)?,
        Command::Inject(args) => cli::train::run_inject(args)?,
        Command::Calibrate(args) => cli::train::run_calibrate(args)?,
        Command::Eval(args) => return cli::eval::run(args),
        Command::Inspect { model } => {
            let mut o = String::new();
            let bytes =
                std::fs::read(&model).with_context(|| format!("reading {}", model.display()))?;
            let m = obguard_models::load(&bytes)
                .with_context(|| format!("loading {}", model.display()))?;
            let meta = m.metadata();
            let t = m.thresholds();
            outln!(
                o,
                "file:            {} ({} bytes)",
                model.display(),
                bytes.len()
            );
            outln!(o, "digest:          {}", m.digest_hex());
            outln!(
                o,
                "format version:  {}",
                obguard_models::model::FORMAT_VERSION
            );
            outln!(
                o,
                "schema:          v{} {}",
                schema::SCHEMA.version,
                schema::SCHEMA.hash_hex()
            );
            outln!(o, "algorithm:       {} ({})", m.kind_name(), meta.params);
            if let obguard_models::model::ModelKind::Forest(f) = m.kind() {
                outln!(o, "trees / nodes:   {} / {}", f.trees.len(), f.node_count());
            }
            outln!(
                o,
                "thresholds:      step_up {:.4}  throttle {:.4}  block {:.4}",
                t.step_up,
                t.throttle,
                t.block
            );
            match m.signature() {
                Some(sig) => outln!(
                    o,
                    "signature:       {} by key {} (not verified; use verify)",
                    sig.algorithm.escape_debug(),
                    sig.key_id.escape_debug()
                ),
                None => outln!(o, "signature:       none"),
            }
            outln!(
                o,
                "trained:         {} by obguard-models {}",
                meta.created,
                meta.tool_version
            );
            outln!(o, "data digest:     sha256:{}", meta.data_digest);
            outln!(o, "records / seed:  {} / {}", meta.records, meta.seed);
            outln!(o, "utc offset:      {} min", meta.utc_offset_minutes);
            let p = m.population();
            outln!(
                o,
                "population:      {:.2} req/min, {:.1} ids/10min, {:.1} KiB/min, {:.3} error ratio",
                p.rate_per_min,
                p.distinct_ids,
                p.kib_per_min,
                p.error_ratio
            );
            outln!(o, "metrics:");
            for (k, v) in &meta.metrics {
                outln!(o, "  {k:<40} {v:.6}");
            }
            outln!(o, "features:");
            for (i, f) in schema::FEATURES.iter().enumerate() {
                outln!(o, "  {i:>2} {:<20} {:<14} {}", f.name, f.unit, f.meaning);
            }
            std::io::stdout().write_all(o.as_bytes())?;
        }
        Command::Explain(args) => cli::explain::run(args)?,
        Command::Keygen { out } => keygen(&out)?,
        Command::Sign { key, model, out } => {
            let pem = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let secret = obguard_models::secret_key_from_pem(&pem)
                .with_context(|| format!("reading {}", key.display()))?;
            let public = PublicKey::from_secret_key(&secret);
            let bytes =
                std::fs::read(&model).with_context(|| format!("reading {}", model.display()))?;
            let signed = obguard_models::sign_model_file(&bytes, &secret)
                .with_context(|| format!("signing {}", model.display()))?;
            // Only write what this build would load with the signer's key as the trusted one.
            let m = Model::load_verified(
                &signed,
                SignaturePolicy::Required(std::slice::from_ref(&public)),
            )
            .with_context(|| format!("checking the signed {}", model.display()))?;
            write_replacing(&out, &signed)?;
            println!(
                "signed {}: digest {}, key {}",
                out.display(),
                m.digest_hex(),
                public.key_id()
            );
        }
        Command::Verify { model, public_keys } => {
            let trusted = public_keys
                .iter()
                .map(|arg| read_public_key(arg))
                .collect::<Result<Vec<_>>>()?;
            let bytes =
                std::fs::read(&model).with_context(|| format!("reading {}", model.display()))?;
            let m = Model::load_verified(&bytes, SignaturePolicy::Required(&trusted))
                .with_context(|| {
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
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `keygen`: PREFIX.key (mode 0600) and PREFIX.pub, never overwriting either.
fn keygen(prefix: &Path) -> Result<()> {
    let with_ext = |ext: &str| {
        let mut p = prefix.as_os_str().to_owned();
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
