//! `bundle load`'s work: verify every item while staging it in a throwaway directory, and only
//! once all of them matched, load the images into the engine (and push them to a site
//! registry), move the GGUFs and Hugging Face files into the model cache and store the tag
//! lists and the chart archive. A damaged bundle
//! therefore leaves nothing behind; what is already in place is checked, not loaded again.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use bollard::Docker;
use serde::Serialize;

use super::manifest::{bad_item, Content, Item};
use super::reader::Bundle;
use super::writer::check_space;
use super::Progress;
use crate::error::Problem;
use crate::gateway_image;
use crate::{catalog, image_tag, image_transfer, model_cache};

/// What a load did, item by item.
#[derive(Debug, Default, Serialize)]
pub struct LoadReport {
    /// Images loaded into the engine now.
    pub images_loaded: Vec<String>,
    /// Images the engine already had, with the bundle's id.
    pub images_present: Vec<String>,
    /// Images tagged and pushed to the `--push-to` registry.
    pub images_pushed: Vec<String>,
    /// GGUFs moved into the model cache now (their snapshot paths).
    pub models_placed: Vec<String>,
    /// GGUFs the cache already had with the bundle's sha256.
    pub models_present: Vec<String>,
    /// Tag lists written now.
    pub tag_lists_written: Vec<String>,
    /// Tag lists already stored with the same content.
    pub tag_lists_present: Vec<String>,
    /// Chart archives stored now, where `install --target helm --offline` finds them.
    pub charts_stored: Vec<String>,
    /// Chart archives already stored with the same content.
    pub charts_present: Vec<String>,
    /// Hugging Face files placed in the cache now (their snapshot paths).
    pub hf_files_placed: Vec<String>,
    /// Hugging Face files the cache already had as the bundle's blobs.
    pub hf_files_present: Vec<String>,
    /// The install command to run next.
    pub install_command: String,
}

impl LoadReport {
    /// Whether the load changed anything on this host.
    pub fn changed(&self) -> bool {
        !(self.images_loaded.is_empty()
            && self.images_pushed.is_empty()
            && self.models_placed.is_empty()
            && self.tag_lists_written.is_empty()
            && self.charts_stored.is_empty()
            && self.hf_files_placed.is_empty())
    }
}

/// Where each item goes once verified.
enum Destination {
    /// Already in place: hashed only.
    InPlace,
    /// A decompressed image archive, loaded into the engine.
    Images(PathBuf),
    /// A GGUF, moved into the cache.
    Gguf(PathBuf, &'static catalog::GgufSource),
    /// A tag list, written where `image-tag` and `install` look.
    TagList(Vec<u8>, PathBuf),
    /// A chart archive, written where `install --target helm --offline` looks.
    Chart(Vec<u8>, PathBuf),
    /// A Hugging Face file, moved into the cache.
    HfFile(PathBuf),
}

/// Largest chart archive accepted: charts are kilobytes, and one is held in memory.
const MAX_CHART_BYTES: u64 = 64 << 20;

/// Loads `bundle` into this host: the engine, the model cache, the tag store; with `push_to`
/// (`HOST[:PORT]/PATH`) the gateway images are also tagged and pushed there.
pub async fn load(
    bundle: &Bundle,
    docker: &Docker,
    push_to: Option<&str>,
    progress: &dyn Progress,
) -> anyhow::Result<LoadReport> {
    let name = bundle.name();
    let mut report = LoadReport::default();

    // What is already here needs no staging; everything is still read and hashed.
    let mut need_images = false;
    for image in bundle.manifest.images() {
        match image_transfer::id_and_size(docker, &image.reference).await? {
            Some((id, _)) if id == image.id => report.images_present.push(image.reference.clone()),
            _ => need_images = true,
        }
    }
    let hf_home = model_cache::ensure_hf_home()?;
    let mut staging_bytes = 0;
    for item in &bundle.manifest.items {
        match &item.content {
            Content::Images {
                uncompressed_size, ..
            } if need_images => staging_bytes += uncompressed_size,
            Content::Gguf { model } if !gguf_in_cache(model, item)? => staging_bytes += item.size,
            Content::HfFile { .. } if !hf_file_in_cache(&name, item)? => staging_bytes += item.size,
            _ => {}
        }
    }
    // Staged beside the cache so a GGUF becomes its blob by a rename, not a copy.
    let staging = tempfile::Builder::new()
        .prefix(".duo-selfhost-load-")
        .tempdir_in(&hf_home)
        .with_context(|| {
            format!(
                "could not make a staging directory in {}",
                hf_home.display()
            )
        })?;
    check_space(staging.path(), staging_bytes, &format!("loading {name}"))?;

    let mut destinations = Vec::new();
    for (index, item) in bundle.manifest.items.iter().enumerate() {
        bundle.check_catalog_pin(item)?;
        let destination = match &item.content {
            Content::Images { .. } if !need_images => {
                bundle.read_item(item, &mut std::io::sink(), progress)?;
                Destination::InPlace
            }
            Content::Images { .. } => {
                let archive = staging.path().join("images.tar");
                let file = BufWriter::new(File::create(&archive)?);
                let mut decoder = zstd::stream::write::Decoder::new(file)?;
                bundle.read_item(item, &mut decoder, progress)?;
                decoder.flush()?;
                decoder.into_inner().flush()?;
                Destination::Images(archive)
            }
            Content::Gguf { model } => {
                let source = catalog_source(model, &name, item)?;
                if gguf_in_cache(model, item)? {
                    bundle.read_item(item, &mut std::io::sink(), progress)?;
                    report.models_present.push(model.clone());
                    Destination::InPlace
                } else {
                    let staged = staging.path().join(&item.sha256);
                    let mut file = BufWriter::new(File::create(&staged)?);
                    bundle.read_item(item, &mut file, progress)?;
                    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                    Destination::Gguf(staged, source)
                }
            }
            Content::TagList { gitlab_minor } => {
                let mut bytes = Vec::new();
                bundle.read_item(item, &mut bytes, progress)?;
                let target = tag_list_path(gitlab_minor, &name)?;
                if std::fs::read(&target).ok().as_deref() == Some(bytes.as_slice()) {
                    report.tag_lists_present.push(gitlab_minor.clone());
                    Destination::InPlace
                } else {
                    Destination::TagList(bytes, target)
                }
            }
            Content::HelmChart { chart, version } => {
                let version_ok = !version.is_empty()
                    && !version.starts_with('.')
                    && version
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
                if chart != crate::helm::CHART_NAME || !version_ok || item.size > MAX_CHART_BYTES {
                    return Err(bad_item(
                        &name,
                        &item.path,
                        &format!(
                            "it is the chart {chart} {version} of {} bytes, not an AI Gateway chart archive",
                            item.size
                        ),
                    ));
                }
                let mut bytes = Vec::new();
                bundle.read_item(item, &mut bytes, progress)?;
                let target = crate::helm::stored_chart_path(version);
                if std::fs::read(&target).ok().as_deref() == Some(bytes.as_slice()) {
                    report.charts_present.push(target.display().to_string());
                    Destination::InPlace
                } else {
                    Destination::Chart(bytes, target)
                }
            }
            Content::HfFile { file, .. } => {
                if hf_file_in_cache(&name, item)? {
                    bundle.read_item(item, &mut std::io::sink(), progress)?;
                    report.hf_files_present.push(file.clone());
                    Destination::InPlace
                } else {
                    // Named by position: two files of a repository may hold the same bytes.
                    let staged = staging.path().join(format!("hf-{index}"));
                    let mut out = BufWriter::new(File::create(&staged)?);
                    bundle.read_item(item, &mut out, progress)?;
                    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                    Destination::HfFile(staged)
                }
            }
        };
        destinations.push((item, destination));
    }

    // Every item matched its checksum: now apply.
    for (item, destination) in destinations {
        match destination {
            Destination::InPlace => {}
            Destination::Images(archive) => {
                image_transfer::load_archive(docker, &archive).await?;
                std::fs::remove_file(&archive).ok();
                for image in bundle.manifest.images() {
                    let loaded = image_transfer::id_and_size(docker, &image.reference).await?;
                    if loaded.as_ref().map(|(id, _)| id) != Some(&image.id) {
                        return Err(Problem::tool(format!(
                            "after loading {}, the engine has {} as {}, not the bundle's {}",
                            item.path,
                            image.reference,
                            loaded.map(|(id, _)| id).unwrap_or_else(|| "nothing".into()),
                            image.id
                        ))
                        .into());
                    }
                    if !report.images_present.contains(&image.reference) {
                        report.images_loaded.push(image.reference.clone());
                    }
                }
            }
            Destination::Gguf(staged, source) => {
                let path = model_cache::place_gguf(source, &staged, &item.sha256)?;
                report.models_placed.push(path.display().to_string());
            }
            Destination::TagList(bytes, target) => {
                write_atomically(&target, &bytes)?;
                report.tag_lists_written.push(target.display().to_string());
            }
            Destination::Chart(bytes, target) => {
                write_atomically(&target, &bytes)?;
                report.charts_stored.push(target.display().to_string());
            }
            Destination::HfFile(staged) => {
                let Content::HfFile {
                    repo,
                    commit,
                    file,
                    blob,
                    ..
                } = &item.content
                else {
                    unreachable!("an HfFile destination comes from an HfFile item")
                };
                let source = model_cache::HubFile {
                    repo,
                    revision: commit,
                    file,
                    sha256: None,
                    bytes: Some(item.size),
                };
                let path = model_cache::place_file(&source, &staged, blob)?;
                report.hf_files_placed.push(path.display().to_string());
            }
        }
    }

    let mut install_args = bundle.manifest.install_args.clone();
    if let Some(push_to) = push_to {
        let prefix = push_to.trim_end_matches('/');
        for image in bundle.manifest.images() {
            let target = pushed_reference(prefix, &image.reference);
            image_transfer::tag(docker, &image.reference, &target).await?;
            image_transfer::push(docker, &target).await?;
            // install pulls the gateway by repository (its tag chosen from the tag list) and
            // vLLM by its exact reference.
            let (repository, _) = crate::image_tag::split_reference(&target);
            match image.role.as_str() {
                "gateway" => set_flag(&mut install_args, "--registry", repository),
                "vllm" => set_flag(&mut install_args, "--vllm-image", &target),
                _ => {}
            }
            report.images_pushed.push(target);
        }
    }
    report.install_command = super::manifest::Manifest {
        install_args,
        ..bundle.manifest.clone()
    }
    .install_command();
    Ok(report)
}

/// Where `--push-to PREFIX` puts an image: `PREFIX/<the repository's last part>:<tag>`.
pub fn pushed_reference(prefix: &str, image: &str) -> String {
    let (repository, tag) = crate::image_tag::split_reference(image);
    let name = repository.rsplit('/').next().unwrap_or(repository);
    format!("{}/{name}:{tag}", prefix.trim_end_matches('/'))
}

/// `FLAG VALUE` in the install arguments, replacing one already there.
fn set_flag(args: &mut Vec<String>, flag: &str, value: &str) {
    match args.iter().position(|a| a == flag) {
        Some(at) if at + 1 < args.len() => args[at + 1] = value.to_string(),
        _ => args.extend([flag.to_string(), value.to_string()]),
    }
}

/// Whether the cache holds this Hugging Face file already: the snapshot links to the blob the
/// bundle names, with its size (blob names are content hashes, the cache's own rule). Refuses
/// names that would place a file outside the cache.
fn hf_file_in_cache(bundle: &str, item: &Item) -> anyhow::Result<bool> {
    let Content::HfFile {
        repo,
        commit,
        branch,
        file,
        blob,
        ..
    } = &item.content
    else {
        return Ok(false);
    };
    let commit_ok = commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit());
    let blob_ok = !blob.is_empty()
        && blob
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !blob.starts_with('.');
    if !(crate::vllm::is_repository_id(repo)
        && commit_ok
        && blob_ok
        && branch == "main"
        && model_cache::is_safe_repo_path(file))
    {
        return Err(bad_item(
            bundle,
            &item.path,
            &format!("its manifest entry ({repo} {commit} {file}) does not name a file in a Hugging Face repository"),
        ));
    }
    let snapshot = model_cache::repo_snapshot_path(repo, commit, file);
    let Ok(target) = std::fs::canonicalize(&snapshot) else {
        return Ok(false);
    };
    let named = target.file_name().is_some_and(|n| *n == **blob);
    let referenced = model_cache::cached_commit(repo, branch).as_deref() == Some(commit.as_str());
    Ok(named && referenced && std::fs::metadata(&target)?.len() == item.size)
}

fn catalog_source(
    model: &str,
    bundle: &str,
    item: &Item,
) -> anyhow::Result<&'static catalog::GgufSource> {
    catalog::find(model)
        .and_then(|m| m.gguf.as_ref())
        .ok_or_else(|| {
            Problem::user(format!(
                "{bundle}: {} is the model {model}, which this duo-selfhost's catalog does not know",
                item.path
            ))
            .hint("load the bundle with the duo-selfhost version that made it")
            .into()
        })
}

/// Whether the cache holds this GGUF already: the snapshot links to the blob named by the
/// bundle's sha256 and has its size (the cache's own rule: blobs are named by content).
fn gguf_in_cache(model: &str, item: &Item) -> anyhow::Result<bool> {
    let Some(model) = catalog::find(model) else {
        return Ok(false);
    };
    let Some(path) = model_cache::locate(model) else {
        return Ok(false);
    };
    let Ok(blob) = std::fs::canonicalize(&path) else {
        return Ok(false);
    };
    let named_by_content = blob.file_name().is_some_and(|n| *n == *item.sha256);
    Ok(named_by_content && std::fs::metadata(&blob)?.len() == item.size)
}

fn tag_list_path(gitlab_minor: &str, bundle: &str) -> anyhow::Result<PathBuf> {
    let version = image_tag::parse_gitlab_version(&format!("{gitlab_minor}.0")).map_err(|_| {
        Problem::user(format!(
            "{bundle}: its tag list names `{gitlab_minor}`, which is not a GitLab minor"
        ))
    })?;
    Ok(gateway_image::stored_tags_path(&version))
}

fn write_atomically(target: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = target.parent().expect("a stored tag list has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let temp = dir.join(format!(
        ".{}.tmp-{}",
        target.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temp, bytes).with_context(|| format!("could not write {}", temp.display()))?;
    std::fs::rename(&temp, target).with_context(|| format!("could not write {}", target.display()))
}
