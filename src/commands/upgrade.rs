//! `duo-selfhost upgrade`: moves the gateway container to the image for the current GitLab
//! version, keeping every env variable, port, volume, label and the restart policy of the old
//! container, with rollback when the new one does not become healthy.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cli::{Target, UpgradeArgs};
use crate::commands::gitlab_version::{self, Sources, VersionSource, Voice};
use crate::commands::install::AGENT_PLATFORM_PORT;
use crate::commands::install::{
    gateway_image_for, gitlab_client, pull_policy, require_loaded_image, resolve_gateway_image,
};
use crate::docker;
use crate::error::{ExitStatus, Problem};
use crate::gateway_image;
use crate::output::{Mark, Printer};
use crate::registry::RegistryChoice;
use crate::secret;
use crate::signing_keys;
use crate::state;

pub fn run(args: UpgradeArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let state_path = state::resolve_path(args.state.state_file.as_deref());
    let saved = state::load(&state_path)?;
    let target = args.target.unwrap_or_else(|| {
        match saved
            .as_ref()
            .and_then(|s| s.gateway.as_ref())
            .map(|g| g.target.as_str())
        {
            Some("helm") => Target::Helm,
            _ => Target::Docker,
        }
    });
    if target == Target::Helm {
        return super::helm_target::upgrade(&args, printer);
    }
    super::runtime()?.block_on(upgrade_docker(&args, saved, &state_path, printer))
}

/// What the upgrade decided, for `--check`, `--dry-run` and `--json`.
#[derive(Debug, serde::Serialize)]
struct Decision {
    container: String,
    current_image: String,
    target_image: String,
    gitlab_version: String,
    gitlab_version_source: VersionSource,
    /// What the GitLab version needs that the container lacks (by name), added by the upgrade.
    lacking: Vec<String>,
    upgrade_available: bool,
}

async fn upgrade_docker(
    args: &UpgradeArgs,
    saved: Option<state::State>,
    state_path: &std::path::Path,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let saved_gateway = saved.as_ref().and_then(|s| s.gateway.clone());
    let name = args
        .container_name
        .clone()
        .or_else(|| {
            saved_gateway
                .as_ref()
                .and_then(|g| g.container_name.clone())
        })
        .unwrap_or_else(|| "gitlab-aigw".to_string());
    let engine = docker::connect().await?;
    let read_only = args.check || args.dry_run;

    if read_only {
        if docker::inspect_container(&engine, &docker::previous_name(&name))
            .await?
            .is_some()
        {
            printer.warn(format!(
                "{} is left from an interrupted replacement; a run without --check/--dry-run finishes it",
                docker::previous_name(&name)
            ));
        }
    } else {
        docker::recover_interrupted(&engine, &name, printer).await?;
    }

    let (old, current_image) = existing_gateway(&engine, &name).await?;
    let old_labels = docker::labels_of(&old);

    let recorded = saved
        .as_ref()
        .and_then(|s| s.gitlab.as_ref())
        .map(|g| g.version.clone())
        .or_else(|| old_labels.get(docker::LABEL_GITLAB_VERSION).cloned());
    // GitLab's API is asked only when the flag does not say (a client needs its CA file).
    let client = match &args.to_version {
        Some(_) => None,
        None => {
            let url = args.gitlab.gitlab_url.clone().or_else(|| {
                saved
                    .as_ref()
                    .and_then(|s| s.gitlab.as_ref())
                    .map(|g| g.url.clone())
            });
            gitlab_client(&args.gitlab, url.as_deref())?
        }
    };
    let (version, version_source) = gitlab_version::find(
        Sources {
            flag: args.to_version.as_deref(),
            api: client.as_ref(),
            host_manifest: true,
            recorded: recorded.as_deref(),
        },
        Voice::Upgrade,
        printer,
    )
    .await?
    .ok_or_else(|| {
        Problem::user("the GitLab version could not be found")
            .hint("give it with --to-version, such as --to-version 17.6.0")
    })?;

    let target_image = gateway_image_for(
        &version,
        &args.image,
        || RegistryChoice::of_image(&current_image),
        printer,
    )
    .await?;

    let lacking = Lacking::of(&version, &old);
    let lacking_names = lacking.names();
    let decision = Decision {
        container: name.clone(),
        current_image: current_image.clone(),
        target_image: target_image.clone(),
        gitlab_version: version.to_string(),
        gitlab_version_source: version_source,
        upgrade_available: current_image != target_image || !lacking_names.is_empty(),
        lacking: lacking_names,
    };
    // The same image, but settings the version needs are missing (a gateway installed before
    // duo-selfhost added them): the replacement adds them.
    let what_changes = if current_image == target_image {
        format!(
            "{name} runs {current_image} but lacks what GitLab {version} needs: {}",
            decision.lacking.join(", ")
        )
    } else {
        format!("{name}: {current_image} -> {target_image} (GitLab {version})")
    };

    if args.check {
        if printer.json {
            printer.json_document(&serde_json::to_value(&decision)?);
        }
        if decision.upgrade_available {
            printer.result(format!("upgrade available for {what_changes}"));
            return Ok(ExitStatus::UpgradeAvailable);
        }
        printer.result(format!("{name} is up to date: {current_image}"));
        return Ok(ExitStatus::Success);
    }

    if !decision.upgrade_available {
        // An upgrade killed after the new container was healthy left the state file naming
        // the old image; the container is the truth.
        let hash = old_labels
            .get(docker::LABEL_SETTINGS_HASH)
            .cloned()
            .unwrap_or_default();
        if !args.dry_run
            && record_upgrade(saved, state_path, &name, &current_image, &hash, &version)?
        {
            printer.info(format!(
                "the state file now records {current_image}, which {name} runs"
            ));
        }
        // Up to date but down (stopped by hand, or the engine was killed and did not bring it
        // back): the gateway this command looks after should answer afterwards.
        let started = !args.dry_run && !docker::is_running(&old);
        if started {
            printer.info(format!("{name} is up to date but not running; starting it"));
            docker::start_and_wait(
                &engine,
                &name,
                Duration::from_secs(args.health_timeout),
                printer,
            )
            .await?;
        }
        if printer.json {
            printer.json_document(&serde_json::to_value(&decision)?);
        }
        printer.result(format!(
            "{} {name} is up to date: {current_image} (GitLab {version}){}",
            printer.mark(Mark::Ok),
            if started {
                "; started it"
            } else {
                "; nothing changed"
            }
        ));
        return Ok(ExitStatus::Success);
    }

    let mut body = replacement_body(&engine, &old, &target_image, Some(&version)).await;
    let additions = add_lacking(&lacking, &version, &mut body, printer);

    if args.dry_run {
        if printer.json {
            printer.json_document(&serde_json::json!({
                "decision": decision,
                "env": masked(&body.env.clone().unwrap_or_default()),
                "added": additions,
            }));
            return Ok(ExitStatus::Success);
        }
        printer.result(format!("would replace {what_changes}"));
        printer.result("keeping env:");
        for line in masked(&body.env.clone().unwrap_or_default()) {
            if !additions.iter().any(|a| line.starts_with(&format!("{a}="))) {
                printer.result(format!("  {line}"));
            }
        }
        for addition in &additions {
            printer.result(format!("adding for GitLab {version}: {addition}"));
        }
        let host = body.host_config.clone().unwrap_or_default();
        let ports: Vec<String> = docker::published_ports(&host)
            .into_iter()
            .map(|(ip, port, container)| {
                let ip = if ip.is_empty() { "0.0.0.0" } else { &ip };
                format!("{ip}:{port} -> {container}")
            })
            .collect();
        printer.result(format!("keeping ports: {}", ports.join(", ")));
        printer.result(format!(
            "keeping volumes: {}",
            host.binds.unwrap_or_default().join(", ")
        ));
        printer.result(format!(
            "keeping restart policy: {}",
            host.restart_policy
                .and_then(|r| r.name)
                .map(|n| n.to_string())
                .unwrap_or_else(|| "no".into())
        ));
        printer.result("nothing changed (--dry-run)");
        return Ok(ExitStatus::Success);
    }

    if !printer.confirm(&format!(
        "Replace {name} ({current_image}) with {target_image}?"
    ))? {
        printer.result("nothing changed");
        return Ok(ExitStatus::Failure);
    }

    if args.image.offline {
        require_loaded_image(&engine, &target_image, &version).await?;
    }
    docker::ensure_image(
        &engine,
        &target_image,
        pull_policy(args.image.pull),
        printer,
    )
    .await?;
    let hash = body
        .labels
        .as_ref()
        .and_then(|l| l.get(docker::LABEL_SETTINGS_HASH).cloned())
        .unwrap_or_default();
    docker::replace_with_rollback(
        &engine,
        &name,
        body,
        Duration::from_secs(args.health_timeout),
        printer,
    )
    .await?;

    record_upgrade(saved, state_path, &name, &target_image, &hash, &version)?;
    if printer.json {
        printer.json_document(&serde_json::to_value(&decision)?);
    }
    printer.result(format!(
        "{} upgraded {name}: {current_image} -> {target_image}",
        printer.mark(Mark::Ok)
    ));
    Ok(ExitStatus::Success)
}

/// Records in the state file (when there is one) that the gateway runs `image`; whether that
/// changed the file.
fn record_upgrade(
    saved: Option<state::State>,
    state_path: &std::path::Path,
    name: &str,
    image: &str,
    settings_hash: &str,
    version: &semver::Version,
) -> anyhow::Result<bool> {
    let Some(mut saved) = saved else {
        return Ok(false);
    };
    let before = saved.clone();
    if let Some(gateway) = saved.gateway.as_mut() {
        gateway.image = image.to_string();
        gateway.settings_hash = settings_hash.to_string();
        gateway.container_name = Some(name.to_string());
    }
    if let Some(gitlab) = saved.gitlab.as_mut() {
        gitlab.version = version.to_string();
    }
    if saved == before {
        return Ok(false);
    }
    state::save(state_path, &saved)?;
    Ok(true)
}

fn masked(env: &[String]) -> Vec<String> {
    secret::mask_env_entries(
        env.iter()
            .map(|entry| entry.split_once('=').unwrap_or((entry.as_str(), ""))),
    )
}

/// What GitLab `version` needs that a gateway container lacks.
struct Lacking {
    /// Signing keys (`signing_keys`), by variable name.
    keys: Vec<&'static str>,
    /// The Agent Platform's port (18.4 on), unpublished on a gateway not on the host's network.
    agent_platform_port: bool,
}

impl Lacking {
    fn of(version: &semver::Version, old: &bollard::models::ContainerInspectResponse) -> Self {
        let host = old.host_config.as_ref();
        let published = host
            .and_then(|h| h.port_bindings.as_ref())
            .is_some_and(|b| b.contains_key(&agent_platform_port()));
        // On the host's network every port the container opens is already the host's.
        let on_host_network = host.and_then(|h| h.network_mode.as_deref()) == Some("host");
        Lacking {
            keys: signing_keys::missing(version, &docker::env_of(old)),
            agent_platform_port: (version.major, version.minor) >= (18, 4)
                && !published
                && !on_host_network,
        }
    }

    /// What is lacking, by name only (a key's value is never shown).
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        if self.agent_platform_port {
            names.push(format!(
                "port {AGENT_PLATFORM_PORT} -> {}",
                agent_platform_port()
            ));
        }
        names
    }
}

fn agent_platform_port() -> String {
    format!("{AGENT_PLATFORM_PORT}/tcp")
}

/// Adds to the replacement's `body` what `lacking` names: the signing keys, generated (a key
/// that cannot be made is a warning), and the Agent Platform's port. Returns what was added.
fn add_lacking(
    lacking: &Lacking,
    version: &semver::Version,
    body: &mut bollard::models::ContainerCreateBody,
    printer: &Printer,
) -> Vec<String> {
    let env = body.env.get_or_insert_with(Vec::new);
    let mut by_key = docker::env_map(env);
    let mut added = Vec::new();
    for key in signing_keys::add_missing_or_warn(version, &mut by_key, printer) {
        env.retain(|entry| entry.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(format!("{key}={}", by_key[key]));
        added.push(key.to_string());
    }
    if lacking.agent_platform_port {
        let port = agent_platform_port();
        body.host_config
            .get_or_insert_with(Default::default)
            .port_bindings
            .get_or_insert_with(Default::default)
            .insert(
                port.clone(),
                Some(vec![bollard::models::PortBinding {
                    host_ip: None,
                    host_port: Some(AGENT_PLATFORM_PORT.to_string()),
                }]),
            );
        let exposed = body.exposed_ports.get_or_insert_with(Vec::new);
        if !exposed.contains(&port) {
            exposed.push(port.clone());
        }
        added.push(format!("port {AGENT_PLATFORM_PORT} -> {port}"));
    }
    if !added.is_empty() {
        let hash = docker::settings_hash(body);
        body.labels
            .get_or_insert_with(Default::default)
            .insert(docker::LABEL_SETTINGS_HASH.to_string(), hash);
    }
    added
}

/// The gateway container `name` and the image it runs; an error naming install when there is
/// none.
async fn existing_gateway(
    engine: &bollard::Docker,
    name: &str,
) -> anyhow::Result<(bollard::models::ContainerInspectResponse, String)> {
    let Some(old) = docker::inspect_container(engine, name).await? else {
        return Err(Problem::user(format!(
            "there is no container named {name} on this Docker Engine"
        ))
        .hint("install the gateway first (duo-selfhost install), or name the container with --container-name")
        .into());
    };
    let image = old
        .config
        .as_ref()
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    Ok((old, image))
}

/// The create request of `old`'s replacement on `image`: every setting of `old`, and our
/// labels refreshed (the GitLab version's when there is one).
async fn replacement_body(
    engine: &bollard::Docker,
    old: &bollard::models::ContainerInspectResponse,
    image: &str,
    version: Option<&semver::Version>,
) -> bollard::models::ContainerCreateBody {
    let mut labels = BTreeMap::from([(
        docker::LABEL_VERSION.to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    )]);
    if let Some(version) = version {
        labels.insert(
            docker::LABEL_GITLAB_VERSION.to_string(),
            version.to_string(),
        );
    }
    let old_image_config = match old.image.as_deref() {
        Some(id) => engine.inspect_image(id).await.ok().and_then(|i| i.config),
        None => None,
    };
    docker::body_from_existing(old, old_image_config.as_ref(), image, &labels)
}

/// What `doctor --fix` changes on the gateway container: the image for a GitLab version, and
/// env variables set or removed.
#[derive(Debug, Clone, Default)]
pub struct GatewayChange {
    /// Move to the gateway image for this GitLab version (the highest tag of its minor, from
    /// the registry the container's image came from).
    pub to_version: Option<semver::Version>,
    pub set_env: BTreeMap<String, String>,
    pub remove_env: Vec<String>,
}

/// Replaces the container `name` the way `upgrade` does (every other setting kept, rollback
/// when the new one is not healthy, the state file updated), with `change` applied. For
/// `doctor --fix`; returns the image the container runs afterwards.
pub async fn change_gateway(
    name: &str,
    change: &GatewayChange,
    state_path: &std::path::Path,
    printer: &Printer,
) -> anyhow::Result<String> {
    let engine = docker::connect().await?;
    docker::recover_interrupted(&engine, name, printer).await?;
    let (old, current_image) = existing_gateway(&engine, name).await?;
    let target_image = match &change.to_version {
        Some(version) => {
            resolve_gateway_image(
                version,
                &RegistryChoice::of_image(&current_image),
                None,
                gateway_image::Lookup::Online,
                printer,
            )
            .await?
        }
        None => current_image.clone(),
    };
    let mut body = replacement_body(&engine, &old, &target_image, change.to_version.as_ref()).await;
    let env = body.env.get_or_insert_with(Vec::new);
    env.retain(|entry| {
        let key = entry.split('=').next().unwrap_or_default();
        !change.set_env.contains_key(key) && !change.remove_env.iter().any(|r| r == key)
    });
    env.extend(change.set_env.iter().map(|(k, v)| format!("{k}={v}")));
    let hash = docker::settings_hash(&body);
    body.labels
        .get_or_insert_with(Default::default)
        .insert(docker::LABEL_SETTINGS_HASH.to_string(), hash.clone());
    docker::ensure_image(&engine, &target_image, docker::Pull::Missing, printer).await?;
    docker::replace_with_rollback(&engine, name, body, Duration::from_secs(120), printer).await?;
    if let Some(version) = &change.to_version {
        record_upgrade(
            state::load(state_path)?,
            state_path,
            name,
            &target_image,
            &hash,
            version,
        )?;
    }
    Ok(target_image)
}
