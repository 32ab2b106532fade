//! `duo-selfhost models register`: the admin pages' "add a self-hosted model, test the
//! connection, assign features" done through GitLab's API. `install` runs the same step
//! (`register_model`) when it has a token. The decisions live in `registration`.

use std::time::Duration;

use serde::Serialize;

use crate::catalog::{self, Model};
use crate::cli::ModelsRegisterArgs;
use crate::error::{ExitStatus, Problem};
use crate::gitlab_api::{ConnectionCheck, GitlabClient, ModelInput};
use crate::output::{Mark, Printer};
use crate::registration::{self, FeaturePlan, Request, Saved};

/// What registering did, for the summary and `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub name: String,
    pub id: String,
    pub saved: Saved,
    pub family: String,
    pub endpoint: String,
    pub identifier: Option<String>,
    pub api_key_stored: bool,
    pub connection_check: ConnectionCheck,
    /// `None` when the connection check failed and no feature was touched.
    pub features: Option<FeaturePlan>,
}

pub fn run(args: ModelsRegisterArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let url = match &args.gitlab.gitlab_url {
        Some(url) => url.clone(),
        None => crate::gitlab_rb::read_file(&args.gitlab.gitlab_rb)
            .ok()
            .and_then(|text| crate::gitlab_rb::external_url(&text))
            .filter(|url| crate::gitlab_api::parse_base_url(url).is_ok())
            .ok_or_else(|| {
                Problem::user("GitLab's URL is needed and was not given")
                    .hint("give it with --gitlab-url https://gitlab.example.com")
            })?,
    };
    let Some(token) = args.gitlab.gitlab_token.clone() else {
        return Err(Problem::user(
            "registering a self-hosted model needs an administrator's GitLab token",
        )
        .hint("create a personal access token with the `api` scope as an administrator and pass it with --gitlab-token or GITLAB_TOKEN")
        .into());
    };
    let client = GitlabClient::new(
        &url,
        Some(token),
        args.gitlab.ca_cert.as_deref(),
        Duration::from_secs(60),
    )?;
    let model = catalog::find(&args.name);
    let target = Target {
        name: model
            .map(|m| m.name.to_string())
            .unwrap_or_else(|| args.name.clone()),
        model,
        endpoint: args.endpoint.clone(),
        served_model_name: args.served_model_name.clone(),
        family: args.family.clone(),
        api_key: args.api_key.clone(),
        features: args.features.clone(),
        accept_beta: args.accept_beta,
    };
    let registered =
        super::super::runtime()?.block_on(register_model(&client, &target, printer))?;
    if printer.json {
        printer.json_document(&serde_json::to_value(&registered)?);
    }
    if registered.connection_check.success {
        Ok(ExitStatus::Success)
    } else {
        Err(connection_check_failed(&registered))
    }
}

/// What to register: a catalog model (or a name with `--family`) at an endpoint.
#[derive(Debug, Clone)]
pub struct Target {
    /// The deployment name in GitLab.
    pub name: String,
    pub model: Option<&'static Model>,
    pub endpoint: String,
    pub served_model_name: Option<String>,
    pub family: Option<String>,
    pub api_key: Option<crate::secret::Secret>,
    pub features: Option<Vec<String>>,
    pub accept_beta: bool,
}

fn validate_endpoint(endpoint: &str, printer: &Printer) -> anyhow::Result<()> {
    let parsed = url::Url::parse(endpoint.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if parsed.is_none() {
        return Err(Problem::user(format!(
            "`{endpoint}` is not an http(s) URL"
        ))
        .hint("give the model's OpenAI-compatible endpoint as GitLab's gateway reaches it, such as --endpoint http://models.example.com:8080/v1")
        .into());
    }
    if !endpoint.trim_end_matches('/').ends_with("/v1") {
        printer.warn(format!(
            "the endpoint {endpoint} does not end in /v1: vLLM and duo-selfhost serve answer under /v1, and the gateway appends /chat/completions to what GitLab stores"
        ));
    }
    Ok(())
}

/// Saves the model in GitLab (created, or updated when one of that name exists), runs
/// GitLab's connection check, and when it passes points the features at the model.
pub async fn register_model(
    client: &GitlabClient,
    target: &Target,
    printer: &Printer,
) -> anyhow::Result<Registered> {
    validate_endpoint(&target.endpoint, printer)?;
    if target.model.is_none() && target.family.is_none() {
        return Err(Problem::user(format!(
            "`{}` is not in the catalog, so its GitLab family is unknown",
            target.name
        ))
        .hint("give a catalog name (duo-selfhost models list), or --family with GitLab's family for it and --features")
        .into());
    }
    let metadata = client.metadata().await?;
    let version = metadata.semver().ok_or_else(|| {
        Problem::user(format!(
            "GitLab reports a version duo-selfhost cannot read: `{}`",
            metadata.version
        ))
    })?;
    let accepted = registration::accepted_families(client).await?;
    printer.detail(format!(
        "GitLab {version} accepts the families {}",
        accepted.join(", ")
    ));
    let family = registration::choose_family(
        target.family.as_deref(),
        target.model,
        &target.name,
        &version,
        &accepted,
    )?;
    let served = target
        .served_model_name
        .clone()
        .unwrap_or_else(|| target.name.clone());
    let identifier = registration::identifier_for(target.model, &served);
    let request = Request {
        input: ModelInput {
            name: target.name.clone(),
            family: family.clone(),
            endpoint: target.endpoint.trim().to_string(),
            identifier: Some(identifier),
            api_key: target.api_key.clone().filter(|k| !k.is_empty()),
        },
        features: target.features.clone(),
        fit: target
            .model
            .map(registration::features_fit_for)
            .unwrap_or_default(),
        accept_beta: target.accept_beta,
    };
    if request.features.is_none() && request.fit.is_empty() {
        return Err(Problem::user(format!(
            "the catalog cannot say which features {} is fit for",
            target.name
        ))
        .hint("name them with --features, such as --features code_completions,duo_chat")
        .into());
    }
    // Settle which features go where before saving anything, so a refused choice changes nothing.
    let settings = client.feature_settings().await?;
    let plan = registration::plan_features(&request, &target.name, &settings)?;

    let (saved_model, saved) = registration::save(client, &request.input).await?;
    let verb = match saved {
        Saved::Created => "created",
        Saved::Updated => "updated",
        Saved::Unchanged => "already registered as asked:",
    };
    printer.info(format!(
        "{} {verb} self-hosted model {} in GitLab ({family}, {} at {}{})",
        printer.mark(Mark::Ok),
        saved_model.name,
        saved_model.identifier.as_deref().unwrap_or("no identifier"),
        saved_model.endpoint,
        if saved_model.has_api_token {
            ", API key stored"
        } else {
            ""
        }
    ));

    let check = client.connection_check(&request.input).await?;
    let mut registered = Registered {
        name: saved_model.name.clone(),
        id: saved_model.id.clone(),
        saved,
        family,
        endpoint: saved_model.endpoint.clone(),
        identifier: saved_model.identifier.clone(),
        api_key_stored: saved_model.has_api_token,
        connection_check: check.clone(),
        features: None,
    };
    if !check.success {
        printer.info(format!(
            "{} GitLab's connection check failed: {}",
            printer.mark(Mark::Fail),
            check.text()
        ));
        printer.info("  no feature was pointed at the model");
        return Ok(registered);
    }
    printer.info(format!(
        "{} GitLab's connection check: {}",
        printer.mark(Mark::Ok),
        check.text()
    ));

    if plan.beta {
        printer.warn(registration::TESTING_TERMS);
    }
    if !plan.assign.is_empty() {
        client
            .assign_features(&plan.assign, &saved_model.id)
            .await?;
        printer.info(format!(
            "{} self-hosted on {}: {}",
            printer.mark(Mark::Ok),
            saved_model.name,
            words(&plan.assign)
        ));
    }
    for (feature, other) in &plan.kept_elsewhere {
        printer.info(format!(
            "  {} stays on {other} (name it in --features to move it here)",
            registration::feature_words(feature)
        ));
    }
    if !plan.incompatible.is_empty() {
        printer.info(format!(
            "  GitLab does not let the {} family serve: {}",
            registered.family,
            words(&plan.incompatible)
        ));
    }
    if plan.assign.is_empty() {
        printer.info("  no feature was pointed at the model");
    }
    registered.features = Some(plan);
    Ok(registered)
}

fn words(features: &[String]) -> String {
    features
        .iter()
        .map(|f| registration::feature_words(f))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error for a failed connection check: the model is saved, the features untouched.
pub fn connection_check_failed(registered: &Registered) -> anyhow::Error {
    Problem::user(format!(
        "GitLab's connection check for {} failed: {}",
        registered.name,
        registered.connection_check.text()
    ))
    .hint(format!(
        "the model is saved in GitLab but no feature uses it yet: check that the gateway reaches {} and that it serves {} (duo-selfhost doctor --only chain shows the hop), then run the same command again",
        registered.endpoint,
        registered
            .identifier
            .as_deref()
            .map(|i| i.split_once('/').map(|(_, n)| n).unwrap_or(i))
            .unwrap_or("the model")
    ))
    .into()
}
