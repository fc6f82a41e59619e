#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Training without labels, end to end through the built CLI: world B's records with their
//! labels ignored → `train --unlabelled` (episodes injected into the real clients' streams) →
//! `eval` on another world-B seed; then `calibrate` on the records for a target false-alarm
//! rate, and `eval` confirms the rate on their legitimate part.
#![cfg(feature = "train")]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_obguard-models");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn eval_json(model: &Path, data: &Path, out: &Path) -> Value {
    ok(&run(&[
        "eval",
        "--json",
        "--no-rules",
        "--model",
        s(model),
        "--data",
        s(data),
        "--out",
        s(out),
    ]));
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

#[test]
fn unlabelled_records_train_a_model_that_detects_and_calibrate_meets_its_target() {
    let dir = std::env::temp_dir().join(format!("obguard-unlabelled-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (logs, test) = (dir.join("logs.jsonl"), dir.join("test.jsonl"));
    for (seed, out) in [("31", &logs), ("32", &test)] {
        ok(&run(&[
            "simulate",
            "--world",
            "b",
            "--seed",
            seed,
            "--days",
            "4",
            "--scale",
            "0.3",
            "--out",
            s(out),
        ]));
    }

    // The injection alone, to inspect: labelled episodes merged into the real stream.
    let mixed = dir.join("mixed.jsonl");
    let said = ok(&run(&[
        "inject",
        "--data",
        s(&logs),
        "--out",
        s(&mixed),
        "--inject-episodes",
        "90",
        "--min-victim-requests",
        "100",
    ]));
    assert!(said.contains("injected 90 episodes"), "{said}");
    let text = std::fs::read_to_string(&mixed).unwrap();
    let mut injected = 0;
    let mut last_ts = String::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let label = v["label"].as_str().unwrap();
        if label.starts_with("injected_") {
            injected += 1;
            assert!(v["episode"].as_str().unwrap().starts_with("inj-"), "{line}");
        } else {
            assert_eq!(label, "normal", "the logs' own labels are ignored: {line}");
        }
        let ts = v["ts"].as_str().unwrap().to_string();
        assert!(ts >= last_ts, "time order: {ts} after {last_ts}");
        last_ts = ts;
    }
    assert!(injected > 1_000, "{injected} injected records");

    let model = dir.join("unlabelled.model");
    let said = ok(&run(&[
        "train",
        "--unlabelled",
        "--data",
        s(&logs),
        "--out",
        s(&model),
        "--trees",
        "10",
        "--inject-episodes",
        "180",
        "--min-victim-requests",
        "100",
        "--created",
        "2026-11-25T00:00:00Z",
    ]));
    assert!(
        said.contains("records labelled as attacks in the input were treated as normal"),
        "{said}"
    );
    assert!(
        !dir.join("unlabelled.injected.jsonl").exists(),
        "the mix is removed"
    );

    // Real attacks it never saw labelled, on another seed.
    let report = eval_json(&model, &test, &dir.join("eval.json"));
    let caught = report["detection"]["caught_within_share"].as_f64().unwrap();
    let non_allow = report["legitimate"]["shares"]["non_allow"]
        .as_f64()
        .unwrap();
    assert!(caught > 0.2, "caught {caught}");
    assert!(non_allow < 0.01, "non-allow {non_allow}");

    // Thresholds for at most 0.5% non-allow on the bank's own records.
    let calibrated = dir.join("calibrated.model");
    let said = ok(&run(&[
        "calibrate",
        "--model",
        s(&model),
        "--data",
        s(&logs),
        "--max-non-allow",
        "0.005",
        "--out",
        s(&calibrated),
    ]));
    assert!(said.contains("sign it before deploying"), "{said}");
    let report = eval_json(&calibrated, &logs, &dir.join("eval-calibrated.json"));
    let non_allow = report["legitimate"]["shares"]["non_allow"]
        .as_f64()
        .unwrap();
    assert!(
        non_allow <= 0.005,
        "calibrated for 0.5%, measured {non_allow}"
    );
    assert!(
        non_allow > 0.0005,
        "the budget is used, not ignored: {non_allow}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
