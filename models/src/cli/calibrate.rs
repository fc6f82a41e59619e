//! `obguard-models calibrate`: a model's thresholds set on a bank's own records for a target
//! false-alarm rate.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use obguard_models::train::{self, FpBudgets};

use super::{fraction, load_model};

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

pub fn run(args: CalibrateArgs) -> Result<()> {
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
