//! The output folder's rules: imgprep writes into a folder it made (or is
//! told to use), never one that overlaps its inputs, one build at a time,
//! never through a symbolic link, and a build that did not finish never
//! looks finished.
//!
//! * Ownership: a folder is imgprep's when it holds imgprep's
//!   `manifest.json`, the in-progress marker [`BUILDING`] or the lock file
//!   [`LOCK`]. Anything else that is not empty is refused unless `force`.
//! * Exclusion: an advisory lock on the folder itself (`flock`, released by
//!   the kernel when the process ends, however it ends); the holder's pid,
//!   host, start and command are in [`LOCK`] for the error message.
//! * Completion: the marker is written before any output, the old manifest
//!   removed, and every file the build is about to write is appended to the
//!   marker first (write-ahead), so after a kill the next build knows every
//!   file the killed one may have left and removes those it does not write.
//!   The marker goes after the new manifest is written.

use super::manifest::MANIFEST;
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// In-progress marker: one relative path per line, the previous build's
/// files and then every file this build writes, each before it is written.
pub const BUILDING: &str = ".imgprep-building";
/// Who holds the folder (present while a build runs).
pub const LOCK: &str = ".imgprep-lock";
/// Tries, 50 ms apart, to take the lock of an output folder another build
/// holds before saying so.
const LOCK_TRIES: u32 = 10;

/// Holds the output folder's lock for as long as it lives.
pub struct OutGuard {
    _lock: std::fs::File,
    out: PathBuf,
    /// Whether the folder is imgprep's (it may clean up after itself there).
    pub owned: bool,
    /// OUT was made by this build: when the build stops before writing
    /// anything, the (empty) folder goes too.
    created: bool,
    /// The previous build's files with their sizes and checksums, from its
    /// manifest.
    previous_sums: super::manifest::FileList,
    /// The previous (killed) build's files that only its marker names.
    previous_unlisted: BTreeSet<String>,
    /// OUT was empty (or new) when the build began: nothing in it can be
    /// someone else's.
    fresh: bool,
    /// `--force`: files of the same names as outputs may be replaced.
    force: bool,
    /// The marker, once writing has begun.
    marker: Mutex<Option<std::fs::File>>,
    /// Every file this build writes, to catch two outputs on one path: the
    /// first 16 bytes of the SHA-256 of each path (the paths themselves cost
    /// 6 MB at 50,000 images; the odds that two of a million paths share
    /// those bytes are below 10^-26).
    claimed: Mutex<std::collections::HashSet<[u8; 16]>>,
    /// Folders of OUT found to be real folders, not links (see `write::under`).
    pub(super) checked_dirs: Mutex<std::collections::HashSet<String>>,
}

/// Whether `out` holds imgprep's manifest (`ours_manifest`), marker or
/// lock file; and whether it is empty.
fn is_owned(out: &Path, ours_manifest: bool) -> std::io::Result<(bool, bool)> {
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
    let marker = out.join(BUILDING).is_file() || out.join(LOCK).is_file();
    Ok((ours_manifest || marker, false))
}

/// Why the folder `dir` is not a finished build to send anywhere, if it is
/// not: a build is writing it now (it holds the lock), or one stopped
/// before it finished (its in-progress marker is there): its files are a
/// mix of two builds, and it has no manifest.
pub fn unfinished(dir: &Path) -> Option<String> {
    if let Ok(f) = std::fs::File::open(dir) {
        if let Err(std::fs::TryLockError::WouldBlock) = f.try_lock_shared() {
            let who = std::fs::read_to_string(dir.join(LOCK)).unwrap_or_default();
            return Some(format!(
                "{}: a build is writing it ({}); wait for it to finish",
                dir.display(),
                who.trim()
            ));
        }
    }
    dir.join(BUILDING).is_file().then(|| {
        format!(
            "{}: a build of it stopped before it finished ({BUILDING} is there), so its files \
             are a mix of two builds; build it again first",
            dir.display()
        )
    })
}

/// A path made absolute with symlinks resolved as far as it exists (the
/// rest appended), for comparing folders.
fn real(p: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    // one part at a time: links resolved where the path exists, `..` taken
    // against what was resolved (after a part that does not exist yet,
    // `missing/../x` is `x`, as the folders a build makes would be)
    let mut r = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => r.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                r.pop();
            }
            Component::Normal(n) => {
                r.push(n);
                if let Ok(resolved) = std::fs::canonicalize(&r) {
                    r = resolved;
                }
            }
        }
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

/// [`check_overlap`] for an OUT in object storage: an input under the same
/// store and bucket whose key is OUT's, below it or above it (as folders:
/// `data/out` is inside `data`, not inside `data/o`).
pub fn check_overlap_remote(out: &crate::storage::Uri, inputs: &[PathBuf]) -> Result<()> {
    let o = out.key.trim_matches('/');
    for input in inputs {
        if !crate::files::is_remote(input) {
            continue;
        }
        let Ok(i) = crate::storage::Uri::parse(&input.to_string_lossy()) else {
            continue;
        };
        if i.scheme != out.scheme || i.bucket != out.bucket {
            continue;
        }
        let k = i.key.trim_matches('/');
        let under = |a: &str, b: &str| {
            b.is_empty() || a.strip_prefix(b).is_some_and(|r| r.starts_with('/'))
        };
        let what = if o == k {
            "is"
        } else if under(o, k) {
            "is inside"
        } else if under(k, o) {
            "holds"
        } else {
            continue;
        };
        return Err(Error::Usage(format!(
            "the output {out} {what} the input {}: outputs and inputs must not overlap (a rebuild \
             would read its own outputs as inputs; choose an output prefix outside the inputs)",
            input.display()
        )));
    }
    Ok(())
}

/// Refuses a non-empty folder that is not imgprep's, unless `force`.
/// Returns (owned, empty).
fn refuse_foreign(out: &Path, ours_manifest: bool, force: bool) -> Result<(bool, bool)> {
    let (owned, empty) = is_owned(out, ours_manifest).map_err(Error::io(out))?;
    if !owned && !force {
        return Err(Error::Usage(format!(
            "{} is not empty and was not made by imgprep (it has no imgprep manifest.json): \
             refusing to write into it. Use a new or empty folder, or --force to build into it \
             anyway (imgprep then writes its files there, replacing files of the same names, and \
             removes nothing it did not write)",
            out.display()
        )));
    }
    Ok((owned, empty))
}

/// What [`acquire`] refuses before writing, checked without taking the
/// folder (for a driver that checks before its workers start): a folder
/// that is not empty and not imgprep's, unless `force`. A folder that is
/// not there is fine.
pub fn check_writable(out: &Path, force: bool) -> Result<()> {
    if std::fs::symlink_metadata(out).is_err() {
        return Ok(());
    }
    let ours = super::holds_a_dataset(out);
    refuse_foreign(out, ours, force).map(drop)
}

/// Takes the output folder for a build: creates it (when it is not there),
/// locks it (a second build into it fails at once, naming the first; the
/// lock writes nothing), reads the previous build's manifest once, refuses a
/// non-empty folder that is not imgprep's unless `force`, and notes the
/// previous build's files. Returns the guard and that manifest with the
/// SHA-256 of its text.
pub fn acquire(
    out: &Path,
    force: bool,
) -> Result<(
    OutGuard,
    Option<(super::Manifest, crate::checksum::Sha256Sum)>,
)> {
    let created = std::fs::symlink_metadata(out).is_err();
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let lock = std::fs::File::open(out).map_err(Error::io(out))?;
    let holder = out.join(LOCK);
    // a holder killed a moment ago: the kernel lets its lock go a few
    // milliseconds after the process is gone
    let mut tries = 0;
    let locked = loop {
        match lock.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) if tries < LOCK_TRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => break r,
        }
    };
    match locked {
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
    // (read under the lock: no build can be writing it)
    let previous = super::read_manifest_summed(out);
    let ours = previous.as_ref().is_some_and(|(m, _)| m.tool == "imgprep");
    let (owned, empty) = refuse_foreign(out, ours, force)?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cmd: Vec<String> = std::env::args().collect();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let _ = std::fs::write(
        &holder,
        format!(
            "pid {} on {}, started {}: {}",
            std::process::id(),
            host.trim(),
            utc_text(since),
            cmd.join(" ")
        ),
    );
    let mut previous_unlisted = BTreeSet::new();
    let mut previous_sums = super::manifest::FileList::default();
    if owned && !empty {
        if let Some((m, _)) = &previous {
            previous_sums = m.files.clone();
        }
        if let Ok(text) = std::fs::read_to_string(out.join(BUILDING)) {
            // a build that stopped: the files of the build before it, with
            // their sums (a user's edit of one is seen as at the end of a
            // finished build), then the files it wrote itself
            let mut sums = std::collections::HashMap::new();
            let mut named = BTreeSet::new();
            for line in text.lines().filter(|l| !l.is_empty()) {
                if previous_sums.contains_key(line) {
                    continue;
                }
                match marker_sums(line) {
                    Some((rel, s)) => {
                        sums.insert(rel.to_string(), s);
                    }
                    None => {
                        sums.remove(line);
                        named.insert(line);
                    }
                }
            }
            // what the stopped build wrote is known only by name: a file at
            // such a path is its own when it was put there before the
            // build's last note (a change time no later than the marker's
            // last write; a change time cannot be set back); then it counts
            // with its sums as they are now, like a finished build's file.
            // One made or changed later may be somebody's, or the stopped
            // build's last file (finished after its last note): this build
            // may write it again (the stopped build had claimed the path),
            // but never removes it if it does not
            let stopped = std::fs::metadata(out.join(BUILDING))
                .map(|m| modified_ns(&m))
                .unwrap_or(i128::MIN);
            for rel in named {
                let Ok(p) = super::write::under(out, rel) else {
                    continue;
                };
                match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.is_file() && changed_ns(&m) <= stopped => {
                        if let Ok(s) = crate::checksum::file_sums(&p) {
                            sums.insert(rel.to_string(), s);
                        }
                    }
                    _ => {
                        previous_unlisted.insert(rel.to_string());
                    }
                }
            }
            if previous_sums.is_empty() {
                previous_sums =
                    super::manifest::FileList::from_unsorted(sums.into_iter().collect())
                        .expect("one entry per path");
            } else {
                for (rel, s) in sums {
                    previous_sums.insert(rel, s);
                }
            }
        }
    }
    let guard = OutGuard {
        _lock: lock,
        out: out.to_path_buf(),
        owned,
        created,
        previous_sums,
        previous_unlisted,
        fresh: empty,
        force,
        marker: Mutex::new(None),
        claimed: Mutex::new(std::collections::HashSet::new()),
        checked_dirs: Mutex::new(std::collections::HashSet::new()),
    };
    Ok((guard, previous))
}

impl OutGuard {
    /// The previous build's files: listed in its manifest, or only in the
    /// marker of a killed build (each path once).
    pub fn previous(&self) -> impl Iterator<Item = &String> {
        self.previous_sums.keys().chain(&self.previous_unlisted)
    }

    /// Before anything is written: a file already in one of `folders` (the
    /// outputs' folders, relative to OUT) that no earlier build wrote there,
    /// in a folder no earlier build wrote into, is somebody's: refused now
    /// (a new output's folder holding a user's file was found only when its
    /// file came to be written, after the old manifest had been removed and
    /// other files rewritten, which left a good dataset half-made).
    pub fn refuse_files_in_new_folders(&self, folders: &[String]) -> Result<()> {
        if self.fresh || self.force {
            return Ok(());
        }
        for f in folders {
            let inside = format!("{f}/");
            if self.previous().any(|p| p.starts_with(&inside)) {
                continue;
            }
            let Ok(dir) = super::write::under(&self.out, f) else {
                continue;
            };
            if let Some(found) = first_file(&dir) {
                return Err(Error::Usage(format!(
                    "{} is in {}, the folder of an output new to this build, and no imgprep build \
                     wrote it: refusing to build that output there (move it away, or use --force: \
                     the build then replaces only files of its outputs' names)",
                    found.display(),
                    dir.display()
                )));
            }
        }
        Ok(())
    }

    /// Whether a file is at `rel` that no imgprep build wrote there (so
    /// not to be replaced without `--force`).
    pub fn somebodys(&self, rel: &str) -> bool {
        !self.fresh
            && !self.force
            && !self.previous_sums.contains_key(rel)
            && !self.previous_unlisted.contains(rel)
            && std::fs::symlink_metadata(self.out.join(rel)).is_ok()
    }

    /// The size an earlier build's file at `rel` had, by its manifest (or
    /// the marker of a stopped build, for what it is known to have written).
    pub fn previous_size(&self, rel: &str) -> Option<u64> {
        self.previous_sums.get(rel).map(|s| s.size)
    }

    /// Where `rel` is in OUT.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.out.join(rel)
    }

    /// Whether every file this build may write can be replaced: OUT was
    /// empty or new when the build began, or `--force`.
    pub fn replaces_freely(&self) -> bool {
        self.fresh || self.force
    }

    /// Before the first output is written: the marker (with the previous
    /// files) goes in, the old manifest goes out.
    pub fn begin_writing(&self) -> Result<()> {
        let mut list = String::new();
        for (f, sums) in self.previous_sums.iter() {
            list.push_str(&format!("{f}\t{}\t{}\n", sums.size, sums.sha256));
        }
        for f in &self.previous_unlisted {
            list.push_str(f);
            list.push('\n');
        }
        let p = self.out.join(BUILDING);
        crate::output::write_atomic(&p, list.as_bytes()).map_err(Error::io(&p))?;
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .map_err(Error::io(&p))?;
        *self.marker.lock().unwrap() = Some(f);
        match std::fs::remove_file(self.out.join(MANIFEST)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(self.out.join(MANIFEST))(e)),
        }
    }

    /// Notes `rel` in the marker before it is written (see the module doc);
    /// a path claimed twice in one build (names that collide, such as a split
    /// `train_lst` next to SageMaker's `train_lst/`) is an error before the
    /// second write.
    pub fn record(&self, rel: &str) -> Result<()> {
        if self.somebodys(rel) {
            return Err(Error::Usage(format!(
                "{} is there already and no imgprep build wrote it: refusing to replace it \
                 (move it away, or use --force to let the build replace files of its outputs' \
                 names)",
                self.out.join(rel).display()
            )));
        }
        let sum = crate::checksum::sha256(rel.as_bytes());
        let key: [u8; 16] = sum[..16].try_into().expect("16 of 32 bytes");
        if !self.claimed.lock().unwrap().insert(key) {
            return Err(Error::Usage(format!(
                "two files of this build would both be {rel} in {}: split, class or item names \
                 collide; rename one",
                self.out.display()
            )));
        }
        if let Some(f) = self.marker.lock().unwrap().as_mut() {
            // one write (`writeln!` made two: the name, then the newline)
            f.write_all(format!("{rel}\n").as_bytes())
                .map_err(Error::io(self.out.join(BUILDING)))?;
        }
        Ok(())
    }

    /// After the manifest is written: removes what earlier builds (or a
    /// killed one) wrote and this one did not, when it is still what they
    /// wrote (a file listed with a size and checksum that no longer match is
    /// someone else's now and stays), then the folders left empty by that,
    /// then the marker. Returns the files
    /// left in place that way, so the build can say so: a reader that lists
    /// the folder would still read them.
    pub fn finish(
        &self,
        now: &super::manifest::FileList,
        links_a_source: &dyn Fn(&std::fs::Metadata) -> bool,
    ) -> Vec<String> {
        let mut left = Vec::new();
        let mut emptied = BTreeSet::new();
        for f in self.previous().filter(|f| !now.contains_key(f)) {
            // only plain paths inside OUT, never through a link
            let Ok(p) = super::write::under(&self.out, f) else {
                continue;
            };
            // named by a stopped build, not known to be its own (see acquire)
            if !self.previous_sums.contains_key(f) {
                if std::fs::symlink_metadata(&p).is_ok() {
                    left.push(f.clone());
                }
                continue;
            }
            if let Some(want) = self.previous_sums.get(f) {
                if crate::checksum::file_sums(&p).ok().as_ref() != Some(want) {
                    match std::fs::symlink_metadata(&p) {
                        // a hard link to a source of this build (pass-through
                        // images are linked), changed with it: removing the
                        // link leaves the data where the source is
                        Ok(m) if links_a_source(&m) => {}
                        Ok(_) => {
                            left.push(f.clone());
                            continue;
                        }
                        Err(_) => continue,
                    }
                }
            }
            if std::fs::remove_file(&p).is_ok() {
                emptied.extend(
                    p.ancestors()
                        .skip(1)
                        .take_while(|d| *d != self.out && d.starts_with(&self.out))
                        .map(Path::to_path_buf),
                );
            }
        }
        // the folders an earlier build made for those files, when nothing is
        // left in them (remove_dir takes only an empty folder), deepest first
        let mut emptied: Vec<PathBuf> = emptied.into_iter().collect();
        emptied.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in emptied {
            let _ = std::fs::remove_dir(d);
        }
        let _ = std::fs::remove_file(self.out.join(BUILDING));
        left
    }
}

impl Drop for OutGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.out.join(LOCK));
        let wrote = self.marker.get_mut().map_or(true, |m| m.is_some());
        if self.created && !wrote {
            // refused before writing: the folder it made, if still empty
            let _ = std::fs::remove_dir(&self.out);
        }
    }
}

/// The first file (or link) found below `dir`, folders in listing order;
/// None when there is none or `dir` is not there.
fn first_file(dir: &Path) -> Option<PathBuf> {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(_) => return Some(e.path()),
                Err(_) => {}
            }
        }
    }
    None
}

#[cfg(unix)]
fn changed_ns(m: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128
}

#[cfg(unix)]
fn modified_ns(m: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128
}

#[cfg(not(unix))]
fn changed_ns(_: &std::fs::Metadata) -> i128 {
    // no change time: nothing the stopped build named is taken for its own
    i128::MAX
}

#[cfg(not(unix))]
fn modified_ns(_: &std::fs::Metadata) -> i128 {
    i128::MIN
}

/// A line of the marker naming a file of the build before, with its size
/// and SHA-256 (`rel\tsize\tsha256`).
fn marker_sums(line: &str) -> Option<(&str, crate::checksum::FileSums)> {
    let mut parts = line.rsplitn(3, '\t');
    let (sha, size, rel) = (parts.next()?, parts.next()?, parts.next()?);
    Some((
        rel,
        crate::checksum::FileSums {
            size: size.parse().ok()?,
            sha256: sha.parse().ok()?,
        },
    ))
}

/// `secs` after 1970-01-01 as `2026-12-06 17:58:59 UTC` (the civil-from-days
/// algorithm of H. Hinnant's date library; proleptic Gregorian calendar).
fn utc_text(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod utc_tests {
    #[test]
    fn dates_from_seconds() {
        assert_eq!(super::utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc_text(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc_text(1_796_579_939), "2026-12-06 17:58:59 UTC");
        assert_eq!(super::utc_text(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }
}

#[cfg(test)]
mod overlap_tests {
    use super::check_overlap_remote;
    use crate::storage::Uri;
    use std::path::PathBuf;

    #[test]
    fn object_store_outputs_must_not_overlap_inputs() {
        let out = Uri::parse("s3://b/data/out").unwrap();
        let check = |input: &str| check_overlap_remote(&out, &[PathBuf::from(input)]);
        for (input, what) in [
            ("s3://b/data", "is inside"),
            ("s3://b/data/", "is inside"),
            ("s3://b", "is inside"),
            ("s3://b/data/out", "is"),
            ("s3://b/data/out/x/index.csv", "holds"),
        ] {
            let e = check(input).unwrap_err().to_string();
            assert!(e.contains(what), "{input}: {e}");
        }
        for input in [
            "s3://b/data/o",
            "s3://b/data/out2",
            "s3://other/data",
            "/local/data",
            "https://b/data",
        ] {
            assert!(check(input).is_ok(), "{input}");
        }
    }
}
