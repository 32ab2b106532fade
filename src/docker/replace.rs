//! Putting a container in place: [`ensure_container`] creates it, leaves it, or replaces it the
//! way that never loses the old one ([`replace_with_rollback`]), and finishes or undoes a
//! replacement an earlier run was killed in the middle of. The single engine calls are in
//! `container`, the request itself in `spec`.

use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::Docker;
use serde::Serialize;

use super::container::{
    create, remove, rename, start, start_and_wait, start_created, stop, wait_healthy,
};
use super::ports::check_ports_free;
use super::pull::{ensure_image, Pull};
use super::{
    inspect_container, is_healthy, is_running, labels_of, published_ports, LABEL_SETTINGS_HASH,
};
use crate::error::Problem;
use crate::fault::{self, Step};
use crate::report::{Mark, Report};

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
    start_new(docker, name, body, timeout, report, InPlaceOf::Previous).await?;
    fault::reached(Step::NewHealthy);
    if let Err(e) = remove(docker, &previous).await {
        report.warn(&format!(
            "the new {name} runs, but the old one could not be removed: {e:#}; remove it with: docker rm -f {previous}"
        ));
    }
    fault::reached(Step::OldRemoved);
    Ok(())
}

/// What a new container takes the place of, which decides how its failure is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InPlaceOf {
    /// Nothing: a new one that does not become healthy is removed, so that a re-run starts
    /// clean.
    Nothing,
    /// The old container, kept as `<name>-previous`: any failure puts it back. Each step is a
    /// [`fault::Step`].
    Previous,
}

/// The one way a new container comes up, fresh or as a replacement: create it under `name`,
/// start it, wait until it is healthy; a failure is undone as `in_place_of` says.
async fn start_new(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
    timeout: Duration,
    report: &dyn Report,
    in_place_of: InPlaceOf,
) -> anyhow::Result<()> {
    let reached = |step| {
        if in_place_of == InPlaceOf::Previous {
            fault::reached(step);
        }
    };
    let started = async {
        create(docker, name, body).await?;
        reached(Step::NewCreated);
        // One that cannot start is removed by `start_created` itself.
        start_created(docker, name).await?;
        reached(Step::NewStarted);
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = started {
        return Err(match in_place_of {
            InPlaceOf::Nothing => e,
            InPlaceOf::Previous => roll_back(docker, name, e, report).await,
        });
    }
    if let Err(e) = wait_healthy(docker, name, timeout, report).await {
        return Err(match in_place_of {
            InPlaceOf::Nothing => {
                let _ = remove(docker, name).await;
                Problem::user(format!("the new container failed: {e}; it was removed"))
                    .hint(
                        "read the log lines above; fix the setting or the image and run install again",
                    )
                    .into()
            }
            InPlaceOf::Previous => roll_back(docker, name, e, report).await,
        });
    }
    Ok(())
}

/// Puts the previous container back after the new one failed; the error to return.
async fn roll_back(
    docker: &Docker,
    name: &str,
    failure: anyhow::Error,
    report: &dyn Report,
) -> anyhow::Error {
    report.warn(&format!(
        "the new {name} failed, rolling back: {}",
        cause_of(&failure)
    ));
    match restore_previous(docker, name, report).await {
        Ok(()) => rolled_back(name, &failure),
        Err(e) => e,
    }
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
            start_new(docker, name, body, timeout, report, InPlaceOf::Nothing).await?;
            Ok(Applied::Created)
        }
    }
}
