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

/// The boxes of a detection label (`[2, 5, class xmin ymin xmax ymax ...]`,
/// im2rec's packed detection layout with header width 2 and 5 values per
/// object), or `None` when the label is not one.
pub fn detection_boxes(labels: &[f32]) -> Option<Vec<(f32, [f32; 4])>> {
    let header = *labels.first()? as usize;
    let width = *labels.get(1)? as usize;
    if labels[0] != header as f32 || header < 2 || width < 5 || labels.len() < header + width {
        return None;
    }
    if !(labels.len() - header).is_multiple_of(width) {
        return None;
    }
    Some(
        labels[header..]
            .chunks(width)
            .map(|o| (o[0], [o[1], o[2], o[3], o[4]]))
            .collect(),
    )
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
        .map_err(|e| Error::Problem(format!("{}: {e}", rec.display())))?
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

/// What a command reading datasets was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// `inspect`: one `.rec` or `.tfrecord[.gz|.zz]` file.
    RecordFile,
    /// `verify`: a `.rec` or its PREFIX, a `.tfrecord`, or a build output folder.
    Dataset,
}

/// Checks, before reading, that a local `path` is the kind of file the
/// command reads, and says in plain words what it is when it is not (an
/// image list, an image, a folder that is not a build output, a missing
/// file). Object-store URIs are passed over (they are read as they are).
pub fn check_input(path: &Path, wanted: Wanted) -> Result<()> {
    if crate::files::is_remote(path) {
        return Ok(());
    }
    let shown = path.display();
    let takes = match wanted {
        Wanted::RecordFile => "inspect reads one .rec or .tfrecord[.gz|.zz] file",
        Wanted::Dataset => {
            "verify takes a .rec file (or its PREFIX), a .tfrecord[.gz|.zz] file, or a build's \
             output folder (with manifest.json)"
        }
    };
    if path.is_dir() {
        if wanted == Wanted::Dataset && path.join(crate::build::MANIFEST).is_file() {
            return Ok(());
        }
        // (a build that stopped half-way is a problem verify reports
        // before it comes here)
        let what = if wanted == Wanted::Dataset {
            format!("{shown} is a folder without manifest.json, so not an imgprep build output")
        } else {
            format!("{shown} is a folder")
        };
        return Err(Error::Usage(format!("{what}; {takes}")));
    }
    let s = path.to_string_lossy();
    let is_lst = s.ends_with(".lst");
    if !path.exists() {
        // verify PREFIX: PREFIX.rec is the file
        if wanted == Wanted::Dataset && !is_lst && Path::new(&format!("{s}.rec")).is_file() {
            return Ok(());
        }
        return Err(Error::Usage(format!("{shown} does not exist; {takes}")));
    }
    let mut head = [0u8; 16];
    let n = {
        use std::io::Read;
        // (a FIFO or device is refused here, never waited on)
        let mut f = crate::files::open_regular(path).map_err(Error::io(path))?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]).map_err(Error::io(path))? {
                0 => break,
                k => n += k,
            }
        }
        n
    };
    let head = &head[..n];
    if crate::tfcheck::is_tfrecord(path) {
        return Ok(());
    }
    if head.starts_with(&recordio::MAGIC.to_le_bytes()) {
        return Ok(());
    }
    let base = s.strip_suffix(".lst").unwrap_or(&s);
    let what = if head.is_empty() {
        format!("{shown} is empty")
    } else if s.ends_with(".idx") {
        let base = s.strip_suffix(".idx").unwrap_or(&s);
        format!(
            "{shown} is a RecordIO index (.idx, text: record id and byte offset), not a record file; \
             the records are in {base}.rec"
        )
    } else if is_lst || head.first().is_some_and(|b| b.is_ascii_digit()) && head.contains(&b'\t') {
        let cmd = if wanted == Wanted::Dataset {
            format!("imgprep verify {base}")
        } else {
            format!("imgprep inspect {base}.rec")
        };
        format!(
            "{shown} is an im2rec image list (.lst, text), not a record file; the records it \
             describes are in {base}.rec ({cmd})"
        )
    } else if let Some(f) = crate::image::sniff(head) {
        format!(
            "{shown} is a {} image, not a dataset file",
            f.name().to_uppercase()
        )
    } else if head.starts_with(&[0x1f, 0x8b]) {
        format!(
            "{shown} is gzip-compressed; a GZIP TFRecord file must be named .tfrecord.gz to be read as one"
        )
    } else if head.first().is_some_and(|&b| b == b'{' || b == b'[') {
        format!("{shown} looks like a JSON file, not a dataset file")
    } else {
        let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!(
            "{shown} is not a RecordIO file: it starts with bytes {} where a RecordIO file starts \
             with 0a 23 d7 ce (TFRecord files are recognised by their .tfrecord name)",
            hex.join(" ")
        )
    };
    Err(Error::Usage(format!("{what}; {takes}")))
}
