//! The local model cache in Hugging Face's layout (HF_HOME honoured): where a catalog model's
//! GGUF and a repository's files live, and finding the model `serve` loads. Downloading into it
//! is `download` (the partial file `partial`), the Hub's API `hub`, moving checked files in
//! (a bundle's) `place`.

mod download;
mod hub;
mod partial;
mod place;

pub use download::{pull, pull_file, PullOutcome, PullPhase, PullProgress, Pulled};
pub use hub::{download_url, hf_endpoint, list_repo, RepoFile, RepoListing};
pub use place::{place_file, place_gguf};

use std::path::{Path, PathBuf};

use crate::catalog::{self, GgufSource, Model, Platform};
use crate::error::Problem;
use crate::secret::Secret;

/// [`hf_home`], created when missing (as the user running us, so `models pull` can write to
/// it later), or a user error naming it.
pub fn ensure_hf_home() -> Result<PathBuf, Problem> {
    let home = hf_home();
    std::fs::create_dir_all(&home).map_err(|e| {
        Problem::user(format!(
            "could not create the Hugging Face cache {}: {e}",
            home.display()
        ))
        .hint("point HF_HOME at a writable directory")
    })?;
    Ok(home)
}

/// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home() -> PathBuf {
    if let Some(home) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("huggingface")
}

/// The Hugging Face token from the environment (`HF_TOKEN`, else the older
/// `HUGGING_FACE_HUB_TOKEN`, as huggingface_hub reads them), for gated repositories.
pub fn hf_token() -> Option<Secret> {
    ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .map(|value| value.trim().to_string())
        .find(|value| !value.is_empty())
        .map(Secret::new)
}

/// One file of a Hugging Face repository, as the cache files it and a download checks it: a
/// catalog GGUF, or a file of the repository vLLM loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubFile<'a> {
    /// `owner/name`.
    pub repo: &'a str,
    /// A commit, or a branch to resolve to one.
    pub revision: &'a str,
    /// The file's path in the repository.
    pub file: &'a str,
    pub sha256: Option<&'a str>,
    pub bytes: Option<u64>,
}

impl<'a> From<&'a GgufSource> for HubFile<'a> {
    fn from(source: &'a GgufSource) -> Self {
        HubFile {
            repo: source.repo,
            revision: source.revision,
            file: source.file,
            sha256: source.sha256,
            bytes: source.bytes,
        }
    }
}

/// `<hf_home>/hub/models--<org>--<name>`, Hugging Face's folder for a model repository.
pub fn repo_dir(source: &GgufSource) -> PathBuf {
    repo_dir_of(source.repo)
}

/// `<hf_home>/hub/models--<owner>--<name>` for a repository id.
pub fn repo_dir_of(repo: &str) -> PathBuf {
    hf_home()
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")))
}

/// Where the snapshot of the GGUF lives, whether or not it is there. A branch revision
/// (`main`) goes through `refs/<branch>`, where huggingface_hub records the commit it fetched.
pub fn snapshot_path(source: &GgufSource) -> PathBuf {
    snapshot_path_of(&HubFile::from(source))
}

fn snapshot_path_of(source: &HubFile) -> PathBuf {
    let commit = if is_commit(source.revision) {
        source.revision.to_string()
    } else {
        cached_commit(source.repo, source.revision).unwrap_or_else(|| source.revision.to_string())
    };
    snapshot_for(source, &commit)
}

fn snapshot_for(source: &HubFile, commit: &str) -> PathBuf {
    repo_snapshot_path(source.repo, commit, source.file)
}

/// A 40-hex-digit git commit, as opposed to a branch or tag name.
fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

/// `<repo_dir>/blobs/<name>`, where the bytes live; the snapshot entry links here.
pub fn blob_path(source: &GgufSource, blob_name: &str) -> PathBuf {
    blob_path_of(source.repo, blob_name)
}

fn blob_path_of(repo: &str, blob_name: &str) -> PathBuf {
    repo_dir_of(repo).join("blobs").join(blob_name)
}

/// The cached snapshot of `file` in `repo` at `commit`, whether or not it is there.
pub fn repo_snapshot_path(repo: &str, commit: &str, file: &str) -> PathBuf {
    repo_dir_of(repo).join("snapshots").join(commit).join(file)
}

/// The commit `refs/<branch>` of a cached repository names, when it names one.
pub fn cached_commit(repo: &str, branch: &str) -> Option<String> {
    std::fs::read_to_string(repo_dir_of(repo).join("refs").join(branch))
        .ok()
        .map(|r| r.trim().to_string())
        .filter(|r| is_commit(r))
}

/// A path inside a repository that stays inside the snapshot: relative, no `..`, no empty or
/// hidden-dot parts (a hostile listing or bundle must not write elsewhere).
pub fn is_safe_repo_path(file: &str) -> bool {
    !file.is_empty()
        && !file.starts_with('/')
        && file
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The cached GGUF of a catalog model, when present.
pub fn locate(model: &Model) -> Option<PathBuf> {
    let source = model.gguf.as_ref()?;
    let path = snapshot_path(source);
    path.is_file().then_some(path)
}

/// A model ready to load: its file and the name it is served under.
#[derive(Debug, Clone)]
pub struct LocalModel {
    pub path: PathBuf,
    /// The catalog name, or the file stem for a path.
    pub name: String,
    pub catalog: Option<&'static Model>,
}

/// A catalog model by name or alias, or a user error naming `models list`.
pub fn find_model(name: &str) -> anyhow::Result<&'static Model> {
    catalog::find(name).ok_or_else(|| {
        let guess = crate::suggest::did_you_mean(name, catalog::names_and_aliases());
        Problem::user(format!("`{name}` is not a model duo-selfhost knows"))
            .hint(format!(
                "{guess}see `duo-selfhost models list` for names and aliases, or give a path to a .gguf file"
            ))
            .into()
    })
}

/// The GGUF `serve` would load for a catalog model, or a user error saying where the model is
/// served instead (Claude 3.5 Sonnet on Bedrock, say).
pub fn local_source(model: &Model) -> anyhow::Result<&GgufSource> {
    match model.gguf.as_ref() {
        Some(source) if model.platforms.contains(&Platform::Local) => Ok(source),
        _ => {
            let where_served = model
                .platforms
                .iter()
                .map(|p| match p {
                    Platform::Bedrock => "AWS Bedrock",
                    Platform::Vllm => "vLLM on a GPU host",
                    Platform::Local => "duo-selfhost serve",
                })
                .collect::<Vec<_>>()
                .join(" or ");
            Err(Problem::user(format!(
                "{} cannot be served locally: it is served by {where_served}",
                model.name
            ))
            .hint("configure it in GitLab (Admin > GitLab Duo > self-hosted models) with that platform's endpoint")
            .into())
        }
    }
}

/// Resolves `serve --model`: a path to a .gguf, or a catalog name or alias that is in the cache.
pub fn resolve_local(arg: &str) -> anyhow::Result<LocalModel> {
    let as_path = Path::new(arg);
    if arg.ends_with(".gguf") || as_path.components().count() > 1 {
        if !as_path.is_file() {
            return Err(Problem::user(format!("no GGUF file at {arg}"))
                .hint("give the path to a .gguf file, or a catalog name from `duo-selfhost models list`")
                .into());
        }
        check_gguf_header(as_path, None)?;
        let name = as_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| arg.to_string());
        return Ok(LocalModel {
            path: as_path.to_path_buf(),
            name,
            catalog: None,
        });
    }
    let model = find_model(arg)?;
    local_source(model)?;
    let path = locate(model).ok_or_else(|| not_cached(model))?;
    check_gguf_header(&path, Some(model))?;
    Ok(LocalModel {
        path,
        name: model.name.to_string(),
        catalog: Some(model),
    })
}

/// Refuses a file that is not GGUF before llama.cpp does (it only says "null result"): a Git
/// LFS pointer checked out instead of the weights, a truncated download, a safetensors file.
fn check_gguf_header(path: &Path, model: Option<&Model>) -> anyhow::Result<()> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|file| file.take(64).read_to_end(&mut head))
        .map_err(|e| Problem::user(format!("cannot read {}: {e}", path.display())))?;
    if head.starts_with(b"GGUF") {
        return Ok(());
    }
    let lfs_pointer = head.starts_with(b"version https://git-lfs");
    let what = if lfs_pointer {
        "it is a Git LFS pointer, not the weights"
    } else if head.is_empty() {
        "it is empty"
    } else {
        "it does not start with GGUF's magic bytes"
    };
    let hint = match model {
        Some(model) => format!(
            "the cached download is damaged: delete it and run duo-selfhost models pull {}",
            model.name
        ),
        None if lfs_pointer => {
            "fetch the real file (git lfs pull in its repository) or download it again".to_string()
        }
        None => {
            "give a .gguf file (llama.cpp's convert_hf_to_gguf.py converts a Hugging Face model)"
                .to_string()
        }
    };
    Err(
        Problem::user(format!("{} is not a GGUF file: {what}", path.display()))
            .hint(hint)
            .into(),
    )
}

/// The error for a catalog model whose GGUF is not downloaded yet, with the exact fix.
pub fn not_cached(model: &Model) -> anyhow::Error {
    Problem::user(format!(
        "{} is not in the local model cache ({})",
        model.name,
        hf_home().display()
    ))
    .hint(format!("duo-selfhost models pull {}", model.name))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_without_a_local_gguf_names_where_it_is_served() {
        let bedrock_only = catalog::find("claude-3-5-sonnet").unwrap();
        assert_eq!(bedrock_only.platforms, &[Platform::Bedrock]);
        let err = local_source(bedrock_only).unwrap_err();
        assert_eq!(
            err.to_string(),
            "claude-3-5-sonnet cannot be served locally: it is served by AWS Bedrock"
        );
        assert_eq!(
            crate::error::exit_status_of(&err),
            crate::error::ExitStatus::Failure
        );
        let demo = catalog::find("smollm2").unwrap();
        assert_eq!(local_source(demo).unwrap().quant, "Q4_1");
    }
}
