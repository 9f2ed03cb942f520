//! Write: per variant, split and format, the outputs; then the manifest.

use super::cache::Cache;
use super::catalog::{Catalog, Skip};
use super::manifest::{
    ImageSizes, Manifest, SplitCounts, VariantManifest, MANIFEST, MANIFEST_VERSION,
};
use super::plan::{Plan, TRAIN};
use super::sources::Item;
use super::Prepared;
use crate::checksum::{file_sums, FileSums};
use crate::error::{Error, Result};
use crate::image::{ColorMode, Encoding, ImageSpec, SourceColor};
use crate::output::{write_atomic, AtomicFile};
use crate::recipe::{LoadedRecipe, OutputSpec};
use crate::report::Reporter;
use recordio::{format_lst_line, write_idx_line, ImageRecord, Labels, LstEntry, RecordWriter};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

pub(super) struct Context<'a> {
    /// The output folder's guard: every file is noted in its marker first.
    pub guard: &'a super::outdir::OutGuard,
    pub recipe: &'a LoadedRecipe,
    pub catalog: &'a Catalog,
    pub plan: &'a Plan,
    pub spec: Option<&'a ImageSpec>,
    pub cache: &'a Cache,
    pub transform_key: &'a str,
    pub prints: HashMap<usize, (u64, i128)>,
    pub prepared: &'a BTreeMap<usize, Prepared>,
    pub out: &'a Path,
    pub threads: usize,
}

/// `out/rel` for a file imgprep writes or removes, once `rel` is proven to
/// stay under `out`: relative, no `..`, `.` or empty parts, and no folder on
/// the way that is a symbolic link (which would lead anywhere).
pub(super) fn under(out: &Path, rel: &str) -> Result<std::path::PathBuf> {
    under_checked(out, rel, None)
}

/// [`under`], with the folders already found to be real (not links) kept
/// in `checked`, so a build with many files per folder looks at each folder
/// once, not once per file.
fn under_checked(
    out: &Path,
    rel: &str,
    checked: Option<&std::sync::Mutex<std::collections::HashSet<String>>>,
) -> Result<std::path::PathBuf> {
    let refuse = |why: &str| {
        Error::Usage(format!(
            "refusing to write or remove {rel:?} in {}: {why}",
            out.display()
        ))
    };
    match super::catalog::normalize_rel(rel) {
        Some(r) if r == rel => {}
        _ => return Err(refuse("it is not a plain path inside the output folder")),
    }
    let mut p = out.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for (k, part) in parts[..parts.len() - 1].iter().enumerate() {
        p.push(part);
        let dir = parts[..=k].join("/");
        if checked.is_some_and(|c| c.lock().unwrap().contains(&dir)) {
            continue;
        }
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse(&format!(
                    "{} is a symbolic link, and imgprep does not write through links",
                    p.display()
                )))
            }
            Ok(_) => {
                if let Some(c) = checked {
                    c.lock().unwrap().insert(dir);
                }
            }
            Err(_) => break,
        }
    }
    Ok(out.join(rel))
}

impl Context<'_> {
    /// [`under`] the output folder, noted in the marker before it is written.
    pub(super) fn path(&self, rel: &str) -> Result<std::path::PathBuf> {
        let p = under_checked(self.out, rel, Some(&self.guard.checked_dirs))?;
        self.guard.record(rel)?;
        Ok(p)
    }

    fn ok(&self, i: usize) -> bool {
        matches!(self.prepared.get(&i), Some(Prepared::Ok(..)))
    }

    /// The SHA-256 of item `i`'s source, from the prepare stage.
    pub(super) fn source_sha(&self, i: usize) -> Option<&super::cache::SourceSha> {
        match self.prepared.get(&i) {
            Some(Prepared::Ok(_, sha)) => Some(sha),
            _ => None,
        }
    }

    /// The source file's own bytes (for outputs of decoded pixels, which
    /// must not go through the encoded image).
    pub fn source_bytes(&self, i: usize) -> Result<Vec<u8>> {
        let item = &self.catalog.items[i];
        let (size, _) = self.prints[&i];
        if self.spec.is_none() {
            // what the outputs store is the source itself
            return self.bytes(i);
        }
        crate::files::read_sized(&item.path, size).map_err(Error::io(&item.path))
    }

    /// Whether item `i`'s output bytes are read from the cache: re-encoded
    /// items, and pass-through ones from object storage (fetched once).
    fn cached(&self, i: usize) -> bool {
        self.spec.is_some() || crate::files::is_remote(&self.catalog.items[i].path)
    }

    /// The bytes that go into outputs for item `i`.
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>> {
        let item = &self.catalog.items[i];
        let (size, mtime) = self.prints[&i];
        if !self.cached(i) {
            return crate::files::read_sized(&item.path, size).map_err(Error::io(&item.path));
        }
        let key = Cache::key(self.transform_key, &item.path, size, mtime);
        self.cache.get(&key).map(|(_, _, b)| b).ok_or_else(|| {
            Error::Usage(format!(
                "cache entry for {} vanished during the build",
                item.rel
            ))
        })
    }

    /// Length of the bytes `bytes(i)` returns, without reading them.
    pub fn stored_len(&self, i: usize) -> u64 {
        match self.cached(i) {
            false => self.prints[&i].0,
            true => {
                let (size, mtime) = self.prints[&i];
                let key = Cache::key(self.transform_key, &self.catalog.items[i].path, size, mtime);
                self.cache.len(&key).unwrap_or(0)
            }
        }
    }

    /// Labels as written to `.lst` files and records: the class id (-1
    /// when unlabelled), or for a multi-label dataset a multi-hot vector
    /// with one 0/1 value per class (every item alike, so every record has
    /// the same label width). `packed = false` (a RecordIO output without
    /// `pack_label`) keeps only the first class id, as im2rec.py does.
    fn labels(&self, item: &Item, packed: bool) -> Vec<f64> {
        let ids = self.catalog.label_ids(item);
        if self.catalog.multi_label && packed {
            let mut v = vec![0.0; self.catalog.labels.len()];
            for i in ids {
                v[i] = 1.0;
            }
            return v;
        }
        vec![ids.first().map(|&i| i as f64).unwrap_or(-1.0)]
    }

    /// The item's file name in image-file outputs (extension of the encoding).
    fn out_rel(&self, item: &Item) -> String {
        let ext = match self.spec.map(|s| s.encoding) {
            None => return item.rel.clone(),
            Some(Encoding::Jpeg { .. }) => "jpg",
            Some(Encoding::Png { .. }) => "png",
        };
        match item.rel.rfind('.') {
            Some(dot) if !item.rel[dot..].contains('/') => format!("{}.{ext}", &item.rel[..dot]),
            _ => format!("{}.{ext}", item.rel),
        }
    }
}

fn io_err(p: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: p.to_path_buf(),
        err: e,
    }
}

fn create_parent(p: &Path) -> Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(io_err(d))?;
    }
    Ok(())
}

/// Files written: path relative to the output folder, size and SHA-256.
pub(super) type Written = Vec<(String, FileSums)>;

/// Where each item went, per variant: (variant, item) -> output -> place
/// (a file, or `file#record`).
pub(super) type Locations = BTreeMap<(String, usize), BTreeMap<String, String>>;

/// The per-item table: which file, labels and group went to which variant
/// and split, and where in each output.
pub const ITEMS_CSV: &str = "items.csv";

/// The name an output has in the per-item table and in its folder.
pub(super) fn output_name(o: &OutputSpec) -> String {
    match o {
        OutputSpec::Recordio { .. } => "recordio".into(),
        OutputSpec::SagemakerImage => "sagemaker-image".into(),
        OutputSpec::Folders => "folders".into(),
        OutputSpec::Tfrecord { preset, .. } => format!(
            "tfrecord-{}",
            match preset {
                crate::recipe::TfPreset::Tfds => "tfds",
                crate::recipe::TfPreset::Raw => "raw",
            }
        ),
    }
}

/// Writes every output; returns what was written, the record count of each
/// TFRecord shard, and where every item went.
pub(super) fn write_outputs(
    ctx: &Context,
    reporter: &dyn Reporter,
) -> Result<(Written, BTreeMap<String, u64>, Locations)> {
    let mut written = Vec::new();
    let mut records = BTreeMap::new();
    let mut locations: Locations = BTreeMap::new();
    let total: usize = ctx
        .plan
        .variants
        .iter()
        .map(|v| v.splits.values().map(Vec::len).sum::<usize>())
        .sum::<usize>()
        * ctx.recipe.recipe.outputs.len();
    reporter.begin("write", Some(total as u64));
    for v in &ctx.plan.variants {
        for (split, idx) in &v.splits {
            let items: Vec<usize> = idx.iter().copied().filter(|&i| ctx.ok(i)).collect();
            for output in &ctx.recipe.recipe.outputs {
                let column = output_name(output);
                let mut place = |i: usize, at: String| {
                    locations
                        .entry((v.name.clone(), i))
                        .or_default()
                        .insert(column.clone(), at);
                };
                match output {
                    OutputSpec::Recordio { pack_label } => {
                        let base = format!("{}/recordio/{split}", v.name);
                        written.extend(write_recordio(ctx, &base, &items, *pack_label)?);
                        for (k, &i) in items.iter().enumerate() {
                            place(i, format!("{base}.rec#{k}"));
                        }
                    }
                    OutputSpec::SagemakerImage => {
                        let dir = format!("{}/sagemaker", v.name);
                        let mut lst = String::new();
                        for &i in &items {
                            let item = &ctx.catalog.items[i];
                            let rel = format!("{dir}/{split}/{}", ctx.out_rel(item));
                            let p = ctx.path(&rel)?;
                            create_parent(&p)?;
                            let sums = write_atomic(&p, &ctx.bytes(i)?).map_err(io_err(&p))?;
                            place(i, rel.clone());
                            written.push((rel, sums));
                            lst.push_str(&format_lst_line(&LstEntry {
                                index: i as u64,
                                labels: ctx.labels(item, true),
                                path: ctx.out_rel(item),
                            }));
                        }
                        let rel = format!("{dir}/{split}_lst/{split}.lst");
                        let p = ctx.path(&rel)?;
                        create_parent(&p)?;
                        let sums = write_atomic(&p, lst.as_bytes()).map_err(io_err(&p))?;
                        written.push((rel, sums));
                    }
                    OutputSpec::Tfrecord {
                        preset,
                        rename,
                        compression,
                        shard_records,
                        shard_mib,
                        filename,
                    } => {
                        let o = super::tfrecord_out::TfOptions {
                            preset: *preset,
                            filename: *filename,
                            rename,
                            compression: *compression,
                            shard_records: *shard_records,
                            shard_bytes: shard_mib.saturating_mul(1 << 20),
                        };
                        let kind = match preset {
                            crate::recipe::TfPreset::Tfds => "tfds",
                            crate::recipe::TfPreset::Raw => "raw",
                        };
                        let dir = format!("{}/tfrecord-{kind}", v.name);
                        let mut k = 0;
                        for (rel, sums, n) in
                            super::tfrecord_out::write_split(ctx, &dir, split, &items, &o)?
                        {
                            for r in 0..n as usize {
                                place(items[k], format!("{rel}#{r}"));
                                k += 1;
                            }
                            records.insert(rel.clone(), n);
                            written.push((rel, sums));
                        }
                    }
                    OutputSpec::Folders => {
                        // (class names were checked before writing began, and
                        // two items on one path are refused by ctx.path)
                        for &i in &items {
                            let item = &ctx.catalog.items[i];
                            let class = item
                                .labels
                                .first()
                                .map(String::as_str)
                                .unwrap_or("unlabelled");
                            let out_rel = ctx.out_rel(item);
                            let file = out_rel.rsplit('/').next().unwrap_or(&out_rel);
                            let rel = format!("{}/folders/{split}/{class}/{file}", v.name);
                            let p = ctx.path(&rel)?;
                            create_parent(&p)?;
                            // the source file itself: a hard link when possible,
                            // never removing what is at `p` first
                            let linked = !ctx.cached(i)
                                && crate::output::link_atomic(&item.path, &p)
                                    .map_err(io_err(&p))?;
                            // a link is the source: its size and SHA-256 are known
                            // from the prepare stage, no second read
                            let sums = match (linked, ctx.source_sha(i)) {
                                (true, Some(sha)) => FileSums {
                                    size: ctx.prints[&i].0,
                                    sha256: crate::checksum::hex(sha),
                                },
                                _ => write_atomic(&p, &ctx.bytes(i)?).map_err(io_err(&p))?,
                            };
                            place(i, rel.clone());
                            written.push((rel, sums));
                        }
                    }
                }
                reporter.advance(items.len() as u64);
            }
        }
    }
    reporter.end();
    // Files of an earlier build that this one did not write (items removed).
    Ok((written, records, locations))
}

fn write_recordio(ctx: &Context, base: &str, items: &[usize], pack_label: bool) -> Result<Written> {
    let (rec_rel, idx_rel, lst_rel) = (
        format!("{base}.rec"),
        format!("{base}.idx"),
        format!("{base}.lst"),
    );
    let (rec_p, idx_p, lst_p) = (
        ctx.path(&rec_rel)?,
        ctx.path(&idx_rel)?,
        ctx.path(&lst_rel)?,
    );
    create_parent(&rec_p)?;
    let mut rec_f = AtomicFile::create(&rec_p).map_err(io_err(&rec_p))?;
    let mut idx_f = AtomicFile::create(&idx_p).map_err(io_err(&idx_p))?;
    let mut lst_f = AtomicFile::create(&lst_p).map_err(io_err(&lst_p))?;
    let mut rec = RecordWriter::new(&mut rec_f);
    let mut payload = Vec::new();
    for &i in items {
        let item = &ctx.catalog.items[i];
        let labels = ctx.labels(item, pack_label);
        let header = ImageRecord {
            labels: if pack_label && ctx.catalog.multi_label {
                Labels::Packed(labels.iter().map(|&l| l as f32).collect())
            } else {
                Labels::Scalar(labels[0] as f32)
            },
            id: i as u64,
            id2: 0,
        };
        payload.clear();
        header.write_header(&mut payload);
        payload.extend_from_slice(&ctx.bytes(i)?);
        let off = rec.write_record(&payload).map_err(io_err(&rec_p))?;
        write_idx_line(&mut idx_f, i as u64, off).map_err(io_err(&idx_p))?;
        lst_f
            .write_all(
                format_lst_line(&LstEntry {
                    index: i as u64,
                    labels,
                    path: item.rel.clone(),
                })
                .as_bytes(),
            )
            .map_err(io_err(&lst_p))?;
    }
    rec.flush().map_err(io_err(&rec_p))?;
    let _ = std::fs::remove_file(&idx_p);
    Ok(vec![
        (rec_rel, rec_f.commit().map_err(io_err(&rec_p))?),
        (idx_rel, idx_f.commit().map_err(io_err(&idx_p))?),
        (lst_rel, lst_f.commit().map_err(io_err(&lst_p))?),
    ])
}

/// Counts, label map, hyperparameters and skips (files are added by the caller).
pub(super) fn manifest(
    ctx: &Context,
    fingerprint: String,
    shard: Option<(usize, usize)>,
    reporter: &dyn Reporter,
) -> Manifest {
    let r = &ctx.recipe.recipe;
    let c = ctx.catalog;
    let mut skipped: Vec<Skip> = c.skipped.clone();
    skipped.extend(ctx.plan.skipped.iter().cloned());
    let mut non_rgb_sources = BTreeMap::new();
    for (i, p) in ctx.prepared {
        match p {
            Prepared::Skipped(reason) | Prepared::Excluded(reason) => skipped.push(Skip {
                origin: Some(c.items[*i].origin.clone()),
                item: c.items[*i].rel.clone(),
                reason: reason.clone(),
            }),
            Prepared::Ok(info, _) if info.source != SourceColor::Rgb => {
                *non_rgb_sources
                    .entry(info.source.name().to_string())
                    .or_insert(0) += 1;
            }
            Prepared::Ok(..) => {}
        }
    }
    // Channels as a trainer decodes the images: 1 for grayscale outputs,
    // else 3 (MXNet's and SageMaker's readers decode to RGB).
    let channels = match ctx.spec.map(|s| s.color) {
        Some(ColorMode::Grayscale) => 1,
        _ => 3,
    };
    let multi_label = c.multi_label;
    let mut variants = BTreeMap::new();
    // (variant, split) -> classes with no item there
    let mut missing: Vec<(String, String, Vec<String>)> = Vec::new();
    for v in &ctx.plan.variants {
        let mut vm = VariantManifest::default();
        let mut sizes: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        for (split, idx) in &v.splits {
            let mut sc = SplitCounts::default();
            let mut groups = BTreeSet::new();
            for &i in idx.iter().filter(|&&i| ctx.ok(i)) {
                let item = &c.items[i];
                sc.items += 1;
                if let Some(g) = &item.group {
                    groups.insert(g.clone());
                }
                if item.labels.is_empty() {
                    *sc.per_class.entry("(unlabelled)".into()).or_default() += 1;
                }
                for l in &item.labels {
                    *sc.per_class.entry(l.clone()).or_default() += 1;
                }
                if let Some(Prepared::Ok(info, _)) = ctx.prepared.get(&i) {
                    *sizes.entry((info.width, info.height)).or_default() += 1;
                }
            }
            sc.groups = groups.len() as u64;
            let labelled = sc.per_class.keys().any(|k| k != "(unlabelled)");
            if labelled {
                let absent: Vec<String> = c
                    .labels
                    .entries
                    .iter()
                    .filter(|e| !sc.per_class.contains_key(&e.name))
                    .map(|e| e.name.clone())
                    .collect();
                if !absent.is_empty() {
                    missing.push((v.name.clone(), split.clone(), absent));
                }
            }
            vm.splits.insert(split.clone(), sc);
        }
        vm.num_training_samples = vm.splits.get(TRAIN).map(|s| s.items).unwrap_or(0);
        vm.label_width = if multi_label { c.labels.len() } else { 1 };
        // image_shape: the outputs' one size, or the recipe's setting
        let common = match sizes.keys().collect::<Vec<_>>()[..] {
            [&(w, h)] => Some(format!("{channels},{h},{w}")),
            _ => None,
        };
        if sizes.len() > 1 {
            let (&(w0, h0), _) = sizes
                .iter()
                .min_by_key(|((w, h), _)| (*w as u64) * (*h as u64))
                .unwrap();
            let (&(w1, h1), _) = sizes
                .iter()
                .max_by_key(|((w, h), _)| (*w as u64) * (*h as u64))
                .unwrap();
            vm.image_sizes = Some(ImageSizes {
                distinct: sizes.len() as u64,
                smallest: format!("{w0}x{h0}"),
                largest: format!("{w1}x{h1}"),
            });
        }
        vm.image_shape = match (&r.hyperparameters.image_shape, &common) {
            (Some(set), Some(found)) if set != found => {
                reporter.warn(&format!(
                    "variant {}: [hyperparameters] image_shape = {set:?}, but every image written is {found} (C,H,W)",
                    v.name
                ));
                Some(set.clone())
            }
            (Some(set), _) => Some(set.clone()),
            (None, Some(found)) => Some(found.clone()),
            (None, None) if sizes.len() > 1 => {
                let s = vm.image_sizes.as_ref().unwrap();
                reporter.warn(&format!(
                    "variant {}: the images have {} different sizes (from {} to {}), so image_shape \
                     is left out of hyperparameters.json; resize to one size (resize = \"224x224\", or \
                     center_crop with resize = N) or set [hyperparameters] image_shape = \"{channels},224,224\"",
                    v.name, s.distinct, s.smallest, s.largest
                ));
                None
            }
            (None, None) => None,
        };
        let hp = &mut vm.hyperparameters;
        hp.insert("num_classes".into(), c.labels.len().to_string());
        hp.insert(
            "num_training_samples".into(),
            vm.num_training_samples.to_string(),
        );
        if let Some(shape) = &vm.image_shape {
            hp.insert("image_shape".into(), shape.clone());
        }
        if multi_label {
            hp.insert("multi_label".into(), "1".into());
        }
        variants.insert(v.name.clone(), vm);
    }
    if !missing.is_empty() {
        let mut text = String::from(
            "classes with no item in a split (a model is not trained or scored on them there):",
        );
        for (v, split, classes) in &missing {
            let shown: Vec<&str> = classes.iter().take(8).map(String::as_str).collect();
            let more = if classes.len() > 8 {
                format!(" (+{} more)", classes.len() - 8)
            } else {
                String::new()
            };
            text.push_str(&format!(
                "\n  {v}/{split}: {} of {}: {}{more}",
                classes.len(),
                c.labels.len(),
                shown.join(", ")
            ));
        }
        reporter.warn(&text);
    }
    Manifest {
        manifest_version: MANIFEST_VERSION,
        tool: "imgprep".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        name: r.name.clone(),
        recipe_sha256: ctx.recipe.hash.clone(),
        fingerprint,
        seed: r.seed,
        split_method: format!("{:?}", ctx.plan.method).to_lowercase(),
        split_ratios: ctx.plan.ratios.clone(),
        shard: shard.map(|(i, n)| format!("{i}/{n}")),
        num_classes: c.labels.len(),
        label_order: c.label_order.clone(),
        multi_label,
        labels: c.labels.entries.clone(),
        variants,
        files: BTreeMap::new(),
        records: BTreeMap::new(),
        non_rgb_sources,
        skipped,
    }
}

/// Writes `OUT/items.csv`: one row per item and variant it is in (variant,
/// split, id, item path under its source root, labels, group, source
/// SHA-256, and its place in each output: a file or `file#record`), then one
/// row per skipped item. Nothing in it depends on where the sources are
/// (a local copy and a bucket give the same table).
pub(super) fn write_items_table(
    ctx: &Context,
    m: &Manifest,
    locations: &Locations,
) -> Result<FileSums> {
    let columns: Vec<String> = {
        let mut seen = Vec::new();
        for o in &ctx.recipe.recipe.outputs {
            let n = output_name(o);
            if !seen.contains(&n) {
                seen.push(n);
            }
        }
        seen
    };
    let p = ctx.out.join(ITEMS_CSV);
    let f = AtomicFile::create(&p).map_err(io_err(&p))?;
    let mut w = csv::WriterBuilder::new().from_writer(f);
    let mut header = vec![
        "variant",
        "split",
        "id",
        "item",
        "labels",
        "label_ids",
        "group",
        "source_sha256",
        "status",
    ];
    header.extend(columns.iter().map(String::as_str));
    w.write_record(&header)
        .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
    let c = ctx.catalog;
    for v in &ctx.plan.variants {
        for (split, idx) in &v.splits {
            let mut rows: Vec<usize> = idx.iter().copied().filter(|&i| ctx.ok(i)).collect();
            rows.sort_unstable();
            for i in rows {
                let item = &c.items[i];
                let sha = ctx
                    .source_sha(i)
                    .map(|s| crate::checksum::hex(s))
                    .unwrap_or_default();
                let ids: Vec<String> = c.label_ids(item).iter().map(|k| k.to_string()).collect();
                let place = locations.get(&(v.name.clone(), i));
                let mut row = vec![
                    v.name.clone(),
                    split.clone(),
                    i.to_string(),
                    item.rel.clone(),
                    item.labels.join(";"),
                    ids.join(";"),
                    item.group.clone().unwrap_or_default(),
                    sha,
                    "written".to_string(),
                ];
                for col in &columns {
                    row.push(place.and_then(|p| p.get(col)).cloned().unwrap_or_default());
                }
                w.write_record(&row)
                    .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
            }
        }
    }
    for s in &m.skipped {
        let mut row = vec![
            String::new(),
            String::new(),
            String::new(),
            s.item.clone(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            format!("skipped: {}", s.reason),
        ];
        row.extend(columns.iter().map(|_| String::new()));
        w.write_record(&row)
            .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
    }
    let f = w
        .into_inner()
        .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
    f.commit().map_err(io_err(&p))
}

/// Writes `{variant}/hyperparameters.json` (listed in the manifest) and, last, `manifest.json`.
pub(super) fn write_manifest(
    out: &Path,
    m: &mut Manifest,
    guard: &super::outdir::OutGuard,
) -> Result<()> {
    for (name, v) in &m.variants.clone() {
        let rel = format!("{name}/hyperparameters.json");
        let p = under(out, &rel)?;
        guard.record(&rel)?;
        create_parent(&p)?;
        let text = serde_json::to_string_pretty(&v.hyperparameters).unwrap() + "\n";
        let sums = write_atomic(&p, text.as_bytes()).map_err(io_err(&p))?;
        m.files.insert(rel, sums);
    }
    let text = serde_json::to_string_pretty(&*m).unwrap() + "\n";
    let p = out.join(MANIFEST);
    write_atomic(&p, text.as_bytes()).map_err(io_err(&p))?;
    Ok(())
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutReport {
    pub out: std::path::PathBuf,
    pub files_checked: u64,
    pub records_checked: u64,
    pub problems: Vec<String>,
    pub ok: bool,
}

/// Re-checks everything a manifest claims: each file's size and SHA-256, every RecordIO dataset (framing, images, .idx, .lst) and its count.
pub fn verify_out(out: &Path, threads: usize, reporter: &dyn Reporter) -> Result<OutReport> {
    let at = |rel: &str| crate::files::join(out, Path::new(rel));
    let mp = at(MANIFEST);
    let text = crate::files::read_to_string(&mp).map_err(io_err(&mp))?;
    let m: Manifest =
        serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{}: {e}", mp.display())))?;
    let mut rep = OutReport {
        out: out.to_path_buf(),
        ..Default::default()
    };
    reporter.begin("verify files", Some(m.files.len() as u64));
    for (f, want) in &m.files {
        rep.files_checked += 1;
        match file_sums(&at(f)) {
            Ok(got) if &got == want => {}
            Ok(got) => rep.problems.push(format!(
                "{f}: size/sha256 {}/{} differ from the manifest's {}/{}",
                got.size, got.sha256, want.size, want.sha256
            )),
            Err(e) => rep.problems.push(format!("{f}: {e}")),
        }
        reporter.advance(1);
    }
    reporter.end();
    for (vname, v) in &m.variants {
        for (split, counts) in &v.splits {
            let rec = format!("{vname}/recordio/{split}.rec");
            if !m.files.contains_key(&rec) {
                continue;
            }
            let prefix = at(&format!("{vname}/recordio/{split}"));
            let r =
                crate::verify::verify_rec(&prefix, threads, &crate::report::Collect::default())?;
            rep.records_checked += r.records;
            rep.problems.extend(r.first_problems.iter().cloned());
            if r.records != counts.items {
                rep.problems.push(format!(
                    "{rec}: {} records, the manifest says {}",
                    r.records, counts.items
                ));
            }
        }
    }
    for (f, &want) in &m.records {
        let (n, problems) = crate::tfcheck::verify_tfrecord(&at(f))?;
        rep.records_checked += n;
        rep.problems.extend(problems);
        if n != want {
            rep.problems
                .push(format!("{f}: {n} records, the manifest says {want}"));
        }
    }
    rep.ok = rep.problems.is_empty();
    Ok(rep)
}
