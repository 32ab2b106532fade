//! The Docker Engine through bollard: connect, pull with progress, create, wait for health,
//! and replace a container with rollback. Knows nothing about GitLab.

use bollard::Docker;

use crate::error::Problem;

/// Connects to the engine (DOCKER_HOST or the local socket) and checks that it answers.
pub async fn connect() -> anyhow::Result<Docker> {
    let docker =
        Docker::connect_with_local_defaults().map_err(|e| unreachable_problem(&e.to_string()))?;
    docker
        .ping()
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
