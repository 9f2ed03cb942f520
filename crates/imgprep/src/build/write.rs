//! Write: per variant, split and format, the outputs; then the manifest.

use super::cache::Cache;
use super::catalog::{Catalog, Skip};
use super::formats::NO_BOXES;
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
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

pub(super) struct Context<'a> {
    /// The output folder's guard: every file is noted in its marker first.
    pub guard: &'a super::outdir::OutGuard,
    pub recipe: &'a LoadedRecipe,
    pub catalog: &'a Catalog,
    pub plan: &'a Plan,
    pub spec: Option<&'a ImageSpec>,
    pub cache: &'a Cache,
    /// The items the plan uses (sorted) and, for each, its source's size
    /// and modification time, from the fingerprint.
    pub needed: &'a [usize],
    pub prints: &'a [(u64, i128)],
    /// Their cache keys (see `video::cache_key`).
    pub keys: &'a [String],
    pub prepared: &'a super::PreparedItems,
    pub out: &'a Path,
    pub threads: usize,
    /// Folders of OUT this build has made (or found) already.
    pub made_dirs: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Sources this build linked into an output, one bit each by their
    /// place in `needed`: a new hard link changes the file's change time,
    /// so the "up to date" stamp takes their prints again once the outputs
    /// are written (else the next run, with nothing changed, made
    /// everything again). Bits, not prints: at 50,000 items a list of
    /// prints was 2.4 MB of a detection build's peak.
    pub relinked: Vec<std::sync::atomic::AtomicU64>,
    /// With `drop_cache`: reads of each item's cached image still to come;
    /// at 0 the entry is removed.
    pub evict: Option<std::sync::Mutex<HashMap<usize, u32>>>,
    /// Records copied from the previous build's record files.
    pub reused: std::sync::atomic::AtomicU64,
    /// The record tables this build keeps (see `record_table`).
    pub tables: std::sync::Mutex<Vec<String>>,
    /// Asked at each item's bytes whether the caller wants the build to
    /// stop (Ctrl-C in a notebook): a split of thousands of items is not
    /// written to its end first.
    pub reporter: &'a dyn crate::report::Reporter,
}

/// Counts, for every item, the outputs that will read its cached image, so
/// each entry goes as soon as the last one has it (see `BuildOptions::drop_cache`).
pub(super) fn with_eviction<'a>(
    mut ctx: Context<'a>,
    kept: &std::collections::HashSet<&str>,
) -> Context<'a> {
    let mut uses: HashMap<usize, u32> = HashMap::new();
    for v in &ctx.plan.variants {
        for output in &ctx.recipe.recipe.outputs {
            let format = super::formats::for_output(output, ctx.catalog.detection);
            for idx in v.splits.values() {
                let evicted =
                    |i: &usize| ctx.ok(*i) && ctx.cached(*i) && !kept.contains(ctx.bytes_key(*i));
                for &i in idx.iter().filter(|i| evicted(i)) {
                    if !(format.needs_boxes() && ctx.objects(i).is_empty()) {
                        *uses.entry(i).or_default() += 1;
                    }
                }
            }
        }
    }
    ctx.evict = Some(std::sync::Mutex::new(uses));
    ctx
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

    /// Size and modification time of item `i`'s source.
    pub(super) fn print(&self, i: usize) -> (u64, i128) {
        self.prints[self.at(i)]
    }

    /// Item `i`'s place in `needed`.
    fn at(&self, i: usize) -> usize {
        self.needed
            .binary_search(&i)
            .expect("only items the plan uses are written")
    }

    pub(super) fn ok(&self, i: usize) -> bool {
        matches!(self.prepared.get(&i), Some(Prepared::Ok(..)))
    }

    /// The SHA-256 of item `i`'s source, from the prepare stage.
    pub(super) fn source_sha(&self, i: usize) -> Option<&super::cache::SourceSha> {
        match self.prepared.get(&i) {
            Some(Prepared::Ok(_, sha, _)) => Some(sha),
            _ => None,
        }
    }

    /// The source file's own bytes (for outputs of decoded pixels, which
    /// must not go through the encoded image).
    pub fn source_bytes(&self, i: usize) -> Result<Vec<u8>> {
        crate::report::check_cancelled(self.reporter)?;
        let item = &self.catalog.items[i];
        let (size, _) = self.print(i);
        if self.spec.is_none() || item.frame.is_some() {
            // what the outputs store is the source itself (a video frame:
            // the image its chunk's decode stored)
            return self.bytes(i);
        }
        crate::files::read_sized(&item.path, size).map_err(Error::io(&item.path))
    }

    /// Whether item `i`'s output bytes are read from the cache: re-encoded
    /// items, and pass-through ones from object storage (fetched once).
    pub(super) fn cached(&self, i: usize) -> bool {
        self.spec.is_some() || crate::files::is_remote(&self.catalog.items[i].path)
    }

    /// The bytes that go into outputs for item `i`.
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>> {
        crate::report::check_cancelled(self.reporter)?;
        let item = &self.catalog.items[i];
        let k = self.at(i);
        if !self.cached(i) {
            let size = self.prints[k].0;
            return crate::files::read_sized(&item.path, size).map_err(Error::io(&item.path));
        }
        let key = &self.keys[k];
        let bytes = self.cache.get(key).map(|(.., b)| b).ok_or_else(|| {
            Error::Usage(format!(
                "cache entry for {} vanished during the build",
                item.rel
            ))
        })?;
        if let Some(evict) = &self.evict {
            let mut uses = evict.lock().unwrap();
            if let Some(n) = uses.get_mut(&i) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    uses.remove(&i);
                    self.cache.remove(key);
                }
            }
        }
        Ok(bytes)
    }

    /// What identifies the bytes `bytes(i)` returns: the item's cache key
    /// (transform, source path, size, modification time, frame).
    pub fn bytes_key(&self, i: usize) -> &str {
        &self.keys[self.at(i)]
    }

    /// Where the record table `id` (a record file's name in the output
    /// folder, or the name a set of shards shares) is kept (see `reuse`);
    /// None when this build keeps none (`drop_cache`: the next build starts
    /// from scratch).
    pub fn record_table(&self, id: &str) -> Option<std::path::PathBuf> {
        match self.evict {
            Some(_) => None,
            None => {
                self.tables.lock().unwrap().push(id.to_string());
                Some(super::reuse::table_path(self.cache.dir(), self.out, id))
            }
        }
    }

    /// The path of a record file a previous build wrote, by its name in
    /// the output folder (a record table names it), to copy records from;
    /// None when the name does not stay inside the output folder.
    pub fn previous_file(&self, rel: &str) -> Option<std::path::PathBuf> {
        under(self.out, rel).ok()
    }

    /// Length of the bytes `bytes(i)` returns, without reading them.
    pub fn stored_len(&self, i: usize) -> u64 {
        match self.cached(i) {
            false => self.print(i).0,
            true => self.cache.len(self.bytes_key(i)).unwrap_or(0),
        }
    }

    /// Labels as written to `.lst` files and records: the class id (-1
    /// when unlabelled), or for a multi-label dataset a multi-hot vector
    /// with one 0/1 value per class (every item alike, so every record has
    /// the same label width). `packed = false` (a RecordIO output without
    /// `pack_label`) keeps only the first class id, as im2rec.py does.
    pub(super) fn labels(&self, item: &Item, packed: bool) -> Vec<f64> {
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
    pub(super) fn out_rel(&self, item: &Item) -> String {
        out_rel(&item.rel, self.spec)
    }

    /// Writes item `i`'s output image at `rel` (noted in the marker first):
    /// a hard link to the source when it is passed through and local (never
    /// removing what is at the path first), else the bytes.
    pub(super) fn put_image(&self, i: usize, rel: &str) -> Result<FileSums> {
        crate::report::check_cancelled(self.reporter)?;
        let p = self.path(rel)?;
        self.create_parent_once(rel, &p)?;
        let item = &self.catalog.items[i];
        let linked =
            !self.cached(i) && crate::output::link_atomic(&item.path, &p).map_err(io_err(&p))?;
        if linked {
            let k = self.at(i);
            self.relinked[k / 64].fetch_or(1 << (k % 64), std::sync::atomic::Ordering::Relaxed);
        }
        // a link is the source: its size and SHA-256 are known from the
        // prepare stage, no second read
        match (linked, self.source_sha(i)) {
            (true, Some(sha)) => Ok(FileSums {
                size: self.print(i).0,
                sha256: crate::checksum::Sha256Sum(*sha),
            }),
            _ => write_unless_there(self.guard, rel, &p, &self.bytes(i)?),
        }
    }

    /// Makes the folder of `rel` (at `p`) unless this build made it already.
    fn create_parent_once(&self, rel: &str, p: &Path) -> Result<()> {
        let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let mut made = self.made_dirs.lock().unwrap();
        if !made.contains(dir) {
            create_parent(p)?;
            made.insert(dir.to_string());
        }
        Ok(())
    }

    /// Writes `bytes` at `rel` (noted in the marker first). A small file
    /// an earlier build wrote there that already holds exactly these bytes
    /// stays as it is: a rebuild after one box changed rewrote all 50,000
    /// annotation files of a detection set (a temporary file and a rename
    /// each: 10 s of the 15 s rebuild), now it reads them.
    pub(super) fn put_file(&self, rel: &str, bytes: &[u8]) -> Result<FileSums> {
        let p = self.path(rel)?;
        self.create_parent_once(rel, &p)?;
        write_unless_there(self.guard, rel, &p, bytes)
    }

    /// Writes the file at `rel` (noted in the marker first) as `write`
    /// produces it, so a large file is never held whole in memory.
    pub(super) fn put_file_streamed(
        &self,
        rel: &str,
        write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<FileSums> {
        let p = self.path(rel)?;
        self.create_parent_once(rel, &p)?;
        let mut f = AtomicFile::create(&p).map_err(io_err(&p))?;
        write(&mut f).map_err(io_err(&p))?;
        f.commit().map_err(io_err(&p))
    }

    /// Item `i`'s objects, in output pixels (empty for classification items).
    pub(super) fn objects(&self, i: usize) -> &[crate::annotations::Object] {
        self.catalog.items[i]
            .annotation
            .as_deref()
            .map(|a| a.objects.as_slice())
            .unwrap_or(&[])
    }

    /// Item `i`'s output image: format, width, height, channels.
    pub(super) fn info(&self, i: usize) -> crate::image::ImageInfo {
        match self.prepared.get(&i) {
            Some(Prepared::Ok(info, ..)) => *info,
            _ => unreachable!("only prepared items are written"),
        }
    }

    /// The class id of an object's class (0-based, in the label map).
    pub(super) fn class_id(&self, o: &crate::annotations::Object) -> usize {
        self.catalog
            .labels
            .id(&o.class)
            .expect("the label map holds every written object's class")
    }
}

pub(super) fn io_err(p: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: p.to_path_buf(),
        err: e,
    }
}

pub(super) fn create_parent(p: &Path) -> Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(io_err(d))?;
    }
    Ok(())
}

/// Files written: path relative to the output folder -> size and SHA-256
/// (what the manifest lists).
pub(super) type Written = super::manifest::FileList;

/// Where each item went: (variant index, output column, item) -> place, a
/// place being a file or `file#record`. Compact on purpose: a table per
/// variant and output, indexed by item, with exactly sized names (16 bytes
/// an item; a map keyed by (variant, item, column) cost 64 at 50,000 items,
/// a list per item 128 more, a map per item about 600).
#[derive(Default)]
pub(super) struct Locations {
    /// Output column names (formats' names), indexed by the keys below.
    columns: Vec<String>,
    /// ((variant, column), each item's place).
    tables: Vec<((usize, usize), Places)>,
    /// Items in the catalog: every table's length.
    items: usize,
}

/// Each item's place in one output of one variant, indexed by item.
type Places = Vec<Option<Box<str>>>;

impl Locations {
    fn new(items: usize) -> Locations {
        Locations {
            items,
            ..Default::default()
        }
    }

    fn insert(&mut self, variant: usize, i: usize, column: &str, at: Box<str>) {
        let c = match self.columns.iter().position(|x| x == column) {
            Some(c) => c,
            None => {
                self.columns.push(column.to_string());
                self.columns.len() - 1
            }
        };
        let t = match self.tables.iter().position(|(k, _)| *k == (variant, c)) {
            Some(t) => t,
            None => {
                self.tables.push(((variant, c), vec![None; self.items]));
                self.tables.len() - 1
            }
        };
        self.tables[t].1[i] = Some(at);
    }

    /// Each item's place in `column` of variant `variant`, if it wrote any.
    fn table(&self, variant: usize, column: &str) -> Option<&Places> {
        let c = self.columns.iter().position(|x| x == column)?;
        let (_, table) = self.tables.iter().find(|(k, _)| *k == (variant, c))?;
        Some(table)
    }
}

/// The per-item table: which file, labels and group went to which variant
/// and split, and where in each output.
pub const ITEMS_CSV: &str = "items.csv";

/// Writes every output through its format's writer; returns what was
/// written, the record count of each record file, where every item went,
/// and the items each output left out because its readers cannot take them
/// ((variant, output, reason) -> count).
pub(super) fn write_outputs(
    ctx: &Context,
    reporter: &dyn Reporter,
) -> Result<(Written, BTreeMap<String, u64>, Locations, LeftOut)> {
    let mut sink = super::formats::Sink::default();
    let mut locations = Locations::new(ctx.catalog.items.len());
    let mut left_out: LeftOut = BTreeMap::new();
    let total: usize = ctx
        .plan
        .variants
        .iter()
        .map(|v| v.splits.values().map(Vec::len).sum::<usize>())
        .sum::<usize>()
        * ctx.recipe.recipe.outputs.len();
    let formats: Vec<_> = (ctx.recipe.recipe.outputs.iter())
        .map(|o| super::formats::for_output(o, ctx.catalog.detection))
        .collect();
    // the list of files written, sized once: items' files, and a few
    // side files per split and variant (more only makes it grow)
    let mut files = 0;
    for v in &ctx.plan.variants {
        for format in &formats {
            let per_item = format.files_per_item();
            files += 8 + v
                .splits
                .values()
                .map(|idx| per_item * idx.len() + 8)
                .sum::<usize>();
        }
    }
    sink.written.reserve_exact(files);
    reporter.begin("write", Some(total as u64));
    for (vi, v) in ctx.plan.variants.iter().enumerate() {
        for format in &formats {
            let column = format.name();
            let mut splits = Vec::with_capacity(v.splits.len());
            for (split, idx) in &v.splits {
                let mut items = Vec::with_capacity(idx.len());
                for &i in idx.iter().filter(|&&i| ctx.ok(i)) {
                    if format.needs_boxes() && ctx.objects(i).is_empty() {
                        *left_out
                            .entry((v.name.clone(), column.clone(), NO_BOXES.to_string()))
                            .or_default() += 1;
                    } else {
                        items.push(i);
                    }
                }
                splits.push((split, idx.len(), items));
            }
            // Record files' splits are written side by side, the build's
            // threads shared among them: a large record file's SHA-256 takes
            // one core, and the two files of an 80/20 split then hash at once
            // (what each file holds does not depend on it).
            let at_once = match format.files_per_item() == 0 {
                true => ctx.threads.clamp(1, splits.len().max(1)),
                false => 1,
            };
            let mut done: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            if at_once == 1 {
                // on this thread, into the one sink (a thread of its own per
                // split would add its allocator arena to the peak)
                sink.threads = ctx.threads;
                for (split, seen, items) in &splits {
                    format.write_split(ctx, &v.name, split, items, &mut sink)?;
                    reporter.advance(*seen as u64);
                    crate::report::check_cancelled(reporter)?;
                }
            } else {
                let threads = (ctx.threads / at_once).max(1);
                let mut seen = splits.iter().map(|(_, seen, _)| *seen);
                crate::execute::ordered_map(
                    splits.iter(),
                    at_once,
                    at_once,
                    || (),
                    |_, (split, _, items)| -> Result<super::formats::Sink> {
                        let mut s = super::formats::Sink {
                            threads,
                            ..Default::default()
                        };
                        format.write_split(ctx, &v.name, split, items, &mut s)?;
                        Ok(s)
                    },
                    |made| -> Result<()> {
                        sink.append(made?);
                        let n = seen.next().expect("one result per split");
                        reporter.advance(n as u64);
                        crate::report::check_cancelled(reporter)
                    },
                )?;
            }
            for (split, _, items) in splits {
                done.insert(split.clone(), items);
            }
            format.finish_variant(ctx, &v.name, &done, &mut sink)?;
            for (i, at) in sink.places.drain(..) {
                locations.insert(vi, i, &column, at);
            }
        }
    }
    reporter.end();
    let written = Written::from_unsorted(sink.written)
        .expect("the output guard refuses a path claimed twice");
    Ok((written, sink.records, locations, left_out))
}

/// Items an output left out because its readers cannot take them:
/// (variant, output, reason) -> count.
pub(super) type LeftOut = BTreeMap<(String, String, String), u64>;

/// Counts, label map, hyperparameters and skips (files are added by the caller).
pub(super) fn manifest(
    ctx: &Context,
    files: Written,
    fingerprint: String,
    shard: Option<(usize, usize)>,
    reporter: &dyn Reporter,
) -> Manifest {
    let r = &ctx.recipe.recipe;
    let c = ctx.catalog;
    let mut skipped: Vec<Skip> = c.skipped.clone();
    skipped.extend(ctx.plan.skipped.iter().cloned());
    let mut non_rgb_sources = BTreeMap::new();
    for (i, p) in ctx.prepared.iter() {
        match p {
            Prepared::Skipped(reason) | Prepared::Excluded(reason) => skipped.push(Skip {
                origin: Some(c.items[i].origin.to_string()),
                item: c.items[i].rel.clone(),
                reason: reason.clone(),
            }),
            Prepared::Ok(info, ..) if info.source != SourceColor::Rgb => {
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
        // channels of the images as stored (0: a header that does not say)
        let mut stored_channels: BTreeMap<u8, u64> = BTreeMap::new();
        // pass-through files whose EXIF turns them by 90 degrees
        let mut turned = 0u64;
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
                if let Some(Prepared::Ok(info, _, geometry)) = ctx.prepared.get(&i) {
                    *sizes.entry((info.width, info.height)).or_default() += 1;
                    *stored_channels.entry(info.channels).or_default() += 1;
                    turned += u64::from(ctx.spec.is_none() && geometry.orientation >= 5);
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
        if c.detection {
            // SageMaker's detection algorithm takes images with boxes only;
            // label_width covers the image with the most boxes in train and
            // validation (header 2 + 5 per box)
            let with_boxes = |split: &str| -> Vec<usize> {
                v.splits
                    .get(split)
                    .map(|idx| {
                        idx.iter()
                            .copied()
                            .filter(|&i| ctx.ok(i) && !ctx.objects(i).is_empty())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let train = with_boxes(TRAIN);
            let most = train
                .iter()
                .chain(&with_boxes(super::plan::VALIDATION))
                .map(|&i| ctx.objects(i).len())
                .max()
                .unwrap_or(0);
            vm.num_training_samples = train.len() as u64;
            vm.label_width =
                super::formats::recordio::DET_HEADER + super::formats::recordio::DET_OBJECT * most;
        }
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
        // (SageMaker's detection image_shape is one number, the network's
        // square input, not the images' C,H,W: only the recipe's setting)
        vm.image_shape = match (&r.hyperparameters.image_shape, &common) {
            (set, _) if c.detection => set.clone(),
            (Some(set), Some(found)) if set != found => {
                reporter.warn(&format!(
                    "variant {}: [hyperparameters] image_shape = {set:?}, but every image written is {found} (C,H,W)",
                    v.name
                ));
                Some(set.clone())
            }
            (Some(set), _) => Some(set.clone()),
            (None, Some(_)) if turned > 0 => {
                reporter.warn(&format!(
                    "variant {}: {turned} pass-through image(s) carry an EXIF rotation by 90 \
                     degrees: readers that apply it (OpenCV's imread, PIL's exif_transpose) see \
                     height and width swapped, readers that do not (MXNet's decoder, TensorFlow's \
                     decode_image) see them as stored, so \
                     image_shape is left out; set encoding = \"jpg\" to store them upright",
                    v.name
                ));
                None
            }
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
        // color = "unchanged" keeps each image's own channels, but image_shape
        // has one count: say so when the images are not all RGB
        let odd: Vec<String> = stored_channels
            .iter()
            .filter(|(&ch, _)| ch != 0 && ch != 3)
            .map(|(ch, n)| format!("{n} with {ch}"))
            .collect();
        if !c.detection
            && ctx.spec.is_some_and(|s| s.color == ColorMode::Unchanged)
            && !odd.is_empty()
        {
            reporter.warn(&format!(
                "variant {}: color = \"unchanged\" kept the images' own channels ({} of {} images), \
                 but image_shape has one channel count: it says {channels}, as MXNet's and \
                 SageMaker's readers decode every image to RGB; TFRecord readers get each image's \
                 own channels (image/channels). Use color = \"color\" or \"grayscale\" for one count",
                v.name,
                odd.join(", "),
                stored_channels.values().sum::<u64>()
            ));
        }
        let hp = &mut vm.hyperparameters;
        hp.insert("num_classes".into(), c.labels.len().to_string());
        // the count of the split named train; with none, no number at all
        // rather than a 0 a trainer would take
        if v.splits.contains_key(TRAIN) {
            hp.insert(
                "num_training_samples".into(),
                vm.num_training_samples.to_string(),
            );
        } else {
            let names: Vec<&str> = v.splits.keys().map(String::as_str).collect();
            reporter.warn(&format!(
                "variant {}: no split is named \"train\" (the splits are {}), so \
                 hyperparameters.json has no num_training_samples; name the training split \
                 \"train\" (a source's split = \"train\", or its split column's values)",
                v.name,
                names.join(", ")
            ));
        }
        if let Some(shape) = &vm.image_shape {
            hp.insert("image_shape".into(), shape.clone());
        }
        if multi_label {
            hp.insert("multi_label".into(), "1".into());
        }
        if c.detection {
            hp.insert("label_width".into(), vm.label_width.to_string());
        }
        variants.insert(v.name.clone(), vm);
    }
    if !missing.is_empty() {
        let mut text = String::from(
            "classes with no item in a split (a model is not trained or scored on them there):",
        );
        for (v, split, classes) in &missing {
            let shown: Vec<_> = classes
                .iter()
                .take(8)
                .map(|c| crate::report::cut(c, 80))
                .collect();
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
        split_ratios: written_ratios(ctx),
        shard: shard.map(|(i, n)| format!("{i}/{n}")),
        num_classes: c.labels.len(),
        label_order: c.label_order.clone(),
        multi_label,
        labels: c.labels.entries.clone(),
        variants,
        files,
        records: BTreeMap::new(),
        non_rgb_sources,
        skipped,
        detection: None,
        video: None,
    }
}

/// An item's output path: `rel` with the extension of the encoding (as it
/// is, passed through).
pub(super) fn out_rel(rel: &str, spec: Option<&crate::image::ImageSpec>) -> String {
    let ext = match spec.map(|s| s.encoding) {
        None => return rel.to_string(),
        Some(Encoding::Jpeg { .. }) => "jpg",
        Some(Encoding::Png { .. }) => "png",
    };
    super::formats::with_extension(rel, ext)
}

/// The plan's ratios, with each split's share of the items actually
/// written (the prepare stage may have left some out: unreadable, a colour
/// policy, images without boxes under `empty_images = "drop"`). Items are
/// counted once across variants (variants are subsets of the splits, and
/// an item is in one split), with one bit-like flag per catalog item.
fn written_ratios(ctx: &Context) -> BTreeMap<String, super::plan::SplitRatio> {
    let mut counted = vec![false; ctx.catalog.items.len()];
    let mut per_split: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &ctx.plan.variants {
        for (split, idx) in &v.splits {
            for &i in idx {
                if ctx.ok(i) && !std::mem::replace(&mut counted[i], true) {
                    *per_split.entry(split.as_str()).or_default() += 1;
                }
            }
        }
    }
    let total: usize = per_split.values().sum();
    let mut ratios = ctx.plan.ratios.clone();
    for (split, r) in ratios.iter_mut() {
        let n = per_split.get(split.as_str()).copied().unwrap_or(0);
        r.achieved = n as f64 / total.max(1) as f64;
    }
    ratios
}

/// The manifest's detection section: conventions, objects per split and
/// class, what each output left out, and the box checks' report.
pub(super) fn detection_manifest(
    ctx: &Context,
    boxes: super::boxes::BoxReport,
    left_out: &LeftOut,
) -> super::manifest::DetectionManifest {
    let class_id_base = ctx
        .recipe
        .recipe
        .outputs
        .iter()
        .map(|o| super::formats::for_output(o, true))
        .filter_map(|f| Some((f.name(), f.class_id_base()?)))
        .collect();
    let mut objects: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>> = BTreeMap::new();
    for v in &ctx.plan.variants {
        for (split, idx) in &v.splits {
            let per = objects
                .entry(v.name.clone())
                .or_default()
                .entry(split.clone())
                .or_default();
            for &i in idx.iter().filter(|&&i| ctx.ok(i)) {
                for o in ctx.objects(i) {
                    *per.entry(o.class.to_string()).or_default() += 1;
                }
            }
        }
    }
    let mut lo: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>> = BTreeMap::new();
    for ((v, out, why), n) in left_out {
        lo.entry(v.clone())
            .or_default()
            .entry(out.clone())
            .or_default()
            .insert(why.clone(), *n);
    }
    super::manifest::DetectionManifest {
        box_convention: "pixels of the output image as floats, origin at the top-left corner of \
                         the top-left pixel; each output converts at its edge"
            .into(),
        voc_origin: ctx.catalog.boxes.voc_origin,
        class_id_base,
        objects,
        left_out: lo,
        boxes,
        push_to: ctx.recipe.recipe.outputs.iter().find_map(|o| match o {
            OutputSpec::AugmentedManifest { push_to, .. } => push_to.clone(),
            _ => None,
        }),
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
            let n = super::formats::for_output(o, ctx.catalog.detection).name();
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
    let video = !ctx.catalog.video.is_empty();
    if video {
        header.extend([
            "chunk",
            "frame",
            "pts",
            "time",
            "session_frame",
            "session_time",
        ]);
    }
    header.extend(columns.iter().map(String::as_str));
    w.write_record(&header)
        .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
    let c = ctx.catalog;
    for (vi, v) in ctx.plan.variants.iter().enumerate() {
        // (looked up once a variant, not once a row)
        let places: Vec<Option<&Places>> =
            columns.iter().map(|col| locations.table(vi, col)).collect();
        for (split, idx) in &v.splits {
            let mut rows: Vec<usize> = idx.iter().copied().filter(|&i| ctx.ok(i)).collect();
            rows.sort_unstable();
            // fields written one by one, from buffers reused row to row
            let (mut id, mut labels, mut ids) = (String::new(), String::new(), String::new());
            let csv_err = |e: csv::Error| Error::Usage(format!("{}: {e}", p.display()));
            for i in rows {
                use std::fmt::Write as _;
                let item = &c.items[i];
                let sha = ctx
                    .source_sha(i)
                    .map(|s| crate::checksum::Sha256Sum(*s).to_string())
                    .unwrap_or_default();
                id.clear();
                let _ = write!(id, "{i}");
                labels.clear();
                ids.clear();
                for (n, l) in item.labels.iter().enumerate() {
                    labels.push_str(if n == 0 { "" } else { ";" });
                    labels.push_str(l);
                }
                for (n, k) in c.label_ids(item).iter().enumerate() {
                    let _ = write!(ids, "{}{k}", if n == 0 { "" } else { ";" });
                }
                let group = item.group.as_deref().unwrap_or_default();
                for field in [
                    v.name.as_str(),
                    split,
                    &id,
                    &item.rel,
                    &labels,
                    &ids,
                    group,
                    &sha,
                    "written",
                ] {
                    w.write_field(field).map_err(csv_err)?;
                }
                if video {
                    for field in super::video::item_columns(c, item) {
                        w.write_field(field).map_err(csv_err)?;
                    }
                }
                for table in &places {
                    let at = table.and_then(|t| t.get(i)?.as_deref());
                    w.write_field(at.unwrap_or_default()).map_err(csv_err)?;
                }
                w.write_record(None::<&[u8]>).map_err(csv_err)?;
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
        if video {
            row.extend(std::iter::repeat_n(String::new(), 6));
        }
        row.extend(columns.iter().map(|_| String::new()));
        w.write_record(&row)
            .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
    }
    let f = w
        .into_inner()
        .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
    f.commit().map_err(io_err(&p))
}

/// Writes `bytes` at `p` (`rel` in OUT), unless an earlier build's file
/// there (at most 1 MiB) holds exactly them: reading it back costs less than
/// a new file and a rename, and leaves what did not change as it was.
fn write_unless_there(
    guard: &super::outdir::OutGuard,
    rel: &str,
    p: &Path,
    bytes: &[u8],
) -> Result<FileSums> {
    const COMPARED: usize = 1 << 20;
    if bytes.len() <= COMPARED
        && guard.previous_size(rel) == Some(bytes.len() as u64)
        && crate::output::holds_exactly(p, bytes)
    {
        return Ok(crate::checksum::sums_of(bytes));
    }
    write_atomic(p, bytes).map_err(io_err(p))
}

/// Writes `{variant}/hyperparameters.json` (listed in the manifest) and, last, `manifest.json`.
pub(super) fn write_manifest(
    out: &Path,
    m: &mut Manifest,
    guard: &super::outdir::OutGuard,
) -> Result<crate::checksum::FileSums> {
    for (name, v) in &m.variants.clone() {
        let rel = format!("{name}/hyperparameters.json");
        let p = under(out, &rel)?;
        guard.record(&rel)?;
        create_parent(&p)?;
        let text = serde_json::to_string_pretty(&v.hyperparameters).unwrap() + "\n";
        let sums = write_unless_there(guard, &rel, &p, text.as_bytes())?;
        m.files.insert(rel, sums);
    }
    // streamed: as one string it was the largest single allocation of a
    // 50,000-image build (46 MB of the peak, heaptrack)
    let p = out.join(MANIFEST);
    let mut f = AtomicFile::create(&p).map_err(io_err(&p))?;
    serde_json::to_writer_pretty(&mut f, &*m)
        .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
    std::io::Write::write_all(&mut f, b"\n").map_err(io_err(&p))?;
    f.commit().map_err(io_err(&p))
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutReport {
    pub out: std::path::PathBuf,
    pub files_checked: u64,
    pub records_checked: u64,
    pub problems: Vec<String>,
    pub ok: bool,
}

/// Files in the output's folders (every folder below `out`, also those of
/// outputs a later build no longer makes) that the manifest does not list:
/// an earlier build's file changed since (the build leaves it and says so),
/// a killed build's temporary, or someone else's (in object storage: an
/// earlier push's). Readers that list a folder (`train-*.tfrecord`, class
/// folders) or a prefix (a SageMaker channel) would read them. Files at the
/// top of `out` beside the manifest are not looked at. Stores that cannot be
/// listed (HTTP) are not looked at.
fn unlisted_files(
    out: &Path,
    files: &super::manifest::FileList,
    key: &dyn Fn(&str) -> String,
) -> Result<Vec<String>> {
    const SHOWN: usize = 1000;
    let listed: std::collections::HashSet<String> = files.keys().map(|f| key(f)).collect();
    let mut present: Vec<String> = Vec::new();
    if let Some(uri) = out.to_str().filter(|s| crate::storage::is_remote(s)) {
        let uri = crate::storage::Uri::parse(uri).map_err(Error::Usage)?;
        if !uri.can_list() {
            return Ok(Vec::new());
        }
        let bucket = crate::storage::bucket_for(&uri).map_err(|e| Error::Problem(e.to_string()))?;
        let objects = bucket
            .list(&uri.key)
            .map_err(|e| Error::Problem(e.to_string()))?;
        present.extend(
            objects
                .iter()
                .filter_map(|o| uri.relative(&o.key).map(String::from)),
        );
    } else {
        // every folder below OUT, without following links
        let mut folders: Vec<String> = std::fs::read_dir(out)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        while let Some(d) = folders.pop() {
            let Ok(entries) = std::fs::read_dir(out.join(&d)) else {
                continue;
            };
            for e in entries.flatten() {
                let rel = format!("{d}/{}", e.file_name().to_string_lossy());
                match e.file_type() {
                    Ok(t) if t.is_dir() => folders.push(rel),
                    Ok(_) => present.push(rel),
                    Err(_) => {}
                }
            }
        }
    }
    let mut found: Vec<String> = present
        .into_iter()
        .filter(|f| f.contains('/') && !listed.contains(f))
        .collect();
    found.sort();
    let n = found.len();
    let mut problems: Vec<String> = found
        .into_iter()
        .take(SHOWN)
        .map(|f| {
            format!(
                "{f}: not in the manifest (changed since an earlier build wrote it, left by a \
                 killed build or an earlier push, or someone else's); a reader that lists its \
                 folder would read it"
            )
        })
        .collect();
    if n > SHOWN {
        problems.push(format!(
            "... and {} more files not in the manifest",
            n - SHOWN
        ));
    }
    Ok(problems)
}

/// Re-checks everything a manifest claims: each file's size and SHA-256, every RecordIO dataset (framing, images, .idx, .lst) and its count.
pub fn verify_out(out: &Path, threads: usize, reporter: &dyn Reporter) -> Result<OutReport> {
    let mp = crate::files::join(out, Path::new(MANIFEST));
    let text = crate::files::read_to_string(&mp).map_err(io_err(&mp))?;
    // a manifest that does not parse is damage found (exit 1), as a changed
    // byte elsewhere is, not a usage error
    let m: Manifest = serde_json::from_str(&text).map_err(|e| {
        Error::Problem(format!(
            "{}: {e}: damaged, or not an imgprep manifest (nothing else was checked)",
            mp.display()
        ))
    })?;
    // a manifest imgprep wrote names plain paths inside the folder only;
    // nothing outside it is read on a manifest's word
    let plain = |f: &str| super::catalog::normalize_rel(f).as_deref() == Some(f);
    if let Some(f) = m.files.keys().chain(m.records.keys()).find(|f| !plain(f)) {
        return Err(Error::Problem(format!(
            "{}: lists {f:?}, which is not a plain path inside {}: not an imgprep manifest \
             (nothing was read)",
            mp.display(),
            out.display()
        )));
    }
    // `imgprep push` lays a dataset out as SageMaker channels by default:
    // its files are then under their channel keys, not the manifest's paths
    let channels = crate::files::is_remote(out)
        && m.files
            .keys()
            .find(|f| crate::storage::transfer::channel_key(f) != **f)
            .is_some_and(|f| {
                let (mirror, channel) = (
                    crate::files::join(out, Path::new(f)),
                    crate::files::join(out, Path::new(&crate::storage::transfer::channel_key(f))),
                );
                !crate::files::is_file(&mirror) && crate::files::is_file(&channel)
            });
    let key = |rel: &str| match channels {
        true => crate::storage::transfer::channel_key(rel),
        false => rel.to_string(),
    };
    let at = |rel: &str| crate::files::join(out, Path::new(&key(rel)));
    let mut rep = OutReport {
        out: out.to_path_buf(),
        ..Default::default()
    };
    reporter.begin("verify files", Some(m.files.len() as u64));
    for (f, want) in m.files.iter() {
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
            let base = format!("{vname}/recordio/{split}");
            // a missing or unreadable file is a problem found (already
            // reported by the file check above), not a reason to stop
            let r = match crate::verify::verify_rec_files(
                at(&rec),
                at(&format!("{base}.idx")),
                at(&format!("{base}.lst")),
                threads,
                &crate::report::Collect::default(),
            ) {
                Ok(r) => r,
                Err(e) => {
                    rep.problems
                        .push(format!("{rec}: records not checked: {e}"));
                    continue;
                }
            };
            rep.records_checked += r.records;
            rep.problems.extend(r.first_problems.iter().cloned());
            // manifests before the per-file count: one record per item
            let want = m.records.get(&rec).copied().unwrap_or(counts.items);
            if r.records != want {
                rep.problems.push(format!(
                    "{rec}: {} records, the manifest says {want}",
                    r.records
                ));
            }
        }
    }
    if let Some(d) = &m.detection {
        super::formats::verify_detection(&at, &m, d, &mut rep.problems);
    }
    rep.problems.extend(unlisted_files(out, &m.files, &key)?);
    for (f, &want) in m.records.iter().filter(|(f, _)| !f.ends_with(".rec")) {
        let (n, problems) = match crate::tfcheck::verify_tfrecord(&at(f)) {
            Ok(r) => r,
            Err(e) => {
                rep.problems.push(format!("{f}: records not checked: {e}"));
                continue;
            }
        };
        rep.records_checked += n;
        rep.problems.extend(problems);
        if n != want {
            rep.problems
                .push(format!("{f}: {n} records, the manifest says {want}"));
        }
    }
    check_claims(&m, &at, &mut rep.problems);
    rep.ok = rep.problems.is_empty();
    Ok(rep)
}

/// The manifest's numbers against each other and against the files they
/// describe (which the checks above hold to their sums): the class map,
/// the counts, the hyperparameters (and `hyperparameters.json`), the
/// records per split, and each `items.csv` row's class names and ids. A
/// manifest edited by hand, or half restored, fails here rather than
/// handing a trainer wrong numbers.
fn check_claims(m: &Manifest, at: &dyn Fn(&str) -> std::path::PathBuf, problems: &mut Vec<String>) {
    let n = m.num_classes;
    if m.labels.len() != n {
        problems.push(format!(
            "manifest.json: num_classes is {n}, but its labels list {} classes",
            m.labels.len()
        ));
    }
    let mut ids: Vec<usize> = m.labels.iter().map(|l| l.id).collect();
    ids.sort_unstable();
    if ids != (0..m.labels.len()).collect::<Vec<_>>() {
        problems.push("manifest.json: the labels' ids are not 0 .. N-1, each once".into());
    }
    let detection = m.detection.is_some();
    for (vname, v) in &m.variants {
        let hp = &v.hyperparameters;
        let mut want: Vec<(&str, String)> = vec![("num_classes", n.to_string())];
        if v.splits.contains_key(TRAIN) {
            want.push(("num_training_samples", v.num_training_samples.to_string()));
        }
        if let Some(shape) = &v.image_shape {
            want.push(("image_shape", shape.clone()));
        }
        if detection {
            want.push(("label_width", v.label_width.to_string()));
        }
        for (k, value) in want {
            if hp.get(k).is_some_and(|h| *h != value) {
                problems.push(format!(
                    "manifest.json: variant {vname}: hyperparameters {k} = {}, but the manifest says {value}",
                    hp[k]
                ));
            }
        }
        let hp_rel = format!("{vname}/hyperparameters.json");
        if m.files.contains_key(&hp_rel) {
            let file: Option<BTreeMap<String, String>> = crate::files::read(&at(&hp_rel))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if file.as_ref() != Some(hp) {
                problems.push(format!(
                    "{hp_rel}: not the hyperparameters the manifest lists for variant {vname}"
                ));
            }
        }
        for (split, c) in &v.splits {
            let per_class: u64 = c.per_class.values().sum();
            if !detection && !m.multi_label && per_class != c.items {
                problems.push(format!(
                    "manifest.json: {vname}/{split}: {} items, but its per-class counts add up to {per_class}",
                    c.items
                ));
            }
            if detection {
                continue;
            }
            if split == TRAIN && v.num_training_samples != c.items {
                problems.push(format!(
                    "manifest.json: {vname}: num_training_samples is {}, but {split} has {} items",
                    v.num_training_samples, c.items
                ));
            }
            // every classification output holds each item of the split once
            let rec = format!("{vname}/recordio/{split}.rec");
            if let Some(&r) = m.records.get(&rec) {
                if r != c.items {
                    problems.push(format!(
                        "manifest.json: {vname}/{split}: {} items, but {rec} holds {r} records",
                        c.items
                    ));
                }
            }
            let mut shards: BTreeMap<&str, u64> = BTreeMap::new();
            for (f, &r) in &m.records {
                let Some(rest) = f.strip_prefix(&format!("{vname}/")) else {
                    continue;
                };
                if let Some((dir, file)) = rest.split_once('/') {
                    if dir.starts_with("tfrecord-") && file.starts_with(&format!("{split}-")) {
                        *shards.entry(dir).or_default() += r;
                    }
                }
            }
            for (dir, r) in shards {
                if r != c.items {
                    problems.push(format!(
                        "manifest.json: {vname}/{split}: {} items, but the {dir} shards hold {r} records",
                        c.items
                    ));
                }
            }
        }
    }
    // items.csv: each written row's class names and ids as the label map has them
    if m.files.contains_key(ITEMS_CSV) {
        let names: HashMap<&str, usize> =
            m.labels.iter().map(|l| (l.name.as_str(), l.id)).collect();
        let Ok(mut r) = csv::Reader::from_path(at(ITEMS_CSV)) else {
            return;
        };
        let headers = r.headers().cloned().unwrap_or_default();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let (Some(lc), Some(ic), Some(sc)) = (col("labels"), col("label_ids"), col("status"))
        else {
            problems.push(format!(
                "{ITEMS_CSV}: no labels, label_ids or status column"
            ));
            return;
        };
        for (line, row) in r.records().enumerate() {
            let Ok(row) = row else { break };
            if row.get(sc) != Some("written") || row.get(lc).is_none_or(str::is_empty) {
                continue;
            }
            let (ls, is) = (row[lc].split(';'), row[ic].split(';'));
            if ls.clone().count() != is.clone().count() {
                continue; // a class name with a `;` in it
            }
            for (l, i) in ls.zip(is) {
                if names.get(l).map(|id| id.to_string()).as_deref() != Some(i) {
                    problems.push(format!(
                        "{ITEMS_CSV}:{}: class {l:?} with id {i}, which the manifest's labels do not map so",
                        line + 2
                    ));
                    return;
                }
            }
        }
    }
}
