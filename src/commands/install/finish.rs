//! How `install` ends: the model registered in GitLab with its features (when a token is at
//! hand), then either a code suggestion asked of GitLab (doctor's `chain.code_completion`) or
//! the exact list of what is still missing and the command that does each.

use std::sync::Arc;
use std::time::Duration;

use crate::catalog;
use crate::commands::models::register::{self, Registered, Target};
use crate::doctor::{self, inputs::Inputs, Context, Status};
use crate::gitlab_api::GitlabClient;
use crate::output::{Mark, Printer};
use crate::secret::Secret;

/// What is still to do after install, each with the command that does it.
#[derive(Debug, Clone, Default)]
pub struct Missing(pub Vec<String>);

/// The model install would register: its catalog entry, endpoint and served name.
#[derive(Debug, Clone)]
pub struct ModelToRegister {
    pub catalog_name: Option<String>,
    pub endpoint: String,
    pub served_name: String,
    pub api_key: Option<Secret>,
}

impl ModelToRegister {
    pub fn command(&self, gitlab_url: &str) -> String {
        format!(
            "duo-selfhost models register {} --endpoint {} --served-model-name {} --gitlab-url {gitlab_url} --gitlab-token TOKEN",
            self.catalog_name.as_deref().unwrap_or("NAME"),
            self.endpoint,
            self.served_name
        )
    }

    /// What the plan says before anything happens.
    pub fn plan_lines(&self, has_token: bool) -> Vec<String> {
        let model = self.catalog_name.as_deref().and_then(catalog::find);
        let mut lines = vec![format!(
            "model registration: {} as a self-hosted model in GitLab ({} at {})",
            self.catalog_name.as_deref().unwrap_or("the model"),
            crate::registration::identifier_for(model, &self.served_name),
            self.endpoint
        )];
        let features = model
            .map(crate::registration::features_fit_for)
            .unwrap_or_default();
        lines.push(format!(
            "feature mapping: {}",
            if features.is_empty() {
                "none (the catalog does not know the model)".to_string()
            } else {
                features
                    .iter()
                    .map(|f| crate::registration::feature_words(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
        if !has_token {
            lines.push(
                "  (needs a GitLab token: without one, install names the command that does it)"
                    .into(),
            );
        }
        lines
    }
}

/// Registers the model when there is a token and a catalog model; otherwise says what to run.
pub async fn register_step(
    client: Option<&GitlabClient>,
    gitlab_url: &str,
    model: Option<&ModelToRegister>,
    missing: &mut Missing,
    printer: &Printer,
) -> Option<Registered> {
    let Some(model) = model else {
        missing.0.push(
            "a model for GitLab Duo: serve one (duo-selfhost install --model-runtime embedded, or duo-selfhost serve), then duo-selfhost models register NAME --endpoint URL --gitlab-token TOKEN".into(),
        );
        return None;
    };
    let Some(client) = client.filter(|c| c.has_token()) else {
        missing.0.push(format!(
            "the model registered in GitLab with its features: {}",
            model.command(gitlab_url)
        ));
        return None;
    };
    let Some(catalog_name) = model.catalog_name.clone() else {
        missing.0.push(format!(
            "the model registered in GitLab (install knows no catalog model for it): {}",
            model
                .command(gitlab_url)
                .replace(" NAME ", " NAME --family FAMILY --features F,... ")
        ));
        return None;
    };
    let entry = catalog::find(&catalog_name);
    let target = Target {
        name: entry.map(|m| m.name.to_string()).unwrap_or(catalog_name),
        model: entry,
        endpoint: model.endpoint.clone(),
        served_model_name: Some(model.served_name.clone()),
        family: None,
        api_key: model.api_key.clone(),
        features: None,
        accept_beta: false,
    };
    printer.info("GitLab self-hosted model:");
    match register::register_model(client, &target, printer).await {
        Ok(registered) if registered.connection_check.success => Some(registered),
        Ok(registered) => {
            missing.0.push(format!(
                "GitLab's connection check to pass ({}), then: {}",
                registered.connection_check.text(),
                model.command(gitlab_url)
            ));
            None
        }
        Err(e) => {
            printer.info(format!(
                "{} registering the model failed: {e:#}",
                printer.mark(Mark::Fail)
            ));
            missing.0.push(format!(
                "the model registered in GitLab: {}",
                model.command(gitlab_url)
            ));
            None
        }
    }
}

/// What the chain check needs to ask GitLab for a code suggestion.
#[derive(Debug, Clone)]
pub struct ChainToVerify {
    pub gitlab_url: String,
    pub gitlab_token: Secret,
    pub gateway_url: String,
    pub ca_cert: Option<std::path::PathBuf>,
}

/// The last lines of install: a code suggestion through GitLab, or what is missing. Runs
/// outside install's runtime (doctor's runner has its own). Exit 1 when the chain does not
/// answer or something is missing.
pub fn verify_chain(
    chain: Option<ChainToVerify>,
    missing: &Missing,
    printer: &Printer,
) -> anyhow::Result<bool> {
    if !missing.0.is_empty() || chain.is_none() {
        printer.info(format!(
            "{} not verified yet: GitLab Duo cannot answer until these are done:",
            printer.mark(Mark::Warn)
        ));
        for step in &missing.0 {
            printer.info(format!("  - {step}"));
        }
        printer
            .info("  then check the chain: duo-selfhost doctor --only chain --gitlab-token TOKEN");
        return Ok(false);
    }
    let chain = chain.expect("checked above");
    let inputs = Inputs {
        gitlab_url: Some(chain.gitlab_url.clone()),
        gitlab_token: Some(chain.gitlab_token.clone()),
        gateway_url: Some(chain.gateway_url.clone()),
        gateway_url_source: "install",
        ca_cert: chain.ca_cert.clone(),
        ..Default::default()
    };
    let selection = doctor::select(
        doctor::checks::CHECKS,
        &["chain.code_completion".to_string()],
        &[],
    )
    .map_err(anyhow::Error::msg)?;
    let results = doctor::run_all(
        doctor::checks::CHECKS,
        &selection,
        Arc::new(Context::new(inputs)),
        Duration::from_secs(90),
    )?;
    let Some(result) = results.first() else {
        return Ok(false);
    };
    if result.status == Status::Ok {
        printer.info(format!(
            "{} verified: a code suggestion came back through GitLab ({})",
            printer.mark(Mark::Ok),
            result.message
        ));
        return Ok(true);
    }
    printer.info(format!(
        "{} not verified: GitLab did not answer a code suggestion: {}",
        printer.mark(Mark::Fail),
        result.message
    ));
    if let Some(hint) = &result.hint {
        printer.info(format!("  hint: {hint}"));
    }
    printer.info("  then check again: duo-selfhost doctor --only chain --gitlab-token TOKEN");
    Ok(false)
}
