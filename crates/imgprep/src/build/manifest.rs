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
    /// Recipe, transform and every input by content (its SHA-256), labels,
    /// groups, splits and boxes: the same data gives the same fingerprint
    /// wherever its files were copied.
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
    pub files: FileList,
    /// Records in each record file (TFRecord shard or RecordIO `.rec`): what
    /// a trainer reads, which for detection can be fewer than the split's
    /// items (images without boxes are left out of some formats).
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

/// Output files by path (relative to the output folder), sorted: the
/// manifest's `files` object. One sorted list rather than a map: a build
/// collects its files in write order and sorts them once, in place (at
/// 100,000 files a map made from that list cost as much again, its nodes
/// and the list side by side).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileList(Vec<(String, FileSums)>);

impl FileList {
    /// The files in `list`, sorted by path in place; `Err(path)` names a
    /// path listed twice (a build never writes one twice: its output guard
    /// refuses the second claim).
    pub fn from_unsorted(mut list: Vec<(String, FileSums)>) -> Result<FileList, String> {
        list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = list.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(w[0].0.clone());
        }
        // room for the few files added after (items.csv, frames.csv, each
        // variant's hyperparameters.json, a convert's recipe): exactly full,
        // the first insert doubled the list (+6 MB at 100,000 files, the
        // peak of a 50,000-image build)
        const ROOM: usize = 64;
        if list.capacity() >= list.len() + ROOM {
            list.shrink_to(list.len() + ROOM);
        } else {
            list.reserve_exact(ROOM);
        }
        Ok(FileList(list))
    }

    fn find(&self, path: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(p, _)| p.as_str().cmp(path))
    }

    pub fn get(&self, path: &str) -> Option<&FileSums> {
        self.find(path).ok().map(|k| &self.0[k].1)
    }

    pub fn contains_key(&self, path: &str) -> bool {
        self.find(path).is_ok()
    }

    /// Adds or replaces the file at `path`; returns the sums it replaced.
    pub fn insert(&mut self, path: String, sums: FileSums) -> Option<FileSums> {
        match self.find(&path) {
            Ok(k) => Some(std::mem::replace(&mut self.0[k].1, sums)),
            Err(k) => {
                // one more, not double: the list is sized exactly, and
                // only a few files are added to a build's list one by one
                self.0.reserve_exact(1);
                self.0.insert(k, (path, sums));
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(path, sums)` in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &FileSums)> {
        self.0.iter().map(|(p, s)| (p, s))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(p, _)| p)
    }

    /// The files whose path is `from` or sorts after it, in path order.
    pub fn starting_at<'a>(
        &'a self,
        from: &str,
    ) -> impl Iterator<Item = (&'a String, &'a FileSums)> {
        let k = self.find(from).unwrap_or_else(|k| k);
        self.0[k..].iter().map(|(p, s)| (p, s))
    }
}

impl Serialize for FileList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for FileList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FileList, D::Error> {
        struct Files;
        impl<'de> serde::de::Visitor<'de> for Files {
            type Value = FileList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of path -> size and sha256")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FileList, A::Error> {
                let mut list = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(entry) = map.next_entry::<String, FileSums>()? {
                    list.push(entry);
                }
                FileList::from_unsorted(list).map_err(|path| {
                    serde::de::Error::custom(format!("{path} is listed twice in files"))
                })
            }
        }
        d.deserialize_map(Files)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::{sha256, Sha256Sum};

    fn sums(size: u64) -> FileSums {
        FileSums {
            size,
            sha256: Sha256Sum(sha256(&size.to_le_bytes())),
        }
    }

    #[test]
    fn file_list_sorts_and_refuses_a_path_twice() {
        let list = |names: &[&str]| -> Vec<(String, FileSums)> {
            names
                .iter()
                .enumerate()
                .map(|(k, n)| (n.to_string(), sums(k as u64)))
                .collect()
        };
        let files =
            FileList::from_unsorted(list(&["m", "b", "z", "a", "q", "c", "y", "d"])).unwrap();
        let paths: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(paths, ["a", "b", "c", "d", "m", "q", "y", "z"]);
        assert_eq!(files.get("a"), Some(&sums(3)));
        assert_eq!(files.get("z"), Some(&sums(2)));
        assert!(!files.contains_key("e"));
        let after_c: Vec<&str> = files.starting_at("c").map(|(p, _)| p.as_str()).collect();
        assert_eq!(after_c, ["c", "d", "m", "q", "y", "z"]);
        let after_e: Vec<&str> = files.starting_at("e").map(|(p, _)| p.as_str()).collect();
        assert_eq!(after_e, ["m", "q", "y", "z"]);
        assert_eq!(
            FileList::from_unsorted(list(&["b", "a", "b"])),
            Err("b".to_string())
        );
        // a manifest listing a file twice is refused, not read with one of them
        let zeros = "0".repeat(64);
        let twice = format!(
            r#"{{"a": {{"size": 1, "sha256": "{zeros}"}}, "a": {{"size": 2, "sha256": "{zeros}"}}}}"#
        );
        let err = serde_json::from_str::<FileList>(&twice)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a is listed twice"), "{err}");
    }

    #[test]
    fn file_list_insert_and_json_match_a_map() {
        let mut files = FileList::default();
        let mut map = BTreeMap::new();
        for (k, n) in ["k", "a", "x", "a", "c"].iter().enumerate() {
            assert_eq!(
                files.insert(n.to_string(), sums(k as u64)),
                map.insert(n.to_string(), sums(k as u64))
            );
        }
        let text = serde_json::to_string(&files).unwrap();
        assert_eq!(text, serde_json::to_string(&map).unwrap());
        let back: FileList = serde_json::from_str(&text).unwrap();
        assert_eq!(back, files);
        assert_eq!(back.len(), 4);
    }

    #[test]
    fn files_added_after_the_sort_do_not_move_a_large_list() {
        // a build's list of 100,000 files gets items.csv, frames.csv and
        // each variant's hyperparameters.json after it is sorted: moving the
        // list then (doubling it) was the peak of a large build's memory
        let n = 10_000;
        let mut list: Vec<(String, FileSums)> = Vec::with_capacity(n + 100);
        list.extend((0..n).map(|k| (format!("img/{k:05}.jpg"), sums(k as u64))));
        let mut files = FileList::from_unsorted(list).unwrap();
        assert!(
            files.0.capacity() < n + 100,
            "the slack beyond the room is given back"
        );
        let at = files.0.as_ptr();
        for k in 0..20 {
            files.insert(format!("v{k}/hyperparameters.json"), sums(0));
        }
        files.insert("items.csv".into(), sums(1));
        files.insert("frames.csv".into(), sums(2));
        assert_eq!(files.0.as_ptr(), at, "the list moved");
        assert_eq!(files.len(), n + 22);
        // a list that came exactly full gets the room too
        let full: Vec<(String, FileSums)> = vec![("b".into(), sums(1)), ("a".into(), sums(2))];
        let mut files = FileList::from_unsorted(full).unwrap();
        let at = files.0.as_ptr();
        files.insert("items.csv".into(), sums(3));
        assert_eq!(files.0.as_ptr(), at);
    }
}
