//! simulate → train → save → load → eval, end to end on a small run, and a byte-identical
//! retrain (model files are reproducible).
// Test helpers may unwrap and index like #[test] fns (clippy.toml): failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg(feature = "train")]

use std::path::PathBuf;

use obguard_models::sim::{SimConfig, simulate};
use obguard_models::train::{Algorithm, TrainConfig, train_file};
use obguard_models::{eval, load};

fn simulated(name: &str, seed: u64) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "obguard-models-{}-{name}.jsonl",
        std::process::id()
    ));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    simulate(
        SimConfig {
            seed,
            clients: 10,
            days: 3,
            attacks_per_day: 10.0,
        },
        &mut file,
    )
    .unwrap();
    drop(file);
    path
}

#[test]
fn simulate_train_load_eval() {
    let train = simulated("train", 21);
    let test = simulated("test", 22);
    let cfg = TrainConfig {
        seed: 3,
        algorithm: Algorithm::Forest,
        trees: 5,
        max_depth: 6,
        max_normal_rows: 20_000,
        utc_offset_minutes: 60,
        created: Some("2026-11-25T00:00:00Z".into()),
        budgets: obguard_models::train::TRAINING_BUDGETS,
    };
    let model = train_file(&train, &cfg).unwrap();
    let bytes = model.to_bytes().unwrap();
    assert_eq!(train_file(&train, &cfg).unwrap().to_bytes().unwrap(), bytes);
    let loaded = load(&bytes).unwrap();
    assert_eq!(loaded.metadata().utc_offset_minutes, 60);
    assert_eq!(loaded.metadata().seed, 3);
    assert_eq!(loaded.metadata().data_digest.len(), 64);
    loaded.thresholds().validate().unwrap();

    let report = eval::evaluate_file(&loaded, None, &test, 20, eval::Sharding::SINGLE).unwrap();
    let (episodes, caught) = report.episodes();
    assert_eq!(episodes, 30);
    assert!(caught > 0, "{}", report.render());
    assert!(report.normal > 0);
    assert!(report.render().contains("legitimate requests by verdict"));
    let dir = std::env::temp_dir().join(format!("obguard-models-{}-plots", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    obguard_models::plots::write_all(&report, &dir).unwrap();
    for f in ["roc.png", "pr.png", "score-histogram.png"] {
        assert!(std::fs::metadata(dir.join(f)).unwrap().len() > 1000, "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&train);
    let _ = std::fs::remove_file(&test);
}
