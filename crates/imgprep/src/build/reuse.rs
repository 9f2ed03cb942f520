//! Record reuse: a rebuild copies the records that did not change from the
//! previous build's record files instead of reading every item again.
//!
//! For each set of record files it writes (a RecordIO `.rec`, or the shards
//! of one TFRecord split), a build keeps a record table beside the item
//! cache (`records/ID`, never in the output folder): per file its name in
//! the output folder and its identity once in place (device, inode, size,
//! modification and change times: any later write, replacement or restore
//! changes one of them), and per record a key naming everything its bytes
//! are made from (for RecordIO the record header and the identity of the
//! item's bytes, i.e. its cache key; for TFRecord the example's other
//! features and that identity) with the file, offset and length of its
//! framed bytes.
//!
//! The next build of the same set looks each record's key up. Found, the
//! record's bytes are copied from the previous file (consecutive records as
//! one copy), without reading the item; not found, the record is made as in
//! a first build. The records of a file whose identity differs are not
//! used, and a table that does not parse is not used at all: the build then
//! reads those items, as a first build does. The result is byte-identical
//! to a clean build either way.

use crate::checksum::sha256;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"IPRTAB02";
/// device, inode, size, mtime s+ns, ctime s+ns
const IDENTITY: usize = 7;
/// key, file, offset, length
const ENTRY: usize = 16 + 8 + 8 + 8;
/// The smallest record a table can describe: TFRecord's 16 bytes of
/// framing (RecordIO's 8 bytes and image header make 32).
const MIN_RECORD: u64 = 16;
/// Limits on what a table may list, so a damaged one is not trusted.
const MAX_FILES: u64 = 1 << 20;
const MAX_NAME: u64 = 4096;
/// Previous files held open at once: records of files past this many are
/// made again, so a table of thousands of shards cannot use up the
/// process's file descriptors.
const MAX_OPEN: usize = 256;

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

/// Where the table `id` (the record file's name in the output folder, or
/// for a set of shards the name they share) of the output folder `out` is
/// kept, under the item cache folder `cache_dir`.
pub(super) fn table_path(cache_dir: &Path, out: &Path, id: &str) -> PathBuf {
    cache_dir
        .join(TABLES)
        .join(format!("{}-{}", out_tag(out), table_name(out, id)))
}

/// What the names of `out`'s record tables start with (before a `-`): the
/// tables of other outputs sharing the cache folder are told apart by it.
fn out_tag(out: &Path) -> String {
    let abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    crate::checksum::sha256_hex(abs.as_os_str().as_encoded_bytes())[..12].to_string()
}

/// The folder of record tables in an item cache.
pub(super) const TABLES: &str = "records";

pub(super) fn table_name(out: &Path, id: &str) -> String {
    let abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let h = crate::checksum::sha256_hex(format!("{}\0{id}", abs.display()).as_bytes());
    h[..24].to_string()
}

/// Removes the tables of `out` this build did not keep (outputs no longer
/// made, or made by a build with another recipe). The tables of other
/// outputs sharing the cache folder stay; so does anything not named as a
/// table.
pub(super) fn prune<'a>(cache_dir: &Path, out: &Path, kept: impl Iterator<Item = &'a str>) {
    let dir = cache_dir.join(TABLES);
    let keep: std::collections::HashSet<PathBuf> =
        kept.map(|r| table_path(cache_dir, out, r)).collect();
    let mine = format!("{}-", out_tag(out));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let hex = |t: &str| t.bytes().all(|b| b.is_ascii_hexdigit());
        // (24 hex digits alone: a table of an earlier version, never read now)
        let stale = name.len() == 24 && hex(&name);
        let own = name
            .strip_prefix(&mine)
            .is_some_and(|t| t.len() == 24 && hex(t));
        let partial = crate::output::is_partial_name(&name);
        if (own && !keep.contains(&e.path())) || stale || partial {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A file's identity: device, inode, size, modification and change times
/// (any write, replacement or restore changes one of them).
#[cfg(unix)]
pub(super) fn identity(m: &std::fs::Metadata) -> [u64; IDENTITY] {
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
pub(super) fn identity(_: &std::fs::Metadata) -> [u64; IDENTITY] {
    // no inode or change time: a table is never trusted
    [u64::MAX; IDENTITY]
}

/// The previous build's record files, open, and where each record lies in
/// them.
pub(super) struct Previous {
    /// Per file of the table: open and still the file the table
    /// describes, or None.
    files: Vec<Option<File>>,
    at: HashMap<Key, (u32, u64, u64)>,
}

fn word(r: &mut impl Read) -> Option<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

impl Previous {
    /// The previous versions of the record files the table at `table`
    /// lists; `resolve` gives the path of a file by its name in the output
    /// folder (None: not to be read). Records are looked up only in files
    /// that are still exactly the files the table describes.
    pub fn open(table: &Path, resolve: impl Fn(&str) -> Option<PathBuf>) -> Option<Previous> {
        if cfg!(not(unix)) {
            return None;
        }
        let t = File::open(table).ok()?;
        let tlen = t.metadata().ok()?.len();
        let mut r = BufReader::new(t);
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).ok()?;
        if &magic != MAGIC {
            return None;
        }
        let nfiles = word(&mut r)?;
        if nfiles > MAX_FILES {
            return None;
        }
        let mut files = Vec::with_capacity(nfiles as usize);
        let mut lens = Vec::with_capacity(nfiles as usize);
        let mut pos = 16u64;
        let mut open = 0usize;
        for _ in 0..nfiles {
            let n = word(&mut r)?;
            if n > MAX_NAME {
                return None;
            }
            let mut name = vec![0u8; n as usize];
            r.read_exact(&mut name).ok()?;
            let mut id = [0u64; IDENTITY];
            for w in &mut id {
                *w = word(&mut r)?;
            }
            pos += 8 + n + 8 * IDENTITY as u64;
            let file = String::from_utf8(name)
                .ok()
                .filter(|_| open < MAX_OPEN)
                .and_then(|name| resolve(&name))
                .and_then(|p| File::open(p).ok())
                .filter(|f| {
                    f.metadata()
                        .is_ok_and(|m| m.is_file() && identity(&m) == id)
                });
            open += usize::from(file.is_some());
            lens.push(file.as_ref().map_or(0, |_| id[2]));
            files.push(file);
        }
        let n = word(&mut r)?;
        pos += 8;
        // exactly the entries the count says (checked before reading them)
        if n.checked_mul(ENTRY as u64)?.checked_add(pos)? != tlen {
            return None;
        }
        // each file's entries are bounded by the records it can hold, so
        // memory follows the record files, not the table
        let mut counts = vec![0u64; files.len()];
        let mut at = HashMap::new();
        let mut e = [0u8; ENTRY];
        for _ in 0..n {
            r.read_exact(&mut e).ok()?;
            let key: Key = e[..16].try_into().expect("16 bytes");
            let w = |k: usize| u64::from_le_bytes(e[k..k + 8].try_into().expect("8 bytes"));
            let (f, off, len) = (w(16), w(24), w(32));
            let k = usize::try_from(f).ok().filter(|&k| k < files.len())?;
            if files[k].is_none() {
                continue;
            }
            counts[k] += 1;
            if off.checked_add(len)? > lens[k] || len == 0 || counts[k] > lens[k] / MIN_RECORD + 1 {
                return None;
            }
            at.insert(key, (k as u32, off, len));
        }
        Some(Previous { files, at })
    }

    /// Where the record with this key lies: file (its place in the
    /// table), offset, length.
    pub fn find(&self, key: &Key) -> Option<(u32, u64, u64)> {
        self.at.get(key).copied()
    }
}

/// The records of the files being written, for the next build's table.
#[derive(Default)]
pub(super) struct Table {
    entries: Vec<(Key, u32, u64, u64)>,
}

impl Table {
    /// A record of the `file`th file written (in the order `save` is given
    /// them) at `offset`, `len` bytes long.
    pub fn push(&mut self, key: Key, file: u32, offset: u64, len: u64) {
        self.entries.push((key, file, offset, len));
    }

    /// Saves the table of the files now at `files` (name in the output
    /// folder, path; just put in place) to `table`. A table that cannot be
    /// saved only costs the next build its reuse, so failures are ignored,
    /// after removing any older table.
    pub fn save(&self, table: &Path, files: &[(String, PathBuf)]) {
        let saved = (|| -> io::Result<()> {
            let mut data = Vec::with_capacity(16 + self.entries.len() * ENTRY);
            data.extend_from_slice(MAGIC);
            data.extend_from_slice(&(files.len() as u64).to_le_bytes());
            for (name, path) in files {
                let meta = std::fs::metadata(path)?;
                data.extend_from_slice(&(name.len() as u64).to_le_bytes());
                data.extend_from_slice(name.as_bytes());
                for w in identity(&meta) {
                    data.extend_from_slice(&w.to_le_bytes());
                }
            }
            data.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
            for (key, file, off, len) in &self.entries {
                data.extend_from_slice(key);
                data.extend_from_slice(&u64::from(*file).to_le_bytes());
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

/// Copies runs of records from the previous files: consecutive records of
/// one file are gathered into one run and copied when a record that is not
/// copied (or the end) comes.
pub(super) struct Copier<'a> {
    prev: &'a Previous,
    run: Option<(u32, u64, u64)>,
}

impl<'a> Copier<'a> {
    pub fn new(prev: &'a Previous) -> Self {
        Copier { prev, run: None }
    }

    /// Bytes gathered and not yet copied.
    pub fn pending(&self) -> u64 {
        self.run.map_or(0, |(_, _, len)| len)
    }

    /// Adds the record `found` by [`Previous::find`] to the run, copying
    /// the run first when this record does not follow it. `out(file,
    /// offset, length)` copies a run (see [`crate::output::CopyFrom`]).
    pub fn add(
        &mut self,
        (file, off, len): (u32, u64, u64),
        out: &mut impl FnMut(&File, u64, u64) -> io::Result<()>,
    ) -> io::Result<()> {
        match &mut self.run {
            Some((f, start, n)) if *f == file && *start + *n == off => *n += len,
            _ => {
                self.flush(out)?;
                self.run = Some((file, off, len));
            }
        }
        Ok(())
    }

    /// Copies the run gathered so far.
    pub fn flush(
        &mut self,
        out: &mut impl FnMut(&File, u64, u64) -> io::Result<()>,
    ) -> io::Result<()> {
        let Some((file, off, len)) = self.run.take() else {
            return Ok(());
        };
        let f = self.prev.files[file as usize]
            .as_ref()
            .expect("records are found only in trusted files");
        out(f, off, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(dir: &Path) -> impl Fn(&str) -> Option<PathBuf> + '_ {
        move |name| Some(dir.join(name))
    }

    #[test]
    fn a_table_describes_only_the_file_it_was_saved_for() {
        let dir = tempfile::tempdir().unwrap();
        let (file, table) = (dir.path().join("a.rec"), dir.path().join("t/a"));
        let files = [("a.rec".to_string(), file.clone())];
        let (a, b) = ([b'a'; 40], [b'b'; 40]);
        std::fs::write(&file, [a, b].concat()).unwrap();
        let mut t = Table::default();
        t.push([1; 16], 0, 0, 40);
        t.push([2; 16], 0, 40, 40);
        t.save(&table, &files);
        let open = || Previous::open(&table, resolver(dir.path()));
        let prev = open().expect("the table fits the file");
        assert_eq!(prev.find(&[2; 16]), Some((0, 40, 40)));
        assert_eq!(prev.find(&[3; 16]), None);
        let mut copied = Vec::new();
        let mut c = Copier::new(&prev);
        let mut out = |f: &File, off, len| crate::output::copy_through(&mut copied, f, off, len);
        c.add((0, 40, 40), &mut out).unwrap();
        c.add((0, 0, 40), &mut out).unwrap();
        c.flush(&mut out).unwrap();
        assert_eq!(copied, [b, a].concat());

        // the same bytes written again: a new change time, so not trusted
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&file, [a, b].concat()).unwrap();
        assert_eq!(open().unwrap().find(&[2; 16]), None);
        // a table cut short is not used either
        t.save(&table, &files);
        assert!(open().unwrap().find(&[2; 16]).is_some());
        let data = std::fs::read(&table).unwrap();
        std::fs::write(&table, &data[..data.len() - 1]).unwrap();
        assert!(open().is_none());
        // nor one with more records than the file can hold
        // (80 bytes: at most 80 / 16 + 1 = 6 records)
        let mut t7 = Table::default();
        for k in 0..7 {
            t7.push([k; 16], 0, 0, 8);
        }
        t7.save(&table, &files);
        assert!(open().is_none());
        // nor one naming a file that is not to be read
        t.save(&table, &files);
        assert!(Previous::open(&table, |_| None)
            .unwrap()
            .find(&[1; 16])
            .is_none());
    }

    #[test]
    fn records_are_found_in_every_file_still_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("t");
        let names = ["s0", "s1", "s2"];
        let files: Vec<(String, PathBuf)> = names
            .iter()
            .map(|n| (n.to_string(), dir.path().join(n)))
            .collect();
        for (k, (_, p)) in files.iter().enumerate() {
            std::fs::write(p, vec![b'0' + k as u8; 32]).unwrap();
        }
        let mut t = Table::default();
        for k in 0..3u8 {
            t.push([k; 16], k as u32, 0, 16);
            t.push([k + 10; 16], k as u32, 16, 16);
        }
        t.save(&table, &files);
        // the middle shard replaced since: its records are not used, the
        // others' are
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&files[1].1, [b'x'; 32]).unwrap();
        let prev = Previous::open(&table, resolver(dir.path())).unwrap();
        assert_eq!(prev.find(&[0; 16]), Some((0, 0, 16)));
        assert_eq!(prev.find(&[1; 16]), None);
        assert_eq!(prev.find(&[12; 16]), Some((2, 16, 16)));
        // a run does not span two files
        let mut copied = Vec::new();
        let mut c = Copier::new(&prev);
        let mut out = |f: &File, off, len| crate::output::copy_through(&mut copied, f, off, len);
        c.add(prev.find(&[10; 16]).unwrap(), &mut out).unwrap();
        c.add(prev.find(&[2; 16]).unwrap(), &mut out).unwrap();
        c.add(prev.find(&[12; 16]).unwrap(), &mut out).unwrap();
        c.flush(&mut out).unwrap();
        assert_eq!(copied, [vec![b'0'; 16], vec![b'2'; 32]].concat());
    }

    #[test]
    fn a_table_of_more_files_than_may_be_open_uses_the_first_ones() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("t");
        let files: Vec<(String, PathBuf)> = (0..MAX_OPEN + 2)
            .map(|k| (format!("s{k}"), dir.path().join(format!("s{k}"))))
            .collect();
        let mut t = Table::default();
        for (k, (_, p)) in files.iter().enumerate() {
            std::fs::write(p, [7u8; 16]).unwrap();
            t.push((k as u128).to_le_bytes(), k as u32, 0, 16);
        }
        t.save(&table, &files);
        let prev = Previous::open(&table, resolver(dir.path())).unwrap();
        let found = |k: usize| prev.find(&(k as u128).to_le_bytes());
        assert_eq!(found(0), Some((0, 0, 16)));
        assert_eq!(found(MAX_OPEN - 1), Some(((MAX_OPEN - 1) as u32, 0, 16)));
        assert_eq!(found(MAX_OPEN), None);
        assert_eq!(found(MAX_OPEN + 1), None);
    }

    #[test]
    fn a_table_pointing_past_the_end_of_its_file_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let (file, table) = (dir.path().join("a.rec"), dir.path().join("a.table"));
        std::fs::write(&file, [b'x'; 40]).unwrap();
        let mut t = Table::default();
        t.push([1; 16], 0, 4, 40);
        t.save(&table, &[("a.rec".into(), file)]);
        assert!(Previous::open(&table, resolver(dir.path())).is_none());
    }
}
