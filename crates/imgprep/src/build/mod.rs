//! `imgprep build`: recipe -> sources -> catalog -> plan -> execute -> write
//! -> manifest. Every stage hands a plain value to the next.

pub mod boxes;
pub mod cache;
pub mod catalog;
mod formats;
mod manifest;
pub mod outdir;
pub mod plan;
mod prefetch;
pub mod preview;
pub mod publish;
mod reuse;
pub mod sources;
pub mod video;
mod write;

pub use catalog::{build_catalog, Catalog, LabelMap, Skip};
pub use manifest::{Manifest, SplitCounts, VariantManifest, MANIFEST};
pub use plan::{make_plan, Plan};
pub use sources::{read_sources, Item};
pub use write::{verify_out, OutReport};

use crate::checksum;
use crate::error::{Error, Result};
use crate::execute::ordered_map_batched;
use crate::image::{ImageFormat, ImageInfo, ImageSpec, Processor, SourceColor, SourceGeometry};
use crate::recipe::{self, ColorPolicy, OnError};
use crate::report::Reporter;
use cache::{Cache, SourceSha};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub out: PathBuf,
    pub threads: usize,
    /// Build only slice `I` of `N` of every variant and split.
    pub shard: Option<(usize, usize)>,
    /// Merge: take every item from these shard outputs' caches (no decoding);
    /// an item found in none of them is an error.
    pub merge_from: Vec<PathBuf>,
    /// Merge: more item caches to take items from (shards built with their
    /// own `cache_dir`, e.g. on other machines, in shared storage).
    pub merge_caches: Vec<PathBuf>,
    /// The item cache (default: [`cache::cache_dir_for`] the output folder).
    pub cache_dir: Option<PathBuf>,
    /// Build into a non-empty folder imgprep did not make.
    pub force: bool,
    /// Files kept with the dataset (path in OUT, bytes), written under the
    /// folder's lock and listed in the manifest (convert's recipe).
    pub extra_files: Vec<(String, Vec<u8>)>,
    /// Remove each item's cached image as soon as every output has it: the
    /// build's peak disk use is about its outputs' size (instead of outputs +
    /// cache), and the next build starts from scratch.
    pub drop_cache: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildSummary {
    pub out: PathBuf,
    /// Nothing changed since the last build: nothing was read or written.
    pub up_to_date: bool,
    /// Images decoded and encoded in this run.
    pub processed: u64,
    /// Images taken from the cache.
    pub cached: u64,
    /// Records copied as they were from the previous build's record files
    /// (same header, same item bytes), without reading their items.
    pub records_reused: u64,
    /// Bytes of cache entries of earlier builds removed (entries this
    /// build did not use).
    pub cache_pruned_bytes: u64,
    /// Where the item cache is (safe to delete; the next build re-decodes).
    pub cache_dir: PathBuf,
    pub seconds: f64,
    /// What was built: the manifest's numbers without its file and skip
    /// lists (those are in `OUT/manifest.json` and `OUT/items.csv`).
    #[serde(rename = "dataset", serialize_with = "manifest::summarize")]
    pub manifest: Manifest,
}

/// Items handed to a worker at a time (small images take microseconds each).
pub(crate) const ITEM_BATCH: usize = 16;
/// Objects read at a time from object storage.
const REMOTE_READS: usize = 16;
/// Where builds before 0.2 kept the item cache (inside the output folder).
const OLD_CACHE_DIR: &str = ".imgprep-cache";
pub(crate) const MISSING_IN_SHARDS: &str = "\0missing in shards";
/// Skipped items named one per line before the rest are only counted.
const SKIPS_SHOWN: usize = 10;

/// The result of preparing one item.
#[derive(Clone)]
enum Prepared {
    /// Ready: what the output image is, the SHA-256 of its source, and the
    /// source's upright size and orientation (what boxes are mapped with).
    Ok(ImageInfo, SourceSha, SourceGeometry),
    /// Unreadable or broken: an error under `on_error = "fail"`.
    Skipped(String),
    /// Left out by a policy (`color_policy = "skip"`): counted, never an error.
    Excluded(String),
}

/// What the prepare stage made of each item it was given, by catalog index.
/// A slot per catalog item (4 bytes) and the results side by side: at
/// 50,000 items a map's half-full nodes cost twice as much, and a list of
/// results per catalog item would cost 64 bytes for each item a shard
/// leaves to others.
struct PreparedItems {
    slot: Vec<u32>,
    done: Vec<Prepared>,
}

impl PreparedItems {
    const NONE: u32 = u32::MAX;

    fn new(items: usize) -> PreparedItems {
        assert!(items < Self::NONE as usize, "fewer than 2^32 - 1 items");
        PreparedItems {
            slot: vec![Self::NONE; items],
            done: Vec::new(),
        }
    }

    fn get(&self, i: &usize) -> Option<&Prepared> {
        match self.slot.get(*i) {
            Some(&k) if k != Self::NONE => Some(&self.done[k as usize]),
            _ => None,
        }
    }

    /// Sets (or replaces) item `i`'s result.
    fn insert(&mut self, i: usize, p: Prepared) {
        match self.slot[i] {
            Self::NONE => {
                self.slot[i] = self.done.len() as u32;
                self.done.push(p);
            }
            k => self.done[k as usize] = p,
        }
    }

    /// `(item, result)` in item order.
    fn iter(&self) -> impl Iterator<Item = (usize, &Prepared)> {
        self.slot
            .iter()
            .enumerate()
            .filter(|(_, &k)| k != Self::NONE)
            .map(|(i, &k)| (i, &self.done[k as usize]))
    }
}

/// What decides the bytes of every image a build makes: the tool's version,
/// the pixel pipeline's revision and the transform settings. Part of every
/// item cache key and of the build fingerprint, so a cache entry or an
/// earlier build's record is only reused when it would come out the same.
pub fn transform_key(spec: Option<&crate::image::ImageSpec>) -> String {
    // the pixel limit decides which images are made, not their bytes:
    // left out, so a new limit (or default) keeps every cache entry
    // (the build's stamp has it, see `build_in`)
    let spec = spec.map(|s| crate::image::ImageSpec {
        max_pixels: 0,
        ..s.clone()
    });
    format!(
        "{}|px{}|{spec:?}",
        env!("CARGO_PKG_VERSION"),
        crate::image::PIXELS_REVISION
    )
}

/// Runs a whole build.
pub fn build(
    recipe_path: &Path,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BuildSummary> {
    build_loaded(&recipe::load(recipe_path)?, opts, reporter)
}

/// [`build`] from a recipe already loaded (e.g. made by `imgprep convert`).
pub fn build_loaded(
    r: &recipe::LoadedRecipe,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BuildSummary> {
    let built = build_in(r, opts, reporter);
    // (replaced files still being removed: no space is held after a build)
    crate::output::finish_removals();
    built
}

fn build_in(
    r: &recipe::LoadedRecipe,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BuildSummary> {
    let start = std::time::Instant::now();
    let spec = r.recipe.transform.image_spec().map_err(Error::Usage)?;
    let cache_dir = opts
        .cache_dir
        .clone()
        .unwrap_or_else(|| cache::cache_dir_for(&opts.out));
    // an empty path is the current folder to the file system: a project
    // folder would become the cache (and be pruned)
    let empty = |p: &Path| p.as_os_str().is_empty();
    if opts.cache_dir.as_deref().is_some_and(empty) || opts.merge_caches.iter().any(|p| empty(p)) {
        return Err(Error::Usage(
            "the item cache folder is an empty path: name a folder (or leave the setting out \
             for the default one)"
                .into(),
        ));
    }
    // a folder the user named: before anything is read or written, so that
    // nothing of somebody else's is pruned
    if opts.cache_dir.is_some() {
        cache::claim(&cache_dir).map_err(Error::Usage)?;
    }
    // a first pass-through build from local folders: the images' prepare
    // step starts now, on the core the catalog leaves idle
    let prefetch = match spec.is_none()
        && opts.threads >= 2
        && opts.shard.is_none()
        && opts.merge_from.is_empty()
        && !opts.out.join(MANIFEST).exists()
    {
        true => {
            prefetch::Prefetch::start(prefetch::image_folders(r), r.recipe.transform.max_pixels)
        }
        false => None,
    };
    let sources = read_sources(r, opts.threads)?;
    // before any work: a source (or a folder link in one) must not be or
    // hold the output, or a rebuild would read its own outputs as inputs
    outdir::check_overlap(&opts.out, &sources::all_inputs(r, &sources))?;
    let mut catalog = build_catalog(r, sources, opts.threads, &|| reporter.cancelled())?;
    check_outputs(r, &catalog)?;
    let mut plan = make_plan(&r.recipe, &catalog)?;
    warn_split_drift(&r.recipe, &plan, &catalog, reporter);
    // a shard's class map is the whole dataset's (see finalize_labels below)
    let whole = opts.shard.map(|_| plan.needed());
    if let Some((i, n)) = opts.shard {
        if n == 0 || i >= n {
            return Err(Error::Usage(format!("--shard {i}/{n}: need 0 <= I < N")));
        }
        for v in &mut plan.variants {
            for idx in v.splits.values_mut() {
                let range = plan::shard_range(idx.len(), i, n);
                *idx = idx[range].to_vec();
            }
        }
    }
    let needed = plan.needed();
    let transform_key = transform_key(spec.as_ref());

    // Up to date? Same recipe, tool and inputs, and every output still there.
    // (The fingerprint's text is summed as it is made: whole, it was 5 MB
    // at 50,000 items.)
    let head = format!(
        "{}\n{}\n{:?}\nmax_pixels {}\n",
        transform_key, r.hash, opts.shard, r.recipe.transform.max_pixels
    );
    let catalog_prints = std::mem::take(&mut catalog.prints);
    let prints: Vec<(u64, i128)> = needed.iter().map(|&i| catalog_prints[i]).collect();
    drop(catalog_prints);
    // each item's boxes as the annotation files give them, digested once
    // (both fingerprints take them)
    let boxes = digest_boxes(&catalog, &needed, opts.threads);
    // the inputs by their files' sizes and times: the same again (and the
    // manifest written from it unchanged) means up to date
    let stamp = inputs_fingerprint(&head, &catalog, &needed, &boxes, &|k, _| {
        format!("{}\t{}", prints[k].0, prints[k].1)
    });
    let (guard, previous) = outdir::acquire(&opts.out, opts.force)?;
    let stamp_at = stamp_path(&cache_dir, &opts.out);
    if let Some((m, sha)) = previous {
        // every output file still the one the build left (an edit of the
        // same size, or a file put back, changes its identity)
        let now = outputs_identity(&opts.out, &m.files);
        let stamped = now.is_some_and(|now| {
            std::fs::read_to_string(&stamp_at)
                .is_ok_and(|t| t == format!("{stamp}\n{sha}\n{now}\n"))
        });
        if stamped {
            return Ok(BuildSummary {
                out: opts.out.clone(),
                up_to_date: true,
                processed: 0,
                cached: 0,
                records_reused: 0,
                cache_pruned_bytes: 0,
                cache_dir,
                seconds: start.elapsed().as_secs_f64(),
                manifest: m,
            });
        }
    }
    // the entries the last build of this output used, by their headers
    // (a listing of the cache folder, made while the keys are)
    let known_at = cache_dir
        .join(STAMPS)
        .join(reuse::table_name(&opts.out, "known"));
    // and the local pass-through sources it read (they have no entries)
    let sources_known_at = cache_dir
        .join(STAMPS)
        .join(reuse::table_name(&opts.out, "sources"));
    let local_passthrough = spec.is_none();
    // (no cache folder yet, as in a first build: nothing to list)
    let known = match cache_dir.is_dir() {
        true => {
            let (cache, at) = (Cache::new(cache_dir.clone()), known_at.clone());
            let sources_at = sources_known_at.clone();
            let most = needed.len();
            let lists = move || {
                let listing = cache.list();
                let sources = match local_passthrough {
                    true => Cache::sources_known(&sources_at, most),
                    false => Default::default(),
                };
                (cache.known(&at, &listing), listing, sources)
            };
            Some(
                std::thread::Builder::new()
                    .name("imgprep-known".into())
                    .spawn(lists)
                    .map_err(|e| Error::Usage(format!("cannot start a thread: {e}")))?,
            )
        }
        false => None,
    };
    if guard.owned {
        // the cache of builds before 0.2 (inside this output, which is ours)
        let _ = std::fs::remove_dir_all(opts.out.join(OLD_CACHE_DIR));
        remove_partials(&opts.out);
    }

    // Execute: every needed item once, into the cache (pass-through: header check only).
    let cache = Cache::new(cache_dir.clone());
    // entries older than this are an earlier build's (see `Cache::retain`;
    // files get their times from a coarser clock, so an entry made just
    // after it may look a few ms older: the owner notes, written before
    // any entry, keep those of a build running beside this one)
    let started = std::time::SystemTime::now();
    // each needed item's cache key, made once (prepare, write and the
    // cache's pruning all look entries up by it)
    let keys: Vec<String> = needed
        .iter()
        .zip(&prints)
        .map(|(&i, &(size, mtime))| {
            video::cache_key(
                &transform_key,
                &catalog.video,
                &catalog.items[i],
                size,
                mtime,
            )
        })
        .collect();
    if opts.cache_dir.is_some() {
        cache.note_owner(&opts.out, &keys);
    }
    let shard_caches: Vec<Cache> = opts
        .merge_from
        .iter()
        .map(|d| cache::cache_dir_for(d))
        .chain(opts.merge_caches.iter().cloned())
        .map(Cache::new)
        .collect();
    let merging = !opts.merge_from.is_empty();
    // items a shard skipped (a file that does not decode): skipped in the
    // merge too, for the same reason, not looked for in the caches
    let shard_skips: HashMap<String, String> = opts
        .merge_from
        .iter()
        .filter_map(|d| read_manifest(d))
        .flat_map(|m| m.skipped)
        .map(|s| (s.item, s.reason))
        .collect();
    // why a merge leaves out an item that no shard's cache holds: the
    // reason its shard gave for skipping it, or that it is missing
    let merged_skip = |i: usize| -> String {
        shard_skips
            .get(&catalog.items[i].rel)
            .cloned()
            .unwrap_or_else(|| MISSING_IN_SHARDS.into())
    };
    let (known, listing, sources_known) = match known {
        Some(t) => t
            .join()
            .map_err(|_| Error::Usage("the cache listing's thread panicked".into()))?,
        None => Default::default(),
    };
    let info = |key: &str| known.info(key).or_else(|| cache.info(key));
    // an image made before is held to today's pixel limit (not part of the
    // cache keys) as its decode would be: a lower limit skipped nothing
    // when the images came from the cache, where a clean build failed
    let hit = |info: ImageInfo, sha: SourceSha, geometry: SourceGeometry| -> Prepared {
        let output = spec.as_ref().map(|_| (info.width, info.height));
        match crate::image::check_limits(geometry.stored(), output, r.recipe.transform.max_pixels) {
            Ok(()) => Prepared::Ok(info, sha, geometry),
            Err(e) => Prepared::Skipped(e.to_string()),
        }
    };
    let mut prepared = PreparedItems::new(catalog.items.len());
    prepared.done.reserve_exact(needed.len());
    let mut processed = 0u64;
    let mut cached = 0u64;
    let color_policy = r.recipe.transform.color_policy;
    let mut excluded: BTreeMap<&str, u64> = BTreeMap::new();
    let early = prefetch.map(prefetch::Prefetch::finish).unwrap_or_default();
    reporter.begin("prepare", Some(needed.len() as u64));
    let max_pixels = r.recipe.transform.max_pixels;
    // pass-through with an output of decoded pixels: each source decoded in
    // full now, as that output's writer will (see Format::decodes_sources)
    let full_decode = spec.is_none()
        && r.recipe
            .outputs
            .iter()
            .any(|o| formats::for_output(o, catalog.detection).decodes_sources());
    let decodes = |p: &mut Processor, data: &[u8]| -> std::result::Result<(), String> {
        let s = ImageSpec {
            max_pixels,
            ..ImageSpec::default()
        };
        p.decode(data, &s)
            .and_then(|d| p.transform(d, &s))
            .map(drop)
            .map_err(|e| e.to_string())
    };
    // re-encoded sources of several frames: each becomes its first frame
    let animated: std::sync::Mutex<(u64, Vec<String>)> = Default::default();
    let work = |p: &mut Processor,
                (i, (size, mtime), key): (usize, (u64, i128), &str)|
     -> (usize, Prepared, bool) {
        // asked to stop: the items handed out already are not made (a
        // window of large images took seconds); consume returns at once
        if reporter.cancelled() {
            return (i, Prepared::Skipped("interrupted".into()), false);
        }
        let item = &catalog.items[i];
        let read = |p: &Path| {
            crate::files::check_image_size(size, max_pixels)
                .and_then(|()| crate::files::read_sized(p, size))
                .map_err(|e| e.to_string())
        };
        // into the cache: the item is ready, or skipped when the cache cannot be written
        let store =
            |key: &str, info: ImageInfo, sha: SourceSha, geometry: SourceGeometry, bytes: &[u8]| {
                match cache.put(key, &info, &sha, &geometry, bytes) {
                    Ok(()) => Prepared::Ok(info, sha, geometry),
                    Err(e) => Prepared::Skipped(format!("cache write failed: {e}")),
                }
            };
        match &spec {
            // pass-through, local: a header check now, the bytes at write time
            None if !crate::files::is_remote(&item.path) => {
                let done = early.get(&item.path, (size, mtime)).cloned();
                // the file as the last build left it: its header check and
                // SHA-256 from then
                let (mut prepared, hit) = match done {
                    Some(done) => (done, false),
                    None => match sources_known.info(key) {
                        Some((info, sha, geometry)) => (hit(info, sha, geometry), true),
                        None => (
                            prefetch::passthrough(p, &item.path, size, max_pixels),
                            false,
                        ),
                    },
                };
                if full_decode && matches!(prepared, Prepared::Ok(..)) {
                    if let Err(e) = read(&item.path).and_then(|d| decodes(p, &d)) {
                        prepared = Prepared::Skipped(e);
                    }
                }
                (i, prepared, hit)
            }
            // pass-through from object storage: the checked bytes go to the
            // cache, so each object is fetched once (and not again on re-runs)
            None => {
                if let Some((info, sha, geometry)) = info(key) {
                    return (i, hit(info, sha, geometry), true);
                }
                let data = match read(&item.path) {
                    Ok(d) => d,
                    Err(e) => return (i, Prepared::Skipped(e), false),
                };
                match p.probe(&data, r.recipe.transform.max_pixels) {
                    Ok(info) => {
                        if full_decode {
                            if let Err(e) = decodes(p, &data) {
                                return (i, Prepared::Skipped(e), false);
                            }
                        }
                        let geometry = crate::image::source_geometry(&data, &info);
                        let sha = checksum::sha256(&data);
                        (i, store(key, info, sha, geometry, &data), false)
                    }
                    Err(e) => (i, Prepared::Skipped(e.to_string()), false),
                }
            }
            Some(spec) => {
                if let Some((info, sha, geometry)) = info(key) {
                    return (i, hit(info, sha, geometry), true);
                }
                for sc in &shard_caches {
                    // the shard's entry as it is (a link, not a copy: merges of
                    // shards in shared storage read each image once, when written)
                    match cache.adopt(sc, key) {
                        Some(Ok((info, sha, geometry))) => {
                            return (i, Prepared::Ok(info, sha, geometry), true)
                        }
                        Some(Err(e)) => {
                            let why = format!("cache write failed: {e}");
                            return (i, Prepared::Skipped(why), false);
                        }
                        None => {}
                    }
                }
                if merging {
                    return (i, Prepared::Skipped(merged_skip(i)), false);
                }
                let data = match read(&item.path) {
                    Ok(d) => d,
                    Err(e) => return (i, Prepared::Skipped(e), false),
                };
                let mut out = Vec::new();
                match p.process_with_geometry(&data, spec, &mut out) {
                    Ok((info, geometry)) => {
                        if crate::image::is_animated(&data) {
                            let mut a = animated.lock().unwrap();
                            a.0 += 1;
                            if a.1.len() < SKIPS_SHOWN {
                                a.1.push(item.rel.clone());
                            }
                        }
                        let sha = checksum::sha256(&data);
                        (i, store(key, info, sha, geometry, &out), false)
                    }
                    Err(e) => (i, Prepared::Skipped(e.to_string()), false),
                }
            }
        }
    };
    let init = || Processor::new().expect("libjpeg-turbo initialises");
    // frames of videos: decoded per chunk, below
    let is_frame = |i: usize| catalog.items[i].frame.is_some();
    let inputs = needed
        .iter()
        .copied()
        .zip(prints.iter().copied())
        .zip(keys.iter().map(|k| k.as_str()))
        .map(|((i, print), key)| (i, print, key))
        .filter(|&(i, ..)| !is_frame(i));
    // objects from a store: more requests in flight than cores
    let remote = crate::files::any_remote(needed.iter().map(|&i| catalog.items[i].path.as_path()));
    let (threads, batch) = if remote {
        (opts.threads.max(REMOTE_READS), 1)
    } else {
        (opts.threads, ITEM_BATCH)
    };
    // pass-through: the stored formats each output's readers decode
    let readers: Vec<(&[ImageFormat], &str)> = match spec {
        Some(_) => Vec::new(),
        None => r
            .recipe
            .outputs
            .iter()
            .filter_map(|o| formats::for_output(o, catalog.detection).stored_formats())
            .collect(),
    };
    // a pass-through TIFF's first IFD: from the file, or from the cache
    // entry of an object (fetched once, into the cache)
    let tiff_for_mxnet = |i: usize| -> bool {
        let path = &catalog.items[i].path;
        match crate::files::is_remote(path) {
            false => crate::image::mxnet_reads_tiff_file(path),
            true => needed
                .binary_search(&i)
                .ok()
                .and_then(|k| cache.get(&keys[k]))
                .is_some_and(|(.., bytes)| {
                    crate::image::mxnet_reads_tiff(std::io::Cursor::new(&bytes))
                }),
        }
    };
    let mut consume = |(i, mut prep, hit, advance): (usize, Prepared, bool, bool)| -> Result<()> {
        crate::report::check_cancelled(reporter)?;
        if let Prepared::Ok(info, ..) = &prep {
            if let Some((_, reader)) = readers.iter().find(|(ok, _)| !ok.contains(&info.format)) {
                prep = Prepared::Skipped(format!(
                    "a {} file, stored as it is (encoding = \"passthrough\"), which {reader} \
                     cannot decode: re-encode it (encoding = \"jpg\" or \"png\")",
                    info.format.name().to_uppercase()
                ));
            }
        }
        // of TIFF, MXNet reads only some compressions (its first IFD says)
        if let Prepared::Ok(info, ..) = &prep {
            if info.format == ImageFormat::Tiff
                && readers.iter().any(|r| r.0 == crate::image::MXNET_DECODES)
                && !tiff_for_mxnet(i)
            {
                prep = Prepared::Skipped(
                    "a TIFF file, stored as it is (encoding = \"passthrough\"), whose compression \
                     MXNet's image decoder cannot read (it reads uncompressed, LZW and PackBits \
                     TIFFs): re-encode it (encoding = \"jpg\" or \"png\")"
                        .into(),
                );
            }
        }
        if let Prepared::Ok(info, ..) = &prep {
            if color_policy == ColorPolicy::Skip && info.source != SourceColor::Rgb {
                *excluded.entry(info.source.name()).or_insert(0u64) += 1;
                prep = Prepared::Excluded(format!(
                    "{} source (transform.color_policy = \"skip\")",
                    info.source.name()
                ));
            }
        }
        match (&prep, hit) {
            (Prepared::Excluded(_), _) => {}
            (Prepared::Ok(..), true) => cached += 1,
            (Prepared::Ok(..), false) => processed += 1,
            (Prepared::Skipped(why), _) => {
                let item = &catalog.items[i];
                if why == MISSING_IN_SHARDS {
                    // a file written after the last shard was built: the
                    // shards are older than the sources, not lost
                    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
                    let built = opts
                        .merge_from
                        .iter()
                        .filter_map(|d| modified(&d.join(MANIFEST)))
                        .max();
                    if let (Some(changed), Some(built)) = (modified(&item.path), built) {
                        if changed > built {
                            return Err(Error::Usage(format!(
                                "{} ({}): in none of the shards' item caches, and changed or added \
                                 after the shards were built: build the shards again from the \
                                 sources as they are now, then merge",
                                item.path.display(),
                                item.origin,
                            )));
                        }
                    }
                    return Err(Error::Usage(format!(
                        "{} ({}): in none of the shards' item caches (give every shard's output \
                         folder; shards are merged on the machine that built them, from the folders \
                         they were built in, with the same IMGPREP_CACHE_DIR, as their caches live \
                         under {}; or the file changed since its shard was built)",
                        item.path.display(),
                        item.origin,
                        cache::cache_root().join("items").display()
                    )));
                }
                if r.recipe.on_error == OnError::Fail {
                    return Err(Error::Problem(format!(
                        "{} ({}): {why} (set on_error = \"skip\" to leave such items out)",
                        item.path.display(),
                        item.origin
                    )));
                }
            }
        }
        prepared.insert(i, prep);
        if advance {
            reporter.advance(1);
        }
        crate::report::check_cancelled(reporter)
    };
    ordered_map_batched(
        inputs,
        batch,
        threads,
        threads * 4 * batch,
        init,
        work,
        |(i, prep, hit)| consume((i, prep, hit, true)),
    )?;
    // (its memory is not kept through the writing)
    drop(early);
    if let Some(spec) = spec.as_ref().filter(|_| !catalog.video.is_empty()) {
        let frames: Vec<(usize, (u64, i128))> = needed
            .iter()
            .copied()
            .zip(prints.iter().copied())
            .filter(|&(i, _)| is_frame(i))
            .collect();
        let done = video::prepare(
            &catalog,
            &frames,
            spec,
            &cache,
            &shard_caches,
            merging.then_some(&merged_skip as &(dyn Fn(usize) -> String + Sync)),
            &transform_key,
            opts.threads,
            &|n| reporter.advance(n),
        )?;
        for (i, (prep, hit)) in done {
            consume((i, prep, hit, false))?;
        }
    }
    reporter.end();
    let (n, names) = animated.into_inner().unwrap();
    if n > 0 {
        let mut text = format!(
            "{n} animated source(s) (GIF, WebP or APNG of several frames): each is stored as its \
             first frame:"
        );
        crate::report::name_first(&mut text, names.iter(), SKIPS_SHOWN, "");
        if n as usize > names.len() {
            text.push_str(&format!("\n  ... and {} more", n as usize - names.len()));
        }
        reporter.warn(&text);
    }
    for (kind, n) in &excluded {
        reporter.warn(&format!(
            "skipped {n} {kind} source(s) (transform.color_policy = \"skip\"); listed in the manifest"
        ));
    }
    // The items written, and the label map: exactly their classes.
    let is_ok =
        |prepared: &PreparedItems, i: &usize| matches!(prepared.get(i), Some(Prepared::Ok(..)));
    let mut written: Vec<usize> = needed
        .iter()
        .copied()
        .filter(|i| is_ok(&prepared, i))
        .collect();
    // Boxes: checked and moved into output pixels, before anything is written.
    let box_report = if catalog.detection {
        let rep = boxes::resolve(
            &mut catalog,
            &written,
            &mut prepared,
            spec.as_ref(),
            &r.recipe.boxes,
            r.recipe.on_error,
            &r.recipe
                .outputs
                .iter()
                .map(|o| formats::for_output(o, true))
                .filter(|f| !f.flags_crowd())
                .map(|f| f.name())
                .collect::<Vec<_>>(),
        )?;
        written.retain(|i| is_ok(&prepared, i));
        if r.recipe.boxes.empty_images == recipe::EmptyPolicy::Drop {
            for &i in &written {
                if catalog.items[i].labels.is_empty() {
                    prepared.insert(
                        i,
                        Prepared::Excluded("no box left (boxes.empty_images = \"drop\")".into()),
                    );
                }
            }
            written.retain(|i| is_ok(&prepared, i));
        }
        report_boxes(&rep, reporter);
        let declared = &catalog.boxes.declared_classes;
        if !declared.is_empty() && r.recipe.labels.names.is_none() {
            let sorted_ids: Vec<&String> = catalog.labels.entries.iter().map(|e| &e.name).collect();
            let in_source: Vec<&String> =
                declared.iter().filter(|c| sorted_ids.contains(c)).collect();
            if in_source != sorted_ids || in_source.len() != declared.len() {
                reporter.warn(&format!(
                    "class ids are the sorted names of the classes with boxes ({}), not the \
                     source's own list ({}): set labels.names to that list to keep its ids",
                    sorted_ids
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    declared.join(", ")
                ));
            }
        }
        Some(rep)
    } else {
        None
    };
    match &whole {
        // a shard: the classes of every shard's items (those of the others
        // as catalogued; they are prepared elsewhere), so that a class has
        // the same id in each shard's outputs, as in the merged one
        Some(all) => catalog.finalize_labels(all.iter().copied().filter(|i| {
            prepared
                .get(i)
                .is_none_or(|p| matches!(p, Prepared::Ok(..)))
        })),
        None => catalog.finalize_labels(written.iter().copied()),
    }
    if catalog.detection && written.iter().all(|&i| catalog.items[i].labels.is_empty()) {
        let first = prepared.iter().find_map(|(i, p)| match p {
            Prepared::Skipped(why) | Prepared::Excluded(why) => {
                Some(format!(" (first skipped: {}: {why})", catalog.items[i].rel))
            }
            Prepared::Ok(..) => None,
        });
        // nothing prepared at all: the split left everything out
        let first = first.or_else(|| {
            plan.skipped.first().map(|s| {
                format!(
                    " ({} of {} images left out by the split, first: {}: {})",
                    plan.skipped.len(),
                    catalog.items.len(),
                    s.item,
                    s.reason
                )
            })
        });
        return Err(Error::Problem(format!(
            "no box is left to write: {} of {} images prepared, none with a box that passed the \
             checks{}. Nothing was written to {}",
            written.len(),
            needed.len(),
            first.unwrap_or_default(),
            opts.out.display()
        )));
    }
    if catalog.labels.is_empty() && !r.recipe.labels.unlabelled {
        return Err(Error::Problem(format!(
            "no labelled item is left to write ({} of {} items prepared; the others were \
             skipped or left out by the colour policy): num_classes would be 0. Nothing was written \
             to {}",
            written.len(),
            needed.len(),
            opts.out.display()
        )));
    }
    check_names(r, &catalog, &written)?;
    check_collisions(r, &catalog, &plan, spec.as_ref(), &written, Some(&guard))?;
    warn_before_writing(r, &catalog, &plan, spec.as_ref(), &written, reporter);
    let folders: Vec<String> = plan
        .variants
        .iter()
        .flat_map(|v| {
            r.recipe.outputs.iter().map(|o| {
                format!(
                    "{}/{}",
                    v.name,
                    formats::for_output(o, catalog.detection).folder()
                )
            })
        })
        .collect();
    guard.refuse_files_in_new_folders(&folders)?;

    guard.begin_writing()?;
    // the cache keeps what this build used, nothing older: the entries of
    // earlier builds are removed while the outputs are written (no output
    // reads them)
    let pruning = {
        let keys = keys.clone();
        let dir = cache.dir().to_path_buf();
        let (shared, out) = (opts.cache_dir.is_some(), opts.out.clone());
        std::thread::Builder::new()
            .name("imgprep-prune".into())
            .spawn(move || {
                let cache = Cache::new(dir);
                // a folder given with --cache-dir may serve other outputs
                // (shards) too: what their last builds used stays
                let others = if shared {
                    cache.other_owners(&out)
                } else {
                    Vec::new()
                };
                let keep: std::collections::HashSet<&str> =
                    keys.iter().chain(&others).map(|k| k.as_str()).collect();
                cache.retain(&keep, started, &listing).1
            })
            .map_err(|e| Error::Usage(format!("cannot start a thread: {e}")))?
    };
    let ctx = write::Context {
        guard: &guard,
        recipe: r,
        catalog: &catalog,
        plan: &plan,
        spec: spec.as_ref(),
        cache: &cache,
        needed: &needed,
        prints: &prints,
        keys: &keys,
        prepared: &prepared,
        out: &opts.out,
        threads: opts.threads,
        made_dirs: Default::default(),
        relinked: (0..needed.len().div_ceil(64))
            .map(|_| Default::default())
            .collect(),
        evict: None,
        reused: Default::default(),
        tables: Default::default(),
        reporter,
    };
    let ctx = if opts.drop_cache {
        // entries the last builds of other outputs sharing the folder used
        // stay (their next builds would make them again)
        let others = match opts.cache_dir.is_some() {
            true => cache.other_owners(&opts.out),
            false => Vec::new(),
        };
        let others: std::collections::HashSet<&str> = others.iter().map(String::as_str).collect();
        write::with_eviction(ctx, &others)
    } else {
        ctx
    };
    let (written, records, locations, left_out) = write::write_outputs(&ctx, reporter)?;
    let ctx_reused = ctx.reused.load(std::sync::atomic::Ordering::Relaxed);
    // the inputs by their content (the SHA-256 of every source): the
    // manifest's fingerprint is the same for the same data wherever and
    // whenever its files were copied
    let fp = inputs_fingerprint(
        &head,
        &catalog,
        &needed,
        &boxes,
        &|_, i| match prepared.get(&i) {
            Some(Prepared::Ok(_, sha, _)) => checksum::Sha256Sum(*sha).to_string(),
            Some(Prepared::Skipped(why) | Prepared::Excluded(why)) => format!("not used: {why}"),
            None => "-".into(),
        },
    );
    let mut manifest = write::manifest(&ctx, written, fp, opts.shard, reporter);
    manifest.records = records;
    if let Some(rep) = box_report {
        manifest.detection = Some(write::detection_manifest(&ctx, rep, &left_out));
    }
    let items_csv = write::write_items_table(&ctx, &manifest, &locations)?;
    manifest.files.insert(write::ITEMS_CSV.into(), items_csv);
    if !catalog.video.is_empty() {
        let p = write::under(&opts.out, video::FRAMES_CSV)?;
        guard.record(video::FRAMES_CSV)?;
        let sums = video::write_frame_table(&p, &catalog.video)?;
        manifest.files.insert(video::FRAMES_CSV.into(), sums);
        manifest.video = Some(video::manifest_section(&catalog, &prepared));
        // a labels file of thousands of ranges that match no frame: a few
        // said word for word, the rest counted
        const SHOWN: usize = 20;
        for w in catalog.video.warnings.iter().take(SHOWN) {
            reporter.warn(w);
        }
        if catalog.video.warnings.len() > SHOWN {
            reporter.warn(&format!(
                "... and {} more warnings about the recordings and their ranges",
                catalog.video.warnings.len() - SHOWN
            ));
        }
    }
    // files the caller keeps with the dataset (convert's recipe)
    for (rel, bytes) in &opts.extra_files {
        let p = write::under(&opts.out, rel)?;
        guard.record(rel)?;
        let sums = crate::output::write_atomic(&p, bytes).map_err(Error::io(&p))?;
        manifest.files.insert(rel.clone(), sums);
    }
    let manifest_sums = write::write_manifest(&opts.out, &mut manifest, &guard)?;
    // files of the previous build (or of a killed one) that this one did not
    // write; see OutGuard::finish
    let sources: std::cell::OnceCell<std::collections::HashSet<(u64, u64)>> = Default::default();
    let links_a_source = |m: &std::fs::Metadata| {
        use std::os::unix::fs::MetadataExt;
        m.nlink() > 1
            && sources
                .get_or_init(|| {
                    catalog
                        .items
                        .iter()
                        .filter(|it| !crate::files::is_remote(&it.path))
                        .filter_map(|it| std::fs::metadata(&it.path).ok())
                        .map(|s| (s.dev(), s.ino()))
                        .collect()
                })
                .contains(&(m.dev(), m.ino()))
    };
    let left = guard.finish(&manifest.files, &links_a_source);
    report_left(&opts.out, &left, reporter);
    report_skips(&manifest, reporter);
    // (a shard holds a slice of each split, whose shares rounding moves:
    // its warning is the whole plan's, as the merge's is the dataset's)
    match opts.shard {
        Some(_) => warn_ratio_drift(&plan, &catalog, &plan.ratios, 0, reporter),
        None => warn_ratio_drift(
            &plan,
            &catalog,
            &manifest.split_ratios,
            manifest.skipped.len(),
            reporter,
        ),
    }
    let cache_pruned_bytes = pruning.join().unwrap_or(0);
    // the stamp that makes the next identical build "up to date", and the
    // record tables of the files written (neither after --drop-cache, whose
    // next build starts from scratch)
    if ctx.evict.is_none() {
        cache::tag(cache.dir());
        // sources this build linked into outputs, by their prints after the link
        let linked = |k: usize| {
            ctx.relinked[k / 64].load(std::sync::atomic::Ordering::Relaxed) & (1 << (k % 64)) != 0
        };
        let any = ctx
            .relinked
            .iter()
            .any(|b| b.load(std::sync::atomic::Ordering::Relaxed) != 0);
        // only the change time may differ (same size, else the print stays
        // as it was and the next build looks again)
        let print_after = |k: usize, i: usize| {
            let before = prints[k];
            match linked(k) {
                true => crate::files::fingerprint(&catalog.items[i].path)
                    .ok()
                    .filter(|after| after.0 == before.0)
                    .unwrap_or(before),
                false => before,
            }
        };
        // local pass-through sources, keyed by their prints as this build
        // leaves them (after its links), noted as the prints are taken
        let notes = std::cell::RefCell::new(match local_passthrough {
            true => cache.known_writer(&sources_known_at),
            false => {
                let _ = std::fs::remove_file(&sources_known_at);
                None
            }
        });
        let note = |k: usize, i: usize, (size, print): (u64, i128)| {
            let mut notes = notes.borrow_mut();
            let Some(w) = notes.as_mut() else { return };
            if ctx.cached(i) || catalog.items[i].frame.is_some() {
                return;
            }
            if let Some(&Prepared::Ok(info, sha, geometry)) = prepared.get(&i) {
                let key = match (size, print) == prints[k] {
                    true => std::borrow::Cow::Borrowed(keys[k].as_str()),
                    false => std::borrow::Cow::Owned(video::cache_key(
                        &transform_key,
                        &catalog.video,
                        &catalog.items[i],
                        size,
                        print,
                    )),
                };
                w.add(&key, (info, sha, geometry));
            }
        };
        let stamp = match any {
            false => {
                for (k, &i) in needed.iter().enumerate() {
                    note(k, i, prints[k]);
                }
                stamp
            }
            true => inputs_fingerprint(&head, &catalog, &needed, &boxes, &|k, i| {
                let p = print_after(k, i);
                note(k, i, p);
                format!("{}\t{}", p.0, p.1)
            }),
        };
        if let Some(w) = notes.into_inner() {
            w.finish();
        }
        let _ = std::fs::create_dir_all(cache.dir().join(STAMPS));
        if let Some(files) = outputs_identity(&opts.out, &manifest.files) {
            let _ = crate::output::write_atomic(
                &stamp_at,
                format!("{stamp}\n{}\n{files}\n", manifest_sums.sha256).as_bytes(),
            );
        }
        let used = needed.iter().zip(&keys).filter(|(&i, _)| ctx.cached(i));
        cache.save_known(
            &known_at,
            used.filter_map(|(i, k)| match prepared.get(i) {
                Some(&Prepared::Ok(info, sha, geometry)) => {
                    Some((k.as_str(), (info, sha, geometry)))
                }
                _ => None,
            }),
        );
    } else {
        let _ = std::fs::remove_file(&known_at);
        let _ = std::fs::remove_file(&sources_known_at);
        // nothing of this build is kept for the next
        cache.forget_owner(&opts.out);
    }
    let tables = std::mem::take(&mut *ctx.tables.lock().unwrap());
    reuse::prune(cache.dir(), &opts.out, tables.iter().map(|t| t.as_str()));
    Ok(BuildSummary {
        out: opts.out.clone(),
        up_to_date: false,
        processed,
        cached,
        records_reused: ctx_reused,
        cache_pruned_bytes,
        cache_dir,
        seconds: start.elapsed().as_secs_f64(),
        manifest,
    })
}

/// The digest of each needed item's annotation (its `Debug` text, which
/// fingerprints have always taken), `None` for items without one. Made on
/// `threads` threads for many items (0.2 s of a 50,000-image VOC build on
/// one); each thread writes its part in place, with one text buffer.
fn digest_boxes(catalog: &Catalog, needed: &[usize], threads: usize) -> Vec<Option<[u8; 16]>> {
    use std::fmt::Write;
    let mut boxes = vec![None; needed.len()];
    let threads = if needed.len() < crate::execute::FEW_ITEMS {
        1
    } else {
        threads
    };
    crate::execute::in_parts(needed, &mut boxes, threads, |needed, boxes| {
        let mut text = String::new();
        for (&i, d) in needed.iter().zip(boxes) {
            if let Some(a) = &catalog.items[i].annotation {
                text.clear();
                write!(text, "{a:?}").expect("a String takes any text");
                let sum = checksum::sha256(text.as_bytes());
                *d = Some(sum[..16].try_into().expect("16 of 32 bytes"));
            }
        }
    });
    boxes
}

/// Settings that cannot work together, refused before any work (by a build
/// and by a plan preview alike, so a Spark driver fails before its tasks):
/// pass-through for video frames, box formats for class labels,
/// class-label formats for boxes.
fn check_outputs(r: &recipe::LoadedRecipe, catalog: &Catalog) -> Result<()> {
    use recipe::{OutputSpec, TfPreset};
    let spec = r.recipe.transform.image_spec().map_err(Error::Usage)?;
    // (im2rec.py keeps the first label of each line without --pack-label;
    // a build's numbers (label_width, num_classes) describe all of them)
    if catalog.multi_label
        && r.recipe
            .outputs
            .iter()
            .any(|o| matches!(o, recipe::OutputSpec::Recordio { pack_label: false }))
    {
        return Err(Error::Usage(format!(
            "{}: the dataset is multi-label, but its recordio output has no pack_label = true: \
             each record would keep only its first label while label_width says {}; set \
             pack_label = true under that [[outputs]]",
            r.path.display(),
            catalog.labels.len()
        )));
    }
    if !catalog.video.is_empty() && spec.is_none() {
        return Err(Error::Usage(format!(
            "{}: transform.encoding = \"passthrough\" cannot apply to video frames (they have no \
             file of their own to pass through); use \"jpg\" or \"png\"",
            r.path.display()
        )));
    }
    for o in &r.recipe.outputs {
        let name = formats::for_output(o, catalog.detection).name();
        let wrong = match o {
            OutputSpec::Tfrecord { preset, .. } => {
                (*preset == TfPreset::ObjectDetection) != catalog.detection
            }
            OutputSpec::Recordio { .. } => false,
            o => o.needs_boxes() != catalog.detection,
        };
        if let OutputSpec::AugmentedManifest { attribute, push_to } = o {
            // SageMaker Ground Truth's rules for the label attribute
            if attribute.is_empty()
                || attribute.contains("-metadata")
                || attribute.ends_with("-ref")
            {
                return Err(Error::Usage(format!(
                    "{}: augmented-manifest attribute {attribute:?}: the box attribute's name must \
                     not be empty, contain \"-metadata\" or end in \"-ref\"",
                    r.path.display()
                )));
            }
            if let Some(p) = push_to {
                if !crate::storage::is_remote(p) {
                    return Err(Error::Usage(format!(
                        "{}: augmented-manifest push_to {p:?} is not an object-store URI \
                         (s3://bucket/prefix)",
                        r.path.display()
                    )));
                }
            }
        }
        if !wrong {
            continue;
        }
        let msg = if catalog.detection {
            let instead = match o {
                OutputSpec::Tfrecord { .. } => "preset = \"object-detection\"",
                _ => "sagemaker-detection, augmented-manifest, recordio, coco, yolo, voc or tfrecord with preset = \"object-detection\"",
            };
            format!(
                "output {name} holds class labels, but the sources give boxes (a detection \
                 dataset): use {instead}"
            )
        } else {
            format!(
                "output {name} holds boxes, but the sources give class labels: give a detection \
                 source (type = \"voc\", \"coco\", \"yolo\" or \"labelme\")"
            )
        };
        return Err(Error::Usage(format!("{}: {msg}", r.path.display())));
    }
    Ok(())
}

/// One summary of what the box checks did, with the first objects named.
fn report_boxes(rep: &boxes::BoxReport, reporter: &dyn Reporter) {
    let dropped: u64 = rep.dropped.values().sum();
    let changed: u64 = rep.changed.values().sum();
    if dropped == 0 && changed == 0 && rep.quirks.is_empty() && rep.images_dropped.is_empty() {
        return;
    }
    let mut text = format!(
        "boxes: {} of {} objects kept",
        rep.objects_kept, rep.objects_declared
    );
    for (why, n) in &rep.images_dropped {
        text.push_str(&format!("\n  images dropped {n}: {why}"));
    }
    for (why, n) in &rep.dropped {
        text.push_str(&format!("\n  dropped {n}: {why}"));
    }
    for (what, n) in &rep.changed {
        text.push_str(&format!("\n  {what}: {n}"));
    }
    for (kind, n) in &rep.quirks {
        text.push_str(&format!("\n  accepted {n}: {kind}"));
    }
    let lines = rep.objects.iter().map(|o| match o.class.as_str() {
        // (an object that could not be read may have no class)
        "" => format!("{}: {}", o.origin, o.what),
        class => format!("{}: {class} {}", o.origin, o.what),
    });
    crate::report::name_first(
        &mut text,
        lines,
        SKIPS_SHOWN,
        " (all listed in manifest.json)",
    );
    reporter.warn(&text);
}

/// A split that got a share of the items far from its ratio (few groups,
/// tiny classes) is worth a warning: the user asked for something else.
fn warn_split_drift(r: &recipe::Recipe, plan: &Plan, catalog: &Catalog, reporter: &dyn Reporter) {
    // names in [split.assign] that no item's group has (a typo, or another
    // case): their items would only show up as "not assigned"
    if plan.method == recipe::SplitMethod::Explicit {
        let have: std::collections::HashSet<&str> = catalog
            .items
            .iter()
            .filter_map(|i| i.group.as_deref())
            .collect();
        for (split, groups) in &r.split.assign {
            for g in groups.iter().filter(|g| !have.contains(g.as_str())) {
                let like: Vec<&&str> = have
                    .iter()
                    .filter(|h| h.eq_ignore_ascii_case(g) || h.trim() == g.trim())
                    .collect();
                let hint = match like.first() {
                    Some(h) => format!(" (did you mean {h:?}? groups are matched exactly)"),
                    None => String::new(),
                };
                reporter.warn(&format!(
                    "split.assign.{split} lists group {g:?}, which no item has{hint}"
                ));
            }
        }
    }
    // frames of one recording in several splits: neighbours are near
    // copies of each other, so evaluation would be optimistic
    if plan.method == recipe::SplitMethod::Stratified
        && catalog.items.iter().any(|i| i.frame.is_some())
    {
        reporter.warn(
            "split.method = \"stratified\" divides the frames of each recording among the splits: \
             neighbouring frames are near copies, so validation scores will be optimistic. \
             method = \"group\" keeps each session (its group) in one split",
        );
    }
    if !plan.kept.is_empty() {
        let n: usize = plan.kept.values().sum();
        let shown: Vec<String> = plan
            .kept
            .iter()
            .map(|(sp, k)| format!("{sp} {k}"))
            .collect();
        reporter.warn(&format!(
            "split.method = \"auto\": {n} items keep the split their source gives them ({}); the \
             other {} are divided by the ratios ({}). Set split.method to divide them all, or \
             \"source\" to take only the source's splits",
            shown.join(", "),
            catalog.items.len() - n,
            format!("{:?}", plan.method).to_lowercase()
        ));
    }
}

/// A split that got a share of the items written far from its ratio (few
/// groups, tiny classes, items skipped), or none at all of a share asked
/// for, is worth a warning: the user asked for something else. `ratios`
/// are the shares written (the manifest's), so that the warning and the
/// summary give the same numbers.
fn warn_ratio_drift(
    plan: &Plan,
    catalog: &Catalog,
    ratios: &BTreeMap<String, plan::SplitRatio>,
    skipped: usize,
    reporter: &dyn Reporter,
) {
    let groups: std::collections::BTreeSet<&str> = catalog
        .items
        .iter()
        .filter_map(|i| i.group.as_deref())
        .collect();
    // nothing written: the build says so itself (no ratio to warn about)
    if ratios.values().all(|r| r.achieved == 0.0) {
        return;
    }
    for (split, ratio) in ratios {
        let Some(want) = ratio.requested else {
            continue;
        };
        let empty = want > 0.0 && ratio.achieved == 0.0;
        if (ratio.achieved - want).abs() > plan::DRIFT_WARNING + 1e-9 || empty {
            let planned = plan.ratios.get(split).map(|r| r.achieved);
            let why = match plan.method {
                // the plan was near, the skipped items moved it
                _ if skipped > 0
                    && planned
                        .is_some_and(|p| (p - want).abs() < (ratio.achieved - want).abs()) =>
                {
                    format!(" ({skipped} items were skipped)")
                }
                recipe::SplitMethod::Group if !groups.is_empty() => format!(
                    " (whole groups are kept together and there are only {} groups)",
                    groups.len()
                ),
                _ => " (classes too small to split finely)".to_string(),
            };
            let what = match empty {
                true => format!(
                    "split {split} got no items, {:.1} % was asked for{why}: it has no files",
                    want * 100.0
                ),
                false => format!(
                    "split {split} got {:.1} % of the items, {:.1} % was asked for{why}",
                    ratio.achieved * 100.0,
                    want * 100.0
                ),
            };
            reporter.warn(&what);
        }
    }
}

/// Class names the folders output makes folders of must be plain folder
/// paths, and no class may take the names used for unlabelled items:
/// checked before anything is written.
fn check_names(r: &recipe::LoadedRecipe, catalog: &Catalog, written: &[usize]) -> Result<()> {
    let any_unlabelled = written.iter().any(|&i| catalog.items[i].labels.is_empty());
    for e in &catalog.labels.entries {
        if any_unlabelled && (e.name == "unlabelled" || e.name == "(unlabelled)") {
            return Err(Error::Usage(format!(
                "a class is named {:?}, the name imgprep gives items without a label, and there are \
                 such items: rename the class",
                e.name
            )));
        }
    }
    if r.recipe
        .outputs
        .iter()
        .any(|o| matches!(o, recipe::OutputSpec::Folders))
    {
        for &i in written {
            let item = &catalog.items[i];
            if let Some(class) = item.labels.first() {
                if catalog::normalize_rel(class).as_deref() != Some(class.as_str()) {
                    return Err(Error::Usage(format!(
                        "{}: class {class:?} cannot be a folder name in the folders output \
                         (empty, `.` or `..` parts, or a leading slash); nothing was written",
                        item.origin
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Two items whose files an output would write at one path (`a.png` and
/// `a.jpg` both re-encoded to `a.jpg`; `x/1.jpg` and `y/1.jpg` in one class
/// of the folders output, which keeps file names only; `a/b.jpg` and
/// `a_b.jpg` in VOC's flat JPEGImages; `a.png` and `a.jpg` passed through
/// beside one `a.json` or `a.txt`) are refused before anything is written,
/// naming both (the writers' own check would stop halfway). Each format
/// says how it names an item's files ([`formats::Format::item_name`]).
///
/// In a folder that held files before the build, an item's file whose
/// path holds a file no imgprep build wrote (a user's) is refused here as
/// well: found while writing, it left the previous dataset half-replaced
/// and without its manifest.
fn check_collisions(
    r: &recipe::LoadedRecipe,
    catalog: &Catalog,
    plan: &Plan,
    spec: Option<&crate::image::ImageSpec>,
    written: &[usize],
    guard: Option<&outdir::OutGuard>,
) -> Result<()> {
    let outputs: Vec<Box<dyn formats::Format + '_>> = r
        .recipe
        .outputs
        .iter()
        .map(|o| formats::for_output(o, catalog.detection))
        .collect();
    let mut is_written = vec![false; catalog.items.len()];
    for &i in written {
        is_written[i] = true;
    }
    for v in &plan.variants {
        // names held as 16 bytes of their SHA-256 (at 50,000 items the text
        // would be megabytes)
        let mut seen: std::collections::HashMap<[u8; 16], usize> = std::collections::HashMap::new();
        for (split, idx) in &v.splits {
            for &i in idx.iter().filter(|&&i| is_written[i]) {
                let item = &catalog.items[i];
                let out_rel = write::out_rel(&item.rel, spec);
                let class = item.labels.first().map_or("unlabelled", String::as_str);
                for (n, f) in outputs.iter().enumerate() {
                    let Some(name) = f.item_name(&out_rel, class) else {
                        continue;
                    };
                    if let Some(long) = too_long(&name, &out_rel) {
                        return Err(Error::Usage(format!(
                            "{} ({}): the {} output would name a file or folder {:?}, {} \
                             bytes; file systems take 255 (and a side file's extension needs \
                             room): rename it. Nothing was written",
                            crate::report::cut(&item.rel, 200),
                            item.origin,
                            f.name(),
                            crate::report::cut(long, 60),
                            long.len()
                        )));
                    }
                    if let Some(guard) = guard.filter(|g| !g.replaces_freely()) {
                        for file in f.item_files(split, &out_rel, class) {
                            let rel = format!("{}/{}/{file}", v.name, f.folder());
                            if guard.somebodys(&rel) {
                                return Err(Error::Usage(format!(
                                    "{} is there already and no imgprep build wrote it: the {} \
                                     output would replace it with {} ({}); refusing (move it \
                                     away, or use --force to let the build replace files of its \
                                     outputs' names). Nothing was written",
                                    guard.path(&rel).display(),
                                    f.name(),
                                    item.rel,
                                    item.origin
                                )));
                            }
                        }
                    }
                    let scope = if f.one_folder() { "" } else { split.as_str() };
                    let sum = crate::checksum::sha256(format!("{n}\0{scope}\0{name}").as_bytes());
                    let hashed: [u8; 16] = sum[..16].try_into().expect("16 of 32 bytes");
                    if let Some(j) = seen.insert(hashed, i) {
                        let a = &catalog.items[j];
                        return Err(Error::Usage(format!(
                            "{} ({}) and {} ({}) would be written to one file of the {} output \
                             ({}/{split}: {name}); rename one of them. Nothing was written",
                            a.rel,
                            a.origin,
                            item.rel,
                            item.origin,
                            f.name(),
                            v.name
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The part of an output item's name (`/`-separated, from
/// [`formats::Format::item_name`]) that no file system can hold: over 255
/// bytes; a last part that is not the image's own file name is a stem the
/// format adds an extension to (`.json`, `.xml`, `.txt`, the image's), so
/// it may have 250.
fn too_long<'a>(name: &'a str, out_rel: &str) -> Option<&'a str> {
    let mut parts = name.split('/').peekable();
    while let Some(p) = parts.next() {
        let stem = parts.peek().is_none() && formats::file_name(out_rel) != p;
        let room = if stem { 250 } else { 255 };
        if p.len() > room {
            return Some(p);
        }
    }
    None
}

/// Warnings about what is about to be written: unlabelled items in a
/// labelled set, and JPEGs re-encoded with nothing else done to them.
fn warn_before_writing(
    r: &recipe::LoadedRecipe,
    catalog: &Catalog,
    plan: &Plan,
    spec: Option<&crate::image::ImageSpec>,
    written: &[usize],
    reporter: &dyn Reporter,
) {
    // items without a label in a split that has labelled ones (a split with
    // no label at all, such as a test set without answers, is meant)
    let is_written: std::collections::HashSet<usize> = written.iter().copied().collect();
    let unlabelled: std::collections::BTreeSet<usize> = plan
        .variants
        .iter()
        .flat_map(|v| v.splits.values())
        .filter(|idx| idx.iter().any(|&i| !catalog.items[i].labels.is_empty()))
        .flatten()
        .copied()
        .filter(|i| is_written.contains(i) && catalog.items[*i].labels.is_empty())
        .collect();
    // (images without boxes are background images: kept, or left out and counted)
    if let (false, false, Some(&first)) = (
        catalog.labels.is_empty(),
        catalog.detection,
        unlabelled.first(),
    ) {
        let first = &catalog.items[first];
        reporter.warn(&format!(
            "{} of {} items have no label and are written with label -1{} (first: {} from {})",
            unlabelled.len(),
            written.len(),
            if catalog.multi_label
                && r.recipe
                    .outputs
                    .iter()
                    .any(|o| matches!(o, recipe::OutputSpec::Recordio { pack_label: true }),)
            {
                " (an all-zero vector where labels are packed, pack_label)"
            } else {
                ""
            },
            first.rel,
            first.origin
        ));
    }
    if let Some(s) = spec {
        let plain = s.resize == crate::image::Resize::None && !s.center_crop;
        let jpegs = written
            .iter()
            .filter(|&&i| crate::files::has_jpeg_name(&catalog.items[i].rel))
            .count();
        let stores_encoded = r.recipe.outputs.iter().any(|o| {
            !matches!(
                o,
                recipe::OutputSpec::Tfrecord {
                    preset: recipe::TfPreset::Raw,
                    ..
                }
            )
        });
        if plain
            && stores_encoded
            && jpegs > 0
            && matches!(s.encoding, crate::image::Encoding::Jpeg { .. })
        {
            reporter.warn(&format!(
                "{jpegs} JPEG sources are decoded and re-encoded with no resize or crop, which \
                 loses a little quality; encoding = \"passthrough\" stores them as they are"
            ));
        }
    }
    // an augmented manifest's source-refs are S3 URIs only with push_to
    if r.recipe.outputs.iter().any(|o| {
        matches!(
            o,
            recipe::OutputSpec::AugmentedManifest { push_to: None, .. }
        )
    }) {
        reporter.warn(
            "augmented-manifest without push_to: its source-ref values are paths relative to the \
             output folder, which SageMaker cannot read (it needs s3:// URIs); set push_to = \
             \"s3://bucket/prefix\" to where the dataset will be pushed",
        );
    }
    // the folders output nests a class named "a/b" inside class "a"'s folder:
    // readers that take the first folder level as the class (torchvision's
    // ImageFolder, Keras) would give its images class "a"
    if r.recipe
        .outputs
        .iter()
        .any(|o| matches!(o, recipe::OutputSpec::Folders))
    {
        let names: std::collections::BTreeSet<&str> = catalog
            .labels
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let nested: Vec<String> = names
            .iter()
            .filter_map(|n| {
                // the outermost class folder on the way to this one
                let outer = n
                    .match_indices('/')
                    .map(|(k, _)| &n[..k])
                    .find(|p| names.contains(p))?;
                Some(format!("{n} inside {outer}"))
            })
            .collect();
        if !nested.is_empty() {
            let mut text = format!(
                "folders output: {} class folders lie inside another class's folder, so readers that \
                 take the first folder level as the class (torchvision's ImageFolder, Keras) would \
                 label their images with the outer class:",
                nested.len()
            );
            crate::report::name_first(&mut text, nested.iter(), SKIPS_SHOWN, "");
            reporter.warn(&text);
        }
    }
}

/// Files an earlier build wrote, changed since by someone else, so not
/// removed although this build did not write them again.
fn report_left(out: &Path, left: &[String], reporter: &dyn Reporter) {
    if left.is_empty() {
        return;
    }
    let mut text = format!(
        "{} left in place in {}: written by an earlier build and changed since, so not this \
         build's to delete; a reader that lists the folder would read it, and `imgprep verify` \
         reports it until it is removed:",
        match left.len() {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        },
        out.display()
    );
    crate::report::name_first(&mut text, left.iter(), SKIPS_SHOWN, "");
    reporter.warn(&text);
}

/// One summary of everything left out: the first few named, the rest counted.
fn report_skips(m: &Manifest, reporter: &dyn Reporter) {
    if m.skipped.is_empty() {
        return;
    }
    let mut text = format!(
        "{} items skipped (all listed in manifest.json and items.csv):",
        m.skipped.len()
    );
    let lines = m.skipped.iter().map(|s| {
        let from = s
            .origin
            .as_ref()
            .map(|o| format!(" ({o})"))
            .unwrap_or_default();
        format!("{}{from}: {}", s.item, s.reason)
    });
    crate::report::name_first(&mut text, lines, SKIPS_SHOWN, "");
    reporter.warn(&text);
}

/// Removes temporary files a killed build left behind (`.NAME.XXXXXX.partial`).
fn remove_partials(dir: &Path) {
    crate::output::remove_partials_in(dir);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_partials(&e.path());
        }
    }
}

pub fn read_manifest(out: &Path) -> Option<Manifest> {
    read_manifest_summed(out).map(|(m, _)| m)
}

/// [`read_manifest`] and the SHA-256 of its text.
pub(super) fn read_manifest_summed(out: &Path) -> Option<(Manifest, checksum::Sha256Sum)> {
    // (a regular file only, and bounded: the manifest of 1.28 M items is
    // about 450 MB; a larger file there is not one of ours)
    let text =
        crate::files::read_text_capped(&crate::files::join(out, Path::new(MANIFEST)), 2 << 30)
            .ok()?;
    let sha = checksum::Sha256Sum(checksum::sha256(text.as_bytes()));
    Some((serde_json::from_str(&text).ok()?, sha))
}

/// The folder of up-to-date stamps in an item cache.
pub(super) const STAMPS: &str = "stamps";

/// Where a build of `out` notes what its inputs' files were (sizes and
/// times) and the manifest it wrote from them: beside the item cache, not
/// in the dataset, whose manifest names the inputs by content only.
/// A digest of the identity of every file `files` lists in `out` (size,
/// device, inode, modification time), None when one is not there: a write
/// to one, or a file put in its place, changes it.
fn outputs_identity(out: &Path, files: &manifest::FileList) -> Option<String> {
    let mut sum = checksum::Summer::default();
    for (f, s) in files.iter() {
        let m = std::fs::metadata(out.join(f)).ok()?;
        if m.len() != s.size {
            return None;
        }
        // device, inode, size, modification time: not the change time,
        // which a hard-link snapshot (`cp -al`, rsnapshot), `chmod` or
        // `chown` of the folder changes, and a rebuild would then write
        // every file anew (ending the snapshots' sharing of the data)
        for v in &reuse::identity(&m)[..5] {
            sum.update(&v.to_le_bytes());
        }
    }
    Some(sum.finish().sha256.to_string())
}

fn stamp_path(cache_dir: &Path, out: &Path) -> std::path::PathBuf {
    cache_dir.join(STAMPS).join(reuse::table_name(out, "stamp"))
}

/// A fingerprint of a build's inputs: `head` (transform, recipe, shard),
/// every needed item (name, `id(k, i)` for its bytes (`k` its place in
/// `needed`), labels, group, source split, the digest of its boxes), the
/// label map and what the sources passed over.
fn inputs_fingerprint(
    head: &str,
    catalog: &Catalog,
    needed: &[usize],
    boxes: &[Option<[u8; 16]>],
    id: &dyn Fn(usize, usize) -> String,
) -> String {
    let mut sum = checksum::Summer::default();
    sum.update(head.as_bytes());
    for (k, &i) in needed.iter().enumerate() {
        let item = &catalog.items[i];
        // labels, group and source split too: a changed range or index
        // row changes the outputs
        sum.update(
            format!(
                "{}\t{}\t{}\t{:?}\t{:?}\n",
                item.rel,
                id(k, i),
                item.labels.join("\u{1f}"),
                item.group,
                item.split
            )
            .as_bytes(),
        );
        // a box edited in an annotation file changes the outputs too
        if let Some(b) = &boxes[k] {
            sum.update(b);
            sum.update(b"\n");
        }
    }
    // the class order and names as the sources and recipe give them (a
    // `labels.names` file, a metadata source's class ids, human names)
    sum.update(
        format!(
            "labels\t{:?}\t{}\t{}\n",
            catalog.labels.entries, catalog.label_order, catalog.multi_label
        )
        .as_bytes(),
    );
    // what the sources passed over (a new file that no list names, or one
    // that can no longer be read, changes it)
    for skip in &catalog.skipped {
        sum.update(format!("skipped\t{}\t{}\n", skip.item, skip.reason).as_bytes());
    }
    sum.finish().sha256.to_string()
}

/// Whether `out` (a folder or an object-store prefix) holds a dataset
/// imgprep wrote: a manifest.json of its own there.
pub fn holds_a_dataset(out: &Path) -> bool {
    read_manifest(out).is_some_and(|m| m.tool == "imgprep")
}
