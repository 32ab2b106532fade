//! `duo-selfhost upgrade` against the real Docker Engine, with the stand-in gateway images
//! served by a local registry (see tests/support/docker_fixtures.rs).

mod support;

use support::docker_fixtures as fx;

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
    let name = support::unique_name("duo-fixture");
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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some((200, body)) = fx::http_get(port, "/monitoring/healthz") {
            assert_eq!(body, r#"{"status":"ok","version":"17.5.0"}"#);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the fixture never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
