//! Writes a bundle: a plain tar whose entries are streamed in (their size need not be known
//! up front), each hashed as it is written, then `manifest.json` and its sha256 last.
//!
//! Everything goes to `FILE.partial`, which is fsynced and renamed to `FILE` only once the
//! manifest is in: an error removes the partial file, and a killed process leaves only a
//! `.partial` that no reader takes for a bundle.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::manifest::{self, Content, Item, Manifest};
use super::Progress;
use crate::error::Problem;

const BLOCK: u64 = 512;
/// The bytes of a tar header's name field.
const NAME_FIELD: usize = 100;

/// Bytes free for an unprivileged writer on the filesystem holding `dir`.
pub fn available_space(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .with_context(|| format!("{} is not a usable path", dir.display()))?;
    // SAFETY: statvfs only writes into the zeroed struct we own, and the path is NUL-terminated.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return Err(
            anyhow::Error::new(std::io::Error::last_os_error()).context(format!(
                "could not read the free space of {}",
                dir.display()
            )),
        );
    }
    Ok(stats.f_bavail as u64 * stats.f_frsize as u64)
}

/// Fails, saying how much is needed and where, when `dir` has less than `needed` bytes free.
pub fn check_space(dir: &Path, needed: u64, what: &str) -> anyhow::Result<()> {
    let free = available_space(dir)?;
    if free < needed {
        return Err(Problem::user(format!(
            "{what} needs about {} in {}, which has {} free",
            indicatif::HumanBytes(needed),
            dir.display(),
            indicatif::HumanBytes(free)
        ))
        .hint("free some space there, or choose a directory on a larger disk")
        .into());
    }
    Ok(())
}

/// The path a bundle is written to before it is complete.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// A bundle being written. Dropped before [`BundleWriter::finish`], it removes its partial file.
pub struct BundleWriter {
    path: PathBuf,
    partial: PathBuf,
    file: Option<BufWriter<File>>,
    items: Vec<Item>,
}

impl BundleWriter {
    /// Starts `FILE.partial` (replacing one an earlier run left behind).
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        if path.is_dir() {
            return Err(Problem::user(format!("{} is a directory", path.display()))
                .hint("give --output a file name, such as --output duo-17.6.bundle")
                .into());
        }
        let partial = partial_path(path);
        let file = File::create(&partial).map_err(|e| {
            Problem::user(format!("cannot write {}: {e}", partial.display()))
                .hint("choose a writable directory for --output")
        })?;
        Ok(BundleWriter {
            path: path.to_path_buf(),
            partial,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            items: Vec::new(),
        })
    }

    fn file(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("the file is open until finish")
    }

    /// Starts an entry at `path`; write its bytes to the returned writer, then `finish` it.
    pub fn begin_entry(&mut self, path: &str) -> anyhow::Result<EntryWriter<'_>> {
        if path.len() > NAME_FIELD {
            self.write_long_name(path)?;
        }
        let header_at = self.file().stream_position()?;
        // A placeholder: the size is known only at the end, when the header is written again.
        self.file().write_all(&[0u8; BLOCK as usize])?;
        Ok(EntryWriter {
            bundle: self,
            path: path.to_string(),
            header_at,
            size: 0,
            hasher: Sha256::new(),
        })
    }

    /// A path longer than the header's name field (a file deep in a Hugging Face repository)
    /// goes first in a GNU long-name entry, as GNU tar and the `tar` crate write and read it.
    fn write_long_name(&mut self, path: &str) -> anyhow::Result<()> {
        let mut name = path.as_bytes().to_vec();
        name.push(0);
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().expect("a GNU header").name[..13].copy_from_slice(b"././@LongLink");
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_size(name.len() as u64);
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_cksum();
        let padding = (BLOCK - name.len() as u64 % BLOCK) % BLOCK;
        let file = self.file();
        file.write_all(header.as_bytes())?;
        file.write_all(&name)?;
        file.write_all(&vec![0u8; padding as usize])?;
        Ok(())
    }

    /// Adds a file's bytes as an entry, reporting progress as they are copied; returns their
    /// sha256.
    pub fn add_file(
        &mut self,
        path: &str,
        source: &Path,
        content: Content,
        progress: &dyn Progress,
    ) -> anyhow::Result<String> {
        let mut input =
            File::open(source).with_context(|| format!("could not open {}", source.display()))?;
        let total = input.metadata()?.len();
        progress.begin(path, Some(total));
        let mut entry = self.begin_entry(path)?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = input
                .read(&mut buffer)
                .with_context(|| format!("could not read {}", source.display()))?;
            if n == 0 {
                break;
            }
            entry.write_all(&buffer[..n])?;
            progress.advance(n as u64);
        }
        progress.end();
        entry.finish(content)
    }

    /// Adds a small entry from memory.
    pub fn add_bytes(&mut self, path: &str, bytes: &[u8], content: Content) -> anyhow::Result<()> {
        let mut entry = self.begin_entry(path)?;
        entry.write_all(bytes)?;
        entry.finish(content)?;
        Ok(())
    }

    /// Writes the manifest (the items added so far, the GitLab versions, the install arguments) and its sha256, syncs the file
    /// to disk and renames it into place. Returns the manifest and the bundle's size.
    pub fn finish(
        mut self,
        gitlab_versions: Vec<String>,
        install_args: Vec<String>,
    ) -> anyhow::Result<(Manifest, u64)> {
        let manifest = Manifest {
            format_version: manifest::format_version_for(&self.items),
            duo_selfhost_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: now_rfc3339(),
            gitlab_versions,
            items: std::mem::take(&mut self.items),
            install_args,
        };
        let bytes = manifest.to_bytes()?;
        let sha = manifest::sha256_hex(&bytes);
        // Written by hand, not through add_bytes: these two are not items of the manifest.
        for (path, data) in [
            (manifest::MANIFEST_PATH, bytes.as_slice()),
            (manifest::MANIFEST_SHA_PATH, format!("{sha}\n").as_bytes()),
        ] {
            let mut entry = self.begin_entry(path)?;
            entry.write_all(data)?;
            entry.close()?;
        }
        let file = self.file();
        // The end of archive: two zero blocks.
        file.write_all(&[0u8; 2 * BLOCK as usize])?;
        file.flush()?;
        let size = file.stream_position()?;
        let file = self
            .file
            .take()
            .expect("open until finish")
            .into_inner()
            .map_err(|e| e.into_error())?;
        file.sync_all()
            .with_context(|| format!("could not sync {}", self.partial.display()))?;
        drop(file);
        std::fs::rename(&self.partial, &self.path).with_context(|| {
            format!(
                "could not rename {} to {}",
                self.partial.display(),
                self.path.display()
            )
        })?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename is durable only once the directory is synced too.
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok((manifest, size))
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// One entry being written: counts and hashes what passes through.
pub struct EntryWriter<'a> {
    bundle: &'a mut BundleWriter,
    path: String,
    header_at: u64,
    size: u64,
    hasher: Sha256,
}

impl Write for EntryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.bundle.file().write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.bundle.file().flush()
    }
}

impl<'a> EntryWriter<'a> {
    /// Ends the entry and records it in the manifest as `content`; returns its sha256.
    pub fn finish(self, content: Content) -> anyhow::Result<String> {
        let path = self.path.clone();
        let (bundle, size, sha256) = self.close()?;
        bundle.items.push(Item {
            path,
            size,
            sha256: sha256.clone(),
            content,
        });
        Ok(sha256)
    }

    /// Pads the entry to a whole block and writes its real header over the placeholder;
    /// returns the bundle, the entry's size and sha256.
    fn close(self) -> anyhow::Result<(&'a mut BundleWriter, u64, String)> {
        let EntryWriter {
            bundle,
            path,
            header_at,
            size,
            hasher,
        } = self;
        let padding = (BLOCK - size % BLOCK) % BLOCK;
        let file = bundle.file();
        file.write_all(&vec![0u8; padding as usize])?;
        let end = file.stream_position()?;
        // GNU headers: sizes past ustar's 8 GiB (a large GGUF) are stored in base-256.
        let mut header = tar::Header::new_gnu();
        if path.len() > NAME_FIELD {
            // The long-name entry before this one carries the whole path; the field keeps
            // its start, as GNU tar leaves it.
            let name = &mut header.as_gnu_mut().expect("a GNU header").name;
            name.copy_from_slice(&path.as_bytes()[..NAME_FIELD]);
        } else {
            header
                .set_path(&path)
                .with_context(|| format!("`{path}` cannot be a tar entry name"))?;
        }
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        file.seek(SeekFrom::Start(header_at))?;
        file.write_all(header.as_bytes())?;
        file.seek(SeekFrom::Start(end))?;
        Ok((bundle, size, hex::encode(hasher.finalize())))
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
