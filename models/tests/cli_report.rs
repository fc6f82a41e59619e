#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `obguard-models report` run as the built binary on a small fixture mixing the three input
//! shapes (tests/fixtures/report/: an access log with traffic records and a text line in
//! mixed.jsonl, CloudEvents single and batched in events.jsonl).
#![cfg(feature = "train")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_obguard-models");
const CLIENT: &str = "aggregator-tpp@demo-idp.obguard.test";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("obguard-cli-report-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `report` on both fixture files into `out` with `extra` flags; `SOURCE_DATE_EPOCH`
/// is cleared unless `epoch` sets it.
fn report(out: &Path, extra: &[&str], epoch: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "report",
        "--input",
        &fixture("mixed.jsonl"),
        "--input",
        &fixture("events.jsonl"),
        "--out",
        out.to_str().unwrap(),
    ])
    .args(extra)
    .env_remove("SOURCE_DATE_EPOCH");
    if let Some(e) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", e);
    }
    cmd.output().unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\n{}{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn page(name: &str, extra: &[&str]) -> (String, String) {
    let out = dir().join(name);
    let mut args = vec![
        "--client",
        "aggregator-tpp",
        "--generated-at",
        "2026-11-26T00:00:00Z",
    ];
    args.extend_from_slice(extra);
    let o = report(&out, &args, None);
    ok(&o);
    (std::fs::read_to_string(&out).unwrap(), text(&o.stderr))
}

#[test]
fn report_renders_the_mixed_fixture() {
    let (html, stderr) = page("full.html", &[]);
    // stderr: what was read, skipped and merged.
    assert!(
        stderr.contains("report: 8 requests of aggregator-tpp"),
        "{stderr}"
    );
    assert!(stderr.contains(CLIENT), "{stderr}");
    assert!(
        stderr.contains(
            "passed over 3 line(s) not JSON, 1 without a time or client id, 2 of other clients"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("1 repeated event deliveries"), "{stderr}");
    assert!(stderr.contains("4 line(s) merged"), "{stderr}");

    // Header.
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<title>Incident report: aggregator-tpp</title>"));
    assert!(html.contains("<code>mixed.jsonl</code>, <code>events.jsonl</code>"));
    assert!(html.contains("<dt>Generated</dt><dd>2026-11-26T00:00:00.000Z</dd>"));
    assert!(html.contains("<dt>First seen</dt><dd>2026-11-25T17:04:20.065Z</dd>"));
    assert!(html.contains("<dt>Last seen</dt><dd>2026-11-25T19:30:00.000Z</dd>"));
    assert!(
        html.contains("<strong>8</strong> requests, <strong>4</strong> refused"),
        "{html}"
    );
    for (verdict, n) in [
        ("allow", 3),
        ("step_up", 1),
        ("throttle", 1),
        ("block", 1),
        ("refused without verdict", 1),
        ("unscored", 1),
    ] {
        let row = format!("<tr><td>{verdict}</td><td class=\"num\">{n}</td></tr>");
        assert!(html.contains(&row), "{row}");
    }
    assert!(html.contains("<tr><td>missing_scope</td><td class=\"num\">1</td></tr>"));
    assert!(html.contains("<td><code>new_country(RU)</code></td>"));
    assert!(html.contains(
        "<td><strong>quarantine</strong></td><td>bola-enumeration</td><td>2026-11-25T20:10:00Z</td>"
    ));

    // Both plots, inline, with axis labels and legends.
    assert_eq!(html.matches("<svg ").count(), 2);
    assert!(html.contains("<svg id=\"plot-requests\""));
    assert!(html.contains("<svg id=\"plot-scores\""));
    assert!(html.contains(">requests per hour</text>"));
    assert_eq!(html.matches(">time (UTC)</text>").count(), 2);
    for label in [
        "allow",
        "step_up",
        "throttle",
        "block",
        "refused without verdict",
        "unscored",
        "novelty (new_…)",
        "containment",
    ] {
        let in_legend = html.split("<text class=\"legend\"").skip(1).any(|rest| {
            rest.split("</text>")
                .next()
                .unwrap()
                .ends_with(&format!(">{label}"))
        });
        assert!(in_legend, "legend {label}");
    }
    // Novelty markers: the step-up (new_country) and the block (new_asn); the containment.
    assert_eq!(html.matches("class=\"novelty step_up\"").count(), 1);
    assert_eq!(html.matches("class=\"novelty block\"").count(), 1);
    assert_eq!(html.matches("<line class=\"containment\"").count(), 1);
    assert!(html.contains(">quarantine</text>"));

    // The table: one row per request, oldest first; alerts marked.
    assert_eq!(html.matches("<tr class=\"").count(), 8);
    assert_eq!(html.matches("<tr class=\"step_up event\">").count(), 1);
    assert_eq!(html.matches("<tr class=\"block event\">").count(), 1);
    let first = html
        .find("<td class=\"time\">2026-11-25T17:04:20.065Z</td>")
        .unwrap();
    let last = html
        .find("<td class=\"time\">2026-11-25T19:30:00.000Z</td>")
        .unwrap();
    assert!(first < last);
    assert!(html.contains("event: verdict"));
    assert!(html.contains("event: containment"));
    assert!(
        html.contains("AcmeAggregator/2.3"),
        "the record's user agent on the merged row"
    );
    assert!(!html.contains("left out"));
    // What it means: a paragraph per kind present.
    for kind in [
        "<strong>step_up</strong>",
        "<strong>throttle</strong>",
        "<strong>block</strong>",
        "<strong>containment</strong>",
    ] {
        assert!(html.contains(kind), "{kind}");
    }

    // Nothing executable, nothing remote.
    assert!(!html.contains("<script"));
    for remote in ["src=", "href=", "http://", "https://", "url("] {
        assert!(!html.contains(remote), "{remote}");
    }
    // The attacker's path, user agent and reason, escaped.
    assert!(html.contains("/accounts/&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;onmouseover=alert(1) x="));
    assert!(!html.contains("\"onmouseover"));
}

#[test]
fn report_is_deterministic_and_honours_source_date_epoch() {
    let (a, _) = page("det-a.html", &[]);
    let (b, _) = page("det-b.html", &[]);
    assert_eq!(a, b);
    let out = dir().join("epoch.html");
    let o = report(&out, &["--client", "aggregator-tpp"], Some("1795651200"));
    ok(&o);
    let c = std::fs::read_to_string(&out).unwrap();
    assert_eq!(a, c, "SOURCE_DATE_EPOCH 1795651200 is 2026-11-26T00:00:00Z");
}

#[test]
fn report_max_rows_keeps_events_and_the_newest() {
    let (html, _) = page("rows.html", &["--max-rows", "3"]);
    assert_eq!(html.matches("<tr class=\"").count(), 3);
    assert!(html.contains("5 older request(s) are left out"));
    assert!(html.contains("<tr class=\"step_up event\">"));
    assert!(html.contains("<tr class=\"block event\">"));
    assert!(html.contains("<td class=\"time\">2026-11-25T19:30:00.000Z</td>"));
    // Counts still cover everything.
    assert!(html.contains("<strong>8</strong> requests"));
}

#[test]
fn report_window_and_title() {
    let (html, stderr) = page(
        "window.html",
        &[
            "--from",
            "2026-11-25T18:00:00Z",
            "--to",
            "2026-11-25T19:00:00Z",
            "--title",
            "TPP <b>review</b>",
        ],
    );
    assert!(stderr.contains("report: 3 requests"), "{stderr}");
    assert!(html.contains("<title>TPP &lt;b&gt;review&lt;/b&gt;</title>"));
    assert!(
        html.contains(
            "<dt>Window</dt><dd>2026-11-25T18:00:00.000Z – 2026-11-25T19:00:00.000Z</dd>"
        )
    );
    assert_eq!(html.matches("<line class=\"containment\"").count(), 0);
    assert!(html.contains("None reported."));
}

#[test]
fn report_without_the_client_fails_and_names_what_it_saw() {
    let out = dir().join("none.html");
    let _ = std::fs::remove_file(&out);
    let o = report(&out, &["--client", "nobody"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("no line matches client \"nobody\" (18 lines read from 2 file(s))"),
        "{err}"
    );
    assert!(err.contains(&format!("{CLIENT} (")), "{err}");
    assert!(err.contains("other-tpp@demo-idp.obguard.test (2)"), "{err}");
    assert!(!out.exists(), "no page without a match");

    let o = report(
        &out,
        &[
            "--client",
            "aggregator-tpp",
            "--from",
            "2027-01-01T00:00:00Z",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("outside --from/--to"),
        "{}",
        text(&o.stderr)
    );

    let o = report(
        &out,
        &["--client", "aggregator-tpp", "--from", "yesterday"],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "a bad time is a usage error");
}
