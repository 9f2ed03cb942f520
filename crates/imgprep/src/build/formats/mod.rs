//! Output formats: one module each behind one interface ([`Format`]). The
//! build loop knows none of them by name: it asks [`for_output`] for the
//! writer of each `[[outputs]]` entry and hands it each variant's splits.
//! A format owns its layout under `{variant}/{name}/`, its reader-facing
//! rules (which items its readers cannot take, class-id base, coordinate
//! convention) and its side files (list files, label maps, `data.yaml`).

mod augmented;
mod coco;
mod folders;
pub(super) mod recordio;
mod sagemaker;
pub(super) mod tfrecord;
mod voc;
mod yolo;

use super::write::{Context, Written};
use crate::error::Result;
use crate::recipe::OutputSpec;
use std::collections::BTreeMap;

/// What one format wrote for a split or variant.
#[derive(Default)]
pub(super) struct Sink {
    /// Files written: path in OUT, size and SHA-256.
    pub written: Written,
    /// Record count of each record file whose count the manifest keeps (TFRecord shards).
    pub records: BTreeMap<String, u64>,
    /// Where each item went: a file, or `file#record`.
    pub places: Vec<(usize, String)>,
}

impl Sink {
    pub fn file(&mut self, rel: String, sums: crate::checksum::FileSums) {
        self.written.push((rel, sums));
    }
}

/// One output format.
pub(super) trait Format {
    /// The format's name: its folder under the variant and its column in `items.csv`.
    fn name(&self) -> String;

    /// Why this format's readers cannot take item `i` (e.g. an image
    /// without boxes in MXNet's detection records), if they cannot: such
    /// items are left out of this output and counted.
    fn refuses(&self, _ctx: &Context, _i: usize) -> Option<&'static str> {
        None
    }

    /// Writes one split of a variant under `{variant}/{name}/`.
    fn write_split(
        &self,
        ctx: &Context,
        variant: &str,
        split: &str,
        items: &[usize],
        sink: &mut Sink,
    ) -> Result<()>;

    /// After every split of a variant (split name -> items written): files
    /// that cover all splits (label maps, `data.yaml`).
    fn finish_variant(
        &self,
        _ctx: &Context,
        _variant: &str,
        _splits: &BTreeMap<String, Vec<usize>>,
        _sink: &mut Sink,
    ) -> Result<()> {
        Ok(())
    }
}

/// The writer of one `[[outputs]]` entry.
pub(super) fn for_output(o: &OutputSpec, detection: bool) -> Box<dyn Format + '_> {
    match o {
        OutputSpec::Recordio { pack_label } if detection => {
            let _ = pack_label;
            Box::new(recordio::Detection)
        }
        OutputSpec::Recordio { pack_label } => Box::new(recordio::Classes {
            pack_label: *pack_label,
        }),
        OutputSpec::SagemakerImage => Box::new(sagemaker::ImageClasses),
        OutputSpec::SagemakerDetection => Box::new(sagemaker::Detection),
        OutputSpec::Folders => Box::new(folders::Folders),
        OutputSpec::Tfrecord { .. } => Box::new(tfrecord::Tfrecord::new(o)),
        OutputSpec::AugmentedManifest { attribute, push_to } => {
            Box::new(augmented::AugmentedManifest {
                attribute: attribute.clone(),
                push_to: push_to.clone(),
            })
        }
        OutputSpec::Coco => Box::new(coco::Coco),
        OutputSpec::Yolo => Box::new(yolo::Yolo),
        OutputSpec::Voc => Box::new(voc::Voc),
    }
}

/// Shared by the writers of image-file layouts: `rel` with its extension
/// replaced (`a/b.jpg` -> `a/b.json`).
pub(super) fn with_extension(rel: &str, ext: &str) -> String {
    match rel.rfind('.') {
        Some(dot) if !rel[dot..].contains('/') => format!("{}.{ext}", &rel[..dot]),
        _ => format!("{rel}.{ext}"),
    }
}

/// `rel` without its extension (`a/b.jpg` -> `a/b`).
pub(super) fn without_extension(rel: &str) -> &str {
    match rel.rfind('.') {
        Some(dot) if !rel[dot..].contains('/') => &rel[..dot],
        _ => rel,
    }
}

/// `rel` without its folders.
pub(super) fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// Why detection readers of SageMaker and MXNet leave an image out.
pub(super) const NO_BOXES: &str =
    "no box (SageMaker's and MXNet's detection readers need at least one)";
