//! Evaluation (host only): replay records through extract → score → verdict exactly as the
//! filter would, and measure detection per attack type and false positives per verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};

use crate::explain::{Reason, explain};
use crate::features::ExtractConfig;
use crate::model::{Model, Thresholds, Verdict};
use crate::records::{self, Record, RecordError};
use crate::train::{auc_ap, replay_features};

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Scored {
    pub score: f32,
    pub verdict: Verdict,
    /// Filled when asked for (and only for non-allow verdicts).
    pub reasons: Vec<Reason>,
}

/// Replay records through the model with its thresholds. Stops at the first malformed line
/// with its line number and reason.
pub fn replay<I>(
    model: &Model,
    records: I,
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
    replay_features(records, &cfg, model.population(), |r, fv, b| {
        let score = model.score_for_client(fv, b).score;
        let verdict = Model::verdict(score, &thresholds);
        let reasons = if with_reasons && verdict != Verdict::Allow {
            explain(fv, b)
        } else {
            Vec::new()
        };
        sink(
            r,
            &Scored {
                score,
                verdict,
                reasons,
            },
        );
    })
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
    pub within: usize,
    pub thresholds: Thresholds,
    pub records: u64,
    pub normal: u64,
    /// Normal requests by verdict: allow, challenge, throttle, block.
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
        Verdict::Challenge => 1,
        Verdict::Throttle => 2,
        Verdict::Block => 3,
    }
}

/// Evaluate `model` on a labelled records file.
pub fn evaluate_file(model: &Model, path: &Path, within: usize) -> Result<Report> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut normal_by_verdict = [0u64; 4];
    let mut episodes: BTreeMap<String, Episode> = BTreeMap::new();
    let mut type_requests: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut scores = Vec::new();
    let records = replay(
        model,
        records::read(BufReader::with_capacity(1 << 20, file)),
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
            "records {}  normal {}  attack {}  thresholds: challenge {:.4} throttle {:.4} block {:.4}",
            self.records,
            self.normal,
            self.records - self.normal,
            t.challenge,
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
        let _ = writeln!(
            o,
            "  allow     {:>10} {:>9.4}%",
            v[0],
            pct(v[0], self.normal)
        );
        let _ = writeln!(
            o,
            "  challenge {:>10} {:>9.4}%",
            v[1],
            pct(v[1], self.normal)
        );
        let _ = writeln!(
            o,
            "  throttle  {:>10} {:>9.4}%",
            v[2],
            pct(v[2], self.normal)
        );
        let _ = writeln!(
            o,
            "  block     {:>10} {:>9.4}%",
            v[3],
            pct(v[3], self.normal)
        );
        let _ = writeln!(
            o,
            "  non-allow {:>10} {:>9.4}%",
            non_allow,
            pct(non_allow, self.normal)
        );
        let _ = writeln!(
            o,
            "\nrequest-level ROC AUC {:.4}  average precision {:.4}",
            self.roc_auc, self.average_precision
        );
        o
    }
}
