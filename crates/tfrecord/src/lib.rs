//! TFRecord files and `tf.train.Example` records.
//!
//! * a record is `u64 length` (LE), `u32 masked_crc32c(length bytes)`, data,
//!   `u32 masked_crc32c(data)`; `mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8`;
//! * an `Example` is `Features { map<string, Feature> }`, each `Feature` a
//!   `BytesList`, `FloatList` (packed) or `Int64List` (packed).
//!
//! Our writer is byte-deterministic: features are written in key order.
//! GZIP/ZLIB files are one compressed stream of the same framing; wrap the
//! reader/writer in a (de)compressor.

mod example;
mod framing;

pub use example::{decode_example, encode_example, Example, ExampleError, Feature};
pub use framing::{masked_crc32c, FramingError, RecordReader, RecordWriter};
