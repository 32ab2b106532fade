//! `duo-selfhost install`.

use crate::cli::InstallArgs;
use crate::error::{not_built, ExitStatus};
use crate::output::Printer;

pub fn run(_args: InstallArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    Err(not_built("install"))
}
