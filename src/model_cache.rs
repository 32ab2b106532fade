//! The local model cache in Hugging Face's layout (HF_HOME, HF_ENDPOINT honoured): where a
//! catalog model's GGUF lives, and a resumable, checksummed download.

use std::path::{Path, PathBuf};

use crate::catalog::{self, GgufSource, Model, Platform};
use crate::error::Problem;

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

/// `<hf_home>/hub/models--<org>--<name>`, Hugging Face's folder for a model repository.
pub fn repo_dir(source: &GgufSource) -> PathBuf {
    hf_home()
        .join("hub")
        .join(format!("models--{}", source.repo.replace('/', "--")))
}

/// Where the snapshot of the GGUF lives, whether or not it is there.
pub fn snapshot_path(source: &GgufSource) -> PathBuf {
    repo_dir(source)
        .join("snapshots")
        .join(source.revision)
        .join(source.file)
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

/// Resolves `serve --model`: a path to a .gguf, or a catalog name or alias that is in the cache.
pub fn resolve_local(arg: &str) -> anyhow::Result<LocalModel> {
    let as_path = Path::new(arg);
    if arg.ends_with(".gguf") || as_path.components().count() > 1 {
        if !as_path.is_file() {
            return Err(Problem::user(format!("no GGUF file at {arg}"))
                .hint("give the path to a .gguf file, or a catalog name from `duo-selfhost models list`")
                .into());
        }
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
    let model = catalog::find(arg).ok_or_else(|| {
        Problem::user(format!("`{arg}` is not a model duo-selfhost knows")).hint(
            "see `duo-selfhost models list` for names and aliases, or give a path to a .gguf file",
        )
    })?;
    if model.gguf.is_none() || !model.platforms.contains(&Platform::Local) {
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
        return Err(Problem::user(format!("{} cannot be served locally: it is served by {where_served}", model.name))
            .hint("configure it in GitLab (Admin > GitLab Duo > self-hosted models) with that platform's endpoint")
            .into());
    }
    let path = locate(model).ok_or_else(|| {
        Problem::user(format!(
            "{} is not in the local model cache ({})",
            model.name,
            hf_home().display()
        ))
        .hint(format!("duo-selfhost models pull {}", model.name))
    })?;
    Ok(LocalModel {
        path,
        name: model.name.to_string(),
        catalog: Some(model),
    })
}
