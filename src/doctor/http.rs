//! HTTP plumbing shared by the gateway and model checks: a client that trusts `--ca-cert`,
//! capped body reads (a hostile peer cannot fill memory), and failure descriptions a person
//! can act on.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::secret::{scrub, Secret};

/// Largest body a check reads; enough for any model list or error page.
pub const BODY_LIMIT: usize = 1 << 20;

/// A client with rustls, the system roots plus `ca_cert`, and duo-selfhost's user agent.
pub fn client(ca_cert: Option<&Path>, tls_info: bool) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!(
            "duo-selfhost/",
            env!("CARGO_PKG_VERSION"),
            " doctor"
        ))
        .tls_info(tls_info);
    if let Some(path) = ca_cert {
        builder = builder.tls_certs_merge(load_ca(path)?);
    }
    builder
        .build()
        .map_err(|e| format!("could not set up HTTP: {e}"))
}

/// A client that accepts any certificate, only to read what a failing server presents.
pub fn inspecting_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()
        .map_err(|e| format!("could not set up HTTP: {e}"))
}

fn load_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the CA certificate {}: {e}", path.display()))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|certs| !certs.is_empty())
        .ok_or_else(|| format!("{} holds no PEM certificate", path.display()))
}

/// A response read whole (up to [`BODY_LIMIT`]) with its timing.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub elapsed: Duration,
    pub peer_certificate: Option<Vec<u8>>,
}

impl Answer {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body's start on one line, secrets scrubbed, for a message.
    pub fn excerpt(&self, secrets: &[&Secret]) -> String {
        excerpt(&String::from_utf8_lossy(&self.body), secrets)
    }

    pub fn millis(&self) -> u128 {
        self.elapsed.as_millis()
    }
}

/// Sends `request`, reads the body up to the limit, all within `timeout`.
pub async fn send(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Answer, Failure> {
    let start = Instant::now();
    let work = async {
        let response = request.send().await.map_err(Failure::from_reqwest)?;
        let status = response.status().as_u16();
        let peer_certificate = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .map(<[u8]>::to_vec);
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(Failure::from_reqwest)? {
            let room = BODY_LIMIT - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= BODY_LIMIT {
                break;
            }
        }
        Ok(Answer {
            status,
            body,
            elapsed: start.elapsed(),
            peer_certificate,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Timeout(timeout)),
    }
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing listens, or the host is unreachable.
    Connect(String),
    /// The TLS handshake or certificate check failed.
    Tls(String),
    /// Connected, but no answer in time (a black hole, or a very slow server).
    Timeout(Duration),
    /// The answer was not HTTP, or the connection broke mid-way.
    Protocol(String),
}

impl Failure {
    pub fn from_reqwest(err: reqwest::Error) -> Self {
        let chain = error_chain(&err);
        let lower = chain.to_ascii_lowercase();
        if err.is_timeout() {
            Failure::Timeout(Duration::ZERO)
        } else if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
            || lower.contains("unknownissuer")
        {
            Failure::Tls(chain)
        } else if err.is_connect() {
            Failure::Connect(chain)
        } else {
            Failure::Protocol(chain)
        }
    }

    /// "refused the connection", "did not answer within 9.8 s", ...
    pub fn describe(&self) -> String {
        match self {
            Failure::Connect(cause) => format!("cannot be reached ({})", short_cause(cause)),
            Failure::Tls(cause) => format!("failed the TLS check ({})", short_cause(cause)),
            Failure::Timeout(limit) => format!(
                "accepted the request but did not answer within {}",
                super::seconds_text(*limit)
            ),
            Failure::Protocol(cause) => format!(
                "answered with something that is not HTTP ({})",
                short_cause(cause)
            ),
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// The most specific part of an error chain, which is what a person needs.
fn short_cause(chain: &str) -> String {
    let last = chain.rsplit(": ").next().unwrap_or(chain);
    excerpt(last, &[])
}

/// One line of at most 160 characters, secrets scrubbed.
pub fn excerpt(text: &str, secrets: &[&Secret]) -> String {
    let clean = scrub(text, secrets);
    let one_line: String = clean
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if one_line.chars().count() > 160 {
        let cut: String = one_line.chars().take(157).collect();
        format!("{cut}...")
    } else if one_line.is_empty() {
        "an empty body".into()
    } else {
        one_line
    }
}

/// The host of a URL, or the URL itself when it does not parse.
pub fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| url.to_string())
}

/// `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_one_short_scrubbed_line() {
        let key = Secret::new("sk-secret");
        assert_eq!(excerpt("bad\nkey sk-secret\t!", &[&key]), "bad key **** !");
        assert_eq!(excerpt(&"x".repeat(400), &[]).len(), 160);
        assert_eq!(excerpt("", &[]), "an empty body");
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "a.localhost",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["gitlab.example.com", "10.0.0.5", "0.0.0.1"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
