//! Writing the cache's layout as huggingface_hub leaves it: a checked file becomes a blob, its
//! snapshot entry a relative link to it, and `refs/` names the commit. Checking the bytes is the
//! caller's (a download, a bundle's verification).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::hub::normalize_etag;
use super::{blob_path_of, is_commit, repo_dir_of, snapshot_for, HubFile};
use crate::catalog::GgufSource;
use crate::error::Problem;

/// Moves a GGUF whose sha256 was already checked (a bundle's) into the cache as the blob
/// named by that sha256 and links the snapshot `serve` finds; returns the snapshot path. The
/// file must be on the cache's filesystem (it is renamed, not copied).
pub fn place_gguf(source: &GgufSource, verified: &Path, sha256: &str) -> anyhow::Result<PathBuf> {
    place_file(&HubFile::from(source), verified, sha256)
}

/// Moves a file whose bytes were already checked (a bundle's) into the cache as the blob
/// `blob_name` and links `snapshots/<revision>/<file>` to it, recording the revision under
/// `refs/main` when it is a commit; returns the snapshot path. The file must be on the cache's
/// filesystem (it is renamed, not copied).
pub fn place_file(source: &HubFile, verified: &Path, blob_name: &str) -> anyhow::Result<PathBuf> {
    if normalize_etag(blob_name).as_deref() != Some(blob_name) {
        return Err(Problem::user(format!(
            "`{blob_name}` cannot name a blob in the model cache"
        ))
        .into());
    }
    let blob = blob_path_of(source.repo, blob_name);
    let blobs_dir = blob.parent().expect("a blob path has a parent");
    std::fs::create_dir_all(blobs_dir)
        .with_context(|| format!("could not create {}", blobs_dir.display()))?;
    std::fs::rename(verified, &blob).with_context(|| {
        format!(
            "could not move {} to {}",
            verified.display(),
            blob.display()
        )
    })?;
    link_snapshot(source, source.revision, blob_name)?;
    Ok(snapshot_for(source, source.revision))
}

/// Points `snapshots/<revision>/<file>` at the blob with a relative link, and `refs/main` at the
/// revision, the way huggingface_hub leaves a download.
pub(super) fn link_snapshot(source: &HubFile, commit: &str, blob_name: &str) -> anyhow::Result<()> {
    let snapshot = snapshot_for(source, commit);
    let dir = snapshot.parent().expect("a snapshot path has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    // From snapshots/<revision>/<file>, one `..` per folder in `file`, then two more.
    let depth = Path::new(source.file).components().count() + 1;
    let mut target = PathBuf::new();
    for _ in 0..depth {
        target.push("..");
    }
    target.push("blobs");
    target.push(blob_name);
    // Replace atomically: a half-made link must never be what `serve` finds.
    let temp = dir.join(format!(
        ".{}.link-{}",
        snapshot.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&temp);
    make_link(&target, &temp, &blob_path_of(source.repo, blob_name))?;
    std::fs::rename(&temp, &snapshot)
        .with_context(|| format!("could not create {}", snapshot.display()))?;
    let refs = repo_dir_of(source.repo).join("refs");
    std::fs::create_dir_all(&refs)
        .with_context(|| format!("could not create {}", refs.display()))?;
    // A pinned commit is recorded as `main`, as scripts/fetch-test-model does; a branch under
    // its own name, so `snapshot_path` finds the commit it was resolved to.
    let ref_name = if is_commit(source.revision) {
        "main"
    } else {
        source.revision
    };
    std::fs::write(refs.join(ref_name), commit)
        .with_context(|| format!("could not write {}", refs.join(ref_name).display()))?;
    Ok(())
}

#[cfg(unix)]
fn make_link(relative_target: &Path, link: &Path, _blob: &Path) -> anyhow::Result<()> {
    std::os::unix::fs::symlink(relative_target, link)
        .with_context(|| format!("could not create the link {}", link.display()))
}

/// Without symlinks huggingface_hub keeps a copy in the snapshot; a hard link costs no space.
#[cfg(not(unix))]
fn make_link(_relative_target: &Path, link: &Path, blob: &Path) -> anyhow::Result<()> {
    std::fs::hard_link(blob, link)
        .or_else(|_| std::fs::copy(blob, link).map(|_| ()))
        .with_context(|| format!("could not create {}", link.display()))
}
