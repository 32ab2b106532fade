//! The bundle's `manifest.json`: what the bundle holds (every entry with its size and
//! sha256), for which GitLab versions, and how `install` should be run with it. Its own sha256
//! travels beside it in `manifest.json.sha256`. Parsing checks the format version first, so a
//! bundle from a newer duo-selfhost is refused by name rather than misread.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Problem;

/// The newest format this duo-selfhost writes and reads. Format 2 added the Helm chart and
/// Hugging Face files; a bundle without them is still written as format 1, so an older
/// duo-selfhost on the air-gapped host loads it.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this duo-selfhost reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// The manifest's entry name in the bundle.
pub const MANIFEST_PATH: &str = "manifest.json";
/// The entry holding the manifest's sha256 (hex), written after it.
pub const MANIFEST_SHA_PATH: &str = "manifest.json.sha256";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// The duo-selfhost that wrote the bundle.
    pub duo_selfhost_version: String,
    /// UTC, RFC 3339.
    pub created_at: String,
    /// The GitLab versions the bundle serves, in the order given.
    pub gitlab_versions: Vec<String>,
    /// Every entry but the manifest and its checksum, in the order they appear in the file.
    pub items: Vec<Item>,
    /// The arguments `install` should be run with after a load (after `duo-selfhost`).
    pub install_args: Vec<String>,
}

/// One entry of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Path inside the tar.
    pub path: String,
    /// Bytes stored in the tar.
    pub size: u64,
    /// sha256 of the stored bytes, hex.
    pub sha256: String,
    #[serde(flatten)]
    pub content: Content,
}

/// What an entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Content {
    /// Images as the Engine API exports them (`docker save` format), zstd-compressed; several
    /// images in one archive share their common layers.
    Images {
        images: Vec<BundledImage>,
        /// Bytes once decompressed: the space a load stages.
        uncompressed_size: u64,
    },
    /// A catalog model's GGUF, stored as is (quantised weights do not compress).
    Gguf { model: String },
    /// The gateway registry's tags for one GitLab minor, one per line.
    TagList { gitlab_minor: String },
    /// The AI Gateway Helm chart archive (`.tgz`) as `helm pull` fetched it, for
    /// `install --target helm --offline`.
    HelmChart { chart: String, version: String },
    /// One file of a model's Hugging Face repository (vLLM's weights and tokenizer), placed in
    /// the Hugging Face cache as `models--OWNER--NAME/{blobs,snapshots,refs}`.
    HfFile {
        /// The catalog model it belongs to.
        model: String,
        /// `owner/name`.
        repo: String,
        /// The commit the files were taken at, the snapshot they are filed under.
        commit: String,
        /// The branch that named the commit (`refs/<branch>` records it), `main`.
        branch: String,
        /// The file's path in the repository.
        file: String,
        /// Its blob name in the cache, as huggingface_hub names it (the LFS sha256, else the
        /// Hub's ETag).
        blob: String,
    },
}

impl Content {
    /// The oldest bundle format that can hold this content.
    fn format_version(&self) -> u32 {
        match self {
            Content::Images { .. } | Content::Gguf { .. } | Content::TagList { .. } => 1,
            Content::HelmChart { .. } | Content::HfFile { .. } => 2,
        }
    }
}

/// The format a bundle of `items` is written as: the oldest that holds them all.
pub fn format_version_for(items: &[Item]) -> u32 {
    items
        .iter()
        .map(|item| item.content.format_version())
        .max()
        .unwrap_or(OLDEST_FORMAT_VERSION)
}

/// An image inside an [`Content::Images`] archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundledImage {
    /// `repository:tag`, as it is tagged after a load.
    pub reference: String,
    /// The engine's image id (`sha256:...`), the same on every engine that loads it.
    pub id: String,
    /// `gateway` or `vllm`.
    pub role: String,
    /// The GitLab version a gateway image is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab_version: Option<String>,
}

impl Manifest {
    /// The manifest's bytes as written to the bundle.
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Every image the bundle carries.
    pub fn images(&self) -> impl Iterator<Item = &BundledImage> {
        self.items.iter().flat_map(|item| match &item.content {
            Content::Images { images, .. } => images.as_slice(),
            _ => &[],
        })
    }

    /// The `duo-selfhost install ...` line to run after a load.
    pub fn install_command(&self) -> String {
        std::iter::once("duo-selfhost".to_string())
            .chain(self.install_args.iter().map(|a| shell_word(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quotes a word for a shell when it needs it.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// sha256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The fix for a bundle that cannot be used: make it again and carry it over again.
const REMAKE_HINT: &str = "copy the bundle again (compare `sha256sum` on both machines), or make it anew with `duo-selfhost bundle create`";

/// Parses the manifest and checks it against its recorded sha256: the format version first
/// (a newer format may checksum differently), then the checksum, then the fields.
pub fn parse(bytes: &[u8], recorded_sha256: &str, bundle: &str) -> anyhow::Result<Manifest> {
    #[derive(Deserialize)]
    struct VersionOnly {
        format_version: Option<u32>,
    }
    let version = serde_json::from_slice::<VersionOnly>(bytes)
        .ok()
        .and_then(|v| v.format_version);
    match version {
        Some(OLDEST_FORMAT_VERSION..=FORMAT_VERSION) => {}
        Some(other) => {
            return Err(Problem::user(format!(
                "{bundle} is bundle format {other}; this duo-selfhost {} reads formats {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}",
                env!("CARGO_PKG_VERSION")
            ))
            .hint(if other > FORMAT_VERSION {
                "load it with the duo-selfhost version that made it (its manifest.json names it as duo_selfhost_version)"
            } else {
                "make the bundle again with this duo-selfhost: duo-selfhost bundle create"
            })
            .into())
        }
        None if sha256_hex(bytes) != recorded_sha256.trim() => {
            return Err(damaged_manifest(bundle));
        }
        None => {
            return Err(Problem::user(format!(
                "{bundle}: its manifest.json has no format_version; it is not a duo-selfhost bundle"
            ))
            .hint(REMAKE_HINT)
            .into())
        }
    }
    if sha256_hex(bytes) != recorded_sha256.trim() {
        return Err(damaged_manifest(bundle));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::user(format!("{bundle}: its manifest.json cannot be read: {e}"))
            .hint(REMAKE_HINT)
            .into()
    })
}

fn damaged_manifest(bundle: &str) -> anyhow::Error {
    Problem::user(format!(
        "{bundle}: manifest.json does not match its recorded sha256 (manifest.json.sha256): the bundle is damaged"
    ))
    .hint(REMAKE_HINT)
    .into()
}

/// The error for an entry whose bytes are not what the manifest says.
pub fn bad_item(bundle: &str, item: &str, what: &str) -> anyhow::Error {
    Problem::user(format!("{bundle}: {item} is damaged: {what}"))
        .hint(REMAKE_HINT)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format_version: 1,
            duo_selfhost_version: "0.1.0".into(),
            created_at: "2026-12-01T00:00:00Z".into(),
            gitlab_versions: vec!["17.6.0".into()],
            items: vec![
                Item {
                    path: "images/images.tar.zst".into(),
                    size: 10,
                    sha256: "ab".into(),
                    content: Content::Images {
                        images: vec![BundledImage {
                            reference: "r/g:self-hosted-v17.6.1-ee".into(),
                            id: "sha256:1".into(),
                            role: "gateway".into(),
                            gitlab_version: Some("17.6.0".into()),
                        }],
                        uncompressed_size: 20,
                    },
                },
                Item {
                    path: "tags/gateway-17.6.txt".into(),
                    size: 3,
                    sha256: "cd".into(),
                    content: Content::TagList {
                        gitlab_minor: "17.6".into(),
                    },
                },
            ],
            install_args: vec!["install".into(), "--offline".into()],
        }
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let bytes = manifest().to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""kind": "images""#), "{text}");
        assert!(text.contains(r#""kind": "tag-list""#), "{text}");
        let back = parse(&bytes, &sha256_hex(&bytes), "b").unwrap();
        assert_eq!(back, manifest());
        assert_eq!(back.images().count(), 1);
    }

    #[test]
    fn a_changed_byte_fails_the_manifest_checksum() {
        let mut bytes = manifest().to_bytes().unwrap();
        let sha = sha256_hex(&bytes);
        // The last digit (inside an item's size or sha256): the format version stays 1, so only
        // the checksum can catch it.
        let at = bytes.iter().rposition(|b| b.is_ascii_digit()).unwrap();
        bytes[at] = if bytes[at] == b'7' { b'8' } else { b'7' };
        let err = parse(&bytes, &sha, "b").unwrap_err().to_string();
        assert!(err.contains("does not match its recorded sha256"), "{err}");
    }

    #[test]
    fn another_format_version_is_named_before_the_checksum() {
        let mut other = manifest();
        other.format_version = FORMAT_VERSION + 1;
        let bytes = other.to_bytes().unwrap();
        let err = parse(&bytes, "not-its-sha", "b").unwrap_err().to_string();
        assert!(err.contains("bundle format 3"), "{err}");
        assert!(err.contains("reads formats 1 to 2"), "{err}");
    }

    #[test]
    fn a_bundle_is_written_in_the_oldest_format_that_holds_it() {
        let mut m = manifest();
        assert_eq!(format_version_for(&m.items), 1);
        m.items.push(Item {
            path: "charts/ai-gateway-0.5.0.tgz".into(),
            size: 1,
            sha256: "ef".into(),
            content: Content::HelmChart {
                chart: "ai-gateway".into(),
                version: "0.5.0".into(),
            },
        });
        assert_eq!(format_version_for(&m.items), 2);
        m.format_version = 2;
        let bytes = m.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""kind": "helm-chart""#), "{text}");
        assert_eq!(parse(&bytes, &sha256_hex(&bytes), "b").unwrap(), m);
    }

    #[test]
    fn the_install_command_quotes_what_a_shell_would_split() {
        let mut m = manifest();
        m.install_args = vec!["install".into(), "--env".into(), "A=b c".into()];
        assert_eq!(m.install_command(), "duo-selfhost install --env 'A=b c'");
    }
}
