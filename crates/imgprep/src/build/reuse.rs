//! Record reuse: a rebuild copies the records that did not change from the
//! previous build's record file instead of reading every item again.
//!
//! For each record file it writes (a RecordIO `.rec`), a build keeps a
//! record table beside the item cache (`records/ID`, never in the output
//! folder): the file's identity once in place (device, inode, size,
//! modification and change times: any later write, replacement or restore
//! changes one of them) and, per record, a key naming everything its bytes
//! are made from (the record header and the identity of the item's bytes,
//! i.e. its cache key) with the offset and length of its framed bytes.
//!
//! The next build of the same file looks each record's key up. Found, the
//! record's bytes are copied from the previous file (consecutive records as
//! one copy), without reading the item; not found, the record is made as in
//! a first build. A table whose file's identity differs, or that does not
//! parse, is not used: the build then reads every item, as a first build
//! does. The result is byte-identical to a clean build either way.

use crate::checksum::sha256;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"IPRTAB01";
/// magic, identity (dev, ino, size, mtime s+ns, ctime s+ns), entry count
const HEADER: usize = 8 + 7 * 8 + 8;
/// key, offset, length
const ENTRY: usize = 16 + 8 + 8;
/// The smallest record a table can describe: RecordIO's 8 bytes of framing
/// and the 24-byte image record header.
const MIN_RECORD: u64 = 32;
/// Bytes copied at a time from the previous file.
const CHUNK: usize = 1 << 20;

/// Names everything a record's bytes are made from.
pub(super) type Key = [u8; 16];

/// The key of a record of `kind` with this `header` and item bytes
/// identified by `bytes_key` (the item's cache key).
pub(super) fn key(kind: &str, header: &[u8], bytes_key: &str) -> Key {
    let mut text = Vec::with_capacity(kind.len() + header.len() + bytes_key.len() + 2);
    text.extend_from_slice(kind.as_bytes());
    text.push(0);
    text.extend_from_slice(&(header.len() as u64).to_le_bytes());
    text.extend_from_slice(header);
    text.extend_from_slice(bytes_key.as_bytes());
    sha256(&text)[..16].try_into().expect("16 bytes")
}

/// Where the table of the record file `rel` of the output folder `out` is
/// kept, under the item cache folder `cache_dir`.
pub(super) fn table_path(cache_dir: &Path, out: &Path, rel: &str) -> PathBuf {
    cache_dir.join(TABLES).join(table_name(out, rel))
}

/// The folder of record tables in an item cache.
pub(super) const TABLES: &str = "records";

pub(super) fn table_name(out: &Path, rel: &str) -> String {
    let abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let id = crate::checksum::sha256_hex(format!("{}\0{rel}", abs.display()).as_bytes());
    id[..24].to_string()
}

/// Removes the tables of files this build did not write (outputs no
/// longer made, or made by a build with another recipe).
pub(super) fn prune<'a>(cache_dir: &Path, out: &Path, written: impl Iterator<Item = &'a str>) {
    let keep: std::collections::HashSet<String> = written.map(|r| table_name(out, r)).collect();
    let Ok(entries) = std::fs::read_dir(cache_dir.join(TABLES)) else {
        return;
    };
    for e in entries.flatten() {
        if !keep.contains(e.file_name().to_string_lossy().as_ref()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(unix)]
fn identity(m: &std::fs::Metadata) -> [u64; 7] {
    use std::os::unix::fs::MetadataExt;
    [
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime() as u64,
        m.mtime_nsec() as u64,
        m.ctime() as u64,
        m.ctime_nsec() as u64,
    ]
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> [u64; 7] {
    // no inode or change time: a table is never trusted
    [u64::MAX; 7]
}

/// The previous build's record file, open, and where each record lies in it.
pub(super) struct Previous {
    file: File,
    at: HashMap<Key, (u64, u64)>,
}

impl Previous {
    /// The previous version of the record file at `path`, when the table
    /// at `table` describes exactly the file now there.
    pub fn open(table: &Path, path: &Path) -> Option<Previous> {
        let file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let id = identity(&meta);
        if !meta.is_file() || cfg!(not(unix)) {
            return None;
        }
        // the table's size is bounded by the records the file can hold,
        // so a stray huge file is not read
        let tmeta = std::fs::metadata(table).ok()?;
        let most = HEADER as u64 + (meta.len() / MIN_RECORD + 1) * ENTRY as u64;
        if tmeta.len() > most {
            return None;
        }
        let data = std::fs::read(table).ok()?;
        if data.len() < HEADER || &data[..8] != MAGIC {
            return None;
        }
        let word = |k: usize| u64::from_le_bytes(data[k..k + 8].try_into().expect("8 bytes"));
        if (0..7).any(|k| word(8 + 8 * k) != id[k]) {
            return None;
        }
        let n = word(8 + 7 * 8) as usize;
        if data.len() != HEADER + n.checked_mul(ENTRY)? {
            return None;
        }
        let mut at = HashMap::with_capacity(n);
        for e in data[HEADER..].chunks_exact(ENTRY) {
            let key: Key = e[..16].try_into().expect("16 bytes");
            let off = u64::from_le_bytes(e[16..24].try_into().expect("8 bytes"));
            let len = u64::from_le_bytes(e[24..32].try_into().expect("8 bytes"));
            if off.checked_add(len)? > meta.len() || len == 0 {
                return None;
            }
            at.insert(key, (off, len));
        }
        Some(Previous { file, at })
    }

    /// Where the record with this key lies in the previous file.
    pub fn find(&self, key: &Key) -> Option<(u64, u64)> {
        self.at.get(key).copied()
    }
}

/// The records of the file being written, for the next build's table.
#[derive(Default)]
pub(super) struct Table {
    entries: Vec<(Key, u64, u64)>,
}

impl Table {
    pub fn push(&mut self, key: Key, offset: u64, len: u64) {
        self.entries.push((key, offset, len));
    }

    /// Saves the table of the file now at `path` (just put in place) to
    /// `table`. A table that cannot be saved only costs the next build its
    /// reuse, so failures are ignored, after removing any older table.
    pub fn save(&self, table: &Path, path: &Path) {
        let saved = (|| -> io::Result<()> {
            let meta = std::fs::metadata(path)?;
            let mut data = Vec::with_capacity(HEADER + self.entries.len() * ENTRY);
            data.extend_from_slice(MAGIC);
            for w in identity(&meta) {
                data.extend_from_slice(&w.to_le_bytes());
            }
            data.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
            for (key, off, len) in &self.entries {
                data.extend_from_slice(key);
                data.extend_from_slice(&off.to_le_bytes());
                data.extend_from_slice(&len.to_le_bytes());
            }
            std::fs::create_dir_all(table.parent().expect("in the tables folder"))?;
            crate::output::write_atomic(table, &data).map(drop)
        })();
        if saved.is_err() {
            let _ = std::fs::remove_file(table);
        }
    }
}

/// Copies runs of records from the previous file: consecutive records are
/// gathered into one run and copied when a record that is not copied (or
/// the end) comes.
pub(super) struct Copier<'a> {
    prev: &'a Previous,
    run: Option<(u64, u64)>,
    buf: Vec<u8>,
}

impl<'a> Copier<'a> {
    pub fn new(prev: &'a Previous) -> Self {
        Copier {
            prev,
            run: None,
            buf: Vec::new(),
        }
    }

    /// Bytes gathered and not yet copied.
    pub fn pending(&self) -> u64 {
        self.run.map_or(0, |(_, len)| len)
    }

    /// Adds the record at `off`, `len` of the previous file to the run,
    /// copying the run first when this record does not follow it.
    pub fn add(
        &mut self,
        off: u64,
        len: u64,
        out: &mut impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        match &mut self.run {
            Some((start, n)) if *start + *n == off => *n += len,
            _ => {
                self.flush(out)?;
                self.run = Some((off, len));
            }
        }
        Ok(())
    }

    /// Copies the run gathered so far.
    pub fn flush(&mut self, out: &mut impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let Some((mut off, mut left)) = self.run.take() else {
            return Ok(());
        };
        self.buf.resize(CHUNK, 0);
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            read_exact_at(&self.prev.file, &mut self.buf[..n], off)?;
            out(&self.buf[..n])?;
            off += n as u64;
            left -= n as u64;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
}

#[cfg(not(unix))]
fn read_exact_at(_: &File, _: &mut [u8], _: u64) -> io::Result<()> {
    unreachable!("tables are never trusted without unix file identities")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_describes_only_the_file_it_was_saved_for() {
        let dir = tempfile::tempdir().unwrap();
        let (file, table) = (dir.path().join("a.rec"), dir.path().join("t/a"));
        let (a, b) = ([b'a'; 40], [b'b'; 40]);
        std::fs::write(&file, [a, b].concat()).unwrap();
        let mut t = Table::default();
        t.push([1; 16], 0, 40);
        t.push([2; 16], 40, 40);
        t.save(&table, &file);
        let prev = Previous::open(&table, &file).expect("the table fits the file");
        assert_eq!(prev.find(&[2; 16]), Some((40, 40)));
        assert_eq!(prev.find(&[3; 16]), None);
        let mut copied = Vec::new();
        let mut c = Copier::new(&prev);
        let mut out = |bytes: &[u8]| {
            copied.extend_from_slice(bytes);
            Ok(())
        };
        c.add(40, 40, &mut out).unwrap();
        c.add(0, 40, &mut out).unwrap();
        c.flush(&mut out).unwrap();
        assert_eq!(copied, [b, a].concat());

        // the same bytes written again: a new change time, so not trusted
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&file, [a, b].concat()).unwrap();
        assert!(Previous::open(&table, &file).is_none());
        // a table cut short is not used either
        t.save(&table, &file);
        assert!(Previous::open(&table, &file).is_some());
        let data = std::fs::read(&table).unwrap();
        std::fs::write(&table, &data[..data.len() - 1]).unwrap();
        assert!(Previous::open(&table, &file).is_none());
        // nor one with more records than the file can hold
        // (80 bytes: at most 80 / 32 + 1 = 3 records)
        let mut t3 = Table::default();
        for k in 0..4 {
            t3.push([k; 16], 0, 8);
        }
        t3.save(&table, &file);
        assert!(Previous::open(&table, &file).is_none());
    }

    #[test]
    fn a_table_pointing_past_the_end_of_its_file_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let (file, table) = (dir.path().join("a.rec"), dir.path().join("a.table"));
        std::fs::write(&file, [b'x'; 40]).unwrap();
        let mut t = Table::default();
        t.push([1; 16], 4, 40);
        t.save(&table, &file);
        assert!(Previous::open(&table, &file).is_none());
    }
}
