//! `obguard-models inspect`: a model file's metadata, schema, thresholds and size.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use obguard_models::schema;

// No doc comment: the subcommand's help is the `Command::Inspect` variant's.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(long)]
    model: PathBuf,
}

/// `writeln!` into a String (cannot fail).
macro_rules! outln {
    ($o:expr, $($arg:tt)*) => {{
        let _ = writeln!($o, $($arg)*);
    }};
}

pub fn run(args: InspectArgs) -> Result<()> {
    let model = &args.model;
    let mut o = String::new();
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let m = obguard_models::load(&bytes).with_context(|| format!("loading {}", model.display()))?;
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
    Ok(())
}
