//! Progress bars on stderr (hidden when stderr is not a terminal).

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Owns the bars of one run.
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    visible: bool,
}

impl Progress {
    /// Bars on stderr when it is a terminal, otherwise nothing is drawn.
    pub fn new() -> Self {
        let visible = std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            visible,
        }
    }

    /// A bar counting `total` bytes.
    pub fn bytes(&self, label: &str, total: u64) -> ProgressBar {
        let style = ProgressStyle::with_template(
            "{prefix:>32} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        self.add(ProgressBar::new(total).with_style(style), label)
    }

    /// A bar counting operations, with a known total.
    pub fn count(&self, label: &str, total: u64) -> ProgressBar {
        let style =
            ProgressStyle::with_template("{prefix:>32} [{bar:30}] {pos}/{len} {per_sec} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        self.add(ProgressBar::new(total).with_style(style), label)
    }

    /// A spinner counting operations for a fixed duration.
    pub fn timed(&self, label: &str) -> ProgressBar {
        let style =
            ProgressStyle::with_template("{prefix:>32} {spinner} {pos} ops {per_sec} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let pb = self.add(ProgressBar::new_spinner().with_style(style), label);
        if self.visible {
            pb.enable_steady_tick(Duration::from_millis(200));
        }
        pb
    }

    /// A status line (setup steps).
    pub fn message(&self, label: &str, msg: &str) -> ProgressBar {
        let style = ProgressStyle::with_template("{prefix:>32} {spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let pb = self.add(ProgressBar::new_spinner().with_style(style), label);
        pb.set_message(msg.to_owned());
        if self.visible {
            pb.enable_steady_tick(Duration::from_millis(200));
        }
        pb
    }

    fn add(&self, pb: ProgressBar, label: &str) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let pb = self.multi.add(pb);
        pb.set_prefix(label.to_owned());
        pb
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
