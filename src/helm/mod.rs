//! Installs and upgrades the gateway with the AI Gateway Helm chart by driving the real
//! helm and kubectl; renders the values file from templates/. Plans the commands and parses the
//! tools' answers; running them is `exec`, checking the certificate is `tls`. Takes plain values,
//! never clap types.

pub mod exec;
pub mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Problem;
use exec::Cmd;

/// The name the seed gives the chart repository in helm's configuration.
pub const REPO_NAME: &str = "ai-gateway";
/// The AI Gateway chart repository (install doc; reference 2.4).
pub const REPO_URL: &str =
    "https://gitlab.com/api/v4/projects/gitlab-org%2fcharts%2fai-gateway-helm-chart/packages/helm/devel";
/// The chart, as `repository/name`.
pub const CHART: &str = "ai-gateway/ai-gateway";
/// The chart's name in its repository.
pub const CHART_NAME: &str = "ai-gateway";
/// The chart version `install --target helm` uses unless told otherwise.
pub const DEFAULT_CHART_VERSION: &str = "0.5.0";
/// The oldest helm the install doc supports.
pub const MIN_HELM: semver::Version = semver::Version::new(3, 11, 0);
/// Kubernetes field manager for what duo-selfhost applies.
pub const FIELD_MANAGER: &str = "duo-selfhost";

const VALUES_TEMPLATE: &str = include_str!("../../templates/helm-values.yaml");

/// Where the gateway goes in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub chart_version: String,
}

impl Release {
    /// The TLS secret the ingress uses; the seed's `ai-gateway-tls` for the default release.
    pub fn tls_secret(&self) -> String {
        format!("{}-tls", self.name)
    }
}

/// Values chart keys that duo-selfhost does not manage but found in a release; rendered back
/// unchanged so an upgrade keeps them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeptValues {
    pub top: Map<String, Value>,
    pub image: Map<String, Value>,
    pub gitlab: Map<String, Value>,
    pub ingress: Map<String, Value>,
}

/// Everything the values file says.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayValues {
    pub image_repository: String,
    pub image_tag: String,
    /// GitLab's external URL, without a trailing slash.
    pub gitlab_url: String,
    /// The gateway's DNS name, the ingress host.
    pub domain: String,
    pub ingress_class: String,
    pub tls_secret: String,
    /// Extra environment variables for the gateway container, in order.
    pub env: Vec<(String, String)>,
    pub kept: KeptValues,
}

impl GatewayValues {
    /// `https://<domain>`: the URL GitLab reaches the gateway by.
    pub fn gateway_url(&self) -> String {
        format!("https://{}", self.domain)
    }

    pub fn image(&self) -> String {
        format!("{}:{}", self.image_repository, self.image_tag)
    }
}

/// GitLab's API base as the chart wants it, with the trailing slash of the docs' examples.
pub fn gitlab_api_url(gitlab_url: &str) -> String {
    format!("{}/api/v4/", gitlab_url.trim_end_matches('/'))
}

/// Renders the values file.
pub fn render_values(release: &Release, values: &GatewayValues) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    // minijinja would JSON-escape every `{{ }}` in a .yaml template; the template says where
    // it wants JSON (`tojson`) and keeps its comments plain.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_template("helm-values.yaml", VALUES_TEMPLATE)?;
    let vars: Vec<Value> = values
        .env
        .iter()
        .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
        .collect();
    let context = serde_json::json!({
        "tool_version": env!("CARGO_PKG_VERSION"),
        "chart": CHART,
        "chart_version": release.chart_version,
        "release": release.name,
        "namespace": release.namespace,
        "image_repository": values.image_repository,
        "image_tag": values.image_tag,
        "gitlab_url": values.gitlab_url,
        "gitlab_api_url": gitlab_api_url(&values.gitlab_url),
        "domain": values.domain,
        "ingress_class": values.ingress_class,
        "tls_secret": values.tls_secret,
        "env": vars,
        "kept_top": values.kept.top,
        "kept_image": values.kept.image,
        "kept_gitlab": values.kept.gitlab,
        "kept_ingress": values.kept.ingress,
    });
    Ok(env
        .get_template("helm-values.yaml")?
        .render(template_value(&context))?)
}

/// A JSON value as a template value (minijinja is built without its serde feature).
fn template_value(value: &Value) -> minijinja::Value {
    match value {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => minijinja::Value::from(i),
            (None, Some(u)) => minijinja::Value::from(u),
            _ => minijinja::Value::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(items) => items.iter().map(template_value).collect(),
        Value::Object(map) => {
            minijinja::Value::from_pairs(map.iter().map(|(k, v)| (k.as_str(), template_value(v))))
        }
    }
}

/// Reads the values of an installed release (`helm get values -o json`) back into the values
/// duo-selfhost manages, keeping whatever else the release had.
pub fn values_from_release(release_values: &Value) -> Result<GatewayValues, Problem> {
    let missing = |what: &str| {
        Problem::user(format!(
            "the release's values have no {what}; it was not installed by duo-selfhost or was changed by hand"
        ))
        .hint("install it again with `duo-selfhost install --target helm`, which renders every value")
    };
    let mut top = release_values
        .as_object()
        .cloned()
        .ok_or_else(|| missing("values at all"))?;
    let mut take_map = |key: &str| match top.remove(key) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut image = take_map("image");
    let mut gitlab = take_map("gitlab");
    let mut ingress = take_map("ingress");
    let env_value = top.remove("extraEnvironmentVariables");

    let string = |map: &mut Map<String, Value>, key: &str| match map.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let image_repository = string(&mut image, "repository").unwrap_or_default();
    let image_tag = string(&mut image, "tag").ok_or_else(|| missing("image.tag"))?;
    let gitlab_url = string(&mut gitlab, "url").ok_or_else(|| missing("gitlab.url"))?;
    gitlab.remove("apiUrl");
    ingress.remove("enabled");
    let ingress_class = string(&mut ingress, "className").unwrap_or_else(|| "nginx".into());
    let domain = ingress
        .remove("hosts")
        .and_then(|h| h.get(0)?.get("host")?.as_str().map(str::to_string))
        .ok_or_else(|| missing("ingress.hosts[0].host"))?;
    let tls_secret = ingress
        .remove("tls")
        .and_then(|t| t.get(0)?.get("secretName")?.as_str().map(str::to_string))
        .ok_or_else(|| missing("ingress.tls[0].secretName"))?;
    let env = match env_value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                let name = item.get("name")?.as_str()?.to_string();
                let value = match item.get("value") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                Some((name, value))
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(GatewayValues {
        image_repository,
        image_tag,
        gitlab_url: gitlab_url.trim_end_matches('/').to_string(),
        domain,
        ingress_class,
        tls_secret,
        env,
        kept: KeptValues {
            top,
            image,
            gitlab,
            ingress,
        },
    })
}

/// Checks the gateway domain: a DNS name GitLab can reach, so not localhost, not an IP
/// address (an ingress host must be a name), no scheme or port.
pub fn check_domain(domain: &str) -> Result<String, Problem> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let hint = "pass the DNS name GitLab will reach the gateway by, such as --gateway-host ai-gateway.example.com";
    if domain.is_empty() {
        return Err(Problem::user("the gateway domain is empty").hint(hint));
    }
    if domain.contains("://") || domain.contains('/') || domain.contains(':') {
        return Err(Problem::user(format!(
            "`{domain}` is not a bare domain name (no scheme, path or port)"
        ))
        .hint(hint));
    }
    if crate::net::is_loopback_host(&domain) {
        return Err(Problem::user(format!(
            "the gateway domain `{domain}` is localhost; GitLab and the ingress need a name they can resolve"
        ))
        .hint(hint));
    }
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return Err(Problem::user(format!(
            "the gateway domain `{domain}` is an IP address; a Kubernetes ingress host must be a DNS name"
        ))
        .hint(hint));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if domain.len() > 253 || !domain.split('.').all(label_ok) {
        return Err(Problem::user(format!("`{domain}` is not a valid DNS name")).hint(hint));
    }
    Ok(domain)
}

/// Checks the release and namespace names: Kubernetes DNS labels (helm allows 53 characters
/// for a release name, Kubernetes 63 for a namespace).
pub fn check_release(release: &Release) -> Result<(), Problem> {
    let label_ok = |name: &str, max: usize| {
        !name.is_empty()
            && name.len() <= max
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    };
    for (flag, name, max) in [
        ("--release", &release.name, 53),
        ("--namespace", &release.namespace, 63),
    ] {
        if !label_ok(name, max) {
            return Err(Problem::user(format!(
                "{flag} `{name}` is not a valid name: lowercase letters, digits and '-', at most {max} characters"
            ))
            .hint(format!("pass a name such as {flag} ai-gateway")));
        }
    }
    if release.chart_version.trim().is_empty()
        || release.chart_version.contains(char::is_whitespace)
    {
        return Err(Problem::user(format!(
            "--chart-version `{}` is not a chart version",
            release.chart_version
        ))
        .hint("pass a version such as --chart-version 0.5.0"));
    }
    Ok(())
}

/// Checks GitLab's URL and drops a trailing slash.
pub fn check_gitlab_url(url: &str) -> Result<String, Problem> {
    let parsed = url::Url::parse(url.trim()).map_err(|e| {
        Problem::user(format!("--gitlab-url `{url}` is not a URL: {e}"))
            .hint("pass GitLab's external URL, such as --gitlab-url https://gitlab.example.com")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Problem::user(format!(
            "--gitlab-url `{url}` is not an http(s) URL with a host"
        ))
        .hint("pass GitLab's external URL, such as --gitlab-url https://gitlab.example.com"));
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

/// Splits `repository:tag` (a registry port is not a tag).
pub fn split_image(image: &str) -> Option<(String, String)> {
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    let colon = image[slash..].rfind(':')? + slash;
    let (repo, tag) = (&image[..colon], &image[colon + 1..]);
    (!repo.is_empty() && !tag.is_empty() && !tag.contains('@'))
        .then(|| (repo.to_string(), tag.to_string()))
}

/// The version in `helm version --short` (`v3.14.2+g1234`, or helm 2's `Client: v2.16.1+g…`).
pub fn parse_helm_version(text: &str) -> Option<semver::Version> {
    let re = regex::Regex::new(r"v(\d+)\.(\d+)\.(\d+)").ok()?;
    let caps = re.captures(text)?;
    Some(semver::Version::new(
        caps[1].parse().ok()?,
        caps[2].parse().ok()?,
        caps[3].parse().ok()?,
    ))
}

/// `gitVersion` of one side of `kubectl version -o json` ("clientVersion" or "serverVersion").
pub fn parse_kubectl_version(json: &str, side: &str) -> Option<String> {
    let value: Value = serde_json::from_str(json).ok()?;
    value
        .get(side)?
        .get("gitVersion")?
        .as_str()
        .map(str::to_string)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Release, GatewayValues) {
        (
            Release {
                name: "ai-gateway".into(),
                namespace: "ai-gateway".into(),
                chart_version: "0.5.0".into(),
            },
            GatewayValues {
                image_repository: "registry.example.com/model-gateway".into(),
                image_tag: "self-hosted-v17.5.0-ee".into(),
                gitlab_url: "https://gitlab.example.com".into(),
                domain: "gw.example.com".into(),
                ingress_class: "nginx".into(),
                tls_secret: "ai-gateway-tls".into(),
                env: vec![("A".into(), "x: 'y' #z".into())],
                kept: KeptValues::default(),
            },
        )
    }

    #[test]
    fn values_round_trip_through_the_release() {
        let (release, mut values) = sample();
        values
            .kept
            .top
            .insert("replicaCount".into(), Value::from(2));
        values
            .kept
            .image
            .insert("pullPolicy".into(), Value::from("Always"));
        let text = render_values(&release, &values).unwrap();
        let parsed: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(values_from_release(&parsed).unwrap(), values);
    }

    #[test]
    fn domain_checks() {
        assert_eq!(check_domain("GW.Example.com.").unwrap(), "gw.example.com");
        for bad in [
            "",
            "localhost",
            "a.localhost",
            "127.0.0.1",
            "https://gw.example.com",
            "gw.example.com:443",
            "-x.example.com",
            "a..b",
        ] {
            assert!(check_domain(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_helm_version("v3.14.2+gc309b6f"),
            Some(semver::Version::new(3, 14, 2))
        );
        assert_eq!(
            parse_helm_version("Client: v2.16.1+gbbdfe5e"),
            Some(semver::Version::new(2, 16, 1))
        );
        assert_eq!(parse_helm_version("nonsense"), None);
        let json = r#"{"clientVersion":{"gitVersion":"v1.29.1"},"serverVersion":{"gitVersion":"v1.28.3"}}"#;
        assert_eq!(
            parse_kubectl_version(json, "serverVersion").as_deref(),
            Some("v1.28.3")
        );
    }

    #[test]
    fn images_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_image("reg:5000/a/b:tag"),
            Some(("reg:5000/a/b".into(), "tag".into()))
        );
        assert_eq!(split_image("reg:5000/a/b"), None);
    }
}
