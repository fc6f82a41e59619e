//! `obguard-models`: simulate traffic, train, evaluate, inspect, explain and sign obguard models.
//!
//! Exit status: 0 success, 1 error, 2 command line mistake (clap), 3 an `eval` gate failed
//! ([`cli::EXIT_GATE_FAILED`]).

mod cli;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "obguard-models", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate Open Banking traffic with labelled attack episodes (JSONL records).
    Simulate(cli::simulate::SimulateArgs),
    /// Train a model from labelled records, or from a bank's own unlabelled records with
    /// `--unlabelled` (attack episodes are injected into the real clients' streams).
    Train(cli::train::TrainArgs),
    /// Inject labelled attack episodes into real (unlabelled) records, as `train
    /// --unlabelled` does, and write the result for inspection.
    Inject(cli::inject::InjectCmd),
    /// Set a model's thresholds on a bank's own records for a target false-alarm rate.
    Calibrate(cli::calibrate::CalibrateArgs),
    /// Score labelled records: detection per attack type, false positives, ROC/PR/histogram
    /// PNGs; text or JSON; CI gates (exit 3 when one fails).
    Eval(cli::eval::EvalArgs),
    /// Model file metadata, schema, thresholds and size.
    Inspect(cli::inspect::InspectArgs),
    /// Score records and print each non-allowed request with its reasons (text or JSON Lines).
    Explain(cli::explain::ExplainArgs),
    /// Generate an Ed25519 model signing key: PREFIX.key (PKCS#8 PEM secret key, mode 0600)
    /// and PREFIX.pub (base64 public key, the line to configure as a trusted key).
    Keygen(cli::keygen::KeygenArgs),
    /// Sign a model file (replaces any existing signature; the model itself is unchanged).
    Sign(cli::sign::SignArgs),
    /// Check a model file's signature against trusted public keys (exit status 1 if it fails).
    Verify(cli::verify::VerifyArgs),
    /// One client's incident timeline (verdicts, reasons, plots, containment) as one
    /// self-contained HTML page, from traffic records, access logs and security events.
    Report(cli::report::ReportArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("obguard-models: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command; `eval` decides its own exit status (its gates), the others succeed.
fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Simulate(args) => cli::simulate::run(args)?,
        Command::Train(args) => cli::train::run(args)?,
        Command::Inject(args) => cli::inject::run(args)?,
        Command::Calibrate(args) => cli::calibrate::run(args)?,
        Command::Eval(args) => return cli::eval::run(args),
        Command::Inspect(args) => cli::inspect::run(args)?,
        Command::Explain(args) => cli::explain::run(args)?,
        Command::Keygen(args) => cli::keygen::run(args)?,
        Command::Sign(args) => cli::sign::run(args)?,
        Command::Verify(args) => cli::verify::run(args)?,
        Command::Report(args) => cli::report::run(args)?,
    }
    Ok(ExitCode::SUCCESS)
}
