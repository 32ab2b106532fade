//! A fake GitLab for tests: an HTTP (or HTTPS) server on 127.0.0.1 and a random port that
//! answers with the shapes documented in `gitlab-duo-self-hosted.md` section 5. Only what
//! cannot run here (a GitLab instance) is faked; clients under test are real.
//!
//! ```ignore
//! mod support;
//! use support::gitlab_fixture::{FakeGitlab, FakeGitlabConfig, Failure};
//!
//! let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token("glpat-test"));
//! // ... point the code under test at gitlab.url (with token "glpat-test") ...
//! assert_eq!(gitlab.feature_state("ai_custom_model").as_deref(), Some("on"));
//! gitlab.set_failure(Failure::Hang); // every request now hangs (client timeouts)
//!
//! let tls = FakeGitlab::start_https(FakeGitlabConfig::new("18.1.1-ee"));
//! // tls.url is https://127.0.0.1:PORT; tls.ca_cert is the self-signed certificate (PEM)
//! // the server uses, made with the openssl CLI, to pass as --ca-cert.
//! ```
//!
//! Endpoints: `GET /api/v4/metadata` (token), `GET /-/readiness` (open; 503 when not ready),
//! `GET /api/v4/license` (admin; 404 without licence), `GET /api/v4/features` and
//! `POST /api/v4/features/:name` with `value=true|false` (admin), `POST /api/graphql` with
//! `duoSettings { aiGatewayUrl }` and `duoSettingsUpdate(input: {aiGatewayUrl})` (17.9+; newer
//! or, with `legacy_mutation_payload`, older payload shape; non-http(s) URLs get GitLab's
//! scheme error), `aiSelfHostedModels { nodes { name model endpoint identifier } }` (admin),
//! `GET /api/v4/projects` (anonymous), and `POST /api/v4/code_suggestions/completions`: Rails'
//! own refusals (401, 404 without a gateway, 422 `missing_default_duo_group`) carry
//! `X-GitLab-Error-Origin: monolith`; otherwise the request goes to the gateway's
//! `/v2/code/completions` with the stored model's settings and its answer is relayed as it is,
//! as Workhorse does. Every request is recorded.
//!
//! Self-hosted models and features (reference section 3.2a), admin only (others get GitLab's
//! "does not exist or you don't have permission"): the schema question `__type(name:)` for
//! `AiAcceptedSelfHostedModels` (its values differ by version: 17.x, 18.0-18.2, and from 18.3
//! with `GENERAL`) and `AiFeatures`; `aiSelfHostedModelCreate`/`Update` (a family outside the
//! version's enum is GraphQL's invalid-value error, a taken name a payload error);
//! `aiSelfHostedModelConnectionCheck`, which calls the model endpoint's `/models` itself, with the
//! API key, and fails unless the identifier's model is listed; `aiFeatureSettings` and
//! `aiFeatureSettingUpdate` (an empty list and a family the feature does not accept are payload
//! errors). [`FakeGitlab::graphql_calls`] returns what each operation was sent.
//!
//! The server runs on its own thread and runtime, so sync tests (running the binary) and
//! async tests can both use it. Dropping the `FakeGitlab` stops it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// A failure the whole fake GitLab shows, for error-path tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    None,
    /// Every /api/ call answers 401, whatever the token.
    Unauthorized,
    /// Every path answers 404, as a server that is not GitLab would.
    NotFound,
    /// Every request is accepted and never answered.
    Hang,
}

/// What the fake GitLab is. Build with [`FakeGitlabConfig::new`] and the setters.
#[derive(Debug, Clone)]
pub struct FakeGitlabConfig {
    /// As `/api/v4/metadata` reports it, such as `17.5.0-ee`.
    pub version: String,
    pub revision: String,
    pub enterprise: bool,
    /// The one valid token; `None` accepts calls without a token.
    pub token: Option<String>,
    /// Whether the token belongs to an administrator (licence, features, Duo settings).
    pub admin: bool,
    pub failure: Failure,
    /// The licence JSON; `None` answers 404 like an instance without a licence.
    pub license: Option<Value>,
    /// Feature flags already set: (name, state).
    pub features: Vec<(String, String)>,
    pub ai_gateway_url: Option<String>,
    /// Answer `duoSettingsUpdate` in the older shape (`aiGatewayUrl` at the payload's top).
    pub legacy_mutation_payload: bool,
    pub ready: bool,
    /// Status of the anonymous `GET /api/v4/projects` (403 on instances restricting it).
    pub projects_status: u16,
    /// Self-hosted models as `aiSelfHostedModels` lists them; the first serves code completion.
    pub self_hosted_models: Vec<SelfHostedModel>,
    /// The token's user has no default GitLab Duo namespace: code suggestions answer 422.
    pub missing_default_duo_group: bool,
    /// Every feature's provider and model; GitLab's default is `vendored`.
    pub feature_settings: Vec<FeatureRow>,
    next_model_id: u64,
}

/// One row of GitLab's feature settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureRow {
    /// Lower case, as GitLab keys it: `code_completions`.
    pub feature: String,
    /// `vendored`, `self_hosted`, `disabled` or `unassigned`.
    pub provider: String,
    /// The self-hosted model's id.
    pub model_id: Option<u64>,
}

/// GitLab's stable features, then its beta ones.
pub const STABLE_FEATURES: &[&str] = &[
    "code_completions",
    "code_generations",
    "duo_chat",
    "duo_chat_explain_code",
    "duo_chat_write_tests",
    "duo_chat_refactor_code",
    "duo_chat_fix_code",
];
pub const BETA_FEATURES: &[&str] = &[
    "duo_chat_troubleshoot_job",
    "generate_commit_message",
    "summarize_new_merge_request",
    "duo_chat_explain_vulnerability",
];

/// The families a feature accepts: chat needs a chat-tuned family.
fn compatible_llms(feature: &str, families: &[&'static str]) -> Vec<&'static str> {
    let code_only = ["CODEGEMMA", "CODELLAMA", "DEEPSEEKCODER", "CODESTRAL"];
    families
        .iter()
        .copied()
        .filter(|f| !feature.starts_with("duo_chat") || !code_only.contains(f))
        .collect()
}

/// A self-hosted model registered in the fake GitLab.
#[derive(Debug, Clone)]
pub struct SelfHostedModel {
    pub name: String,
    /// The family, as GitLab's enum spells it (`CODESTRAL`).
    pub model: String,
    pub endpoint: String,
    pub identifier: String,
    /// The model's API key, which GitLab sends the gateway; never shown by GraphQL.
    pub api_key: Option<String>,
    pub id: u64,
}

impl SelfHostedModel {
    pub fn gid(&self) -> String {
        format!("gid://gitlab/Ai::SelfHostedModel/{}", self.id)
    }

    fn json(&self) -> Value {
        json!({
            "id": self.gid(), "name": self.name, "model": self.model, "endpoint": self.endpoint,
            "identifier": self.identifier, "hasApiToken": self.api_key.is_some(),
        })
    }
}

impl FakeGitlabConfig {
    /// An admin-token-free EE instance of `version`, ready, licensed, nothing configured.
    pub fn new(version: &str) -> Self {
        FakeGitlabConfig {
            version: version.to_string(),
            revision: "a1b2c3d4e5f".to_string(),
            enterprise: version.ends_with("-ee"),
            token: None,
            admin: true,
            failure: Failure::None,
            license: Some(json!({
                "id": 1, "plan": "ultimate", "expired": false,
                "expires_at": "2099-12-31", "user_limit": 100,
                "licensee": {"Name": "Test"}, "add_ons": {}
            })),
            features: Vec::new(),
            ai_gateway_url: None,
            legacy_mutation_payload: false,
            ready: true,
            projects_status: 200,
            self_hosted_models: Vec::new(),
            missing_default_duo_group: false,
            feature_settings: STABLE_FEATURES
                .iter()
                .chain(BETA_FEATURES)
                .map(|f| FeatureRow {
                    feature: f.to_string(),
                    provider: "vendored".to_string(),
                    model_id: None,
                })
                .collect(),
            next_model_id: 1,
        }
    }

    /// `AiAcceptedSelfHostedModels` as this version's schema has it.
    pub fn accepted_families(&self) -> Vec<&'static str> {
        if !self.version_at_least(17, 1) {
            return Vec::new();
        }
        let mut families = vec![
            "MISTRAL",
            "MIXTRAL",
            "CODEGEMMA",
            "CODESTRAL",
            "CODELLAMA",
            "DEEPSEEKCODER",
        ];
        if self.version_at_least(18, 0) {
            families.extend(["LLAMA3", "CLAUDE_3", "GPT"]);
        }
        if self.version_at_least(18, 3) {
            families.push("GENERAL");
        }
        families
    }

    /// Points `features` at the self-hosted model named `model`.
    pub fn assign(mut self, features: &[&str], model: &str) -> Self {
        let id = self
            .self_hosted_models
            .iter()
            .find(|m| m.name == model)
            .map(|m| m.id);
        for row in &mut self.feature_settings {
            if features.contains(&row.feature.as_str()) {
                row.provider = "self_hosted".into();
                row.model_id = id;
            }
        }
        self
    }

    /// Registers a Codestral-family self-hosted model at `endpoint` under `identifier`.
    pub fn self_hosted_model(mut self, endpoint: &str, identifier: &str) -> Self {
        let id = self.next_model_id;
        self.next_model_id += 1;
        self.self_hosted_models.push(SelfHostedModel {
            name: format!("model-{}", self.self_hosted_models.len() + 1),
            model: "CODESTRAL".into(),
            endpoint: endpoint.to_string(),
            identifier: identifier.to_string(),
            api_key: None,
            id,
        });
        self
    }

    /// Requires this token (as PRIVATE-TOKEN, or `Authorization: Bearer` on GraphQL).
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// The token is a regular user's: admin calls answer 403.
    pub fn non_admin(mut self) -> Self {
        self.admin = false;
        self
    }

    pub fn failure(mut self, failure: Failure) -> Self {
        self.failure = failure;
        self
    }

    pub fn feature(mut self, name: &str, state: &str) -> Self {
        self.features.push((name.to_string(), state.to_string()));
        self
    }

    pub fn ai_gateway_url(mut self, url: &str) -> Self {
        self.ai_gateway_url = Some(url.to_string());
        self
    }

    pub fn legacy_mutation_payload(mut self) -> Self {
        self.legacy_mutation_payload = true;
        self
    }

    pub fn not_ready(mut self) -> Self {
        self.ready = false;
        self
    }

    pub fn without_license(mut self) -> Self {
        self.license = None;
        self
    }

    fn version_at_least(&self, major: u64, minor: u64) -> bool {
        let core = self.version.trim_start_matches('v');
        let mut parts = core
            .split(['.', '-'])
            .map(|p| p.parse::<u64>().unwrap_or(0));
        let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (ma, mi) >= (major, minor)
    }
}

/// One request the fake GitLab received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The PRIVATE-TOKEN header, if sent.
    pub private_token: Option<String>,
    pub authorization: Option<String>,
    pub body: String,
}

struct Shared {
    config: Mutex<FakeGitlabConfig>,
    requests: Mutex<Vec<RecordedRequest>>,
}

/// A running fake GitLab. `url` has no trailing slash.
pub struct FakeGitlab {
    pub url: String,
    pub addr: SocketAddr,
    /// For the HTTPS variant: the server's self-signed certificate (PEM), to trust.
    pub ca_cert: Option<PathBuf>,
    shared: Arc<Shared>,
    _server: Background,
    _tls_dir: Option<tempfile::TempDir>,
}

impl FakeGitlab {
    /// Starts a plain-HTTP fake GitLab.
    pub fn start(config: FakeGitlabConfig) -> Self {
        Self::spawn(config, None)
    }

    /// Starts an HTTPS fake GitLab with a self-signed certificate for 127.0.0.1 and localhost,
    /// made with the `openssl` CLI. Clients must trust `ca_cert` to connect.
    pub fn start_https(config: FakeGitlabConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the certificate");
        let cert = dir.path().join("gitlab.crt");
        let key = dir.path().join("gitlab.key");
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=fake-gitlab",
            ])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "keyUsage=digitalSignature,keyEncipherment"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("the openssl CLI must be installed (scripts/install-deps)");
        assert!(
            status.status.success(),
            "openssl failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        let tls = tls_config(&cert, &key);
        let mut gitlab = Self::spawn(config, Some(tls));
        gitlab.ca_cert = Some(cert);
        gitlab._tls_dir = Some(dir);
        gitlab
    }

    fn spawn(
        config: FakeGitlabConfig,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    ) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            requests: Mutex::new(Vec::new()),
        });
        let state = shared.clone();
        let https = tls.is_some();
        let server = in_background(move || async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(handle).with_state(state);
            let _ = match tls {
                None => axum::serve(listener, app).await,
                Some(tls) => axum::serve(TlsListener::new(listener, tls), app).await,
            };
        });
        let scheme = if https { "https" } else { "http" };
        FakeGitlab {
            url: format!("{scheme}://{addr}"),
            addr,
            ca_cert: None,
            shared,
            _server: server,
            _tls_dir: None,
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The Duo gateway URL setting as the fake GitLab holds it now.
    pub fn ai_gateway_url(&self) -> Option<String> {
        self.shared.config.lock().unwrap().ai_gateway_url.clone()
    }

    /// A feature flag's state (`on`/`off`), if it was ever set.
    pub fn feature_state(&self, name: &str) -> Option<String> {
        let config = self.shared.config.lock().unwrap();
        config
            .features
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    }

    /// The self-hosted models as the fake GitLab holds them now (API keys included).
    pub fn self_hosted_models(&self) -> Vec<SelfHostedModel> {
        self.shared
            .config
            .lock()
            .unwrap()
            .self_hosted_models
            .clone()
    }

    /// A feature's provider and the name of its self-hosted model.
    pub fn feature_setting(&self, feature: &str) -> (String, Option<String>) {
        let config = self.shared.config.lock().unwrap();
        let row = config
            .feature_settings
            .iter()
            .find(|r| r.feature == feature)
            .expect("a feature the fake GitLab knows");
        let model = row.model_id.and_then(|id| {
            config
                .self_hosted_models
                .iter()
                .find(|m| m.id == id)
                .map(|m| m.name.clone())
        });
        (row.provider.clone(), model)
    }

    /// Every GraphQL call naming `operation` (`aiSelfHostedModelCreate`, `__type`), with the
    /// variables it was sent, in order.
    pub fn graphql_calls(&self, operation: &str) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r.path == "/api/graphql")
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
            .filter(|body| {
                body.get("query").and_then(Value::as_str).is_some_and(|q| {
                    q.contains(&format!("{operation}(")) || q.contains(&format!("{operation} "))
                })
            })
            .map(|body| body.get("variables").cloned().unwrap_or(Value::Null))
            .collect()
    }

    pub fn set_failure(&self, failure: Failure) {
        self.shared.config.lock().unwrap().failure = failure;
    }

    /// Changes the configuration while running.
    pub fn configure(&self, change: impl FnOnce(&mut FakeGitlabConfig)) {
        change(&mut self.shared.config.lock().unwrap());
    }
}

/// A server running on a thread of its own; dropping it stops the server and waits for the
/// thread (dropping the runtime drops hanging requests too).
pub struct Background {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs the future `server` makes on a thread of its own with a single-threaded runtime, until
/// it ends or the [`Background`] is dropped. Shared by the stand-in servers (GitLab, the
/// gateway).
pub fn in_background<F>(server: impl FnOnce() -> F + Send + 'static) -> Background
where
    F: std::future::Future<Output = ()>,
{
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            tokio::select! {
                _ = server() => {}
                _ = rx => {}
            }
        });
    });
    Background {
        shutdown: Some(tx),
        thread: Some(thread),
    }
}

/// A rustls server configuration presenting the PEM certificate chain and key at these paths.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Arc<tokio_rustls::rustls::ServerConfig> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

/// Accepts TCP connections and hands out those whose TLS handshake succeeded. Handshakes run
/// in their own tasks so one stuck client does not block the others.
struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
}

impl TlsListener {
    fn new(
        listener: tokio::net::TcpListener,
        tls: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> Self {
        let local = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    // A client that rejects the certificate ends the handshake: just drop it.
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = tx.send((stream, peer)).await;
                    }
                });
            }
        });
        TlsListener { ready: rx, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The caller's token: PRIVATE-TOKEN, else a bearer token.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    header(headers, "private-token").or_else(|| {
        header(headers, "authorization").and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
    })
}

/// `Some(is_admin)` when the token is acceptable; `None` means 401.
fn authenticate(config: &FakeGitlabConfig, headers: &HeaderMap) -> Option<bool> {
    match (&config.token, presented_token(headers)) {
        (None, _) => Some(config.admin),
        (Some(expected), Some(given)) if *expected == given => Some(config.admin),
        _ => None,
    }
}

fn unauthorized() -> Response {
    message(StatusCode::UNAUTHORIZED, "401 Unauthorized")
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    shared.requests.lock().unwrap().push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        private_token: header(&headers, "private-token"),
        authorization: header(&headers, "authorization"),
        body: body.clone(),
    });
    let failure = shared.config.lock().unwrap().failure;
    match failure {
        Failure::Hang => return std::future::pending::<Response>().await,
        Failure::NotFound => return message(StatusCode::NOT_FOUND, "404 Not Found"),
        Failure::Unauthorized if uri.path().starts_with("/api/") => {
            return message(StatusCode::UNAUTHORIZED, "401 Unauthorized")
        }
        _ => {}
    }
    if method == Method::POST && uri.path() == "/api/v4/code_suggestions/completions" {
        let config = shared.config.lock().unwrap().clone();
        return code_suggestion(&config, &headers, &body).await;
    }
    if method == Method::POST
        && uri.path() == "/api/graphql"
        && body.contains("aiSelfHostedModelConnectionCheck")
    {
        let config = shared.config.lock().unwrap().clone();
        return connection_check(&config, &headers, &body).await;
    }
    let mut config = shared.config.lock().unwrap();
    let path = uri.path();
    match (method.as_str(), path) {
        ("GET", "/-/readiness") => {
            if config.ready {
                Json(json!({"status": "ok", "master_check": [{"status": "ok"}]})).into_response()
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"status": "failed", "db_check": [{"status": "failed", "message": "PG::ConnectionBad"}]})),
                )
                    .into_response()
            }
        }
        ("GET", "/api/v4/projects") => {
            let status = StatusCode::from_u16(config.projects_status).unwrap_or(StatusCode::OK);
            if status.is_success() {
                Json(json!([])).into_response()
            } else {
                message(status, "403 Forbidden")
            }
        }
        ("GET", "/api/v4/metadata") => {
            if authenticate(&config, &headers).is_none() {
                return unauthorized();
            }
            Json(json!({
                "version": config.version,
                "revision": config.revision,
                "kas": {"enabled": false, "externalUrl": null, "externalK8sProxyUrl": null, "version": null},
                "enterprise": config.enterprise,
            }))
            .into_response()
        }
        ("GET", "/api/v4/license") => match authenticate(&config, &headers) {
            None => unauthorized(),
            Some(false) => message(StatusCode::FORBIDDEN, "403 Forbidden"),
            Some(true) => match &config.license {
                Some(license) => Json(license.clone()).into_response(),
                None => message(StatusCode::NOT_FOUND, "404 Not Found"),
            },
        },
        ("GET", "/api/v4/features") => match authenticate(&config, &headers) {
            None => unauthorized(),
            Some(false) => message(StatusCode::FORBIDDEN, "403 Forbidden"),
            Some(true) => Json(Value::Array(
                config
                    .features
                    .iter()
                    .map(|(n, s)| feature_json(n, s))
                    .collect(),
            ))
            .into_response(),
        },
        ("POST", p) if p.starts_with("/api/v4/features/") => {
            match authenticate(&config, &headers) {
                None => return unauthorized(),
                Some(false) => return message(StatusCode::FORBIDDEN, "403 Forbidden"),
                Some(true) => {}
            }
            let name = p.trim_start_matches("/api/v4/features/").to_string();
            let value = form_or_json_value(&body);
            let state = match value.as_deref() {
                Some("true") => "on",
                Some("false") => "off",
                _ => {
                    return message(
                        StatusCode::BAD_REQUEST,
                        "400 Bad request - value is missing",
                    )
                }
            };
            match config.features.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = state.to_string(),
                None => config.features.push((name.clone(), state.to_string())),
            }
            (StatusCode::CREATED, Json(feature_json(&name, state))).into_response()
        }
        ("POST", "/api/graphql") => graphql(&mut config, &headers, &body),
        _ => message(StatusCode::NOT_FOUND, "404 Not Found"),
    }
}

/// Rails' own refusal: the status, a JSON body, and the header that tells it from the gateway's.
fn monolith(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        "x-gitlab-error-origin",
        axum::http::HeaderValue::from_static("monolith"),
    );
    response
}

/// `POST /api/v4/code_suggestions/completions` as Rails and Workhorse answer it.
async fn code_suggestion(config: &FakeGitlabConfig, headers: &HeaderMap, body: &str) -> Response {
    if authenticate(config, headers).is_none() {
        return monolith(
            StatusCode::UNAUTHORIZED,
            json!({"message": "401 Unauthorized"}),
        );
    }
    if config.missing_default_duo_group {
        return monolith(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "missing_default_duo_group"}),
        );
    }
    let completion_model = config
        .feature_settings
        .iter()
        .find(|r| r.feature == "code_completions" && r.provider == "self_hosted")
        .and_then(|r| r.model_id)
        .and_then(|id| config.self_hosted_models.iter().find(|m| m.id == id));
    let (Some(gateway), Some(model)) = (
        &config.ai_gateway_url,
        completion_model.or(config.self_hosted_models.first()),
    ) else {
        return monolith(StatusCode::NOT_FOUND, json!({"message": "404 Not Found"}));
    };
    let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let forwarded = json!({
        "current_file": request.get("current_file").cloned().unwrap_or(Value::Null),
        "stream": false,
        "model_provider": "litellm",
        "model_name": model.model.to_lowercase(),
        "model_endpoint": model.endpoint,
        "model_identifier": model.identifier,
        "model_api_key": model.api_key.clone().unwrap_or_default(),
        "prompt_version": 2,
    });
    let url = format!("{}/v2/code/completions", gateway.trim_end_matches('/'));
    let sent = reqwest::Client::new()
        .post(&url)
        .header("authorization", "Bearer fake-gitlab-issued-jwt")
        .header("x-gitlab-authentication-type", "oidc")
        .json(&forwarded)
        .timeout(std::time::Duration::from_secs(55))
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            let content_type = answer
                .headers()
                .get("content-type")
                .cloned()
                .unwrap_or(axum::http::HeaderValue::from_static("text/plain"));
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            response.headers_mut().insert("content-type", content_type);
            response
        }
        // Workhorse's answer when the gateway cannot be reached.
        Err(_) => (StatusCode::BAD_GATEWAY, "Bad Gateway").into_response(),
    }
}

fn feature_json(name: &str, state: &str) -> Value {
    json!({
        "name": name,
        "state": state,
        "gates": [{"key": "boolean", "value": state == "on"}],
        "definition": null,
    })
}

/// `value` from `value=true` or `{"value": true}`.
fn form_or_json_value(body: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        return json.get("value").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "value")
        .map(|(_, v)| v.to_string())
}

fn graphql_error(text: &str) -> Response {
    Json(json!({ "errors": [{ "message": text }] })).into_response()
}

fn graphql(config: &mut FakeGitlabConfig, headers: &HeaderMap, body: &str) -> Response {
    let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let query = request
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let variables = request.get("variables").cloned().unwrap_or(Value::Null);
    let admin = match (&config.token, presented_token(headers)) {
        (_, None) => false,
        (None, Some(_)) => config.admin,
        (Some(expected), Some(given)) if *expected == given => config.admin,
        (Some(_), Some(_)) => return graphql_error("Invalid token"),
    };
    let supported = config.version_at_least(17, 9);
    let no_permission = "The resource that you are attempting to access does not exist or you don't have permission to perform this action";

    if let Some(at) = query.find("duoSettingsUpdate") {
        if !supported {
            return graphql_error("Field 'duoSettingsUpdate' doesn't exist on type 'Mutation'");
        }
        let selection = &query[at..];
        let selection = selection.split_once(')').map(|(_, s)| s).unwrap_or("");
        let asks_nested = selection.contains("duoSettings");
        if config.legacy_mutation_payload && asks_nested {
            return graphql_error(
                "Field 'duoSettings' doesn't exist on type 'DuoSettingsUpdatePayload'",
            );
        }
        if !config.legacy_mutation_payload && !asks_nested && selection.contains("aiGatewayUrl") {
            return graphql_error(
                "Field 'aiGatewayUrl' doesn't exist on type 'DuoSettingsUpdatePayload'",
            );
        }
        if !admin {
            return Json(json!({
                "data": {"duoSettingsUpdate": null},
                "errors": [{"message": no_permission}]
            }))
            .into_response();
        }
        let url = variables
            .as_object()
            .and_then(|v| v.values().find_map(Value::as_str))
            .map(str::to_string)
            .or_else(|| {
                let re = regex::Regex::new(r#"aiGatewayUrl:\s*"([^"]*)""#).unwrap();
                re.captures(&query).map(|c| c[1].to_string())
            })
            .unwrap_or_default();
        let mut errors = Vec::new();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            errors.push(
                "Ai gateway url is not allowed: Only allowed schemes are http, https".to_string(),
            );
        } else {
            config.ai_gateway_url = Some(url);
        }
        let current = config.ai_gateway_url.clone();
        let payload = if config.legacy_mutation_payload {
            json!({"aiGatewayUrl": if errors.is_empty() { current } else { None }, "errors": errors})
        } else {
            json!({
                "duoSettings": if errors.is_empty() { json!({"aiGatewayUrl": current}) } else { Value::Null },
                "errors": errors
            })
        };
        return Json(json!({"data": {"duoSettingsUpdate": payload}})).into_response();
    }
    if query.contains("__type(") {
        let name = variables
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let values: Option<Vec<String>> = match name {
            "AiAcceptedSelfHostedModels" if config.version_at_least(17, 1) => Some(
                config
                    .accepted_families()
                    .iter()
                    .map(|f| f.to_string())
                    .collect(),
            ),
            "AiFeatures" if config.version_at_least(17, 1) => Some(
                config
                    .feature_settings
                    .iter()
                    .map(|r| r.feature.to_uppercase())
                    .collect(),
            ),
            _ => None,
        };
        let answer = values.map(
            |v| json!({"enumValues": v.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()}),
        );
        return Json(json!({"data": {"__type": answer}})).into_response();
    }
    for operation in [
        "aiSelfHostedModelCreate",
        "aiSelfHostedModelUpdate",
        "aiFeatureSettingUpdate",
        "aiFeatureSettings",
    ] {
        if query.contains(operation) && !admin {
            return Json(json!({
                "data": {operation: null},
                "errors": [{"message": no_permission}]
            }))
            .into_response();
        }
    }
    if query.contains("aiSelfHostedModelCreate") || query.contains("aiSelfHostedModelUpdate") {
        return save_model(config, &query, &variables);
    }
    if query.contains("aiFeatureSettingUpdate") {
        return update_feature_settings(config, &variables);
    }
    if query.contains("aiFeatureSettings") {
        let view: &FakeGitlabConfig = config;
        let nodes: Vec<Value> = view
            .feature_settings
            .iter()
            .map(|row| feature_setting_json(view, row))
            .collect();
        return Json(json!({"data": {"aiFeatureSettings": {"nodes": nodes}}})).into_response();
    }
    if query.contains("aiSelfHostedModels") {
        if !admin {
            return Json(json!({
                "data": {"aiSelfHostedModels": null},
                "errors": [{"message": no_permission}]
            }))
            .into_response();
        }
        let nodes: Vec<Value> = config
            .self_hosted_models
            .iter()
            .map(SelfHostedModel::json)
            .collect();
        return Json(json!({"data": {"aiSelfHostedModels": {"nodes": nodes}}})).into_response();
    }
    if query.contains("duoSettings") {
        if !supported {
            return graphql_error("Field 'duoSettings' doesn't exist on type 'Query'");
        }
        if !admin {
            return Json(json!({
                "data": {"duoSettings": null},
                "errors": [{"message": no_permission}]
            }))
            .into_response();
        }
        return Json(json!({"data": {"duoSettings": {"aiGatewayUrl": config.ai_gateway_url}}}))
            .into_response();
    }
    graphql_error("the fake GitLab does not answer this query")
}

/// The family's name as GitLab's messages write it: `CODEGEMMA` -> `Codegemma`.
fn family_title(family: &str) -> String {
    let lower = family.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn feature_title(feature: &str) -> String {
    feature
        .split('_')
        .map(family_title)
        .collect::<Vec<_>>()
        .join(" ")
}

fn feature_setting_json(config: &FakeGitlabConfig, row: &FeatureRow) -> Value {
    let model = row.model_id.and_then(|id| {
        config
            .self_hosted_models
            .iter()
            .find(|m| m.id == id)
            .map(|m| json!({"id": m.gid(), "name": m.name}))
    });
    json!({
        "feature": row.feature,
        "provider": row.provider,
        "title": feature_title(&row.feature),
        "mainFeature": feature_title(row.feature.split("_chat_").next().unwrap_or(&row.feature)),
        "releaseState": if BETA_FEATURES.contains(&row.feature.as_str()) { "BETA" } else { "GA" },
        "compatibleLlms": compatible_llms(&row.feature, &config.accepted_families()),
        "selfHostedModel": model,
    })
}

/// GraphQL's own refusal of a value outside an enum: the operation does not run.
fn invalid_enum_value(input_type: &str, field: &str, value: &str, accepted: &[String]) -> Response {
    graphql_error(&format!(
        "Variable $input of type {input_type}! was provided invalid value for {field} (Expected \"{value}\" to be one of: {})",
        accepted.join(", ")
    ))
}

fn save_model(config: &mut FakeGitlabConfig, query: &str, variables: &Value) -> Response {
    let update = query.contains("aiSelfHostedModelUpdate");
    let (operation, input_type) = if update {
        ("aiSelfHostedModelUpdate", "AiSelfHostedModelUpdateInput")
    } else {
        ("aiSelfHostedModelCreate", "AiSelfHostedModelCreateInput")
    };
    let input = variables.get("input").cloned().unwrap_or(Value::Null);
    let text = |key: &str| input.get(key).and_then(Value::as_str).map(str::to_string);
    let family = text("model").unwrap_or_default();
    let accepted: Vec<String> = config
        .accepted_families()
        .iter()
        .map(|f| f.to_string())
        .collect();
    if !accepted.contains(&family) {
        return invalid_enum_value(input_type, "model", &family, &accepted);
    }
    let name = text("name").unwrap_or_default();
    let payload_error = |message: &str| {
        Json(json!({"data": {operation: {"selfHostedModel": null, "errors": [message]}}}))
            .into_response()
    };
    if name.is_empty() {
        return payload_error("Name can't be blank");
    }
    let id = if update {
        let gid = text("id").unwrap_or_default();
        match config
            .self_hosted_models
            .iter()
            .find(|m| m.gid() == gid)
            .map(|m| m.id)
        {
            Some(id) => id,
            None => return payload_error("Self-hosted model not found"),
        }
    } else {
        config.next_model_id
    };
    if config
        .self_hosted_models
        .iter()
        .any(|m| m.name == name && m.id != id)
    {
        return payload_error("Name has already been taken");
    }
    let model = SelfHostedModel {
        name,
        model: family,
        endpoint: text("endpoint").unwrap_or_default(),
        identifier: text("identifier").unwrap_or_default(),
        api_key: text("apiToken"),
        id,
    };
    match config.self_hosted_models.iter_mut().find(|m| m.id == id) {
        Some(slot) => {
            // An update without a key keeps the stored one, as GitLab's form does.
            let api_key = model.api_key.clone().or(slot.api_key.clone());
            *slot = SelfHostedModel {
                api_key,
                ..model.clone()
            };
        }
        None => {
            config.next_model_id += 1;
            config.self_hosted_models.push(model.clone());
        }
    }
    let saved = config
        .self_hosted_models
        .iter()
        .find(|m| m.id == id)
        .unwrap()
        .json();
    Json(json!({"data": {operation: {"selfHostedModel": saved, "errors": []}}})).into_response()
}

fn update_feature_settings(config: &mut FakeGitlabConfig, variables: &Value) -> Response {
    let input = variables.get("input").cloned().unwrap_or(Value::Null);
    let features: Vec<String> = input
        .get("features")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let known: Vec<String> = config
        .feature_settings
        .iter()
        .map(|r| r.feature.to_uppercase())
        .collect();
    if let Some(unknown) = features.iter().find(|f| !known.contains(f)) {
        return invalid_enum_value("AiFeatureSettingUpdateInput", "features", unknown, &known);
    }
    let payload_error = |message: String| {
        Json(json!({"data": {"aiFeatureSettingUpdate": {"aiFeatureSettings": [], "errors": [message]}}}))
            .into_response()
    };
    if features.is_empty() {
        return payload_error("Features can't be empty".to_string());
    }
    let provider = input
        .get("provider")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let gid = input
        .get("aiSelfHostedModelId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let model = config
        .self_hosted_models
        .iter()
        .find(|m| m.gid() == gid)
        .cloned();
    if provider == "self_hosted" {
        let Some(model) = &model else {
            return payload_error("Self-hosted model must exist".to_string());
        };
        for feature in &features {
            let key = feature.to_lowercase();
            let accepted = compatible_llms(&key, &config.accepted_families());
            if !accepted.contains(&model.model.as_str()) {
                return payload_error(format!(
                    "{} is incompatible with the {} feature",
                    family_title(&model.model),
                    feature_title(&key)
                ));
            }
        }
    }
    for row in &mut config.feature_settings {
        if features.contains(&row.feature.to_uppercase()) {
            row.provider = provider.clone();
            row.model_id = model
                .as_ref()
                .filter(|_| provider == "self_hosted")
                .map(|m| m.id);
        }
    }
    let view: &FakeGitlabConfig = config;
    let settings: Vec<Value> = view
        .feature_settings
        .iter()
        .filter(|r| features.contains(&r.feature.to_uppercase()))
        .map(|row| feature_setting_json(view, row))
        .collect();
    Json(json!({"data": {"aiFeatureSettingUpdate": {"aiFeatureSettings": settings, "errors": []}}}))
        .into_response()
}

/// `aiSelfHostedModelConnectionCheck`: GitLab has its gateway reach the model; here the fake
/// asks the endpoint's `/models` itself, with the API key, and wants the identifier's model
/// listed.
async fn connection_check(config: &FakeGitlabConfig, headers: &HeaderMap, body: &str) -> Response {
    let admin = match (&config.token, presented_token(headers)) {
        (_, None) => false,
        (None, Some(_)) => config.admin,
        (Some(expected), Some(given)) => *expected == given && config.admin,
    };
    if !admin {
        return Json(json!({
            "data": {"aiSelfHostedModelConnectionCheck": null},
            "errors": [{"message": "The resource that you are attempting to access does not exist or you don't have permission to perform this action"}]
        }))
        .into_response();
    }
    let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let input = request
        .pointer("/variables/input")
        .cloned()
        .unwrap_or(Value::Null);
    let text = |key: &str| {
        input
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let endpoint = text("endpoint");
    let identifier = text("identifier");
    let served = identifier
        .split_once('/')
        .map(|(_, name)| name.to_string())
        .unwrap_or(identifier.clone());
    let url = format!("{}/models", endpoint.trim_end_matches('/'));
    let mut call = reqwest::Client::new()
        .get(&url)
        .timeout(std::time::Duration::from_secs(10));
    let key = text("apiToken");
    if !key.is_empty() {
        call = call.bearer_auth(&key);
    }
    let (success, message) = match call.send().await {
        Err(e) => (false, format!("could not reach {url}: {e}")),
        Ok(answer) if !answer.status().is_success() => {
            (false, format!("{url} answered {}", answer.status()))
        }
        Ok(answer) => {
            let listing: Value = answer.json().await.unwrap_or(Value::Null);
            let ids: Vec<String> = listing
                .get("data")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|m| m.get("id").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if ids.contains(&served) {
                (
                    true,
                    "Successfully connected to the self-hosted model".to_string(),
                )
            } else {
                (
                    false,
                    format!(
                        "the model {served} is not served at {endpoint} (it serves: {})",
                        ids.join(", ")
                    ),
                )
            }
        }
    };
    Json(json!({"data": {"aiSelfHostedModelConnectionCheck": {
        "result": {
            "name": "self_hosted_model_connection",
            "success": success,
            "message": message,
            "errors": if success { Vec::<String>::new() } else { vec![message.clone()] },
            "details": {},
        },
        "errors": [],
    }}}))
    .into_response()
}
