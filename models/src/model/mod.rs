//! The model file and scoring.
//!
//! A model file is a postcard-encoded [`Envelope`]: magic bytes, format version and the
//! feature-schema hash first (so a mismatch is reported as such, whatever comes after),
//! then the postcard-encoded [`ModelBody`] as opaque bytes, then an optional Ed25519
//! signature over the model digest (see [`signing`] for the exact definitions). `load` checks
//! magic, version, size and schema hash, decodes the body and validates every tree and
//! coefficient once, so scoring never has to check anything.
//!
//! Signatures: [`Model::load_verified`] with [`SignaturePolicy::Required`] checks the
//! signature against trusted [`PublicKey`]s before the body is decoded; [`Model::load`] does
//! not verify a signature (it is carried along, [`Model::signature`]).

pub mod forest;
pub mod linear;
pub mod signing;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::baseline::{ClientBaseline, PopulationBaseline};
use crate::error::ModelError;
use crate::features::window::{
    MAX_SCORE_SHIFT, SCORE_LEVEL_ALPHA, SCORE_LEVEL_FLOOR, WARMUP_ERROR_RATIO,
};
use crate::features::{self, FeatureVector};
use crate::schema::{SCHEMA, hex};
use forest::Forest;
use linear::Logistic;
pub use signing::{PublicKey, SIGNATURE_ALGORITHM, SIGNING_CONTEXT, SignaturePolicy, file_digest};
#[cfg(feature = "sign")]
pub use signing::{SecretKey, secret_key_from_pem, sign_model_file};
#[cfg(feature = "train")]
pub use signing::{generate_secret_key, secret_key_to_pem};

/// First bytes of every model file.
pub const MAGIC: [u8; 8] = *b"OBGMODEL";
/// Envelope + body layout version this build reads and writes.
pub const FORMAT_VERSION: u16 = 1;
/// Files larger than this are refused before decoding (the target is 256 KiB).
pub const MAX_MODEL_BYTES: usize = 4 * 1024 * 1024;

/// The on-disk container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub magic: [u8; 8],
    pub format_version: u16,
    pub schema_hash: [u8; 32],
    /// Postcard-encoded [`ModelBody`], kept as the exact bytes the model digest covers.
    pub body: Vec<u8>,
    /// Signature over the model digest (see [`signing`]), if the file is signed.
    pub signature: Option<SignatureBlock>,
}

/// An Ed25519 signature over the model digest of the envelope it is in (see [`signing`]):
/// `algorithm` is `"ed25519"`, `key_id` the signer's [`PublicKey::key_id`], `signature` the
/// 64 signature bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureBlock {
    pub key_id: String,
    pub algorithm: String,
    pub signature: Vec<u8>,
}

/// Which model the body holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelKind {
    /// Random forest (smartcore), exported as flat trees; score = mean leaf value.
    Forest(Forest),
    /// Logistic regression (smartcore) on log-transformed, standardised features.
    Logistic(Logistic),
}

/// Score cut-offs: a score at or above `block` blocks, else at or above `throttle`
/// throttles, else at or above `step_up` asks for a step-up, else allows.
///
/// `step_up` was called `challenge` in earlier releases and is still read under that name (route
/// `thresholds` in the plugin configuration). Model files store the three numbers by
/// position, so their format is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Thresholds {
    #[serde(alias = "challenge")]
    pub step_up: f32,
    pub throttle: f32,
    pub block: f32,
}

impl Thresholds {
    /// Finite, within 0..=1 and ordered step_up <= throttle <= block. The filter should
    /// call this on per-route overrides from its configuration too.
    pub fn validate(&self) -> Result<(), ModelError> {
        let ordered = self.step_up <= self.throttle && self.throttle <= self.block;
        let in_range = [self.step_up, self.throttle, self.block]
            .iter()
            .all(|t| t.is_finite() && (0.0..=1.0).contains(t));
        if ordered && in_range {
            Ok(())
        } else {
            Err(ModelError::Invalid(format!(
                "thresholds must satisfy 0 <= step_up <= throttle <= block <= 1, got \
                 step_up={} throttle={} block={}",
                self.step_up, self.throttle, self.block
            )))
        }
    }

    pub fn verdict(&self, score: f32) -> Verdict {
        if score >= self.block {
            Verdict::Block
        } else if score >= self.throttle {
            Verdict::Throttle
        } else if score >= self.step_up {
            Verdict::StepUp
        } else {
            Verdict::Allow
        }
    }
}

/// What to do with a request, ordered from the mildest (`allow`) to the strictest
/// (`block`). One vocabulary for the model, the filter, its headers, metrics, logs and
/// rate-limit descriptors: the wire names are [`Verdict::as_str`]; `challenge`, the model
/// side's old name for `step_up`, is still accepted when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    /// RFC 9470 step-up authentication: 401 `insufficient_user_authentication`.
    #[serde(alias = "challenge")]
    StepUp,
    /// Slow the caller down: a rate-limit call carrying the verdict, or a 429.
    Throttle,
    Block,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::StepUp => "step_up",
            Verdict::Throttle => "throttle",
            Verdict::Block => "block",
        }
    }
}

/// What lets the model judge a client still in its warm-up: most of its responses refused
/// ([`WARMUP_ERROR_RATIO`]), as in credential stuffing with a fresh client id.
pub fn warmup_overt(features: &FeatureVector) -> bool {
    features.get(crate::Feature::ErrorRatio) >= WARMUP_ERROR_RATIO
}

/// A request's score for its client ([`Model::score_for_client`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClientScore {
    /// What the model says, 0..=1.
    pub raw: f32,
    /// Subtracted for this client's usual score (per-client calibration), 0..=MAX_SCORE_SHIFT.
    pub shift: f32,
    /// `raw - shift`: compare this with the thresholds.
    pub score: f32,
}

/// Per-client calibration of one raw score against the client's `level` (its usual
/// score), which then follows the raw score if the calibrated one stays under `step_up`.
/// `requests`: the client's requests so far, this one included. During the client's warm-up
/// the model does not judge it (its relative features are not there yet: a model would
/// judge the emptiness) unless an overt signal shows ([`warmup_overt`]); the score is then 0.
/// A warm client's switch to a manual tool ([`FeatureVector::overt_tool_switch`]) scores at
/// least `step_up`.
/// The trainer runs this same function to calibrate thresholds, so filter and trainer agree.
pub fn calibrate(
    level: &mut f32,
    requests: u32,
    features: &FeatureVector,
    raw: f32,
    step_up: f32,
) -> ClientScore {
    let raw = if raw.is_finite() {
        raw.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let warmth = features.context.warmth;
    if warmth < 1.0 && !warmup_overt(features) {
        return ClientScore {
            raw,
            shift: raw,
            score: 0.0,
        };
    }
    let shift = if warmth >= 1.0 && level.is_finite() {
        (*level - SCORE_LEVEL_FLOOR).clamp(0.0, MAX_SCORE_SHIFT)
    } else {
        0.0
    };
    let mut score = (raw - shift).clamp(0.0, 1.0);
    if features.overt_tool_switch() {
        // Overt: at least a step-up, whatever the model learnt elsewhere.
        score = score.max(step_up);
    }
    if score < step_up && warmth >= 1.0 {
        // Start from the client's first scores rather than from 0, then follow slowly.
        let alpha = (1.0 / requests.max(1) as f32).max(SCORE_LEVEL_ALPHA);
        *level += alpha * (raw - *level);
        if !level.is_finite() {
            *level = 0.0;
        }
    }
    ClientScore { raw, shift, score }
}

/// How the model was made; shown by `inspect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingMetadata {
    /// SHA-256 (hex) of the training records file.
    pub data_digest: String,
    /// Records and attack episodes trained on.
    pub records: u64,
    pub seed: u64,
    /// RFC 3339.
    pub created: String,
    /// obguard-models version that trained it.
    pub tool_version: String,
    /// UTC offset (minutes) used for hours of day in training.
    pub utc_offset_minutes: i32,
    /// Algorithm parameters, human readable.
    pub params: String,
    /// Named measurements (validation metrics, comparison with other algorithms).
    pub metrics: Vec<(String, f64)>,
}

/// Everything after the envelope header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelBody {
    pub kind: ModelKind,
    pub thresholds: Thresholds,
    pub population: PopulationBaseline,
    pub metadata: TrainingMetadata,
}

/// A loaded, validated model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    body: ModelBody,
    signature: Option<SignatureBlock>,
    encoded_len: usize,
    /// Model digest of the file it was loaded from (or would be written as).
    digest: [u8; 32],
}

/// Load a model file. Same as [`Model::load`].
pub fn load(bytes: &[u8]) -> Result<Model, ModelError> {
    Model::load(bytes)
}

fn corrupt(what: &str, err: postcard::Error) -> ModelError {
    ModelError::Corrupt(format!("{what}: {err}"))
}

/// Size, magic, version and envelope structure: everything before the schema hash.
fn read_envelope(bytes: &[u8]) -> Result<Envelope, ModelError> {
    if bytes.len() > MAX_MODEL_BYTES {
        return Err(ModelError::TooLarge(bytes.len(), MAX_MODEL_BYTES));
    }
    if !bytes.starts_with(&MAGIC) {
        return Err(ModelError::BadMagic);
    }
    // Version and schema first: they are stable across format versions.
    let (header, _): (([u8; 8], u16), &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| corrupt("header", e))?;
    if header.1 != FORMAT_VERSION {
        return Err(ModelError::Version {
            found: header.1,
            expected: FORMAT_VERSION,
        });
    }
    let (envelope, rest): (Envelope, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| corrupt("envelope", e))?;
    if !rest.is_empty() {
        return Err(ModelError::Corrupt(format!(
            "{} unexpected bytes after the envelope",
            rest.len()
        )));
    }
    Ok(envelope)
}

impl Model {
    /// A model from its parts (training). Validates like [`Model::load`]. Unsigned: sign the
    /// written file with `sign_model_file` (feature `sign`).
    pub fn new(body: ModelBody) -> Result<Self, ModelError> {
        validate(&body)?;
        let envelope = Envelope {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            schema_hash: SCHEMA.hash(),
            body: postcard::to_allocvec(&body).map_err(ModelError::Encode)?,
            signature: None,
        };
        let encoded_len = postcard::to_allocvec(&envelope)
            .map_err(ModelError::Encode)?
            .len();
        Ok(Self {
            body,
            signature: None,
            encoded_len,
            digest: signing::envelope_digest(&envelope),
        })
    }

    /// Parse and validate a model file. Never panics; every refusal says why. A signature, if
    /// present, is **not verified**: this is [`Model::load_verified`] with
    /// [`SignaturePolicy::NotRequired`].
    pub fn load(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::load_with(bytes, SignaturePolicy::NotRequired)
    }

    fn load_with(bytes: &[u8], policy: SignaturePolicy<'_>) -> Result<Self, ModelError> {
        let envelope = read_envelope(bytes)?;
        let expected = SCHEMA.hash();
        if envelope.schema_hash != expected {
            return Err(ModelError::SchemaMismatch {
                found: hex(&envelope.schema_hash),
                expected: hex(&expected),
            });
        }
        let digest = signing::envelope_digest(&envelope);
        signing::check_signature(&envelope, &digest, policy)?;
        let body: ModelBody =
            postcard::from_bytes(&envelope.body).map_err(|e| corrupt("model body", e))?;
        validate(&body)?;
        Ok(Self {
            body,
            signature: envelope.signature,
            encoded_len: bytes.len(),
            digest,
        })
    }

    /// The same model with other thresholds (and extra metadata metrics), e.g. calibrated
    /// on a bank's own logs. Unsigned: the digest changes, so sign the new file.
    pub fn recalibrated(
        &self,
        thresholds: Thresholds,
        metrics: Vec<(String, f64)>,
    ) -> Result<Model, ModelError> {
        thresholds.validate()?;
        let mut body = self.body.clone();
        body.thresholds = thresholds;
        body.metadata.metrics.extend(metrics);
        Model::new(body)
    }

    /// The model file bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let body = postcard::to_allocvec(&self.body).map_err(ModelError::Encode)?;
        let envelope = Envelope {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            schema_hash: SCHEMA.hash(),
            body,
            signature: self.signature.clone(),
        };
        postcard::to_allocvec(&envelope).map_err(ModelError::Encode)
    }

    /// Anomaly score in 0..=1 (higher: less like legitimate traffic). No allocation.
    pub fn score(&self, features: &FeatureVector) -> f32 {
        let s = match &self.body.kind {
            ModelKind::Forest(f) => f.score(&features.values),
            ModelKind::Logistic(l) => l.score(&features.values),
        };
        if s.is_finite() {
            s.clamp(0.0, 1.0)
        } else {
            1.0
        }
    }

    /// The score calibrated to this client: the raw [`Model::score`] minus how far the
    /// client's usual score sits above [`SCORE_LEVEL_FLOOR`] (at most [`MAX_SCORE_SHIFT`]),
    /// so a verdict means the same for a noisy aggregator as for a quiet PISP. The client's
    /// level then follows this request's raw score if the calibrated score is below the
    /// model's step-up threshold (flagged requests never teach the level, so an attacker
    /// cannot raise it by being flagged); see [`calibrate`], which it runs. Call it once per
    /// request, after [`crate::extract`]
    /// and before the baseline is stored; `baseline` carries the level.
    ///
    /// [`SCORE_LEVEL_FLOOR`]: crate::features::window::SCORE_LEVEL_FLOOR
    /// [`MAX_SCORE_SHIFT`]: crate::features::window::MAX_SCORE_SHIFT
    pub fn score_for_client(
        &self,
        features: &FeatureVector,
        baseline: &mut ClientBaseline,
    ) -> ClientScore {
        let raw = self.score(features);
        let step_up = self.body.thresholds.step_up;
        let mut level = features::score_level(baseline);
        let scored = calibrate(&mut level, baseline.requests(), features, raw, step_up);
        features::set_score_level(baseline, level);
        scored
    }

    /// The verdict for `score` under `thresholds` (the model's own, or a route's override).
    pub fn verdict(score: f32, thresholds: &Thresholds) -> Verdict {
        thresholds.verdict(score)
    }

    /// Default thresholds chosen at training time.
    pub fn thresholds(&self) -> &Thresholds {
        &self.body.thresholds
    }

    /// The prior for clients without a baseline yet.
    pub fn population(&self) -> &PopulationBaseline {
        &self.body.population
    }

    pub fn metadata(&self) -> &TrainingMetadata {
        &self.body.metadata
    }

    pub fn kind(&self) -> &ModelKind {
        &self.body.kind
    }

    /// Short name of the algorithm.
    pub fn kind_name(&self) -> &'static str {
        match self.body.kind {
            ModelKind::Forest(_) => "random_forest",
            ModelKind::Logistic(_) => "logistic_regression",
        }
    }

    /// Size of the file it was loaded from (or would be written as).
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// The signature block, if the file carried one. Verified only if the model was loaded
    /// with [`Model::load_verified`] under [`SignaturePolicy::Required`].
    pub fn signature(&self) -> Option<&SignatureBlock> {
        self.signature.as_ref()
    }
}

fn validate(body: &ModelBody) -> Result<(), ModelError> {
    body.thresholds.validate()?;
    body.population
        .validate()
        .map_err(|e| ModelError::Invalid(e.into()))?;
    let kind = match &body.kind {
        ModelKind::Forest(f) => f.validate(),
        ModelKind::Logistic(l) => l.validate(),
    };
    kind.map_err(|e| ModelError::Invalid(e.into()))
}

/// A tiny valid model file for documentation examples and tests: a logistic model that
/// scores by novelty of country and hour.
#[doc(hidden)]
pub fn doc_example_model() -> Vec<u8> {
    use crate::schema::FEATURE_COUNT;
    let mut weights = alloc::vec![0.0; FEATURE_COUNT];
    if let Some(w) = weights.get_mut(crate::Feature::NewCountry as usize) {
        *w = 4.0;
    }
    if let Some(w) = weights.get_mut(crate::Feature::HourSurprise as usize) {
        *w = 2.0;
    }
    let body = ModelBody {
        kind: ModelKind::Logistic(Logistic {
            mean: alloc::vec![0.0; FEATURE_COUNT],
            scale: alloc::vec![1.0; FEATURE_COUNT],
            weights,
            bias: -8.0,
        }),
        thresholds: Thresholds {
            step_up: 0.5,
            throttle: 0.8,
            block: 0.95,
        },
        population: PopulationBaseline::default(),
        metadata: TrainingMetadata::default(),
    };
    Model::new(body)
        .and_then(|m| m.to_bytes())
        .unwrap_or_default()
}
