//! All integration tests in one binary (uv's habit): they run the real
//! `imgprep` executable on fixture trees made in temporary folders.

mod build;
mod correctness;
mod detection;
mod docs;
mod env;
mod errors;
mod im2rec;
mod interop;
mod s3;
mod safety;
mod tfrecord;
mod verify;
mod video;
