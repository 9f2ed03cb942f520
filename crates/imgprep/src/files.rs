//! Reading many small files with as few system calls as possible.

use std::io::Read;
use std::path::Path;

/// Reads a whole file whose size was just taken from its metadata: open,
/// one `read` of `size + 1` bytes and close, where `std::fs::read` also
/// stats the file and reads once more to see the end. A short read of
/// exactly `size` bytes from a regular file is its end; anything else
/// (the file changed size) falls back to reading until the end.
pub fn read_sized(path: &Path, size: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let want = usize::try_from(size).unwrap_or(usize::MAX - 1);
    let mut buf = vec![0u8; want + 1];
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if got == want {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got == buf.len() {
        // larger than it was: read the rest
        f.read_to_end(&mut buf)?;
        return Ok(buf);
    }
    buf.truncate(got);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::read_sized;

    #[test]
    fn reads_whole_files_whatever_the_hint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        std::fs::write(&p, &data).unwrap();
        for hint in [0, 1, 9_999, 10_000, 10_001, 50_000] {
            assert_eq!(read_sized(&p, hint).unwrap(), data, "hint {hint}");
        }
        assert!(read_sized(&dir.path().join("missing"), 3).is_err());
    }
}
