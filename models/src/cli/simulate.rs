//! `obguard-models simulate`: labelled traffic from world A (`sim`) or world B (`sim_b`).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use obguard_models::{sim, sim_b};

/// Which simulated world `simulate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum World {
    A,
    B,
}

// No doc comment: the subcommand's help is the `Command::Simulate` variant's.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// `a`: the world the features were designed with (models/src/sim/); `b`: an
    /// independently designed one (models/src/sim_b/), for cross-world evaluation.
    #[arg(long, value_enum, default_value_t = World::A)]
    world: World,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// World A: legitimate clients.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Days simulated (world B default: 14).
    #[arg(long)]
    days: Option<u32>,
    /// Attack episodes per simulated day (world A default 20, world B 4).
    #[arg(long)]
    attacks_per_day: Option<f64>,
    /// World B: first day (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    start: Option<String>,
    /// World B: traffic volume (1.0 = default size).
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
    #[arg(long)]
    out: PathBuf,
}

/// What a world's simulator reports: records, attack records, episodes.
struct Written {
    records: u64,
    attack_records: u64,
    episodes: u32,
}

pub fn run(args: SimulateArgs) -> Result<()> {
    let started = Instant::now();
    let out = &args.out;
    let mut w =
        BufWriter::new(File::create(out).with_context(|| format!("creating {}", out.display()))?);
    let written = match args.world {
        World::A => world_a(&args, &mut w)?,
        World::B => world_b(&args, &mut w)?,
    };
    w.flush()?;
    eprintln!(
        "wrote {} records ({} attack records, {} episodes) to {} in {:.1}s",
        written.records,
        written.attack_records,
        written.episodes,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn world_a(args: &SimulateArgs, w: &mut impl std::io::Write) -> Result<Written> {
    let summary = sim::simulate(
        sim::SimConfig {
            seed: args.seed,
            clients: args.clients,
            days: args.days.unwrap_or(10),
            attacks_per_day: args.attacks_per_day.unwrap_or(20.0),
        },
        w,
    )?;
    Ok(Written {
        records: summary.records as u64,
        attack_records: summary.attack_records as u64,
        episodes: summary.episodes,
    })
}

fn world_b(args: &SimulateArgs, w: &mut impl std::io::Write) -> Result<Written> {
    let defaults = sim_b::WorldBConfig::default();
    let stats = sim_b::simulate(
        &sim_b::WorldBConfig {
            seed: args.seed,
            days: args.days.unwrap_or(defaults.days),
            start: args.start.clone().unwrap_or(defaults.start),
            attacks_per_day: args
                .attacks_per_day
                .map_or(defaults.attacks_per_day, |a| a.round().max(0.0) as u32),
            scale: args.scale,
        },
        w,
    )?;
    Ok(Written {
        records: stats.records,
        attack_records: stats.attack_records,
        episodes: stats.episodes,
    })
}
