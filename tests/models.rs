//! `models list|pull|path` run as the real binary, with a private HF_HOME and HF_ENDPOINT
//! pointing at the stand-in for the Hugging Face Hub (`support::hub`) that serves the real
//! SmolLM2 GGUF.
//!
//! `models register` runs against the fake GitLab (`support::gitlab_fixture`), whose connection
//! check calls the real `duo-selfhost serve` on the SmolLM2 test model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use duo_selfhost::catalog;

use crate::support;
use support::doctor_chain::Serve;
use support::gitlab_fixture::{FakeGitlab, FakeGitlabConfig};
use support::hub::{model_bytes, sha256_hex, source, HubStandIn, Seen, BRANCH_COMMIT};
use support::{run, Sandbox as Home};

const MODEL: &str = "smollm2-135m";
const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const REPO_DIR: &str = "hub/models--QuantFactory--SmolLM2-135M-Instruct-GGUF";
const MIB: u64 = 1024 * 1024;
/// A private HF_HOME (and HOME) for one test.
struct Sandbox {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Sandbox {
    fn new(hub: &HubStandIn) -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
            endpoint: hub.endpoint.clone(),
        }
    }

    fn hf_home(&self) -> PathBuf {
        self.dir.path().join("hf")
    }

    fn repo_dir(&self) -> PathBuf {
        self.hf_home().join(REPO_DIR)
    }

    fn blobs(&self) -> PathBuf {
        self.repo_dir().join("blobs")
    }

    fn snapshot(&self) -> PathBuf {
        self.repo_dir()
            .join("snapshots")
            .join(source().revision)
            .join(FILE)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = support::duo_command(self.dir.path());
        // HF_HOME alone says where the cache is.
        cmd.args(args)
            .env("HF_HOME", self.hf_home())
            .env("HF_ENDPOINT", &self.endpoint)
            .env_remove("XDG_CACHE_HOME");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run duo-selfhost")
    }

    fn blob_names(&self) -> Vec<String> {
        match std::fs::read_dir(self.blobs()) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// The cache holds the file as huggingface_hub leaves it: the blob named by its sha256, a
/// relative symlink from the snapshot, refs/main naming the revision.
fn assert_hf_layout(sandbox: &Sandbox) {
    let src = source();
    let sha = src.sha256.unwrap();
    let blob = sandbox.blobs().join(sha);
    let bytes = std::fs::read(&blob).expect("the blob is in the cache");
    assert_eq!(
        sha256_hex(&bytes),
        sha,
        "the blob's bytes are the pinned file"
    );
    assert_eq!(
        sandbox.blob_names(),
        vec![sha.to_string()],
        "no partial files left"
    );
    let link = std::fs::read_link(sandbox.snapshot()).expect("the snapshot entry is a symlink");
    assert_eq!(link, Path::new("../../blobs").join(sha));
    assert_eq!(
        std::fs::canonicalize(sandbox.snapshot()).unwrap(),
        std::fs::canonicalize(&blob).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.repo_dir().join("refs/main")).unwrap(),
        src.revision
    );
}

/// The Range header of a transfer as its start offset.
fn range_start(seen: &Seen) -> Option<u64> {
    seen.range
        .as_deref()?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

#[test]
fn pull_shows_progress_follows_the_redirect_and_a_second_pull_uses_the_cache() {
    let hub = HubStandIn::start();
    let sandbox = Sandbox::new(&hub);

    // Under a terminal, as a person runs it, so the progress bar is drawn.
    let mut session = rexpect::session::spawn_command(
        support::on_terminal(sandbox.command(&["models", "pull", "smollm2"])),
        Some(120_000),
    )
    .expect("spawn duo-selfhost in a pty");
    let screen = session.exp_eof().expect("the pull finishes");
    let status = session.process().wait().expect("exit status");
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}\n{screen}"
    );
    assert!(
        screen.contains(&format!("downloading {FILE}")),
        "it says what it downloads:\n{screen}"
    );
    assert!(
        screen.contains("93.81 MiB/93.81 MiB"),
        "the bar shows bytes done of the total:\n{screen}"
    );
    assert!(screen.contains("[="), "a bar is drawn:\n{screen}");
    assert!(
        screen.contains("size and sha256 verified"),
        "the result says it was checked:\n{screen}"
    );
    assert!(screen.contains(&sandbox.snapshot().display().to_string()));
    assert_hf_layout(&sandbox);

    let seen = hub.seen();
    assert_eq!(seen.len(), 2, "one resolve and one CDN request: {seen:?}");
    assert!(seen[0].path.contains("/resolve/"), "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert!(
        seen[1].path.starts_with("/cdn/"),
        "the redirect was followed"
    );
    assert_eq!(
        seen[1].range, None,
        "a fresh download asks for the whole file"
    );

    // A second pull checks the cached file and never touches the network.
    let again = sandbox.run(&["--json", "models", "pull", MODEL]);
    assert!(again.status.success(), "{}", describe(&again));
    let doc: serde_json::Value = serde_json::from_slice(&again.stdout).expect("one JSON document");
    assert_eq!(doc["status"], "cached");
    assert_eq!(doc["name"], MODEL);
    assert_eq!(doc["bytes"], source().bytes.unwrap());
    assert_eq!(doc["sha256"], source().sha256.unwrap());
    assert_eq!(doc["path"], sandbox.snapshot().display().to_string());
    assert_eq!(hub.seen().len(), 2, "the cached pull made no request");

    let plain = sandbox.run(&["models", "pull", MODEL]);
    assert!(plain.status.success(), "{}", describe(&plain));
    assert!(
        text(&plain.stderr).contains("smollm2-135m is already in the cache"),
        "{}",
        describe(&plain)
    );
    assert_eq!(hub.seen().len(), 2);

    // `models path` and `models list` see the download.
    let path = sandbox.run(&["models", "path", "smollm2"]);
    assert!(path.status.success(), "{}", describe(&path));
    assert_eq!(
        text(&path.stdout).trim(),
        sandbox.snapshot().display().to_string()
    );
    let path_json = sandbox.run(&["--json", "models", "path", MODEL]);
    let doc: serde_json::Value = serde_json::from_slice(&path_json.stdout).unwrap();
    assert_eq!(doc["path"], sandbox.snapshot().display().to_string());

    let list = sandbox.run(&["--json", "models", "list"]);
    assert!(list.status.success(), "{}", describe(&list));
    let models: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let smollm = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == MODEL)
        .expect("the demo model is listed");
    assert_eq!(smollm["cached"], true);
    assert_eq!(smollm["path"], sandbox.snapshot().display().to_string());
}

#[test]
fn a_transfer_cut_midway_is_resumed_with_a_range_request() {
    let hub = HubStandIn::start();
    let sandbox = Sandbox::new(&hub);
    let cut = 40 * MIB;
    hub.set(|b| {
        b.cuts_left = 1;
        b.cut_after = cut;
    });

    let output = sandbox.run(&["models", "pull", MODEL]);
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("the connection dropped after 40.00 MiB"),
        "{stderr}"
    );
    assert!(
        stderr.contains("retrying from 40.00 MiB (attempt 2 of 3)"),
        "{stderr}"
    );

    let transfers = hub.transfers();
    assert_eq!(transfers.len(), 2, "{transfers:?}");
    assert_eq!(range_start(&transfers[0]), None);
    assert_eq!(
        range_start(&transfers[1]),
        Some(cut),
        "the second request starts where the first stopped"
    );
    assert_hf_layout(&sandbox);
}

#[test]
fn a_partial_download_left_by_an_earlier_run_is_resumed() {
    let hub = HubStandIn::start();
    let sandbox = Sandbox::new(&hub);
    let cut = 20 * MIB;
    // Every attempt of the first run is cut: it gives up and keeps what it has.
    hub.set(|b| {
        b.cuts_left = 3;
        b.cut_after = cut;
    });
    let first = sandbox.run(&["models", "pull", MODEL]);
    assert_eq!(first.status.code(), Some(2), "{}", describe(&first));
    let stderr = text(&first.stderr);
    assert!(stderr.contains("(3 attempts)"), "{stderr}");
    assert!(
        stderr.contains("hint: run the same command again: it resumes from the 60.00 MiB"),
        "{stderr}"
    );
    let sha = source().sha256.unwrap();
    let incomplete = sandbox.blobs().join(format!("{sha}.incomplete"));
    assert_eq!(std::fs::metadata(&incomplete).unwrap().len(), 3 * cut);
    assert!(
        !sandbox.snapshot().exists(),
        "nothing is linked before it is verified"
    );
    let starts: Vec<_> = hub.transfers().iter().map(range_start).collect();
    assert_eq!(starts, vec![None, Some(cut), Some(2 * cut)]);

    // The next run continues from the partial file.
    let second = sandbox.run(&["--json", "models", "pull", MODEL]);
    assert!(second.status.success(), "{}", describe(&second));
    let doc: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(doc["status"], "downloaded");
    assert_eq!(doc["resumed_from"], 3 * cut);
    let transfers = hub.transfers();
    assert_eq!(transfers.len(), 4);
    assert_eq!(range_start(&transfers[3]), Some(3 * cut));
    assert_hf_layout(&sandbox);
}

#[test]
fn wrong_bytes_are_refused_and_the_partial_file_removed() {
    let hub = HubStandIn::start();
    let sandbox = Sandbox::new(&hub);
    hub.set(|b| b.corrupt = true);

    let output = sandbox.run(&["models", "pull", MODEL]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    let sha = source().sha256.unwrap();
    let mut corrupted = model_bytes().as_ref().clone();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0xff;
    assert!(
        stderr.contains(&format!(
            "checksum mismatch for {FILE} from {}/",
            sandbox.endpoint
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "sha256 {}, expected {sha}",
            sha256_hex(&corrupted)
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("the partial download was removed"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    assert_eq!(
        sandbox.blob_names(),
        Vec::<String>::new(),
        "no blob, no partial"
    );
    assert!(!sandbox.snapshot().exists());

    let path = sandbox.run(&["models", "path", MODEL]);
    assert_eq!(path.status.code(), Some(1), "{}", describe(&path));

    // Once the endpoint serves the right file, the pull succeeds from scratch.
    hub.set(|b| b.corrupt = false);
    let retry = sandbox.run(&["models", "pull", MODEL]);
    assert!(retry.status.success(), "{}", describe(&retry));
    let transfers = hub.transfers();
    assert_eq!(range_start(transfers.last().unwrap()), None);
    assert_hf_layout(&sandbox);
}

#[test]
fn a_damaged_cached_file_is_downloaded_again() {
    let hub = HubStandIn::start();
    let sandbox = Sandbox::new(&hub);
    let first = sandbox.run(&["models", "pull", MODEL]);
    assert!(first.status.success(), "{}", describe(&first));
    // Damage the blob in place (same size), as a bad disk or an editor might.
    let blob = sandbox.blobs().join(source().sha256.unwrap());
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();

    let second = sandbox.run(&["models", "pull", MODEL]);
    assert!(second.status.success(), "{}", describe(&second));
    assert!(
        text(&second.stderr).contains("is damaged (sha256 "),
        "{}",
        describe(&second)
    );
    assert_eq!(hub.transfers().len(), 2);
    assert_hf_layout(&sandbox);
}

/// Progress that goes nowhere, for the library-level pull below.
struct Silent;

impl duo_selfhost::model_cache::PullProgress for Silent {
    fn begin(&self, _: duo_selfhost::model_cache::PullPhase, _: Option<u64>, _: u64) {}
    fn advance(&self, _: u64) {}
    fn note(&self, _: &str) {}
    fn end(&self) {}
}

#[test]
fn a_source_pinned_to_a_branch_without_a_checksum_is_resolved_and_checked_by_etag() {
    // Every catalog entry is pinned to a commit with known bytes; a user-added source (or a
    // quantiser that keeps no stable commit) may name only `main`. Pull resolves the branch to
    // its commit first and checks the bytes against the endpoint's X-Linked-Etag.
    static BRANCH_SOURCE: catalog::GgufSource = catalog::GgufSource {
        repo: "example-org/branch-pinned-GGUF",
        revision: "main",
        file: "model.Q4_1.gguf",
        quant: "Q4_1",
        bytes: None,
        sha256: None,
    };
    // The library reads HF_HOME from the process environment, which every test in this binary
    // shares: the body runs in a child process of the test binary with its own HF_HOME.
    let Some(hf_home) = support::in_child_process_with(
        "models::a_source_pinned_to_a_branch_without_a_checksum_is_resolved_and_checked_by_etag",
        "HF_HOME",
    ) else {
        return;
    };
    let hub = HubStandIn::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pulled = runtime
        .block_on(duo_selfhost::model_cache::pull(
            &BRANCH_SOURCE,
            &hub.endpoint,
            None,
            &Silent,
        ))
        .expect("pull of a branch-pinned source");

    let sha = source().sha256.unwrap();
    assert!(matches!(
        pulled.outcome,
        duo_selfhost::model_cache::PullOutcome::Downloaded { .. }
    ));
    assert_eq!(
        pulled.sha256.as_deref(),
        Some(sha),
        "checked against the endpoint's X-Linked-Etag"
    );
    let repo_dir = hf_home.join("hub/models--example-org--branch-pinned-GGUF");
    let snapshot = repo_dir
        .join("snapshots")
        .join(BRANCH_COMMIT)
        .join(BRANCH_SOURCE.file);
    assert_eq!(pulled.path, snapshot);
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        BRANCH_COMMIT
    );
    assert_eq!(
        std::fs::read_link(&snapshot).unwrap(),
        Path::new("../../blobs").join(sha)
    );
    assert_eq!(
        duo_selfhost::model_cache::snapshot_path(&BRANCH_SOURCE),
        snapshot
    );

    let seen = hub.seen();
    assert_eq!(
        seen[0].method, "HEAD",
        "the branch is resolved first: {seen:?}"
    );
    assert!(seen[0].path.contains("/resolve/main/"), "{seen:?}");
    assert!(
        seen[1].path.contains(&format!("/resolve/{BRANCH_COMMIT}/")),
        "the download asks for the commit, not the moving branch: {seen:?}"
    );

    let again = runtime
        .block_on(duo_selfhost::model_cache::pull(
            &BRANCH_SOURCE,
            &hub.endpoint,
            None,
            &Silent,
        ))
        .expect("second pull");
    assert!(matches!(
        again.outcome,
        duo_selfhost::model_cache::PullOutcome::AlreadyCached
    ));
    assert_eq!(
        hub.seen().len(),
        seen.len(),
        "the cached pull made no request"
    );
}

#[test]
fn a_file_the_endpoint_does_not_have_is_a_clear_error() {
    let hub = HubStandIn::start();
    let sandbox = Sandbox::new(&hub);
    hub.set(|b| b.not_found = true);
    let output = sandbox.run(&["models", "pull", MODEL]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("answered 404 Not Found"), "{stderr}");
    assert!(
        stderr.contains("hint: the file is not at that address: check HF_ENDPOINT"),
        "{stderr}"
    );
    assert_eq!(hub.seen().len(), 1, "a 404 is not retried");
    assert_eq!(
        sandbox.blob_names(),
        Vec::<String>::new(),
        "no empty partial left behind"
    );
}

#[test]
fn missing_and_unknown_models_name_the_fix() {
    let hub = HubStandIn::start();
    let sandbox = Sandbox::new(&hub);

    let path = sandbox.run(&["models", "path", MODEL]);
    assert_eq!(path.status.code(), Some(1), "{}", describe(&path));
    let stderr = text(&path.stderr);
    assert!(
        stderr.contains("smollm2-135m is not in the local model cache"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: duo-selfhost models pull smollm2-135m"),
        "{stderr}"
    );

    for args in [
        &["models", "pull", "no-such-model"][..],
        &["models", "path", "no-such-model"][..],
    ] {
        let out = sandbox.run(args);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("`no-such-model` is not a model duo-selfhost knows"),
            "{stderr}"
        );
        assert!(stderr.contains("duo-selfhost models list"), "{stderr}");
    }
    assert!(hub.seen().is_empty(), "nothing was requested");
}

#[test]
fn a_model_without_a_local_gguf_says_where_it_is_served() {
    let hub = HubStandIn::start();
    let sandbox = Sandbox::new(&hub);
    let remote: Vec<_> = catalog::MODELS
        .iter()
        .filter(|m| m.gguf.is_none() || !m.platforms.contains(&catalog::Platform::Local))
        .collect();
    assert!(
        !remote.is_empty(),
        "the catalog has models served only elsewhere (Claude 3.5 Sonnet on Bedrock)"
    );
    for model in remote {
        for command in ["pull", "path"] {
            let out = sandbox.run(&["models", command, model.name]);
            assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
            let stderr = text(&out.stderr);
            assert!(
                stderr.contains(&format!(
                    "{} cannot be served locally: it is served by",
                    model.name
                )),
                "{stderr}"
            );
        }
    }
    assert!(hub.seen().is_empty(), "nothing was requested");
}

#[test]
fn models_list_prints_the_catalog() {
    let hub = HubStandIn::start();
    let sandbox = Sandbox::new(&hub);
    let table = sandbox.run(&["models", "list"]);
    assert!(table.status.success(), "{}", describe(&table));
    let stdout = text(&table.stdout);
    for header in [
        "NAME",
        "ALIASES",
        "FAMILY",
        "STATUS",
        "COMPLETION",
        "GENERATION",
        "CHAT",
        "PLATFORMS",
        "GGUF",
        "FIM",
        "CACHED",
    ] {
        assert!(stdout.contains(header), "{header} missing:\n{stdout}");
    }
    let row = stdout
        .lines()
        .find(|l| l.contains("smollm2-135m"))
        .expect("a row for the demo model");
    let cells: Vec<&str> = row
        .split('│')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        vec![
            "smollm2-135m",
            "smollm2",
            "smollm2",
            "demo",
            "✔",
            "✔",
            "✔",
            "local",
            "Q4_1 93.81 MiB",
            "none (emulated)",
            "-"
        ]
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with('│')).count(),
        catalog::MODELS.len() + 1
    );

    let json = sandbox.run(&["--json", "models", "list"]);
    assert!(json.status.success(), "{}", describe(&json));
    let models: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one document");
    let models = models.as_array().expect("an array");
    assert_eq!(models.len(), catalog::MODELS.len());
    for model in models {
        for field in [
            "name",
            "aliases",
            "family",
            "status",
            "code_completion",
            "code_generation",
            "chat",
            "platforms",
            "gguf",
            "fim_format",
            "cached",
        ] {
            assert!(model.get(field).is_some(), "{field} missing in {model}");
        }
    }
    let smollm = models.iter().find(|m| m["name"] == MODEL).unwrap();
    assert_eq!(smollm["cached"], false);
    assert_eq!(smollm["gguf"]["sha256"], source().sha256.unwrap());
    assert_eq!(smollm["gguf"]["bytes"], source().bytes.unwrap());
    assert_eq!(smollm["fim_format"], "none");
}

#[test]
fn fetch_test_model_script_uses_the_same_layout() {
    // The script must agree with model_cache on the repository, revision, file and sha256.
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/fetch-test-model"
    ))
    .unwrap();
    let src = source();
    for (key, value) in [
        ("REPO", src.repo),
        ("REVISION", src.revision),
        ("FILE", src.file),
        ("SHA256", src.sha256.unwrap()),
    ] {
        assert!(
            script.contains(&format!("{key}=\"{value}\"")),
            "scripts/fetch-test-model's {key} is not the catalog's {value}"
        );
    }
    assert!(script.contains("ln -sf \"../../blobs/$SHA256\" \"$snapshot\""));
}

const TOKEN: &str = "glpat-register-admin";

/// `models register NAME --endpoint URL` against `gitlab`, plus `extra`.
fn register(
    sandbox: &Home,
    gitlab: &FakeGitlab,
    name: &str,
    endpoint: &str,
    extra: &[&str],
) -> support::Run {
    run(sandbox
        .command()
        .args(["models", "register", name, "--endpoint", endpoint])
        .args(["--gitlab-url", &gitlab.url, "--gitlab-token", TOKEN])
        .args(extra))
}

fn provider(gitlab: &FakeGitlab, feature: &str) -> (String, Option<String>) {
    gitlab.feature_setting(feature)
}

fn self_hosted_on(name: &str) -> (String, Option<String>) {
    ("self_hosted".to_string(), Some(name.to_string()))
}

#[test]
fn register_creates_the_model_checks_it_points_features_then_updates_on_a_rerun() {
    let serve = Serve::start();
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.3.0-ee").token(TOKEN));
    let sandbox = Home::new();
    let served = ["--served-model-name", Serve::SERVED_NAME];
    let first = register(&sandbox, &gitlab, "smollm2", &serve.endpoint(), &served).expect_code(0);
    assert!(
        first
            .stderr
            .contains("created self-hosted model smollm2-135m"),
        "{}",
        first.stderr
    );
    assert!(
        first
            .stderr
            .contains("GitLab's connection check: Successfully connected"),
        "{}",
        first.stderr
    );
    // The schema was asked which families it takes, and the version's answer decided: GENERAL.
    let asked = gitlab.graphql_calls("__type");
    assert!(
        asked
            .iter()
            .any(|v| v["name"] == "AiAcceptedSelfHostedModels"),
        "{asked:?}"
    );
    let created = gitlab.graphql_calls("aiSelfHostedModelCreate");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["input"]["model"], "GENERAL");
    assert_eq!(
        created[0]["input"]["identifier"],
        "custom_openai/smollm2-135m"
    );
    assert_eq!(created[0]["input"]["endpoint"], serve.endpoint());
    let models = gitlab.self_hosted_models();
    assert_eq!(models.len(), 1);
    // The demo model is fit for completion, generation and chat: every stable feature.
    for feature in [
        "code_completions",
        "code_generations",
        "duo_chat",
        "duo_chat_fix_code",
    ] {
        assert_eq!(
            provider(&gitlab, feature),
            self_hosted_on("smollm2-135m"),
            "{feature}"
        );
    }
    assert_eq!(provider(&gitlab, "duo_chat_troubleshoot_job").0, "vendored");

    // A rerun with a new endpoint spelling and a key updates the same model: no duplicate.
    let endpoint = format!("{}/", serve.endpoint());
    let again = register(
        &sandbox,
        &gitlab,
        "smollm2",
        &endpoint,
        &[&served[..], &["--api-key", "sk-rerun"]].concat(),
    )
    .expect_code(0);
    assert!(
        again
            .stderr
            .contains("updated self-hosted model smollm2-135m"),
        "{}",
        again.stderr
    );
    assert_eq!(gitlab.graphql_calls("aiSelfHostedModelCreate").len(), 1);
    let updated = gitlab.graphql_calls("aiSelfHostedModelUpdate");
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["input"]["id"], models[0].gid());
    let models = gitlab.self_hosted_models();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].endpoint, endpoint);
    assert_eq!(models[0].api_key.as_deref(), Some("sk-rerun"));

    // The same again changes nothing.
    let same = register(&sandbox, &gitlab, "smollm2", &endpoint, &served).expect_code(0);
    assert!(
        same.stderr.contains("already registered as asked"),
        "{}",
        same.stderr
    );
    assert_eq!(gitlab.graphql_calls("aiSelfHostedModelUpdate").len(), 1);
}

#[test]
fn a_failed_connection_check_keeps_the_model_and_leaves_the_features_alone() {
    let serve = Serve::start();
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.3.0-ee").token(TOKEN));
    let sandbox = Home::new();
    // An identifier the endpoint does not serve.
    let wrong = register(
        &sandbox,
        &gitlab,
        "smollm2",
        &serve.endpoint(),
        &["--served-model-name", "not-served"],
    )
    .expect_code(1);
    assert!(
        wrong
            .stderr
            .contains("connection check for smollm2-135m failed"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("the model not-served is not served"),
        "{}",
        wrong.stderr
    );
    assert!(wrong.stderr.contains("hint:"), "{}", wrong.stderr);
    assert_eq!(gitlab.self_hosted_models().len(), 1);
    assert_eq!(provider(&gitlab, "code_completions").0, "vendored");
    assert!(gitlab.graphql_calls("aiFeatureSettingUpdate").is_empty());

    // Nothing listening: GitLab's message says so.
    let closed = format!("http://127.0.0.1:{}/v1", support::free_port());
    let down = register(
        &sandbox,
        &gitlab,
        "smollm2",
        &closed,
        &["--served-model-name", Serve::SERVED_NAME],
    )
    .expect_code(1);
    assert!(down.stderr.contains("could not reach"), "{}", down.stderr);
    assert_eq!(provider(&gitlab, "code_completions").0, "vendored");

    // Fixed: the check passes and the features follow.
    register(
        &sandbox,
        &gitlab,
        "smollm2",
        &serve.endpoint(),
        &["--served-model-name", Serve::SERVED_NAME],
    )
    .expect_code(0);
    assert_eq!(
        provider(&gitlab, "code_completions"),
        self_hosted_on("smollm2-135m")
    );
}

#[test]
fn a_completion_model_and_a_chat_model_each_get_their_own_features() {
    let serve = Serve::start();
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.2.1-ee").token(TOKEN));
    let sandbox = Home::new();
    let served = ["--served-model-name", Serve::SERVED_NAME];
    let completion =
        register(&sandbox, &gitlab, "codestral", &serve.endpoint(), &served).expect_code(0);
    assert!(
        completion
            .stderr
            .contains("code completions, code generations"),
        "{}",
        completion.stderr
    );
    let chat = register(&sandbox, &gitlab, "mistral-7b", &serve.endpoint(), &served).expect_code(0);
    // Code generation stays where it is; the chat model takes chat and its slash commands.
    assert!(
        chat.stderr
            .contains("code generations stays on codestral-22b"),
        "{}",
        chat.stderr
    );
    assert_eq!(
        provider(&gitlab, "code_completions"),
        self_hosted_on("codestral-22b")
    );
    assert_eq!(
        provider(&gitlab, "code_generations"),
        self_hosted_on("codestral-22b")
    );
    for feature in [
        "duo_chat",
        "duo_chat_explain_code",
        "duo_chat_write_tests",
        "duo_chat_refactor_code",
        "duo_chat_fix_code",
    ] {
        assert_eq!(
            provider(&gitlab, feature),
            self_hosted_on("mistral-7b-instruct"),
            "{feature}"
        );
    }
    let families: Vec<String> = gitlab
        .self_hosted_models()
        .iter()
        .map(|m| m.model.clone())
        .collect();
    assert_eq!(families, vec!["CODESTRAL", "MISTRAL"]);
    // Named in --features, a feature moves.
    register(
        &sandbox,
        &gitlab,
        "mistral-7b",
        &serve.endpoint(),
        &[&served[..], &["--features", "code_generations"]].concat(),
    )
    .expect_code(0);
    assert_eq!(
        provider(&gitlab, "code_generations"),
        self_hosted_on("mistral-7b-instruct")
    );
    assert_eq!(
        provider(&gitlab, "code_completions"),
        self_hosted_on("codestral-22b")
    );
}

#[test]
fn families_and_features_gitlab_would_refuse_are_refused_first() {
    let sandbox = Home::new();
    let endpoint = "http://127.0.0.1:9/v1";
    // 17.9's enum has no GENERAL: the demo model is refused with the list 17.9 knows.
    let old = FakeGitlab::start(FakeGitlabConfig::new("17.9.0-ee").token(TOKEN));
    let out = register(&sandbox, &old, "smollm2", endpoint, &[]).expect_code(1);
    assert!(out.stderr.contains("18.3"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("MISTRAL, MIXTRAL, CODEGEMMA, CODESTRAL, CODELLAMA, DEEPSEEKCODER"),
        "{}",
        out.stderr
    );
    let out = register(
        &sandbox,
        &old,
        "smollm2",
        endpoint,
        &["--family", "claude_3", "--features", "duo_chat"],
    )
    .expect_code(1);
    assert!(
        out.stderr
            .contains("does not know the model family CLAUDE_3"),
        "{}",
        out.stderr
    );
    // A chat feature on a code-only family, a beta feature without --accept-beta, no feature.
    let out = register(
        &sandbox,
        &old,
        "codegemma-2b",
        endpoint,
        &["--features", "duo_chat"],
    )
    .expect_code(1);
    assert!(
        out.stderr
            .contains("CODEGEMMA family is incompatible with the duo chat feature"),
        "{}",
        out.stderr
    );
    let out = register(
        &sandbox,
        &old,
        "codestral",
        endpoint,
        &["--features", "generate_commit_message"],
    )
    .expect_code(1);
    assert!(
        out.stderr.contains("--accept-beta") && out.stderr.contains("Testing Agreement"),
        "{}",
        out.stderr
    );
    let out = register(&sandbox, &old, "codestral", endpoint, &["--features"]).expect_code(1);
    assert!(out.stderr.contains("names no feature"), "{}", out.stderr);
    // Nothing was created by any of these.
    assert!(old.self_hosted_models().is_empty());
    assert!(old.graphql_calls("aiSelfHostedModelCreate").is_empty());
}

#[test]
fn a_non_admin_token_is_refused_with_the_fix() {
    let sandbox = Home::new();
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.3.0-ee").token(TOKEN).non_admin());
    let out = register(&sandbox, &gitlab, "codestral", "http://127.0.0.1:9/v1", &[]).expect_code(1);
    assert!(
        out.stderr.contains("don't have permission"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("administrator's token"),
        "{}",
        out.stderr
    );
    assert!(gitlab.self_hosted_models().is_empty());
    // Without any token, the error says what to pass before calling GitLab.
    let out = run(sandbox
        .command()
        .args([
            "models",
            "register",
            "codestral",
            "--endpoint",
            "http://127.0.0.1:9/v1",
        ])
        .args(["--gitlab-url", &gitlab.url]))
    .expect_code(1);
    assert!(out.stderr.contains("--gitlab-token"), "{}", out.stderr);
}
