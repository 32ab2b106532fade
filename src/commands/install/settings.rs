//! What install asks for before it plans anything: the settings from the flags, gitlab.rb,
//! GitLab's API, this host and the prompts, each checked (a real GitLab URL, a gateway host
//! GitLab can reach). Nothing is changed here; the model questions themselves are `wizard`'s.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::wizard;
use crate::cli::{GitlabConnectionArgs, InstallArgs, ModelRuntime};
use crate::commands::gitlab_version::{self, Sources, VersionSource, Voice};
use crate::env_var;
use crate::error::Problem;
use crate::gitlab_api::GitlabClient;
use crate::image_tag;
use crate::output::Printer;
use crate::secret::Secret;
use crate::vllm::{self, VllmModel};

/// A GitLab API client when a URL is known (the token, if any, makes admin calls possible).
pub fn gitlab_client(
    gitlab: &GitlabConnectionArgs,
    url: Option<&str>,
) -> anyhow::Result<Option<GitlabClient>> {
    url.map(|url| gitlab_version::client(gitlab, url, Duration::from_secs(15)))
        .transpose()
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

pub(super) fn host_for_url(host: &str) -> String {
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
                .filter(|url| crate::gitlab_api::gitlab_url(url).is_ok());
            match (ask(printer, "GitLab URL", from_rb.as_deref())?, from_rb) {
                (Some(answer), _) => answer,
                (None, Some(url)) => url,
                (None, None) => return Err(missing("GitLab's URL", "--gitlab-url URL")),
            }
        }
    };
    let gitlab_url = crate::gitlab_api::gitlab_url(&gitlab_url)?;
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
        model_api_key: args.model_key.model_api_key.clone(),
    })
}

/// `external_url` of gitlab.rb, when the file is there and sets it.
fn external_url_of(gitlab_rb: &Path) -> Option<String> {
    let text = std::fs::read_to_string(gitlab_rb).ok()?;
    crate::gitlab_rb::external_url(&text)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
