//! Checksums: SHA-256 for manifests (computed while writing), and the S3
//! ETag (multipart form for a given part size) for pushes and pulls.

use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::io::Read;
use std::path::Path;

/// Default S3 multipart part size (the AWS CLI's default).
pub const ETAG_PART_SIZE: u64 = 8 * 1024 * 1024;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lowercase hex digits of `bytes` (one allocation, not one per byte:
/// cache keys and every source's SHA-256 go through here).
pub fn hex(bytes: &[u8]) -> String {
    let mut text = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut text);
    String::from_utf8(text).expect("hex digits")
}

/// Lowercase hex digits of `bytes` into `text` (twice as long), without
/// allocating.
pub fn hex_into(bytes: &[u8], text: &mut [u8]) {
    assert_eq!(text.len(), 2 * bytes.len(), "two digits a byte");
    for (pair, &b) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
}

/// The bytes that lowercase hex digits `text` spell, into `bytes` (half as
/// long); `None` for anything else (upper case, other characters, another
/// length): names that [`hex_into`] could not have made.
pub fn unhex_into(text: &[u8], bytes: &mut [u8]) -> Option<()> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if text.len() != 2 * bytes.len() {
        return None;
    }
    for (b, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *b = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(())
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Size and SHA-256 of a file, as the manifest lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSums {
    pub size: u64,
    pub sha256: Sha256Sum,
}

/// A SHA-256 as its 32 bytes, written and read as 64 lowercase hex digits
/// (kept as bytes: a build holds one per output file until the manifest is
/// written, and as text they cost three times as much).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sha256Sum(pub [u8; 32]);

impl std::fmt::Display for Sha256Sum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = [0u8; 64];
        hex_into(&self.0, &mut text);
        f.write_str(std::str::from_utf8(&text).expect("hex digits"))
    }
}

impl std::fmt::Debug for Sha256Sum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl std::str::FromStr for Sha256Sum {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a SHA-256 (64 hex digits)");
        if text.len() != 64 || !text.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (b, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *b = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Sha256Sum(bytes))
    }
}

impl serde::Serialize for Sha256Sum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Sum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// SHA-256 computed while the bytes stream past (no second read).
#[derive(Default, Clone)]
pub struct Summer {
    sha: Sha256,
    size: u64,
}

impl Summer {
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.size += bytes.len() as u64;
    }

    pub fn finish(self) -> FileSums {
        FileSums {
            size: self.size,
            sha256: Sha256Sum(self.sha.finalize().into()),
        }
    }
}

fn read_chunks(path: &Path, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut file = crate::files::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => f(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Size and SHA-256 of a file or object.
/// The size and SHA-256 of `bytes` held whole.
pub fn sums_of(bytes: &[u8]) -> FileSums {
    let mut s = Summer::default();
    s.update(bytes);
    s.finish()
}

pub fn file_sums(path: &Path) -> std::io::Result<FileSums> {
    let mut s = Summer::default();
    read_chunks(path, |c| s.update(c))?;
    Ok(s.finish())
}

/// The S3 ETag an upload in `part_size` parts gives: the body's MD5 for one
/// part, `md5(concat(part md5s))-N` for several.
#[derive(Clone)]
pub struct EtagSummer {
    part_size: u64,
    part: Md5,
    part_len: u64,
    digests: Vec<u8>,
    size: u64,
}

impl EtagSummer {
    pub fn new(part_size: u64) -> Self {
        EtagSummer {
            part_size: part_size.max(1),
            part: Md5::new(),
            part_len: 0,
            digests: Vec::new(),
            size: 0,
        }
    }

    pub fn update(&mut self, mut chunk: &[u8]) {
        self.size += chunk.len() as u64;
        while !chunk.is_empty() {
            let take = ((self.part_size - self.part_len) as usize).min(chunk.len());
            self.part.update(&chunk[..take]);
            self.part_len += take as u64;
            chunk = &chunk[take..];
            if self.part_len == self.part_size {
                let d = std::mem::take(&mut self.part).finalize();
                self.digests.extend_from_slice(&d);
                self.part_len = 0;
            }
        }
    }

    pub fn finish(mut self) -> String {
        if self.size <= self.part_size {
            // single-part upload: plain MD5 of the body
            return if self.part_len > 0 || self.size == 0 {
                hex(&self.part.finalize())
            } else {
                hex(&self.digests[..16])
            };
        }
        if self.part_len > 0 {
            let d = self.part.finalize();
            self.digests.extend_from_slice(&d);
        }
        let parts = self.digests.len() / 16;
        format!("{}-{parts}", hex(&Md5::digest(&self.digests)))
    }
}

/// The S3 ETag of a file uploaded in `part_size` parts.
pub fn file_etag(path: &Path, part_size: u64) -> std::io::Result<String> {
    let mut s = EtagSummer::new(part_size);
    read_chunks(path, |c| s.update(c))?;
    Ok(s.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0, 1, 0x0f, 0x10, 0xab, 0xff]), "00010f10abff");
        let mut b = [0u8; 32];
        b[0] = 0xde;
        b[31] = 0x07;
        let t = Sha256Sum(b).to_string();
        assert_eq!(t.len(), 64);
        assert!(t.starts_with("de00") && t.ends_with("0007"), "{t}");
        assert_eq!(t.parse::<Sha256Sum>().unwrap(), Sha256Sum(b));
        // and back: only what hex_into makes is read
        let mut back = [0u8; 3];
        assert_eq!(unhex_into(b"00abff", &mut back), Some(()));
        assert_eq!(back, [0, 0xab, 0xff]);
        for bad in [&b"00ABff"[..], b"00abf", b"00abfff", b"00abfg", b"0xabff"] {
            assert_eq!(unhex_into(bad, &mut back), None, "{bad:?}");
        }
    }

    #[test]
    fn etags_single_and_multipart() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"hello").unwrap();
        let s = file_sums(&small).unwrap();
        let etag = |p: &Path| file_etag(p, ETAG_PART_SIZE).unwrap();
        assert_eq!(etag(&small), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(
            s.sha256.to_string(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        // and back, as a manifest is read
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(
            text,
            r#"{"size":5,"sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}"#
        );
        assert_eq!(serde_json::from_str::<FileSums>(&text).unwrap(), s);
        assert!(serde_json::from_str::<FileSums>(r#"{"size":5,"sha256":"2cf2"}"#).is_err());
        // exactly one part: still the plain MD5
        let exact = dir.path().join("exact");
        let data = vec![7u8; ETAG_PART_SIZE as usize];
        std::fs::write(&exact, &data).unwrap();
        assert_eq!(etag(&exact), hex(&Md5::digest(&data)));
        // 8 MiB + 3 bytes: two parts
        let big = dir.path().join("big");
        let mut data2 = data.clone();
        data2.extend_from_slice(b"abc");
        std::fs::write(&big, &data2).unwrap();
        let mut cat = Md5::digest(&data).to_vec();
        cat.extend_from_slice(&Md5::digest(b"abc"));
        assert_eq!(etag(&big), format!("{}-2", hex(&Md5::digest(&cat))));
        assert_eq!(s.size, 5);
    }
}
