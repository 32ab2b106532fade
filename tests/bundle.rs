//! `bundle create|verify|load` and `install --offline` on the real Docker Engine, with a
//! docker-registry of the test's own standing in for the internet (stopped before the load,
//! as the air-gapped host has none) and the real SmolLM2 GGUF. No engine: these fail.

use crate::support;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::docker_fixtures as fx;
use support::{run, unique_name, Sandbox};

const MODEL: &str = "smollm2-135m";

/// The real test model's GGUF (scripts/fetch-test-model puts it in the machine's cache).
fn real_model() -> (&'static duo_selfhost::catalog::GgufSource, PathBuf) {
    (support::test_model_source(), support::test_model())
}

/// A Hugging Face cache holding SmolLM2 the way a download leaves it (blob, snapshot link, ref).
fn seed_model_cache(hf_home: &Path) {
    let (source, path) = real_model();
    let sha = source.sha256.expect("the demo model's sha256 is pinned");
    let repo = hf_home
        .join("hub")
        .join(format!("models--{}", source.repo.replace('/', "--")));
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    let snapshot_dir = repo.join("snapshots").join(source.revision);
    std::fs::create_dir_all(&snapshot_dir).unwrap();
    std::fs::copy(&path, repo.join("blobs").join(sha)).unwrap();
    std::os::unix::fs::symlink(format!("../../blobs/{sha}"), snapshot_dir.join(source.file))
        .unwrap();
    std::fs::write(repo.join("refs/main"), source.revision).unwrap();
}

/// Where the loaded GGUF must be for `serve --model smollm2-135m`.
fn cached_snapshot(hf_home: &Path) -> PathBuf {
    let (source, _) = real_model();
    hf_home
        .join("hub")
        .join(format!("models--{}", source.repo.replace('/', "--")))
        .join("snapshots")
        .join(source.revision)
        .join(source.file)
}

/// One side of the air gap: a sandbox with its own model cache.
struct Host {
    sandbox: Sandbox,
}

impl Host {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        std::fs::create_dir_all(sandbox.path().join("hf")).unwrap();
        Host { sandbox }
    }

    fn hf_home(&self) -> PathBuf {
        self.sandbox.path().join("hf")
    }

    fn command(&self) -> Command {
        let mut cmd = self.sandbox.command();
        cmd.env("HF_HOME", self.hf_home())
            .env("HF_ENDPOINT", "http://127.0.0.1:9");
        cmd
    }

    fn stored_tags(&self) -> PathBuf {
        self.sandbox
            .path()
            .join("data/duo-selfhost/tags/gateway-17.6.txt")
    }

    /// Nothing a load would leave: no snapshot, no staging directory, no tag list.
    fn assert_nothing_loaded(&self, context: &str) {
        assert!(
            !cached_snapshot(&self.hf_home()).exists(),
            "{context}: a GGUF was placed"
        );
        let leftovers: Vec<String> = std::fs::read_dir(self.hf_home())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".duo-selfhost-load-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "{context}: staging left: {leftovers:?}"
        );
        assert!(
            !self.stored_tags().exists(),
            "{context}: a tag list was stored"
        );
    }
}

/// The connected machine's work: the internet registry serves 17.6.0 and 17.6.1, SmolLM2 is in
/// the cache; the bundle for GitLab 17.6.0 is written to `dir`. Returns it and the gateway
/// image chosen (17.6.1, as image-tag would choose), removed from the engine again.
fn make_bundle(internet: &fx::OwnRegistry, dir: &Path) -> (PathBuf, String) {
    internet.publish_gateway("17.6.0");
    let image = internet.publish_gateway("17.6.1");
    let connected = Host::new();
    seed_model_cache(&connected.hf_home());
    let bundle = dir.join("duo-17.6.bundle");
    let out = run(connected.command().args([
        "-v",
        "bundle",
        "create",
        "--gitlab-version",
        "17.6.0",
        "--registry",
        &internet.mirror(),
        "--model",
        MODEL,
        "--output",
        bundle.to_str().unwrap(),
    ]))
    .expect_code(0);
    assert!(
        out.stderr.contains(&format!("Pulling {image}")),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("wrote"), "{}", out.stdout);
    assert!(bundle.is_file());
    assert!(!dir.join("duo-17.6.bundle.partial").exists());
    // The air-gapped host has none of it.
    fx::docker(&["rmi", &image]);
    (bundle, image)
}

/// The entries of a tar file: name, data offset, size.
fn entries(bundle: &Path) -> Vec<(String, u64, u64)> {
    let mut archive = tar::Archive::new(std::fs::File::open(bundle).unwrap());
    archive
        .entries_with_seek()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.raw_file_position(),
                e.size(),
            )
        })
        .collect()
}

fn manifest_of(bundle: &Path) -> serde_json::Value {
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

fn image_present(image: &str) -> bool {
    fx::docker_ok(&["image", "inspect", image])
}

#[test]
fn create_then_load_on_a_host_without_the_internet_then_install_offline_and_serve() {
    let work = tempfile::tempdir().unwrap();
    let internet = fx::OwnRegistry::start();
    let (bundle, image) = make_bundle(&internet, work.path());

    let manifest = manifest_of(&bundle);
    assert_eq!(manifest["format_version"], 1);
    assert_eq!(manifest["gitlab_versions"], serde_json::json!(["17.6.0"]));
    let items = manifest["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["images", "gguf", "tag-list"]);
    assert_eq!(items[0]["images"][0]["reference"], image.as_str());
    for item in items {
        assert_eq!(item["sha256"].as_str().unwrap().len(), 64, "{item}");
    }
    let (source, _) = real_model();
    assert_eq!(items[1]["sha256"], source.sha256.unwrap());

    // The internet goes away: nothing below may need it.
    drop(internet);
    let airgapped = Host::new();
    run(airgapped
        .command()
        .args(["bundle", "verify", bundle.to_str().unwrap()]))
    .expect_code(0);
    let out = run(airgapped
        .command()
        .args(["bundle", "load", bundle.to_str().unwrap()]))
    .expect_code(0);
    assert!(image_present(&image), "{}", out.stderr);
    let snapshot = cached_snapshot(&airgapped.hf_home());
    let digest = Command::new("sha256sum").arg(&snapshot).output().unwrap();
    assert!(
        String::from_utf8_lossy(&digest.stdout).starts_with(source.sha256.unwrap()),
        "the placed GGUF's sha256"
    );
    let tags = std::fs::read_to_string(airgapped.stored_tags()).unwrap();
    // The registry's tags for the minor, in the registry's order.
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort_unstable();
    assert_eq!(tags, ["self-hosted-v17.6.0-ee", "self-hosted-v17.6.1-ee"]);
    let install_line = format!(
        "duo-selfhost install --offline --gitlab-version 17.6.0 --registry {} --model-runtime embedded --model {MODEL}",
        mirror_of(&image)
    );
    assert!(out.stdout.contains(&install_line), "{}", out.stdout);

    // image-tag chooses from the bundle's list, offline, as it did online.
    let out = run(airgapped.command().args([
        "image-tag",
        "--gitlab-version",
        "17.6.0",
        "--registry",
        &mirror_of(&image),
    ]))
    .expect_code(0);
    assert_eq!(out.stdout.trim(), image);

    // Loading again changes nothing.
    let id_before = fx::docker(&["image", "inspect", "--format", "{{.Id}}", &image]);
    let out = run(airgapped
        .command()
        .args(["bundle", "load", bundle.to_str().unwrap()]))
    .expect_code(0);
    assert!(out.stdout.contains("nothing changed"), "{}", out.stdout);
    assert_eq!(
        fx::docker(&["image", "inspect", "--format", "{{.Id}}", &image]),
        id_before
    );

    // install --offline: the stored tag list and the loaded image, no registry.
    let name = unique_name("duo-bundle");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    airgapped.sandbox.gitlab_rb();
    let out = run(airgapped.command().args([
        "--yes",
        "-v",
        "install",
        "--offline",
        "--gitlab-url",
        "https://gitlab.example.com",
        "--gitlab-version",
        "17.6.0",
        "--gateway-host",
        "aigw.example.com",
        "--gateway-port",
        &port.to_string(),
        "--registry",
        &mirror_of(&image),
        "--container-name",
        &name,
        "--log-dir",
        airgapped.sandbox.path().join("logs").to_str().unwrap(),
        "--health-timeout",
        "60",
    ]))
    .expect_code(0);
    assert!(!out.stderr.contains("Pulling"), "{}", out.stderr);
    assert_eq!(
        support::wait_healthz(port),
        r#"{"status":"ok","version":"17.6.1"}"#
    );
    assert_eq!(
        fx::inspect(&name).unwrap()["Config"]["Image"],
        image.as_str()
    );

    // serve finds the loaded GGUF by its catalog name.
    let serve_port = support::free_port();
    let serve_log = airgapped.sandbox.path().join("serve.log");
    let mut serve = airgapped
        .command()
        .args([
            "serve",
            "--model",
            MODEL,
            "--port",
            &serve_port.to_string(),
            "--threads",
            "1",
            "--ctx-size",
            "2048",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&serve_log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let models = loop {
        if let Some((200, body)) = fx::http_get(serve_port, "/v1/models") {
            break body;
        }
        if let Ok(Some(status)) = serve.try_wait() {
            let log = std::fs::read_to_string(&serve_log).unwrap_or_default();
            panic!("serve exited with {status}: {log}");
        }
        assert!(Instant::now() < deadline, "serve did not answer in 60 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(models.contains(MODEL), "{models}");
}

/// `127.0.0.1:PORT/<path>` of a mirror image reference.
fn mirror_of(image: &str) -> String {
    duo_selfhost::image_tag::split_reference(image)
        .0
        .to_string()
}

/// A copy of the bundle with `edit` applied to its bytes.
fn damaged_copy(
    bundle: &Path,
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut std::fs::File),
) -> PathBuf {
    let copy = dir.join(name);
    std::fs::copy(bundle, &copy).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&copy)
        .unwrap();
    edit(&mut file);
    copy
}

fn flip_byte_at(file: &mut std::fs::File, offset: u64) {
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.read_exact(&mut byte).unwrap();
    byte[0] ^= 0x5a;
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&byte).unwrap();
}

/// The bundle rewritten with another format version in a manifest whose checksum matches:
/// what a newer duo-selfhost would write.
fn with_format_version(bundle: &Path, dir: &Path, version: u64) -> PathBuf {
    let copy = dir.join(format!("format-{version}.bundle"));
    let mut out = tar::Builder::new(std::fs::File::create(&copy).unwrap());
    let mut archive = tar::Archive::new(std::fs::File::open(bundle).unwrap());
    let mut manifest = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if path == "manifest.json" {
            let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            value["format_version"] = version.into();
            bytes = serde_json::to_vec_pretty(&value).unwrap();
            manifest = bytes.clone();
        } else if path == "manifest.json.sha256" {
            use sha2::Digest;
            bytes = format!("{}\n", hex::encode(sha2::Sha256::digest(&manifest))).into_bytes();
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        out.append_data(&mut header, &path, bytes.as_slice())
            .unwrap();
    }
    out.finish().unwrap();
    copy
}

#[test]
fn a_flipped_byte_a_truncated_file_or_another_format_fails_verify_and_load_and_loads_nothing() {
    let work = tempfile::tempdir().unwrap();
    let internet = fx::OwnRegistry::start();
    let (bundle, image) = make_bundle(&internet, work.path());
    drop(internet);
    let airgapped = Host::new();

    let mut cases: Vec<(PathBuf, String)> = Vec::new();
    for (path, offset, size) in entries(&bundle) {
        let name = format!("flipped-{}.bundle", path.replace('/', "_"));
        let copy = damaged_copy(&bundle, work.path(), &name, |f| {
            flip_byte_at(f, offset + size / 2)
        });
        let expected = if path.starts_with("manifest.json") {
            "manifest.json does not match its recorded sha256".to_string()
        } else {
            format!("{path} is damaged: sha256")
        };
        cases.push((copy, expected));
    }
    let length = std::fs::metadata(&bundle).unwrap().len();
    let truncated = damaged_copy(&bundle, work.path(), "truncated.bundle", |f| {
        f.set_len(length / 2).unwrap()
    });
    cases.push((truncated, "is truncated or damaged".to_string()));
    cases.push((
        with_format_version(&bundle, work.path(), 3),
        "is bundle format 3; this duo-selfhost".to_string(),
    ));
    assert!(
        cases.len() >= 7,
        "every item, the manifest, its checksum, truncation, format"
    );

    for (damaged, expected) in &cases {
        for command in ["verify", "load"] {
            let out = run(airgapped
                .command()
                .args(["bundle", command, damaged.to_str().unwrap()]))
            .expect_code(1);
            assert!(
                out.stderr.contains(expected.as_str()),
                "{command} {}: wanted `{expected}` in:\n{}",
                damaged.display(),
                out.stderr
            );
            assert!(out.stderr.contains("hint:"), "{}", out.stderr);
            airgapped.assert_nothing_loaded(&format!("{command} {}", damaged.display()));
            assert!(
                !image_present(&image),
                "{command} {}: the image was loaded",
                damaged.display()
            );
        }
    }
    // The undamaged bundle still loads: the failures above were the damage.
    run(airgapped
        .command()
        .args(["bundle", "load", bundle.to_str().unwrap()]))
    .expect_code(0);
    assert!(image_present(&image));
    fx::docker(&["rmi", &image]);
}

#[test]
fn offline_install_without_a_loaded_bundle_names_the_bundle_commands() {
    let host = Host::new();
    host.sandbox.gitlab_rb();
    let out = run(host.command().args([
        "--yes",
        "install",
        "--offline",
        "--gitlab-url",
        "https://gitlab.example.com",
        "--gitlab-version",
        "17.6.0",
        "--gateway-host",
        "aigw.example.com",
        "--container-name",
        &unique_name("duo-offline"),
    ]))
    .expect_code(1);
    assert!(
        out.stderr.contains("--offline: no bundle has brought"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("duo-selfhost bundle create --gitlab-version 17.6.0")
            && out.stderr.contains("duo-selfhost bundle load"),
        "{}",
        out.stderr
    );
}

/// A gateway image with a large layer of random bytes, so that writing it takes a while.
fn large_image(internet: &fx::OwnRegistry) -> String {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let status = Command::new("head")
        .args(["-c", "400000000", "/dev/urandom"])
        .stdout(std::fs::File::create(root.join("weights.bin")).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let tar = dir.path().join("rootfs.tar");
    assert!(Command::new("tar")
        .args([
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            "."
        ])
        .status()
        .unwrap()
        .success());
    let image = internet.image("17.6.0");
    fx::docker(&["import", tar.to_str().unwrap(), &image]);
    image
}

#[test]
fn an_interrupted_create_leaves_no_complete_looking_file() {
    let work = tempfile::tempdir().unwrap();
    let internet = fx::OwnRegistry::start();
    let image = large_image(&internet);
    let tags = work.path().join("tags.txt");
    std::fs::write(&tags, "self-hosted-v17.6.0-ee\n").unwrap();
    let host = Host::new();
    for signal in ["INT", "KILL"] {
        let bundle = work.path().join(format!("killed-{signal}.bundle"));
        let partial = work.path().join(format!("killed-{signal}.bundle.partial"));
        let mut child = host
            .command()
            .args([
                "bundle",
                "create",
                "--gitlab-version",
                "17.6.0",
                "--registry",
                &internet.mirror(),
                "--available-tags",
                tags.to_str().unwrap(),
                "--output",
                bundle.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Midway: once the image's bytes have started to land in the partial file.
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < (4 << 20) {
            assert!(
                child.try_wait().unwrap().is_none(),
                "create ended before it could be interrupted"
            );
            assert!(Instant::now() < deadline, "create wrote nothing in 120 s");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(!status.success(), "{signal}: {stderr}");
        assert!(
            !bundle.exists(),
            "{signal}: a complete-looking {} exists",
            bundle.display()
        );
        if signal == "INT" {
            assert!(stderr.contains("interrupted"), "{stderr}");
            assert!(!partial.exists(), "Ctrl-C removes the partial file");
        } else {
            // A kill leaves the partial file, which is no bundle.
            let out = run(host
                .command()
                .args(["bundle", "verify", partial.to_str().unwrap()]))
            .expect_code(1);
            assert!(out.stderr.contains("no manifest.json"), "{}", out.stderr);
        }
    }
    fx::docker(&["rmi", &image]);
}

/// A gateway stand-in for `version` built FROM another image: one shared base layer, one small
/// layer of its own, as consecutive gateway releases share most of theirs.
fn image_on_top_of(base: &str, image: &str, version: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("release"), format!("{version}\n")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY release /etc/release\nENV FIXTURE_VERSION={version}\n"),
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", image])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn several_gitlab_versions_share_their_common_layers_in_one_bundle() {
    let work = tempfile::tempdir().unwrap();
    let internet = fx::OwnRegistry::start();
    let base = internet.publish_gateway("17.5.0");
    fx::docker(&["pull", &base]);
    let newer = [
        ("17.6.0", internet.image("17.6.0")),
        ("17.7.0", internet.image("17.7.0")),
    ];
    let mut separate_bytes = 0u64;
    for (version, image) in &newer {
        image_on_top_of(&base, image, version);
        separate_bytes += fx::docker(&["image", "inspect", "--format", "{{.Size}}", image])
            .parse::<u64>()
            .unwrap();
    }
    let host = Host::new();
    let tags = work.path().join("tags.txt");
    std::fs::write(&tags, "self-hosted-v17.6.0-ee\nself-hosted-v17.7.0-ee\n").unwrap();
    let bundle = work.path().join("two.bundle");
    run(host.command().args([
        "bundle",
        "create",
        "--gitlab-version",
        "17.6.0",
        "--gitlab-version",
        "17.7.0",
        "--registry",
        &internet.mirror(),
        "--available-tags",
        tags.to_str().unwrap(),
        "--output",
        bundle.to_str().unwrap(),
    ]))
    .expect_code(0);
    let manifest = manifest_of(&bundle);
    assert_eq!(
        manifest["gitlab_versions"],
        serde_json::json!(["17.6.0", "17.7.0"])
    );
    let images = &manifest["items"][0];
    assert_eq!(images["images"].as_array().unwrap().len(), 2);
    // The base layer (busybox, most of each image) is in the archive once, not twice.
    let archived = images["uncompressed_size"].as_u64().unwrap();
    let base_bytes: u64 = fx::docker(&["image", "inspect", "--format", "{{.Size}}", &base])
        .parse()
        .unwrap();
    assert!(
        archived < separate_bytes - base_bytes / 2,
        "archive {archived} bytes, the images {separate_bytes} apart, the base {base_bytes}"
    );
    // Both load back on a host that has none of them.
    for (_, image) in &newer {
        fx::docker(&["rmi", image]);
    }
    fx::docker(&["rmi", &base]);
    let airgapped = Host::new();
    run(airgapped
        .command()
        .args(["bundle", "load", bundle.to_str().unwrap()]))
    .expect_code(0);
    for (_, image) in &newer {
        assert!(image_present(image), "{image} loaded");
        fx::docker(&["rmi", image]);
    }
}

/// The catalog model whose vLLM weights the tests bundle, and a tiny stand-in of its repository:
/// configuration, tokenizer, a small safetensors file, and what vLLM does not load (PyTorch
/// weights beside the safetensors, `.gitattributes`).
const VLLM_MODEL: &str = "codegemma-2b";
const VLLM_COMMIT: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

fn tiny_vllm_repo() -> support::hub::HubRepo {
    let repo = duo_selfhost::catalog::find(VLLM_MODEL)
        .and_then(|m| m.vllm.as_ref())
        .expect("the catalog serves the test model with vLLM")
        .repo;
    // safetensors: the header's length (u64, little-endian), the JSON header, the tensor bytes.
    let values = 64 * 1024;
    let mut header = format!(
        r#"{{"embed.weight":{{"dtype":"F32","shape":[{values}],"data_offsets":[0,{}]}}}}"#,
        values * 4
    );
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut weights = (header.len() as u64).to_le_bytes().to_vec();
    weights.extend_from_slice(header.as_bytes());
    weights.extend((0..values * 4).map(|i| (i * 7 % 251) as u8));
    support::hub::HubRepo {
        id: repo.to_string(),
        commit: VLLM_COMMIT.to_string(),
        files: vec![
            (
                ".gitattributes".into(),
                b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n".to_vec(),
            ),
            ("README.md".into(), b"# a tiny stand-in\n".to_vec()),
            (
                "config.json".into(),
                br#"{"architectures":["GemmaForCausalLM"],"model_type":"gemma","hidden_size":8}"#
                    .to_vec(),
            ),
            ("model.safetensors".into(), weights),
            ("pytorch_model.bin".into(), vec![7u8; 4096]),
            (
                "tokenizer.json".into(),
                br#"{"version":"1.0","model":{"type":"BPE","vocab":{"a":0}}}"#.to_vec(),
            ),
        ],
    }
}

/// The files vLLM loads from the tiny repository, as a bundle must carry them.
const VLLM_FILES: [&str; 4] = [
    "README.md",
    "config.json",
    "model.safetensors",
    "tokenizer.json",
];

/// The connected machine's work for vLLM: the gateway from the internet registry, the pinned
/// vLLM image from the engine, the model's weights through the Hub API from the stand-in.
fn make_vllm_bundle(
    internet: &fx::OwnRegistry,
    hub: &support::hub::HubStandIn,
    dir: &Path,
) -> (PathBuf, String) {
    let image = internet.publish_gateway("17.6.1");
    let connected = Host::new();
    let bundle = dir.join("duo-vllm.bundle");
    let out = run(connected
        .command()
        .env("HF_ENDPOINT", &hub.endpoint)
        .env_remove("HF_TOKEN")
        .args([
            "-v",
            "bundle",
            "create",
            "--gitlab-version",
            "17.6.0",
            "--registry",
            &internet.mirror(),
            "--model-runtime",
            "vllm",
            "--model",
            VLLM_MODEL,
            "--output",
            bundle.to_str().unwrap(),
        ]))
    .expect_code(0);
    assert!(out.stderr.contains("4 of its 6 files"), "{}", out.stderr);
    // They went through the connected machine's cache, in the Hugging Face layout.
    let repo = tiny_vllm_repo();
    let cached = connected
        .hf_home()
        .join("hub/models--google--codegemma-2b/snapshots")
        .join(VLLM_COMMIT);
    for name in VLLM_FILES {
        assert!(cached.join(name).is_file(), "{name} in the connected cache");
    }
    let api = format!("/api/models/{}/revision/main?blobs=true", repo.id);
    assert!(
        hub.seen().iter().any(|s| s.path == api),
        "the Hub API was asked for the listing: {:?}",
        hub.seen().iter().map(|s| &s.path).collect::<Vec<_>>()
    );
    fx::docker(&["rmi", &image]);
    (bundle, image)
}

/// The Hugging Face cache folder of the tiny repository under `hf_home`.
fn vllm_repo_dir(hf_home: &Path) -> PathBuf {
    hf_home.join("hub/models--google--codegemma-2b")
}

#[test]
fn a_vllm_bundle_carries_the_weights_and_install_offline_runs_vllm_from_the_cache() {
    let _port = support::vllm_port();
    fx::vllm_stand_in();
    let work = tempfile::tempdir().unwrap();
    let internet = fx::OwnRegistry::start();
    let hub = support::hub::HubStandIn::start();
    let repo = tiny_vllm_repo();
    hub.add_repo(repo.clone());
    let (bundle, image) = make_vllm_bundle(&internet, &hub, work.path());

    let manifest = manifest_of(&bundle);
    assert_eq!(manifest["format_version"], 2);
    let items = manifest["items"].as_array().unwrap();
    let roles: Vec<&str> = items[0]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["gateway", "vllm"]);
    let hf: Vec<&serde_json::Value> = items.iter().filter(|i| i["kind"] == "hf-file").collect();
    let carried: Vec<&str> = hf.iter().map(|i| i["file"].as_str().unwrap()).collect();
    assert_eq!(carried, VLLM_FILES, "only the files vLLM loads");
    for item in &hf {
        let (_, bytes) = repo
            .files
            .iter()
            .find(|(name, _)| name == item["file"].as_str().unwrap())
            .unwrap();
        assert_eq!(item["sha256"], support::hub::sha256_hex(bytes), "{item}");
        assert_eq!(item["size"], bytes.len() as u64, "{item}");
        assert_eq!(item["repo"], repo.id.as_str());
        assert_eq!(item["commit"], VLLM_COMMIT);
        assert_eq!(item["model"], VLLM_MODEL);
        // Blobs named as huggingface_hub names them: LFS by sha256, the rest by git blob id.
        let blob = if item["file"] == "model.safetensors" {
            support::hub::sha256_hex(bytes)
        } else {
            support::hub::git_blob_id(bytes)
        };
        assert_eq!(item["blob"], blob.as_str(), "{item}");
    }
    let install_args: Vec<&str> = manifest["install_args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        install_args.ends_with(&["--model-runtime", "vllm", "--model", VLLM_MODEL]),
        "{install_args:?}"
    );

    // The air-gapped host: no internet, no Hub.
    drop(internet);
    let asked = hub.seen().len();
    let airgapped = Host::new();

    // A flipped byte in the weights fails verify and load, and places nothing in the cache.
    let weights_entry = "hf/google--codegemma-2b/model.safetensors";
    let (_, offset, size) = entries(&bundle)
        .into_iter()
        .find(|(path, _, _)| path == weights_entry)
        .expect("the weights are an entry of the bundle");
    let damaged = damaged_copy(&bundle, work.path(), "flipped-weights.bundle", |f| {
        flip_byte_at(f, offset + size / 2)
    });
    for command in ["verify", "load"] {
        let out = run(airgapped
            .command()
            .args(["bundle", command, damaged.to_str().unwrap()]))
        .expect_code(1);
        assert!(
            out.stderr
                .contains(&format!("{weights_entry} is damaged: sha256")),
            "{command}: {}",
            out.stderr
        );
        assert!(
            !vllm_repo_dir(&airgapped.hf_home()).exists(),
            "{command}: something was placed in the cache"
        );
        airgapped.assert_nothing_loaded(command);
    }

    run(airgapped
        .command()
        .args(["bundle", "verify", bundle.to_str().unwrap()]))
    .expect_code(0);
    let out = run(airgapped
        .command()
        .args(["bundle", "load", bundle.to_str().unwrap()]))
    .expect_code(0);
    let repo_dir = vllm_repo_dir(&airgapped.hf_home());
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        VLLM_COMMIT
    );
    let snapshot = repo_dir.join("snapshots").join(VLLM_COMMIT);
    for name in VLLM_FILES {
        let (_, bytes) = repo.files.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(
            &std::fs::read(snapshot.join(name)).unwrap(),
            bytes,
            "{name}"
        );
        // A relative link into blobs/, as huggingface_hub leaves it.
        let link = std::fs::read_link(snapshot.join(name)).unwrap();
        assert!(
            link.starts_with("../../blobs"),
            "{name} -> {}",
            link.display()
        );
    }
    assert!(!snapshot.join("pytorch_model.bin").exists());
    let weights = &repo
        .files
        .iter()
        .find(|(n, _)| n == "model.safetensors")
        .unwrap()
        .1;
    assert!(repo_dir
        .join("blobs")
        .join(support::hub::sha256_hex(weights))
        .is_file());
    let install_line = format!(
        "duo-selfhost install --offline --gitlab-version 17.6.0 --registry {} --model-runtime vllm --model {VLLM_MODEL}",
        mirror_of(&image)
    );
    assert!(out.stdout.contains(&install_line), "{}", out.stdout);
    assert!(
        out.stderr.contains("4 Hugging Face file(s) in the cache"),
        "{}",
        out.stderr
    );
    let out = run(airgapped
        .command()
        .args(["bundle", "load", bundle.to_str().unwrap()]))
    .expect_code(0);
    assert!(out.stdout.contains("nothing changed"), "{}", out.stdout);

    // install --offline: vLLM runs with HF_HUB_OFFLINE=1 on the mounted cache, where it finds
    // the snapshot refs/main names.
    let name = unique_name("duo-bundle-vllm");
    let vllm_name = format!("{name}-vllm");
    let _cleanup = fx::Cleanup::new(&[&name, &vllm_name]);
    let port = support::free_port();
    airgapped.sandbox.gitlab_rb();
    let out = run(airgapped
        .command()
        .env(duo_selfhost::vllm::NO_GPU_HOOK_VAR, "1")
        .env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN")
        .args([
            "--yes",
            "-v",
            "install",
            "--offline",
            "--gitlab-url",
            "https://gitlab.example.com",
            "--gitlab-version",
            "17.6.0",
            "--gateway-host",
            "aigw.example.com",
            "--gateway-port",
            &port.to_string(),
            "--registry",
            &mirror_of(&image),
            "--model-runtime",
            "vllm",
            "--model",
            VLLM_MODEL,
            "--container-name",
            &name,
            "--log-dir",
            airgapped.sandbox.path().join("logs").to_str().unwrap(),
            "--health-timeout",
            "60",
        ]))
    .expect_code(0);
    assert!(!out.stderr.contains("Pulling"), "{}", out.stderr);
    let c = fx::inspect(&vllm_name).expect("the vLLM container exists");
    assert_eq!(c["State"]["Health"]["Status"], "healthy", "{c}");
    let env = fx::env_of(&c);
    assert!(env.contains(&"HF_HUB_OFFLINE=1".to_string()), "{env:?}");
    assert_eq!(
        c["HostConfig"]["Binds"][0],
        format!("{}:/root/.cache/huggingface", airgapped.hf_home().display())
    );
    // Inside the container, through the mount, refs/main leads to the configuration.
    let inside = "/root/.cache/huggingface/hub/models--google--codegemma-2b";
    let commit = fx::docker(&["exec", &vllm_name, "cat", &format!("{inside}/refs/main")]);
    assert_eq!(commit, VLLM_COMMIT);
    let config = fx::docker(&[
        "exec",
        &vllm_name,
        "cat",
        &format!("{inside}/snapshots/{commit}/config.json"),
    ]);
    assert!(config.contains("GemmaForCausalLM"), "{config}");
    assert_eq!(
        hub.seen().len(),
        asked,
        "the Hub was asked after the bundle was made"
    );
    drop(_cleanup);
    let _ = fx::docker_ok(&["rmi", &image]);
}

#[test]
fn offline_vllm_install_without_the_weights_names_the_bundle_commands() {
    fx::vllm_stand_in();
    let host = Host::new();
    host.sandbox.gitlab_rb();
    // The images are here (the pinned vLLM stand-in, a gateway): only the weights are missing.
    let internet = fx::OwnRegistry::start();
    let image = internet.publish_gateway("17.6.0");
    fx::docker(&["pull", &image]);
    let tags = host.stored_tags();
    std::fs::create_dir_all(tags.parent().unwrap()).unwrap();
    std::fs::write(&tags, "self-hosted-v17.6.0-ee\n").unwrap();
    let name = unique_name("duo-offline-vllm");
    let out = run(host
        .command()
        .env(duo_selfhost::vllm::NO_GPU_HOOK_VAR, "1")
        .args([
            "--yes",
            "install",
            "--offline",
            "--gitlab-url",
            "https://gitlab.example.com",
            "--gitlab-version",
            "17.6.0",
            "--gateway-host",
            "aigw.example.com",
            "--registry",
            &internet.mirror(),
            "--model-runtime",
            "vllm",
            "--model",
            VLLM_MODEL,
            "--container-name",
            &name,
        ]))
    .expect_code(1);
    assert!(
        out.stderr.contains(
            "--offline: the weights of google/codegemma-2b are not in the Hugging Face cache"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "duo-selfhost bundle create --gitlab-version 17.6.0 --model-runtime vllm --model {VLLM_MODEL}"
        )),
        "{}",
        out.stderr
    );
    assert!(fx::inspect(&name).is_none(), "nothing was started");
    assert!(fx::inspect(&format!("{name}-vllm")).is_none());
    fx::docker(&["rmi", &image]);
}

#[test]
fn push_to_a_site_registry_pushes_every_image_and_install_pulls_them_from_there() {
    let _port = support::vllm_port();
    fx::vllm_stand_in();
    let work = tempfile::tempdir().unwrap();
    let internet = fx::OwnRegistry::start();
    let hub = support::hub::HubStandIn::start();
    hub.add_repo(tiny_vllm_repo());
    let (bundle, image) = make_vllm_bundle(&internet, &hub, work.path());
    drop(internet);
    let site = fx::OwnRegistry::start();
    let prefix = format!("127.0.0.1:{}/duo", site.port);
    let airgapped = Host::new();
    let out = run(airgapped.command().args([
        "bundle",
        "load",
        bundle.to_str().unwrap(),
        "--push-to",
        &prefix,
    ]))
    .expect_code(0);
    // Each image under PATH/<its repository's last part>, with its tag.
    let pushed_gateway = format!("{prefix}/model-gateway:self-hosted-v17.6.1-ee");
    let (_, vllm_tag) = duo_selfhost::image_tag::split_reference(duo_selfhost::docker::VLLM_IMAGE);
    let pushed_vllm = format!("{prefix}/vllm-openai:{vllm_tag}");
    for pushed in [&pushed_gateway, &pushed_vllm] {
        assert!(
            out.stderr.contains(&format!("pushed {pushed}")),
            "{}",
            out.stderr
        );
    }
    let install_line = format!(
        "duo-selfhost install --offline --gitlab-version 17.6.0 --registry {prefix}/model-gateway --model-runtime vllm --model {VLLM_MODEL} --vllm-image {pushed_vllm}"
    );
    assert!(out.stdout.contains(&install_line), "{}", out.stdout);

    // Only the site registry has them now: install must pull both from there.
    fx::docker(&["rmi", &pushed_gateway]);
    fx::docker(&["rmi", &pushed_vllm]);
    fx::docker(&["rmi", &image]);
    let name = unique_name("duo-bundle-push");
    let vllm_name = format!("{name}-vllm");
    let _cleanup = fx::Cleanup::new(&[&name, &vllm_name]);
    let port = support::free_port();
    airgapped.sandbox.gitlab_rb();
    let out = run(airgapped
        .command()
        .env(duo_selfhost::vllm::NO_GPU_HOOK_VAR, "1")
        .env_remove("HF_TOKEN")
        .args([
            "--yes",
            "-v",
            "install",
            "--gitlab-url",
            "https://gitlab.example.com",
            "--gitlab-version",
            "17.6.0",
            "--gateway-host",
            "aigw.example.com",
            "--gateway-port",
            &port.to_string(),
            "--registry",
            &format!("{prefix}/model-gateway"),
            "--model-runtime",
            "vllm",
            "--model",
            VLLM_MODEL,
            "--vllm-image",
            &pushed_vllm,
            "--container-name",
            &name,
            "--log-dir",
            airgapped.sandbox.path().join("logs").to_str().unwrap(),
            "--health-timeout",
            "60",
        ]))
    .expect_code(0);
    for pushed in [&pushed_gateway, &pushed_vllm] {
        assert!(
            out.stderr.contains(&format!("Pulling {pushed}")),
            "{}",
            out.stderr
        );
    }
    assert_eq!(
        support::wait_healthz(port),
        r#"{"status":"ok","version":"17.6.1"}"#
    );
    assert_eq!(
        fx::inspect(&vllm_name).unwrap()["Config"]["Image"],
        pushed_vllm.as_str()
    );
    drop(_cleanup);
    let _ = fx::docker_ok(&["rmi", &pushed_gateway]);
    let _ = fx::docker_ok(&["rmi", &pushed_vllm]);
}

#[test]
fn chart_flags_without_the_helm_target_and_vllm_models_without_vllm_weights_are_refused() {
    let host = Host::new();
    let output = host.sandbox.path().join("x.bundle");
    let output = output.to_str().unwrap();
    let out = run(host.command().args([
        "bundle",
        "create",
        "--gitlab-version",
        "17.6.0",
        "--chart-repo",
        "https://charts.example.com",
        "--output",
        output,
    ]))
    .expect_code(1);
    assert!(out.stderr.contains("carries no chart"), "{}", out.stderr);
    assert!(
        out.stderr.contains("hint: add --target helm"),
        "{}",
        out.stderr
    );
    // SmolLM2 is a GGUF for the embedded runtime: vLLM has no repository for it.
    let out = run(host.command().args([
        "bundle",
        "create",
        "--gitlab-version",
        "17.6.0",
        "--model-runtime",
        "vllm",
        "--model",
        MODEL,
        "--output",
        output,
    ]))
    .expect_code(1);
    assert!(
        out.stderr.contains("is not served by vLLM"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("--model-runtime embedded --model {MODEL}")),
        "{}",
        out.stderr
    );
    assert!(!host.sandbox.path().join("x.bundle.partial").exists());
    assert!(!host.sandbox.path().join("x.bundle").exists());
}
