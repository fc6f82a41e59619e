//! `obguard-models train`: a model from labelled records, or with `--unlabelled` from a
//! bank's own logs with injected attack episodes (`inject.rs` does the injection alone).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use obguard_models::inject;
use obguard_models::train::{self, Algorithm, FpBudgets, TrainConfig};

use super::fraction;
use super::inject::{InjectArgs, print_injection};

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

pub fn run(args: TrainArgs) -> Result<()> {
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
