//! `obguard-models report`: one client's incident timeline as a self-contained HTML page,
//! from traffic records, the demo's Envoy access log and obguard security events (any mix,
//! in any file; see docs/incident-report.md).

use std::fs::File;
use std::io::{BufReader, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use obguard_models::report::{Collector, Filter, html, parse_time};

use super::output;

#[derive(Args)]
pub struct ReportArgs {
    /// JSONL input: traffic records, Envoy access-log lines or CloudEvents (one event or a
    /// batch array per line), mixed as they come. Repeat for several files.
    #[arg(long = "input", value_name = "FILE", required = true)]
    inputs: Vec<PathBuf>,
    /// The client: its id exactly, or its bare id (`aggregator-tpp` matches
    /// `aggregator-tpp@demo`, the form obguard logs).
    #[arg(long, value_name = "ID")]
    client: String,
    /// The HTML page to write (only when some line matches the client).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Only requests at or after this time.
    #[arg(long, value_name = "RFC3339", value_parser = rfc3339)]
    from: Option<i64>,
    /// Only requests at or before this time.
    #[arg(long, value_name = "RFC3339", value_parser = rfc3339)]
    to: Option<i64>,
    /// Page title (default "Incident report: <client>").
    #[arg(long, value_name = "TEXT")]
    title: Option<String>,
    /// Timeline table rows at most (the newest; requests with a security event are always
    /// listed). Counts and plots cover every request.
    #[arg(long, value_name = "N", default_value_t = 500)]
    max_rows: usize,
    /// The page's "generated" time, for reproducible output. Default: SOURCE_DATE_EPOCH (Unix
    /// seconds) when set, else now.
    #[arg(long, value_name = "RFC3339", value_parser = rfc3339)]
    generated_at: Option<i64>,
}

fn rfc3339(s: &str) -> Result<i64, String> {
    parse_time(s)
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 time (e.g. 2026-11-25T17:00:00Z)"))
}

/// `--generated-at`, else `SOURCE_DATE_EPOCH` (the reproducible-builds convention), else now.
fn generated_at(arg: Option<i64>) -> Result<i64> {
    if let Some(ms) = arg {
        return Ok(ms);
    }
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        let secs: i64 = epoch
            .trim()
            .parse()
            .map_err(|_| anyhow!("SOURCE_DATE_EPOCH={epoch:?} is not a number of seconds"))?;
        return secs
            .checked_mul(1000)
            .ok_or_else(|| anyhow!("SOURCE_DATE_EPOCH={epoch} is out of range"));
    }
    let now = time::OffsetDateTime::now_utc();
    Ok(i64::try_from(now.unix_timestamp_nanos() / 1_000_000)?)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub fn run(args: ReportArgs) -> Result<()> {
    if let (Some(f), Some(t)) = (args.from, args.to)
        && f > t
    {
        return Err(anyhow!("--from is after --to"));
    }
    let generated_at_ms = generated_at(args.generated_at)?;
    let mut collector = Collector::new(Filter {
        client: args.client.clone(),
        from_ms: args.from,
        to_ms: args.to,
    });
    for path in &args.inputs {
        collector.file(&file_name(path));
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        collector
            .read(BufReader::new(file))
            .with_context(|| format!("reading {}", path.display()))?;
    }
    let timeline = collector.finish()?;
    let page = html::Page {
        title: args.title,
        generated_at_ms: Some(generated_at_ms),
        max_rows: args.max_rows,
    };
    let text = html::render(&timeline, &page).map_err(|_| anyhow!("rendering the page failed"))?;
    let mut out = output(Some(&args.out))?;
    out.write_all(text.as_bytes())?;
    out.flush()
        .with_context(|| format!("writing {}", args.out.display()))?;

    let s = timeline.summary();
    let st = &timeline.stats;
    eprintln!(
        "report: {} requests of {} ({}) from {} line(s) in {} file(s) -> {}",
        s.requests,
        args.client,
        timeline.client_ids.join(", "),
        st.lines,
        st.files.len(),
        args.out.display()
    );
    eprintln!("report: passed over {}", st.passed_over());
    Ok(())
}
