//! What install will run, decided before anything changes: the gateway container, the vLLM
//! container when vLLM serves the model, the model's endpoint and served name, and the plan as
//! shown (text or `--json`). Nothing here touches the engine or GitLab.

use std::collections::BTreeMap;
use std::path::Path;

use super::embedded::{EMBEDDED_PORT, UNIT_NAME};
use super::finish;
use super::settings::{host_for_url, Settings};
use crate::cli::{InstallArgs, ModelRuntime};
use crate::docker::{self, ContainerSpec, Gpus, HttpProbe, PortMapping};
use crate::error::Problem;
use crate::model_cache;
use crate::output::Printer;
use crate::vllm::{self, VllmModel, VllmOptions};

/// The gateway's container port (HTTP API).
const GATEWAY_PORT: u16 = 5052;
/// The Agent Platform (Duo Workflow Service) gRPC port, published from GitLab 18.4.
pub const AGENT_PLATFORM_PORT: u16 = 50052;
/// Where the log directory is mounted inside the gateway container.
const CONTAINER_LOG_DIR: &str = "/var/log/gitlab-aigw";

/// What install will do, decided before anything changes.
pub(super) struct Plan {
    pub image: String,
    pub gateway_url: String,
    /// The gateway first, then the vLLM container when vLLM serves the model.
    pub containers: Vec<PlannedContainer>,
    /// Where GitLab reaches the model, when something serves one.
    pub model_endpoint: Option<String>,
    /// The model's name in the catalog, when it is one of the catalog's.
    pub catalog_name: Option<String>,
    /// The name the model is served under, when there is a model.
    pub served: Option<String>,
    /// What to register in GitLab, when there is an endpoint.
    pub to_register: Option<finish::ModelToRegister>,
}

/// The plan for `settings` with the gateway `image`: the containers (saying what it guessed
/// about the GPUs), the model's endpoint and what to register.
pub(super) fn plan(
    args: &InstallArgs,
    settings: &Settings,
    image: String,
    printer: &Printer,
) -> anyhow::Result<Plan> {
    let mut containers = vec![PlannedContainer {
        role: "gateway",
        name: args.container_name.clone(),
        spec: gateway_spec(settings, &image, args.gateway_port, &args.log_dir),
    }];
    let model_endpoint = match settings.model_runtime {
        ModelRuntime::None => settings.model_endpoint.clone(),
        ModelRuntime::Vllm => {
            let model = settings
                .vllm_model
                .as_ref()
                .ok_or_else(|| Problem::tool("the vLLM model was not resolved before planning"))?;
            containers.push(PlannedContainer {
                role: "vllm",
                name: vllm_container_name(args),
                spec: vllm_container(args, settings, model, printer),
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
    let catalog_name = match &settings.vllm_model {
        Some(vllm) => vllm.catalog(),
        None => settings.model.as_deref().and_then(crate::catalog::find),
    }
    .map(|m| m.name.to_string());
    let served = settings
        .model
        .as_deref()
        .map(|m| served_name(settings, m))
        .or_else(|| settings.served_model_name.clone());
    let to_register = model_endpoint
        .clone()
        .map(|endpoint| finish::ModelToRegister {
            catalog_name: catalog_name.clone(),
            endpoint,
            served_name: served.clone().unwrap_or_else(|| "MODEL".to_string()),
            api_key: settings.model_api_key.clone(),
        });
    Ok(Plan {
        gateway_url: settings.gateway_url(args.gateway_port),
        image,
        containers,
        model_endpoint,
        catalog_name,
        served,
        to_register,
    })
}

/// The vLLM container's name: the gateway's, with `-vllm`.
pub(super) fn vllm_container_name(args: &InstallArgs) -> String {
    format!("{}-vllm", args.container_name)
}

/// A container install manages, with its name and what it is for.
pub(super) struct PlannedContainer {
    pub role: &'static str,
    pub name: String,
    pub spec: ContainerSpec,
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
pub(super) fn served_name(settings: &Settings, model: &str) -> String {
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

pub(super) fn print_plan(
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

pub(super) fn print_manual_steps(steps: &[String], printer: &Printer) {
    if steps.is_empty() {
        return;
    }
    printer.info("still to do by hand:");
    for step in steps {
        printer.info(format!("  {step}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::gitlab_version::VersionSource;

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
