//! Opens a bundle and checks it: finds every entry by walking the tar headers (seeking over
//! the data, so a wrong format version is refused before gigabytes are read), checks the
//! manifest against its sha256, then reads each item through a hasher into whatever the caller
//! wants (nothing for `verify`, a staging file for `load`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{self, bad_item, Content, Item, Manifest};
use super::Progress;
use crate::error::Problem;

/// Largest manifest accepted: a real one is a few kilobytes.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// An opened bundle whose manifest checked out; its items are not read yet.
#[derive(Debug)]
pub struct Bundle {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// Entry name to (offset of its data, size).
    entries: HashMap<String, (u64, u64)>,
}

fn truncated(bundle: &str, detail: &str) -> anyhow::Error {
    Problem::user(format!(
        "{bundle} is truncated or damaged: {detail}"
    ))
    .hint("copy the bundle again (compare `sha256sum` on both machines), or make it anew with `duo-selfhost bundle create`")
    .into()
}

impl Bundle {
    /// The bundle's name as messages show it.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Opens `path`, walks its entries and checks the manifest.
    pub fn open(path: &Path) -> anyhow::Result<Bundle> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| {
            Problem::user(format!("cannot open the bundle {name}: {e}"))
                .hint("give the path of a file made by `duo-selfhost bundle create`")
        })?;
        let length = file.metadata()?.len();
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let mut manifest_bytes = None;
        let mut manifest_sha = None;
        let walk = archive
            .entries_with_seek()
            .map_err(|e| truncated(&name, &e.to_string()))?;
        for entry in walk {
            let mut entry = entry.map_err(|e| truncated(&name, &format!("a tar header: {e}")))?;
            let entry_path = entry
                .path()
                .map_err(|e| truncated(&name, &e.to_string()))?
                .to_string_lossy()
                .into_owned();
            let (offset, size) = (entry.raw_file_position(), entry.size());
            if offset + size > length {
                return Err(truncated(
                    &name,
                    &format!(
                        "it ends inside {entry_path} ({} of its {size} bytes are there)",
                        length.saturating_sub(offset)
                    ),
                ));
            }
            if entry_path == manifest::MANIFEST_PATH || entry_path == manifest::MANIFEST_SHA_PATH {
                if size > MAX_MANIFEST_BYTES {
                    return Err(truncated(&name, &format!("{entry_path} is {size} bytes")));
                }
                let mut bytes = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| truncated(&name, &format!("reading {entry_path}: {e}")))?;
                if entry_path == manifest::MANIFEST_PATH {
                    manifest_bytes = Some(bytes);
                } else {
                    manifest_sha = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
            entries.insert(entry_path, (offset, size));
        }
        let (Some(bytes), Some(sha)) = (manifest_bytes, manifest_sha) else {
            return Err(truncated(
                &name,
                "it has no manifest.json and manifest.json.sha256 (a bundle ends with them; this one was cut short, or is no bundle)",
            ));
        };
        let manifest = manifest::parse(&bytes, &sha, &name)?;
        for item in &manifest.items {
            match entries.get(&item.path) {
                None => {
                    return Err(bad_item(
                        &name,
                        &item.path,
                        "the manifest lists it, the file does not hold it",
                    ))
                }
                Some((_, size)) if *size != item.size => {
                    return Err(bad_item(
                        &name,
                        &item.path,
                        &format!("{size} bytes, the manifest says {}", item.size),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(Bundle {
            path: path.to_path_buf(),
            manifest,
            entries,
        })
    }

    /// Streams an item's bytes into `sink` while hashing them; fails naming the item when its
    /// size or sha256 is not the manifest's. `sink` may have been written to even then: the
    /// caller stages into a place it throws away on error.
    pub fn read_item(
        &self,
        item: &Item,
        sink: &mut dyn Write,
        progress: &dyn Progress,
    ) -> anyhow::Result<()> {
        let name = self.name();
        let (offset, size) = self.entries[&item.path];
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut input = file.take(size);
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut done = 0u64;
        // The sink's first failure: reading goes on, so that damage is reported as the
        // checksum mismatch it is rather than as whatever the decompressor made of it.
        let mut sink_error = None;
        progress.begin(&item.path, Some(size));
        loop {
            let n = input
                .read(&mut buffer)
                .map_err(|e| truncated(&name, &format!("reading {}: {e}", item.path)))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            if sink_error.is_none() {
                sink_error = sink.write_all(&buffer[..n]).err();
            }
            done += n as u64;
            progress.advance(n as u64);
        }
        progress.end();
        if done != size {
            return Err(truncated(
                &name,
                &format!("it ends inside {} ({done} of {size} bytes)", item.path),
            ));
        }
        let got = hex::encode(hasher.finalize());
        if got != item.sha256 {
            return Err(bad_item(
                &name,
                &item.path,
                &format!("sha256 {got}, the manifest says {}", item.sha256),
            ));
        }
        match sink_error {
            None => Ok(()),
            // Intact bytes that do not decompress: written so by a broken tool, still damage.
            Some(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Other | std::io::ErrorKind::InvalidData
                ) =>
            {
                Err(bad_item(
                    &name,
                    &item.path,
                    &format!("it does not decompress: {e}"),
                ))
            }
            Some(e) => Err(anyhow::Error::new(e).context(format!("staging {}", item.path))),
        }
    }

    /// Checks every item's sha256 (and a GGUF's against the catalog's pin), loading nothing.
    pub fn verify(&self, progress: &dyn Progress) -> anyhow::Result<()> {
        for item in &self.manifest.items {
            self.check_catalog_pin(item)?;
            self.read_item(item, &mut std::io::sink(), progress)?;
        }
        Ok(())
    }

    /// A GGUF whose catalog entry pins a sha256 must be those bytes, whatever the manifest says.
    pub fn check_catalog_pin(&self, item: &Item) -> anyhow::Result<()> {
        let Content::Gguf { model } = &item.content else {
            return Ok(());
        };
        let pinned = crate::catalog::find(model)
            .and_then(|m| m.gguf.as_ref())
            .and_then(|g| g.sha256);
        match pinned {
            Some(pin) if pin != item.sha256 => Err(bad_item(
                &self.name(),
                &item.path,
                &format!(
                    "the manifest's sha256 {} is not the catalog's {pin} for {model}",
                    item.sha256
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::writer::{partial_path, BundleWriter};
    use crate::bundle::Silent;

    fn write_bundle(dir: &Path) -> PathBuf {
        let path = dir.join("t.bundle");
        let mut writer = BundleWriter::create(&path).unwrap();
        // Sizes off the block boundary, and one past it, exercise the padding.
        writer
            .add_bytes(
                "tags/gateway-17.6.txt",
                b"self-hosted-v17.6.0-ee\n",
                Content::TagList {
                    gitlab_minor: "17.6".into(),
                },
            )
            .unwrap();
        writer
            .add_bytes(
                "tags/gateway-17.7.txt",
                &vec![b'x'; 1500],
                Content::TagList {
                    gitlab_minor: "17.7".into(),
                },
            )
            .unwrap();
        assert!(partial_path(&path).exists() && !path.exists());
        writer
            .finish(vec!["17.6.0".into()], vec!["install".into()])
            .unwrap();
        assert!(path.exists() && !partial_path(&path).exists());
        path
    }

    #[test]
    fn a_written_bundle_opens_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_bundle(dir.path());
        let bundle = Bundle::open(&path).unwrap();
        assert_eq!(bundle.manifest.items.len(), 2);
        assert_eq!(bundle.manifest.items[1].size, 1500);
        bundle.verify(&Silent).unwrap();
        let mut bytes = Vec::new();
        bundle
            .read_item(&bundle.manifest.items[0], &mut bytes, &Silent)
            .unwrap();
        assert_eq!(bytes, b"self-hosted-v17.6.0-ee\n");
    }

    #[test]
    fn a_path_longer_than_a_tar_name_field_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.bundle");
        let long = format!(
            "hf/mistralai--Mixtral-8x22B-Instruct-v0.1/{}/model-00001-of-00059.safetensors",
            "a".repeat(80)
        );
        assert!(long.len() > 100);
        let mut writer = BundleWriter::create(&path).unwrap();
        writer
            .add_bytes(
                &long,
                b"weights",
                Content::HelmChart {
                    chart: "c".into(),
                    version: "1".into(),
                },
            )
            .unwrap();
        let (manifest, _) = writer.finish(vec![], vec![]).unwrap();
        assert_eq!(manifest.format_version, 2);
        let bundle = Bundle::open(&path).unwrap();
        bundle.verify(&Silent).unwrap();
        let mut bytes = Vec::new();
        bundle
            .read_item(&bundle.manifest.items[0], &mut bytes, &Silent)
            .unwrap();
        assert_eq!(bytes, b"weights");
        // GNU tar reads it too, under its whole name.
        let listing = std::process::Command::new("tar")
            .arg("tf")
            .arg(&path)
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&listing.stdout).contains(&long));
    }

    #[test]
    fn a_flipped_byte_names_the_item() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_bundle(dir.path());
        let offset = Bundle::open(&path).unwrap().entries["tags/gateway-17.7.txt"].0 + 700;
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offset as usize] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let bundle = Bundle::open(&path).unwrap();
        let err = bundle.verify(&Silent).unwrap_err().to_string();
        assert!(
            err.contains("tags/gateway-17.7.txt is damaged: sha256"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_bundle_is_named_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_bundle(dir.path());
        let length = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(length - 2000).unwrap();
        let err = Bundle::open(&path).unwrap_err().to_string();
        assert!(err.contains("is truncated or damaged"), "{err}");
    }

    #[test]
    fn a_writer_dropped_before_finish_removes_its_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bundle");
        let mut writer = BundleWriter::create(&path).unwrap();
        writer
            .add_bytes(
                "tags/gateway-17.6.txt",
                b"x",
                Content::TagList {
                    gitlab_minor: "17.6".into(),
                },
            )
            .unwrap();
        drop(writer);
        assert!(!path.exists() && !partial_path(&path).exists());
    }
}
