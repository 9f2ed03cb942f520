//! The item cache: encoded images keyed by what they were made from (source
//! path, size, modification time) and how (the transform). A re-run decodes
//! only items whose key is new. Entries are written atomically.

use crate::image::{ImageFormat, ImageInfo, SourceColor};
use crate::output::write_atomic;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"IPC2";
const HEADER: usize = 16;

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

    pub fn key(transform: &str, path: &Path, size: u64, mtime: i128) -> String {
        let text = format!("{transform}\0{}\0{size}\0{mtime}", path.display());
        crate::checksum::sha256_hex(text.as_bytes())[..40].to_string()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(key)
    }

    fn parse_header(h: &[u8]) -> Option<ImageInfo> {
        if h.len() < HEADER || &h[..4] != MAGIC {
            return None;
        }
        Some(ImageInfo {
            format: format_from(h[4])?,
            channels: h[5],
            source: SourceColor::from_code(h[6])?,
            width: u32::from_le_bytes(h[8..12].try_into().ok()?),
            height: u32::from_le_bytes(h[12..16].try_into().ok()?),
        })
    }

    /// The cached image and its info, if present and intact.
    pub fn get(&self, key: &str) -> Option<(ImageInfo, Vec<u8>)> {
        let mut data = std::fs::read(self.path(key)).ok()?;
        let info = Self::parse_header(&data)?;
        data.drain(..HEADER);
        Some((info, data))
    }

    /// Only the info of a cached image (reads its 16-byte header, not the image).
    pub fn info(&self, key: &str) -> Option<ImageInfo> {
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

    pub fn put(&self, key: &str, info: &ImageInfo, bytes: &[u8]) -> std::io::Result<()> {
        let p = self.path(key);
        std::fs::create_dir_all(p.parent().unwrap())?;
        let mut data = Vec::with_capacity(HEADER + bytes.len());
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(&[
            format_code(info.format),
            info.channels,
            info.source.code(),
            0,
        ]);
        data.extend_from_slice(&info.width.to_le_bytes());
        data.extend_from_slice(&info.height.to_le_bytes());
        data.extend_from_slice(bytes);
        write_atomic(&p, &data).map(drop)
    }

    /// Removes every entry whose key is not in `keep` (those of earlier
    /// builds: changed sources, other transforms, removed items), so the
    /// cache holds no more than the current build. Returns (entries, bytes)
    /// removed.
    pub fn retain(&self, keep: &std::collections::HashSet<String>) -> (u64, u64) {
        let (mut n, mut bytes) = (0, 0);
        let Ok(subdirs) = std::fs::read_dir(&self.dir) else {
            return (0, 0);
        };
        for d in subdirs.flatten() {
            let Ok(entries) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if keep.contains(&name) {
                    continue;
                }
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
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
