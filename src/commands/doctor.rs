//! `duo-selfhost doctor`.

use crate::cli::DoctorArgs;
use crate::error::{not_built, ExitStatus};
use crate::output::Printer;

pub fn run(_args: DoctorArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    Err(not_built("doctor"))
}
