//! Reading outputs back record by record: a `.rec` (MXNet RecordIO with its
//! image header) or a TFRecord file (`tf.train.Example`), for library users
//! and the Python module's `read_records`.

use crate::error::{Error, Result};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

pub use tfrecord::Feature;

/// One record of an output file.
#[derive(Debug, Clone)]
pub enum Record {
    /// A RecordIO image record: its id, labels (one, or the packed vector
    /// of a multi-label or detection record) and the image file's bytes.
    Image {
        offset: u64,
        id: u64,
        labels: Vec<f32>,
        /// The labels were packed (`flag > 0`): a vector even with one value.
        packed: bool,
        image: Vec<u8>,
    },
    /// A TFRecord `tf.train.Example`, every feature as stored.
    Example {
        offset: u64,
        features: tfrecord::Example,
    },
}

enum Inner {
    Rec(recordio::RecordReader<BufReader<std::fs::File>>),
    Tf(tfrecord::RecordReader<Box<dyn Read>>),
}

/// The records of one file, in order. A framing or decoding error ends the
/// walk with an error naming the file and the record.
pub struct Records {
    path: PathBuf,
    inner: Inner,
    n: u64,
    buf: Vec<u8>,
    done: bool,
}

impl Records {
    /// `.rec` files and TFRecord files (`.tfrecord`, `.tfrecord.gz`, `.tfrecord.zz`).
    pub fn open(path: &Path) -> Result<Records> {
        crate::inspect::check_input(path, crate::inspect::Wanted::RecordFile)?;
        let inner = if crate::tfcheck::is_tfrecord(path) {
            Inner::Tf(crate::tfcheck::open(path)?)
        } else {
            let f = std::fs::File::open(path).map_err(Error::io(path))?;
            Inner::Rec(recordio::RecordReader::new(BufReader::with_capacity(
                1 << 20,
                f,
            )))
        };
        Ok(Records {
            path: path.to_path_buf(),
            inner,
            n: 0,
            buf: Vec::new(),
            done: false,
        })
    }

    fn bad(&self, what: impl std::fmt::Display) -> Error {
        Error::Problem(format!(
            "{}: record {}: {what}",
            self.path.display(),
            self.n
        ))
    }

    fn read(&mut self) -> Result<Option<Record>> {
        let record = match &mut self.inner {
            Inner::Rec(r) => {
                let Some(offset) = r
                    .read_record(&mut self.buf)
                    .map_err(|e| Error::Problem(format!("{}: {e}", self.path.display())))?
                else {
                    return Ok(None);
                };
                let (h, image) = recordio::ImageRecord::parse(&self.buf).map_err(|e| {
                    Error::Problem(format!("{}: record {}: {e}", self.path.display(), self.n))
                })?;
                Record::Image {
                    offset,
                    id: h.id,
                    packed: matches!(h.labels, recordio::Labels::Packed(_)),
                    labels: h.labels.as_slice().to_vec(),
                    image: image.to_vec(),
                }
            }
            Inner::Tf(r) => {
                let Some(offset) = r
                    .read_record(&mut self.buf)
                    .map_err(|e| Error::Problem(format!("{}: {e}", self.path.display())))?
                else {
                    return Ok(None);
                };
                match tfrecord::decode_example(&self.buf) {
                    Ok(features) => Record::Example { offset, features },
                    Err(e) => return Err(self.bad(e)),
                }
            }
        };
        self.n += 1;
        Ok(Some(record))
    }
}

impl Iterator for Records {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.done {
            return None;
        }
        let r = self.read().transpose();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_the_writers_wrote() {
        let dir = tempfile::tempdir().unwrap();
        // two RecordIO image records, one scalar and one packed
        let rec = dir.path().join("a.rec");
        let mut w = recordio::RecordWriter::new(Vec::new());
        for (id, labels, img) in [
            (7u64, recordio::Labels::Scalar(2.0), &b"jpeg-1"[..]),
            (
                9,
                recordio::Labels::Packed(vec![1.0, 0.0, 1.0]),
                &b"jpeg-22"[..],
            ),
        ] {
            let mut payload = Vec::new();
            recordio::ImageRecord { labels, id, id2: 0 }.write_header(&mut payload);
            payload.extend_from_slice(img);
            w.write_record(&payload).unwrap();
        }
        std::fs::write(&rec, w.into_inner()).unwrap();
        let got: Vec<Record> = Records::open(&rec).unwrap().map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        match &got[1] {
            Record::Image {
                id,
                labels,
                packed,
                image,
                ..
            } => {
                assert_eq!(
                    (*id, labels.as_slice(), *packed),
                    (9, &[1.0, 0.0, 1.0][..], true)
                );
                assert_eq!(image, b"jpeg-22");
            }
            other => panic!("{other:?}"),
        }
        // a TFRecord with one Example
        let tf = dir.path().join("b.tfrecord");
        let mut ex = tfrecord::Example::new();
        ex.insert(
            "image/class/label".into(),
            tfrecord::Feature::Int64(vec![3]),
        );
        let mut data = Vec::new();
        tfrecord::encode_example(&ex, &mut data);
        let mut w = tfrecord::RecordWriter::new(Vec::new());
        w.write_record(&data).unwrap();
        std::fs::write(&tf, w.into_inner()).unwrap();
        let got: Vec<Record> = Records::open(&tf).unwrap().map(Result::unwrap).collect();
        assert!(matches!(&got[..], [Record::Example { features, .. }] if features == &ex));
        // a cut file is an error naming it, then the walk ends
        let bytes = std::fs::read(&rec).unwrap();
        std::fs::write(&rec, &bytes[..bytes.len() - 3]).unwrap();
        let got: Vec<Result<Record>> = Records::open(&rec).unwrap().collect();
        assert_eq!(got.len(), 2);
        assert!(got[1].as_ref().unwrap_err().to_string().contains("a.rec"));
    }
}
