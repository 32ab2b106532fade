//! The Docker Registry HTTP API v2 as the gateway image needs it: where the image comes from
//! (GitLab's registry, Docker Hub or a mirror) and the tag listing, with `Link` paging and the
//! anonymous bearer-token flow of public registries. Choosing a tag is `image_tag`'s.

use std::time::Duration;

use anyhow::Context;

use crate::error::Problem;
use crate::secret::Secret;

/// The gateway image on GitLab's container registry (the documented default).
pub const GITLAB_REPOSITORY: &str =
    "registry.gitlab.com/gitlab-org/modelops/applied-ml/code-suggestions/ai-assist/model-gateway";

/// The Docker Hub mirror of the stable gateway image.
pub const DOCKERHUB_REPOSITORY: &str = "gitlab/model-gateway";

/// Most pages a tag listing may take; a registry that keeps sending `next` links is broken.
const MAX_TAG_PAGES: usize = 200;

/// Where the gateway image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryChoice {
    /// registry.gitlab.com (the default).
    Gitlab,
    /// Docker Hub's gitlab/model-gateway.
    Dockerhub,
    /// A private mirror, HOST/PATH.
    Mirror(String),
}

impl std::str::FromStr for RegistryChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gitlab" => Ok(RegistryChoice::Gitlab),
            "dockerhub" => Ok(RegistryChoice::Dockerhub),
            "" => Err("expected gitlab, dockerhub or HOST/PATH".into()),
            other if other.contains('/') => Ok(RegistryChoice::Mirror(other.to_string())),
            other => Err(format!(
                "`{other}` is not gitlab, dockerhub or HOST/PATH (a mirror such as registry.example.com:5000/ai/model-gateway)"
            )),
        }
    }
}

impl RegistryChoice {
    /// The image repository as `docker pull` spells it.
    pub fn repository(&self) -> String {
        match self {
            RegistryChoice::Gitlab => GITLAB_REPOSITORY.to_string(),
            RegistryChoice::Dockerhub => DOCKERHUB_REPOSITORY.to_string(),
            RegistryChoice::Mirror(reference) => reference.trim_end_matches('/').to_string(),
        }
    }

    /// The registry an image reference comes from, for choosing its upgrade.
    pub fn of_image(image: &str) -> RegistryChoice {
        let (repository, _) = crate::image_tag::split_reference(image);
        match repository {
            GITLAB_REPOSITORY => RegistryChoice::Gitlab,
            DOCKERHUB_REPOSITORY | "docker.io/gitlab/model-gateway" => RegistryChoice::Dockerhub,
            other => RegistryChoice::Mirror(other.to_string()),
        }
    }

    /// The registry's v2 API base URL and the repository name inside it.
    pub fn api_endpoint(&self) -> (String, String) {
        match self {
            RegistryChoice::Gitlab => {
                let (host, name) = GITLAB_REPOSITORY.split_once('/').unwrap_or_default();
                (format!("https://{host}"), name.to_string())
            }
            // Docker Hub serves the v2 API on registry-1, not on the hub's web host.
            RegistryChoice::Dockerhub => (
                "https://registry-1.docker.io".to_string(),
                DOCKERHUB_REPOSITORY.to_string(),
            ),
            RegistryChoice::Mirror(reference) => {
                let reference = reference.trim_end_matches('/');
                let (host, name) = reference.split_once('/').unwrap_or((reference, ""));
                // Loopback mirrors (tests, a local `docker-registry`) speak plain HTTP, the way
                // the Docker Engine treats them as insecure registries by default.
                let scheme = if crate::net::is_loopback_host_port(host) {
                    "http"
                } else {
                    "https"
                };
                (format!("{scheme}://{host}"), name.to_string())
            }
        }
    }
}

/// Failures that mean "the registry could not be reached", as opposed to "it answered no".
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unreachable(String);

pub fn is_unreachable(err: &anyhow::Error) -> bool {
    // `Unreachable` is attached as context, which anyhow finds through `downcast_ref`.
    err.downcast_ref::<Unreachable>().is_some()
}

/// What was tried and the root cause, without the layers in between (reqwest repeats the URL).
pub fn error_summary(err: &anyhow::Error) -> String {
    let root = err.root_cause().to_string();
    let top = err.to_string();
    if top == root {
        top
    } else {
        format!("{top}: {root}")
    }
}

fn unreachable(context: String, err: reqwest::Error) -> anyhow::Error {
    anyhow::Error::new(err).context(Unreachable(context))
}

/// Lists every tag of the registry's gateway repository through the v2 API, following
/// `Link: <...>; rel="next"` pages and the anonymous bearer-token flow of public registries.
pub async fn list_registry_tags(registry: &RegistryChoice) -> anyhow::Result<Vec<String>> {
    let (base, name) = registry.api_endpoint();
    if name.is_empty() {
        return Err(Problem::user(format!(
            "the registry `{}` has no repository path",
            registry.repository()
        ))
        .hint("give the mirror as HOST/PATH, such as registry.example.com:5000/ai/model-gateway")
        .into());
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("duo-selfhost/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("could not set up the HTTP client")?;
    let mut next = Some(
        url::Url::parse(&format!("{base}/v2/{name}/tags/list"))
            .with_context(|| format!("`{base}/v2/{name}` is not a valid registry URL"))?,
    );
    let mut token: Option<Secret> = None;
    let mut tags = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        if pages > MAX_TAG_PAGES {
            return Err(Problem::tool(format!(
                "the registry {base} kept sending tag pages past {MAX_TAG_PAGES}"
            ))
            .into());
        }
        let response = get_with_token(&client, &url, &mut token).await?;
        next = next_page(&url, response.headers());
        let page: TagPage = response
            .json()
            .await
            .map_err(|e| unreachable(format!("reading the tag list from {url}"), e))?;
        tags.extend(page.tags.unwrap_or_default());
    }
    Ok(tags)
}

#[derive(serde::Deserialize)]
struct TagPage {
    tags: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

/// GET `url`; on a bearer challenge, fetches an anonymous token from the realm and retries.
async fn get_with_token(
    client: &reqwest::Client,
    url: &url::Url,
    token: &mut Option<Secret>,
) -> anyhow::Result<reqwest::Response> {
    let send = |token: &Option<Secret>| {
        let mut request = client.get(url.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        request.send()
    };
    let mut response = send(token)
        .await
        .map_err(|e| unreachable(format!("GET {url}"), e))?;
    if response.status() == reqwest::StatusCode::UNAUTHORIZED && token.is_none() {
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_default();
        *token = Some(fetch_anonymous_token(client, url, &challenge).await?);
        response = send(token)
            .await
            .map_err(|e| unreachable(format!("GET {url}"), e))?;
    }
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let host = url.host_str().unwrap_or("the registry");
    Err(match status.as_u16() {
        401 | 403 => Problem::user(format!(
            "{host} refused to list the gateway tags anonymously (HTTP {status})"
        ))
        .hint("for a private mirror, pass --available-tags FILE with its tags (one per line), or --offline")
        .into(),
        404 => Problem::user(format!(
            "{host} has no repository at {} (HTTP 404)",
            url.path()
        ))
        .hint("check the mirror's HOST/PATH given with --registry")
        .into(),
        _ => anyhow::Error::new(Unreachable(format!("GET {url} answered HTTP {status}"))),
    })
}

/// The anonymous token flow: `WWW-Authenticate: Bearer realm="..",service="..",scope=".."`
/// names where to ask; the answer's `token` (or `access_token`) goes back as a bearer.
async fn fetch_anonymous_token(
    client: &reqwest::Client,
    url: &url::Url,
    challenge: &str,
) -> anyhow::Result<Secret> {
    let host = url.host_str().unwrap_or("the registry").to_string();
    let params = parse_bearer_challenge(challenge).ok_or_else(|| {
        anyhow::Error::from(
            Problem::user(format!(
                "{host} wants credentials to list tags (challenge: `{}`), and duo-selfhost only uses anonymous access",
                challenge.split_whitespace().next().unwrap_or("none")
            ))
            .hint("pass --available-tags FILE with the mirror's tags (one per line), or --offline"),
        )
    })?;
    let realm = params
        .iter()
        .find(|(k, _)| k == "realm")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| Problem::tool(format!("{host}'s bearer challenge has no realm")))?;
    let mut token_url = url::Url::parse(&realm)
        .or_else(|_| url.join(&realm))
        .with_context(|| format!("{host}'s token realm `{realm}` is not a URL"))?;
    {
        let mut query = token_url.query_pairs_mut();
        for (key, value) in &params {
            if key == "service" || key == "scope" {
                query.append_pair(key, value);
            }
        }
    }
    let response = client
        .get(token_url.clone())
        .send()
        .await
        .map_err(|e| unreachable(format!("GET {}", token_url.path()), e))?;
    if !response.status().is_success() {
        return Err(Problem::user(format!(
            "{host}'s token service refused an anonymous token (HTTP {})",
            response.status()
        ))
        .hint("pass --available-tags FILE with the mirror's tags (one per line), or --offline")
        .into());
    }
    let body: TokenResponse = response
        .json()
        .await
        .map_err(|e| unreachable(format!("reading the token from {host}"), e))?;
    body.token
        .or(body.access_token)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| {
            Problem::tool(format!("{host}'s token service answered without a token")).into()
        })
}

/// Parses `Bearer k="v",k2="v, with comma",k3=bare` into its parameters; `None` when the
/// scheme is not Bearer.
pub fn parse_bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.trim().is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    other => value.push(other),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Some(params)
}

/// The `rel="next"` target of a `Link` header, resolved against the page's URL.
fn next_page(current: &url::Url, headers: &reqwest::header::HeaderMap) -> Option<url::Url> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| current.join(target).ok()).flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_map_to_repositories_and_v2_endpoints() {
        assert_eq!(RegistryChoice::Gitlab.repository(), GITLAB_REPOSITORY);
        assert_eq!(
            RegistryChoice::Gitlab.api_endpoint(),
            (
                "https://registry.gitlab.com".into(),
                "gitlab-org/modelops/applied-ml/code-suggestions/ai-assist/model-gateway".into()
            )
        );
        assert_eq!(
            RegistryChoice::Dockerhub.api_endpoint(),
            (
                "https://registry-1.docker.io".into(),
                "gitlab/model-gateway".into()
            )
        );
        let mirror = RegistryChoice::Mirror("127.0.0.1:5000/ai/model-gateway/".into());
        assert_eq!(mirror.repository(), "127.0.0.1:5000/ai/model-gateway");
        assert_eq!(
            mirror.api_endpoint(),
            ("http://127.0.0.1:5000".into(), "ai/model-gateway".into())
        );
        let remote = RegistryChoice::Mirror("registry.example.com/ai/gw".into());
        assert_eq!(
            remote.api_endpoint(),
            ("https://registry.example.com".into(), "ai/gw".into())
        );
        assert_eq!(
            RegistryChoice::Mirror("localhost:5000/gw".into())
                .api_endpoint()
                .0,
            "http://localhost:5000"
        );
    }

    #[test]
    fn registries_are_recognised_from_the_image() {
        assert_eq!(
            RegistryChoice::of_image(&format!("{GITLAB_REPOSITORY}:self-hosted-v17.5.0-ee")),
            RegistryChoice::Gitlab
        );
        assert_eq!(
            RegistryChoice::of_image("127.0.0.1:5000/a/model-gateway:self-hosted-v17.5.0-ee"),
            RegistryChoice::Mirror("127.0.0.1:5000/a/model-gateway".into())
        );
    }

    #[test]
    fn bearer_challenges_parse_with_quoted_commas() {
        let params = parse_bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            params,
            vec![
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="x""#), None);
    }

    #[test]
    fn link_headers_give_the_next_page() {
        let current = url::Url::parse("http://127.0.0.1:5000/v2/gw/tags/list").unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            r#"</v2/gw/tags/list?last=b&n=2>; rel="next""#.parse().unwrap(),
        );
        assert_eq!(
            next_page(&current, &headers).unwrap().as_str(),
            "http://127.0.0.1:5000/v2/gw/tags/list?last=b&n=2"
        );
        assert_eq!(
            next_page(&current, &reqwest::header::HeaderMap::new()),
            None
        );
    }
}
