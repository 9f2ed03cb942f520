//! How long-running jobs tell the outside world what they are doing. The
//! library never prints; the binary decides (progress bar on a terminal,
//! summary line otherwise, warnings on stderr).

pub trait Reporter: Sync {
    /// A stage starts; `total` is the number of steps when known.
    fn begin(&self, _label: &str, _total: Option<u64>) {}
    /// `n` more steps are done.
    fn advance(&self, _n: u64) {}
    /// One line about something skipped or suspicious.
    fn warn(&self, message: &str);
    /// The stage is over.
    fn end(&self) {}
}

/// Collects warnings (for tests and library users who want them as data).
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<String>>);

impl Reporter for Collect {
    fn warn(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_string());
    }
}
