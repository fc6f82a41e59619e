//! Tree ensemble inference: flat node arrays, no allocation, bounded walks.
//!
//! Trees are trained with smartcore on the host and converted to this layout (see
//! `train::export`), because smartcore's own predictor wants a matrix per call and its tree
//! layout is private. A forest is validated once at load so the per-request walk cannot loop
//! or index out of range.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::schema::FEATURE_COUNT;

/// `feature` value marking a leaf.
pub const LEAF: u8 = u8::MAX;

/// One node. Internal: go `left` when `x[feature] <= threshold`, else `right`.
/// Leaf (`feature == LEAF`): `threshold` holds the leaf's value (attack probability).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub feature: u8,
    pub threshold: f32,
    pub left: u16,
    pub right: u16,
}

/// One tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// A forest; its score is the mean of its trees' leaf values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    pub trees: Vec<Tree>,
}

impl Tree {
    /// Children must point forward (so walks terminate) and inside the tree.
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.nodes.is_empty() {
            return Err("empty tree");
        }
        if self.nodes.len() > usize::from(u16::MAX) {
            return Err("tree has too many nodes");
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.feature == LEAF {
                if !n.threshold.is_finite() {
                    return Err("leaf value is not finite");
                }
                continue;
            }
            if usize::from(n.feature) >= FEATURE_COUNT {
                return Err("split on a feature outside the schema");
            }
            if n.threshold.is_nan() {
                return Err("split threshold is NaN");
            }
            for child in [n.left, n.right] {
                let c = usize::from(child);
                if c <= i || c >= self.nodes.len() {
                    return Err("child index does not point forward inside the tree");
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn leaf(&self, x: &[f32; FEATURE_COUNT]) -> f32 {
        let mut i = 0usize;
        // Validation guarantees children point forward, so at most `len` steps.
        for _ in 0..self.nodes.len() {
            let Some(n) = self.nodes.get(i) else {
                return 0.0;
            };
            if n.feature == LEAF {
                return n.threshold;
            }
            let v = x.get(usize::from(n.feature)).copied().unwrap_or(0.0);
            i = usize::from(if v <= n.threshold { n.left } else { n.right });
        }
        0.0
    }
}

impl Forest {
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.trees.is_empty() {
            return Err("forest has no trees");
        }
        self.trees.iter().try_for_each(Tree::validate)
    }

    pub fn score(&self, x: &[f32; FEATURE_COUNT]) -> f32 {
        let sum: f32 = self.trees.iter().map(|t| t.leaf(x)).sum();
        sum / self.trees.len().max(1) as f32
    }

    pub fn node_count(&self) -> usize {
        self.trees.iter().map(|t| t.nodes.len()).sum()
    }
}
