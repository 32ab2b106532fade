//! Output policy, decided once from the global flags and passed to every command.
//!
//! Results go to stdout, everything else (progress, warnings, errors) to stderr. With `--json`
//! stdout carries exactly one JSON document. Commands never look at the flags themselves.

use std::io::{IsTerminal, Write};

use console::Style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Problem;

pub use crate::report::Mark;

#[derive(Debug, Clone)]
pub struct Printer {
    /// -1 quiet, 0 normal, 1.. verbose.
    pub verbosity: i8,
    pub json: bool,
    pub color: bool,
    pub progress: bool,
    /// `--yes`: never prompt, take the defaults.
    pub assume_yes: bool,
    /// Prompts are possible: stdin and stderr are terminals and `--yes` was not given.
    pub interactive: bool,
}

/// The global output flags as plain values (main.rs maps the command line onto them), so
/// output depends on nothing above it.
#[derive(Debug, Clone, Default)]
pub struct OutputFlags {
    /// `Some` for `--color always|never`, `None` for auto (a terminal, and NO_COLOR unset).
    pub color: Option<bool>,
    pub quiet: bool,
    pub verbose: u8,
    pub json: bool,
    pub yes: bool,
    pub no_progress: bool,
}

impl Printer {
    /// Prints an error on stderr as `error:` / `caused by:` / `hint:` lines.
    pub fn error(&self, err: &anyhow::Error) {
        for (label, text) in crate::error::error_lines(err) {
            self.labelled_stderr(label, &text);
        }
    }

    pub fn new(flags: &OutputFlags) -> Self {
        let stderr_tty = std::io::stderr().is_terminal();
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = flags.color.unwrap_or(stderr_tty && !no_color_env);
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color);
        let verbosity = if flags.quiet {
            -1
        } else {
            flags.verbose.min(10) as i8
        };
        Printer {
            verbosity,
            json: flags.json,
            color,
            progress: stderr_tty && !flags.no_progress && !flags.json && !flags.quiet,
            assume_yes: flags.yes,
            interactive: !flags.yes && std::io::stdin().is_terminal() && stderr_tty,
        }
    }

    /// A printer for tests and library callers: plain, quiet about progress, never prompting.
    pub fn plain() -> Self {
        Printer {
            verbosity: 0,
            json: false,
            color: false,
            progress: false,
            assume_yes: true,
            interactive: false,
        }
    }

    /// A result line on stdout (suppressed under `--json`, where the document is the result).
    pub fn result(&self, line: impl AsRef<str>) {
        if !self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", line.as_ref());
        }
    }

    /// The one JSON document of a `--json` run.
    pub fn json_document(&self, value: &serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
        );
    }

    /// A status line on stderr, hidden with `-q`.
    pub fn info(&self, line: impl AsRef<str>) {
        if self.verbosity >= 0 {
            eprintln!("{}", line.as_ref());
        }
    }

    /// Detail shown with `-v`.
    pub fn detail(&self, line: impl AsRef<str>) {
        if self.verbosity >= 1 {
            eprintln!("{}", Style::new().dim().apply_to(line.as_ref()));
        }
    }

    /// A warning on stderr; shown even with `-q` because it may change what the user does next.
    pub fn warn(&self, line: impl AsRef<str>) {
        self.labelled_stderr("warning", line.as_ref());
    }

    /// `label: text` on stderr, the label coloured by its meaning.
    pub fn labelled_stderr(&self, label: &str, text: &str) {
        let style = match label {
            "error" => Style::new().red().bold(),
            "warning" => Style::new().yellow().bold(),
            "hint" => Style::new().cyan().bold(),
            _ => Style::new().bold(),
        };
        eprintln!("{}: {}", style.apply_to(label), text);
    }

    /// A glyph with its colour, for a line about one check or step.
    pub fn mark(&self, mark: Mark) -> String {
        mark.style().apply_to(mark.glyph()).to_string()
    }

    /// A progress bar on stderr; hidden when progress is off.
    pub fn progress_bar(&self, len: u64, template: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(len), self.draw_target());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }

    /// A spinner on stderr; hidden when progress is off.
    pub fn spinner(&self, message: impl Into<String>) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(None, self.draw_target());
        bar.set_message(message.into());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }

    fn draw_target(&self) -> ProgressDrawTarget {
        if self.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }

    /// Asks a yes/no question. With `--yes` the answer is yes; without a terminal it is an
    /// error that names `--yes`, because silently going ahead (or not) would surprise.
    pub fn confirm(&self, question: &str) -> anyhow::Result<bool> {
        if self.assume_yes {
            return Ok(true);
        }
        if !self.interactive {
            return Err(Problem::user(format!(
                "{question} needs an answer, and there is no terminal to ask on"
            ))
            .hint("re-run with --yes to accept, or with --dry-run to only see the change")
            .into());
        }
        let answer = dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact_opt()?;
        // Ctrl-C or Esc at the prompt is a "no": nothing is changed.
        Ok(answer.unwrap_or(false))
    }
}

impl crate::report::Report for Printer {
    fn info(&self, line: &str) {
        Printer::info(self, line)
    }
    fn marked(&self, mark: Mark, line: &str) {
        Printer::info(self, format!("{} {line}", self.mark(mark)))
    }
    fn progress_bar(&self, len: u64, template: &str) -> ProgressBar {
        Printer::progress_bar(self, len, template)
    }
    fn spinner(&self, message: &str) -> ProgressBar {
        Printer::spinner(self, message)
    }
    fn progress_group(&self) -> indicatif::MultiProgress {
        indicatif::MultiProgress::with_draw_target(self.draw_target())
    }
    fn detail(&self, line: &str) {
        Printer::detail(self, line)
    }
    fn warn(&self, line: &str) {
        Printer::warn(self, line)
    }
    fn show(&self, text: &str) {
        Printer::result(self, text)
    }
    fn confirm(&self, question: &str) -> anyhow::Result<bool> {
        Printer::confirm(self, question)
    }
}

/// Renders rows as a table with tabled's default style, for `models list` and `doctor`.
pub fn table<T: tabled::Tabled>(rows: impl IntoIterator<Item = T>) -> String {
    use tabled::settings::Style as TableStyle;
    tabled::Table::new(rows)
        .with(TableStyle::sharp())
        .to_string()
}
