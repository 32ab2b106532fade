//! `duo-selfhost upgrade`.

use crate::cli::UpgradeArgs;
use crate::error::{not_built, ExitStatus};
use crate::output::Printer;

pub fn run(_args: UpgradeArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    if _args.target == Some(crate::cli::Target::Helm) {
        return super::helm_target::upgrade(&_args, _printer);
    }
    Err(not_built("upgrade"))
}
