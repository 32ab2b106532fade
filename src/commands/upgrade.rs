//! `duo-selfhost upgrade`.

use crate::cli::UpgradeArgs;
use crate::error::{not_built, ExitStatus};
use crate::output::Printer;

pub fn run(_args: UpgradeArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    Err(not_built("upgrade"))
}
