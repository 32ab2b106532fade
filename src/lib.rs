//! duo-selfhost: takes a GitLab administrator from "GitLab is installed" to "GitLab Duo answers
//! from a model on our own hardware", and keeps that setup healthy.
//!
//! `cli` holds the clap model only; `commands` holds one module per subcommand; every other
//! module is a shared domain piece that commands use and that never reaches back into them.

pub mod bundle;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod docker;
pub mod doctor;
pub mod engine;
pub mod env_var;
pub mod error;
pub mod fault;
pub mod gateway_image;
pub mod gitlab_api;
pub mod gitlab_config;
pub mod gitlab_rb;
pub mod helm;
pub mod http_client;
pub mod image_tag;
pub mod image_transfer;
pub mod logging;
pub mod model_cache;
pub mod net;
pub mod output;
pub mod programs;
pub mod registration;
pub mod registry;
pub mod report;
pub mod runtime;
pub mod secret;
pub mod serve_config;
pub mod server;
pub mod signing_keys;
pub mod state;
pub mod suggest;
#[doc(hidden)]
pub mod test_support;
pub mod units;
pub mod vllm;

pub use error::ExitStatus;

/// Runs the parsed command line. Errors carry their own exit status (see [`error`]).
pub fn run(cli: cli::Cli, printer: &output::Printer) -> anyhow::Result<ExitStatus> {
    fault::check_armed()?;
    commands::dispatch(cli, printer)
}
