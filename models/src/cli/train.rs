//! `train` (labelled records, or `--unlabelled`: a bank's own logs with injected attack
//! episodes), `inject` (just the injection, to inspect it) and `calibrate` (thresholds set on
//! a bank's own logs for a target false-alarm rate).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use obguard_models::inject::{self, InjectConfig, InjectSummary};
use obguard_models::train::{self, Algorithm, FpBudgets, TrainConfig};

use super::{fraction, load_model};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlgorithmArg {
    Forest,
    Logistic,
    /// Train every candidate, report each on the held-out clients, keep the forest.
    Compare,
}

impl From<AlgorithmArg> for Algorithm {
    fn from(a: AlgorithmArg) -> Self {
        match a {
            AlgorithmArg::Forest => Algorithm::Forest,
            AlgorithmArg::Logistic => Algorithm::Logistic,
            AlgorithmArg::Compare => Algorithm::Compare,
        }
    }
}

#[derive(Debug, Args)]
pub struct InjectArgs {
    /// Episodes injected in total, spread over the attack kinds and the clients.
    #[arg(long, default_value_t = InjectConfig::default().episodes)]
    pub inject_episodes: u32,
    #[arg(long, default_value_t = InjectConfig::default().seed)]
    pub inject_seed: u64,
    /// Clients with fewer requests are not used as victims.
    #[arg(long, default_value_t = InjectConfig::default().min_victim_requests)]
    pub min_victim_requests: u64,
}

impl InjectArgs {
    fn config(&self) -> InjectConfig {
        InjectConfig {
            seed: self.inject_seed,
            episodes: self.inject_episodes,
            min_victim_requests: self.min_victim_requests,
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Records (docs/records.md), labelled, or unlabelled with `--unlabelled`.
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// The records have no (trusted) labels: inject simulated attack episodes into the real
    /// clients' streams and train on that (labels in the file are ignored).
    #[arg(long)]
    pub unlabelled: bool,
    #[command(flatten)]
    pub inject: InjectArgs,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = AlgorithmArg::Forest)]
    pub algorithm: AlgorithmArg,
    #[arg(long, default_value_t = 30)]
    pub trees: u16,
    #[arg(long, default_value_t = 10)]
    pub max_depth: u16,
    /// Normal rows sampled for fitting (all attack rows are used).
    #[arg(long, default_value_t = 150_000)]
    pub max_normal_rows: usize,
    /// UTC offset, minutes, for hours of day.
    #[arg(long, default_value_t = 0)]
    pub utc_offset_minutes: i32,
    /// Creation date recorded in the model (RFC 3339); default now. Fix it for
    /// reproducible builds.
    #[arg(long)]
    pub created: Option<String>,
    /// Share of the held-out clients' requests the thresholds may refuse (throttle gets 40%
    /// of it, block 4%). The default, 40% of the 0.1% target, leaves margin for traffic unlike the training data (chosen by cross-world evaluation, docs/model-card.md).
    #[arg(long, value_parser = fraction, default_value_t = train::TRAINING_BUDGETS.step_up)]
    pub holdout_non_allow: f64,
}

fn print_injection(summary: &InjectSummary, out: &Path) {
    eprintln!(
        "injected {} episodes ({} records) into {} real records of {} victim clients -> {}",
        summary.episodes,
        summary.injected_records,
        summary.real_records,
        summary.victims,
        out.display()
    );
    if summary.relabelled > 0 {
        eprintln!(
            "  {} records labelled as attacks in the input were treated as normal (unlabelled training)",
            summary.relabelled
        );
    }
    for (kind, n) in &summary.per_kind {
        eprintln!("  {kind:<32} {n}");
    }
}

pub fn run_train(args: TrainArgs) -> Result<()> {
    let cfg = TrainConfig {
        seed: args.seed,
        algorithm: args.algorithm.into(),
        trees: args.trees,
        max_depth: args.max_depth,
        max_normal_rows: args.max_normal_rows,
        utc_offset_minutes: args.utc_offset_minutes,
        created: args.created.clone(),
        budgets: FpBudgets::for_target(args.holdout_non_allow),
    };
    let started = Instant::now();
    let model = if args.unlabelled {
        let mixed = args.out.with_extension("injected.jsonl");
        let summary = inject::inject_file(&args.data, &mixed, &args.inject.config())?;
        print_injection(&summary, &mixed);
        let model = train::train_file(&mixed, &cfg);
        let _ = std::fs::remove_file(&mixed);
        model?
    } else {
        train::train_file(&args.data, &cfg)?
    };
    let bytes = model.to_bytes()?;
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, {}) in {:.1}s",
        args.out.display(),
        bytes.len(),
        model.kind_name(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct InjectCmd {
    /// Real records (labels ignored).
    #[arg(long)]
    pub data: PathBuf,
    /// The records with the injected, labelled episodes merged in time order.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub inject: InjectArgs,
}

pub fn run_inject(args: InjectCmd) -> Result<()> {
    let summary = inject::inject_file(&args.data, &args.out, &args.inject.config())?;
    print_injection(&summary, &args.out);
    Ok(())
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// The bank's own records, taken as legitimate (labels ignored).
    #[arg(long)]
    pub data: PathBuf,
    /// Target share of these records that may get a non-allow verdict (throttle gets 40%
    /// of it, block 4%).
    #[arg(long, value_parser = fraction, default_value_t = 0.001)]
    pub max_non_allow: f64,
    /// The model with the new thresholds (unsigned: sign it before deploying).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run_calibrate(args: CalibrateArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let budgets = FpBudgets::for_target(args.max_non_allow);
    let c = train::calibrate_file(&model, &args.data, &budgets)?;
    let before = model.thresholds();
    let new = model.recalibrated(
        c.thresholds,
        vec![
            ("calibrate.records".to_string(), c.records as f64),
            ("calibrate.max_non_allow".to_string(), args.max_non_allow),
            ("calibrate.non_allow".to_string(), c.non_allow),
            ("calibrate.block".to_string(), c.block),
        ],
    )?;
    let bytes = new.to_bytes()?;
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "calibrated on {} records for at most {:.4}% non-allow",
        c.records,
        args.max_non_allow * 100.0
    );
    println!(
        "  thresholds before: step_up {:.4} throttle {:.4} block {:.4}",
        before.step_up, before.throttle, before.block
    );
    println!(
        "  thresholds after:  step_up {:.4} throttle {:.4} block {:.4}",
        c.thresholds.step_up, c.thresholds.throttle, c.thresholds.block
    );
    println!(
        "  on these records: non-allow {:.4}%, block {:.4}%",
        c.non_allow * 100.0,
        c.block * 100.0
    );
    println!(
        "wrote {} (unsigned; digest {}): sign it before deploying",
        args.out.display(),
        new.digest_hex()
    );
    Ok(())
}
