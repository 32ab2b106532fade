//! `gateway.*` seen from this host: `/monitoring/healthz` as GitLab's rake task calls it, and
//! the TLS certificate of an https gateway URL. The container-side checks live in `container`.

use std::sync::Arc;
use std::time::Duration;

use super::http::{self, Failure};
use super::{tls, Budget, CheckFuture, Context, Outcome};
use crate::http_client::TransportFault;

/// GitLab's rake task gives healthz 10 s.
pub const HEALTHZ_LIMIT: Duration = Duration::from_secs(10);
/// A certificate this close to its end gets a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

const NO_GATEWAY: &str =
    "no gateway URL: pass --gateway-url URL (or run duo-selfhost install, which records it)";

fn gateway_url(ctx: &Context) -> Option<String> {
    ctx.inputs
        .gateway_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_string())
}

/// How to look at the gateway's process: the container commands when it is local.
fn logs_hint(ctx: &Context) -> String {
    match &ctx.inputs.container {
        Some(name) => format!("docker logs --tail 50 {name}; then docker restart {name}"),
        None => {
            "read the AI Gateway's logs (docker logs --tail 50 <container>) and restart it".into()
        }
    }
}

pub fn healthz(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(base) = gateway_url(&ctx) else {
            return Outcome::skip(NO_GATEWAY);
        };
        let url = format!("{base}/monitoring/healthz");
        let client = match ctx.http_client(false) {
            Ok(client) => client,
            Err(outcome) => return outcome,
        };
        let request = client.get(&url).header("accept", "application/json");
        let limit = budget.request_timeout_capped(HEALTHZ_LIMIT);
        match http::send(request, limit).await {
            Ok(answer) if answer.status == 200 => {
                let status = answer
                    .json()
                    .and_then(|doc| doc.get("status")?.as_str().map(str::to_string));
                Outcome::ok(match status {
                    Some(status) => {
                        format!("{url} answered 200 ({status}) in {} ms", answer.millis())
                    }
                    None => format!("{url} answered 200 in {} ms", answer.millis()),
                })
            }
            Ok(answer) => Outcome::fail(
                format!(
                    "the gateway is unhealthy: {url} answered {}: {}",
                    answer.status,
                    answer.excerpt(&ctx.inputs.secrets())
                ),
                logs_hint(&ctx),
            ),
            Err(failure) => {
                let hint = match (&failure, &ctx.inputs.container) {
                    (Failure::Tls(fault, _), _) => tls_fix(*fault, &base),
                    (Failure::Connect(_), Some(name)) => format!(
                        "start the gateway: docker start {name} (or duo-selfhost install); if it runs, check that port {} is published and the URL is right",
                        port_of(&base)
                    ),
                    (Failure::Connect(_), None) => format!(
                        "start the AI Gateway and check the URL, DNS and firewall between GitLab and {}: curl {url}",
                        http::host_of(&base)
                    ),
                    (Failure::Timeout(_) | Failure::SlowBody { .. }, _) => format!(
                        "something at {base} takes connections but does not answer in time: check that the URL's port is the gateway's (5052) and its logs ({})",
                        logs_hint(&ctx)
                    ),
                    (Failure::TooLarge(_), _) => format!(
                        "the gateway's healthz answers with a few bytes of JSON: check that {base} is the gateway and not another server or a proxy ({})",
                        logs_hint(&ctx)
                    ),
                    (Failure::Protocol(_), _) => format!(
                        "check the scheme and port of the gateway URL: http vs https, port 5052 ({base})"
                    ),
                };
                // Down: nothing answers. Unhealthy: it answers, but not as a working gateway
                // does. Unreachable: something is there, but GitLab cannot talk to it over TLS.
                let state = match failure {
                    Failure::SlowBody { .. } | Failure::TooLarge(_) => "unhealthy",
                    Failure::Tls(..) => "unreachable",
                    _ => "down",
                };
                Outcome::fail(
                    format!("the gateway is {state}: {url} {}", failure.describe()),
                    hint,
                )
            }
        }
    })
}

/// What to do about the gateway's TLS, by what went wrong.
fn tls_fix(fault: TransportFault, base: &str) -> String {
    let host = http::host_of(base);
    match fault {
        TransportFault::NotTls => format!(
            "the server at {base} speaks plain HTTP (or something else): use http:// in the gateway URL, or the port where the gateway serves TLS"
        ),
        TransportFault::WrongHost => format!(
            "put the host name the certificate names in the gateway URL, or reissue the certificate with a subjectAltName for {host}; see gateway.tls"
        ),
        TransportFault::Expired => "renew the gateway's certificate; see gateway.tls".into(),
        _ => "GitLab must trust the gateway's certificate: copy its CA to /etc/gitlab/trusted-certs/ and run sudo gitlab-ctl reconfigure (here: --ca-cert FILE); see gateway.tls".into(),
    }
}

fn port_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .map(|p| p.to_string())
        .unwrap_or_else(|| "5052".into())
}

pub fn tls(ctx: Arc<Context>, budget: Budget) -> CheckFuture {
    Box::pin(async move {
        let Some(base) = gateway_url(&ctx) else {
            return Outcome::skip(NO_GATEWAY);
        };
        if !base.starts_with("https://") {
            return Outcome::skip(format!("{base} is not https: no certificate to check"));
        }
        let url = format!("{base}/monitoring/healthz");
        let verifying = match ctx.http_client(true) {
            Ok(client) => client,
            Err(outcome) => return outcome,
        };
        let half = Duration::from_millis(budget.request_timeout().as_millis() as u64 / 2);
        match http::send(verifying.get(&url), half).await {
            Ok(answer) => {
                let Some(summary) = answer.peer_certificate.as_deref().and_then(tls::summarize)
                else {
                    return Outcome::warn(
                        format!(
                            "{base} has a trusted certificate that duo-selfhost could not read"
                        ),
                        format!(
                            "inspect it: openssl s_client -connect {}:{} -showcerts",
                            http::host_of(&base),
                            port_of(&base)
                        ),
                    );
                };
                let days = tls::days_left(&summary, time::OffsetDateTime::now_utc());
                if days < EXPIRY_WARNING_DAYS {
                    Outcome::warn(
                        format!("{base}'s certificate is trusted but expires in {days} days"),
                        "renew the gateway's certificate before it expires",
                    )
                } else {
                    Outcome::ok(format!(
                        "{base}'s certificate is valid and trusted for {days} more days"
                    ))
                }
            }
            Err(Failure::Tls(TransportFault::NotTls, cause)) => Outcome::fail(
                format!(
                    "{base} does not speak TLS: it answered the TLS handshake with something else ({})",
                    http::excerpt(&cause, &[])
                ),
                tls_fix(TransportFault::NotTls, &base),
            ),
            Err(Failure::Tls(fault, cause)) => untrusted(&base, &url, fault, &cause, half).await,
            Err(failure) => Outcome::skip(format!(
                "{base} {}: gateway.healthz says more",
                failure.describe()
            )),
        }
    })
}

/// The certificate failed verification: read it without verifying, to say why.
async fn untrusted(
    base: &str,
    url: &str,
    fault: TransportFault,
    cause: &str,
    timeout: Duration,
) -> Outcome {
    let trust_hint = "give GitLab the CA: copy it to /etc/gitlab/trusted-certs/ and run sudo gitlab-ctl reconfigure (here: pass --ca-cert FILE); or use a certificate from a public CA";
    let presented = match http::inspecting_client() {
        Ok(client) => http::send(client.get(url), timeout)
            .await
            .ok()
            .and_then(|answer| answer.peer_certificate),
        Err(_) => None,
    };
    let summary = presented.as_deref().and_then(tls::summarize);
    let now = time::OffsetDateTime::now_utc();
    if cause.contains("CaUsedAsEndEntity") {
        return Outcome::fail(
            format!("{base} presents a CA certificate (basicConstraints CA:TRUE) as its own server certificate, which TLS clients refuse"),
            "issue a server certificate (CA:FALSE, subjectAltName with the gateway's host) signed by that CA, and give GitLab the CA in /etc/gitlab/trusted-certs/",
        );
    }
    match summary {
        _ if fault == TransportFault::WrongHost => Outcome::fail(
            format!(
                "{base}'s certificate is for another host name ({})",
                http::excerpt(cause, &[])
            ),
            tls_fix(fault, base),
        ),
        Some(s) if tls::days_left(&s, now) < 0 => Outcome::fail(
            format!(
                "{base}'s certificate expired {} days ago",
                -tls::days_left(&s, now)
            ),
            "renew the gateway's certificate",
        ),
        Some(s) if s.self_signed => Outcome::fail(
            format!(
                "{base} presents a self-signed certificate that is not trusted ({})",
                http::excerpt(cause.rsplit(": ").next().unwrap_or(cause), &[])
            ),
            trust_hint,
        ),
        _ => Outcome::fail(
            format!(
                "{base}'s certificate is not trusted ({})",
                http::excerpt(cause.rsplit(": ").next().unwrap_or(cause), &[])
            ),
            trust_hint,
        ),
    }
}
