//! Points GitLab at the gateway, aware of the version: gitlab.rb env up to 17.8, the
//! application setting through GraphQL from 17.9 (plus the env key when gitlab.rb is here),
//! and the `ai_custom_model` flag on 17.x. Plain arguments only: install and doctor call it.

use std::path::Path;

use url::Url;

use crate::error::Problem;
use crate::gitlab_api::GitlabClient;
use crate::gitlab_rb::{self, EditOptions, EnvChange};
use crate::report::Report;

/// The gateway's port when the URL gives none.
pub const DEFAULT_GATEWAY_PORT: u16 = 5052;
/// The feature flag self-hosted models needed on GitLab 17.x.
pub const CUSTOM_MODEL_FLAG: &str = "ai_custom_model";
/// What to run when the flag cannot be enabled through the API.
pub const ENABLE_FLAG_COMMAND: &str =
    "sudo gitlab-rails runner \"Feature.enable(:ai_custom_model)\"";

/// From this version the gateway URL is an application setting (GraphQL duoSettingsUpdate).
pub fn setting_version() -> semver::Version {
    semver::Version::new(17, 9, 0)
}

/// What `point_gitlab_at_gateway` needs.
#[derive(Debug, Clone, Copy)]
pub struct PointRequest<'a> {
    /// The gateway URL GitLab should call, such as `http://aigw.example.com:5052`.
    pub gateway_url: &'a str,
    pub gitlab_version: &'a semver::Version,
    /// gitlab.rb on this host, when GitLab runs here.
    pub gitlab_rb: Option<&'a Path>,
    /// The API client, when a GitLab URL is known (a token makes admin calls possible).
    pub client: Option<&'a GitlabClient>,
    pub allow_localhost: bool,
    /// Run `gitlab-ctl reconfigure` after a gitlab.rb change and verify it.
    pub reconfigure: bool,
    /// Show what would change; change nothing.
    pub dry_run: bool,
}

/// One thing `point_gitlab_at_gateway` did or found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum PointStep {
    /// gitlab.rb's env was (or in a dry run, would be) changed.
    GitlabRbChanged {
        path: std::path::PathBuf,
        diff: String,
        written: bool,
        backup: Option<std::path::PathBuf>,
        reconfigured: bool,
    },
    GitlabRbUnchanged {
        path: std::path::PathBuf,
    },
    /// The Duo application setting was (or would be) set.
    SettingUpdated {
        previous: Option<String>,
        applied: bool,
    },
    SettingUnchanged,
    FeatureFlagEnabled {
        applied: bool,
    },
    FeatureFlagAlreadyOn,
}

/// What was done, and what a person still has to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PointOutcome {
    /// The validated URL as written to GitLab.
    pub gateway_url: String,
    pub steps: Vec<PointStep>,
    /// Exact commands or settings left for the administrator.
    pub manual_steps: Vec<String>,
}

fn is_loopback_or_unspecified(host: &url::Host<&str>) -> bool {
    crate::net::is_local_only_host(&host.to_string())
}

/// Checks a gateway URL: http or https, a host GitLab can reach over the network (not
/// localhost, 127.0.0.0/8 or ::1 unless `allow_localhost`), no credentials, query or fragment;
/// the port defaults to 5052. Returns the URL with its port written out.
pub fn validate_gateway_url(url: &str, allow_localhost: bool) -> anyhow::Result<Url> {
    let example = "http://aigw.example.com:5052";
    let text = url.trim();
    let mut parsed = Url::parse(text).map_err(|e| {
        Problem::user(format!("`{text}` is not a valid gateway URL: {e}"))
            .hint(format!("write it in full, such as {example}"))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Problem::user(format!(
            "the gateway URL `{text}` must start with http:// or https://"
        ))
        .hint(format!("such as {example}"))
        .into());
    }
    let Some(host) = parsed.host() else {
        return Err(
            Problem::user(format!("the gateway URL `{text}` has no host"))
                .hint(format!("such as {example}"))
                .into(),
        );
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            Problem::user("the gateway URL must not carry a user name or password")
                .hint(format!("such as {example}"))
                .into(),
        );
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Problem::user(format!(
            "the gateway URL `{text}` must not have a query or fragment"
        ))
        .hint(format!("such as {example}"))
        .into());
    }
    if is_loopback_or_unspecified(&host) && !allow_localhost {
        return Err(Problem::user(format!(
            "the gateway URL `{text}` points at this machine ({host}); GitLab must reach the gateway over the network"
        ))
        .hint("use the gateway host's name or address, such as http://aigw.example.com:5052, or pass --allow-localhost for a one-host lab")
        .into());
    }
    if explicit_port(text).is_none() {
        parsed
            .set_port(Some(DEFAULT_GATEWAY_PORT))
            .map_err(|_| anyhow::anyhow!("cannot set the port of {text}"))?;
    }
    Ok(parsed)
}

/// The port written in the URL text, even when it is the scheme's default (which `Url` drops).
fn explicit_port(text: &str) -> Option<u16> {
    let after_scheme = text.split_once("://")?.1;
    let authority = after_scheme.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let port = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split_once(']')?.1.strip_prefix(':')?
    } else {
        host_port.rsplit_once(':')?.1
    };
    port.parse().ok()
}

/// The URL as GitLab should store it: scheme, host and port always written, no trailing slash.
pub fn gateway_url_text(url: &Url) -> String {
    let port = url.port_or_known_default().unwrap_or(DEFAULT_GATEWAY_PORT);
    let host = url.host_str().unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    format!("{}://{host}:{port}{path}", url.scheme())
}

/// The gitlab.rb env for a version: up to 17.8 the seed's three keys, from 17.9 the URL only
/// (GitLab still reads it for compatibility).
pub fn gitlab_rb_changes(gateway_url: &str, version: &semver::Version) -> Vec<EnvChange> {
    let mut changes = vec![EnvChange::set("AI_GATEWAY_URL", gateway_url)];
    if *version < setting_version() {
        changes.push(EnvChange::set("GITLAB_LICENSE_MODE", "production"));
        changes.push(EnvChange::set(
            "CUSTOMER_PORTAL_URL",
            "https://customers.gitlab.com",
        ));
    }
    changes
}

/// Points GitLab at the gateway for `req.gitlab_version`. See the module docs for the rules.
pub async fn point_gitlab_at_gateway(
    req: &PointRequest<'_>,
    report: &dyn Report,
) -> anyhow::Result<PointOutcome> {
    let url = validate_gateway_url(req.gateway_url, req.allow_localhost)?;
    let gateway_url = gateway_url_text(&url);
    let version = req.gitlab_version;
    let uses_setting = *version >= setting_version();
    let mut outcome = PointOutcome {
        gateway_url: gateway_url.clone(),
        steps: Vec::new(),
        manual_steps: Vec::new(),
    };
    if *version < semver::Version::new(17, 1, 0) {
        report.warn(&format!(
            "GitLab {version} predates GitLab Duo Self-Hosted (17.1); the gateway URL is set anyway"
        ));
    }

    let gitlab_rb_here = req.gitlab_rb.filter(|p| p.exists());
    match (gitlab_rb_here, uses_setting) {
        (Some(path), _) => {
            let changes = gitlab_rb_changes(&gateway_url, version);
            let options = EditOptions {
                dry_run: req.dry_run,
                reconfigure: req.reconfigure,
            };
            let edit = gitlab_rb::edit(path, &changes, &options, report)?;
            if edit.changed {
                outcome.steps.push(PointStep::GitlabRbChanged {
                    path: edit.path.clone(),
                    diff: edit.diff.clone(),
                    written: edit.written,
                    backup: edit.backup.clone(),
                    reconfigured: edit.reconfigured,
                });
                if !edit.reconfigured {
                    outcome
                        .manual_steps
                        .push("sudo gitlab-ctl reconfigure".to_string());
                }
            } else {
                outcome
                    .steps
                    .push(PointStep::GitlabRbUnchanged { path: edit.path });
            }
        }
        (None, false) => {
            let shown = req
                .gitlab_rb
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| gitlab_rb::DEFAULT_PATH.to_string());
            return Err(Problem::user(format!(
                "GitLab {version} reads the gateway URL from gitlab.rb, and {shown} is not on this host"
            ))
            .hint(format!(
                "run this on the GitLab host (or pass --gitlab-rb PATH), or there run: sudo duo-selfhost gitlab-rb set AI_GATEWAY_URL={gateway_url} GITLAB_LICENSE_MODE=production CUSTOMER_PORTAL_URL=https://customers.gitlab.com --reconfigure"
            ))
            .into());
        }
        (None, true) => {}
    }

    if uses_setting {
        set_application_setting(req, &gateway_url, report, &mut outcome).await?;
    }
    if version.major == 17 {
        enable_custom_model_flag(req, report, &mut outcome).await;
    }
    Ok(outcome)
}

async fn set_application_setting(
    req: &PointRequest<'_>,
    gateway_url: &str,
    report: &dyn Report,
    outcome: &mut PointOutcome,
) -> anyhow::Result<()> {
    let manual = format!(
        "in GitLab, Admin > GitLab Duo > Change configuration: set Local AI Gateway URL to {gateway_url}"
    );
    let Some(client) = req.client.filter(|c| c.has_token()) else {
        report.warn(&format!(
            "GitLab {} keeps the gateway URL as a setting, and no token was given to set it",
            req.gitlab_version
        ));
        outcome.manual_steps.push(manual);
        return Ok(());
    };
    let current = client.ai_gateway_url().await?;
    let same = current
        .as_deref()
        .is_some_and(|c| c.trim_end_matches('/') == gateway_url);
    if same {
        report.info(&format!("GitLab's AI gateway URL is already {gateway_url}"));
        outcome.steps.push(PointStep::SettingUnchanged);
        return Ok(());
    }
    if req.dry_run {
        report.info(&format!(
            "would set GitLab's AI gateway URL to {gateway_url} (now: {})",
            current.as_deref().unwrap_or("not set")
        ));
        outcome.steps.push(PointStep::SettingUpdated {
            previous: current,
            applied: false,
        });
        return Ok(());
    }
    let stored = client.set_ai_gateway_url(gateway_url).await?;
    if stored.trim_end_matches('/') != gateway_url {
        return Err(Problem::user(format!(
            "GitLab stored the AI gateway URL as `{stored}`, not `{gateway_url}`"
        ))
        .hint(manual)
        .into());
    }
    report.info(&format!("set GitLab's AI gateway URL to {gateway_url}"));
    outcome.steps.push(PointStep::SettingUpdated {
        previous: current,
        applied: true,
    });
    Ok(())
}

/// Enables `ai_custom_model` through the API when the token allows; otherwise records the
/// exact command. Never fails the whole operation: the flag is one step among several.
async fn enable_custom_model_flag(
    req: &PointRequest<'_>,
    report: &dyn Report,
    outcome: &mut PointOutcome,
) {
    let Some(client) = req.client.filter(|c| c.has_token()) else {
        outcome.manual_steps.push(ENABLE_FLAG_COMMAND.to_string());
        return;
    };
    match client.feature_enabled(CUSTOM_MODEL_FLAG).await {
        Ok(Some(true)) => {
            outcome.steps.push(PointStep::FeatureFlagAlreadyOn);
            return;
        }
        Ok(_) => {}
        Err(err) => {
            report.warn(&format!(
                "cannot read feature flags ({err}); enable {CUSTOM_MODEL_FLAG} by hand"
            ));
            outcome.manual_steps.push(ENABLE_FLAG_COMMAND.to_string());
            return;
        }
    }
    if req.dry_run {
        outcome
            .steps
            .push(PointStep::FeatureFlagEnabled { applied: false });
        return;
    }
    match client.enable_feature(CUSTOM_MODEL_FLAG).await {
        Ok(feature) if feature.enabled() => {
            report.info(&format!("enabled the {CUSTOM_MODEL_FLAG} feature flag"));
            outcome
                .steps
                .push(PointStep::FeatureFlagEnabled { applied: true });
        }
        Ok(_) | Err(_) => {
            report.warn(&format!(
                "could not enable the {CUSTOM_MODEL_FLAG} feature flag through the API"
            ));
            outcome.manual_steps.push(ENABLE_FLAG_COMMAND.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> String {
        gateway_url_text(&validate_gateway_url(url, false).unwrap())
    }

    #[test]
    fn gateway_urls_get_their_port_and_lose_trailing_slashes() {
        assert_eq!(
            ok("http://aigw.example.com"),
            "http://aigw.example.com:5052"
        );
        assert_eq!(
            ok("http://aigw.example.com/"),
            "http://aigw.example.com:5052"
        );
        assert_eq!(
            ok("https://aigw.example.com:443"),
            "https://aigw.example.com:443"
        );
        assert_eq!(ok("http://10.0.0.5:8080"), "http://10.0.0.5:8080");
        assert_eq!(ok("http://[fd00::5]"), "http://[fd00::5]:5052");
    }

    #[test]
    fn localhost_needs_allow_localhost() {
        for url in [
            "http://localhost:5052",
            "http://127.0.0.1:5052",
            "http://127.1.2.3",
            "http://[::1]:5052",
            "http://LOCALHOST.",
            "http://0.0.0.0:5052",
        ] {
            let err = validate_gateway_url(url, false).unwrap_err();
            assert!(
                format!("{err}").contains("over the network"),
                "{url}: {err}"
            );
            assert!(validate_gateway_url(url, true).is_ok(), "{url}");
        }
    }

    #[test]
    fn other_schemes_and_junk_are_refused() {
        for url in [
            "ftp://aigw:5052",
            "aigw.example.com:5052",
            "http://u:p@aigw:5052",
            "http://aigw:5052/?x=1",
            "",
        ] {
            assert!(validate_gateway_url(url, false).is_err(), "{url}");
        }
    }

    #[test]
    fn env_keys_depend_on_the_version() {
        let old = gitlab_rb_changes("http://g:5052", &semver::Version::new(17, 8, 2));
        assert_eq!(old.len(), 3);
        let new = gitlab_rb_changes("http://g:5052", &semver::Version::new(17, 9, 0));
        assert_eq!(new, vec![EnvChange::set("AI_GATEWAY_URL", "http://g:5052")]);
    }
}
