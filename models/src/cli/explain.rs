//! `obguard-models explain`: each scored request with its verdict and reasons, as text or
//! JSON Lines.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use obguard_models::explain::Reason;
use obguard_models::{Verdict, eval, records};
use serde::Serialize;

use super::{load_model, output};

#[derive(Args)]
pub struct ExplainArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    data: PathBuf,
    /// Print allowed requests too.
    #[arg(long)]
    all: bool,
    /// Stop after this many printed requests (0: no limit).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// One JSON object per printed request (JSON Lines) instead of text.
    #[arg(long)]
    json: bool,
    /// Write to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Score the model alone, without the hard rules (PSD2 unattended-access limit, payment
    /// velocity) that are otherwise applied with their defaults, as the filter's `rules: {}`.
    #[arg(long)]
    no_rules: bool,
}

/// One line of `explain --json`.
#[derive(Serialize)]
struct Line<'a> {
    /// 1-based line of the records file.
    line: usize,
    /// RFC 3339, UTC, milliseconds.
    ts: String,
    client_id: &'a str,
    method: &'a str,
    path: &'a str,
    score: f32,
    verdict: &'static str,
    /// Strongest first; empty for allowed requests.
    reasons: &'a [Reason],
    model_digest: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    episode: Option<&'a str>,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let digest = model.digest_hex();
    let file =
        File::open(&args.data).with_context(|| format!("opening {}", args.data.display()))?;
    let mut out = output(args.out.as_deref())?;
    // The line of the record being scored: replay pulls one record, then calls the sink.
    let current_line = Cell::new(0usize);
    let numbered = records::read_numbered(BufReader::new(file)).map(|(line, r)| {
        current_line.set(line);
        r
    });
    let mut printed = 0usize;
    let mut err: Option<anyhow::Error> = None;
    let rules = obguard_models::rules::RuleConfig::default();
    eval::replay(
        &model,
        (!args.no_rules).then_some(&rules),
        numbered,
        |record, scored| {
            if err.is_some()
                || !(args.all || scored.verdict != Verdict::Allow)
                || (args.limit != 0 && printed >= args.limit)
            {
                return;
            }
            printed += 1;
            let written = if args.json {
                let line = Line {
                    line: current_line.get(),
                    ts: records::format_ts(record.ts_ms),
                    client_id: &record.client_id,
                    method: &record.method,
                    path: &record.path,
                    score: scored.score,
                    verdict: scored.verdict.as_str(),
                    reasons: &scored.reasons,
                    model_digest: &digest,
                    label: record.label.as_deref(),
                    episode: record.episode.as_deref(),
                };
                serde_json::to_writer(&mut out, &line)
                    .map_err(anyhow::Error::from)
                    .and_then(|()| Ok(out.write_all(b"\n")?))
            } else {
                let reasons: Vec<String> = scored.reasons.iter().map(ToString::to_string).collect();
                writeln!(
                    out,
                    "{} {} {} {} score={:.3} {} [{}] label={}",
                    records::format_ts(record.ts_ms),
                    record.client_id,
                    record.method,
                    record.path,
                    scored.score,
                    scored.verdict.as_str(),
                    reasons.join(", "),
                    record.label.as_deref().unwrap_or("-"),
                )
                .map_err(anyhow::Error::from)
            };
            if let Err(e) = written {
                err = Some(e);
            }
        },
        true,
    )
    .with_context(|| format!("reading {}", args.data.display()))?;
    if let Some(e) = err {
        return Err(e);
    }
    out.flush()?;
    Ok(())
}
