//! `manifest.json`: what a build made, written last.

use super::catalog::{LabelEntry, Skip};
use crate::checksum::FileSums;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitCounts {
    pub items: u64,
    /// Distinct groups (0 when items have none).
    pub groups: u64,
    pub per_class: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantManifest {
    pub splits: BTreeMap<String, SplitCounts>,
    pub num_training_samples: u64,
    /// `C,H,W` as SageMaker wants it.
    pub image_shape: String,
    /// Ready for SageMaker's image classification algorithm (strings, as SageMaker takes them).
    pub hyperparameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub version: String,
    pub name: String,
    pub recipe_sha256: String,
    /// Recipe, tool version and every input's size and time: equal means up to date.
    pub fingerprint: String,
    pub seed: u64,
    pub split_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub num_classes: usize,
    pub labels: Vec<LabelEntry>,
    pub variants: BTreeMap<String, VariantManifest>,
    /// Every output file (relative to the output folder, `/`-separated).
    pub files: BTreeMap<String, FileSums>,
    /// Records in each TFRecord shard.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub records: BTreeMap<String, u64>,
    /// Included items whose source is not plain RGB, by layout (`grayscale`,
    /// `grayscale+alpha`, `rgba`, `cmyk`). Under `color_policy = "convert"`
    /// they are converted wherever pixels are decoded or re-encoded; with
    /// `encoding = "passthrough"` the encoded bytes stay as they are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub non_rgb_sources: BTreeMap<String, u64>,
    pub skipped: Vec<Skip>,
}
