//! The recipe: one TOML file that declares a dataset build (sources, labels,
//! splits, variants, transforms, outputs). Unknown keys and invalid values
//! are errors with `file:line:column`.

use crate::error::{Error, Result};
use crate::image::{ColorMode, Encoding, ImageSpec, Resize, DEFAULT_MAX_PIXELS};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Dataset name (used in file names and the manifest).
    pub name: String,
    /// Seed for shuffles and samples.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `fail` (default): a bad item stops the build; `skip`: it is counted and left out.
    #[serde(default)]
    pub on_error: OnError,
    #[serde(rename = "sources")]
    pub sources: Vec<SourceSpec>,
    #[serde(default)]
    pub labels: LabelSpec,
    #[serde(default)]
    pub split: SplitSpec,
    #[serde(default = "default_variants")]
    pub variants: Vec<VariantSpec>,
    #[serde(default)]
    pub transform: TransformSpec,
    #[serde(default = "default_outputs")]
    pub outputs: Vec<OutputSpec>,
    /// Values for SageMaker's hyperparameters.json beyond the computed ones
    /// (`image_shape` when the images do not share one size).
    #[serde(default)]
    pub hyperparameters: HyperparameterSpec,
    /// Detection datasets: box checks and background images.
    #[serde(default)]
    pub boxes: BoxSpec,
}

/// `[hyperparameters]`: settings the data cannot decide.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HyperparameterSpec {
    /// Classification: `"C,H,W"`, e.g. `"3,224,224"`, the network's input
    /// shape, when the written images do not all have one size. Detection:
    /// one side of SageMaker's square input, 300 or more (`300`, `"512"`).
    #[serde(default, deserialize_with = "text_or_integer")]
    pub image_shape: Option<String>,
}

/// A setting given as text or as a TOML integer, kept as text.
fn text_or_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrInteger {
        Text(String),
        Integer(i64),
    }
    Ok(Some(match TextOrInteger::deserialize(d)? {
        TextOrInteger::Text(t) => t,
        TextOrInteger::Integer(n) => n.to_string(),
    }))
}

fn default_seed() -> u64 {
    1
}

fn default_variants() -> Vec<VariantSpec> {
    vec![VariantSpec {
        name: "complete".into(),
        fraction: None,
        count: None,
    }]
}

fn default_outputs() -> Vec<OutputSpec> {
    vec![OutputSpec::Recordio { pack_label: false }]
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    #[default]
    Fail,
    Skip,
}

/// Where items come from. Paths are relative to the recipe's folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceSpec {
    /// A class-folder tree: label = the folder directly holding the image
    /// (relative to root, `/`-joined for nested folders).
    Folders {
        root: PathBuf,
        #[serde(default = "default_exts")]
        exts: Vec<String>,
        /// Assign every item of this source to a split (the source's own split).
        split: Option<String>,
    },
    /// A CSV/TSV index: columns for the path (or a `{column}` template), labels and group.
    Csv {
        file: PathBuf,
        root: PathBuf,
        /// A column name, or a template such as `{classname}/{img}`.
        path: String,
        /// Label column(s); several columns make a multi-label item. A column
        /// whose cell holds several labels can be split with `label_separator`.
        #[serde(default)]
        label: OneOrMany,
        label_separator: Option<String>,
        group: Option<String>,
        /// Column holding the split name (the source's own split).
        split_column: Option<String>,
        split: Option<String>,
        /// Field delimiter; default by extension (`.tsv` = tab, else comma).
        delimiter: Option<String>,
    },
    /// Existing im2rec `.lst` files (single- or multi-label; labels are class ids).
    Lst {
        file: PathBuf,
        root: PathBuf,
        split: Option<String>,
        /// What several label columns mean: `multi-hot` (one 0/1 column per
        /// class, SageMaker's multi-label format) or `ids` (a list of class
        /// ids). Default: decided from the data when it can be, else an error
        /// asking for this setting.
        label_format: Option<LabelFormat>,
    },
    /// A TinyImageNet-like layout: class ids, human names, per-split folders
    /// or annotation files, unlabelled folders.
    Metadata {
        root: PathBuf,
        /// One class id per line (e.g. `wnids.txt`).
        class_ids: PathBuf,
        /// `id<TAB>human words` per line (e.g. `words.txt`); ids not in class_ids are ignored.
        names: Option<PathBuf>,
        splits: Vec<MetadataSplit>,
    },
    /// Pascal VOC XML boxes: `root/Annotations/*.xml` with `root/JPEGImages/`
    /// (and `ImageSets/Main/{train,val,test}.txt` as the source's split), or
    /// XML files beside their images as labelImg writes them.
    Voc {
        root: PathBuf,
        /// `as-is` (default): coordinates are taken as they are; `one-based`:
        /// the VOC devkit's 1-based pixels (1 is subtracted from xmin, ymin).
        #[serde(default)]
        voc_origin: VocOrigin,
        split: Option<String>,
        /// A regular expression over the image's path; its first group (or the
        /// whole match) is the item's group, e.g. `"^([^/]+)/"` for the folder
        /// or `"^(.*)_\\d+\\.jpg$"` for a name prefix. Groups never span splits.
        group: Option<String>,
    },
    /// A COCO instances JSON (`bbox` = left, top, width, height in pixels)
    /// and the folder its `file_name`s are relative to.
    Coco {
        file: PathBuf,
        images: PathBuf,
        split: Option<String>,
        /// A regular expression over the image's path; its first group (or the
        /// whole match) is the item's group, e.g. `"^([^/]+)/"` for the folder
        /// or `"^(.*)_\\d+\\.jpg$"` for a name prefix. Groups never span splits.
        group: Option<String>,
    },
    /// An ultralytics YOLO layout: `data.yaml` (or `classes.txt`),
    /// `images/...` and `labels/...` with `class cx cy w h` (0..1) per line.
    Yolo {
        root: PathBuf,
        split: Option<String>,
        /// A regular expression over the image's path; its first group (or the
        /// whole match) is the item's group, e.g. `"^([^/]+)/"` for the folder
        /// or `"^(.*)_\\d+\\.jpg$"` for a name prefix. Groups never span splits.
        group: Option<String>,
    },
    /// labelme JSON files (rectangles; polygons become their bounding box),
    /// anywhere under `root`, beside or near their images.
    Labelme {
        root: PathBuf,
        split: Option<String>,
        /// A regular expression over the image's path; its first group (or the
        /// whole match) is the item's group, e.g. `"^([^/]+)/"` for the folder
        /// or `"^(.*)_\\d+\\.jpg$"` for a name prefix. Groups never span splits.
        group: Option<String>,
    },
    /// Video recordings: per session an ordered set of chunk files (one
    /// recording cut in pieces), frames labelled from time or frame ranges.
    Video {
        /// The chunk files, relative to the recipe: `*`, `?` (within a name),
        /// `**` (any folders) and one `{name}` part that is the session (and
        /// its group), e.g. `videos/{subject}/*.mp4`. Chunks of a session
        /// are taken in natural order (`chunk2` before `chunk10`). Without a
        /// `{name}`, every file is a session of its own.
        chunks: String,
        /// The ranges of each session: a path with the same `{name}` to a CSV
        /// of `label,start,end` rows, or one ActivityNet JSON
        /// (`database/ID/annotations`, seconds) for all sessions. Without
        /// it, every frame is unlabelled.
        labels: Option<String>,
        /// The ranges' format: `csv`, `activitynet` or `label-studio` (a
        /// Label Studio JSON export with `<TimelineLabels>`). Default: `csv`,
        /// or for a `.json` file its shape (an object with `database`:
        /// ActivityNet; a list of tasks: Label Studio).
        labels_format: Option<String>,
        /// Label Studio exports: the project's `<Video frameRate>`, by which
        /// it turned times into the frame numbers it exports.
        frame_rate: Option<f64>,
        /// What start and end are: `seconds`, `milliseconds` or `frames`.
        unit: Option<crate::video::ranges::Unit>,
        /// With `unit = "frames"`: the number of a session's first frame (0 or 1).
        frame_base: Option<u32>,
        /// Session time across chunks: `video` (each chunk starts where the
        /// previous one's video ends) or `concat` (at the sum of the previous
        /// files' durations, as ffmpeg's concat demuxer does).
        #[serde(default)]
        time_reference: crate::video::TimeReference,
        /// Frames in no range: `drop` (default; not even decoded to pixels),
        /// `unlabelled`, or `background` (labelled `background_class`).
        #[serde(default)]
        outside: crate::video::ranges::Outside,
        /// The class of outside frames with `outside = "background"`.
        background_class: Option<String>,
        /// A frame in two ranges with different labels: `error` (default),
        /// `first` or `last` (the range that starts first / last keeps it).
        #[serde(default)]
        overlap: crate::video::ranges::Overlap,
        /// Keep every k-th frame of each range.
        every: Option<u32>,
        /// Keep about this many frames per second of each range (the nearest
        /// real frame to each point of a time grid; never a frame twice).
        fps: Option<f64>,
        /// Keep at most this many frames per range, evenly spread.
        max_per_range: Option<usize>,
        /// Videos with non-square pixels: `display` (stretched to the
        /// shape players show) or `stored` (the pixels as stored). Asked
        /// for when a video has them.
        pixel_aspect: Option<crate::video::PixelAspect>,
        split: Option<String>,
    },
}

impl SourceSpec {
    /// Whether the source gives boxes (a detection dataset) rather than class labels.
    pub fn has_boxes(&self) -> bool {
        matches!(
            self,
            SourceSpec::Voc { .. }
                | SourceSpec::Coco { .. }
                | SourceSpec::Yolo { .. }
                | SourceSpec::Labelme { .. }
        )
    }
}

/// How to read VOC pixel coordinates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VocOrigin {
    /// As written (what TF, TFDS, MXNet and most converters do).
    #[default]
    AsIs,
    /// 1-based (the VOC devkit's convention): xmin and ymin are shifted by -1.
    OneBased,
}

/// `[boxes]`: what to do with boxes that do not fit, and with images that
/// end up without any.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxSpec {
    /// A box reaching outside the image (or cut by a crop): `clip` it to the
    /// image (default) or `drop` it. Both are counted.
    #[serde(default)]
    pub outside: OutsidePolicy,
    /// Images with no box left: `keep` them as background images (default;
    /// outputs whose readers cannot take them, MXNet RecordIO and SageMaker's,
    /// still leave them out and count them) or `drop` them everywhere.
    #[serde(default)]
    pub empty_images: EmptyPolicy,
    /// Which picture the boxes were drawn on when an image has an EXIF
    /// orientation and its declared size cannot tell: `upright` (as viewers
    /// show it) or `stored` (the pixels as stored, as labelImg shows them).
    pub exif_frame: Option<ExifFrame>,
    /// Leave out objects marked difficult (VOC `<difficult>1`).
    #[serde(default)]
    pub skip_difficult: bool,
    /// Crowd regions (COCO `iscrowd = 1`: one box around many objects):
    /// `drop` them, or `keep` them as boxes. Needed only when there are
    /// some and an output has no crowd flag (all but COCO and TF Object
    /// Detection), where they would be ordinary boxes.
    pub crowd: Option<CrowdPolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CrowdPolicy {
    Keep,
    Drop,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutsidePolicy {
    #[default]
    Clip,
    Drop,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EmptyPolicy {
    #[default]
    Keep,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExifFrame {
    Upright,
    Stored,
}

/// The meaning of a `.lst` line's label columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelFormat {
    /// One 0/1 column per class.
    MultiHot,
    /// Class ids (negative values are padding).
    Ids,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataSplit {
    pub split: String,
    /// Per-class image folders, with `{class}` for the class id (e.g. `train/{class}/images`).
    pub folders: Option<String>,
    /// Image folder for `annotations`, or of unlabelled images.
    pub images: Option<PathBuf>,
    /// `file<TAB>class id<TAB>...` per line (e.g. `val/val_annotations.txt`).
    pub annotations: Option<PathBuf>,
}

fn default_exts() -> Vec<String> {
    [".jpg", ".jpeg", ".png"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    /// Explicit classes in id order: a list, or a file with one name per
    /// line. Default: the classes of the items written, sorted.
    pub names: Option<NamesSpec>,
    /// `name<TAB>human words` per line, for the manifest's human names.
    pub human_names: Option<PathBuf>,
    /// The dataset is meant to be unlabelled (`num_classes = 0` is refused
    /// otherwise).
    #[serde(default)]
    pub unlabelled: bool,
}

/// `labels.names`: the class list itself, or a file holding it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum NamesSpec {
    List(Vec<String>),
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitMethod {
    /// `source` when every item has a split from its source, else `group`
    /// when items have groups, else `stratified`.
    #[default]
    Auto,
    /// Each class spread over the splits by the ratios (within one item).
    Stratified,
    /// Whole groups (e.g. drivers) go to one split; no group in two splits.
    Group,
    /// Groups listed per split in `assign`.
    Explicit,
    /// The split each source gave its items.
    Source,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    #[serde(default)]
    pub method: SplitMethod,
    #[serde(default = "one")]
    pub train: f64,
    #[serde(default)]
    pub validation: f64,
    #[serde(default)]
    pub test: f64,
    /// For `explicit`: split name -> groups.
    #[serde(default)]
    pub assign: BTreeMap<String, Vec<String>>,
}

fn one() -> f64 {
    1.0
}

impl Default for SplitSpec {
    fn default() -> Self {
        SplitSpec {
            method: SplitMethod::Auto,
            train: 1.0,
            validation: 0.0,
            test: 0.0,
            assign: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    pub name: String,
    /// Per-class fraction of each split (seeded), e.g. 0.1.
    pub fraction: Option<f64>,
    /// Per-class count of each split (seeded).
    pub count: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// `210` (shorter edge), `"224x224"` (exact), or `{ area = 50176 }` (keep aspect).
    pub resize: Option<ResizeSpec>,
    #[serde(default)]
    pub center_crop: bool,
    #[serde(default)]
    pub color: ColorSpec,
    /// Grayscale, CMYK and alpha sources: `convert` (default) to the colour
    /// mode, or `skip` them (counted, with the reason, in the manifest).
    #[serde(default)]
    pub color_policy: ColorPolicy,
    /// `jpg`, `png` or `passthrough`.
    #[serde(default = "default_encoding")]
    pub encoding: String,
    /// JPEG quality 1-100 (PNG: compression 0-9).
    pub quality: Option<u8>,
    #[serde(default = "default_max_pixels")]
    pub max_pixels: u64,
}

fn default_encoding() -> String {
    "jpg".into()
}

fn default_max_pixels() -> u64 {
    DEFAULT_MAX_PIXELS
}

impl Default for TransformSpec {
    fn default() -> Self {
        TransformSpec {
            resize: None,
            center_crop: false,
            color: ColorSpec::Color,
            color_policy: ColorPolicy::Convert,
            encoding: default_encoding(),
            quality: None,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorSpec {
    #[default]
    Color,
    Grayscale,
    Unchanged,
}

/// What to do with sources that are not plain RGB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorPolicy {
    #[default]
    Convert,
    Skip,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ResizeSpec {
    Shorter(u32),
    Exact(String),
    Area { area: u64 },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OutputSpec {
    /// `.rec`/`.idx`/`.lst` per split.
    Recordio {
        #[serde(default)]
        pack_label: bool,
    },
    /// SageMaker image mode: `train/`, `validation/`, `train_lst/`, `validation_lst/`.
    SagemakerImage,
    /// A class-folder tree per split (hard links when possible, else copies).
    Folders,
    /// `tf.train.Example` records in shards `{split}-{i:05}-of-{n:05}.tfrecord[.gz]`.
    Tfrecord {
        /// `tfds` (encoded image + TFDS/Object-Detection-API keys) or `raw`
        /// (decoded uint8 HWC pixels, one-hot label bytes).
        #[serde(default)]
        preset: TfPreset,
        /// Feature renames, e.g. `{ "image/encoded" = "jpeg" }`.
        #[serde(default)]
        rename: BTreeMap<String, String>,
        /// `none`, `gzip` or `zlib`.
        #[serde(default)]
        compression: TfCompression,
        /// Records per shard; default: shards of about `shard_mib` MiB.
        shard_records: Option<usize>,
        #[serde(default = "default_shard_mib")]
        shard_mib: u64,
        /// `raw` preset: add `image/filename` (the item's path) to each
        /// record, to trace a record back to its file (`tfds` always has it).
        #[serde(default)]
        filename: bool,
    },
    /// Detection, SageMaker image mode: `train/`, `validation/` images and
    /// `train_annotation/`, `validation_annotation/` with one JSON per image.
    SagemakerDetection,
    /// Detection, SageMaker augmented manifest (JSON Lines with `source-ref`)
    /// for Pipe mode; `source-ref` is completed by `imgprep push`.
    AugmentedManifest {
        /// The box attribute's name.
        #[serde(default = "default_attribute")]
        attribute: String,
        /// Where the dataset will be pushed (`s3://bucket/prefix`):
        /// `source-ref` is this prefix + the image's path in the output
        /// folder, and `imgprep push` refuses another destination. Without
        /// it, `source-ref` is relative to the manifest's folder.
        push_to: Option<String>,
    },
    /// Detection, COCO instances JSON per split (category ids 1..N).
    Coco,
    /// Detection, an ultralytics YOLO tree with `data.yaml`.
    Yolo,
    /// Detection, Pascal VOC XML with `JPEGImages/` and `ImageSets/Main/`.
    Voc,
}

fn default_attribute() -> String {
    "bounding-box".into()
}

impl OutputSpec {
    /// Formats that hold boxes only (refused for classification datasets).
    pub fn needs_boxes(&self) -> bool {
        matches!(
            self,
            OutputSpec::SagemakerDetection
                | OutputSpec::AugmentedManifest { .. }
                | OutputSpec::Coco
                | OutputSpec::Yolo
                | OutputSpec::Voc
        )
    }
}

fn default_shard_mib() -> u64 {
    128
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TfPreset {
    #[default]
    Tfds,
    Raw,
    /// Detection: the TF Object Detection API's keys (`image/object/bbox/*`
    /// normalised, class label 1..N and text) and `label_map.pbtxt`.
    #[serde(rename = "object-detection")]
    ObjectDetection,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TfCompression {
    #[default]
    None,
    Gzip,
    Zlib,
}

impl TransformSpec {
    /// The image spec, or `None` for pass-through.
    pub fn image_spec(&self) -> std::result::Result<Option<ImageSpec>, String> {
        let resize = match &self.resize {
            None => Resize::None,
            Some(ResizeSpec::Shorter(0)) => return Err("resize must be positive".into()),
            Some(ResizeSpec::Shorter(n)) => Resize::ShorterEdge(*n),
            Some(ResizeSpec::Exact(s)) => {
                let parsed = s
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
                match parsed {
                    Some((w, h)) if w > 0 && h > 0 => Resize::Exact(w, h),
                    _ => {
                        return Err(format!(
                            "resize {s:?}: expected WIDTHxHEIGHT, e.g. \"224x224\""
                        ))
                    }
                }
            }
            Some(ResizeSpec::Area { area: 0 }) => return Err("resize area must be positive".into()),
            Some(ResizeSpec::Area { area }) => Resize::Area(*area),
        };
        let encoding = match self.encoding.as_str() {
            "passthrough" | "pass-through" => return Ok(None),
            "jpg" | "jpeg" => Encoding::Jpeg {
                quality: match self.quality.unwrap_or(95) {
                    q @ 1..=100 => q,
                    q => return Err(format!("quality {q} is outside 1-100 for JPEG")),
                },
            },
            "png" => Encoding::Png {
                compression: self.quality.unwrap_or(3).min(9),
            },
            other => {
                return Err(format!(
                    "encoding {other:?}: expected jpg, png or passthrough"
                ))
            }
        };
        Ok(Some(ImageSpec {
            color: match self.color {
                ColorSpec::Color => ColorMode::Color,
                ColorSpec::Grayscale => ColorMode::Grayscale,
                ColorSpec::Unchanged => ColorMode::Unchanged,
            },
            center_crop: self.center_crop,
            resize,
            encoding,
            max_pixels: self.max_pixels,
        }))
    }
}

/// `line:column` (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

/// A recipe and the folder its relative paths are resolved against.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    pub recipe: Recipe,
    pub path: PathBuf,
    pub base: PathBuf,
    /// SHA-256 of the recipe file's bytes.
    pub hash: String,
}

impl LoadedRecipe {
    /// A path from the recipe: URIs and absolute paths as they are, relative
    /// ones against the recipe's folder (or prefix, for a recipe in object
    /// storage).
    pub fn resolve(&self, p: &Path) -> PathBuf {
        crate::files::join(&self.base, p)
    }
}

/// Parses and checks a recipe file (local, or a URI).
pub fn load(path: &Path) -> Result<LoadedRecipe> {
    let text = crate::files::read_to_string(path).map_err(Error::io(path))?;
    from_text(&text, path)
}

/// Parses and checks recipe text that is (or will be) the file `path`;
/// relative paths resolve against `path`'s folder.
pub fn from_text(text: &str, path: &Path) -> Result<LoadedRecipe> {
    let recipe = parse(text).map_err(|(offset, message)| {
        let (line, col) = offset.map(|o| line_col(text, o)).unwrap_or((1, 1));
        Error::Usage(format!("{}:{line}:{col}: {message}", path.display()))
    })?;
    // Absolute, so that every path the build derives from the recipe (item
    // cache keys, video chunk paths and frame identities, the places named
    // in the manifest, the fingerprint) is the same however the recipe's
    // path was spelled or wherever the command ran. (Not canonicalized:
    // links stay as the user laid them out.)
    let mut base = crate::files::parent(path);
    if !crate::files::is_remote(&base) {
        base = std::path::absolute(&base).unwrap_or(base);
    }
    Ok(LoadedRecipe {
        recipe,
        path: path.to_path_buf(),
        base,
        hash: crate::checksum::sha256_hex(text.as_bytes()),
    })
}

/// A ratio as a person writes it: `0.9`, not `0.8999999999999999`.
pub fn show_ratio(v: f64) -> String {
    let r = (v * 1e9).round() / 1e9;
    format!("{r}")
}

/// Byte offset of the value at `path` in TOML `text` (table keys, or array
/// positions written as numbers); the deepest part of the path that exists
/// when the rest does not (a missing key is reported at its table).
pub fn span_of(text: &str, path: &[&str]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut best = None;
    let mut table: Option<&DeTable> = Some(root.get_ref());
    let mut array: Option<&toml::de::DeArray> = None;
    for key in path {
        let next = match (table, array) {
            (Some(t), _) => t
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == *key)
                .map(|(_, v)| v),
            (None, Some(a)) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        let Some(v) = next else { break };
        best = Some(v.span().start);
        (table, array) = match v.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(a)),
            _ => (None, None),
        };
    }
    best
}

/// The key path of the innermost value of TOML `text` that holds byte
/// `offset`, as Python writes it: `['transform']['quality']`,
/// `['sources'][0]['type']` (for recipes given as a dict, whose TOML text
/// the user never sees). None when no value holds it.
pub fn key_path_at(text: &str, offset: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    // every value with its path (tables' spans need not hold their
    // contents: a `[table]` header's is the header), then the smallest
    // that holds the offset
    fn walk(
        v: &DeValue,
        span: std::ops::Range<usize>,
        path: String,
        all: &mut Vec<(String, std::ops::Range<usize>)>,
    ) {
        match v {
            DeValue::Table(t) => {
                for (k, v) in t.iter() {
                    let key = format!("{path}['{}']", k.get_ref());
                    all.push((key.clone(), k.span().start..v.span().end.max(k.span().end)));
                    walk(v.get_ref(), v.span(), key, all);
                }
            }
            DeValue::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(v.get_ref(), v.span(), format!("{path}[{i}]"), all);
                }
            }
            _ => all.push((path, span)),
        }
    }
    let root = DeTable::parse(text).ok()?;
    let mut all = Vec::new();
    walk(
        &DeValue::Table(root.get_ref().clone()),
        0..text.len(),
        String::new(),
        &mut all,
    );
    all.into_iter()
        .filter(|(p, span)| !p.is_empty() && span.contains(&offset))
        .min_by_key(|(_, span)| span.len())
        .map(|(p, _)| p)
}

/// Whether `name` can be one path component of an output: not empty, not
/// `.` or `..`, no separator or NUL.
pub fn is_safe_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// Parses recipe text; errors carry a byte offset when known.
/// Where the `[[sources]]` table that does not read as a source starts,
/// when the recipe reads as TOML and one of several sources is wrong.
fn failing_source(text: &str) -> Option<usize> {
    let table: toml::Table = toml::from_str(text).ok()?;
    let sources = table.get("sources")?.as_array()?;
    if sources.len() < 2 {
        return None;
    }
    let j = sources
        .iter()
        .position(|v| SourceSpec::deserialize(v.clone()).is_err())?;
    // the j-th `[[sources]]` header at the start of a line
    let mut at = 0;
    let mut seen = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("[[") && t[2..].trim_start().starts_with("sources") {
            let name = t[2..].trim_start()["sources".len()..].trim_start();
            if name.starts_with("]]") {
                if seen == j {
                    return Some(at + (line.len() - t.len()));
                }
                seen += 1;
            }
        }
        at += line.len();
    }
    None
}

/// serde's message for a value that fits none of a setting's forms names a
/// Rust type: said as what the setting takes.
fn plain_untagged(message: String) -> String {
    const FORMS: [(&str, &str); 4] = [
        (
            "ResizeSpec",
            "resize takes a whole number (the shorter edge, e.g. 224), \"WxH\" text (e.g. \
             \"224x224\") or {area = N}",
        ),
        (
            "NamesSpec",
            "names takes a list of class names (e.g. [\"cat\", \"dog\"]) or a file's path",
        ),
        ("TextOrInteger", "this setting takes text or a whole number"),
        ("OneOrMany", "this setting takes text or a list of texts"),
    ];
    for (name, said) in FORMS {
        if message.contains(&format!("untagged enum {name}")) {
            return said.to_string();
        }
    }
    message
}

pub fn parse(text: &str) -> std::result::Result<Recipe, (Option<usize>, String)> {
    let recipe: Recipe = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_string();
        let start = e.span().map(|s| s.start);
        // a source's value is checked after its whole table was read (its
        // `type` picks the kind), so the error points at the table: the
        // value it names is found after that
        let from = start.unwrap_or(0);
        let named = message
            .strip_prefix("unknown variant `")
            .and_then(|r| r.split_once('`'))
            .and_then(|(v, _)| {
                [format!("\"{v}\""), format!("'{v}'")]
                    .iter()
                    .filter_map(|q| text.get(from..)?.find(q.as_str()).map(|k| from + k))
                    .min()
            });
        // an unknown key of such a table: the line that sets it
        let key = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
            .and_then(|(k, _)| {
                let mut at = from;
                text.get(from..)?.split_inclusive('\n').find_map(|line| {
                    let here = at;
                    at += line.len();
                    let t = line.trim_start();
                    let rest = t
                        .strip_prefix(k)
                        .or_else(|| t.strip_prefix(&format!("\"{k}\"")))?;
                    rest.trim_start()
                        .starts_with('=')
                        .then_some(here + (line.len() - t.len()))
                })
            });
        // any other mistake in a source is placed at the first source's
        // header: the header of the source that has it is found by reading
        // the sources one by one
        let entry = (named.is_none() && key.is_none())
            .then(|| failing_source(text))
            .flatten();
        (named.or(key).or(entry).or(start), plain_untagged(message))
    })?;
    let at = |path: &[&str]| span_of(text, path);
    if recipe.sources.is_empty() {
        return Err((
            at(&["sources"]),
            "at least one [[sources]] entry is needed".into(),
        ));
    }
    for (k, source) in recipe.sources.iter().enumerate() {
        let k = k.to_string();
        if let SourceSpec::Video {
            every,
            fps,
            max_per_range,
            outside,
            background_class,
            ..
        } = source
        {
            let key = if every == &Some(0) {
                Some("every")
            } else if fps.is_some_and(|f| !(f > 0.0 && f.is_finite())) {
                Some("fps")
            } else if max_per_range == &Some(0) {
                Some("max_per_range")
            } else {
                None
            };
            if let Some(key) = key {
                return Err((at(&["sources", &k, key]), format!("{key} must be above 0")));
            }
            let background = *outside == crate::video::ranges::Outside::Background;
            if background
                && background_class
                    .as_deref()
                    .is_none_or(|c| c.trim().is_empty())
            {
                return Err((
                    at(&["sources", &k, "outside"]),
                    "outside = \"background\" needs background_class = \"NAME\"".into(),
                ));
            }
        }
    }
    if span_of(text, &["boxes"]).is_some() && !recipe.sources.iter().any(SourceSpec::has_boxes) {
        return Err((
            at(&["boxes"]),
            "[boxes] applies to sources with boxes (voc, coco, yolo, labelme); this recipe's \
             sources give class labels"
                .into(),
        ));
    }
    let s = &recipe.split;
    for (name, v) in [
        ("train", s.train),
        ("validation", s.validation),
        ("test", s.test),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err((
                at(&["split", name]),
                format!("split.{name} = {} is outside 0..1", show_ratio(v)),
            ));
        }
    }
    if s.method != SplitMethod::Explicit && s.method != SplitMethod::Source {
        let sum = s.train + s.validation + s.test;
        if (sum - 1.0).abs() > 1e-9 {
            return Err((
                at(&["split"]),
                format!(
                    "split ratios add up to {} (train {} + validation {} + test {}), not 1",
                    show_ratio(sum),
                    show_ratio(s.train),
                    show_ratio(s.validation),
                    show_ratio(s.test)
                ),
            ));
        }
    }
    if s.method == SplitMethod::Explicit && s.assign.is_empty() {
        return Err((
            at(&["split", "method"]),
            "method = \"explicit\" needs [split.assign]".into(),
        ));
    }
    // a group listed twice would be quietly put in one of its splits
    let mut listed: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (split, groups) in &s.assign {
        if !is_safe_component(split) {
            return Err((
                at(&["split", "assign", split]),
                format!(
                    "split name {split:?} cannot be a folder name (empty, `.`, `..` or a slash)"
                ),
            ));
        }
        for g in groups {
            if let Some(first) = listed.insert(g, split) {
                let r#where = if first == split {
                    format!("twice in {split}")
                } else {
                    format!("in {first} and in {split}")
                };
                return Err((
                    at(&["split", "assign", split]),
                    format!("group {g:?} is listed {where}: a group belongs to one split"),
                ));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (k, v) in recipe.variants.iter().enumerate() {
        let k = k.to_string();
        if !is_safe_component(&v.name) {
            return Err((
                at(&["variants", &k, "name"]),
                format!(
                    "variant name {:?} cannot be a folder name (empty, `.`, `..` or a slash)",
                    v.name
                ),
            ));
        }
        if !seen.insert(&v.name) {
            return Err((
                at(&["variants", &k, "name"]),
                format!("variant name {:?} is used twice", v.name),
            ));
        }
        if let Some(f) = v.fraction {
            if !(f > 0.0 && f <= 1.0) {
                return Err((
                    at(&["variants", &k, "fraction"]),
                    format!("fraction {} is outside (0, 1]", show_ratio(f)),
                ));
            }
        }
        if v.fraction.is_some() && v.count.is_some() {
            return Err((
                at(&["variants", &k, "count"]),
                "a variant takes fraction or count, not both".into(),
            ));
        }
    }
    let t = &recipe.transform;
    if matches!(t.encoding.as_str(), "passthrough" | "pass-through") {
        let key = if t.resize.is_some() {
            Some("resize")
        } else if t.center_crop {
            Some("center_crop")
        } else if t.color == ColorSpec::Grayscale {
            Some("color")
        } else {
            None
        };
        if let Some(key) = key {
            return Err((
                at(&["transform", key]),
                format!(
                    "{key} needs the images decoded, but encoding = \"passthrough\" stores the files \
                     as they are: drop one of them"
                ),
            ));
        }
    }
    recipe.transform.image_spec().map_err(|m| {
        let key = m.split([' ', ':']).next().unwrap_or("");
        (at(&["transform", key]), m)
    })?;
    if let Some(shape) = &recipe.hyperparameters.image_shape {
        let detection = recipe.sources.iter().any(SourceSpec::has_boxes);
        let side = shape.trim().parse::<u32>().ok();
        if detection && side.is_none_or(|s| s < 300) {
            return Err((
                at(&["hyperparameters", "image_shape"]),
                format!(
                    "image_shape {shape:?}: SageMaker's object detection takes one number, the \
                     side of its square input, 300 or more (e.g. image_shape = 300 or 512)"
                ),
            ));
        }
        if !detection && parse_image_shape(shape).is_none() {
            return Err((
                at(&["hyperparameters", "image_shape"]),
                format!("image_shape {shape:?}: expected \"C,H,W\" (e.g. \"3,224,224\") with C 1, 3 or 4"),
            ));
        }
    }
    Ok(recipe)
}

/// `"3,224,224"` -> (3, 224, 224); channels 1, 3 or 4, sides positive.
pub fn parse_image_shape(s: &str) -> Option<(u32, u32, u32)> {
    let v: Vec<u32> = s
        .split(',')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    match v[..] {
        [c @ (1 | 3 | 4), h, w] if h > 0 && w > 0 => Some((c, h, w)),
        _ => None,
    }
}

/// The settings of a one-shot conversion (`imgprep convert`): one
/// class-folder tree, ratio splits, one transform, some outputs. It becomes
/// an ordinary recipe ([`OneShot::to_toml`]), so a one-shot run and a
/// recipe build are the same code and the recipe can be kept and edited.
#[derive(Debug, Clone)]
pub struct OneShot {
    pub name: String,
    /// Absolute path of the class-folder tree.
    pub root: PathBuf,
    pub exts: Vec<String>,
    pub seed: u64,
    pub on_error: OnError,
    /// (train, validation, test) ratios.
    pub split: (f64, f64, f64),
    /// `210`, `224x224` or `area=50176`.
    pub resize: Option<String>,
    pub center_crop: bool,
    /// `color`, `grayscale` or `unchanged`.
    pub color: String,
    /// `convert` or `skip`.
    pub color_policy: String,
    /// `jpg`, `png` or `passthrough`.
    pub encoding: String,
    pub quality: Option<u8>,
    /// Output formats: `recordio`, `sagemaker-image`, `folders`, `tfrecord`.
    pub outputs: Vec<String>,
    pub pack_label: bool,
    /// TFRecord: `tfds` or `raw`; `none`, `gzip` or `zlib`; shard size.
    pub tf_preset: String,
    pub tf_compression: String,
    pub shard_records: Option<usize>,
    pub shard_mib: Option<u64>,
    /// The folder is a TinyImageNet-like tree (`wnids.txt`, `train/`,
    /// `val/`, `test/`): a metadata source with the layout's own splits.
    pub tinyimagenet: bool,
    /// Build an unlabelled set on purpose.
    pub unlabelled: bool,
    /// The folder holds recordings: a video source instead of folders.
    pub video: Option<OneShotVideo>,
}

/// `convert` of a folder of recordings.
#[derive(Debug, Clone, Default)]
pub struct OneShotVideo {
    /// The chunk pattern (absolute), e.g. `/data/rec/{session}/*.mp4`.
    pub chunks: String,
    /// The range files, a path with `{session}` (or an ActivityNet JSON).
    pub labels: Option<String>,
    pub unit: Option<String>,
    pub frame_base: Option<u32>,
    pub time_reference: Option<String>,
}

/// A float as TOML writes it (`1.0`, `0.9`).
fn toml_float(v: f64) -> String {
    let s = show_ratio(v);
    if s.contains(['.', 'e', 'i', 'N']) {
        s
    } else {
        s + ".0"
    }
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl OneShot {
    /// The equivalent recipe (checked by [`parse`] like any other).
    pub fn to_toml(&self) -> std::result::Result<String, String> {
        use std::fmt::Write as _;
        let mut t = String::new();
        let on_error = match self.on_error {
            OnError::Fail => "fail",
            OnError::Skip => "skip",
        };
        let exts: Vec<String> = self.exts.iter().map(|e| quoted(e)).collect();
        let _ = write!(
            t,
            "# Written by `imgprep convert`; rebuild with `imgprep build THIS_FILE --out OUT`.\n\
             name = {}\nseed = {}\non_error = \"{on_error}\"\n\n",
            quoted(&self.name),
            self.seed,
        );
        let root = self.root.to_string_lossy();
        if let Some(v) = &self.video {
            let _ = write!(
                t,
                "[[sources]]\ntype = \"video\"\nchunks = {}\n",
                quoted(&v.chunks)
            );
            if let Some(l) = &v.labels {
                let _ = writeln!(t, "labels = {}", quoted(l));
            }
            if let Some(u) = &v.unit {
                let _ = writeln!(t, "unit = {}", quoted(u));
            }
            if let Some(b) = v.frame_base {
                let _ = writeln!(t, "frame_base = {b}");
            }
            if let Some(r) = &v.time_reference {
                let _ = writeln!(t, "time_reference = {}", quoted(r));
            }
            // whole sessions on one side: frames of one recording are near copies
            let (tr, va, te) = self.split;
            let _ = write!(
                t,
                "\n[split]\nmethod = \"group\"\ntrain = {}\nvalidation = {}\ntest = {}\n\n",
                toml_float(tr),
                toml_float(va),
                toml_float(te)
            );
        } else if self.tinyimagenet {
            let at = |f: &str| quoted(&format!("{}/{f}", root.trim_end_matches('/')));
            // the parts the tree has (a local tree may lack words.txt, val/ or test/)
            let has = |f: &str| crate::files::is_remote(&self.root) || self.root.join(f).exists();
            let names = if has("words.txt") {
                format!("names = {}\n", at("words.txt"))
            } else {
                String::new()
            };
            let mut splits = vec!["  { split = \"train\", folders = \"train/{class}/images\" },\n"];
            if has("val/val_annotations.txt") {
                splits.push(
                    "  { split = \"validation\", annotations = \"val/val_annotations.txt\", images = \"val/images\" },\n",
                );
            }
            if has("test/images") {
                splits.push("  { split = \"test\", images = \"test/images\" },\n");
            }
            let _ = write!(
                t,
                "[[sources]]\ntype = \"metadata\"\nroot = {}\nclass_ids = {}\n{names}splits = [\n{}]\n\n\
                 [split]\nmethod = \"source\"\n\n",
                quoted(&root),
                at("wnids.txt"),
                splits.concat(),
            );
        } else {
            let _ = write!(
                t,
                "[[sources]]\ntype = \"folders\"\nroot = {}\nexts = [{}]\n\n",
                quoted(&root),
                exts.join(", ")
            );
            let (tr, va, te) = self.split;
            let _ = write!(
                t,
                "[split]\nmethod = \"stratified\"\ntrain = {}\nvalidation = {}\ntest = {}\n\n",
                toml_float(tr),
                toml_float(va),
                toml_float(te)
            );
        }
        if self.unlabelled {
            t.push_str("[labels]\nunlabelled = true\n\n");
        }
        t.push_str("[transform]\n");
        if let Some(r) = &self.resize {
            let r = r.trim();
            let value = if let Some(a) = r.strip_prefix("area=") {
                let a: u64 = a
                    .trim()
                    .parse()
                    .map_err(|_| format!("--resize {r:?}: area=N needs a number"))?;
                format!("{{ area = {a} }}")
            } else if let Ok(n) = r.parse::<u32>() {
                n.to_string()
            } else {
                quoted(r)
            };
            let _ = writeln!(t, "resize = {value}");
        }
        let _ = write!(
            t,
            "center_crop = {}\ncolor = {}\ncolor_policy = {}\nencoding = {}\n",
            self.center_crop,
            quoted(&self.color),
            quoted(&self.color_policy),
            quoted(&self.encoding)
        );
        if let Some(q) = self.quality {
            let _ = writeln!(t, "quality = {q}");
        }
        for o in &self.outputs {
            let _ = write!(t, "\n[[outputs]]\nformat = {}\n", quoted(o));
            match o.as_str() {
                "recordio" if self.pack_label => t.push_str("pack_label = true\n"),
                "tfrecord" => {
                    let _ = write!(
                        t,
                        "preset = {}\ncompression = {}\n",
                        quoted(&self.tf_preset),
                        quoted(&self.tf_compression)
                    );
                    if let Some(n) = self.shard_records {
                        let _ = writeln!(t, "shard_records = {n}");
                    }
                    if let Some(m) = self.shard_mib {
                        let _ = writeln!(t, "shard_mib = {m}");
                    }
                }
                _ => {}
            }
        }
        parse(&t).map_err(|(_, m)| m)?;
        Ok(t)
    }
}

/// A commented starter recipe for a class-folder tree, or (`tinyimagenet`)
/// for a TinyImageNet-like tree with its own splits.
pub fn starter(
    name: &str,
    root: &str,
    images: usize,
    classes: usize,
    tinyimagenet: bool,
) -> String {
    if tinyimagenet {
        return format!(
            r#"# imgprep recipe for {root}, a TinyImageNet-like tree: class ids in wnids.txt (their
# order is the class order), human names in words.txt, train/{{id}}/images/,
# val/images + val/val_annotations.txt, and an unlabelled test/images.
# Build it with: imgprep build THIS_FILE --out out/
# Paths are relative to this file.

name = "{name}"
seed = 1
on_error = "skip"

[[sources]]
type = "metadata"
root = "{root}"
class_ids = "{root}/wnids.txt"
names = "{root}/words.txt"
splits = [
  {{ split = "train", folders = "train/{{class}}/images" }},
  {{ split = "validation", annotations = "val/val_annotations.txt", images = "val/images" }},
  {{ split = "test", images = "test/images" }},
]

# the layout's own splits
[split]
method = "source"

[transform]
encoding = "passthrough"          # keep the files as they are (64x64 JPEGs)

[[outputs]]
format = "tfrecord"
preset = "raw"                    # decoded pixels; or "tfds" for encoded images
"#
        );
    }
    format!(
        r#"# imgprep recipe for {root} ({images} images in {classes} classes when written).
# Build it with: imgprep build THIS_FILE --out out/
# Paths are relative to this file.

name = "{name}"
seed = 1
# fail: a missing or broken image stops the build; skip: it is left out and listed in the manifest
on_error = "skip"

# Where the images come from. More [[sources]] can be added; types:
#   folders  (label = sub-folder), csv (index with path/label/group columns),
#   lst (existing im2rec lists), metadata (TinyImageNet-like layout).
[[sources]]
type = "folders"
root = "{root}"
exts = [".jpg", ".jpeg", ".png"]

# [labels]
# names = ["cat", "dog"]          # fixed class order (default: sorted folder names)

# Splits: method = "auto" | "stratified" | "group" | "explicit" | "source"
[split]
method = "stratified"
train = 0.8
validation = 0.2
test = 0.0

# Variants: the whole dataset, and a 10 % per-class sample for quick experiments.
[[variants]]
name = "complete"

[[variants]]
name = "sample"
fraction = 0.1

[transform]
# resize = 210                    # shorter edge (im2rec --resize)
# resize = "224x224"              # exact size
resize = {{ area = 50176 }}        # about 224*224 pixels, aspect ratio kept
encoding = "jpg"                  # jpg | png | passthrough
quality = 95

[[outputs]]
format = "recordio"               # .rec/.idx/.lst per split (pack_label = true for multi-label)

[[outputs]]
format = "sagemaker-image"        # train/, validation/, train_lst/, validation_lst/

# [[outputs]]
# format = "folders"              # class-folder tree per split
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_of_offsets_are_python_subscripts() {
        let text = "name = \"x\"\n[[sources]]\ntype = \"folders\"\nroot = \"a\"\n\
                    [[sources]]\ntype = \"lst\"\nfile = \"i.lst\"\nroot = \"a\"\n[transform]\nquality = \"high\"\n";
        let at = |needle: &str| key_path_at(text, text.find(needle).unwrap());
        assert_eq!(at("\"high\"").as_deref(), Some("['transform']['quality']"));
        assert_eq!(at("\"lst\"").as_deref(), Some("['sources'][1]['type']"));
        assert_eq!(at("\"x\"").as_deref(), Some("['name']"));
        let (offset, _) = parse(text).unwrap_err();
        assert_eq!(
            key_path_at(text, offset.unwrap()).as_deref(),
            Some("['transform']['quality']")
        );
    }

    const DRIVERS: &str = r#"
name = "drivers"
seed = 5590

[[sources]]
type = "csv"
file = "driver_imgs_list.csv"
root = "imgs/train"
path = "{classname}/{img}"
label = "classname"
group = "subject"

[split]
method = "group"
train = 0.7
validation = 0.3

[[variants]]
name = "complete"

[[variants]]
name = "sample"
fraction = 0.1

[transform]
resize = { area = 50176 }

[[outputs]]
format = "recordio"

[[outputs]]
format = "sagemaker-image"
"#;

    #[test]
    fn parses_a_full_recipe() {
        let r = parse(DRIVERS).unwrap();
        assert_eq!(r.name, "drivers");
        assert_eq!(r.variants.len(), 2);
        assert_eq!(r.split.method, SplitMethod::Group);
        assert_eq!(r.outputs[1], OutputSpec::SagemakerImage);
        assert_eq!(
            r.transform.image_spec().unwrap().unwrap().resize,
            Resize::Area(50176)
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_have_positions() {
        let bad = DRIVERS.replace("seed = 5590", "seed = 5590\ncolour = 1");
        let (off, msg) = parse(&bad).unwrap_err();
        assert_eq!(line_col(&bad, off.unwrap()), (4, 1));
        assert!(msg.contains("unknown field `colour`"), "{msg}");
        let bad = DRIVERS.replace("train = 0.7", "train = 0.9");
        let (_, msg) = parse(&bad).unwrap_err();
        assert!(msg.contains("add up"), "{msg}");
        let bad = DRIVERS.replace("area = 50176", "area = \"big\"");
        assert!(parse(&bad).is_err());
        let bad = DRIVERS.replace("type = \"csv\"", "type = \"xls\"");
        let (off, msg) = parse(&bad).unwrap_err();
        assert!(off.is_some() && msg.contains("xls"), "{msg}");
    }
}
