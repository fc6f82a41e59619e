//! `obguard-models inject`: labelled attack episodes injected into real (unlabelled) records,
//! as `train --unlabelled` does, written out for inspection; and the injection options the
//! two commands share.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use obguard_models::inject::{self, InjectConfig, InjectSummary};

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
    pub fn config(&self) -> InjectConfig {
        InjectConfig {
            seed: self.inject_seed,
            episodes: self.inject_episodes,
            min_victim_requests: self.min_victim_requests,
        }
    }
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

pub fn run(args: InjectCmd) -> Result<()> {
    let summary = inject::inject_file(&args.data, &args.out, &args.inject.config())?;
    print_injection(&summary, &args.out);
    Ok(())
}

/// The injection summary, on stderr.
pub fn print_injection(summary: &InjectSummary, out: &Path) {
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
