//! `manifest.json`: what a build made, written last.

use super::catalog::{LabelEntry, Skip};
use crate::checksum::FileSums;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MANIFEST: &str = "manifest.json";

/// Version of the manifest's layout. 2: `manifest_version`, `label_order`,
/// `multi_label`, `split_ratios`, per variant `label_width`, `image_sizes`
/// and an `image_shape` that is absent (null) when the images do not share
/// one size; `items.csv` is among the files. (1: the fields before.)
pub const MANIFEST_VERSION: u32 = 3;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitCounts {
    pub items: u64,
    /// Distinct groups (0 when items have none).
    pub groups: u64,
    pub per_class: BTreeMap<String, u64>,
}

/// The sizes of the images written, when they are not all one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageSizes {
    pub distinct: u64,
    /// `WxH` of the smallest and the largest (by area).
    pub smallest: String,
    pub largest: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantManifest {
    pub splits: BTreeMap<String, SplitCounts>,
    pub num_training_samples: u64,
    /// `C,H,W` as SageMaker wants it: the images' one size, or the recipe's
    /// `[hyperparameters] image_shape`; none when the images differ and the
    /// recipe does not say.
    pub image_shape: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_sizes: Option<ImageSizes>,
    /// Labels per record in packed RecordIO (`ImageRecordIter(label_width=)`):
    /// 1, or the number of classes for a multi-label set.
    #[serde(default)]
    pub label_width: usize,
    /// Ready for SageMaker's image classification algorithm (strings, as SageMaker takes them).
    pub hyperparameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default = "version_one")]
    pub manifest_version: u32,
    pub tool: String,
    pub version: String,
    pub name: String,
    pub recipe_sha256: String,
    /// Recipe, tool version and every input's size and time: equal means up to date.
    pub fingerprint: String,
    pub seed: u64,
    pub split_method: String,
    /// Per split: the share asked for and the share of items it got.
    #[serde(default)]
    pub split_ratios: BTreeMap<String, super::plan::SplitRatio>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub num_classes: usize,
    /// How the class ids were ordered: `sorted`, `labels.names`, `labels.names
    /// file F`, `class_ids file F (its order)`, or `class ids (numbers in
    /// .lst sources)`.
    #[serde(default)]
    pub label_order: String,
    /// Labels are multi-hot vectors of `num_classes` values.
    #[serde(default)]
    pub multi_label: bool,
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
    /// Detection datasets: conventions, box checks, per-output counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<DetectionManifest>,
    /// Video sources: decoder, numbering and time rules, every chunk's
    /// timeline, and the frame table file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<serde_json::Value>,
}

/// What a detection build decided and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectionManifest {
    /// How boxes are held and written: pixels of the output image, origin at
    /// the top-left corner of the top-left pixel, floats.
    pub box_convention: String,
    /// How VOC sources' coordinates were read (`as-is` or `one-based`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voc_origin: Option<crate::recipe::VocOrigin>,
    /// The first class id of each output (SageMaker, MXNet, YOLO: 0; COCO,
    /// TF Object Detection: 1). `labels[].id` is the 0-based id.
    pub class_id_base: BTreeMap<String, u32>,
    /// Objects per split and class (variant -> split -> class -> objects).
    pub objects: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>,
    /// Images an output left out because its readers cannot take them:
    /// variant -> output -> reason -> images.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub left_out: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>,
    pub boxes: crate::build::boxes::BoxReport,
    /// The destination the augmented manifests' `source-ref`s point into
    /// (`push` refuses another one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_to: Option<String>,
}

fn version_one() -> u32 {
    1
}

/// The `--json` summary of a build: the manifest without its file list,
/// skip list and per-class counts (counted instead).
pub(super) fn summarize<S: serde::Serializer>(m: &Manifest, s: S) -> Result<S::Ok, S::Error> {
    let variants: BTreeMap<&String, serde_json::Value> = m
        .variants
        .iter()
        .map(|(name, v)| {
            let splits: BTreeMap<&String, serde_json::Value> = v
                .splits
                .iter()
                .map(|(k, c)| {
                    (
                        k,
                        serde_json::json!({
                            "items": c.items,
                            "groups": c.groups,
                            "classes": c.per_class.keys().filter(|k| *k != "(unlabelled)").count(),
                        }),
                    )
                })
                .collect();
            (
                name,
                serde_json::json!({
                    "splits": splits,
                    "num_training_samples": v.num_training_samples,
                    "image_shape": v.image_shape,
                    "label_width": v.label_width,
                    "hyperparameters": v.hyperparameters,
                }),
            )
        })
        .collect();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for sk in &m.skipped {
        *reasons.entry(skip_kind(&sk.reason)).or_default() += 1;
    }
    serde_json::json!({
        "manifest_version": m.manifest_version,
        "name": m.name,
        "num_classes": m.num_classes,
        "label_order": m.label_order,
        "multi_label": m.multi_label,
        "split_method": m.split_method,
        "split_ratios": m.split_ratios,
        "variants": variants,
        "files": m.files.len(),
        "skipped": m.skipped.len(),
        "skipped_by_reason": reasons,
        "non_rgb_sources": m.non_rgb_sources,
    })
    .serialize(s)
}

/// A skip reason without the file it names, for counting by kind.
pub fn skip_kind(reason: &str) -> String {
    let r = reason.trim();
    if r.ends_with("does not exist") {
        return "missing file".into();
    }
    if r.starts_with("duplicate item") {
        return "duplicate item".into();
    }
    if r.contains("is not in the label map") || r.contains("outside labels.names") {
        return "unknown label".into();
    }
    if r.contains("not assigned to a split") || r.contains("no split") {
        return "no split".into();
    }
    if let Some((_, rest)) = r.split_once(": ") {
        if r.starts_with('/') || r.contains("://") {
            return skip_kind(rest);
        }
    }
    r.split([':', '(']).next().unwrap_or(r).trim().to_string()
}
