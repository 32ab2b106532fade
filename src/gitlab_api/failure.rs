//! What a failed GitLab call means, in words an administrator can act on: a transport failure
//! (DNS, refused, TLS, timeout, an oversized header block) or a non-success status, each with the
//! URL and the fix. The calls themselves are the client's.

use serde_json::Value;
use url::Url;

use super::GitlabClient;
use crate::error::Problem;
use crate::http_client::{error_chain, innermost_cause, transport_fault, TransportFault};
use crate::units::seconds_text;

/// A failed call, already explained: which URL, what went wrong, and how to fix it.
pub(super) fn problem(user_fault: bool, message: String, hint: impl Into<String>) -> anyhow::Error {
    let p = if user_fault {
        Problem::user(message)
    } else {
        Problem::tool(message)
    };
    p.hint(hint).into()
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(url: &Url, body: &str) -> anyhow::Result<T> {
    serde_json::from_str(body).map_err(|e| {
        problem(
            true,
            format!("GitLab at {url} answered something that is not the expected JSON: {e}"),
            "check that the URL points at GitLab (its external_url), not at a proxy's error page",
        )
    })
}

impl GitlabClient {
    /// Explains a transport failure: DNS, refused, TLS, timeout, an oversized header block.
    pub(super) fn transport_error(&self, url: &Url, err: reqwest::Error) -> anyhow::Error {
        let host = url.host_str().unwrap_or("?").to_string();
        let lower = error_chain(&err).to_lowercase();
        let cause = innermost_cause(&err);
        if err.is_timeout() {
            return problem(
                true,
                format!(
                    "GitLab at {url} did not answer within {}",
                    seconds_text(self.timeout)
                ),
                "check that GitLab is up (`sudo gitlab-ctl status`) and reachable from here; a proxy or firewall may be holding the connection",
            );
        }
        if err.is_dns() || lower.contains("dns error") || lower.contains("failed to lookup address")
        {
            return problem(
                true,
                format!("cannot resolve the host `{host}` of {url}"),
                "check the GitLab URL (--gitlab-url) and this host's DNS (/etc/hosts, /etc/resolv.conf)",
            );
        }
        let (message, hint) = match transport_fault(&err) {
            Some(TransportFault::HeadTooLarge) => (
                format!("GitLab at {url} answered with a header block too large to read ({cause})"),
                "check that the URL is GitLab's external URL, not another server or a misbehaving proxy in front of it".to_string(),
            ),
            Some(TransportFault::NotTls) => (
                format!("TLS with {url} failed: the server does not speak TLS on this port ({cause})"),
                "check the scheme and port of the GitLab URL: http:// or https://, as external_url in gitlab.rb says".to_string(),
            ),
            Some(TransportFault::WrongHost) => (
                format!("TLS with {url} failed: the server's certificate is for another host name ({cause})"),
                format!("use the host name GitLab's certificate was issued for (its external_url), or reissue the certificate with a subjectAltName for {host}"),
            ),
            Some(TransportFault::Expired) => (
                format!("TLS with {url} failed: the server's certificate has expired"),
                format!("renew GitLab's certificate (see it with: openssl s_client -connect {host}:{} -showcerts)", url.port_or_known_default().unwrap_or(443)),
            ),
            Some(TransportFault::Untrusted | TransportFault::Handshake) => (
                format!("TLS with {url} failed: the server's certificate is not trusted ({cause})"),
                "pass the CA that signed GitLab's certificate with --ca-cert FILE (PEM)".to_string(),
            ),
            None if lower.contains("connection refused") => (
                format!("connection to {url} was refused"),
                "check that GitLab is running and listening on that host and port (`sudo gitlab-ctl status`)".to_string(),
            ),
            None if err.is_connect() => (
                format!("cannot connect to {url}: {cause}"),
                "check the GitLab URL and that this host can reach it".to_string(),
            ),
            None => {
                return problem(
                    false,
                    format!("request to {url} failed: {cause}"),
                    "re-run with -vv for details",
                )
            }
        };
        problem(true, message, hint)
    }

    /// Explains a non-success HTTP status.
    pub(super) fn status_error(
        &self,
        url: &Url,
        status: reqwest::StatusCode,
        body: &str,
    ) -> anyhow::Error {
        let detail = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| {
                v.get("message").or_else(|| v.get("error")).map(|m| {
                    m.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| m.to_string())
                })
            })
            .unwrap_or_default();
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        match status.as_u16() {
            401 if self.token.is_none() => problem(
                true,
                format!("GitLab at {url} needs a token: 401 Unauthorized{detail}"),
                "create a personal access token with the `api` scope (an administrator's) and pass it with --gitlab-token or GITLAB_TOKEN",
            ),
            401 => problem(
                true,
                format!("GitLab at {url} rejected the token: 401 Unauthorized{detail}"),
                "the token is wrong, expired or revoked: create a new personal access token with the `api` scope and pass it with --gitlab-token or GITLAB_TOKEN",
            ),
            403 => problem(
                true,
                format!("GitLab at {url} refused the request: 403 Forbidden{detail}"),
                "use a token of an administrator, with the `api` scope",
            ),
            404 => problem(
                true,
                format!("GitLab at {url} answered 404 Not Found{detail}"),
                "check the GitLab URL (its external_url, including any relative path); this API needs a newer GitLab or is not available",
            ),
            code => problem(
                true,
                format!("GitLab at {url} answered {code}{detail}"),
                "check GitLab's health (`sudo gitlab-ctl status`, /-/readiness) and try again",
            ),
        }
    }
}
