//! The Docker Engine through bollard: connect, pull with progress, create, wait for health,
//! and replace a container with rollback. Knows nothing about GitLab: callers hand it a
//! [`ContainerSpec`] (or an existing container to copy) and a report. This file holds the
//! connection, the labels, engine errors and what is read off an inspected container; the
//! parts live in `spec` (what a container is), `pull`, `container` (one engine call each),
//! `ports` (a taken host port, named) and `replace` (create or replace, with rollback).

use std::collections::{BTreeMap, HashMap};

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use bollard::Docker;

use crate::error::Problem;

mod container;
mod ports;
mod pull;
mod replace;
mod spec;

pub use container::{last_log_lines, remove, run_once, start_and_wait, wait_healthy};
pub use pull::{ensure_image, image_present, local_image_of, pull, Pull};
pub use replace::{
    ensure_container, previous_name, recover_interrupted, replace_with_rollback, Applied, Recovery,
};
pub use spec::{
    body_from_existing, published_ports, settings_hash, ContainerSpec, Gpus, HttpProbe, PortMapping,
};

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
