//! A stand-in AI Gateway for the chain tests: `/monitoring/healthz`, and
//! `POST /v2/code/completions` answered the way the self-hosted gateway does for the Codestral
//! family (`gitlab-duo-self-hosted.md` 3.4a): a chat request to `<model_endpoint>/chat/completions`
//! with a system message and the user message `<s>[SUFFIX]{suffix}[PREFIX]{prefix}`,
//! max_tokens 64, temperature 0.32, the first four stop strings, `Bearer dummy_key` when no
//! key is set. A model that cannot be reached or answers an error becomes a bare 500, as the
//! real gateway's is. Only the gateway is faked; the model behind it is real.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The system message of the gateway's self-hosted Codestral completion (paraphrased).
const SYSTEM: &str = "You are a code completion assistant. Fill in the code between the \
prefix and the suffix of the file. Answer with the missing code only, no explanations.";

#[derive(Default)]
struct Shared {
    /// Each chat request the gateway sent the model.
    model_requests: Mutex<Vec<Value>>,
}

pub struct GatewayStandin {
    /// `http://HOST:PORT` with the host the caller chose (the server listens on every interface).
    pub url: String,
    pub port: u16,
    shared: Arc<Shared>,
    _server: super::gitlab_fixture::Background,
}

impl GatewayStandin {
    /// Starts on every interface; `host` is the name the URL carries (GitLab refuses localhost).
    pub fn start(host: &str) -> Self {
        let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind a port");
        listener.set_nonblocking(true).unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        let server = super::gitlab_fixture::in_background(move || async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(handle).with_state(state);
            let _ = axum::serve(listener, app).await;
        });
        GatewayStandin {
            url: format!("http://{host}:{}", addr.port()),
            port: addr.port(),
            shared,
            _server: server,
        }
    }

    /// The chat requests sent to the model so far.
    pub fn model_requests(&self) -> Vec<Value> {
        self.shared.model_requests.lock().unwrap().clone()
    }
}

fn internal_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match (method.as_str(), uri.path()) {
        ("GET", "/monitoring/healthz") => Json(json!({"status": "ok"})).into_response(),
        ("POST", "/v2/code/completions") => {
            if headers.get("authorization").is_none() {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": "No authorization header presented"})),
                )
                    .into_response();
            }
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            complete(&shared, &request).await
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "No authorization header presented"})),
        )
            .into_response(),
    }
}

async fn complete(shared: &Shared, request: &Value) -> Response {
    let text = |pointer: &str| {
        request
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let prefix = text("/current_file/content_above_cursor");
    let suffix = text("/current_file/content_below_cursor");
    let endpoint = text("/model_endpoint");
    let identifier = text("/model_identifier");
    let key = text("/model_api_key");
    if identifier.is_empty() {
        return internal_error();
    }
    let model = identifier
        .split_once('/')
        .map(|(_, m)| m.to_string())
        .unwrap_or(identifier.clone());
    let chat = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": format!("<s>[SUFFIX]{suffix}[PREFIX]{prefix}")},
        ],
        "max_tokens": 64,
        "temperature": 0.32,
        // LiteLLM keeps the first four of the prompt's five stop strings.
        "stop": ["[INST]", "[/INST]", "[PREFIX]", "[MIDDLE]"],
    });
    shared.model_requests.lock().unwrap().push(chat.clone());
    let bearer = if key.is_empty() {
        "dummy_key".into()
    } else {
        key
    };
    let sent = reqwest::Client::new()
        .post(format!(
            "{}/chat/completions",
            endpoint.trim_end_matches('/')
        ))
        .bearer_auth(bearer)
        .json(&chat)
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await;
    let Ok(answer) = sent else {
        return internal_error();
    };
    if !answer.status().is_success() {
        return internal_error();
    }
    let Ok(doc) = answer.json::<Value>().await else {
        return internal_error();
    };
    let content = doc
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Json(json!({
        "id": "id",
        "model": {"engine": "litellm", "name": identifier, "lang": "python"},
        "object": "text_completion",
        "created": 1_764_000_000,
        "choices": [{"text": content, "index": 0, "finish_reason": "length"}],
    }))
    .into_response()
}
