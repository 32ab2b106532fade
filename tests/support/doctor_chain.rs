//! The chain doctor checks, built for real on this machine: `duo-selfhost serve` on the SmolLM2
//! test model, the fake GitLab (which asks the stand-in gateway for code suggestions, which asks
//! serve), a copy of the omnibus gitlab.rb with its rendered envdir, and a gateway container on
//! the Docker Engine sharing the host's network. Shared by doctor's end-to-end tests and the
//! CLI benchmarks (tests/bench_cli.rs), which time doctor against exactly this chain.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::gateway_fixture::GatewayStandin;
use super::gitlab_fixture::{FakeGitlab, FakeGitlabConfig, STABLE_FEATURES};

/// A stand-in gateway image under a `self-hosted-vX.Y.Z-ee` tag: the shared fixture from
/// `docker_fixtures`; the container checks read its state and env and exec into it.
pub fn standin_image(version: &str) -> String {
    super::docker_fixtures::healthy_gateway_image(version)
}

/// A container that is removed when the test ends, however it ends.
pub struct Container(pub String);

impl Container {
    pub fn run(name: &str, args: &[&str], image: &str) -> Self {
        Self::run_cmd(name, args, image, &[])
    }

    pub fn run_cmd(name: &str, args: &[&str], image: &str, cmd: &[&str]) -> Self {
        let _ = Command::new("docker").args(["rm", "-f", name]).output();
        let out = Command::new("docker")
            .args(["run", "-d", "--name", name])
            .args(args)
            .arg(image)
            .args(cmd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Container(name.to_string())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// `duo-selfhost serve` on the real SmolLM2 GGUF, stopped when dropped.
pub struct Serve {
    child: std::process::Child,
    pub port: u16,
    /// Its private HOME and XDG dirs.
    _root: tempfile::TempDir,
}

impl Serve {
    /// The name the model is served under.
    pub const SERVED_NAME: &'static str = "smollm2-135m";

    pub fn start() -> Self {
        Self::start_with(Path::new(env!("CARGO_BIN_EXE_duo-selfhost")), 2)
    }

    /// `bin serve --threads THREADS`: the benchmarks pass the binary they time, and the
    /// threads that keep the model's speed steady on a machine shared with other work.
    pub fn start_with(bin: &Path, threads: u32) -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let root = tempfile::tempdir().unwrap();
        let child = super::command_for(bin, root.path())
            .args(["serve", "--model"])
            .arg(super::test_model())
            .args([
                "--served-model-name",
                Self::SERVED_NAME,
                "--ctx-size",
                "2048",
                // The gateway samples at temperature 0.32: a fixed seed keeps the small test
                // model's answers from changing between runs. With seed 1 SmolLM2 completes the
                // probe's function body; with 42 it answers nothing, every time.
                "--seed",
                "1",
            ])
            .args(["--threads", &threads.to_string()])
            .args(["--port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut serve = Serve {
            child,
            port,
            _root: root,
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("duo-selfhost serve exited early: {status}");
            }
            if http_get_ok(port, "/v1/models").is_some_and(|body| body.contains(Self::SERVED_NAME))
            {
                break;
            }
            assert!(Instant::now() < deadline, "serve did not come up in 180 s");
            std::thread::sleep(Duration::from_millis(250));
        }
        serve
    }

    /// The OpenAI base URL, ending in /v1.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain GET on 127.0.0.1, the whole response when it answered 200.
pub fn http_get_ok(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// This machine's name: a gateway URL GitLab would accept (not localhost), that still stays on
/// this host.
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .expect("/etc/hostname")
}

/// A copy of the real omnibus template with `env_block` (Ruby) appended as `home/gitlab.rb`, and
/// an envdir `home/envdir` holding `rendered` as reconfigure would have written it.
pub fn gitlab_host(home: &Path, env_block: &str, rendered: &[(&str, &str)]) {
    let template =
        std::fs::read_to_string(super::omnibus_template()).expect("the omnibus gitlab.rb template");
    std::fs::write(home.join("gitlab.rb"), format!("{template}\n{env_block}\n")).unwrap();
    let envdir = home.join("envdir");
    std::fs::create_dir_all(&envdir).unwrap();
    for (key, value) in rendered {
        std::fs::write(envdir.join(key), value).unwrap();
    }
}

/// How a [`GreenChain`] differs from the healthy default.
#[derive(Debug, Clone, Default)]
pub struct ChainSetup {
    /// The model endpoint GitLab stores, instead of serve's.
    pub stored_endpoint: Option<String>,
    /// More `KEY=VALUE` env for the gateway container.
    pub container_env: Vec<String>,
    /// Shell run in the container before it idles (to put lines in its log).
    pub container_script: String,
    /// More variables in gitlab.rb's `gitlab_rails['env']` (rendered too).
    pub rb_env: Vec<(String, String)>,
}

/// The whole chain, every link healthy: a GitLab 17.9 host (gitlab.rb and its rendered env
/// name the gateway; the API has the setting, the licence, the feature flag and the
/// self-hosted model at serve's endpoint), the stand-in gateway on this host's name, the
/// gateway container (on the host's network, idle: its env, state and network are what the
/// container checks read and exec into), and the model behind `serve`.
pub struct GreenChain {
    pub serve: Serve,
    pub gitlab: FakeGitlab,
    pub gateway: GatewayStandin,
    pub gateway_url: String,
    pub container: String,
    pub home: tempfile::TempDir,
    token: String,
    _container: Container,
}

impl GreenChain {
    pub fn start(token: &str) -> Self {
        Self::start_with(Serve::start(), token)
    }

    /// The chain with `serve` as its model server.
    pub fn start_with(serve: Serve, token: &str) -> Self {
        Self::start_setup(serve, token, ChainSetup::default())
    }

    /// The chain with `serve`, changed as `setup` says.
    pub fn start_setup(serve: Serve, token: &str, setup: ChainSetup) -> Self {
        let stored = setup
            .stored_endpoint
            .clone()
            .unwrap_or_else(|| serve.endpoint());
        let gateway = GatewayStandin::start(&host_name());
        let gateway_url = gateway.url.clone();
        let gitlab = FakeGitlab::start(
            FakeGitlabConfig::new("17.9.0-ee")
                .token(token)
                .feature("ai_custom_model", "on")
                .ai_gateway_url(&gateway_url)
                .self_hosted_model(&stored, &format!("custom_openai/{}", Serve::SERVED_NAME))
                .assign(STABLE_FEATURES, "model-1"),
        );
        let container = format!("duo-doctor-green-{}-{}", std::process::id(), gateway.port);
        let mut env = vec![
            format!("AIGW_GITLAB_URL={}", gitlab.url),
            format!("AIGW_GITLAB_API_URL={}/api/v4/", gitlab.url),
            "AIGW_CUSTOM_MODELS__ENABLED=true".to_string(),
        ];
        env.extend(setup.container_env.iter().cloned());
        let mut args: Vec<&str> = vec!["--network", "host"];
        for entry in &env {
            args.extend(["-e", entry.as_str()]);
        }
        let script = format!("{}exec sleep 100000", setup.container_script);
        let idle = Container::run_cmd(
            &container,
            &args,
            &standin_image("17.9.0"),
            &["/bin/sh", "-c", &script],
        );
        let home = tempfile::tempdir().unwrap();
        let mut rb_env = vec![("AI_GATEWAY_URL".to_string(), gateway_url.clone())];
        rb_env.extend(setup.rb_env.iter().cloned());
        let block: Vec<String> = rb_env
            .iter()
            .map(|(k, v)| format!("  '{k}' => '{v}',"))
            .collect();
        let rendered: Vec<(String, String)> = rb_env
            .iter()
            .map(|(k, v)| (k.clone(), format!("{v}\n")))
            .collect();
        let rendered: Vec<(&str, &str)> = rendered
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        gitlab_host(
            home.path(),
            &format!("gitlab_rails['env'] = {{\n{}\n}}", block.join("\n")),
            &rendered,
        );
        GreenChain {
            serve,
            gitlab,
            gateway,
            gateway_url,
            container,
            home,
            token: token.to_string(),
            _container: idle,
        }
    }

    /// `--json doctor` over every check, with this chain's inputs and `model_endpoint` as the
    /// model (the chain's own, or something else in its place).
    pub fn doctor_args_with_model(&self, model_endpoint: &str) -> Vec<String> {
        let rb = self.home.path().join("gitlab.rb");
        [
            "--json",
            "doctor",
            "--only",
            "*",
            "--gitlab-url",
            &self.gitlab.url,
            "--gitlab-token",
            &self.token,
            "--gitlab-rb",
            rb.to_str().unwrap(),
            "--gateway-url",
            &self.gateway_url,
            "--container",
            &self.container,
            "--model-endpoint",
            model_endpoint,
            "--model-identifier",
            &format!("custom_openai/{}", Serve::SERVED_NAME),
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    pub fn doctor_args(&self) -> Vec<String> {
        self.doctor_args_with_model(&self.serve.endpoint())
    }

    /// The environment doctor runs in: a private HOME with no state file, this chain's
    /// rendered envdir, and the caller's PATH and DOCKER_HOST.
    pub fn doctor_env(&self) -> Vec<(String, String)> {
        let home = self.home.path();
        let path = |p: PathBuf| p.to_str().unwrap().to_string();
        let mut env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            ),
            ("HOME".into(), path(home.to_path_buf())),
            ("XDG_CONFIG_HOME".into(), path(home.join(".config"))),
            ("DUO_SELFHOST_STATE".into(), path(home.join("state.toml"))),
            (
                "DUO_SELFHOST_GITLAB_ENVDIR".into(),
                path(home.join("envdir")),
            ),
        ];
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            env.push(("DOCKER_HOST".into(), host));
        }
        env
    }
}

/// What doctor should say of each check against a [`GreenChain`]: only what does not apply to
/// this chain is skipped (TLS on an http URL, the 18.x keys on 17.9, Bedrock); all else is ok.
pub fn green_status(id: &str) -> &'static str {
    match id {
        "gateway.tls"
        | "gateway.container.jwt_keys"
        | "bedrock.identifier"
        | "bedrock.credentials" => "skip",
        _ => "ok",
    }
}
