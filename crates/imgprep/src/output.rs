//! Atomic outputs: every file is written under a hidden temporary name in its
//! destination folder and renamed into place only when complete, so an
//! interrupted run never leaves a file that looks finished.

use crate::checksum::{FileSums, Summer};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Whether a file name is one of [`AtomicFile`]'s temporary names
/// (`.NAME.XXXXXX.partial`).
pub fn is_partial_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .strip_suffix(".partial")
            .and_then(|n| n.rsplit_once('.'))
            .is_some_and(|(_, rand)| rand.len() == 6)
}

/// Removes the temporary files a killed run left in `dir` (not below it);
/// returns how many.
pub fn remove_partials_in(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_partial_name(&name) && e.file_type().is_ok_and(|t| t.is_file()) {
            n += usize::from(std::fs::remove_file(e.path()).is_ok());
        }
    }
    n
}

/// The destination's name as the stem of a temporary name, cut so that
/// `.{stem}.XXXXXX.partial` fits the 255-byte limit of a file name whatever
/// the destination's (legal) length.
fn temp_stem(dest: &Path) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut end = name.len().min(200);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// Renames the finished temporary file to `dest`, removing what is at
/// `dest` first: a rename over an existing file makes ext4 (`auto_da_alloc`)
/// write the new file's data out before the rename returns (1-4 s for a
/// 1.3 GB `.rec`, and again for every output of a rebuild), a rename to a
/// free name does not. A reader sees the old file, none, or the new one;
/// never a partial file.
fn put_in_place(tmp: tempfile::NamedTempFile, dest: &Path) -> io::Result<()> {
    match std::fs::remove_file(dest) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// Puts a hard link to `src` at `dest` without ever removing `dest` first:
/// the link is made under a temporary name and renamed over `dest`. When
/// `dest` already is `src` (the same file), nothing changes. Returns false
/// (and changes nothing) when no hard link can be made (another file system).
pub fn link_atomic(src: &Path, dest: &Path) -> io::Result<bool> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let stem = temp_stem(dest);
    let nonce = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(dest.as_os_str().as_encoded_bytes());
        h.finish() & 0xff_ffff
    };
    let tmp = dir.join(format!(".{stem}.{nonce:06x}.partial"));
    // the file a link points to, not the link (a relative link would point
    // elsewhere from the output folder); resolved only for links, since
    // canonicalize costs a readlink per path component
    let resolved;
    let src = if std::fs::symlink_metadata(src)?.file_type().is_symlink() {
        resolved = std::fs::canonicalize(src)?;
        resolved.as_path()
    } else {
        src
    };
    if std::fs::hard_link(src, &tmp).is_err() {
        return Ok(false);
    }
    // rename over an existing link to the same file does nothing and leaves
    // the temporary link: remove it then (dest still holds the file)
    let renamed = std::fs::rename(&tmp, dest);
    let _ = std::fs::remove_file(&tmp);
    renamed.map(|_| true)
}

pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    writer: Option<BufWriter<File>>,
    dest: PathBuf,
    /// None: no SHA-256 is wanted ([`AtomicFile::create_unsummed`]).
    sums: Option<Summer>,
}

impl AtomicFile {
    /// A file whose size and SHA-256 [`AtomicFile::commit`] returns.
    pub fn create(dest: &Path) -> io::Result<Self> {
        let mut f = Self::create_unsummed(dest)?;
        f.sums = Some(Summer::default());
        Ok(f)
    }

    /// A file that nobody needs the SHA-256 of (`im2rec`'s `.rec`, which
    /// has no manifest): it is put in place with [`AtomicFile::persist`].
    /// Hashing 1.3 GB of records costs 0.7 s of the one thread that writes.
    pub fn create_unsummed(dest: &Path) -> io::Result<Self> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = temp_stem(dest);
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)?;
        // (a second handle on the open file, not a second open of its path)
        let writer = BufWriter::with_capacity(1 << 20, tmp.as_file().try_clone()?);
        Ok(AtomicFile {
            tmp,
            writer: Some(writer),
            dest: dest.to_path_buf(),
            sums: None,
        })
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes and renames into place, readable by others like any new
    /// file (temporary files are created 0600). Returns the size and
    /// SHA-256 of what was written, summed on the way (no re-read).
    pub fn commit(mut self) -> io::Result<FileSums> {
        let sums = self.sums.take().expect("made by AtomicFile::create");
        self.persist()?;
        Ok(sums.finish())
    }

    /// Puts the file in place of what is at its path ([`put_in_place`]).
    pub fn persist(mut self) -> io::Result<()> {
        if let Some(mut w) = self.writer.take() {
            w.flush()?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            self.tmp
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        put_in_place(self.tmp, &self.dest)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.writer.as_mut().expect("not committed").write(buf)?;
        if let Some(s) = &mut self.sums {
            s.update(&buf[..n]);
        }
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer
            .as_mut()
            .expect("not committed")
            .write_all(buf)?;
        if let Some(s) = &mut self.sums {
            s.update(buf);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

/// Writes a whole file atomically; returns its size and SHA-256.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<FileSums> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = temp_stem(dest);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dir)?;
    // one write of the whole buffer: no buffered writer for small files
    tmp.as_file_mut().write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    put_in_place(tmp, dest)?;
    let mut sums = Summer::default();
    sums.update(bytes);
    Ok(sums.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_and_links_in_place() {
        let dir = tempfile::tempdir().unwrap();
        // a legal 254-byte name still gets a temporary name that fits
        let long = dir.path().join("x".repeat(250) + ".jpg");
        write_atomic(&long, b"data").unwrap();
        assert_eq!(std::fs::read(&long).unwrap(), b"data");
        // linking a file onto itself keeps it
        let a = dir.path().join("a.jpg");
        std::fs::write(&a, b"source").unwrap();
        assert!(link_atomic(&a, &a).unwrap());
        assert_eq!(std::fs::read(&a).unwrap(), b"source");
        let b = dir.path().join("b.jpg");
        std::fs::write(&b, b"old").unwrap();
        assert!(link_atomic(&a, &b).unwrap());
        assert_eq!(std::fs::read(&b).unwrap(), b"source");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 3, "no temporary link left");
    }

    #[test]
    fn partial_names_are_recognised_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let f = AtomicFile::create(&dir.path().join("a.rec")).unwrap();
        let tmp_name = f
            .tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(is_partial_name(&tmp_name), "{tmp_name}");
        for keep in [".hidden", "a.partial", ".a.partial", ".a.toolong.partial"] {
            assert!(!is_partial_name(keep), "{keep}");
            std::fs::write(dir.path().join(keep), b"x").unwrap();
        }
        // a killed run: the temporary file stays behind
        std::mem::forget(f);
        assert_eq!(remove_partials_in(dir.path()), 1);
        assert!(!dir.path().join(&tmp_name).exists());
        assert!(dir.path().join(".a.partial").exists());
    }
}
