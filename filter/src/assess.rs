//! Assess (stage 7 of [`crate::pipeline`]): the verdict and risk band of an authenticated request — what the pipeline
//! enforces, what the rate-limit stage and the `x-obguard-verdict` / `x-obguard-risk-band`
//! headers see.
//!
//! With a `model` configured, [`model::ModelStage`] scores
//! every request against the caller's own baseline. Clients pinned in `static_assessments`
//! get their pinned value; without a model a request is [`Assessment::UNSCORED`].

pub mod baselines;
pub mod config;
pub mod model;
pub mod model_source;
pub mod pending;

use std::collections::HashMap;

use serde::Deserialize;

use crate::config::ConfigError;
use config::RawStaticAssessment;

/// What the pipeline concluded about an authenticated request: the model's vocabulary,
/// one for the whole product (wire names `allow`, `step_up`, `throttle`, `block`).
pub use obguard_models::Verdict;

/// Coarse risk of the request; weights `hits_addend` in rate-limit calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiskBand {
    Low,
    Medium,
    High,
}

impl RiskBand {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskBand::Low => "low",
            RiskBand::Medium => "medium",
            RiskBand::High => "high",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    pub verdict: Verdict,
    pub risk_band: RiskBand,
}

impl Assessment {
    /// What a request nothing scored gets: no model configured, or none accepted yet with
    /// `model.when_unavailable: allow`.
    pub const UNSCORED: Assessment = Assessment {
        verdict: Verdict::Allow,
        risk_band: RiskBand::Low,
    };
}

/// Clients whose assessment is pinned by configuration.
#[derive(Debug, Default)]
pub struct StaticAssessments {
    by_client: HashMap<String, Assessment>,
}

impl StaticAssessments {
    pub fn compile(
        path: &str,
        raw: &HashMap<String, RawStaticAssessment>,
    ) -> Result<Self, ConfigError> {
        let mut by_client = HashMap::with_capacity(raw.len());
        // Sorted, so the first error reported does not depend on hash order.
        let mut clients: Vec<&String> = raw.keys().collect();
        clients.sort();
        for client in clients {
            let Some(entry) = raw.get(client) else {
                continue;
            };
            let field = format!("{path}.{client}");
            if client.is_empty() {
                return Err(ConfigError::new(field, "client id must not be empty"));
            }
            by_client.insert(
                client.clone(),
                Assessment {
                    verdict: entry.verdict,
                    risk_band: entry.risk_band,
                },
            );
        }
        Ok(Self { by_client })
    }
}

/// A client's pinned assessment, if any.
pub fn pinned(statics: &StaticAssessments, client_id: &str) -> Option<Assessment> {
    statics.by_client.get(client_id).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_clients_get_their_assessment_others_none() {
        let raw: HashMap<String, RawStaticAssessment> =
            serde_json::from_str(r#"{"tpp-bad": {"verdict": "throttle", "risk_band": "high"}}"#)
                .unwrap_or_default();
        let statics = StaticAssessments::compile("static_assessments", &raw);
        let statics = statics.unwrap_or_default();
        assert_eq!(
            pinned(&statics, "tpp-bad"),
            Some(Assessment {
                verdict: Verdict::Throttle,
                risk_band: RiskBand::High
            })
        );
        assert_eq!(pinned(&statics, "tpp-good"), None);
    }
}
