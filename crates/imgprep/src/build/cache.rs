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
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(&[
            format_code(info.format),
            info.channels,
            info.source.code(),
            geometry.orientation,
        ]);
        data.extend_from_slice(&info.width.to_le_bytes());
        data.extend_from_slice(&info.height.to_le_bytes());
        data.extend_from_slice(sha);
        data.extend_from_slice(&geometry.width.to_le_bytes());
        data.extend_from_slice(&geometry.height.to_le_bytes());
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
    /// stay. Returns (entries, bytes) removed.
    pub fn retain(
        &self,
        keep: &std::collections::HashSet<&str>,
        before: std::time::SystemTime,
    ) -> (u64, u64) {
        let (mut n, mut bytes) = (0, 0);
        let Ok(subdirs) = std::fs::read_dir(&self.dir) else {
            return (0, 0);
        };
        for d in subdirs.flatten() {
            // the record tables (see `reuse`) are kept by their own rule
            let name = d.file_name();
            if name == super::reuse::TABLES || name == super::STAMPS || name == OWNERS {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                if keep.contains(name.to_string_lossy().as_ref()) {
                    continue;
                }
                let meta = e.metadata().ok();
                if meta
                    .as_ref()
                    .and_then(|m| m.modified().ok())
                    .is_some_and(|t| t >= before)
                {
                    continue;
                }
                let len = meta.map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(e.path()).is_ok() {
                    n += 1;
                    bytes += len;
                }
            }
            // empty sub-folders go too (fails harmlessly when not empty)
            let _ = std::fs::remove_dir(d.path());
        }
        (n, bytes)
    }
}
