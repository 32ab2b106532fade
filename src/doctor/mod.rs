//! The checks behind `duo-selfhost doctor`: each has a stable id grouped by component, runs
//! concurrently under its own deadline, and ends as a result (ok, warn, fail, skip or error) that
//! names the broken link and the exact fix. This file holds what every check shares (its
//! outcome, budget, context and facts); the table is `checks`, running it `runner`, `--only` and
//! `--skip` `selection`, the counts `summary`. Printing and exit codes live in `commands::doctor`.

pub mod bundle;
pub mod chain;
pub mod checks;
pub mod container;
pub mod fix;
pub mod gateway;
pub mod gitlab;
pub mod http;
pub mod inputs;
pub mod model;
pub mod registered;
mod runner;
mod selection;
mod summary;
pub mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use crate::units::seconds_text;
pub use inputs::Inputs;
pub use runner::{run_all, spawn_checks};
pub use selection::{pattern_matches, select, Selection};
pub use summary::{json_report, status_word, Summary};

/// Version of the `--json` document; bumped when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// Time the whole run may take beyond the per-check timeout, for scheduling and collection.
pub const RUN_MARGIN: Duration = Duration::from_millis(1500);

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
    /// The check itself broke (panicked, or did not finish in time).
    Error,
}

impl Status {
    /// Whether checks that need this one may run after it.
    fn lets_dependents_run(self) -> bool {
        matches!(self, Status::Ok | Status::Warn)
    }
}

/// What a check's body returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
    /// Measurements a program reading `--json` may want (latency, which hop broke, ...).
    pub details: Option<serde_json::Value>,
}

impl Outcome {
    pub fn ok(message: impl Into<String>) -> Self {
        Outcome {
            status: Status::Ok,
            message: message.into(),
            hint: None,
            details: None,
        }
    }

    pub fn warn(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Outcome {
            status: Status::Warn,
            message: message.into(),
            hint: Some(hint.into()),
            details: None,
        }
    }

    pub fn fail(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Outcome {
            status: Status::Fail,
            message: message.into(),
            hint: Some(hint.into()),
            details: None,
        }
    }

    /// Skipped because an input is absent or does not apply; the message says which.
    pub fn skip(reason: impl Into<String>) -> Self {
        Outcome {
            status: Status::Skip,
            message: reason.into(),
            hint: None,
            details: None,
        }
    }

    /// Adds the `--json` details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds or replaces the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// One finished check, as printed and as serialised in `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub id: &'static str,
    pub title: &'static str,
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
    pub duration_ms: u64,
    /// Only on checks that measure something (`chain.*`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// The time a check's body has left; network calls take their timeouts from it so that a
/// silent peer ends as a clear failure before the runner has to cut the check off.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub deadline: Instant,
}

impl Budget {
    /// The time left, less a little for the check to turn a timeout into a message.
    pub fn request_timeout(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(Duration::from_millis(250))
            .max(Duration::from_millis(50))
    }

    /// `request_timeout`, capped (healthz gets at most 10 s, as GitLab's rake task allows).
    pub fn request_timeout_capped(&self, cap: Duration) -> Duration {
        self.request_timeout().min(cap)
    }
}

pub type CheckFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A check: id, title, what it waits for, and its body.
#[derive(Clone, Copy)]
pub struct Check {
    /// Stable, grouped by component: `gitlab.version`, `gateway.healthz`, `model.fim`.
    pub id: &'static str,
    pub title: &'static str,
    /// Checks that must end ok (or warn) before this one means anything; otherwise it is
    /// skipped with their result as the reason.
    pub needs: &'static [&'static str],
    /// Checks to wait for (their facts help) without depending on their result.
    pub after: &'static [&'static str],
    pub run: fn(Arc<Context>, Budget) -> CheckFuture,
}

/// What checks learn and later checks use. Filled in as checks finish.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    /// GitLab's version from `/api/v4/metadata`.
    pub gitlab_version: Option<semver::Version>,
    /// The effective `gitlab_rails['env']` of gitlab.rb.
    pub gitlab_rb_env: Option<std::collections::BTreeMap<String, String>>,
    /// The model ids `GET /v1/models` lists.
    pub served_models: Vec<String>,
    /// The gateway container as the Docker Engine describes it.
    pub container: Option<ContainerFacts>,
    /// The Docker Engine, once `docker.engine` reached it.
    pub docker: Option<bollard::Docker>,
    /// The model endpoint GitLab stores (or, failing that, the one doctor was given).
    pub stored_model: Option<chain::StoredModel>,
    /// Whether the gateway container reached that endpoint from inside its network
    /// (`chain.gateway_to_model`); None when it could not be tried.
    pub gateway_reaches_model: Option<bool>,
}

#[derive(Debug, Default, Clone)]
pub struct ContainerFacts {
    pub name: String,
    pub image: String,
    pub env: HashMap<String, String>,
    pub running: bool,
    /// Docker's word for the state: running, exited, restarting...
    pub status: String,
    pub exit_code: i64,
    /// healthy, unhealthy or starting; None without a health check.
    pub health: Option<String>,
    pub restart_count: i64,
    pub network_mode: String,
    /// Container ports published on the host, such as "5052/tcp".
    pub published_ports: Vec<String>,
}

/// Shared by every check of one run.
pub struct Context {
    pub inputs: Inputs,
    pub facts: Mutex<Facts>,
    /// One HTTP client for the run's checks, made on first use: setting one up loads and parses
    /// the system's CA roots, which ten checks each doing it would pay ten times.
    http: OnceLock<Result<reqwest::Client, Outcome>>,
    /// The same with the peer's certificate kept on each response (`gateway.tls`).
    http_with_tls_info: OnceLock<Result<reqwest::Client, Outcome>>,
}

impl Context {
    pub fn new(inputs: Inputs) -> Self {
        Context {
            inputs,
            facts: Mutex::new(Facts::default()),
            http: OnceLock::new(),
            http_with_tls_info: OnceLock::new(),
        }
    }

    /// The run's HTTP client (trusting `--ca-cert` beside the system roots); with `tls_info`,
    /// responses carry the peer's certificate.
    pub fn http_client(&self, tls_info: bool) -> Result<reqwest::Client, Outcome> {
        let cell = if tls_info {
            &self.http_with_tls_info
        } else {
            &self.http
        };
        cell.get_or_init(|| http::client(self.inputs.ca_cert.as_deref(), tls_info))
            .clone()
    }

    /// A copy of the facts so far.
    pub fn facts(&self) -> Facts {
        self.facts.lock().map(|f| f.clone()).unwrap_or_default()
    }

    pub fn update_facts(&self, change: impl FnOnce(&mut Facts)) {
        if let Ok(mut facts) = self.facts.lock() {
            change(&mut facts);
        }
    }

    /// GitLab's version: what the API said, else what install recorded.
    pub fn gitlab_version(&self) -> Option<semver::Version> {
        self.facts()
            .gitlab_version
            .or_else(|| self.inputs.recorded_gitlab_version.clone())
    }
}
