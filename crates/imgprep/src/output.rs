//! Atomic outputs: every file is written under a hidden temporary name in its
//! destination folder and renamed into place only when complete, so an
//! interrupted run never leaves a file that looks finished.

use crate::checksum::{FileSums, Summer};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

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
