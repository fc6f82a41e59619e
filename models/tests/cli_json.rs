#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `obguard-models explain --json`, `eval --json` and the eval CI gates, run as the built
//! binary on a small simulated run (simulated and trained once, through the CLI).
#![cfg(feature = "train")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_obguard-models");
/// `cli::EXIT_GATE_FAILED`.
const EXIT_GATE_FAILED: i32 = 3;

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Fixture {
    dir: PathBuf,
    model: PathBuf,
    data: PathBuf,
}

/// 10 clients, 3 days, 30 attack episodes; a 5-tree forest trained on another seed.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("obguard-cli-json-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (train, data, model) = (
            dir.join("train.jsonl"),
            dir.join("test.jsonl"),
            dir.join("m.model"),
        );
        for (seed, out) in [("21", &train), ("22", &data)] {
            ok(&run(&[
                "simulate",
                "--seed",
                seed,
                "--clients",
                "10",
                "--days",
                "3",
                "--attacks-per-day",
                "10",
                "--out",
                s(out),
            ]));
        }
        ok(&run(&[
            "train",
            "--data",
            s(&train),
            "--out",
            s(&model),
            "--trees",
            "5",
            "--max-depth",
            "6",
            "--max-normal-rows",
            "20000",
            "--created",
            "2026-11-25T00:00:00Z",
        ]));
        Fixture { dir, model, data }
    })
}

fn inspect_digest(model: &Path) -> String {
    let out = ok(&run(&["inspect", "--model", s(model)]));
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("digest:"))
        .expect("inspect prints digest:");
    line.trim().to_owned()
}

fn eval_json(f: &Fixture, extra: &[&str]) -> (Output, Value) {
    let mut args = vec![
        "eval",
        "--model",
        s(&f.model),
        "--data",
        s(&f.data),
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("eval --json: {e}\n{}", text(&o.stdout)));
    (o, v)
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn explain_json_lines_carry_fields_reasons_and_the_model_digest() {
    let fx = fixture();
    let digest = inspect_digest(&fx.model);
    assert_eq!(digest.len(), 64);
    let input: Vec<String> = std::fs::read_to_string(&fx.data)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();

    // Non-allowed requests only, no limit: as many lines as eval counts non-allow requests.
    let out = ok(&run(&[
        "explain",
        "--model",
        s(&fx.model),
        "--data",
        s(&fx.data),
        "--json",
        "--limit",
        "0",
    ]));
    let (_, report) = eval_json(fx, &[]);
    let expected = u(&report["legitimate"]["counts"]["non_allow"])
        + report["attack_types"]
            .as_object()
            .unwrap()
            .values()
            .map(|t| u(&t["non_allow_requests"]))
            .sum::<u64>();
    assert!(expected > 0, "the fixture must flag something");
    let mut n = 0u64;
    let mut last_line = 0;
    for l in out.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        n += 1;
        check_line(&v, &input, &digest);
        let line = u(&v["line"]);
        assert!(line > last_line, "lines in input order");
        last_line = line;
        assert_ne!(v["verdict"], "allow");
        let reasons = v["reasons"].as_array().unwrap();
        assert!(!reasons.is_empty() && reasons.len() <= 3, "{l}");
        for r in reasons {
            assert!(!r["feature"].as_str().unwrap().is_empty(), "{l}");
            assert!(!r["text"].as_str().unwrap().is_empty(), "{l}");
            assert!((0.0..=1.0).contains(&f(&r["strength"])), "{l}");
        }
    }
    assert_eq!(n, expected);

    // --all --limit N: allowed requests too (with no reasons), N lines, from line 1 on; the
    // same bytes with --out FILE.
    let args = [
        "explain",
        "--model",
        s(&fx.model),
        "--data",
        s(&fx.data),
        "--json",
        "--all",
        "--limit",
        "40",
    ];
    let out = ok(&run(&args));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 40);
    assert_eq!(u(&lines[0]["line"]), 1);
    for v in &lines {
        check_line(v, &input, &digest);
        if v["verdict"] == "allow" {
            assert_eq!(v["reasons"].as_array().unwrap().len(), 0, "{v}");
        }
    }
    assert!(lines.iter().any(|v| v["verdict"] == "allow"));
    let file = fx.dir.join("explain.jsonl");
    let mut with_out = args.to_vec();
    with_out.extend(["--out", s(&file)]);
    assert_eq!(ok(&run(&with_out)), "");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), out);
}

/// The fields of one `explain --json` line, checked against the input line it names.
fn check_line(v: &Value, input: &[String], digest: &str) {
    let line = u(&v["line"]) as usize;
    let record: Value = serde_json::from_str(&input[line - 1]).unwrap();
    for k in ["client_id", "method", "path"] {
        assert_eq!(v[k], record[k], "{k} of line {line}");
    }
    assert_eq!(v["model_digest"], digest);
    assert!(v["ts"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!((0.0..=1.0).contains(&f(&v["score"])), "{v}");
    assert!(
        ["allow", "step_up", "throttle", "block"].contains(&v["verdict"].as_str().unwrap()),
        "{v}"
    );
    for k in ["label", "episode"] {
        assert_eq!(v.get(k), record.get(k), "{k} of line {line}");
    }
}

/// The numbers of a text report line after its first `skip` words.
fn numbers(line: &str, skip: usize) -> Vec<f64> {
    line.split_whitespace()
        .skip(skip)
        .map(|w| w.trim_end_matches('%').parse::<f64>().unwrap_or(f64::NAN))
        .collect()
}

#[test]
fn eval_json_agrees_with_the_text_report() {
    let fx = fixture();
    let text_report = ok(&run(&[
        "eval",
        "--model",
        s(&fx.model),
        "--data",
        s(&fx.data),
    ]));
    let (o, v) = eval_json(fx, &[]);
    ok(&o);
    assert_eq!(v["model_digest"], inspect_digest(&fx.model).as_str());
    assert_eq!(v["data_digest"].as_str().unwrap().len(), 64);
    assert_eq!(v["training_data_digest"].as_str().unwrap().len(), 64);
    assert_eq!(u(&v["within"]), 20);
    assert_eq!(v["gates"].as_array().unwrap().len(), 0);

    let first = text_report.lines().next().unwrap();
    let w: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(w[1].parse::<u64>().unwrap(), u(&v["records"]));
    assert_eq!(
        w[3].parse::<u64>().unwrap(),
        u(&v["legitimate"]["requests"])
    );
    assert_eq!(w[5].parse::<u64>().unwrap(), u(&v["attack_requests"]));

    let types = v["attack_types"].as_object().unwrap();
    assert!(!types.is_empty());
    for (label, t) in types {
        let row = text_report
            .lines()
            .find(|l| l.split_whitespace().next() == Some(label.as_str()))
            .unwrap_or_else(|| panic!("no row for {label}"));
        let n = numbers(row, 1);
        assert_eq!(n[0] as u64, u(&t["episodes"]), "{label}");
        assert_eq!(n[1] as u64, u(&t["caught_within"]), "{label}");
        assert!(
            (n[2] - 100.0 * f(&t["caught_within_share"])).abs() < 0.051,
            "{label}"
        );
        assert!(
            (n[3] - 100.0 * f(&t["caught_any_share"])).abs() < 0.051,
            "{label}"
        );
        match t["median_first_hit"].as_u64() {
            Some(m) => assert_eq!(n[4] as u64, m, "{label}"),
            None => assert!(n[4].is_nan(), "{label}: '-' in the text"),
        }
        assert!(
            (n[5] - 100.0 * f(&t["non_allow_request_share"])).abs() < 0.051,
            "{label}"
        );
    }
    let all = text_report
        .lines()
        .find(|l| l.trim_start().starts_with("ALL "))
        .unwrap();
    let n = numbers(all, 1);
    assert_eq!(n[0] as u64, u(&v["detection"]["episodes"]));
    assert_eq!(n[1] as u64, u(&v["detection"]["caught_within"]));
    assert!((n[2] - 100.0 * f(&v["detection"]["caught_within_share"])).abs() < 0.051);

    let legit = &v["legitimate"];
    for verdict in ["allow", "step_up", "throttle", "block", "non-allow"] {
        let key = verdict.replace('-', "_");
        let row = text_report
            .lines()
            .find(|l| l.split_whitespace().next() == Some(verdict))
            .unwrap();
        let n = numbers(row, 1);
        assert_eq!(n[0] as u64, u(&legit["counts"][&key]), "{verdict}");
        assert!(
            (n[1] - 100.0 * f(&legit["shares"][&key])).abs() < 0.000_051,
            "{verdict}"
        );
    }
    let roc = text_report.lines().find(|l| l.contains("ROC AUC")).unwrap();
    let w: Vec<&str> = roc.split_whitespace().collect();
    assert!((w[3].parse::<f64>().unwrap() - f(&v["roc_auc"])).abs() < 0.000_051);
    assert!((w[6].parse::<f64>().unwrap() - f(&v["average_precision"])).abs() < 0.000_051);
}

#[test]
fn gates_pass_or_fail_with_exit_3_naming_the_gate() {
    let fx = fixture();
    let (o, v) = eval_json(
        fx,
        &[
            "--min-detection",
            "0",
            "--min-detection-per-type",
            "0",
            "--max-non-allow",
            "1",
            "--max-block",
            "1",
        ],
    );
    ok(&o);
    let gates = v["gates"].as_array().unwrap();
    // One per attack type for --min-detection-per-type, one for each other gate.
    assert_eq!(
        gates.len(),
        3 + v["attack_types"].as_object().unwrap().len()
    );
    assert!(gates.iter().all(|g| g["passed"] == true), "{gates:?}");

    let non_allow = f(&v["legitimate"]["shares"]["non_allow"]);
    assert!(
        non_allow > 0.0,
        "the fixture flags some legitimate requests"
    );
    // The text report is still printed when a gate fails.
    let o = run(&[
        "eval",
        "--model",
        s(&fx.model),
        "--data",
        s(&fx.data),
        "--max-non-allow",
        "0",
        "--max-block",
        "1",
    ]);
    assert_eq!(
        o.status.code(),
        Some(EXIT_GATE_FAILED),
        "{}",
        text(&o.stderr)
    );
    assert!(text(&o.stdout).contains("legitimate requests by verdict"));
    let err = text(&o.stderr);
    let failed = err
        .lines()
        .find(|l| l.contains("FAILED"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(failed.contains("--max-non-allow"), "{failed}");
    // The same share as the JSON report (serde_json's float parsing may differ in the last digit).
    let measured: f64 = failed
        .split("measured ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{failed}"));
    assert!(
        (measured - non_allow).abs() < 1e-9,
        "{failed} vs {non_allow}"
    );
    assert!(failed.contains("limit <= 0"), "{failed}");
    assert!(err.contains("--max-block (legitimate): measured"), "{err}");
    assert!(err.contains("1 of 2 gates failed"), "{err}");

    // And the JSON written to --out records which gate failed.
    let file = fx.dir.join("eval.json");
    let o = run(&[
        "eval",
        "--model",
        s(&fx.model),
        "--data",
        s(&fx.data),
        "--json",
        "--out",
        s(&file),
        "--min-detection",
        "1",
    ]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let caught_all = f(&v["detection"]["caught_within_share"]) >= 1.0;
    assert_eq!(
        o.status.code(),
        Some(if caught_all { 0 } else { EXIT_GATE_FAILED })
    );
    assert_eq!(v["gates"][0]["gate"], "min-detection");
    assert_eq!(v["gates"][0]["passed"], caught_all);
}

#[test]
fn gate_limits_outside_0_to_1_are_refused() {
    for (flag, value) in [
        ("--min-detection", "95"),
        ("--max-non-allow", "-0.1"),
        ("--max-block", "1.5"),
        ("--min-detection-per-type", "NaN"),
        ("--max-block", "0.1%"),
    ] {
        let o = run(&[
            "eval",
            "--model",
            "none.model",
            "--data",
            "none.jsonl",
            flag,
            value,
        ]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}");
        let err = text(&o.stderr);
        assert!(
            err.contains(flag) && (err.contains("0 and 1") || err.contains("0..=1")),
            "{err}"
        );
    }
}
