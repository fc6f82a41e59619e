//! `obguard-models eval`: the report as text or JSON, plots, and CI gates.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use obguard_models::eval::{self, Gates, ShardBy, Sharding};

use super::{fraction, gate_failed, load_model, output};

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    data: PathBuf,
    /// Directory for roc.png, pr.png and score-histogram.png.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Requests of an episode within which it must be caught.
    #[arg(long, default_value_t = 20)]
    within: usize,
    /// Score the model alone, without the hard rules (PSD2 unattended-access limit, payment
    /// velocity) that are otherwise applied with their defaults, as the filter's `rules: {}`.
    #[arg(long)]
    no_rules: bool,
    /// Replay as on this many gateway replicas, each keeping its own baselines and rule
    /// state (as each Envoy does in its shared data).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    shards: u32,
    /// Which replica each request reaches: `random` (any, uniformly) or `client` (a hash of
    /// the client id, as consistent hashing at the load balancer).
    #[arg(long, value_enum, default_value_t = ShardBy::Random)]
    shard_by: ShardBy,
    /// Seed of `--shard-by random`.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Print the report as one JSON document (shares as fractions) instead of text.
    #[arg(long)]
    json: bool,
    /// Write the report (text, or JSON with --json) to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Gate: least share (0..1) of all attack episodes caught within --within requests.
    #[arg(long, value_name = "FRACTION", value_parser = fraction, allow_negative_numbers = true)]
    min_detection: Option<f64>,
    /// Gate: least share (0..1) caught within --within requests, for every attack type.
    #[arg(long, value_name = "FRACTION", value_parser = fraction, allow_negative_numbers = true)]
    min_detection_per_type: Option<f64>,
    /// Gate: largest share (0..1) of legitimate requests not allowed (step_up, throttle
    /// or block).
    #[arg(long, value_name = "FRACTION", value_parser = fraction, allow_negative_numbers = true)]
    max_non_allow: Option<f64>,
    /// Gate: largest share (0..1) of legitimate requests blocked.
    #[arg(long, value_name = "FRACTION", value_parser = fraction, allow_negative_numbers = true)]
    max_block: Option<f64>,
}

/// Exit 0, or [`super::EXIT_GATE_FAILED`] when a gate fails (after the report is written and
/// each gate's measured value and limit are on stderr).
pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    let rules = obguard_models::rules::RuleConfig::default();
    let report = eval::evaluate_file(
        &model,
        (!args.no_rules).then_some(&rules),
        &args.data,
        args.within,
        Sharding {
            shards: args.shards as usize,
            by: args.shard_by,
            seed: args.seed,
        },
    )?;
    let gates = Gates {
        min_detection: args.min_detection,
        min_detection_per_type: args.min_detection_per_type,
        max_non_allow: args.max_non_allow,
        max_block: args.max_block,
    };
    let mut summary = report.summary(&model.metadata().data_digest);
    summary.gates = gates.check(&summary);

    let mut out = output(args.out.as_deref())?;
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(report.render().as_bytes())?;
    }
    out.flush()
        .with_context(|| format!("writing the report{}", destination(&args.out)))?;
    drop(out);

    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir)?;
        obguard_models::plots::write_all(&report, dir)?;
        eprintln!("plots in {}", dir.display());
    }

    let failed = summary.gates.iter().filter(|g| !g.passed).count();
    for g in &summary.gates {
        eprintln!("gate {g}");
    }
    if failed > 0 {
        eprintln!(
            "obguard-models: {failed} of {} gate{} failed (exit {})",
            summary.gates.len(),
            if summary.gates.len() == 1 { "" } else { "s" },
            super::EXIT_GATE_FAILED
        );
        return Ok(gate_failed());
    }
    Ok(ExitCode::SUCCESS)
}

fn destination(out: &Option<PathBuf>) -> String {
    out.as_ref()
        .map_or_else(String::new, |p| format!(" to {}", p.display()))
}
