//! `chain.*`: the whole chain at once, as an IDE uses it. A code suggestion asked of GitLab
//! itself (GitLab -> gateway -> model and back), and the model endpoint GitLab stores called
//! from inside the gateway container's network. A failure names the first broken hop.
//! The single links have their own checks (`gitlab.*`, `gateway.*`, `model.*`).

use std::sync::Arc;

use serde_json::json;

use super::http::{self, Answer, Failure};
use super::{container, model, Budget, CheckFuture, Context, Outcome};
use crate::gitlab_api::{self, GitlabClient};

/// The file the probe completes: a Python function with the cursor in its body.
pub const PROBE_FILE_NAME: &str = "duo_selfhost_doctor_probe.py";

/// The header GitLab sets when Rails itself refuses a code suggestion (reference section 5);
/// without it, the status and body are the gateway's, relayed by Workhorse.
pub const ERROR_ORIGIN_HEADER: &str = "x-gitlab-error-origin";

/// The model endpoint the gateway is told to call, and where doctor learned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredModel {
    pub endpoint: String,
    pub identifier: Option<String>,
    /// "GitLab (self-hosted model NAME)" or "doctor's inputs".
    pub source: String,
}

/// Which hop of the chain broke, as `--json` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// Rails refused (`X-GitLab-Error-Origin: monolith`), or GitLab did not answer.
    Gitlab,
    /// GitLab could not get an answer from the gateway, or the gateway refused GitLab.
    Gateway,
    /// The gateway could not reach the model endpoint.
    GatewayToModel,
    /// The model answered with an error.
    Model,
}

impl Hop {
    fn id(self) -> &'static str {
        match self {
            Hop::Gitlab => "gitlab",
            Hop::Gateway => "gateway",
            Hop::GatewayToModel => "gateway_to_model",
            Hop::Model => "model",
        }
    }
}

fn failed_at(hop: Hop, message: String, hint: String, latency_ms: Option<u128>) -> Outcome {
    Outcome::fail(message, hint).with_details(json!({
        "hop": hop.id(),
        "latency_ms": latency_ms,
    }))
}

fn gitlab_client(ctx: &Context, budget: Budget) -> Option<GitlabClient> {
    let url = ctx.inputs.gitlab_url.as_deref()?;
    let base = gitlab_api::parse_base_url(url).ok()?;
    let http = ctx.http_client(false).ok()?;
    Some(GitlabClient::with_http(
        base,
        ctx.inputs.gitlab_token.clone(),
        http,
        budget.request_timeout(),
    ))
}

/// The endpoint GitLab stores for its self-hosted model (the one matching the identifier
/// doctor was given, else the first), read once per run; what doctor was given when GitLab
/// cannot tell (no token, an older GitLab, no model registered).
pub async fn stored_model(ctx: &Context, budget: Budget) -> Option<StoredModel> {
    if let Some(found) = ctx.facts().stored_model {
        return Some(found);
    }
    let from_gitlab = match gitlab_client(ctx, budget).filter(GitlabClient::has_token) {
        Some(client) => client.self_hosted_models().await.ok().and_then(|models| {
            let wanted = ctx.inputs.model_identifier.as_deref();
            let with_endpoint = |m: &&gitlab_api::SelfHostedModel| !m.endpoint.trim().is_empty();
            let chosen = models
                .iter()
                .filter(with_endpoint)
                .find(|m| wanted.is_some() && m.identifier.as_deref() == wanted)
                .or_else(|| models.iter().find(with_endpoint))?;
            Some(StoredModel {
                endpoint: chosen.endpoint.clone(),
                identifier: chosen.identifier.clone(),
                source: format!("GitLab's self-hosted model {}", chosen.name),
            })
        }),
        None => None,
    };
    let found = from_gitlab.or_else(|| {
        ctx.inputs
            .model_endpoint
            .clone()
            .map(|endpoint| StoredModel {
                endpoint,
                identifier: ctx.inputs.model_identifier.clone(),
                source: "doctor's inputs (GitLab's stored endpoint could not be read)".into(),
            })
    })?;
    ctx.update_facts(|f| f.stored_model = Some(found.clone()));
    Some(found)
}

/// Local images with a shell and wget or curl, for a probe beside a container that has none.
const PROBE_IMAGES: &[&str] = &["busybox", "alpine", "curlimages/curl"];

/// Fetches a URL with whatever client the container has and prints `HTTP <status>` for any
/// HTTP answer, so that a refusal (401, 404) still counts as reached. busybox wget prints the
/// status on errors and with -S; its -T crashes in static builds, so the check's deadline
/// bounds it instead.
const MODEL_REACH_SCRIPT: &str = r#"u="$1"; t="$2"
if command -v curl >/dev/null 2>&1; then
  code=$(curl -sS -o /dev/null -m "$t" -w '%{http_code}' "$u"); s=$?
  [ "$code" != 000 ] && echo "HTTP $code" && exit 0; exit $s
elif command -v wget >/dev/null 2>&1; then
  wget -S -q -O /dev/null "$u" 2>&1
elif command -v python3 >/dev/null 2>&1; then
  python3 -c 'import sys, urllib.request, urllib.error
try:
    print("HTTP", urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).status)
except urllib.error.HTTPError as e:
    print("HTTP", e.code)' "$u" "$t"
else
  echo "the container has no curl, wget or python3" >&2; exit 127
fi"#;

/// The HTTP status in a client's output (`HTTP 200`, `HTTP/1.1 404 Not Found`).
pub fn http_status_in(output: &str) -> Option<u16> {
    let mut rest = output;
    while let Some(at) = rest.find("HTTP") {
        let after = &rest[at + 4..];
        let after = after
            .strip_prefix('/')
            .map(|v| v.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.'))
            .unwrap_or(after);
        let digits: String = after.trim_start().chars().take(3).collect();
        if digits.len() == 3 && digits.chars().all(|c| c.is_ascii_digit()) {
            return digits.parse().ok();
        }
        rest = &rest[at + 4..];
    }
    None
}

pub fn gateway_to_model(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let (Some(c), Some(docker)) = (container::container(&ctx), ctx.facts().docker) else {
            return Outcome::skip("no gateway container on this host: pass --container NAME");
        };
        let Some(stored) = stored_model(&ctx, budget).await else {
            return Outcome::skip(
                "no model endpoint: GitLab lists no self-hosted model and none was given (--model-endpoint URL)",
            );
        };
        let url = model::models_url(&stored.endpoint);
        let seconds = budget.request_timeout().as_secs().clamp(1, 30).to_string();
        let cmd = ["sh", "-c", MODEL_REACH_SCRIPT, "sh", &url, &seconds];
        // The container's own client first; a container without one (or without a shell)
        // gets a throwaway container from a local image in its network namespace instead.
        let probe = async {
            let (code, output) = container::exec(&docker, &c.name, &cmd).await?;
            if code != 126 && code != 127 {
                return anyhow::Ok((code, output, None));
            }
            let Some(image) = crate::docker::local_image_of(&docker, PROBE_IMAGES).await else {
                return Ok((code, output, None));
            };
            let network = format!("container:{}", c.name);
            // Stopped and removed a little before the check's own deadline.
            let limit = budget
                .request_timeout()
                .saturating_sub(std::time::Duration::from_secs(1));
            let (code, output) =
                crate::docker::run_once(&docker, &image, &cmd, &network, limit).await?;
            Ok((code, output, Some(image)))
        };
        let details = |status: Option<u16>| {
            json!({
                "endpoint": stored.endpoint,
                "endpoint_source": stored.source,
                "http_status": status,
            })
        };
        let (code, output, via) = match tokio::time::timeout(budget.request_timeout(), probe).await
        {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                return Outcome::fail(
                    format!("could not run a command in {}'s network: {e:#}", c.name),
                    format!("docker exec {} sh -c true", c.name),
                )
            }
            Err(_) => {
                ctx.update_facts(|f| f.gateway_reaches_model = Some(false));
                return Outcome::fail(
                    format!(
                        "from inside {}, {url} did not answer within {}",
                        c.name,
                        super::seconds_text(budget.request_timeout())
                    ),
                    "a firewall or a wrong address drops the gateway's packets: check the endpoint in Admin > GitLab Duo > Self-hosted models, and the route from the gateway's host to the model",
                )
                .with_details(details(None));
            }
        };
        let inside = match &via {
            Some(image) => format!("from {}'s network (a throwaway {image} container)", c.name),
            None => format!("from inside {}", c.name),
        };
        let status = http_status_in(&output).or((code == 0).then_some(200));
        if let Some(status) = status {
            ctx.update_facts(|f| f.gateway_reaches_model = Some(true));
            return Outcome::ok(format!(
                "{url} answered {inside} (HTTP {status}); the endpoint is {}",
                stored.source
            ))
            .with_details(details(Some(status)));
        }
        if via.is_none() && (code == 126 || code == 127) {
            return Outcome::skip(format!(
                "{} has no shell with curl, wget or python3, and no {} image is on this host to call the model from beside it (docker pull busybox would give one)",
                c.name,
                PROBE_IMAGES.join(", ")
            ));
        }
        ctx.update_facts(|f| f.gateway_reaches_model = Some(false));
        let host = http::host_of(&stored.endpoint);
        let hint = if crate::net::is_loopback_host(&host) && c.network_mode != "host" {
            format!("inside {} {host} is the container itself: set the endpoint in Admin > GitLab Duo > Self-hosted models to the model host's network address, or run the gateway with --network host", c.name)
        } else {
            format!("the gateway cannot reach the model server: check that it runs, the endpoint's host and port in Admin > GitLab Duo > Self-hosted models, DNS and firewalls between the two (try: docker exec {} wget -S -O /dev/null {url})", c.name)
        };
        Outcome::fail(
            format!(
                "{inside}, {url} cannot be reached (exit {code}: {}); the endpoint is {}",
                http::excerpt(&output, &ctx.inputs.secrets()),
                stored.source
            ),
            hint,
        )
        .with_details(details(None))
    })
}

/// The body an IDE sends: the file around the cursor, no streaming.
fn completion_request() -> serde_json::Value {
    json!({
        "current_file": {
            "file_name": PROBE_FILE_NAME,
            "content_above_cursor": model::FIM_PREFIX,
            "content_below_cursor": model::FIM_SUFFIX,
        },
        "intent": "completion",
        "stream": false,
    })
}

/// The suggestion's text and the model that answered, from GitLab's answer (`choices[].text`,
/// `model { engine name }`).
fn suggestion_of(answer: &Answer) -> Option<(String, String)> {
    let doc = answer.json()?;
    let text = doc.pointer("/choices/0/text")?.as_str()?.to_string();
    let model = match doc.get("model") {
        Some(serde_json::Value::String(name)) => name.clone(),
        Some(m) => {
            let name = m.get("name").and_then(|v| v.as_str()).unwrap_or("");
            match m.get("engine").and_then(|v| v.as_str()) {
                Some(engine) if !name.is_empty() => format!("{name} ({engine})"),
                _ => name.to_string(),
            }
        }
        None => String::new(),
    };
    Some((
        text,
        if model.is_empty() {
            "an unnamed model".into()
        } else {
            model
        },
    ))
}

pub fn code_completion(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(gitlab) = ctx.inputs.gitlab_url.clone() else {
            return Outcome::skip("no GitLab URL: pass --gitlab-url URL");
        };
        let Some(token) = ctx.inputs.gitlab_token.clone() else {
            return Outcome::skip(
                "no GitLab token to ask for a code suggestion with: pass --gitlab-token (a user with a GitLab Duo seat)",
            );
        };
        let client = match ctx.http_client(false) {
            Ok(client) => client,
            Err(outcome) => return outcome,
        };
        let url = format!("{gitlab}/api/v4/code_suggestions/completions");
        let request = client
            .post(&url)
            .bearer_auth(token.expose())
            .json(&completion_request());
        let answer = match http::send(request, budget.request_timeout()).await {
            Ok(answer) => answer,
            Err(failure) => {
                let hint = match failure {
                    Failure::Timeout(_) | Failure::SlowBody { .. } => "GitLab waits for the gateway, which waits for the model: run doctor with a longer --timeout; if it stays slow, the model is too slow for this host (GitLab gives up after 60 s)",
                    _ => "check the GitLab URL and that GitLab runs: sudo gitlab-ctl status",
                };
                return failed_at(
                    Hop::Gitlab,
                    format!("POST {url} {}", failure.describe()),
                    hint.into(),
                    None,
                );
            }
        };
        let ms = answer.millis();
        let secrets = ctx.inputs.secrets();
        if (200..300).contains(&answer.status) {
            return match suggestion_of(&answer) {
                Some((text, model)) if !text.trim().is_empty() => Outcome::ok(format!(
                    "GitLab answered a code suggestion in {ms} ms: {} characters from {model}",
                    text.chars().count()
                ))
                .with_details(json!({
                    "hop": null,
                    "latency_ms": ms,
                    "answer_chars": text.chars().count(),
                    "model": model,
                })),
                Some((_, model)) => Outcome::warn(
                    format!("GitLab answered in {ms} ms, but {model} suggested nothing for a function body"),
                    "the chain works but the model completes nothing: use a model approved for code completion (duo-selfhost models list)",
                )
                .with_details(json!({"hop": null, "latency_ms": ms, "answer_chars": 0, "model": model})),
                None => failed_at(
                    Hop::Gateway,
                    format!(
                        "GitLab answered {} with something that is not a code suggestion: {}",
                        answer.status,
                        answer.excerpt(&secrets)
                    ),
                    "the gateway's answer has no choices[].text: check that GitLab's gateway URL is the AI Gateway's".into(),
                    Some(ms),
                ),
            };
        }
        if answer
            .header(ERROR_ORIGIN_HEADER)
            .is_some_and(|o| o.eq_ignore_ascii_case("monolith"))
        {
            let (message, hint) = gitlab_refusal(&ctx, &answer);
            return failed_at(Hop::Gitlab, message, hint, Some(ms));
        }
        beyond_gitlab(&ctx, &answer, budget).await
    })
}

/// What Rails' own refusal means, and its fix.
fn gitlab_refusal(ctx: &Context, answer: &Answer) -> (String, String) {
    let said = answer.excerpt(&ctx.inputs.secrets());
    let says = |what: &str| String::from_utf8_lossy(&answer.body).contains(what);
    let setting = match ctx.gitlab_version() {
        Some(v) if v < crate::gitlab_config::setting_version() => {
            "AI_GATEWAY_URL in gitlab.rb (duo-selfhost gitlab-rb set AI_GATEWAY_URL=<gateway URL> --reconfigure)"
        }
        _ => "Admin > GitLab Duo > Change configuration > Local AI Gateway URL",
    };
    let head = format!(
        "GitLab itself refused the code suggestion ({})",
        answer.status
    );
    match answer.status {
        401 => (
            format!("{head}: the token is not accepted for code suggestions: {said}"),
            "use a personal access token with the api or ai_features scope, of a user with a GitLab Duo seat (--gitlab-token)".into(),
        ),
        422 if says("missing_default_duo_group") => (
            format!("{head}: the user has no default GitLab Duo namespace (missing_default_duo_group)"),
            "as that user, choose a default GitLab Duo namespace (User settings > Preferences > Default GitLab Duo namespace), or give the user a Duo seat in one group".into(),
        ),
        403 => (
            format!("{head}: the user may not use Code Suggestions: {said}"),
            "assign the user a GitLab Duo seat (Admin > GitLab Duo > Seat utilization) and set Code Completion to the self-hosted model (Admin > GitLab Duo > Self-hosted models > AI-native features)".into(),
        ),
        404 => (
            format!("{head}: code suggestions are not available here (no AI Gateway configured, or the feature is not switched to the self-hosted model): {said}"),
            format!("set the gateway URL ({setting}) and set Code Completion to the self-hosted model (Admin > GitLab Duo > Self-hosted models > AI-native features)"),
        ),
        413 => (
            format!("{head}: the request is too large: {said}"),
            "this is doctor's small probe file; a proxy in front of GitLab may limit request bodies".into(),
        ),
        _ => (
            format!("{head}: {said}"),
            "sudo gitlab-rake \"gitlab:duo:verify_self_hosted_setup[<user>]\" on the GitLab host names what Rails lacks".into(),
        ),
    }
}

/// The answer came from the gateway (no monolith header): tell which hop after GitLab broke,
/// from what the gateway container could reach and from the model's own answer.
async fn beyond_gitlab(ctx: &Context, answer: &Answer, budget: Budget) -> Outcome {
    let ms = answer.millis();
    let said = answer.excerpt(&ctx.inputs.secrets());
    let relayed = format!("GitLab relayed the gateway's {}: {said}", answer.status);
    let logs = match &ctx.inputs.container {
        Some(name) => format!("docker logs --tail 100 {name}"),
        None => "the gateway's logs (docker logs --tail 100 <container>)".into(),
    };
    match answer.status {
        401 | 403 => {
            return failed_at(
                Hop::Gateway,
                format!("the gateway refused GitLab's request ({relayed})"),
                "the gateway cannot check GitLab's token: AIGW_GITLAB_URL and AIGW_GITLAB_API_URL must be GitLab's and reachable from the container (see gateway.container.gitlab_url and gateway.reaches_gitlab)".into(),
                Some(ms),
            )
        }
        502..=504 => {
            return failed_at(
                Hop::Gateway,
                format!("GitLab got no answer from the gateway ({relayed})"),
                "check that the gateway runs and that GitLab's gateway URL reaches it (see gateway.healthz and gitlab.gateway_setting)".into(),
                Some(ms),
            )
        }
        _ => {}
    }
    let stored = stored_model(ctx, budget).await;
    if ctx.facts().gateway_reaches_model == Some(false) {
        let endpoint = stored
            .as_ref()
            .map(|s| s.endpoint.clone())
            .unwrap_or_else(|| "the model endpoint".into());
        return failed_at(
            Hop::GatewayToModel,
            format!("the gateway cannot reach the model at {endpoint} ({relayed})"),
            "see chain.gateway_to_model: set an endpoint the gateway container can reach in Admin > GitLab Duo > Self-hosted models".into(),
            Some(ms),
        );
    }
    // Ask the model the gateway's own question from here: its error is the model's.
    let Some(stored) = stored else {
        return failed_at(
            Hop::Gateway,
            format!("the gateway failed ({relayed}); doctor knows no model endpoint to tell the gateway from the model"),
            format!("read {logs}; pass --model-endpoint so doctor can ask the model itself"),
            Some(ms),
        );
    };
    let model_name = stored
        .identifier
        .as_deref()
        .map(|id| model::parse_identifier(id).model)
        .unwrap_or_else(|| "codestral".into());
    let mut body = model::codestral_fim_body(&model_name, model::FIM_PREFIX, model::FIM_SUFFIX);
    body["max_tokens"] = model::FIM_PROBE_TOKENS.into();
    match model::post_chat(ctx, &stored.endpoint, &body, budget).await {
        Err(model_failure) => failed_at(
            Hop::Model,
            format!(
                "the model errs ({relayed}); asked directly, {}",
                model_failure.message
            ),
            model_failure.hint.unwrap_or_default(),
            Some(ms),
        ),
        Ok(_) => failed_at(
            Hop::Gateway,
            format!("the gateway failed ({relayed}), although the model at {} answers doctor directly", stored.endpoint),
            format!("read {logs} (grep litellm, model_endpoint); if the container cannot reach {}, see chain.gateway_to_model", stored.endpoint),
            Some(ms),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_each_clients_output() {
        assert_eq!(http_status_in("HTTP 200\n"), Some(200));
        assert_eq!(
            http_status_in("  HTTP/1.1 404 Not Found\nwget: server returned error"),
            Some(404)
        );
        assert_eq!(
            http_status_in("wget: server returned error: HTTP/1.0 500 Internal"),
            Some(500)
        );
        assert_eq!(
            http_status_in("wget: can't connect to remote host: Connection refused"),
            None
        );
        assert_eq!(http_status_in("HTTPS proxy said nothing"), None);
    }
}
