//! Reading inputs wherever a path is accepted: local files (with as few
//! system calls as possible) or objects named by a URI (`s3://`,
//! `http(s)://`) through [`crate::storage`]. Paths in the pipeline hold
//! either; a URI is kept in a `Path` as its text.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Size and modification time of listed objects, so fingerprints need no
/// request per object.
fn listed() -> &'static Mutex<HashMap<String, (u64, i128)>> {
    static L: OnceLock<Mutex<HashMap<String, (u64, i128)>>> = OnceLock::new();
    L.get_or_init(Default::default)
}

/// Prefixes (`s3://b/p/`) listed whole: an object under one of them that
/// the listing did not show is missing, without asking again.
fn listed_prefixes() -> &'static Mutex<Vec<String>> {
    static P: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    P.get_or_init(Default::default)
}

fn not_found() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, "no such object")
}

fn remote(path: &Path) -> Option<&str> {
    path.to_str().filter(|s| crate::storage::is_remote(s))
}

/// Whether a file name says JPEG (`.jpg`, `.jpeg`, `.jpe`, `.jfif`, any case).
pub fn has_jpeg_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jpg", ".jpeg", ".jpe", ".jfif"]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// Whether `path` is an object-store URI rather than a local path.
pub fn is_remote(path: &Path) -> bool {
    remote(path).is_some()
}

/// `rel` against `base`: URIs and absolute paths stay as they are; under a
/// URI base, `.` and `..` segments are resolved (keys have no such folders).
pub fn join(base: &Path, rel: &Path) -> PathBuf {
    if is_remote(rel) || rel.is_absolute() {
        return rel.to_path_buf();
    }
    let Some(b) = remote(base) else {
        return base.join(rel);
    };
    let (scheme, rest) = b.split_once("://").unwrap_or(("", b));
    let mut segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let r = rel.to_string_lossy();
    for s in r.split('/') {
        match s {
            "" | "." => {}
            // never above the bucket
            ".." if segs.len() > 1 => {
                segs.pop();
            }
            ".." => {}
            s => segs.push(s),
        }
    }
    let mut out = format!("{scheme}://{}", segs.join("/"));
    if r.ends_with('/') {
        out.push('/');
    }
    PathBuf::from(out)
}

/// The folder (prefix) holding a file or object; `.` for a bare file name.
pub fn parent(path: &Path) -> PathBuf {
    if let Some(u) = remote(path) {
        let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
        return match rest.trim_end_matches('/').rsplit_once('/') {
            Some((dir, _)) => PathBuf::from(format!("{scheme}://{dir}")),
            None => PathBuf::from(format!("{scheme}://{rest}")),
        };
    }
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// The last segment of a path or URI (`None` for a bucket or root).
pub fn file_name(path: &Path) -> Option<String> {
    if let Some(u) = remote(path) {
        let rest = u.split_once("://").map_or(u, |(_, r)| r);
        return match rest.trim_end_matches('/').rsplit_once('/') {
            Some((_, name)) if !name.is_empty() => Some(name.to_string()),
            _ => None,
        };
    }
    path.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// The bucket (or server) and key a URI names.
fn object(
    uri: &str,
) -> std::io::Result<(std::sync::Arc<crate::storage::Bucket>, crate::storage::Uri)> {
    let uri = crate::storage::Uri::parse(uri).map_err(std::io::Error::other)?;
    Ok((crate::storage::bucket_for(&uri).map_err(io_err)?, uri))
}

/// Opens a file or object for reading from its start (objects stream as
/// they are read).
pub fn open(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    open_sized(path).map(|(r, _)| r)
}

/// [`open`], with the size of the file or object.
pub fn open_sized(path: &Path) -> std::io::Result<(Box<dyn Read + Send>, u64)> {
    if let Some(u) = remote(path) {
        let (b, uri) = object(u)?;
        let r = b.reader(&uri.key).map_err(io_err)?;
        let size = r.size;
        return Ok((Box::new(r), size));
    }
    let (f, size) = open_regular_len(path)?;
    Ok((Box::new(f), size))
}

/// A whole file or object.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    if let Some(u) = remote(path) {
        let (b, uri) = object(u)?;
        return b.get(&uri.key).map(|b| b.to_vec()).map_err(io_err);
    }
    let mut f = open_regular(path)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

/// The most bytes an image source of at most `max_pixels` pixels is read
/// into memory for: 8 bytes a pixel (16-bit RGBA, uncompressed) and 64 MiB
/// of metadata. A larger file is refused before it is read: a stray 12 GB
/// object named `.jpg` would otherwise take 12 GB (or twice that) of memory
/// only to be found not to decode.
pub fn max_image_bytes(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(8).saturating_add(64 << 20)
}

/// Err when `size` is over [`max_image_bytes`]: the reason, in words.
pub fn check_image_size(size: u64, max_pixels: u64) -> std::io::Result<()> {
    let max = max_image_bytes(max_pixels);
    if size <= max {
        return Ok(());
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "{size} bytes, more than an image of at most {max_pixels} pixels (max_pixels) can \
             take ({max} bytes): not read (raise max_pixels if it is one)"
        ),
    ))
}

/// [`read`] of an image source: refused when over [`max_image_bytes`]
/// before its bytes are read (an object's from the answer's length).
pub fn read_image(path: &Path, max_pixels: u64) -> std::io::Result<Vec<u8>> {
    if let Some(u) = remote(path) {
        let (b, uri) = object(u)?;
        return match b.get_at_most(&uri.key, max_image_bytes(max_pixels)) {
            Ok(Ok(bytes)) => Ok(bytes.to_vec()),
            Ok(Err(size)) => check_image_size(size, max_pixels).map(|()| Vec::new()),
            Err(e) => Err(io_err(e)),
        };
    }
    let (mut f, len) = open_regular_len(path)?;
    check_image_size(len, max_pixels)?;
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Opens a local file for reading only if it is a regular file (after
/// symlinks): a FIFO, a device such as `/dev/zero` or a folder is refused
/// instead of blocking forever or being read without end. The file is
/// opened without blocking and checked on the open handle, so it cannot be
/// swapped for a FIFO between a check and the open.
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    open_regular_len(path).map(|(f, _)| f)
}

/// [`open_regular`], with the file's length from the same `fstat`.
pub fn open_regular_len(path: &Path) -> std::io::Result<(std::fs::File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO with no writer returns at once
    const O_NONBLOCK: i32 = 0o4000;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
    }
    Ok((f, meta.len()))
}

/// What a file that is not a regular one is ("a FIFO (named pipe)").
#[cfg(unix)]
pub fn kind_of(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// What a file that is not a regular one is.
#[cfg(not(unix))]
pub fn kind_of(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a folder"
    } else {
        "not a file"
    }
}

#[cfg(unix)]
fn not_regular(kind: std::fs::FileType) -> std::io::Error {
    let what = kind_of(&kind);
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("is {what}, not a regular file (refused: it could block or never end)"),
    )
}

/// A whole file or object as UTF-8 text, without the byte-order mark
/// Windows editors put first (it would be part of the first name, column
/// or key).
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    utf8_text(read(path)?)
}

fn utf8_text(mut buf: Vec<u8>) -> std::io::Result<String> {
    if buf.starts_with(b"\xEF\xBB\xBF") {
        buf.drain(..3);
    }
    String::from_utf8(buf)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// A whole file or object as UTF-8 text (as [`read_to_string`]), refused
/// when larger than `cap` bytes.
pub fn read_text_capped(path: &Path, cap: u64) -> std::io::Result<String> {
    let (r, size) = open_sized(path)?;
    if size > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{size} bytes, more than the {cap} this file may have"),
        ));
    }
    let mut buf = Vec::with_capacity(size as usize);
    r.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("more than the {cap} bytes this file may have"),
        ));
    }
    utf8_text(buf)
}

/// The files of `present` that lie in a folder holding a `listed` file
/// (below the root) and are not listed themselves, sorted: what a reader
/// that lists those folders (a glob, a SageMaker channel) would read beside
/// the listed files. Paths are relative and `/`-separated.
pub fn strays(
    listed: &std::collections::HashSet<String>,
    present: impl IntoIterator<Item = String>,
) -> Vec<String> {
    let folder = |f: &str| f.rsplit_once('/').map(|(d, _)| d.to_string());
    let folders: std::collections::HashSet<String> =
        listed.iter().filter_map(|f| folder(f)).collect();
    let mut found: Vec<String> = present
        .into_iter()
        .filter(|f| !listed.contains(f) && folder(f).is_some_and(|d| folders.contains(&d)))
        .collect();
    found.sort();
    found
}

/// Whether a regular file or an object is there (errors count as no).
pub fn is_file(path: &Path) -> bool {
    match remote(path) {
        Some(u) => object(u).is_ok_and(|(b, uri)| b.head(&uri.key).is_ok_and(|o| o.is_some())),
        None => path.is_file(),
    }
}

/// The names of the files (objects) directly in a folder (prefix), sorted,
/// and the paths of files whose names are not UTF-8 (which no index, class
/// map or output name can hold: the caller says so, never drops them
/// unsaid).
pub fn list_files(dir: &Path) -> std::io::Result<(Vec<String>, Vec<PathBuf>)> {
    if let Some(u) = remote(dir) {
        let (b, uri) = object(u)?;
        let (files, _) = b.list_dir(&uri.key).map_err(io_err)?;
        let mut l = listed().lock().unwrap();
        let names = files
            .into_iter()
            .map(|o| {
                l.insert(b.uri(&o.key), object_print(&o));
                o.key.rsplit('/').next().unwrap_or(&o.key).to_string()
            })
            .collect();
        return Ok((names, Vec::new()));
    }
    let (mut names, mut not_utf8) = (Vec::new(), Vec::new());
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.path().is_file() {
            match e.file_name().into_string() {
                Ok(n) => names.push(n),
                Err(_) => not_utf8.push(e.path()),
            }
        }
    }
    names.sort();
    not_utf8.sort();
    Ok((names, not_utf8))
}

fn io_err(e: crate::storage::StorageError) -> std::io::Error {
    let kind = if e.not_found {
        std::io::ErrorKind::NotFound
    } else {
        std::io::ErrorKind::Other
    };
    std::io::Error::new(kind, e.message)
}

/// Lists the objects under an `s3://` prefix (remembering their sizes and
/// times): (URI, key relative to the prefix).
pub fn list_remote(prefix: &str) -> std::io::Result<Vec<(String, String)>> {
    let (bucket, uri) = object(prefix)?;
    let base = if uri.key.is_empty() || uri.key.ends_with('/') {
        uri.key.clone()
    } else {
        format!("{}/", uri.key)
    };
    let mut out = Vec::new();
    let mut l = listed().lock().unwrap();
    for o in bucket.list(&base).map_err(io_err)? {
        let Some(rel) = o.key.strip_prefix(&base) else {
            continue;
        };
        let u = bucket.uri(&o.key);
        l.insert(u.clone(), object_print(&o));
        out.push((u, rel.to_string()));
    }
    listed_prefixes().lock().unwrap().push(bucket.uri(&base));
    Ok(out)
}

/// What another program (ffmpeg) opens to read `path`: the path itself, or
/// for an object a URL valid for `valid` (signed for s3://).
pub fn read_url(path: &Path, valid: std::time::Duration) -> std::io::Result<std::ffi::OsString> {
    match remote(path) {
        None => Ok(path.as_os_str().to_os_string()),
        Some(u) => {
            let (b, uri) = object(u)?;
            b.read_url(&uri.key, valid).map(Into::into).map_err(io_err)
        }
    }
}

/// A modification time (ns since the epoch) and `more` (what else names
/// this version of the file) mixed into 63 bits: a stamp that is only ever
/// compared, and fits the catalog's 8 bytes.
fn stamp(modified_ns: i128, more: &[u64]) -> i128 {
    // splitmix64's finaliser over the words: stable across builds and
    // toolchains (std's hashers are not promised to be)
    let words = [modified_ns as u64, (modified_ns >> 64) as u64];
    let mix = words.iter().chain(more).fold(0u64, |h, &w| {
        let mut z = (h ^ w).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    });
    (mix >> 1) as i128
}

/// An object's size and stamp: its time (whole seconds on S3) and its
/// ETag, which changes with its bytes.
fn object_print(o: &crate::storage::ObjectInfo) -> (u64, i128) {
    let tag = o.etag.as_deref().map_or(0, |t| {
        let sum = crate::checksum::sha256(t.as_bytes());
        u64::from_le_bytes(sum[..8].try_into().expect("8 bytes"))
    });
    (o.size, stamp(o.modified_ns, &[tag]))
}

/// What identifies a source's content cheaply: its size and a stamp of its
/// modification time and what changes with every write even when the time
/// is kept (`cp -p`, `tar x`, `rsync -t`, a file put in another's place):
/// for a local file its change time (ctime, which no tool can set back)
/// and its device and inode; for an object its ETag. Equal prints are
/// trusted as equal bytes, as `make` and `git` do.
pub fn fingerprint(path: &Path) -> std::io::Result<(u64, i128)> {
    if let Some(u) = remote(path) {
        if let Some(&f) = listed().lock().unwrap().get(u) {
            return Ok(f);
        }
        let (b, uri) = object(u)?;
        if listed_prefixes()
            .lock()
            .unwrap()
            .iter()
            .any(|p| u.starts_with(p.as_str()))
        {
            return Err(not_found());
        }
        let o = b.head(&uri.key).map_err(io_err)?.ok_or_else(not_found)?;
        let print = object_print(&o);
        listed().lock().unwrap().insert(u.to_string(), print);
        return Ok(print);
    }
    let m = std::fs::metadata(path)?;
    if !m.is_file() {
        return Err(not_regular(m.file_type()));
    }
    let mtime = m
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    Ok((m.len(), stamp(mtime, &identity(&m))))
}

#[cfg(unix)]
fn identity(m: &std::fs::Metadata) -> [u64; 4] {
    use std::os::unix::fs::MetadataExt;
    [m.dev(), m.ino(), m.ctime() as u64, m.ctime_nsec() as u64]
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> [u64; 4] {
    // no inode or change time here: size and modification time only
    [0; 4]
}

/// Whether any of these paths is an object-store URI.
pub fn any_remote<'a>(mut paths: impl Iterator<Item = &'a Path>) -> bool {
    paths.any(|p| remote(p).is_some())
}

/// Reads a whole file whose size was just taken from its metadata: open,
/// one `read` of `size + 1` bytes and close, where `std::fs::read` also
/// stats the file and reads once more to see the end. A short read of
/// exactly `size` bytes from a regular file is its end; anything else
/// (the file changed size) falls back to reading until the end.
pub fn read_sized(path: &Path, size: u64) -> std::io::Result<Vec<u8>> {
    if is_remote(path) {
        return read(path);
    }
    let mut f = open_regular(path)?;
    let want = usize::try_from(size).unwrap_or(usize::MAX - 1);
    let mut buf = vec![0u8; want + 1];
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if got == want {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got == buf.len() {
        // larger than it was: read the rest
        f.read_to_end(&mut buf)?;
        return Ok(buf);
    }
    buf.truncate(got);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_splits_uris_and_paths() {
        let j = |b: &str, r: &str| join(Path::new(b), Path::new(r)).display().to_string();
        assert_eq!(j("s3://b/recipes", "images"), "s3://b/recipes/images");
        assert_eq!(j("s3://b/recipes/", "../data/x.csv"), "s3://b/data/x.csv");
        assert_eq!(j("s3://b/r", "../../../x"), "s3://b/x");
        assert_eq!(j("s3://b/r", "s3://c/k"), "s3://c/k");
        assert_eq!(j("recipes", "s3://c/k"), "s3://c/k");
        assert_eq!(j("recipes", "images"), "recipes/images");
        assert_eq!(j("http://h:1/a", "./b/c.jpg"), "http://h:1/a/b/c.jpg");
        let p = |s: &str| parent(Path::new(s)).display().to_string();
        assert_eq!(p("s3://b/x/recipe.toml"), "s3://b/x");
        assert_eq!(p("s3://b/recipe.toml"), "s3://b");
        assert_eq!(p("recipe.toml"), ".");
        assert_eq!(p("a/recipe.toml"), "a");
        assert_eq!(file_name(Path::new("s3://b/x/y/")).as_deref(), Some("y"));
        assert_eq!(file_name(Path::new("s3://b")), None);
    }

    #[test]
    fn reads_whole_files_whatever_the_hint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        std::fs::write(&p, &data).unwrap();
        for hint in [0, 1, 9_999, 10_000, 10_001, 50_000] {
            assert_eq!(read_sized(&p, hint).unwrap(), data, "hint {hint}");
        }
        assert!(read_sized(&dir.path().join("missing"), 3).is_err());
    }
}
