//! `duo-selfhost models list|pull|path`.

use crate::cli::ModelsCommand;
use crate::error::{not_built, ExitStatus};
use crate::output::Printer;

pub fn run(command: ModelsCommand, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    match command {
        ModelsCommand::List(_) => Err(not_built("models list")),
        ModelsCommand::Pull(_) => Err(not_built("models pull")),
        ModelsCommand::Path(_) => Err(not_built("models path")),
    }
}
