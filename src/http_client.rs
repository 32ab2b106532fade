//! What duo-selfhost's HTTP clients (the GitLab API, doctor's probes) share: the `--ca-cert`
//! bundle trusted beside the system roots, body reads with a size cap so that a hostile or
//! broken server cannot fill memory, and naming a transport failure from reqwest's error chain.
//! Building each client and wording its messages stay with the caller.

use std::fmt;
use std::path::Path;

use crate::error::Problem;
use crate::units::size_text;

/// The certificates of a PEM file (one, or a bundle) to trust beside the system roots.
pub fn load_ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, Problem> {
    let pem = std::fs::read(path).map_err(|e| {
        Problem::user(format!(
            "cannot read the CA certificate {}: {e}",
            path.display()
        ))
        .hint("pass --ca-cert with a readable PEM file")
    })?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|certs| !certs.is_empty())
        .ok_or_else(|| {
            Problem::user(format!("{} holds no PEM certificate", path.display())).hint(
                "pass --ca-cert with the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)",
            )
        })
}

/// A body bigger than the reader takes, announced (Content-Length) or sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTooLarge {
    pub limit: usize,
    /// The Content-Length, when that alone gave it away.
    pub announced: Option<u64>,
}

impl fmt::Display for BodyTooLarge {
    /// "a 10000000000-byte body (its Content-Length), larger than the 1 MiB limit".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = size_text(self.limit);
        match self.announced {
            Some(length) => write!(
                f,
                "a {length}-byte body (its Content-Length), larger than the {limit} limit"
            ),
            None => write!(f, "a body larger than the {limit} limit"),
        }
    }
}

#[derive(Debug)]
pub enum BodyError {
    TooLarge(BodyTooLarge),
    Transport(reqwest::Error),
}

/// Reads `response`'s body into `body`, refusing one over `limit` bytes as soon as its
/// Content-Length or the bytes received show it. `body` holds what came, even when the caller
/// gives up on this future (a timeout).
pub async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
    body: &mut Vec<u8>,
) -> Result<(), BodyError> {
    if let Some(length) = response.content_length().filter(|&l| l > limit as u64) {
        return Err(BodyError::TooLarge(BodyTooLarge {
            limit,
            announced: Some(length),
        }));
    }
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(BodyTooLarge {
                limit,
                announced: None,
            }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(())
}

/// What broke a request before any answer, beyond what reqwest's own flags say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFault {
    /// The server answered the TLS ClientHello with something that is not TLS (plain HTTP,
    /// garbage): an https URL on a plain port.
    NotTls,
    /// The certificate does not name the host of the URL.
    WrongHost,
    /// The certificate's validity has ended.
    Expired,
    /// The certificate chains to no trusted root (self-signed, an unknown CA, a CA certificate
    /// used as the server's).
    Untrusted,
    /// Any other TLS failure (an alert, no common protocol version).
    Handshake,
    /// The response's header block is larger than hyper accepts.
    HeadTooLarge,
}

/// Names the fault from the causes under reqwest's error. rustls's error type is not exposed
/// through reqwest, so this reads their text; the top message is skipped because it holds the
/// URL, whose host may contain words such as "tls".
pub fn transport_fault(err: &reqwest::Error) -> Option<TransportFault> {
    let causes = std::error::Error::source(err)
        .map(error_chain)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let has = |needle: &str| causes.contains(needle);
    Some(if has("message head is too large") {
        TransportFault::HeadTooLarge
    } else if has("received corrupt message") || has("invalidcontenttype") {
        TransportFault::NotTls
    } else if has("not valid for name") || has("notvalidforname") {
        TransportFault::WrongHost
    } else if has("certificate expired") || has("certificate: expired") {
        TransportFault::Expired
    } else if has("certificate") || has("unknownissuer") {
        TransportFault::Untrusted
    } else if has("tls") || has("handshake") || has("alert") || has("peer is incompatible") {
        TransportFault::Handshake
    } else {
        return None;
    })
}

/// Every message of an error and its causes, joined by ": ", repeats dropped.
pub fn error_chain(err: &dyn std::error::Error) -> String {
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

/// The innermost cause, which says what actually happened, without rustls's generic prefix.
pub fn innermost_cause(err: &dyn std::error::Error) -> String {
    let mut last = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        last = cause.to_string();
        source = cause.source();
    }
    last.strip_prefix("invalid peer certificate: ")
        .map(str::to_string)
        .unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_says_what_and_the_limit() {
        let announced = BodyTooLarge {
            limit: 1 << 20,
            announced: Some(10_000_000_000),
        };
        assert_eq!(
            announced.to_string(),
            "a 10000000000-byte body (its Content-Length), larger than the 1 MiB limit"
        );
        let sent = BodyTooLarge {
            limit: 1000,
            announced: None,
        };
        assert_eq!(sent.to_string(), "a body larger than the 1000 bytes limit");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_the_users_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load_ca_certificates(&dir.path().join("none.pem")).unwrap_err();
        assert!(missing
            .message
            .starts_with("cannot read the CA certificate"));
        let text = dir.path().join("text.pem");
        std::fs::write(&text, "not a certificate").unwrap();
        let empty = load_ca_certificates(&text).unwrap_err();
        assert!(empty.message.ends_with("holds no PEM certificate"));
        assert!(empty.hint.unwrap().contains("BEGIN CERTIFICATE"));
    }
}
