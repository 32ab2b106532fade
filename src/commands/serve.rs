//! `duo-selfhost serve`.

use crate::cli::ServeArgs;
use crate::error::{not_built, ExitStatus};
use crate::output::Printer;

pub fn run(_args: ServeArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    Err(not_built("serve"))
}
