//! `convert`: a folder in, a dataset out, no recipe to write. The folder's
//! layout (class folders, a TinyImageNet-like tree, recordings) is read, a
//! recipe made from it and the settings, and that recipe built; the recipe is
//! kept in the output as [`RECIPE_FILE`] so the build can be repeated.

use crate::build::publish::{build_to, Published};
use crate::build::BuildOptions;
use crate::error::{Error, Result};
use crate::recipe::{self, OnError, OneShot, OneShotVideo};
use crate::report::Reporter;
use std::path::{Path, PathBuf};

/// The recipe file `convert` keeps in its output folder.
pub const RECIPE_FILE: &str = "imgprep-convert.toml";

/// What `convert` is asked for (the binary's flags, Python's keywords).
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// The folder (or `s3://` prefix) to convert.
    pub src: PathBuf,
    /// Output formats: `recordio`, `tfrecord`, `sagemaker-image`, `folders`, ...
    pub to: Vec<String>,
    /// (train, validation, test) ratios.
    pub split: (f64, f64, f64),
    pub seed: u64,
    pub resize: Option<String>,
    pub center_crop: bool,
    pub color: String,
    pub color_policy: String,
    pub encoding: String,
    pub quality: Option<u8>,
    pub exts: Vec<String>,
    pub preset: String,
    pub compression: String,
    pub shard_records: Option<usize>,
    pub shard_mib: Option<u64>,
    pub pack_label: bool,
    pub fail_on_error: bool,
    pub unlabelled: bool,
    /// Recordings: the ranges file pattern (`labels/{session}.csv`), relative
    /// to the current folder unless absolute.
    pub labels: Option<String>,
    pub unit: Option<String>,
    pub frame_base: Option<u32>,
    pub time_reference: Option<String>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            src: PathBuf::new(),
            to: vec!["recordio".into()],
            split: (1.0, 0.0, 0.0),
            seed: 1,
            resize: None,
            center_crop: false,
            color: "color".into(),
            color_policy: "convert".into(),
            encoding: "jpg".into(),
            quality: None,
            exts: [".jpg", ".jpeg", ".png"].map(String::from).to_vec(),
            preset: "tfds".into(),
            compression: "none".into(),
            shard_records: None,
            shard_mib: None,
            pack_label: false,
            fail_on_error: false,
            unlabelled: false,
            labels: None,
            unit: None,
            frame_base: None,
            time_reference: None,
        }
    }
}

/// The recipe `convert` makes, and notes about the layout found.
#[derive(Debug, Clone)]
pub struct ConvertRecipe {
    pub text: String,
    pub notes: Vec<String>,
}

/// Reads the folder's layout and writes the recipe for it.
pub fn make_recipe(o: &ConvertOptions) -> Result<ConvertRecipe> {
    let root = if crate::files::is_remote(&o.src) {
        o.src.clone()
    } else if o.src.is_dir() {
        std::fs::canonicalize(&o.src).map_err(Error::io(&o.src))?
    } else {
        return Err(Error::Usage(format!("{}: not a folder", o.src.display())));
    };
    let name = crate::files::file_name(&root).unwrap_or_else(|| "dataset".into());
    // a folder of recordings (and no images): a video source
    let video_settings = o.labels.is_some()
        || o.unit.is_some()
        || o.frame_base.is_some()
        || o.time_reference.is_some();
    let chunks = if crate::files::is_remote(&root) {
        None
    } else {
        crate::build::video::convert_pattern(&root)?
    };
    let video = match chunks {
        Some(chunks) => {
            let images = crate::build::sources::survey(&root, &o.exts)?.images;
            if images > 0 && !video_settings {
                None
            } else {
                if o.labels.is_none() && !o.unlabelled {
                    return Err(Error::Usage(format!(
                        "{}: recordings need their ranges: --labels 'labels/{{session}}.csv' (label,start,end \
                         rows) with --unit seconds|milliseconds|frames, or --unlabelled for every frame \
                         without a label",
                        o.src.display()
                    )));
                }
                Some(OneShotVideo {
                    chunks,
                    labels: o.labels.as_ref().map(|l| absolute(l)),
                    unit: o.unit.clone(),
                    frame_base: o.frame_base,
                    time_reference: o.time_reference.clone(),
                })
            }
        }
        None if video_settings => {
            return Err(Error::Usage(format!(
                "{}: --labels, --unit, --frame-base and --time-reference are for a folder of recordings \
                 ({}); none found",
                o.src.display(),
                crate::build::video::VIDEO_EXTS.join(", ")
            )))
        }
        None => None,
    };
    let (tinyimagenet, notes) = if video.is_some() {
        (false, Vec::new())
    } else {
        crate::build::sources::convert_layout(
            &root,
            &o.exts,
            o.unlabelled,
            "pass --unlabelled to build an unlabelled set",
        )?
    };
    // TFRecord's settings with no TFRecord output would be dropped unsaid
    if !o.to.iter().any(|t| t == "tfrecord") {
        let set: Vec<&str> = [
            ("--preset", o.preset != "tfds"),
            ("--compression", o.compression != "none"),
            ("--shard-records", o.shard_records.is_some()),
            ("--shard-mib", o.shard_mib.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect();
        if !set.is_empty() {
            return Err(Error::Usage(format!(
                "{} {} for TFRecord output: add --to tfrecord, or drop {}",
                set.join(", "),
                if set.len() == 1 { "is" } else { "are" },
                if set.len() == 1 { "it" } else { "them" }
            )));
        }
    }
    let (train, validation, test) = o.split;
    if tinyimagenet && (validation > 0.0 || test > 0.0 || train != 1.0) {
        return Err(Error::Usage(format!(
            "{}: a TinyImageNet-like tree has its own train/val/test splits; drop --train/--validation/--test, \
             or convert its train/ folder alone to split that by ratios",
            o.src.display()
        )));
    }
    let one = OneShot {
        tinyimagenet,
        unlabelled: o.unlabelled,
        name,
        root,
        exts: o.exts.clone(),
        seed: o.seed,
        on_error: if o.fail_on_error {
            OnError::Fail
        } else {
            OnError::Skip
        },
        split: o.split,
        resize: o.resize.clone(),
        center_crop: o.center_crop,
        color: o.color.clone(),
        color_policy: o.color_policy.clone(),
        encoding: o.encoding.clone(),
        quality: o.quality,
        outputs: o.to.clone(),
        pack_label: o.pack_label,
        tf_preset: o.preset.clone(),
        tf_compression: o.compression.clone(),
        shard_records: o.shard_records,
        shard_mib: o.shard_mib,
        video,
    };
    let text = one.to_toml().map_err(Error::Usage)?;
    Ok(ConvertRecipe { text, notes })
}

/// Builds the recipe [`make_recipe`] made into `opts.out` (local or object
/// storage), with the recipe kept in it (`opts.extra_files` is replaced).
pub fn convert(
    made: &ConvertRecipe,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
    push_reporter: &dyn Reporter,
) -> Result<Published> {
    let target = crate::build::publish::Target::for_out(&opts.out)?;
    // the recipe is kept in OUT by the build itself (under its lock, listed
    // in the manifest, sent along by a push)
    let path = target.local.join(RECIPE_FILE);
    let recipe = recipe::from_text(&made.text, &path)?;
    let opts = BuildOptions {
        extra_files: vec![(RECIPE_FILE.to_string(), made.text.clone().into_bytes())],
        ..opts.clone()
    };
    // the recipe is in OUT only once built: an error names it as what it is
    let named = path.display().to_string();
    let rename = |m: String| m.replace(&named, "the recipe convert made");
    build_to(&recipe, &opts, reporter, push_reporter).map_err(|e| match e {
        Error::Usage(m) => Error::Usage(rename(m)),
        Error::Problem(m) => Error::Problem(rename(m)),
        e => e,
    })
}

/// Relative to where the program runs, as every path it takes.
fn absolute(l: &str) -> String {
    let p = Path::new(l);
    if p.is_absolute() {
        l.to_string()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p).to_string_lossy().into_owned())
            .unwrap_or_else(|_| l.to_string())
    }
}
