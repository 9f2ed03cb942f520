use std::io::{self, Read, Write};

/// The RecordIO magic word (`0a 23 d7 ce` on disk).
pub const MAGIC: u32 = 0xCED7_230A;
const MAGIC_BYTES: [u8; 4] = MAGIC.to_le_bytes();
/// Largest length one part may have (`length < 2^29`).
pub const MAX_RECORD_LEN: usize = (1 << 29) - 1;

fn lrec(cflag: u32, len: usize) -> [u8; 4] {
    ((cflag << 29) | len as u32).to_le_bytes()
}

fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Writes records with MXNet's framing and keeps track of the byte offset,
/// which is what `.idx` files store.
#[derive(Debug)]
pub struct RecordWriter<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> RecordWriter<W> {
    pub fn new(inner: W) -> Self {
        RecordWriter { inner, pos: 0 }
    }

    /// Byte offset at which the next record will start.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Writes one record and returns the offset it starts at.
    ///
    /// Splits the payload at every 4-byte-aligned occurrence of the magic
    /// word, exactly like dmlc-core's `RecordIOWriter::WriteRecord`.
    pub fn write_record(&mut self, payload: &[u8]) -> io::Result<u64> {
        if payload.len() > MAX_RECORD_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "record of {} bytes is over RecordIO's limit of 2^29 bytes",
                    payload.len()
                ),
            ));
        }
        let start = self.pos;
        // MXNet splits a record at every 4-aligned copy of the magic number
        // (a SIMD search for it, then the aligned hits: this scan runs on the
        // one thread that writes, over every byte of the dataset)
        let aligned = payload.len() / 4 * 4;
        let mut part_start = 0usize;
        for i in memchr::memmem::find_iter(&payload[..aligned], &MAGIC_BYTES) {
            // (the magic's bytes cannot overlap a copy of themselves, so
            // the search's non-overlapping hits are all the hits)
            if i % 4 != 0 {
                continue;
            }
            let cflag = if part_start == 0 { 1 } else { 2 };
            self.put(&MAGIC_BYTES)?;
            self.put(&lrec(cflag, i - part_start))?;
            self.put(&payload[part_start..i])?;
            part_start = i + 4;
        }
        let cflag = if part_start != 0 { 3 } else { 0 };
        self.put(&MAGIC_BYTES)?;
        self.put(&lrec(cflag, payload.len() - part_start))?;
        self.put(&payload[part_start..])?;
        self.put(&[0u8; 3][..pad4(payload.len())])?;
        Ok(start)
    }

    /// Writes bytes that are already whole framed records (e.g. copied from
    /// another `.rec`: a record's framing does not depend on where it starts,
    /// since records start at 4-byte-aligned offsets) and returns the offset
    /// they start at. The caller vouches for the framing; a run may be
    /// written in several calls.
    pub fn write_framed(&mut self, framed: &[u8]) -> io::Result<u64> {
        let start = self.pos;
        self.put(framed)?;
        Ok(start)
    }

    /// Like [`RecordWriter::write_framed`] for `len` bytes that `put` writes
    /// to the inner writer itself (e.g. read from a file straight into the
    /// inner writer's buffer, without a copy in between). `put` must write
    /// exactly `len` bytes of whole framed records.
    pub fn write_framed_with(
        &mut self,
        len: u64,
        put: impl FnOnce(&mut W) -> io::Result<()>,
    ) -> io::Result<u64> {
        let start = self.pos;
        put(&mut self.inner)?;
        self.pos += len;
        Ok(start)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// What can be wrong with a `.rec` stream.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    #[error("at byte {offset}: bad magic word 0x{found:08x} (expected 0x{MAGIC:08x})")]
    BadMagic { offset: u64, found: u32 },
    #[error("at byte {offset}: file ends inside a record ({what})")]
    Truncated { offset: u64, what: &'static str },
    #[error("at byte {offset}: part with cflag {cflag} where {expected}")]
    BadContinuation {
        offset: u64,
        cflag: u32,
        expected: &'static str,
    },
    #[error("at byte {offset}: padding is not zero")]
    BadPadding { offset: u64 },
    #[error("I/O error at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
}

/// Reads records back, joining split parts. Stricter than dmlc-core's reader:
/// it also checks that continuation flags come in a valid order.
#[derive(Debug)]
pub struct RecordReader<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> RecordReader<R> {
    pub fn new(inner: R) -> Self {
        RecordReader { inner, pos: 0 }
    }

    /// Starts at a known offset (for readers that seeked first).
    pub fn with_offset(inner: R, pos: u64) -> Self {
        RecordReader { inner, pos }
    }

    /// Offset of the next record.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Reads the next record into `buf` (cleared first). Returns its start
    /// offset, or `None` at a clean end of stream.
    pub fn read_record(&mut self, buf: &mut Vec<u8>) -> Result<Option<u64>, FramingError> {
        buf.clear();
        let start = self.pos;
        let mut first = true;
        loop {
            let mut head = [0u8; 8];
            let n = self.read_up_to(&mut head)?;
            if n == 0 && first {
                return Ok(None);
            }
            if n < 8 {
                return Err(FramingError::Truncated {
                    offset: self.pos,
                    what: "record header",
                });
            }
            let magic = u32::from_le_bytes(head[0..4].try_into().unwrap());
            if magic != MAGIC {
                return Err(FramingError::BadMagic {
                    offset: self.pos,
                    found: magic,
                });
            }
            let lrec = u32::from_le_bytes(head[4..8].try_into().unwrap());
            let cflag = lrec >> 29;
            let len = (lrec & ((1 << 29) - 1)) as usize;
            let part_offset = self.pos;
            let ok = matches!((first, cflag), (true, 0 | 1) | (false, 2 | 3));
            if !ok {
                return Err(FramingError::BadContinuation {
                    offset: part_offset,
                    cflag,
                    expected: if first {
                        "a record must start with cflag 0 or 1"
                    } else {
                        "a split record must continue with cflag 2 or 3"
                    },
                });
            }
            self.pos += 8;
            // grow with the data that is really there, not with the length
            // a header claims (a 40-byte file may claim 512 MiB)
            let end = buf.len() + len;
            while buf.len() < end {
                let at = buf.len();
                let step = (end - at).min(1 << 20);
                buf.resize(at + step, 0);
                let n = self.read_up_to(&mut buf[at..])?;
                if n < step {
                    return Err(FramingError::Truncated {
                        offset: part_offset,
                        what: "record payload",
                    });
                }
            }
            self.pos += len as u64;
            let pad = pad4(len);
            if pad > 0 {
                let mut zeros = [0u8; 3];
                let n = self.read_up_to(&mut zeros[..pad])?;
                if n < pad {
                    return Err(FramingError::Truncated {
                        offset: part_offset,
                        what: "record padding",
                    });
                }
                if zeros[..pad].iter().any(|&b| b != 0) {
                    return Err(FramingError::BadPadding { offset: self.pos });
                }
                self.pos += pad as u64;
            }
            if cflag == 0 || cflag == 3 {
                return Ok(Some(start));
            }
            buf.extend_from_slice(&MAGIC_BYTES);
            first = false;
        }
    }

    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, FramingError> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(FramingError::Io {
                        offset: self.pos,
                        source,
                    })
                }
            }
        }
        Ok(n)
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_claimed_by_a_header_is_not_allocated_up_front() {
        // magic, a length of 2^29 - 1 with cflag 0, then 32 bytes
        let mut file = MAGIC.to_le_bytes().to_vec();
        file.extend_from_slice(&((1u32 << 29) - 1).to_le_bytes());
        file.extend_from_slice(&[7u8; 32]);
        let mut r = RecordReader::new(&file[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            r.read_record(&mut buf),
            Err(FramingError::Truncated { .. })
        ));
        assert!(buf.capacity() <= 2 << 20, "{}", buf.capacity());
    }

    fn write(payloads: &[&[u8]]) -> Vec<u8> {
        let mut w = RecordWriter::new(Vec::new());
        for p in payloads {
            w.write_record(p).unwrap();
        }
        w.into_inner()
    }

    fn read_all(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut r = RecordReader::new(bytes);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while r.read_record(&mut buf).unwrap().is_some() {
            out.push(buf.clone());
        }
        out
    }

    #[test]
    fn plain_record_is_padded() {
        let bytes = write(&[b"abcde"]);
        assert_eq!(
            bytes,
            [0x0a, 0x23, 0xd7, 0xce, 5, 0, 0, 0, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]
        );
        assert_eq!(read_all(&bytes), vec![b"abcde".to_vec()]);
    }

    #[test]
    fn magic_inside_payload_is_split_like_mxnet() {
        // The example checked against MXNet 1.9.1 (formats.md).
        let mut payload = b"AAAA".to_vec();
        payload.extend_from_slice(&MAGIC_BYTES);
        payload.extend_from_slice(b"BBBBBB");
        let bytes = write(&[&payload]);
        let expected: Vec<u8> = [
            &[0x0a, 0x23, 0xd7, 0xce, 0x04, 0x00, 0x00, 0x20][..],
            b"AAAA",
            &[0x0a, 0x23, 0xd7, 0xce, 0x06, 0x00, 0x00, 0x60],
            b"BBBBBB",
            &[0, 0],
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(read_all(&bytes), vec![payload]);
    }

    /// The framing written byte by byte as MXNet's writer does it: a check
    /// at every 4-aligned position.
    fn framed_naively(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut part_start, mut i) = (0, 0);
        while i + 4 <= payload.len() / 4 * 4 {
            if payload[i..i + 4] == MAGIC_BYTES {
                let cflag = if part_start == 0 { 1 } else { 2 };
                out.extend_from_slice(&MAGIC_BYTES);
                out.extend_from_slice(&lrec(cflag, i - part_start));
                out.extend_from_slice(&payload[part_start..i]);
                part_start = i + 4;
            }
            i += 4;
        }
        let cflag = if part_start != 0 { 3 } else { 0 };
        out.extend_from_slice(&MAGIC_BYTES);
        out.extend_from_slice(&lrec(cflag, payload.len() - part_start));
        out.extend_from_slice(&payload[part_start..]);
        out.extend_from_slice(&[0u8; 3][..pad4(payload.len())]);
        out
    }

    #[test]
    fn magic_search_splits_exactly_where_a_per_position_check_does() {
        // magic copies planted at every offset mod 4, back to back, across
        // the aligned end and in a payload's last, unaligned bytes
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for len in [0usize, 3, 4, 7, 8, 9, 31, 64, 65, 66, 67, 1000] {
            for _ in 0..20 {
                let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                for _ in 0..(next() % 6) {
                    if len >= 4 {
                        let at = next() as usize % (len - 3);
                        p[at..at + 4].copy_from_slice(&MAGIC_BYTES);
                    }
                }
                assert_eq!(write(&[&p]), framed_naively(&p), "{p:?}");
                assert_eq!(read_all(&write(&[&p])), vec![p]);
            }
        }
    }

    #[test]
    fn magic_at_start_middle_end_and_unaligned() {
        let m = MAGIC_BYTES;
        let payloads: Vec<Vec<u8>> = vec![
            m.to_vec(),
            [&m[..], &m[..], &m[..]].concat(),
            [b"xy".as_slice(), &m, b"zw", &m].concat(), // unaligned: not split
            [b"abcd".as_slice(), &m, b"efgh", &m, &m, b"i"].concat(),
            Vec::new(),
        ];
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        let bytes = write(&refs);
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(read_all(&bytes), payloads);
    }

    #[test]
    fn reader_reports_truncation_and_bad_magic() {
        let bytes = write(&[b"hello world!"]);
        let mut buf = Vec::new();
        let err = RecordReader::new(&bytes[..bytes.len() - 3])
            .read_record(&mut buf)
            .unwrap_err();
        assert!(matches!(err, FramingError::Truncated { .. }), "{err}");
        let mut bad = bytes.clone();
        bad[0] = 0;
        let err = RecordReader::new(&bad[..])
            .read_record(&mut buf)
            .unwrap_err();
        assert!(
            matches!(err, FramingError::BadMagic { offset: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn continuation_without_start_is_rejected() {
        let mut bytes = MAGIC_BYTES.to_vec();
        bytes.extend_from_slice(&lrec(3, 0));
        let err = RecordReader::new(&bytes[..])
            .read_record(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, FramingError::BadContinuation { .. }));
    }

    #[test]
    fn offsets_are_reported() {
        let mut w = RecordWriter::new(Vec::new());
        assert_eq!(w.write_record(b"a").unwrap(), 0);
        assert_eq!(w.write_record(b"bcdef").unwrap(), 12);
        assert_eq!(w.position(), 28);
        let bytes = w.into_inner();
        let mut r = RecordReader::new(&bytes[..]);
        let mut buf = Vec::new();
        assert_eq!(r.read_record(&mut buf).unwrap(), Some(0));
        assert_eq!(r.read_record(&mut buf).unwrap(), Some(12));
        assert_eq!(r.read_record(&mut buf).unwrap(), None);
    }
}
