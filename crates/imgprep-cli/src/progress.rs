//! Progress on a terminal (bar with rate and ETA), silence when piped.

use imgprep::report::Reporter;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

pub struct Progress {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
    bytes: bool,
    /// What the items are, for the rate (`img/s`, `files/s`).
    unit: &'static str,
    /// `-q`: warnings are not printed either.
    silent: bool,
}

impl Progress {
    /// A bar only when stderr is a terminal and the user did not ask for quiet.
    pub fn new(quiet: bool) -> Self {
        Progress {
            bar: Mutex::new(None),
            enabled: !quiet && std::io::stderr().is_terminal(),
            bytes: false,
            unit: "img",
            silent: false,
        }
    }

    /// Print no warnings (`-q`); errors still go to stderr.
    pub fn silent(mut self, silent: bool) -> Self {
        self.silent = silent;
        self
    }

    /// Name the counted items (default `img`).
    pub fn counting(mut self, unit: &'static str) -> Self {
        self.unit = unit;
        self
    }

    /// Count bytes instead of items.
    pub fn in_bytes(mut self) -> Self {
        self.bytes = true;
        self
    }
}

impl Reporter for Progress {
    fn begin(&self, label: &str, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = if self.bytes {
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
        } else {
            "{prefix} [{bar:30}] {pos}/{len} {rate} ETA {eta}"
        };
        let unit = self.unit;
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap()
                .with_key(
                    "rate",
                    move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} {unit}/s", s.per_sec());
                    },
                )
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        *self.bar.lock().unwrap() = Some(bar);
    }

    fn advance(&self, n: u64) {
        if let Some(b) = &*self.bar.lock().unwrap() {
            b.inc(n);
        }
    }

    fn warn(&self, message: &str) {
        if self.silent {
            return;
        }
        match &*self.bar.lock().unwrap() {
            Some(b) => b.suspend(|| eprintln!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }

    fn end(&self) {
        if let Some(b) = self.bar.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }
}
