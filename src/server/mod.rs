//! The OpenAI-compatible HTTP API over the engines: /v1/models, /v1/chat/completions,
//! /v1/completions (with fill-in-the-middle), /health and /metrics. A request's `model` picks
//! one of the served models (any name when only one is served).
//! Routes, keys, limits and errors here; each wire shape of a request becomes an engine input in
//! `request.rs`, each shape of an answer is rendered in `answer.rs`; decoding and scheduling
//! live in `engine`.

mod answer;
mod counters;
mod listen;
pub mod request;

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::BytesMut;
use futures_util::stream::StreamExt;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::engine::prompt::{self, FimMode, PromptError};
use crate::engine::{Engine, Event, FillRun, Input, Metrics, SamplingParams, SubmitError};
use crate::secret::Secret;
use answer::Answer;
use counters::RequestCounts;
pub use listen::serve;
use request::Delivery;

/// The response header that says how a fill-in-the-middle request was served.
pub const FIM_HEADER: &str = "x-duo-selfhost-fim";

pub struct ServerConfig {
    pub api_key: Option<Secret>,
    pub max_body_bytes: usize,
    /// The longest a request body may take to arrive.
    pub body_timeout: std::time::Duration,
}

/// A loaded model under the name clients ask for.
pub struct ServedModel {
    pub name: String,
    pub engine: Engine,
}

/// Shared by every handler. The engines arrive once every model is loaded; until then
/// /health and the /v1 routes answer 503.
pub struct AppState {
    pub config: ServerConfig,
    pub metrics: Arc<Metrics>,
    pub models: OnceLock<Vec<ServedModel>>,
    requests: RequestCounts,
    created: u64,
}

impl AppState {
    pub fn new(config: ServerConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(AppState {
            config,
            metrics,
            models: OnceLock::new(),
            requests: RequestCounts::default(),
            created: unix_now(),
        })
    }

    fn loaded(&self) -> Result<&[ServedModel], ApiError> {
        self.models.get().map(Vec::as_slice).ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the model is still loading; retry shortly",
                "server_error",
                "model_loading",
            )
            .retry_after(2)
        })
    }

    /// The model a request names. With one model served, any name (or none) is that model, as
    /// clients configured for another server's name keep working; with several, the name must
    /// be one of theirs.
    fn pick(&self, asked: Option<&str>) -> Result<&ServedModel, ApiError> {
        let models = self.loaded()?;
        if let [only] = models {
            return Ok(only);
        }
        let names = || {
            models
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match asked {
            None => Err(ApiError::bad_request(format!(
                "name the model: this server serves {}",
                names()
            ))),
            Some(name) => models.iter().find(|m| m.name == name).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("the model `{name}` is not served here; served: {}", names()),
                    "invalid_request_error",
                    "model_not_found",
                )
            }),
        }
    }

    /// The model a request names, when it has the context for the tokens asked: up to that,
    /// generation stops at the slot's end with finish_reason "length".
    fn pick_for(
        &self,
        asked: Option<&str>,
        params: &SamplingParams,
    ) -> Result<&ServedModel, ApiError> {
        let served = self.pick(asked)?;
        let info = &served.engine.info;
        let context = info.n_ctx_train.max(info.slot_context);
        match params.max_tokens {
            Some(n) if n > context => Err(ApiError::bad_request(format!(
                "max_tokens {n} is more than this model's context of {context} tokens"
            ))),
            _ => Ok(served),
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(v1)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            counters::count_requests,
        ))
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An OpenAI-shaped error: `{"error": {"message", "type", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    code: &'static str,
    retry_after: Option<u32>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        message: impl Into<String>,
        kind: &'static str,
        code: &'static str,
    ) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            code,
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            message,
            "invalid_request_error",
            "invalid_request",
        )
    }

    fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"message": self.message, "type": self.kind, "code": self.code}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::QueueFull(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                e.to_string(),
                "server_error",
                "queue_full",
            )
            .retry_after(1),
            SubmitError::PromptTooLong { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{e}; shorten the prompt or restart serve with a larger --ctx-size"),
                "invalid_request_error",
                "context_length_exceeded",
            ),
            SubmitError::Stopped => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                e.to_string(),
                "server_error",
                "shutting_down",
            ),
        }
    }
}

impl From<PromptError> for ApiError {
    fn from(e: PromptError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route",
        "invalid_request_error",
        "not_found",
    )
}

// ---------------------------------------------------------------------------------------------
// Middleware

/// Every /v1 route needs the key when one is set. The digests are compared in constant time,
/// so neither the key's bytes nor its length leak through timing.
async fn require_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.config.api_key {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let expected = sha2_digest(key.expose().as_bytes());
        let offered = sha2_digest(given.as_bytes());
        if !bool::from(expected.ct_eq(&offered)) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong API key: send it as `Authorization: Bearer <key>`",
                "invalid_request_error",
                "invalid_api_key",
            )
            .into_response();
        }
    }
    next.run(request).await
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

// ---------------------------------------------------------------------------------------------
// Plain routes

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.models.get() {
        Some(_) => Json(json!({"status": "ok"})).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading"})),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        // The HTTP layer's counts first, then the engine's.
        state.requests.render() + &state.metrics.render(),
    )
        .into_response()
}

async fn list_models(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state
        .loaded()?
        .iter()
        .map(|served| {
            let engine = &served.engine;
            json!({
                "id": served.name,
                "object": "model",
                "created": state.created,
                "owned_by": "duo-selfhost",
                "fim": engine.info.fim.label(),
                "fim_layout": engine.info.fim.layout().map(|l| l.label()),
                "kv_reuse": engine.info.kv_reuse.label(),
                "chat_template": engine.info.chat_template.label(),
                "context_length": engine.info.slot_context,
                "n_ctx_train": engine.info.n_ctx_train,
                "parallel": engine.info.parallel,
                "backend": engine.info.offload.backend,
                "devices": engine.info.offload.devices,
                "layers": engine.info.offload.layers,
                "offloaded_layers": engine.info.offload.offloaded,
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

/// Reads the body within the size limit and the time limit: a declared length over the limit is
/// refused before anything is read, and a sender slower than `body_timeout` gets a 408.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.config.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over the limit of {limit} bytes (serve --max-body-bytes)"),
            "invalid_request_error",
            "body_too_large",
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let timeout = state.config.body_timeout;
    let mut collected = BytesMut::new();
    let read = tokio::time::timeout(timeout, async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(format!("the request body could not be read: {e}"))
            })?;
            if collected.len() + chunk.len() > limit {
                return Err(too_large());
            }
            collected.extend_from_slice(&chunk);
        }
        Ok(())
    })
    .await;
    match read {
        Ok(Ok(())) => Ok(collected.freeze()),
        Ok(Err(refused)) => Err(refused),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s (serve --body-timeout)",
                timeout.as_secs_f32()
            ),
            "invalid_request_error",
            "body_timeout",
        )),
    }
}

impl From<request::Invalid> for ApiError {
    fn from(e: request::Invalid) -> Self {
        ApiError::bad_request(e.0)
    }
}

async fn chat_completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = request::parse_chat(&read_body(&state, &headers, body).await?)?;
    let served = state.pick_for(call.model.as_deref(), &call.params)?;
    let input = request::chat_input(call.messages, call.continue_final);
    let answer = Answer::chat(&served.name);
    run(&served.engine, input, call.params, call.delivery, answer).await
}

async fn completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = request::parse_completion(&read_body(&state, &headers, body).await?)?;
    let served = state.pick_for(call.model.as_deref(), &call.params)?;
    let input = request::completion_input(call.prompt, call.suffix)?;
    let answer = Answer::text(&served.name);
    run(&served.engine, input, call.params, call.delivery, answer).await
}

async fn run(
    engine: &Engine,
    input: Input,
    params: SamplingParams,
    delivery: Delivery,
    answer: Answer,
) -> Result<Response, ApiError> {
    let mut prepared = engine.prepare(input)?;
    let fill = prepared.fill.take();
    let mut events = engine.submit(prepared, params)?;
    let fim = fill.as_ref().map(|fill| fill.mode);
    if let Some(FillRun {
        mode: FimMode::Emulated,
        suffix,
    }) = fill
    {
        events = cleaned_fill(events, suffix);
    }
    let mut response = if delivery.stream {
        answer::stream(events, answer, delivery.include_usage).into_response()
    } else {
        answer::whole(events, answer).await?.into_response()
    };
    if let Some(mode) = fim {
        response
            .headers_mut()
            .insert(FIM_HEADER, HeaderValue::from_static(mode.label()));
    }
    Ok(response)
}

/// An emulated fill's answer, cleaned before it leaves (the gateway passes a completion to the
/// editor as it is): held back until done, then sent as one piece.
fn cleaned_fill(mut events: UnboundedReceiver<Event>, suffix: String) -> UnboundedReceiver<Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut text = String::new();
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(Event::Text(piece)) => text.push_str(&piece),
                    Some(done @ Event::Done { .. }) => {
                        let cleaned = prompt::clean_emulated_fill(&text, &suffix);
                        if !cleaned.is_empty() {
                            let _ = tx.send(Event::Text(cleaned));
                        }
                        let _ = tx.send(done);
                        return;
                    }
                    Some(failed @ Event::Failed(_)) => {
                        let _ = tx.send(failed);
                        return;
                    }
                    None => return,
                },
                // The client went away: dropping `events` frees the slot.
                _ = tx.closed() => return,
            }
        }
    });
    rx
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn state(key: Option<&str>) -> Arc<AppState> {
        AppState::new(
            ServerConfig {
                api_key: key.map(Secret::new),
                max_body_bytes: 1024,
                body_timeout: std::time::Duration::from_secs(5),
            },
            Arc::new(Metrics::default()),
        )
    }

    async fn call(app: Router, method: &str, uri: &str, auth: Option<&str>) -> Response {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            request = request.header(header::AUTHORIZATION, a);
        }
        app.oneshot(request.body(Body::from("{}")).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn before_the_model_is_loaded_health_and_v1_answer_503() {
        let app = router(state(None));
        let health = call(app.clone(), "GET", "/health", None).await;
        assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
        let models = call(app, "GET", "/v1/models", None).await;
        assert_eq!(models.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(models.headers().contains_key(header::RETRY_AFTER));
        let body = axum::body::to_bytes(models.into_body(), 4096)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "model_loading");
    }

    #[tokio::test]
    async fn the_key_is_checked_before_anything_else() {
        let app = router(state(Some("k1")));
        for auth in [None, Some("Bearer k2"), Some("k1"), Some("Bearer k1 ")] {
            let r = call(app.clone(), "POST", "/v1/completions", auth).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        }
        // The right key passes the guard: to the body check, or to the loading model.
        let r = call(app.clone(), "POST", "/v1/completions", Some("Bearer k1")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = call(app, "GET", "/v1/models", Some("Bearer k1")).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
