//! The Docker Engine through bollard: connect, pull with progress, create, wait for health,
//! and replace a container with rollback. Knows nothing about GitLab: callers hand it a
//! [`ContainerSpec`] (or an existing container to copy) and a report.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, DeviceRequest,
    HealthConfig, HealthStatusEnum, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use indicatif::ProgressBar;
use serde::Serialize;
use sha2::Digest;

use crate::error::Problem;
use crate::fault::{self, Step};
use crate::report::{Mark, Report};
use crate::secret;

/// Labels duo-selfhost puts on what it creates.
pub const LABEL_VERSION: &str = "duo-selfhost.version";
pub const LABEL_GITLAB_VERSION: &str = "duo-selfhost.gitlab-version";
pub const LABEL_SETTINGS_HASH: &str = "duo-selfhost.settings-hash";
pub const LABEL_LOG_DIR: &str = "duo-selfhost.log-dir";
/// The env keys duo-selfhost set, so an upgrade keeps them even where the image has the same
/// default (the new image's default may differ).
pub const LABEL_ENV_KEYS: &str = "duo-selfhost.env-keys";

/// The vLLM image, pinned: a floating tag would change the serving stack under the user.
pub const VLLM_IMAGE: &str = "vllm/vllm-openai:v0.10.1.1";

/// Seconds a container gets to stop before it is killed.
const STOP_TIMEOUT_SECS: i32 = 30;

/// Connects to the engine (DOCKER_HOST or the local socket) and checks that it answers.
pub async fn connect() -> anyhow::Result<Docker> {
    let docker =
        Docker::connect_with_defaults().map_err(|e| unreachable_problem(&e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| unreachable_problem(&e.to_string()))?;
    // The engine may be older than bollard's default API version; speak the engine's.
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable_problem(&e.to_string()))?;
    Ok(docker)
}

fn unreachable_problem(cause: &str) -> Problem {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let hint = if cause.contains("ermission denied") {
        "run as root, or add this user to the docker group: sudo usermod -aG docker $USER (then log in again)".to_string()
    } else if std::env::var_os("DOCKER_HOST").is_some() {
        "check DOCKER_HOST, or unset it to use the local socket".to_string()
    } else {
        "start the engine: sudo systemctl start docker (or dockerd)".to_string()
    };
    Problem::user(format!(
        "the Docker Engine at {host} does not answer: {cause}"
    ))
    .hint(hint)
}

/// When to pull an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    Always,
    Missing,
    Never,
}

/// A TCP port published from the container to the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PortMapping {
    /// Host address to bind; empty for every interface.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

/// An HTTP probe the engine runs inside the container (the Docker healthcheck).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpProbe {
    pub port: u16,
    pub path: String,
}

/// The NVIDIA GPUs a container asks the engine for (a device request, as `docker run --gpus`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Gpus {
    #[default]
    None,
    /// Every GPU (`--gpus all`).
    All,
    /// This many (`--gpus N`).
    Count(u32),
}

impl Gpus {
    /// The device request's count: -1 for every GPU.
    fn request_count(self) -> Option<i64> {
        match self {
            Gpus::None => None,
            Gpus::All => Some(-1),
            Gpus::Count(n) => Some(i64::from(n)),
        }
    }

    /// As `docker run --gpus` takes it; `None` when no GPU is asked for.
    pub fn flag_value(self) -> Option<String> {
        match self {
            Gpus::None => None,
            Gpus::All => Some("all".to_string()),
            Gpus::Count(n) => Some(n.to_string()),
        }
    }
}

/// Everything duo-selfhost decides about a container; [`ContainerSpec::create_body`] turns it
/// into the engine's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    pub image: String,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<PortMapping>,
    /// `host:container[:options]`.
    pub binds: Vec<String>,
    /// Arguments after the image's entrypoint; empty keeps the image's own.
    pub cmd: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub health: Option<HttpProbe>,
    /// The NVIDIA GPUs it asks for.
    pub gpus: Gpus,
}

impl ContainerSpec {
    /// The create request: the spec, restart policy unless-stopped, labels including the
    /// settings hash and the env keys set.
    pub fn create_body(&self) -> ContainerCreateBody {
        let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in &self.ports {
            port_bindings
                .entry(format!("{}/tcp", p.container_port))
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: (!p.host_ip.is_empty()).then(|| p.host_ip.clone()),
                    host_port: Some(p.host_port.to_string()),
                });
        }
        let mut exposed: Vec<String> = port_bindings.keys().cloned().collect();
        exposed.sort();
        let device_requests = self.gpus.request_count().map(|count| {
            vec![DeviceRequest {
                driver: Some(String::new()),
                count: Some(count),
                capabilities: Some(vec![vec!["gpu".to_string()]]),
                ..Default::default()
            }]
        });
        let mut labels: HashMap<String, String> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert(
            LABEL_ENV_KEYS.to_string(),
            self.env.keys().cloned().collect::<Vec<_>>().join(","),
        );
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            env: Some(self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: (!self.cmd.is_empty()).then(|| self.cmd.clone()),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck: self.health.as_ref().map(health_config),
            labels: Some(labels),
            host_config: Some(HostConfig {
                port_bindings: Some(port_bindings),
                binds: (!self.binds.is_empty()).then(|| self.binds.clone()),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                device_requests,
                ..Default::default()
            }),
            ..Default::default()
        };
        with_settings_hash(body)
    }

    /// The container as `docker run` arguments (after `docker run`), for plans. A secret is
    /// passed by name only (`-e HF_TOKEN`), which makes docker take its value from the caller's
    /// environment: the line can be run as shown and never carries the value.
    pub fn docker_run_args(&self, name: &str) -> Vec<String> {
        let mut args = vec![
            "-d".to_string(),
            "--name".to_string(),
            name.to_string(),
            "--restart".to_string(),
            "unless-stopped".to_string(),
        ];
        if let Some(gpus) = self.gpus.flag_value() {
            args.extend(["--gpus".to_string(), gpus]);
        }
        for p in &self.ports {
            let host = if p.host_ip.is_empty() {
                String::new()
            } else {
                format!("{}:", p.host_ip)
            };
            args.extend([
                "-p".to_string(),
                format!("{host}{}:{}", p.host_port, p.container_port),
            ]);
        }
        for bind in &self.binds {
            args.extend(["-v".to_string(), bind.clone()]);
        }
        for (key, value) in &self.env {
            let entry = if secret::is_secret_name(key) {
                key.clone()
            } else {
                format!("{key}={value}")
            };
            args.extend(["-e".to_string(), entry]);
        }
        args.push(self.image.clone());
        args.extend(self.cmd.iter().cloned());
        args
    }

    /// The env with secret-looking values replaced by `****`, for plans and logs.
    pub fn masked_env(&self) -> Vec<String> {
        secret::mask_env_entries(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// The healthcheck: the gateway image has Python, the test stand-ins have busybox wget, some
/// images have curl; any one answering 2xx is healthy.
fn health_config(probe: &HttpProbe) -> HealthConfig {
    let url = format!("http://127.0.0.1:{}{}", probe.port, probe.path);
    let script = format!(
        "python3 -c \"import urllib.request; urllib.request.urlopen('{url}', timeout=3)\" 2>/dev/null \
         || wget -q -O /dev/null '{url}' 2>/dev/null || curl -fsS -o /dev/null '{url}'"
    );
    const SECOND: i64 = 1_000_000_000;
    HealthConfig {
        test: Some(vec!["CMD-SHELL".to_string(), script]),
        interval: Some(3 * SECOND),
        timeout: Some(3 * SECOND),
        retries: Some(5),
        // The real gateway takes a while to start two services; failures then do not count.
        start_period: Some(120 * SECOND),
        ..Default::default()
    }
}

/// Every published port as (host address, host port, container port), sorted.
pub fn published_ports(host: &HostConfig) -> Vec<(String, String, String)> {
    let mut ports: Vec<(String, String, String)> = host
        .port_bindings
        .clone()
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(container, bindings)| {
            bindings.unwrap_or_default().into_iter().map(move |b| {
                (
                    b.host_ip.unwrap_or_default(),
                    b.host_port.unwrap_or_default(),
                    container.clone(),
                )
            })
        })
        .collect();
    ports.sort();
    ports
}

/// A hash of the settings that matter (image, env, ports, volumes, command, restart policy,
/// GPUs), the same whether the body came from a spec or from an existing container.
pub fn settings_hash(body: &ContainerCreateBody) -> String {
    #[derive(Serialize)]
    struct View {
        image: String,
        env: Vec<String>,
        ports: Vec<String>,
        binds: Vec<String>,
        cmd: Vec<String>,
        restart: String,
        gpus: bool,
        /// Only for a request of some GPUs, so that the hash of a container asking for none or
        /// for all is what it was before counts existed (no needless replacement on upgrade).
        #[serde(skip_serializing_if = "Option::is_none")]
        gpu_count: Option<i64>,
    }
    let host = body.host_config.clone().unwrap_or_default();
    let mut env = body.env.clone().unwrap_or_default();
    env.sort();
    let ports: Vec<String> = published_ports(&host)
        .into_iter()
        .map(|(ip, port, container)| format!("{ip}:{port}->{container}"))
        .collect();
    let mut binds = host.binds.unwrap_or_default();
    binds.sort();
    let view = View {
        image: body.image.clone().unwrap_or_default(),
        env,
        ports,
        binds,
        cmd: body.cmd.clone().unwrap_or_default(),
        restart: host
            .restart_policy
            .and_then(|r| r.name)
            .map(|n| n.to_string())
            .unwrap_or_default(),
        gpus: host.device_requests.as_ref().is_some_and(|d| !d.is_empty()),
        gpu_count: host
            .device_requests
            .as_ref()
            .and_then(|d| d.first())
            .and_then(|r| r.count)
            .filter(|count| *count >= 0),
    };
    let json = serde_json::to_vec(&view).unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(&json)[..12])
}

/// `repository` and `tag` of an image reference (`host:port/path:tag`); tag defaults to latest.
pub fn split_reference(image: &str) -> (&str, &str) {
    let image = image.split('@').next().unwrap_or(image);
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], &image[last_slash + i + 1..]),
        None => (image, "latest"),
    }
}

fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn engine_message(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Whether the image is on this host.
pub async fn image_present(docker: &Docker, image: &str) -> anyhow::Result<bool> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context(format!("inspecting the image {image}"))),
    }
}

/// Makes sure the image is on this host, pulling it as the policy says.
pub async fn ensure_image(
    docker: &Docker,
    image: &str,
    policy: Pull,
    report: &dyn Report,
) -> anyhow::Result<()> {
    match policy {
        Pull::Always => pull(docker, image, report).await,
        Pull::Missing if image_present(docker, image).await? => {
            report.detail(&format!("image {image} is already on this host"));
            Ok(())
        }
        Pull::Missing => pull(docker, image, report).await,
        Pull::Never if image_present(docker, image).await? => Ok(()),
        Pull::Never => Err(Problem::user(format!(
            "the image {image} is not on this host, and --pull never forbids pulling it"
        ))
        .hint(format!(
            "load it first (docker load, or skopeo copy into this engine), or re-run with --pull missing; expected: {image}"
        ))
        .into()),
    }
}

/// Pulls an image with one progress bar per layer (hidden without a terminal; with `-v` each
/// layer's status changes are printed as lines instead).
pub async fn pull(docker: &Docker, image: &str, report: &dyn Report) -> anyhow::Result<()> {
    let (repository, tag) = split_reference(image);
    report.info(&format!("Pulling {image}"));
    let options = CreateImageOptionsBuilder::default()
        .from_image(repository)
        .tag(tag)
        .build();
    let multi = report.progress_group();
    let mut bars: BTreeMap<String, (ProgressBar, String)> = BTreeMap::new();
    let mut stream = docker.create_image(Some(options), None, None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| {
            Problem::user(format!("could not pull {image}: {}", engine_message(&e))).hint(
                "check that the registry is reachable from this host and has this tag \
                 (`duo-selfhost image-tag` lists the choice), or load the image and use --pull never",
            )
        })?;
        let status = info.status.unwrap_or_default();
        let Some(id) = info.id.filter(|id| id != tag && !id.is_empty()) else {
            if !status.is_empty() {
                report.detail(&status);
            }
            continue;
        };
        let (bar, last_status) = bars.entry(id.clone()).or_insert_with(|| {
            let bar =
                multi.add(report.progress_bar(0, "{msg:40} [{bar:30}] {bytes}/{total_bytes}"));
            (bar, String::new())
        });
        if let Some(detail) = info.progress_detail {
            if let (Some(current), Some(total)) = (detail.current, detail.total) {
                if total > 0 {
                    bar.set_length(total as u64);
                    bar.set_position(current.max(0) as u64);
                }
            }
        }
        if *last_status != status {
            bar.set_message(format!("{id}: {status}"));
            report.detail(&format!("layer {id}: {status}"));
            *last_status = status;
        }
    }
    for (bar, _) in bars.values() {
        bar.finish();
    }
    report.info(&format!("Pulled {image} ({} layers)", bars.len()));
    Ok(())
}

/// Inspects a container; `None` when it does not exist.
pub async fn inspect_container(
    docker: &Docker,
    name: &str,
) -> anyhow::Result<Option<ContainerInspectResponse>> {
    match docker.inspect_container(name, None).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("inspecting the container {name}"))),
    }
}

/// `KEY=VALUE` environment entries as a map (an entry without `=` is not a variable).
pub fn env_map(entries: &[String]) -> BTreeMap<String, String> {
    entries
        .iter()
        .filter_map(|entry| entry.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A container's environment as a map.
pub fn env_of(container: &ContainerInspectResponse) -> BTreeMap<String, String> {
    env_map(
        container
            .config
            .as_ref()
            .and_then(|c| c.env.as_deref())
            .unwrap_or_default(),
    )
}

/// The labels of a container (empty when it has none).
pub fn labels_of(container: &ContainerInspectResponse) -> HashMap<String, String> {
    container
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
}

/// Whether the container is running.
pub fn is_running(container: &ContainerInspectResponse) -> bool {
    container
        .state
        .as_ref()
        .and_then(|s| s.running)
        .unwrap_or(false)
}

fn is_healthy(container: &ContainerInspectResponse) -> bool {
    let Some(state) = container.state.as_ref() else {
        return false;
    };
    match state.health.as_ref().and_then(|h| h.status) {
        Some(HealthStatusEnum::HEALTHY) => true,
        // No healthcheck at all: running is the best signal there is.
        None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) => {
            state.running.unwrap_or(false)
        }
        _ => false,
    }
}

/// Creates and starts a container under `name`. A port already taken is the user's problem,
/// named as such; the half-made container is removed.
pub async fn create_and_start(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> anyhow::Result<()> {
    create(docker, name, body).await?;
    start_created(docker, name).await
}

async fn create(docker: &Docker, name: &str, body: ContainerCreateBody) -> anyhow::Result<()> {
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| {
            Problem::user(format!(
                "could not create the container {name}: {}",
                engine_message(&e)
            ))
        })?;
    Ok(())
}

/// Starts a container just created; when it cannot start, it is removed.
async fn start_created(docker: &Docker, name: &str) -> anyhow::Result<()> {
    if let Err(e) = docker.start_container(name, None).await {
        let message = engine_message(&e);
        let _ = remove(docker, name).await;
        return Err(start_failure(docker, name, &message).await.into());
    }
    Ok(())
}

/// Who holds a host port a container could not publish.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PortHolder {
    /// Something on the host, or not known.
    Unknown,
    /// Another running container publishes it.
    Container(String),
    /// The engine has it allocated though no container publishes it: kept from a container it
    /// lost when it was killed while starting one (seen with dockerd 20.10; only restarting
    /// the engine frees it).
    EngineItself,
}

/// The engine says "port is already allocated" for ports it allocated itself (an OS-level
/// conflict reads "address already in use"): find which container, if any, has it.
async fn port_holder(docker: &Docker, name: &str, message: &str) -> PortHolder {
    let Some(port) = port_in(message).filter(|_| message.contains("already allocated")) else {
        return PortHolder::Unknown;
    };
    let filters = HashMap::from([("publish", vec![port.to_string()])]);
    let options = ListContainersOptionsBuilder::default()
        .filters(&filters)
        .build();
    match docker.list_containers(Some(options)).await {
        Ok(list) => list
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_string())
            .find(|n| n != name)
            .map_or(PortHolder::EngineItself, PortHolder::Container),
        Err(_) => PortHolder::Unknown,
    }
}

async fn start_failure(docker: &Docker, name: &str, message: &str) -> Problem {
    let holder = port_holder(docker, name, message).await;
    start_problem(name, message, &holder)
}

fn start_problem(name: &str, message: &str, holder: &PortHolder) -> Problem {
    if message.contains("already allocated") || message.contains("address already in use") {
        let port = port_in(message);
        let port_text = port
            .map(|p| format!("port {p}"))
            .unwrap_or_else(|| "a published port".into());
        let another_port =
            "or choose another host port (--gateway-port for the gateway's HTTP port)";
        return match holder {
            PortHolder::EngineItself => Problem::user(format!(
                "{port_text} is still allocated inside the Docker Engine, though no container publishes it, so {name} cannot publish it: {message}"
            ))
            .hint(
                "the engine kept it from a container it lost when it was killed midway; restart the engine \
                 (sudo systemctl restart docker, or stop dockerd and start it again), then run the same command again",
            ),
            PortHolder::Container(other) => Problem::user(format!(
                "{port_text} is already in use on this host by the container {other}, so {name} cannot publish it: {message}"
            ))
            .hint(format!(
                "stop it (docker stop {other}) and run the command again, {another_port}"
            )),
            PortHolder::Unknown => {
                let probe = port
                    .map(|p| format!("ss -ltnp 'sport = :{p}'"))
                    .unwrap_or_else(|| "ss -ltnp".into());
                Problem::user(format!(
                    "{port_text} is already in use on this host, so {name} cannot publish it: {message}"
                ))
                .hint(format!(
                    "stop what listens there (find it with {probe}) and run the command again, {another_port}"
                ))
            }
        };
    }
    Problem::user(format!("could not start the container {name}: {message}"))
}

/// Finds `:PORT` in an engine message such as `Bind for 0.0.0.0:5052 failed`.
fn port_in(message: &str) -> Option<u16> {
    let re = regex::Regex::new(r"(?:0\.0\.0\.0|\[::\]|[0-9.]+):(\d{1,5})").ok()?;
    re.captures(message)?.get(1)?.as_str().parse().ok()
}

/// Removes a container (forcefully: it may be running); a missing one is fine.
pub async fn remove(docker: &Docker, name: &str) -> anyhow::Result<()> {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("removing the container {name}"))),
    }
}

async fn rename(docker: &Docker, from: &str, to: &str) -> anyhow::Result<()> {
    let options = RenameContainerOptionsBuilder::default().name(to).build();
    docker
        .rename_container(from, options)
        .await
        .map_err(|e| anyhow::anyhow!("renaming {from} to {to}: {}", engine_message(&e)))
}

async fn stop(docker: &Docker, name: &str) -> anyhow::Result<()> {
    let options = StopContainerOptionsBuilder::default()
        .t(STOP_TIMEOUT_SECS)
        .build();
    match docker.stop_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        // 304: already stopped.
        Err(BollardError::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("stopping {name}: {}", engine_message(&e))),
    }
}

async fn start(docker: &Docker, name: &str) -> anyhow::Result<()> {
    match docker.start_container(name, None).await {
        Ok(()) => Ok(()),
        Err(BollardError::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(start_failure(docker, name, &engine_message(&e))
            .await
            .into()),
    }
}

/// The container's last `lines` log lines (stdout and stderr).
pub async fn last_log_lines(docker: &Docker, name: &str, lines: usize) -> Vec<String> {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut stream = docker.logs(name, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&chunk.to_string());
    }
    text.lines().map(str::to_string).collect()
}

/// Waits until the container is healthy. On timeout, exit or a crash loop it prints the
/// container's last log lines and returns what went wrong.
pub async fn wait_healthy(
    docker: &Docker,
    name: &str,
    timeout: Duration,
    report: &dyn Report,
) -> anyhow::Result<()> {
    let spinner = report.spinner(&format!("waiting for {name} to become healthy"));
    let started = Instant::now();
    let failure = loop {
        let Some(container) = inspect_container(docker, name).await? else {
            break format!("the container {name} disappeared");
        };
        if is_healthy(&container) {
            spinner.finish_and_clear();
            report.marked(
                Mark::Ok,
                &format!("{name} is healthy ({}s)", started.elapsed().as_secs()),
            );
            return Ok(());
        }
        let state = container.state.clone().unwrap_or_default();
        let restarts = container.restart_count.unwrap_or(0);
        match state.status {
            Some(ContainerStateStatusEnum::EXITED) | Some(ContainerStateStatusEnum::DEAD) => {
                break format!(
                    "{name} exited with status {}",
                    state.exit_code.unwrap_or_default()
                )
            }
            _ if restarts >= 2 => {
                break format!(
                    "{name} keeps crashing (restarted {restarts} times, last exit status {})",
                    state.exit_code.unwrap_or_default()
                )
            }
            _ => {}
        }
        if started.elapsed() >= timeout {
            let health = state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into());
            break format!(
                "{name} is not healthy after {}s (health: {health})",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    spinner.finish_and_clear();
    let logs = last_log_lines(docker, name, 20).await;
    if !logs.is_empty() {
        report.info(&format!("last log lines of {name}:"));
        for line in logs {
            report.info(&format!("  | {line}"));
        }
    }
    Err(anyhow::anyhow!(failure))
}

/// Creates, starts and waits for a brand-new container; on failure the new one is removed so
/// that a re-run starts clean.
pub async fn create_fresh(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
    timeout: Duration,
    report: &dyn Report,
) -> anyhow::Result<()> {
    create_and_start(docker, name, body).await?;
    if let Err(e) = wait_healthy(docker, name, timeout, report).await {
        let _ = remove(docker, name).await;
        return Err(
            Problem::user(format!("the new container failed: {e}; it was removed"))
                .hint(
                    "read the log lines above; fix the setting or the image and run install again",
                )
                .into(),
        );
    }
    Ok(())
}

/// Replaces the container `name` with one made from `body`, in the order that never loses the
/// old one: stop old; rename it to `<name>-previous`; create and start new; wait until healthy;
/// remove old. Any failure removes the new one, renames the old one back and starts it. A host
/// port the new one needs and something else holds is refused before anything is touched.
/// Each step is a [`fault::Step`] (the fault-injection hook). (The caller pulls the image first.)
pub async fn replace_with_rollback(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
    timeout: Duration,
    report: &dyn Report,
) -> anyhow::Result<()> {
    let previous = previous_name(name);
    // Ports the running old container holds are freed by stopping it; any other must be free.
    let held: Vec<u16> = match inspect_container(docker, name).await? {
        Some(old) if is_running(&old) => published_ports(&old.host_config.unwrap_or_default())
            .into_iter()
            .filter_map(|(_, port, _)| port.parse().ok())
            .collect(),
        _ => Vec::new(),
    };
    check_ports_free(name, &body, &held).map_err(|p| Problem {
        message: format!("{}; nothing was changed", p.message),
        ..p
    })?;
    report.info(&format!("Stopping {name}"));
    if let Err(e) = stop(docker, name).await {
        let _ = start(docker, name).await;
        return Err(rolled_back(name, &e));
    }
    fault::reached(Step::OldStopped);
    if let Err(e) = rename(docker, name, &previous).await {
        let _ = start(docker, name).await;
        return Err(rolled_back(name, &e));
    }
    fault::reached(Step::OldRenamed);
    report.info(&format!("Starting the new {name}"));
    let outcome = async {
        create(docker, name, body).await?;
        fault::reached(Step::NewCreated);
        start_created(docker, name).await?;
        fault::reached(Step::NewStarted);
        wait_healthy(docker, name, timeout, report).await
    }
    .await;
    if let Err(e) = outcome {
        report.warn(&format!(
            "the new {name} failed, rolling back: {}",
            cause_of(&e)
        ));
        restore_previous(docker, name, report).await?;
        return Err(rolled_back(name, &e));
    }
    fault::reached(Step::NewHealthy);
    if let Err(e) = remove(docker, &previous).await {
        report.warn(&format!(
            "the new {name} runs, but the old one could not be removed: {e:#}; remove it with: docker rm -f {previous}"
        ));
    }
    fault::reached(Step::OldRemoved);
    Ok(())
}

/// An error's lines without its hint, joined: what went wrong, for one line of text.
fn cause_of(err: &anyhow::Error) -> String {
    crate::error::error_lines(err)
        .into_iter()
        .filter(|(label, _)| *label != "hint")
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(": ")
}

/// The hint an error carries, if any.
fn hint_of(err: &anyhow::Error) -> Option<String> {
    crate::error::error_lines(err)
        .into_iter()
        .find(|(label, _)| *label == "hint")
        .map(|(_, text)| text)
}

/// The error after a rollback: the cause, and its own fix when it has one (a taken port's).
fn rolled_back(name: &str, cause: &anyhow::Error) -> anyhow::Error {
    Problem::user(format!(
        "replacing {name} failed, and the previous container was put back: {}",
        cause_of(cause)
    ))
    .hint(hint_of(cause).unwrap_or_else(|| {
        format!("read the log lines above; `docker logs {name}` shows the running one")
    }))
    .into()
}

/// The name the old container carries while it is being replaced.
pub fn previous_name(name: &str) -> String {
    format!("{name}-previous")
}

/// Removes whatever holds `name`, renames `<name>-previous` back and starts it.
async fn restore_previous(docker: &Docker, name: &str, report: &dyn Report) -> anyhow::Result<()> {
    let previous = previous_name(name);
    remove(docker, name).await?;
    fault::reached(Step::RestoreRemovedNew);
    rename(docker, &previous, name).await.map_err(|e| {
        Problem::tool(format!("could not put back the previous container: {e:#}")).hint(format!(
            "docker rename {previous} {name} && docker start {name}"
        ))
    })?;
    fault::reached(Step::RestoreRenamedBack);
    if let Err(e) = start(docker, name).await {
        // A port taken meanwhile is the user's to free; anything else is ours.
        let problem = match hint_of(&e) {
            Some(hint) => Problem::user(format!(
                "the previous container is back as {name} but did not start: {}",
                cause_of(&e)
            ))
            .hint(format!(
                "{hint}; or start it by hand once that is done: docker start {name}"
            )),
            None => Problem::tool(format!(
                "the previous container is back as {name} but did not start: {}",
                cause_of(&e)
            ))
            .hint(format!("docker start {name}")),
        };
        return Err(problem.into());
    }
    fault::reached(Step::RestoreStarted);
    report.marked(
        Mark::Warn,
        &format!("the previous {name} is back and started"),
    );
    Ok(())
}

/// What [`recover_interrupted`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// No leftover `<name>-previous`.
    Nothing,
    /// The new container was healthy: the leftover old one was removed.
    Finished,
    /// The new container was missing or unhealthy: the old one was put back and started.
    RolledBack,
}

/// Finishes or undoes a replacement that was interrupted (the process killed midway): with a
/// healthy `<name>` the leftover `<name>-previous` is removed; otherwise the old one is put
/// back and started, and the caller's install or upgrade then runs again from a sound state.
pub async fn recover_interrupted(
    docker: &Docker,
    name: &str,
    report: &dyn Report,
) -> anyhow::Result<Recovery> {
    let previous = previous_name(name);
    if inspect_container(docker, &previous).await?.is_none() {
        return Ok(Recovery::Nothing);
    }
    let current = inspect_container(docker, name).await?;
    if current.as_ref().is_some_and(is_healthy) {
        report.info(&format!(
            "Found {previous} from an interrupted replacement; {name} is healthy, so removing the old one"
        ));
        remove(docker, &previous).await?;
        return Ok(Recovery::Finished);
    }
    report.info(&format!(
        "Found {previous} from an interrupted replacement; putting it back as {name} first"
    ));
    restore_previous(docker, name, report).await?;
    Ok(Recovery::RolledBack)
}

/// The create request for a replacement of `old` running `new_image`: every env variable,
/// port, volume, label, restart policy and other host setting of the old container, without
/// what the old image itself set (so the new image's defaults apply), and `labels` on top.
pub fn body_from_existing(
    old: &ContainerInspectResponse,
    old_image: Option<&bollard::models::ImageConfig>,
    new_image: &str,
    labels: &BTreeMap<String, String>,
) -> ContainerCreateBody {
    let config = old.config.clone().unwrap_or_default();
    let image_env: Vec<String> = old_image.and_then(|c| c.env.clone()).unwrap_or_default();
    let old_labels = config.labels.clone().unwrap_or_default();
    let kept_keys: Vec<String> = old_labels
        .get(LABEL_ENV_KEYS)
        .map(|k| k.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let env: Vec<String> = config
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| {
            let key = entry.split('=').next().unwrap_or_default();
            kept_keys.iter().any(|k| k == key) || !image_env.contains(entry)
        })
        .collect();
    let image_labels = old_image.and_then(|c| c.labels.clone()).unwrap_or_default();
    let mut new_labels: HashMap<String, String> = old_labels
        .into_iter()
        .filter(|(k, v)| image_labels.get(k) != Some(v))
        .collect();
    for (k, v) in labels {
        new_labels.insert(k.clone(), v.clone());
    }
    let same_as_image = |ours: &Option<Vec<String>>, image: Option<Vec<String>>| {
        ours.as_ref()
            .map(|v| Some(v) == image.as_ref())
            .unwrap_or(true)
    };
    let cmd = (!same_as_image(&config.cmd, old_image.and_then(|c| c.cmd.clone())))
        .then(|| config.cmd.clone())
        .flatten();
    let entrypoint = (!same_as_image(
        &config.entrypoint,
        old_image.and_then(|c| c.entrypoint.clone()),
    ))
    .then(|| config.entrypoint.clone())
    .flatten();
    let working_dir = config
        .working_dir
        .clone()
        .filter(|w| Some(w) != old_image.and_then(|c| c.working_dir.as_ref()));
    let user = config
        .user
        .clone()
        .filter(|u| Some(u) != old_image.and_then(|c| c.user.as_ref()));
    // The engine makes the hostname from the container id; a new container gets its own.
    let id_prefix: String = old
        .id
        .clone()
        .unwrap_or_default()
        .chars()
        .take(12)
        .collect();
    let hostname = config
        .hostname
        .clone()
        .filter(|h| !h.is_empty() && *h != id_prefix);
    let body = ContainerCreateBody {
        hostname,
        domainname: config.domainname.clone(),
        user,
        exposed_ports: config.exposed_ports.clone(),
        tty: config.tty,
        open_stdin: config.open_stdin,
        env: Some(env),
        cmd,
        healthcheck: config.healthcheck.clone(),
        image: Some(new_image.to_string()),
        working_dir,
        entrypoint,
        labels: Some(new_labels),
        stop_signal: config.stop_signal.clone(),
        stop_timeout: config.stop_timeout,
        host_config: old.host_config.clone(),
        ..Default::default()
    };
    with_settings_hash(body)
}

/// `body` labelled with the hash of its settings, which tells a rerun whether anything changed.
fn with_settings_hash(mut body: ContainerCreateBody) -> ContainerCreateBody {
    let hash = settings_hash(&body);
    body.labels
        .get_or_insert_with(HashMap::new)
        .insert(LABEL_SETTINGS_HASH.to_string(), hash);
    body
}

/// What [`ensure_container`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Applied {
    /// The container was already as asked (same settings hash) and healthy.
    Unchanged,
    /// There was none; it was created.
    Created,
    /// It had other settings; it was replaced the safe way.
    Replaced,
}

/// Makes the container `name` match `body`: nothing when its settings hash label matches and
/// it runs; created when absent; otherwise replaced with rollback. An interrupted earlier
/// replacement is finished or undone first. Pulls the image as `pull` says.
pub async fn ensure_container(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
    pull: Pull,
    timeout: Duration,
    report: &dyn Report,
) -> anyhow::Result<Applied> {
    recover_interrupted(docker, name, report).await?;
    let wanted_hash = body
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SETTINGS_HASH).cloned())
        .unwrap_or_default();
    let image = body.image.clone().unwrap_or_default();
    match inspect_container(docker, name).await? {
        Some(existing) if labels_of(&existing).get(LABEL_SETTINGS_HASH) == Some(&wanted_hash) => {
            if !is_running(&existing) {
                report.info(&format!("{name} is as asked but stopped; starting it"));
                start_and_wait(docker, name, timeout, report).await?;
            } else {
                report.marked(
                    Mark::Ok,
                    &format!("{name} already runs with these settings"),
                );
            }
            Ok(Applied::Unchanged)
        }
        Some(_) => {
            report.info(&format!("{name} has other settings; replacing it"));
            ensure_image(docker, &image, pull, report).await?;
            replace_with_rollback(docker, name, body, timeout, report).await?;
            Ok(Applied::Replaced)
        }
        None => {
            check_ports_free(name, &body, &[])?;
            ensure_image(docker, &image, pull, report).await?;
            report.info(&format!("Creating {name}"));
            create_fresh(docker, name, body, timeout, report).await?;
            Ok(Applied::Created)
        }
    }
}

/// Fails early, before pulling or stopping anything, when a host port the container publishes
/// is taken; `held` lists ports the container being replaced holds itself (freed by stopping it).
fn check_ports_free(name: &str, body: &ContainerCreateBody, held: &[u16]) -> Result<(), Problem> {
    let bindings = body
        .host_config
        .as_ref()
        .and_then(|h| h.port_bindings.clone())
        .unwrap_or_default();
    for binding in bindings.values().flatten().flatten() {
        let Some(port) = binding
            .host_port
            .as_deref()
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| !held.contains(p))
        else {
            continue;
        };
        let ip = binding
            .host_ip
            .clone()
            .filter(|ip| !ip.is_empty())
            .unwrap_or_else(|| "0.0.0.0".into());
        if let Err(e) = std::net::TcpListener::bind((ip.as_str(), port)) {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                return Err(start_problem(
                    name,
                    &format!("listen tcp {ip}:{port}: bind: address already in use"),
                    &PortHolder::Unknown,
                ));
            }
        }
    }
    Ok(())
}

/// Starts an existing, stopped container and waits until it is healthy. (After the engine
/// itself was killed, it does not always bring back containers under unless-stopped.)
pub async fn start_and_wait(
    docker: &Docker,
    name: &str,
    timeout: Duration,
    report: &dyn Report,
) -> anyhow::Result<()> {
    start(docker, name).await?;
    wait_healthy(docker, name, timeout, report).await
}

/// Whether the engine has the NVIDIA runtime (needed for GPU device requests).
pub async fn has_nvidia_runtime(docker: &Docker) -> anyhow::Result<bool> {
    let info = docker
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("reading the engine's info: {}", engine_message(&e)))?;
    let runtimes = info.runtimes.unwrap_or_default();
    Ok(runtimes.keys().any(|k| k.contains("nvidia"))
        || info.default_runtime.is_some_and(|r| r.contains("nvidia")))
}

/// The first image on this engine whose repository is one of `repositories` (any tag), as
/// `repository:tag`: something to run a one-off command from without pulling.
pub async fn local_image_of(docker: &Docker, repositories: &[&str]) -> Option<String> {
    let images = docker
        .list_images(None::<bollard::query_parameters::ListImagesOptions>)
        .await
        .ok()?;
    repositories.iter().find_map(|wanted| {
        images
            .iter()
            .flat_map(|image| image.repo_tags.iter())
            .find(|tag| split_reference(tag).0 == *wanted)
            .cloned()
    })
}

/// Runs `command` (as the entrypoint) in a throwaway container of `image` that shares
/// `network_mode` (such as `container:<name>`, another container's network namespace), and
/// returns its exit code and output; one still running after `limit` is stopped with exit code
/// -1. The container is removed however it ends.
pub async fn run_once(
    docker: &Docker,
    image: &str,
    command: &[&str],
    network_mode: &str,
    limit: Duration,
) -> anyhow::Result<(i64, String)> {
    let name = format!(
        "duo-selfhost-probe-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(command.iter().map(|s| s.to_string()).collect()),
        cmd: Some(Vec::new()),
        host_config: Some(HostConfig {
            network_mode: Some(network_mode.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    create(docker, &name, body).await?;
    let outcome = async {
        docker
            .start_container(&name, None)
            .await
            .map_err(|e| anyhow::anyhow!("starting {name}: {}", engine_message(&e)))?;
        let mut waits = docker.wait_container(&name, None);
        let code = match tokio::time::timeout(limit, waits.next()).await {
            Ok(Some(Ok(done))) => done.status_code,
            // A non-zero exit arrives as an error carrying the code.
            Ok(Some(Err(BollardError::DockerContainerWaitError { code, .. }))) => code,
            Ok(Some(Err(e))) => return Err(anyhow::anyhow!("waiting for {name}: {e}")),
            Ok(None) | Err(_) => -1,
        };
        let output = last_log_lines(docker, &name, 50).await.join("\n");
        Ok((code, output))
    }
    .await;
    let _ = remove(docker, &name).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway_spec() -> ContainerSpec {
        ContainerSpec {
            image: "registry.example.com/ai/model-gateway:self-hosted-v17.5.0-ee".into(),
            env: BTreeMap::from([
                (
                    "AIGW_GITLAB_URL".into(),
                    "https://gitlab.example.com".into(),
                ),
                (
                    "DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY".into(),
                    "pem".into(),
                ),
            ]),
            ports: vec![PortMapping {
                host_ip: String::new(),
                host_port: 5052,
                container_port: 5052,
            }],
            binds: vec!["/srv/gitlab-agw:/var/log/gitlab-aigw".into()],
            health: Some(HttpProbe {
                port: 5052,
                path: "/monitoring/healthz".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b:self-hosted-v17.5.0-ee"),
            ("127.0.0.1:5000/a/b", "self-hosted-v17.5.0-ee")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b", "latest")
        );
        assert_eq!(
            split_reference("vllm/vllm-openai:v1"),
            ("vllm/vllm-openai", "v1")
        );
    }

    #[test]
    fn the_hash_follows_settings_not_order() {
        let a = gateway_spec();
        let mut b = a.clone();
        b.env.insert("AIGW_LOGGING__LEVEL".into(), "debug".into());
        let hash = |s: &ContainerSpec| s.create_body().labels.unwrap()[LABEL_SETTINGS_HASH].clone();
        assert_eq!(hash(&a), hash(&a.clone()));
        assert_ne!(hash(&a), hash(&b));
        let mut c = a.clone();
        c.image = "x:self-hosted-v17.6.0-ee".into();
        assert_ne!(hash(&a), hash(&c));
    }

    #[test]
    fn create_body_has_restart_policy_ports_healthcheck_and_env_keys() {
        let body = gateway_spec().create_body();
        let host = body.host_config.clone().unwrap();
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        let bindings = host.port_bindings.unwrap();
        assert_eq!(
            bindings["5052/tcp"].as_ref().unwrap()[0]
                .host_port
                .as_deref(),
            Some("5052")
        );
        let test = body.healthcheck.unwrap().test.unwrap();
        assert_eq!(test[0], "CMD-SHELL");
        assert!(test[1].contains("http://127.0.0.1:5052/monitoring/healthz"));
        assert_eq!(
            body.labels.unwrap()[LABEL_ENV_KEYS],
            "AIGW_GITLAB_URL,DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY"
        );
    }

    #[test]
    fn secrets_are_masked_in_the_env_shown() {
        let masked = gateway_spec().masked_env();
        assert!(masked.contains(&"AIGW_GITLAB_URL=https://gitlab.example.com".to_string()));
        assert!(masked.contains(&"DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY=****".to_string()));
    }

    #[test]
    fn gpus_become_a_device_request_for_every_gpu_or_some() {
        let body = |gpus| {
            ContainerSpec {
                gpus,
                ..gateway_spec()
            }
            .create_body()
        };
        let requests = |gpus| body(gpus).host_config.unwrap().device_requests;
        let all = requests(Gpus::All).unwrap();
        assert_eq!(all[0].count, Some(-1));
        assert_eq!(all[0].capabilities, Some(vec![vec!["gpu".to_string()]]));
        assert_eq!(requests(Gpus::Count(2)).unwrap()[0].count, Some(2));
        assert!(requests(Gpus::None).is_none());
        // A count is part of the settings.
        let hash = |gpus| settings_hash(&body(gpus));
        assert_ne!(hash(Gpus::Count(2)), hash(Gpus::All));
        assert_ne!(hash(Gpus::Count(2)), hash(Gpus::Count(4)));
    }

    #[test]
    fn a_replacement_keeps_settings_but_not_image_defaults() {
        let body = gateway_spec().create_body();
        let mut env = body.env.clone().unwrap();
        env.push("PATH=/usr/bin".into());
        env.push("EXTRA=1".into());
        let old = ContainerInspectResponse {
            id: Some("0123456789abcdef".into()),
            config: Some(bollard::models::ContainerConfig {
                hostname: Some("0123456789ab".into()),
                env: Some(env),
                labels: body.labels.clone(),
                entrypoint: Some(vec!["/entrypoint.sh".into()]),
                ..Default::default()
            }),
            host_config: body.host_config.clone(),
            ..Default::default()
        };
        let image = bollard::models::ImageConfig {
            env: Some(vec![
                "PATH=/usr/bin".into(),
                "AIGW_GITLAB_URL=https://gitlab.example.com".into(),
            ]),
            entrypoint: Some(vec!["/entrypoint.sh".into()]),
            ..Default::default()
        };
        let new = body_from_existing(&old, Some(&image), "x:new", &BTreeMap::new());
        let new_env = new.env.clone().unwrap();
        assert!(new_env.contains(&"AIGW_GITLAB_URL=https://gitlab.example.com".to_string()));
        assert!(new_env.contains(&"EXTRA=1".to_string()));
        assert!(!new_env.contains(&"PATH=/usr/bin".to_string()));
        assert_eq!(new.entrypoint, None);
        assert_eq!(new.hostname, None);
        assert_eq!(new.image.as_deref(), Some("x:new"));
        assert_eq!(new.host_config, body.host_config);
    }

    #[test]
    fn port_conflicts_are_named_with_who_holds_the_port() {
        let message = "driver failed programming external connectivity on endpoint gw: Bind for 0.0.0.0:5052 failed: port is already allocated";
        let p = start_problem("gw", message, &PortHolder::Unknown);
        assert!(p.message.starts_with("port 5052 is already in use"));
        assert!(p.hint.unwrap().contains("--gateway-port"));
        let p = start_problem("gw", message, &PortHolder::Container("other".into()));
        assert!(p.message.contains("by the container other"));
        assert!(p.hint.unwrap().starts_with("stop it (docker stop other)"));
        let p = start_problem("gw", message, &PortHolder::EngineItself);
        assert!(p
            .message
            .contains("still allocated inside the Docker Engine"));
        assert!(p.hint.unwrap().contains("restart the engine"));
    }
}
