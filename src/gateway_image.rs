//! Which gateway image to run for a GitLab version: from a tag file, the tag list a bundle
//! brought, the registry's v2 tag list, or, offline, the minor's first release, by the rules in
//! `image_tag`. The registry client is `registry`'s.

use std::path::Path;

use semver::Version;

use crate::error::Problem;
use crate::image_tag::{available_minors, offline_tag, pick_gateway_tag};
use crate::registry::{error_summary, is_unreachable, list_registry_tags, RegistryChoice};

/// Where the chosen tag came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagSource {
    File,
    Registry,
    Offline,
    /// The tag list a bundle brought (`bundle load`).
    Bundle,
}

/// How far `resolve` may go for the registry's tags once a tag file and a bundle's stored list
/// have not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Ask the registry; fall back to the minor's first release when it cannot be reached.
    Online,
    /// Never ask; use the minor's first release with a warning (`image-tag --offline`).
    OfflineRule,
    /// Never ask; no stored list is an error naming the bundle commands (`install --offline`).
    BundleOnly,
}

/// Where `bundle load` stores the gateway's tag list for a GitLab minor, and where `resolve`
/// looks for it.
pub fn stored_tags_path(gitlab: &Version) -> std::path::PathBuf {
    crate::state::data_dir()
        .join("tags")
        .join(format!("gateway-{}.{}.txt", gitlab.major, gitlab.minor))
}

fn no_stored_tags(gitlab: &Version) -> anyhow::Error {
    Problem::user(format!(
        "--offline: no bundle has brought the gateway's tag list for GitLab {}.{} to this host ({} is missing)",
        gitlab.major,
        gitlab.minor,
        stored_tags_path(gitlab).display()
    ))
    .hint(format!(
        "on a connected machine: duo-selfhost bundle create --gitlab-version {gitlab} --output duo.bundle; here: duo-selfhost bundle load duo.bundle (or pass --image, or --available-tags FILE)"
    ))
    .into()
}

/// The gateway image chosen for a GitLab version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageChoice {
    /// `repository:tag`.
    pub image: String,
    pub repository: String,
    pub tag: String,
    pub gitlab_version: String,
    pub source: TagSource,
    pub warnings: Vec<String>,
}

/// The error for a tag list without a gateway release for the version's minor; `place` names
/// the list.
pub fn no_tag_for_minor(gitlab: &Version, place: &str, tags: &[String]) -> anyhow::Error {
    let minor = format!("{}.{}", gitlab.major, gitlab.minor);
    let minors = available_minors(tags.iter().map(String::as_str));
    let seen = if minors.is_empty() {
        "it has no self-hosted-v*-ee tag at all".to_string()
    } else {
        format!(
            "it has self-hosted releases for {}",
            minors
                .iter()
                .take(6)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Problem::user(format!(
        "{place} has no self-hosted-v{minor}.*-ee tag for GitLab {gitlab}: {seen}"
    ))
    .hint(format!(
        "mirror {} (or a later {minor} patch) from {}, or check --gitlab-version; latest and nightly tags are never used",
        offline_tag(gitlab),
        crate::registry::GITLAB_REPOSITORY
    ))
    .into()
}

/// Chooses the image: the highest `self-hosted-vX.Y.*-ee` for the version's minor.
pub async fn resolve(
    version: &Version,
    registry: &RegistryChoice,
    available_tags: Option<&Path>,
    lookup: Lookup,
) -> anyhow::Result<ImageChoice> {
    let repository = registry.repository();
    let mut warnings = Vec::new();
    let stored = stored_tags_path(version);
    let (tag, source) = if let Some(file) = available_tags {
        let tags = read_tag_file(file)?;
        let tag = pick_gateway_tag(tags.iter().map(String::as_str), version)
            .ok_or_else(|| {
                no_tag_for_minor(version, &format!("the tag list {}", file.display()), &tags)
            })?
            .to_string();
        (tag, TagSource::File)
    } else if stored.is_file() {
        // A loaded bundle answers without the network, choosing as the registry did.
        let tags = read_tag_file(&stored)?;
        let tag = pick_gateway_tag(tags.iter().map(String::as_str), version)
            .ok_or_else(|| {
                no_tag_for_minor(
                    version,
                    &format!("the bundle's tag list {}", stored.display()),
                    &tags,
                )
            })?
            .to_string();
        (tag, TagSource::Bundle)
    } else if lookup == Lookup::BundleOnly {
        return Err(no_stored_tags(version));
    } else if lookup == Lookup::OfflineRule {
        warnings.push(format!(
            "offline: newer {}.{} patch releases of the gateway could not be checked; using the minor's first release",
            version.major, version.minor
        ));
        (offline_tag(version), TagSource::Offline)
    } else {
        match list_registry_tags(registry).await {
            Ok(tags) => {
                let tag = pick_gateway_tag(tags.iter().map(String::as_str), version)
                    .ok_or_else(|| no_tag_for_minor(version, &repository, &tags))?
                    .to_string();
                (tag, TagSource::Registry)
            }
            Err(err) if is_unreachable(&err) => {
                warnings.push(format!(
                    "could not list the tags of {repository} ({}); newer {}.{} patch releases could not be checked, using the minor's first release",
                    error_summary(&err),
                    version.major,
                    version.minor
                ));
                (offline_tag(version), TagSource::Offline)
            }
            Err(err) => return Err(err),
        }
    };
    Ok(ImageChoice {
        image: format!("{repository}:{tag}"),
        repository,
        tag,
        gitlab_version: version.to_string(),
        source,
        warnings,
    })
}

/// Reads a tag list: one tag per line; blank lines and `#` comments are skipped.
pub fn read_tag_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        Problem::user(format!("cannot read the tag list {}: {err}", path.display()))
            .hint("give a readable file with one tag per line, such as the tag names `skopeo list-tags` prints")
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect())
}
