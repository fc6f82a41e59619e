#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Prometheus-native metrics through the real Envoy: the `stats_config` of
//! envoy/demo/envoy.yaml (read from that file, not copied) turns obguard's metric-name
//! dimensions into labels on `/stats/prometheus`; every metric obguard defines (Envoy's own
//! `/stats`, the code's names) appears there exactly once as a labelled series; and every
//! metric and label the Grafana dashboard (deploy/grafana/obguard.json) and the alert rules
//! (deploy/prometheus/obguard-rules.yaml) use is one that this Envoy really exports.

use std::collections::{BTreeMap, BTreeSet};

use obguard_cli::lint::source::Document;
use obguard_integration::{EchoUpstream, Envoy, EnvoyOptions, RawRequest, workspace_root};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

/// Labels Prometheus itself adds to every scraped series (target labels, Kubernetes SD).
const SCRAPE_LABELS: [&str; 5] = ["namespace", "pod", "instance", "job", "container"];

/// A configuration that defines every obguard metric: remote JWKS, model with a shadow,
/// rate limits, rules, routes, a consent service and FAPI header checks.
fn full_config() -> Value {
    let mut config = kit::plugin_config();
    config["issuers"][0]["jwks_remote"] = json!({
        "cluster": "idp", "path": "/.well-known/jwks.json", "refresh_s": 3600,
    });
    let mut model = kit::config::shipped_model("enforce");
    model["shadow_model"] = json!({"inline_base64": model["inline_base64"].clone()});
    config["model"] = model;
    config["ratelimit"] = json!({
        "cluster": "ratelimit", "domain": "obguard",
        "descriptors": [{"entries": [{"key": "client_id", "from": "client_id"}]}],
        "timeout_ms": 50,
    });
    config["rules"] = json!({});
    // The Open Banking profile's counters: consent (service form), FAPI headers logged.
    config["issuers"][0]["consent"] = json!({"consent_id_claim": "openbanking_intent_id"});
    config["routes"][1]["consent_params"] = json!(["AccountId"]);
    config["consent_service"] = json!({"cluster": "consents", "path": "/consents/{consent_id}"});
    config["fapi"] = json!({"on_invalid": "log"});
    // Automated response and threat intelligence.
    config["events"] = json!({"cluster": "soc"});
    config["containment"] = json!({
        "playbooks": [{"name": "repeat-blocks", "when": {"outcomes": ["blocked"]},
                       "count": 2, "action": "quarantine_client"}],
        "list": {"cluster": "soc", "path": "/containment.json"}
    });
    config["threat_intel"] = json!({"feeds": [
        {"name": "drop", "kind": "ip", "action": "deny", "fetch": {"cluster": "soc", "path": "/drop.txt"}}
    ]});
    config
}

/// The demo bootstrap's `stats_config`, as JSON.
fn demo_stats_config(bootstrap: &mut Value) {
    let demo = Document::read(&workspace_root().join("envoy/demo/envoy.yaml")).unwrap();
    bootstrap["stats_config"] = demo.value["stats_config"].clone();
}

/// `/stats/prometheus` parsed: metric name → its series' label sets (name → value).
type Series = BTreeMap<String, Vec<BTreeMap<String, String>>>;

fn parse_prometheus(text: &str) -> Series {
    let mut out = Series::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, rest) = match line.find('{') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line.split(' ').next().unwrap(), ""),
        };
        let mut labels = BTreeMap::new();
        if let Some(end) = rest.find('}') {
            for pair in rest[..end].split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap();
                labels.insert(k.to_owned(), v.trim_matches('"').to_owned());
            }
        }
        out.entry(name.to_owned()).or_default().push(labels);
    }
    out
}

#[test]
fn stats_tags_make_labels_and_dashboards_use_only_real_names() {
    let upstream = EchoUpstream::start();
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(full_config());
    // Unreachable on purpose (port 9 on loopback): the clusters must exist for the calls; the
    // test is about names, and failed calls move failure counters.
    for name in ["idp", "ratelimit", "soc"] {
        opts.extra_clusters
            .push(obguard_integration::grpc_cluster(name, 9));
    }
    opts.customize = Some(demo_stats_config);
    let envoy = Envoy::start(opts);

    let good = kit::token_for("RS256", Key::Rsa1, "tpp-1", "accounts");
    let no_scope = kit::token_for("RS256", Key::Rsa1, "tpp-1", "balances");
    let mut claims = kit::claims("tpp-1", "accounts");
    claims["exp"] = json!(1);
    claims["iat"] = json!(0);
    let expired = kit::token("RS256", Key::Rsa1, &claims);
    envoy.send(&RawRequest::get("/accounts"));
    envoy.send(&RawRequest::get("/accounts").bearer(&good));
    envoy.send(&RawRequest::get("/accounts").bearer(&expired));
    envoy.send(&RawRequest::post("/domestic-payments").bearer(&no_scope));
    envoy.wait_counter("wasmcustom.obguard.requests.insufficient_scope", 1);

    let text = envoy.admin(&RawRequest::get("/stats/prometheus")).text();
    let series = parse_prometheus(&text);
    let obguard: Series = series
        .iter()
        .filter(|(name, _)| name.starts_with("obguard_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    // Dimensions are labels, not name parts.
    let has = |metric: &str, label: &str, value: &str| {
        obguard.get(metric).is_some_and(|s| {
            s.iter()
                .any(|l| l.get(label).map(String::as_str) == Some(value))
        })
    };
    for (metric, label, value) in [
        ("obguard_requests", "outcome", "allowed"),
        ("obguard_requests", "outcome", "missing_token"),
        ("obguard_requests", "outcome", "invalid_token"),
        ("obguard_token_invalid", "reason", "expired"),
        ("obguard_request_invalid", "reason", "path_dot_segment"),
        ("obguard_scope_denied", "route", "payments"),
        ("obguard_verdict", "verdict", "step_up"),
        ("obguard_shadow_verdict", "verdict", "block"),
        ("obguard_model_rejected", "reason", "bad_signature"),
        ("obguard_model_rejected", "role", "shadow"),
        ("obguard_model_swapped", "role", "primary"),
        ("obguard_jwks_fetch_failed", "reason", "not_jwks"),
        ("obguard_ratelimit_failure", "reason", "timeout"),
        ("obguard_rules_hit", "rule", "payment_velocity"),
        ("obguard_baseline", "fate", "slot_taken"),
        ("obguard_rules_state", "fate", "lost"),
        ("obguard_signature_checks", "implementation", "wasm"),
        ("obguard_token_cache", "result", "miss"),
        ("obguard_events_dropped", "reason", "queue_full"),
        ("obguard_containment_added", "action", "revoke_token"),
        ("obguard_containment_hits", "kind", "quarantine"),
        (
            "obguard_containment_playbook_triggered",
            "playbook",
            "repeat-blocks",
        ),
        ("obguard_containment_list_fetch_failed", "reason", "invalid"),
        ("obguard_intel_denied", "feed", "drop"),
        ("obguard_intel_fetch_failed", "feed", "drop"),
        ("obguard_intel_fetch_failed", "reason", "too_large"),
    ] {
        assert!(
            has(metric, label, value),
            "no {metric}{{{label}=\"{value}\"}} in:\n{}",
            obguard.keys().cloned().collect::<Vec<_>>().join("\n")
        );
    }
    let allowed = text
        .lines()
        .find(|l| l.starts_with("obguard_requests{outcome=\"allowed\"}"))
        .unwrap();
    assert!(allowed.ends_with(" 1"), "{allowed}");

    // Every counter and gauge the code defined (full names on /stats) is one labelled series,
    // and no dimension is left in a name.
    let defined: BTreeSet<String> = envoy
        .stats_matching("^wasmcustom\\.obguard\\.")
        .into_keys()
        .collect();
    let exported: usize = obguard.values().map(Vec::len).sum();
    assert_eq!(
        defined.len(),
        exported,
        "defined:\n{defined:#?}\nexported:\n{obguard:#?}"
    );
    let names: BTreeSet<&str> = obguard.keys().map(String::as_str).collect();
    let expected_names: BTreeSet<&str> = [
        "obguard_baseline",
        "obguard_consent",
        "obguard_consent_denied",
        "obguard_consent_fetch_failed",
        "obguard_containment_active",
        "obguard_containment_added",
        "obguard_containment_evicted",
        "obguard_containment_expired",
        "obguard_containment_hits",
        "obguard_containment_list_fetch_failed",
        "obguard_containment_list_loaded",
        "obguard_containment_list_not_modified",
        "obguard_containment_list_stale",
        "obguard_containment_lost",
        "obguard_containment_not_counted",
        "obguard_containment_playbook_triggered",
        "obguard_events_dropped",
        "obguard_events_failed",
        "obguard_events_queue_depth",
        "obguard_events_queued",
        "obguard_events_retried",
        "obguard_events_sent",
        "obguard_fapi_logged",
        "obguard_host_request_refused",
        "obguard_intel_denied",
        "obguard_intel_entries",
        "obguard_intel_fetch_failed",
        "obguard_intel_loaded",
        "obguard_intel_not_modified",
        "obguard_intel_stale",
        "obguard_intel_watched",
        "obguard_jwks_fetch_failed",
        "obguard_jwks_fetched",
        "obguard_jwks_keys_age_s",
        "obguard_jwks_refetch_requested",
        "obguard_jwks_refetch_suppressed",
        "obguard_model_fetch_failed",
        "obguard_model_fetched",
        "obguard_model_not_modified",
        "obguard_model_rejected",
        "obguard_model_swapped",
        "obguard_model_unavailable",
        "obguard_ratelimit_failed_closed",
        "obguard_ratelimit_failed_open",
        "obguard_ratelimit_failure",
        "obguard_ratelimit_headers_dropped",
        "obguard_ratelimit_ok",
        "obguard_ratelimit_over_limit",
        "obguard_request_invalid",
        "obguard_requests",
        "obguard_rules_hit",
        "obguard_rules_state",
        "obguard_scope_denied",
        "obguard_sender_constraint_refused",
        "obguard_sender_constraint_verified",
        "obguard_shadow_verdict",
        "obguard_signature_checks",
        "obguard_token_cache",
        "obguard_token_invalid",
        "obguard_verdict",
    ]
    .into();
    assert_eq!(names, expected_names, "the tagged metric names changed");

    // The dashboard and the alert rules use only what this Envoy exports.
    let root = workspace_root();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/obguard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<(String, String)> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap().to_owned();
            exprs.push((title, target["expr"].as_str().unwrap().to_owned()));
        }
    }
    let dashboard_exprs = exprs.len();
    let rules = Document::read(&root.join("deploy/prometheus/obguard-rules.yaml")).unwrap();
    for group in rules.value["spec"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            exprs.push((
                rule["alert"].as_str().unwrap().to_owned(),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert!(dashboard_exprs >= 15 && exprs.len() >= dashboard_exprs + 10);
    let mut used = BTreeSet::new();
    for (what, expr) in &exprs {
        let refs = references(expr);
        assert!(
            !refs.metrics.is_empty(),
            "{what}: no obguard metric in `{expr}`"
        );
        for (metric, matchers) in &refs.metrics {
            used.insert(metric.clone());
            let Some(sets) = obguard.get(metric) else {
                panic!("{what}: `{metric}` is not exported by Envoy (`{expr}`)");
            };
            for (label, value) in matchers {
                let values: BTreeSet<&str> = sets
                    .iter()
                    .filter_map(|l| l.get(label).map(String::as_str))
                    .collect();
                assert!(
                    !values.is_empty() || SCRAPE_LABELS.contains(&label.as_str()),
                    "{what}: `{metric}` has no label `{label}`"
                );
                // Every alternative of `a|b|c` (or the one value) is a value Envoy exports.
                if let Some(value) = value {
                    for alternative in value.split('|') {
                        assert!(
                            values.contains(alternative),
                            "{what}: `{metric}{{{label}=\"{alternative}\"}}` is never exported \
                             (values: {values:?})"
                        );
                    }
                }
            }
        }
        for label in &refs.grouping {
            let known = SCRAPE_LABELS.contains(&label.as_str())
                || refs
                    .metrics
                    .iter()
                    .any(|(m, _)| obguard[m].iter().any(|l| l.contains_key(label.as_str())));
            assert!(
                known,
                "{what}: `by ({label})` but no metric of `{expr}` has it"
            );
        }
    }
    // The alerts docs/security.md and docs/observability.md ask for are there.
    for metric in [
        "obguard_jwks_keys_age_s",
        "obguard_model_rejected",
        "obguard_ratelimit_failed_open",
        "obguard_verdict",
        "obguard_token_invalid",
    ] {
        assert!(used.contains(metric), "nothing uses {metric}");
    }
}

/// A label matcher: the label, and the value of `=` / `=~` (`None` for `!=`, `!~`).
type Matcher = (String, Option<String>);

/// What a PromQL expression refers to: `obguard_*` selectors with their equality and regex
/// label matchers (`Some(value)` for `=` and `=~`, whose alternatives are checked; `None` for
/// `!=` and `!~`), and the labels of `by (…)` / `without (…)`.
struct References {
    metrics: Vec<(String, Vec<Matcher>)>,
    grouping: Vec<String>,
}

fn references(expr: &str) -> References {
    let mut metrics = Vec::new();
    let mut grouping = Vec::new();
    let bytes = expr.as_bytes();
    let ident = |i: usize| {
        let end = expr[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |n| i + n);
        (&expr[i..end], end)
    };
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if starts_word && expr[i..].starts_with("obguard_") {
            let (name, end) = ident(i);
            let mut matchers = Vec::new();
            let mut j = end;
            if expr[j..].starts_with('{') {
                let close = j + expr[j..].find('}').unwrap();
                for m in expr[j + 1..close]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                {
                    let op_at = m.find(['=', '!']).unwrap();
                    let label = m[..op_at].trim().to_owned();
                    let op_end = m[op_at..].find('"').map(|n| op_at + n).unwrap();
                    let op = m[op_at..op_end].trim();
                    let value = m[op_end..].trim().trim_matches('"').to_owned();
                    matchers.push((label, (op == "=" || op == "=~").then_some(value)));
                }
                j = close + 1;
            }
            metrics.push((name.to_owned(), matchers));
            i = j;
            continue;
        }
        if starts_word && (expr[i..].starts_with("by") || expr[i..].starts_with("without")) {
            let (word, end) = ident(i);
            let rest = expr[end..].trim_start();
            if (word == "by" || word == "without") && rest.starts_with('(') {
                let close = rest.find(')').unwrap();
                grouping.extend(
                    rest[1..close]
                        .split(',')
                        .map(|l| l.trim().to_owned())
                        .filter(|l| !l.is_empty()),
                );
            }
            i = end;
            continue;
        }
        i += 1;
    }
    References { metrics, grouping }
}
