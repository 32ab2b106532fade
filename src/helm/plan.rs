//! The plan: the seed's install steps as the kubectl and helm commands that carry them out,
//! where the chart comes from (GitLab's repository or an archive `bundle load` stored) and a
//! fix for each failure. Running the commands is `exec`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::exec::Cmd;
use super::{Release, CHART, CHART_NAME, FIELD_MANAGER, REPO_NAME, REPO_URL};
use crate::error::Problem;

/// One step of the plan: a command, or two joined by a pipe, and what fixes it when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub title: String,
    pub command: Cmd,
    /// When set, `command`'s stdout is this command's stdin.
    pub piped_into: Option<Cmd>,
    /// `command`'s stdout holds a secret (a TLS Secret manifest) and is never shown.
    pub secret_output: bool,
    /// How long the step may take before duo-selfhost stops it.
    pub deadline: Duration,
    pub fix: String,
}

impl Step {
    /// The step as a shell line.
    pub fn shell_line(&self) -> String {
        match &self.piped_into {
            Some(next) => format!("{} | {}", self.command, next),
            None => self.command.to_string(),
        }
    }
}

/// The TLS files to turn into the ingress secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What the plan includes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInput<'a> {
    pub release: &'a Release,
    pub values_file: &'a Path,
    pub tls: Option<&'a TlsFiles>,
    /// The secret the ingress reads, which `tls` creates or updates.
    pub tls_secret: &'a str,
    pub timeout_secs: u64,
    /// Creates the namespace (install); an upgrade's namespace exists already.
    pub create_namespace: bool,
    /// Where the chart comes from.
    pub chart: &'a ChartSource,
}

/// Where `helm upgrade --install` takes the chart from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartSource {
    /// GitLab's chart repository, added and updated first (a connected host).
    Repository,
    /// A chart archive on this host (`bundle load` stored it): no repository is contacted.
    Archive(PathBuf),
}

/// Where `bundle load` stores the chart archive of `version`, and `--offline` looks for it.
pub fn stored_chart_path(version: &str) -> PathBuf {
    crate::state::data_dir()
        .join("charts")
        .join(format!("{CHART_NAME}-{version}.tgz"))
}

/// `helm pull` of the chart at `version` from `repo_url` into `destination` (a directory), without
/// adding the repository to the user's helm configuration.
pub fn pull_command(repo_url: &str, version: &str, destination: &Path) -> Cmd {
    Cmd::new(
        "helm",
        [
            "pull".to_string(),
            CHART_NAME.into(),
            "--repo".into(),
            repo_url.into(),
            "--version".into(),
            version.into(),
            "--destination".into(),
            destination.display().to_string(),
        ],
    )
}

/// The `name` and `version` in a chart archive's `Chart.yaml` (a gzipped tar holding
/// `<name>/Chart.yaml`), to check that an archive is the chart it claims to be.
pub fn chart_archive_identity(archive: &Path) -> Result<(String, String), Problem> {
    use std::io::Read;
    let unreadable = |why: String| {
        Problem::user(format!(
            "{} is not a Helm chart archive: {why}",
            archive.display()
        ))
        .hint("pull the chart again (helm pull), or load the bundle again")
    };
    let file = std::fs::File::open(archive).map_err(|e| unreadable(e.to_string()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = tar.entries().map_err(|e| unreadable(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| unreadable(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| unreadable(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        // The chart's own Chart.yaml, not a subchart's (charts/<sub>/Chart.yaml).
        if path.split('/').count() != 2 || !path.ends_with("/Chart.yaml") {
            continue;
        }
        let mut text = String::new();
        entry
            .take(1 << 20)
            .read_to_string(&mut text)
            .map_err(|e| unreadable(e.to_string()))?;
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
                .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
                .filter(|v| !v.is_empty())
        };
        return match (field("name"), field("version")) {
            (Some(name), Some(version)) => Ok((name, version)),
            _ => Err(unreadable(format!("{path} has no name or version"))),
        };
    }
    Err(unreadable("it holds no Chart.yaml".into()))
}

/// Extra time past the tools' own `--timeout` before duo-selfhost stops them itself.
pub fn grace(timeout_secs: u64) -> Duration {
    Duration::from_secs((timeout_secs / 5).clamp(5, 60))
}

/// The seed's install steps, in order, as the commands that carry them out.
pub fn plan(input: &PlanInput<'_>) -> Vec<Step> {
    let release = input.release;
    let ns = release.namespace.as_str();
    let quick = Duration::from_secs(120);
    let long = Duration::from_secs(input.timeout_secs) + grace(input.timeout_secs);
    let timeout = format!("{}s", input.timeout_secs);
    let apply = Cmd::new(
        "kubectl",
        [
            "apply",
            "--server-side",
            "--force-conflicts",
            &format!("--field-manager={FIELD_MANAGER}"),
            "-f",
            "-",
        ],
    );
    let mut steps = Vec::new();
    if input.chart == &ChartSource::Repository {
        steps.extend(repository_steps(quick));
    }
    let chart_args: Vec<String> = match input.chart {
        ChartSource::Repository => vec![
            CHART.into(),
            "--version".into(),
            release.chart_version.clone(),
        ],
        ChartSource::Archive(path) => vec![path.display().to_string()],
    };
    if input.create_namespace {
        steps.push(Step {
            title: format!("create the namespace {ns}"),
            // create --dry-run | apply: creates it once, and is a no-op when it exists.
            command: Cmd::new(
                "kubectl",
                ["create", "namespace", ns, "--dry-run=client", "-o", "yaml"],
            ),
            piped_into: Some(apply.clone()),
            secret_output: false,
            deadline: quick,
            fix: "check that your Kubernetes user may create namespaces: kubectl auth can-i create namespaces".to_string(),
        });
    }
    if let Some(tls) = input.tls {
        let secret = input.tls_secret.to_string();
        steps.push(Step {
            title: format!("create or update the TLS secret {secret}"),
            // Server-side apply, so the key is not copied into a last-applied annotation.
            command: Cmd::new(
                "kubectl",
                [
                    "create".to_string(),
                    "secret".into(),
                    "tls".into(),
                    secret.clone(),
                    format!("--namespace={ns}"),
                    format!("--cert={}", tls.cert.display()),
                    format!("--key={}", tls.key.display()),
                    "--dry-run=client".into(),
                    "-o".into(),
                    "yaml".into(),
                ],
            ),
            piped_into: Some(Cmd::new(
                "kubectl",
                [
                    "apply".to_string(),
                    "--server-side".into(),
                    "--force-conflicts".into(),
                    format!("--field-manager={FIELD_MANAGER}"),
                    format!("--namespace={ns}"),
                    "-f".into(),
                    "-".into(),
                ],
            )),
            secret_output: true,
            deadline: quick,
            fix: format!("check that your Kubernetes user may manage secrets in {ns}: kubectl auth can-i create secrets --namespace {ns}"),
        });
    }
    steps.push(Step {
        title: format!("install or upgrade the release {}", release.name),
        command: Cmd::new(
            "helm",
            ["upgrade".to_string(), "--install".into(), release.name.clone()]
                .into_iter()
                .chain(chart_args)
                .chain([
                    format!("--namespace={ns}"),
                    "--values".into(),
                    input.values_file.display().to_string(),
                    "--wait".into(),
                    "--wait-for-jobs".into(),
                    format!("--timeout={timeout}"),
                ]),
        ),
        piped_into: None,
        secret_output: false,
        deadline: long,
        fix: format!(
            "see why the gateway is not ready: kubectl get pods --namespace {ns}; kubectl describe pods --namespace {ns}; a slow image pull needs a longer --helm-timeout"
        ),
    });
    steps.push(Step {
        title: format!("wait for the pods in {ns} to be ready"),
        command: Cmd::new(
            "kubectl",
            [
                "wait".to_string(),
                "pod".into(),
                "--all".into(),
                "--for=condition=Ready".into(),
                format!("--namespace={ns}"),
                format!("--timeout={timeout}"),
            ],
        ),
        piped_into: None,
        secret_output: false,
        deadline: long,
        fix: format!(
            "see which pod is not ready and why: kubectl get pods --namespace {ns}; kubectl logs --namespace {ns} -l app.kubernetes.io/instance={}",
            release.name
        ),
    });
    steps
}

/// Adding and updating GitLab's chart repository, on a connected host.
fn repository_steps(quick: Duration) -> Vec<Step> {
    vec![
        Step {
            title: format!("add the chart repository {REPO_NAME}"),
            // --force-update: re-adding with the same URL is not an error, so reruns work.
            command: Cmd::new("helm", ["repo", "add", REPO_NAME, REPO_URL, "--force-update"]),
            piped_into: None,
            secret_output: false,
            deadline: quick,
            fix: format!("check that this machine reaches {REPO_URL} (a proxy needs HTTPS_PROXY)"),
        },
        Step {
            title: format!("update the chart repository {REPO_NAME}"),
            command: Cmd::new("helm", ["repo", "update", REPO_NAME]),
            piped_into: None,
            secret_output: false,
            deadline: quick,
            fix: format!("check that this machine reaches {REPO_URL}, then run: helm repo update {REPO_NAME}"),
        },
    ]
}

/// A more precise fix for failures whose tool output names a known cause.
pub fn fix_for_output(output: &str, step_fix: &str) -> String {
    let lower = output.to_ascii_lowercase();
    if lower.contains("context deadline exceeded") || lower.contains("timed out waiting") {
        format!("the cluster did not get the gateway ready in time; {step_fix}")
    } else if lower.contains("kubernetes cluster unreachable")
        || lower.contains("connection refused")
        || lower.contains("no such host")
    {
        "the cluster is not reachable from here: check `kubectl cluster-info` and your kubeconfig context".into()
    } else if lower.contains("forbidden") {
        format!("your Kubernetes user lacks a permission the step needs; {step_fix}")
    } else {
        step_fix.to_string()
    }
}
