//! `duo-selfhost image-tag` end to end: version forms, refusals, tag lists from a file, and
//! tag discovery over HTTP from a local fixture speaking the Docker Registry v2 API with the
//! anonymous bearer-token flow and Link-header pagination.

use std::collections::HashMap;
use std::path::Path;

use crate::support;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

const GITLAB_REPO: &str =
    "registry.gitlab.com/gitlab-org/modelops/applied-ml/code-suggestions/ai-assist/model-gateway";
const FIXTURE_TOKEN: &str = "fixture-token-5f3a9c";

fn duo(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    support::duo_command(home.path())
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", stdout(output)))
}

fn tag_file(dir: &Path, tags: &[&str]) -> String {
    let path = dir.join("tags.txt");
    std::fs::write(&path, tags.join("\n") + "\n").unwrap();
    path.display().to_string()
}

/// A user error: exit 1, nothing on stdout, an `error:` and a `hint:` line.
fn assert_user_error(output: &Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(output.stdout.is_empty(), "stdout: {}", stdout(output));
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("\nhint: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

#[test]
fn each_accepted_version_form_gives_its_minor() {
    for (form, version, tag) in [
        ("17.5.0", "17.5.0", "self-hosted-v17.5.0-ee"),
        ("v17.5.0-ee", "17.5.0", "self-hosted-v17.5.0-ee"),
        ("17.5.2-ee", "17.5.2", "self-hosted-v17.5.0-ee"),
        ("18.2.1", "18.2.1", "self-hosted-v18.2.0-ee"),
    ] {
        let output = duo(&["--json", "image-tag", "--gitlab-version", form, "--offline"]);
        assert!(output.status.success(), "{form}: {}", stderr(&output));
        let doc = json(&output);
        assert_eq!(doc["gitlab_version"], version, "{form}");
        assert_eq!(doc["tag"], tag, "{form}");
        assert_eq!(doc["image"], format!("{GITLAB_REPO}:{tag}"), "{form}");
        assert_eq!(doc["repository"], GITLAB_REPO);
        assert_eq!(doc["source"], "offline");
        let warnings = doc["warnings"].as_array().unwrap();
        assert_eq!(warnings.len(), 1, "{form}");
        assert!(warnings[0]
            .as_str()
            .unwrap()
            .contains("could not be checked"));
    }
}

#[test]
fn each_accepted_form_picks_from_a_tag_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = tag_file(
        dir.path(),
        &[
            "self-hosted-v17.5.0-ee",
            "self-hosted-v17.5.3-ee",
            "self-hosted-v18.2.0-ee",
            "self-hosted-v18.2.4-ee",
        ],
    );
    for (form, tag) in [
        ("17.5.0", "self-hosted-v17.5.3-ee"),
        ("v17.5.0-ee", "self-hosted-v17.5.3-ee"),
        ("17.5.2-ee", "self-hosted-v17.5.3-ee"),
        ("18.2.1", "self-hosted-v18.2.4-ee"),
    ] {
        let output = duo(&[
            "image-tag",
            "--gitlab-version",
            form,
            "--available-tags",
            &file,
        ]);
        assert!(output.status.success(), "{form}: {}", stderr(&output));
        assert_eq!(stdout(&output), format!("{GITLAB_REPO}:{tag}\n"), "{form}");
        assert!(
            output.stderr.is_empty(),
            "no warnings for a tag file: {}",
            stderr(&output)
        );
    }
}

#[test]
fn community_edition_is_refused() {
    for form in ["17.5.0-ce", "v18.2.1-ce"] {
        let output = duo(&["image-tag", "--gitlab-version", form, "--offline"]);
        assert_user_error(&output, "needs Enterprise Edition");
    }
}

#[test]
fn versions_before_17_1_are_refused_naming_the_minimum() {
    for form in ["17.0.8", "16.11.3-ee", "v15.0.0"] {
        let output = duo(&["image-tag", "--gitlab-version", form, "--offline"]);
        assert_user_error(&output, "the minimum is GitLab 17.1");
    }
}

#[test]
fn garbage_is_refused_listing_the_accepted_forms() {
    for form in ["latest", "17", "17.5", "seventeen.five", "17.5.0-beta", ""] {
        let output = duo(&["image-tag", "--gitlab-version", form, "--offline"]);
        assert_user_error(&output, "17.5.0, v17.5.0-ee, 17.5.2-ee or 18.2.1");
    }
}

#[test]
fn a_tag_file_with_several_patches_gives_the_highest() {
    let dir = tempfile::tempdir().unwrap();
    let file = tag_file(
        dir.path(),
        &[
            "# mirrored on 2026-11-01",
            "self-hosted-v18.2.0-ee",
            "self-hosted-v18.2.1-ee",
            "self-hosted-v18.2.2-ee",
            "",
            "self-hosted-v18.3.0-ee",
            "latest",
        ],
    );
    let output = duo(&[
        "--json",
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--available-tags",
        &file,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(doc["tag"], "self-hosted-v18.2.2-ee");
    assert_eq!(doc["source"], "file");
    assert_eq!(doc["warnings"], serde_json::json!([]));
}

#[test]
fn a_tag_file_with_only_the_first_patch_gives_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = tag_file(
        dir.path(),
        &[
            "self-hosted-v18.1.5-ee",
            "self-hosted-v18.2.0-ee",
            "nightly",
        ],
    );
    let output = duo(&[
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--available-tags",
        &file,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("{GITLAB_REPO}:self-hosted-v18.2.0-ee\n")
    );
}

#[test]
fn a_tag_file_without_the_minor_exits_1_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = tag_file(
        dir.path(),
        &[
            "self-hosted-v18.1.0-ee",
            "self-hosted-v18.3.0-ee",
            "latest",
            "self-hosted-v18.2.0-ee-nightly",
        ],
    );
    let output = duo(&[
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--available-tags",
        &file,
    ]);
    assert_user_error(
        &output,
        "has no self-hosted-v18.2.*-ee tag for GitLab 18.2.1",
    );
    assert!(
        stderr(&output).contains("18.3, 18.1"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unreadable_tag_file_is_a_user_error() {
    let output = duo(&[
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--available-tags",
        "/nonexistent/tags.txt",
    ]);
    assert_user_error(&output, "cannot read the tag list /nonexistent/tags.txt");
}

#[test]
fn dockerhub_and_mirrors_name_their_repository() {
    let output = duo(&[
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--registry",
        "dockerhub",
        "--offline",
    ]);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output),
        "gitlab/model-gateway:self-hosted-v18.2.0-ee\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = tag_file(dir.path(), &["self-hosted-v18.2.3-ee"]);
    let output = duo(&[
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--registry",
        "mirror.example.com:5000/ai/model-gateway",
        "--available-tags",
        &file,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "mirror.example.com:5000/ai/model-gateway:self-hosted-v18.2.3-ee\n"
    );

    let output = duo(&[
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--registry",
        "quay",
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "clap rejects a bad --registry"
    );
    assert!(stderr(&output).contains("HOST/PATH"));
}

// --- A local registry fixture: the v2 tag list behind the anonymous bearer-token flow ---

struct Fixture {
    port: u16,
    tags: Vec<String>,
    /// Tags per page when the client does not ask (registries may cap pages).
    page_size: usize,
    token_requests: AtomicUsize,
    challenged: AtomicUsize,
    pages_served: AtomicUsize,
}

const REPO_NAME: &str = "ai/model-gateway";
const SERVICE: &str = "fixture-registry";

async fn tags_list(
    State(fx): State<Arc<Fixture>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {FIXTURE_TOKEN}"));
    if !authorized {
        fx.challenged.fetch_add(1, Ordering::SeqCst);
        let challenge = format!(
            r#"Bearer realm="http://127.0.0.1:{}/token",service="{SERVICE}",scope="repository:{REPO_NAME}:pull""#,
            fx.port
        );
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
            Json(serde_json::json!({"errors": [{"code": "UNAUTHORIZED"}]})),
        )
            .into_response();
    }
    fx.pages_served.fetch_add(1, Ordering::SeqCst);
    // Lexical order and `last`/`n` paging, as the distribution registry does.
    let mut all = fx.tags.clone();
    all.sort();
    let n = query
        .get("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(fx.page_size);
    let start = match query.get("last") {
        Some(last) => all
            .iter()
            .position(|t| t == last)
            .map_or(all.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<String> = all.iter().skip(start).take(n).cloned().collect();
    let mut response = Json(serde_json::json!({"name": REPO_NAME, "tags": page})).into_response();
    if start + n < all.len() {
        let link = format!(
            r#"</v2/{REPO_NAME}/tags/list?n={n}&last={}>; rel="next""#,
            page.last().unwrap()
        );
        response
            .headers_mut()
            .insert(header::LINK, link.parse().unwrap());
    }
    response
}

async fn token(
    State(fx): State<Arc<Fixture>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    fx.token_requests.fetch_add(1, Ordering::SeqCst);
    let scope = format!("repository:{REPO_NAME}:pull");
    if query.get("service").map(String::as_str) != Some(SERVICE)
        || query.get("scope") != Some(&scope)
    {
        return (StatusCode::BAD_REQUEST, "wrong service or scope").into_response();
    }
    Json(serde_json::json!({"token": FIXTURE_TOKEN, "expires_in": 300})).into_response()
}

/// Starts the fixture on 127.0.0.1; it lives as long as the returned runtime.
fn start_registry(tags: &[&str], page_size: usize) -> (tokio::runtime::Runtime, Arc<Fixture>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let fixture = Arc::new(Fixture {
        port: listener.local_addr().unwrap().port(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        page_size,
        token_requests: AtomicUsize::new(0),
        challenged: AtomicUsize::new(0),
        pages_served: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route(&format!("/v2/{REPO_NAME}/tags/list"), get(tags_list))
        .route("/token", get(token))
        .with_state(fixture.clone());
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    (runtime, fixture)
}

const REGISTRY_TAGS: &[&str] = &[
    "latest",
    "nightly",
    "self-hosted-v18.1.3-ee",
    "self-hosted-v18.2.0-ee",
    "self-hosted-v18.2.1-ee",
    "self-hosted-v18.2.2-ee",
    "self-hosted-v18.2.2-ee-nightly",
    "self-hosted-v18.3.0-ee",
];

#[test]
fn registry_tags_are_found_through_the_token_flow_and_every_page() {
    let (_runtime, fx) = start_registry(REGISTRY_TAGS, 2);
    let mirror = format!("127.0.0.1:{}/{REPO_NAME}", fx.port);
    let output = duo(&[
        "--json",
        "-vvv",
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--registry",
        &mirror,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(doc["tag"], "self-hosted-v18.2.2-ee");
    assert_eq!(doc["image"], format!("{mirror}:self-hosted-v18.2.2-ee"));
    assert_eq!(doc["repository"], mirror);
    assert_eq!(doc["source"], "registry");
    assert_eq!(doc["warnings"], serde_json::json!([]));
    // One challenge, one anonymous token reused for every page, all 4 pages read.
    assert_eq!(fx.challenged.load(Ordering::SeqCst), 1);
    assert_eq!(fx.token_requests.load(Ordering::SeqCst), 1);
    assert_eq!(fx.pages_served.load(Ordering::SeqCst), 4);
    // The token is a credential: never printed, even at -vvv.
    assert!(!stdout(&output).contains(FIXTURE_TOKEN));
    assert!(!stderr(&output).contains(FIXTURE_TOKEN));
}

#[test]
fn registry_with_only_the_first_patch_gives_it() {
    let (_runtime, fx) = start_registry(&["self-hosted-v18.2.0-ee", "latest"], 100);
    let mirror = format!("127.0.0.1:{}/{REPO_NAME}", fx.port);
    let output = duo(&[
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--registry",
        &mirror,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("{mirror}:self-hosted-v18.2.0-ee\n")
    );
    assert_eq!(fx.pages_served.load(Ordering::SeqCst), 1);
}

#[test]
fn registry_without_the_minor_exits_1_and_never_falls_back() {
    let (_runtime, fx) = start_registry(REGISTRY_TAGS, 3);
    let mirror = format!("127.0.0.1:{}/{REPO_NAME}", fx.port);
    let output = duo(&[
        "image-tag",
        "--gitlab-version",
        "17.9.0",
        "--registry",
        &mirror,
    ]);
    assert_user_error(
        &output,
        "has no self-hosted-v17.9.*-ee tag for GitLab 17.9.0",
    );
    assert!(
        stderr(&output).contains("18.3, 18.2, 18.1"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn registry_without_the_repository_is_a_user_error() {
    let (_runtime, fx) = start_registry(REGISTRY_TAGS, 3);
    let mirror = format!("127.0.0.1:{}/no/such-repo", fx.port);
    let output = duo(&[
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--registry",
        &mirror,
    ]);
    assert_user_error(&output, "HTTP 404");
}

#[test]
fn unreachable_registry_falls_back_to_the_first_patch_with_a_warning() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mirror = format!("127.0.0.1:{port}/{REPO_NAME}");
    let output = duo(&[
        "--json",
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--registry",
        &mirror,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(doc["tag"], "self-hosted-v18.2.0-ee");
    assert_eq!(doc["source"], "offline");
    let warning = doc["warnings"][0].as_str().unwrap();
    assert!(warning.contains("could not be checked"), "{warning}");
    assert!(stderr(&output).contains("warning: could not list the tags"));
}
