//! Logistic regression inference: standardise, dot product, sigmoid.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::schema::FEATURE_COUNT;

/// `score = sigmoid(bias + Σ weight_i · (transform(x_i) − mean_i) / scale_i)`, where
/// `transform` is `ln(1 + max(x, 0))` (features are heavy-tailed counts and rates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub weights: Vec<f32>,
    pub bias: f32,
}

/// The input transform shared by training and inference.
pub fn transform(x: f32) -> f32 {
    x.max(0.0).ln_1p()
}

impl Logistic {
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.mean.len() != FEATURE_COUNT
            || self.scale.len() != FEATURE_COUNT
            || self.weights.len() != FEATURE_COUNT
        {
            return Err("logistic model has the wrong number of coefficients");
        }
        let finite = self
            .mean
            .iter()
            .chain(&self.weights)
            .chain(core::iter::once(&self.bias))
            .all(|v| v.is_finite());
        let positive = self.scale.iter().all(|s| s.is_finite() && *s > 0.0);
        if finite && positive {
            Ok(())
        } else {
            Err("logistic model has a non-finite coefficient or a non-positive scale")
        }
    }

    pub(crate) fn margin(&self, x: &[f32; FEATURE_COUNT]) -> f32 {
        let mut z = self.bias;
        for (((v, m), s), w) in x.iter().zip(&self.mean).zip(&self.scale).zip(&self.weights) {
            z += w * (transform(*v) - m) / s;
        }
        z
    }

    pub fn score(&self, x: &[f32; FEATURE_COUNT]) -> f32 {
        1.0 / (1.0 + (-self.margin(x)).exp())
    }
}
