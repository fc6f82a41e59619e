//! The subcommands of `obguard-models`, one module each (`main.rs` only parses and
//! dispatches), and the helpers they share: loading a model, choosing where output goes,
//! fractions on the command line, exit codes.

pub mod calibrate;
pub mod eval;
pub mod explain;
pub mod inject;
pub mod inspect;
pub mod keygen;
pub mod report;
pub mod sign;
pub mod simulate;
pub mod train;
pub mod verify;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

/// Exit status when the command ran but a CI gate (`eval --min-detection ...`) failed.
/// Errors exit 1 and command line mistakes 2 (clap's usage error).
pub const EXIT_GATE_FAILED: u8 = 3;

pub fn gate_failed() -> ExitCode {
    ExitCode::from(EXIT_GATE_FAILED)
}

pub fn load_model(path: &Path) -> Result<obguard_models::Model> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    obguard_models::load(&bytes).with_context(|| format!("loading {}", path.display()))
}

/// Where a report goes: `--out FILE` (created or truncated), else stdout. Buffered; flush it.
pub fn output(out: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

/// A clap value parser for shares given as fractions: a finite number within 0..=1.
pub fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number; give a fraction between 0 and 1"))?;
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{s} is outside 0..=1; give a fraction (e.g. 0.95 for 95%, 0.001 for 0.1%)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::fraction;

    #[test]
    fn fractions_within_0_and_1_only() {
        assert_eq!(fraction("0"), Ok(0.0));
        assert_eq!(fraction("1"), Ok(1.0));
        assert_eq!(fraction("0.001"), Ok(0.001));
        assert_eq!(fraction("1e-4"), Ok(0.0001));
        for bad in ["95", "-0.1", "1.0001", "NaN", "inf", "", "5%"] {
            assert!(fraction(bad).is_err(), "{bad}");
        }
    }
}
