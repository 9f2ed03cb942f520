//! The output folder's rules: imgprep writes into a folder it made (or is
//! told to use), never one that overlaps its inputs, one build at a time,
//! and a build that did not finish never looks finished.
//!
//! * Ownership: a folder is imgprep's when it holds imgprep's
//!   `manifest.json` or the in-progress marker [`BUILDING`], or nothing but
//!   files imgprep writes there. Anything else that is not empty is refused
//!   unless `force`.
//! * Exclusion: an advisory lock on the folder itself (`flock`, released by
//!   the kernel when the process ends, however it ends); the holder's pid,
//!   host and command are kept beside the cache for the error message.
//! * Completion: the marker is written before any output and removed after
//!   the manifest, which is removed first; an interrupted build therefore
//!   has no manifest and is never "up to date". The marker keeps the
//!   previous build's file list, so its files can still be cleaned up.

use super::manifest::MANIFEST;
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// In-progress marker (JSON list of the previous build's files).
pub const BUILDING: &str = ".imgprep-building";
/// Files imgprep itself may put in an output folder before a build.
const OWN_FILES: &[&str] = &["imgprep-convert.toml"];

/// Holds the output folder's lock for as long as it lives.
pub struct OutGuard {
    _lock: std::fs::File,
    out: PathBuf,
    /// Whether the folder is imgprep's (it may clean up after itself there).
    pub owned: bool,
    /// The previous build's files (from its manifest or a marker).
    pub previous: BTreeSet<String>,
}

fn holder_file(out: &Path) -> PathBuf {
    let abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let id = crate::checksum::sha256_hex(abs.to_string_lossy().as_bytes());
    super::cache::cache_root()
        .join("locks")
        .join(format!("{}.txt", &id[..16]))
}

/// Whether `out` holds imgprep's manifest or marker, or only imgprep's files.
fn is_owned(out: &Path) -> std::io::Result<(bool, bool)> {
    let entries: Vec<String> = match std::fs::read_dir(out) {
        Ok(d) => d
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((true, true)),
        Err(e) => return Err(e),
    };
    if entries.is_empty() {
        return Ok((true, true));
    }
    let ours_manifest = super::read_manifest(out).is_some_and(|m| m.tool == "imgprep");
    let marker = out.join(BUILDING).is_file();
    let only_own = entries.iter().all(|e| OWN_FILES.contains(&e.as_str()));
    Ok((ours_manifest || marker || only_own, false))
}

/// A path made absolute with symlinks resolved as far as it exists (the
/// rest appended), for comparing folders.
fn real(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(n), Some(parent)) => {
                rest.push(n.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut r = std::fs::canonicalize(&existing).unwrap_or(existing);
    for n in rest.into_iter().rev() {
        r.push(n);
    }
    r
}

/// Refuses an output folder equal to, inside or around one of the inputs
/// (an output inside a folder source would be read back as new classes;
/// an input inside the output could be overwritten or removed).
pub fn check_overlap(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let o = real(out);
    for input in inputs {
        if crate::files::is_remote(input) {
            continue;
        }
        let i = real(input);
        let what = if o == i {
            "is"
        } else if o.starts_with(&i) {
            "is inside"
        } else if i.starts_with(&o) {
            "holds"
        } else {
            continue;
        };
        return Err(Error::Usage(format!(
            "the output folder {} {what} the input {}: outputs and inputs must not overlap \
             (choose an output folder outside the inputs)",
            out.display(),
            input.display()
        )));
    }
    Ok(())
}

/// Refuses a non-empty folder that is not imgprep's, unless `force`.
/// Returns (owned, empty).
pub fn refuse_foreign(out: &Path, force: bool) -> Result<(bool, bool)> {
    let (owned, empty) = is_owned(out).map_err(Error::io(out))?;
    if !owned && !force {
        return Err(Error::Usage(format!(
            "{} is not empty and was not made by imgprep (it has no imgprep manifest.json): \
             refusing to write into it. Use a new or empty folder, or --force to build into it \
             anyway (imgprep then writes its own files there and removes nothing it did not write)",
            out.display()
        )));
    }
    Ok((owned, empty))
}

/// Takes the output folder for a build: refuses a non-empty folder that is
/// not imgprep's unless `force`, creates it, locks it (a second build into
/// it fails at once, naming the first), and reads the previous build's files.
pub fn acquire(out: &Path, force: bool) -> Result<OutGuard> {
    let (owned, empty) = refuse_foreign(out, force)?;
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let lock = std::fs::File::open(out).map_err(Error::io(out))?;
    let holder = holder_file(out);
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let who = std::fs::read_to_string(&holder).unwrap_or_default();
            let who = who.trim();
            return Err(Error::Usage(format!(
                "{} is being built by another imgprep process{}; wait for it to finish or use \
                 another output folder",
                out.display(),
                if who.is_empty() {
                    String::new()
                } else {
                    format!(" ({who})")
                }
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(out)(e)),
    }
    if let Some(d) = holder.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cmd: Vec<String> = std::env::args().collect();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let _ = std::fs::write(
        &holder,
        format!(
            "pid {} on {}, since {since} (Unix time): {}",
            std::process::id(),
            host.trim(),
            cmd.join(" ")
        ),
    );
    let mut previous = BTreeSet::new();
    if owned && !empty {
        if let Some(m) = super::read_manifest(out) {
            previous.extend(m.files.into_keys());
        }
        if let Ok(text) = std::fs::read_to_string(out.join(BUILDING)) {
            if let Ok(list) = serde_json::from_str::<Vec<String>>(&text) {
                previous.extend(list);
            }
        }
    }
    Ok(OutGuard {
        _lock: lock,
        out: out.to_path_buf(),
        owned,
        previous,
    })
}

impl OutGuard {
    /// Before the first output is written: the marker (with the previous
    /// files) goes in, the old manifest goes out.
    pub fn begin_writing(&self) -> Result<()> {
        let list = serde_json::to_string(&self.previous).unwrap();
        let p = self.out.join(BUILDING);
        crate::output::write_atomic(&p, list.as_bytes()).map_err(Error::io(&p))?;
        match std::fs::remove_file(self.out.join(MANIFEST)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(self.out.join(MANIFEST))(e)),
        }
    }

    /// After the manifest is written: the build is complete.
    pub fn finish(&self) {
        let _ = std::fs::remove_file(self.out.join(BUILDING));
    }
}

impl Drop for OutGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(holder_file(&self.out));
    }
}
