//! The GitLab REST and GraphQL client: the connection, its token (sent as PRIVATE-TOKEN, never
//! printed) and the REST calls (metadata, readiness, licence, feature flags). GraphQL and the Duo
//! gateway URL setting are `graphql`'s, self-hosted models and feature settings `self_hosted`'s.
//! Every failure names the URL and the cause (DNS, refused, TLS, 401/403, 404, timeout): `failure`.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::error::Problem;
use crate::http_client::{read_capped, BodyError};
use crate::secret::Secret;
use crate::units::seconds_text;

mod failure;
mod graphql;
mod self_hosted;
use failure::{decode, problem};
pub use graphql::SelfHostedModel;
pub use self_hosted::{
    ConnectionCheck, FeatureSetting, ModelInput, ModelRef, RegisteredModel, FAMILY_ENUM,
    FEATURE_ENUM,
};

/// Largest answer read from GitLab: far above any API answer used here (the feature-flag list
/// of a large instance is well under 1 MiB), far below what would strain memory.
const BODY_LIMIT: usize = 8 << 20;

/// `GET /api/v4/metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Metadata {
    /// Such as `18.1.1-ee`.
    pub version: String,
    #[serde(default)]
    pub revision: String,
    /// Present from 15.6; older versions are told apart by the `-ee` suffix.
    #[serde(default)]
    pub enterprise: Option<bool>,
}

impl Metadata {
    /// The version without its edition suffix, as semver (`18.1.1-ee` -> 18.1.1).
    pub fn semver(&self) -> Option<semver::Version> {
        parse_gitlab_version(&self.version)
    }

    /// Enterprise Edition: the `enterprise` flag, else the `-ee` suffix.
    pub fn is_enterprise(&self) -> bool {
        self.enterprise
            .unwrap_or_else(|| self.version.trim().ends_with("-ee"))
    }
}

/// `18.1.1-ee`, `v17.5.0`, `17.9.0-pre` -> major.minor.patch.
pub fn parse_gitlab_version(text: &str) -> Option<semver::Version> {
    let text = text.trim().trim_start_matches('v');
    let core = text.split(['-', '+', ' ']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    Some(semver::Version::new(major, minor, patch))
}

/// `GET /-/readiness`: ready, or the checks that are not.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    pub ready: bool,
    pub status: u16,
    /// The JSON body, keyed by check, when GitLab sent one.
    pub body: Option<Value>,
}

/// `GET /api/v4/license` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct License {
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub expired: Option<bool>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub user_limit: Option<u64>,
}

/// One entry of `GET /api/v4/features`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Feature {
    pub name: String,
    /// `on`, `off` or `conditional`.
    pub state: String,
}

impl Feature {
    pub fn enabled(&self) -> bool {
        self.state == "on"
    }
}

/// GitLab's REST and GraphQL API at one base URL.
#[derive(Clone)]
pub struct GitlabClient {
    base: Url,
    token: Option<Secret>,
    http: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for GitlabClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitlabClient")
            .field("base", &self.base.as_str())
            .field("token", &self.token)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// GitLab's external URL as the base of API paths: http(s), with a host, ending in `/`.
pub fn parse_base_url(base_url: &str) -> anyhow::Result<Url> {
    let mut base = Url::parse(base_url.trim()).map_err(|e| match e {
        // `gitlab.example.com`: a host without its scheme, the commonest slip.
        url::ParseError::RelativeUrlWithoutBase => {
            let text = base_url.trim();
            let looks_like_a_host = text.contains('.') && !text.contains(char::is_whitespace);
            let example = if looks_like_a_host {
                format!("https://{}", text.trim_start_matches('/'))
            } else {
                "https://gitlab.example.com".to_string()
            };
            Problem::user(format!("`{base_url}` is not a URL: it has no scheme")).hint(format!(
                "give GitLab's external URL with its scheme, such as {example}"
            ))
        }
        e => Problem::user(format!("`{base_url}` is not a URL: {e}"))
            .hint("give GitLab's external URL, such as https://gitlab.example.com"),
    })?;
    if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
        return Err(
            Problem::user(format!("`{base_url}` is not an http(s) URL with a host"))
                .hint("give GitLab's external URL, such as https://gitlab.example.com")
                .into(),
        );
    }
    // Relative joins need a trailing slash (GitLab under a relative URL root: /gitlab/).
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    Ok(base)
}

/// GitLab's external URL as given (http(s), with a host), without a trailing slash: the form
/// install, upgrade and the state file record.
pub fn gitlab_url(text: &str) -> anyhow::Result<String> {
    Ok(parse_base_url(text)?
        .as_str()
        .trim_end_matches('/')
        .to_string())
}

/// An HTTP client with rustls, the system roots plus `ca_cert` (PEM), and duo-selfhost's user
/// agent; timeouts are per call.
pub fn http_client(ca_cert: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder =
        reqwest::Client::builder().user_agent(concat!("duo-selfhost/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_cert {
        builder = builder.tls_certs_merge(crate::http_client::load_ca_certificates(path)?);
    }
    builder
        .build()
        .map_err(|e| anyhow::Error::new(e).context("cannot set up the HTTP client"))
}

impl GitlabClient {
    /// A client for GitLab at `base_url` (its external URL). `ca_cert` is a PEM file trusted
    /// beside the system roots. `timeout` bounds every call.
    pub fn new(
        base_url: &str,
        token: Option<Secret>,
        ca_cert: Option<&Path>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let base = parse_base_url(base_url)?;
        Ok(Self::with_http(base, token, http_client(ca_cert)?, timeout))
    }

    /// A client over an HTTP client the caller already has (doctor shares one between its
    /// checks: setting one up loads and parses the system's CA roots). `timeout` bounds every
    /// call.
    pub fn with_http(
        base: Url,
        token: Option<Secret>,
        http: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        GitlabClient {
            base,
            token: token.filter(|t| !t.is_empty()),
            http,
            timeout,
        }
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(path.trim_start_matches('/'))
            .expect("relative API paths join onto an http(s) base")
    }

    fn auth_headers(&self, graphql: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            if let Ok(mut value) = HeaderValue::from_str(token.expose()) {
                value.set_sensitive(true);
                headers.insert("PRIVATE-TOKEN", value);
            }
            if graphql {
                // GraphQL documents bearer tokens; GitLab accepts a PAT either way.
                if let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                {
                    value.set_sensitive(true);
                    headers.insert(reqwest::header::AUTHORIZATION, value);
                }
            }
        }
        headers
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> anyhow::Result<(reqwest::StatusCode, String)> {
        tracing::debug!(%url, "GitLab API call");
        let mut response = request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(url, e))?;
        let status = response.status();
        let mut body = Vec::new();
        match read_capped(&mut response, BODY_LIMIT, &mut body).await {
            Ok(()) => {}
            Err(BodyError::TooLarge(too_large)) => {
                return Err(problem(
                    true,
                    format!("GitLab at {url} answered {} with {too_large}", status.as_u16()),
                    "check that the URL is GitLab's external URL, not another server or a proxy in front of it that streams something else",
                ))
            }
            Err(BodyError::Transport(err)) if err.is_timeout() => {
                return Err(problem(
                    true,
                    format!(
                        "GitLab at {url} sent its headers but not its whole answer within {} ({} bytes came)",
                        seconds_text(self.timeout),
                        body.len()
                    ),
                    "check GitLab's load (`sudo gitlab-ctl status`) and any proxy between here and GitLab",
                ))
            }
            Err(BodyError::Transport(err)) => return Err(self.transport_error(url, err)),
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        tracing::trace!(%url, status = status.as_u16(), bytes = body.len(), "GitLab API answer");
        Ok((status, body))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let url = self.url(path);
        let request = self.http.get(url.clone()).headers(self.auth_headers(false));
        let (status, body) = self.send(request, &url).await?;
        if !status.is_success() {
            return Err(self.status_error(&url, status, &body));
        }
        decode(&url, &body)
    }

    /// `GET /api/v4/metadata`: version, revision, edition.
    pub async fn metadata(&self) -> anyhow::Result<Metadata> {
        self.get_json("api/v4/metadata").await
    }

    /// `GET /-/readiness`. A 503 is an answer (not ready), not an error.
    pub async fn readiness(&self) -> anyhow::Result<Readiness> {
        let url = self.url("-/readiness");
        let request = self.http.get(url.clone());
        let (status, body) = self.send(request, &url).await?;
        let json = serde_json::from_str::<Value>(&body).ok();
        match status.as_u16() {
            200 => Ok(Readiness {
                ready: json
                    .as_ref()
                    .and_then(|v| v.get("status"))
                    .and_then(Value::as_str)
                    .map(|s| s == "ok")
                    .unwrap_or(true),
                status: 200,
                body: json,
            }),
            503 => Ok(Readiness {
                ready: false,
                status: 503,
                body: json,
            }),
            _ => Err(self.status_error(&url, status, &body)),
        }
    }

    /// `GET /api/v4/license` (admin). `None` when no licence is installed.
    pub async fn license(&self) -> anyhow::Result<Option<License>> {
        let url = self.url("api/v4/license");
        let request = self.http.get(url.clone()).headers(self.auth_headers(false));
        let (status, body) = self.send(request, &url).await?;
        if status.as_u16() == 404 {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.status_error(&url, status, &body));
        }
        if body.trim() == "null" || body.trim().is_empty() {
            return Ok(None);
        }
        decode(&url, &body).map(Some)
    }

    /// `GET /api/v4/features` (admin): the flags set on this instance.
    pub async fn features(&self) -> anyhow::Result<Vec<Feature>> {
        self.get_json("api/v4/features").await
    }

    /// Whether a feature flag is on; `None` when it was never set (GitLab's default applies).
    pub async fn feature_enabled(&self, name: &str) -> anyhow::Result<Option<bool>> {
        Ok(self
            .features()
            .await?
            .into_iter()
            .find(|f| f.name == name)
            .map(|f| f.enabled()))
    }

    /// `POST /api/v4/features/:name` with `value=true` (admin).
    pub async fn enable_feature(&self, name: &str) -> anyhow::Result<Feature> {
        let url = self.url(&format!("api/v4/features/{name}"));
        let request = self
            .http
            .post(url.clone())
            .headers(self.auth_headers(false))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body("value=true");
        let (status, body) = self.send(request, &url).await?;
        if !status.is_success() {
            return Err(self.status_error(&url, status, &body));
        }
        decode(&url, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_and_without_suffixes() {
        assert_eq!(
            parse_gitlab_version("18.1.1-ee"),
            Some(semver::Version::new(18, 1, 1))
        );
        assert_eq!(
            parse_gitlab_version("v17.5.0"),
            Some(semver::Version::new(17, 5, 0))
        );
        assert_eq!(
            parse_gitlab_version("17.9"),
            Some(semver::Version::new(17, 9, 0))
        );
        assert_eq!(parse_gitlab_version("x"), None);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let client = GitlabClient::new(
            "http://gitlab.example.com",
            Some(Secret::new("glpat-secret-value")),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("glpat-secret-value"));
        assert_eq!(
            client.url("api/v4/metadata").as_str(),
            "http://gitlab.example.com/api/v4/metadata"
        );
    }

    #[test]
    fn relative_url_roots_are_kept() {
        let client = GitlabClient::new(
            "https://example.com/gitlab",
            None,
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            client.url("-/readiness").as_str(),
            "https://example.com/gitlab/-/readiness"
        );
    }
}
