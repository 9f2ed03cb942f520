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

pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    writer: Option<BufWriter<File>>,
    dest: PathBuf,
    sums: Summer,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> io::Result<Self> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)?;
        let writer = BufWriter::with_capacity(1 << 20, tmp.reopen()?);
        Ok(AtomicFile {
            tmp,
            writer: Some(writer),
            dest: dest.to_path_buf(),
            sums: Summer::default(),
        })
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes and renames into place, readable by others like any new
    /// file (temporary files are created 0600). Returns the size and
    /// SHA-256 of what was written, summed on the way (no re-read).
    pub fn commit(mut self) -> io::Result<FileSums> {
        if let Some(mut w) = self.writer.take() {
            w.flush()?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(self.tmp.path(), std::fs::Permissions::from_mode(0o644))?;
        }
        self.tmp.persist(&self.dest).map_err(|e| e.error)?;
        Ok(self.sums.finish())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.writer.as_mut().expect("not committed").write(buf)?;
        self.sums.update(&buf[..n]);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer
            .as_mut()
            .expect("not committed")
            .write_all(buf)?;
        self.sums.update(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

/// Writes a whole file atomically; returns its size and SHA-256.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<FileSums> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes)?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

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
