//! One module per subcommand. Each reads like the steps a person would take:
//! detect, plan, show the plan, apply, verify.

pub mod bundle;
pub mod completions;
pub mod doctor;
pub mod generate_assets;
pub mod gitlab_rb;
pub mod gitlab_version;
pub mod helm_target;
pub mod image_tag;
pub mod install;
pub mod models;
mod progress;
pub mod serve;
pub mod upgrade;

use crate::cli::{Cli, Command};
use crate::error::ExitStatus;
use crate::output::Printer;

pub fn dispatch(cli: Cli, printer: &Printer) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Install(args) => install::run(*args, printer),
        Command::Upgrade(args) => upgrade::run(args, printer),
        Command::Doctor(args) => doctor::run(args, printer),
        Command::Serve(args) => serve::run(args, printer),
        Command::Models(cmd) => models::run(cmd, printer),
        Command::GitlabRb(cmd) => gitlab_rb::run(cmd, printer),
        Command::ImageTag(args) => image_tag::run(args, printer),
        Command::Bundle(cmd) => bundle::run(cmd, printer),
        Command::Completions(args) => completions::run(args),
        Command::GenerateAssets(args) => generate_assets::run(args, printer),
    }
}

/// A tokio runtime for commands that do network or Docker work.
pub use crate::runtime::runtime;
