//! Evaluation (host only): replay records through extract → score → verdict exactly as the
//! filter would, and measure detection per attack type and false positives per verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::explain::{Reason, explain};
use crate::features::ExtractConfig;
use crate::model::{Model, Thresholds, Verdict};
use crate::records::{self, Record, RecordError};
use crate::rules::{RuleConfig, RuleReplay};
use crate::schema::hex;
use crate::train::{auc_ap, replay_features_sharded};

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Scored {
    pub score: f32,
    pub verdict: Verdict,
    /// Filled when asked for (and only for non-allow verdicts).
    pub reasons: Vec<Reason>,
}

/// How a replay spreads requests over gateway replicas, each with baselines (and rule state)
/// of its own, as each Envoy keeps them in its own shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharding {
    /// Replicas (at least 1).
    pub shards: usize,
    pub by: ShardBy,
    /// Seed of [`ShardBy::Random`]'s choices.
    pub seed: u64,
}

/// Which replica a request reaches (`eval --shard-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShardBy {
    /// Any replica, uniformly at random (a round-robin or least-request load balancer).
    Random,
    /// The replica a hash of the client id picks (consistent hashing on the client at the
    /// load balancer): a client always reaches the same replica.
    Client,
}

impl Sharding {
    /// One replica: every client's whole history in one baseline.
    pub const SINGLE: Sharding = Sharding {
        shards: 1,
        by: ShardBy::Client,
        seed: 0,
    };

    /// `shard_of` for [`replay_features_sharded`].
    fn picker(self) -> impl FnMut(&Record) -> usize {
        use rand::{Rng, SeedableRng};
        let shards = self.shards.max(1);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed);
        move |r: &Record| match self.by {
            ShardBy::Random => rng.gen_range(0..shards),
            ShardBy::Client => {
                // Any stable, well-mixed hash stands in for the load balancer's.
                let digest = Sha256::digest(r.client_id.as_bytes());
                let mut head = [0u8; 8];
                head.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
                (u64::from_be_bytes(head) % shards as u64) as usize
            }
        }
    }

    /// How the report names it.
    pub fn describe(&self) -> String {
        match (self.shards, self.by) {
            (0 | 1, _) => "1 shard".to_owned(),
            (n, ShardBy::Random) => format!(
                "{n} shards, each request to a random one (seed {})",
                self.seed
            ),
            (n, ShardBy::Client) => format!("{n} shards, each client to one (hash of client id)"),
        }
    }
}

/// Replay records through the model with its thresholds, and through the hard rules when
/// `rules` is given (as the filter's `rules` section: the stricter verdict wins and the
/// rule's reason comes first). Stops at the first malformed line with its line number and
/// reason.
pub fn replay<I>(
    model: &Model,
    rules: Option<&RuleConfig>,
    records: I,
    sink: impl FnMut(&Record, &Scored),
    with_reasons: bool,
) -> Result<u64, RecordError>
where
    I: Iterator<Item = Result<Record, RecordError>>,
{
    replay_sharded(model, rules, records, Sharding::SINGLE, sink, with_reasons)
}

/// [`replay`] over `sharding`'s replicas: baselines and rule state per replica.
pub fn replay_sharded<I>(
    model: &Model,
    rules: Option<&RuleConfig>,
    records: I,
    sharding: Sharding,
    mut sink: impl FnMut(&Record, &Scored),
    with_reasons: bool,
) -> Result<u64, RecordError>
where
    I: Iterator<Item = Result<Record, RecordError>>,
{
    let cfg = ExtractConfig {
        utc_offset_minutes: model.metadata().utc_offset_minutes,
    };
    let thresholds = *model.thresholds();
    let mut rule_states: Vec<RuleReplay> = (0..sharding.shards.max(1))
        .map(|_| RuleReplay::new())
        .collect();
    let picker = sharding.picker();
    replay_features_sharded(
        records,
        &cfg,
        model.population(),
        picker,
        |r, shard, fv, b| {
            let score = model.score_for_client(fv, b).score;
            let model_verdict = Model::verdict(score, &thresholds);
            let hit = rules.and_then(|cfg| {
                rule_states.get_mut(shard)?.check(
                    cfg,
                    &r.client_id,
                    &r.method,
                    &r.path,
                    r.sub.as_deref(),
                    r.customer_present,
                    r.ts_ms,
                )
            });
            let verdict = hit
                .as_ref()
                .map_or(model_verdict, |h| h.verdict.max(model_verdict));
            let mut reasons = Vec::new();
            if with_reasons && verdict != Verdict::Allow {
                if let Some(h) = &hit {
                    reasons.push(Reason {
                        feature: h.rule,
                        text: h.reason.clone(),
                        strength: 1.0,
                    });
                }
                if model_verdict != Verdict::Allow {
                    reasons.extend(explain(fv, b));
                    reasons.truncate(crate::explain::MAX_REASONS);
                }
            }
            sink(
                r,
                &Scored {
                    score,
                    verdict,
                    reasons,
                },
            );
        },
    )
}

/// Detection of one attack type.
#[derive(Debug, Clone, Default)]
pub struct TypeStats {
    pub episodes: usize,
    pub caught_within: usize,
    pub caught_any: usize,
    /// 1-based index of the first non-allow request, per caught episode.
    pub first_hit: Vec<usize>,
    pub requests: u64,
    pub non_allow_requests: u64,
}

#[derive(Debug, Clone, Default)]
struct Episode {
    label: String,
    seen: usize,
    first_hit: Option<usize>,
}

/// Everything `eval` prints and plots.
#[derive(Debug, Clone)]
pub struct Report {
    /// The replicas the records were replayed through.
    pub sharding: Sharding,
    /// [`Model::digest`] of the evaluated model, hex.
    pub model_digest: String,
    /// SHA-256 of the evaluated records file, hex.
    pub data_digest: String,
    pub within: usize,
    pub thresholds: Thresholds,
    pub records: u64,
    pub normal: u64,
    /// Normal requests by verdict: allow, step_up, throttle, block.
    pub normal_by_verdict: [u64; 4],
    pub types: BTreeMap<String, TypeStats>,
    /// (score, is_attack) per request, for curves.
    pub scores: Vec<(f32, bool)>,
    pub roc_auc: f64,
    pub average_precision: f64,
}

fn verdict_index(v: Verdict) -> usize {
    match v {
        Verdict::Allow => 0,
        Verdict::StepUp => 1,
        Verdict::Throttle => 2,
        Verdict::Block => 3,
    }
}

/// Evaluate `model` (and the hard `rules`, when given) on a labelled records file.
pub fn evaluate_file(
    model: &Model,
    rules: Option<&RuleConfig>,
    path: &Path,
    within: usize,
    sharding: Sharding,
) -> Result<Report> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut file = Digesting {
        inner: file,
        hasher: Sha256::new(),
    };
    let mut normal_by_verdict = [0u64; 4];
    let mut episodes: BTreeMap<String, Episode> = BTreeMap::new();
    let mut type_requests: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut scores = Vec::new();
    let records = replay_sharded(
        model,
        rules,
        records::read(BufReader::with_capacity(1 << 20, &mut file)),
        sharding,
        |r, s| {
            let attack = r.is_attack();
            scores.push((s.score, attack));
            if !attack {
                if let Some(n) = normal_by_verdict.get_mut(verdict_index(s.verdict)) {
                    *n += 1;
                }
                return;
            }
            let label = r.label.clone().unwrap_or_default();
            let counts = type_requests.entry(label.clone()).or_default();
            counts.0 += 1;
            if s.verdict != Verdict::Allow {
                counts.1 += 1;
            }
            let key = r
                .episode
                .clone()
                .unwrap_or_else(|| format!("{label}:{}", r.client_id));
            let e = episodes.entry(key).or_insert_with(|| Episode {
                label,
                ..Episode::default()
            });
            e.seen += 1;
            if e.first_hit.is_none() && s.verdict != Verdict::Allow {
                e.first_hit = Some(e.seen);
            }
        },
        false,
    )
    .with_context(|| format!("reading {}", path.display()))?;

    let mut types: BTreeMap<String, TypeStats> = BTreeMap::new();
    for e in episodes.values() {
        let t = types.entry(e.label.clone()).or_default();
        t.episodes += 1;
        if let Some(h) = e.first_hit {
            t.caught_any += 1;
            t.first_hit.push(h);
            if h <= within {
                t.caught_within += 1;
            }
        }
    }
    for (label, (n, hit)) in type_requests {
        let t = types.entry(label).or_default();
        t.requests = n;
        t.non_allow_requests = hit;
    }
    let mut sorted = scores.clone();
    let (roc_auc, average_precision) = auc_ap(&mut sorted);
    Ok(Report {
        sharding,
        model_digest: model.digest_hex(),
        data_digest: hex(&file.hasher.finalize()),
        within,
        thresholds: *model.thresholds(),
        records,
        normal: normal_by_verdict.iter().sum(),
        normal_by_verdict,
        types,
        scores,
        roc_auc,
        average_precision,
    })
}

/// A reader that hashes what passes through it (the records file is read once).
struct Digesting<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

fn pct(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

impl Report {
    pub fn episodes(&self) -> (usize, usize) {
        self.types
            .values()
            .fold((0, 0), |(e, c), t| (e + t.episodes, c + t.caught_within))
    }

    /// The text report.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let t = &self.thresholds;
        let _ = writeln!(
            o,
            "records {}  normal {}  attack {}  thresholds: step_up {:.4} throttle {:.4} block {:.4}",
            self.records,
            self.normal,
            self.records - self.normal,
            t.step_up,
            t.throttle,
            t.block
        );
        let _ = writeln!(
            o,
            "\nattack episodes (caught = first non-allow within {} requests)",
            self.within
        );
        let _ = writeln!(
            o,
            "  {:<22} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10}",
            "type", "episodes", "caught", "caught%", "any%", "median1st", "req-nonallow%"
        );
        for (label, s) in &self.types {
            let mut hits = s.first_hit.clone();
            hits.sort_unstable();
            let median = hits
                .get(hits.len() / 2)
                .map_or("-".to_string(), |m| m.to_string());
            let _ = writeln!(
                o,
                "  {:<22} {:>8} {:>8} {:>7.1}% {:>8.1}% {:>9} {:>9.1}%",
                label,
                s.episodes,
                s.caught_within,
                pct(s.caught_within as u64, s.episodes as u64),
                pct(s.caught_any as u64, s.episodes as u64),
                median,
                pct(s.non_allow_requests, s.requests)
            );
        }
        let (eps, caught) = self.episodes();
        let _ = writeln!(
            o,
            "  {:<22} {:>8} {:>8} {:>7.1}%",
            "ALL",
            eps,
            caught,
            pct(caught as u64, eps as u64)
        );
        let v = &self.normal_by_verdict;
        let non_allow = v[1..].iter().sum::<u64>();
        let _ = writeln!(o, "\nlegitimate requests by verdict");
        let names = ["allow", "step_up", "throttle", "block", "non-allow"];
        for (name, n) in names.into_iter().zip(v.iter().copied().chain([non_allow])) {
            let _ = writeln!(o, "  {name:<9} {n:>10} {:>9.4}%", pct(n, self.normal));
        }
        let _ = writeln!(
            o,
            "\nrequest-level ROC AUC {:.4}  average precision {:.4}",
            self.roc_auc, self.average_precision
        );
        if self.sharding.shards > 1 {
            let _ = writeln!(
                o,
                "\nreplayed through {}, baselines per shard",
                self.sharding.describe()
            );
        }
        o
    }
}

/// `n / d`, 0 when `d` is 0.
fn share(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// The report as one JSON document (`eval --json`): every number of the text report, shares
/// as fractions (0..1) rather than percentages, and the CI gates checked against it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// [`Model::digest`] of the evaluated model, hex (as `inspect` prints it).
    pub model_digest: String,
    /// SHA-256 of the evaluated records file, hex.
    pub data_digest: String,
    /// SHA-256 of the records the model was trained on (from its metadata), hex.
    pub training_data_digest: String,
    pub thresholds: Thresholds,
    /// An episode is caught when one of its first `within` requests is not allowed.
    pub within: usize,
    pub records: u64,
    pub attack_requests: u64,
    /// All attack episodes together (the `ALL` row).
    pub detection: Detection,
    /// Per attack type (label), sorted by label.
    pub attack_types: BTreeMap<String, TypeSummary>,
    pub legitimate: Legitimate,
    pub roc_auc: f64,
    pub average_precision: f64,
    /// Replicas replayed through, each with its own baselines (1: the usual replay).
    pub shards: usize,
    /// `random` or `client` (how requests reached a replica); `null` with one.
    pub shard_by: Option<&'static str>,
    /// The seed of `random`; `null` otherwise.
    pub shard_seed: Option<u64>,
    /// The gates asked for, in the order of the command line options; empty without any.
    pub gates: Vec<GateResult>,
}

/// Episode detection, overall.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub episodes: usize,
    pub caught_within: usize,
    pub caught_within_share: f64,
    pub caught_any: usize,
    pub caught_any_share: f64,
}

/// One attack type's row.
#[derive(Debug, Clone, Serialize)]
pub struct TypeSummary {
    pub episodes: usize,
    pub caught_within: usize,
    pub caught_within_share: f64,
    pub caught_any: usize,
    pub caught_any_share: f64,
    /// Median (upper, as in the text report) 1-based index of the first non-allow request
    /// over the caught episodes; `null` when none was caught.
    pub median_first_hit: Option<usize>,
    pub requests: u64,
    pub non_allow_requests: u64,
    pub non_allow_request_share: f64,
}

/// Legitimate (normal) requests by verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Legitimate {
    pub requests: u64,
    pub counts: VerdictCounts,
    /// `counts` divided by `requests` (0 when there are none).
    pub shares: VerdictShares,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerdictCounts {
    pub allow: u64,
    pub step_up: u64,
    pub throttle: u64,
    pub block: u64,
    pub non_allow: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerdictShares {
    pub allow: f64,
    pub step_up: f64,
    pub throttle: f64,
    pub block: f64,
    pub non_allow: f64,
}

impl TypeStats {
    /// Median (upper) first hit, as the text report prints it.
    pub fn median_first_hit(&self) -> Option<usize> {
        let mut hits = self.first_hit.clone();
        hits.sort_unstable();
        hits.get(hits.len() / 2).copied()
    }
}

impl Report {
    /// The JSON view of the report (no gates yet; see [`Gates::check`]).
    pub fn summary(&self, training_data_digest: &str) -> Summary {
        let (episodes, caught_within) = self.episodes();
        let caught_any = self.types.values().map(|t| t.caught_any).sum();
        let attack_types = self
            .types
            .iter()
            .map(|(label, t)| {
                let summary = TypeSummary {
                    episodes: t.episodes,
                    caught_within: t.caught_within,
                    caught_within_share: share(t.caught_within as u64, t.episodes as u64),
                    caught_any: t.caught_any,
                    caught_any_share: share(t.caught_any as u64, t.episodes as u64),
                    median_first_hit: t.median_first_hit(),
                    requests: t.requests,
                    non_allow_requests: t.non_allow_requests,
                    non_allow_request_share: share(t.non_allow_requests, t.requests),
                };
                (label.clone(), summary)
            })
            .collect();
        let [allow, step_up, throttle, block] = self.normal_by_verdict;
        let non_allow = step_up + throttle + block;
        let n = self.normal;
        Summary {
            model_digest: self.model_digest.clone(),
            data_digest: self.data_digest.clone(),
            training_data_digest: training_data_digest.to_owned(),
            thresholds: self.thresholds,
            within: self.within,
            records: self.records,
            attack_requests: self.records - self.normal,
            detection: Detection {
                episodes,
                caught_within,
                caught_within_share: share(caught_within as u64, episodes as u64),
                caught_any,
                caught_any_share: share(caught_any as u64, episodes as u64),
            },
            attack_types,
            legitimate: Legitimate {
                requests: n,
                counts: VerdictCounts {
                    allow,
                    step_up,
                    throttle,
                    block,
                    non_allow,
                },
                shares: VerdictShares {
                    allow: share(allow, n),
                    step_up: share(step_up, n),
                    throttle: share(throttle, n),
                    block: share(block, n),
                    non_allow: share(non_allow, n),
                },
            },
            roc_auc: self.roc_auc,
            average_precision: self.average_precision,
            shards: self.sharding.shards,
            shard_by: (self.sharding.shards > 1).then_some(match self.sharding.by {
                ShardBy::Random => "random",
                ShardBy::Client => "client",
            }),
            shard_seed: (self.sharding.shards > 1 && self.sharding.by == ShardBy::Random)
                .then_some(self.sharding.seed),
            gates: Vec::new(),
        }
    }
}

/// Pass/fail limits on a report, for CI (`eval --min-detection ...`). All fractions (0..1).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gates {
    /// Least share of all attack episodes caught within `within` requests.
    pub min_detection: Option<f64>,
    /// Least share caught within `within` requests, for every attack type.
    pub min_detection_per_type: Option<f64>,
    /// Largest share of legitimate requests not allowed (challenged, throttled or blocked).
    pub max_non_allow: Option<f64>,
    /// Largest share of legitimate requests blocked.
    pub max_block: Option<f64>,
}

/// One gate checked against a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    /// The command line option, without dashes: `min-detection`, `max-non-allow`, ...
    pub gate: &'static str,
    /// What it was checked on: `all`, or the attack type for `min-detection-per-type`.
    pub scope: String,
    /// The measured share; `null` when there was nothing to measure (no attack episodes,
    /// no legitimate requests), which fails the gate.
    pub measured: Option<f64>,
    pub limit: f64,
    pub passed: bool,
}

impl GateResult {
    fn min(gate: &'static str, scope: &str, measured: Option<f64>, limit: f64) -> Self {
        let passed = measured.is_some_and(|m| m >= limit);
        GateResult {
            gate,
            scope: scope.to_owned(),
            measured,
            limit,
            passed,
        }
    }

    fn max(gate: &'static str, scope: &str, measured: Option<f64>, limit: f64) -> Self {
        let passed = measured.is_some_and(|m| m <= limit);
        GateResult {
            gate,
            scope: scope.to_owned(),
            measured,
            limit,
            passed,
        }
    }
}

impl std::fmt::Display for GateResult {
    /// `--min-detection (all): measured 0.9312, limit >= 0.95: FAILED`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = if self.gate.starts_with("min") {
            ">="
        } else {
            "<="
        };
        write!(f, "--{} ({}): measured ", self.gate, self.scope)?;
        match self.measured {
            Some(m) => write!(f, "{m}")?,
            None => f.write_str("nothing (no data to measure)")?,
        }
        write!(
            f,
            ", limit {op} {}: {}",
            self.limit,
            if self.passed { "passed" } else { "FAILED" }
        )
    }
}

impl Gates {
    /// Every gate set, checked against `summary`, in a fixed order: min-detection,
    /// min-detection-per-type (one result per attack type), max-non-allow, max-block.
    pub fn check(&self, summary: &Summary) -> Vec<GateResult> {
        let mut out = Vec::new();
        let d = &summary.detection;
        let detection = (d.episodes > 0).then_some(d.caught_within_share);
        if let Some(limit) = self.min_detection {
            out.push(GateResult::min("min-detection", "all", detection, limit));
        }
        if let Some(limit) = self.min_detection_per_type {
            if summary.attack_types.is_empty() {
                out.push(GateResult::min(
                    "min-detection-per-type",
                    "all",
                    None,
                    limit,
                ));
            }
            for (label, t) in &summary.attack_types {
                let measured = (t.episodes > 0).then_some(t.caught_within_share);
                out.push(GateResult::min(
                    "min-detection-per-type",
                    label,
                    measured,
                    limit,
                ));
            }
        }
        let l = &summary.legitimate;
        let legit = |s: f64| (l.requests > 0).then_some(s);
        if let Some(limit) = self.max_non_allow {
            out.push(GateResult::max(
                "max-non-allow",
                "legitimate",
                legit(l.shares.non_allow),
                limit,
            ));
        }
        if let Some(limit) = self.max_block {
            out.push(GateResult::max(
                "max-block",
                "legitimate",
                legit(l.shares.block),
                limit,
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(normal_by_verdict: [u64; 4], types: &[(&str, usize, usize)]) -> Report {
        Report {
            sharding: Sharding::SINGLE,
            model_digest: "m".into(),
            data_digest: "d".into(),
            within: 20,
            thresholds: Thresholds {
                step_up: 0.5,
                throttle: 0.7,
                block: 0.9,
            },
            records: normal_by_verdict.iter().sum(),
            normal: normal_by_verdict.iter().sum(),
            normal_by_verdict,
            types: types
                .iter()
                .map(|&(label, episodes, caught)| {
                    let t = TypeStats {
                        episodes,
                        caught_within: caught,
                        caught_any: caught,
                        first_hit: vec![1; caught],
                        ..TypeStats::default()
                    };
                    (label.to_owned(), t)
                })
                .collect(),
            scores: Vec::new(),
            roc_auc: 0.5,
            average_precision: 0.5,
        }
    }

    fn record(client: &str) -> Record {
        let line = format!(
            r#"{{"ts":"2026-01-05T00:00:05Z","client_id":"{client}","method":"GET","path":"/a","status":200,"resp_bytes":1}}"#
        );
        Record::parse(&line, 1).unwrap()
    }

    #[test]
    fn client_sharding_keeps_a_client_on_one_shard_and_random_spreads_it_reproducibly() {
        let shards = |by, seed, client: &str| {
            let mut pick = Sharding {
                shards: 3,
                by,
                seed,
            }
            .picker();
            let r = record(client);
            (0..300).map(|_| pick(&r)).collect::<Vec<_>>()
        };
        let affine = shards(ShardBy::Client, 1, "tpp-1");
        assert!(affine.iter().all(|s| *s == affine[0] && *s < 3));
        let clients: std::collections::BTreeSet<usize> = (0..30)
            .map(|i| shards(ShardBy::Client, 1, &format!("tpp-{i}"))[0])
            .collect();
        assert_eq!(clients.len(), 3, "clients spread over every shard");

        let random = shards(ShardBy::Random, 1, "tpp-1");
        for shard in 0..3 {
            let n = random.iter().filter(|s| **s == shard).count();
            assert!((70..=130).contains(&n), "shard {shard}: {n} of 300");
        }
        assert_eq!(
            random,
            shards(ShardBy::Random, 1, "tpp-1"),
            "same seed, same choices"
        );
        assert_ne!(random, shards(ShardBy::Random, 2, "tpp-1"));
        let single = Sharding::SINGLE;
        let mut pick = single.picker();
        assert_eq!(pick(&record("tpp-1")), 0);
    }

    #[test]
    fn gates_compare_shares_with_limits() {
        let s = report([9_990, 5, 3, 2], &[("a", 10, 10), ("b", 10, 8)]).summary("t");
        assert_eq!(s.detection.caught_within_share, 0.9);
        assert_eq!(s.legitimate.shares.non_allow, 0.001);
        let gates = Gates {
            min_detection: Some(0.9),
            min_detection_per_type: Some(0.85),
            max_non_allow: Some(0.001),
            max_block: Some(0.0001),
        };
        let r = gates.check(&s);
        let got: Vec<(&str, &str, bool)> = r
            .iter()
            .map(|g| (g.gate, g.scope.as_str(), g.passed))
            .collect();
        assert_eq!(
            got,
            [
                ("min-detection", "all", true),
                ("min-detection-per-type", "a", true),
                ("min-detection-per-type", "b", false),
                ("max-non-allow", "legitimate", true),
                ("max-block", "legitimate", false),
            ]
        );
        assert_eq!(
            r[4].to_string(),
            "--max-block (legitimate): measured 0.0002, limit <= 0.0001: FAILED"
        );
        assert!(Gates::default().check(&s).is_empty());
    }

    #[test]
    fn a_gate_with_nothing_to_measure_fails() {
        let s = report([0; 4], &[]).summary("t");
        let gates = Gates {
            min_detection: Some(0.0),
            min_detection_per_type: Some(0.0),
            max_non_allow: Some(1.0),
            max_block: Some(1.0),
        };
        let r = gates.check(&s);
        assert_eq!(r.len(), 4);
        assert!(r.iter().all(|g| !g.passed && g.measured.is_none()), "{r:?}");
        assert!(r[0].to_string().contains("measured nothing"));
    }
}
