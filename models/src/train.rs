//! Training (host only): records → features (through the same [`extract`] the filter
//! runs) → a smartcore model → thresholds calibrated on held-out clients → a model file.
#![allow(clippy::indexing_slicing)] // host-only numeric code over vectors it sized itself

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

use crate::baseline::{ClientBaseline, PopulationBaseline};
use crate::features::{
    ExtractConfig, Feature, FeatureContext, FeatureVector, extract, observe_response, route_bucket,
};
use crate::model::forest::{Forest, LEAF, Node, Tree};
use crate::model::linear::{Logistic, transform};
use crate::model::{Model, ModelBody, ModelKind, Thresholds, TrainingMetadata, calibrate};
use crate::records::{self, Record, RecordError};
use crate::schema::{FEATURE_COUNT, hex};

/// Which algorithm to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Forest,
    Logistic,
    /// Fit forest, logistic regression and an unsupervised PCA score; report all, keep the
    /// forest.
    Compare,
}

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub seed: u64,
    pub algorithm: Algorithm,
    pub trees: u16,
    pub max_depth: u16,
    pub max_normal_rows: usize,
    pub utc_offset_minutes: i32,
    pub created: Option<String>,
    /// False-positive budgets the thresholds are calibrated to on the held-out clients.
    pub budgets: FpBudgets,
}

/// Per-request false-positive budgets the thresholds are calibrated to: the share of
/// legitimate requests allowed at or above each threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FpBudgets {
    pub step_up: f64,
    pub throttle: f64,
    pub block: f64,
}

impl FpBudgets {
    /// Budgets for a target share of non-allow verdicts on legitimate traffic: the whole
    /// target at step_up, 40% of it at throttle, 4% at block.
    pub const fn for_target(non_allow: f64) -> Self {
        Self {
            step_up: non_allow,
            throttle: non_allow * 0.4,
            block: non_allow * 0.04,
        }
    }
}

/// What training calibrates to on held-out clients: half (or less) of the targets (0.1%
/// non-allow, 0.01% block), for margin on new data.
pub const TRAINING_BUDGETS: FpBudgets = FpBudgets::for_target(0.0004);
/// Blocking needs confidence whatever the calibration says.
pub const BLOCK_FLOOR: f32 = 0.9;

/// The trainer's path through the features: records in order, one baseline per client,
/// [`extract`] per request then [`observe_response`], exactly as the filter does per
/// request and per response. `sink` sees each record with its features and the baseline
/// after the request (mutable: scoring folds the client's calibration level into it, as the
/// filter does before storing).
pub fn replay_features<I>(
    records: I,
    cfg: &ExtractConfig,
    population: &PopulationBaseline,
    mut sink: impl FnMut(&Record, &FeatureVector, &mut ClientBaseline),
) -> Result<u64, RecordError>
where
    I: Iterator<Item = Result<Record, RecordError>>,
{
    replay_features_sharded(
        records,
        cfg,
        population,
        |_| 0,
        |r, _, fv, b| sink(r, fv, b),
    )
}

/// [`replay_features`] as on several gateway replicas that keep their baselines apart (the
/// filter keeps them in each Envoy's shared data): `shard_of` picks each record's replica, and
/// each replica has its own baseline per client. `sink` gets the record's shard too.
pub fn replay_features_sharded<I>(
    records: I,
    cfg: &ExtractConfig,
    population: &PopulationBaseline,
    mut shard_of: impl FnMut(&Record) -> usize,
    mut sink: impl FnMut(&Record, usize, &FeatureVector, &mut ClientBaseline),
) -> Result<u64, RecordError>
where
    I: Iterator<Item = Result<Record, RecordError>>,
{
    let mut baselines: HashMap<(usize, String), ClientBaseline> = HashMap::new();
    let mut n = 0;
    for record in records {
        let record = record?;
        let shard = shard_of(&record);
        let baseline = baselines
            .entry((shard, record.client_id.clone()))
            .or_default();
        let features = extract(cfg, baseline, population, &record.event());
        sink(&record, shard, &features, baseline);
        observe_response(baseline, record.status, record.resp_bytes, record.ts_ms);
        n += 1;
    }
    Ok(n)
}

/// Features of a records file, with labels.
#[derive(Debug, Default)]
pub struct Dataset {
    pub x: Vec<[f32; FEATURE_COUNT]>,
    pub attack: Vec<bool>,
    /// Calibration (held-out) clients.
    pub holdout: Vec<bool>,
    pub episode: Vec<Option<u32>>,
    /// Per row: the client (an index) and its requests so far, for per-client calibration
    /// ([`crate::model::calibrate`]).
    pub client: Vec<u32>,
    pub requests: Vec<u32>,
    pub warmth: Vec<f32>,
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {percent:>3}% {elapsed_precise} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Records of `path`, counting bytes read on `bar`.
fn open_records(
    path: &Path,
    bar: &ProgressBar,
) -> Result<impl Iterator<Item = Result<Record, RecordError>>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(records::read(BufReader::with_capacity(
        1 << 20,
        bar.wrap_read(file),
    )))
}

fn file_digest(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f32::total_cmp);
    values[values.len() / 2]
}

/// The population prior from normal traffic of clients with a mature baseline.
fn population_from(path: &Path, cfg: &ExtractConfig) -> Result<PopulationBaseline> {
    let len = std::fs::metadata(path)?.len();
    let bar = progress(len, "population");
    let mut hours = [1.0f64; 24];
    let mut routes = [1.0f64; 16];
    let (mut rate, mut ids, mut kib, mut err) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let default = PopulationBaseline::default();
    replay_features(open_records(path, &bar)?, cfg, &default, |r, fv, b| {
        if r.is_attack() {
            return;
        }
        hours[usize::from(fv.context.local_minute / 60) % 24] += 1.0;
        routes[route_bucket(&r.method, &r.event().route)] += 1.0;
        if b.requests() > 64 {
            rate.push(fv.context.rate_per_min);
            ids.push(fv.context.ids);
            kib.push(fv.context.kib_per_min);
            err.push(fv.get(Feature::ErrorRatio));
        }
    })?;
    bar.finish_and_clear();
    let total_h: f64 = hours.iter().sum();
    let total_r: f64 = routes.iter().sum();
    let mut p = PopulationBaseline::default();
    for (d, s) in p.hour_probs.iter_mut().zip(hours) {
        *d = (s / total_h) as f32;
    }
    for (d, s) in p.route_probs.iter_mut().zip(routes) {
        *d = (s / total_r) as f32;
    }
    if !rate.is_empty() {
        p.rate_per_min = median(&mut rate);
        p.distinct_ids = median(&mut ids);
        p.kib_per_min = median(&mut kib);
        p.error_ratio = median(&mut err);
    }
    Ok(p)
}

/// Client ids hashing into this quarter are held out for threshold calibration.
fn is_holdout(client_id: &str) -> bool {
    let h: [u8; 32] = Sha256::digest(client_id.as_bytes()).into();
    h[0].is_multiple_of(4)
}

/// Featurise a records file with a population prior.
pub fn dataset(
    path: &Path,
    cfg: &ExtractConfig,
    population: &PopulationBaseline,
) -> Result<Dataset> {
    let len = std::fs::metadata(path)?.len();
    let bar = progress(len, "features");
    let mut ds = Dataset::default();
    let mut episodes: HashMap<String, u32> = HashMap::new();
    let mut clients: HashMap<String, u32> = HashMap::new();
    replay_features(open_records(path, &bar)?, cfg, population, |r, fv, b| {
        ds.x.push(fv.values);
        let next = clients.len() as u32;
        ds.client
            .push(*clients.entry(r.client_id.clone()).or_insert(next));
        ds.requests.push(b.requests());
        ds.warmth.push(fv.context.warmth);
        ds.attack.push(r.is_attack());
        ds.holdout.push(is_holdout(&r.client_id));
        let next = episodes.len() as u32;
        ds.episode.push(
            r.episode
                .as_ref()
                .filter(|_| r.is_attack())
                .map(|e| *episodes.entry(e.clone()).or_insert(next)),
        );
    })?;
    bar.finish_and_clear();
    Ok(ds)
}

fn warmup_overt_row(ds: &Dataset, i: usize) -> bool {
    crate::model::warmup_overt(&FeatureVector {
        values: ds.x[i],
        context: FeatureContext::default(),
    })
}

/// Rows to fit on: every attack row of non-held-out clients and a seeded sample of normal
/// rows.
fn fit_rows(ds: &Dataset, max_normal: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    // Rows of clients in their warm-up are not scored by the model (see `calibrate`) unless
    // overt; fitting on them would teach it what an empty baseline looks like.
    let scored = |i: usize| ds.warmth[i] >= 1.0 || warmup_overt_row(ds, i);
    let mut normal: Vec<usize> = (0..ds.x.len())
        .filter(|&i| !ds.holdout[i] && !ds.attack[i] && scored(i))
        .collect();
    normal.shuffle(rng);
    normal.truncate(max_normal);
    let mut rows: Vec<usize> = (0..ds.x.len())
        .filter(|&i| !ds.holdout[i] && ds.attack[i] && scored(i))
        .collect();
    rows.extend(normal);
    rows.sort_unstable();
    rows
}

fn matrix(ds: &Dataset, rows: &[usize], f: impl Fn(f32) -> f32) -> Result<DenseMatrix<f64>> {
    let mut values = Vec::with_capacity(rows.len() * FEATURE_COUNT);
    for &i in rows {
        values.extend(ds.x[i].iter().map(|v| f64::from(f(*v))));
    }
    DenseMatrix::new(rows.len(), FEATURE_COUNT, values, false).map_err(|e| anyhow!("matrix: {e}"))
}

/// Fit a smartcore random forest and convert it to the compact [`Forest`].
pub fn fit_forest(ds: &Dataset, rows: &[usize], cfg: &TrainConfig) -> Result<Forest> {
    let x = matrix(ds, rows, |v| v)?;
    let y: Vec<u32> = rows.iter().map(|&i| u32::from(ds.attack[i])).collect();
    let params = RandomForestClassifierParameters::default()
        .with_n_trees(cfg.trees)
        .with_max_depth(cfg.max_depth)
        .with_min_samples_leaf(20)
        .with_min_samples_split(40)
        .with_seed(cfg.seed);
    let bar = ProgressBar::new_spinner();
    bar.set_message(format!(
        "fitting random forest ({} trees) on {} rows",
        cfg.trees,
        rows.len()
    ));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let rf =
        RandomForestClassifier::fit(&x, &y, params).map_err(|e| anyhow!("random forest: {e}"))?;
    bar.finish_and_clear();
    let mut forest = export_forest(&rf)?;
    refit_leaves(&mut forest, ds, rows);
    forest
        .validate()
        .map_err(|e| anyhow!("exported forest is invalid: {e}"))?;
    Ok(forest)
}

/// smartcore keeps its tree nodes private; its serde form is public, so the forest is
/// read from that (`trees[].nodes[]` with `split_feature`, `split_value`, `true_child`,
/// `false_child`, `output`).
fn export_forest<T: serde::Serialize>(rf: &T) -> Result<Forest> {
    let v = serde_json::to_value(rf)?;
    let trees = v
        .get("trees")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("smartcore forest has no trees array"))?;
    let mut out = Vec::with_capacity(trees.len());
    for t in trees {
        let nodes = t
            .get("nodes")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("smartcore tree has no nodes array"))?;
        let mut tree = Vec::with_capacity(nodes.len());
        for n in nodes {
            let child = |k: &str| n.get(k).and_then(Value::as_u64);
            let node = match (child("true_child"), child("false_child")) {
                (Some(l), Some(r)) => Node {
                    feature: u8::try_from(child("split_feature").unwrap_or(0))?,
                    threshold: n
                        .get("split_value")
                        .and_then(Value::as_f64)
                        .unwrap_or(f64::NAN) as f32,
                    left: u16::try_from(l)?,
                    right: u16::try_from(r)?,
                },
                _ => Node {
                    feature: LEAF,
                    threshold: child("output").unwrap_or(0) as f32,
                    left: 0,
                    right: 0,
                },
            };
            tree.push(node);
        }
        out.push(Tree { nodes: tree });
    }
    Ok(Forest { trees: out })
}

/// Replace each leaf's 0/1 class by the smoothed attack share of the fit rows reaching it,
/// so the forest's score is graded rather than a vote count.
fn refit_leaves(forest: &mut Forest, ds: &Dataset, rows: &[usize]) {
    for tree in &mut forest.trees {
        let mut counts = vec![(0u32, 0u32); tree.nodes.len()];
        for &i in rows {
            let x = &ds.x[i];
            let mut n = 0usize;
            while tree.nodes[n].feature != LEAF {
                let node = tree.nodes[n];
                n = usize::from(if x[usize::from(node.feature)] <= node.threshold {
                    node.left
                } else {
                    node.right
                });
            }
            if ds.attack[i] {
                counts[n].0 += 1;
            } else {
                counts[n].1 += 1;
            }
        }
        for (node, (a, b)) in tree.nodes.iter_mut().zip(counts) {
            if node.feature == LEAF {
                node.threshold = (a as f32 + 0.1) / ((a + b) as f32 + 1.0);
            }
        }
    }
}

fn standardiser(ds: &Dataset, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let n = rows.len().max(1) as f64;
    let mut mean = [0f64; FEATURE_COUNT];
    let mut sq = [0f64; FEATURE_COUNT];
    for &i in rows {
        for (j, v) in ds.x[i].iter().enumerate() {
            let t = f64::from(transform(*v));
            mean[j] += t;
            sq[j] += t * t;
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / n) as f32).collect();
    let scale = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| ((s / n - f64::from(*m).powi(2)).max(0.0).sqrt() as f32).max(1e-3))
        .collect();
    (mean, scale)
}

/// Fit smartcore logistic regression on log-transformed, standardised features.
pub fn fit_logistic(ds: &Dataset, rows: &[usize]) -> Result<Logistic> {
    let (mean, scale) = standardiser(ds, rows);
    let mut values = Vec::with_capacity(rows.len() * FEATURE_COUNT);
    for &i in rows {
        for (j, v) in ds.x[i].iter().enumerate() {
            values.push(f64::from((transform(*v) - mean[j]) / scale[j]));
        }
    }
    let x = DenseMatrix::new(rows.len(), FEATURE_COUNT, values, false)
        .map_err(|e| anyhow!("matrix: {e}"))?;
    let y: Vec<u32> = rows.iter().map(|&i| u32::from(ds.attack[i])).collect();
    let lr = LogisticRegression::fit(
        &x,
        &y,
        LogisticRegressionParameters::default().with_alpha(1.0),
    )
    .map_err(|e| anyhow!("logistic regression: {e}"))?;
    let coef = lr.coefficients();
    let weights = (0..FEATURE_COUNT)
        .map(|j| *coef.get((0, j)) as f32)
        .collect();
    let bias = *lr.intercept().get((0, 0)) as f32;
    Ok(Logistic {
        mean,
        scale,
        weights,
        bias,
    })
}

/// Unsupervised comparison: PCA (smartcore) fitted on normal rows; score is the
/// reconstruction error, squashed to 0..1.
fn pca_scores(ds: &Dataset, rows: &[usize], eval_rows: &[usize]) -> Result<Vec<f32>> {
    use smartcore::decomposition::pca::{PCA, PCAParameters};
    let normal: Vec<usize> = rows.iter().copied().filter(|&i| !ds.attack[i]).collect();
    let (mean, scale) = standardiser(ds, &normal);
    let std_row = |i: usize| -> Vec<f64> {
        ds.x[i]
            .iter()
            .enumerate()
            .map(|(j, v)| f64::from((transform(*v) - mean[j]) / scale[j]))
            .collect()
    };
    let values: Vec<f64> = normal.iter().flat_map(|&i| std_row(i)).collect();
    let x = DenseMatrix::new(normal.len(), FEATURE_COUNT, values, false)
        .map_err(|e| anyhow!("matrix: {e}"))?;
    let k = 8;
    let pca = PCA::fit(&x, PCAParameters::default().with_n_components(k))
        .map_err(|e| anyhow!("pca: {e}"))?;
    let p = pca.components();
    Ok(eval_rows
        .iter()
        .map(|&i| {
            let z = std_row(i);
            let mut err = 0f64;
            let proj: Vec<f64> = (0..k)
                .map(|c| (0..FEATURE_COUNT).map(|j| z[j] * *p.get((j, c))).sum())
                .collect();
            for (j, zj) in z.iter().enumerate() {
                let recon: f64 = (0..k).map(|c| proj[c] * *p.get((j, c))).sum();
                err += (zj - recon).powi(2);
            }
            (1.0 - (-err / 10.0).exp()) as f32
        })
        .collect())
}

/// Threshold leaving at most `max_fraction` of `normal` scores at or above it.
pub fn threshold_for(normal_desc: &[f32], max_fraction: f64) -> f32 {
    if normal_desc.is_empty() {
        return 0.5;
    }
    let k = ((max_fraction * normal_desc.len() as f64).floor() as usize).min(normal_desc.len() - 1);
    normal_desc[k].next_up().min(1.0)
}

/// Scores of `rows` (in file order) after per-client calibration with `step_up`, through
/// the same [`calibrate`] the filter runs.
pub fn calibrated_scores(ds: &Dataset, rows: &[usize], raw: &[f32], step_up: f32) -> Vec<f32> {
    let mut levels: HashMap<u32, f32> = HashMap::new();
    rows.iter()
        .zip(raw)
        .map(|(&i, &r)| {
            let level = levels.entry(ds.client[i]).or_insert(0.0);
            let fv = FeatureVector {
                values: ds.x[i],
                context: FeatureContext {
                    warmth: ds.warmth[i],
                    ..FeatureContext::default()
                },
            };
            calibrate(level, ds.requests[i], &fv, r, step_up).score
        })
        .collect()
}

/// Thresholds for calibrated scores: the calibration depends on the step_up threshold
/// (flagged requests do not teach a client's level), so iterate a few times.
fn calibrated_thresholds(
    ds: &Dataset,
    rows: &[usize],
    raw: &[f32],
    budgets: &FpBudgets,
) -> (Thresholds, Vec<f32>) {
    let normal_of = |scores: &[f32]| -> Vec<f32> {
        rows.iter()
            .zip(scores)
            .filter(|(i, _)| !ds.attack[**i])
            .map(|(_, s)| *s)
            .collect()
    };
    let mut t = thresholds_from(&mut normal_of(raw), budgets);
    let mut scores = raw.to_vec();
    for _ in 0..3 {
        scores = calibrated_scores(ds, rows, raw, t.step_up);
        t = thresholds_from(&mut normal_of(&scores), budgets);
    }
    (t, scores)
}

fn thresholds_from(normal_scores: &mut [f32], budgets: &FpBudgets) -> Thresholds {
    normal_scores.sort_by(|a, b| b.total_cmp(a));
    let step_up = threshold_for(normal_scores, budgets.step_up);
    let throttle = threshold_for(normal_scores, budgets.throttle).max(step_up);
    let block = threshold_for(normal_scores, budgets.block)
        .max(BLOCK_FLOOR)
        .max(throttle);
    Thresholds {
        step_up,
        throttle,
        block,
    }
}

/// Area under ROC and average precision of scores against labels.
pub fn auc_ap(scored: &mut [(f32, bool)]) -> (f64, f64) {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = scored.iter().filter(|s| s.1).count() as f64;
    let neg = scored.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let (mut tp, mut fp, mut auc, mut ap) = (0f64, 0f64, 0f64, 0f64);
    let mut i = 0;
    while i < scored.len() {
        let (tp0, fp0) = (tp, fp);
        let s = scored[i].0;
        while i < scored.len() && scored[i].0 == s {
            if scored[i].1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        auc += (fp - fp0) / neg * (tp + tp0) / 2.0 / pos;
        ap += (tp - tp0) / pos * (tp / (tp + fp));
    }
    (auc, ap)
}

/// Metrics of candidate scores on held-out rows: AUC, AP, and at thresholds calibrated on
/// held-out normal rows, the share of attack episodes caught within 20 requests.
fn candidate_metrics(
    name: &str,
    ds: &Dataset,
    rows: &[usize],
    scores: &[f32],
) -> Vec<(String, f64)> {
    let (t, calibrated) = calibrated_thresholds(ds, rows, scores, &TRAINING_BUDGETS);
    let scores = &calibrated[..];
    let mut pairs: Vec<(f32, bool)> = rows
        .iter()
        .zip(scores)
        .map(|(i, s)| (*s, ds.attack[*i]))
        .collect();
    let (auc, ap) = auc_ap(&mut pairs);
    let mut seen: HashMap<u32, (usize, bool)> = HashMap::new();
    for (i, s) in rows.iter().zip(scores) {
        if let Some(ep) = ds.episode[*i] {
            let e = seen.entry(ep).or_insert((0, false));
            e.0 += 1;
            if e.0 <= 20 && *s >= t.step_up {
                e.1 = true;
            }
        }
    }
    let caught = seen.values().filter(|e| e.1).count() as f64 / seen.len().max(1) as f64;
    vec![
        (format!("holdout.{name}.roc_auc"), auc),
        (format!("holdout.{name}.average_precision"), ap),
        (format!("holdout.{name}.episodes_caught_within_20"), caught),
    ]
}

/// Train from a records file.
pub fn train_file(path: &Path, cfg: &TrainConfig) -> Result<Model> {
    let extract_cfg = ExtractConfig {
        utc_offset_minutes: cfg.utc_offset_minutes,
    };
    let digest = file_digest(path)?;
    let population = population_from(path, &extract_cfg)?;
    let ds = dataset(path, &extract_cfg, &population)?;
    if !ds.attack.iter().any(|a| *a) {
        bail!(
            "{}: no attack records (label other than \"normal\"): nothing to learn from",
            path.display()
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let rows = fit_rows(&ds, cfg.max_normal_rows, &mut rng);
    let holdout: Vec<usize> = (0..ds.x.len()).filter(|&i| ds.holdout[i]).collect();

    let mut metrics = Vec::new();
    let started = std::time::Instant::now();
    let forest = if cfg.algorithm == Algorithm::Logistic {
        None
    } else {
        let f = fit_forest(&ds, &rows, cfg)?;
        eprintln!("  fit forest: {:.1}s", started.elapsed().as_secs_f64());
        Some(f)
    };
    let started = std::time::Instant::now();
    let logistic = if cfg.algorithm == Algorithm::Forest {
        None
    } else {
        let l = fit_logistic(&ds, &rows)?;
        eprintln!("  fit logistic: {:.1}s", started.elapsed().as_secs_f64());
        Some(l)
    };

    let kind = match (forest, logistic) {
        (Some(f), Some(l)) => {
            let lk = ModelKind::Logistic(l);
            let scores = score_rows(&lk, &ds, &holdout);
            metrics.extend(candidate_metrics("logistic", &ds, &holdout, &scores));
            let started = std::time::Instant::now();
            let pca = pca_scores(&ds, &rows, &holdout)?;
            eprintln!("  fit pca: {:.1}s", started.elapsed().as_secs_f64());
            metrics.extend(candidate_metrics("pca_reconstruction", &ds, &holdout, &pca));
            ModelKind::Forest(f)
        }
        (Some(f), None) => ModelKind::Forest(f),
        (None, Some(l)) => ModelKind::Logistic(l),
        (None, None) => bail!("no algorithm selected"),
    };
    // Timings are printed, not stored: model files must be byte-for-byte reproducible.
    let scores = score_rows(&kind, &ds, &holdout);
    let name = match kind {
        ModelKind::Forest(_) => "forest",
        ModelKind::Logistic(_) => "logistic",
    };
    metrics.extend(candidate_metrics(name, &ds, &holdout, &scores));
    let (thresholds, _) = calibrated_thresholds(&ds, &holdout, &scores, &cfg.budgets);
    metrics.push(("train.fit_rows".to_string(), rows.len() as f64));
    metrics.push(("train.holdout_rows".to_string(), holdout.len() as f64));

    let created = match &cfg.created {
        Some(c) => c.clone(),
        None => time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    let params = match &kind {
        ModelKind::Forest(f) => format!(
            "smartcore RandomForestClassifier n_trees={} max_depth={} min_samples_leaf=20 min_samples_split=40 seed={}; leaves refit to attack share; {} nodes",
            cfg.trees,
            cfg.max_depth,
            cfg.seed,
            f.node_count()
        ),
        ModelKind::Logistic(_) => {
            "smartcore LogisticRegression alpha=1.0 on ln(1+x), standardised".to_string()
        }
    };
    let body = ModelBody {
        kind,
        thresholds,
        population,
        metadata: TrainingMetadata {
            data_digest: digest,
            records: ds.x.len() as u64,
            seed: cfg.seed,
            created,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            utc_offset_minutes: cfg.utc_offset_minutes,
            params,
            metrics,
        },
    };
    let model = Model::new(body)?;
    for (k, v) in &model.metadata().metrics {
        eprintln!("  {k:<48} {v:.6}");
    }
    Ok(model)
}

fn score_rows(kind: &ModelKind, ds: &Dataset, rows: &[usize]) -> Vec<f32> {
    rows.iter()
        .map(|&i| match kind {
            ModelKind::Forest(f) => f.score(&ds.x[i]),
            ModelKind::Logistic(l) => l.score(&ds.x[i]),
        })
        .collect()
}

/// What [`calibrate_file`] measured.
#[derive(Debug, Clone)]
pub struct Calibration {
    pub thresholds: Thresholds,
    pub records: usize,
    /// Share of the records at or above each new threshold (after per-client calibration).
    pub non_allow: f64,
    pub block: f64,
}

/// Thresholds for `model` set on a bank's own records (all taken as legitimate, labels
/// ignored) so that at most `budgets` of them get each verdict, with the same per-client
/// calibration the filter applies. The model's trees are unchanged.
pub fn calibrate_file(model: &Model, path: &Path, budgets: &FpBudgets) -> Result<Calibration> {
    let cfg = ExtractConfig {
        utc_offset_minutes: model.metadata().utc_offset_minutes,
    };
    let mut ds = dataset(path, &cfg, model.population())?;
    ds.attack.iter_mut().for_each(|a| *a = false);
    let rows: Vec<usize> = (0..ds.x.len()).collect();
    let raw = score_rows(model.kind(), &ds, &rows);
    let (thresholds, scores) = calibrated_thresholds(&ds, &rows, &raw, budgets);
    let n = scores.len().max(1) as f64;
    let non_allow = scores.iter().filter(|s| **s >= thresholds.step_up).count() as f64 / n;
    let block = scores.iter().filter(|s| **s >= thresholds.block).count() as f64 / n;
    Ok(Calibration {
        thresholds,
        records: scores.len(),
        non_allow,
        block,
    })
}
