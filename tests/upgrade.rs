//! `duo-selfhost upgrade` against the real Docker Engine, with the stand-in gateway images
//! served by a local registry (tests/support/docker_fixtures.rs). No engine: these fail.

use crate::support;

use support::docker_fixtures as fx;
use support::docker_fixtures::own_env;
use support::{
    container_id, install_args_with_extra_env, install_gateway, run, unique_name, upgrade_command,
    wait_healthz, Sandbox,
};

/// The fixtures themselves: the registry lists the tags, and a healthy image answers healthz.
#[test]
fn fixtures_serve_tags_and_answer_healthz() {
    let registry = fx::registry();
    let (status, body) = fx::http_get(
        registry.port,
        &format!("/v2/{}/tags/list", fx::GATEWAY_PATH),
    )
    .expect("the registry answers");
    assert_eq!(status, 200, "{body}");
    for (version, _) in fx::VERSIONS {
        assert!(
            body.contains(&format!("self-hosted-v{version}-ee")),
            "{body}"
        );
    }
    let name = unique_name("duo-fixture");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    fx::docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &format!("127.0.0.1:{port}:5052"),
        &fx::gateway_image("17.5.0"),
    ]);
    assert_eq!(wait_healthz(port), r#"{"status":"ok","version":"17.5.0"}"#);
}

fn install_17_5(sandbox: &Sandbox, name: &str, port: u16) {
    install_gateway(sandbox, name, port, "17.5.0");
}

fn upgrade(sandbox: &Sandbox, extra: &[&str]) -> support::Run {
    run(&mut upgrade_command(sandbox, extra))
}

#[test]
fn upgrade_17_5_to_17_6_keeps_every_setting() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-upgrade");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    install_17_5(&sandbox, &name, port);
    let before = fx::inspect(&name).unwrap();
    let env_before = own_env(&name);
    assert!(env_before.contains(&"HTTPS_PROXY=http://proxy.example:3128".to_string()));

    let out = upgrade(&sandbox, &["--to-version", "17.6.0"]).expect_code(0);
    let registry = fx::registry();
    // Tag discovery picked the highest 17.6 patch from the registry.
    assert!(
        out.stdout
            .contains(&format!("-> {}", registry.image("17.6.1"))),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let after = fx::inspect(&name).unwrap();
    assert_eq!(after["Config"]["Image"], registry.image("17.6.1"));
    assert_ne!(after["Id"], before["Id"]);
    assert_eq!(own_env(&name), env_before, "every env variable is kept");
    for key in ["PortBindings", "Binds", "RestartPolicy"] {
        assert_eq!(
            after["HostConfig"][key], before["HostConfig"][key],
            "{key} kept"
        );
    }
    let (labels_before, labels_after) = (&before["Config"]["Labels"], &after["Config"]["Labels"]);
    assert_eq!(
        labels_after["duo-selfhost.log-dir"],
        labels_before["duo-selfhost.log-dir"]
    );
    assert_eq!(
        labels_after["duo-selfhost.env-keys"],
        labels_before["duo-selfhost.env-keys"]
    );
    assert_eq!(labels_after["duo-selfhost.gitlab-version"], "17.6.0");
    // The new image's own defaults apply (they were not pinned from the old image).
    assert_eq!(wait_healthz(port), r#"{"status":"ok","version":"17.6.1"}"#);
    assert!(fx::inspect(&format!("{name}-previous")).is_none());
    let state = std::fs::read_to_string(sandbox.state_file()).unwrap();
    assert!(state.contains(&registry.image("17.6.1")), "{state}");

    // Install with the inputs matching the upgraded container is then a no-op.
    let args = install_args_with_extra_env(&sandbox, &name, port, "17.6.0");
    let out = run(sandbox.command().args(&args)).expect_code(0);
    assert!(
        out.stdout.contains("nothing changed"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn upgrade_to_18_4_adds_the_signing_keys_and_the_agent_platform_port() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-upgrade-184");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    if std::net::TcpListener::bind(("0.0.0.0", 50052)).is_err() {
        panic!("port 50052 is taken on this host; the 18.4 test needs it");
    }
    install_17_5(&sandbox, &name, port);
    let env_before = own_env(&name);
    let wanted = [
        "AIGW_SELF_SIGNED_JWT__SIGNING_KEY",
        "AIGW_SELF_SIGNED_JWT__VALIDATION_KEY",
        "DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY",
    ];

    // Told GitLab is 18.4 but kept on the same image, the gateway still lacks the keys and the
    // port: --check says so (exit 100), naming them.
    let same_image = fx::inspect(&name).unwrap()["Config"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    let check = upgrade(
        &sandbox,
        &["--check", "--to-version", "18.4.0", "--image", &same_image],
    )
    .expect_code(100);
    assert!(
        check.stdout.contains(&format!(
            "runs {same_image} but lacks what GitLab 18.4.0 needs: {}, port 50052 -> 50052/tcp",
            wanted.join(", ")
        )),
        "{}",
        check.stdout
    );

    // The plan names what it adds, and shows no key.
    let plan = upgrade(&sandbox, &["--dry-run", "--to-version", "18.4.0"]).expect_code(0);
    for key in wanted {
        assert!(
            plan.stdout
                .contains(&format!("adding for GitLab 18.4.0: {key}")),
            "{}",
            plan.stdout
        );
    }
    assert!(plan
        .stdout
        .contains("adding for GitLab 18.4.0: port 50052 -> 50052/tcp"));
    assert!(!plan.stdout.contains("PRIVATE KEY"));

    let out = upgrade(&sandbox, &["--to-version", "18.4.0"]).expect_code(0);
    assert!(!format!("{}{}", out.stdout, out.stderr).contains("PRIVATE KEY"));
    let after = fx::inspect(&name).unwrap();
    assert_eq!(after["Config"]["Image"], fx::registry().image("18.4.0"));
    assert_eq!(
        after["HostConfig"]["PortBindings"]["50052/tcp"][0]["HostPort"],
        "50052"
    );
    // Every old variable is kept; the keys are added.
    let env_after = own_env(&name);
    for entry in &env_before {
        assert!(env_after.contains(entry), "{entry} kept");
    }
    let keys = fx::signing_keys_of(&name, &wanted);
    assert_eq!(wait_healthz(port), r#"{"status":"ok","version":"18.4.0"}"#);

    // Upgrading again to the same version keeps the keys (nothing to add).
    let again = upgrade(&sandbox, &["--to-version", "18.4.0"]).expect_code(0);
    assert!(again.stdout.contains("nothing changed"), "{}", again.stdout);
    assert_eq!(fx::signing_keys_of(&name, &wanted), keys);
}

#[test]
fn check_exits_0_when_up_to_date_and_100_when_an_upgrade_is_available() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-upgrade-check");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    install_17_5(&sandbox, &name, port);
    let id = container_id(&name);

    let out = upgrade(&sandbox, &["--check", "--to-version", "17.5.0"]).expect_code(0);
    assert!(out.stdout.contains("is up to date"), "{}", out.stdout);
    let out = upgrade(&sandbox, &["--check", "--to-version", "17.6.0"]).expect_code(100);
    assert!(out.stdout.contains("upgrade available"), "{}", out.stdout);
    let out = upgrade(&sandbox, &["--dry-run", "--to-version", "17.6.0"]).expect_code(0);
    assert!(out.stdout.contains("would replace"), "{}", out.stdout);
    assert!(
        out.stdout.contains("HTTPS_PROXY=http://proxy.example:3128"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("nothing changed (--dry-run)"));
    assert_eq!(
        container_id(&name),
        id,
        "--check and --dry-run change nothing"
    );
}

#[test]
fn an_unhealthy_new_image_is_rolled_back_and_the_old_one_answers_again() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-upgrade-unhealthy");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    install_17_5(&sandbox, &name, port);
    let id = container_id(&name);
    let env_before = own_env(&name);

    let out = upgrade(&sandbox, &["--to-version", "17.7.0"]).expect_code(1);
    assert!(out.stderr.contains("rolling back"), "{}", out.stderr);
    assert!(
        out.stderr.contains("not healthy after 12s"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("last log lines"), "{}", out.stderr);
    assert!(
        out.stderr.contains("/monitoring/healthz fails"),
        "the container's own log lines:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("error: replacing"), "{}", out.stderr);
    assert_eq!(container_id(&name), id, "the old container is back");
    assert!(fx::inspect(&format!("{name}-previous")).is_none());
    assert_eq!(own_env(&name), env_before);
    assert_eq!(wait_healthz(port), r#"{"status":"ok","version":"17.5.0"}"#);
}

#[test]
fn a_crash_looping_new_image_is_rolled_back() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-upgrade-crash");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    install_17_5(&sandbox, &name, port);
    let id = container_id(&name);

    let out = upgrade(&sandbox, &["--to-version", "17.8.0"]).expect_code(1);
    assert!(out.stderr.contains("crashing on purpose"), "{}", out.stderr);
    assert!(out.stderr.contains("rolling back"), "{}", out.stderr);
    assert_eq!(container_id(&name), id);
    assert_eq!(wait_healthz(port), r#"{"status":"ok","version":"17.5.0"}"#);
}

#[test]
fn docker_unreachable_names_the_cause_and_the_fix() {
    let sandbox = Sandbox::new();
    let out = run(sandbox
        .command()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["--yes", "upgrade", "--to-version", "17.6.0"]))
    .expect_code(1);
    assert!(out.stderr.contains("does not answer"), "{}", out.stderr);
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
}

#[test]
fn no_container_is_a_clear_error() {
    fx::require_engine();
    let sandbox = Sandbox::new();
    let name = unique_name("duo-upgrade-none");
    let out = upgrade(
        &sandbox,
        &["--container-name", &name, "--to-version", "17.6.0"],
    )
    .expect_code(1);
    assert!(
        out.stderr
            .contains(&format!("there is no container named {name}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: install the gateway first"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_up_to_date_gateway_that_is_down_is_started() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-upgrade-down");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    install_17_5(&sandbox, &name, port);
    let id = container_id(&name);
    // What an engine killed with SIGKILL can leave: the container exited, not brought back.
    fx::docker(&["stop", &name]);

    let out = upgrade(&sandbox, &["--to-version", "17.5.0"]).expect_code(0);
    assert!(
        out.stdout.contains("is up to date") && out.stdout.contains("started it"),
        "{}",
        out.stdout
    );
    assert_eq!(container_id(&name), id);
    assert_eq!(wait_healthz(port), r#"{"status":"ok","version":"17.5.0"}"#);
}
