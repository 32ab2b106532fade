//! One engine call each on a container by name: create, start, stop, rename, remove, read
//! its last log lines, wait until it is healthy, and run a throwaway one to completion. What
//! to create and in which order to replace are `spec`'s and `replace`'s.

use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, ContainerStateStatusEnum, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::ports::start_failure;
use super::{engine_message, inspect_container, is_healthy, is_not_found};
use crate::error::Problem;
use crate::report::{Mark, Report};

/// Seconds a container gets to stop before it is killed.
const STOP_TIMEOUT_SECS: i32 = 30;

pub(super) async fn create(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> anyhow::Result<()> {
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
pub(super) async fn start_created(docker: &Docker, name: &str) -> anyhow::Result<()> {
    if let Err(e) = docker.start_container(name, None).await {
        let message = engine_message(&e);
        let _ = remove(docker, name).await;
        return Err(start_failure(docker, name, &message).await.into());
    }
    Ok(())
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

pub(super) async fn rename(docker: &Docker, from: &str, to: &str) -> anyhow::Result<()> {
    let options = RenameContainerOptionsBuilder::default().name(to).build();
    docker
        .rename_container(from, options)
        .await
        .map_err(|e| anyhow::anyhow!("renaming {from} to {to}: {}", engine_message(&e)))
}

pub(super) async fn stop(docker: &Docker, name: &str) -> anyhow::Result<()> {
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

pub(super) async fn start(docker: &Docker, name: &str) -> anyhow::Result<()> {
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
