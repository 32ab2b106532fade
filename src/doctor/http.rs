//! HTTP plumbing shared by the gateway and model checks: a client that trusts `--ca-cert`,
//! a send whose timeout covers the whole body and whose body is capped (a hostile peer can
//! neither hold a check nor fill memory), and failure descriptions a person can act on.

use std::path::Path;
use std::time::{Duration, Instant};

use super::Outcome;
use crate::http_client::{self, BodyError, TransportFault};
use crate::secret::{scrub, Secret};

/// Largest body a check reads; enough for any model list or error page.
pub const BODY_LIMIT: usize = 1 << 20;

/// A client with rustls, the system roots plus `ca_cert`, and duo-selfhost's user agent. A CA
/// file that cannot be used is the check's failure.
pub fn client(ca_cert: Option<&Path>, tls_info: bool) -> Result<reqwest::Client, Outcome> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!(
            "duo-selfhost/",
            env!("CARGO_PKG_VERSION"),
            " doctor"
        ))
        .tls_info(tls_info);
    if let Some(path) = ca_cert {
        let certs = http_client::load_ca_certificates(path).map_err(|problem| {
            Outcome::fail(
                problem.message,
                problem
                    .hint
                    .unwrap_or_else(|| "pass a readable PEM file to --ca-cert".into()),
            )
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| {
        Outcome::fail(
            format!("could not set up HTTP: {e}"),
            "re-run with -vv and report it",
        )
    })
}

/// A client that accepts any certificate, only to read what a failing server presents.
pub fn inspecting_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()
        .map_err(|e| format!("could not set up HTTP: {e}"))
}

/// A response read whole (up to [`BODY_LIMIT`]) with its timing.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub elapsed: Duration,
    pub peer_certificate: Option<Vec<u8>>,
    pub headers: reqwest::header::HeaderMap,
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

    /// A response header as text, when present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `request` and reads the whole body, all within `timeout`. A body over [`BODY_LIMIT`]
/// is a failure, not a truncated answer: a server streaming without end is not healthy.
pub async fn send(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Answer, Failure> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut response = match tokio::time::timeout_at(deadline, request.send()).await {
        Ok(result) => result.map_err(Failure::from_reqwest)?,
        Err(_) => return Err(Failure::Timeout(timeout)),
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let peer_certificate = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec);
    let mut body = Vec::new();
    let read = tokio::time::timeout_at(
        deadline,
        http_client::read_capped(&mut response, BODY_LIMIT, &mut body),
    )
    .await;
    match read {
        Ok(Ok(())) => Ok(Answer {
            status,
            body,
            elapsed: start.elapsed(),
            peer_certificate,
            headers,
        }),
        Ok(Err(BodyError::TooLarge(too_large))) => Err(Failure::TooLarge(too_large.to_string())),
        Ok(Err(BodyError::Transport(err))) => Err(Failure::from_reqwest(err)),
        Err(_) => Err(Failure::SlowBody {
            limit: timeout,
            received: body.len(),
        }),
    }
}

/// Why a request got no usable HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing listens, or the host is unreachable.
    Connect(String),
    /// The TLS handshake or certificate check failed; the cause in words.
    Tls(TransportFault, String),
    /// No answer in time: a black hole, a full accept queue, or headers sent too slowly.
    Timeout(Duration),
    /// The headers came, but the body did not finish in time.
    SlowBody { limit: Duration, received: usize },
    /// The answer is larger than doctor reads: its header block or its body.
    TooLarge(String),
    /// The answer was not HTTP, or the connection broke mid-way.
    Protocol(String),
}

impl Failure {
    pub fn from_reqwest(err: reqwest::Error) -> Self {
        let cause = http_client::innermost_cause(&err);
        match http_client::transport_fault(&err) {
            Some(TransportFault::HeadTooLarge) => {
                Failure::TooLarge(format!("a header block too large to read ({cause})"))
            }
            Some(fault) => Failure::Tls(fault, cause),
            None if err.is_connect() => Failure::Connect(cause),
            None => Failure::Protocol(cause),
        }
    }

    /// "cannot be reached (Connection refused)", "did not answer within 9.8 s", ...
    pub fn describe(&self) -> String {
        let seconds = super::seconds_text;
        match self {
            Failure::Connect(cause) => format!("cannot be reached ({})", excerpt(cause, &[])),
            Failure::Tls(fault, cause) => {
                let cause = excerpt(cause, &[]);
                match fault {
                    TransportFault::NotTls => format!(
                        "does not speak TLS: it answered the TLS handshake with something else ({cause})"
                    ),
                    TransportFault::WrongHost => format!(
                        "failed the TLS check: its certificate is for another host name ({cause})"
                    ),
                    TransportFault::Expired => {
                        "failed the TLS check: its certificate has expired".to_string()
                    }
                    TransportFault::Untrusted => format!(
                        "failed the TLS check: its certificate is not trusted ({cause})"
                    ),
                    _ => format!("failed the TLS handshake ({cause})"),
                }
            }
            Failure::Timeout(limit) => format!("did not answer within {}", seconds(*limit)),
            Failure::SlowBody { limit, received } => format!(
                "sent its headers but not its whole body within {} ({received} bytes came)",
                seconds(*limit)
            ),
            Failure::TooLarge(what) => format!("answered with {what}"),
            Failure::Protocol(cause) => format!(
                "answered with something that is not HTTP ({})",
                excerpt(cause, &[])
            ),
        }
    }
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
}
