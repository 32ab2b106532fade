//! `duo-selfhost completions <shell>`: prints the completion script on stdout.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::ExitStatus;

pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitStatus> {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "duo-selfhost",
        &mut std::io::stdout(),
    );
    Ok(ExitStatus::Success)
}
