//! `duo-selfhost install`: the steps an administrator would take. Gather the settings (flags,
//! gitlab.rb, the GitLab API, prompts), choose the gateway image, plan the containers, show the
//! plan, apply it the safe way (replace with rollback), point GitLab at the gateway, record
//! what was done in the state file, register the model in GitLab and verify the chain
//! (`finish`). The questions only a person can answer are in `wizard`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::cli::{
    GitlabConnectionArgs, ImageChoiceArgs, InstallArgs, ModelRuntime, PullPolicy, Target,
};
use crate::commands::gitlab_version::{self, Sources, VersionSource, Voice};
use crate::docker::{self, ContainerSpec, Gpus, HttpProbe, PortMapping};
use crate::env_var;
use crate::error::{ExitStatus, Problem};
use crate::gitlab_api::GitlabClient;
use crate::gitlab_config::{self, PointRequest, PointStep};
use crate::image_tag;
use crate::model_cache;
use crate::output::{Mark, Printer};
use crate::registry::RegistryChoice;
use crate::secret::Secret;
use crate::serve_config::{self, ModelEntry, ServeFile};
use crate::signing_keys;
use crate::state;
use crate::vllm::{self, VllmModel, VllmOptions};

mod finish;
mod wizard;

/// The gateway's container port (HTTP API).
const GATEWAY_PORT: u16 = 5052;
/// The Agent Platform (Duo Workflow Service) gRPC port, published from GitLab 18.4.
pub const AGENT_PLATFORM_PORT: u16 = 50052;
/// Where the log directory is mounted inside the gateway container.
const CONTAINER_LOG_DIR: &str = "/var/log/gitlab-aigw";
/// The port `duo-selfhost serve` listens on under the systemd unit.
const EMBEDDED_PORT: u16 = 8080;
const UNIT_NAME: &str = "duo-selfhost-serve.service";
/// Where the serve config goes on a systemd host (the unit's EnvironmentFile is there too).
const SYSTEM_CONFIG_DIR: &str = "/etc/duo-selfhost";
const SERVE_CONFIG_NAME: &str = "serve.toml";
const UNIT_TEMPLATE: &str = include_str!("../../templates/duo-selfhost-serve.service");

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

/// A GitLab API client when a URL is known (the token, if any, makes admin calls possible).
pub fn gitlab_client(
    gitlab: &GitlabConnectionArgs,
    url: Option<&str>,
) -> anyhow::Result<Option<GitlabClient>> {
    url.map(|url| gitlab_version::client(gitlab, url, Duration::from_secs(15)))
        .transpose()
}

/// The gateway image for a GitLab version by the image-tag rules, its warnings printed.
pub async fn resolve_gateway_image(
    version: &semver::Version,
    registry: &RegistryChoice,
    available_tags: Option<&Path>,
    lookup: image_tag::Lookup,
    printer: &Printer,
) -> anyhow::Result<String> {
    let choice = image_tag::resolve(version, registry, available_tags, lookup).await?;
    for warning in &choice.warnings {
        printer.warn(warning);
    }
    Ok(choice.image)
}

/// The gateway image the image flags ask for: `--image` as given, else the tag for `version`
/// from `--registry` (or `default_registry`), `--available-tags` and `--offline`.
pub async fn gateway_image_for(
    version: &semver::Version,
    image: &ImageChoiceArgs,
    default_registry: impl FnOnce() -> RegistryChoice,
    printer: &Printer,
) -> anyhow::Result<String> {
    if let Some(given) = &image.image {
        return Ok(given.clone());
    }
    let registry = image.registry.clone().unwrap_or_else(default_registry);
    resolve_gateway_image(
        version,
        &registry,
        image.available_tags.as_deref(),
        lookup_for(image),
        printer,
    )
    .await
}

/// How far the image choice may reach for tags: `--offline` keeps it to a loaded bundle.
pub fn lookup_for(image: &ImageChoiceArgs) -> image_tag::Lookup {
    if image.offline {
        image_tag::Lookup::BundleOnly
    } else {
        image_tag::Lookup::Online
    }
}

/// Under `--offline`, the image must already be on this host (a bundle load puts it there):
/// the error names the bundle commands instead of trying a pull that cannot work.
pub async fn require_loaded_image(
    engine: &bollard::Docker,
    image: &str,
    gitlab_version: &semver::Version,
) -> anyhow::Result<()> {
    if docker::image_present(engine, image).await? {
        return Ok(());
    }
    Err(Problem::user(format!(
        "--offline: the image {image} is not on this host, and --offline forbids pulling it"
    ))
    .hint(format!(
        "on a connected machine: duo-selfhost bundle create --gitlab-version {gitlab_version} --output duo.bundle; here: duo-selfhost bundle load duo.bundle"
    ))
    .into())
}

/// Under `--offline`, vLLM must find the repository in the Hugging Face cache (a bundle load
/// puts it there): `refs/main` naming a snapshot that has the model's configuration.
fn require_cached_weights(
    repo: &str,
    catalog: Option<&'static crate::catalog::Model>,
    gitlab_version: &semver::Version,
) -> anyhow::Result<()> {
    let snapshot = model_cache::cached_commit(repo, "main").map(|commit| {
        model_cache::repo_dir_of(repo)
            .join("snapshots")
            .join(commit)
    });
    let configured = snapshot.as_ref().is_some_and(|dir| {
        ["config.json", "params.json"]
            .iter()
            .any(|f| dir.join(f).is_file())
    });
    if configured {
        return Ok(());
    }
    let model = catalog.map_or(repo, |m| m.name);
    Err(Problem::user(format!(
        "--offline: the weights of {repo} are not in the Hugging Face cache ({}), and vLLM may not download them",
        model_cache::repo_dir_of(repo).display()
    ))
    .hint(format!(
        "on a connected machine: duo-selfhost bundle create --gitlab-version {gitlab_version} --model-runtime vllm --model {model} --output duo.bundle; here: duo-selfhost bundle load duo.bundle"
    ))
    .into())
}

pub fn pull_policy(policy: PullPolicy) -> docker::Pull {
    match policy {
        PullPolicy::Always => docker::Pull::Always,
        PullPolicy::Missing => docker::Pull::Missing,
        PullPolicy::Never => docker::Pull::Never,
    }
}

/// Every value install needs, from flags, files, the API or prompts.
#[derive(Debug, Clone)]
pub struct Settings {
    pub gitlab_url: String,
    pub gitlab_version: semver::Version,
    pub gitlab_version_source: VersionSource,
    pub gateway_host: String,
    pub extra_env: BTreeMap<String, String>,
    pub model_endpoint: Option<String>,
    pub model: Option<String>,
    /// What vLLM loads, resolved from `model` (with --model-runtime vllm).
    pub vllm_model: Option<VllmModel>,
    pub served_model_name: Option<String>,
    pub model_runtime: ModelRuntime,
    /// Given or asked for (hidden); never stored.
    pub gitlab_token: Option<Secret>,
    pub model_api_key: Option<Secret>,
}

impl Settings {
    pub fn gateway_url(&self, port: u16) -> String {
        format!("http://{}:{port}", host_for_url(&self.gateway_host))
    }
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Asks for a value on the terminal; `None` when prompting is not possible.
fn ask(printer: &Printer, prompt: &str, default: Option<&str>) -> anyhow::Result<Option<String>> {
    if !printer.interactive {
        return Ok(None);
    }
    let mut input = dialoguer::Input::<String>::new().with_prompt(prompt);
    if let Some(default) = default {
        input = input.default(default.to_string());
    }
    // Ctrl-C here ends the process before anything was changed: every prompt comes first.
    Ok(Some(input.interact_text()?.trim().to_string()))
}

fn missing(what: &str, flag: &str) -> anyhow::Error {
    Problem::user(format!("{what} is needed and was not given"))
        .hint(format!(
            "give it with {flag}, or run without --yes on a terminal to be asked"
        ))
        .into()
}

/// The settings from the flags, gitlab.rb and the host, asking for what is missing when on a
/// terminal. Nothing is changed here.
pub fn gather_settings(
    args: &InstallArgs,
    client: Option<&GitlabClient>,
    runtime: &tokio::runtime::Runtime,
    printer: &Printer,
) -> anyhow::Result<Settings> {
    let gitlab_url = match &args.gitlab.gitlab_url {
        Some(url) => url.clone(),
        None => {
            // Only a real URL is offered: the template's GENERATED_EXTERNAL_URL is not one.
            let from_rb = external_url_of(&args.gitlab.gitlab_rb)
                .filter(|url| validate_gitlab_url(url).is_ok());
            match (ask(printer, "GitLab URL", from_rb.as_deref())?, from_rb) {
                (Some(answer), _) => answer,
                (None, Some(url)) => url,
                (None, None) => return Err(missing("GitLab's URL", "--gitlab-url URL")),
            }
        }
    };
    let gitlab_url = validate_gitlab_url(&gitlab_url)?;
    let api_client;
    let client = match client {
        Some(c) => Some(c),
        None => {
            api_client = gitlab_client(&args.gitlab, Some(&gitlab_url))?;
            api_client.as_ref()
        }
    };

    let found = runtime.block_on(gitlab_version::find(
        Sources {
            flag: args.gitlab_version.as_deref(),
            api: client,
            host_manifest: true,
            recorded: None,
        },
        Voice::Install,
        printer,
    ))?;
    let (gitlab_version, gitlab_version_source) = match found {
        Some(found) => found,
        None => match ask(printer, "GitLab version (such as 17.5.0)", None)? {
            Some(answer) => (
                image_tag::parse_gitlab_version(&answer)?,
                VersionSource::Prompt,
            ),
            None => return Err(missing(
                "the GitLab version (no API token and no /opt/gitlab/version-manifest.json here)",
                "--gitlab-version 17.5.0",
            )),
        },
    };

    let gateway_host = match &args.gateway_host {
        Some(host) => host.clone(),
        None => {
            let default = this_host_name();
            match ask(
                printer,
                "Host name GitLab reaches the gateway by",
                default.as_deref(),
            )? {
                Some(answer) => answer,
                None => {
                    default.ok_or_else(|| missing("the gateway host", "--gateway-host HOST"))?
                }
            }
        }
    };
    check_gateway_host(&gateway_host, args.allow_localhost)?;

    let extra_env: BTreeMap<String, String> =
        env_var::parse_assignments(&args.env)?.into_iter().collect();

    let model_runtime = wizard::model_runtime(args.model_runtime, printer)?;
    let model_endpoint = match (model_runtime, &args.model_endpoint) {
        (ModelRuntime::None, Some(endpoint)) => Some(endpoint.clone()),
        (ModelRuntime::None, None) => ask(
            printer,
            "Model endpoint, ending in /v1 (empty: none yet)",
            Some(""),
        )?
        .filter(|s| !s.is_empty()),
        _ => None,
    };
    let model = match model_runtime {
        ModelRuntime::None if model_endpoint.is_some() => {
            wizard::endpoint_model(args.model.as_deref(), printer)?
        }
        ModelRuntime::None => args.model.clone(),
        ModelRuntime::Embedded => Some(wizard::embedded_model(args.model.as_deref(), printer)?),
        ModelRuntime::Vllm => Some(
            wizard::vllm_model(args.model.as_deref(), printer)?
                .ok_or_else(|| missing("the model for vLLM", "--model codestral"))?,
        ),
    };
    let vllm_model = match model_runtime {
        ModelRuntime::Vllm => Some(vllm::resolve_model(model.as_deref().unwrap_or_default())?),
        _ => {
            for (given, flag) in [
                (args.gpus.is_some(), "--gpus"),
                (args.ctx_size.is_some(), "--ctx-size"),
                (args.vllm_image.is_some(), "--vllm-image"),
            ] {
                if given {
                    return Err(Problem::user(format!(
                        "{flag} sets vLLM's arguments, and this install runs no vLLM"
                    ))
                    .hint(format!("add --model-runtime vllm, or drop {flag} (the embedded server's context is serve --ctx-size)"))
                    .into());
                }
            }
            None
        }
    };
    let gitlab_token =
        wizard::gitlab_token(args.gitlab.gitlab_token.clone(), &gitlab_version, printer)?;
    Ok(Settings {
        gitlab_url,
        gitlab_version,
        gitlab_version_source,
        gateway_host,
        extra_env,
        model_endpoint,
        model,
        vllm_model,
        served_model_name: args.served_model_name.clone(),
        model_runtime,
        gitlab_token,
        model_api_key: args.model_api_key.clone(),
    })
}

/// `external_url` of gitlab.rb, when the file is there and sets it.
fn external_url_of(gitlab_rb: &Path) -> Option<String> {
    let text = std::fs::read_to_string(gitlab_rb).ok()?;
    crate::gitlab_rb::external_url(&text)
}

fn validate_gitlab_url(text: &str) -> anyhow::Result<String> {
    let parsed = url::Url::parse(text.trim()).map_err(|e| {
        Problem::user(format!("`{text}` is not a URL: {e}"))
            .hint("give GitLab's external URL, such as --gitlab-url https://gitlab.example.com")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Problem::user(format!("`{text}` is not an http(s) URL"))
            .hint("give GitLab's external URL, such as --gitlab-url https://gitlab.example.com")
            .into());
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// GitLab must reach the gateway over the network: a loopback name only works on one host.
fn check_gateway_host(host: &str, allow_localhost: bool) -> anyhow::Result<()> {
    if host.is_empty() {
        return Err(missing("the gateway host", "--gateway-host HOST"));
    }
    if crate::net::is_local_only_host(host) && !allow_localhost {
        return Err(Problem::user(format!(
            "the gateway host `{host}` is a loopback name: GitLab (and its Sidekiq and Workhorse) must reach the gateway over the network"
        ))
        .hint("give the name or address GitLab reaches this host by, such as --gateway-host aigw.example.com (--allow-localhost for a one-host lab)")
        .into());
    }
    Ok(())
}

fn this_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).to_string();
    (!name.is_empty() && !crate::net::is_local_only_host(&name)).then_some(name)
}

/// The gateway container as install wants it.
pub fn gateway_spec(
    settings: &Settings,
    image: &str,
    gateway_port: u16,
    log_dir: &Path,
) -> ContainerSpec {
    let mut env = BTreeMap::from([
        ("AIGW_GITLAB_URL".to_string(), settings.gitlab_url.clone()),
        (
            "AIGW_GITLAB_API_URL".to_string(),
            format!("{}/api/v4/", settings.gitlab_url),
        ),
        (
            "AIGW_CUSTOM_MODELS__ENABLED".to_string(),
            "true".to_string(),
        ),
        (
            "AIGW_LOGGING__TO_FILE".to_string(),
            format!("{CONTAINER_LOG_DIR}/ai-gateway.log"),
        ),
    ]);
    let agent_platform = has_agent_platform(&settings.gitlab_version);
    if agent_platform {
        env.insert(
            "DUO_WORKFLOW_LOGGING__TO_FILE".to_string(),
            format!("{CONTAINER_LOG_DIR}/duo-workflow-service.log"),
        );
    }
    env.extend(settings.extra_env.clone());
    let mut ports = vec![PortMapping {
        host_ip: String::new(),
        host_port: gateway_port,
        container_port: GATEWAY_PORT,
    }];
    if agent_platform {
        ports.push(PortMapping {
            host_ip: String::new(),
            host_port: AGENT_PLATFORM_PORT,
            container_port: AGENT_PLATFORM_PORT,
        });
    }
    ContainerSpec {
        image: image.to_string(),
        env,
        ports,
        binds: vec![format!("{}:{CONTAINER_LOG_DIR}", log_dir.display())],
        cmd: Vec::new(),
        labels: BTreeMap::from([
            (
                docker::LABEL_VERSION.to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            (
                docker::LABEL_GITLAB_VERSION.to_string(),
                settings.gitlab_version.to_string(),
            ),
            (
                docker::LABEL_LOG_DIR.to_string(),
                log_dir.display().to_string(),
            ),
        ]),
        health: Some(HttpProbe {
            port: GATEWAY_PORT,
            path: "/monitoring/healthz".to_string(),
        }),
        gpus: Gpus::None,
    }
}

/// GitLab 18.4 brought the Agent Platform, served by the same image on 50052.
fn has_agent_platform(version: &semver::Version) -> bool {
    (version.major, version.minor) >= (18, 4)
}

/// The served name of a model: the flag, else the vLLM model's default name, else the last
/// part of its name, lowercased.
fn served_name(settings: &Settings, model: &str) -> String {
    match (&settings.served_model_name, &settings.vllm_model) {
        (Some(flag), _) => flag.clone(),
        (None, Some(vllm)) => vllm.default_served_name(),
        (None, None) => crate::catalog::short_name(model),
    }
}

/// The vLLM container for the resolved model: `--gpus N` or every GPU nvidia-smi lists, the
/// context from `--ctx-size`, the Hugging Face cache `models pull` fills, the token from the
/// environment. Says what it guessed and what differs from GitLab's page.
fn vllm_container(
    args: &InstallArgs,
    settings: &Settings,
    model: &VllmModel,
    printer: &Printer,
) -> ContainerSpec {
    let (tensor_parallel_size, gpus) = match args.gpus {
        Some(n) => (n, Gpus::Count(n)),
        None => match vllm::count_visible_gpus() {
            Some(n) => {
                printer.detail(format!(
                    "nvidia-smi -L lists {n} GPU(s): --tensor-parallel-size {n}"
                ));
                (n, Gpus::All)
            }
            None => {
                printer.warn(
                    "could not count the GPUs (no nvidia-smi here, or it lists none): vLLM gets --tensor-parallel-size 1; give --gpus N to spread the model over N GPUs",
                );
                (1, Gpus::All)
            }
        },
    };
    let gpus = if vllm::without_gpu_for_tests() {
        printer.warn(format!(
            "{}=1 (test hook): the vLLM container asks for no GPU",
            vllm::NO_GPU_HOOK_VAR
        ));
        Gpus::None
    } else {
        gpus
    };
    if let Some(note) = model.load().note() {
        printer.info(format!("note: {note}"));
    }
    let token = model_cache::hf_token();
    if token.is_none() {
        if let VllmModel::Repository { repo, .. } = model {
            printer.info(format!(
                "no HF_TOKEN in the environment: if {repo} is gated on Hugging Face (Mistral's, Meta's and Google's are), vLLM cannot download it; export HF_TOKEN and rerun"
            ));
        }
    }
    let hf_home = model_cache::hf_home();
    let served = served_name(settings, &model.argument());
    vllm::container_spec(
        model,
        &VllmOptions {
            served_model_name: &served,
            tensor_parallel_size,
            gpus,
            max_model_len: args.ctx_size,
            hf_home: &hf_home,
            hf_token: token.as_ref(),
            image: args.vllm_image.as_deref().unwrap_or(docker::VLLM_IMAGE),
            offline: args.image.offline,
        },
    )
}

/// The systemd unit for `duo-selfhost serve --config`, from templates/.
pub fn render_unit(unit: &ServeUnit) -> anyhow::Result<String> {
    let env = minijinja::Environment::new();
    Ok(env.render_str(
        UNIT_TEMPLATE,
        minijinja::context! {
            written_by => unit.written_by,
            exe => unit.exe.display().to_string(),
            config => unit.config.display().to_string(),
            models => unit.models,
            hf_home => unit.hf_home.map(|p| p.display().to_string()),
        },
    )?)
}

/// What the systemd unit for `duo-selfhost serve --config` is rendered from.
pub struct ServeUnit<'a> {
    /// Who wrote the unit and what rewrites it (its first comment line).
    pub written_by: &'a str,
    pub exe: &'a Path,
    pub config: &'a Path,
    /// The models served, for the unit's description.
    pub models: &'a str,
    /// The Hugging Face cache; `None` leaves the service user's own default.
    pub hf_home: Option<&'a Path>,
}

/// The unit the .deb/.rpm/tarball ship (`generate-assets --packaging`): the packaged binary
/// with the packaged config, root's own model cache, enabled by nobody until an admin is.
pub fn packaged_unit() -> anyhow::Result<String> {
    render_unit(&ServeUnit {
        written_by: "Installed by the duo-selfhost package. Override it with `systemctl edit duo-selfhost-serve`; `duo-selfhost install --model-runtime embedded` writes its own unit in /etc/systemd/system.",
        exe: Path::new("/usr/bin/duo-selfhost"),
        config: Path::new("/etc/duo-selfhost/serve.toml"),
        models: "the models in /etc/duo-selfhost/serve.toml",
        hf_home: None,
    })
}

/// The serve config the unit runs: the model under its served name, on every interface.
pub fn embedded_serve_config(model: &str, served_model_name: &str) -> anyhow::Result<String> {
    let file = ServeFile {
        host: Some("0.0.0.0".into()),
        port: Some(EMBEDDED_PORT),
        models: vec![ModelEntry {
            model: model.to_string(),
            served_model_name: Some(served_model_name.to_string()),
            ..ModelEntry::default()
        }],
        ..ServeFile::default()
    };
    serve_config::render(
        &file,
        "Written by `duo-selfhost install --model-runtime embedded`; a rerun of install rewrites it.",
    )
}

/// A container install manages, with its name and what it is for.
struct PlannedContainer {
    role: &'static str,
    name: String,
    spec: ContainerSpec,
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

async fn install_docker(
    args: &InstallArgs,
    mut settings: Settings,
    client: Option<&GitlabClient>,
    printer: &Printer,
) -> anyhow::Result<Option<(Option<finish::ChainToVerify>, finish::Missing)>> {
    let image = gateway_image_for(
        &settings.gitlab_version,
        &args.image,
        || RegistryChoice::Gitlab,
        printer,
    )
    .await?;
    let gateway_url = settings.gateway_url(args.gateway_port);
    add_signing_keys(&mut settings, &args.container_name, printer).await;
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

    let mut planned = vec![PlannedContainer {
        role: "gateway",
        name: args.container_name.clone(),
        spec: gateway_spec(&settings, &image, args.gateway_port, &args.log_dir),
    }];
    let model_endpoint = match settings.model_runtime {
        ModelRuntime::None => settings.model_endpoint.clone(),
        ModelRuntime::Vllm => {
            let model = settings
                .vllm_model
                .as_ref()
                .ok_or_else(|| Problem::tool("the vLLM model was not resolved before planning"))?;
            planned.push(PlannedContainer {
                role: "vllm",
                name: format!("{}-vllm", args.container_name),
                spec: vllm_container(args, &settings, model, printer),
            });
            Some(format!(
                "http://{}:{}/v1",
                host_for_url(&settings.gateway_host),
                vllm::PORT
            ))
        }
        ModelRuntime::Embedded => Some(format!(
            "http://{}:{EMBEDDED_PORT}/v1",
            host_for_url(&settings.gateway_host)
        )),
    };

    let point = |dry_run: bool| PointRequest {
        gateway_url: &gateway_url,
        gitlab_version: &settings.gitlab_version,
        gitlab_rb: Some(args.gitlab.gitlab_rb.as_path()),
        client,
        allow_localhost: args.allow_localhost,
        reconfigure: gitlab_ctl_here(),
        dry_run,
    };
    let to_register = model_endpoint
        .clone()
        .map(|endpoint| finish::ModelToRegister {
            catalog_name: match &settings.vllm_model {
                Some(vllm) => vllm.catalog(),
                None => settings.model.as_deref().and_then(crate::catalog::find),
            }
            .map(|m| m.name.to_string()),
            endpoint,
            served_name: settings
                .model
                .as_deref()
                .map(|m| served_name(&settings, m))
                .or_else(|| settings.served_model_name.clone())
                .unwrap_or_else(|| "MODEL".to_string()),
            api_key: settings.model_api_key.clone(),
        });
    // The whole plan comes before any change: on a dry run it is all there is, on a terminal
    // it is confirmed first.
    if args.dry_run || printer.interactive {
        print_plan(&settings, &planned, &gateway_url, args.dry_run, printer)?;
        if !printer.json {
            match &to_register {
                Some(model) => {
                    for line in model.plan_lines(settings.gitlab_token.is_some()) {
                        printer.result(line);
                    }
                }
                None => printer.result("model registration: none (no model endpoint yet)"),
            }
            if args.dry_run {
                printer.result("nothing changed (--dry-run)");
            }
        }
        printer.info("GitLab:");
        let outcome = gitlab_config::point_gitlab_at_gateway(&point(true), printer).await?;
        print_manual_steps(&outcome.manual_steps, printer);
        if args.dry_run {
            return Ok(None);
        }
        if !printer.confirm("Apply this plan?")? {
            printer.result("nothing changed");
            return Ok(None);
        }
    }
    // Refuse a gateway URL GitLab could not use before touching any container.
    gitlab_config::validate_gateway_url(&gateway_url, args.allow_localhost)?;

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
        for container in &planned {
            require_loaded_image(&engine, &container.spec.image, &settings.gitlab_version).await?;
        }
        if let Some(VllmModel::Repository { repo, catalog, .. }) = &settings.vllm_model {
            require_cached_weights(repo, *catalog, &settings.gitlab_version)?;
        }
    }
    create_log_dir(&args.log_dir)?;
    if settings.model_runtime == ModelRuntime::Vllm {
        // Made here, as this user, rather than by the engine as root at the first mount, so
        // that `models pull` can write to it later.
        model_cache::ensure_hf_home()?;
    }
    let mut applied = BTreeMap::new();
    for container in &planned {
        printer.info(format!("{} container {}", container.role, container.name));
        let outcome = docker::ensure_container(
            &engine,
            &container.name,
            container.spec.create_body(),
            pull_policy(args.image.pull),
            Duration::from_secs(args.health_timeout),
            printer,
        )
        .await?;
        applied.insert(container.name.clone(), outcome);
    }

    let state_path = state::resolve_path(args.state_file.as_deref());
    if settings.model_runtime == ModelRuntime::Embedded {
        install_embedded_unit(&settings, &state_path, printer)?;
    }

    let served = settings
        .model
        .as_deref()
        .map(|m| served_name(&settings, m))
        .or_else(|| settings.served_model_name.clone());
    let gateway_body = planned[0].spec.create_body();
    let new_state = state::State {
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
            url: gateway_url.clone(),
            image: image.clone(),
            container_name: Some(args.container_name.clone()),
            log_dir: Some(args.log_dir.clone()),
            settings_hash: gateway_body
                .labels
                .as_ref()
                .and_then(|l| l.get(docker::LABEL_SETTINGS_HASH).cloned())
                .unwrap_or_default(),
            ..Default::default()
        }),
        model: model_endpoint.map(|endpoint| state::ModelState {
            runtime: match settings.model_runtime {
                ModelRuntime::None => "none",
                ModelRuntime::Embedded => "embedded",
                ModelRuntime::Vllm => "vllm",
            }
            .to_string(),
            endpoint,
            identifier: served
                .as_deref()
                .map(|s| format!("custom_openai/{s}"))
                .unwrap_or_default(),
            catalog_name: match &settings.vllm_model {
                Some(vllm) => vllm.catalog(),
                None => settings.model.as_deref().and_then(crate::catalog::find),
            }
            .map(|m| m.name.to_string()),
            container_name: (settings.model_runtime == ModelRuntime::Vllm)
                .then(|| format!("{}-vllm", args.container_name)),
        }),
        ..Default::default()
    };
    // Recorded before GitLab is touched: the containers exist whatever happens next.
    let state_changed = save_state_if_changed(&state_path, new_state)?;

    let pointed = gitlab_config::point_gitlab_at_gateway(&point(false), printer).await?;
    let gitlab_unchanged = pointed.steps.iter().all(|step| {
        matches!(
            step,
            PointStep::GitlabRbUnchanged { .. }
                | PointStep::SettingUnchanged
                | PointStep::FeatureFlagAlreadyOn
        )
    });

    let mut missing = finish::Missing::default();
    if !pointed.manual_steps.is_empty() {
        missing
            .0
            .push("the steps above, under \"still to do by hand\"".to_string());
    }
    let registered = finish::register_step(
        client,
        &settings.gitlab_url,
        to_register.as_ref(),
        &mut missing,
        printer,
    )
    .await;

    let all_unchanged = applied.values().all(|a| *a == docker::Applied::Unchanged)
        && !state_changed
        && gitlab_unchanged;
    let outcome = Outcome {
        gateway_url: gateway_url.clone(),
        gateway_image: image.clone(),
        gitlab_version: settings.gitlab_version.to_string(),
        gitlab_version_source: settings.gitlab_version_source,
        containers: applied,
        state_file: state_path.clone(),
        state_changed,
        gitlab: pointed.clone(),
        model_registration: registered.clone(),
    };
    if printer.json {
        printer.json_document(&serde_json::to_value(&outcome)?);
    } else if all_unchanged {
        printer.result(format!(
            "{} already installed as asked: {} runs {image}; nothing changed",
            printer.mark(Mark::Ok),
            args.container_name
        ));
    } else {
        printer.result(format!(
            "{} the AI Gateway runs at {gateway_url} ({image}); state recorded in {}",
            printer.mark(Mark::Ok),
            state_path.display()
        ));
    }
    if !printer.json {
        print_manual_steps(&pointed.manual_steps, printer);
    }
    let chain = match (&settings.gitlab_token, registered) {
        (Some(token), Some(_)) => Some(finish::ChainToVerify {
            gitlab_url: settings.gitlab_url.clone(),
            gitlab_token: token.clone(),
            gateway_url: gateway_url.clone(),
            ca_cert: args.gitlab.ca_cert.clone(),
        }),
        _ => None,
    };
    Ok(Some((chain, missing)))
}

fn print_manual_steps(steps: &[String], printer: &Printer) {
    if steps.is_empty() {
        return;
    }
    printer.info("still to do by hand:");
    for step in steps {
        printer.info(format!("  {step}"));
    }
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

/// Writes the unit for `duo-selfhost serve` and starts it where systemd runs; elsewhere writes
/// it beside the state file and says how to run the server.
fn install_embedded_unit(
    settings: &Settings,
    state_path: &Path,
    printer: &Printer,
) -> anyhow::Result<()> {
    let model = settings
        .model
        .clone()
        .unwrap_or_else(|| crate::catalog::DEMO_MODEL.to_string());
    let served = served_name(settings, &model);
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("duo-selfhost"));
    let systemd = Path::new("/run/systemd/system").is_dir();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let beside_state = state_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let config_dir = if systemd && root {
        Path::new(SYSTEM_CONFIG_DIR)
    } else {
        beside_state
    };
    let config_path = config_dir.join(SERVE_CONFIG_NAME);
    let hf_home = model_cache::hf_home();
    let unit = render_unit(&ServeUnit {
        written_by:
            "Written by `duo-selfhost install --model-runtime embedded`; `install` rewrites it.",
        exe: &exe,
        config: &config_path,
        models: &model,
        hf_home: Some(&hf_home),
    })?;
    // The config first: the unit names it.
    write_if_changed(&config_path, &embedded_serve_config(&model, &served)?)?;
    if systemd && root {
        let path = Path::new("/etc/systemd/system").join(UNIT_NAME);
        write_if_changed(&path, &unit)?;
        for args in [vec!["daemon-reload"], vec!["enable", "--now", UNIT_NAME]] {
            let status = std::process::Command::new("systemctl")
                .args(&args)
                .status()?;
            if !status.success() {
                return Err(Problem::user(format!(
                    "systemctl {} failed ({status})",
                    args.join(" ")
                ))
                .hint(format!("journalctl -u {UNIT_NAME} shows why"))
                .into());
            }
        }
        printer.info(format!(
            "{} {UNIT_NAME} is enabled and started",
            printer.mark(Mark::Ok)
        ));
    } else {
        let path = beside_state.join(UNIT_NAME);
        write_if_changed(&path, &unit)?;
        printer.warn(format!(
            "systemd is not running here{}, so the model server was not started. Run it with:\n  {} serve --config {}\n(the unit for a systemd host is in {})",
            if root { "" } else { " (or this is not root)" },
            exe.display(),
            config_path.display(),
            path.display()
        ));
    }
    Ok(())
}

fn write_if_changed(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(path)
        .map_err(|e| anyhow::Error::new(e.error).context(format!("writing {}", path.display())))?;
    Ok(())
}

fn print_plan(
    settings: &Settings,
    planned: &[PlannedContainer],
    gateway_url: &str,
    dry_run: bool,
    printer: &Printer,
) -> anyhow::Result<()> {
    if printer.json {
        let containers: Vec<_> = planned
            .iter()
            .map(|c| {
                serde_json::json!({
                    "role": c.role,
                    "name": c.name,
                    "image": c.spec.image,
                    "env": c.spec.masked_env(),
                    "ports": c.spec.ports,
                    "volumes": c.spec.binds,
                    "cmd": c.spec.cmd,
                    "gpus": c.spec.gpus,
                    "command": c.spec.docker_run_args(&c.name),
                    "restart": "unless-stopped",
                })
            })
            .collect();
        if !dry_run {
            return Ok(());
        }
        printer.json_document(&serde_json::json!({
            "dry_run": true,
            "gitlab_url": settings.gitlab_url,
            "gitlab_version": settings.gitlab_version.to_string(),
            "gateway_url": gateway_url,
            "containers": containers,
        }));
        return Ok(());
    }
    printer.result(format!(
        "Plan{}: GitLab {} at {}, gateway at {gateway_url}",
        if dry_run { " (dry run)" } else { "" },
        settings.gitlab_version,
        settings.gitlab_url
    ));
    for c in planned {
        printer.result(format!("{} container {}:", c.role, c.name));
        printer.result(format!("  image: {}", c.spec.image));
        printer.result("  env:");
        for line in c.spec.masked_env() {
            printer.result(format!("    {line}"));
        }
        let ports: Vec<String> = c
            .spec
            .ports
            .iter()
            .map(|p| format!("{}:{}", p.host_port, p.container_port))
            .collect();
        printer.result(format!("  ports: {}", ports.join(", ")));
        printer.result(format!("  volumes: {}", c.spec.binds.join(", ")));
        if !c.spec.cmd.is_empty() {
            printer.result(format!("  arguments: {}", c.spec.cmd.join(" ")));
        }
        if let Some(gpus) = c.spec.gpus.flag_value() {
            printer.result(format!("  GPUs: {gpus} (NVIDIA runtime required)"));
        }
        printer.result("  restart: unless-stopped");
        if !c.spec.cmd.is_empty() {
            let line: Vec<String> = c
                .spec
                .docker_run_args(&c.name)
                .iter()
                .map(|word| crate::helm::exec::shell_quote(word))
                .collect();
            printer.result(format!("  command: docker run {}", line.join(" ")));
        }
    }
    printer.result(match settings.model_runtime {
        ModelRuntime::Embedded => format!(
            "model runtime: {UNIT_NAME} running duo-selfhost serve --model {} on port {EMBEDDED_PORT}",
            settings.model.as_deref().unwrap_or(crate::catalog::DEMO_MODEL)
        ),
        ModelRuntime::Vllm => "model runtime: the vLLM container above".to_string(),
        ModelRuntime::None => format!(
            "model runtime: an existing endpoint ({})",
            settings.model_endpoint.as_deref().unwrap_or("none yet")
        ),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(version: &str) -> Settings {
        Settings {
            gitlab_url: "https://gitlab.example.com".into(),
            gitlab_version: semver::Version::parse(version).unwrap(),
            gitlab_version_source: VersionSource::Flag,
            gateway_host: "aigw.example.com".into(),
            extra_env: BTreeMap::from([("AIGW_AUTH__SECRET_TOKEN".into(), "s3cret".into())]),
            model_endpoint: None,
            model: None,
            vllm_model: None,
            served_model_name: None,
            model_runtime: ModelRuntime::None,
            gitlab_token: None,
            model_api_key: None,
        }
    }

    #[test]
    fn gateway_env_ports_and_log_volume() {
        let spec = gateway_spec(
            &settings("17.5.0"),
            "img:1",
            5052,
            Path::new("/srv/gitlab-agw"),
        );
        assert_eq!(spec.env["AIGW_GITLAB_URL"], "https://gitlab.example.com");
        assert_eq!(
            spec.env["AIGW_GITLAB_API_URL"],
            "https://gitlab.example.com/api/v4/"
        );
        assert_eq!(spec.env["AIGW_CUSTOM_MODELS__ENABLED"], "true");
        assert_eq!(spec.ports.len(), 1);
        assert_eq!(spec.binds, vec!["/srv/gitlab-agw:/var/log/gitlab-aigw"]);
        assert!(spec
            .masked_env()
            .contains(&"AIGW_AUTH__SECRET_TOKEN=****".to_string()));
    }

    #[test]
    fn the_agent_platform_port_from_18_4() {
        let ports = |v: &str| {
            gateway_spec(&settings(v), "i", 5052, Path::new("/l"))
                .ports
                .iter()
                .map(|p| p.container_port)
                .collect::<Vec<_>>()
        };
        assert_eq!(ports("18.3.0"), vec![5052]);
        assert_eq!(ports("18.4.0"), vec![5052, 50052]);
    }

    #[test]
    fn loopback_gateway_hosts_are_refused_unless_allowed() {
        for host in ["localhost", "127.0.0.1", "::1", "0.0.0.0"] {
            assert!(check_gateway_host(host, false).is_err(), "{host}");
            assert!(check_gateway_host(host, true).is_ok(), "{host}");
        }
        assert!(check_gateway_host("aigw.example.com", false).is_ok());
    }

    #[test]
    fn external_url_is_read_from_gitlab_rb() {
        let dir = tempfile::tempdir().unwrap();
        let rb = dir.path().join("gitlab.rb");
        std::fs::write(
            &rb,
            "# external_url 'x'\nexternal_url 'https://gitlab.example.com'\n",
        )
        .unwrap();
        assert_eq!(
            external_url_of(&rb).as_deref(),
            Some("https://gitlab.example.com")
        );
    }

    #[test]
    fn the_unit_runs_serve_with_its_config() {
        let unit = render_unit(&ServeUnit {
            written_by: "Written by a test.",
            exe: Path::new("/usr/local/bin/duo-selfhost"),
            config: Path::new("/etc/duo-selfhost/serve.toml"),
            models: "smollm2-135m",
            hf_home: Some(Path::new("/var/cache/hf")),
        })
        .unwrap();
        assert!(
            unit.contains(
                "ExecStart=/usr/local/bin/duo-selfhost serve --config /etc/duo-selfhost/serve.toml"
            ),
            "{unit}"
        );
        assert!(unit.contains("Environment=HF_HOME=/var/cache/hf"));
        assert!(unit.contains("WantedBy=multi-user.target"));
    }

    #[test]
    fn the_serve_config_holds_the_model_and_its_served_name() {
        let text = embedded_serve_config("smollm2-135m", "smollm2").unwrap();
        let file = serve_config::parse(&text).unwrap();
        assert_eq!(file.host.as_deref(), Some("0.0.0.0"));
        assert_eq!(file.port, Some(EMBEDDED_PORT));
        assert_eq!(file.models.len(), 1);
        assert_eq!(file.models[0].model, "smollm2-135m");
        assert_eq!(file.models[0].served_model_name.as_deref(), Some("smollm2"));
    }

    #[test]
    fn served_names_follow_the_flag_then_the_catalog() {
        let mut s = settings("17.5.0");
        assert_eq!(
            served_name(&s, "mistralai/Codestral-22B-v0.1"),
            "codestral-22b-v0.1"
        );
        s.vllm_model = Some(vllm::resolve_model("codestral").unwrap());
        assert_eq!(served_name(&s, "codestral"), "codestral-22b");
        s.served_model_name = Some("codestral".into());
        assert_eq!(served_name(&s, "codestral"), "codestral");
    }
}
