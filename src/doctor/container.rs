//! `docker.*` and `gateway.container.*`: the gateway container on this host's Docker Engine:
//! state, health, restarts, its env as the self-hosted docs require it, published ports, and
//! whether it reaches GitLab from inside (through the Docker exec API).

use std::collections::HashMap;
use std::sync::Arc;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use futures_util::StreamExt;

use super::{http, Budget, CheckFuture, ContainerFacts, Context, Outcome};
use crate::error::Problem;

const NO_CONTAINER: &str = "no gateway container named: pass --container NAME";

pub fn engine(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        if ctx.inputs.container.is_none() {
            return Outcome::skip(NO_CONTAINER);
        }
        match crate::docker::connect().await {
            Ok(docker) => {
                let version = docker
                    .version()
                    .await
                    .ok()
                    .and_then(|v| v.version)
                    .unwrap_or_else(|| "of unknown version".into());
                ctx.update_facts(|f| f.docker = Some(docker));
                Outcome::ok(format!("the Docker Engine {version} answers"))
            }
            Err(err) => {
                let problem = err.chain().find_map(|c| c.downcast_ref::<Problem>());
                let hint = problem.and_then(|p| p.hint.clone()).unwrap_or_else(|| {
                    "start the Docker Engine: sudo systemctl start docker".into()
                });
                Outcome::fail(err.to_string(), hint)
            }
        }
    })
}

pub fn exists(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let (Some(name), Some(docker)) = (ctx.inputs.container.clone(), ctx.facts().docker) else {
            return Outcome::skip(NO_CONTAINER);
        };
        match docker.inspect_container(&name, None).await {
            Ok(inspect) => {
                let facts = container_facts(&name, &inspect);
                let image = facts.image.clone();
                ctx.update_facts(|f| f.container = Some(facts));
                Outcome::ok(format!("container {name} exists (image {image})"))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Outcome::fail(
                format!("there is no container named {name}"),
                "create the gateway: duo-selfhost install (docker ps -a lists the containers; pass the right one with --container)",
            ),
            Err(e) => Outcome::fail(
                format!("the Docker Engine could not describe {name}: {e}"),
                format!("docker inspect {name}"),
            ),
        }
    })
}

fn container_facts(name: &str, inspect: &ContainerInspectResponse) -> ContainerFacts {
    let config = inspect.config.clone().unwrap_or_default();
    let env: HashMap<String, String> = config
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (pair, String::new()),
        })
        .collect();
    let state = inspect.state.clone().unwrap_or_default();
    let host = inspect.host_config.clone().unwrap_or_default();
    let mut published_ports: Vec<String> = host
        .port_bindings
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, bindings)| bindings.as_ref().is_some_and(|b| !b.is_empty()))
        .map(|(port, _)| port)
        .collect();
    published_ports.sort();
    ContainerFacts {
        name: name.to_string(),
        image: config.image.unwrap_or_default(),
        env,
        running: state.running.unwrap_or(false),
        status: state
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into()),
        exit_code: state.exit_code.unwrap_or(0),
        health: state
            .health
            .and_then(|h| h.status)
            .filter(|s| !matches!(s, HealthStatusEnum::EMPTY | HealthStatusEnum::NONE))
            .map(|s| s.to_string()),
        restart_count: inspect.restart_count.unwrap_or(0),
        network_mode: host.network_mode.unwrap_or_default(),
        published_ports,
    }
}

pub(super) fn container(ctx: &Context) -> Option<ContainerFacts> {
    ctx.facts().container
}

/// The container and GitLab's version, for the checks that compare the two.
fn container_and_version(ctx: &Context) -> Result<(ContainerFacts, semver::Version), Outcome> {
    let c = container(ctx).ok_or_else(|| Outcome::skip(NO_CONTAINER))?;
    let version = ctx.gitlab_version().ok_or_else(|| {
        Outcome::skip("GitLab's version is unknown: pass --gitlab-token so doctor can read it")
    })?;
    Ok((c, version))
}

/// The container and GitLab's URL, for the checks that compare its environment to GitLab.
fn container_and_gitlab_url(ctx: &Context) -> Result<(ContainerFacts, String), Outcome> {
    let c = container(ctx).ok_or_else(|| Outcome::skip(NO_CONTAINER))?;
    let gitlab = ctx
        .inputs
        .gitlab_url
        .clone()
        .ok_or_else(|| Outcome::skip("no GitLab URL to compare: pass --gitlab-url URL"))?;
    Ok((c, gitlab))
}

pub fn running(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(c) = container(&ctx) else {
            return Outcome::skip(NO_CONTAINER);
        };
        let logs = format!("docker logs --tail 50 {}", c.name);
        if !c.running {
            return Outcome::fail(
                format!(
                    "container {} is {} (exit code {})",
                    c.name, c.status, c.exit_code
                ),
                format!("docker start {}; if it stops again: {logs}", c.name),
            );
        }
        match c.health.as_deref() {
            Some("unhealthy") => {
                return Outcome::fail(
                    format!("container {} runs but Docker reports it unhealthy", c.name),
                    format!("{logs}; then docker restart {}", c.name),
                )
            }
            Some("starting") => {
                return Outcome::warn(
                    format!(
                        "container {} is still starting (health check pending)",
                        c.name
                    ),
                    format!("wait a minute and run doctor again; if it stays so: {logs}"),
                )
            }
            _ => {}
        }
        let health = c.health.as_deref().unwrap_or("no health check");
        if c.restart_count > 0 {
            Outcome::warn(
                format!(
                    "container {} runs ({health}) but has restarted {} times",
                    c.name, c.restart_count
                ),
                format!("find why it crashed: {logs}"),
            )
        } else {
            Outcome::ok(format!("container {} runs ({health}), no restarts", c.name))
        }
    })
}

/// The env value the self-hosted docs require, compared without trailing slashes.
fn same_url(a: &str, b: &str) -> bool {
    a.trim()
        .trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim().trim_end_matches('/'))
}

/// Whether the container's `var` names `expected` (`same_url`), with the failure for each way
/// it does not.
fn env_url_check(
    c: &ContainerFacts,
    var: &str,
    expected: &str,
    mismatch: impl FnOnce(&str) -> String,
    unset: &str,
    fix: String,
) -> Outcome {
    match c.env.get(var) {
        Some(v) if same_url(v, expected) => Outcome::ok(format!("{var}={v}")),
        Some(v) => Outcome::fail(mismatch(v), fix),
        None => Outcome::fail(unset.to_string(), fix),
    }
}

fn recreate_hint(ctx: &Context, name: &str, setting: &str) -> String {
    let gitlab = ctx.inputs.gitlab_url.as_deref().unwrap_or("<GitLab URL>");
    format!("recreate the gateway container with {setting}: duo-selfhost install --gitlab-url {gitlab} (sets the documented env), or docker rm -f {name} and docker run it again so")
}

pub fn custom_models(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(c) = container(&ctx) else {
            return Outcome::skip(NO_CONTAINER);
        };
        match c.env.get("AIGW_CUSTOM_MODELS__ENABLED") {
            Some(v) if v.eq_ignore_ascii_case("true") => {
                Outcome::ok("AIGW_CUSTOM_MODELS__ENABLED=true")
            }
            other => Outcome::fail(
                format!(
                    "AIGW_CUSTOM_MODELS__ENABLED is {}: the gateway rejects self-hosted model endpoints",
                    other.map(|v| format!("`{v}`")).unwrap_or_else(|| "not set".into())
                ),
                recreate_hint(&ctx, &c.name, "-e AIGW_CUSTOM_MODELS__ENABLED=true (the self-hosted image sets it; check the image is model-gateway:self-hosted-*)"),
            ),
        }
    })
}

pub fn gitlab_url(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let (c, gitlab) = match container_and_gitlab_url(&ctx) {
            Ok(found) => found,
            Err(skip) => return skip,
        };
        let fix = recreate_hint(
            &ctx,
            &c.name,
            &format!("-e AIGW_GITLAB_URL={gitlab} -e AIGW_GITLAB_API_URL={gitlab}/api/v4/"),
        );
        let mismatch = |v: &str| {
            format!("AIGW_GITLAB_URL is {v} but GitLab is {gitlab}: the gateway fetches signing keys from the wrong place and rejects GitLab's requests (JWT errors)")
        };
        env_url_check(
            &c,
            "AIGW_GITLAB_URL",
            &gitlab,
            mismatch,
            "AIGW_GITLAB_URL is not set: the gateway validates tokens against https://gitlab.com",
            fix,
        )
    })
}

pub fn gitlab_api_url(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let (c, gitlab) = match container_and_gitlab_url(&ctx) {
            Ok(found) => found,
            Err(skip) => return skip,
        };
        let expected = format!("{gitlab}/api/v4/");
        let fix = recreate_hint(&ctx, &c.name, &format!("-e AIGW_GITLAB_API_URL={expected}"));
        env_url_check(
            &c,
            "AIGW_GITLAB_API_URL",
            &expected,
            |v| format!("AIGW_GITLAB_API_URL is {v}, expected {expected}"),
            "AIGW_GITLAB_API_URL is not set: the gateway calls https://gitlab.com/api/v4/",
            fix,
        )
    })
}

pub fn auth_bypass(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(c) = container(&ctx) else {
            return Outcome::skip(NO_CONTAINER);
        };
        let on: Vec<&str> = [
            "AIGW_AUTH__BYPASS_EXTERNAL",
            "AIGW_AUTH__BYPASS_JWT_SIGNATURE",
        ]
        .into_iter()
        .filter(|k| {
            c.env
                .get(*k)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        })
        .collect();
        if on.is_empty() {
            Outcome::ok("authentication is on (no AIGW_AUTH__BYPASS_* set to true)")
        } else {
            Outcome::fail(
                format!(
                    "{}=true: the gateway skips authentication, so anyone who reaches it can use the model (a setting for the troubleshoot script only)",
                    on.join("=true, ")
                ),
                recreate_hint(&ctx, &c.name, &format!("no {}", on.join(" and no "))),
            )
        }
    })
}

pub fn ports(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(c) = container(&ctx) else {
            return Outcome::skip(NO_CONTAINER);
        };
        if c.network_mode == "host" {
            return Outcome::ok("host network: the gateway listens on the host's ports directly");
        }
        if !c.published_ports.iter().any(|p| p == "5052/tcp") {
            return Outcome::fail(
                format!(
                    "port 5052 of {} is not published (published: {})",
                    c.name,
                    if c.published_ports.is_empty() {
                        "none".to_string()
                    } else {
                        c.published_ports.join(", ")
                    }
                ),
                recreate_hint(&ctx, &c.name, "-p 5052:5052"),
            );
        }
        let wants_agent_platform = ctx
            .gitlab_version()
            .is_some_and(|v| (v.major, v.minor) >= (18, 4));
        if wants_agent_platform && !c.published_ports.iter().any(|p| p == "50052/tcp") {
            return Outcome::warn(
                "5052 is published but 50052 (the Agent Platform, GitLab 18.4 and later) is not",
                recreate_hint(&ctx, &c.name, "-p 50052:50052"),
            );
        }
        Outcome::ok(format!("published: {}", c.published_ports.join(", ")))
    })
}

/// Fetches `<AIGW_GITLAB_URL>/api/v4/projects` from inside the container with whatever
/// client it has (the gateway image has python3; small images have wget, whose -T crashes in
/// busybox-static builds, so the check's own deadline bounds it instead).
const REACH_SCRIPT: &str = r#"u="${1%/}/api/v4/projects"; t="$2"
if command -v curl >/dev/null 2>&1; then
  code=$(curl -sS -o /dev/null -m "$t" -w '%{http_code}' "$u"); echo "HTTP $code"; [ "$code" = 200 ]
elif command -v wget >/dev/null 2>&1; then
  wget -q -O /dev/null "$u"
elif command -v python3 >/dev/null 2>&1; then
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))' "$u" "$t"
else
  echo "the container has no curl, wget or python3" >&2; exit 127
fi"#;

pub fn reaches_gitlab(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let (Some(c), Some(docker)) = (container(&ctx), ctx.facts().docker) else {
            return Outcome::skip(NO_CONTAINER);
        };
        let Some(gitlab) = c
            .env
            .get("AIGW_GITLAB_URL")
            .cloned()
            .filter(|v| !v.is_empty())
        else {
            return Outcome::skip(
                "AIGW_GITLAB_URL is not set in the container (see gateway.container.gitlab_url)",
            );
        };
        let seconds = budget.request_timeout().as_secs().clamp(1, 30).to_string();
        let target = format!("{}/api/v4/projects", gitlab.trim_end_matches('/'));
        match exec(
            &docker,
            &c.name,
            &["sh", "-c", REACH_SCRIPT, "sh", &gitlab, &seconds],
        )
        .await
        {
            Ok((0, _)) => Outcome::ok(format!("{} fetched {target} from inside", c.name)),
            Ok((code, output)) => {
                let loopback = crate::net::is_loopback_host(&http::host_of(&gitlab))
                    && c.network_mode != "host";
                let hint = if loopback {
                    format!("inside the container {} is the container itself: use GitLab's network address in AIGW_GITLAB_URL, or run the gateway with --network host", http::host_of(&gitlab))
                } else {
                    format!("the gateway needs GitLab for its signing keys (else \"No keys founds in JWKS\"): check DNS, firewall and proxy (NO_PROXY) from the container: docker exec {} curl -sS {target}", c.name)
                };
                let said = if output.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", http::excerpt(&output, &ctx.inputs.secrets()))
                };
                Outcome::fail(
                    format!("{} cannot fetch {target} (exit {code}{said})", c.name),
                    hint,
                )
            }
            Err(e) => Outcome::fail(
                format!("could not run a command in {}: {e}", c.name),
                format!("docker exec {} sh -c true", c.name),
            ),
        }
    })
}

/// Runs `cmd` in the container; its exit code and combined output.
pub(super) async fn exec(
    docker: &bollard::Docker,
    container: &str,
    cmd: &[&str],
) -> Result<(i64, String), bollard::errors::Error> {
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            },
        )
        .await?;
    let mut output = String::new();
    if let StartExecResults::Attached {
        output: mut stream, ..
    } = docker.start_exec(&created.id, None).await?
    {
        while let Some(chunk) = stream.next().await {
            output.push_str(&chunk?.to_string());
            if output.len() > 4096 {
                break;
            }
        }
    }
    let inspect = docker.inspect_exec(&created.id).await?;
    Ok((inspect.exit_code.unwrap_or(-1), output))
}

pub fn image_tag(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let (c, version) = match container_and_version(&ctx) {
            Ok(found) => found,
            Err(skip) => return skip,
        };
        let tag = crate::image_tag::image_reference_tag(&c.image).unwrap_or("latest");
        let wanted = format!("self-hosted-v{}.{}.*-ee", version.major, version.minor);
        if crate::image_tag::tag_matches_minor(tag, &version) {
            return Outcome::ok(format!("{tag} matches GitLab {version}"));
        }
        let what = match crate::image_tag::parse_gateway_tag(tag) {
            Some(v) => format!("is for GitLab {}.{}", v.major, v.minor),
            None => {
                "is not a self-hosted release (latest and nightly are not compatible-tested)".into()
            }
        };
        Outcome::fail(
            format!("the gateway image tag {tag} {what}, but GitLab is {version}: it needs {wanted}"),
            format!("duo-selfhost upgrade (moves the gateway to the highest {wanted} and keeps its env); duo-selfhost image-tag {version} shows the image"),
        )
    })
}

/// The model endpoint as the gateway container sees it: `localhost` inside a container is the
/// container itself, unless it shares the host's network.
pub fn model_reachable(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(c) = container(&ctx) else {
            return Outcome::skip(NO_CONTAINER);
        };
        let Some(endpoint) = ctx.inputs.model_endpoint.clone() else {
            return Outcome::skip("no model endpoint: pass --model-endpoint URL");
        };
        let host = http::host_of(&endpoint);
        if !crate::net::is_loopback_host(&host) {
            return Outcome::ok(format!(
                "the model's host {host} is not this container's own loopback"
            ));
        }
        if c.network_mode == "host" {
            return Outcome::ok(format!(
                "{} shares the host's network, so {host} is the host",
                c.name
            ));
        }
        Outcome::fail(
            format!(
                "the model endpoint {endpoint} is {host}, which inside {} is the container itself: the gateway cannot reach the model",
                c.name
            ),
            "use the model host's network address in the endpoint, or run the gateway with --network host (and AIGW_FASTAPI__METRICS_PORT=8083 if 8082 is taken)",
        )
    })
}

/// Signing keys the gateway needs on GitLab 18.x: its own self-signed JWT (Duo Chat and other
/// features) and, from 18.4, the Agent Platform's. Values are keys: only their presence is told.
pub fn jwt_keys(ctx: Arc<Context>, _budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let (c, version) = match container_and_version(&ctx) {
            Ok(found) => found,
            Err(skip) => return skip,
        };
        if version.major < 18 {
            return Outcome::skip(format!(
                "GitLab {version} does not use self-signed gateway JWT keys"
            ));
        }
        let has = |key: &str| c.env.get(key).is_some_and(|v| !v.trim().is_empty());
        let mut missing = Vec::new();
        if !has("AIGW_SELF_SIGNED_JWT__SIGNING_KEY") {
            missing.push("AIGW_SELF_SIGNED_JWT__SIGNING_KEY");
        }
        if (version.major, version.minor) >= (18, 4)
            && !has("DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY")
        {
            missing.push("DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY");
        }
        if missing.is_empty() {
            Outcome::ok(format!("{} has its JWT signing keys", c.name))
        } else {
            Outcome::warn(
                format!(
                    "{} lacks {}: Duo Chat (and on 18.4+ the Agent Platform) cannot sign its tokens",
                    c.name,
                    missing.join(" and ")
                ),
                format!(
                    "run `duo-selfhost upgrade` (it generates the keys the GitLab version needs), or by hand generate a key (openssl genrsa 2048 > jwt.key) and recreate the gateway with -e {}=\"$(cat jwt.key)\"",
                    missing.join("=\"$(cat jwt.key)\" -e ")
                ),
            )
        }
    })
}
