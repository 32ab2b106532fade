//! GitLab's side of the model, as its admin pages hold it: `gitlab.self_hosted_models` (each
//! registered model's identifier is one its endpoint serves), `gitlab.feature_settings` (which
//! features are self-hosted, on which model), and `chain.connection_check` (GitLab's own
//! "Test connection" for each registered model). Read through GraphQL with an admin token.

use std::sync::Arc;

use super::gitlab::{api_failure, client, NO_TOKEN_HINT};
use super::http;
use super::{Budget, CheckFuture, Context, Outcome};
use crate::gitlab_api::{GitlabClient, ModelInput, RegisteredModel};
use crate::registration::{self, STABLE_FEATURES};

const REGISTER_HINT: &str = "duo-selfhost models register NAME --endpoint URL --gitlab-token TOKEN (NAME from duo-selfhost models list)";

/// The admin client, or the outcome that explains why there is none.
fn admin_client(ctx: &Context, budget: Budget) -> Result<GitlabClient, Outcome> {
    let gitlab = client(ctx, budget)?;
    if !gitlab.has_token() {
        return Err(Outcome::skip(format!(
            "no GitLab token to read GitLab's self-hosted models: {NO_TOKEN_HINT}"
        )));
    }
    Ok(gitlab)
}

async fn registered(ctx: &Context, budget: Budget) -> Result<Vec<RegisteredModel>, Outcome> {
    let gitlab = admin_client(ctx, budget)?;
    gitlab
        .registered_models()
        .await
        .map_err(|e| api_failure(&e, "the self-hosted models", REGISTER_HINT))
}

/// The served name in an OpenAI-compatible identifier; `None` for Bedrock and the like, whose
/// models no `/models` lists.
fn served_name(identifier: &str) -> Option<&str> {
    match identifier.split_once('/') {
        Some(("custom_openai", name)) => Some(name),
        Some(_) => None,
        None => Some(identifier),
    }
}

/// What `GET <endpoint>/models` lists, as seen from here.
async fn served_ids(
    ctx: &Context,
    endpoint: &str,
    with_key: bool,
    budget: Budget,
) -> Result<Vec<String>, String> {
    let client = ctx.http_client(false).map_err(|o| o.message)?;
    let url = format!("{}/models", endpoint.trim_end_matches('/'));
    let mut request = client.get(&url);
    if let Some(key) = ctx.inputs.model_api_key.as_ref().filter(|_| with_key) {
        request = request.bearer_auth(key.expose());
    }
    let answer = http::send(request, budget.request_timeout())
        .await
        .map_err(|f| format!("GET {url} {}", f.describe()))?;
    if !(200..300).contains(&answer.status) {
        return Err(format!("GET {url} answered {}", answer.status));
    }
    Ok(answer
        .json()
        .and_then(|doc| doc.get("data").and_then(|d| d.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.get("id").and_then(|i| i.as_str()).map(str::to_string))
        .collect())
}

pub fn self_hosted_models(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let models = match registered(&ctx, budget).await {
            Ok(models) => models,
            Err(outcome) => return outcome,
        };
        if models.is_empty() {
            return Outcome::fail(
                "GitLab has no self-hosted model registered: no feature can use a model on your hardware",
                REGISTER_HINT,
            );
        }
        let mut lines = Vec::new();
        let mut unreachable = Vec::new();
        for model in &models {
            let identifier = model.identifier.clone().unwrap_or_default();
            let Some(served) = served_name(&identifier) else {
                lines.push(format!("{} ({}, {identifier})", model.name, model.model));
                continue;
            };
            match served_ids(&ctx, &model.endpoint, model.has_api_token, budget).await {
                Ok(ids) if ids.iter().any(|id| id == served) => lines.push(format!(
                    "{} ({}, {identifier} served at {})",
                    model.name, model.model, model.endpoint
                )),
                Ok(ids) => {
                    let fix = ids.first().map(String::as_str).unwrap_or("NAME");
                    return Outcome::fail(
                        format!(
                            "GitLab's self-hosted model {} has the identifier {identifier}, but {} serves {}",
                            model.name,
                            model.endpoint,
                            if ids.is_empty() { "no model".to_string() } else { ids.join(", ") }
                        ),
                        format!(
                            "register it under the name the endpoint serves: duo-selfhost models register {} --endpoint {} --served-model-name {fix}",
                            model.name, model.endpoint
                        ),
                    );
                }
                Err(why) => unreachable.push(format!("{}: {why}", model.name)),
            }
        }
        if !unreachable.is_empty() {
            return Outcome::warn(
                format!(
                    "registered: {}; could not ask from here: {}",
                    if lines.is_empty() { "-".to_string() } else { lines.join("; ") },
                    unreachable.join("; ")
                ),
                "the endpoint may be reachable from the gateway only: chain.connection_check and chain.gateway_to_model test it from there",
            );
        }
        Outcome::ok(format!("registered: {}", lines.join("; ")))
    })
}

pub fn feature_settings(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let gitlab = match admin_client(&ctx, budget) {
            Ok(gitlab) => gitlab,
            Err(outcome) => return outcome,
        };
        let settings = match gitlab.feature_settings().await {
            Ok(settings) => settings,
            Err(e) => return api_failure(&e, "the feature settings", REGISTER_HINT),
        };
        let mut self_hosted = Vec::new();
        let mut elsewhere = Vec::new();
        for setting in &settings {
            let key = setting.feature.to_ascii_uppercase();
            let words = registration::feature_words(&key);
            match (
                setting.provider.to_ascii_lowercase().as_str(),
                &setting.self_hosted_model,
            ) {
                ("self_hosted", Some(model)) => {
                    self_hosted.push(format!("{words} on {}", model.name))
                }
                ("disabled", _) => {}
                (provider, _) if STABLE_FEATURES.contains(&key.as_str()) => elsewhere.push((
                    setting.feature.to_ascii_lowercase(),
                    format!("{words} ({provider})"),
                )),
                _ => {}
            }
        }
        if self_hosted.is_empty() {
            return Outcome::fail(
                "no GitLab Duo feature uses a self-hosted model: every feature is vendored, unassigned or disabled",
                REGISTER_HINT,
            );
        }
        if !elsewhere.is_empty() {
            let keys: Vec<&str> = elsewhere.iter().map(|(k, _)| k.as_str()).collect();
            let names: Vec<&str> = elsewhere.iter().map(|(_, n)| n.as_str()).collect();
            return Outcome::warn(
                format!(
                    "self-hosted: {}; not self-hosted: {}",
                    self_hosted.join(", "),
                    names.join(", ")
                ),
                format!(
                    "point them at a model: duo-selfhost models register NAME --endpoint URL --features {} (or disable them in Admin > GitLab Duo)",
                    keys.join(",")
                ),
            );
        }
        Outcome::ok(format!("self-hosted: {}", self_hosted.join(", ")))
    })
}

pub fn connection_check(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let gitlab = match admin_client(&ctx, budget) {
            Ok(gitlab) => gitlab,
            Err(outcome) => return outcome,
        };
        let models = match gitlab.registered_models().await {
            Ok(models) => models,
            Err(e) => return api_failure(&e, "the self-hosted models", REGISTER_HINT),
        };
        if models.is_empty() {
            return Outcome::skip(
                "GitLab has no self-hosted model to check (gitlab.self_hosted_models)",
            );
        }
        let mut passed = Vec::new();
        for model in &models {
            // GitLab never returns the stored key; the check is sent doctor's, if it has one.
            let api_key = ctx
                .inputs
                .model_api_key
                .clone()
                .filter(|_| model.has_api_token);
            let input = ModelInput {
                name: model.name.clone(),
                family: model.model.clone(),
                endpoint: model.endpoint.clone(),
                identifier: model.identifier.clone(),
                api_key,
            };
            let check = match gitlab.connection_check(&input).await {
                Ok(check) => check,
                Err(e) => return api_failure(&e, "the connection check", REGISTER_HINT),
            };
            let text = crate::secret::scrub(&check.text(), &ctx.inputs.secrets());
            if !check.success {
                let key_note = if model.has_api_token && ctx.inputs.model_api_key.is_none() {
                    " (the model has an API key, which GitLab does not return: pass it with --model-api-key)"
                } else {
                    ""
                };
                return Outcome::fail(
                    format!("GitLab's connection check for {} failed: {text}{key_note}", model.name),
                    format!(
                        "GitLab's gateway must reach {} and find the model there: chain.gateway_to_model shows the hop; fix the endpoint or identifier with duo-selfhost models register {} --endpoint URL",
                        model.endpoint, model.name
                    ),
                );
            }
            passed.push(format!("{}: {text}", model.name));
        }
        Outcome::ok(format!(
            "GitLab's connection check passed: {}",
            passed.join("; ")
        ))
    })
}
