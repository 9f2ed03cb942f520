//! Reading TFRecord outputs back: `inspect` and `verify` for `.tfrecord`,
//! `.tfrecord.gz` (GZIP) and `.tfrecord.zz` (ZLIB) files.

use crate::error::{Error, Result};
use crate::image::{probe, ColorMode, ImageSpec, Processor};
use std::io::{BufReader, Read};
use std::path::Path;
use tfrecord::{decode_example, Example, Feature, RecordReader};

pub fn is_tfrecord(path: &Path) -> bool {
    let s = path.to_string_lossy();
    s.ends_with(".tfrecord") || s.ends_with(".tfrecord.gz") || s.ends_with(".tfrecord.zz")
}

/// A reader of the TFRecord file `path` (GZIP or ZLIB by its extension).
pub fn open(path: &Path) -> Result<RecordReader<Box<dyn Read>>> {
    let f = BufReader::with_capacity(1 << 20, crate::files::open(path).map_err(Error::io(path))?);
    let s = path.to_string_lossy();
    let r: Box<dyn Read> = if s.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if s.ends_with(".zz") {
        Box::new(flate2::read::ZlibDecoder::new(f))
    } else {
        return Ok(RecordReader::new(Box::new(f)));
    };
    // inflated records: at most the decode memory budget each
    Ok(RecordReader::new(r).with_max_len(crate::image::budget::limit()))
}

fn int(ex: &Example, k: &str) -> Option<i64> {
    match ex.get(k) {
        Some(Feature::Int64(v)) => v.first().copied(),
        _ => None,
    }
}

fn bytes<'a>(ex: &'a Example, k: &str) -> Option<&'a [u8]> {
    match ex.get(k) {
        Some(Feature::Bytes(v)) => v.first().map(Vec::as_slice),
        _ => None,
    }
}

/// One line of `inspect` for a TFRecord.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TfRecordSummary {
    pub n: u64,
    pub offset: u64,
    pub bytes: usize,
    pub features: Vec<String>,
    pub label: Option<i64>,
    /// Object Detection API records: the number of boxes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boxes: Option<usize>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub channels: Option<i64>,
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn summarize(n: u64, offset: u64, data: &[u8]) -> TfRecordSummary {
    let mut s = TfRecordSummary {
        n,
        offset,
        bytes: data.len(),
        features: Vec::new(),
        label: None,
        boxes: None,
        width: None,
        height: None,
        channels: None,
        format: None,
        error: None,
    };
    match decode_example(data) {
        Ok(ex) => {
            s.features = ex.keys().cloned().collect();
            s.label = int(&ex, "image/class/label").or(int(&ex, "label"));
            if let Some(tfrecord::Feature::Int64(v)) = ex.get("image/object/class/label") {
                s.boxes = Some(v.len());
            }
            s.width = int(&ex, "image/width").or(int(&ex, "width"));
            s.height = int(&ex, "image/height").or(int(&ex, "height"));
            s.channels = int(&ex, "image/channels").or(int(&ex, "channel"));
            if let Some(img) = bytes(&ex, "image/encoded") {
                match probe(img, u64::MAX) {
                    Ok(i) => s.format = Some(i.format.to_string()),
                    Err(e) => s.error = Some(e.to_string()),
                }
            } else if bytes(&ex, "image_raw").is_some() {
                s.format = Some("raw".into());
            }
        }
        Err(e) => s.error = Some(e.to_string()),
    }
    s
}

/// Calls `f` per record; a framing error (CRC, truncation) stops the walk.
pub fn inspect_tfrecord(path: &Path, mut f: impl FnMut(TfRecordSummary) -> bool) -> Result<u64> {
    let mut r = open(path)?;
    let mut buf = Vec::new();
    let mut n = 0;
    while let Some(off) = r
        .read_record(&mut buf)
        .map_err(|e| Error::Problem(format!("{}: {e}", path.display())))?
    {
        let keep = f(summarize(n, off, &buf));
        n += 1;
        if !keep {
            break;
        }
    }
    Ok(n)
}

/// Checks CRCs, Example decoding and that every image decodes (or that raw
/// pixels have height x width x channels bytes). Returns (records, problems).
pub fn verify_tfrecord(path: &Path) -> Result<(u64, Vec<String>)> {
    let mut r = open(path)?;
    let mut buf = Vec::new();
    let mut problems = Vec::new();
    let mut n = 0u64;
    let mut proc = Processor::new().map_err(|e| Error::Usage(e.to_string()))?;
    let spec = ImageSpec {
        color: ColorMode::Unchanged,
        ..Default::default()
    };
    loop {
        match r.read_record(&mut buf) {
            Ok(None) => break,
            Ok(Some(off)) => {
                let at = format!("{} record {n} (byte {off})", path.display());
                match decode_example(&buf) {
                    Err(e) => problems.push(format!("{at}: {e}")),
                    Ok(ex) => {
                        if let Some(img) = bytes(&ex, "image/encoded") {
                            if let Err(e) = proc.decode(img, &spec) {
                                problems.push(format!("{at}: image does not decode: {e}"));
                            }
                        } else if let Some(raw) = bytes(&ex, "image_raw") {
                            let want = [int(&ex, "height"), int(&ex, "width"), int(&ex, "channel")]
                                .iter()
                                .map(|v| v.unwrap_or(-1))
                                .product::<i64>();
                            if want != raw.len() as i64 {
                                problems.push(format!("{at}: image_raw has {} bytes, height x width x channel = {want}", raw.len()));
                            }
                        }
                    }
                }
                n += 1;
            }
            Err(e) => {
                problems.push(format!("{}: {e}", path.display()));
                break;
            }
        }
    }
    Ok((n, problems))
}
