//! `duo-selfhost install` against the real Docker Engine, with the stand-in gateway images
//! served by a local registry (tests/support/docker_fixtures.rs). No engine: these fail.

use crate::support;

use std::path::Path;

use support::docker_fixtures as fx;
use support::{run, unique_name, Sandbox};

use support::{container_id, install_args, wait_healthz};

#[test]
fn fresh_install_then_idempotent_rerun_then_changed_env() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-install");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    // A registry of this test's own: other tests pull the shared registry's 17.5.0, and this
    // one must see a real pull.
    let registry = fx::OwnRegistry::start();
    registry.publish_gateway("17.5.0");

    // Fresh install: pulled from the local registry layer by layer, created, healthy.
    let mut args = install_args(&sandbox, &name, port, "17.5.0");
    let at = args.iter().position(|a| a == "--registry").unwrap();
    args[at + 1] = registry.mirror();
    let out = run(sandbox.command().arg("-v").args(&args)).expect_code(0);
    assert!(
        out.stderr
            .contains(&format!("Pulling {}", registry.image("17.5.0"))),
        "{}",
        out.stderr
    );
    // Per-layer progress (as lines with -v, since there is no terminal): a real download.
    let layer_done = regex::Regex::new(r"layer [0-9a-f]{12}: Pull complete").unwrap();
    assert!(
        layer_done.is_match(&out.stderr),
        "no per-layer progress:\n{}",
        out.stderr
    );
    assert!(
        out.stdout
            .contains("the AI Gateway runs at http://aigw.example.com:"),
        "{}",
        out.stdout
    );
    let c = fx::inspect(&name).expect("the gateway container exists");
    assert_eq!(c["Config"]["Image"], registry.image("17.5.0"));
    let env = fx::env_of(&c);
    for wanted in [
        "AIGW_GITLAB_URL=https://gitlab.example.com",
        "AIGW_GITLAB_API_URL=https://gitlab.example.com/api/v4/",
        "AIGW_CUSTOM_MODELS__ENABLED=true",
        "AIGW_LOGGING__TO_FILE=/var/log/gitlab-aigw/ai-gateway.log",
    ] {
        assert!(
            env.contains(&wanted.to_string()),
            "{wanted} missing from {env:?}"
        );
    }
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
    assert_eq!(
        c["HostConfig"]["PortBindings"]["5052/tcp"][0]["HostPort"],
        port.to_string()
    );
    assert!(
        c["HostConfig"]["PortBindings"].get("50052/tcp").is_none(),
        "17.5 has no Agent Platform port"
    );
    let labels = &c["Config"]["Labels"];
    assert_eq!(labels["duo-selfhost.gitlab-version"], "17.5.0");
    assert_eq!(labels["duo-selfhost.version"], env!("CARGO_PKG_VERSION"));
    assert!(labels["duo-selfhost.settings-hash"]
        .as_str()
        .is_some_and(|h| h.len() == 24));
    assert_eq!(
        labels["duo-selfhost.log-dir"],
        sandbox.path().join("logs").display().to_string()
    );
    assert!(c["Config"]["Healthcheck"]["Test"][1]
        .as_str()
        .unwrap()
        .contains("/monitoring/healthz"));
    assert_eq!(c["State"]["Health"]["Status"], "healthy");
    assert_eq!(wait_healthz(port), r#"{"status":"ok","version":"17.5.0"}"#);
    // The log directory is mounted and the gateway's file logging lands in it.
    let log = std::fs::read_to_string(sandbox.path().join("logs/ai-gateway.log")).unwrap();
    assert!(log.contains("fixture gateway 17.5.0 started"), "{log}");
    let state = std::fs::read_to_string(sandbox.state_file()).unwrap();
    assert!(
        state.contains(&format!("image = \"{}\"", registry.image("17.5.0"))),
        "{state}"
    );
    assert!(
        state.contains(&format!("container_name = \"{name}\"")),
        "{state}"
    );
    // GitLab (17.5: gitlab.rb) points at the gateway; reconfigure is left to the admin here.
    let rb = std::fs::read_to_string(sandbox.gitlab_rb()).unwrap();
    assert!(
        rb.contains(&format!(
            "'AI_GATEWAY_URL' => 'http://aigw.example.com:{port}'"
        )),
        "gitlab.rb:\n{}",
        rb.lines()
            .filter(|l| l.contains("AI_GATEWAY"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        out.stderr.contains("gitlab-ctl reconfigure"),
        "{}",
        out.stderr
    );
    let first_id = container_id(&name);
    let state_before = state;

    // The same inputs again: nothing changes, and it says so.
    let out = run(sandbox.command().args(&args)).expect_code(0);
    assert!(out.stdout.contains("nothing changed"), "{}", out.stdout);
    assert_eq!(container_id(&name), first_id);
    assert_eq!(
        std::fs::read_to_string(sandbox.state_file()).unwrap(),
        state_before
    );

    // Changed env: replaced the safe way; the new one has it, nothing is left over.
    let mut changed = args.clone();
    changed.extend(["--env".to_string(), "AIGW_LOGGING__LEVEL=debug".to_string()]);
    let out = run(sandbox.command().args(&changed)).expect_code(0);
    assert!(out.stderr.contains("replacing"), "{}", out.stderr);
    assert_ne!(container_id(&name), first_id);
    let env = fx::env_of(&fx::inspect(&name).unwrap());
    assert!(
        env.contains(&"AIGW_LOGGING__LEVEL=debug".to_string()),
        "{env:?}"
    );
    assert!(env.contains(&"AIGW_GITLAB_URL=https://gitlab.example.com".to_string()));
    assert!(fx::inspect(&format!("{name}-previous")).is_none());
    assert_eq!(wait_healthz(port), r#"{"status":"ok","version":"17.5.0"}"#);
}

#[test]
fn agent_platform_port_from_18_4() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-install-184");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    // 50052 is fixed on the host; make sure nothing else of ours holds it.
    if std::net::TcpListener::bind(("0.0.0.0", 50052)).is_err() {
        panic!("port 50052 is taken on this host; the 18.4 test needs it");
    }
    let args = install_args(&sandbox, &name, port, "18.4.0");
    let out = run(sandbox.command().args(&args)).expect_code(0);
    // The signing keys GitLab 18.4 needs are generated, named, and never shown.
    assert!(
        out.stderr.contains(
            "generated AIGW_SELF_SIGNED_JWT__SIGNING_KEY, AIGW_SELF_SIGNED_JWT__VALIDATION_KEY, DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY"
        ),
        "{}",
        out.stderr
    );
    assert!(!format!("{}{}", out.stdout, out.stderr).contains("PRIVATE KEY"));
    let keys = fx::signing_keys_of(
        &name,
        &[
            "AIGW_SELF_SIGNED_JWT__SIGNING_KEY",
            "AIGW_SELF_SIGNED_JWT__VALIDATION_KEY",
            "DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY",
        ],
    );
    let c = fx::inspect(&name).unwrap();
    assert_eq!(
        c["HostConfig"]["PortBindings"]["50052/tcp"][0]["HostPort"],
        "50052"
    );
    assert!(fx::env_of(&c).contains(
        &"DUO_WORKFLOW_LOGGING__TO_FILE=/var/log/gitlab-aigw/duo-workflow-service.log".to_string()
    ));

    // A rerun keeps the container's keys: nothing is generated and nothing changes.
    let again = run(sandbox.command().args(&args)).expect_code(0);
    assert!(!again.stderr.contains("generated"), "{}", again.stderr);
    assert!(again.stdout.contains("nothing changed"), "{}", again.stdout);
    assert_eq!(fx::inspect(&name).unwrap()["Id"], c["Id"]);
    assert_eq!(
        fx::signing_keys_of(&name, &keys.keys().map(String::as_str).collect::<Vec<_>>()),
        keys
    );
}

#[test]
fn a_taken_port_is_a_clear_error_and_nothing_is_created() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-install-port");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let listener = std::net::TcpListener::bind(("0.0.0.0", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = run(sandbox
        .command()
        .args(install_args(&sandbox, &name, port, "17.5.0")))
    .expect_code(1);
    support::expect_taken_port(&out, port);
    assert!(fx::inspect(&name).is_none());
    assert!(!sandbox.state_file().exists());
}

#[test]
fn docker_unreachable_names_the_cause_and_the_fix() {
    let sandbox = Sandbox::new();
    let out = run(sandbox
        .command()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "--yes",
            "install",
            "--gitlab-url",
            "https://gitlab.example.com",
            "--gitlab-version",
            "17.5.0",
            "--gateway-host",
            "aigw.example.com",
            "--image",
            "example.invalid/gw:self-hosted-v17.5.0-ee",
        ]))
    .expect_code(1);
    assert!(
        out.stderr.contains(
            "error: the Docker Engine at unix:///nonexistent/docker.sock does not answer"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: check DOCKER_HOST"),
        "{}",
        out.stderr
    );
    assert!(!sandbox.state_file().exists());
}

/// `install --dry-run` for `version` with an image that is never pulled and one secret passed.
fn dry_run_args(name: &str, version: &str) -> Vec<String> {
    let image = format!("example.invalid/gw:self-hosted-v{version}-ee");
    [
        "--yes",
        "install",
        "--dry-run",
        "--gitlab-url",
        "https://gitlab.example.com",
        "--gitlab-version",
        version,
        "--gateway-host",
        "aigw.example.com",
        "--image",
        &image,
        "--container-name",
        name,
        "--env",
        "AIGW_SELF_SIGNED_JWT__SIGNING_KEY=very-secret-pem",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[test]
fn without_openssl_the_18_x_keys_are_a_warning_with_the_fix() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-install-nossl");
    let out = run(sandbox
        .command()
        .env("PATH", "/nonexistent")
        .args(dry_run_args(&name, "18.4.0")))
    .expect_code(0);
    // The key given is kept; the two it could not make are named, with the way to pass them.
    assert!(
        out.stderr.contains(
            "the gateway's signing keys for GitLab 18.4.0 were not generated: openssl, which makes them, was not found"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "for AIGW_SELF_SIGNED_JWT__VALIDATION_KEY, DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY"
        ),
        "{}",
        out.stderr
    );
    assert!(out
        .stdout
        .contains("AIGW_SELF_SIGNED_JWT__SIGNING_KEY=****"));
    assert!(!format!("{}{}", out.stdout, out.stderr).contains("very-secret-pem"));
    assert!(out.stdout.contains("nothing changed (--dry-run)"));
    assert!(fx::inspect(&name).is_none());
}

#[test]
fn dry_run_prints_the_plan_with_secrets_masked_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-install-dry");
    let rb = std::fs::read_to_string(sandbox.gitlab_rb()).unwrap();
    let out = run(sandbox.command().args(dry_run_args(&name, "17.6.0"))).expect_code(0);
    assert!(
        out.stdout
            .contains("image: example.invalid/gw:self-hosted-v17.6.0-ee"),
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .contains("AIGW_GITLAB_API_URL=https://gitlab.example.com/api/v4/"));
    assert!(
        out.stdout
            .contains("AIGW_SELF_SIGNED_JWT__SIGNING_KEY=****"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("very-secret-pem") && !out.stderr.contains("very-secret-pem"));
    assert!(out.stdout.contains("ports: 5052:5052"));
    assert!(out.stdout.contains("nothing changed (--dry-run)"));
    // The gitlab.rb diff is part of the plan; the file itself is untouched.
    assert!(
        out.stdout.contains("+") && out.stdout.contains("AI_GATEWAY_URL"),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read_to_string(sandbox.gitlab_rb()).unwrap(), rb);
    assert!(fx::inspect(&name).is_none());
    assert!(!sandbox.state_file().exists());
}

#[test]
fn a_loopback_gateway_host_is_refused() {
    let sandbox = Sandbox::new();
    let out = run(sandbox.command().args([
        "--yes",
        "install",
        "--dry-run",
        "--gitlab-url",
        "https://gitlab.example.com",
        "--gitlab-version",
        "17.6.0",
        "--gateway-host",
        "localhost",
    ]))
    .expect_code(1);
    assert!(out.stderr.contains("loopback"), "{}", out.stderr);
    assert!(out.stderr.contains("--allow-localhost"), "{}", out.stderr);
}

#[test]
fn vllm_is_refused_without_an_nvidia_runtime_and_nothing_changes() {
    fx::require_engine();
    let info = fx::docker(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(
        !info.contains("nvidia"),
        "this test expects an engine without the NVIDIA runtime"
    );
    let sandbox = Sandbox::new();
    let name = unique_name("duo-install-vllm");
    let _cleanup = fx::Cleanup::new(&[&name, &format!("{name}-vllm")]);
    let port = support::free_port();
    let mut args = install_args(&sandbox, &name, port, "17.5.0");
    args.extend(
        [
            "--model-runtime",
            "vllm",
            "--model",
            "mistralai/Codestral-22B-v0.1",
        ]
        .map(String::from),
    );
    let out = run(sandbox.command().args(&args)).expect_code(1);
    assert!(out.stderr.contains("no NVIDIA runtime"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("hint: install the NVIDIA Container Toolkit"),
        "{}",
        out.stderr
    );
    assert!(fx::inspect(&name).is_none());
    assert!(fx::inspect(&format!("{name}-vllm")).is_none());
    assert!(!sandbox.state_file().exists());
}

#[test]
fn the_vllm_container_spec_requests_gpus_and_serves_the_model() {
    fx::ensure_images();
    let name = unique_name("duo-vllm-spec");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let model = duo_selfhost::vllm::resolve_model("codestral").unwrap();
    let spec = duo_selfhost::vllm::container_spec(
        &model,
        &duo_selfhost::vllm::VllmOptions {
            served_model_name: "codestral",
            tensor_parallel_size: 2,
            gpus: duo_selfhost::docker::Gpus::Count(2),
            max_model_len: None,
            hf_home: Path::new("/srv/hf-cache"),
            hf_token: None,
            image: duo_selfhost::docker::VLLM_IMAGE,
            offline: false,
        },
    );
    // Created (never started: there is no GPU here) through the engine, then read back.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let docker = duo_selfhost::docker::connect().await.unwrap();
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
            .name(&name)
            .build();
        docker
            .create_container(Some(options), spec.create_body())
            .await
            .unwrap();
    });
    let c = fx::inspect(&name).unwrap();
    assert_eq!(c["Config"]["Image"], duo_selfhost::docker::VLLM_IMAGE);
    let request = &c["HostConfig"]["DeviceRequests"][0];
    assert_eq!(request["Count"], 2);
    assert_eq!(request["Capabilities"][0][0], "gpu");
    assert_eq!(
        cmd_of(&c),
        "--model mistralai/Codestral-22B-v0.1 --served-model-name codestral \
         --tensor-parallel-size 2 --tokenizer_mode mistral --load_format mistral \
         --config_format mistral --host 0.0.0.0 --port 8000"
    );
    assert_eq!(
        c["HostConfig"]["Binds"][0],
        "/srv/hf-cache:/root/.cache/huggingface"
    );
    assert_eq!(
        c["HostConfig"]["PortBindings"]["8000/tcp"][0]["HostPort"],
        "8000"
    );
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
}

/// A container's command, space-separated.
fn cmd_of(container: &serde_json::Value) -> String {
    container["Config"]["Cmd"]
        .as_array()
        .expect("a command")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_vllm_stand_in_refuses_what_vllm_would() {
    fx::require_engine();
    for (args, code, says) in [
        // The catalog alias the plan used to pass: no repository, no directory.
        (
            &["--model", "mistral-7b"][..],
            1,
            "Invalid repository ID or local directory specified: 'mistral-7b'",
        ),
        (
            &["--model", "/models/absent"],
            1,
            "Invalid repository ID or local directory",
        ),
        (
            &[
                "--model",
                "mistralai/Codestral-22B-v0.1",
                "--max-context",
                "4096",
            ],
            2,
            "error: unrecognized arguments: --max-context",
        ),
        (
            &[
                "--model",
                "mistralai/Codestral-22B-v0.1",
                "--tokenizer_mode",
                "mistrall",
            ],
            2,
            "argument --tokenizer-mode: invalid choice: 'mistrall'",
        ),
        (
            &["--model", "a/b", "--tensor-parallel-size", "all"],
            2,
            "argument --tensor-parallel-size: invalid int value: 'all'",
        ),
        (
            &["--model", "a/b", "--max-model-len"],
            2,
            "argument --max-model-len: expected one argument",
        ),
    ] {
        let (got, text) = fx::refused_by_vllm_stand_in(args);
        assert_eq!(got, code, "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
    }
}

/// A directory of fake `nvidia-smi` programs for PATH: the real one cannot run without a GPU.
fn fake_nvidia_smi(sandbox: &Sandbox, listing: Option<&str>) -> String {
    let bin = sandbox.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = match listing {
        Some(text) => format!("#!/bin/sh\nprintf '%s' '{text}'\n"),
        None => "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'\nexit 9\n".to_string(),
    };
    let path = bin.join("nvidia-smi");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The Hugging Face cache the binary's `models` commands use with the same environment.
fn models_cache_dir(cmd: &mut std::process::Command) -> String {
    let out = run(cmd.args(["models", "list"])).expect_code(0);
    let line = out
        .stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("cache: "))
        .unwrap_or_else(|| panic!("no cache line in {}", out.stderr));
    let hub = line.split_whitespace().next().unwrap();
    hub.strip_suffix("/hub")
        .expect("the hub folder")
        .to_string()
}

const TOKEN: &str = "hf_duoSelfhostTestTokenNeverShown";

#[test]
fn vllm_dry_run_shows_the_full_documented_command_and_never_the_token() {
    let sandbox = Sandbox::new();
    sandbox.gitlab_rb();
    let name = unique_name("duo-install-vllm-dry");
    let vllm_dry_run = |extra: &[&str]| {
        let mut args = dry_run_args(&name, "17.6.0");
        args.extend(
            ["--model-runtime", "vllm"]
                .iter()
                .chain(extra)
                .map(|a| a.to_string()),
        );
        args
    };
    let two_gpus = "GPU 0: NVIDIA L40S (UUID: GPU-a)\nGPU 1: NVIDIA L40S (UUID: GPU-b)\n";
    let out = run(sandbox
        .command()
        .env("HF_TOKEN", TOKEN)
        .env_remove("HF_HOME")
        .env("PATH", fake_nvidia_smi(&sandbox, Some(two_gpus)))
        .args(vllm_dry_run(&[
            "--model",
            "mistral-7b",
            "--ctx-size",
            "17776",
        ])))
    .expect_code(0);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains(TOKEN), "the token was printed:\n{all}");
    let hf = sandbox.path().join("cache/huggingface");
    let command = out
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("command: "))
        .unwrap_or_else(|| panic!("no command line in\n{}", out.stdout));
    assert_eq!(
        command,
        format!(
            "docker run -d --name {name}-vllm --restart unless-stopped --gpus all \
             -p 8000:8000 -v {}:/root/.cache/huggingface -e HF_HOME=/root/.cache/huggingface \
             -e HF_TOKEN {} --model mistralai/Mistral-7B-Instruct-v0.3 \
             --served-model-name mistral-7b-instruct --tensor-parallel-size 2 \
             --max-model-len 17776 --tokenizer_mode mistral --load_format mistral \
             --config_format mistral --host 0.0.0.0 --port 8000",
            hf.display(),
            duo_selfhost::docker::VLLM_IMAGE
        )
    );
    assert!(out.stdout.contains("HF_TOKEN=****"), "{}", out.stdout);
    assert!(out.stdout.contains("GPUs: all"), "{}", out.stdout);
    assert!(!hf.exists(), "a dry run creates no cache directory");

    // Mixtral: the documented safetensors flag, and a note on the tokenizer step.
    let out = run(sandbox
        .command()
        .env("PATH", fake_nvidia_smi(&sandbox, Some(two_gpus)))
        .args(vllm_dry_run(&["--model", "mixtral", "--gpus", "4"])))
    .expect_code(0);
    assert!(
        out.stdout
            .contains("--tensor-parallel-size 4 --load_format safetensors --host")
            && out.stdout.contains("--gpus 4"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("note: GitLab's vLLM page copies tokenizer.model"),
        "{}",
        out.stderr
    );

    // What vLLM could not load is refused before anything, with the fix.
    let bad = run(sandbox
        .command()
        .args(vllm_dry_run(&["--model", "mistral-8b"])))
    .expect_code(1);
    assert!(
        bad.stderr.contains("`mistral-8b` is not a catalog model")
            && bad.stderr.contains("hint: duo-selfhost models list"),
        "{}",
        bad.stderr
    );
    // vLLM's flags without vLLM are a mistake, not silently dropped.
    let mut stray = dry_run_args(&name, "17.6.0");
    stray.extend(
        [
            "--model-endpoint",
            "http://models.example.com/v1",
            "--gpus",
            "2",
        ]
        .map(String::from),
    );
    let stray = run(sandbox.command().args(stray)).expect_code(1);
    assert!(
        stray.stderr.contains("hint: add --model-runtime vllm"),
        "{}",
        stray.stderr
    );
}

#[test]
fn vllm_install_runs_the_stand_in_with_the_documented_flags() {
    let _port = support::vllm_port();
    fx::vllm_stand_in();
    if std::net::TcpListener::bind(("0.0.0.0", 8000)).is_err() {
        panic!(
            "port 8000 is taken on this host; the vLLM install test publishes the stand-in there"
        );
    }
    let sandbox = Sandbox::new();
    let name = unique_name("duo-install-vllm-run");
    let vllm_name = format!("{name}-vllm");
    let _cleanup = fx::Cleanup::new(&[&name, &vllm_name]);
    let port = support::free_port();
    let vllm_args = |model: &str| {
        let mut args = install_args(&sandbox, &name, port, "17.5.0");
        args.extend(["--model-runtime", "vllm", "--model", model].map(String::from));
        args
    };
    // The stand-in runs without a GPU request (the test hook); everything else is as shipped.
    let hooked = |cmd: &mut std::process::Command| {
        cmd.env(duo_selfhost::vllm::NO_GPU_HOOK_VAR, "1")
            .env_remove("HF_HOME")
            .env_remove("HUGGING_FACE_HUB_TOKEN");
    };

    // Codestral, the cache under XDG_CACHE_HOME, no GPU count to be had: one GPU, and it says so.
    let mut cmd = sandbox.command();
    hooked(&mut cmd);
    cmd.env("HF_TOKEN", TOKEN)
        .env("PATH", fake_nvidia_smi(&sandbox, None))
        .args(vllm_args("codestral"))
        .args(["--ctx-size", "16384"]);
    let out = run(&mut cmd).expect_code(0);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains(TOKEN), "the token was printed:\n{all}");
    assert!(
        out.stderr.contains("could not count the GPUs") && out.stderr.contains("--gpus N"),
        "{}",
        out.stderr
    );
    let c = fx::inspect(&vllm_name).expect("the vLLM container exists");
    assert_eq!(c["State"]["Health"]["Status"], "healthy", "{c}");
    assert_eq!(
        cmd_of(&c),
        "--model mistralai/Codestral-22B-v0.1 --served-model-name codestral-22b \
         --tensor-parallel-size 1 --max-model-len 16384 --tokenizer_mode mistral \
         --load_format mistral --config_format mistral --host 0.0.0.0 --port 8000"
    );
    assert!(fx::env_of(&c).contains(&format!("HF_TOKEN={TOKEN}")));
    let mut models = sandbox.command();
    hooked(&mut models);
    let cache = models_cache_dir(&mut models);
    assert_eq!(
        cache,
        sandbox
            .path()
            .join("cache/huggingface")
            .display()
            .to_string()
    );
    assert_eq!(
        c["HostConfig"]["Binds"][0],
        format!("{cache}:/root/.cache/huggingface"),
        "the container mounts the cache `models pull` fills"
    );
    let logs = fx::docker(&["logs", &vllm_name]);
    assert!(
        logs.contains("stand-in vLLM accepted: --model mistralai/Codestral-22B-v0.1"),
        "{logs}"
    );
    let (status, body) = fx::http_get(8000, "/v1/models").expect("the stand-in answers");
    assert_eq!(status, 200);
    assert!(body.contains(r#""id":"codestral-22b""#), "{body}");
    let state = std::fs::read_to_string(sandbox.state_file()).unwrap();
    assert!(
        state.contains("identifier = \"custom_openai/codestral-22b\"")
            && state.contains("catalog_name = \"codestral-22b\""),
        "{state}"
    );

    // Mistral 7B, the cache under HF_HOME, two GPUs listed, the older token variable: the
    // container is replaced with the instruct repository and the family's flags.
    let hf_home = sandbox.path().join("hf-home");
    let mut cmd = sandbox.command();
    hooked(&mut cmd);
    cmd.env_remove("HF_TOKEN")
        .env("HUGGING_FACE_HUB_TOKEN", TOKEN)
        .env("HF_HOME", &hf_home)
        .env(
            "PATH",
            fake_nvidia_smi(
                &sandbox,
                Some("GPU 0: NVIDIA A100 (UUID: GPU-a)\nGPU 1: NVIDIA A100 (UUID: GPU-b)\n"),
            ),
        )
        .args(vllm_args("mistral-7b"));
    let out = run(&mut cmd).expect_code(0);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains(TOKEN), "the token was printed:\n{all}");
    let c = fx::inspect(&vllm_name).expect("the vLLM container exists");
    assert_eq!(c["State"]["Health"]["Status"], "healthy", "{c}");
    assert_eq!(
        cmd_of(&c),
        "--model mistralai/Mistral-7B-Instruct-v0.3 --served-model-name mistral-7b-instruct \
         --tensor-parallel-size 2 --tokenizer_mode mistral --load_format mistral \
         --config_format mistral --host 0.0.0.0 --port 8000"
    );
    assert!(fx::env_of(&c).contains(&format!("HF_TOKEN={TOKEN}")));
    assert_eq!(
        c["HostConfig"]["Binds"][0],
        format!("{}:/root/.cache/huggingface", hf_home.display())
    );
    let mut models = sandbox.command();
    models.env("HF_HOME", &hf_home);
    assert_eq!(models_cache_dir(&mut models), hf_home.display().to_string());
    let logs = fx::docker(&["logs", &vllm_name]);
    assert!(
        logs.contains("stand-in vLLM accepted: --model mistralai/Mistral-7B-Instruct-v0.3"),
        "{logs}"
    );
}

fn pty_session(sandbox: &Sandbox, args: &[&str]) -> rexpect::session::PtySession {
    let mut cmd = sandbox.command();
    cmd.args(args);
    rexpect::session::spawn_with_options(
        support::on_terminal(cmd),
        rexpect::reader::Options::new()
            .timeout_ms(Some(30_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("spawn in a pseudo-terminal")
}

#[test]
fn prompts_ask_for_what_is_missing_on_a_terminal() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-install-pty");
    let rb = std::fs::read_to_string(sandbox.gitlab_rb()).unwrap();
    let mut p = pty_session(
        &sandbox,
        &[
            "install",
            "--dry-run",
            "--image",
            "example.invalid/gw:self-hosted-v17.6.0-ee",
            "--container-name",
            &name,
        ],
    );
    p.exp_string("GitLab URL").unwrap();
    p.send_line("https://gitlab.pty.example").unwrap();
    p.exp_string("GitLab version").unwrap();
    p.send_line("17.6.0").unwrap();
    p.exp_string("Host name GitLab reaches the gateway by")
        .unwrap();
    // Clear any default the prompt offers, then type ours.
    p.send_line("aigw.pty.example").unwrap();
    p.exp_string("How is the model served?").unwrap();
    choose(&mut p, 2);
    p.exp_string("Model endpoint").unwrap();
    p.send_line("").unwrap();
    p.exp_string("GitLab administrator token").unwrap();
    p.send_line("").unwrap();
    p.exp_string("AIGW_GITLAB_URL=https://gitlab.pty.example")
        .unwrap();
    // The plan shows the gitlab.rb diff for 17.6, and says last that nothing changed.
    p.exp_string("AI_GATEWAY_URL").unwrap();
    p.exp_string("nothing changed (--dry-run)").unwrap();
    p.exp_eof().unwrap();
    assert!(!sandbox.state_file().exists());
    assert_eq!(std::fs::read_to_string(sandbox.gitlab_rb()).unwrap(), rb);
}

#[test]
fn ctrl_c_at_a_prompt_changes_nothing() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-install-ctrlc");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let log_dir = sandbox.path().join("logs");
    let rb = std::fs::read_to_string(sandbox.gitlab_rb()).unwrap();
    let mut p = pty_session(
        &sandbox,
        &[
            "install",
            "--image",
            "example.invalid/gw:self-hosted-v17.6.0-ee",
            "--container-name",
            &name,
            "--log-dir",
            log_dir.to_str().unwrap(),
        ],
    );
    p.exp_string("GitLab URL").unwrap();
    p.send_line("https://gitlab.pty.example").unwrap();
    p.exp_string("GitLab version").unwrap();
    p.send_control('c').unwrap();
    p.exp_eof().unwrap();
    let status = format!("{:?}", p.process().wait().unwrap());
    // Killed by SIGINT (console re-raises it): not a clean exit 0.
    assert!(status.contains("SIGINT"), "Ctrl-C ended as {status}");
    assert!(!sandbox.state_file().exists());
    assert!(!log_dir.exists());
    assert_eq!(std::fs::read_to_string(sandbox.gitlab_rb()).unwrap(), rb);
    assert!(fx::inspect(&name).is_none());
}

/// Picks the `index`th item of a dialoguer list: arrow down that many times, then Enter.
fn choose(p: &mut rexpect::session::PtySession, index: usize) {
    for _ in 0..index {
        p.send("\x1b[B").unwrap();
    }
    p.send("\r").unwrap();
    p.flush().unwrap();
}

/// The wizard up to the serving question, in a dry run for GitLab 18.2.1.
fn wizard_to_serving_question(
    sandbox: &Sandbox,
    dry_run: bool,
    gitlab_url: &str,
) -> rexpect::session::PtySession {
    let name = unique_name("duo-install-wizard");
    let log_dir = sandbox.path().join("logs");
    let mut args = vec![
        "install",
        "--image",
        "example.invalid/gw:self-hosted-v18.2.1-ee",
        "--gitlab-version",
        "18.2.1",
        "--gateway-host",
        "aigw.pty.example",
        "--container-name",
        &name,
        "--log-dir",
        log_dir.to_str().unwrap(),
    ];
    if dry_run {
        args.push("--dry-run");
    }
    let mut p = pty_session(sandbox, &args);
    p.exp_string("GitLab URL").unwrap();
    p.send_line(gitlab_url).unwrap();
    p.exp_string("How is the model served?").unwrap();
    p
}

#[test]
fn the_wizard_asks_how_the_model_is_served_embedded() {
    let sandbox = Sandbox::new();
    let mut p = wizard_to_serving_question(&sandbox, true, "https://gitlab.pty.example");
    choose(&mut p, 0);
    // Models that fit this host, sized; the demo model fits any host.
    p.exp_string("Which model? (those that fit this host:")
        .unwrap();
    p.exp_string("smollm2-135m (completion, generation, chat")
        .unwrap();
    // The last item: the smallest model.
    p.send("\x1b[A").unwrap();
    p.flush().unwrap();
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string("GitLab administrator token").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Plan (dry run): GitLab 18.2.1").unwrap();
    p.exp_string("model runtime: duo-selfhost-serve.service running duo-selfhost serve --model smollm2-135m on port 8080").unwrap();
    p.exp_string("model registration: smollm2-135m as a self-hosted model in GitLab (custom_openai/smollm2-135m at http://aigw.pty.example:8080/v1)").unwrap();
    p.exp_string("feature mapping: code completions, code generations, duo chat")
        .unwrap();
    p.exp_string("needs a GitLab token").unwrap();
    p.exp_eof().unwrap();
    assert!(!sandbox.state_file().exists());
}

#[test]
fn the_wizard_asks_how_the_model_is_served_vllm() {
    let sandbox = Sandbox::new();
    let mut p = wizard_to_serving_question(&sandbox, true, "https://gitlab.pty.example");
    choose(&mut p, 1);
    p.exp_string("Which model does vLLM serve?").unwrap();
    choose(&mut p, 0);
    p.exp_string("GitLab administrator token").unwrap();
    p.send_line("").unwrap();
    p.exp_string("vllm container").unwrap();
    p.exp_string("mistralai/Codestral-22B-v0.1").unwrap();
    p.exp_string("model runtime: the vLLM container above")
        .unwrap();
    p.exp_string("model registration: codestral-22b as a self-hosted model in GitLab (custom_openai/codestral-22b at http://aigw.pty.example:8000/v1)").unwrap();
    p.exp_string("feature mapping: code completions, code generations")
        .unwrap();
    p.exp_eof().unwrap();
    assert!(!sandbox.state_file().exists());
}

#[test]
fn the_wizard_asks_how_the_model_is_served_existing_endpoint() {
    let sandbox = Sandbox::new();
    // A token is typed, so the dry run reads GitLab's setting: the fake GitLab answers.
    let gitlab = support::gitlab_fixture::FakeGitlab::start(
        support::gitlab_fixture::FakeGitlabConfig::new("18.2.1-ee")
            .token("glpat-typed-in-the-wizard"),
    );
    let mut p = wizard_to_serving_question(&sandbox, true, &gitlab.url);
    choose(&mut p, 2);
    p.exp_string("Model endpoint").unwrap();
    p.send_line("http://models.pty.example:8000/v1").unwrap();
    p.exp_string("Which model does the endpoint serve?")
        .unwrap();
    // mistral-7b-instruct is the catalog's second model.
    choose(&mut p, 1);
    p.exp_string("GitLab administrator token").unwrap();
    // Hidden input: what is typed is never echoed.
    p.send_line("glpat-typed-in-the-wizard").unwrap();
    let plan = p.exp_string("feature mapping:").unwrap();
    assert!(
        plan.contains("model runtime: an existing endpoint (http://models.pty.example:8000/v1)"),
        "{plan}"
    );
    assert!(plan.contains("model registration: mistral-7b-instruct as a self-hosted model in GitLab (custom_openai/mistral-7b-instruct at http://models.pty.example:8000/v1)"), "{plan}");
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("code generations, duo chat"), "{rest}");
    assert!(
        !plan.contains("glpat-typed") && !rest.contains("glpat-typed"),
        "the token was echoed"
    );
    assert!(!sandbox.state_file().exists());
}

/// Ctrl-C at the wizard's question reached by `answer`: the process ends by SIGINT and
/// nothing changed.
fn ctrl_c_at(question: &str, answer: impl FnOnce(&mut rexpect::session::PtySession)) {
    let sandbox = Sandbox::new();
    let rb = std::fs::read_to_string(sandbox.gitlab_rb()).unwrap();
    let mut p = wizard_to_serving_question(&sandbox, false, "https://gitlab.pty.example");
    answer(&mut p);
    p.exp_string(question).unwrap();
    p.send_control('c').unwrap();
    p.exp_eof().unwrap();
    let status = format!("{:?}", p.process().wait().unwrap());
    assert!(
        status.contains("SIGINT"),
        "Ctrl-C at {question} ended as {status}"
    );
    assert!(!sandbox.state_file().exists());
    assert!(!sandbox.path().join("logs").exists());
    assert_eq!(std::fs::read_to_string(sandbox.gitlab_rb()).unwrap(), rb);
}

#[test]
fn ctrl_c_at_each_new_question_changes_nothing() {
    // The serving question is on screen once its last choice is.
    ctrl_c_at("an OpenAI-compatible endpoint that already exists", |_| {});
    ctrl_c_at("Which model?", |p| choose(p, 0));
    ctrl_c_at("Which model does vLLM serve?", |p| choose(p, 1));
    ctrl_c_at("Which model does the endpoint serve?", |p| {
        choose(p, 2);
        p.exp_string("Model endpoint").unwrap();
        p.send_line("http://models.pty.example:8000/v1").unwrap();
    });
    ctrl_c_at("GitLab administrator token", |p| {
        choose(p, 2);
        p.exp_string("Model endpoint").unwrap();
        p.send_line("").unwrap();
    });
    ctrl_c_at("Apply this plan?", |p| {
        choose(p, 2);
        p.exp_string("Model endpoint").unwrap();
        p.send_line("").unwrap();
        p.exp_string("GitLab administrator token").unwrap();
        p.send_line("").unwrap();
    });
}

#[test]
fn the_templates_placeholder_url_is_never_offered() {
    let sandbox = Sandbox::new();
    let rb = std::fs::read_to_string(sandbox.gitlab_rb()).unwrap();
    assert!(
        rb.contains("external_url 'GENERATED_EXTERNAL_URL'"),
        "the template changed"
    );
    // On a terminal the question has no default.
    let mut p = pty_session(
        &sandbox,
        &["install", "--dry-run", "--gitlab-version", "18.2.1"],
    );
    p.exp_string("GitLab URL").unwrap();
    p.send_line("https://gitlab.pty.example").unwrap();
    let shown = p
        .exp_string("Host name GitLab reaches the gateway by")
        .unwrap();
    assert!(
        !shown.contains("GENERATED_EXTERNAL_URL"),
        "offered: {shown}"
    );
    drop(p);
    // Without a terminal it is not taken either: the error asks for the URL.
    let out = run(sandbox.command().args([
        "--yes",
        "install",
        "--dry-run",
        "--gitlab-version",
        "18.2.1",
        "--gateway-host",
        "aigw.example.com",
    ]))
    .expect_code(1);
    assert!(
        out.stderr.contains("GitLab's URL is needed"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("GENERATED_EXTERNAL_URL"),
        "{}",
        out.stderr
    );
}

/// `install --model-runtime embedded` writes the serve config and the unit that runs
/// `serve --config` with it (beside the state file: systemd does not run here), and that config
/// serves the model under the name install chose.
#[test]
fn embedded_install_writes_the_serve_config_its_unit_runs() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-embedded");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    // 17.6 (resolved to 17.6.1): the fresh-install test asserts that it pulls 17.5.0 itself.
    let mut args = install_args(&sandbox, &name, port, "17.6.0");
    args.extend(
        [
            "--model-runtime",
            "embedded",
            "--model",
            "smollm2-135m",
            "--served-model-name",
            "smollm2-local",
        ]
        .map(String::from),
    );
    let out = run(sandbox.command().args(&args)).expect_code(0);
    let config = sandbox.path().join("serve.toml");
    let text = std::fs::read_to_string(&config).unwrap_or_else(|e| {
        panic!(
            "no serve config at {}: {e}\n{}",
            config.display(),
            out.stderr
        )
    });
    let file = duo_selfhost::serve_config::parse(&text).unwrap();
    assert_eq!(file.port, Some(8080), "{text}");
    assert_eq!(file.host.as_deref(), Some("0.0.0.0"), "{text}");
    assert_eq!(file.models.len(), 1, "{text}");
    assert_eq!(file.models[0].model, "smollm2-135m");
    assert_eq!(
        file.models[0].served_model_name.as_deref(),
        Some("smollm2-local")
    );
    let unit = std::fs::read_to_string(sandbox.path().join("duo-selfhost-serve.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart in\n{unit}"));
    assert!(
        exec.ends_with(&format!(" serve --config {}", config.display())),
        "{exec}"
    );
    assert!(
        out.stderr
            .contains(&format!("serve --config {}", config.display())),
        "{}",
        out.stderr
    );

    // What the unit runs, on a free loopback port: the model answers under install's name.
    let serve_port = support::free_port();
    // The model install named is in this machine's cache (scripts/fetch-test-model).
    let hf_home = duo_selfhost::model_cache::hf_home();
    let mut serve = sandbox
        .command()
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &serve_port.to_string()])
        .args(["--threads", "1", "--ctx-size", "1024"])
        .env("HF_HOME", hf_home)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let models = loop {
        if let Some((200, body)) = fx::http_get(serve_port, "/v1/models") {
            break body;
        }
        if std::time::Instant::now() > deadline || serve.try_wait().unwrap().is_some() {
            let _ = serve.kill();
            panic!("serve --config did not answer /v1/models (run scripts/fetch-test-model)");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    let models: serde_json::Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["data"][0]["id"], "smollm2-local", "{models}");
}
