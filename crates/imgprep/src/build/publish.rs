//! The pipeline's last stage: a build whose OUT is in object storage is made
//! in a local staging folder and then pushed, with the same relative paths.
//! Both front ends (the binary and the Python module) build through here.

use super::{build_loaded, read_manifest, BuildOptions, BuildSummary};
use crate::error::{Error, Result};
use crate::recipe::LoadedRecipe;
use crate::report::Reporter;
use crate::storage::transfer::{self, Layout, PushOptions, TransferReport};
use crate::storage::Uri;
use std::path::{Path, PathBuf};

/// Where a build for OUT writes: OUT itself, or for an object-store OUT a
/// local staging folder (kept, so that re-runs are incremental) and the URI
/// it is pushed to afterwards.
#[derive(Debug, Clone)]
pub struct Target {
    pub local: PathBuf,
    pub remote: Option<Uri>,
}

impl Target {
    pub fn for_out(out: &Path) -> Result<Target> {
        if !crate::files::is_remote(out) {
            return Ok(Target {
                local: out.to_path_buf(),
                remote: None,
            });
        }
        let uri = Uri::parse(&out.to_string_lossy()).map_err(Error::Usage)?;
        Ok(Target {
            local: transfer::staging_dir(&uri)?,
            remote: Some(uri),
        })
    }
}

/// A finished build and, for an object-store OUT, what was sent there.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    #[serde(flatten)]
    pub summary: BuildSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<TransferReport>,
}

impl Published {
    /// Every output reached its destination (a failed upload is a problem found).
    pub fn complete(&self) -> bool {
        self.pushed.as_ref().is_none_or(|p| p.failed.is_empty())
    }
}

/// Builds `r` into `opts.out`, which may be `s3://`, `az://`, `gs://`: then the
/// build runs in a staging folder and is pushed (only changed files are sent).
/// `push_reporter` sees the upload (in bytes).
pub fn build_to(
    r: &LoadedRecipe,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
    push_reporter: &dyn Reporter,
) -> Result<Published> {
    let target = Target::for_out(&opts.out)?;
    // one build (and its push) at a time per object-store OUT on this
    // machine: the staging folder's lock is let go when the build ends,
    // while the push still reads it
    let _pushing = match &target.remote {
        Some(uri) => {
            // (the local check of the build sees only the staging folder)
            super::outdir::check_overlap_remote(uri, &super::sources::input_paths(r))?;
            // a bucket that is not there, or credentials that do not reach
            // it: said before the build, not after it (one listing request)
            if uri.can_list() {
                crate::storage::bucket_for(uri)
                    .and_then(|b| b.list_dir(&uri.key))
                    .map_err(|e| Error::Usage(e.to_string()))?;
            }
            Some(lock_remote(&target.local, uri)?)
        }
        None => None,
    };
    let local = BuildOptions {
        out: target.local.clone(),
        ..opts.clone()
    };
    let mut summary = build_loaded(r, &local, reporter)?;
    let Some(uri) = target.remote else {
        return Ok(Published {
            summary,
            pushed: None,
        });
    };
    summary.out = uri.to_string().into();
    let pushed = push_out(&target.local, &uri, opts.force, push_reporter)?;
    Ok(Published {
        summary,
        pushed: Some(pushed),
    })
}

/// Locks the staging folder `local` of `uri` for a build and its push (a
/// lock file beside it, `flock`ed; released when the process ends, however).
/// Another process building or pushing the same OUT here: an error at once.
fn lock_remote(local: &Path, uri: &crate::storage::Uri) -> Result<std::fs::File> {
    let path = local.with_extension("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(crate::error::Error::io(&path))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Usage(format!(
            "{uri} is being built or pushed by another imgprep process on this machine; wait \
             for it to finish"
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path)(e)),
    }
}

/// Sends a staged build output to its object-store OUT, same relative paths
/// (`force`: the build's --force, which also replaces objects imgprep did
/// not put there).
pub fn push_out(
    local: &Path,
    uri: &Uri,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<TransferReport> {
    let o = PushOptions {
        layout: Layout::Mirror,
        dry_run: false,
        force,
        part_size: crate::checksum::ETAG_PART_SIZE,
        concurrency: 8,
    };
    transfer::push(local, uri, &o, reporter)
}

/// `imgprep merge`: the outputs of `build --shard I/N` into the result one
/// build would give. Every folder in `opts.merge_from` must be a shard output.
pub fn merge_to(
    r: &LoadedRecipe,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
    push_reporter: &dyn Reporter,
) -> Result<Published> {
    if opts.merge_from.is_empty() {
        return Err(Error::Usage("merge: no shard outputs given".into()));
    }
    // every shard of one build of this recipe, each once
    let mut shards: Vec<(u64, u64, &std::path::Path)> = Vec::new();
    for d in &opts.merge_from {
        if !crate::files::is_remote(d) && std::fs::symlink_metadata(d).is_err() {
            return Err(Error::Usage(format!(
                "{}: no such folder (give the shard outputs' folders)",
                d.display()
            )));
        }
        let m = read_manifest(d)
            .filter(|m| m.shard.is_some())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{}: not a shard output (no manifest.json with a shard)",
                    d.display()
                ))
            })?;
        let shard = m.shard.as_deref().unwrap_or_default();
        let (i, n) = shard
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
            .filter(|(i, n)| i < n)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{}: unreadable shard {shard:?} in its manifest",
                    d.display()
                ))
            })?;
        if m.recipe_sha256 != r.hash {
            return Err(Error::Usage(format!(
                "{}: shard {shard} was built from another recipe than {} (or the recipe changed \
                 since): build the shards again with this recipe",
                d.display(),
                r.path.display()
            )));
        }
        if let Some((_, _, other)) = shards.iter().find(|s| s.0 == i && s.1 == n) {
            return Err(Error::Usage(format!(
                "{} and {} are both shard {shard}: give each shard output once",
                other.display(),
                d.display()
            )));
        }
        if let Some((j, m, other)) = shards.iter().find(|s| s.1 != n) {
            return Err(Error::Usage(format!(
                "{} is shard {j}/{m} but {} is shard {shard}: shards of one build share N",
                other.display(),
                d.display()
            )));
        }
        shards.push((i, n, d));
    }
    let n = shards[0].1;
    if shards.len() as u64 != n {
        let have: std::collections::BTreeSet<u64> = shards.iter().map(|s| s.0).collect();
        let missing: Vec<String> = (0..n)
            .filter(|i| !have.contains(i))
            .map(|i| format!("{i}/{n}"))
            .collect();
        return Err(Error::Usage(format!(
            "merge needs all {n} shard outputs; missing: {}",
            missing.join(", ")
        )));
    }
    if opts.shard.is_some() {
        return Err(Error::Usage("merge: --shard makes no sense here".into()));
    }
    build_to(r, opts, reporter, push_reporter)
}

/// The lines a person reads after a build: items per variant and split,
/// classes, ratios, counts (what the binary prints, and Python's `repr`).
pub fn summary_lines(s: &BuildSummary) -> Vec<String> {
    let m = &s.manifest;
    if s.up_to_date {
        return vec![format!(
            "{}: up to date ({:.2} s)",
            s.out.display(),
            s.seconds
        )];
    }
    let mut lines = Vec::new();
    for (vname, v) in &m.variants {
        for (split, c) in &v.splits {
            let classes: Vec<String> = c
                .per_class
                .iter()
                .map(|(k, n)| format!("{}={n}", crate::report::cut(k, 80)))
                .collect();
            let shown = if classes.len() > 8 {
                format!("{} classes", classes.len())
            } else {
                classes.join(" ")
            };
            let groups = if c.groups > 0 {
                format!(", {} groups", c.groups)
            } else {
                String::new()
            };
            lines.push(format!(
                "{vname}/{split}: {} items{groups} ({shown})",
                c.items
            ));
        }
    }
    let ratios: Vec<String> = m
        .split_ratios
        .iter()
        .map(|(k, r)| match r.requested {
            Some(want) => format!(
                "{k} {:.1} % (asked {:.1} %)",
                r.achieved * 100.0,
                want * 100.0
            ),
            None => format!("{k} {:.1} %", r.achieved * 100.0),
        })
        .collect();
    lines.push(format!(
        "{}: {} classes, split {} ({}), {} processed, {} from cache, {} skipped, {} files, {:.2} s",
        s.out.display(),
        m.num_classes,
        m.split_method,
        ratios.join(", "),
        s.processed,
        s.cached,
        m.skipped.len(),
        m.files.len(),
        s.seconds
    ));
    if s.records_reused > 0 {
        lines.push(format!(
            "{} records copied unchanged from the previous build's record files",
            s.records_reused
        ));
    }
    if !m.non_rgb_sources.is_empty() {
        let kinds: Vec<String> = m
            .non_rgb_sources
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        lines.push(format!(
            "non-RGB sources included: {} (converted wherever pixels are decoded or re-encoded; \
             color_policy = \"skip\" leaves them out)",
            kinds.join(" ")
        ));
    }
    lines
}

/// The line a person reads after a push of a build output.
pub fn push_line(uri: &Uri, r: &TransferReport) -> String {
    let foreign = match r.not_in_dataset.len() {
        0 => String::new(),
        n => format!(", {n} objects there not in this dataset"),
    };
    format!(
        "{uri}: {} uploaded ({:.1} MB), {} unchanged, {} failed{foreign}, {:.2} s",
        r.uploaded,
        r.bytes_transferred as f64 / 1e6,
        r.skipped,
        r.failed.len(),
        r.seconds
    )
}
