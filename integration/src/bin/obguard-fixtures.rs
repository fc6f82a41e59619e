//! Standalone fixture servers for demos and manual testing. Both bind 127.0.0.1 only.
//!
//! ```text
//! obguard-fixtures echo --port 9001
//! obguard-fixtures demo-bank --port 9002 --data integration/fixtures/demo-bank
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use obguard_integration::{DemoBank, EchoUpstream};

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
