//! MXNet RecordIO: the `.rec` framing, the `IRHeader` of image records, and the
//! `.idx` / `.lst` text files that go with them.
//!
//! This crate has no image code. The facts it implements (checked against the
//! files MXNet 1.9.1 writes) are:
//!
//! * a record is `u32 magic`, `u32 lrec`, payload, zero padding to 4 bytes;
//!   `lrec = cflag << 29 | length`;
//! * a payload that holds the magic word at a 4-byte-aligned offset is split
//!   there into parts with `cflag` 1 (first), 2 (middle), 3 (last), and the
//!   magic bytes are dropped; readers join the parts and put the magic back;
//! * an image record payload starts with `IRHeader` (`<IfQQ`, 24 bytes),
//!   followed by `flag` little-endian `f32` labels when `flag > 0`.

mod framing;
mod header;
mod idx;
mod lst;

pub use framing::{FramingError, RecordReader, RecordWriter, MAGIC, MAX_RECORD_LEN};
pub use header::{HeaderError, ImageRecord, Labels, IR_HEADER_SIZE};
pub use idx::{parse_idx, write_idx_line, IdxEntry, IdxError};
pub use lst::{format_lst_line, parse_lst_line, LstEntry, LstError};
