//! How domain code tells the user what it is doing and asks before changing something,
//! without writing to the terminal itself: a command hands it a [`Report`] (its `Printer` is
//! one), a test or a caller that wants silence hands it [`Silent`].

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
}
