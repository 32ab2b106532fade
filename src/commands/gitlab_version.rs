//! Which GitLab this is and how to reach it, for every command that needs to know: the API
//! client built from the connection flags, and the GitLab version from the sources a caller
//! names (a flag, the API with a token, this host's omnibus manifest, the recorded state), in
//! that order. Not the image-tag rules that follow from the version (`image_tag`).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::cli::GitlabConnectionArgs;
use crate::gitlab_api::GitlabClient;
use crate::image_tag;
use crate::output::{Mark, Printer};

/// The version manifest an omnibus install keeps on its host.
const HOST_MANIFEST: &str = "/opt/gitlab/version-manifest.json";

/// A client for GitLab's API at `url` with the token (which makes admin calls possible) and
/// the CA certificate of the connection flags; `timeout` bounds every call.
pub fn client(
    gitlab: &GitlabConnectionArgs,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<GitlabClient> {
    GitlabClient::new(
        url,
        gitlab.gitlab_token.clone(),
        gitlab.ca_cert.as_deref(),
        timeout,
    )
}

/// Where the GitLab version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionSource {
    Flag,
    Api,
    Host,
    State,
    /// Asked for on the terminal (install asks when no source knows it).
    Prompt,
}

/// The sources a caller has for the GitLab version; [`find`] tries them in this order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sources<'a> {
    /// The version flag (`--gitlab-version`, `--to-version`).
    pub flag: Option<&'a str>,
    /// GitLab's `/api/v4/metadata`; asked only when the client has a token.
    pub api: Option<&'a GitlabClient>,
    /// This host's omnibus version manifest.
    pub host_manifest: bool,
    /// What the state file (or the gateway container's label) recorded.
    pub recorded: Option<&'a str>,
}

/// How a lookup tells what it found, and how it takes an API that does not answer: each
/// command keeps the lines, and the strictness, it has always had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    /// `install` (Docker): the API is one source among others, read leniently; its version is
    /// a detail line (`-v`), a failure a warning before the next source. The manifest is silent.
    Install,
    /// `upgrade` (Docker): as install, and the manifest and the recorded version are detail
    /// lines too.
    Upgrade,
    /// The Helm target: the API, when there is a token, is the authority: its version (checked
    /// as a flag's would be) is a ✔ line and a failure stops the command. The rest is silent.
    Helm,
}

/// The GitLab version from the first of `sources` that knows it; `None` when none does (the
/// caller asks, or says what to give). A flag or a recorded version that is not one is an error.
pub async fn find(
    sources: Sources<'_>,
    voice: Voice,
    printer: &Printer,
) -> anyhow::Result<Option<(semver::Version, VersionSource)>> {
    if let Some(text) = sources.flag {
        return Ok(Some((
            image_tag::parse_gitlab_version(text)?,
            VersionSource::Flag,
        )));
    }
    if let Some(client) = sources.api.filter(|c| c.has_token()) {
        if let Some(version) = from_api(client, voice, printer).await? {
            return Ok(Some((version, VersionSource::Api)));
        }
    }
    if sources.host_manifest {
        if let Some(version) = from_manifest(Path::new(HOST_MANIFEST)) {
            if voice == Voice::Upgrade {
                printer.detail(format!("GitLab version {version} from {HOST_MANIFEST}"));
            }
            return Ok(Some((version, VersionSource::Host)));
        }
    }
    if let Some(text) = sources.recorded {
        let version = image_tag::parse_gitlab_version(text)?;
        if voice != Voice::Helm {
            printer.detail(format!("GitLab version {version} from the state file"));
        }
        return Ok(Some((version, VersionSource::State)));
    }
    Ok(None)
}

/// The version `/api/v4/metadata` reports, told in the caller's voice.
async fn from_api(
    client: &GitlabClient,
    voice: Voice,
    printer: &Printer,
) -> anyhow::Result<Option<semver::Version>> {
    if voice == Voice::Helm {
        let metadata = client.metadata().await?;
        printer.info(format!(
            "{} GitLab {} at {}",
            printer.mark(Mark::Ok),
            metadata.version,
            client.base_url()
        ));
        return image_tag::parse_gitlab_version(&metadata.version).map(Some);
    }
    match client.metadata().await {
        Ok(metadata) => {
            let version = metadata.semver();
            if let Some(v) = &version {
                printer.detail(format!(
                    "GitLab version {v} from {}api/v4/metadata",
                    client.base_url()
                ));
            }
            Ok(version)
        }
        Err(e) => {
            printer.warn(format!(
                "could not read GitLab's version from its API: {e:#}"
            ));
            Ok(None)
        }
    }
}

/// `build_version` of an omnibus version manifest, such as `17.5.0-ee`.
fn from_manifest(path: &Path) -> Option<semver::Version> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let build = json.get("build_version")?.as_str()?;
    image_tag::parse_gitlab_version(build).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_gives_its_build_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("version-manifest.json");
        std::fs::write(&path, r#"{"build_version": "17.5.0-ee", "software": {}}"#).unwrap();
        assert_eq!(from_manifest(&path), Some(semver::Version::new(17, 5, 0)));
        std::fs::write(&path, r#"{"software": {}}"#).unwrap();
        assert_eq!(from_manifest(&path), None);
    }
}
