//! Reading source files: local ones with as few system calls as possible,
//! `s3://` ones through [`crate::storage`] (the pipeline's item paths hold
//! either).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// Size and modification time of listed objects, so fingerprints need no
/// request per object.
fn listed() -> &'static Mutex<HashMap<String, (u64, i128)>> {
    static L: OnceLock<Mutex<HashMap<String, (u64, i128)>>> = OnceLock::new();
    L.get_or_init(Default::default)
}

fn remote(path: &Path) -> Option<&str> {
    path.to_str().filter(|s| crate::storage::is_remote(s))
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
    let uri = crate::storage::Uri::parse(prefix).map_err(std::io::Error::other)?;
    let bucket = crate::storage::bucket_for(&uri).map_err(io_err)?;
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
        l.insert(u.clone(), (o.size, o.modified_ns));
        out.push((u, rel.to_string()));
    }
    Ok(out)
}

/// What identifies a source's content cheaply: size and modification time.
pub fn fingerprint(path: &Path) -> std::io::Result<(u64, i128)> {
    if let Some(u) = remote(path) {
        if let Some(&f) = listed().lock().unwrap().get(u) {
            return Ok(f);
        }
        let uri = crate::storage::Uri::parse(u).map_err(std::io::Error::other)?;
        let b = crate::storage::bucket_for(&uri).map_err(io_err)?;
        let o = b
            .head(&uri.key)
            .map_err(io_err)?
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"))?;
        return Ok((o.size, o.modified_ns));
    }
    let m = std::fs::metadata(path)?;
    let mtime = m
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    Ok((m.len(), mtime))
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
    if let Some(u) = remote(path) {
        let uri = crate::storage::Uri::parse(u).map_err(std::io::Error::other)?;
        let b = crate::storage::bucket_for(&uri).map_err(io_err)?;
        return b.get(&uri.key).map(|b| b.to_vec()).map_err(io_err);
    }
    let mut f = std::fs::File::open(path)?;
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
    use super::read_sized;

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
