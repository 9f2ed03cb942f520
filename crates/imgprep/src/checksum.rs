//! Checksums for manifests: SHA-256 and the S3 ETag (multipart form for a
//! given part size).

use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::io::Read;
use std::path::Path;

/// S3 multipart part size the manifest's ETags are computed for (aws cli's default).
pub const ETAG_PART_SIZE: u64 = 8 * 1024 * 1024;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Size, SHA-256 and S3 ETag of a file, in one pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSums {
    pub size: u64,
    pub sha256: String,
    /// `md5` for files up to one part, `md5(part md5s)-N` above (8 MiB parts).
    pub etag: String,
}

pub fn file_sums(path: &Path) -> std::io::Result<FileSums> {
    let mut f = std::fs::File::open(path)?;
    let mut sha = Sha256::new();
    let mut part = Md5::new();
    let mut part_len = 0u64;
    let mut part_digests: Vec<u8> = Vec::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        sha.update(chunk);
        size += n as u64;
        while !chunk.is_empty() {
            let take = ((ETAG_PART_SIZE - part_len) as usize).min(chunk.len());
            part.update(&chunk[..take]);
            part_len += take as u64;
            chunk = &chunk[take..];
            if part_len == ETAG_PART_SIZE {
                part_digests.extend_from_slice(&std::mem::take(&mut part).finalize());
                part_len = 0;
            }
        }
    }
    let parts = part_digests.len() / 16 + usize::from(part_len > 0);
    let etag = if size <= ETAG_PART_SIZE {
        // single-part upload: plain MD5 of the body
        if part_len > 0 || size == 0 {
            hex(&part.finalize())
        } else {
            hex(&part_digests[..16])
        }
    } else {
        if part_len > 0 {
            part_digests.extend_from_slice(&part.finalize());
        }
        format!("{}-{parts}", hex(&Md5::digest(&part_digests)))
    };
    Ok(FileSums {
        size,
        sha256: hex(&sha.finalize()),
        etag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_single_and_multipart() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"hello").unwrap();
        let s = file_sums(&small).unwrap();
        assert_eq!(s.etag, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(
            s.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        // exactly one part: still the plain MD5
        let exact = dir.path().join("exact");
        let data = vec![7u8; ETAG_PART_SIZE as usize];
        std::fs::write(&exact, &data).unwrap();
        assert_eq!(file_sums(&exact).unwrap().etag, hex(&Md5::digest(&data)));
        // 8 MiB + 3 bytes: two parts
        let big = dir.path().join("big");
        let mut data2 = data.clone();
        data2.extend_from_slice(b"abc");
        std::fs::write(&big, &data2).unwrap();
        let mut cat = Md5::digest(&data).to_vec();
        cat.extend_from_slice(&Md5::digest(b"abc"));
        assert_eq!(
            file_sums(&big).unwrap().etag,
            format!("{}-2", hex(&Md5::digest(&cat)))
        );
    }
}
