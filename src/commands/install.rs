//! `duo-selfhost install`.

use crate::cli::InstallArgs;
use crate::error::{not_built, ExitStatus};
use crate::output::Printer;

pub fn run(_args: InstallArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    if _args.target == crate::cli::Target::Helm {
        return super::helm_target::install(&_args, _printer);
    }
    Err(not_built("install"))
}
