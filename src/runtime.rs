//! The tokio runtime commands and doctor run their network and Docker work on. A domain module
//! that needs one takes it from here, never from `commands`, so dependencies point one way.

/// A multi-threaded tokio runtime with I/O and timers.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::Error::new(e).context("could not start the async runtime"))
}
