//! The checks behind `duo-selfhost doctor`: each has a stable id grouped by component, runs
//! concurrently under its own deadline, and ends as a result (ok, warn, fail, skip or error) that
//! names the broken link and the exact fix. Printing and exit codes live in `commands::doctor`.

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
pub mod tls;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use serde::Serialize;

pub use inputs::Inputs;

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

/// Which checks to run and which to print, from `--only` and `--skip` (ids or prefixes such as
/// `gateway.*` or `gateway`). Checks that a printed check needs run too, unprinted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub run: HashSet<&'static str>,
    pub print: HashSet<&'static str>,
}

/// Whether `pattern` (an id, `prefix.*` or a bare component) names `id`.
pub fn pattern_matches(pattern: &str, id: &str) -> bool {
    let pattern = pattern.trim();
    if let Some(prefix) = pattern.strip_suffix(".*").or(pattern.strip_suffix('*')) {
        let prefix = prefix.trim_end_matches('.');
        return prefix.is_empty() || id == prefix || id.starts_with(&format!("{prefix}."));
    }
    id == pattern || id.starts_with(&format!("{pattern}."))
}

/// Applies `--only`/`--skip`; a pattern that names no check is an error listing the ids.
pub fn select(checks: &[Check], only: &[String], skip: &[String]) -> Result<Selection, String> {
    for pattern in only.iter().chain(skip) {
        if !checks.iter().any(|c| pattern_matches(pattern, c.id)) {
            let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
            return Err(format!(
                "`{pattern}` names no check; the checks are: {}",
                ids.join(", ")
            ));
        }
    }
    let print: HashSet<&'static str> = checks
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|p| pattern_matches(p, c.id)))
        .filter(|c| !skip.iter().any(|p| pattern_matches(p, c.id)))
        .map(|c| c.id)
        .collect();
    let by_id: HashMap<&str, &Check> = checks.iter().map(|c| (c.id, c)).collect();
    let mut run = print.clone();
    let mut pending: Vec<&'static str> = print.iter().copied().collect();
    while let Some(id) = pending.pop() {
        if let Some(check) = by_id.get(id) {
            for dep in check.needs.iter().chain(check.after) {
                if run.insert(dep) {
                    pending.push(dep);
                }
            }
        }
    }
    Ok(Selection { run, print })
}

type SharedResult = Shared<BoxFuture<'static, CheckResult>>;

/// Runs `checks` concurrently on the current tokio runtime and sends each result with its index
/// in `checks`. A check waits for those it names that are in `checks` (a cycle, which the list
/// does not have, would leave its members unsent and so abandoned). Each body gets at most
/// `per_check`, and no more than the run's deadline leaves it; a panic becomes an `error`.
///
/// The caller enforces the run's outer bound (see [`run_all`]), because a body that blocks a
/// thread cannot be cut off from inside the runtime.
pub fn spawn_checks(
    checks: &[Check],
    ctx: Arc<Context>,
    per_check: Duration,
    deadline: Instant,
    sink: std::sync::mpsc::Sender<(usize, CheckResult)>,
) {
    let mut started: HashMap<&'static str, SharedResult> = HashMap::new();
    let present: HashSet<&'static str> = checks.iter().map(|c| c.id).collect();
    // Start checks once what they wait for has started, whatever the printing order.
    let mut waiting: Vec<(usize, Check)> = checks.iter().copied().enumerate().collect();
    let mut ready: Vec<(usize, Check)> = Vec::new();
    let mut ordered: HashSet<&'static str> = HashSet::new();
    loop {
        let (now, later): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(_, check)| {
            check
                .needs
                .iter()
                .chain(check.after)
                .all(|dep| !present.contains(dep) || ordered.contains(dep))
        });
        waiting = later;
        if now.is_empty() {
            break;
        }
        ordered.extend(now.iter().map(|(_, c)| c.id));
        ready.extend(now);
    }
    for (index, check) in ready {
        let hard: Vec<(&'static str, SharedResult)> = check
            .needs
            .iter()
            .filter_map(|id| started.get(id).map(|f| (*id, f.clone())))
            .collect();
        let soft: Vec<SharedResult> = check
            .after
            .iter()
            .filter_map(|id| started.get(id).cloned())
            .collect();
        let ctx = ctx.clone();
        let body = async move {
            for (dep_id, dep) in hard {
                let dep_result = dep.await;
                if !dep_result.status.lets_dependents_run() {
                    return CheckResult {
                        id: check.id,
                        title: check.title,
                        status: Status::Skip,
                        // A skip passes its root reason on; a failure is printed above.
                        message: if dep_result.status == Status::Skip {
                            dep_result.message.clone()
                        } else {
                            format!("needs {dep_id}, which {}", status_word(dep_result.status))
                        },
                        hint: None,
                        duration_ms: 0,
                        details: None,
                    };
                }
            }
            for dep in soft {
                dep.await;
            }
            run_one(check, ctx, per_check, deadline).await
        }
        .boxed()
        .shared();
        started.insert(check.id, body.clone());
        let sink = sink.clone();
        tokio::spawn(async move {
            let result = body.await;
            let _ = sink.send((index, result));
        });
    }
}

async fn run_one(
    check: Check,
    ctx: Arc<Context>,
    per_check: Duration,
    run_deadline: Instant,
) -> CheckResult {
    let start = Instant::now();
    let deadline = (start + per_check).min(run_deadline);
    let budget = Budget { deadline };
    let body = AssertUnwindSafe(async move { (check.run)(ctx, budget).await }).catch_unwind();
    let outcome = match tokio::time::timeout_at(deadline.into(), body).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => Outcome {
            status: Status::Error,
            message: format!("the check crashed: {}", panic_text(panic.as_ref())),
            hint: Some(
                "this is a bug in duo-selfhost: please report it with the output of `duo-selfhost doctor -v`"
                    .into(),
            ),
            details: None,
        },
        Err(_) => Outcome {
            status: Status::Error,
            message: format!(
                "the check did not finish within {}",
                seconds_text(deadline.saturating_duration_since(start))
            ),
            hint: Some("raise --timeout, or re-run with --skip for this check".into()),
            details: None,
        },
    };
    CheckResult {
        id: check.id,
        title: check.title,
        status: outcome.status,
        message: outcome.message,
        hint: outcome.hint,
        duration_ms: start.elapsed().as_millis() as u64,
        details: outcome.details,
    }
}

/// Runs the selected checks on their own runtime and returns every selected result in list
/// order, within `per_check` plus [`RUN_MARGIN`] whatever the checks do.
pub fn run_all(
    checks: &[Check],
    selection: &Selection,
    ctx: Arc<Context>,
    per_check: Duration,
) -> anyhow::Result<Vec<CheckResult>> {
    let to_run: Vec<Check> = checks
        .iter()
        .copied()
        .filter(|c| selection.run.contains(c.id))
        .collect();
    let runtime = crate::runtime::own_runtime()?;
    let start = Instant::now();
    let check_deadline = start + per_check;
    let outer_deadline = check_deadline + RUN_MARGIN;
    let (sink, results) = std::sync::mpsc::channel();
    {
        let _guard = runtime.enter();
        spawn_checks(&to_run, ctx, per_check, check_deadline, sink);
    }
    // Collected on this thread with a plain clock: a check that blocks every worker thread
    // cannot stop the run from ending on time.
    let mut finished: Vec<Option<CheckResult>> = vec![None; to_run.len()];
    let mut remaining = to_run.len();
    while remaining > 0 {
        let left = outer_deadline.saturating_duration_since(Instant::now());
        match results.recv_timeout(left) {
            Ok((index, result)) => {
                if finished[index].is_none() {
                    remaining -= 1;
                }
                finished[index] = Some(result);
            }
            Err(_) => break,
        }
    }
    runtime.shutdown_background();
    let elapsed = start.elapsed().as_millis() as u64;
    Ok(to_run
        .iter()
        .zip(finished)
        .filter(|(check, _)| selection.print.contains(check.id))
        .map(|(check, result)| {
            result.unwrap_or_else(|| CheckResult {
                id: check.id,
                title: check.title,
                status: Status::Error,
                message: format!(
                    "the check did not finish within the run's {} and was abandoned",
                    seconds_text(per_check + RUN_MARGIN)
                ),
                hint: Some("raise --timeout, or re-run with --skip for this check".into()),
                duration_ms: elapsed,
                details: None,
            })
        })
        .collect())
}

/// Counts per status, in the `--json` summary's shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
}

impl Summary {
    pub fn of(results: &[CheckResult]) -> Self {
        let mut summary = Summary::default();
        for result in results {
            match result.status {
                Status::Ok => summary.ok += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
                Status::Skip => summary.skip += 1,
                Status::Error => summary.error += 1,
            }
        }
        summary
    }

    /// `12 passed, 1 warning, 2 failed, 3 skipped` (errors added when there are any).
    pub fn line(&self) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = vec![
            format!("{} passed", self.ok),
            plural(self.warn, "warning", "warnings"),
            format!("{} failed", self.fail),
            format!("{} skipped", self.skip),
        ];
        if self.error > 0 {
            parts.push(plural(self.error, "error", "errors"));
        }
        parts.join(", ")
    }
}

/// The `--json` document.
pub fn json_report(results: &[CheckResult]) -> serde_json::Value {
    serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "summary": Summary::of(results),
        "checks": results,
    })
}

pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "passed",
        Status::Warn => "warned",
        Status::Fail => "failed",
        Status::Skip => "was skipped",
        Status::Error => "broke",
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".into()
    }
}

/// `10 s`, `1.5 s`.
pub fn seconds_text(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if (secs - secs.round()).abs() < 0.05 {
        format!("{} s", secs.round() as u64)
    } else {
        format!("{secs:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_body(_: Arc<Context>, _: Budget) -> CheckFuture {
        Box::pin(async { Outcome::ok("fine") })
    }
    fn fail_body(_: Arc<Context>, _: Budget) -> CheckFuture {
        Box::pin(async { Outcome::fail("broken", "fix it") })
    }
    fn panic_body(_: Arc<Context>, _: Budget) -> CheckFuture {
        Box::pin(async { panic!("boom") })
    }
    fn hang_body(_: Arc<Context>, _: Budget) -> CheckFuture {
        Box::pin(std::future::pending())
    }
    fn block_body(_: Arc<Context>, _: Budget) -> CheckFuture {
        // Blocks its worker thread outright, as a careless synchronous call would.
        Box::pin(async {
            std::thread::sleep(Duration::from_secs(30));
            Outcome::ok("woke up")
        })
    }

    const fn check(
        id: &'static str,
        needs: &'static [&'static str],
        run: fn(Arc<Context>, Budget) -> CheckFuture,
    ) -> Check {
        Check {
            id,
            title: id,
            needs,
            after: &[],
            run,
        }
    }

    fn run(checks: &[Check], per_check: Duration) -> Vec<CheckResult> {
        let selection = select(checks, &[], &[]).unwrap();
        let ctx = Arc::new(Context::new(Inputs::default()));
        run_all(checks, &selection, ctx, per_check).unwrap()
    }

    #[test]
    fn panics_and_hangs_become_errors_within_the_budget() {
        let checks = [
            check("a.ok", &[], ok_body),
            check("a.panic", &[], panic_body),
            check("a.hang", &[], hang_body),
            check("a.block", &[], block_body),
            check("a.block2", &[], block_body),
            check("a.after_block", &["a.block"], ok_body),
        ];
        let start = Instant::now();
        let results = run(&checks, Duration::from_millis(800));
        assert!(
            start.elapsed() < Duration::from_millis(800) + RUN_MARGIN + Duration::from_millis(500)
        );
        let statuses: Vec<(&str, Status)> = results.iter().map(|r| (r.id, r.status)).collect();
        assert_eq!(
            statuses,
            vec![
                ("a.ok", Status::Ok),
                ("a.panic", Status::Error),
                ("a.hang", Status::Error),
                ("a.block", Status::Error),
                ("a.block2", Status::Error),
                ("a.after_block", Status::Error),
            ]
        );
        assert!(results[1].message.contains("boom"), "{:?}", results[1]);
        assert!(results[2].message.contains("did not finish"));
    }

    #[test]
    fn a_failed_dependency_skips_with_its_reason() {
        let checks = [
            check("x.base", &[], fail_body),
            check("x.next", &["x.base"], ok_body),
        ];
        let results = run(&checks, Duration::from_secs(2));
        assert_eq!(results[1].status, Status::Skip);
        assert_eq!(results[1].message, "needs x.base, which failed");
        // Printing order does not have to follow the dependencies.
        let checks = [
            check("x.next", &["x.base"], ok_body),
            check("x.base", &[], fail_body),
        ];
        let results = run(&checks, Duration::from_secs(2));
        assert_eq!(results[0].message, "needs x.base, which failed");
    }

    #[test]
    fn selection_by_id_and_prefix_pulls_in_needs() {
        let checks = [
            check("model.models", &[], ok_body),
            check("model.chat", &["model.models"], ok_body),
            check("gateway.healthz", &[], ok_body),
            check("gateway.container.env", &[], ok_body),
        ];
        let s = select(&checks, &["model.chat".into()], &[]).unwrap();
        assert!(s.run.contains("model.models") && !s.print.contains("model.models"));
        let s = select(
            &checks,
            &["gateway.*".into()],
            &["gateway.container".into()],
        )
        .unwrap();
        assert_eq!(s.print, HashSet::from(["gateway.healthz"]));
        assert!(select(&checks, &["nothing.here".into()], &[]).is_err());
        assert!(!pattern_matches("model", "models.x"));
        assert!(pattern_matches("*", "models.x"));
    }

    #[test]
    fn summary_line_counts_and_pluralises() {
        let summary = Summary {
            ok: 12,
            warn: 1,
            fail: 2,
            skip: 3,
            error: 0,
        };
        assert_eq!(summary.line(), "12 passed, 1 warning, 2 failed, 3 skipped");
        let summary = Summary {
            warn: 2,
            error: 1,
            ..summary
        };
        assert_eq!(
            summary.line(),
            "12 passed, 2 warnings, 2 failed, 3 skipped, 1 error"
        );
    }
}
