//! `duo-selfhost image-tag`.

use crate::cli::ImageTagArgs;
use crate::error::{not_built, ExitStatus};
use crate::output::Printer;

pub fn run(_args: ImageTagArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    Err(not_built("image-tag"))
}
