//! imgprep: turn raw images into training-ready datasets.
//!
//! The library is laid out after the pipeline it implements: `image` (decode,
//! transform, encode one image), `execute` (ordered parallel work with bounded
//! memory), `im2rec` (the im2rec.py-compatible list and pack jobs), `inspect`
//! and `verify` (read outputs back and check them).

pub mod image;
pub mod pyrandom;
