//! Atomic outputs: every file is written under a hidden temporary name in its
//! destination folder and renamed into place only when complete, so an
//! interrupted run never leaves a file that looks finished.

use crate::checksum::{FileSums, Summer};
use std::fs::File;
use std::io::{self, Write};
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
///
/// A large file replaced is renamed aside (to a temporary name, which the
/// next build removes if this process dies first) and removed by a thread
/// of its own: freeing a 390 MB file's blocks and cached pages takes
/// ~90 ms of the thread that unlinks it. [`finish_removals`] waits for them.
fn put_in_place(tmp: tempfile::NamedTempFile, dest: &Path) -> io::Result<()> {
    make_room(dest)?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// Removes what is at `dest` before a file is renamed there (see
/// [`put_in_place`]); nothing to do at a free name.
fn make_room(dest: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_file() && m.len() >= REMOVE_ASIDE => {
            let aside = temp_path(dest);
            std::fs::rename(dest, &aside)?;
            let removal = std::thread::Builder::new()
                .name("imgprep-remove".into())
                .spawn(move || {
                    let _ = std::fs::remove_file(aside);
                })?;
            REMOVALS.lock().unwrap().push(removal);
        }
        Ok(_) => match std::fs::remove_file(dest) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        },
        Err(_) => {}
    }
    Ok(())
}

/// Files at least this large are removed on a thread of their own when replaced.
const REMOVE_ASIDE: u64 = 64 << 20;

/// Removals of replaced files still running (see [`put_in_place`]).
static REMOVALS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Waits until every file this process replaced is removed (a build calls
/// it before it returns, so no space is held after it).
pub fn finish_removals() {
    let running = std::mem::take(&mut *REMOVALS.lock().unwrap());
    for r in running {
        let _ = r.join();
    }
}

/// A temporary name beside `dest`: `.{stem}.XXXXXX.partial`.
fn temp_path(dest: &Path) -> PathBuf {
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
    dir.join(format!(".{stem}.{nonce:06x}.partial"))
}

/// Puts a hard link to `src` at `dest` without ever removing `dest` first.
/// At a free name (a first build) the link is made there, one directory
/// change; over an existing file it is made under a temporary name and
/// renamed over `dest`. When `dest` already is `src` (the same file), nothing
/// changes. A symbolic link is followed: the link is to the file it points
/// to (a relative link would point elsewhere from the output folder).
/// Returns false (and changes nothing) when no hard link can be made
/// (another file system, the file's link limit): the caller copies.
pub fn link_atomic(src: &Path, dest: &Path) -> io::Result<bool> {
    match link_following(src, dest) {
        Ok(()) => return Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(_) => return Ok(false),
    }
    // already a link to the file: left as it is (a link made and removed
    // again would change the source's change time, and with it the
    // source's print: the next build would take it for changed)
    if same_file(src, dest) {
        return Ok(true);
    }
    let tmp = temp_path(dest);
    if link_following(src, &tmp).is_err() {
        return Ok(false);
    }
    // rename over an existing link to the same file does nothing and leaves
    // the temporary link: remove it then (dest still holds the file)
    let renamed = std::fs::rename(&tmp, dest);
    let _ = std::fs::remove_file(&tmp);
    renamed.map(|_| true)
}

/// Whether `dest` (not followed) is the file `src` names (followed).
#[cfg(unix)]
fn same_file(src: &Path, dest: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(src), std::fs::symlink_metadata(dest)) {
        (Ok(a), Ok(b)) => b.is_file() && (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

/// `linkat(2)` with `AT_SYMLINK_FOLLOW`: a hard link at `link` to the file
/// `src` names, or to the one it points to when `src` is a symbolic link
/// (`std::fs::hard_link` links the symbolic link itself).
fn link_following(src: &Path, link: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"))
    };
    let (src, link) = (c(src)?, c(link)?);
    // SAFETY: both are NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::AT_FDCWD,
            link.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

pub struct AtomicFile {
    /// The temporary file (taken when it is put in place).
    tmp: Option<tempfile::NamedTempFile>,
    /// Bytes not yet handed on (to the file, or to the writer thread).
    buf: Vec<u8>,
    dest: PathBuf,
    /// None: no SHA-256 is wanted ([`AtomicFile::create_unsummed`]). Moved
    /// to the hashing thread when the worker starts.
    sums: Option<Summer>,
    /// Started once a file outgrows one buffer: its threads write and hash
    /// the full buffers while the caller fills the next (a large record
    /// file's SHA-256 is then no longer on the one thread that makes its
    /// records, nor on the one that writes them).
    worker: Option<Worker>,
}

/// Size of the buffers an [`AtomicFile`] hands on. Up to seven are in
/// flight, and the last files of a build (`items.csv`, `manifest.json`) are
/// written when it holds the most: 1 MiB buffers made that moment the peak
/// RSS of a 50,000-image detection build (1.5 MB more than 512 KiB ones),
/// for no gain in a 20,000-image rebuild's time.
const BUF: usize = 1 << 19;
/// Full buffers waiting for the writer thread, and written ones waiting
/// for the hasher, at most (so at most `(2 * QUEUE + 3) * BUF` bytes are
/// held, whatever the file's size).
const QUEUE: usize = 2;

/// The threads a large file's buffers go through: the writer `write`s each
/// buffer, then the hasher (when a SHA-256 is wanted) sums it and hands it
/// back to the caller to fill again. Hashing (~1.5 GB/s a core) and the
/// kernel's copy into the page cache then overlap each other and the
/// caller's work, instead of taking turns on one thread.
struct Worker {
    full: std::sync::mpsc::SyncSender<Vec<u8>>,
    empty: std::sync::mpsc::Receiver<Vec<u8>>,
    written: std::thread::JoinHandle<io::Result<()>>,
    summed: Option<std::thread::JoinHandle<Summer>>,
}

impl Worker {
    fn start(mut file: File, sums: Option<Summer>) -> io::Result<Worker> {
        use std::sync::mpsc::sync_channel;
        let (full, rx) = sync_channel::<Vec<u8>>(QUEUE);
        let (back, empty) = sync_channel(2 * QUEUE + 2);
        // after writing, a buffer goes to the hasher, or straight back
        let (to_hasher, summed) = match sums {
            Some(mut s) => {
                let (tx, hrx) = sync_channel::<Vec<u8>>(QUEUE);
                let back = back.clone();
                let hash = move || {
                    for mut b in hrx {
                        s.update(&b);
                        b.clear();
                        let _ = back.try_send(b);
                    }
                    s
                };
                let h = std::thread::Builder::new()
                    .name("imgprep-hash".into())
                    .spawn(hash)?;
                (Some(tx), Some(h))
            }
            None => (None, None),
        };
        let write = move || {
            for mut b in rx {
                file.write_all(&b)?;
                match &to_hasher {
                    Some(tx) => {
                        if tx.send(b).is_err() {
                            return Err(io::Error::other("the hashing thread stopped"));
                        }
                    }
                    None => {
                        b.clear();
                        let _ = back.try_send(b);
                    }
                }
            }
            Ok(())
        };
        let written = std::thread::Builder::new()
            .name("imgprep-write".into())
            .spawn(write)?;
        Ok(Worker {
            full,
            empty,
            written,
            summed,
        })
    }

    /// Waits for every buffer handed on to be written (and summed).
    fn finish(self) -> io::Result<Option<Summer>> {
        drop(self.full);
        let written = self
            .written
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")));
        // (the writer's end of the hasher's queue is gone: it ends too)
        let summed = match self.summed {
            Some(h) => Some(
                h.join()
                    .map_err(|_| io::Error::other("the hashing thread panicked"))?,
            ),
            None => None,
        };
        written.map(|()| summed)
    }
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
    /// Hashing 1.3 GB of records costs 0.7 s of a core.
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
        Ok(AtomicFile {
            tmp: Some(tmp),
            buf: Vec::new(),
            dest: dest.to_path_buf(),
            sums: None,
            worker: None,
        })
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    fn tmp_file(&mut self) -> &mut File {
        self.tmp
            .as_mut()
            .expect("not put in place yet")
            .as_file_mut()
    }

    /// Hands the buffer on: to the writer thread (started for the first
    /// full buffer), or, at the end of a small file, straight to the file.
    fn hand_on(&mut self, last: bool) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.worker.is_none() && last {
            if let Some(s) = &mut self.sums {
                s.update(&self.buf);
            }
            let buf = std::mem::take(&mut self.buf);
            self.tmp_file().write_all(&buf)?;
            return Ok(());
        }
        if self.worker.is_none() {
            let file = self.tmp_file().try_clone()?;
            self.worker = Some(Worker::start(file, self.sums.take())?);
        }
        let w = self.worker.as_ref().expect("started above");
        let next = w.empty.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.buf, next);
        if w.full.send(full).is_err() {
            // the thread stopped on a write error: that error
            let w = self.worker.take().expect("started above");
            return Err(match w.finish() {
                Err(e) => e,
                Ok(_) => io::Error::other("the writer thread stopped"),
            });
        }
        Ok(())
    }

    /// Writes out everything and returns the sums.
    fn finish(&mut self) -> io::Result<Option<Summer>> {
        self.hand_on(true)?;
        match self.worker.take() {
            Some(w) => w.finish(),
            None => Ok(self.sums.take()),
        }
    }

    /// Flushes and renames into place, readable by others like any new
    /// file (temporary files are created 0600). Returns the size and
    /// SHA-256 of what was written, summed on the way (no re-read).
    pub fn commit(mut self) -> io::Result<FileSums> {
        let sums = self.finish()?.expect("made by AtomicFile::create");
        self.persist()?;
        Ok(sums.finish())
    }

    /// Puts the file in place of what is at its path ([`put_in_place`]).
    pub fn persist(mut self) -> io::Result<()> {
        self.finish()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            self.tmp_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        let tmp = self.tmp.take().expect("put in place once");
        put_in_place(tmp, &self.dest)
    }
}

/// Writers that can take bytes straight from a file: a rebuild copies the
/// records that did not change from the previous build's file this way.
pub trait CopyFrom {
    /// Writes `len` bytes of `src` from offset `off` on, as `write_all` of
    /// them would.
    fn copy_from(&mut self, src: &File, off: u64, len: u64) -> io::Result<()>;
}

impl CopyFrom for AtomicFile {
    /// Reads the bytes straight into this file's buffers: one copy fewer
    /// than reading them into a buffer of the caller's and writing that
    /// (0.1 s of a core for the 500 MB a 20,000-image rebuild copies).
    fn copy_from(&mut self, src: &File, mut off: u64, mut len: u64) -> io::Result<()> {
        while len > 0 {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(BUF);
            }
            // (a buffer is handed on as soon as it holds BUF bytes)
            let start = self.buf.len();
            let n = (BUF.saturating_sub(start).max(1) as u64).min(len) as usize;
            self.buf.resize(start + n, 0);
            if let Err(e) = read_exact_at(src, &mut self.buf[start..], off) {
                self.buf.truncate(start);
                return Err(e);
            }
            (off, len) = (off + n as u64, len - n as u64);
            if self.buf.len() >= BUF {
                self.hand_on(false)?;
            }
        }
        Ok(())
    }
}

impl<T: CopyFrom + ?Sized> CopyFrom for &mut T {
    fn copy_from(&mut self, src: &File, off: u64, len: u64) -> io::Result<()> {
        (**self).copy_from(src, off, len)
    }
}

/// [`CopyFrom`] for any writer: through a buffer of `CHUNK` bytes at most.
pub fn copy_through(w: &mut impl Write, src: &File, mut off: u64, mut len: u64) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut buf = vec![0u8; len.min(CHUNK) as usize];
    while len > 0 {
        let n = len.min(CHUNK) as usize;
        read_exact_at(src, &mut buf[..n], off)?;
        w.write_all(&buf[..n])?;
        (off, len) = (off + n as u64, len - n as u64);
    }
    Ok(())
}

#[cfg(unix)]
pub(crate) fn read_exact_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
}

#[cfg(not(unix))]
pub(crate) fn read_exact_at(_: &File, _: &mut [u8], _: u64) -> io::Result<()> {
    unreachable!("record tables are never trusted without unix file identities")
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // abandoned (an error on the way): the thread ends before the
        // temporary file is removed
        if let Some(w) = self.worker.take() {
            let _ = w.finish();
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(BUF);
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= BUF {
            self.hand_on(false)?;
        }
        Ok(())
    }

    /// Nothing to do: everything is written by the time the file is
    /// committed or persisted (which is when others may read it).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether the regular file at `p` (a symbolic link there is not
/// followed, nor anything but a file read) holds exactly `bytes`.
#[cfg(unix)]
pub fn holds_exactly(p: &Path, bytes: &[u8]) -> bool {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(p)
    else {
        return false;
    };
    if !f
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64)
    {
        return false;
    }
    let mut have = Vec::with_capacity(bytes.len() + 1);
    f.take(bytes.len() as u64 + 1)
        .read_to_end(&mut have)
        .is_ok_and(|_| have == bytes)
}

#[cfg(not(unix))]
pub fn holds_exactly(_: &Path, _: &[u8]) -> bool {
    false
}

/// Writes a whole file atomically; returns its size and SHA-256.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<FileSums> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    #[cfg(target_os = "linux")]
    let done = write_unnamed(dir, dest, bytes)?;
    #[cfg(not(target_os = "linux"))]
    let done = false;
    if !done {
        let name = temp_stem(dest);
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)?;
        // one write of the whole buffer: no buffered writer for small files
        tmp.as_file_mut().write_all(bytes)?;
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        put_in_place(tmp, dest)?;
    }
    Ok(crate::checksum::sums_of(bytes))
}

/// Linux: writes `bytes` as a file without a name (`O_TMPFILE`) in `dir`
/// and links it at `dest` once complete. A process killed before leaves
/// nothing, and at a free name (a first build) that is one directory change
/// where a named temporary file takes two (its creation and the rename):
/// 32 against 44 µs a file on this project's ext4. Over an existing file
/// the unnamed one is linked under a temporary name and renamed over it, as
/// [`put_in_place`] does. Returns false, having written nothing, where the
/// file system or `/proc` cannot do this (the caller then takes a named
/// temporary file).
#[cfg(target_os = "linux")]
fn write_unnamed(dir: &Path, dest: &Path, bytes: &[u8]) -> io::Result<bool> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::os::unix::io::AsRawFd;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
    else {
        return Ok(false);
    };
    f.write_all(bytes)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    let me = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
    match link_following(&me, dest) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let tmp = temp_path(dest);
            link_following(&me, &tmp)?;
            let placed = make_room(dest).and_then(|()| std::fs::rename(&tmp, dest));
            if placed.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            placed.map(|()| true)
        }
        Err(_) => Ok(false),
    }
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
    fn small_files_and_links_go_to_free_names_and_over_old_files_alike() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // a free name, then over the file just written, then over a link
        // to another file (which must keep its bytes)
        let json = d.join("a.json");
        let sums = write_atomic(&json, b"{}").unwrap();
        assert_eq!(
            (sums.size, std::fs::read(&json).unwrap()),
            (2, b"{}".to_vec())
        );
        let mode = std::fs::metadata(&json).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        write_atomic(&json, b"{\"a\": 1}").unwrap();
        assert_eq!(std::fs::read(&json).unwrap(), b"{\"a\": 1}");
        let other = d.join("other");
        std::fs::write(&other, b"keep").unwrap();
        std::fs::remove_file(&json).unwrap();
        std::fs::hard_link(&other, &json).unwrap();
        write_atomic(&json, b"new").unwrap();
        assert_eq!(std::fs::read(&json).unwrap(), b"new");
        assert_eq!(std::fs::read(&other).unwrap(), b"keep");
        // a source that is a symbolic link (relative, as a dataset's often
        // are): the output links the file it points to, not the link
        let sub = d.join("src");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("real.jpg"), b"jpeg").unwrap();
        std::os::unix::fs::symlink("real.jpg", sub.join("alias.jpg")).unwrap();
        let out = d.join("out.jpg");
        assert!(link_atomic(&sub.join("alias.jpg"), &out).unwrap());
        let meta = std::fs::symlink_metadata(&out).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(
            meta.ino(),
            std::fs::metadata(sub.join("real.jpg")).unwrap().ino()
        );
        // and over an existing file of other bytes
        assert!(link_atomic(&other, &out).unwrap());
        assert_eq!(std::fs::read(&out).unwrap(), b"keep");
        assert_eq!(std::fs::read(sub.join("real.jpg")).unwrap(), b"jpeg");
        // a source that is not there: no link, nothing made (the caller copies,
        // and reading the source names it)
        assert!(!link_atomic(&d.join("gone.jpg"), &d.join("x.jpg")).unwrap());
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["a.json", "other", "out.jpg", "src"],
            "nothing temporary left"
        );
    }

    #[test]
    fn a_large_file_replaced_is_removed_aside_and_a_large_write_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.rec");
        // (sparse: large without writing it)
        File::create(&dest).unwrap().set_len(REMOVE_ASIDE).unwrap();
        let mut f = AtomicFile::create(&dest).unwrap();
        let mut want = Summer::default();
        let mut all = Vec::new();
        // several buffers' worth, in odd-sized writes: the writer thread's path
        for k in 0..(3 * BUF / 1000 + 7) {
            let chunk: Vec<u8> = (0..1000).map(|j| (k * 31 + j) as u8).collect();
            f.write_all(&chunk).unwrap();
            want.update(&chunk);
            all.extend_from_slice(&chunk);
        }
        let sums = f.commit().unwrap();
        finish_removals();
        assert_eq!(sums, want.finish());
        assert_eq!(std::fs::read(&dest).unwrap(), all);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "the old file is gone, nothing left aside");
    }

    #[test]
    fn bytes_copied_from_a_file_land_between_the_writes_around_them() {
        let dir = tempfile::tempdir().unwrap();
        let src_p = dir.path().join("src");
        let src: Vec<u8> = (0..3 * BUF + 123)
            .map(|j| (j * 7 + j / 251) as u8)
            .collect();
        std::fs::write(&src_p, &src).unwrap();
        let src_f = File::open(&src_p).unwrap();
        let dest = dir.path().join("a.rec");
        let mut f = AtomicFile::create(&dest).unwrap();
        let mut all = Vec::new();
        // copies that start in a part-filled buffer, span several buffers,
        // end exactly on a buffer's end, and are empty
        let runs = [
            (5u64, 10u64),
            (100, 2 * BUF as u64 + 17),
            (0, 0),
            (1, BUF as u64 - 42),
        ];
        for (k, &(off, len)) in runs.iter().enumerate() {
            let head = vec![k as u8; 13 * (k + 1)];
            f.write_all(&head).unwrap();
            all.extend_from_slice(&head);
            f.copy_from(&src_f, off, len).unwrap();
            all.extend_from_slice(&src[off as usize..(off + len) as usize]);
        }
        // past the end of the file: an error, nothing of it written
        let before = all.len();
        let err = f.copy_from(&src_f, src.len() as u64 - 5, 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        f.write_all(b"end").unwrap();
        all.extend_from_slice(b"end");
        let sums = f.commit().unwrap();
        let written = std::fs::read(&dest).unwrap();
        assert_eq!(written.len(), before + 3);
        assert!(written == all, "the copies and writes, in order");
        let mut want = Summer::default();
        want.update(&all);
        assert_eq!(sums, want.finish());
        // the same through any writer
        let mut v = Vec::new();
        copy_through(&mut v, &src_f, 100, 2 * BUF as u64 + 17).unwrap();
        assert!(v == src[100..100 + 2 * BUF + 17]);
    }

    #[test]
    fn partial_names_are_recognised_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let f = AtomicFile::create(&dir.path().join("a.rec")).unwrap();
        let tmp_name = f
            .tmp
            .as_ref()
            .unwrap()
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
