/// Size of the packed `IRHeader` (`<IfQQ`).
pub const IR_HEADER_SIZE: usize = 24;

/// The label part of an image record.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// `flag = 0`, the label lives in the header.
    Scalar(f32),
    /// `flag = N`, header label `0.0`, N `f32` values before the image bytes.
    Packed(Vec<f32>),
}

impl Labels {
    pub fn as_slice(&self) -> &[f32] {
        match self {
            Labels::Scalar(v) => std::slice::from_ref(v),
            Labels::Packed(v) => v,
        }
    }
}

/// The header of an image record: what MXNet calls `IRHeader` plus packed labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub labels: Labels,
    pub id: u64,
    pub id2: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HeaderError {
    #[error("record of {0} bytes is shorter than the 24-byte IRHeader")]
    TooShort(usize),
    #[error("IRHeader says {flag} packed labels but the record has only {available} bytes after the header")]
    LabelsTruncated { flag: u32, available: usize },
}

impl ImageRecord {
    /// Appends the header (and packed labels) to `out`; the image bytes go after.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        let (flag, label) = match &self.labels {
            Labels::Scalar(v) => (0u32, *v),
            Labels::Packed(v) => (v.len() as u32, 0.0f32),
        };
        out.extend_from_slice(&flag.to_le_bytes());
        out.extend_from_slice(&label.to_le_bytes());
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.id2.to_le_bytes());
        if let Labels::Packed(v) = &self.labels {
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }

    /// Length of what `write_header` appends.
    pub fn header_len(&self) -> usize {
        IR_HEADER_SIZE
            + match &self.labels {
                Labels::Scalar(_) => 0,
                Labels::Packed(v) => 4 * v.len(),
            }
    }

    /// Splits a record payload into its header and the image bytes.
    pub fn parse(payload: &[u8]) -> Result<(ImageRecord, &[u8]), HeaderError> {
        if payload.len() < IR_HEADER_SIZE {
            return Err(HeaderError::TooShort(payload.len()));
        }
        let u32_at = |i: usize| u32::from_le_bytes(payload[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(payload[i..i + 8].try_into().unwrap());
        let flag = u32_at(0);
        let label = f32::from_bits(u32_at(4));
        let id = u64_at(8);
        let id2 = u64_at(16);
        let rest = &payload[IR_HEADER_SIZE..];
        if flag == 0 {
            return Ok((
                ImageRecord {
                    labels: Labels::Scalar(label),
                    id,
                    id2,
                },
                rest,
            ));
        }
        let need = flag as usize * 4;
        if rest.len() < need {
            return Err(HeaderError::LabelsTruncated {
                flag,
                available: rest.len(),
            });
        }
        let labels = rest[..need]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Ok((
            ImageRecord {
                labels: Labels::Packed(labels),
                id,
                id2,
            },
            &rest[need..],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_header_matches_mxnet_bytes() {
        // formats.md: flag 0, label 5.0, id 1055.
        let rec = ImageRecord {
            labels: Labels::Scalar(5.0),
            id: 1055,
            id2: 0,
        };
        let mut out = Vec::new();
        rec.write_header(&mut out);
        out.extend_from_slice(&[0xff, 0xd8, 0xff, 0xe0]);
        assert_eq!(
            &out[..24],
            &[
                0, 0, 0, 0, 0x00, 0x00, 0xa0, 0x40, 0x1f, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0
            ]
        );
        let (back, img) = ImageRecord::parse(&out).unwrap();
        assert_eq!(back, rec);
        assert_eq!(img, &[0xff, 0xd8, 0xff, 0xe0]);
    }

    #[test]
    fn packed_labels_roundtrip() {
        let rec = ImageRecord {
            labels: Labels::Packed(vec![2.0, 5.0, 1.0, 0.25, 0.5, 0.75, 1.0]),
            id: 7,
            id2: 0,
        };
        let mut out = Vec::new();
        rec.write_header(&mut out);
        assert_eq!(out.len(), rec.header_len());
        assert_eq!(u32::from_le_bytes(out[0..4].try_into().unwrap()), 7);
        assert_eq!(f32::from_le_bytes(out[4..8].try_into().unwrap()), 0.0);
        out.extend_from_slice(b"img");
        let (back, img) = ImageRecord::parse(&out).unwrap();
        assert_eq!(back, rec);
        assert_eq!(img, b"img");
    }

    #[test]
    fn short_payloads_are_errors() {
        assert_eq!(ImageRecord::parse(&[0; 10]), Err(HeaderError::TooShort(10)));
        let mut out = vec![3, 0, 0, 0];
        out.extend_from_slice(&[0; 20]);
        out.extend_from_slice(&[0; 8]);
        assert_eq!(
            ImageRecord::parse(&out),
            Err(HeaderError::LabelsTruncated {
                flag: 3,
                available: 8
            })
        );
    }
}
