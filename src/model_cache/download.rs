//! Downloading one file into the cache (`models pull`, vLLM's weights for `bundle create`):
//! checked against the size and sha256 the catalog pins or the endpoint publishes, resumed after a
//! dropped connection, retried, and linked into the snapshot only once it checks out.

// Written on reqwest (already a dependency, streaming) rather than the `hf-hub` crate: hf-hub
// 0.5 brings its own reqwest 0.12 next to our 0.13, names blobs after the server's ETag without
// checking the bytes against a pinned sha256, and reports progress only through its own trait.
// The catalog pins revision, size and sha256, so the download must be verified against those
// before the file enters the cache, and a dropped connection resumed with a Range request.
// The layout is the one huggingface_hub writes, so either tool finds the other's files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::StreamExt;

use super::hub::{
    http_client, innermost_cause, is_sha256, network_problem, normalize_etag, status_problem,
    url_at,
};
use super::partial::{remove_partial, sha256_of, Partial};
use super::place::link_snapshot;
use super::{blob_path_of, is_commit, snapshot_for, snapshot_path_of, HubFile};
use crate::catalog::GgufSource;
use crate::error::Problem;
use crate::secret::Secret;

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
    let mismatch = match expected.bytes.filter(|want| *want != bytes) {
        Some(want) => Some(format!(
            "{} from {url} has {bytes} bytes, not the {want} the catalog pins",
            source.file
        )),
        None => expected
            .sha256
            .as_deref()
            .filter(|want| *want != sha256)
            .map(|want| {
                format!(
                    "checksum mismatch for {} from {url}: sha256 {sha256}, expected {want}",
                    source.file
                )
            }),
    };
    // Bytes that are not the file must not be resumed from: they go, whatever was wrong.
    if let Some(mismatch) = mismatch {
        remove_partial(&incomplete);
        return Err(
            Problem::user(format!("{mismatch}; the partial download was removed"))
                .hint(endpoint_hint(endpoint))
                .into(),
        );
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
