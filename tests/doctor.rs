//! `duo-selfhost doctor` end to end: every failure of the troubleshooting table built for real
//! (stand-in servers on 127.0.0.1, a self-signed HTTPS gateway made with the openssl CLI, a
//! gateway container on the real Docker Engine), and doctor naming it with the right id and hint.

use crate::support;
use crate::support::stub_server;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use stub_server::{gateway, openai_model, Reply, StubServer};
use support::doctor_chain::{
    gitlab_host, green_status, standin_image, ChainSetup, Container, GreenChain, Serve,
};
use support::gitlab_fixture::{FakeGitlab, FakeGitlabConfig};

const SECRET_KEY: &str = "sk-doctor-test-secret-4711";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }

    fn check(&self, id: &str) -> Value {
        self.json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no check {id} in:\n{}", self.stdout))
    }

    fn status(&self, id: &str) -> String {
        self.check(id)["status"].as_str().unwrap().to_string()
    }

    fn hint(&self, id: &str) -> String {
        self.check(id)["hint"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn message(&self, id: &str) -> String {
        self.check(id)["message"].as_str().unwrap().to_string()
    }

    fn assert_status(&self, id: &str, status: &str) {
        assert_eq!(
            self.status(id),
            status,
            "{id}: {}\nstdout:\n{}\nstderr:\n{}",
            self.message(id),
            self.stdout,
            self.stderr
        );
    }
}

/// Runs doctor in a private HOME with no state file, no gitlab.rb and no envdir of the machine.
fn doctor(args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    doctor_in(home.path(), args)
}

fn doctor_in(home: &Path, args: &[&str]) -> Run {
    doctor_in_env(home, args, &[])
}

fn doctor_in_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = support::duo_command(home);
    cmd.arg("--color").arg("never").args(args);
    cmd.envs(env.iter().copied());
    let start = Instant::now();
    let out = cmd.output().expect("run duo-selfhost");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// A port that nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn model_args<'a>(endpoint: &'a str, identifier: &'a str) -> Vec<&'a str> {
    vec![
        "--json",
        "doctor",
        "--only",
        "model",
        "--model-endpoint",
        endpoint,
        "--model-identifier",
        identifier,
    ]
}

#[test]
fn a_working_model_passes_and_gets_the_gateways_codestral_request() {
    let model = openai_model("codestral", "return a + b");
    let endpoint = format!("{}/v1", model.url());
    let run = doctor(&model_args(&endpoint, "custom_openai/codestral"));
    for id in ["model.endpoint", "model.models", "model.chat", "model.fim"] {
        run.assert_status(id, "ok");
    }
    run.assert_status("model.family", "ok");
    assert!(run.message("model.family").contains("GitLab-approved"));
    assert_eq!(run.code, 0);

    let requests = model.requests();
    let fim = requests
        .iter()
        .find(|r| r.body.contains("[SUFFIX]"))
        .expect("a FIM request reached the model");
    assert_eq!(fim.path, "/v1/chat/completions");
    let body: Value = serde_json::from_str(&fim.body).unwrap();
    assert_eq!(body["model"], "codestral");
    assert_eq!(body["temperature"], 0.32);
    // The gateway asks for 64 tokens; the probe needs fewer to see code come back.
    assert_eq!(body["max_tokens"], 16);
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.starts_with("<s>[SUFFIX]") && user.contains("[PREFIX]def add"),
        "{user}"
    );
    let chat = requests
        .iter()
        .find(|r| r.body.contains("\"max_tokens\":1"))
        .expect("a one-token chat");
    assert_eq!(chat.path, "/v1/chat/completions");
}

/// Against a local `duo-selfhost serve`, model.models says where the model runs (its
/// /v1/models entry carries the backend and the offloaded layers).
#[cfg(not(any(feature = "cuda", feature = "vulkan", feature = "metal")))]
#[test]
fn a_local_serve_reports_its_backend_in_model_models() {
    let serve = Serve::start();
    let endpoint = serve.endpoint();
    let identifier = format!("custom_openai/{}", Serve::SERVED_NAME);
    let run = doctor(&model_args(&endpoint, &identifier));
    run.assert_status("model.models", "ok");
    let message = run.message("model.models");
    assert!(
        message.contains("runs on the CPU (0/31 layers offloaded)"),
        "{message}"
    );
    // A server that lists no backend (vLLM, a stub) gets no such words.
    let model = openai_model("codestral", "x");
    let run = doctor(&model_args(
        &format!("{}/v1", model.url()),
        "custom_openai/codestral",
    ));
    run.assert_status("model.models", "ok");
    assert!(!run.message("model.models").contains("runs on"));
}

#[test]
fn model_endpoint_without_v1() {
    let model = openai_model("codestral", "x");
    let run = doctor(&model_args(&model.url(), "custom_openai/codestral"));
    run.assert_status("model.endpoint", "fail");
    assert!(run
        .hint("model.endpoint")
        .contains(&format!("{}/v1", model.url())));
    // The served-name check strips /v1 itself, unlike GitLab's rake task, so it still passes.
    run.assert_status("model.models", "ok");
    run.assert_status("model.chat", "skip");
    assert!(run
        .message("model.chat")
        .starts_with("needs model.endpoint"));
    assert_eq!(run.code, 1);
}

#[test]
fn identifier_not_served() {
    let model = openai_model("codestral", "x");
    let endpoint = format!("{}/v1", model.url());
    let run = doctor(&model_args(&endpoint, "custom_openai/mistral"));
    run.assert_status("model.models", "fail");
    assert!(run
        .message("model.models")
        .contains("serves only: codestral"));
    assert!(run.hint("model.models").contains("custom_openai/codestral"));
    run.assert_status("model.fim", "skip");
    assert_eq!(run.code, 1);
}

#[test]
fn model_down() {
    let endpoint = format!("{}/v1", closed_port_url());
    let run = doctor(&model_args(&endpoint, "custom_openai/codestral"));
    run.assert_status("model.models", "fail");
    assert!(run.message("model.models").contains("cannot be reached"));
    assert!(run
        .hint("model.models")
        .starts_with("start the model server"));
    assert_eq!(run.code, 1);
}

#[test]
fn model_answering_garbage() {
    let model = StubServer::start(|_| Reply::Text(200, "<html>it works!</html>".into()));
    let endpoint = format!("{}/v1", model.url());
    let run = doctor(&model_args(&endpoint, "custom_openai/codestral"));
    run.assert_status("model.models", "fail");
    assert!(run
        .message("model.models")
        .contains("not an OpenAI model list"));
    assert!(run
        .message("model.models")
        .contains("<html>it works!</html>"));
    assert!(run.hint("model.models").contains("OpenAI-compatible"));

    let not_http = StubServer::start(|_| Reply::Raw(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()));
    let endpoint = format!("{}/v1", not_http.url());
    let run = doctor(&model_args(&endpoint, "custom_openai/codestral"));
    run.assert_status("model.models", "fail");
    assert!(
        run.message("model.models").contains("not HTTP"),
        "{}",
        run.message("model.models")
    );
}

#[test]
fn model_answering_500_never_shows_the_key() {
    let model = StubServer::start(|req| {
        // A careless server that echoes the credentials it got.
        Reply::Text(
            500,
            format!(
                "internal error for {}",
                req.header("authorization").unwrap_or("-")
            ),
        )
    });
    let endpoint = format!("{}/v1", model.url());
    let mut args = model_args(&endpoint, "custom_openai/codestral");
    args.extend(["--model-api-key", SECRET_KEY]);
    let run = doctor(&args);
    run.assert_status("model.models", "fail");
    assert!(run.message("model.models").contains("answered 500"));
    assert!(run.message("model.models").contains("Bearer ****"));
    assert!(run.hint("model.models").contains("logs"));
    assert!(!run.stdout.contains(SECRET_KEY) && !run.stderr.contains(SECRET_KEY));
    let requests = model.requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {SECRET_KEY}").as_str()),
        "the key is sent to the model"
    );
}

#[test]
fn black_holes_fail_within_the_budget() {
    let model = StubServer::black_hole();
    let gateway = StubServer::black_hole();
    let endpoint = format!("{}/v1", model.url());
    let run = doctor(&[
        "--json",
        "doctor",
        "--timeout",
        "2",
        "--model-endpoint",
        &endpoint,
        "--model-identifier",
        "custom_openai/codestral",
        "--gateway-url",
        &gateway.url(),
    ]);
    run.assert_status("model.models", "fail");
    assert!(run
        .message("model.models")
        .contains("did not answer within"));
    assert!(run.hint("model.models").contains("does not answer"));
    run.assert_status("gateway.healthz", "fail");
    assert!(run
        .message("gateway.healthz")
        .contains("did not answer within"));
    // 2 s per check plus the run's 1.5 s margin, plus process start-up.
    assert!(
        run.elapsed < Duration::from_millis(2000 + 1500 + 1000),
        "took {:?}",
        run.elapsed
    );
    assert_eq!(run.code, 1);
}

#[test]
fn gateway_down_and_unhealthy() {
    let url = closed_port_url();
    let run = doctor(&[
        "--json",
        "doctor",
        "--only",
        "gateway.healthz",
        "--gateway-url",
        &url,
    ]);
    run.assert_status("gateway.healthz", "fail");
    assert!(run
        .message("gateway.healthz")
        .starts_with("the gateway is down"));
    assert!(run
        .hint("gateway.healthz")
        .starts_with("start the AI Gateway"));

    let sick = gateway(503);
    let run = doctor(&[
        "--json",
        "doctor",
        "--only",
        "gateway.healthz",
        "--gateway-url",
        &sick.url(),
        "--container",
        "gitlab-aigw",
    ]);
    run.assert_status("gateway.healthz", "fail");
    assert!(run.message("gateway.healthz").contains("unhealthy"));
    assert!(run.message("gateway.healthz").contains("503"));
    assert!(run
        .hint("gateway.healthz")
        .contains("docker logs --tail 50 gitlab-aigw"));

    let well = gateway(200);
    let run = doctor(&[
        "--json",
        "doctor",
        "--only",
        "gateway",
        "--gateway-url",
        &well.url(),
    ]);
    run.assert_status("gateway.healthz", "ok");
    run.assert_status("gateway.tls", "skip");
    assert_eq!(
        well.requests()[0].header("accept"),
        Some("application/json")
    );
}

/// An HTTPS server (`openssl s_server`) with a self-signed certificate for 127.0.0.1.
struct SelfSignedServer {
    child: std::process::Child,
    port: u16,
    cert: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SelfSignedServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("gateway.crt");
        let key = dir.path().join("gateway.key");
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "90",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("the openssl CLI is needed for this test");
        assert!(status.success());
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(port.to_string())
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        SelfSignedServer {
            child,
            port,
            cert,
            _dir: dir,
        }
    }
}

impl Drop for SelfSignedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn gateway_with_a_self_signed_certificate() {
    let server = SelfSignedServer::start();
    let url = format!("https://127.0.0.1:{}", server.port);
    let run = doctor(&[
        "--json",
        "doctor",
        "--only",
        "gateway",
        "--gateway-url",
        &url,
    ]);
    run.assert_status("gateway.tls", "fail");
    assert!(run.message("gateway.tls").contains("self-signed"));
    assert!(run
        .hint("gateway.tls")
        .contains("/etc/gitlab/trusted-certs/"));
    run.assert_status("gateway.healthz", "fail");
    assert!(run.message("gateway.healthz").contains("TLS"));

    // Trusting the CA makes it valid, with its days left.
    let cert = server.cert.to_str().unwrap();
    let run = doctor(&[
        "--json",
        "doctor",
        "--only",
        "gateway.tls",
        "--gateway-url",
        &url,
        "--ca-cert",
        cert,
    ]);
    run.assert_status("gateway.tls", "ok");
    let message = run.message("gateway.tls");
    assert!(
        message.contains("for 89 more days") || message.contains("for 90 more days"),
        "{message}"
    );
}

#[test]
fn bedrock_identifier_must_be_an_inference_profile() {
    let run = doctor(&[
        "--json",
        "doctor",
        "--only",
        "bedrock",
        "--model-identifier",
        "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
    ]);
    run.assert_status("bedrock.identifier", "fail");
    assert!(run
        .hint("bedrock.identifier")
        .contains("bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0"));
    run.assert_status("bedrock.credentials", "skip");

    let run = doctor(&[
        "--json",
        "doctor",
        "--only",
        "bedrock.identifier",
        "--model-identifier",
        "bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
    ]);
    run.assert_status("bedrock.identifier", "ok");
}

#[test]
fn strict_turns_warnings_into_a_failure_and_bad_selections_exit_2() {
    // A model the catalog does not know: a warning.
    let model = openai_model("my-finetune", "x");
    let endpoint = format!("{}/v1", model.url());
    let mut args = vec![
        "--json",
        "doctor",
        "--only",
        "model.family",
        "--model-endpoint",
        &endpoint,
        "--model-identifier",
        "custom_openai/my-finetune",
    ];
    let run = doctor(&args);
    run.assert_status("model.family", "warn");
    assert_eq!(run.json()["checks"].as_array().unwrap().len(), 1);
    assert_eq!(run.code, 0);
    args.push("--strict");
    assert_eq!(doctor(&args).code, 1);

    let run = doctor(&["doctor", "--only", "gatway.*"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("`gatway.*` names no check"));
    assert!(run.stdout.is_empty());
}

#[test]
fn json_report_matches_its_schema() {
    let model = StubServer::start(|_| Reply::Text(500, "boom".into()));
    let endpoint = model.url();
    let run = doctor(&[
        "--json",
        "doctor",
        "--model-endpoint",
        &endpoint,
        "--model-identifier",
        "custom_openai/codestral",
        "--gateway-url",
        &closed_port_url(),
    ]);
    let doc = run.json();
    assert_eq!(doc["schema_version"], 1);
    let summary = &doc["summary"];
    let total: u64 = ["ok", "warn", "fail", "skip", "error"]
        .iter()
        .map(|k| summary[k].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, doc["checks"].as_array().unwrap().len());
    assert!(summary["fail"].as_u64().unwrap() >= 2);

    assert_matches_schema(&run.stdout);
}

/// Validates a `--json` document against `src/doctor/report.schema.json` with Python's
/// jsonschema (a validator independent of the code that writes the document).
fn assert_matches_schema(document: &str) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/doctor/report.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    std::fs::write(&report, document).unwrap();
    let validate = Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))",
        ])
        .arg(&schema)
        .arg(&report)
        .output()
        .expect("python3 with jsonschema (scripts/install-deps installs it)");
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
}

#[test]
fn human_output_snapshot() {
    let model = openai_model("codestral", "return a + b");
    let endpoint = format!("{}/v1", model.url());
    let sick = gateway(503);
    let home = tempfile::tempdir().unwrap();
    let run = doctor_in(
        home.path(),
        &[
            "doctor",
            "--skip",
            "gitlab_rb",
            "--model-endpoint",
            &endpoint,
            "--model-identifier",
            "custom_openai/mistral",
            "--gateway-url",
            &sick.url(),
        ],
    );
    assert_eq!(run.code, 1);
    support::snapshot_settings(home.path()).bind(|| insta::assert_snapshot!(run.stdout));
}

const TOKEN: &str = "glpat-doctor-test-token";

fn gitlab_doctor(home: &Path, gitlab: &FakeGitlab, only: &str, extra: &[&str]) -> Run {
    gitlab_doctor_env(home, gitlab, only, extra, &[])
}

/// [`gitlab_doctor`] with more environment (a PATH with stand-in tools).
fn gitlab_doctor_env(
    home: &Path,
    gitlab: &FakeGitlab,
    only: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let rb = home.join("gitlab.rb");
    let envdir = home.join("envdir");
    let mut args = vec![
        "--json",
        "doctor",
        "--only",
        only,
        "--gitlab-url",
        &gitlab.url,
        "--gitlab-token",
        TOKEN,
        "--gitlab-rb",
        rb.to_str().unwrap(),
    ];
    args.extend(extra);
    let mut env = env.to_vec();
    env.push(("DUO_SELFHOST_GITLAB_ENVDIR", envdir.to_str().unwrap()));
    let run = doctor_in_env(home, &args, &env);
    assert!(
        !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
        "the token leaked"
    );
    run
}

#[test]
fn gateway_url_missing_from_gitlab_rb() {
    let home = tempfile::tempdir().unwrap();
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    gitlab_host(home.path(), "", &[]);
    let run = gitlab_doctor(home.path(), &gitlab, "gitlab_rb", &[]);
    run.assert_status("gitlab_rb.present", "ok");
    run.assert_status("gitlab_rb.gateway_url", "fail");
    assert!(
        run.message("gitlab_rb.gateway_url")
            .contains("GitLab 17.5.0"),
        "{}",
        run.stdout
    );
    assert!(run
        .hint("gitlab_rb.gateway_url")
        .starts_with("duo-selfhost gitlab-rb set AI_GATEWAY_URL="));
    run.assert_status("gitlab_rb.rendered", "skip");

    // From 17.9 the application setting holds it: gitlab.rb may leave it out.
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.9.0-ee").token(TOKEN));
    let run = gitlab_doctor(home.path(), &gitlab, "gitlab_rb.gateway_url", &[]);
    run.assert_status("gitlab_rb.gateway_url", "skip");
}

#[test]
fn localhost_gateway_url_in_gitlab_rb() {
    let home = tempfile::tempdir().unwrap();
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    gitlab_host(
        home.path(),
        "gitlab_rails['env'] = {\n  'AI_GATEWAY_URL' => 'http://localhost:5052'\n}",
        &[("AI_GATEWAY_URL", "http://localhost:5052\n")],
    );
    let run = gitlab_doctor(home.path(), &gitlab, "gitlab_rb", &[]);
    run.assert_status("gitlab_rb.gateway_url", "fail");
    assert!(run
        .message("gitlab_rb.gateway_url")
        .contains("points at this machine"));
    assert!(run
        .hint("gitlab_rb.gateway_url")
        .contains("gateway host's name or address"));
    run.assert_status("gitlab_rb.rendered", "ok");
}

#[test]
fn reconfigure_not_run() {
    let home = tempfile::tempdir().unwrap();
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    gitlab_host(
        home.path(),
        "gitlab_rails['env'] = {\n  \"AI_GATEWAY_URL\" => \"http://aigw.example.com:5052\", # duo\n  'GITLAB_LICENSE_MODE' => 'production',\n}",
        &[("AI_GATEWAY_URL", "http://old-gateway.example.com:5052\n")],
    );
    let run = gitlab_doctor(home.path(), &gitlab, "gitlab_rb", &[]);
    run.assert_status("gitlab_rb.gateway_url", "ok");
    run.assert_status("gitlab_rb.rendered", "fail");
    let message = run.message("gitlab_rb.rendered");
    assert!(message.contains("reconfigure has not run"), "{message}");
    assert!(
        message.contains("AI_GATEWAY_URL differs")
            && message.contains("GITLAB_LICENSE_MODE is missing")
    );
    assert_eq!(
        run.hint("gitlab_rb.rendered"),
        "sudo gitlab-ctl reconfigure"
    );
}

#[test]
fn gitlab_api_checks_name_version_setting_licence_and_flag() {
    let home = tempfile::tempdir().unwrap();
    // 17.5: the flag must be on; it is not.
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    let run = gitlab_doctor(home.path(), &gitlab, "gitlab", &[]);
    run.assert_status("gitlab.readiness", "ok");
    run.assert_status("gitlab.version", "ok");
    assert_eq!(
        run.message("gitlab.version"),
        "GitLab 17.5.0-ee (Enterprise Edition)"
    );
    run.assert_status("gitlab.gateway_setting", "skip");
    run.assert_status("gitlab.license", "ok");
    run.assert_status("gitlab.feature_flag", "fail");
    assert!(run
        .hint("gitlab.feature_flag")
        .contains("Feature.enable(:ai_custom_model)"));
    let gitlab = FakeGitlab::start(
        FakeGitlabConfig::new("17.5.0-ee")
            .token(TOKEN)
            .feature("ai_custom_model", "on"),
    );
    let run = gitlab_doctor(home.path(), &gitlab, "gitlab.feature_flag", &[]);
    run.assert_status("gitlab.feature_flag", "ok");

    // 18.1: the setting must be there and point at the gateway.
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.1.1-ee").token(TOKEN));
    let run = gitlab_doctor(
        home.path(),
        &gitlab,
        "gitlab",
        &["--gateway-url", "http://aigw.example.com:5052"],
    );
    run.assert_status("gitlab.gateway_setting", "fail");
    assert!(run.message("gitlab.gateway_setting").contains("empty"));
    assert!(run
        .hint("gitlab.gateway_setting")
        .contains("Local AI Gateway URL: http://aigw.example.com:5052"));
    run.assert_status("gitlab.feature_flag", "skip");
    let gitlab = FakeGitlab::start(
        FakeGitlabConfig::new("18.1.1-ee")
            .token(TOKEN)
            .ai_gateway_url("http://aigw.example.com:5052"),
    );
    let run = gitlab_doctor(
        home.path(),
        &gitlab,
        "gitlab.gateway_setting",
        &["--gateway-url", "http://aigw.example.com:5052"],
    );
    run.assert_status("gitlab.gateway_setting", "ok");

    // The Community Edition, and an instance without a licence.
    let gitlab = FakeGitlab::start(
        FakeGitlabConfig::new("17.5.0")
            .token(TOKEN)
            .without_license(),
    );
    let run = gitlab_doctor(home.path(), &gitlab, "gitlab", &[]);
    run.assert_status("gitlab.version", "fail");
    assert!(run.message("gitlab.version").contains("Community Edition"));
    run.assert_status("gitlab.license", "fail");

    // A regular user's token cannot read the licence or flags: those checks lack their input.
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN).non_admin());
    let run = gitlab_doctor(home.path(), &gitlab, "gitlab", &[]);
    run.assert_status("gitlab.version", "ok");
    run.assert_status("gitlab.license", "skip");
    assert!(run.message("gitlab.license").contains("administrator"));
    run.assert_status("gitlab.feature_flag", "skip");
}

fn container_doctor(gitlab: &FakeGitlab, container: &str) -> Run {
    doctor(&[
        "--json",
        "doctor",
        "--only",
        "docker",
        "--only",
        "gateway.container",
        "--only",
        "gateway.reaches_gitlab",
        "--container",
        container,
        "--gitlab-url",
        &gitlab.url,
        "--gitlab-token",
        TOKEN,
        "--model-endpoint",
        "http://127.0.0.1:8000/v1",
    ])
}

#[test]
fn a_well_made_gateway_container_passes() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    let name = format!("duo-doctor-good-{}", std::process::id());
    let env_gitlab = format!("AIGW_GITLAB_URL={}", gitlab.url);
    let env_api = format!("AIGW_GITLAB_API_URL={}/api/v4/", gitlab.url);
    let _c = Container::run(
        &name,
        &[
            "--network",
            "host",
            "-e",
            &env_gitlab,
            "-e",
            &env_api,
            "-e",
            "AIGW_CUSTOM_MODELS__ENABLED=true",
        ],
        &standin_image("17.5.0"),
    );
    let run = container_doctor(&gitlab, &name);
    for id in [
        "docker.engine",
        "gateway.container.exists",
        "gateway.container.running",
        "gateway.container.image_tag",
        "gateway.container.custom_models",
        "gateway.container.gitlab_url",
        "gateway.container.gitlab_api_url",
        "gateway.container.auth_bypass",
        "gateway.container.ports",
        "gateway.container.model_reach",
        "gateway.reaches_gitlab",
    ] {
        run.assert_status(id, "ok");
    }
    assert!(gitlab
        .requests()
        .iter()
        .any(|r| r.path == "/api/v4/projects" && r.private_token.is_none()));
    assert_eq!(run.code, 0);
}

#[test]
fn a_misconfigured_gateway_container_is_named_check_by_check() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    let name = format!("duo-doctor-bad-{}", std::process::id());
    let _c = Container::run(
        &name,
        &[
            "-e",
            "AIGW_GITLAB_URL=http://gitlab.wrong.example",
            "-e",
            "AIGW_GITLAB_API_URL=http://gitlab.wrong.example/api/v4/",
            "-e",
            "AIGW_AUTH__BYPASS_EXTERNAL=true",
        ],
        &standin_image("17.4.0"),
    );
    let run = container_doctor(&gitlab, &name);
    run.assert_status("gateway.container.running", "ok");

    run.assert_status("gateway.container.image_tag", "fail");
    assert!(run
        .message("gateway.container.image_tag")
        .contains("self-hosted-v17.4.0-ee is for GitLab 17.4"));
    assert!(run
        .hint("gateway.container.image_tag")
        .starts_with("duo-selfhost upgrade"));

    run.assert_status("gateway.container.gitlab_url", "fail");
    assert!(run
        .message("gateway.container.gitlab_url")
        .contains("AIGW_GITLAB_URL is http://gitlab.wrong.example"));
    assert!(run
        .hint("gateway.container.gitlab_url")
        .contains(&format!("-e AIGW_GITLAB_URL={}", gitlab.url)));

    run.assert_status("gateway.container.auth_bypass", "fail");
    assert!(run
        .message("gateway.container.auth_bypass")
        .starts_with("AIGW_AUTH__BYPASS_EXTERNAL=true"));
    assert!(run
        .hint("gateway.container.auth_bypass")
        .contains("no AIGW_AUTH__BYPASS_EXTERNAL"));

    run.assert_status("gateway.container.custom_models", "fail");
    run.assert_status("gateway.container.model_reach", "fail");
    assert!(run
        .hint("gateway.container.model_reach")
        .contains("--network host"));
    run.assert_status("gateway.container.ports", "fail");
    assert!(run.hint("gateway.container.ports").contains("-p 5052:5052"));
    run.assert_status("gateway.reaches_gitlab", "fail");
    assert!(run
        .message("gateway.reaches_gitlab")
        .contains("cannot fetch http://gitlab.wrong.example/api/v4/projects"));
    assert_eq!(run.code, 1);
}

#[test]
fn a_missing_or_stopped_gateway_container() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    let run = container_doctor(&gitlab, "duo-doctor-no-such-container");
    run.assert_status("gateway.container.exists", "fail");
    assert!(run
        .hint("gateway.container.exists")
        .contains("duo-selfhost install"));
    run.assert_status("gateway.container.gitlab_url", "skip");

    let name = format!("duo-doctor-stopped-{}", std::process::id());
    let _c = Container::run(&name, &[], &standin_image("17.5.0"));
    let out = Command::new("docker")
        .args(["stop", "-t", "0", &name])
        .output()
        .unwrap();
    assert!(out.status.success());
    let run = container_doctor(&gitlab, &name);
    run.assert_status("gateway.container.running", "fail");
    assert!(run
        .message("gateway.container.running")
        .contains("is exited"));
    assert!(run
        .hint("gateway.container.running")
        .starts_with(&format!("docker start {name}")));
    run.assert_status("gateway.reaches_gitlab", "skip");
}

fn chain_doctor(chain: &GreenChain, extra: &[&str]) -> Run {
    let mut args = chain.doctor_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = chain.doctor_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = doctor_in_env(chain.home.path(), &args, &env);
    assert!(
        !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
        "the token leaked"
    );
    run
}

#[test]
fn the_whole_chain_all_green() {
    let chain = GreenChain::start(TOKEN);
    // The model answers slowly on 2 busy cores.
    let run = chain_doctor(&chain, &["--timeout", "180"]);
    let checks = run.json()["checks"].as_array().unwrap().clone();
    for check in &checks {
        let id = check["id"].as_str().unwrap();
        run.assert_status(id, green_status(id));
    }
    assert_eq!(checks.len(), doctor_check_count());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_matches_schema(&run.stdout);

    // GitLab asked the gateway, which asked serve the gateway's Codestral question.
    let completion = run.check("chain.code_completion");
    let message = completion["message"].as_str().unwrap();
    assert!(
        message.starts_with("GitLab answered a code suggestion in ")
            && message.ends_with("characters from custom_openai/smollm2-135m (litellm)"),
        "{message}"
    );
    let details = &completion["details"];
    assert!(details["hop"].is_null());
    assert!(details["answer_chars"].as_u64().unwrap() > 0, "{details}");
    assert!(details["latency_ms"].as_u64().is_some(), "{details}");
    let asked = chain.gateway.model_requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let chat = &asked[0];
    assert_eq!(chat["model"], "smollm2-135m");
    assert_eq!(chat["max_tokens"], 64);
    assert_eq!(chat["temperature"], 0.32);
    assert_eq!(
        chat["stop"],
        serde_json::json!(["[INST]", "[/INST]", "[PREFIX]", "[MIDDLE]"])
    );
    assert_eq!(chat["messages"][0]["role"], "system");
    let user = chat["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.starts_with("<s>[SUFFIX]\n\nprint(add(2, 3))\n[PREFIX]def add(a, b):\n    "),
        "{user}"
    );
    let suggestion = chain
        .gitlab
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v4/code_suggestions/completions")
        .expect("doctor asked GitLab for a code suggestion");
    assert_eq!(
        suggestion.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let reach = run.check("chain.gateway_to_model");
    assert_eq!(reach["details"]["http_status"], 200, "{reach}");
    assert_eq!(reach["details"]["endpoint"], chain.serve.endpoint());
}

#[test]
fn the_chain_names_the_hop_that_broke() {
    let chain = GreenChain::start(TOKEN);
    let hop = |run: &Run| {
        run.check("chain.code_completion")["details"]["hop"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let only_chain = ["--only", "chain", "--timeout", "60"];

    // GitLab refuses: the user has no default Duo namespace.
    chain
        .gitlab
        .configure(|c| c.missing_default_duo_group = true);
    let run = chain_doctor(&chain, &only_chain);
    run.assert_status("chain.code_completion", "fail");
    assert_eq!(hop(&run), "gitlab");
    assert!(run
        .message("chain.code_completion")
        .contains("GitLab itself refused the code suggestion (422)"));
    assert!(run
        .hint("chain.code_completion")
        .contains("Default GitLab Duo namespace"));
    // GitLab refuses: the token is not accepted.
    chain.gitlab.configure(|c| {
        c.missing_default_duo_group = false;
        c.token = Some("glpat-someone-else".into());
    });
    let run = chain_doctor(&chain, &only_chain);
    assert_eq!(hop(&run), "gitlab");
    assert!(run
        .message("chain.code_completion")
        .contains("refused the code suggestion (401)"));
    assert!(run
        .hint("chain.code_completion")
        .contains("ai_features scope"));
    chain.gitlab.configure(|c| c.token = Some(TOKEN.into()));
    // GitLab refuses: no gateway configured.
    chain.gitlab.configure(|c| {
        c.missing_default_duo_group = false;
        c.ai_gateway_url = None;
    });
    let run = chain_doctor(&chain, &only_chain);
    assert_eq!(hop(&run), "gitlab");
    assert!(run
        .message("chain.code_completion")
        .contains("no AI Gateway configured"));
    assert!(run
        .hint("chain.code_completion")
        .contains("Local AI Gateway URL"));
    assert!(chain.gateway.model_requests().is_empty());
    let gateway_url = chain.gateway_url.clone();
    chain
        .gitlab
        .configure(|c| c.ai_gateway_url = Some(gateway_url));

    // The gateway cannot reach the model: GitLab stores an endpoint nothing listens on, while
    // doctor itself was given serve's (which works, and must not be what is checked).
    let dead = format!("{}/v1", closed_port_url());
    let stored = dead.clone();
    chain
        .gitlab
        .configure(|c| c.self_hosted_models[0].endpoint = stored);
    let run = chain_doctor(&chain, &only_chain);
    run.assert_status("chain.gateway_to_model", "fail");
    assert!(
        run.message("chain.gateway_to_model")
            .contains("cannot be reached"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.check("chain.gateway_to_model")["details"]["endpoint"],
        dead
    );
    run.assert_status("chain.code_completion", "fail");
    assert_eq!(hop(&run), "gateway_to_model", "{}", run.stdout);
    assert!(run
        .message("chain.code_completion")
        .contains(&format!("the gateway cannot reach the model at {dead}")));

    // The model errs: reachable, but every completion is a 500.
    let broken = StubServer::start(|req| match req.path.as_str() {
        "/v1/models" => Reply::Json(
            200,
            r#"{"object":"list","data":[{"id":"smollm2-135m"}]}"#.into(),
        ),
        _ => Reply::Json(500, r#"{"error":{"message":"CUDA out of memory"}}"#.into()),
    });
    let stored = format!("{}/v1", broken.url());
    chain
        .gitlab
        .configure(|c| c.self_hosted_models[0].endpoint = stored);
    let run = chain_doctor(&chain, &only_chain);
    run.assert_status("chain.gateway_to_model", "ok");
    run.assert_status("chain.code_completion", "fail");
    assert_eq!(hop(&run), "model", "{}", run.stdout);
    let message = run.message("chain.code_completion");
    assert!(
        message.contains("the model errs") && message.contains("CUDA out of memory"),
        "{message}"
    );
    assert!(run.hint("chain.code_completion").contains("logs"));
    assert_matches_schema(&run.stdout);
    assert_eq!(run.code, 1);
}

/// Every check doctor knows, from a run that selects all of them.
fn doctor_check_count() -> usize {
    doctor(&["--json", "doctor"]).json()["checks"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn inputs_come_from_the_state_file_unless_a_flag_says_otherwise() {
    let model = openai_model("codestral", "x");
    let gateway = gateway(200);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("state.toml"),
        format!(
            r#"schema_version = 1
written_by = "0.1.0"
updated_at = "2026-11-25T10:00:00Z"

[gitlab]
url = "http://gitlab.example.com"
version = "17.5.0"

[gateway]
target = "docker"
url = "{}"
image = "model-gateway:self-hosted-v17.5.0-ee"

[model]
runtime = "vllm"
endpoint = "{}/v1"
identifier = "custom_openai/codestral"
"#,
            gateway.url(),
            model.url()
        ),
    )
    .unwrap();
    let only = [
        "--json",
        "doctor",
        "--only",
        "model.models",
        "--only",
        "gateway.healthz",
    ];
    let run = doctor_in(home.path(), &only);
    run.assert_status("model.models", "ok");
    run.assert_status("gateway.healthz", "ok");

    let elsewhere = closed_port_url();
    let mut args = only.to_vec();
    args.extend(["--gateway-url", &elsewhere]);
    let run = doctor_in(home.path(), &args);
    run.assert_status("model.models", "ok");
    run.assert_status("gateway.healthz", "fail");
    assert!(run.message("gateway.healthz").contains(&elsewhere));
}

#[test]
fn gitlab_18_gateway_needs_its_jwt_keys_and_the_agent_platform_port() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.4.0-ee").token(TOKEN));
    let name = format!("duo-doctor-18-{}", std::process::id());
    let _c = Container::run(&name, &["-p", "127.0.0.1::5052"], &standin_image("18.4.0"));
    let run = container_doctor(&gitlab, &name);
    run.assert_status("gateway.container.image_tag", "ok");
    run.assert_status("gateway.container.jwt_keys", "warn");
    let message = run.message("gateway.container.jwt_keys");
    assert!(
        message.contains("AIGW_SELF_SIGNED_JWT__SIGNING_KEY")
            && message.contains("DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY"),
        "{message}"
    );
    assert!(run
        .hint("gateway.container.jwt_keys")
        .contains("openssl genrsa"));
    run.assert_status("gateway.container.ports", "warn");
    assert!(run
        .hint("gateway.container.ports")
        .contains("-p 50052:50052"));

    let key = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-but-secret\n-----END PRIVATE KEY-----";
    let aigw = format!("AIGW_SELF_SIGNED_JWT__SIGNING_KEY={key}");
    let dws = format!("DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY={key}");
    let keyed = format!("{name}-keyed");
    let _k = Container::run(
        &keyed,
        &[
            "-p",
            "127.0.0.1::5052",
            "-p",
            "127.0.0.1::50052",
            "-e",
            &aigw,
            "-e",
            &dws,
        ],
        &standin_image("18.4.0"),
    );
    let run = container_doctor(&gitlab, &keyed);
    run.assert_status("gateway.container.jwt_keys", "ok");
    run.assert_status("gateway.container.ports", "ok");
    assert!(!run.stdout.contains("not-a-real-key-but-secret"));
}

#[test]
fn the_support_bundle_holds_everything_but_the_secrets() {
    let jwt = "-----BEGIN PRIVATE KEY-----bundle-jwt-secret-5678-----END PRIVATE KEY-----";
    let model_key = "sk-bundle-model-key-1234";
    let secrets = [
        TOKEN,
        model_key,
        "bundle-jwt-secret-5678",
        "proxy-pass-9012",
        "aws-secret-3456",
        "rb-db-password-7788",
        "rb-proxy-pass-3344",
    ];
    let setup = ChainSetup {
        container_env: vec![
            format!("AIGW_SELF_SIGNED_JWT__SIGNING_KEY={jwt}"),
            "HTTPS_PROXY=http://proxyuser:proxy-pass-9012@proxy.example:3128".into(),
            "AWS_SECRET_ACCESS_KEY=aws-secret-3456".into(),
            "AIGW_LOGGING__LEVEL=debug".into(),
        ],
        // A gateway logging too much: the token GitLab sent and its own key.
        container_script: format!(
            "echo 'gateway started'; echo 'debug: Authorization: Bearer {TOKEN}'; echo \"signing with $AIGW_SELF_SIGNED_JWT__SIGNING_KEY\"; "
        ),
        rb_env: vec![
            ("GITLAB_DB_PASSWORD".into(), "rb-db-password-7788".into()),
            (
                "http_proxy".into(),
                "http://rbuser:rb-proxy-pass-3344@proxy.example:3128".into(),
            ),
        ],
        ..ChainSetup::default()
    };
    let chain = GreenChain::start_setup(Serve::start(), TOKEN, setup);
    let out_dir = tempfile::tempdir().unwrap();
    let bundle = out_dir.path().join("support.tar.gz");
    let run = chain_doctor(
        &chain,
        &[
            "--timeout",
            "120",
            "--model-api-key",
            model_key,
            "--bundle",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(
        run.stderr.contains("wrote the support bundle"),
        "{}",
        run.stderr
    );
    for secret in secrets {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret} leaked into the output"
        );
    }
    // Only the archive is left: the temporary file was renamed into place.
    let names: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["support.tar.gz".to_string()]);

    let extracted = tempfile::tempdir().unwrap();
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&bundle)
        .arg("-C")
        .arg(extracted.path())
        .output()
        .unwrap();
    assert!(
        untar.status.success(),
        "{}",
        String::from_utf8_lossy(&untar.stderr)
    );
    let root = extracted.path().join("duo-selfhost-bundle");
    let read = |name: &str| {
        std::fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    for secret in secrets {
        let grep = Command::new("grep")
            .args(["-rF", "--", secret])
            .arg(extracted.path())
            .output()
            .unwrap();
        assert_eq!(
            grep.status.code(),
            Some(1),
            "{secret} is in the bundle:\n{}",
            String::from_utf8_lossy(&grep.stdout)
        );
    }
    let report: Value = serde_json::from_str(&read("doctor.json")).unwrap();
    assert_eq!(report["schema_version"], 1);
    assert!(report["checks"].as_array().unwrap().len() > 20);
    let versions: Value = serde_json::from_str(&read("versions.json")).unwrap();
    assert_eq!(versions["gitlab"], "17.9.0");
    assert!(versions["gateway_image"]
        .as_str()
        .unwrap()
        .ends_with("self-hosted-v17.9.0-ee"));
    assert!(versions["docker_engine"].is_string());
    let env = read("gateway/env.txt");
    assert!(
        env.contains("AIGW_SELF_SIGNED_JWT__SIGNING_KEY=****\n"),
        "{env}"
    );
    assert!(env.contains("AWS_SECRET_ACCESS_KEY=****\n"), "{env}");
    assert!(env.contains("AIGW_LOGGING__LEVEL=debug\n"), "{env}");
    assert!(
        env.contains("HTTPS_PROXY=http://proxy.example:3128"),
        "{env}"
    );
    let logs = read("gateway/logs.txt");
    assert!(logs.contains("gateway started"), "{logs}");
    assert!(logs.contains("debug: Authorization: Bearer ****"), "{logs}");
    let rb = read("gitlab.rb-env.txt");
    assert!(
        rb.contains(&format!("AI_GATEWAY_URL={}\n", chain.gateway_url)),
        "{rb}"
    );
    assert!(rb.contains("GITLAB_DB_PASSWORD=****\n"), "{rb}");
    assert!(read("serve/v1-models.json").contains("smollm2-135m"));
    assert!(read("serve/metrics.txt").contains("# TYPE"));
}

#[test]
fn a_bundle_path_that_cannot_be_written_is_refused_before_any_check() {
    let run = doctor(&["doctor", "--bundle", "/no/such/folder/b.tar.gz"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: mkdir -p /no/such/folder"));
    assert!(run.stdout.is_empty());
    let run = doctor(&["doctor", "--bundle", "bundle.zip"]);
    assert!(
        run.stderr.contains("not a .tar.gz file name"),
        "{}",
        run.stderr
    );
}

/// The `--json` report's fixes and re-run checks.
fn fixes_of(run: &Run) -> (Vec<Value>, Vec<Value>) {
    let doc = run.json();
    (
        doc["fixes"].as_array().cloned().unwrap_or_default(),
        doc["after"].as_array().cloned().unwrap_or_default(),
    )
}

fn after_status(after: &[Value], id: &str) -> String {
    after
        .iter()
        .find(|c| c["id"] == id)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_else(|| panic!("{id} was not re-run: {after:?}"))
        .to_string()
}

#[test]
fn fix_runs_reconfigure_when_gitlab_rb_was_not_rendered() {
    let home = tempfile::tempdir().unwrap();
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    gitlab_host(
        home.path(),
        "gitlab_rails['env'] = {\n  'AI_GATEWAY_URL' => 'http://aigw.example.com:5052'\n}",
        &[("AI_GATEWAY_URL", "http://old-gateway.example.com:5052\n")],
    );
    // gitlab-ctl's stand-in renders gitlab.rb's env with the Ruby harness, as omnibus does.
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ruby/eval_env.rb");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = reconfigure ] || exit 3\necho 'Running handlers complete'\nexec ruby {} {} {} >/dev/null\n",
        harness.display(),
        home.path().join("gitlab.rb").display(),
        home.path().join("envdir").display()
    );
    std::fs::write(bin.join("gitlab-ctl"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        bin.join("gitlab-ctl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let envdir = home.path().join("envdir");
    let run = gitlab_doctor_env(
        home.path(),
        &gitlab,
        "gitlab_rb.rendered",
        &["--fix", "--yes"],
        &[("PATH", &path)],
    );
    run.assert_status("gitlab_rb.rendered", "fail");
    let (fixes, after) = fixes_of(&run);
    assert_eq!(fixes.len(), 1, "{}", run.stdout);
    assert_eq!(fixes[0]["command"], "sudo gitlab-ctl reconfigure");
    assert_eq!(fixes[0]["outcome"], "applied", "{}", run.stderr);
    assert_eq!(after_status(&after, "gitlab_rb.rendered"), "ok");
    assert!(run.stderr.contains("Running handlers complete"));
    assert_eq!(
        std::fs::read_to_string(envdir.join("AI_GATEWAY_URL")).unwrap(),
        "http://aigw.example.com:5052"
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn fix_turns_the_feature_flag_on_and_sets_the_gateway_url() {
    let home = tempfile::tempdir().unwrap();
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    // Without a terminal and without --yes nothing runs, and the refusal names --yes.
    let run = gitlab_doctor(home.path(), &gitlab, "gitlab.feature_flag", &["--fix"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no terminal to ask on"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert_eq!(gitlab.feature_state("ai_custom_model"), None);

    let run = gitlab_doctor(
        home.path(),
        &gitlab,
        "gitlab.feature_flag",
        &["--fix", "--yes"],
    );
    run.assert_status("gitlab.feature_flag", "fail");
    let (fixes, after) = fixes_of(&run);
    assert_eq!(fixes[0]["outcome"], "applied", "{}", run.stderr);
    assert!(fixes[0]["command"]
        .as_str()
        .unwrap()
        .contains("/api/v4/features/ai_custom_model"));
    assert_eq!(after_status(&after, "gitlab.feature_flag"), "ok");
    assert_eq!(
        gitlab.feature_state("ai_custom_model").as_deref(),
        Some("on")
    );
    assert_eq!(run.code, 0);

    // 18.1 with the setting unset: doctor sets the gateway URL it was given.
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.1.1-ee").token(TOKEN));
    let run = doctor_in(
        home.path(),
        &[
            "--yes",
            "doctor",
            "--fix",
            "--only",
            "gitlab.gateway_setting",
            "--gitlab-url",
            &gitlab.url,
            "--gitlab-token",
            TOKEN,
            "--gateway-url",
            "http://aigw.example.com:5052",
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("after --fix:"), "{}", run.stdout);
    assert!(
        run.stdout.contains("gitlab.gateway_setting  fail -> ok"),
        "{}",
        run.stdout
    );
    assert_eq!(
        gitlab.ai_gateway_url().as_deref(),
        Some("http://aigw.example.com:5052")
    );
}

#[test]
fn fix_recreates_the_gateway_with_the_env_it_lacks() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    let name = format!("duo-doctor-fix-env-{}", std::process::id());
    let _c = Container::run(
        &name,
        &[
            "-e",
            "AIGW_GITLAB_URL=http://gitlab.wrong.example",
            "-e",
            "AIGW_AUTH__BYPASS_EXTERNAL=true",
            "-e",
            "AIGW_LOGGING__LEVEL=debug",
            "--restart",
            "unless-stopped",
        ],
        &standin_image("17.5.0"),
    );
    let env_checks = [
        "gateway.container.custom_models",
        "gateway.container.gitlab_url",
        "gateway.container.gitlab_api_url",
        "gateway.container.auth_bypass",
    ];
    let mut args = vec!["--json", "--yes", "doctor", "--fix"];
    for id in env_checks {
        args.extend(["--only", id]);
    }
    args.extend([
        "--container",
        &name,
        "--gitlab-url",
        &gitlab.url,
        "--gitlab-token",
        TOKEN,
    ]);
    let run = doctor(&args);
    for id in env_checks {
        run.assert_status(id, "fail");
    }
    let (fixes, after) = fixes_of(&run);
    assert_eq!(
        fixes.len(),
        1,
        "one replacement for every env fix: {fixes:?}"
    );
    assert_eq!(fixes[0]["outcome"], "applied", "{}", run.stderr);
    let command = fixes[0]["command"].as_str().unwrap();
    assert!(
        command.contains(&format!("-e AIGW_GITLAB_URL={}", gitlab.url))
            && command.contains("without AIGW_AUTH__BYPASS_EXTERNAL"),
        "{command}"
    );
    for id in env_checks {
        assert_eq!(after_status(&after, id), "ok", "{after:?}");
    }
    let env = support::docker_fixtures::own_env(&name);
    assert!(
        env.contains(&format!("AIGW_GITLAB_URL={}", gitlab.url)),
        "{env:?}"
    );
    assert!(env.contains(&format!("AIGW_GITLAB_API_URL={}/api/v4/", gitlab.url)));
    assert!(env.contains(&"AIGW_CUSTOM_MODELS__ENABLED=true".to_string()));
    assert!(
        env.contains(&"AIGW_LOGGING__LEVEL=debug".to_string()),
        "kept: {env:?}"
    );
    assert!(!env.iter().any(|e| e.starts_with("AIGW_AUTH__BYPASS")));
    let inspect = support::docker_fixtures::inspect(&name).unwrap();
    assert_eq!(
        inspect["HostConfig"]["RestartPolicy"]["Name"],
        "unless-stopped"
    );
    assert!(support::docker_fixtures::inspect(&format!("{name}-previous")).is_none());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_matches_schema(&run.stdout);
}

#[test]
fn fix_upgrades_a_gateway_image_behind_gitlab() {
    let sandbox = support::Sandbox::new();
    let name = support::unique_name("duo-doctor-fix-tag");
    let _cleanup = support::docker_fixtures::Cleanup::new(&[&name]);
    let port = support::free_port();
    support::install_gateway(&sandbox, &name, port, "17.5.0");
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.6.0-ee").token(TOKEN));
    let out = support::run(sandbox.command().args([
        "--json",
        "--yes",
        "doctor",
        "--fix",
        "--only",
        "gateway.container.image_tag",
        "--gitlab-url",
        &gitlab.url,
        "--gitlab-token",
        TOKEN,
    ]));
    let run = Run {
        code: out.code,
        stdout: out.stdout,
        stderr: out.stderr,
        elapsed: Duration::ZERO,
    };
    run.assert_status("gateway.container.image_tag", "fail");
    let (fixes, after) = fixes_of(&run);
    assert_eq!(
        fixes[0]["command"],
        format!("duo-selfhost upgrade --container-name {name} --to-version 17.6.0")
    );
    assert_eq!(fixes[0]["outcome"], "applied", "{}", run.stderr);
    assert_eq!(after_status(&after, "gateway.container.image_tag"), "ok");
    let image = support::docker_fixtures::inspect(&name).unwrap()["Config"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        image,
        support::docker_fixtures::registry().image("17.6.1"),
        "the highest 17.6 tag of the registry the gateway came from"
    );
    // The env install set survives, and the state file records the new image.
    let env = support::docker_fixtures::own_env(&name);
    for extra in support::EXTRA_ENV {
        assert!(env.contains(&extra.to_string()), "{env:?}");
    }
    let state = std::fs::read_to_string(sandbox.state_file()).unwrap();
    assert!(state.contains("self-hosted-v17.6.1-ee"), "{state}");
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn fix_leaves_what_it_cannot_fix_safely_as_a_hint() {
    let run = doctor(&[
        "--yes",
        "doctor",
        "--fix",
        "--only",
        "model.models",
        "--model-endpoint",
        &format!("{}/v1", closed_port_url()),
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("hint: start the model server"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("none of these failures has a safe mechanical fix"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_gateway_without_any_client_is_probed_from_a_throwaway_container_in_its_network() {
    // An image with nothing but `sleep`: no shell, no curl, wget or python3 to exec.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&root).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static");
    std::fs::copy(busybox, root.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("sleep")).unwrap();
    let tar = dir.path().join("bare.tar");
    let status = Command::new("tar")
        .args(["--owner=0", "--group=0", "-C"])
        .arg(dir.path().join("rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let bare = "duo-selfhost-fixture/bare:1";
    support::docker_fixtures::docker(&[
        "import",
        "--change",
        "ENTRYPOINT [\"/bin/sleep\", \"100000\"]",
        tar.to_str().unwrap(),
        bare,
    ]);
    // A local image with a shell and wget to probe from (no image can be pulled here).
    support::docker_fixtures::docker(&[
        "tag",
        &standin_image("17.9.0"),
        "busybox:duo-selfhost-fixture",
    ]);
    let name = format!("duo-doctor-bare-{}", std::process::id());
    let _c = Container::run(&name, &["--network", "host"], bare);
    let model = openai_model("smollm2-135m", "x");
    let endpoint = format!("{}/v1", model.url());
    let run = doctor(&[
        "--json",
        "doctor",
        "--only",
        "chain.gateway_to_model",
        "--container",
        &name,
        "--model-endpoint",
        &endpoint,
    ]);
    run.assert_status("chain.gateway_to_model", "ok");
    let message = run.message("chain.gateway_to_model");
    assert!(message.contains("a throwaway busybox:"), "{message}");
    assert!(message.contains("doctor's inputs"), "{message}");
    assert!(model.requests().iter().any(|r| r.path == "/v1/models"));
    // The throwaway container is gone.
    let left = support::docker_fixtures::docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!left.contains("duo-selfhost-probe-"), "{left}");
}

/// doctor against the fake GitLab's self-hosted models and feature settings, with serve as the
/// model: the three GitLab-side checks.
fn registered_doctor(gitlab: &FakeGitlab) -> Run {
    doctor(&[
        "--json",
        "doctor",
        "--only",
        "gitlab.self_hosted_models",
        "--only",
        "gitlab.feature_settings",
        "--only",
        "chain.connection_check",
        "--gitlab-url",
        &gitlab.url,
        "--gitlab-token",
        TOKEN,
        "--timeout",
        "30",
    ])
}

#[test]
fn gitlab_side_checks_read_the_registered_models_and_the_feature_settings() {
    let serve = Serve::start();
    // Nothing registered yet.
    let empty = FakeGitlab::start(FakeGitlabConfig::new("18.3.0-ee").token(TOKEN));
    let run = registered_doctor(&empty);
    run.assert_status("gitlab.self_hosted_models", "fail");
    assert!(run
        .hint("gitlab.self_hosted_models")
        .contains("duo-selfhost models register"));
    run.assert_status("gitlab.feature_settings", "fail");
    run.assert_status("chain.connection_check", "skip");
    assert_eq!(run.code, 1);

    // Registered under an identifier serve does not serve, code completion only.
    let gitlab = FakeGitlab::start(
        FakeGitlabConfig::new("18.3.0-ee")
            .token(TOKEN)
            .self_hosted_model(&serve.endpoint(), "custom_openai/codestral")
            .assign(&["code_completions"], "model-1"),
    );
    let run = registered_doctor(&gitlab);
    run.assert_status("gitlab.self_hosted_models", "fail");
    let message = run.message("gitlab.self_hosted_models");
    assert!(
        message.contains("custom_openai/codestral") && message.contains("serves smollm2-135m"),
        "{message}"
    );
    assert!(
        run.hint("gitlab.self_hosted_models")
            .contains("--served-model-name smollm2-135m"),
        "{}",
        run.hint("gitlab.self_hosted_models")
    );
    run.assert_status("gitlab.feature_settings", "warn");
    let features = run.message("gitlab.feature_settings");
    assert!(
        features.contains("code completions on model-1")
            && features.contains("duo chat (vendored)"),
        "{features}"
    );
    assert!(run
        .hint("gitlab.feature_settings")
        .contains("--features code_generations,duo_chat"));
    run.assert_status("chain.connection_check", "fail");
    assert!(
        run.message("chain.connection_check")
            .contains("the model codestral is not served"),
        "{}",
        run.message("chain.connection_check")
    );

    // Fixed: the identifier serve serves, every stable feature on it.
    gitlab.configure(|c| c.self_hosted_models[0].identifier = "custom_openai/smollm2-135m".into());
    gitlab.configure(|c| {
        for row in &mut c.feature_settings {
            if support::gitlab_fixture::STABLE_FEATURES.contains(&row.feature.as_str()) {
                row.provider = "self_hosted".into();
                row.model_id = Some(c.self_hosted_models[0].id);
            }
        }
    });
    let run = registered_doctor(&gitlab);
    for id in [
        "gitlab.self_hosted_models",
        "gitlab.feature_settings",
        "chain.connection_check",
    ] {
        run.assert_status(id, "ok");
    }
    assert!(run
        .message("chain.connection_check")
        .contains("model-1: Successfully connected"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_matches_schema(&run.stdout);
}
