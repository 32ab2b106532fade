//! `model.*` and `bedrock.*`: the model endpoint as GitLab's AI Gateway calls it: the `/v1`
//! suffix, the served ids against the identifier, a one-token chat, a Codestral-style
//! completion exactly as the gateway sends it, the catalog's approval, and Bedrock's settings.

use std::sync::Arc;

use serde_json::json;

use super::http::{self, Answer, Failure};
use super::{Budget, CheckFuture, Context, Outcome};
use crate::catalog;
use crate::http_client::TransportFault;

/// What the identifier configured in GitLab means to the gateway: the text before the first
/// `/` is LiteLLM's provider, the rest the model; no `/` means `custom_openai/<identifier>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub provider: String,
    pub model: String,
}

pub fn parse_identifier(text: &str) -> Identifier {
    match text.trim().split_once('/') {
        Some((provider, model)) => Identifier {
            provider: provider.to_string(),
            model: model.to_string(),
        },
        None => Identifier {
            provider: "custom_openai".into(),
            model: text.trim().to_string(),
        },
    }
}

/// `<endpoint without a trailing /v1>/v1/models`: GitLab's rake task appends `/v1/models` to an
/// endpoint that already ends in `/v1`, and so probes `/v1/v1/models`; this does not.
pub fn models_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/models")
}

/// Where LiteLLM posts a chat: the configured endpoint (which should end in /v1) plus
/// `/chat/completions`.
pub fn chat_url(endpoint: &str) -> String {
    format!("{}/chat/completions", endpoint.trim_end_matches('/'))
}

fn identifier(ctx: &Context) -> Option<Identifier> {
    ctx.inputs
        .model_identifier
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(parse_identifier)
}

fn is_bedrock(ctx: &Context) -> bool {
    identifier(ctx).is_some_and(|id| id.provider == "bedrock")
}

const NO_ENDPOINT: &str =
    "no model endpoint: pass --model-endpoint URL (or run duo-selfhost install, which records it)";

pub fn endpoint(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(endpoint) = ctx.inputs.model_endpoint.clone() else {
            if is_bedrock(&ctx) {
                return Outcome::skip("Bedrock models have no endpoint");
            }
            return Outcome::skip(NO_ENDPOINT);
        };
        let parsed = match url::Url::parse(&endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => url,
            _ => {
                return Outcome::fail(
                    format!("the model endpoint `{endpoint}` is not an http(s) URL"),
                    "set the endpoint in GitLab (Admin > GitLab Duo > Self-hosted models) to http(s)://<host>:<port>/v1",
                )
            }
        };
        let path = parsed.path().trim_end_matches('/');
        if path.ends_with("/v1") {
            Outcome::ok(format!("{endpoint} ends in /v1"))
        } else {
            let fixed = format!("{}/v1", endpoint.trim_end_matches('/'));
            Outcome::fail(
                format!("{endpoint} does not end in /v1: the gateway would post to {} and get 404", chat_url(&endpoint)),
                format!("set the model endpoint in GitLab (Admin > GitLab Duo > Self-hosted models) to {fixed}, and pass --model-endpoint {fixed}"),
            )
        }
    })
}

pub fn models(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(endpoint) = ctx.inputs.model_endpoint.clone() else {
            return Outcome::skip(NO_ENDPOINT);
        };
        let wanted = identifier(&ctx);
        if wanted.as_ref().is_some_and(|id| id.provider == "bedrock") {
            return Outcome::skip("a bedrock/ identifier: the bedrock.* checks cover it");
        }
        let url = models_url(&endpoint);
        let client = match ctx.http_client(false) {
            Ok(client) => client,
            Err(outcome) => return outcome,
        };
        let answer =
            match http::send(with_key(client.get(&url), &ctx), budget.request_timeout()).await {
                Ok(answer) => answer,
                Err(failure) => return unreachable_model(&url, &failure),
            };
        if let Some(outcome) = bad_status(&ctx, &url, &answer) {
            return outcome;
        }
        let ids: Option<Vec<String>> = answer.json().and_then(|doc| {
            doc.get("data")?.as_array().map(|items| {
                items
                    .iter()
                    .filter_map(|m| m.get("id")?.as_str().map(str::to_string))
                    .collect()
            })
        });
        let Some(ids) = ids else {
            return Outcome::fail(
                format!(
                    "GET {url} answered {} with something that is not an OpenAI model list: {}",
                    answer.status,
                    answer.excerpt(&ctx.inputs.secrets())
                ),
                "point the endpoint at an OpenAI-compatible server (vLLM, duo-selfhost serve) at http(s)://<host>:<port>/v1",
            );
        };
        ctx.update_facts(|f| f.served_models = ids.clone());
        let backend = answer
            .json()
            .and_then(|doc| serve_backend(&doc, wanted.as_ref().map(|id| id.model.as_str())))
            .map(|text| format!("; {text}"))
            .unwrap_or_default();
        let listed = ids.join(", ");
        if ids.is_empty() {
            return Outcome::fail(
                format!("GET {url} lists no model"),
                "load a model in the server (vLLM: --model ... --served-model-name <name>)",
            );
        }
        match wanted {
            None => Outcome::ok(format!(
                "serves {listed} ({} ms){backend}; no model identifier to compare (pass --model-identifier custom_openai/<name>)",
                answer.millis()
            )),
            Some(id) if ids.contains(&id.model) => Outcome::ok(format!(
                "serves {} as {}/{} ({} ms){backend}",
                id.model,
                id.provider,
                id.model,
                answer.millis()
            )),
            Some(id) => Outcome::fail(
                format!(
                    "the identifier {}/{} names `{}`, but the server serves only: {listed}",
                    id.provider, id.model, id.model
                ),
                format!(
                    "set the model identifier in GitLab to custom_openai/{} (or start the server under that name: vLLM --served-model-name {})",
                    ids[0], id.model
                ),
            ),
        }
    })
}

/// Where a duo-selfhost serve runs the model (its `/v1/models` entry says; other servers do not):
/// `runs on Vulkan, 31/31 layers on Vulkan0` or `runs on the CPU (0/31 layers offloaded)`. The
/// entry is the identifier's model, else the first.
fn serve_backend(doc: &serde_json::Value, model: Option<&str>) -> Option<String> {
    let entries = doc.get("data")?.as_array()?;
    let entry = model
        .and_then(|name| {
            entries
                .iter()
                .find(|e| e.get("id").and_then(|v| v.as_str()) == Some(name))
        })
        .or_else(|| entries.first())?;
    let backend = entry.get("backend")?.as_str()?;
    let layers = entry.get("layers")?.as_u64()?;
    let offloaded = entry.get("offloaded_layers")?.as_u64()?;
    if offloaded == 0 {
        return Some(format!("runs on the CPU (0/{layers} layers offloaded)"));
    }
    let devices: Vec<&str> = entry
        .get("devices")
        .and_then(|d| d.as_array())
        .map(|d| d.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    Some(format!(
        "runs on {backend}, {offloaded}/{layers} layers on {}",
        devices.join(", ")
    ))
}

/// The model name requests carry: the identifier's, else the only one served.
fn request_model(ctx: &Context) -> Option<String> {
    if let Some(id) = identifier(ctx) {
        return Some(id.model);
    }
    let served = ctx.facts().served_models;
    (served.len() == 1).then(|| served[0].clone())
}

const NO_MODEL_NAME: &str = "no model name: pass --model-identifier custom_openai/<name>";

/// The model endpoint and the model name requests carry, for the checks that post to it.
fn endpoint_and_model(ctx: &Context) -> Result<(String, String), Outcome> {
    match (ctx.inputs.model_endpoint.clone(), request_model(ctx)) {
        (Some(endpoint), Some(model)) => Ok((endpoint, model)),
        _ => Err(Outcome::skip(NO_MODEL_NAME)),
    }
}

pub fn chat(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let (endpoint, model) = match endpoint_and_model(&ctx) {
            Ok(found) => found,
            Err(skip) => return skip,
        };
        let body = json!({
            "model": model,
            "messages": [{"role": "user", "content": "Reply with the single word OK."}],
            "max_tokens": 1,
            "temperature": 0,
            "n": 1,
            "stream": false,
        });
        match post_chat(&ctx, &endpoint, &body, budget).await {
            Ok((answer, _content)) => Outcome::ok(format!(
                "a one-token chat completion took {} ms",
                answer.millis()
            )),
            Err(outcome) => outcome,
        }
    })
}

/// The system prompt of the gateway's self-hosted Codestral completion (paraphrased).
const FIM_SYSTEM: &str = "You are a code completion tool. Fill in the code between the given \
prefix and suffix. Answer with the missing code only, without explanations or code fences.";
pub const FIM_PREFIX: &str = "def add(a, b):\n    ";
pub const FIM_SUFFIX: &str = "\n\nprint(add(2, 3))\n";

/// The request body the gateway sends for a self-hosted Codestral code completion: a chat with
/// the suffix first (`<s>[SUFFIX]{suffix}[PREFIX]{prefix}`), temperature 0.32, 64 tokens and
/// the Mistral control tokens as stops.
pub fn codestral_fim_body(model: &str, prefix: &str, suffix: &str) -> serde_json::Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": FIM_SYSTEM},
            {"role": "user", "content": format!("<s>[SUFFIX]{suffix}[PREFIX]{prefix}")},
        ],
        "max_tokens": 64,
        "temperature": 0.32,
        "n": 1,
        "stop": ["[INST]", "[/INST]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]"],
        "stream": false,
    })
}

/// Tokens the code completion probe asks for. The gateway asks for 64, but seeing the model
/// answer the gateway's prompt with code takes far fewer, and on a CPU-only host each token is
/// tens of milliseconds of doctor's run.
pub const FIM_PROBE_TOKENS: u64 = 16;

pub fn fim(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let (endpoint, model) = match endpoint_and_model(&ctx) {
            Ok(found) => found,
            Err(skip) => return skip,
        };
        let mut body = codestral_fim_body(&model, FIM_PREFIX, FIM_SUFFIX);
        body["max_tokens"] = FIM_PROBE_TOKENS.into();
        match post_chat(&ctx, &endpoint, &body, budget).await {
            Ok((answer, content)) if content.trim().is_empty() => Outcome::warn(
                format!("the code completion round trip answered with no code ({} ms)", answer.millis()),
                "the model answers chat but completes nothing; use a model approved for code completion (duo-selfhost models list)",
            ),
            Ok((answer, content)) => Outcome::ok(format!(
                "a code completion as the gateway asks for it, cut to {FIM_PROBE_TOKENS} of its 64 tokens, took {} ms ({}{} characters of code)",
                answer.millis(),
                completion_tokens(&answer),
                content.chars().count()
            )),
            Err(outcome) => outcome,
        }
    })
}

/// `16 tokens, ` from the answer's `usage.completion_tokens`, when it has one.
fn completion_tokens(answer: &Answer) -> String {
    answer
        .json()
        .and_then(|doc| doc.pointer("/usage/completion_tokens")?.as_u64())
        .map(|tokens| format!("{tokens} tokens, "))
        .unwrap_or_default()
}

/// Posts a chat completion and returns the answer and its first choice's text, or the failure.
pub(super) async fn post_chat(
    ctx: &Context,
    endpoint: &str,
    body: &serde_json::Value,
    budget: Budget,
) -> Result<(Answer, String), Outcome> {
    let url = chat_url(endpoint);
    let client = ctx.http_client(false)?;
    let answer = http::send(
        with_key(client.post(&url), ctx).json(body),
        budget.request_timeout(),
    )
    .await
    .map_err(|failure| unreachable_model(&url, &failure))?;
    if let Some(outcome) = bad_status(ctx, &url, &answer) {
        return Err(outcome);
    }
    let message = answer
        .json()
        .and_then(|doc| doc.pointer("/choices/0/message").cloned());
    match message {
        Some(message) if message.is_object() => {
            let content = message
                .get("content")
                .and_then(|c| c.as_str())
                .unwrap_or_default()
                .to_string();
            Ok((answer, content))
        }
        _ => Err(Outcome::fail(
            format!(
                "POST {url} answered {} with something that is not an OpenAI chat completion: {}",
                answer.status,
                answer.excerpt(&ctx.inputs.secrets())
            ),
            "point the endpoint at an OpenAI-compatible server (vLLM, duo-selfhost serve); a model without a chat template also fails here (vLLM: --chat-template)",
        )),
    }
}

fn with_key(request: reqwest::RequestBuilder, ctx: &Context) -> reqwest::RequestBuilder {
    match &ctx.inputs.model_api_key {
        Some(key) => request.bearer_auth(key.expose()),
        None => request,
    }
}

fn unreachable_model(url: &str, failure: &Failure) -> Outcome {
    let hint = match failure {
        Failure::Connect(_) => "start the model server (duo-selfhost serve, or vLLM) and check the endpoint's host and port; the gateway container must reach it too (localhost inside a container is the container)",
        Failure::Timeout(_) | Failure::SlowBody { .. } => "the server does not answer in time: check that this port is the model server, and its logs (a stuck or overloaded server looks like this)",
        Failure::TooLarge(_) => "an OpenAI-compatible server answers with a small JSON document: check that the endpoint is the model server and not another server or a proxy",
        Failure::Tls(TransportFault::NotTls, _) => "the server speaks plain HTTP (or something else) on this port: use http:// in the endpoint, or the port where it serves TLS",
        Failure::Tls(TransportFault::WrongHost, _) => "use the host name the server's certificate names in the endpoint (the gateway must use it too), or reissue the certificate with a subjectAltName for this host",
        Failure::Tls(TransportFault::Expired, _) => "renew the model server's certificate",
        Failure::Tls(..) => "trust the model server's CA: pass --ca-cert FILE here, and give the gateway container SSL_CERT_FILE and REQUESTS_CA_BUNDLE pointing at a bundle with it",
        Failure::Protocol(_) => "check that the endpoint is an OpenAI-compatible server (vLLM, duo-selfhost serve) and that http/https is right",
    };
    Outcome::fail(format!("the model at {url} {}", failure.describe()), hint)
}

/// A failure for any status but 2xx.
fn bad_status(ctx: &Context, url: &str, answer: &Answer) -> Option<Outcome> {
    let excerpt = answer.excerpt(&ctx.inputs.secrets());
    let method_url = format!("{url} answered {}", answer.status);
    match answer.status {
        200..=299 => None,
        401 | 403 => Some(Outcome::fail(
            format!("{method_url}: the API key was refused"),
            "pass the key the model server expects with --model-api-key (or DUO_SELFHOST_MODEL_API_KEY) and set the same key on the self-hosted model in GitLab",
        )),
        503 => Some(Outcome::fail(
            format!("{method_url}: the server is up but not ready: {excerpt}"),
            "it may still be loading the model or be overloaded: wait a little and run doctor again; if it stays so, read the model server's logs",
        )),
        404 => Some(Outcome::fail(
            format!("{method_url} (not found): {excerpt}"),
            "the endpoint must be the server's OpenAI base, http(s)://<host>:<port>/v1, and the identifier a served model (vLLM: --served-model-name; a model without a chat template also answers 404)",
        )),
        status => Some(Outcome::fail(
            format!("{method_url}: {excerpt}"),
            if status >= 500 {
                "the model server answers but fails: read its logs (duo-selfhost serve prints them; vLLM: docker logs <container>)"
            } else {
                "the model server refused the request: read its logs, and check the identifier and key"
            },
        )),
    }
}

pub fn family(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let mut names: Vec<String> = Vec::new();
        names.extend(ctx.inputs.catalog_name.clone());
        names.extend(identifier(&ctx).map(|id| id.model));
        names.extend(ctx.facts().served_models);
        if names.is_empty() {
            return Outcome::skip(NO_MODEL_NAME);
        }
        let Some(model) = names.iter().find_map(|name| catalog_model(name)) else {
            return Outcome::warn(
                format!("{} is not in duo-selfhost's catalog of GitLab-approved models", names[0]),
                "pick an approved model (duo-selfhost models list); GitLab 18.3+ can use any compatible model with family `general`",
            );
        };
        let features = served_features(model);
        match model.status {
            catalog::Status::Approved => Outcome::ok(format!(
                "{} (family {}) is GitLab-approved for {features}",
                model.name, model.family
            )),
            catalog::Status::Evaluation => Outcome::warn(
                format!(
                    "{} (family {}) is under evaluation, not generally available",
                    model.name, model.family
                ),
                "pick an approved model for production (duo-selfhost models list); beta models need the testing agreement in Admin > GitLab Duo",
            ),
            catalog::Status::Demo => Outcome::ok(format!(
                "{} is the demo model for trying the chain out (not GitLab-approved; serves {features})",
                model.name
            )),
        }
    })
}

fn served_features(model: &catalog::Model) -> String {
    let features: Vec<&str> = model
        .uses()
        .into_iter()
        .map(catalog::DuoUse::words)
        .collect();
    if features.is_empty() {
        "no Duo feature".into()
    } else {
        features.join(", ")
    }
}

/// The catalog entry for a served or configured name: `smollm2-135m`, an alias, or a path
/// such as `mistralai/Codestral-22B-v0.1` whose last part names it.
fn catalog_model(name: &str) -> Option<&'static catalog::Model> {
    let last = name.rsplit('/').next().unwrap_or(name);
    catalog::find(name)
        .or_else(|| catalog::find(last))
        .or_else(|| {
            let lower = last.to_ascii_lowercase();
            catalog::MODELS
                .iter()
                .find(|m| lower.starts_with(m.name) || m.aliases.iter().any(|a| lower == *a))
        })
}

/// Bedrock's cross-region inference profiles start with one of these.
const BEDROCK_REGION_PREFIXES: &[&str] =
    &["us", "eu", "apac", "us-gov", "global", "ca", "jp", "au"];

pub fn bedrock_identifier(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(id) = identifier(&ctx).filter(|id| id.provider == "bedrock") else {
            return Outcome::skip("the model identifier is not bedrock/...");
        };
        let first = id.model.split('.').next().unwrap_or_default();
        let parts = id.model.split('.').count();
        if BEDROCK_REGION_PREFIXES.contains(&first) && parts >= 3 {
            Outcome::ok(format!("bedrock/{} is an inference profile", id.model))
        } else {
            Outcome::fail(
                format!(
                    "bedrock/{} is an on-demand model id, not an inference profile: Bedrock answers \"on-demand throughput isn't supported\"",
                    id.model
                ),
                format!(
                    "use the inference profile, with your region's prefix: bedrock/us.{} (eu., apac. ...)",
                    id.model
                ),
            )
        }
    })
}

pub fn bedrock_credentials(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        if !is_bedrock(&ctx) {
            return Outcome::skip("the model identifier is not bedrock/...");
        }
        let Some(container) = ctx.facts().container else {
            return Outcome::skip(
                "no local gateway container to read the credentials from (pass --container NAME)",
            );
        };
        let has = |key: &str| container.env.get(key).is_some_and(|v| !v.is_empty());
        let mut missing: Vec<&str> = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
            .into_iter()
            .filter(|k| !has(k))
            .collect();
        if !has("AWS_REGION_NAME") && !has("AWS_REGION") {
            missing.push("AWS_REGION_NAME");
        }
        if missing.is_empty() {
            Outcome::ok(format!(
                "the gateway container {} has AWS credentials and a region",
                container.name
            ))
        } else {
            Outcome::fail(
                format!(
                    "the gateway container {} lacks {} (Bedrock credentials live only in the gateway's env)",
                    container.name,
                    missing.join(", ")
                ),
                format!(
                    "recreate the gateway with -e {}=... (duo-selfhost upgrade keeps the rest of its env)",
                    missing.join("=... -e ")
                ),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_url_strips_one_trailing_v1() {
        assert_eq!(models_url("http://h:8000/v1"), "http://h:8000/v1/models");
        assert_eq!(models_url("http://h:8000/v1/"), "http://h:8000/v1/models");
        assert_eq!(models_url("http://h:8000"), "http://h:8000/v1/models");
        assert_eq!(
            chat_url("http://h:8000/v1/"),
            "http://h:8000/v1/chat/completions"
        );
    }

    #[test]
    fn identifiers_parse_like_the_gateway() {
        assert_eq!(
            parse_identifier("custom_openai/codestral"),
            Identifier {
                provider: "custom_openai".into(),
                model: "codestral".into()
            }
        );
        assert_eq!(parse_identifier("mistral").provider, "custom_openai");
        assert_eq!(
            parse_identifier("bedrock/us.anthropic.claude-3-5-sonnet").model,
            "us.anthropic.claude-3-5-sonnet"
        );
    }

    #[test]
    fn a_duo_selfhost_serve_says_where_the_model_runs() {
        let doc = json!({"object": "list", "data": [
            {"id": "small", "backend": "CPU", "devices": [], "layers": 31, "offloaded_layers": 0},
            {"id": "big", "backend": "Vulkan", "devices": ["Vulkan0"], "layers": 19, "offloaded_layers": 19},
        ]});
        assert_eq!(
            serve_backend(&doc, None).as_deref(),
            Some("runs on the CPU (0/31 layers offloaded)")
        );
        assert_eq!(
            serve_backend(&doc, Some("big")).as_deref(),
            Some("runs on Vulkan, 19/19 layers on Vulkan0")
        );
        // vLLM and other servers list no backend: nothing to say.
        let vllm = json!({"object": "list", "data": [{"id": "codestral", "owned_by": "vllm"}]});
        assert_eq!(serve_backend(&vllm, Some("codestral")), None);
    }

    #[test]
    fn fim_body_is_suffix_first_like_the_gateway() {
        let body = codestral_fim_body("codestral", "PRE", "SUF");
        assert_eq!(body["messages"][1]["content"], "<s>[SUFFIX]SUF[PREFIX]PRE");
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["temperature"], 0.32);
        assert_eq!(body["stop"].as_array().unwrap().len(), 5);
    }
}
