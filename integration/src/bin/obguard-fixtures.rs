//! Standalone fixture servers for demos and manual testing. Both bind 127.0.0.1 only.
//!
//! ```text
//! obguard-fixtures echo --port 9001
//! obguard-fixtures demo-bank --port 9002 --data integration/fixtures/demo-bank
//! obguard-fixtures ratelimit --port 8081 --limit per-client:client:10:minute [--redis redis://127.0.0.1:6379]
//! obguard-fixtures webhook --port 9003 --out events.jsonl
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use obguard_integration::{
    Counters, DemoBank, EchoUpstream, Limit, RateLimitService, Unit, Webhook,
};

#[derive(Parser)]
#[command(
    name = "obguard-fixtures",
    about = "Upstream fixtures for obguard tests and demos"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// HTTP server answering 200 with a JSON echo of the request (method, path, headers, body).
    Echo {
        /// Port on 127.0.0.1 (0 = any free port; the chosen one is printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// A small UK Open Banking v3.1-style API serving fixture JSON files.
    DemoBank {
        /// Port on 127.0.0.1 (0 = any free port; the chosen one is printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Directory with accounts.json, balances.json and transactions.json.
        #[arg(long, default_value_os_t = obguard_integration::demo_bank_fixtures())]
        data: PathBuf,
    },
    /// A gRPC rate-limit service (envoy.service.ratelimit.v3) counting with Limitador's
    /// engine, in memory or on Redis. A descriptor entry `obguard-test-fault` = `delay:<ms>` |
    /// `unavailable` | `garbage` makes it misbehave for that request.
    Ratelimit {
        /// Port on 127.0.0.1 (0 = any free port; the chosen one is printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// `name:key[=value],key[=value]...:requests:unit` (unit second|minute|hour|day), e.g.
        /// `per-client:client:10:minute` (a counter per client) or
        /// `risky:client,risk=high:2:minute`. Repeatable.
        #[arg(long = "limit", value_parser = parse_limit)]
        limits: Vec<Limit>,
        /// Count on this Redis (e.g. `redis://127.0.0.1:6379`), shared with every service on
        /// it; without it, in this process's memory.
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
    },
    /// A security-event webhook: takes CloudEvents (batches or single) by POST and appends
    /// each event to `--out` as one JSON line.
    Webhook {
        /// Port on 127.0.0.1 (0 = any free port; the chosen one is printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// File the events are appended to (JSON lines).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_limit(spec: &str) -> Result<Limit, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [name, entries, requests, unit] = parts.as_slice() else {
        return Err("expected name:key[=value],...:requests:unit".into());
    };
    let entries: Vec<(&str, Option<&str>)> = entries
        .split(',')
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (e, None),
        })
        .collect();
    let requests: u32 = requests.parse().map_err(|e| format!("requests: {e}"))?;
    let unit = match *unit {
        "second" => Unit::Second,
        "minute" => Unit::Minute,
        "hour" => Unit::Hour,
        "day" => Unit::Day,
        other => return Err(format!("unknown unit `{other}`")),
    };
    Ok(Limit::new(name, &entries, requests, unit))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Echo { port } => match EchoUpstream::start_on(port) {
            Ok(server) => {
                println!("echo listening on 127.0.0.1:{}", server.port());
                server.run_forever();
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("obguard-fixtures echo: cannot listen on 127.0.0.1:{port}: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Ratelimit {
            port,
            limits,
            redis,
        } => match RateLimitService::start_on(
            port,
            limits,
            redis.map_or(Counters::InMemory, Counters::Redis),
        ) {
            Ok(service) => {
                println!("ratelimit listening on 127.0.0.1:{}", service.port());
                service.run_forever();
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("obguard-fixtures ratelimit: cannot start on 127.0.0.1:{port}: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Webhook { port, out } => match Webhook::start_on(port, out) {
            Ok(webhook) => {
                println!("webhook listening on 127.0.0.1:{}", webhook.port());
                webhook.join();
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("obguard-fixtures webhook: cannot listen on 127.0.0.1:{port}: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::DemoBank { port, data } => match DemoBank::start(port, &data) {
            Ok(bank) => {
                println!("demo-bank listening on 127.0.0.1:{}", bank.port());
                bank.run_forever();
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("obguard-fixtures demo-bank: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
