//! The `.incomplete` file a download writes: locked to one writer, hashed as it grows so a
//! resumed download continues after what is there, and the chunked hashing of a whole file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::download::PullProgress;
use crate::error::Problem;

const HASH_BUFFER: usize = 1 << 20;

/// The `.incomplete` file, with the running hash of everything written to it so far.
pub(super) struct Partial {
    path: PathBuf,
    file: std::fs::File,
    hasher: Sha256,
    /// How many bytes it holds.
    pub position: u64,
}

impl Partial {
    /// Opens or creates the partial file; what it already holds is hashed so the download
    /// continues after it. A partial longer than the expected file cannot be resumed.
    pub(super) fn open(path: &Path, expected_bytes: Option<u64>) -> anyhow::Result<Partial> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("could not open {}", path.display()))?;
        if !try_lock_exclusive(&file) {
            return Err(Problem::user(format!(
                "another `duo-selfhost models pull` is writing {} right now",
                path.display()
            ))
            .hint("wait for it to finish; the model is then in the cache")
            .into());
        }
        let mut partial = Partial {
            path: path.to_path_buf(),
            file,
            hasher: Sha256::new(),
            position: 0,
        };
        let existing = partial.file.metadata()?.len();
        if expected_bytes.is_some_and(|want| existing > want) {
            partial.restart()?;
            return Ok(partial);
        }
        let mut reader = std::fs::File::open(path)?;
        let mut position = 0;
        hash_chunks(&mut reader, &mut partial.hasher, |n| position += n)?;
        partial.position = position;
        Ok(partial)
    }

    pub(super) fn write(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        self.file
            .write_all(chunk)
            .with_context(|| format!("could not write {}", self.path.display()))?;
        self.hasher.update(chunk);
        self.position += chunk.len() as u64;
        Ok(())
    }

    /// Drops what was received, for a server that ignores the Range request.
    pub(super) fn restart(&mut self) -> anyhow::Result<()> {
        self.file
            .set_len(0)
            .with_context(|| format!("could not truncate {}", self.path.display()))?;
        self.hasher = Sha256::new();
        self.position = 0;
        Ok(())
    }

    /// Flushes to disk and gives the size and sha256 of the whole file.
    pub(super) fn finish(self) -> anyhow::Result<(u64, String)> {
        self.file
            .sync_all()
            .with_context(|| format!("could not write {}", self.path.display()))?;
        Ok((self.position, hex::encode(self.hasher.finalize())))
    }
}

/// Two pulls of one file would interleave their bytes: the partial file is locked while written.
/// The lock goes with the descriptor, so it ends with the process whatever happens.
#[cfg(unix)]
fn try_lock_exclusive(file: &std::fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock_exclusive(_file: &std::fs::File) -> bool {
    true
}

/// A file's sha256, each chunk read told to `progress`.
pub(super) fn sha256_of(path: &Path, progress: &dyn PullProgress) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut hasher = Sha256::new();
    hash_chunks(&mut file, &mut hasher, |n| progress.advance(n))
        .with_context(|| format!("could not read {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Feeds everything `reader` holds to `hasher`, telling `each` how many bytes every chunk had.
fn hash_chunks(
    reader: &mut impl Read,
    hasher: &mut Sha256,
    mut each: impl FnMut(u64),
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; HASH_BUFFER];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buffer[..n]);
        each(n as u64);
    }
}

pub(super) fn remove_partial(path: &Path) {
    if let Err(err) = std::fs::remove_file(path) {
        tracing::warn!("could not remove {}: {err}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_has_one_writer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.incomplete");
        std::fs::write(&path, b"first bytes").unwrap();
        let mut first = Partial::open(&path, Some(100)).unwrap();
        assert_eq!(first.position, 11, "what is there is kept and hashed");
        let second = Partial::open(&path, Some(100))
            .err()
            .expect("the file is locked");
        assert!(second
            .to_string()
            .contains("another `duo-selfhost models pull`"));
        first.write(b" and more").unwrap();
        let (bytes, sha) = first.finish().unwrap();
        assert_eq!(bytes, 20);
        assert_eq!(sha, hex::encode(Sha256::digest(b"first bytes and more")));
        assert!(
            Partial::open(&path, Some(100)).is_ok(),
            "free once the writer is done"
        );
    }
}
