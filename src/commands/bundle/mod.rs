//! `duo-selfhost bundle create|verify|load`: an air-gapped install's two machines. On the
//! connected one, choose and pull the gateway images as `image-tag` and `install` would, take
//! the GGUFs from the cache (or download vLLM's Hugging Face weights into it), `helm pull` the
//! chart for `--target helm`, and write one bundle (`create`, with what it fetches in `fetch`);
//! on the air-gapped one, check it and load it, then name the `install` command to run (`load`).
//! The format and the checks live in `crate::bundle`; the bars in `super::progress`.

mod create;
mod fetch;
mod load;

use crate::cli::BundleCommand;
use crate::error::{ExitStatus, Problem};
use crate::output::Printer;

pub fn run(command: BundleCommand, printer: &Printer) -> anyhow::Result<ExitStatus> {
    match command {
        BundleCommand::Create(args) => create::create(args, printer),
        BundleCommand::Verify(args) => load::verify(args, printer),
        BundleCommand::Load(args) => load::load(args, printer),
    }
}

/// Runs `work` until it ends or Ctrl-C arrives; on Ctrl-C the work is dropped (a bundle
/// writer removes its partial file, a load its staging directory) and the error says so.
fn until_interrupted<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    what: &str,
) -> anyhow::Result<T> {
    crate::commands::runtime()?.block_on(async {
        tokio::select! {
            outcome = work => outcome,
            _ = tokio::signal::ctrl_c() => Err(Problem::user(format!(
                "interrupted: {what} was stopped and nothing half-written was kept"
            ))
            .hint("run the same command again")
            .into()),
        }
    })
}
