//! `duo-selfhost gitlab-rb show|set|unset`.

use crate::cli::GitlabRbCommand;
use crate::error::{not_built, ExitStatus};
use crate::output::Printer;

pub fn run(command: GitlabRbCommand, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    match command {
        GitlabRbCommand::Show(_) => Err(not_built("gitlab-rb show")),
        GitlabRbCommand::Set(_) => Err(not_built("gitlab-rb set")),
        GitlabRbCommand::Unset(_) => Err(not_built("gitlab-rb unset")),
    }
}
