//! The prepare step of pass-through images, started before the catalog.
//!
//! A pass-through build reads every source image whole once: a header check
//! and the SHA-256 that the manifest and `items.csv` carry. That is most of
//! the CPU of a first build from local folders, and it waits until the
//! catalog (listing, annotation parsing) and the plan are done, which run
//! on one thread. [`Prefetch`] does the same work for the image files under
//! the sources' local folders on a thread of its own from the build's
//! start, so it fills the core the catalog leaves idle. When the prepare
//! step begins the thread is stopped; an item whose file it did, with the
//! size and modification time the catalog saw, takes its result, and the
//! prepare step does the rest. Results are the same as the prepare step's:
//! both call [`passthrough`].
//!
//! Bounded: it stops at the prepare step (so at most what one thread does
//! while the catalog runs), reads files of at most [`MAX_FILE_BYTES`], and
//! skips hidden folders and folder links.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::Prepared;
use crate::image::Processor;

/// Larger files are left to the prepare step.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// What a file was when it was read: its size and modification time (ns),
/// as `files::fingerprint` gives them.
pub type Print = (u64, i128);

/// The prepare step of one local pass-through image: read whole, header
/// check (`max_pixels` included), the upright geometry and the SHA-256.
/// `size`: its size as last seen.
pub(super) fn passthrough(p: &mut Processor, path: &Path, size: u64, max_pixels: u64) -> Prepared {
    match crate::files::check_image_size(size, max_pixels)
        .and_then(|()| crate::files::read_sized(path, size))
    {
        Ok(d) => match p.probe(&d, max_pixels) {
            Ok(info) => {
                let geometry = crate::image::source_geometry(&d, &info);
                Prepared::Ok(info, crate::checksum::sha256(&d), geometry)
            }
            Err(e) => Prepared::Skipped(e.to_string()),
        },
        Err(e) => Prepared::Skipped(e.to_string()),
    }
}

/// The local folders that hold a recipe's source images (not videos, not
/// object storage), each once.
pub(super) fn image_folders(r: &crate::recipe::LoadedRecipe) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    for folder in super::sources::image_roots(r) {
        if !crate::files::is_remote(&folder) && folder.is_dir() && !v.contains(&folder) {
            v.push(folder);
        }
    }
    v
}

/// A prepared file: its path's key (see [`path_key`]), what it was when
/// read, and the result.
type Entry = (u128, Print, Prepared);

/// A file's path as 128 bits of its SHA-256: the results are looked up by
/// it, so that 50,000 of them do not hold 50,000 paths (a first build's
/// peak memory is in its budget). Two paths of one build would have to
/// share those 128 bits, and the same size and time to the nanosecond,
/// for one to take the other's result.
fn path_key(path: &Path) -> u128 {
    use std::os::unix::ffi::OsStrExt;
    let sum = crate::checksum::sha256(path.as_os_str().as_bytes());
    u128::from_le_bytes(sum[..16].try_into().expect("16 bytes"))
}

/// The image files under some folders, prepared on a thread of their own
/// until [`Prefetch::finish`] (or drop) stops it.
pub(super) struct Prefetch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Entry>>>,
}

impl Prefetch {
    /// Starts on `folders` (each walked in name order, depth first; paths
    /// that are not folders are passed over). `None` when there are none or
    /// the thread cannot be started: the prepare step then does everything,
    /// as without it.
    pub fn start(folders: Vec<PathBuf>, max_pixels: u64) -> Option<Prefetch> {
        if folders.is_empty() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("imgprep-prefetch".into())
            .spawn(move || run(&folders, max_pixels, &stopped))
            .ok()?;
        Some(Prefetch {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread (after the file it is on) and gives what it did.
    pub fn finish(mut self) -> Done {
        let mut done = self.halt();
        done.sort_unstable_by_key(|e| e.0);
        Done(done)
    }

    fn halt(&mut self) -> Vec<Entry> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // a build that ends early (an error in the catalog) leaves no thread behind
        self.halt();
    }
}

/// What a stopped [`Prefetch`] did, by path key.
#[derive(Default)]
pub(super) struct Done(Vec<Entry>);

impl Done {
    /// The result for `path`, if its file was done and still is what the
    /// catalog saw (`print`).
    pub fn get(&self, path: &Path, print: Print) -> Option<&Prepared> {
        if self.0.is_empty() {
            return None;
        }
        let key = path_key(path);
        let at = self.0.binary_search_by_key(&key, |e| e.0).ok()?;
        let (_, seen, prepared) = &self.0[at];
        (*seen == print).then_some(prepared)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

fn run(folders: &[PathBuf], max_pixels: u64, stop: &AtomicBool) -> Vec<Entry> {
    let mut done = Vec::new();
    let Ok(mut p) = Processor::new() else {
        return done;
    };
    // folders still to walk, the next one last
    let mut todo: Vec<PathBuf> = folders.iter().rev().cloned().collect();
    while let Some(dir) = todo.pop() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        // the image names, in one string (a path each is 5 MB of small
        // allocations at 50,000 files, in this thread's own heap)
        let mut names = String::new();
        let mut spans: Vec<(u32, u32)> = Vec::new();
        let mut dirs = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            // the entry's own type: folder links are not followed
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(e.path()),
                Ok(t)
                    if (t.is_file() || t.is_symlink())
                        && crate::annotations::is_image_name(name) =>
                {
                    let (Ok(start), Ok(end)) = (
                        u32::try_from(names.len()),
                        u32::try_from(names.len() + name.len()),
                    ) else {
                        continue;
                    };
                    names.push_str(name);
                    spans.push((start, end));
                }
                _ => {}
            }
        }
        let name = |&(a, b): &(u32, u32)| &names[a as usize..b as usize];
        spans.sort_unstable_by(|x, y| name(x).cmp(name(y)));
        dirs.sort();
        todo.extend(dirs.into_iter().rev());
        done.reserve(spans.len());
        let mut path = dir.clone();
        for span in &spans {
            if stop.load(Ordering::Relaxed) {
                return done;
            }
            path.push(name(span));
            if let Ok(print) = crate::files::fingerprint(&path) {
                // (a file too large, or that does not read or check, is
                // left to the prepare step, which says why)
                if print.0 <= MAX_FILE_BYTES {
                    if let ok @ Prepared::Ok(..) = passthrough(&mut p, &path, print.0, max_pixels) {
                        done.push((path_key(&path), print, ok));
                    }
                }
            }
            path.pop();
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 40]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn prepares_images_in_folders_as_the_prepare_step_does() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("set");
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        std::fs::write(root.join("a.png"), png(8, 6)).unwrap();
        std::fs::write(root.join("b/c/d.PNG"), png(4, 4)).unwrap();
        std::fs::write(root.join("b/broken.png"), b"not a png").unwrap();
        std::fs::write(root.join("b/notes.txt"), b"text").unwrap();
        std::fs::write(root.join(".hidden/e.png"), png(4, 4)).unwrap();
        let pre = Prefetch::start(vec![root.clone(), t.path().join("missing")], 1 << 30).unwrap();
        // the thread runs until finished or stopped: wait for it to end
        let done = {
            let mut pre = pre;
            let mut done = pre.thread.take().unwrap().join().unwrap();
            done.sort_unstable_by_key(|e| e.0);
            Done(done)
        };
        // (the broken one is left to the prepare step)
        assert_eq!(done.len(), 2, "a.png, b/c/d.PNG");
        assert!(done.get(&root.join("b/broken.png"), (9, 0)).is_none());
        let mut p = Processor::new().unwrap();
        for name in ["a.png", "b/c/d.PNG"] {
            let path = root.join(name);
            let print = crate::files::fingerprint(&path).unwrap();
            let got = done.get(&path, print).expect(name);
            let want = passthrough(&mut p, &path, print.0, 1 << 30);
            let (Prepared::Ok(i, s, g), Prepared::Ok(wi, ws, wg)) = (got, &want) else {
                panic!("{name}: prefetched and prepared differ");
            };
            assert_eq!((i.width, i.height, s, g), (wi.width, wi.height, ws, wg));
            assert_eq!((i.width, i.height), (g.width, g.height));
            assert_eq!(s, &crate::checksum::sha256(&std::fs::read(&path).unwrap()));
            // a file that changed since (another size or time) is not taken
            assert!(done.get(&path, (print.0 + 1, print.1)).is_none());
            assert!(done.get(&path, (print.0, print.1 + 1)).is_none());
        }
        assert!(done.get(&root.join(".hidden/e.png"), (0, 0)).is_none());
    }

    #[test]
    fn stops_when_asked_and_when_dropped() {
        let t = tempfile::tempdir().unwrap();
        for i in 0..50 {
            std::fs::write(t.path().join(format!("{i:03}.png")), png(16, 16)).unwrap();
        }
        let folders = vec![t.path().to_path_buf()];
        // asked to stop before it starts: nothing done
        assert!(run(&folders, 1 << 30, &AtomicBool::new(true)).is_empty());
        assert_eq!(run(&folders, 1 << 30, &AtomicBool::new(false)).len(), 50);
        // stopped at once: whatever it did is right
        let done = Prefetch::start(folders.clone(), 1 << 30).unwrap().finish();
        let mut p = Processor::new().unwrap();
        for i in 0..50 {
            let path = t.path().join(format!("{i:03}.png"));
            let print = crate::files::fingerprint(&path).unwrap();
            if let Some(Prepared::Ok(_, sha, _)) = done.get(&path, print) {
                let Prepared::Ok(_, want, _) = passthrough(&mut p, &path, print.0, 1 << 30) else {
                    panic!("{i:03}.png does not prepare");
                };
                assert_eq!(sha, &want);
            }
        }
        // dropped unfinished: the thread is stopped and joined, not left running
        drop(Prefetch::start(folders, 1 << 30).unwrap());
        // nothing to walk: no thread
        assert!(Prefetch::start(Vec::new(), 1 << 30).is_none());
    }
}
