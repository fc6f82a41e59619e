//! A refused request: what it counts as, why, and the reply it gets. Every stage that can
//! refuse returns one, so `decide` reads as the list of stages joined by `?`.

use crate::enforce::reply::{self, Denial, LocalReply};
use crate::identify::TokenError;
use crate::telemetry::Outcome;

#[derive(Debug)]
pub struct Refusal {
    pub outcome: Outcome,
    /// Also the metric suffix and the access log's `reason`.
    pub reason: &'static str,
    pub denial: Denial,
    /// Set when the refusal is a token error.
    pub token_error: Option<TokenError>,
}

impl Refusal {
    pub fn new(outcome: Outcome, reason: &'static str, denial: Denial) -> Self {
        Self {
            outcome,
            reason,
            denial,
            token_error: None,
        }
    }

    pub fn token(outcome: Outcome, error: TokenError, denial: Denial) -> Self {
        Self {
            outcome,
            reason: error.reason(),
            denial,
            token_error: Some(error),
        }
    }

    /// The RFC 6750 / RFC 9470 reply, with the request's interaction id.
    pub fn reply(&self, realm: &str, interaction_id: &str) -> LocalReply {
        reply::build(&self.denial, realm, interaction_id)
    }
}
