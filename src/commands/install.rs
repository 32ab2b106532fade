//! `duo-selfhost install`: the steps an administrator would take. Gather the settings (flags,
//! gitlab.rb, the GitLab API, prompts: `settings`, with the questions only a person can answer
//! in `wizard`), choose the gateway image (`image`), plan the containers (`plan`), show the
//! plan and confirm it, apply it the safe way (replace with rollback; the embedded model's unit
//! in `embedded`), point GitLab at the gateway, record what was done in the state file, register
//! the model in GitLab and verify the chain (`finish`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::cli::{InstallArgs, ModelRuntime, Target};
use crate::commands::gitlab_version::VersionSource;
use crate::docker;
use crate::error::{ExitStatus, Problem};
use crate::gitlab_api::GitlabClient;
use crate::gitlab_config::{self, PointRequest, PointStep};
use crate::model_cache;
use crate::output::{Mark, Printer};
use crate::registry::RegistryChoice;
use crate::signing_keys;
use crate::state;
use crate::vllm::{self, VllmModel};

mod embedded;
mod finish;
mod image;
mod plan;
mod settings;
mod wizard;

pub use embedded::{embedded_serve_config, packaged_unit, render_unit, ServeUnit};
pub use image::{
    gateway_image_for, lookup_for, pull_policy, require_loaded_image, resolve_gateway_image,
};
pub use plan::{gateway_spec, AGENT_PLATFORM_PORT};
pub use settings::{gather_settings, gitlab_client, Settings};

use plan::{Plan, PlannedContainer};

pub fn run(args: InstallArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    if args.target == Target::Helm {
        return super::helm_target::install(&args, printer);
    }
    let runtime = super::runtime()?;
    let client = gitlab_client(&args.gitlab, args.gitlab.gitlab_url.as_deref())?;
    let settings = gather_settings(&args, client.as_ref(), runtime, printer)?;
    // The client for pointing GitLab at the gateway: at the URL finally chosen, with the token
    // given or asked for.
    let mut connection = args.gitlab.clone();
    connection.gitlab_token = settings.gitlab_token.clone();
    let client = gitlab_client(&connection, Some(&settings.gitlab_url))?;
    let installed = runtime.block_on(install_docker(&args, settings, client.as_ref(), printer))?;
    let Some((chain, missing)) = installed else {
        return Ok(ExitStatus::Success);
    };
    if printer.json {
        return Ok(ExitStatus::Success);
    }
    let everything_given = chain.is_some() && missing.0.is_empty();
    let verified = finish::verify_chain(chain, &missing, printer)?;
    // Something not given is a list of next steps; everything given and no answer is a failure.
    Ok(if everything_given && !verified {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// What install did, for the summary and `--json`.
#[derive(Debug, Serialize)]
struct Outcome {
    gateway_url: String,
    gateway_image: String,
    gitlab_version: String,
    gitlab_version_source: VersionSource,
    containers: BTreeMap<String, docker::Applied>,
    state_file: PathBuf,
    state_changed: bool,
    gitlab: gitlab_config::PointOutcome,
    model_registration: Option<super::models::register::Registered>,
}

/// GitLab 18 needs the gateway's signing keys (`signing_keys`). A key the gateway container
/// already has is kept, so that a rerun changes neither the keys nor the container; the others
/// are generated. Only their names are ever printed.
async fn add_signing_keys(settings: &mut Settings, container: &str, printer: &Printer) {
    let missing = signing_keys::missing(&settings.gitlab_version, &settings.extra_env);
    if missing.is_empty() {
        return;
    }
    // Best effort: with no Docker Engine here, the install stops later and says why.
    if let Ok(engine) = docker::connect().await {
        if let Ok(Some(existing)) = docker::inspect_container(&engine, container).await {
            for (key, value) in docker::env_of(&existing) {
                if missing.contains(&key.as_str()) && !value.trim().is_empty() {
                    settings.extra_env.insert(key, value);
                }
            }
        }
    }
    let generated = signing_keys::add_missing_or_warn(
        &settings.gitlab_version,
        &mut settings.extra_env,
        printer,
    );
    if !generated.is_empty() {
        printer.info(format!(
            "GitLab {} needs the gateway's signing keys: generated {} (kept only in the container's environment)",
            settings.gitlab_version,
            generated.join(", ")
        ));
    }
}

/// The Docker target, step by step; `None` when nothing was applied (a dry run, or the plan
/// declined), else what is left for `finish` to verify or to list.
async fn install_docker(
    args: &InstallArgs,
    mut settings: Settings,
    client: Option<&GitlabClient>,
    printer: &Printer,
) -> anyhow::Result<Option<(Option<finish::ChainToVerify>, finish::Missing)>> {
    let image = image::gateway_image_for(
        &settings.gitlab_version,
        &args.image,
        || RegistryChoice::Gitlab,
        printer,
    )
    .await?;
    add_signing_keys(&mut settings, &args.container_name, printer).await;
    warn_of_a_loopback_gitlab_url(&settings, printer)?;
    let plan = plan::plan(args, &settings, image, printer)?;

    // The whole plan comes before any change: on a dry run it is all there is, on a terminal
    // it is confirmed first.
    if (args.dry_run || printer.interactive)
        && !show_and_confirm(args, &settings, &plan, client, printer).await?
    {
        return Ok(None);
    }
    // Refuse a gateway URL GitLab could not use before touching any container.
    gitlab_config::validate_gateway_url(&plan.gateway_url, args.allow_localhost)?;

    let applied = apply_containers(args, &settings, &plan, printer).await?;
    let state_path = state::resolve_path(args.state.state_file.as_deref());
    if settings.model_runtime == ModelRuntime::Embedded {
        embedded::install_embedded_unit(&settings, &state_path, printer)?;
    }
    // Recorded before GitLab is touched: the containers exist whatever happens next.
    let state_changed = save_state_if_changed(&state_path, new_state(args, &settings, &plan))?;

    let pointed = gitlab_config::point_gitlab_at_gateway(
        &point_request(args, &settings, &plan, client, false),
        printer,
    )
    .await?;
    let mut missing = finish::Missing::default();
    if !pointed.manual_steps.is_empty() {
        missing
            .0
            .push("the steps above, under \"still to do by hand\"".to_string());
    }
    let registered = finish::register_step(
        client,
        &settings.gitlab_url,
        plan.to_register.as_ref(),
        &mut missing,
        printer,
    )
    .await;

    let gitlab_unchanged = pointed.steps.iter().all(|step| {
        matches!(
            step,
            PointStep::GitlabRbUnchanged { .. }
                | PointStep::SettingUnchanged
                | PointStep::FeatureFlagAlreadyOn
        )
    });
    let all_unchanged = applied.values().all(|a| *a == docker::Applied::Unchanged)
        && !state_changed
        && gitlab_unchanged;
    let outcome = Outcome {
        gateway_url: plan.gateway_url.clone(),
        gateway_image: plan.image.clone(),
        gitlab_version: settings.gitlab_version.to_string(),
        gitlab_version_source: settings.gitlab_version_source,
        containers: applied,
        state_file: state_path,
        state_changed,
        gitlab: pointed,
        model_registration: registered,
    };
    report_done(args, &outcome, all_unchanged, printer)?;
    let chain = match (&settings.gitlab_token, outcome.model_registration) {
        (Some(token), Some(_)) => Some(finish::ChainToVerify {
            gitlab_url: settings.gitlab_url.clone(),
            gitlab_token: token.clone(),
            gateway_url: plan.gateway_url.clone(),
            ca_cert: args.gitlab.ca_cert.clone(),
        }),
        _ => None,
    };
    Ok(Some((chain, missing)))
}

/// Inside the gateway container a loopback GitLab URL names the container itself.
fn warn_of_a_loopback_gitlab_url(settings: &Settings, printer: &Printer) -> anyhow::Result<()> {
    if crate::net::is_local_only_host(
        url::Url::parse(&settings.gitlab_url)?
            .host_str()
            .unwrap_or(""),
    ) {
        printer.warn(format!(
            "AIGW_GITLAB_URL is {}: inside the container that names the container itself, not GitLab",
            settings.gitlab_url
        ));
    }
    Ok(())
}

/// Shows the plan, what would be registered and what GitLab would be told (a dry run of
/// pointing it); whether to go on: never on a dry run, else as the administrator answers.
async fn show_and_confirm(
    args: &InstallArgs,
    settings: &Settings,
    plan: &Plan,
    client: Option<&GitlabClient>,
    printer: &Printer,
) -> anyhow::Result<bool> {
    plan::print_plan(
        settings,
        &plan.containers,
        &plan.gateway_url,
        args.dry_run,
        printer,
    )?;
    if !printer.json {
        match &plan.to_register {
            Some(model) => {
                for line in model.plan_lines(settings.gitlab_token.is_some()) {
                    printer.result(line);
                }
            }
            None => printer.result("model registration: none (no model endpoint yet)"),
        }
    }
    printer.info("GitLab:");
    let outcome = gitlab_config::point_gitlab_at_gateway(
        &point_request(args, settings, plan, client, true),
        printer,
    )
    .await?;
    plan::print_manual_steps(&outcome.manual_steps, printer);
    if args.dry_run {
        // Last, after GitLab's part of the plan, so it speaks for the whole of it.
        if !printer.json {
            printer.result("nothing changed (--dry-run)");
        }
        return Ok(false);
    }
    if !printer.confirm("Apply this plan?")? {
        printer.result("nothing changed");
        return Ok(false);
    }
    Ok(true)
}

/// How GitLab is pointed at the planned gateway (`dry_run`: only said, not done).
fn point_request<'a>(
    args: &'a InstallArgs,
    settings: &'a Settings,
    plan: &'a Plan,
    client: Option<&'a GitlabClient>,
    dry_run: bool,
) -> PointRequest<'a> {
    PointRequest {
        gateway_url: &plan.gateway_url,
        gitlab_version: &settings.gitlab_version,
        gitlab_rb: Some(args.gitlab.gitlab_rb.as_path()),
        client,
        allow_localhost: args.allow_localhost,
        reconfigure: gitlab_ctl_here(),
        dry_run,
    }
}

/// Checks what the containers need of this host (the NVIDIA runtime for vLLM; under
/// `--offline` the images and weights already here), makes the directories they mount, and
/// puts each container in place; what was done to each.
async fn apply_containers(
    args: &InstallArgs,
    settings: &Settings,
    plan: &Plan,
    printer: &Printer,
) -> anyhow::Result<BTreeMap<String, docker::Applied>> {
    let engine = docker::connect().await?;
    if settings.model_runtime == ModelRuntime::Vllm
        && !vllm::without_gpu_for_tests()
        && !docker::has_nvidia_runtime(&engine).await?
    {
        return Err(Problem::user(
            "the Docker Engine has no NVIDIA runtime, so a vLLM container could not use a GPU; nothing was changed",
        )
        .hint("install the NVIDIA Container Toolkit (nvidia-ctk runtime configure --runtime=docker, then restart Docker), or use --model-runtime embedded, or --model-runtime none --model-endpoint URL")
        .into());
    }

    if args.image.offline {
        for container in &plan.containers {
            image::require_loaded_image(&engine, &container.spec.image, &settings.gitlab_version)
                .await?;
        }
        if let Some(VllmModel::Repository { repo, catalog, .. }) = &settings.vllm_model {
            image::require_cached_weights(repo, *catalog, &settings.gitlab_version)?;
        }
    }
    create_log_dir(&args.log_dir)?;
    if settings.model_runtime == ModelRuntime::Vllm {
        // Made here, as this user, rather than by the engine as root at the first mount, so
        // that `models pull` can write to it later.
        model_cache::ensure_hf_home()?;
    }
    let mut applied = BTreeMap::new();
    for container in &plan.containers {
        applied.insert(
            container.name.clone(),
            apply_container(args, container, &engine, printer).await?,
        );
    }
    Ok(applied)
}

async fn apply_container(
    args: &InstallArgs,
    container: &PlannedContainer,
    engine: &bollard::Docker,
    printer: &Printer,
) -> anyhow::Result<docker::Applied> {
    printer.info(format!("{} container {}", container.role, container.name));
    docker::ensure_container(
        engine,
        &container.name,
        container.spec.create_body(),
        image::pull_policy(args.image.pull),
        Duration::from_secs(args.health_timeout),
        printer,
    )
    .await
}

/// What the state file records of this install: GitLab, the gateway (with its settings hash)
/// and the model.
fn new_state(args: &InstallArgs, settings: &Settings, plan: &Plan) -> state::State {
    let gateway_body = plan.containers[0].spec.create_body();
    state::State {
        gitlab: Some(state::GitlabState {
            url: settings.gitlab_url.clone(),
            version: settings.gitlab_version.to_string(),
            gitlab_rb: args
                .gitlab
                .gitlab_rb
                .exists()
                .then(|| args.gitlab.gitlab_rb.clone()),
        }),
        gateway: Some(state::GatewayState {
            target: "docker".to_string(),
            url: plan.gateway_url.clone(),
            image: plan.image.clone(),
            container_name: Some(args.container_name.clone()),
            log_dir: Some(args.log_dir.clone()),
            settings_hash: gateway_body
                .labels
                .as_ref()
                .and_then(|l| l.get(docker::LABEL_SETTINGS_HASH).cloned())
                .unwrap_or_default(),
            ..Default::default()
        }),
        model: plan
            .model_endpoint
            .clone()
            .map(|endpoint| state::ModelState {
                runtime: match settings.model_runtime {
                    ModelRuntime::None => "none",
                    ModelRuntime::Embedded => "embedded",
                    ModelRuntime::Vllm => "vllm",
                }
                .to_string(),
                endpoint,
                identifier: plan
                    .served
                    .as_deref()
                    .map(|s| format!("custom_openai/{s}"))
                    .unwrap_or_default(),
                catalog_name: plan.catalog_name.clone(),
                container_name: (settings.model_runtime == ModelRuntime::Vllm)
                    .then(|| plan::vllm_container_name(args)),
            }),
        ..Default::default()
    }
}

/// The last word: the `--json` document, or one line (already as asked, or where the gateway
/// runs), then what is still to do by hand.
fn report_done(
    args: &InstallArgs,
    outcome: &Outcome,
    all_unchanged: bool,
    printer: &Printer,
) -> anyhow::Result<()> {
    let Outcome {
        gateway_url,
        gateway_image: image,
        state_file,
        ..
    } = outcome;
    if printer.json {
        printer.json_document(&serde_json::to_value(outcome)?);
        return Ok(());
    }
    if all_unchanged {
        printer.result(format!(
            "{} already installed as asked: {} runs {image}; nothing changed",
            printer.mark(Mark::Ok),
            args.container_name
        ));
    } else {
        printer.result(format!(
            "{} the AI Gateway runs at {gateway_url} ({image}); state recorded in {}",
            printer.mark(Mark::Ok),
            state_file.display()
        ));
    }
    plan::print_manual_steps(&outcome.gitlab.manual_steps, printer);
    Ok(())
}

/// Whether omnibus' gitlab-ctl is on this host (so a gitlab.rb change can be applied here).
fn gitlab_ctl_here() -> bool {
    crate::gitlab_rb::find_gitlab_ctl().is_ok()
}

/// Creates the gateway's log directory. The gateway runs as a non-root user whose uid the
/// host does not know, so a directory made here is world-writable with the sticky bit, like
/// /tmp; an existing directory is left as its owner set it.
fn create_log_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        Problem::user(format!(
            "could not create the log directory {}: {e}",
            dir.display()
        ))
        .hint("run as root, or choose a writable place with --log-dir DIR")
    })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777))?;
    Ok(())
}

/// Writes the state file unless it already says the same; whether it was written.
fn save_state_if_changed(path: &Path, new: state::State) -> anyhow::Result<bool> {
    let old = state::load(path)?;
    let same = old.as_ref().is_some_and(|old| {
        old.gitlab == new.gitlab && old.gateway == new.gateway && old.model == new.model
    });
    if same {
        return Ok(false);
    }
    state::save(path, &new)?;
    Ok(true)
}
