//! Human-readable reasons for a score: which features stand out and by how much.
//!
//! Reasons are for operators reading access logs and for the `WWW-Authenticate`-less
//! security event trail, so they are short, stable strings with the value and, where it
//! helps, the client's baseline: `hour_rare(03:10, client p=0.002)`, `new_country(RU)`,
//! `resource_enumeration(37 ids/10min)`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;

use crate::baseline::ClientBaseline;
use crate::features::{Feature, FeatureVector};

/// How many reasons [`explain`] returns at most.
pub const MAX_REASONS: usize = 3;

/// One reason: the feature it comes from, a rendered text, and how strongly it stands out
/// (0..1, used to rank).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    pub feature: &'static str,
    pub text: String,
    pub strength: f32,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn ramp(value: f32, from: f32, to: f32) -> f32 {
    if to <= from {
        return 0.0;
    }
    ((value - from) / (to - from)).clamp(0.0, 1.0)
}

/// The strongest reasons (at most [`MAX_REASONS`], never none) why `fv` looks unusual for
/// this client, each with the client's own usual value where there is one;
/// `unusual_feature_combination` when no single feature stands out.
/// `baseline` is the client's state after the request (as returned by `extract`).
pub fn explain(fv: &FeatureVector, baseline: &ClientBaseline) -> Vec<Reason> {
    let mut out: Vec<Reason> = Vec::new();
    let mut push = |feature: &'static str, strength: f32, text: String| {
        if strength > 0.0 {
            out.push(Reason {
                feature,
                text,
                strength,
            });
        }
    };
    let ctx = &fv.context;

    let hour = fv.get(Feature::HourSurprise);
    push(
        "hour_surprise",
        ramp(hour, 6.0, 14.0),
        format!(
            "hour_rare({:02}:{:02}, client p={})",
            ctx.local_minute / 60,
            ctx.local_minute % 60,
            round_p(ctx.hour_p)
        ),
    );
    if let Some(c) = ctx.country {
        let code = String::from_utf8_lossy(&c).into_owned();
        push(
            "new_country",
            fv.get(Feature::NewCountry) * 0.95,
            format!("new_country({code})"),
        );
    }
    if let Some(asn) = ctx.asn {
        push(
            "new_asn",
            fv.get(Feature::NewAsn) * 0.85,
            format!("new_asn(AS{asn})"),
        );
    }
    push(
        "new_prefix",
        fv.get(Feature::NewPrefix) * 0.6,
        String::from("new_network_prefix"),
    );
    push(
        "ids_ratio",
        ramp(fv.get(Feature::IdsRatio), 2.0, 8.0),
        format!(
            "resource_enumeration({:.0} ids/10min, usual {:.0})",
            ctx.ids, ctx.usual_ids
        ),
    );
    push(
        "error_ratio",
        ramp(fv.get(Feature::ErrorRatio), 0.2, 0.7).max(ramp(
            fv.get(Feature::ErrorExcess),
            0.1,
            0.5,
        )),
        format!(
            "error_ratio({:.0}% 401/403/404, usual {:.0}%)",
            fv.get(Feature::ErrorRatio) * 100.0,
            ctx.usual_error_ratio * 100.0
        ),
    );
    let bytes = fv.get(Feature::BytesRatio);
    push(
        "bytes_ratio",
        ramp(bytes, 4.0, 30.0),
        format!(
            "bulk_download({:.0} KiB/min, {bytes:.0}x usual {:.0})",
            ctx.kib_per_min, ctx.usual_kib_per_min
        ),
    );
    let burst = fv.get(Feature::BurstRatio);
    push(
        "burst_ratio",
        ramp(burst, 4.0, 20.0),
        format!(
            "burst({:.0} req/min, {burst:.0}x usual {:.1})",
            ctx.rate_per_min, ctx.usual_rate_per_min
        ),
    );
    let pace = fv.get(Feature::PaceRatio);
    push(
        "pace_ratio",
        ramp(pace, 3.0, 12.0) * 0.8,
        format!("sustained_pace({pace:.0}x usual hourly rate)"),
    );
    push(
        "route_surprise",
        ramp(fv.get(Feature::RouteSurprise), 7.0, 12.0) * 0.6,
        String::from("unusual_route_for_client"),
    );
    push(
        "new_product",
        fv.get(Feature::NewProduct) * 0.9,
        format!("new_user_agent_product({})", ctx.product()),
    );
    push(
        "new_agent",
        fv.get(Feature::NewAgent) * 0.4,
        String::from("new_user_agent"),
    );
    if ctx.warmth < 1.0 {
        push(
            "warmup",
            0.05,
            format!("new_client({} requests seen)", baseline.requests()),
        );
    }

    out.sort_by(|a, b| b.strength.total_cmp(&a.strength));
    out.truncate(MAX_REASONS);
    if out.is_empty() {
        // The model can flag a combination no single feature explains; say so.
        out.push(Reason {
            feature: "combination",
            text: String::from("unusual_feature_combination"),
            strength: 0.0,
        });
    }
    out
}

/// Probabilities to 1-2 significant digits: 0.002, 0.04, 0.3.
fn round_p(p: f32) -> String {
    if p >= 0.1 {
        format!("{p:.1}")
    } else if p >= 0.01 {
        format!("{p:.2}")
    } else if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}
