//! `obguard`: the operator CLI.
//!
//! - `obguard lint`: checks an OpenAPI description against the plugin configuration (and the
//!   Envoy or Istio file that loads obguard), for CI. See docs/lint.md.
//! - `obguard check-config`: the filter's own loader on a plugin configuration, WasmPlugin or
//!   Envoy file.
//! - `obguard schema`: the plugin configuration's JSON Schema.
//! - `obguard oci`: obguard.wasm as an OCI image for Istio's WasmPlugin (docs/istio.md).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use obguard_cli::lint::{self, Inputs, Options, Rule, Severity};
use obguard_cli::{check, oci};

#[derive(Parser)]
#[command(name = "obguard", version, about = "obguard's operator CLI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check an OpenAPI description against the plugin configuration.
    ///
    /// Exit status: 0 when no finding reaches `--fail-on`, 1 when one does, 2 when the
    /// command itself fails (bad arguments, an output file that cannot be written). Inputs
    /// that cannot be read are findings (exit 1), so CI shows them.
    Lint(LintArgs),
    /// Run the filter's own configuration loader on every obguard configuration in a file.
    ///
    /// FILE is a plugin configuration (JSON, or YAML as a WasmPlugin's `pluginConfig`), Istio
    /// WasmPlugins (YAML, several documents allowed; each obguard one's `spec.pluginConfig`),
    /// or an Envoy bootstrap (each obguard wasm filter's `configuration` StringValue). The
    /// loader stops at a configuration's first problem, so each gives at most one error.
    /// Exit status: 0 when every configuration loads, 1 when one is refused (or none is
    /// found), 2 when a file cannot be read or parsed.
    CheckConfig {
        /// Files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema (draft 2020-12) of the plugin configuration.
    Schema,
    /// Write obguard.wasm as an OCI image (Istio's wasm image format, OCI artifact variant):
    /// a layout directory, a tarball of it and its digest, offline.
    Oci(OciArgs),
}

#[derive(clap::Args)]
struct OciArgs {
    /// The module.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "target/wasm32-wasip1/release/obguard.wasm"
    )]
    module: PathBuf,
    /// Where the layout (`<name>/`), `<name>.tar` and `<name>.digest` go.
    #[arg(long, value_name = "DIR", default_value = "target/oci")]
    out: PathBuf,
    /// The layout's (and tarball's) name.
    #[arg(long, default_value = "obguard")]
    name: String,
    /// The tag (`org.opencontainers.image.ref.name`).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    tag: String,
}

#[derive(clap::Args)]
struct LintArgs {
    /// The OpenAPI 3.0 or 3.1 description (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    openapi: PathBuf,
    /// The plugin configuration (JSON, as in the Wasm filter's `configuration`; YAML is read
    /// as Istio's `pluginConfig` holds it).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// An Envoy bootstrap (or listener dump) that loads obguard: checked for fail-open
    /// settings, path normalisation and filter order.
    #[arg(long, value_name = "FILE")]
    envoy: Option<PathBuf>,
    /// An Istio WasmPlugin (YAML, several documents allowed) that loads obguard.
    #[arg(long, value_name = "FILE")]
    wasmplugin: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the report here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit 1 when a finding is at least this severe.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,
    /// A tag that marks payment operations (repeatable; replaces the UK Open Banking payment
    /// tags used by default). `x-obguard-payment: true|false` on an operation or path item
    /// overrides tags.
    #[arg(long, value_name = "TAG")]
    payment_tag: Vec<String>,
    /// A prefix the gateway sees before every path of the description (e.g.
    /// `/open-banking/v4.0/aisp`); `servers` are not read.
    #[arg(long, value_name = "PATH", default_value = "")]
    base_path: String,
    /// Do not report this rule (id such as `OBG102`, or name; repeatable).
    #[arg(long, value_name = "RULE")]
    disable: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// For people: one block a finding, with file:line:column and the JSON pointer.
    Text,
    /// Machine-readable findings.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning (github/codeql-action/upload-sarif).
    Sarif,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Error,
    Warning,
    Note,
    /// Always exit 0 after a report (findings are still printed).
    Never,
}

impl FailOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Note => Some(Severity::Note),
            FailOn::Never => None,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint(args) => run_lint(&args),
        Command::CheckConfig { files } => run_check(&files),
        Command::Schema => std::io::stdout()
            .lock()
            .write_all(obguard_cli::schema::render().as_bytes())
            .context("cannot write the schema")
            .map(|()| ExitCode::SUCCESS),
        Command::Oci(args) => run_oci(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("obguard: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run_lint(args: &LintArgs) -> anyhow::Result<ExitCode> {
    let mut disabled = Vec::new();
    for name in &args.disable {
        match Rule::find(name) {
            Some(rule) => disabled.push(rule),
            None => bail!("--disable {name}: no such rule (see docs/lint.md)"),
        }
    }
    let inputs = Inputs {
        openapi: args.openapi.clone(),
        config: args.config.clone(),
        envoy: args.envoy.clone(),
        wasmplugin: args.wasmplugin.clone(),
    };
    let mut options = Options {
        base_path: args.base_path.clone(),
        ..Options::default()
    };
    if !args.payment_tag.is_empty() {
        options.payment_tags = args.payment_tag.clone();
    }
    let mut report = lint::run(&inputs, &options);
    report.findings.retain(|f| !disabled.contains(&f.rule));
    let rendered = match args.format {
        Format::Text => lint::report::text(&report),
        Format::Json => format!("{:#}\n", lint::report::json(&report)),
        Format::Sarif => format!("{:#}\n", lint::report::sarif(&report).context("SARIF")?),
    };
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout()
            .lock()
            .write_all(rendered.as_bytes())
            .context("cannot write the report")?,
    }
    let failed = args
        .fail_on
        .threshold()
        .is_some_and(|t| report.worst().is_some_and(|w| w >= t));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn run_check(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut ok = true;
    let mut out = String::new();
    for file in files {
        let checked = check::check_file(file)?;
        ok &= check::all_ok(&checked);
        out.push_str(&check::render(file, &checked));
    }
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .context("cannot write the report")?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_oci(args: &OciArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let image = oci::build(&args.module, &args.out, &args.name, &args.tag)?;
    println!(
        "layout:  {} (oci:{}:{})",
        image.layout.display(),
        image.layout.display(),
        args.tag
    );
    println!(
        "tarball: {} (oci-archive:{})",
        image.tarball.display(),
        image.tarball.display()
    );
    println!("module:  {}", image.module_digest);
    println!(
        "digest:  {} (written to {})",
        image.digest,
        image.digest_file.display()
    );
    Ok(ExitCode::SUCCESS)
}
