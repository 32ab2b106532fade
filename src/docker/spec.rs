//! What a container is, as duo-selfhost decides it: [`ContainerSpec`] (image, env, ports,
//! volumes, health probe, GPUs) turned into the engine's create request, the settings hash that
//! tells a rerun whether anything changed, and the request that copies an existing container
//! onto a new image. Pure: nothing here talks to the engine.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, DeviceRequest, HealthConfig, HostConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use serde::Serialize;
use sha2::Digest;

use super::{LABEL_ENV_KEYS, LABEL_SETTINGS_HASH};
use crate::secret;

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
}
