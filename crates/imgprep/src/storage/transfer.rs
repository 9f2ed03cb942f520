//! `push` (a build's outputs, or any folder, to `s3://`) and `pull` (a list
//! of keys to a folder): parallel, resumable, skipping what is already there.

use super::{bucket_for, etag_matches, Bucket, ObjectInfo, Uri, NOT_TRIED};
use crate::checksum::file_etag;
use crate::error::{Error, Result};
use crate::report::Reporter;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How a build's files are laid out under the destination prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// SageMaker channels: `{variant}/{split}/{split}.rec`,
    /// `{variant}/train/`, `{variant}/train_lst/` (image mode), ...
    #[default]
    Channels,
    /// The same relative paths as on disk.
    Mirror,
}

/// Where a build output file goes in the channels layout.
pub fn channel_key(rel: &str) -> String {
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        [v, "recordio", file] => match file.rsplit_once('.') {
            Some((split, "rec")) => format!("{v}/{split}/{file}"),
            _ => format!("{v}/recordio-index/{file}"),
        },
        [v, "sagemaker", rest @ ..] => format!("{v}/{}", rest.join("/")),
        [v, tf, file] if tf.starts_with("tfrecord-") && file.contains(".tfrecord") => {
            // {split}-00000-of-00001.tfrecord -> {variant}/{tf}/{split}/...
            let split = file.split('-').next().unwrap_or(file);
            format!("{v}/{tf}/{split}/{file}")
        }
        _ => rel.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub layout: Layout,
    pub dry_run: bool,
    /// Upload even when the remote ETag matches.
    pub force: bool,
    pub part_size: u64,
    pub concurrency: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Planned {
    pub local: String,
    pub uri: String,
    pub size: u64,
    /// `upload` (no object there), `replace` (an object with other content
    /// there), `skip` (remote ETag equals the local one) or `failed`.
    pub action: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TransferReport {
    /// Uploaded (with `dry_run`: to upload).
    pub uploaded: u64,
    pub downloaded: u64,
    pub skipped: u64,
    pub failed: Vec<(String, String)>,
    pub bytes_transferred: u64,
    pub bytes_skipped: u64,
    pub seconds: f64,
    /// MB/s of bytes transferred.
    pub rate_mb_s: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<Planned>,
    /// Push: objects already in the destination's folders that this push
    /// does not send (an earlier push's files, say, or someone else's):
    /// left alone, but a channel reading such a folder would read them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_in_dataset: Vec<String>,
}

/// Files to send: a build output's files from its manifest (and the
/// manifest itself, last), else every regular file under `dir` except hidden
/// ones; as (relative path, destination relative key, size).
pub fn push_files(dir: &Path, layout: Layout) -> Result<Vec<(String, String, u64)>> {
    let mut rels: Vec<String> = Vec::new();
    let manifest = crate::build::read_manifest(dir);
    if let Some(m) = &manifest {
        // a manifest is read from disk: only plain paths inside DIR are sent
        if let Some(bad) = m
            .files
            .keys()
            .find(|f| crate::build::catalog::normalize_rel(f).as_deref() != Some(f.as_str()))
        {
            return Err(Error::Usage(format!(
                "{}: the manifest lists {bad:?}, which is not a plain path inside the folder; \
                 refusing to send it (rebuild the output)",
                dir.display()
            )));
        }
        rels.extend(m.files.keys().cloned());
        rels.push(crate::build::MANIFEST.into());
    } else {
        walk(dir, dir, &mut rels)?;
        rels.sort();
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for rel in rels {
        let key = match (layout, &manifest) {
            (Layout::Channels, Some(_)) => channel_key(&rel),
            _ => rel.clone(),
        };
        if let Some(other) = seen.insert(key.clone(), rel.clone()) {
            return Err(Error::Usage(format!(
                "{other} and {rel} would both be {key} (use --layout mirror)"
            )));
        }
        let p = dir.join(&rel);
        let size = std::fs::metadata(&p).map_err(Error::io(&p))?.len();
        out.push((rel, key, size));
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let e = e.map_err(Error::io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let p = e.path();
        let t = e.file_type().map_err(Error::io(&p))?;
        if t.is_dir() {
            walk(root, &p, out)?;
        } else if t.is_file() {
            // joined with `/` from its parts: a `\` in a file name is part of
            // the name here (turning it into a separator sent a path that
            // does not exist, and stopped the whole push)
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// The local folder that stands in for an object-store destination: outputs
/// are made there, then sent with [`push`]. Kept between runs (under
/// `IMGPREP_STAGING`, else `~/.cache/imgprep/staging`), so a re-run rebuilds
/// and sends only what changed.
pub fn staging_dir(uri: &Uri) -> Result<PathBuf> {
    let base = std::env::var_os("IMGPREP_STAGING")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::build::cache::cache_root().join("staging"));
    let id = crate::checksum::sha256_hex(uri.to_string().as_bytes());
    let dir = base.join(&id[..16]);
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    Ok(dir)
}

/// Uploads one local file to `dest` (in 8 MiB parts when larger), unless an
/// object with the same ETag is there already. Returns whether it was sent.
pub fn put_file(local: &Path, dest: &Uri) -> Result<bool> {
    let b = bucket_for(dest).map_err(storage_err)?;
    let size = std::fs::metadata(local).map_err(Error::io(local))?.len();
    let o = PushOptions {
        layout: Layout::Mirror,
        dry_run: false,
        force: false,
        part_size: crate::checksum::ETAG_PART_SIZE,
        concurrency: 1,
    };
    // (the caller names the object itself, as im2rec's PREFIX.rec: replaced
    // like the local file would be)
    push_one(&b, local, &dest.key, size, &o, true)
        .map(|sent| sent != Sent::Skipped)
        .map_err(|e| Error::Usage(format!("{dest}: {e}")))
}

/// Downloads one object to a local file (atomically).
pub fn get_file(src: &Uri, local: &Path) -> Result<()> {
    let b = bucket_for(src).map_err(storage_err)?;
    b.download(&src.key, local).map_err(storage_err)?;
    Ok(())
}

/// Runs `f` over `items` on `n` threads (blocking I/O), in any order.
fn parallel<T: Sync>(items: &[T], n: usize, f: impl Fn(&T) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..n.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { return };
                f(item);
            });
        }
    });
}

fn storage_err(e: super::StorageError) -> Error {
    Error::Usage(e.to_string())
}

/// Sends `dir`'s files under `dest`. Objects whose remote ETag equals the
/// local one (same part size) are skipped; the manifest goes last.
pub fn push(
    dir: &Path,
    dest: &Uri,
    o: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<TransferReport> {
    let start = std::time::Instant::now();
    if let Some(why) = crate::build::outdir::unfinished(dir) {
        return Err(Error::Usage(why));
    }
    let files = push_files(dir, o.layout)?;
    let manifest = crate::build::read_manifest(dir);
    let is_dataset = manifest.is_some();
    // augmented manifests name their images' URIs: only there are they right
    if let Some(want) = manifest.and_then(|m| m.detection).and_then(|d| d.push_to) {
        let want = want.trim_end_matches('/');
        let got = dest.to_string();
        if got.trim_end_matches('/') != want {
            return Err(Error::Usage(format!(
                "{}: its augmented manifests point at {want}, not {got}: push there, or change \
                 push_to in the recipe and rebuild",
                dir.display()
            )));
        }
    }
    let bucket = bucket_for(dest).map_err(storage_err)?;
    // a first request that fails for every object (credentials, endpoint,
    // bucket) is one clear error rather than N failures
    let there = bucket.list(&dest.key).map_err(storage_err)?;
    // a dataset replaces objects with other content at its keys only where
    // they are imgprep's: under an empty prefix, or one holding an imgprep
    // dataset (its manifest.json); elsewhere they are someone else's. (Any
    // other folder is copied as a copy tool would: the user chose the place.)
    let may_replace = !is_dataset
        || there.is_empty()
        || crate::build::holds_a_dataset(Path::new(&dest.to_string()));
    let not_in_dataset = foreign_objects(&there, &files, dest, &bucket);
    if !not_in_dataset.is_empty() {
        let mut text = format!(
            "{} objects in {dest} are not part of this dataset but lie in folders it is pushed \
             to (left alone; a channel reading those folders would read them: delete them, or \
             push to an empty prefix):",
            not_in_dataset.len()
        );
        crate::report::name_first(&mut text, not_in_dataset.iter(), 10, "");
        reporter.warn(&text);
    }
    let total: u64 = files.iter().map(|f| f.2).sum();
    reporter.begin("push", Some(total));
    let report = Mutex::new(TransferReport::default());
    let outage = crate::storage::Outage::default();
    let one = |(rel, key, size): &(String, String, u64)| {
        let local = dir.join(rel);
        let key = dest.join(key).key;
        let action = outage
            .check()
            .and_then(|()| push_one(&bucket, &local, &key, *size, o, may_replace));
        if let Err(e) = &action {
            outage.note(e);
        }
        let mut r = report.lock().unwrap();
        let name = match &action {
            Ok(a @ (Sent::New | Sent::Replaced)) => {
                // in a dry run: what would be sent
                r.uploaded += 1;
                r.bytes_transferred += size;
                if *a == Sent::New {
                    "upload"
                } else {
                    "replace"
                }
            }
            Ok(Sent::Skipped) => {
                r.skipped += 1;
                r.bytes_skipped += size;
                "skip"
            }
            Err(e) => {
                r.failed.push((bucket.uri(&key), e.clone()));
                "failed"
            }
        };
        if o.dry_run {
            r.plan.push(Planned {
                local: rel.clone(),
                uri: bucket.uri(&key),
                size: *size,
                action: name.into(),
            });
        }
        drop(r);
        match action {
            // (counted once below)
            Err(e) if e.starts_with(NOT_TRIED) => {}
            Err(e) => reporter.warn(&format!("{}: {e}", bucket.uri(&key))),
            Ok(_) => {}
        }
        reporter.advance(*size);
    };
    let (last, rest): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|(rel, _, _)| rel == crate::build::MANIFEST);
    // A dataset that replaces another one at the destination: the old
    // manifest goes first, so that while objects change (or after a push
    // stopped half-way) the prefix does not look like a finished dataset,
    // the old manifest beside the new files; the new one comes last.
    if is_dataset && may_replace && !o.dry_run {
        if let Some((rel, key, size)) = last.first() {
            let key = dest.join(key).key;
            let remote = bucket.head(&key).map_err(storage_err)?;
            if let Some(remote) = remote {
                let mine = file_etag(&dir.join(rel), o.part_size).ok();
                if remote.size != *size || remote.etag.is_none() || remote.etag != mine {
                    bucket.delete(&key).map_err(storage_err)?;
                }
            }
        }
    }
    parallel(&rest, o.concurrency, one);
    // the manifest only once everything it lists is there
    if report.lock().unwrap().failed.is_empty() {
        last.iter().for_each(one);
    }
    reporter.end();
    let untried = report
        .lock()
        .unwrap()
        .failed
        .iter()
        .filter(|f| f.1.starts_with(NOT_TRIED))
        .count();
    if untried > 0 {
        reporter.warn(&format!(
            "{untried} files not sent: the server stopped answering (run the push again once it \
             answers; what is there already is not sent again)"
        ));
    }
    let mut r = report.into_inner().unwrap();
    r.not_in_dataset = not_in_dataset;
    r.plan.sort_by(|a, b| a.uri.cmp(&b.uri));
    r.seconds = start.elapsed().as_secs_f64();
    if !o.dry_run {
        r.rate_mb_s = r.bytes_transferred as f64 / 1e6 / r.seconds.max(1e-9);
    }
    Ok(r)
}

/// The URIs of objects under the destination that lie in a folder this
/// push writes to (below the destination itself) and that it does not
/// send, sorted (see [`crate::files::strays`]).
fn foreign_objects(
    there: &[ObjectInfo],
    files: &[(String, String, u64)],
    dest: &Uri,
    bucket: &Bucket,
) -> Vec<String> {
    let ours = files.iter().map(|(_, key, _)| key.clone()).collect();
    let present = there
        .iter()
        .filter_map(|o| dest.relative(&o.key).map(String::from));
    crate::files::strays(&ours, present)
        .into_iter()
        .map(|k| bucket.uri(&dest.join(&k).key))
        .collect()
}

/// What [`push_one`] did (or, in a dry run, would do) with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// No object under the key: uploaded.
    New,
    /// An object with other content was there: overwritten.
    Replaced,
    /// The object's ETag equals the local one: not sent.
    Skipped,
}

fn push_one(
    b: &Bucket,
    local: &Path,
    key: &str,
    size: u64,
    o: &PushOptions,
    may_replace: bool,
) -> std::result::Result<Sent, String> {
    // (--force sends without asking, except to tell a dry run's
    // "replace" from "upload")
    let there = if o.force && !o.dry_run {
        None
    } else {
        b.head(key).map_err(|e| e.message)?
    };
    if let Some(remote) = there.as_ref().filter(|_| !o.force) {
        if remote.size == size {
            let mine = file_etag(local, o.part_size).map_err(|e| e.to_string())?;
            if remote.etag.as_deref() == Some(mine.as_str()) {
                return Ok(Sent::Skipped);
            }
        }
    }
    let sent = if there.is_some() {
        if !may_replace {
            return Err(
                "an object with other content is there, and the destination holds no \
                 imgprep dataset (no imgprep manifest.json): left as it is, since imgprep did not \
                 put it there; push the dataset to an empty prefix, or pass --force to replace it"
                    .into(),
            );
        }
        Sent::Replaced
    } else {
        Sent::New
    };
    if !o.dry_run {
        b.upload(local, key, o.part_size).map_err(|e| e.message)?;
    }
    Ok(sent)
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Base for plain keys, and the prefix stripped from URIs under it.
    pub base: Option<Uri>,
    pub concurrency: usize,
    /// Replace a file in DEST that differs from its object although no
    /// earlier pull into DEST wrote it (by default such a file is left as
    /// it is and the key counts as failed).
    pub overwrite: bool,
}

/// A key's path under DEST, or why it is refused.
pub fn safe_rel(key: &str) -> std::result::Result<PathBuf, String> {
    if key.is_empty() || key.ends_with('/') {
        return Err("not an object key (empty or a folder)".into());
    }
    if key.starts_with('/') || key.contains('\\') || key.contains('\0') {
        return Err("refused: an absolute path or a backslash would escape DEST".into());
    }
    let mut p = PathBuf::new();
    for c in key.split('/') {
        match c {
            "" | "." => continue,
            ".." => return Err("refused: `..` would escape DEST".into()),
            c => p.push(c),
        }
    }
    Ok(p)
}

/// A listed object and its local path, or why it is refused.
type PullJob = std::result::Result<(Uri, PathBuf), String>;

/// `pull`'s reports in DEST; no object is written under these names.
const PULL_REPORTS: [&str; 2] = ["downloaded.txt", "failed.txt"];
/// In DEST: every file a pull wrote there (its path below DEST, a line
/// each), added to as each download completes, so that a killed pull's
/// files, and those of a pull of another list, are known as pulls' own.
const PULLED: &str = ".imgprep-pulled";

/// Refuses a download whose path under `dest` goes through a symbolic link
/// (a folder or the file itself): it would write wherever the link points.
fn no_links_below(dest: &Path, rel: &Path) -> std::result::Result<(), String> {
    let mut p = dest.to_path_buf();
    for c in rel.components() {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "refused: {} is a symbolic link in DEST, and links are not followed",
                    p.display()
                ))
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Downloads every key/URI listed in `list` (one per line; blank lines and
/// `#` comments ignored) into `dest`, writing `downloaded.txt` and
/// `failed.txt` (key, tab, reason) there. An existing file with the
/// object's size and ETag is kept, so a re-run resumes. An existing file
/// that differs is replaced only when an earlier pull into DEST wrote it
/// (DEST/.imgprep-pulled lists every file a pull wrote) or with [`PullOptions::overwrite`]:
/// anything else in DEST is the user's.
pub fn pull(
    list: &Path,
    dest: &Path,
    o: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<TransferReport> {
    let start = std::time::Instant::now();
    let text = crate::files::read_to_string(list).map_err(Error::io(list))?;
    let mut jobs: Vec<(String, PullJob)> = Vec::new();
    // where each local path comes from: two keys never write one file
    let mut claimed: BTreeMap<PathBuf, (String, usize)> = BTreeMap::new();
    for report in PULL_REPORTS.into_iter().chain([PULLED]) {
        claimed.insert(PathBuf::from(report), (format!("pull's own {report}"), 0));
    }
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let uri = if line.contains("://") {
            Uri::parse(line).map_err(|e| Error::Line {
                path: list.to_path_buf(),
                line: n + 1,
                message: e,
            })?
        } else {
            match &o.base {
                Some(b) => b.join(line),
                None => {
                    return Err(Error::Line {
                        path: list.to_path_buf(),
                        line: n + 1,
                        message: format!(
                            "{line:?} is a key, not a URI: give --base s3://BUCKET/PREFIX"
                        ),
                    })
                }
            }
        };
        let rel_key = match &o.base {
            Some(b) if b.bucket == uri.bucket && uri.key.starts_with(&b.key) => {
                uri.key[b.key.len()..].trim_start_matches('/').to_string()
            }
            _ => uri.key.clone(),
        };
        // a key line is relative to --base: a leading `/` would be dropped by
        // the join and fetch another object than the one written
        let absolute = (!line.contains("://") && line.starts_with('/'))
            .then(|| "refused: a key starting with `/` (keys are relative to --base)".to_string());
        let job = absolute
            .map_or_else(|| safe_rel(&rel_key), Err)
            .and_then(|rel| match claimed.get(&rel) {
                Some((other, 0)) => Err(format!(
                    "refused: it would be DEST/{}, which is {other} (rename the object or pull it \
                     under another --base)",
                    rel.display()
                )),
                Some((other, line)) => Err(format!(
                    "refused: it would be DEST/{}, as {other} (line {line}) already is",
                    rel.display()
                )),
                None => {
                    claimed.insert(rel.clone(), (uri.to_string(), n + 1));
                    Ok(rel)
                }
            })
            .and_then(|rel| no_links_below(dest, &rel).map(|()| (uri.clone(), dest.join(rel))));
        jobs.push((uri.to_string(), job));
    }
    std::fs::create_dir_all(dest).map_err(Error::io(dest))?;
    // what earlier pulls into DEST wrote (theirs to replace when the
    // object changed); anything else already there is the user's
    let ours: std::collections::HashSet<PathBuf> = match o.overwrite {
        true => Default::default(),
        false => std::fs::read_to_string(dest.join(PULLED))
            .map(|t| t.lines().map(|l| dest.join(l)).collect())
            .unwrap_or_default(),
    };
    let pulled = Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dest.join(PULLED))
            .map_err(Error::io(dest.join(PULLED)))?,
    );
    let note_pulled = |path: &Path| {
        use std::io::Write;
        if let Ok(rel) = path.strip_prefix(dest) {
            let _ = writeln!(pulled.lock().unwrap(), "{}", rel.display());
        }
    };
    // partial files of a killed earlier run
    let dirs: std::collections::BTreeSet<&Path> = jobs
        .iter()
        .filter_map(|(_, j)| j.as_ref().ok()?.1.parent())
        .collect();
    for d in dirs {
        crate::output::remove_partials_in(d);
    }
    // one clear error when nothing can work (credentials, endpoint of a
    // store); a plain web server has neither, and an error of one of its
    // objects is that object's failure, listed with the others
    if let Some((_, Ok((uri, _)))) = jobs.iter().find(|j| {
        j.1.as_ref()
            .is_ok_and(|(u, _)| !u.scheme.starts_with("http"))
    }) {
        let b = bucket_for(uri).map_err(storage_err)?;
        if let Err(e) = b.head(&uri.key) {
            if !e.not_found {
                return Err(storage_err(e));
            }
        }
    }
    reporter.begin("pull", Some(jobs.len() as u64));
    let report = Mutex::new(TransferReport::default());
    let done: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    let indexed: Vec<(usize, &(String, PullJob))> = jobs.iter().enumerate().collect();
    let outage = crate::storage::Outage::default();
    parallel(&indexed, o.concurrency, |(i, (shown, job))| {
        let result = job.clone().and_then(|(uri, path)| {
            outage.check()?;
            let replace = o.overwrite || ours.contains(&path);
            let r = pull_one(&uri, &path, replace).inspect_err(|e| outage.note(e));
            if let Ok((true, _)) = r {
                note_pulled(&path);
            }
            r
        });
        let mut r = report.lock().unwrap();
        match result {
            Ok((true, size)) => {
                r.downloaded += 1;
                r.bytes_transferred += size;
                done.lock().unwrap().push((*i, shown.clone()));
            }
            Ok((false, size)) => {
                r.skipped += 1;
                r.bytes_skipped += size;
                done.lock().unwrap().push((*i, shown.clone()));
            }
            Err(e) => r.failed.push((shown.clone(), e)),
        }
        drop(r);
        reporter.advance(1);
    });
    reporter.end();
    let mut r = report.into_inner().unwrap();
    let mut done = done.into_inner().unwrap();
    done.sort();
    let order: BTreeMap<&String, usize> = jobs.iter().enumerate().map(|(i, j)| (&j.0, i)).collect();
    r.failed.sort_by_key(|(k, _)| order.get(k).copied());
    let ok_text: String = done.iter().map(|(_, k)| format!("{k}\n")).collect();
    let failed_text: String = r
        .failed
        .iter()
        .map(|(k, why)| format!("{k}\t{}\n", why.replace(['\n', '\t'], " ")))
        .collect();
    for (name, text) in PULL_REPORTS.into_iter().zip([ok_text, failed_text]) {
        let p = dest.join(name);
        crate::output::write_atomic(&p, text.as_bytes()).map_err(Error::io(&p))?;
    }
    r.seconds = start.elapsed().as_secs_f64();
    r.rate_mb_s = r.bytes_transferred as f64 / 1e6 / r.seconds.max(1e-9);
    Ok(r)
}

/// Ok((true, size)) downloaded, Ok((false, size)) already there. A file at
/// `path` that differs from the object is replaced only when `replace`.
fn pull_one(uri: &Uri, path: &Path, replace: bool) -> std::result::Result<(bool, u64), String> {
    let b = bucket_for(uri).map_err(|e| e.message)?;
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.is_file() {
            return Err(format!(
                "refused: {} is there and is not a file (left as it is)",
                path.display()
            ));
        }
        // (no object: the download below says so)
        let remote = b.head(&uri.key).map_err(|e| e.message)?;
        let same = remote.as_ref().map(|r| {
            r.size == m.len()
                && r.etag
                    .as_deref()
                    .is_some_and(|e| etag_matches(path, m.len(), e))
        });
        if same == Some(true) {
            return Ok((false, m.len()));
        }
        if same == Some(false) && !replace {
            return Err(format!(
                "refused: {} is there, differs from the object, and no earlier pull into this \
                 folder wrote it (left as it is: remove it, pull into another folder, or give \
                 --overwrite)",
                path.display()
            ));
        }
    }
    let (size, _) = b.download(&uri.key, path).map_err(|e| e.message)?;
    Ok((true, size))
}

/// Downloads every object under the folder `src` into `dest` with the same
/// relative paths (`dest` must not exist or be empty: nothing of someone
/// else's is overwritten). `threads` downloads run at once. Returns the
/// objects and bytes fetched.
pub fn pull_prefix(src: &Uri, dest: &Path, threads: usize) -> Result<(u64, u64)> {
    if std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::Usage(format!(
            "{}: not empty; a pull of {src} goes into a new folder",
            dest.display()
        )));
    }
    let b = bucket_for(src).map_err(|e| Error::Usage(e.to_string()))?;
    let prefix = format!("{}/", src.key.trim_end_matches('/'));
    let prefix = if prefix == "/" { String::new() } else { prefix };
    let objects = b.list(&prefix).map_err(|e| Error::Usage(e.to_string()))?;
    let jobs = prefix_jobs(objects.into_iter().map(|o| o.key), &prefix, dest, &|k| {
        b.uri(k)
    })?;
    let (mut count, mut bytes) = (0u64, 0u64);
    crate::execute::ordered_map(
        jobs.into_iter(),
        threads.max(1),
        threads.max(1) * 2,
        || (),
        |_, (key, local): (String, PathBuf)| {
            b.download(&key, &local)
                .map(|(n, _)| n)
                .map_err(|e| Error::Usage(e.to_string()))
        },
        |r: Result<u64>| {
            bytes += r?;
            count += 1;
            Ok(())
        },
    )?;
    Ok((count, bytes))
}

/// Where each object under `prefix` goes in `dest`, or why the pull is
/// refused: a key that would escape `dest`, two keys that name one file
/// (`a//b.jpg` and `a/b.jpg`: one would silently replace the other), or a
/// key that is a folder of another's (`a` and `a/b.jpg`). `uri` names a key
/// in the messages.
fn prefix_jobs(
    keys: impl Iterator<Item = String>,
    prefix: &str,
    dest: &Path,
    uri: &dyn Fn(&str) -> String,
) -> Result<Vec<(String, PathBuf)>> {
    let mut jobs = Vec::new();
    let mut claimed: BTreeMap<PathBuf, String> = BTreeMap::new();
    for key in keys {
        let rel = key.strip_prefix(prefix).unwrap_or(&key);
        let rel = safe_rel(rel).map_err(|why| Error::Usage(format!("{}: {why}", uri(&key))))?;
        if let Some(other) = claimed.get(&rel) {
            return Err(Error::Usage(format!(
                "{} and {} would both be {}: rename one of them, or pull the objects one by one",
                uri(other),
                uri(&key),
                dest.join(&rel).display()
            )));
        }
        claimed.insert(rel.clone(), key.clone());
        jobs.push((key, rel));
    }
    for (key, rel) in &jobs {
        if let Some(folder) = rel.ancestors().skip(1).find(|a| claimed.contains_key(*a)) {
            return Err(Error::Usage(format!(
                "{} would be a file where {} needs a folder ({}): rename one of them, or pull \
                 the objects one by one",
                uri(&claimed[folder]),
                uri(key),
                dest.join(folder).display()
            )));
        }
    }
    Ok(jobs
        .into_iter()
        .map(|(k, rel)| (k, dest.join(rel)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_layout_for_sagemaker() {
        assert_eq!(
            channel_key("complete/recordio/train.rec"),
            "complete/train/train.rec"
        );
        assert_eq!(
            channel_key("complete/recordio/validation.idx"),
            "complete/recordio-index/validation.idx"
        );
        assert_eq!(
            channel_key("sample/sagemaker/train_lst/train.lst"),
            "sample/train_lst/train.lst"
        );
        assert_eq!(
            channel_key("complete/tfrecord-tfds/train-00000-of-00002.tfrecord"),
            "complete/tfrecord-tfds/train/train-00000-of-00002.tfrecord"
        );
        assert_eq!(
            channel_key("complete/tfrecord-object-detection/label_map.pbtxt"),
            "complete/tfrecord-object-detection/label_map.pbtxt"
        );
        assert_eq!(channel_key("manifest.json"), "manifest.json");
    }

    #[test]
    fn keys_that_name_one_file_are_refused() {
        let uri = |k: &str| format!("s3://b/{k}");
        let jobs = |keys: &[&str]| {
            prefix_jobs(
                keys.iter().map(|k| k.to_string()),
                "p/",
                Path::new("/d"),
                &uri,
            )
        };
        let ok = jobs(&["p/a/b.jpg", "p/a/c.jpg", "p/x.jpg"]).unwrap();
        assert_eq!(ok[0], ("p/a/b.jpg".into(), PathBuf::from("/d/a/b.jpg")));
        let e = jobs(&["p/a/b.jpg", "p/a//b.jpg"]).unwrap_err().to_string();
        assert!(e.contains("s3://b/p/a/b.jpg and s3://b/p/a//b.jpg"), "{e}");
        let e = jobs(&["p/a/./b.jpg", "p/a/b.jpg"]).unwrap_err().to_string();
        assert!(e.contains("would both be /d/a/b.jpg"), "{e}");
        let e = jobs(&["p/a/b.jpg", "p/a"]).unwrap_err().to_string();
        assert!(
            e.contains("s3://b/p/a would be a file where s3://b/p/a/b.jpg needs a folder"),
            "{e}"
        );
        assert!(jobs(&["p/../x"]).is_err());
    }

    #[test]
    fn keys_that_would_escape_are_refused() {
        assert_eq!(safe_rel("a/b.jpg").unwrap(), PathBuf::from("a/b.jpg"));
        assert!(safe_rel("../x").is_err());
        assert!(safe_rel("a/../../x").is_err());
        assert!(safe_rel("/etc/passwd").is_err());
        assert!(safe_rel("dir/").is_err());
    }
}
