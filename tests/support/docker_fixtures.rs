//! Docker fixtures built on this machine, since no image can be pulled from outside:
//! a stand-in AI Gateway image (busybox-static answering /monitoring/healthz as the gateway
//! does) under the real repository name and `self-hosted-vX.Y.Z-ee` tags, an unhealthy and a
//! crash-looping variant, a local registry (Debian's docker-registry) serving them, and a vLLM
//! stand-in under the pinned vLLM tag that checks its arguments as vLLM's parser does
//! (`vllm-stand-in.sh`).
//! No engine answering is a test failure, never a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The gateway's real repository; the fixtures carry this name locally.
pub const GATEWAY_REPO: &str =
    "registry.gitlab.com/gitlab-org/modelops/applied-ml/code-suggestions/ai-assist/model-gateway";
/// The same repository's path, as served by the local registry.
pub const GATEWAY_PATH: &str =
    "gitlab-org/modelops/applied-ml/code-suggestions/ai-assist/model-gateway";

/// How a fixture image behaves once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers 200 JSON on /monitoring/healthz.
    Healthy,
    /// Runs, but /monitoring/healthz answers 404: the Docker healthcheck never passes.
    Unhealthy,
    /// Exits at once with status 3; under a restart policy it loops.
    Crash,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Healthy => "healthy",
            Mode::Unhealthy => "unhealthy",
            Mode::Crash => "crash",
        }
    }
}

/// The fixture versions: one tag each under the gateway repository.
pub const VERSIONS: &[(&str, Mode)] = &[
    ("17.5.0", Mode::Healthy),
    ("17.6.0", Mode::Healthy),
    ("17.6.1", Mode::Healthy),
    ("17.7.0", Mode::Unhealthy),
    ("17.8.0", Mode::Crash),
    ("18.4.0", Mode::Healthy),
];

/// The vLLM image repository the tool pins a tag of; the stand-in carries that tag.
pub const VLLM_REPO: &str = "vllm/vllm-openai";

/// The vLLM stand-in's entrypoint: vLLM's argument checks, then /health on --port.
const VLLM_ENTRYPOINT: &str = include_str!("vllm-stand-in.sh");

const ENTRYPOINT: &str = r#"#!/bin/sh
# Stand-in for the AI Gateway: /monitoring/healthz answers like the real one (200, JSON) on 5052,
# and 50052 is open like the Agent Platform's port. A command given to the container runs
# instead (doctor's tests keep one idle, or serve healthz on a port of their own).
if [ "$#" -gt 0 ]; then exec "$@"; fi
mkdir -p /www/monitoring
printf '{"error":"No authorization header presented"}' > /www/index.html
case "$FIXTURE_MODE" in
  crash)
    echo "fixture gateway $FIXTURE_VERSION: crashing on purpose" >&2
    exit 3 ;;
  unhealthy)
    echo "fixture gateway $FIXTURE_VERSION: up, but /monitoring/healthz fails" >&2 ;;
  *)
    printf '{"status":"ok","version":"%s"}' "$FIXTURE_VERSION" > /www/monitoring/healthz ;;
esac
if [ -n "$AIGW_LOGGING__TO_FILE" ]; then
  echo "fixture gateway $FIXTURE_VERSION started" >> "$AIGW_LOGGING__TO_FILE"
fi
echo "fixture gateway $FIXTURE_VERSION listening on 5052"
httpd -p 50052 -h /www
# The shell stays PID 1 to stop at SIGTERM (PID 1 ignores signals it has no handler for, and
# busybox httpd has none): a `docker stop` then takes a moment, not the whole stop timeout.
httpd -f -v -p 5052 -h /www &
trap 'kill $!; exit 0' TERM INT
wait
"#;

const APPLETS: &[&str] = &[
    "sh", "httpd", "wget", "mkdir", "printf", "echo", "cat", "sleep", "ls", "env", "kill", "tr",
];

/// Fails the test (never skips) when no Docker Engine answers.
pub fn require_engine() {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "no Docker Engine answers (these tests need one; .ci/run starts dockerd): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("the docker CLI could not run: {e}"),
    }
}

/// Runs `docker ARGS`, panicking with its output on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker ARGS` that may fail; returns whether it worked.
pub fn docker_ok(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `docker inspect NAME` as JSON (the first object), or None when it does not exist.
pub fn inspect(name: &str) -> Option<serde_json::Value> {
    let out = Command::new("docker")
        .args(["inspect", "--type", "container", name])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    value.get(0).cloned()
}

/// The container's env as KEY=VALUE strings.
pub fn env_of(container: &serde_json::Value) -> Vec<String> {
    container["Config"]["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The content tag of the fixtures, so a changed script rebuilds them.
fn fixture_hash() -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(ENTRYPOINT.as_bytes());
    h.update(VLLM_ENTRYPOINT.as_bytes());
    h.update(APPLETS.join(",").as_bytes());
    hex::encode(&h.finalize()[..8])
}

fn busybox_path() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("busybox-static is not installed (apt-get install busybox-static)");
}

/// Builds the root filesystem tarball: static busybox, its applets, the entrypoint.
fn build_rootfs(dir: &Path, marker: Option<&str>) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "tmp", "www", "var/log", "etc"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy(busybox_path(), root.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    for (file, script) in [
        ("entrypoint.sh", ENTRYPOINT),
        ("vllm-entrypoint.sh", VLLM_ENTRYPOINT),
    ] {
        let entry = root.join(file);
        std::fs::write(&entry, script).unwrap();
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    if let Some(marker) = marker {
        std::fs::write(root.join("etc/fixture-registry"), marker).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    let status = Command::new("tar")
        .args(["--owner=0", "--group=0", "--numeric-owner", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    tar
}

fn image_label(image: &str) -> Option<String> {
    let out = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"duo-selfhost.fixture\"}}",
            image,
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn import(tar: &Path, image: &str, mode: Mode, version: &str, hash: &str) {
    import_with_entrypoint(tar, image, "/entrypoint.sh", mode, version, hash);
}

fn import_with_entrypoint(
    tar: &Path,
    image: &str,
    entrypoint: &str,
    mode: Mode,
    version: &str,
    hash: &str,
) {
    let env = format!(
        "ENV FIXTURE_MODE={} FIXTURE_VERSION={version} PATH=/bin HF_HOME=/tmp/hf",
        mode.as_str()
    );
    let label = format!("LABEL duo-selfhost.fixture={hash}");
    docker(&[
        "import",
        "--change",
        &format!("ENTRYPOINT [\"{entrypoint}\"]"),
        "--change",
        &env,
        "--change",
        &label,
        "--change",
        "EXPOSE 5052",
        tar.to_str().unwrap(),
        image,
    ]);
}

/// The gateway fixture image for a version, with the real repository name.
pub fn gateway_image(version: &str) -> String {
    format!("{GATEWAY_REPO}:self-hosted-v{version}-ee")
}

/// The vLLM stand-in's tag: whatever the tool pins.
pub fn vllm_image() -> String {
    duo_selfhost::docker::VLLM_IMAGE.to_string()
}

/// Builds (once per machine and script version) every fixture image under its real name.
pub fn ensure_images() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        require_engine();
        let hash = fixture_hash();
        let images: Vec<(String, &str, Mode, String)> = VERSIONS
            .iter()
            .map(|(v, m)| (gateway_image(v), "/entrypoint.sh", *m, v.to_string()))
            .chain([(
                vllm_image(),
                "/vllm-entrypoint.sh",
                Mode::Healthy,
                "vllm".to_string(),
            )])
            .collect();
        if images
            .iter()
            .all(|(image, ..)| image_label(image).as_deref() == Some(hash.as_str()))
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tar = build_rootfs(dir.path(), None);
        for (image, entrypoint, mode, version) in &images {
            if image_label(image).as_deref() != Some(hash.as_str()) {
                import_with_entrypoint(&tar, image, entrypoint, *mode, version, &hash);
            }
        }
    });
}

/// The healthy gateway fixture for any version, built on first use: doctor's tests need tags
/// the registry does not serve (an outdated 17.4.0, a 17.9.0).
pub fn healthy_gateway_image(version: &str) -> String {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ensure_images();
    let image = gateway_image(version);
    let hash = fixture_hash();
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if image_label(&image).as_deref() != Some(hash.as_str()) {
        let dir = tempfile::tempdir().unwrap();
        let tar = build_rootfs(dir.path(), None);
        import(&tar, &image, Mode::Healthy, version, &hash);
    }
    image
}

/// The env a container was given, sorted, without the fixture image's own (FIXTURE_*, PATH,
/// HF_HOME): what install set and upgrade must keep.
pub fn own_env(name: &str) -> Vec<String> {
    let mut env: Vec<String> = env_of(&inspect(name).expect("the container exists"))
        .into_iter()
        .filter(|e| {
            !e.starts_with("FIXTURE_") && !e.starts_with("PATH=") && !e.starts_with("HF_HOME=")
        })
        .collect();
    env.sort();
    env
}

/// A docker-registry on 127.0.0.1 serving every fixture version under the gateway's path.
pub struct LocalRegistry {
    pub port: u16,
    _storage: tempfile::TempDir,
}

impl LocalRegistry {
    /// `127.0.0.1:PORT/<gateway path>`: what `--registry` takes for a mirror.
    pub fn mirror(&self) -> String {
        format!("127.0.0.1:{}/{GATEWAY_PATH}", self.port)
    }

    /// The mirror's image for a version.
    pub fn image(&self, version: &str) -> String {
        format!("{}:self-hosted-v{version}-ee", self.mirror())
    }
}

/// The test binary's one registry, started on first use with every fixture pushed, the
/// mirror-named tags then removed locally so that pulls are real. A watchdog stops it when
/// the test process ends.
pub fn registry() -> &'static LocalRegistry {
    static REGISTRY: OnceLock<LocalRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        ensure_images();
        let storage = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let config = registry_config(storage.path(), port);
        let watchdog = format!(
            "docker-registry serve '{}' >'{}' 2>&1 & r=$!; while kill -0 {} 2>/dev/null; do sleep 1; done; kill $r",
            config.display(),
            storage.path().join("registry.log").display(),
            std::process::id()
        );
        // Detached (the outer shell returns at once), so the watchdog outlives no one's wait.
        let status = Command::new("sh")
            .args(["-c", &format!("({watchdog}) </dev/null >/dev/null 2>&1 &")])
            .status()
            .expect("start docker-registry (apt-get install docker-registry)");
        assert!(status.success(), "could not start the registry watchdog");
        wait_for_registry(port);
        let registry = LocalRegistry {
            port,
            _storage: storage,
        };
        remove_stale_mirror_images(port);
        // The registry's copies carry a layer of their own (a marker naming this registry),
        // so that pulling them downloads and extracts for real instead of finding the layer
        // of the local fixture image.
        let hash = fixture_hash();
        for (version, mode) in VERSIONS {
            // One layer per version too, so that no pull finds another's layer already here.
            let dir = tempfile::tempdir().unwrap();
            let tar = build_rootfs(
                dir.path(),
                Some(&format!("{version} served by 127.0.0.1:{port}\n")),
            );
            let remote = registry.image(version);
            import(&tar, &remote, *mode, version, &hash);
            docker(&["push", &remote]);
            docker(&["rmi", &remote]);
        }
        registry
    })
}

/// Writes a docker-registry config serving from `storage` on 127.0.0.1:`port`; its path.
/// Waits (20 s at most) until a just-started docker-registry listens on `port`.
fn wait_for_registry(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "docker-registry did not listen on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn registry_config(storage: &Path, port: u16) -> PathBuf {
    let config = storage.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.join("data").display()
        ),
    )
    .unwrap();
    config
}

/// A docker-registry of one test's own, empty at the start and stopped when dropped: a
/// stand-in for the internet that a test can take away.
pub struct OwnRegistry {
    pub port: u16,
    process: std::process::Child,
    _storage: tempfile::TempDir,
}

impl OwnRegistry {
    pub fn start() -> Self {
        require_engine();
        let storage = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let config = registry_config(storage.path(), port);
        let log = std::fs::File::create(storage.path().join("registry.log")).unwrap();
        let process = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry (apt-get install docker-registry)");
        wait_for_registry(port);
        OwnRegistry {
            port,
            process,
            _storage: storage,
        }
    }

    /// `127.0.0.1:PORT/<gateway path>`, as `--registry` takes a mirror.
    pub fn mirror(&self) -> String {
        format!("127.0.0.1:{}/{GATEWAY_PATH}", self.port)
    }

    /// The mirror's gateway image for a version.
    pub fn image(&self, version: &str) -> String {
        format!("{}:self-hosted-v{version}-ee", self.mirror())
    }

    /// Puts a healthy gateway stand-in for `version` into this registry, with a layer of its
    /// own (so removing it locally removes its bytes), and removes the local copy.
    pub fn publish_gateway(&self, version: &str) -> String {
        ensure_images();
        let dir = tempfile::tempdir().unwrap();
        let tar = build_rootfs(
            dir.path(),
            Some(&format!(
                "{version} published by 127.0.0.1:{} ({})\n",
                self.port,
                std::process::id()
            )),
        );
        let image = self.image(version);
        import(&tar, &image, Mode::Healthy, version, &fixture_hash());
        docker(&["push", &image]);
        docker(&["rmi", &image]);
        image
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Removes mirror-named images left by earlier runs (other registry ports); images still used
/// by a container stay, and so do those of a registry still listening (another test's own).
fn remove_stale_mirror_images(port: u16) {
    let ours = format!("127.0.0.1:{port}/");
    let listing = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for image in listing.lines() {
        let Some(their_port) = image
            .strip_prefix("127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse::<u16>().ok())
        else {
            continue;
        };
        if image.contains(GATEWAY_PATH)
            && !image.starts_with(&ours)
            && std::net::TcpStream::connect(("127.0.0.1", their_port)).is_err()
        {
            let _ = docker_ok(&["rmi", image]);
        }
    }
}

/// Removes the named containers (and their `-previous`) when dropped, whatever the test did.
pub struct Cleanup {
    names: Vec<String>,
}

impl Cleanup {
    pub fn new(names: &[&str]) -> Self {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let c = Cleanup { names };
        c.remove_all();
        c
    }

    fn remove_all(&self) {
        for name in &self.names {
            let _ = docker_ok(&["rm", "-f", "-v", name]);
            let _ = docker_ok(&["rm", "-f", "-v", &format!("{name}-previous")]);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// GETs `http://127.0.0.1:PORT/PATH` with a raw HTTP/1.0 request; the status and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((status, body))
}

/// The gateway's signing keys in a container's env: each a private key openssl accepts, each
/// its own. Returns them by name.
pub fn signing_keys_of(
    name: &str,
    expected: &[&str],
) -> std::collections::BTreeMap<String, String> {
    let c = inspect(name).expect("the container exists");
    let keys: std::collections::BTreeMap<String, String> = env_of(&c)
        .into_iter()
        .filter_map(|entry| {
            let (k, v) = entry.split_once('=')?;
            expected
                .contains(&k)
                .then(|| (k.to_string(), v.to_string()))
        })
        .collect();
    assert_eq!(
        keys.len(),
        expected.len(),
        "{expected:?} in the env of {name}"
    );
    for (key, pem) in &keys {
        let mut check = Command::new("openssl")
            .args(["pkey", "-noout", "-check"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run openssl");
        use std::io::Write;
        check
            .stdin
            .take()
            .unwrap()
            .write_all(pem.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{key} is not a valid key: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let distinct: std::collections::BTreeSet<&String> = keys.values().collect();
    assert_eq!(distinct.len(), keys.len(), "every key is its own");
    keys
}

/// The vLLM stand-in, checked at each call rather than once per process: the tag is shared by
/// every checkout on this engine, and one with other fixture scripts re-imports it under its own
/// entrypoint. Returns the image.
pub fn vllm_stand_in() -> String {
    ensure_images();
    let image = vllm_image();
    let hash = fixture_hash();
    if image_label(&image).as_deref() != Some(hash.as_str()) {
        let dir = tempfile::tempdir().unwrap();
        let tar = build_rootfs(dir.path(), None);
        import_with_entrypoint(
            &tar,
            &image,
            "/vllm-entrypoint.sh",
            Mode::Healthy,
            "vllm",
            &hash,
        );
    }
    image
}

/// Runs the vLLM stand-in once with `args`, for arguments it refuses (valid ones keep it up):
/// its exit code and what it wrote.
pub fn refused_by_vllm_stand_in(args: &[&str]) -> (i32, String) {
    let image = vllm_stand_in();
    let out = Command::new("timeout")
        .args(["60", "docker", "run", "--rm", &image])
        .args(args)
        .output()
        .expect("run docker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
