//! A stand-in for the Hugging Face Hub on loopback: it serves the real SmolLM2 GGUF as the Hub
//! does (redirecting /resolve/ to a "CDN" path, honouring Range requests, cutting a transfer or
//! serving wrong bytes on demand), and small repositories a test adds, listed through the Hub
//! API as vLLM's weights are.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};

use duo_selfhost::catalog;
use sha2::{Digest, Sha256};

pub const MODEL: &str = "smollm2-135m";

/// The commit the stand-in says a branch (`main`) points at.
pub const BRANCH_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn source() -> catalog::GgufSource {
    catalog::find(MODEL)
        .and_then(|m| m.gguf.clone())
        .expect("the catalog has the demo model's GGUF")
}

/// The real GGUF bytes, read once from the machine's cache (where scripts/fetch-test-model puts
/// it). Missing is a failure, not a skip: CI must have fetched it.
pub fn model_bytes() -> Arc<Vec<u8>> {
    static BYTES: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let model = catalog::find(MODEL).expect("the demo model is in the catalog");
            // A test run in a child process with its own HF_HOME finds the machine's model
            // through the parent's cache (`support::in_child_process_with` passes it on).
            let parents = std::env::var_os(super::PARENT_HF_HOME).map(|home| {
                let source = model.gguf.as_ref().unwrap();
                std::path::PathBuf::from(home)
                    .join("hub")
                    .join(format!("models--{}", source.repo.replace('/', "--")))
                    .join("snapshots")
                    .join(source.revision)
                    .join(source.file)
            });
            let path = parents
                .filter(|p| p.is_file())
                .or_else(|| duo_selfhost::model_cache::locate(model))
                .unwrap_or_else(|| {
                    panic!(
                        "the test model is missing from {}: run scripts/fetch-test-model",
                        duo_selfhost::model_cache::hf_home().display()
                    )
                });
            let bytes = std::fs::read(&path).expect("read the test model");
            assert_eq!(Some(bytes.len() as u64), source().bytes);
            Arc::new(bytes)
        })
        .clone()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
}

/// How the stand-in misbehaves; changed between runs by the tests.
#[derive(Debug, Default)]
pub struct Behaviour {
    /// Cut this many of the next file transfers short...
    pub cuts_left: u32,
    /// ...after sending this many bytes of body.
    pub cut_after: u64,
    /// Serve the file with one byte changed (same size, wrong sha256).
    pub corrupt: bool,
    /// Answer every request 404, as the Hub does for a file that is not there.
    pub not_found: bool,
}

/// A repository the stand-in serves besides the GGUF: the Hub API lists its files
/// (`/api/models/{repo}/revision/{rev}`), small files resolve directly with their git blob id
/// as ETag, LFS files (`*.safetensors`, `*.bin`) redirect to the CDN with their sha256.
#[derive(Debug, Clone)]
pub struct HubRepo {
    /// `owner/name`.
    pub id: String,
    /// The commit `main` points at.
    pub commit: String,
    pub files: Vec<(String, Vec<u8>)>,
}

impl HubRepo {
    fn is_lfs(name: &str) -> bool {
        name.ends_with(".safetensors") || name.ends_with(".bin")
    }

    /// The Hub's answer to `GET /api/models/{repo}/revision/{rev}[?blobs=true]`.
    fn listing(&self, blobs: bool) -> String {
        let siblings: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|(name, bytes)| {
                if !blobs {
                    return serde_json::json!({ "rfilename": name });
                }
                let mut sibling = serde_json::json!({
                    "rfilename": name,
                    "size": bytes.len(),
                    "blobId": git_blob_id(bytes),
                });
                if Self::is_lfs(name) {
                    sibling["lfs"] = serde_json::json!({
                        "sha256": sha256_hex(bytes),
                        "size": bytes.len(),
                        "pointerSize": 134
                    });
                }
                sibling
            })
            .collect();
        serde_json::json!({
            "_id": "0000",
            "id": self.id,
            "private": false,
            "sha": self.commit,
            "siblings": siblings,
        })
        .to_string()
    }
}

/// git's blob id of `bytes` (sha1 of `blob <len>\0` and the bytes), what the Hub gives as the
/// ETag of a file that is not in LFS.
pub fn git_blob_id(bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("git")
        .args(["hash-object", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git is installed");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub struct HubStandIn {
    pub endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    repos: Arc<Mutex<Vec<HubRepo>>>,
}

impl HubStandIn {
    pub fn start() -> HubStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let data = model_bytes();
        let mut corrupted = data.as_ref().clone();
        let middle = corrupted.len() / 2;
        corrupted[middle] ^= 0xff;
        let corrupted = Arc::new(corrupted);
        let repos: Arc<Mutex<Vec<HubRepo>>> = Arc::new(Mutex::new(Vec::new()));
        let (seen_t, behaviour_t, endpoint_t) = (seen.clone(), behaviour.clone(), endpoint.clone());
        let repos_t = repos.clone();
        // The listener thread lives until the test process ends; each test has its own port.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, behaviour, endpoint) =
                    (seen_t.clone(), behaviour_t.clone(), endpoint_t.clone());
                let (data, corrupted) = (data.clone(), corrupted.clone());
                let repos = repos_t.lock().unwrap().clone();
                std::thread::spawn(move || {
                    let _ = serve_one(
                        stream, &seen, &behaviour, &endpoint, &data, &corrupted, &repos,
                    );
                });
            }
        });
        HubStandIn {
            endpoint,
            seen,
            behaviour,
            repos,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.behaviour.lock().unwrap());
    }

    /// The file transfers (the CDN side), in order.
    pub fn transfers(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.starts_with("/cdn/"))
            .collect()
    }

    /// Serves `repo` from now on.
    pub fn add_repo(&self, repo: HubRepo) {
        self.repos.lock().unwrap().push(repo);
    }
}

/// Answers one request and closes the connection (`Connection: close`).
fn serve_one(
    mut stream: TcpStream,
    seen: &Mutex<Vec<Seen>>,
    behaviour: &Mutex<Behaviour>,
    endpoint: &str,
    data: &[u8],
    corrupted: &[u8],
    repos: &[HubRepo],
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        range: range.clone(),
    });

    if behaviour.lock().unwrap().not_found {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    if let Some(answer) = answer_for_repos(&method, &path, endpoint, repos) {
        return match answer {
            RepoAnswer::Head(head) => stream.write_all(head.as_bytes()),
            RepoAnswer::Body(head, body) => {
                stream.write_all(head.as_bytes())?;
                if method != "HEAD" {
                    stream.write_all(&body)?;
                }
                stream.flush()
            }
        };
    }
    let sha = source().sha256.unwrap();
    // `/{org}/{repo}/resolve/{revision}/{file}`: every file resolves to the SmolLM2 bytes, so a
    // catalog entry pinned to a branch can be pulled too.
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() >= 6 && segments[3] == "resolve" {
        let revision = segments[4];
        let commit = if revision.len() == 40 {
            revision
        } else {
            BRANCH_COMMIT
        };
        // The Hub sends LFS files to its CDN, naming the commit and the blob in its headers.
        let head = format!(
            "HTTP/1.1 302 Found\r\nLocation: {endpoint}/cdn/{sha}\r\nX-Repo-Commit: {commit}\r\nX-Linked-Etag: \"{sha}\"\r\nX-Linked-Size: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            data.len()
        );
        return stream.write_all(head.as_bytes());
    }
    if path != format!("/cdn/{sha}") {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }

    let (cut_after, body_source) = {
        let mut b = behaviour.lock().unwrap();
        let cut = if b.cuts_left > 0 {
            b.cuts_left -= 1;
            Some(b.cut_after)
        } else {
            None
        };
        (cut, if b.corrupt { corrupted } else { data })
    };
    let total = body_source.len() as u64;
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok());
    let head = match start {
        Some(start) if start >= total => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return stream.write_all(head.as_bytes());
        }
        Some(start) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{total}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
            total - 1,
            total - start
        ),
        None => format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
        ),
    };
    stream.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return Ok(());
    }
    let body = &body_source[start.unwrap_or(0) as usize..];
    match cut_after {
        Some(cut) => {
            stream.write_all(&body[..(cut as usize).min(body.len())])?;
            stream.flush()?;
            // The transfer ends early: the client sees the connection close mid-body.
            stream.shutdown(Shutdown::Both)
        }
        None => {
            for chunk in body.chunks(256 * 1024) {
                stream.write_all(chunk)?;
            }
            stream.flush()
        }
    }
}

enum RepoAnswer {
    Head(String),
    Body(String, Vec<u8>),
}

/// The Hub's answers about the added repositories: the API listing, `resolve` (a redirect to
/// the CDN for LFS files, the bytes for the others) and the CDN; `None` for anything else.
fn answer_for_repos(
    _method: &str,
    path: &str,
    endpoint: &str,
    repos: &[HubRepo],
) -> Option<RepoAnswer> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    for repo in repos {
        let api = format!("/api/models/{}/revision/", repo.id);
        if let Some(revision) = path.strip_prefix(&api) {
            if revision != "main" && revision != repo.commit {
                return Some(RepoAnswer::Body(
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .into(),
                    Vec::new(),
                ));
            }
            let body = repo.listing(query.split('&').any(|p| p == "blobs=true"));
            return Some(RepoAnswer::Body(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                ),
                body.into_bytes(),
            ));
        }
        let resolve = format!("/{}/resolve/", repo.id);
        if let Some(rest) = path.strip_prefix(&resolve) {
            let (revision, file) = rest.split_once('/')?;
            let found = repo.files.iter().find(|(name, _)| name == file);
            let Some((name, bytes)) =
                found.filter(|_| revision == "main" || revision == repo.commit)
            else {
                return Some(RepoAnswer::Head(
                    "HTTP/1.1 404 Not Found\r\nX-Error-Code: EntryNotFound\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
                ));
            };
            let commit = &repo.commit;
            if HubRepo::is_lfs(name) {
                let sha = sha256_hex(bytes);
                return Some(RepoAnswer::Head(format!(
                    "HTTP/1.1 302 Found\r\nLocation: {endpoint}/cdn/{sha}\r\nX-Repo-Commit: {commit}\r\nX-Linked-Etag: \"{sha}\"\r\nX-Linked-Size: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    bytes.len()
                )));
            }
            return Some(RepoAnswer::Body(
                format!(
                    "HTTP/1.1 200 OK\r\nX-Repo-Commit: {commit}\r\nETag: \"{}\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    git_blob_id(bytes),
                    bytes.len()
                ),
                bytes.clone(),
            ));
        }
        if let Some(sha) = path.strip_prefix("/cdn/") {
            if let Some((_, bytes)) = repo.files.iter().find(|(_, b)| sha256_hex(b) == sha) {
                return Some(RepoAnswer::Body(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    ),
                    bytes.clone(),
                ));
            }
        }
    }
    None
}
