//! After the rate-limit service answered (or could not be asked): the request's final
//! outcome. What the answer means for the request (resume with headers, or a reply) is
//! [`crate::ratelimit::reply`]'s; this only says how it is counted.

use crate::ratelimit::reply::Answer;
use crate::telemetry::{self, Outcome};

/// The outcome and reason the request ends with: `decided` (what the stages concluded) when
/// the answer lets it through, the refusal otherwise.
pub fn settle(decided: Outcome, answer: Answer) -> (Outcome, Option<&'static str>) {
    match answer {
        Answer::OverLimit => (Outcome::RateLimited, Some(telemetry::REASON_OVER_LIMIT)),
        Answer::FailedClosed(failure) => (Outcome::RateLimitFailed, Some(failure.as_str())),
        Answer::Ok | Answer::FailedOpen(_) => (decided, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::reply::Failure;

    #[test]
    fn an_answer_that_lets_the_request_through_keeps_the_decided_outcome() {
        for answer in [Answer::Ok, Answer::FailedOpen(Failure::Timeout)] {
            assert_eq!(settle(Outcome::Allowed, answer), (Outcome::Allowed, None));
        }
    }

    #[test]
    fn over_limit_and_failing_closed_refuse_with_their_reason() {
        assert_eq!(
            settle(Outcome::Allowed, Answer::OverLimit),
            (Outcome::RateLimited, Some(telemetry::REASON_OVER_LIMIT))
        );
        let failed = Answer::FailedClosed(Failure::Timeout);
        assert_eq!(
            settle(Outcome::Allowed, failed),
            (Outcome::RateLimitFailed, Some(Failure::Timeout.as_str()))
        );
    }
}
