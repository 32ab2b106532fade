//! GitLab's GraphQL API for self-hosted models and feature settings (reference section 3.2a):
//! the enum values the schema accepts, the registered models, create and update, GitLab's own
//! connection check, and pointing features at a model. Wire shapes only; what to send is
//! decided by `registration`. The model's API key goes in a variable and is never printed.

use serde::Deserialize;
use serde_json::{json, Value};

use super::graphql::{payload_errors, GraphqlAnswer};
use super::GitlabClient;
use crate::error::Problem;
use crate::secret::Secret;

/// The GraphQL enum of model families (`AiAcceptedSelfHostedModels`).
pub const FAMILY_ENUM: &str = "AiAcceptedSelfHostedModels";
/// The GraphQL enum of features (`AiFeatures`).
pub const FEATURE_ENUM: &str = "AiFeatures";

/// A registered self-hosted model with its global id, as create, update and the list answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredModel {
    /// A global id such as `gid://gitlab/Ai::SelfHostedModel/7`.
    pub id: String,
    pub name: String,
    /// The family, as the enum spells it (`CODESTRAL`).
    pub model: String,
    /// Empty for a model without one (Bedrock); GitLab may send null.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub endpoint: String,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub has_api_token: bool,
}

/// What create, update and the connection check take.
#[derive(Debug, Clone)]
pub struct ModelInput {
    pub name: String,
    pub family: String,
    pub endpoint: String,
    pub identifier: Option<String>,
    pub api_key: Option<Secret>,
}

impl ModelInput {
    /// The GraphQL input object. The key is a value here and only here.
    fn to_variables(&self) -> Value {
        let mut input = json!({
            "name": self.name,
            "model": self.family,
            "endpoint": self.endpoint,
        });
        if let Some(identifier) = &self.identifier {
            input["identifier"] = json!(identifier);
        }
        if let Some(key) = &self.api_key {
            input["apiToken"] = json!(key.expose());
        }
        input
    }
}

/// GitLab's connection check (`CloudConnectorProbeResult`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ConnectionCheck {
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Option<Vec<String>>,
}

impl ConnectionCheck {
    /// The message and any errors, as one line.
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = self.message.iter().cloned().collect();
        for error in self.errors.iter().flatten() {
            if !parts.contains(error) {
                parts.push(error.clone());
            }
        }
        if parts.is_empty() {
            "no message".to_string()
        } else {
            parts.join("; ")
        }
    }
}

/// One feature's setting (`aiFeatureSettings`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureSetting {
    /// The feature key, lower case (`code_completions`).
    pub feature: String,
    /// `self_hosted`, `vendored`, `disabled` or `unassigned`.
    pub provider: String,
    #[serde(default)]
    pub title: Option<String>,
    /// `GA`, `BETA` or `EXPERIMENT`.
    #[serde(default)]
    pub release_state: Option<String>,
    /// The families this feature accepts, as the enum spells them.
    #[serde(default)]
    pub compatible_llms: Option<Vec<String>>,
    #[serde(default)]
    pub self_hosted_model: Option<ModelRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ModelRef {
    pub id: String,
    pub name: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

const MODEL_FIELDS: &str = "id name model endpoint identifier hasApiToken";

impl GitlabClient {
    /// The values a GraphQL enum accepts, from the schema (`__type`). `None` when this GitLab's
    /// schema has no such type (a version before self-hosted models).
    pub async fn enum_values(&self, type_name: &str) -> anyhow::Result<Option<Vec<String>>> {
        let answer = self
            .graphql(
                "query($name: String!) { __type(name: $name) { enumValues { name } } }",
                json!({ "name": type_name }),
            )
            .await?;
        answer.fail_on_errors(self, "asking the schema")?;
        let Some(values) = answer
            .data
            .pointer("/__type/enumValues")
            .and_then(Value::as_array)
        else {
            return Ok(None);
        };
        Ok(Some(
            values
                .iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect(),
        ))
    }

    /// Every registered self-hosted model, with ids (admin).
    pub async fn registered_models(&self) -> anyhow::Result<Vec<RegisteredModel>> {
        let query = format!("query {{ aiSelfHostedModels {{ nodes {{ {MODEL_FIELDS} }} }} }}");
        let answer = self.graphql(&query, json!({})).await?;
        answer.fail_on_errors(self, "reading aiSelfHostedModels")?;
        answer.nodes("/aiSelfHostedModels/nodes", "aiSelfHostedModels")
    }

    /// `aiSelfHostedModelCreate`, or `aiSelfHostedModelUpdate` when `id` is given.
    pub async fn save_model(
        &self,
        id: Option<&str>,
        input: &ModelInput,
    ) -> anyhow::Result<RegisteredModel> {
        let mut variables = input.to_variables();
        let (mutation, input_type) = match id {
            Some(id) => {
                variables["id"] = json!(id);
                ("aiSelfHostedModelUpdate", "AiSelfHostedModelUpdateInput")
            }
            None => ("aiSelfHostedModelCreate", "AiSelfHostedModelCreateInput"),
        };
        let query = format!(
            "mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ selfHostedModel {{ {MODEL_FIELDS} }} errors }} }}"
        );
        let answer = self.graphql(&query, json!({ "input": variables })).await?;
        let payload = mutation_payload(
            self,
            &answer,
            mutation,
            &format!("GitLab refused {mutation}"),
        )?;
        let model = payload
            .get("selfHostedModel")
            .cloned()
            .unwrap_or(Value::Null);
        answer.shaped(model, mutation)
    }

    /// `aiSelfHostedModelConnectionCheck`: GitLab asks its gateway to reach the model with this
    /// configuration. Nothing is saved.
    pub async fn connection_check(&self, input: &ModelInput) -> anyhow::Result<ConnectionCheck> {
        const QUERY: &str = "mutation($input: AiSelfHostedModelConnectionCheckInput!) { aiSelfHostedModelConnectionCheck(input: $input) { result { name success message errors details } errors } }";
        let answer = self
            .graphql(QUERY, json!({ "input": input.to_variables() }))
            .await?;
        let payload = mutation_payload(
            self,
            &answer,
            "aiSelfHostedModelConnectionCheck",
            "GitLab could not run its connection check",
        )?;
        let result = payload.get("result").cloned().unwrap_or(Value::Null);
        answer.shaped(result, "aiSelfHostedModelConnectionCheck")
    }

    /// Every feature's setting (admin).
    pub async fn feature_settings(&self) -> anyhow::Result<Vec<FeatureSetting>> {
        const QUERY: &str = "query { aiFeatureSettings { nodes { feature provider title releaseState compatibleLlms selfHostedModel { id name } } } }";
        let answer = self.graphql(QUERY, json!({})).await?;
        answer.fail_on_errors(self, "reading aiFeatureSettings")?;
        answer.nodes("/aiFeatureSettings/nodes", "aiFeatureSettings")
    }

    /// `aiFeatureSettingUpdate`: these features (enum names, `CODE_COMPLETIONS`) served by the
    /// self-hosted model `model_id`.
    pub async fn assign_features(
        &self,
        features: &[String],
        model_id: &str,
    ) -> anyhow::Result<Vec<FeatureSetting>> {
        const QUERY: &str = "mutation($input: AiFeatureSettingUpdateInput!) { aiFeatureSettingUpdate(input: $input) { aiFeatureSettings { feature provider title releaseState compatibleLlms selfHostedModel { id name } } errors } }";
        let input = json!({
            "features": features,
            "provider": "SELF_HOSTED",
            "aiSelfHostedModelId": model_id,
        });
        let answer = self.graphql(QUERY, json!({ "input": input })).await?;
        let payload = mutation_payload(
            self,
            &answer,
            "aiFeatureSettingUpdate",
            "GitLab refused to point the features at the model",
        )?;
        let settings = payload
            .get("aiFeatureSettings")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        answer.shaped(settings, "aiFeatureSettingUpdate")
    }
}

/// `data.<mutation>` (null when absent), once neither the answer nor the mutation's own
/// payload holds errors.
fn mutation_payload(
    client: &GitlabClient,
    answer: &GraphqlAnswer,
    mutation: &str,
    refused: &str,
) -> anyhow::Result<Value> {
    answer.fail_on_errors(client, mutation)?;
    let payload = answer.data.get(mutation).cloned().unwrap_or(Value::Null);
    refused_by_payload(&payload, refused)?;
    Ok(payload)
}

/// A mutation's own `errors` (validation: a taken name, an incompatible family, an empty list).
fn refused_by_payload(payload: &Value, what: &str) -> anyhow::Result<()> {
    let errors = payload_errors(payload);
    if errors.is_empty() {
        return Ok(());
    }
    Err(Problem::user(format!("{what}: {}", errors.join("; ")))
        .hint("correct what GitLab names and run the command again")
        .into())
}
