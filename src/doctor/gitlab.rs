//! `gitlab_rb.*` and `gitlab.*`: GitLab's side of the chain. gitlab.rb on this host (present,
//! the gateway URL, whether reconfigure rendered it), then the API: readiness, version and
//! edition, the gateway URL setting (17.9+), licence, the 17.x feature flag, proxies.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{http, Budget, CheckFuture, Context, Outcome};
use crate::error::Problem;
use crate::gitlab_api::{self, GitlabClient};
use crate::gitlab_config::{self, CUSTOM_MODEL_FLAG, ENABLE_FLAG_COMMAND};
use crate::gitlab_rb;

/// The message and hint of an error, from its `Problem` when it has one.
fn explain(err: &anyhow::Error, fallback_hint: &str) -> (String, String) {
    let hint = err
        .chain()
        .find_map(|c| c.downcast_ref::<Problem>())
        .and_then(|p| p.hint.clone())
        .unwrap_or_else(|| fallback_hint.to_string());
    (err.to_string(), hint)
}

fn gitlab_rb_path(ctx: &Context) -> PathBuf {
    ctx.inputs
        .gitlab_rb
        .clone()
        .unwrap_or_else(|| PathBuf::from(gitlab_rb::DEFAULT_PATH))
}

pub fn rb_present(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let path = gitlab_rb_path(&ctx);
        if !ctx.inputs.gitlab_rb_named && !path.exists() {
            return Outcome::skip(format!(
                "no {} here: GitLab runs on another host (pass --gitlab-rb PATH to check a copy)",
                path.display()
            ));
        }
        let text = match gitlab_rb::read_file(&path) {
            Ok(text) => text,
            Err(e) => {
                let (message, hint) = explain(&e, "pass --gitlab-rb with the path of gitlab.rb");
                // The reader's hint names gitlab-rb's own flag; doctor's is --gitlab-rb.
                return Outcome::fail(message, hint.replace("--file", "--gitlab-rb"));
            }
        };
        match gitlab_rb::effective_env(&text) {
            Ok(env) => {
                let map: BTreeMap<String, String> = env.0.into_iter().collect();
                let count = map.len();
                ctx.update_facts(|f| f.gitlab_rb_env = Some(map));
                Outcome::ok(format!(
                    "{} is readable; gitlab_rails['env'] sets {count} variable{}",
                    path.display(),
                    if count == 1 { "" } else { "s" }
                ))
            }
            Err(e) => {
                let (message, hint) = explain(&gitlab_rb::problem_for(&path, e), "");
                Outcome::fail(message, hint)
            }
        }
    })
}

pub fn rb_gateway_url(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let env = ctx.facts().gitlab_rb_env.unwrap_or_default();
        let version = ctx.gitlab_version();
        let uses_setting = version
            .as_ref()
            .is_some_and(|v| *v >= gitlab_config::setting_version());
        let example = ctx
            .inputs
            .given_gateway_url()
            .unwrap_or_else(|| "http://<gateway host>:5052".into());
        let set_hint = format!(
            "duo-selfhost gitlab-rb set AI_GATEWAY_URL={example} --reconfigure (or add it to gitlab_rails['env'] and run sudo gitlab-ctl reconfigure)"
        );
        let Some(value) = env.get("AI_GATEWAY_URL").filter(|v| !v.trim().is_empty()) else {
            return match version {
                Some(v) if uses_setting => Outcome::skip(format!(
                    "AI_GATEWAY_URL is not in gitlab.rb; GitLab {v} reads the Local AI Gateway URL setting instead (gitlab.gateway_setting)"
                )),
                Some(v) => Outcome::fail(
                    format!("AI_GATEWAY_URL is not set in gitlab_rails['env']: GitLab {v} does not know where the gateway is"),
                    set_hint,
                ),
                None => Outcome::fail(
                    "AI_GATEWAY_URL is not set in gitlab_rails['env'] (GitLab up to 17.8 needs it; pass --gitlab-token so doctor can tell the version)",
                    set_hint,
                ),
            };
        };
        match gitlab_config::validate_gateway_url(value, false) {
            Ok(_) => Outcome::ok(format!("AI_GATEWAY_URL={value}")),
            Err(e) => {
                let (message, hint) = explain(&e, &set_hint);
                Outcome::fail(
                    format!("AI_GATEWAY_URL in gitlab.rb: {message}"),
                    format!("{hint}; then: {set_hint}"),
                )
            }
        }
    })
}

pub fn rb_rendered(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let env = ctx.facts().gitlab_rb_env.unwrap_or_default();
        if env.is_empty() {
            return Outcome::skip("gitlab.rb sets no gitlab_rails['env'] to compare");
        }
        let dir = ctx.inputs.envdir.clone();
        if !dir.is_dir() {
            return Outcome::fail(
                format!(
                    "{} does not exist: reconfigure has never rendered gitlab.rb's env on this host",
                    dir.display()
                ),
                "sudo gitlab-ctl reconfigure",
            );
        }
        let mut stale = Vec::new();
        for (key, wanted) in &env {
            let rendered = std::fs::read_to_string(dir.join(key)).ok();
            let rendered = rendered
                .as_deref()
                .map(|r| r.strip_suffix('\n').unwrap_or(r));
            match rendered {
                Some(r) if r == wanted => {}
                Some(_) => stale.push(format!("{key} differs")),
                None => stale.push(format!("{key} is missing")),
            }
        }
        if stale.is_empty() {
            Outcome::ok(format!(
                "{} holds the {} value{} gitlab.rb sets",
                dir.display(),
                env.len(),
                if env.len() == 1 { "" } else { "s" }
            ))
        } else {
            Outcome::fail(
                format!(
                    "reconfigure has not run since gitlab.rb changed: in {}, {}",
                    dir.display(),
                    stale.join(", ")
                ),
                "sudo gitlab-ctl reconfigure",
            )
        }
    })
}

const NO_GITLAB: &str = "no GitLab URL: pass --gitlab-url URL (or run on the GitLab host, where gitlab.rb's external_url tells it)";
pub(super) const NO_TOKEN_HINT: &str =
    "pass an administrator's personal access token (api scope) with --gitlab-token or GITLAB_TOKEN";

pub(super) fn client(ctx: &Context, budget: Budget) -> Result<GitlabClient, Outcome> {
    let Some(url) = ctx.inputs.gitlab_url.clone() else {
        return Err(Outcome::skip(NO_GITLAB));
    };
    let base = gitlab_api::parse_base_url(&url).map_err(|e| {
        let (message, hint) = explain(&e, "give GitLab's external URL with --gitlab-url");
        Outcome::fail(message, hint)
    })?;
    let http = ctx.http_client(false)?;
    Ok(GitlabClient::with_http(
        base,
        ctx.inputs.gitlab_token.clone(),
        http,
        budget.request_timeout(),
    ))
}

/// An API call that failed: a refusal of this token's rights (401/403) leaves the check without
/// its input (skip); anything else is GitLab's failure.
pub(super) fn api_failure(err: &anyhow::Error, what: &str, fallback_hint: &str) -> Outcome {
    let text = err.to_string();
    if text.contains("401 Unauthorized")
        || text.contains("403 Forbidden")
        || text.contains("needs a token")
    {
        return Outcome::skip(format!("the token may not read {what}: {NO_TOKEN_HINT}"));
    }
    let (message, hint) = explain(err, fallback_hint);
    Outcome::fail(message, hint)
}

pub fn readiness(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let gitlab = match client(&ctx, budget) {
            Ok(client) => client,
            Err(outcome) => return outcome,
        };
        match gitlab.readiness().await {
            Ok(r) if r.ready => {
                Outcome::ok(format!("{} answers /-/readiness: ready", gitlab.base_url()))
            }
            Ok(r) => Outcome::fail(
                format!(
                    "GitLab is up but not ready ({}): {}",
                    r.status,
                    http::excerpt(&r.body.map(|b| b.to_string()).unwrap_or_default(), &[])
                ),
                "sudo gitlab-ctl status; the failing part shows in /-/readiness?all=1",
            ),
            Err(e) => {
                let (message, hint) = explain(
                    &e,
                    "check the GitLab URL and that GitLab runs: sudo gitlab-ctl status",
                );
                Outcome::fail(message, hint)
            }
        }
    })
}

pub fn version(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let gitlab = match client(&ctx, budget) {
            Ok(client) => client,
            Err(outcome) => return outcome,
        };
        if !gitlab.has_token() {
            return Outcome::skip(format!(
                "no GitLab token to read /api/v4/metadata: {NO_TOKEN_HINT}"
            ));
        }
        let metadata = match gitlab.metadata().await {
            Ok(m) => m,
            Err(e) => {
                let (message, hint) = explain(&e, NO_TOKEN_HINT);
                return Outcome::fail(message, hint);
            }
        };
        let Some(version) = metadata.semver() else {
            return Outcome::fail(
                format!(
                    "GitLab reports a version duo-selfhost cannot read: `{}`",
                    metadata.version
                ),
                "check that the URL is GitLab's (curl <gitlab>/api/v4/metadata with the token)",
            );
        };
        ctx.update_facts(|f| f.gitlab_version = Some(version.clone()));
        if !metadata.is_enterprise() {
            return Outcome::fail(
                format!("GitLab {} is the Community Edition: self-hosted Duo needs the Enterprise Edition", metadata.version),
                "install the gitlab-ee package of the same version over gitlab-ce (GitLab's CE-to-EE upgrade), then add a licence",
            );
        }
        if version < semver::Version::new(17, 1, 0) {
            return Outcome::fail(
                format!("GitLab {} is older than 17.1, the first with self-hosted models", metadata.version),
                "upgrade GitLab to 17.1 or later (the latest minor is best: the gateway image follows it)",
            );
        }
        Outcome::ok(format!("GitLab {} (Enterprise Edition)", metadata.version))
    })
}

pub fn gateway_setting(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(version) = ctx.facts().gitlab_version else {
            return Outcome::skip("GitLab's version is unknown");
        };
        if version < gitlab_config::setting_version() {
            return Outcome::skip(format!(
                "GitLab {version} keeps the gateway URL in gitlab.rb (AI_GATEWAY_URL); the setting exists from 17.9"
            ));
        }
        let gitlab = match client(&ctx, budget) {
            Ok(client) => client,
            Err(outcome) => return outcome,
        };
        let expected = ctx.inputs.given_gateway_url();
        let set_hint = format!(
            "Admin > GitLab Duo > Change configuration > Local AI Gateway URL: {} (duo-selfhost install sets it)",
            expected.as_deref().unwrap_or("http://<gateway host>:5052")
        );
        match gitlab.ai_gateway_url().await {
            Ok(None) => Outcome::fail(
                "the Local AI Gateway URL setting is empty: GitLab does not know where the gateway is (upgrades to 19.2 cleared it)",
                set_hint,
            ),
            Ok(Some(value)) => match expected {
                Some(expected) if !same_url(&value, &expected) => Outcome::fail(
                    format!("the Local AI Gateway URL setting is {value}, but the gateway is at {expected}"),
                    set_hint,
                ),
                _ => Outcome::ok(format!("Local AI Gateway URL setting: {value}")),
            },
            Err(e) => api_failure(&e, "the Duo settings", &set_hint),
        }
    })
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim()
        .trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim().trim_end_matches('/'))
}

pub fn license(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let gitlab = match client(&ctx, budget) {
            Ok(client) => client,
            Err(outcome) => return outcome,
        };
        match gitlab.license().await {
            Ok(Some(l)) if l.expired == Some(true) => Outcome::fail(
                format!(
                    "the {} licence expired{}",
                    l.plan.as_deref().unwrap_or("GitLab"),
                    l.expires_at.map(|d| format!(" on {d}")).unwrap_or_default()
                ),
                "renew the subscription and upload the new licence (Admin > Subscription)",
            ),
            Ok(Some(l)) => Outcome::ok(format!(
                "{} licence{}; Duo seats are assigned in Admin > GitLab Duo",
                l.plan.as_deref().unwrap_or("a"),
                l.expires_at
                    .map(|d| format!(" valid until {d}"))
                    .unwrap_or_default()
            )),
            Ok(None) => Outcome::fail(
                "no licence is installed: self-hosted Duo needs Premium or Ultimate with GitLab Duo Enterprise",
                "add the licence in Admin > Subscription (or gitlab-rails runner with License.create)",
            ),
            Err(e) => api_failure(&e, "the licence (administrators only)", NO_TOKEN_HINT),
        }
    })
}

pub fn feature_flag(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(version) = ctx.facts().gitlab_version else {
            return Outcome::skip("GitLab's version is unknown");
        };
        if version.major != 17 {
            return Outcome::skip(format!(
                "the {CUSTOM_MODEL_FLAG} flag matters on GitLab 17.x only (this is {version})"
            ));
        }
        let gitlab = match client(&ctx, budget) {
            Ok(client) => client,
            Err(outcome) => return outcome,
        };
        match gitlab.feature_enabled(CUSTOM_MODEL_FLAG).await {
            Ok(Some(true)) => Outcome::ok(format!("feature flag {CUSTOM_MODEL_FLAG} is on")),
            Ok(state) => Outcome::fail(
                format!(
                    "feature flag {CUSTOM_MODEL_FLAG} is {}: GitLab {version} hides self-hosted models",
                    if state.is_some() { "off" } else { "not set" }
                ),
                format!("{ENABLE_FLAG_COMMAND} (duo-selfhost install enables it through the API)"),
            ),
            Err(e) => api_failure(&e, "feature flags (administrators only)", NO_TOKEN_HINT),
        }
    })
}

/// `http_proxy` and friends in GitLab's env (gitlab.rb) and in this process.
pub fn proxy(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let rb = ctx.facts().gitlab_rb_env.unwrap_or_default();
        let lookup = |name: &str| -> Option<(String, &'static str)> {
            for key in [name.to_ascii_lowercase(), name.to_ascii_uppercase()] {
                if let Some(v) = rb.get(&key).filter(|v| !v.is_empty()) {
                    return Some((v.clone(), "gitlab.rb"));
                }
            }
            for key in [name.to_ascii_lowercase(), name.to_ascii_uppercase()] {
                if let Ok(v) = std::env::var(&key) {
                    if !v.is_empty() {
                        return Some((v, "this shell"));
                    }
                }
            }
            None
        };
        let gateway_scheme_proxy = match ctx.inputs.gateway_url.as_deref() {
            Some(url) if url.starts_with("https://") => lookup("https_proxy"),
            _ => lookup("http_proxy"),
        };
        let Some((proxy, source)) = gateway_scheme_proxy else {
            return Outcome::ok("no proxy variables in gitlab_rails['env'] or this shell");
        };
        let proxy = strip_credentials(&proxy);
        let Some(gateway) = ctx.inputs.gateway_url.as_deref() else {
            return Outcome::ok(format!(
                "proxy {proxy} (from {source}); no gateway URL to test against it"
            ));
        };
        let host = http::host_of(gateway);
        let no_proxy = lookup("no_proxy").map(|(v, _)| v).unwrap_or_default();
        if bypasses_proxy(&no_proxy, &host) {
            Outcome::ok(format!(
                "proxy {proxy} (from {source}); the gateway {host} is in no_proxy"
            ))
        } else {
            Outcome::warn(
                format!("GitLab's requests to the gateway {host} go through the proxy {proxy} (from {source}), which may block them or break TLS"),
                format!("add {host} to no_proxy in gitlab_rails['env'] and gitlab_workhorse['env'], then sudo gitlab-ctl reconfigure"),
            )
        }
    })
}

/// A URL without its user and password (proxies may carry them).
pub fn strip_credentials(proxy: &str) -> String {
    match url::Url::parse(proxy) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => proxy.to_string(),
    }
}

/// Whether `host` matches a `no_proxy` list (exact names, `.suffix`/`suffix` domains, `*`).
pub fn bypasses_proxy(no_proxy: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    no_proxy.split(',').map(str::trim).any(|entry| {
        let entry = entry.to_ascii_lowercase();
        let entry = entry.split(':').next().unwrap_or_default();
        if entry.is_empty() {
            return false;
        }
        entry == "*"
            || host == entry.trim_start_matches('.')
            || host.ends_with(&format!(".{}", entry.trim_start_matches('.')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matching() {
        assert!(bypasses_proxy(
            "localhost, .example.com",
            "aigw.example.com"
        ));
        assert!(bypasses_proxy("aigw.example.com:5052", "aigw.example.com"));
        assert!(bypasses_proxy("*", "anything"));
        assert!(!bypasses_proxy("example.org", "aigw.example.com"));
        assert!(!bypasses_proxy("", "aigw.example.com"));
    }
}
