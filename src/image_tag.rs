//! Chooses the AI Gateway image for a GitLab version: the highest self-hosted-vX.Y.*-ee tag
//! from a tag file or a registry's v2 tag list, never latest or nightly.
//!
//! Owns version parsing, tag matching and the registry's tag listing (Docker Registry HTTP API
//! v2 with the anonymous bearer-token flow); pulling and running the image live in `docker`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use semver::Version;

use crate::error::Problem;
use crate::secret::Secret;

/// The first GitLab release with self-hosted models.
pub const MINIMUM_GITLAB: (u64, u64) = (17, 1);

/// The gateway image on GitLab's container registry (the documented default).
pub const GITLAB_REPOSITORY: &str =
    "registry.gitlab.com/gitlab-org/modelops/applied-ml/code-suggestions/ai-assist/model-gateway";

/// The Docker Hub mirror of the stable gateway image.
pub const DOCKERHUB_REPOSITORY: &str = "gitlab/model-gateway";

const ACCEPTED_FORMS: &str = "17.5.0, v17.5.0-ee, 17.5.2-ee or 18.2.1";

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
                let scheme = if is_loopback_host(host) {
                    "http"
                } else {
                    "https"
                };
                (format!("{scheme}://{host}"), name.to_string())
            }
        }
    }
}

fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where the chosen tag came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagSource {
    File,
    Registry,
    Offline,
    /// The tag list a bundle brought (`bundle load`).
    Bundle,
}

/// How far `resolve` may go for the registry's tags once a tag file and a bundle's stored list
/// have not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Ask the registry; fall back to the minor's first release when it cannot be reached.
    Online,
    /// Never ask; use the minor's first release with a warning (`image-tag --offline`).
    OfflineRule,
    /// Never ask; no stored list is an error naming the bundle commands (`install --offline`).
    BundleOnly,
}

/// Where `bundle load` stores the gateway's tag list for a GitLab minor, and where `resolve`
/// looks for it.
pub fn stored_tags_path(gitlab: &Version) -> std::path::PathBuf {
    crate::state::data_dir()
        .join("tags")
        .join(format!("gateway-{}.{}.txt", gitlab.major, gitlab.minor))
}

fn no_stored_tags(gitlab: &Version) -> anyhow::Error {
    Problem::user(format!(
        "--offline: no bundle has brought the gateway's tag list for GitLab {}.{} to this host ({} is missing)",
        gitlab.major,
        gitlab.minor,
        stored_tags_path(gitlab).display()
    ))
    .hint(format!(
        "on a connected machine: duo-selfhost bundle create --gitlab-version {gitlab} --output duo.bundle; here: duo-selfhost bundle load duo.bundle (or pass --image, or --available-tags FILE)"
    ))
    .into()
}

/// The gateway image chosen for a GitLab version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageChoice {
    /// `repository:tag`.
    pub image: String,
    pub repository: String,
    pub tag: String,
    pub gitlab_version: String,
    pub source: TagSource,
    pub warnings: Vec<String>,
}

fn garbage(text: &str) -> anyhow::Error {
    Problem::user(format!("`{text}` is not a GitLab version"))
        .hint(format!(
            "give the version as {ACCEPTED_FORMS}; GitLab shows it on its /help page and in `gitlab-rake gitlab:env:info`"
        ))
        .into()
}

/// Parses a GitLab version as users write it (17.5.0, v17.5.0-ee, 17.5.2-ee, 18.2.1).
///
/// Also takes the omnibus package spelling `17.5.0-ee.0`. Community Edition versions and
/// versions before 17.1 are refused, since self-hosted Duo needs Enterprise Edition 17.1+.
pub fn parse_gitlab_version(text: &str) -> anyhow::Result<Version> {
    let trimmed = text.trim();
    let bare = trimmed
        .strip_prefix('v')
        .or_else(|| trimmed.strip_prefix('V'))
        .unwrap_or(trimmed);
    let lower = bare.to_ascii_lowercase();
    let (number, edition) = match split_edition(&lower) {
        Some(parts) => parts,
        None => (lower.as_str(), None),
    };
    let version = Version::parse(number).map_err(|_| garbage(trimmed))?;
    if !version.pre.is_empty() || !version.build.is_empty() {
        return Err(garbage(trimmed));
    }
    if edition == Some("ce") {
        return Err(Problem::user(format!(
            "GitLab {version} Community Edition (`{trimmed}`) cannot use self-hosted GitLab Duo: it needs Enterprise Edition"
        ))
        .hint(format!(
            "upgrade the instance to GitLab EE (gitlab-ee {version}) with a Duo Enterprise licence, then run this again with --gitlab-version {version}-ee"
        ))
        .into());
    }
    let (min_major, min_minor) = MINIMUM_GITLAB;
    if (version.major, version.minor) < (min_major, min_minor) {
        return Err(Problem::user(format!(
            "GitLab {version} is too old for self-hosted GitLab Duo: the minimum is GitLab {min_major}.{min_minor}"
        ))
        .hint(format!(
            "upgrade GitLab to {min_major}.{min_minor} or later (the current release is best), then pass its version"
        ))
        .into());
    }
    Ok(version)
}

/// Splits `17.5.0-ee` / `17.5.0-ee.0` / `17.5.0-ce` into the number and the edition.
fn split_edition(text: &str) -> Option<(&str, Option<&str>)> {
    for edition in ["ee", "ce"] {
        for (at, _) in text.match_indices(&format!("-{edition}")) {
            let rest = &text[at + 3..];
            let package_suffix = rest.is_empty()
                || rest
                    .strip_prefix('.')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if package_suffix {
                return Some((&text[..at], Some(edition)));
            }
        }
    }
    None
}

/// The gateway version a `self-hosted-vX.Y.Z-ee` tag names, or `None` for any other tag
/// (latest, nightly, FIPS, legacy `gitlab-vX.Y`). Also takes the `self-hosted-X.Y.Z-ee`
/// spelling some GitLab pages use.
pub fn parse_gateway_tag(tag: &str) -> Option<Version> {
    let rest = tag.strip_prefix("self-hosted-")?;
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    let number = rest.strip_suffix("-ee")?;
    let mut parts = number.split('.');
    let mut next = || -> Option<u64> {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (major, minor, patch) = (next()?, next()?, next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(Version::new(major, minor, patch))
}

/// Whether an image tag (or a whole image reference) is a gateway release for the GitLab
/// version's minor, e.g. `self-hosted-v18.2.2-ee` for GitLab 18.2.1.
pub fn tag_matches_minor(tag: &str, gitlab: &Version) -> bool {
    let tag = image_reference_tag(tag).unwrap_or(tag);
    parse_gateway_tag(tag).is_some_and(|v| v.major == gitlab.major && v.minor == gitlab.minor)
}

/// The tag of an image reference `repo[:port]/path:tag[@digest]`, if it has one.
pub fn image_reference_tag(reference: &str) -> Option<&str> {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last_segment.split_once(':').map(|(_, tag)| tag)
}

/// The tag the minor's first gateway release carries: what a GitLab minor release creates.
pub fn offline_tag(gitlab: &Version) -> String {
    format!("self-hosted-v{}.{}.0-ee", gitlab.major, gitlab.minor)
}

/// The highest `self-hosted-vX.Y.*-ee` among `tags` for the version's minor, as listed.
pub fn pick_gateway_tag<'a>(
    tags: impl IntoIterator<Item = &'a str>,
    gitlab: &Version,
) -> Option<&'a str> {
    tags.into_iter()
        .filter_map(|tag| parse_gateway_tag(tag).map(|v| (v, tag)))
        .filter(|(v, _)| v.major == gitlab.major && v.minor == gitlab.minor)
        // Prefer the canonical `v` spelling when both name the same release.
        .max_by_key(|(v, tag)| (v.clone(), tag.starts_with("self-hosted-v")))
        .map(|(_, tag)| tag)
}

/// The gateway minors present in `tags`, newest first, for telling the user what exists.
fn available_minors<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut minors: Vec<(u64, u64)> = tags
        .into_iter()
        .filter_map(parse_gateway_tag)
        .map(|v| (v.major, v.minor))
        .collect();
    minors.sort_unstable_by(|a, b| b.cmp(a));
    minors.dedup();
    minors
        .into_iter()
        .map(|(major, minor)| format!("{major}.{minor}"))
        .collect()
}

/// The error for a tag list without a gateway release for the version's minor; `place` names
/// the list.
pub fn no_tag_for_minor(gitlab: &Version, place: &str, tags: &[String]) -> anyhow::Error {
    let minor = format!("{}.{}", gitlab.major, gitlab.minor);
    let minors = available_minors(tags.iter().map(String::as_str));
    let seen = if minors.is_empty() {
        "it has no self-hosted-v*-ee tag at all".to_string()
    } else {
        format!(
            "it has self-hosted releases for {}",
            minors
                .iter()
                .take(6)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Problem::user(format!(
        "{place} has no self-hosted-v{minor}.*-ee tag for GitLab {gitlab}: {seen}"
    ))
    .hint(format!(
        "mirror {} (or a later {minor} patch) from {GITLAB_REPOSITORY}, or check --gitlab-version; latest and nightly tags are never used",
        offline_tag(gitlab)
    ))
    .into()
}

/// Chooses the image: the highest `self-hosted-vX.Y.*-ee` for the version's minor.
pub async fn resolve(
    version: &Version,
    registry: &RegistryChoice,
    available_tags: Option<&Path>,
    lookup: Lookup,
) -> anyhow::Result<ImageChoice> {
    let repository = registry.repository();
    let mut warnings = Vec::new();
    let stored = stored_tags_path(version);
    let (tag, source) = if let Some(file) = available_tags {
        let tags = read_tag_file(file)?;
        let tag = pick_gateway_tag(tags.iter().map(String::as_str), version)
            .ok_or_else(|| {
                no_tag_for_minor(version, &format!("the tag list {}", file.display()), &tags)
            })?
            .to_string();
        (tag, TagSource::File)
    } else if stored.is_file() {
        // A loaded bundle answers without the network, choosing as the registry did.
        let tags = read_tag_file(&stored)?;
        let tag = pick_gateway_tag(tags.iter().map(String::as_str), version)
            .ok_or_else(|| {
                no_tag_for_minor(
                    version,
                    &format!("the bundle's tag list {}", stored.display()),
                    &tags,
                )
            })?
            .to_string();
        (tag, TagSource::Bundle)
    } else if lookup == Lookup::BundleOnly {
        return Err(no_stored_tags(version));
    } else if lookup == Lookup::OfflineRule {
        warnings.push(format!(
            "offline: newer {}.{} patch releases of the gateway could not be checked; using the minor's first release",
            version.major, version.minor
        ));
        (offline_tag(version), TagSource::Offline)
    } else {
        match list_registry_tags(registry).await {
            Ok(tags) => {
                let tag = pick_gateway_tag(tags.iter().map(String::as_str), version)
                    .ok_or_else(|| no_tag_for_minor(version, &repository, &tags))?
                    .to_string();
                (tag, TagSource::Registry)
            }
            Err(err) if is_unreachable(&err) => {
                warnings.push(format!(
                    "could not list the tags of {repository} ({}); newer {}.{} patch releases could not be checked, using the minor's first release",
                    error_summary(&err),
                    version.major,
                    version.minor
                ));
                (offline_tag(version), TagSource::Offline)
            }
            Err(err) => return Err(err),
        }
    };
    Ok(ImageChoice {
        image: format!("{repository}:{tag}"),
        repository,
        tag,
        gitlab_version: version.to_string(),
        source,
        warnings,
    })
}

/// Reads a tag list: one tag per line; blank lines and `#` comments are skipped.
pub fn read_tag_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        Problem::user(format!("cannot read the tag list {}: {err}", path.display()))
            .hint("give a readable file with one tag per line, such as the tag names `skopeo list-tags` prints")
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Failures that mean "the registry could not be reached", as opposed to "it answered no".
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unreachable(String);

fn is_unreachable(err: &anyhow::Error) -> bool {
    // `Unreachable` is attached as context, which anyhow finds through `downcast_ref`.
    err.downcast_ref::<Unreachable>().is_some()
}

/// What was tried and the root cause, without the layers in between (reqwest repeats the URL).
fn error_summary(err: &anyhow::Error) -> String {
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
    fn gateway_tags_parse_only_self_hosted_ee_releases() {
        assert_eq!(
            parse_gateway_tag("self-hosted-v18.2.2-ee"),
            Some(Version::new(18, 2, 2))
        );
        assert_eq!(
            parse_gateway_tag("self-hosted-17.4.0-ee"),
            Some(Version::new(17, 4, 0))
        );
        for other in [
            "latest",
            "nightly",
            "self-hosted-v18.2.2-ee-nightly",
            "self-hosted-v18.2-ee",
            "self-hosted-v18.2.2",
            "self-hosted-v18.2.2-ce",
            "gitlab-v18.2",
            "self-hosted-v18.2.x-ee",
            "self-hosted-v18.2.2.1-ee",
        ] {
            assert_eq!(parse_gateway_tag(other), None, "{other}");
        }
    }

    #[test]
    fn highest_patch_of_the_minor_wins_and_other_minors_never_do() {
        let v = Version::new(18, 2, 1);
        let tags = [
            "self-hosted-v18.2.0-ee",
            "self-hosted-v18.2.10-ee",
            "self-hosted-v18.2.2-ee",
            "self-hosted-v18.3.0-ee",
            "latest",
            "self-hosted-v18.1.9-ee",
        ];
        assert_eq!(pick_gateway_tag(tags, &v), Some("self-hosted-v18.2.10-ee"));
        assert_eq!(
            pick_gateway_tag(["latest", "self-hosted-v18.3.0-ee"], &v),
            None
        );
    }

    #[test]
    fn tag_matching_takes_tags_and_whole_references() {
        let v = Version::new(18, 2, 1);
        assert!(tag_matches_minor("self-hosted-v18.2.2-ee", &v));
        assert!(tag_matches_minor(
            "registry.example.com:5000/ai/model-gateway:self-hosted-v18.2.0-ee",
            &v
        ));
        assert!(!tag_matches_minor(
            "gitlab/model-gateway:self-hosted-v18.1.0-ee",
            &v
        ));
        assert!(!tag_matches_minor("gitlab/model-gateway:latest", &v));
        assert!(!tag_matches_minor("registry.example.com:5000/gw", &v));
    }

    #[test]
    fn versions_parse_in_every_accepted_form() {
        for (text, want) in [
            ("17.5.0", (17, 5, 0)),
            ("v17.5.0-ee", (17, 5, 0)),
            ("17.5.2-ee", (17, 5, 2)),
            ("18.2.1", (18, 2, 1)),
            ("  V18.2.1-EE ", (18, 2, 1)),
            ("17.5.0-ee.0", (17, 5, 0)),
            ("17.1.0", (17, 1, 0)),
        ] {
            let v = parse_gitlab_version(text).unwrap_or_else(|e| panic!("{text}: {e:#}"));
            assert_eq!((v.major, v.minor, v.patch), want, "{text}");
        }
    }

    #[test]
    fn ce_old_and_garbage_versions_are_user_errors() {
        use crate::error::{exit_status_of, ExitStatus};
        for (text, needle) in [
            ("17.5.0-ce", "Enterprise Edition"),
            ("v18.2.1-ce.0", "Enterprise Edition"),
            ("17.0.9", "17.1"),
            ("16.11.0-ee", "17.1"),
            ("seventeen", "is not a GitLab version"),
            ("17.5", "is not a GitLab version"),
            ("17.5.0-rc1", "is not a GitLab version"),
            ("", "is not a GitLab version"),
        ] {
            let err = parse_gitlab_version(text).expect_err(text);
            assert!(format!("{err:#}").contains(needle), "{text}: {err:#}");
            assert_eq!(exit_status_of(&err), ExitStatus::Failure, "{text}");
        }
    }

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
