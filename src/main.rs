//! The `duo-selfhost` binary: parse, set up logging, run, map the outcome to an exit code.

use clap::Parser;
use duo_selfhost::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let printer = duo_selfhost::output::Printer::from_global(&cli.global);
    duo_selfhost::logging::init(&cli.global);
    match duo_selfhost::run(cli, &printer) {
        Ok(status) => status.into(),
        Err(err) => {
            duo_selfhost::error::render(&err, &printer);
            duo_selfhost::error::exit_status_of(&err).into()
        }
    }
}
