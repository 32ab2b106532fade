//! The secrets audit (issue 9, item 4): every command runs with a GitLab token, a model API key
//! (which `models register` sends to GitLab in its GraphQL body),
//! a serve API key and a Hugging Face token set, as flags where the command has them and always
//! as environment variables, at `-vvv` (plain, `--json`, and with `RUST_LOG=trace` turning on
//! every library's logging), against local fixtures. The audit fails if any secret, or any
//! 12-character piece of one, appears in stdout, stderr or any file the command wrote.
//!
//! The command list is data: adding a command is one line in `CASES`.

use crate::support;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::distr::Alphanumeric;
use rand::Rng;
use support::gitlab_fixture::{Failure, FakeGitlab, FakeGitlabConfig};

/// How a case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Runs to completion (killed after `ONE_SHOT_LIMIT`).
    OneShot,
    /// A server: started, sent requests with the right key, a wrong key and none, then stopped
    /// with SIGTERM.
    Server,
}

/// What the fake GitLab does for a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GitlabMode {
    /// Accepts the token: the happy path.
    Accepts,
    /// Answers 401 to every API call: the error path that might echo the token.
    Rejects,
}

use GitlabMode::{Accepts, Rejects};
use Kind::{OneShot, Server};

/// Every command line the audit runs. Placeholders: `{gitlab_url}`, `{gitlab_token}`,
/// `{model_url}` (an OpenAI-style endpoint that answers 404), `{model_key}`, `{api_key}`,
/// `{gitlab_rb}` (a copy of the omnibus template), `{state}`, `{home}`, `{tags}`, `{port}`,
/// `{model}` (the demo GGUF). Global flags (`-vvv`, `--json`, `--yes`) are added by the audit.
#[rustfmt::skip]
const CASES: &[(Kind, GitlabMode, &[&str])] = &[
    (OneShot, Accepts, &["models", "list"]),
    (OneShot, Accepts, &["models", "path", "smollm2-135m"]),
    (OneShot, Accepts, &["models", "pull", "smollm2-135m"]),
    (OneShot, Accepts, &["gitlab-rb", "show", "--file", "{gitlab_rb}"]),
    (OneShot, Accepts, &["gitlab-rb", "set", "--file", "{gitlab_rb}", "--dry-run", "AI_GATEWAY_URL=http://aigw.example.com:5052"]),
    (OneShot, Accepts, &["gitlab-rb", "set", "--file", "{gitlab_rb}", "AI_GATEWAY_URL=http://aigw.example.com:5052"]),
    (OneShot, Accepts, &["gitlab-rb", "unset", "--file", "{gitlab_rb}", "AI_GATEWAY_URL"]),
    (OneShot, Accepts, &["image-tag", "--gitlab-version", "17.5.0", "--available-tags", "{tags}"]),
    (OneShot, Accepts, &["image-tag", "--gitlab-version", "17.5.0", "--offline"]),
    (OneShot, Accepts, &["completions", "bash"]),
    (OneShot, Accepts, &["generate-assets", "--out-dir", "{home}/assets"]),
    (OneShot, Accepts, &["doctor", "--gitlab-url", "{gitlab_url}", "--gitlab-token", "{gitlab_token}", "--gitlab-rb", "{gitlab_rb}", "--model-endpoint", "{model_url}", "--model-api-key", "{model_key}", "--model-identifier", "custom_openai/codestral", "--state-file", "{state}", "--timeout", "3"]),
    (OneShot, Rejects, &["doctor", "--gitlab-url", "{gitlab_url}", "--gitlab-token", "{gitlab_token}", "--gitlab-rb", "{gitlab_rb}", "--model-endpoint", "{model_url}", "--model-api-key", "{model_key}", "--state-file", "{state}", "--timeout", "3"]),
    (OneShot, Accepts, &["doctor", "--gitlab-url", "{gitlab_url}", "--gitlab-rb", "{gitlab_rb}", "--model-endpoint", "{model_url}", "--state-file", "{state}", "--timeout", "3"]),
    (OneShot, Accepts, &["install", "--dry-run", "--gitlab-url", "{gitlab_url}", "--gitlab-token", "{gitlab_token}", "--gitlab-rb", "{gitlab_rb}", "--gateway-host", "aigw.example.com", "--model-endpoint", "{model_url}", "--env", "AIGW_SELF_SIGNED_JWT__SIGNING_KEY={model_key}", "--state-file", "{state}"]),
    (OneShot, Rejects, &["install", "--dry-run", "--gitlab-url", "{gitlab_url}", "--gitlab-token", "{gitlab_token}", "--gitlab-rb", "{gitlab_rb}", "--gateway-host", "aigw.example.com", "--model-endpoint", "{model_url}", "--state-file", "{state}"]),
    (OneShot, Accepts, &["install", "--dry-run", "--target", "helm", "--gitlab-url", "{gitlab_url}", "--gitlab-token", "{gitlab_token}", "--gitlab-rb", "{gitlab_rb}", "--gateway-host", "aigw.example.com", "--model-endpoint", "{model_url}", "--env", "AIGW_SELF_SIGNED_JWT__SIGNING_KEY={model_key}", "--state-file", "{state}", "--values-out", "{home}/values.yaml"]),
    (OneShot, Accepts, &["models", "register", "codestral", "--endpoint", "{model_url}", "--api-key", "{model_key}", "--gitlab-url", "{gitlab_url}", "--gitlab-token", "{gitlab_token}"]),
    (OneShot, Rejects, &["models", "register", "codestral", "--endpoint", "{model_url}", "--api-key", "{model_key}", "--gitlab-url", "{gitlab_url}", "--gitlab-token", "{gitlab_token}"]),
    (OneShot, Accepts, &["upgrade", "--dry-run", "--gitlab-url", "{gitlab_url}", "--gitlab-token", "{gitlab_token}", "--gitlab-rb", "{gitlab_rb}", "--state-file", "{state}"]),
    (OneShot, Rejects, &["upgrade", "--check", "--gitlab-url", "{gitlab_url}", "--gitlab-rb", "{gitlab_rb}", "--state-file", "{state}"]),
    (Server, Accepts, &["serve", "--model", "{model}", "--port", "{port}", "--api-key", "{api_key}", "--threads", "1", "--ctx-size", "2048"]),
    (Server, Accepts, &["serve", "--model", "{model}", "--port", "{port}", "--threads", "1", "--ctx-size", "2048"]),
];

/// How long a one-shot command may run before the audit kills it (and still scans its output).
const ONE_SHOT_LIMIT: Duration = Duration::from_secs(60);

/// The ways each case is run: extra global flags and extra environment.
type Mode = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const MODES: &[Mode] = &[
    ("-vvv", &["-vvv"], &[]),
    ("-vvv --json", &["-vvv", "--json"], &[]),
    ("RUST_LOG=trace", &["-vvv"], &[("RUST_LOG", "trace")]),
];

struct Secrets {
    gitlab_token: String,
    model_key: String,
    api_key: String,
    hf_token: String,
    /// A key a client sends to `serve` that is not the right one.
    wrong_key: String,
}

fn random_secret(prefix: &str) -> String {
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

impl Secrets {
    fn new() -> Self {
        Secrets {
            gitlab_token: random_secret("glpat-"),
            model_key: random_secret("sk-model-"),
            api_key: random_secret("duo-serve-"),
            hf_token: random_secret("hf_"),
            wrong_key: random_secret("wrong-"),
        }
    }

    fn all(&self) -> [(&'static str, &str); 5] {
        [
            ("GitLab token", &self.gitlab_token),
            ("model API key", &self.model_key),
            ("serve API key", &self.api_key),
            ("HF token", &self.hf_token),
            ("wrong serve key", &self.wrong_key),
        ]
    }
}

/// Where a secret (or a 12-character piece of its random part) occurs in `haystack`.
fn find_leak(haystack: &[u8], secrets: &Secrets) -> Option<(&'static str, usize)> {
    for (name, secret) in secrets.all() {
        let random_part = &secret.as_bytes()[secret.len() - 32..];
        for window in random_part.windows(12) {
            if let Some(at) = haystack.windows(window.len()).position(|w| w == window) {
                return Some((name, at));
            }
        }
    }
    None
}

fn context(haystack: &[u8], at: usize) -> String {
    let start = at.saturating_sub(120);
    let end = (at + 120).min(haystack.len());
    String::from_utf8_lossy(&haystack[start..end]).into_owned()
}

fn path_with_stand_ins() -> String {
    let stand_ins = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stand-ins");
    format!(
        "{}:{}",
        stand_ins.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The demo GGUF from the machine's model cache (before the audit points HF_HOME elsewhere).
fn model_path() -> PathBuf {
    support::test_model()
}

fn template() -> PathBuf {
    support::omnibus_template()
}

/// One run's private directory, with the input files the placeholders name.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "config", "cache", "hf", "assets", "tmp", "cluster"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::copy(template(), dir.path().join("gitlab.rb")).unwrap();
        std::fs::write(
            dir.path().join("tags.txt"),
            "self-hosted-v17.5.0-ee\nself-hosted-v17.5.1-ee\n",
        )
        .unwrap();
        Sandbox { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary under test with this run's private dirs ([`support::duo_command`]).
    fn command(&self) -> Command {
        support::duo_command(self.path())
    }

    fn fill(&self, arg: &str, vars: &[(&str, String)]) -> String {
        let mut out = arg.to_string();
        for (name, value) in vars {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        assert!(!out.contains('{'), "unknown placeholder in {arg}");
        out
    }

    /// Every file under the sandbox, as (path, bytes).
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() {
                    let mut bytes = Vec::new();
                    if let Ok(mut f) = std::fs::File::open(&path) {
                        let _ = f.read_to_end(&mut bytes);
                    }
                    out.push((path, bytes));
                }
            }
        }
        out
    }
}

/// What one run produced.
struct Outcome {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// For a server: whether it became healthy and answered the requests.
    served: bool,
}

fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `serve` requests with the right key, a wrong key and none (and the wrong key in the body).
fn exercise_server(port: u16, secrets: &Secrets, child: &mut Child) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _in_runtime = runtime.enter();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let health = runtime.block_on(client.get(format!("{base}/health")).send());
        if health.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let body = serde_json::json!({
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 4,
    });
    let hostile = format!("{{\"model\": \"{}\", \"messages\": 7}}", secrets.wrong_key);
    runtime.block_on(async {
        for key in [
            Some(secrets.api_key.as_str()),
            Some(&secrets.wrong_key),
            None,
        ] {
            for path in ["/v1/models", "/v1/chat/completions", "/v1/completions"] {
                let mut request = if path == "/v1/models" {
                    client.get(format!("{base}{path}"))
                } else {
                    client.post(format!("{base}{path}")).json(&body)
                };
                if let Some(key) = key {
                    request = request.bearer_auth(key);
                }
                if let Ok(response) = request.send().await {
                    let _ = response.bytes().await;
                }
            }
            let mut request = client
                .post(format!("{base}/v1/chat/completions"))
                .header("content-type", "application/json")
                .body(hostile.clone());
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            if let Ok(response) = request.send().await {
                let _ = response.bytes().await;
            }
        }
    });
    true
}

fn run_case(
    kind: Kind,
    args: &[String],
    (_, mode_args, mode_env): &Mode,
    sandbox: &Sandbox,
    gitlab: &FakeGitlab,
    secrets: &Secrets,
    port: u16,
) -> Outcome {
    let stdout_path = sandbox.path().join("stdout.capture");
    let stderr_path = sandbox.path().join("stderr.capture");
    let mut cmd = sandbox.command();
    cmd.args(*mode_args)
        .arg("--yes")
        .arg("--no-progress")
        .args(args)
        .current_dir(sandbox.path())
        .env("HF_HOME", sandbox.path().join("hf"))
        .env("HF_ENDPOINT", &gitlab.url)
        // helm and kubectl stand-ins first on PATH; they log their arguments in the sandbox,
        // so a secret passed on a command line (visible in `ps`) is caught too.
        .env("PATH", path_with_stand_ins())
        .env("STANDIN_STATE", sandbox.path().join("cluster"))
        .env("STANDIN_LOG", sandbox.path().join("stand-ins.log"))
        .env("TMPDIR", sandbox.path().join("tmp"))
        .env("GITLAB_TOKEN", &secrets.gitlab_token)
        .env("DUO_SELFHOST_MODEL_API_KEY", &secrets.model_key)
        .env("DUO_SELFHOST_API_KEY", &secrets.api_key)
        .env("HF_TOKEN", &secrets.hf_token)
        .env_remove("RUST_LOG")
        .env_remove("DUO_SELFHOST_GITLAB_RB")
        .env_remove("DUO_SELFHOST_STATE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for (k, v) in *mode_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary starts");
    let (code, served) = match kind {
        OneShot => (wait_with_limit(&mut child, ONE_SHOT_LIMIT), false),
        Server => {
            let served = exercise_server(port, secrets, &mut child);
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            (wait_with_limit(&mut child, Duration::from_secs(30)), served)
        }
    };
    let stdout = std::fs::read(&stdout_path).unwrap();
    let stderr = std::fs::read(&stderr_path).unwrap();
    std::fs::remove_file(&stdout_path).unwrap();
    std::fs::remove_file(&stderr_path).unwrap();
    Outcome {
        code,
        stdout,
        stderr,
        served,
    }
}

#[test]
fn no_command_prints_or_writes_a_secret() {
    let secrets = Secrets::new();
    let model = model_path();
    let mut leaks = Vec::new();
    let mut runs = 0;
    let mut scanned_bytes = 0usize;
    let mut summary = Vec::new();

    for (kind, gitlab_mode, case) in CASES {
        for mode in MODES {
            let mode_name = mode.0;
            let config = FakeGitlabConfig::new("17.6.0-ee").token(&secrets.gitlab_token);
            let gitlab = FakeGitlab::start(config);
            if *gitlab_mode == Rejects {
                gitlab.set_failure(Failure::Unauthorized);
            }
            let sandbox = Sandbox::new();
            let port = free_port();
            let vars = [
                ("gitlab_url", gitlab.url.clone()),
                ("gitlab_token", secrets.gitlab_token.clone()),
                ("model_url", format!("{}/v1", gitlab.url)),
                ("model_key", secrets.model_key.clone()),
                ("api_key", secrets.api_key.clone()),
                (
                    "gitlab_rb",
                    sandbox.path().join("gitlab.rb").display().to_string(),
                ),
                (
                    "state",
                    sandbox.path().join("state.toml").display().to_string(),
                ),
                ("home", sandbox.path().display().to_string()),
                (
                    "tags",
                    sandbox.path().join("tags.txt").display().to_string(),
                ),
                ("port", port.to_string()),
                ("model", model.display().to_string()),
            ];
            let args: Vec<String> = case.iter().map(|a| sandbox.fill(a, &vars)).collect();
            let shown = case.join(" ");
            let outcome = run_case(*kind, &args, mode, &sandbox, &gitlab, &secrets, port);
            runs += 1;

            let stderr_text = String::from_utf8_lossy(&outcome.stderr);
            assert!(
                !stderr_text.contains("panicked at"),
                "`{shown}` ({mode_name}) panicked:\n{stderr_text}"
            );
            let mut sources = vec![
                ("stdout".to_string(), outcome.stdout.clone()),
                ("stderr".to_string(), outcome.stderr.clone()),
            ];
            for (path, bytes) in sandbox.files() {
                sources.push((path.display().to_string(), bytes));
            }
            for (source, bytes) in &sources {
                scanned_bytes += bytes.len();
                if let Some((name, at)) = find_leak(bytes, &secrets) {
                    leaks.push(format!(
                        "`{shown}` ({mode_name}): the {name} is in {source}: …{}…",
                        context(bytes, at)
                    ));
                }
            }
            // Which secrets reached the fixture (proof the audit exercised them).
            let sent: Vec<&str> = secrets
                .all()
                .into_iter()
                .filter(|(_, secret)| {
                    gitlab.requests().iter().any(|r| {
                        [&r.private_token, &r.authorization]
                            .into_iter()
                            .flatten()
                            .any(|h| h.contains(secret))
                            || r.body.contains(secret)
                    })
                })
                .map(|(name, _)| name)
                .collect();
            // register sends the model's key to GitLab (to store as a secret and for the
            // connection check): the audit must have seen it go, or it proves nothing.
            if case.starts_with(&["models", "register"]) && *gitlab_mode == Accepts {
                assert!(
                    sent.contains(&"model API key"),
                    "`{shown}` ({mode_name}) never sent the model API key to GitLab"
                );
            }
            summary.push(format!(
                "{:<70} {:<15} exit {:>4}  out {:>6} B  err {:>7} B  sent: {}{}",
                truncate(&shown, 70),
                mode_name,
                outcome
                    .code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "kill".into()),
                outcome.stdout.len(),
                outcome.stderr.len(),
                if sent.is_empty() {
                    "-".to_string()
                } else {
                    sent.join(", ")
                },
                if *kind == Server {
                    format!("  served: {}", outcome.served)
                } else {
                    String::new()
                },
            ));
        }
    }

    println!(
        "secrets audit: {runs} runs, {scanned_bytes} bytes scanned, {} leaks",
        leaks.len()
    );
    for line in &summary {
        println!("{line}");
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let cut: String = text.chars().take(width - 1).collect();
        format!("{cut}…")
    }
}
