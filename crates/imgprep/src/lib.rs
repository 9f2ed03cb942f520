//! imgprep: turn raw images into training-ready datasets.
//!
//! The library is laid out after the pipeline it implements: `image` (decode,
//! transform, encode one image), `execute` (ordered parallel work with bounded
//! memory), `im2rec` (the im2rec.py-compatible list and pack jobs), `inspect`
//! and `verify` (read outputs back and check them).

pub mod error;
pub mod execute;
pub mod files;
pub mod im2rec;
pub mod image;
pub mod output;
pub mod pyrandom;
pub mod report;

pub use error::{Error, Result};
pub mod annotations;
pub mod build;
pub mod checksum;
pub mod convert;
pub mod inspect;
pub mod recipe;
pub mod records;
pub mod rng;
pub mod storage;
pub mod synth;
pub mod tfcheck;
pub mod verify;
pub mod video;
