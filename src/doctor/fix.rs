//! `doctor --fix`: which failed checks have a safe, mechanical fix, and the exact command each
//! is. Plain values only: the command layer asks, applies them with the code that install,
//! upgrade and gitlab-rb already use, and re-runs the checks. Anything else stays a hint.

use std::collections::BTreeMap;

use super::{CheckResult, Context, Status};
use crate::gitlab_config::{self, CUSTOM_MODEL_FLAG};

/// What a fix does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `gitlab-ctl reconfigure`, so GitLab renders gitlab.rb's env.
    Reconfigure,
    /// Turns on the `ai_custom_model` feature flag through the API (GitLab 17.x).
    EnableFeatureFlag,
    /// Sets the Local AI Gateway URL application setting (GitLab 17.9 and later).
    SetGatewaySetting { url: String },
    /// Replaces the gateway container with the same settings, these env variables set and
    /// those removed (with rollback when the new one is not healthy).
    GatewayEnv {
        container: String,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// `duo-selfhost upgrade` to the image for this GitLab version.
    UpgradeImage {
        container: String,
        version: semver::Version,
    },
}

/// One fix: the checks it repairs, the exact command, and the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub checks: Vec<&'static str>,
    pub command: String,
    pub action: Action,
}

/// The fixes for the failures in `results`, in a safe order: GitLab's side first, then the
/// image (an upgrade keeps the env), then the env (on the image the upgrade left).
pub fn plan(results: &[CheckResult], ctx: &Context) -> Vec<Fix> {
    let failed = |id: &str| {
        results
            .iter()
            .any(|r| r.id == id && r.status == Status::Fail)
    };
    let mut fixes = Vec::new();
    if failed("gitlab_rb.rendered") {
        fixes.push(Fix {
            checks: vec!["gitlab_rb.rendered"],
            command: "sudo gitlab-ctl reconfigure".into(),
            action: Action::Reconfigure,
        });
    }
    if failed("gitlab.feature_flag") {
        let gitlab = ctx.inputs.gitlab_url.as_deref().unwrap_or("<GitLab URL>");
        fixes.push(Fix {
            checks: vec!["gitlab.feature_flag"],
            command: format!(
                "curl --request POST --header \"PRIVATE-TOKEN: $GITLAB_TOKEN\" {gitlab}/api/v4/features/{CUSTOM_MODEL_FLAG} --data value=true"
            ),
            action: Action::EnableFeatureFlag,
        });
    }
    let version = ctx.gitlab_version();
    let wants_setting = version
        .as_ref()
        .is_some_and(|v| *v >= gitlab_config::setting_version());
    let gateway_url = ctx.inputs.given_gateway_url();
    if let (true, true, Some(url)) = (failed("gitlab.gateway_setting"), wants_setting, gateway_url)
    {
        let gitlab = ctx.inputs.gitlab_url.as_deref().unwrap_or("<GitLab URL>");
        fixes.push(Fix {
            checks: vec!["gitlab.gateway_setting"],
            command: format!(
                "curl --request POST --header \"Authorization: Bearer $GITLAB_TOKEN\" --header 'Content-Type: application/json' {gitlab}/api/graphql --data '{{\"query\": \"mutation {{ duoSettingsUpdate(input: {{aiGatewayUrl: \\\"{url}\\\"}}) {{ errors }} }}\"}}'"
            ),
            action: Action::SetGatewaySetting { url },
        });
    }
    let container = ctx.facts().container;
    if let (Some(c), Some(version)) = (&container, &version) {
        if failed("gateway.container.image_tag") {
            fixes.push(Fix {
                checks: vec!["gateway.container.image_tag"],
                command: format!(
                    "duo-selfhost upgrade --container-name {} --to-version {version}",
                    c.name
                ),
                action: Action::UpgradeImage {
                    container: c.name.clone(),
                    version: version.clone(),
                },
            });
        }
    }
    if let Some(c) = &container {
        let mut checks = Vec::new();
        let mut set = BTreeMap::new();
        let mut remove = Vec::new();
        if failed("gateway.container.custom_models") {
            checks.push("gateway.container.custom_models");
            set.insert(
                "AIGW_CUSTOM_MODELS__ENABLED".to_string(),
                "true".to_string(),
            );
        }
        if let Some(gitlab) = &ctx.inputs.gitlab_url {
            if failed("gateway.container.gitlab_url") {
                checks.push("gateway.container.gitlab_url");
                set.insert("AIGW_GITLAB_URL".to_string(), gitlab.clone());
            }
            if failed("gateway.container.gitlab_api_url") {
                checks.push("gateway.container.gitlab_api_url");
                set.insert(
                    "AIGW_GITLAB_API_URL".to_string(),
                    format!("{gitlab}/api/v4/"),
                );
            }
        }
        if failed("gateway.container.auth_bypass") {
            checks.push("gateway.container.auth_bypass");
            for key in [
                "AIGW_AUTH__BYPASS_EXTERNAL",
                "AIGW_AUTH__BYPASS_JWT_SIGNATURE",
            ] {
                if c.env.contains_key(key) {
                    remove.push(key.to_string());
                }
            }
        }
        if !checks.is_empty() {
            let mut parts: Vec<String> = set.iter().map(|(k, v)| format!("-e {k}={v}")).collect();
            parts.extend(remove.iter().map(|k| format!("without {k}")));
            fixes.push(Fix {
                checks,
                command: format!(
                    "recreate {} with every other setting kept and {} (rolled back if the new one is not healthy)",
                    c.name,
                    parts.join(", ")
                ),
                action: Action::GatewayEnv {
                    container: c.name.clone(),
                    set,
                    remove,
                },
            });
        }
    }
    fixes
}
