//! Progress where a person waits: an indicatif bar on a terminal, a plain
//! line every few seconds otherwise (logs, serial consoles), nothing with
//! `--quiet`.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain (non-terminal) form prints.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub use writeboost_tools::fancy_terminal;

/// A progress display.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    last_plain: Instant,
    label: String,
    unit: &'static str,
    len: u64,
}

impl Progress {
    fn new(label: &str, unit: &'static str, len: Option<u64>, quiet: bool) -> Self {
        let term = fancy_terminal();
        let bar = if quiet || !term {
            None
        } else {
            let b = match len {
                Some(n) => {
                    let b = ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr());
                    b.set_style(
                        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {prefix} ({elapsed})")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    b
                }
                None => {
                    let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                    b.set_style(
                        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                }
            };
            b.set_message(label.to_string());
            b.set_prefix(unit);
            Some(b)
        };
        Progress { bar, plain: !quiet && !term, last_plain: Instant::now(), label: label.to_string(), unit, len: len.unwrap_or(0) }
    }

    /// A spinner for an operation of unknown length.
    pub fn spinner(label: &str, quiet: bool) -> Self {
        let p = Self::new(label, "", None, quiet);
        if p.plain {
            eprintln!("{} ...", label);
        }
        p
    }

    /// A bar counting down `len` units ("dirty lines") to zero.
    pub fn countdown(label: &str, unit: &'static str, len: u64, quiet: bool) -> Self {
        let p = Self::new(label, unit, Some(len), quiet);
        if p.plain && len > 0 {
            eprintln!("{}: {} {} left", label, len, unit);
        }
        p
    }

    /// Updates a countdown with the amount `left`; the total grows if
    /// more appeared.
    pub fn left(&mut self, left: u64) {
        if left > self.len {
            self.len = left;
            if let Some(b) = &self.bar {
                b.set_length(left);
            }
        }
        if let Some(b) = &self.bar {
            b.set_position(self.len - left);
        } else if self.plain && self.last_plain.elapsed() >= PLAIN_EVERY {
            eprintln!("{}: {} {} left", self.label, left, self.unit);
            self.last_plain = Instant::now();
        }
    }

    /// Prints a line without garbling the bar.
    pub fn println(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{}", msg)),
            None => eprintln!("{}", msg),
        }
    }

    /// Changes the label.
    pub fn set_label(&mut self, label: &str) {
        self.label = label.to_string();
        if let Some(b) = &self.bar {
            b.set_message(label.to_string());
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
