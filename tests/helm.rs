//! `install --target helm` and `upgrade --target helm` against stand-in helm and kubectl
//! (tests/stand-ins, first on PATH) that record their arguments and answer as the real tools do;
//! certificates made with the real openssl; manifests checked with the real kubectl.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::support;
use support::gitlab_fixture::{FakeGitlab, FakeGitlabConfig};

const REPO_URL: &str =
    "https://gitlab.com/api/v4/projects/gitlab-org%2fcharts%2fai-gateway-helm-chart/packages/helm/devel";
const IMAGE_REPO: &str =
    "registry.gitlab.com/gitlab-org/modelops/applied-ml/code-suggestions/ai-assist/model-gateway";

fn stand_ins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stand-ins")
}

/// A private world for one test: HOME, state file, stand-in state and log, certificates.
struct World {
    dir: tempfile::TempDir,
    path: String,
    helm_mode: &'static str,
    kubectl_mode: &'static str,
    env: Vec<(String, String)>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let path = format!("{}:/usr/bin:/bin", stand_ins().display());
        let world = World {
            dir,
            path,
            helm_mode: "ok",
            kubectl_mode: "ok",
            env: Vec::new(),
        };
        world.make_certificates();
        world
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.p(name).display().to_string()
    }

    /// Only the named stand-ins on PATH (plus nothing else): for the missing-tool refusals.
    fn only_tools(&mut self, tools: &[&str]) {
        let bin = self.p("only-bin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in tools {
            std::os::unix::fs::symlink(stand_ins().join(tool), bin.join(tool)).unwrap();
        }
        self.path = bin.display().to_string();
    }

    fn run(&self, args: &[&str]) -> Output {
        support::duo_command(self.dir.path())
            .args(args)
            .env("PATH", &self.path)
            // Temporary values files (kept when a step fails) stay in the test's directory.
            .env("TMPDIR", self.p("tmp"))
            .env("DUO_SELFHOST_GITLAB_RB", self.p("etc-gitlab/gitlab.rb"))
            .env("STANDIN_STATE", self.p("cluster"))
            .env("STANDIN_LOG", self.p("calls.log"))
            .env("STANDIN_HELM_MODE", self.helm_mode)
            .env("STANDIN_KUBECTL_MODE", self.kubectl_mode)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Every recorded call, as `tool arg arg …`, then the log is emptied.
    fn take_calls(&self) -> Vec<String> {
        let log = self.p("calls.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(|l| l.replace('\t', " ")).collect()
    }

    fn install_args<'a>(&'a self, extra: &[&'a str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "install",
            "--target",
            "helm",
            "--gateway-host",
            "gw.example.com",
            "--gitlab-url",
            "https://gitlab.example.com/",
            "--gitlab-version",
            "18.1.1",
            "--image",
            &format!("{IMAGE_REPO}:self-hosted-v17.5.0-ee"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn install(&self, extra: &[&str]) -> Output {
        let args = self.install_args(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&refs)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl is installed (scripts/install-deps)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn self_signed(&self, name: &str, san: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "60",
            "-subj",
            "/CN=duo-selfhost test",
            "-addext",
            &format!("subjectAltName={san}"),
        ]);
    }

    /// good (gw.example.com), wild (*.example.com), other (other.example.com), expired
    /// (gw.example.com, January 2020), garbage.pem (not PEM).
    fn make_certificates(&self) {
        self.self_signed("good", "DNS:gw.example.com");
        self.self_signed("wild", "DNS:*.example.com");
        self.self_signed("other", "DNS:other.example.com");
        // An expired certificate needs explicit dates, which only `openssl ca` takes.
        let ca = self.p("ca");
        std::fs::create_dir_all(&ca).unwrap();
        std::fs::write(ca.join("index.txt"), "").unwrap();
        std::fs::write(ca.join("serial"), "01\n").unwrap();
        std::fs::write(
            ca.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = ca/index.txt\nnew_certs_dir = ca\nserial = ca/serial\n\
             default_md = sha256\npolicy = p\ncopy_extensions = copy\n[p]\ncommonName = supplied\n",
        )
        .unwrap();
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "expired.key",
            "-out",
            "ca/expired.csr",
            "-subj",
            "/CN=gw.example.com",
            "-addext",
            "subjectAltName=DNS:gw.example.com",
        ]);
        self.openssl(&[
            "ca",
            "-selfsign",
            "-batch",
            "-notext",
            "-config",
            "ca/ca.cnf",
            "-keyfile",
            "expired.key",
            "-in",
            "ca/expired.csr",
            "-out",
            "expired.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
        ]);
        std::fs::write(self.p("garbage.pem"), "this is not a certificate\n").unwrap();
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// The calls install makes before it changes anything.
fn preflight_calls() -> Vec<String> {
    vec![
        "helm version --short".into(),
        "kubectl version --client -o json".into(),
        "kubectl config current-context".into(),
        "kubectl version -o json --request-timeout=20s".into(),
    ]
}

fn install_change_calls(w: &World, values: &str) -> Vec<String> {
    vec![
        format!("helm repo add ai-gateway {REPO_URL} --force-update"),
        "helm repo update ai-gateway".into(),
        "kubectl create namespace ai-gateway --dry-run=client -o yaml".into(),
        "kubectl apply --server-side --force-conflicts --field-manager=duo-selfhost -f -".into(),
        format!(
            "kubectl create secret tls ai-gateway-tls --namespace=ai-gateway --cert={} --key={} --dry-run=client -o yaml",
            w.s("good.pem"),
            w.s("good.key")
        ),
        "kubectl apply --server-side --force-conflicts --field-manager=duo-selfhost --namespace=ai-gateway -f -".into(),
        format!(
            "helm upgrade --install ai-gateway ai-gateway/ai-gateway --version 0.5.0 --namespace=ai-gateway --values {values} --wait --wait-for-jobs --timeout=300s"
        ),
        "kubectl wait pod --all --for=condition=Ready --namespace=ai-gateway --timeout=300s".into(),
    ]
}

fn expected_values(tag: &str) -> Value {
    json!({
        "image": { "repository": IMAGE_REPO, "tag": tag },
        "gitlab": {
            "url": "https://gitlab.example.com",
            "apiUrl": "https://gitlab.example.com/api/v4/"
        },
        "ingress": {
            "enabled": true,
            "className": "nginx",
            "hosts": [{ "host": "gw.example.com", "paths": [{ "path": "/", "pathType": "ImplementationSpecific" }] }],
            "tls": [{ "secretName": "ai-gateway-tls", "hosts": ["gw.example.com"] }]
        },
        "extraEnvironmentVariables": [
            { "name": "AIGW_LOGGING__LEVEL", "value": "debug" },
            { "name": "AIGW_CUSTOM_MODELS__ENABLED", "value": "true" }
        ]
    })
}

fn good_tls(w: &World) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        w.s("good.pem"),
        "--tls-key".into(),
        w.s("good.key"),
    ]
}

fn full_install(w: &World) -> Output {
    let values = w.s("values.yaml");
    let mut extra = good_tls(w);
    extra.extend([
        "--values-out".to_string(),
        values,
        "--env".into(),
        "AIGW_LOGGING__LEVEL=debug".into(),
        "--env".into(),
        "AIGW_CUSTOM_MODELS__ENABLED=true".into(),
    ]);
    let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    w.install(&refs)
}

/// The install calls nothing that changes the cluster.
fn assert_nothing_changed(calls: &[String]) {
    for call in calls {
        for mutating in ["repo add", "apply", "upgrade", "wait pod"] {
            assert!(!call.contains(mutating), "unexpected change: {call}");
        }
    }
}

#[test]
fn install_runs_the_seed_steps_in_order_and_writes_values_and_state() {
    let w = World::new();
    let out = full_install(&w);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let mut expected = preflight_calls();
    expected.extend(install_change_calls(&w, &w.s("values.yaml")));
    assert_eq!(w.take_calls(), expected);

    assert_eq!(
        yaml_file(&w.p("values.yaml")),
        expected_values("self-hosted-v17.5.0-ee")
    );
    // helm got the same file: the stand-in kept a copy of what it was given.
    assert_eq!(
        yaml_file(&w.p("cluster/releases/ai-gateway/ai-gateway/values.yaml")),
        expected_values("self-hosted-v17.5.0-ee")
    );

    let err = stderr(&out);
    assert!(err.contains("✔ helm v3.14.2"), "{err}");
    assert!(err.contains("✔ kubectl v1.29.2"), "{err}");
    assert!(
        err.contains("✔ cluster context kind-duo (Kubernetes v1.28.7)"),
        "{err}"
    );
    assert!(err.contains("certificate"), "{err}");
    assert!(stdout(&out).contains("gateway URL: https://gw.example.com"));

    let state: toml::Value =
        toml::from_str(&std::fs::read_to_string(w.p("state.toml")).unwrap()).unwrap();
    let gateway = &state["gateway"];
    assert_eq!(gateway["target"].as_str(), Some("helm"));
    assert_eq!(gateway["url"].as_str(), Some("https://gw.example.com"));
    assert_eq!(gateway["namespace"].as_str(), Some("ai-gateway"));
    assert_eq!(gateway["release"].as_str(), Some("ai-gateway"));
    assert_eq!(
        gateway["image"].as_str().unwrap(),
        format!("{IMAGE_REPO}:self-hosted-v17.5.0-ee")
    );
    assert_eq!(
        state["gitlab"]["url"].as_str(),
        Some("https://gitlab.example.com")
    );
}

#[test]
fn install_twice_is_idempotent() {
    let w = World::new();
    let first = full_install(&w);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let first_calls = w.take_calls();
    let first_values = std::fs::read_to_string(w.p("values.yaml")).unwrap();

    let second = full_install(&w);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    assert_eq!(w.take_calls(), first_calls);
    assert_eq!(
        std::fs::read_to_string(w.p("values.yaml")).unwrap(),
        first_values
    );
    // One namespace, one secret, one release at its second revision.
    let secrets: Vec<_> = std::fs::read_dir(w.p("cluster/objects/Secret/ai-gateway"))
        .unwrap()
        .collect();
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        std::fs::read_to_string(w.p("cluster/releases/ai-gateway/ai-gateway/revision"))
            .unwrap()
            .trim(),
        "2"
    );
}

#[test]
fn install_without_tls_flags_uses_the_existing_secret_or_refuses() {
    let w = World::new();
    let out = w.install(&[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("needs the TLS secret ai-gateway-tls in namespace ai-gateway"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint: pass the certificate"));
    assert_nothing_changed(&w.take_calls());

    assert_eq!(code(&full_install(&w)), 0);
    w.take_calls();
    let out = w.install(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let calls = w.take_calls();
    assert!(calls.contains(
        &"kubectl get secret ai-gateway-tls --namespace=ai-gateway --ignore-not-found -o name"
            .to_string()
    ));
    assert!(
        !calls.iter().any(|c| c.contains("create secret")),
        "{calls:?}"
    );
    assert!(calls
        .iter()
        .any(|c| c.starts_with("helm upgrade --install")));
}

#[test]
fn dry_run_prints_commands_and_values_and_changes_nothing() {
    let w = World::new();
    let mut extra = good_tls(&w);
    extra.extend([
        "--values-out".to_string(),
        w.s("values.yaml"),
        "--env".into(),
        "AIGW_LOGGING__LEVEL=debug".into(),
        "--env".into(),
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI".into(),
        "--dry-run".into(),
    ]);
    let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    let out = w.install(&refs);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let calls = w.take_calls();
    assert_eq!(
        calls,
        vec!["helm version --short", "kubectl version --client -o json"]
    );
    assert!(!w.p("values.yaml").exists());

    let text = stdout(&out);
    assert!(!text.contains("wJalrXUtnFEMI"), "a secret was printed");
    let (commands, values) = text.split_once("# values file").unwrap();
    let expected: Vec<String> = {
        let calls = install_change_calls(&w, &w.s("values.yaml"));
        // Pipelines print as one line.
        vec![
            calls[0].clone(),
            calls[1].clone(),
            format!("{} | {}", calls[2], calls[3]),
            format!("{} | {}", calls[4], calls[5]),
            calls[6].clone(),
            calls[7].clone(),
        ]
    };
    let printed: Vec<&str> = commands.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(printed, expected);
    assert!(commands.contains(
        "# then: point GitLab 18.1.1 at https://gw.example.com:443 (the Duo setting Local AI Gateway URL)"
    ));
    let values_text = values.split_once('\n').unwrap().1;
    let parsed: Value = serde_norway::from_str(values_text).unwrap();
    assert_eq!(parsed["image"]["tag"], "self-hosted-v17.5.0-ee");
    assert_eq!(
        parsed["extraEnvironmentVariables"][1],
        json!({ "name": "AWS_SECRET_ACCESS_KEY", "value": "****" })
    );
}

#[test]
fn dry_run_json_is_one_document() {
    let w = World::new();
    let mut extra = good_tls(&w);
    extra.push("--dry-run".into());
    extra.insert(0, "--json".into());
    let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    let out = w.install(&refs);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["commands"].as_array().unwrap().len(), 6);
    let values: Value = serde_norway::from_str(doc["values"].as_str().unwrap()).unwrap();
    assert_eq!(
        values["gitlab"]["apiUrl"],
        "https://gitlab.example.com/api/v4/"
    );
}

/// Runs an install expected to be refused: exit 1, the message and hint, nothing changed.
fn assert_refused(w: &World, out: &Output, message: &str, hint: &str) {
    let err = stderr(out);
    assert_eq!(code(out), 1, "{err}");
    assert!(err.contains(message), "wanted `{message}` in:\n{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("hint: ") && l.contains(hint)),
        "wanted hint `{hint}` in:\n{err}"
    );
    assert_nothing_changed(&w.take_calls());
}

#[test]
fn refuses_when_kubectl_is_missing() {
    let mut w = World::new();
    w.only_tools(&["helm"]);
    let out = full_install(&w);
    assert_refused(&w, &out, "kubectl is not on PATH", "install kubectl");
}

#[test]
fn refuses_when_helm_is_missing() {
    let mut w = World::new();
    w.only_tools(&["kubectl"]);
    let out = full_install(&w);
    assert_refused(
        &w,
        &out,
        "helm is not on PATH",
        "install helm 3.11 or later",
    );
}

#[test]
fn refuses_an_old_helm() {
    let mut w = World::new();
    w.helm_mode = "old";
    let out = full_install(&w);
    assert_refused(
        &w,
        &out,
        "helm 3.10.3 is too old: the AI Gateway chart needs helm 3.11.0 or later",
        "install a newer helm",
    );
}

#[test]
fn refuses_a_file_that_is_not_a_pem_certificate() {
    let w = World::new();
    let out = w.install(&[
        "--tls-cert",
        &w.s("garbage.pem"),
        "--tls-key",
        &w.s("good.key"),
    ]);
    assert_refused(
        &w,
        &out,
        &format!("--tls-cert {} is not a PEM certificate", w.s("garbage.pem")),
        "-----BEGIN CERTIFICATE-----",
    );
}

#[test]
fn refuses_a_key_that_does_not_match_the_certificate() {
    let w = World::new();
    let out = w.install(&[
        "--tls-cert",
        &w.s("good.pem"),
        "--tls-key",
        &w.s("other.key"),
    ]);
    assert_refused(
        &w,
        &out,
        &format!(
            "the key in {} does not belong to the certificate in {}",
            w.s("other.key"),
            w.s("good.pem")
        ),
        "private key",
    );
}

#[test]
fn refuses_a_certificate_for_another_domain() {
    let w = World::new();
    let out = w.install(&[
        "--tls-cert",
        &w.s("other.pem"),
        "--tls-key",
        &w.s("other.key"),
    ]);
    assert_refused(
        &w,
        &out,
        "does not cover the gateway domain gw.example.com (it covers other.example.com)",
        "DNS:gw.example.com",
    );
}

#[test]
fn refuses_an_expired_certificate() {
    let w = World::new();
    let out = w.install(&[
        "--tls-cert",
        &w.s("expired.pem"),
        "--tls-key",
        &w.s("expired.key"),
    ]);
    assert_refused(
        &w,
        &out,
        "expired on 2020-02-01 00:00 UTC",
        "renew the certificate for gw.example.com",
    );
}

#[test]
fn accepts_a_wildcard_certificate() {
    let w = World::new();
    let out = w.install(&[
        "--tls-cert",
        &w.s("wild.pem"),
        "--tls-key",
        &w.s("wild.key"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("covers gw.example.com"));
}

#[test]
fn refuses_localhost_and_missing_domain() {
    let w = World::new();
    let args: Vec<String> = w
        .install_args(&[])
        .into_iter()
        .map(|a| {
            if a == "gw.example.com" {
                "localhost".into()
            } else {
                a
            }
        })
        .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = w.run(&refs);
    assert_refused(
        &w,
        &out,
        "the gateway domain `localhost` is localhost",
        "--gateway-host",
    );

    let out = w.run(&[
        "install",
        "--target",
        "helm",
        "--gitlab-url",
        "https://gitlab.example.com",
    ]);
    assert_refused(&w, &out, "needs the gateway's domain", "--gateway-host");
}

#[test]
fn install_takes_gitlabs_url_from_gitlab_rb_or_refuses_without_one() {
    let w = World::new();
    let without_url: Vec<String> = {
        let args = w.install_args(&[]);
        let at = args.iter().position(|a| a == "--gitlab-url").unwrap();
        [&args[..at], &args[at + 2..]].concat()
    };
    let mut args = without_url.clone();
    args.extend(good_tls(&w));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = w.run(&refs);
    assert_refused(
        &w,
        &out,
        "needs GitLab's URL",
        "--gitlab-url https://gitlab.example.com",
    );

    // The real omnibus template with its external_url set, as on a GitLab host.
    let template = std::fs::read_to_string(support::omnibus_template()).unwrap();
    let rb = template.replacen(
        "external_url 'GENERATED_EXTERNAL_URL'",
        "external_url 'https://gitlab.internal.example.com'",
        1,
    );
    assert_ne!(rb, template, "the template's external_url line moved");
    std::fs::create_dir_all(w.p("etc-gitlab")).unwrap();
    std::fs::write(w.p("etc-gitlab/gitlab.rb"), rb).unwrap();
    // --yes: editing gitlab.rb asks first, and there is no terminal here.
    args.extend([
        "--values-out".to_string(),
        w.s("values.yaml"),
        "--yes".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = w.run(&refs);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        yaml_file(&w.p("values.yaml"))["gitlab"]["url"],
        "https://gitlab.internal.example.com"
    );
    // GitLab runs here: its gitlab.rb got the gateway URL too, and without gitlab-ctl on PATH
    // the reconfigure is left to the administrator, who is told.
    let edited = std::fs::read_to_string(w.p("etc-gitlab/gitlab.rb")).unwrap();
    assert!(
        edited.contains("'AI_GATEWAY_URL' => 'https://gw.example.com:443'"),
        "{}",
        edited
            .lines()
            .filter(|l| l.contains("AI_GATEWAY"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(stderr(&out).contains("still to do by hand: sudo gitlab-ctl reconfigure"));
}

#[test]
fn refuses_without_a_current_context_or_reachable_cluster() {
    let mut w = World::new();
    w.kubectl_mode = "no-context";
    let out = full_install(&w);
    assert_refused(
        &w,
        &out,
        "kubectl has no current context: error: current-context is not set",
        "kubectl config use-context",
    );

    w.kubectl_mode = "unreachable";
    let out = full_install(&w);
    assert_refused(
        &w,
        &out,
        "the cluster of context kind-duo is not reachable: The connection to the server 127.0.0.1:6443 was refused",
        "kubectl cluster-info",
    );
}

/// A failed step: exit 1 with the tool's stderr and the fix; later steps do not run.
fn assert_step_failed(w: &World, out: &Output, message: &str, tool_said: &str, hint: &str) {
    let err = stderr(out);
    assert_eq!(code(out), 1, "{err}");
    assert!(err.contains(message), "wanted `{message}` in:\n{err}");
    assert!(err.contains(tool_said), "wanted `{tool_said}` in:\n{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("hint: ") && l.contains(hint)),
        "wanted hint `{hint}` in:\n{err}"
    );
    assert!(!w.p("state.toml").exists(), "a failed install wrote state");
}

#[test]
fn a_failing_helm_stops_with_its_error() {
    let mut w = World::new();
    w.helm_mode = "fail";
    let out = full_install(&w);
    assert_step_failed(
        &w,
        &out,
        "could not install or upgrade the release ai-gateway: `helm upgrade --install",
        "Error: INSTALLATION FAILED: template: ai-gateway/templates/deployment.yaml",
        "kubectl get pods --namespace ai-gateway",
    );
    let calls = w.take_calls();
    assert!(
        calls.last().unwrap().starts_with("helm upgrade --install"),
        "{calls:?}"
    );
}

#[test]
fn a_failed_step_keeps_the_temporary_values_file_it_names() {
    let mut w = World::new();
    w.helm_mode = "fail";
    let tls = good_tls(&w);
    let refs: Vec<&str> = tls.iter().map(String::as_str).collect();
    let out = w.install(&refs);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    let kept = err
        .lines()
        .find_map(|l| l.strip_prefix("warning: kept the values file helm was given: "))
        .unwrap_or_else(|| panic!("no kept values file in:\n{err}"));
    assert!(err.contains(&format!("--values {kept}")), "{err}");
    let values = yaml_file(Path::new(kept));
    assert_eq!(values["image"]["tag"], "self-hosted-v17.5.0-ee");
    std::fs::remove_file(kept).unwrap();
}

#[test]
fn a_helm_timeout_names_the_cause_and_the_fix() {
    let mut w = World::new();
    w.helm_mode = "timeout";
    let out = full_install(&w);
    assert_step_failed(
        &w,
        &out,
        "exited with status 1",
        "Error: INSTALLATION FAILED: context deadline exceeded",
        "the cluster did not get the gateway ready in time",
    );
    assert!(stderr(&out).contains("--helm-timeout"));
}

#[test]
fn pods_that_never_get_ready_stop_the_install() {
    let mut w = World::new();
    w.kubectl_mode = "wait-timeout";
    let out = full_install(&w);
    assert_step_failed(
        &w,
        &out,
        "could not wait for the pods in ai-gateway to be ready",
        "error: timed out waiting for the condition on pods/ai-gateway-6c5f7d9b8-x2x4q",
        "kubectl logs --namespace ai-gateway -l app.kubernetes.io/instance=ai-gateway",
    );
}

#[test]
fn a_tool_that_hangs_is_stopped_after_its_timeout_and_grace() {
    let mut w = World::new();
    w.helm_mode = "hang";
    let started = std::time::Instant::now();
    let mut extra = good_tls(&w);
    extra.extend(["--helm-timeout".to_string(), "1".into()]);
    let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    let out = w.install(&refs);
    assert_step_failed(
        &w,
        &out,
        "did not finish within 6 s; duo-selfhost stopped it",
        "helm upgrade --install",
        "kubectl get pods --namespace ai-gateway",
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn a_forbidden_apply_says_which_permission() {
    let mut w = World::new();
    w.kubectl_mode = "forbidden";
    let out = full_install(&w);
    assert_step_failed(
        &w,
        &out,
        "could not create the namespace ai-gateway",
        "Error from server (Forbidden): namespaces \"ai-gateway\" is forbidden",
        "kubectl auth can-i create namespaces",
    );
}

#[test]
fn upgrade_changes_only_the_image_and_keeps_every_value() {
    let w = World::new();
    assert_eq!(code(&full_install(&w)), 0);
    w.take_calls();

    let new_image = format!("{IMAGE_REPO}:self-hosted-v17.6.1-ee");
    let values = w.s("values.yaml");
    let base = [
        "upgrade",
        "--target",
        "helm",
        "--image",
        &new_image,
        "--values-out",
        &values,
    ];

    let check = w.run(&[&base[..], &["--check"]].concat());
    assert_eq!(code(&check), 100, "{}", stderr(&check));
    assert!(stdout(&check).contains("upgrade available"));
    w.take_calls();

    let out = w.run(&base);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        w.take_calls(),
        vec![
            "helm version --short".to_string(),
            "kubectl version --client -o json".into(),
            "kubectl config current-context".into(),
            "kubectl version -o json --request-timeout=20s".into(),
            "helm get values ai-gateway --namespace=ai-gateway -o json".into(),
            format!("helm repo add ai-gateway {REPO_URL} --force-update"),
            "helm repo update ai-gateway".into(),
            format!("helm upgrade --install ai-gateway ai-gateway/ai-gateway --version 0.5.0 --namespace=ai-gateway --values {values} --wait --wait-for-jobs --timeout=300s"),
            "kubectl wait pod --all --for=condition=Ready --namespace=ai-gateway --timeout=300s".into(),
        ]
    );
    assert_eq!(
        yaml_file(&w.p("values.yaml")),
        expected_values("self-hosted-v17.6.1-ee")
    );
    let state = std::fs::read_to_string(w.p("state.toml")).unwrap();
    assert!(state.contains(&new_image), "{state}");

    // Up to date now: the second upgrade reads the release and changes nothing.
    let again = w.run(&base);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(stdout(&again).contains("already runs"));
    let calls = w.take_calls();
    assert_eq!(
        calls.last().unwrap(),
        "helm get values ai-gateway --namespace=ai-gateway -o json"
    );
    let check = w.run(&[&base[..], &["--check"]].concat());
    assert_eq!(code(&check), 0);
}

#[test]
fn upgrade_keeps_values_it_does_not_manage() {
    let w = World::new();
    assert_eq!(code(&full_install(&w)), 0);
    // Someone tuned the release by hand.
    let stored = w.p("cluster/releases/ai-gateway/ai-gateway/values.yaml");
    let mut text = std::fs::read_to_string(&stored).unwrap();
    text.push_str("replicaCount: 3\nresources:\n  limits:\n    memory: 2Gi\n");
    text = text.replace("image:\n", "image:\n  pullPolicy: Always\n");
    std::fs::write(&stored, text).unwrap();

    let out = w.run(&[
        "upgrade",
        "--target",
        "helm",
        "--image",
        &format!("{IMAGE_REPO}:self-hosted-v17.6.0-ee"),
        "--values-out",
        &w.s("values.yaml"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut expected = expected_values("self-hosted-v17.6.0-ee");
    expected["replicaCount"] = json!(3);
    expected["resources"] = json!({ "limits": { "memory": "2Gi" } });
    expected["image"]["pullPolicy"] = json!("Always");
    assert_eq!(yaml_file(&w.p("values.yaml")), expected);
}

#[test]
fn upgrade_without_a_release_refuses() {
    let w = World::new();
    let out = w.run(&[
        "upgrade",
        "--target",
        "helm",
        "--image",
        &format!("{IMAGE_REPO}:self-hosted-v17.6.0-ee"),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("there is no Helm release ai-gateway in namespace ai-gateway"));
    assert!(stderr(&out).contains("hint: install it first"));
}

/// The first command of a step's pipeline, as the plan has it.
fn manifest_commands(cert: &Path, key: &Path) -> Vec<duo_selfhost::helm::exec::Cmd> {
    let release = duo_selfhost::helm::Release {
        name: "ai-gateway".into(),
        namespace: "ai-gateway".into(),
        chart_version: "0.5.0".into(),
    };
    let tls = duo_selfhost::helm::TlsFiles {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    };
    duo_selfhost::helm::plan(&duo_selfhost::helm::PlanInput {
        release: &release,
        values_file: Path::new("values.yaml"),
        tls: Some(&tls),
        tls_secret: "ai-gateway-tls",
        timeout_secs: 300,
        create_namespace: true,
        chart: &duo_selfhost::helm::ChartSource::Repository,
    })
    .into_iter()
    .filter(|step| step.piped_into.is_some())
    .map(|step| step.command)
    .collect()
}

/// The first kubectl on PATH that is not a stand-in.
fn real_kubectl() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file() && !p.starts_with(stand_ins()))
        .expect("a real kubectl on PATH (scripts/install-deps installs Debian's kubernetes-client)")
}

#[test]
fn real_kubectl_accepts_the_namespace_and_secret_manifests_and_the_stand_in_matches_it() {
    let w = World::new();
    let kubectl = real_kubectl();
    let commands = manifest_commands(&w.p("good.pem"), &w.p("good.key"));
    assert_eq!(commands.len(), 2);
    for cmd in commands {
        let run = |program: &Path| {
            let out = Command::new(program)
                .args(&cmd.args)
                .env("HOME", w.p("home"))
                .env("KUBECONFIG", w.p("home/no-kubeconfig"))
                .env("STANDIN_STATE", w.p("cluster"))
                .env("STANDIN_LOG", w.p("calls.log"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{} {:?}: {}",
                program.display(),
                cmd.args,
                String::from_utf8_lossy(&out.stderr)
            );
            serde_norway::from_slice::<Value>(&out.stdout).unwrap()
        };
        let real = run(&kubectl);
        let stand_in = run(&stand_ins().join("kubectl"));
        assert_eq!(
            stand_in, real,
            "the stand-in's manifest differs from kubectl's"
        );
        match real["kind"].as_str().unwrap() {
            "Namespace" => assert_eq!(real["metadata"]["name"], "ai-gateway"),
            "Secret" => {
                assert_eq!(real["type"], "kubernetes.io/tls");
                assert_eq!(real["metadata"]["name"], "ai-gateway-tls");
                assert_eq!(real["metadata"]["namespace"], "ai-gateway");
                assert!(real["data"]["tls.crt"].as_str().unwrap().len() > 100);
            }
            other => panic!("unexpected manifest kind {other}"),
        }
    }

    // The real kubectl checks the pair itself: a key for another certificate is refused.
    let mismatched = manifest_commands(&w.p("good.pem"), &w.p("other.key"));
    let out = Command::new(&kubectl)
        .args(&mismatched[1].args)
        .env("HOME", w.p("home"))
        .env("KUBECONFIG", w.p("home/no-kubeconfig"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

const TOKEN: &str = "glpat-helm-target-test";

fn tag_file(w: &World) -> String {
    std::fs::write(
        w.p("tags.txt"),
        "self-hosted-v18.0.0-ee\nself-hosted-v18.1.0-ee\nself-hosted-v18.1.2-ee\nself-hosted-v18.2.1-ee\nlatest\n",
    )
    .unwrap();
    w.s("tags.txt")
}

#[test]
fn install_reads_gitlab_version_picks_the_tag_and_points_gitlab_at_the_gateway() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.1.1-ee").token(TOKEN));
    let mut w = World::new();
    w.env.push(("GITLAB_TOKEN".into(), TOKEN.into()));
    let tags = tag_file(&w);
    let mut args: Vec<String> = [
        "install",
        "--target",
        "helm",
        "--gateway-host",
        "gw.example.com",
        "--gitlab-url",
        &gitlab.url,
        "--available-tags",
        &tags,
        "--values-out",
        &w.s("values.yaml"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(good_tls(&w));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = w.run(&refs);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let values = yaml_file(&w.p("values.yaml"));
    assert_eq!(values["image"]["repository"], IMAGE_REPO);
    assert_eq!(values["image"]["tag"], "self-hosted-v18.1.2-ee");
    assert_eq!(values["gitlab"]["url"], gitlab.url.as_str());
    assert_eq!(
        values["gitlab"]["apiUrl"],
        format!("{}/api/v4/", gitlab.url).as_str()
    );
    assert_eq!(
        gitlab.ai_gateway_url().as_deref(),
        Some("https://gw.example.com:443")
    );
    assert!(stdout(&out).contains("GitLab uses the gateway at https://gw.example.com:443"));
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains(TOKEN), "the token was printed");
    }
    let state = std::fs::read_to_string(w.p("state.toml")).unwrap();
    assert!(state.contains("version = \"18.1.1\""), "{state}");
    assert!(!state.contains(TOKEN));

    // Again: the cluster steps repeat harmlessly and GitLab's setting is already right.
    w.take_calls();
    let again = w.run(&refs);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(stderr(&again).contains("already https://gw.example.com:443"));
}

#[test]
fn install_for_gitlab_17_without_gitlab_rb_records_the_gateway_then_says_where_to_set_it() {
    let w = World::new();
    let args: Vec<String> = w
        .install_args(&[])
        .into_iter()
        .map(|a| if a == "18.1.1" { "17.5.0".into() } else { a })
        .chain(good_tls(&w))
        .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = w.run(&refs);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("GitLab 17.5.0 reads the gateway URL from gitlab.rb"),
        "{err}"
    );
    assert!(
        err.contains("AI_GATEWAY_URL=https://gw.example.com:443"),
        "{err}"
    );
    // The gateway itself is installed and recorded.
    assert!(w
        .take_calls()
        .iter()
        .any(|c| c.starts_with("kubectl wait pod")));
    let state = std::fs::read_to_string(w.p("state.toml")).unwrap();
    assert!(state.contains("target = \"helm\""), "{state}");
}

#[test]
fn upgrade_follows_the_image_tag_rules_for_the_new_gitlab_version() {
    let w = World::new();
    assert_eq!(code(&full_install(&w)), 0);
    w.take_calls();
    let tags = tag_file(&w);
    let out = w.run(&[
        "upgrade",
        "--target",
        "helm",
        "--to-version",
        "18.2.0",
        "--available-tags",
        &tags,
        "--values-out",
        &w.s("values.yaml"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let values = yaml_file(&w.p("values.yaml"));
    assert_eq!(values, {
        let mut v = expected_values("self-hosted-v18.2.1-ee");
        v["image"]["repository"] = json!(IMAGE_REPO);
        v
    });
    let state = std::fs::read_to_string(w.p("state.toml")).unwrap();
    assert!(state.contains("version = \"18.2.0\""), "{state}");
}

#[test]
fn verbose_output_streams_the_tools_but_never_the_key() {
    let w = World::new();
    let mut args = good_tls(&w);
    args.push("-vv".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = w.install(&refs);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    // The tools' own lines, as they said them.
    assert!(
        err.contains("Release \"ai-gateway\" does not exist. Installing it now."),
        "{err}"
    );
    assert!(
        err.contains("secret/ai-gateway-tls serverside-applied"),
        "{err}"
    );
    assert!(
        err.contains("pod/ai-gateway-6c5f7d9b8-x2x4q condition met"),
        "{err}"
    );
    // The Secret manifest carries the key base64-encoded; neither form may appear.
    let key = std::fs::read_to_string(w.p("good.key")).unwrap();
    let key_line = key.lines().nth(1).unwrap();
    for text in [err.as_str(), &stdout(&out)] {
        assert!(!text.contains("PRIVATE KEY"), "the key was printed");
        assert!(!text.contains(key_line), "the key was printed");
        assert!(!text.contains("tls.key"), "the Secret manifest was printed");
    }
}

#[test]
fn a_broken_state_file_is_refused_before_the_cluster_changes() {
    let w = World::new();
    std::fs::write(w.p("state.toml"), "schema_version = [").unwrap();
    let out = full_install(&w);
    assert_refused(&w, &out, "the state file", "fix or remove");
}

/// A Helm chart repository on loopback (what `helm package` and `helm repo index` make): an
/// `index.yaml` listing the AI Gateway chart at 0.4.0 and 0.5.0 and their archives.
struct ChartRepository {
    server: support::stub_server::StubServer,
    /// Archive bytes by version.
    archives: std::collections::BTreeMap<&'static str, Vec<u8>>,
}

impl ChartRepository {
    fn start() -> ChartRepository {
        use sha2::Digest;
        let mut archives = std::collections::BTreeMap::new();
        let mut index = String::from("apiVersion: v1\nentries:\n  ai-gateway:\n");
        for version in ["0.4.0", "0.5.0"] {
            let bytes = chart_archive(version);
            index.push_str(&format!(
                "  - apiVersion: v2\n    name: ai-gateway\n    version: {version}\n    appVersion: \"1.0\"\n    digest: {}\n    urls:\n    - ai-gateway-{version}.tgz\n",
                hex::encode(sha2::Sha256::digest(&bytes))
            ));
            archives.insert(version, bytes);
        }
        index.push_str("generated: \"2026-12-01T00:00:00Z\"\n");
        let served = archives.clone();
        let server = support::stub_server::StubServer::start(move |req| {
            use support::stub_server::Reply;
            if req.path == "/index.yaml" {
                return Reply::Text(200, index.clone());
            }
            let found = served
                .iter()
                .find(|(v, _)| req.path == format!("/ai-gateway-{v}.tgz"));
            match found {
                Some((_, bytes)) => {
                    let mut reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-tar\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        bytes.len()
                    )
                    .into_bytes();
                    reply.extend_from_slice(bytes);
                    Reply::Raw(reply)
                }
                None => Reply::Text(404, "not found".into()),
            }
        });
        ChartRepository { server, archives }
    }
}

/// A chart archive as `helm package` lays it out: `ai-gateway/Chart.yaml`, values, a template.
fn chart_archive(version: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("ai-gateway");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: ai-gateway\ndescription: GitLab AI Gateway\ntype: application\nversion: {version}\nappVersion: \"1.0\"\n"),
    )
    .unwrap();
    std::fs::write(
        chart.join("values.yaml"),
        "image:\n  repository: \"\"\n  tag: \"\"\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/deployment.yaml"),
        "# the gateway's Deployment\n",
    )
    .unwrap();
    let archive = dir.path().join("chart.tgz");
    let status = Command::new("tar")
        .args(["--owner=0", "--group=0", "--numeric-owner", "-czf"])
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .arg("ai-gateway")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(archive).unwrap()
}

fn manifest_of(bundle: &Path) -> Value {
    use std::io::Read;
    let mut archive = tar::Archive::new(std::fs::File::open(bundle).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == "manifest.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            return serde_json::from_str(&text).unwrap();
        }
    }
    panic!("no manifest.json in {}", bundle.display());
}

#[test]
fn a_helm_bundle_carries_the_chart_and_install_offline_installs_it_without_the_repository() {
    use support::docker_fixtures as fx;
    let internet = fx::OwnRegistry::start();
    internet.publish_gateway("18.1.0");
    let image = internet.publish_gateway("18.1.1");
    let charts = ChartRepository::start();

    // The connected machine: helm pulls the chart from the repository, the engine the image.
    let mut connected = World::new();
    connected
        .env
        .push(("DUO_SELFHOST_DATA_DIR".into(), connected.s("data")));
    let bundle = connected.p("duo-helm.bundle");
    let out = connected.run(&[
        "bundle",
        "create",
        "--target",
        "helm",
        "--gitlab-version",
        "18.1.1",
        "--registry",
        &internet.mirror(),
        "--chart-repo",
        &charts.server.url(),
        "--output",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let pulls: Vec<String> = connected
        .take_calls()
        .into_iter()
        .filter(|c| c.starts_with("helm pull"))
        .collect();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert!(
        pulls[0].starts_with(&format!(
            "helm pull ai-gateway --repo {} --version 0.5.0 --destination ",
            charts.server.url()
        )),
        "{pulls:?}"
    );
    let manifest = manifest_of(&bundle);
    assert_eq!(manifest["format_version"], 2);
    let chart_item = manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "helm-chart")
        .expect("the chart is an item of the manifest")
        .clone();
    let served = &charts.archives["0.5.0"];
    {
        use sha2::Digest;
        assert_eq!(chart_item["path"], "charts/ai-gateway-0.5.0.tgz");
        assert_eq!(chart_item["version"], "0.5.0");
        assert_eq!(chart_item["size"], served.len() as u64);
        assert_eq!(
            chart_item["sha256"],
            hex::encode(sha2::Sha256::digest(served))
        );
    }
    let install_args: Vec<&str> = manifest["install_args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        install_args
            .windows(4)
            .any(|w| w == ["--target", "helm", "--chart-version", "0.5.0"]),
        "{install_args:?}"
    );
    fx::docker(&["rmi", &image]);
    drop(internet);
    let asked_before = charts.server.requests().len();

    // The air-gapped host: nothing there, no chart repository configured.
    let mut airgapped = World::new();
    airgapped
        .env
        .push(("DUO_SELFHOST_DATA_DIR".into(), airgapped.s("data")));
    let stored = airgapped.p("data/charts/ai-gateway-0.5.0.tgz");
    let install = |w: &World| {
        let mut args = vec![
            "install".to_string(),
            "--offline".into(),
            "--target".into(),
            "helm".into(),
            "--gateway-host".into(),
            "gw.example.com".into(),
            "--gitlab-url".into(),
            "https://gitlab.example.com/".into(),
            "--gitlab-version".into(),
            "18.1.1".into(),
            "--registry".into(),
            internet_mirror(&image),
        ];
        args.extend(good_tls(w));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        w.run(&refs)
    };

    // Before a load: the missing chart names the bundle commands, and nothing runs.
    let out = install(&airgapped);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--offline: no bundle has brought the AI Gateway chart 0.5.0"),
        "{err}"
    );
    assert!(
        err.contains("duo-selfhost bundle create --target helm --chart-version 0.5.0 --gitlab-version 18.1.1"),
        "{err}"
    );
    assert!(airgapped.take_calls().is_empty());

    // A flipped byte in the chart fails verify and load, and stores nothing.
    let damaged = airgapped.p("damaged.bundle");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = {
        let mut archive = tar::Archive::new(std::fs::File::open(&bundle).unwrap());
        let entry = archive
            .entries_with_seek()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_string_lossy() == "charts/ai-gateway-0.5.0.tgz")
            .unwrap();
        (entry.raw_file_position() + entry.size() / 2) as usize
    };
    bytes[at] ^= 0x5a;
    std::fs::write(&damaged, bytes).unwrap();
    for command in ["verify", "load"] {
        let out = airgapped.run(&["bundle", command, damaged.to_str().unwrap()]);
        assert_eq!(code(&out), 1, "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("charts/ai-gateway-0.5.0.tgz is damaged: sha256"),
            "{command}: {}",
            stderr(&out)
        );
        assert!(!stored.exists(), "{command}: the damaged chart was stored");
        assert!(
            !airgapped.p("data/tags/gateway-18.1.txt").exists(),
            "{command}: the tag list was stored"
        );
    }

    let out = airgapped.run(&["bundle", "load", bundle.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(&std::fs::read(&stored).unwrap(), served, "the stored chart");
    assert!(
        stdout(&out).contains(&format!(
            "duo-selfhost install --offline --target helm --chart-version 0.5.0 --gitlab-version 18.1.1 --registry {}",
            internet_mirror(&image)
        )),
        "{}",
        stdout(&out)
    );
    let out = airgapped.run(&["bundle", "load", bundle.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("nothing changed"), "{}", stdout(&out));
    let _ = fx::docker_ok(&["rmi", &image]);
    airgapped.take_calls();

    // install --offline: helm installs the stored archive; no repository is added or asked.
    let out = install(&airgapped);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let calls = airgapped.take_calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("helm repo")),
        "{calls:?}"
    );
    let upgrade = calls
        .iter()
        .find(|c| c.starts_with("helm upgrade --install"))
        .expect("helm installed the release");
    assert!(
        upgrade.starts_with(&format!(
            "helm upgrade --install ai-gateway {} --namespace=ai-gateway --values ",
            stored.display()
        )),
        "{upgrade}"
    );
    assert_eq!(
        std::fs::read_to_string(
            airgapped.p("cluster/releases/ai-gateway/ai-gateway/chart-version")
        )
        .unwrap()
        .trim(),
        "0.5.0",
        "helm read the version from the archive"
    );
    let values = yaml_file(&airgapped.p("cluster/releases/ai-gateway/ai-gateway/values.yaml"));
    assert_eq!(values["image"]["tag"], "self-hosted-v18.1.1-ee");
    assert_eq!(
        values["image"]["repository"],
        internet_mirror(&image).as_str()
    );
    assert_eq!(
        charts.server.requests().len(),
        asked_before,
        "the chart repository was asked after the bundle was made"
    );
}

/// The repository of a mirror image reference.
fn internet_mirror(image: &str) -> String {
    duo_selfhost::image_tag::split_reference(image)
        .0
        .to_string()
}
