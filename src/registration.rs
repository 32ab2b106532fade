//! Registering a self-hosted model in GitLab and pointing features at it, as the admin pages
//! would (reference sections 3.2-3.3): which family and identifier to send for a catalog model
//! on a given GitLab version, which features the model is fit for, and the steps (save, GitLab's
//! connection check, feature mapping) over `gitlab_api`. Commands print; this module decides.

use serde::Serialize;

use crate::catalog::{self, DuoUse, Model, Platform};
use crate::error::Problem;
use crate::gitlab_api::{FeatureSetting, GitlabClient, ModelInput, RegisteredModel, FAMILY_ENUM};
use crate::secret::Secret;

/// Features GitLab calls generally available for self-hosted models.
pub const STABLE_FEATURES: &[&str] = &[
    "CODE_COMPLETIONS",
    "CODE_GENERATIONS",
    "DUO_CHAT",
    "DUO_CHAT_EXPLAIN_CODE",
    "DUO_CHAT_WRITE_TESTS",
    "DUO_CHAT_REFACTOR_CODE",
    "DUO_CHAT_FIX_CODE",
];

/// Duo Chat and its slash commands: what a chat model serves.
const CHAT_FEATURES: &[&str] = &[
    "DUO_CHAT",
    "DUO_CHAT_EXPLAIN_CODE",
    "DUO_CHAT_WRITE_TESTS",
    "DUO_CHAT_REFACTOR_CODE",
    "DUO_CHAT_FIX_CODE",
];

/// Beta features: assigning them accepts GitLab's testing terms for the instance.
pub const BETA_FEATURES: &[&str] = &[
    "DUO_CHAT_TROUBLESHOOT_JOB",
    "GENERATE_COMMIT_MESSAGE",
    "SUMMARIZE_NEW_MERGE_REQUEST",
    "DUO_CHAT_EXPLAIN_VULNERABILITY",
    "RESOLVE_VULNERABILITY",
    "SUMMARIZE_REVIEW",
    "GLAB_ASK_GIT_COMMAND",
    "DUO_CHAT_SUMMARIZE_COMMENTS",
];

/// What a person reads about beta features before assigning them.
pub const TESTING_TERMS: &str = "beta features are covered by the GitLab Testing Agreement (https://handbook.gitlab.com/handbook/legal/testing-agreement/): assigning them accepts it for this instance, as the admin page's \"Use beta self-hosted models features\" box does";

/// The features the catalog says a model is fit for, as GitLab's enum names them.
pub fn features_fit_for(model: &Model) -> Vec<&'static str> {
    let mut features = Vec::new();
    for duo_use in model.uses() {
        match duo_use {
            DuoUse::CodeCompletion => features.push("CODE_COMPLETIONS"),
            DuoUse::CodeGeneration => features.push("CODE_GENERATIONS"),
            DuoUse::Chat => features.extend_from_slice(CHAT_FEATURES),
        }
    }
    features
}

/// A feature as given on the command line (`code_completions`, `Duo-Chat`) in the enum's
/// spelling.
pub fn feature_key(text: &str) -> String {
    text.trim().replace('-', "_").to_ascii_uppercase()
}

/// A feature's human name: `CODE_COMPLETIONS` -> `code completions`.
pub fn feature_words(key: &str) -> String {
    key.to_ascii_lowercase().replace('_', " ")
}

/// GitLab 18.3 brought the `general` family ("bring your own compatible model").
fn has_general_family(version: &semver::Version) -> bool {
    (version.major, version.minor) >= (18, 3)
}

/// The family to send: `--family` when given, else the catalog's, else `GENERAL` where this
/// GitLab version has it. Whatever it is must be among the values the schema accepts
/// (`accepted`), which changed between 17.x and 18.x; otherwise the error lists them.
pub fn choose_family(
    requested: Option<&str>,
    model: Option<&Model>,
    display_name: &str,
    version: &semver::Version,
    accepted: &[String],
) -> anyhow::Result<String> {
    let known = accepted.join(", ");
    let chosen = match (requested, model.and_then(catalog::gitlab_family)) {
        (Some(family), _) => family.trim().replace([':', '-'], "_").to_ascii_uppercase(),
        (None, Some(family)) => family.to_string(),
        (None, None) if has_general_family(version) => "GENERAL".to_string(),
        (None, None) => {
            return Err(Problem::user(format!(
                "GitLab has no family for {display_name}, and GitLab {version} has no `general` family for other models (18.3 brought it)"
            ))
            .hint(format!(
                "choose the family the model's prompts suit with --family ({known}), or register a model from the catalog (duo-selfhost models list)"
            ))
            .into())
        }
    };
    if accepted.contains(&chosen) {
        return Ok(chosen);
    }
    Err(Problem::user(format!(
        "GitLab {version} does not know the model family {chosen} (for {display_name}); it knows: {known}"
    ))
    .hint(format!(
        "pass --family with one of: {known} (or upgrade GitLab, whose newer versions know more families)"
    ))
    .into())
}

/// The model identifier GitLab sends the gateway: `bedrock/<id>` for a model only Bedrock
/// serves, `custom_openai/<served name>` for any OpenAI-compatible server.
pub fn identifier_for(model: Option<&Model>, served_name: &str) -> String {
    let bedrock_only = model.is_some_and(|m| m.platforms == [Platform::Bedrock]);
    if bedrock_only {
        format!("bedrock/{served_name}")
    } else {
        format!("custom_openai/{served_name}")
    }
}

/// What register sends for one model.
#[derive(Debug, Clone)]
pub struct Request {
    pub input: ModelInput,
    /// `None`: the features the catalog says the model is fit for.
    pub features: Option<Vec<String>>,
    /// The catalog's choice, used when `features` is `None`.
    pub fit: Vec<&'static str>,
    pub accept_beta: bool,
}

impl Request {
    pub fn api_key(&self) -> Option<&Secret> {
        self.input.api_key.as_ref()
    }
}

/// What saving did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Saved {
    Created,
    Updated,
    /// Already registered as asked (and no API key to set).
    Unchanged,
}

/// The family values this GitLab accepts, asked of its schema.
pub async fn accepted_families(client: &GitlabClient) -> anyhow::Result<Vec<String>> {
    client.enum_values(FAMILY_ENUM).await?.ok_or_else(|| {
        Problem::user(format!(
            "GitLab at {} has no self-hosted models API (its schema lacks {FAMILY_ENUM}; it arrived in 17.1)",
            client.base_url()
        ))
        .hint("upgrade GitLab to 17.1 or later (Enterprise Edition)")
        .into()
    })
}

/// Creates the model, or updates the one of the same name: a rerun never duplicates it.
pub async fn save(
    client: &GitlabClient,
    input: &ModelInput,
) -> anyhow::Result<(RegisteredModel, Saved)> {
    let existing = client
        .registered_models()
        .await?
        .into_iter()
        .find(|m| m.name == input.name);
    match existing {
        None => Ok((client.save_model(None, input).await?, Saved::Created)),
        Some(old)
            if input.api_key.is_none()
                && old.model == input.family
                && old.endpoint == input.endpoint
                && old.identifier == input.identifier =>
        {
            Ok((old, Saved::Unchanged))
        }
        Some(old) => Ok((
            client.save_model(Some(&old.id), input).await?,
            Saved::Updated,
        )),
    }
}

/// Which features to point at the model, and what was left alone and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeaturePlan {
    pub assign: Vec<String>,
    /// Fit for the model but self-hosted on another one already: (feature, that model).
    pub kept_elsewhere: Vec<(String, String)>,
    /// Fit for the model but not for its family, as GitLab says.
    pub incompatible: Vec<String>,
    /// Whether a beta feature is among `assign` (the testing terms apply).
    pub beta: bool,
}

fn is_beta(key: &str, setting: Option<&FeatureSetting>) -> bool {
    match setting.and_then(|s| s.release_state.as_deref()) {
        Some(state) => !state.eq_ignore_ascii_case("GA"),
        None => BETA_FEATURES.contains(&key),
    }
}

fn compatible(setting: Option<&FeatureSetting>, family: &str) -> bool {
    setting
        .and_then(|s| s.compatible_llms.as_ref())
        .is_none_or(|llms| llms.iter().any(|l| l.eq_ignore_ascii_case(family)))
}

/// Decides the features: the requested ones (each known, compatible with the family, beta
/// only with `accept_beta`), else the fit ones that no other model serves yet. `settings`
/// is GitLab's current feature table.
pub fn plan_features(
    request: &Request,
    model_name: &str,
    settings: &[FeatureSetting],
) -> anyhow::Result<FeaturePlan> {
    let family = request.input.family.as_str();
    let setting = |key: &str| {
        settings
            .iter()
            .find(|s| s.feature.eq_ignore_ascii_case(key))
    };
    let mut plan = FeaturePlan::default();
    match &request.features {
        Some(requested) => {
            if requested.is_empty() {
                return Err(Problem::user("--features names no feature")
                    .hint(format!(
                        "name one or more, such as --features {}",
                        STABLE_FEATURES[..2].join(",").to_ascii_lowercase()
                    ))
                    .into());
            }
            for key in requested.iter().map(|f| feature_key(f)) {
                let known = setting(&key).is_some()
                    || STABLE_FEATURES.contains(&key.as_str())
                    || BETA_FEATURES.contains(&key.as_str());
                if !known {
                    let mut names: Vec<String> = settings
                        .iter()
                        .map(|s| s.feature.to_ascii_lowercase())
                        .collect();
                    if names.is_empty() {
                        names = STABLE_FEATURES
                            .iter()
                            .map(|f| f.to_ascii_lowercase())
                            .collect();
                    }
                    return Err(Problem::user(format!(
                        "GitLab has no feature `{}`",
                        key.to_ascii_lowercase()
                    ))
                    .hint(format!("choose among: {}", names.join(", ")))
                    .into());
                }
                if !compatible(setting(&key), family) {
                    return Err(Problem::user(format!(
                        "the {family} family is incompatible with the {} feature, as GitLab says",
                        feature_words(&key)
                    ))
                    .hint(format!(
                        "leave {} out of --features, or register a model whose family it accepts ({})",
                        key.to_ascii_lowercase(),
                        setting(&key)
                            .and_then(|s| s.compatible_llms.clone())
                            .unwrap_or_default()
                            .join(", ")
                    ))
                    .into());
                }
                if is_beta(&key, setting(&key)) {
                    if !request.accept_beta {
                        return Err(Problem::user(format!(
                            "{} is a beta feature",
                            feature_words(&key)
                        ))
                        .hint(format!("add --accept-beta to assign it: {TESTING_TERMS}"))
                        .into());
                    }
                    plan.beta = true;
                }
                if !plan.assign.contains(&key) {
                    plan.assign.push(key);
                }
            }
        }
        None => {
            for key in &request.fit {
                let current = setting(key);
                let elsewhere = current.and_then(|s| {
                    s.self_hosted_model.as_ref().filter(|m| {
                        s.provider.eq_ignore_ascii_case("self_hosted") && m.name != model_name
                    })
                });
                if let Some(other) = elsewhere {
                    plan.kept_elsewhere
                        .push((key.to_string(), other.name.clone()));
                } else if !compatible(current, family) {
                    plan.incompatible.push(key.to_string());
                } else {
                    plan.assign.push(key.to_string());
                }
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> semver::Version {
        semver::Version::parse(text).unwrap()
    }

    fn list(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_family_follows_the_catalog_and_the_version() {
        let early = list(&["MISTRAL", "CODESTRAL", "CODEGEMMA"]);
        let late = list(&["CODESTRAL", "GENERAL", "CLAUDE_3"]);
        let codestral = catalog::find("codestral");
        let smol = catalog::find("smollm2");
        assert_eq!(
            choose_family(None, codestral, "c", &v("17.9.0"), &early).unwrap(),
            "CODESTRAL"
        );
        assert_eq!(
            choose_family(None, smol, "s", &v("18.3.0"), &late).unwrap(),
            "GENERAL"
        );
        let refused = choose_family(None, smol, "s", &v("18.2.1"), &early).unwrap_err();
        assert!(format!("{refused:#}").contains("18.3"), "{refused:#}");
        let unknown = choose_family(Some("claude_3"), None, "x", &v("17.9.0"), &early)
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("MISTRAL, CODESTRAL, CODEGEMMA"),
            "{unknown}"
        );
    }

    #[test]
    fn identifiers_and_fit_features() {
        assert_eq!(
            identifier_for(catalog::find("claude"), "anthropic.claude-3-5-sonnet"),
            "bedrock/anthropic.claude-3-5-sonnet"
        );
        assert_eq!(
            identifier_for(catalog::find("codestral"), "codestral-22b"),
            "custom_openai/codestral-22b"
        );
        assert_eq!(
            features_fit_for(catalog::find("codestral").unwrap()),
            vec!["CODE_COMPLETIONS", "CODE_GENERATIONS"]
        );
        assert!(features_fit_for(catalog::find("mistral-7b").unwrap()).contains(&"DUO_CHAT"));
    }
}
