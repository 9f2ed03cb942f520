//! `imgprep build`: recipe -> sources -> catalog -> plan -> execute -> write
//! -> manifest. Every stage hands a plain value to the next.

pub mod cache;
pub mod catalog;
mod manifest;
pub mod plan;
pub mod sources;
mod tfrecord_out;
mod write;

pub use catalog::{build_catalog, Catalog, LabelMap, Skip};
pub use manifest::{Manifest, SplitCounts, VariantManifest, MANIFEST};
pub use plan::{make_plan, Plan};
pub use sources::{read_sources, Item};
pub use write::verify_out;

use crate::checksum::sha256_hex;
use crate::error::{Error, Result};
use crate::execute::ordered_map_batched;
use crate::image::{ImageInfo, Processor, SourceColor};
use crate::recipe::{self, ColorPolicy, OnError};
use crate::report::Reporter;
use cache::{fingerprint, Cache};
use std::collections::BTreeMap;
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
    /// Bytes of cache entries of earlier builds removed (entries this
    /// build did not use).
    pub cache_pruned_bytes: u64,
    pub seconds: f64,
    pub manifest: Manifest,
}

/// Items handed to a worker at a time (small images take microseconds each).
pub(crate) const ITEM_BATCH: usize = 16;
/// Objects read at a time from object storage.
const REMOTE_READS: usize = 16;
const CACHE_DIR: &str = ".imgprep-cache";
const MISSING_IN_SHARDS: &str = "\0missing in shards";

/// The result of preparing one item.
#[derive(Clone)]
enum Prepared {
    Ok(ImageInfo),
    /// Unreadable or broken: an error under `on_error = "fail"`.
    Skipped(String),
    /// Left out by a policy (`color_policy = "skip"`): counted, never an error.
    Excluded(String),
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
    let start = std::time::Instant::now();
    let spec = r.recipe.transform.image_spec().map_err(Error::Usage)?;
    let sources = read_sources(r)?;
    let catalog = build_catalog(r, sources)?;
    let mut plan = make_plan(&r.recipe, &catalog);
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
    let transform_key = format!("{}|{spec:?}", env!("CARGO_PKG_VERSION"));

    // Up to date? Same recipe, tool and inputs, and every output still there.
    let mut fp_text = format!("{}\n{}\n{:?}\n", transform_key, r.hash, opts.shard);
    let mut prints = Vec::with_capacity(needed.len());
    for &i in &needed {
        let item = &catalog.items[i];
        let (size, mtime) = fingerprint(&item.path).map_err(Error::io(&item.path))?;
        fp_text.push_str(&format!("{}\t{size}\t{mtime}\n", item.rel));
        prints.push((size, mtime));
    }
    let fp = sha256_hex(fp_text.as_bytes());
    std::fs::create_dir_all(&opts.out).map_err(Error::io(&opts.out))?;
    if let Some(m) = read_manifest(&opts.out) {
        let intact = m
            .files
            .iter()
            .all(|(f, s)| std::fs::metadata(opts.out.join(f)).is_ok_and(|md| md.len() == s.size));
        if m.fingerprint == fp && intact {
            return Ok(BuildSummary {
                out: opts.out.clone(),
                up_to_date: true,
                processed: 0,
                cached: 0,
                cache_pruned_bytes: 0,
                seconds: start.elapsed().as_secs_f64(),
                manifest: m,
            });
        }
    }

    remove_partials(&opts.out);

    // Execute: every needed item once, into the cache (pass-through: header check only).
    let cache = Cache::new(opts.out.join(CACHE_DIR));
    let shard_caches: Vec<Cache> = opts
        .merge_from
        .iter()
        .map(|d| Cache::new(d.join(CACHE_DIR)))
        .collect();
    let merging = !opts.merge_from.is_empty();
    let mut prepared: BTreeMap<usize, Prepared> = BTreeMap::new();
    let mut processed = 0u64;
    let mut cached = 0u64;
    let color_policy = r.recipe.transform.color_policy;
    let mut excluded: BTreeMap<&str, u64> = BTreeMap::new();
    reporter.begin("prepare", Some(needed.len() as u64));
    let work =
        |p: &mut Processor, (i, (size, mtime)): (usize, (u64, i128))| -> (usize, Prepared, bool) {
            let item = &catalog.items[i];
            let read = |p: &Path| {
                crate::files::read_sized(p, size).map_err(|e| format!("{}: {e}", p.display()))
            };
            match &spec {
                // pass-through, local: a header check now, the bytes at write time
                None if !crate::files::is_remote(&item.path) => {
                    match read(&item.path).map(|d| p.probe(&d, r.recipe.transform.max_pixels)) {
                        Ok(Ok(info)) => (i, Prepared::Ok(info), false),
                        Ok(Err(e)) => (i, Prepared::Skipped(e.to_string()), false),
                        Err(e) => (i, Prepared::Skipped(e), false),
                    }
                }
                // pass-through from object storage: the checked bytes go to the
                // cache, so each object is fetched once (and not again on re-runs)
                None => {
                    let key = Cache::key(&transform_key, &item.path, size, mtime);
                    if let Some(info) = cache.info(&key) {
                        return (i, Prepared::Ok(info), true);
                    }
                    let data = match read(&item.path) {
                        Ok(d) => d,
                        Err(e) => return (i, Prepared::Skipped(e), false),
                    };
                    match p.probe(&data, r.recipe.transform.max_pixels) {
                        Ok(info) => match cache.put(&key, &info, &data) {
                            Ok(()) => (i, Prepared::Ok(info), false),
                            Err(e) => (
                                i,
                                Prepared::Skipped(format!("cache write failed: {e}")),
                                false,
                            ),
                        },
                        Err(e) => (i, Prepared::Skipped(e.to_string()), false),
                    }
                }
                Some(spec) => {
                    let key = Cache::key(&transform_key, &item.path, size, mtime);
                    if let Some(info) = cache.info(&key) {
                        return (i, Prepared::Ok(info), true);
                    }
                    for sc in &shard_caches {
                        if let Some((info, bytes)) = sc.get(&key) {
                            return match cache.put(&key, &info, &bytes) {
                                Ok(()) => (i, Prepared::Ok(info), true),
                                Err(e) => (
                                    i,
                                    Prepared::Skipped(format!("cache write failed: {e}")),
                                    false,
                                ),
                            };
                        }
                    }
                    if merging {
                        return (i, Prepared::Skipped(MISSING_IN_SHARDS.into()), false);
                    }
                    let data = match read(&item.path) {
                        Ok(d) => d,
                        Err(e) => return (i, Prepared::Skipped(e), false),
                    };
                    let mut out = Vec::new();
                    match p.process(&data, spec, &mut out) {
                        Ok(info) => match cache.put(&key, &info, &out) {
                            Ok(()) => (i, Prepared::Ok(info), false),
                            Err(e) => (
                                i,
                                Prepared::Skipped(format!("cache write failed: {e}")),
                                false,
                            ),
                        },
                        Err(e) => (i, Prepared::Skipped(e.to_string()), false),
                    }
                }
            }
        };
    let init = || Processor::new().expect("libjpeg-turbo initialises");
    let inputs = needed.iter().copied().zip(prints.iter().copied());
    // objects from a store: more requests in flight than cores
    let remote = crate::files::any_remote(needed.iter().map(|&i| catalog.items[i].path.as_path()));
    let (threads, batch) = if remote {
        (opts.threads.max(REMOTE_READS), 1)
    } else {
        (opts.threads, ITEM_BATCH)
    };
    ordered_map_batched(
        inputs,
        batch,
        threads,
        threads * 4 * batch,
        init,
        work,
        |(i, mut prep, hit)| -> Result<()> {
            if let Prepared::Ok(info) = &prep {
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
                (Prepared::Ok(_), true) => cached += 1,
                (Prepared::Ok(_), false) => processed += 1,
                (Prepared::Skipped(why), _) => {
                    let item = &catalog.items[i];
                    if why == MISSING_IN_SHARDS {
                        return Err(Error::Usage(format!(
                            "{} ({}): in none of the shard outputs given to merge (give every shard's output folder)",
                            item.path.display(),
                            item.origin
                        )));
                    }
                    if r.recipe.on_error == OnError::Fail {
                        return Err(Error::Problem(format!(
                            "{} ({}): {why} (set on_error = \"skip\" to leave such items out)",
                            item.path.display(),
                            item.origin
                        )));
                    }
                    reporter.warn(&format!(
                        "skipped {} ({}): {why}",
                        item.path.display(),
                        item.origin
                    ));
                }
            }
            prepared.insert(i, prep);
            reporter.advance(1);
            Ok(())
        },
    )?;
    reporter.end();
    for (kind, n) in &excluded {
        reporter.warn(&format!(
            "skipped {n} {kind} source(s) (transform.color_policy = \"skip\"); listed in the manifest"
        ));
    }

    let ctx = write::Context {
        recipe: r,
        catalog: &catalog,
        plan: &plan,
        spec: spec.as_ref(),
        cache: &cache,
        transform_key: &transform_key,
        prints: needed.iter().copied().zip(prints.iter().copied()).collect(),
        prepared: &prepared,
        out: &opts.out,
        threads: opts.threads,
    };
    let (written, records) = write::write_outputs(&ctx, reporter)?;
    let mut manifest = write::manifest(&ctx, fp, opts.shard, reporter);
    manifest.records = records;
    manifest.files.extend(written);
    write::write_manifest(&opts.out, &mut manifest)?;
    // the cache keeps what this build used, nothing older
    let keep: std::collections::HashSet<String> = needed
        .iter()
        .zip(&prints)
        .map(|(&i, &(size, mtime))| Cache::key(&transform_key, &catalog.items[i].path, size, mtime))
        .collect();
    let (_, cache_pruned_bytes) = cache.retain(&keep);
    Ok(BuildSummary {
        out: opts.out.clone(),
        up_to_date: false,
        processed,
        cached,
        cache_pruned_bytes,
        seconds: start.elapsed().as_secs_f64(),
        manifest,
    })
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
    let text = std::fs::read_to_string(out.join(MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}
