//! What the checks look at: URLs, names and secrets from the flags, then the state file that
//! install writes, then gitlab.rb. Plain values only; reading the sources is the command's job.

use std::path::PathBuf;

use crate::secret::Secret;
use crate::state::State;

/// Where omnibus renders `gitlab_rails['env']` on `gitlab-ctl reconfigure`.
pub const DEFAULT_GITLAB_RB: &str = crate::gitlab_rb::DEFAULT_PATH;

#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub gitlab_url: Option<String>,
    pub gitlab_token: Option<Secret>,
    /// The gitlab.rb to check, and whether someone named it (a flag, the env, the state file)
    /// rather than it being the default path: a missing default means GitLab is elsewhere.
    pub gitlab_rb: Option<PathBuf>,
    pub gitlab_rb_named: bool,
    pub envdir: PathBuf,
    pub gateway_url: Option<String>,
    /// Where `gateway_url` came from, for messages ("from gitlab.rb").
    pub gateway_url_source: &'static str,
    pub container: Option<String>,
    pub model_endpoint: Option<String>,
    pub model_identifier: Option<String>,
    pub model_api_key: Option<Secret>,
    pub ca_cert: Option<PathBuf>,
    /// The GitLab version install recorded, used when the API cannot tell.
    pub recorded_gitlab_version: Option<semver::Version>,
    /// The catalog name install recorded for the model.
    pub catalog_name: Option<String>,
}

impl Inputs {
    /// The gateway URL someone gave doctor (a flag or install's state file); one read back from
    /// gitlab.rb is the legacy setting under test, not a known-good address.
    pub fn given_gateway_url(&self) -> Option<String> {
        self.gateway_url
            .clone()
            .filter(|_| self.gateway_url_source != "gitlab.rb")
    }

    /// The secrets to scrub from anything printed.
    pub fn secrets(&self) -> Vec<&Secret> {
        self.gitlab_token
            .iter()
            .chain(self.model_api_key.iter())
            .collect()
    }
}

/// The values found in gitlab.rb: `external_url` and `gitlab_rails['env']`.
#[derive(Debug, Clone, Default)]
pub struct GitlabRbValues {
    pub external_url: Option<String>,
    pub env: std::collections::BTreeMap<String, String>,
}

/// What the command line gave (already parsed by clap into plain values).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub gitlab_url: Option<String>,
    pub gitlab_token: Option<Secret>,
    pub gitlab_rb: PathBuf,
    pub envdir: Option<PathBuf>,
    pub gateway_url: Option<String>,
    pub container: Option<String>,
    pub model_endpoint: Option<String>,
    pub model_identifier: Option<String>,
    pub model_api_key: Option<Secret>,
    pub ca_cert: Option<PathBuf>,
}

/// The gitlab.rb to read: the flag's (or `DUO_SELFHOST_GITLAB_RB`'s) unless it is the default
/// path and install recorded another; and whether anyone named it.
pub fn gitlab_rb_path(flag: &std::path::Path, state: Option<&State>) -> (PathBuf, bool) {
    let recorded = state
        .and_then(|s| s.gitlab.as_ref())
        .and_then(|g| g.gitlab_rb.clone());
    let flag_is_default = flag == std::path::Path::new(DEFAULT_GITLAB_RB);
    match (flag_is_default, recorded) {
        (false, _) => (flag.to_path_buf(), true),
        (true, Some(recorded)) => (recorded, true),
        (true, None) => (flag.to_path_buf(), false),
    }
}

/// Flags first, then the state file, then gitlab.rb.
pub fn resolve(flags: Flags, state: Option<&State>, rb: Option<&GitlabRbValues>) -> Inputs {
    let gitlab_state = state.and_then(|s| s.gitlab.as_ref());
    let gateway_state = state.and_then(|s| s.gateway.as_ref());
    let model_state = state.and_then(|s| s.model.as_ref());
    let non_empty = |s: &String| !s.trim().is_empty();

    let (gitlab_rb, gitlab_rb_named) = gitlab_rb_path(&flags.gitlab_rb, state);

    let (gateway_url, gateway_url_source) = if let Some(url) = flags.gateway_url.clone() {
        (Some(url), "--gateway-url")
    } else if let Some(url) = gateway_state.map(|g| g.url.clone()).filter(non_empty) {
        (Some(url), "the state file")
    } else if let Some(url) = rb
        .and_then(|rb| rb.env.get("AI_GATEWAY_URL").cloned())
        .filter(non_empty)
    {
        (Some(url), "gitlab.rb")
    } else {
        (None, "")
    };

    Inputs {
        gitlab_url: flags
            .gitlab_url
            .or_else(|| gitlab_state.map(|g| g.url.clone()).filter(non_empty))
            .or_else(|| rb.and_then(|rb| rb.external_url.clone()))
            .map(|u| u.trim_end_matches('/').to_string()),
        gitlab_token: flags.gitlab_token.filter(|t| !t.is_empty()),
        gitlab_rb: Some(gitlab_rb),
        gitlab_rb_named,
        envdir: flags
            .envdir
            .unwrap_or_else(crate::gitlab_rb::rendered_envdir),
        gateway_url,
        gateway_url_source,
        container: flags
            .container
            .or_else(|| gateway_state.and_then(|g| g.container_name.clone())),
        model_endpoint: flags
            .model_endpoint
            .or_else(|| model_state.map(|m| m.endpoint.clone()).filter(non_empty)),
        model_identifier: flags
            .model_identifier
            .or_else(|| model_state.map(|m| m.identifier.clone()).filter(non_empty)),
        model_api_key: flags.model_api_key.filter(|k| !k.is_empty()),
        ca_cert: flags.ca_cert,
        recorded_gitlab_version: gitlab_state
            .and_then(|g| crate::gitlab_api::parse_gitlab_version(&g.version)),
        catalog_name: model_state.and_then(|m| m.catalog_name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{GatewayState, GitlabState, ModelState};

    #[test]
    fn flags_win_then_state_then_gitlab_rb() {
        let state = State {
            gitlab: Some(GitlabState {
                url: "https://state.example".into(),
                version: "17.5.0".into(),
                gitlab_rb: None,
            }),
            gateway: Some(GatewayState {
                url: String::new(),
                container_name: Some("gitlab-aigw".into()),
                ..GatewayState::default()
            }),
            model: Some(ModelState {
                endpoint: "http://model:8000/v1".into(),
                identifier: "custom_openai/x".into(),
                ..ModelState::default()
            }),
            ..State::default()
        };
        let rb = GitlabRbValues {
            external_url: Some("https://rb.example".into()),
            env: [("AI_GATEWAY_URL".to_string(), "http://gw:5052".to_string())].into(),
        };
        let flags = Flags {
            gitlab_rb: DEFAULT_GITLAB_RB.into(),
            model_endpoint: Some("http://flag:1/v1".into()),
            ..Flags::default()
        };
        let inputs = resolve(flags, Some(&state), Some(&rb));
        assert_eq!(inputs.gitlab_url.as_deref(), Some("https://state.example"));
        assert_eq!(inputs.gateway_url.as_deref(), Some("http://gw:5052"));
        assert_eq!(inputs.gateway_url_source, "gitlab.rb");
        assert_eq!(inputs.model_endpoint.as_deref(), Some("http://flag:1/v1"));
        assert_eq!(inputs.model_identifier.as_deref(), Some("custom_openai/x"));
        assert_eq!(inputs.container.as_deref(), Some("gitlab-aigw"));
        assert!(!inputs.gitlab_rb_named);
        assert_eq!(
            inputs.recorded_gitlab_version,
            Some(semver::Version::new(17, 5, 0))
        );
    }
}
