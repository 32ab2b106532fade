//! Air-gapped bundles: one tar file that carries the gateway images (and vLLM's), model GGUFs
//! or vLLM's Hugging Face files, the AI Gateway Helm chart and the gateway's tag lists from a
//! connected machine to a host without the internet.
//!
//! `manifest` is the format and its checks, `writer` writes a bundle atomically, `reader`
//! finds and checks its entries, `loader` stages, verifies and then applies them. Fetching
//! what goes in (pulls, exports) and drawing progress belong to `commands/bundle/` and
//! `commands/progress.rs`.

pub mod loader;
pub mod manifest;
pub mod reader;
pub mod writer;

/// How bundle work reports progress; the command draws it (a bar on a terminal, else lines).
pub trait Progress {
    /// Work on `item` starts; `total` bytes when known.
    fn begin(&self, item: &str, total: Option<u64>);
    /// `bytes` more were written, read or hashed.
    fn advance(&self, bytes: u64);
    /// The current item is done.
    fn end(&self);
}

/// A [`Progress`] that shows nothing (tests, `--json`).
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _item: &str, _total: Option<u64>) {}
    fn advance(&self, _bytes: u64) {}
    fn end(&self) {}
}
