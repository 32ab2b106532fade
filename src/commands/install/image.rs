//! Which images install and upgrade run and where they come from: the gateway image the image
//! flags ask for (by the image-tag rules), the pull policy, and under `--offline` the checks
//! that the image and vLLM's weights are already here (a bundle load puts them there).

use std::path::Path;

use crate::cli::{ImageChoiceArgs, PullPolicy};
use crate::docker;
use crate::error::Problem;
use crate::gateway_image;
use crate::model_cache;
use crate::output::Printer;
use crate::registry::RegistryChoice;

/// The gateway image for a GitLab version by the image-tag rules, its warnings printed.
pub async fn resolve_gateway_image(
    version: &semver::Version,
    registry: &RegistryChoice,
    available_tags: Option<&Path>,
    lookup: gateway_image::Lookup,
    printer: &Printer,
) -> anyhow::Result<String> {
    let choice = gateway_image::resolve(version, registry, available_tags, lookup).await?;
    for warning in &choice.warnings {
        printer.warn(warning);
    }
    Ok(choice.image)
}

/// The gateway image the image flags ask for: `--image` as given, else the tag for `version`
/// from `--registry` (or `default_registry`), `--available-tags` and `--offline`.
pub async fn gateway_image_for(
    version: &semver::Version,
    image: &ImageChoiceArgs,
    default_registry: impl FnOnce() -> RegistryChoice,
    printer: &Printer,
) -> anyhow::Result<String> {
    if let Some(given) = &image.image {
        return Ok(given.clone());
    }
    let registry = image.registry.clone().unwrap_or_else(default_registry);
    resolve_gateway_image(
        version,
        &registry,
        image.available_tags.as_deref(),
        lookup_for(image),
        printer,
    )
    .await
}

/// How far the image choice may reach for tags: `--offline` keeps it to a loaded bundle.
pub fn lookup_for(image: &ImageChoiceArgs) -> gateway_image::Lookup {
    if image.offline {
        gateway_image::Lookup::BundleOnly
    } else {
        gateway_image::Lookup::Online
    }
}

/// Under `--offline`, the image must already be on this host (a bundle load puts it there):
/// the error names the bundle commands instead of trying a pull that cannot work.
pub async fn require_loaded_image(
    engine: &bollard::Docker,
    image: &str,
    gitlab_version: &semver::Version,
) -> anyhow::Result<()> {
    if docker::image_present(engine, image).await? {
        return Ok(());
    }
    Err(Problem::user(format!(
        "--offline: the image {image} is not on this host, and --offline forbids pulling it"
    ))
    .hint(format!(
        "on a connected machine: duo-selfhost bundle create --gitlab-version {gitlab_version} --output duo.bundle; here: duo-selfhost bundle load duo.bundle"
    ))
    .into())
}

/// Under `--offline`, vLLM must find the repository in the Hugging Face cache (a bundle load
/// puts it there): `refs/main` naming a snapshot that has the model's configuration.
pub(super) fn require_cached_weights(
    repo: &str,
    catalog: Option<&'static crate::catalog::Model>,
    gitlab_version: &semver::Version,
) -> anyhow::Result<()> {
    let snapshot = model_cache::cached_commit(repo, "main").map(|commit| {
        model_cache::repo_dir_of(repo)
            .join("snapshots")
            .join(commit)
    });
    let configured = snapshot.as_ref().is_some_and(|dir| {
        ["config.json", "params.json"]
            .iter()
            .any(|f| dir.join(f).is_file())
    });
    if configured {
        return Ok(());
    }
    let model = catalog.map_or(repo, |m| m.name);
    Err(Problem::user(format!(
        "--offline: the weights of {repo} are not in the Hugging Face cache ({}), and vLLM may not download them",
        model_cache::repo_dir_of(repo).display()
    ))
    .hint(format!(
        "on a connected machine: duo-selfhost bundle create --gitlab-version {gitlab_version} --model-runtime vllm --model {model} --output duo.bundle; here: duo-selfhost bundle load duo.bundle"
    ))
    .into())
}

pub fn pull_policy(policy: PullPolicy) -> docker::Pull {
    match policy {
        PullPolicy::Always => docker::Pull::Always,
        PullPolicy::Missing => docker::Pull::Missing,
        PullPolicy::Never => docker::Pull::Never,
    }
}
