//! The tokio runtime commands and doctor run their network and Docker work on: one per
//! process, built on first use, so a command that makes several calls does not build a
//! runtime for each. A domain module that needs it takes it from here, never from `commands`,
//! so dependencies point one way.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// The process's multi-threaded tokio runtime with I/O and timers.
pub fn runtime() -> anyhow::Result<&'static Runtime> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = own_runtime()?;
    // Two threads racing here both build one; the loser's is dropped outside any runtime.
    Ok(RUNTIME.get_or_init(|| built))
}

/// A runtime of the caller's own, for work it must be able to abandon: doctor's checks run on
/// one that it shuts down in the background, so a check stuck in a blocking call cannot hold
/// up the report.
pub fn own_runtime() -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::Error::new(e).context("could not start the async runtime"))
}
