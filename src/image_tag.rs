//! Chooses the AI Gateway image for a GitLab version: the highest self-hosted-vX.Y.*-ee tag
//! from a tag file or a registry's v2 tag list, never latest or nightly.

use std::path::Path;

use crate::error::not_built;

/// Where the gateway image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryChoice {
    /// registry.gitlab.com (the default).
    Gitlab,
    /// Docker Hub's gitlab/model-gateway.
    Dockerhub,
    /// A private mirror, HOST/PATH.
    Mirror(String),
}

impl std::str::FromStr for RegistryChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gitlab" => Ok(RegistryChoice::Gitlab),
            "dockerhub" => Ok(RegistryChoice::Dockerhub),
            "" => Err("expected gitlab, dockerhub or HOST/PATH".into()),
            other if other.contains('/') => Ok(RegistryChoice::Mirror(other.to_string())),
            other => Err(format!(
                "`{other}` is not gitlab, dockerhub or HOST/PATH (a mirror such as registry.example.com:5000/ai/model-gateway)"
            )),
        }
    }
}

/// Where the chosen tag came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagSource {
    File,
    Registry,
    Offline,
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

/// Parses a GitLab version as users write it (17.5.0, v17.5.0-ee, 17.5.2-ee, 18.2.1).
pub fn parse_gitlab_version(_text: &str) -> anyhow::Result<semver::Version> {
    Err(not_built("image-tag"))
}

/// Chooses the image: the highest `self-hosted-vX.Y.*-ee` for the version's minor.
pub async fn resolve(
    _version: &semver::Version,
    _registry: &RegistryChoice,
    _available_tags: Option<&Path>,
    _offline: bool,
) -> anyhow::Result<ImageChoice> {
    Err(not_built("image-tag"))
}
