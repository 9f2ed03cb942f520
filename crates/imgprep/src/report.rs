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
    /// The caller wants the job to stop (e.g. Ctrl-C in a notebook): long
    /// jobs look at this between items and return [`crate::Error::Interrupted`].
    fn cancelled(&self) -> bool {
        false
    }
}

/// [`crate::Error::Interrupted`] when the reporter's caller asked to stop.
pub fn check_cancelled(r: &dyn Reporter) -> crate::Result<()> {
    if r.cancelled() {
        Err(crate::Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Appends one indented line per item, the first `shown` of them, then
/// "... and N more{tail}" for the rest: a summary that names a few and
/// counts the others.
pub fn name_first<T: std::fmt::Display>(
    text: &mut String,
    items: impl ExactSizeIterator<Item = T>,
    shown: usize,
    tail: &str,
) {
    let n = items.len();
    for item in items.take(shown) {
        text.push_str(&format!("\n  {}", cut(&item.to_string(), LINE_CHARS)));
    }
    if n > shown {
        text.push_str(&format!("\n  ... and {} more{tail}", n - shown));
    }
}

/// The most characters of one named thing in a message line.
pub const LINE_CHARS: usize = 400;

/// `text` as a message shows it: whole up to `max` characters, else its
/// start and its length (a name from the data can be megabytes long).
pub fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => text.into(),
        Some((end, _)) => format!("{}... ({} bytes)", &text[..end], text.len()).into(),
    }
}

#[cfg(test)]
#[test]
fn long_text_is_cut_at_a_character() {
    assert_eq!(cut("short", 10), "short");
    assert_eq!(cut("ééééé", 3), "ééé... (10 bytes)");
}

/// Collects warnings (for tests and library users who want them as data).
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<String>>);

impl Reporter for Collect {
    fn warn(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_string());
    }
}
