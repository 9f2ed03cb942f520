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

use super::write::Context;
use crate::error::Result;
use crate::image::ImageFormat;
use crate::recipe::OutputSpec;
use std::collections::BTreeMap;

/// What one format wrote for a split or variant.
#[derive(Default)]
pub(super) struct Sink {
    /// Files written, in order: path in OUT, size and SHA-256.
    pub written: Vec<(String, crate::checksum::FileSums)>,
    /// Record count of each record file whose count the manifest keeps (TFRecord shards).
    pub records: BTreeMap<String, u64>,
    /// Where each item went: a file, or `file#record`.
    pub places: Vec<(usize, Box<str>)>,
    /// Worker threads the format may use for this split (the build's
    /// threads, shared among the splits written at once).
    pub threads: usize,
}

impl Sink {
    /// Adds what `other` (a later split) wrote.
    pub fn append(&mut self, mut other: Sink) {
        self.written.append(&mut other.written);
        self.records.append(&mut other.records);
        self.places.append(&mut other.places);
    }

    /// Notes a file written at `rel`.
    pub fn file(&mut self, mut rel: String, sums: crate::checksum::FileSums) {
        // held to the end of the build: no slack (`format!` leaves some)
        rel.shrink_to_fit();
        self.written.push((rel, sums));
    }

    /// Writes item `i`'s image at `rel` (a hard link when it can be) and
    /// notes it as the item's place in this output.
    pub fn image(&mut self, ctx: &Context, i: usize, rel: &str) -> Result<()> {
        let sums = ctx.put_image(i, rel)?;
        self.places.push((i, rel.into()));
        self.written.push((rel.to_string(), sums));
        Ok(())
    }

    /// Writes a side file (annotations, lists, label maps) at `rel`.
    pub fn put(&mut self, ctx: &Context, rel: String, bytes: &[u8]) -> Result<()> {
        let sums = ctx.put_file(&rel, bytes)?;
        self.file(rel, sums);
        Ok(())
    }

    /// Writes a side file at `rel` as `write` produces it (a large file is
    /// never held whole in memory).
    pub fn put_streamed(
        &mut self,
        ctx: &Context,
        rel: String,
        write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let sums = ctx.put_file_streamed(&rel, write)?;
        self.file(rel, sums);
        Ok(())
    }
}

/// One output format.
pub(super) trait Format: Sync {
    /// The format's name: its column in `items.csv` and (unless
    /// [`Format::folder`] says otherwise) its folder under the variant.
    fn name(&self) -> String;

    /// Its folder under the variant: everything it writes is below it.
    fn folder(&self) -> String {
        self.name()
    }

    /// Its readers cannot take an image without boxes (MXNet's detection
    /// iterators, SageMaker's algorithm): such images are left out of this
    /// output and counted.
    fn needs_boxes(&self) -> bool {
        false
    }

    /// The id of the first class in this format (None: it writes names only).
    fn class_id_base(&self) -> Option<u32> {
        Some(0)
    }

    /// For formats with files of their own per item: the name that item's
    /// files take in its split's folder (or, with [`Format::one_folder`], in
    /// the variant's), from its output path and first class. Two items with
    /// one name would be one file: a build refuses that before writing.
    fn item_name(&self, _out_rel: &str, _class: &str) -> Option<String> {
        None
    }

    /// For formats with files of their own per item: the paths, under
    /// `{variant}/{folder}`, of the files it writes for an item of `split`
    /// with this output path and first class, the image first. The writer
    /// takes its paths from here, so a build can check every one of them
    /// before anything is written.
    fn item_files(&self, _split: &str, _out_rel: &str, _class: &str) -> Vec<String> {
        Vec::new()
    }

    /// Its objects carry a crowd flag (COCO's `iscrowd`), so crowd regions
    /// can be told from single objects.
    fn flags_crowd(&self) -> bool {
        false
    }

    /// The stored image formats its readers decode, and who they are, when
    /// that is not every format imgprep reads: with `encoding =
    /// "passthrough"` a source in another format is skipped (by `on_error`)
    /// with that reason, since stored as it is it would pass `verify` and
    /// fail in training. None: any (the files are read by whatever the user
    /// picks, or decoded by imgprep).
    fn stored_formats(&self) -> Option<(&'static [ImageFormat], &'static str)> {
        None
    }

    /// Its records hold each source's decoded pixels, not a stored image
    /// (TFRecord's `raw` preset). With `encoding = "passthrough"` the
    /// prepare step then decodes every source in full, so an image whose
    /// header is fine but whose data is not is skipped there, by `on_error`,
    /// instead of failing the write.
    fn decodes_sources(&self) -> bool {
        false
    }

    /// The items of all splits share one folder (VOC's JPEGImages).
    fn one_folder(&self) -> bool {
        false
    }

    /// How many files it writes per item (images, annotation files): the
    /// build sizes its list of written files once from it, rather than
    /// letting it double (at 100,000 files a quarter of that list was slack).
    /// 0: the format writes each split into a few large record files, whose
    /// SHA-256 takes a core each, so its splits are written side by side.
    /// Formats of a file per item write one split after the other, on the
    /// build's thread: side by side, the threads' allocator arenas took the
    /// peak RSS of a 50,000-image `sagemaker-detection` build from 97 to
    /// 110 MB, for no gain this disk's noise lets one show.
    fn files_per_item(&self) -> usize;

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

/// What MXNet's image decoder takes.
pub(super) const MXNET_READS: (&[ImageFormat], &str) = (
    crate::image::MXNET_DECODES,
    "MXNet's image decoder (it reads JPEG, PNG, BMP and TIFF)",
);

/// What SageMaker's built-in image algorithms take.
pub(super) const SAGEMAKER_READS: (&[ImageFormat], &str) = (
    &[ImageFormat::Jpeg, ImageFormat::Png],
    "SageMaker's built-in algorithms (they read JPEG and PNG)",
);

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

/// Re-reads the detection outputs a manifest lists and checks every box
/// against what its reader requires: inside the image, positive size,
/// class id within the map (each format with its id base), and the object
/// counts per split against the manifest's.
pub(super) fn verify_detection(
    at: &dyn Fn(&str) -> std::path::PathBuf,
    m: &super::Manifest,
    d: &super::manifest::DetectionManifest,
    problems: &mut Vec<String>,
) {
    let n = m.num_classes as f64;
    for (v, splits) in &d.objects {
        for (split, per_class) in splits {
            let want: u64 = per_class.values().sum();
            let read = |rel: &str| -> Option<Vec<u8>> {
                m.files
                    .contains_key(rel)
                    .then(|| crate::files::read(&at(rel)).ok())?
            };
            // COCO keeps every image: its count is the manifest's
            let rel = format!("{v}/coco/annotations/{split}.json");
            if let Some(bytes) = read(&rel) {
                match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(doc) => {
                        let sizes: BTreeMap<u64, (f64, f64)> = doc["images"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|i| {
                                Some((
                                    i["id"].as_u64()?,
                                    (i["width"].as_f64()?, i["height"].as_f64()?),
                                ))
                            })
                            .collect();
                        let anns = doc["annotations"].as_array().cloned().unwrap_or_default();
                        if anns.len() as u64 != want {
                            problems.push(format!(
                                "{rel}: {} boxes, the manifest says {want}",
                                anns.len()
                            ));
                        }
                        for a in &anns {
                            let b: Vec<f64> = a["bbox"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|x| x.as_f64())
                                .collect();
                            let size = a["image_id"].as_u64().and_then(|i| sizes.get(&i));
                            let cat = a["category_id"].as_f64().unwrap_or(0.0);
                            let ok = matches!((b.as_slice(), size), ([x, y, w, h], Some(&(iw, ih)))
                                if *x >= 0.0 && *y >= 0.0 && *w > 0.0 && *h > 0.0
                                    && x + w <= iw + 1e-6 && y + h <= ih + 1e-6)
                                && cat >= 1.0
                                && cat <= n;
                            if !ok {
                                problems.push(format!("{rel}: annotation {a} is not a box inside its image with a category 1..{n}"));
                            }
                        }
                    }
                    Err(e) => problems.push(format!("{rel}: {e}")),
                }
            }
            // RecordIO detection labels: header 2, 5 per object, 0..1, ids 0..N-1
            let rec = format!("{v}/recordio/{split}.rec");
            if m.files.contains_key(&rec) {
                match recordio_boxes(&at(&rec), n) {
                    Ok(bad) => problems.extend(bad.into_iter().map(|b| format!("{rec}: {b}"))),
                    Err(e) => problems.push(format!("{rec}: {e}")),
                }
            }
            // SageMaker JSON: one per image, boxes inside image_size
            let prefix = format!("{v}/sagemaker-detection/{split}_annotation/");
            for (f, _) in m.files.starting_at(&prefix) {
                if !f.starts_with(&prefix) {
                    break;
                }
                let Some(bytes) = read(f) else { continue };
                let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                    problems.push(format!("{f}: not JSON"));
                    continue;
                };
                let w = doc["image_size"][0]["width"].as_f64().unwrap_or(0.0);
                let h = doc["image_size"][0]["height"].as_f64().unwrap_or(0.0);
                let anns = doc["annotations"].as_array().cloned().unwrap_or_default();
                if anns.is_empty() {
                    problems.push(format!("{f}: no box (SageMaker cannot train on it)"));
                }
                for a in anns {
                    let g = |k: &str| a[k].as_f64().unwrap_or(f64::NAN);
                    let (l, t, bw, bh, c) =
                        (g("left"), g("top"), g("width"), g("height"), g("class_id"));
                    if !(l >= 0.0
                        && t >= 0.0
                        && bw > 0.0
                        && bh > 0.0
                        && l + bw <= w + 1e-6
                        && t + bh <= h + 1e-6
                        && c >= 0.0
                        && c < n)
                    {
                        problems.push(format!(
                            "{f}: annotation {a} is not a box inside {w}x{h} with a class 0..{}",
                            n - 1.0
                        ));
                    }
                }
            }
        }
    }
}

/// Problems of the detection labels in a RecordIO file.
fn recordio_boxes(path: &std::path::Path, n: f64) -> std::io::Result<Vec<String>> {
    let (file, _) = crate::files::open_sized(path)?;
    let mut r = ::recordio::RecordReader::new(std::io::BufReader::new(file));
    let mut bad = Vec::new();
    let mut buf = Vec::new();
    let mut k = 0u64;
    while let Some(off) = r.read_record(&mut buf).map_err(std::io::Error::other)? {
        let labels = match ::recordio::ImageRecord::parse(&buf) {
            Ok((h, _)) => h.labels.as_slice().to_vec(),
            Err(e) => {
                bad.push(format!("record {k} at byte {off}: {e}"));
                k += 1;
                continue;
            }
        };
        let ok = labels.len() >= 7
            && labels[0] == 2.0
            && labels[1] == 5.0
            && (labels.len() - 2) % 5 == 0
            && labels[2..].chunks(5).all(|o| {
                (o[0] as f64) >= 0.0
                    && (o[0] as f64) < n
                    && o[0].fract() == 0.0
                    && o[1] >= 0.0
                    && o[2] >= 0.0
                    && o[3] <= 1.0
                    && o[4] <= 1.0
                    && o[1] < o[3]
                    && o[2] < o[4]
            });
        if !ok {
            bad.push(format!(
                "record {k} at byte {off}: detection label {labels:?} is not [2, 5, class xmin ymin xmax ymax ...] with boxes inside 0..1 and classes 0..{}",
                n - 1.0
            ));
        }
        k += 1;
    }
    Ok(bad)
}
