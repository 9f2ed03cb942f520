use std::io::{self, Read, Write};

/// TensorFlow's CRC mask.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

pub struct RecordWriter<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> RecordWriter<W> {
    pub fn new(inner: W) -> Self {
        RecordWriter { inner, pos: 0 }
    }

    /// Writes one record; returns its offset in the (uncompressed) stream.
    pub fn write_record(&mut self, data: &[u8]) -> io::Result<u64> {
        let start = self.pos;
        let len = (data.len() as u64).to_le_bytes();
        self.inner.write_all(&len)?;
        self.inner.write_all(&masked_crc32c(&len).to_le_bytes())?;
        self.inner.write_all(data)?;
        self.inner.write_all(&masked_crc32c(data).to_le_bytes())?;
        self.pos += 16 + data.len() as u64;
        Ok(start)
    }

    /// Writes bytes that are already whole framed records (e.g. copied
    /// from another TFRecord file: a record's framing does not depend on
    /// where it starts) and returns the offset they start at. The caller
    /// vouches for the framing; a run may be written in several calls.
    pub fn write_framed(&mut self, framed: &[u8]) -> io::Result<u64> {
        let start = self.pos;
        self.inner.write_all(framed)?;
        self.pos += framed.len() as u64;
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

    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    #[error(
        "record {record} at byte {offset}: length CRC mismatch (corrupt or not a TFRecord file)"
    )]
    LengthCrc { record: u64, offset: u64 },
    #[error("record {record} at byte {offset}: data CRC mismatch (corrupt record)")]
    DataCrc { record: u64, offset: u64 },
    #[error("record {record} at byte {offset}: file ends inside the record")]
    Truncated { record: u64, offset: u64 },
    #[error("record {record} at byte {offset}: length {len} is over the {max} bytes a record may have here")]
    TooLong {
        record: u64,
        offset: u64,
        len: u64,
        max: u64,
    },
    #[error("I/O error at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
}

pub struct RecordReader<R> {
    inner: R,
    pos: u64,
    n: u64,
    max_len: u64,
}

impl<R: Read> RecordReader<R> {
    pub fn new(inner: R) -> Self {
        RecordReader {
            inner,
            pos: 0,
            n: 0,
            max_len: 1 << 31,
        }
    }

    /// Refuse records longer than `max` bytes (default 2 GiB). A record's
    /// buffer grows with the bytes really read, so a plain file bounds it by
    /// its size; a compressed stream does not (2 MB of gzip inflate to 2 GB).
    pub fn with_max_len(mut self, max: u64) -> Self {
        self.max_len = max;
        self
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, FramingError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(FramingError::Io {
                        offset: self.pos,
                        source,
                    })
                }
            }
        }
        Ok(got)
    }

    /// Reads the next record into `buf`; `None` at a clean end of file.
    pub fn read_record(&mut self, buf: &mut Vec<u8>) -> Result<Option<u64>, FramingError> {
        let (record, offset) = (self.n, self.pos);
        let mut head = [0u8; 12];
        match self.fill(&mut head)? {
            0 => return Ok(None),
            12 => {}
            _ => return Err(FramingError::Truncated { record, offset }),
        }
        let len_bytes: [u8; 8] = head[..8].try_into().unwrap();
        if masked_crc32c(&len_bytes) != u32::from_le_bytes(head[8..12].try_into().unwrap()) {
            return Err(FramingError::LengthCrc { record, offset });
        }
        let len = u64::from_le_bytes(len_bytes);
        if len > self.max_len {
            return Err(FramingError::TooLong {
                record,
                offset,
                len,
                max: self.max_len,
            });
        }
        // grow with the data that is really there, not with the length a
        // header claims: a 28-byte file saying 2 GiB costs a few bytes
        buf.clear();
        while (buf.len() as u64) < len {
            let at = buf.len();
            let step = (len - at as u64).min(1 << 20) as usize;
            buf.resize(at + step, 0);
            let got = self.fill(&mut buf[at..])?;
            if got < step {
                return Err(FramingError::Truncated { record, offset });
            }
        }
        let mut crc = [0u8; 4];
        if self.fill(&mut crc)? < 4 {
            return Err(FramingError::Truncated { record, offset });
        }
        if masked_crc32c(buf) != u32::from_le_bytes(crc) {
            return Err(FramingError::DataCrc { record, offset });
        }
        self.pos += 16 + len;
        self.n += 1;
        Ok(Some(offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_claimed_by_a_header_is_not_allocated_up_front() {
        // a valid length CRC for 2 GiB, then 4 bytes of data
        let len = (1u64 << 31).to_le_bytes();
        let mut file = len.to_vec();
        file.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        file.extend_from_slice(b"abcd");
        let mut r = RecordReader::new(&file[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            r.read_record(&mut buf),
            Err(FramingError::Truncated { .. })
        ));
        assert!(buf.capacity() <= 2 << 20, "{}", buf.capacity());
    }

    #[test]
    fn known_crc_values() {
        // CRC-32C check value of "123456789" is 0xe3069283.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
    }

    #[test]
    fn roundtrip_and_corruption() {
        let mut w = RecordWriter::new(Vec::new());
        w.write_record(b"hello").unwrap();
        w.write_record(b"").unwrap();
        w.write_record(&[7u8; 1000]).unwrap();
        let bytes = w.into_inner();
        assert_eq!(bytes.len(), 16 * 3 + 1005);
        let mut r = RecordReader::new(&bytes[..]);
        let mut buf = Vec::new();
        assert_eq!(r.read_record(&mut buf).unwrap(), Some(0));
        assert_eq!(buf, b"hello");
        assert_eq!(r.read_record(&mut buf).unwrap(), Some(21));
        assert!(buf.is_empty());
        r.read_record(&mut buf).unwrap();
        assert_eq!(r.read_record(&mut buf).unwrap(), None);

        let mut bad = bytes.clone();
        bad[14] ^= 1; // inside "hello"
        let err = RecordReader::new(&bad[..])
            .read_record(&mut buf)
            .unwrap_err();
        assert!(
            matches!(err, FramingError::DataCrc { record: 0, .. }),
            "{err}"
        );
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        let err = RecordReader::new(&bad[..])
            .read_record(&mut buf)
            .unwrap_err();
        assert!(matches!(err, FramingError::LengthCrc { .. }), "{err}");
        let err = RecordReader::new(&bytes[..30]).read_record(&mut Vec::new());
        assert!(err.is_ok());
        let mut r = RecordReader::new(&bytes[..30]);
        r.read_record(&mut buf).unwrap();
        assert!(matches!(
            r.read_record(&mut buf).unwrap_err(),
            FramingError::Truncated { record: 1, .. }
        ));
    }
}
