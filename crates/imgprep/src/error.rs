use std::io;
use std::path::PathBuf;

/// Errors that stop a job. Every one names the file (and line) it is about.
/// Problems with single images are not errors: they are counted skips.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: io::Error },
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Usage(String),
    /// Bad input data met under `on_error = "fail"` (a missing or broken
    /// image, an unknown label): a problem found, not a usage error.
    #[error("{0}")]
    Problem(String),
    /// The caller asked the job to stop ([`crate::report::Reporter::cancelled`]).
    /// Files written so far are complete or not there at all.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |err| Error::Io { path, err }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
