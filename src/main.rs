//! The `duo-selfhost` binary: parse, set up logging, run, map the outcome to an exit code.

use clap::Parser;
use duo_selfhost::cli::{Cli, ColorChoice, GlobalArgs};
use duo_selfhost::output::{OutputFlags, Printer};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(&output_flags(&cli.global));
    duo_selfhost::logging::init(cli.global.quiet, cli.global.verbose, printer.color);
    match duo_selfhost::run(cli, &printer) {
        Ok(status) => status.into(),
        Err(err) => {
            printer.error(&err);
            duo_selfhost::error::exit_status_of(&err).into()
        }
    }
}

fn output_flags(global: &GlobalArgs) -> OutputFlags {
    OutputFlags {
        color: match global.color {
            ColorChoice::Auto => None,
            ColorChoice::Always => Some(true),
            ColorChoice::Never => Some(false),
        },
        quiet: global.quiet,
        verbose: global.verbose,
        json: global.json,
        yes: global.yes,
        no_progress: global.no_progress,
    }
}
