//! How domain code tells the user what it is doing and asks before changing something,
//! without writing to the terminal itself: a command hands it a [`Report`] (its `Printer` is
//! one), a test or a caller that wants silence hands it [`Silent`].

use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

/// How one check or step ended; the glyph carries the meaning, colour is extra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Ok,
    Warn,
    Fail,
    Skip,
    Error,
}

impl Mark {
    pub fn glyph(self) -> &'static str {
        match self {
            Mark::Ok => "✔",
            Mark::Warn => "!",
            Mark::Fail => "✘",
            Mark::Skip => "-",
            Mark::Error => "?",
        }
    }

    pub(crate) fn style(self) -> Style {
        match self {
            Mark::Ok => Style::new().green(),
            Mark::Warn => Style::new().yellow(),
            Mark::Fail | Mark::Error => Style::new().red(),
            Mark::Skip => Style::new().dim(),
        }
    }
}

/// What domain code may say and ask. Lines are plain text; the implementation decides where
/// they go (stdout, stderr, a log) and how they look.
pub trait Report {
    /// A step taken or about to be taken (stderr by default; hidden by `--quiet`).
    fn info(&self, line: &str);
    /// More detail, shown with `-v`.
    fn detail(&self, line: &str);
    /// Something the user should know that does not stop the command.
    fn warn(&self, line: &str);
    /// What the command produces, such as a diff (stdout).
    fn show(&self, text: &str);
    /// A yes/no question before a change; an error when nobody can answer.
    fn confirm(&self, question: &str) -> anyhow::Result<bool>;
    /// A step's outcome, shown with its mark (✔, !, ...).
    fn marked(&self, mark: Mark, line: &str);
    /// A bar of `len` units drawn with indicatif's `template`; hidden where bars are not drawn.
    fn progress_bar(&self, len: u64, template: &str) -> ProgressBar;
    /// A spinner with `message`; hidden where bars are not drawn.
    fn spinner(&self, message: &str) -> ProgressBar;
    /// A group that draws several bars together (one per image layer, say).
    fn progress_group(&self) -> MultiProgress;
}

/// Says nothing and answers yes: for tests and for callers that report on their own.
pub struct Silent;

impl Report for Silent {
    fn info(&self, _: &str) {}
    fn detail(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn show(&self, _: &str) {}
    fn confirm(&self, _: &str) -> anyhow::Result<bool> {
        Ok(true)
    }
    fn marked(&self, _: Mark, _: &str) {}
    fn progress_bar(&self, len: u64, _: &str) -> ProgressBar {
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
    }
    fn spinner(&self, _: &str) -> ProgressBar {
        ProgressBar::hidden()
    }
    fn progress_group(&self) -> MultiProgress {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    }
}
