//! The state file: what `install` made, read by `upgrade` and `doctor`.
//!
//! TOML at `/etc/duo-selfhost/state.toml` when running as root, else in the user's config dir
//! (`$XDG_CONFIG_HOME/duo-selfhost/state.toml`). Written atomically; never holds a secret.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::error::Problem;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub schema_version: u32,
    /// duo-selfhost's version that last wrote the file.
    pub written_by: String,
    /// UTC time of the last write, RFC 3339.
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<GitlabState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelState>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitlabState {
    pub url: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab_rb: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayState {
    /// "docker" or "helm".
    pub target: String,
    /// The URL GitLab uses to reach the gateway.
    pub url: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<PathBuf>,
    /// Hash of the settings the gateway was created with; install compares it to detect change.
    #[serde(default)]
    pub settings_hash: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelState {
    /// "none", "embedded" or "vllm".
    pub runtime: String,
    /// The OpenAI-compatible endpoint, ending in /v1.
    pub endpoint: String,
    /// GitLab's model identifier, custom_openai/<served name>.
    pub identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

/// `/etc/duo-selfhost/state.toml` as root, else the user's config dir.
pub fn default_path() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    if is_root {
        return PathBuf::from("/etc/duo-selfhost/state.toml");
    }
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from(".config"))
        .join("duo-selfhost")
        .join("state.toml")
}

/// Where duo-selfhost keeps data it was handed rather than configured with (the gateway tag
/// lists a bundle brings): `DUO_SELFHOST_DATA_DIR`, else `/var/lib/duo-selfhost` as root, else
/// the user's data dir.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DUO_SELFHOST_DATA_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/duo-selfhost");
    }
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from(".local/share"))
        .join("duo-selfhost")
}

/// The path to use: the flag's, else the default.
pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf).unwrap_or_else(default_path)
}

/// Reads the state file; `Ok(None)` when it does not exist.
pub fn load(path: &Path) -> anyhow::Result<Option<State>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("reading the state file {}", path.display()))
            )
        }
    };
    let state: State = toml::from_str(&text).map_err(|e| {
        Problem::user(format!(
            "the state file {} is not valid: {e}",
            path.display()
        ))
        .hint(format!(
            "fix or remove {}; `duo-selfhost install` writes it again",
            path.display()
        ))
    })?;
    Ok(Some(state))
}

/// Writes the state file atomically (temporary file, fsync, rename), creating its directory.
pub fn save(path: &Path, state: &State) -> anyhow::Result<()> {
    let mut state = state.clone();
    state.schema_version = SCHEMA_VERSION;
    state.written_by = env!("CARGO_PKG_VERSION").to_string();
    state.updated_at = now_rfc3339();
    let text = toml::to_string_pretty(&state).context("serialising the state file")?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// The current UTC time as RFC 3339, to the second.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.toml");
        assert_eq!(load(&path).unwrap(), None);
        let state = State {
            gitlab: Some(GitlabState {
                url: "https://gitlab.example.com".into(),
                version: "17.5.0".into(),
                gitlab_rb: None,
            }),
            ..State::default()
        };
        save(&path, &state).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.gitlab, state.gitlab);
        assert_eq!(back.schema_version, SCHEMA_VERSION);
    }

    #[test]
    fn invalid_file_is_the_users_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.toml");
        std::fs::write(&path, "schema_version = [").unwrap();
        let err = load(&path).unwrap_err();
        assert_eq!(
            crate::error::exit_status_of(&err),
            crate::ExitStatus::Failure
        );
    }
}
