//! The item cache: encoded images keyed by what they were made from (source
//! path, size, modification time) and how (the transform). A re-run decodes
//! only items whose key is new. Entries are written atomically. Each entry
//! also keeps the SHA-256 of the source file it was made from (for the
//! per-item table), so a cache hit never re-reads the source.
//!
//! The cache lives outside the output folder (see [`cache_dir_for`]), so an
//! output folder holds the dataset and nothing else.

use crate::image::{ImageFormat, ImageInfo, SourceColor, SourceGeometry};
use crate::output::write_atomic;
use std::path::{Path, PathBuf};

/// The folder of the notes of which outputs use a shared cache folder.
const OWNERS: &str = "owners";

fn owner_name(out: &Path) -> String {
    super::reuse::table_name(out, "owner")
}

/// The file that marks a folder as an imgprep item cache (the Cache
/// Directory Tagging convention, which backup tools honour).
pub const TAG: &str = "CACHEDIR.TAG";
const TAG_TEXT: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by imgprep (its item cache).\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";

/// An entry folder's name: the first two hex digits of its keys.
fn is_entry_folder(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks that `dir`, a cache folder the user named, may be used (and
/// pruned) as an item cache: missing or empty (made and tagged now), tagged
/// ([`TAG`]), or holding nothing but what an imgprep cache holds (an
/// untagged cache of an earlier version, tagged now). Anything else is
/// somebody's folder, refused: a build removes what it finds in its cache
/// folder that it no longer needs. (The default folder, under imgprep's
/// own cache root, is not checked.)
pub fn claim(dir: &Path) -> Result<(), String> {
    // (another program's tag does not make the folder ours)
    if std::fs::read_to_string(dir.join(TAG)).is_ok_and(|t| t == TAG_TEXT) {
        return Ok(());
    }
    // a new folder is tagged at once: a first build stopped half-way
    // leaves entries and no notes, and the next build takes the folder
    // for its own by the tag
    let new = |dir: &Path| {
        std::fs::create_dir_all(dir)
            .map(|()| tag(dir))
            .map_err(|e| format!("{}: {e} (the item cache)", dir.display()))
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return new(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(format!("{}: not a folder (the item cache)", dir.display()))
        }
        Err(e) => return Err(format!("{}: {e} (the item cache)", dir.display())),
    };
    let refuse = |name: &str| {
        Err(format!(
            "{}: not empty and not an imgprep item cache (it holds {name:?}); a build removes \
             what it no longer needs from its cache folder, so give --cache-dir a new or empty \
             folder",
            dir.display()
        ))
    };
    // an untagged cache of an earlier version: entry folders holding only
    // entries, and the notes a finished build leaves (without them, folders
    // named 00-ff of somebody's could pass for entry folders)
    let (mut any, mut notes) = (false, false);
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        // what a file system or a file browser puts in any folder
        if (name == "lost+found" && is_dir) || name == ".DS_Store" {
            continue;
        }
        any = true;
        if is_dir && (name == super::reuse::TABLES || name == super::STAMPS || name == OWNERS) {
            notes = true;
            continue;
        }
        let only_entries = is_dir
            && is_entry_folder(&name)
            && std::fs::read_dir(e.path()).is_ok_and(|d| {
                d.flatten().all(|f| {
                    let n = f.file_name();
                    key_bytes(n.as_encoded_bytes()).is_some()
                        || crate::output::is_partial_name(&n.to_string_lossy())
                })
            });
        if !only_entries {
            return refuse(&name);
        }
    }
    match (any, notes) {
        (false, _) => new(dir),
        (true, true) => {
            tag(dir);
            Ok(())
        }
        (true, false) => refuse("entry-like folders, but no notes of a build"),
    }
}

/// Marks `dir` (when it exists) as an item cache: see [`claim`].
pub fn tag(dir: &Path) {
    if dir.is_dir() && !std::fs::read_to_string(dir.join(TAG)).is_ok_and(|t| t == TAG_TEXT) {
        let _ = write_atomic(&dir.join(TAG), TAG_TEXT.as_bytes());
    }
}

const MAGIC: &[u8; 4] = b"IPC4";
/// magic, format, channels, colour, orientation, width, height, SHA-256,
/// source upright width and height
const HEADER: usize = 56;

/// SHA-256 of an item's source file.
pub type SourceSha = [u8; 32];

/// Where imgprep keeps what it may delete at any time: `IMGPREP_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/imgprep`, else `~/.cache/imgprep`, else the
/// temporary folder.
pub fn cache_root() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("IMGPREP_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|x| x.join("imgprep")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/imgprep")))
        .unwrap_or_else(|| std::env::temp_dir().join("imgprep-cache"))
}

/// The item cache of the build output `out`: `cache_root()/items/ID`, ID
/// from the output folder's absolute path.
pub fn cache_dir_for(out: &Path) -> PathBuf {
    let abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let id = crate::checksum::sha256_hex(abs.to_string_lossy().as_bytes());
    cache_root().join("items").join(&id[..16])
}

pub struct Cache {
    dir: PathBuf,
}

/// Length of a cache key (hex digits).
const KEY: usize = 40;
const KNOWN_MAGIC: &[u8; 8] = b"IPKNOWN1";

/// The files in a cache folder's entry folders (see [`Cache::list`]): what
/// [`Cache::known`] and [`Cache::retain`] go by, listed once a build. Entry
/// names are kept as their 20 bytes, sorted (at 1.28 M entries a name as an
/// `OsString` took 72 bytes, and a set of them was built beside it).
#[derive(Default)]
pub struct Listing(Vec<Folder>);

/// One entry folder of a [`Listing`].
struct Folder {
    dir: PathBuf,
    /// Files named as a key (40 lowercase hex digits), as bytes, sorted.
    keys: Vec<KeyBytes>,
    /// Any other files (a killed build's temporary files).
    others: Vec<std::ffi::OsString>,
}

impl Folder {
    fn name(&self) -> &[u8] {
        self.dir
            .file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default()
    }
}

impl Listing {
    /// Whether the entry of `key` is where [`Cache::path`] puts it (the
    /// folders are sorted by name).
    fn holds(&self, key: &KeyBytes) -> bool {
        let text = key_text(key);
        let name = &text[..2];
        self.0
            .binary_search_by(|f| f.name().cmp(name))
            .is_ok_and(|at| self.0[at].keys.binary_search(key).is_ok())
    }
}

/// A cache key (40 hex digits) as its 20 bytes.
type KeyBytes = [u8; KEY / 2];

/// `name` as a key's bytes, when it is a key: 40 lowercase hex digits.
fn key_bytes(name: &[u8]) -> Option<KeyBytes> {
    let mut key = [0u8; KEY / 2];
    crate::checksum::unhex_into(name, &mut key).map(|()| key)
}

/// A key's bytes as its name (40 lowercase hex digits).
fn key_text(key: &KeyBytes) -> [u8; KEY] {
    let mut text = [0u8; KEY];
    crate::checksum::hex_into(key, &mut text);
    text
}

/// Writes a known list entry by entry (streamed: 96 bytes an entry, 120 MB
/// for 1.28 M items, never held whole); see [`Cache::known_writer`].
pub struct KnownWriter(Option<crate::output::AtomicFile>);

impl KnownWriter {
    pub fn add(
        &mut self,
        key: &str,
        (info, sha, geometry): (ImageInfo, SourceSha, SourceGeometry),
    ) {
        use std::io::Write;
        let Some(f) = self.0.as_mut() else { return };
        if key.len() == KEY {
            let ok = f.write_all(key.as_bytes()).is_ok()
                && f.write_all(&Cache::header(&info, &sha, &geometry)).is_ok();
            if !ok {
                // (dropped unfinished: no list, as when it cannot be made)
                self.0 = None;
            }
        }
    }

    /// Puts the list in place.
    pub fn finish(mut self) {
        if let Some(f) = self.0.take() {
            let _ = f.persist();
        }
    }
}

/// Entries of a cache folder whose headers a build knows without opening
/// them (see [`Cache::known`]), sorted by key: 76 bytes an entry (a hash map
/// keyed by the text took about 160 with its slack).
#[derive(Default)]
pub struct Known(Vec<(KeyBytes, (ImageInfo, SourceSha, SourceGeometry))>);

impl Known {
    /// What [`Cache::info`] would read for `key`, if known.
    pub fn info(&self, key: &str) -> Option<(ImageInfo, SourceSha, SourceGeometry)> {
        let key = key_bytes(key.as_bytes())?;
        let at = self.0.binary_search_by(|(k, _)| k.cmp(&key)).ok()?;
        Some(self.0[at].1)
    }
}

pub use crate::files::fingerprint;

fn format_code(f: ImageFormat) -> u8 {
    match f {
        ImageFormat::Jpeg => 1,
        ImageFormat::Png => 2,
        ImageFormat::Webp => 3,
        ImageFormat::Gif => 4,
        ImageFormat::Bmp => 5,
        ImageFormat::Tiff => 6,
    }
}

fn format_from(c: u8) -> Option<ImageFormat> {
    Some(match c {
        1 => ImageFormat::Jpeg,
        2 => ImageFormat::Png,
        3 => ImageFormat::Webp,
        4 => ImageFormat::Gif,
        5 => ImageFormat::Bmp,
        6 => ImageFormat::Tiff,
        _ => return None,
    })
}

impl Cache {
    pub fn new(dir: PathBuf) -> Self {
        Cache { dir }
    }

    /// A local path counts as its absolute form, so a build run from
    /// another folder (a relative recipe path spelled differently) finds
    /// the same entries.
    pub fn key(transform: &str, path: &Path, size: u64, mtime: i128) -> String {
        let abs;
        let path = match crate::files::is_remote(path) {
            true => path,
            false => {
                abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
                abs.as_path()
            }
        };
        let text = format!("{transform}\0{}\0{size}\0{mtime}", path.display());
        crate::checksum::sha256_hex(text.as_bytes())[..40].to_string()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(key)
    }

    fn parse_header(h: &[u8]) -> Option<(ImageInfo, SourceSha, SourceGeometry)> {
        if h.len() < HEADER || &h[..4] != MAGIC {
            return None;
        }
        let info = ImageInfo {
            format: format_from(h[4])?,
            channels: h[5],
            source: SourceColor::from_code(h[6])?,
            width: u32::from_le_bytes(h[8..12].try_into().ok()?),
            height: u32::from_le_bytes(h[12..16].try_into().ok()?),
        };
        let geometry = SourceGeometry {
            width: u32::from_le_bytes(h[48..52].try_into().ok()?),
            height: u32::from_le_bytes(h[52..56].try_into().ok()?),
            orientation: h[7],
        };
        Some((info, h[16..48].try_into().ok()?, geometry))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached image, its info and its source's SHA-256, if present and intact.
    pub fn get(&self, key: &str) -> Option<(ImageInfo, SourceSha, SourceGeometry, Vec<u8>)> {
        let mut data = std::fs::read(self.path(key)).ok()?;
        let (info, sha, geometry) = Self::parse_header(&data)?;
        data.drain(..HEADER);
        Some((info, sha, geometry, data))
    }

    /// Only the info of a cached image (reads its header, not the image).
    pub fn info(&self, key: &str) -> Option<(ImageInfo, SourceSha, SourceGeometry)> {
        use std::io::Read;
        let mut h = [0u8; HEADER];
        std::fs::File::open(self.path(key))
            .ok()?
            .read_exact(&mut h)
            .ok()?;
        Self::parse_header(&h)
    }

    /// Length of the cached image bytes, from the entry's size.
    pub fn len(&self, key: &str) -> Option<u64> {
        let m = std::fs::metadata(self.path(key)).ok()?;
        m.len().checked_sub(HEADER as u64)
    }

    /// An entry's header: what [`Cache::info`] reads back.
    fn header(info: &ImageInfo, sha: &SourceSha, geometry: &SourceGeometry) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..4].copy_from_slice(MAGIC);
        h[4..8].copy_from_slice(&[
            format_code(info.format),
            info.channels,
            info.source.code(),
            geometry.orientation,
        ]);
        h[8..12].copy_from_slice(&info.width.to_le_bytes());
        h[12..16].copy_from_slice(&info.height.to_le_bytes());
        h[16..48].copy_from_slice(sha);
        h[48..52].copy_from_slice(&geometry.width.to_le_bytes());
        h[52..56].copy_from_slice(&geometry.height.to_le_bytes());
        h
    }

    /// Saves at `at` the headers of the entries `used` (key, and what
    /// [`Cache::info`] gave or [`Cache::put`] stored), for [`Cache::known`].
    pub fn save_known<K: AsRef<str>>(
        &self,
        at: &Path,
        used: impl Iterator<Item = (K, (ImageInfo, SourceSha, SourceGeometry))>,
    ) {
        if let Some(mut w) = self.known_writer(at) {
            for (key, known) in used {
                w.add(key.as_ref(), known);
            }
            w.finish();
        }
    }

    /// A writer of what [`Cache::save_known`] saves, one entry at a time;
    /// None when the file cannot be made (a list not saved only means that
    /// the next build looks at those items again).
    pub fn known_writer(&self, at: &Path) -> Option<KnownWriter> {
        use std::io::Write;
        if let Some(d) = at.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let mut f = crate::output::AtomicFile::create_unsummed(at).ok()?;
        f.write_all(KNOWN_MAGIC).ok()?;
        Some(KnownWriter(Some(f)))
    }

    /// The files of this cache folder's entry folders, as they are now.
    pub fn list(&self) -> Listing {
        let mut listing = Listing(Vec::new());
        let Ok(subdirs) = std::fs::read_dir(&self.dir) else {
            return listing;
        };
        for d in subdirs.flatten() {
            // the record tables (see `reuse`) and the notes are kept by their own rules
            // only the entry folders (the record tables and the notes are
            // kept by their own rules; anything else is not the cache's)
            if !is_entry_folder(&d.file_name().to_string_lossy()) {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(d.path()) else {
                continue;
            };
            let mut folder = Folder {
                dir: d.path(),
                keys: Vec::new(),
                others: Vec::new(),
            };
            for e in entries.flatten() {
                let name = e.file_name();
                match key_bytes(name.as_encoded_bytes()) {
                    Some(key) => folder.keys.push(key),
                    // a killed build's temporary file (nothing else is ours)
                    None if crate::output::is_partial_name(&name.to_string_lossy()) => {
                        folder.others.push(name)
                    }
                    None => {}
                }
            }
            folder.keys.sort_unstable();
            folder.keys.shrink_to_fit();
            listing.0.push(folder);
        }
        listing.0.sort_by(|a, b| a.name().cmp(b.name()));
        listing
    }

    /// The entries saved at `at` by [`Cache::save_known`] whose files are in
    /// `listing` (of this cache folder, made by [`Cache::list`]). A rebuild
    /// takes the info of an unchanged item from here instead of opening its
    /// entry: 20,000 opens were 0.05 s of a rebuild after a 1 % change. A
    /// saved entry whose file has gone since (removed by hand, or by a build
    /// with another recipe) is not known, so it is looked at (or made)
    /// again. Empty when there is no such file or it is not one of ours.
    pub fn known(&self, at: &Path, listing: &Listing) -> Known {
        Self::read_known(at, &|k| listing.holds(k), usize::MAX)
    }

    /// The headers of local pass-through sources saved at `at` by
    /// [`Cache::save_known`]: such items have no entry (their bytes are
    /// read from the source when written), and these notes of the last
    /// build carry their header check and SHA-256 to the next one, keyed
    /// as an entry would be (source path, size and print after the build,
    /// transform), so that a rebuild reads only the sources that changed.
    /// At most `most` entries are read (the build's number of items).
    pub fn sources_known(at: &Path, most: usize) -> Known {
        Self::read_known(at, &|_| true, most)
    }

    fn read_known(at: &Path, keep: &dyn Fn(&KeyBytes) -> bool, most: usize) -> Known {
        use std::io::Read;
        let mut known = Known(Vec::new());
        let Ok(f) = std::fs::File::open(at) else {
            return known;
        };
        let mut r = std::io::BufReader::with_capacity(1 << 16, f);
        let mut magic = [0u8; 8];
        if r.read_exact(&mut magic).is_err() || &magic != KNOWN_MAGIC {
            return known;
        }
        // (what is kept is bounded by the listing, or by `most`, whatever
        // the file's size)
        let mut entry = [0u8; KEY + HEADER];
        while known.0.len() < most && r.read_exact(&mut entry).is_ok() {
            let (key, header) = entry.split_at(KEY);
            let Some(key) = key_bytes(key).filter(|k| keep(k)) else {
                continue;
            };
            if let Some(info) = Self::parse_header(header) {
                known.0.push((key, info));
            }
        }
        // (a key listed twice, which a build does not write: the first counts)
        known.0.sort_by_key(|a| a.0);
        known.0.dedup_by(|b, a| a.0 == b.0);
        known.0.shrink_to_fit();
        known
    }

    pub fn put(
        &self,
        key: &str,
        info: &ImageInfo,
        sha: &SourceSha,
        geometry: &SourceGeometry,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        let p = self.path(key);
        std::fs::create_dir_all(p.parent().unwrap())?;
        let mut data = Vec::with_capacity(HEADER + bytes.len());
        data.extend_from_slice(&Self::header(info, sha, geometry));
        data.extend_from_slice(bytes);
        write_atomic(&p, &data).map(drop)
    }

    /// Takes `other`'s entry for `key` into this cache without reading the
    /// image: a hard link where both are on one file system (entries are
    /// never changed in place, only replaced), else a copy. Returns the
    /// entry's info, or `None` when `other` has no intact entry.
    pub fn adopt(
        &self,
        other: &Cache,
        key: &str,
    ) -> Option<std::io::Result<(ImageInfo, SourceSha, SourceGeometry)>> {
        let found = other.info(key)?;
        let (from, to) = (other.path(key), self.path(key));
        let linked = (|| {
            std::fs::create_dir_all(to.parent().unwrap())?;
            match std::fs::hard_link(&from, &to) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // an older entry of ours: replaced atomically by a copy
                    let data = std::fs::read(&from)?;
                    write_atomic(&to, &data).map(drop)
                }
                Err(_) => {
                    let data = std::fs::read(&from)?;
                    write_atomic(&to, &data).map(drop)
                }
                Ok(()) => Ok(()),
            }
        })();
        Some(linked.map(|()| found))
    }

    /// Removes one entry (one this build wrote).
    pub fn remove(&self, key: &str) {
        let _ = std::fs::remove_file(self.path(key));
    }

    /// Notes the keys the build of `out` uses, in a cache folder that
    /// several outputs may share (`--cache-dir`): pruning by another
    /// output's build keeps them (see [`Cache::other_owners`]). Written
    /// before any entry of this build is, so a build running beside it
    /// never takes them for stale.
    pub fn note_owner(&self, out: &Path, keys: &[String]) {
        let dir = self.dir.join(OWNERS);
        let _ = std::fs::create_dir_all(&dir);
        let out = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
        let mut text = format!("{}\n", out.display());
        for k in keys {
            text.push_str(k);
            text.push('\n');
        }
        let _ = write_atomic(&dir.join(owner_name(&out)), text.as_bytes());
    }

    /// Removes the note of `out`'s keys (a build that keeps nothing), and
    /// the notes' folder once it is empty.
    pub fn forget_owner(&self, out: &Path) {
        let out = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
        let dir = self.dir.join(OWNERS);
        let _ = std::fs::remove_file(dir.join(owner_name(&out)));
        let _ = std::fs::remove_dir(dir);
    }

    /// The keys the last builds of the other outputs sharing this cache
    /// folder used, for those outputs that still exist (the notes of the
    /// others are removed).
    pub fn other_owners(&self, out: &Path) -> Vec<String> {
        let me = owner_name(out);
        let Ok(notes) = std::fs::read_dir(self.dir.join(OWNERS)) else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        for e in notes.flatten() {
            if e.file_name().to_string_lossy() == me {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let mut lines = text.lines();
            match lines.next() {
                Some(o) if Path::new(o).exists() => keys.extend(lines.map(str::to_string)),
                _ => {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        keys
    }

    /// Removes every entry whose key is not in `keep` (those of earlier
    /// builds: changed sources, other transforms, removed items), so the
    /// cache holds no more than the current build; entries newer than
    /// `before` (a build running beside this one, in a shared cache folder)
    /// stay. Goes by `listing`, made when the build started: what was put
    /// in the folder since is this build's (kept) or newer than `before`.
    /// Returns (entries, bytes) removed.
    pub fn retain(
        &self,
        keep: &std::collections::HashSet<&str>,
        before: std::time::SystemTime,
        listing: &Listing,
    ) -> (u64, u64) {
        let (mut n, mut bytes) = (0, 0);
        for Folder { dir, keys, others } in &listing.0 {
            // removed unless newer than the build's start
            let mut prune = |name: &std::ffi::OsStr| {
                let p = dir.join(name);
                let meta = std::fs::symlink_metadata(&p).ok();
                if meta
                    .as_ref()
                    .and_then(|m| m.modified().ok())
                    .is_some_and(|t| t >= before)
                {
                    return;
                }
                let len = meta.map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(&p).is_ok() {
                    n += 1;
                    bytes += len;
                }
            };
            for key in keys {
                let text = key_text(key);
                let name = std::str::from_utf8(&text).expect("hex digits");
                if !keep.contains(name) {
                    prune(name.as_ref());
                }
            }
            // (not keys: never kept)
            for name in others {
                prune(name);
            }
            // empty sub-folders go too (fails harmlessly when not empty)
            let _ = std::fs::remove_dir(dir);
        }
        (n, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageFormat;

    fn entry(w: u32) -> (ImageInfo, SourceSha, SourceGeometry) {
        let info = ImageInfo {
            format: ImageFormat::Jpeg,
            channels: 3,
            source: SourceColor::Rgb,
            width: w,
            height: 20,
        };
        let geometry = SourceGeometry {
            width: w * 2,
            height: 40,
            orientation: 1,
        };
        (info, [w as u8; 32], geometry)
    }

    #[test]
    fn known_headers_count_only_while_their_entries_are_there() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let key = |n: u8| format!("{n:02x}{}", "0".repeat(KEY - 2));
        for n in [1u8, 2, 3] {
            let (info, sha, geometry) = entry(n as u32);
            cache.put(&key(n), &info, &sha, &geometry, b"jpeg").unwrap();
        }
        let at = dir.path().join("c/stamps/known");
        let used = [1u8, 2, 3].map(|n| (key(n), entry(n as u32)));
        cache.save_known(&at, used.iter().map(|(k, e)| (k.as_str(), *e)));
        // entry 2 removed since: not known, so it is looked at again
        cache.remove(&key(2));
        let known = cache.known(&at, &cache.list());
        let same = |a: Option<(ImageInfo, SourceSha, SourceGeometry)>, n: u32| {
            let (info, sha, geometry) = a.expect("known");
            let (i2, s2, g2) = entry(n);
            assert_eq!(
                (
                    info.width,
                    info.height,
                    sha,
                    geometry.width,
                    geometry.orientation
                ),
                (i2.width, i2.height, s2, g2.width, g2.orientation)
            );
        };
        same(known.info(&key(1)), 1);
        same(known.info(&key(3)), 3);
        same(cache.info(&key(3)), 3);
        assert!(known.info(&key(2)).is_none());
        assert!(known.info("short").is_none());
        // a file cut short keeps its whole entries; one not ours, none
        let bytes = std::fs::read(&at).unwrap();
        std::fs::write(&at, &bytes[..bytes.len() - 10]).unwrap();
        let known = cache.known(&at, &cache.list());
        same(known.info(&key(1)), 1);
        assert!(known.info(&key(3)).is_none());
        std::fs::write(&at, b"something else entirely, not a list of entries").unwrap();
        assert!(cache.known(&at, &cache.list()).info(&key(1)).is_none());
        // pruning goes by the listing: entries not kept go, kept ones stay
        let kept = key(1);
        let keep: std::collections::HashSet<&str> = [kept.as_str()].into_iter().collect();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        let (n, _) = cache.retain(&keep, later, &cache.list());
        assert_eq!(n, 1);
        assert!(cache.info(&key(1)).is_some() && cache.info(&key(3)).is_none());
        assert!(at.exists(), "the notes' folder is not pruned");
    }

    #[test]
    fn listings_keep_keys_as_bytes_and_prune_only_the_caches_names() {
        let k = "0123456789abcdef0123456789abcdef01234567";
        let b = key_bytes(k.as_bytes()).unwrap();
        assert_eq!(b[0], 0x01);
        assert_eq!(&key_text(&b)[..], k.as_bytes());
        // not keys: upper case, other lengths, other characters
        assert!(key_bytes(k.to_uppercase().as_bytes()).is_none());
        assert!(key_bytes(&k.as_bytes()[1..]).is_none());
        assert!(key_bytes(format!("{}g", &k[..39]).as_bytes()).is_none());
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let (info, sha, geometry) = entry(5);
        cache.put(k, &info, &sha, &geometry, b"jpeg").unwrap();
        let at = dir.path().join("c/stamps/known");
        cache.save_known(&at, [(k, (info, sha, geometry))].into_iter());
        // an entry's file in another folder than its key's is not where the
        // build would read it: not known
        let moved = dir.path().join("c/ff");
        std::fs::create_dir_all(&moved).unwrap();
        std::fs::rename(cache.path(k), moved.join(k)).unwrap();
        std::fs::write(moved.join(k.to_uppercase()), b"x").unwrap();
        assert!(cache.known(&at, &cache.list()).info(k).is_none());
        std::fs::rename(moved.join(k), cache.path(k)).unwrap();
        assert!(cache.known(&at, &cache.list()).info(k).is_some());
        // what is neither kept nor new goes when it is named as the cache
        // names its files (a key, or a killed build's partial file); any
        // other name is not the cache's and stays, and so do folders that
        // are not entry folders
        std::fs::write(moved.join(".x.abc123.partial"), b"x").unwrap();
        let other = dir.path().join("c/notes");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join(k), b"x").unwrap();
        let keep: std::collections::HashSet<&str> = [k].into_iter().collect();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        let (n, _) = cache.retain(&keep, later, &cache.list());
        assert_eq!(n, 1);
        assert!(!moved.join(".x.abc123.partial").exists());
        assert!(moved.join(k.to_uppercase()).exists() && other.join(k).exists());
        assert!(cache.info(k).is_some());
    }
}
