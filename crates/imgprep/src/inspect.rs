//! Read a `.rec` back: one summary per record.

use crate::error::{Error, Result};
use crate::image::{probe, ImageInfo};
use recordio::{ImageRecord, RecordReader};
use std::io::BufReader;
use std::path::Path;

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordSummary {
    /// Position of the record in the file (0-based).
    pub n: u64,
    pub offset: u64,
    pub id: u64,
    pub labels: Vec<f32>,
    /// Bytes of the encoded image (payload minus header and labels).
    pub bytes: usize,
    #[serde(flatten)]
    pub image: Option<ImageInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Calls `f` for every record of `rec`. Framing errors stop the walk and are
/// returned with the file name and byte offset.
pub fn inspect_rec(rec: &Path, mut f: impl FnMut(RecordSummary) -> bool) -> Result<u64> {
    let file = crate::files::open(rec).map_err(Error::io(rec))?;
    let mut reader = RecordReader::new(BufReader::with_capacity(1 << 20, file));
    let mut buf = Vec::new();
    let mut n = 0u64;
    while let Some(offset) = reader
        .read_record(&mut buf)
        .map_err(|e| Error::Usage(format!("{}: {e}", rec.display())))?
    {
        let s = match ImageRecord::parse(&buf) {
            Ok((h, img)) => {
                let (image, error) = match probe(img, u64::MAX) {
                    Ok(i) => (Some(i), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                RecordSummary {
                    n,
                    offset,
                    id: h.id,
                    labels: h.labels.as_slice().to_vec(),
                    bytes: img.len(),
                    image,
                    error,
                }
            }
            Err(e) => RecordSummary {
                n,
                offset,
                id: 0,
                labels: Vec::new(),
                bytes: buf.len(),
                image: None,
                error: Some(e.to_string()),
            },
        };
        n += 1;
        if !f(s) {
            break;
        }
    }
    Ok(n)
}
