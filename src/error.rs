//! Exit statuses and the one error renderer: `error:`, then `caused by:` lines, then `hint:`.
//!
//! Domain modules return their own errors; a [`Problem`] anywhere in an error chain decides the
//! exit status (1 for the user's setup or input, 2 for the tool) and carries the hint.
//! An error without a `Problem` is the tool's own failure (exit 2).

/// The process exit statuses duo-selfhost uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked (warnings allowed).
    Success,
    /// The user's setup or input is wrong: a failed check, a refused edit, a bad flag value.
    Failure,
    /// The tool itself could not run.
    Error,
    /// `upgrade --check`: an upgrade is available.
    UpgradeAvailable,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Error => 2,
            ExitStatus::UpgradeAvailable => 100,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

/// Who is at fault, which decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The user's setup or input (exit 1).
    User,
    /// The tool could not run (exit 2).
    Tool,
}

/// An error with a known cause and, ideally, the exact command or setting that fixes it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Problem {
    pub blame: Blame,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    /// The user's setup or input is wrong (exit 1).
    pub fn user(message: impl Into<String>) -> Self {
        Problem {
            blame: Blame::User,
            message: message.into(),
            hint: None,
        }
    }

    /// The tool could not run (exit 2).
    pub fn tool(message: impl Into<String>) -> Self {
        Problem {
            blame: Blame::Tool,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds the fix: prefer the exact command or setting to a description.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The `Problem` nearest the top of the chain, if any.
fn problem_of(err: &anyhow::Error) -> Option<&Problem> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Problem>())
}

/// Exit status for an error: the blame of its `Problem`, else the tool's failure.
pub fn exit_status_of(err: &anyhow::Error) -> ExitStatus {
    match problem_of(err).map(|p| p.blame) {
        Some(Blame::User) => ExitStatus::Failure,
        Some(Blame::Tool) | None => ExitStatus::Error,
    }
}

/// The lines the renderer prints for an error, without colour.
pub fn error_lines(err: &anyhow::Error) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    let mut chain = err.chain();
    if let Some(top) = chain.next() {
        lines.push(("error", top.to_string()));
    }
    for cause in chain {
        let text = cause.to_string();
        // anyhow repeats a wrapped error's text when context equals source; print it once.
        if lines.last().map(|(_, prev)| prev == &text).unwrap_or(false) {
            continue;
        }
        lines.push(("caused by", text));
    }
    if let Some(hint) = problem_of(err).and_then(|p| p.hint.clone()) {
        lines.push(("hint", hint));
    }
    lines
}
