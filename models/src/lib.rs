//! obguard-models: behavioural features, per-client baselines and the anomaly model that
//! the obguard filter runs on every request, plus (feature `train`, host only) the traffic
//! record format, simulator, trainer and evaluator behind the `obguard-models` CLI.
//!
//! * [`schema`]   — the versioned feature schema and its hash (checked against model files).
//! * [`event`]    — [`RequestEvent`]: what the filter knows at request time.
//! * [`baseline`] — [`ClientBaseline`] (≤ 256 bytes, per client, in shared data) and
//!   [`PopulationBaseline`] (the prior for new clients, shipped in the model file).
//! * [`features`] — [`extract`] and [`observe_response`]: the one path from requests to
//!   feature vectors, used by the filter and the trainer alike.
//! * [`mod@explain`]  — [`explain()`]: the top reasons a request stands out.
//! * [`rules`]    — hard rules scored next to the model: the PSD2 unattended-access limit
//!   and payment velocity ([`rules::classify`], per-key state, [`rules::check_account_read`],
//!   [`rules::check_payment`]; [`rules::RuleReplay`] for records with `train`).
//! * [`model`]    — the model file ([`load`]), [`Model::score`], [`Thresholds`], [`Verdict`];
//!   [`model::signing`]: signed model files ([`Model::load_verified`], [`PublicKey`],
//!   [`SignaturePolicy`], [`Model::digest`]).
//! * `report` (with `train`) — one client's incident timeline from records, access logs and
//!   security events, as a self-contained HTML page (`obguard-models report`).
//!
//! The inference half (including signature verification) builds for `wasm32-wasip1` with
//! `default-features = false`. Feature `sign` adds signing model files and reading PKCS#8
//! secret keys; `train` (default) adds everything host-only, key generation included.
//!
//! # How the filter uses it
//!
//! ```
//! use obguard_models::{
//!     ClientBaseline, ExtractConfig, Model, RequestEvent, Verdict, explain, extract, load,
//!     observe_response,
//! };
//! # fn shipped() -> Vec<u8> { obguard_models::model::doc_example_model() }
//! // Configure time: load the model file (a refusal says why; fail the configuration).
//! let model: Model = load(&shipped()).expect("configure fails with this message");
//! let cfg = ExtractConfig { utc_offset_minutes: 0 };
//!
//! // Request phase, after token and scope checks: build the event from headers...
//! let mut event = RequestEvent::for_path(
//!     1_767_225_600_000, "tpp-acme", "GET", "/open-banking/v3.1/aisp/accounts/acc-7/balances");
//! event.ip = "203.0.113.9".parse().ok();
//! event.country = Some("GB");
//! event.user_agent = Some("AcmeAggregator/2.3");
//! // ...fetch the client's baseline bytes from shared data (None: a new client)...
//! let stored: Option<Vec<u8>> = None;
//! let mut baseline = stored
//!     .and_then(|b| ClientBaseline::decode(&b).ok()) // corrupt bytes: start afresh
//!     .unwrap_or_else(ClientBaseline::new);
//! let features = extract(&cfg, &mut baseline, model.population(), &event);
//! // Calibrated to this client (its usual score is carried in the baseline).
//! let score = model.score_for_client(&features, &mut baseline).score;
//! let verdict = Model::verdict(score, model.thresholds()); // or a route's override
//! let reasons = if verdict == Verdict::Allow { vec![] } else { explain(&features, &baseline) };
//! let bytes = baseline.encode().expect("fits"); // set_shared_data with the CAS token
//!
//! // Response phase: fetch, fold the response in, store back (CAS).
//! let mut baseline = ClientBaseline::decode(&bytes).unwrap_or_else(|_| ClientBaseline::new());
//! observe_response(&mut baseline, 200, 1_830, 1_767_225_600_045);
//! # let _ = (reasons, baseline.encode());
//! ```
//!
//! Notes for the adapter:
//!
//! * Key baselines by client id (the TPP). Shared data has no eviction: the filter bounds the
//!   number of keys itself, using [`ClientBaseline::last_seen_ms`] for TTL eviction.
//! * On a CAS conflict, re-read the bytes and run [`extract`] again on the fresh baseline; use
//!   the features of the attempt whose write succeeded (a few retries, then score without
//!   storing: a lost update only costs one request's contribution to the baseline).
//! * Bytes that fail [`ClientBaseline::decode`] (corrupt, or written by another baseline
//!   version after an upgrade) mean "start this client afresh", never a failed request.
//! * [`Thresholds`] is serde-deserialisable for per-route overrides in the plugin config;
//!   call [`Thresholds::validate`] on them at configure time.
//! * [`explain()`] wants the baseline as [`extract`] left it (after the request).
//! * Hours of day are counted in [`ExtractConfig::utc_offset_minutes`]; use the model's
//!   `metadata().utc_offset_minutes` unless there is a reason not to.

extern crate alloc;

pub mod baseline;
pub mod error;
pub mod event;
pub mod explain;
pub mod features;
mod hashing;
pub mod model;
pub mod rules;
pub mod schema;

pub use baseline::{ClientBaseline, PopulationBaseline};
pub use error::{BaselineError, ModelError};
pub use event::{RequestEvent, split_path};
pub use explain::{Reason, explain};
pub use features::{
    ExtractConfig, Feature, FeatureVector, extract, observe_response, user_agent_product,
};
pub use model::{
    ClientScore, Model, PublicKey, SIGNATURE_ALGORITHM, SignaturePolicy, Thresholds, Verdict,
    calibrate, file_digest, load,
};
#[cfg(feature = "sign")]
pub use model::{SecretKey, secret_key_from_pem, sign_model_file};
#[cfg(feature = "train")]
pub use model::{generate_secret_key, secret_key_to_pem};
pub use schema::{FEATURE_COUNT, FeatureSchema, SCHEMA};

#[cfg(feature = "train")]
pub mod eval;
#[cfg(feature = "train")]
pub mod inject;
#[cfg(feature = "train")]
pub mod plots;
#[cfg(feature = "train")]
pub mod records;
#[cfg(feature = "train")]
pub mod report;
#[cfg(feature = "train")]
pub mod sim;
#[cfg(feature = "train")]
pub mod sim_b;
#[cfg(feature = "train")]
pub mod train;
