//! GitLab's GraphQL API: one call that separates the data from the errors, the reading of
//! lists and payloads in the shapes GitLab sends, and the Duo settings (the gateway URL, 17.9+)
//! and self-hosted model reads built on it. Self-hosted model writes are `self_hosted`'s.

use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use super::failure::{decode, problem};
use super::GitlabClient;
use crate::error::Problem;

impl GitlabClient {
    pub(super) async fn graphql(
        &self,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<GraphqlAnswer> {
        let url = self.url("api/graphql");
        let request = self
            .http
            .post(url.clone())
            .headers(self.auth_headers(true))
            .json(&json!({ "query": query, "variables": variables }));
        let (status, body) = self.send(request, &url).await?;
        if !status.is_success() {
            return Err(self.status_error(&url, status, &body));
        }
        let value: Value = decode(&url, &body)?;
        let errors = value
            .get("errors")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|e| {
                        e.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("unknown error")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(GraphqlAnswer {
            url,
            data: value.get("data").cloned().unwrap_or(Value::Null),
            errors,
        })
    }

    /// The Duo "Local AI Gateway URL" application setting (GraphQL `duoSettings`, 17.9+).
    /// `None` when it is not set.
    pub async fn ai_gateway_url(&self) -> anyhow::Result<Option<String>> {
        let answer = self
            .graphql("query { duoSettings { aiGatewayUrl } }", json!({}))
            .await?;
        answer.fail_on_errors(self, "reading duoSettings")?;
        let settings = answer.data.get("duoSettings");
        if settings.is_none_or(Value::is_null) {
            return Err(self.missing_duo_settings(&answer.url));
        }
        Ok(settings
            .and_then(|s| s.get("aiGatewayUrl"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string))
    }

    /// The self-hosted models GitLab stores (GraphQL `aiSelfHostedModels`, admin): the endpoint
    /// and identifier the gateway is told to call, which may differ from what doctor was given.
    pub async fn self_hosted_models(&self) -> anyhow::Result<Vec<SelfHostedModel>> {
        let answer = self
            .graphql(
                "query { aiSelfHostedModels { nodes { name model endpoint identifier } } }",
                json!({}),
            )
            .await?;
        answer.fail_on_errors(self, "reading aiSelfHostedModels")?;
        answer.nodes("/aiSelfHostedModels/nodes", "aiSelfHostedModels")
    }

    fn missing_duo_settings(&self, url: &Url) -> anyhow::Error {
        problem(
            true,
            format!("GitLab at {url} returned no duoSettings"),
            if self.token.is_some() {
                "use an administrator's token with the `api` scope"
            } else {
                "pass an administrator's token with --gitlab-token or GITLAB_TOKEN"
            },
        )
    }

    /// Sets the Duo gateway URL (GraphQL `duoSettingsUpdate`) and returns the value GitLab
    /// stored. Handles both payload shapes: newer `duoSettings { aiGatewayUrl }` and older
    /// `aiGatewayUrl` at the top of the payload.
    pub async fn set_ai_gateway_url(&self, gateway_url: &str) -> anyhow::Result<String> {
        const NEWER: &str = "mutation($url: String!) { duoSettingsUpdate(input: {aiGatewayUrl: $url}) { duoSettings { aiGatewayUrl } errors } }";
        const OLDER: &str = "mutation($url: String!) { duoSettingsUpdate(input: {aiGatewayUrl: $url}) { aiGatewayUrl errors } }";
        let variables = json!({ "url": gateway_url });
        let mut answer = self.graphql(NEWER, variables.clone()).await?;
        if answer
            .errors
            .iter()
            .any(|e| e.contains("duoSettings") && e.contains("doesn't exist"))
        {
            // Schema validation failed, so nothing ran: ask again in the older shape.
            answer = self.graphql(OLDER, variables).await?;
        }
        answer.fail_on_errors(self, "duoSettingsUpdate")?;
        let payload = answer
            .data
            .get("duoSettingsUpdate")
            .filter(|p| !p.is_null())
            .ok_or_else(|| self.missing_duo_settings(&answer.url))?;
        let errors = payload_errors(payload);
        if !errors.is_empty() {
            return Err(Problem::user(format!(
                "GitLab refused the AI gateway URL `{gateway_url}`: {}",
                errors.join("; ")
            ))
            .hint("give an http:// or https:// URL that GitLab can reach, such as http://aigw.example.com:5052")
            .into());
        }
        let stored = payload
            .get("duoSettings")
            .and_then(|s| s.get("aiGatewayUrl"))
            .or_else(|| payload.get("aiGatewayUrl"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_default();
        Ok(stored)
    }
}

/// A self-hosted model as GitLab stores it (`aiSelfHostedModels`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SelfHostedModel {
    #[serde(default)]
    pub name: String,
    /// The family, such as `CODESTRAL`.
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub identifier: Option<String>,
}

pub(super) struct GraphqlAnswer {
    pub(super) url: Url,
    pub(super) data: Value,
    errors: Vec<String>,
}

impl GraphqlAnswer {
    /// `value`, a part of this answer, read as `T`; a shape GitLab should not send is the
    /// tool's problem, named with the operation (`what`).
    pub(super) fn shaped<T: serde::de::DeserializeOwned>(
        &self,
        value: Value,
        what: &str,
    ) -> anyhow::Result<T> {
        serde_json::from_value(value).map_err(|e| {
            problem(
                true,
                format!(
                    "GitLab at {} answered {what} in an unexpected shape: {e}",
                    self.url
                ),
                "re-run with -vv for details",
            )
        })
    }

    /// The list at `pointer` in the data (none there: an empty list), read as `T`s.
    pub(super) fn nodes<T: serde::de::DeserializeOwned>(
        &self,
        pointer: &str,
        what: &str,
    ) -> anyhow::Result<Vec<T>> {
        let nodes = self
            .data
            .pointer(pointer)
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        self.shaped(nodes, what)
    }

    pub(super) fn fail_on_errors(&self, client: &GitlabClient, what: &str) -> anyhow::Result<()> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let text = self.errors.join("; ");
        let hint = if text.contains("doesn't exist") {
            "this GitLab has no Duo settings API (it arrived in 17.9): set AI_GATEWAY_URL in gitlab.rb instead"
        } else if text.contains("permission") || text.contains("does not exist or you don't have") {
            if client.token.is_some() {
                "use an administrator's token with the `api` scope"
            } else {
                "pass an administrator's token with --gitlab-token or GITLAB_TOKEN"
            }
        } else {
            "re-run with -vv for details"
        };
        Err(
            Problem::user(format!("GitLab GraphQL at {} ({what}): {text}", self.url))
                .hint(hint)
                .into(),
        )
    }
}

/// A mutation payload's own `errors` (validation failures), as text.
pub(super) fn payload_errors(payload: &Value) -> Vec<String> {
    payload
        .get("errors")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|e| {
                    e.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| e.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}
