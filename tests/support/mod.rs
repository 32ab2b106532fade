//! Shared helpers for the integration tests: the real binary in a private home, unique names,
//! free ports, the Docker fixtures (a stand-in gateway image and a local registry), and the
//! whole chain doctor checks (`doctor_chain`).
#![allow(dead_code)]

pub mod docker_fixtures;
pub mod doctor_chain;
pub mod gateway_fixture;
pub mod gitlab_fixture;
pub mod hub;
pub mod stub_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The real omnibus gitlab.rb template.
pub fn omnibus_template() -> PathBuf {
    duo_selfhost::test_support::shared_file("fixtures/gitlab.rb.template")
}

/// The catalog name of the test model, SmolLM2-135M-Instruct.
pub const TEST_MODEL: &str = "smollm2-135m";

/// The test model's GGUF in this machine's model cache, found by the binary's own cache rules;
/// panics (never skips) when it is not there.
pub fn test_model() -> PathBuf {
    let source = test_model_source();
    let path = duo_selfhost::model_cache::snapshot_path(source);
    assert!(
        path.is_file(),
        "the test model SmolLM2-135M-Instruct is missing at {}: run `scripts/fetch-test-model` \
         (or `duo-selfhost models pull {TEST_MODEL}`)",
        path.display()
    );
    path
}

/// Where the test model comes from, as the catalog says.
pub fn test_model_source() -> &'static duo_selfhost::catalog::GgufSource {
    duo_selfhost::catalog::find(TEST_MODEL)
        .and_then(|model| model.gguf.as_ref())
        .expect("the test model is in the catalog with a GGUF")
}

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_duo-selfhost"))
}

/// `cmd` as a person runs it in a terminal, for the pty tests: a terminal type (the cleared
/// environment of [`duo_command`] has none, and without one no progress bar or colour is drawn),
/// and SIGINT back at its default disposition in the child. A parent that ignores SIGINT (a
/// test run started as a background job) hands that on through exec, and then a Ctrl-C typed
/// into a pseudo-terminal would do nothing.
pub fn on_terminal(mut cmd: Command) -> Command {
    use std::os::unix::process::CommandExt;
    cmd.env("TERM", "xterm-256color");
    // SAFETY: signal(2) is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd
}

/// The parent's Hugging Face cache, for a child process whose HF_HOME is its own (the test
/// model is read from there).
pub const PARENT_HF_HOME: &str = "DUO_SELFHOST_TEST_PARENT_HF_HOME";

/// Runs the test `test_path` (its path inside the test binary) again in a child process with
/// `var` set to a fresh temporary directory, for tests of library code that reads the process
/// environment, which all tests in this binary share. In the parent: waits for the child,
/// asserts it passed and returns None. In the child: returns the directory `var` names.
pub fn in_child_process_with(test_path: &str, var: &str) -> Option<PathBuf> {
    const CHILD_MARK: &str = "DUO_SELFHOST_TEST_CHILD";
    if let Some(dir) = std::env::var_os(CHILD_MARK).and(std::env::var_os(var)) {
        return Some(PathBuf::from(dir));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args([test_path, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_MARK, "1")
        .env(PARENT_HF_HOME, duo_selfhost::model_cache::hf_home())
        .env(var, dir.path())
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{test_path} in a child process with its own {var}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    None
}

/// The vLLM container publishes host port 8000: the tests that run one take this in turn.
pub fn vllm_port() -> std::sync::MutexGuard<'static, ()> {
    static PORT_8000: std::sync::Mutex<()> = std::sync::Mutex::new(());
    PORT_8000.lock().unwrap_or_else(|e| e.into_inner())
}

/// A private HOME and XDG dirs, so a test never touches the machine's config or /etc.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["home", "config", "data", "cache"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_file(&self) -> PathBuf {
        self.path().join("state.toml")
    }

    /// A copy of the real omnibus gitlab.rb template to point GitLab at the gateway in.
    pub fn gitlab_rb(&self) -> PathBuf {
        let path = self.path().join("gitlab.rb");
        if !path.exists() {
            std::fs::copy(omnibus_template(), &path).expect("copy the gitlab.rb template");
        }
        path
    }

    /// The binary under test in this sandbox ([`duo_command`]).
    pub fn command(&self) -> Command {
        duo_command(self.path())
    }

    /// Insta settings for snapshots of this sandbox's output ([`snapshot_settings`]).
    pub fn snapshot_settings(&self) -> insta::Settings {
        snapshot_settings(self.path())
    }
}

/// The one way a test starts the binary: a cleared environment holding only PATH, a private
/// HOME and XDG dirs under `root`, and the state file, data dir, gitlab.rb and omnibus envdir
/// at paths inside `root` that do not exist until a test creates them, so nothing of the
/// machine is read or changed; no colour, help wrapped at 100 columns. DOCKER_HOST is passed
/// on, so the binary talks to the engine the test's own Docker fixtures use. An area adds its
/// own variables to the returned command.
pub fn duo_command(root: &Path) -> Command {
    command_for(&bin(), root)
}

/// [`duo_command`] for another build of the binary (the benchmarks time a release build).
pub fn command_for(program: &Path, root: &Path) -> Command {
    for sub in ["home", "config", "data", "cache"] {
        std::fs::create_dir_all(root.join(sub)).expect("the sandbox's dirs");
    }
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("config"))
        .env("XDG_DATA_HOME", root.join("data"))
        .env("XDG_CACHE_HOME", root.join("cache"))
        .env("DUO_SELFHOST_STATE", root.join("state.toml"))
        .env("DUO_SELFHOST_DATA_DIR", root.join("data/duo-selfhost"))
        .env("DUO_SELFHOST_GITLAB_RB", root.join("gitlab.rb"))
        .env(
            duo_selfhost::gitlab_rb::ENVDIR_OVERRIDE_VAR,
            root.join("gitlab-envdir"),
        )
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100");
    if let Some(host) = std::env::var_os("DOCKER_HOST") {
        cmd.env("DOCKER_HOST", host);
    }
    cmd
}

/// The insta filters every whole-output snapshot uses: the sandbox's path (it differs each
/// run), ports on loopback, durations in milliseconds, and the binary's version.
pub fn output_filters(root: &Path) -> Vec<(String, String)> {
    vec![
        (
            regex::escape(&root.display().to_string()),
            "[sandbox]".into(),
        ),
        (r"127\.0\.0\.1:\d+".into(), "127.0.0.1:[port]".into()),
        (r"\b\d+ ms\b".into(), "[n] ms".into()),
        (regex::escape(env!("CARGO_PKG_VERSION")), "[version]".into()),
    ]
}

/// Insta settings with [`output_filters`], for `settings.bind(|| insta::assert_snapshot!(..))`.
pub fn snapshot_settings(root: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in output_filters(root) {
        settings.add_filter(&pattern, replacement);
    }
    settings
}

/// A run's outcome with its output as text, for readable assertions.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams when the exit code is not the expected one.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

pub fn run(cmd: &mut Command) -> Run {
    Run::from_output(cmd.output().expect("run the binary"))
}

/// A name no other test (or other run) uses: prefix, process id, counter.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A TCP port free on every interface right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("0.0.0.0", 0)).expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// Flags for an unattended install of GitLab `version` from the local registry.
pub fn install_args(sandbox: &Sandbox, name: &str, port: u16, version: &str) -> Vec<String> {
    let registry = docker_fixtures::registry();
    let log_dir = sandbox.path().join("logs");
    // GitLab before 17.9 reads the gateway URL from gitlab.rb: a copy of the real template.
    sandbox.gitlab_rb();
    vec![
        "--yes".into(),
        "install".into(),
        "--gitlab-url".into(),
        "https://gitlab.example.com".into(),
        "--gitlab-version".into(),
        version.into(),
        "--gateway-host".into(),
        "aigw.example.com".into(),
        "--gateway-port".into(),
        port.to_string(),
        "--registry".into(),
        registry.mirror(),
        "--container-name".into(),
        name.into(),
        "--log-dir".into(),
        log_dir.display().to_string(),
        "--health-timeout".into(),
        "60".into(),
    ]
}

/// Env variables the upgrade and fault tests add at install, to see that they survive.
pub const EXTRA_ENV: [&str; 2] = [
    "AIGW_LOGGING__LEVEL=debug",
    "HTTPS_PROXY=http://proxy.example:3128",
];

/// [`install_args`] with `--env` for each of [`EXTRA_ENV`].
pub fn install_args_with_extra_env(
    sandbox: &Sandbox,
    name: &str,
    port: u16,
    version: &str,
) -> Vec<String> {
    let mut args = install_args(sandbox, name, port, version);
    for entry in EXTRA_ENV {
        args.extend(["--env".to_string(), entry.to_string()]);
    }
    args
}

/// Installs the gateway for GitLab `version` with [`EXTRA_ENV`]; it answers healthz.
pub fn install_gateway(sandbox: &Sandbox, name: &str, port: u16, version: &str) {
    let args = install_args_with_extra_env(sandbox, name, port, version);
    run(sandbox.command().args(&args)).expect_code(0);
    assert_eq!(
        wait_healthz(port),
        format!(r#"{{"status":"ok","version":"{version}"}}"#)
    );
}

/// `upgrade` as an administrator runs it (the container name comes from the state file).
pub fn upgrade_command(sandbox: &Sandbox, extra: &[&str]) -> Command {
    let mut cmd = sandbox.command();
    cmd.args(["--yes", "upgrade", "--health-timeout", "12"])
        .args(extra);
    cmd
}

/// Panics unless the run's error names the taken `port` and the fix for it.
pub fn expect_taken_port(out: &Run, port: u16) {
    assert!(
        out.stderr
            .contains(&format!("port {port} is already in use")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: stop what listens there")
            && out.stderr.contains("--gateway-port"),
        "{}",
        out.stderr
    );
}

/// The container's id; panics when it does not exist.
pub fn container_id(name: &str) -> String {
    docker_fixtures::inspect(name).expect("the container exists")["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits (20 s at most) for 200 on /monitoring/healthz at 127.0.0.1:PORT; the body.
pub fn wait_healthz(port: u16) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some((200, body)) = docker_fixtures::http_get(port, "/monitoring/healthz") {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing answered /monitoring/healthz on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
