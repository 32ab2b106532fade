//! The GitLab API client and "point GitLab at the gateway" against the fake GitLab
//! (tests/support/gitlab_fixture.rs): documented shapes, 401/404, a hang, refused connections,
//! HTTPS with a self-signed certificate, and the token never showing up anywhere.

use crate::support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duo_selfhost::error::{error_lines, exit_status_of, ExitStatus};
use duo_selfhost::gitlab_api::GitlabClient;
use duo_selfhost::gitlab_config::{self, PointRequest, PointStep};
use duo_selfhost::gitlab_rb;
use duo_selfhost::output::Printer;
use duo_selfhost::secret::Secret;
use support::gitlab_fixture::{Failure, FakeGitlab, FakeGitlabConfig};

const TOKEN: &str = "glpat-fixture-token-0123456789";

fn client(gitlab: &FakeGitlab, token: Option<&str>) -> GitlabClient {
    GitlabClient::new(
        &gitlab.url,
        token.map(Secret::new),
        gitlab.ca_cert.as_deref(),
        Duration::from_secs(2),
    )
    .unwrap()
}

/// The rendered error (error/caused by/hint lines) and its exit status.
fn rendered(err: &anyhow::Error) -> (String, ExitStatus) {
    let text = error_lines(err)
        .into_iter()
        .map(|(label, text)| format!("{label}: {text}"))
        .collect::<Vec<_>>()
        .join("\n");
    (text, exit_status_of(err))
}

#[tokio::test]
async fn rest_endpoints_answer_in_the_documented_shapes() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.2-ee").token(TOKEN));
    let api = client(&gitlab, Some(TOKEN));

    let metadata = api.metadata().await.unwrap();
    assert_eq!(metadata.version, "17.5.2-ee");
    assert_eq!(metadata.semver(), Some(semver::Version::new(17, 5, 2)));
    assert!(metadata.is_enterprise());
    assert_eq!(metadata.revision, "a1b2c3d4e5f");

    let ready = api.readiness().await.unwrap();
    assert!(ready.ready);
    let license = api.license().await.unwrap().unwrap();
    assert_eq!(license.plan.as_deref(), Some("ultimate"));
    assert_eq!(license.expired, Some(false));

    assert_eq!(api.feature_enabled("ai_custom_model").await.unwrap(), None);
    let feature = api.enable_feature("ai_custom_model").await.unwrap();
    assert!(feature.enabled());
    assert_eq!(
        gitlab.feature_state("ai_custom_model").as_deref(),
        Some("on")
    );
    assert_eq!(
        api.feature_enabled("ai_custom_model").await.unwrap(),
        Some(true)
    );

    // The token travels as PRIVATE-TOKEN; the readiness probe needs none.
    let requests = gitlab.requests();
    let metadata_call = requests
        .iter()
        .find(|r| r.path == "/api/v4/metadata")
        .unwrap();
    assert_eq!(metadata_call.private_token.as_deref(), Some(TOKEN));
    let post = requests.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.path, "/api/v4/features/ai_custom_model");
    assert_eq!(post.body, "value=true");

    gitlab.configure(|c| c.ready = false);
    let not_ready = api.readiness().await.unwrap();
    assert!(!not_ready.ready);
    assert_eq!(not_ready.status, 503);

    gitlab.configure(|c| c.license = None);
    assert_eq!(api.license().await.unwrap(), None);
}

#[tokio::test]
async fn unauthorized_forbidden_and_not_found_are_explained() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.1.1-ee").token(TOKEN));

    let wrong = client(&gitlab, Some("glpat-wrong-token"));
    let err = wrong.metadata().await.unwrap_err();
    let (text, status) = rendered(&err);
    assert_eq!(status, ExitStatus::Failure);
    assert!(
        text.contains(&format!("{}/api/v4/metadata", gitlab.url)),
        "{text}"
    );
    assert!(
        text.contains("401") && text.contains("rejected the token"),
        "{text}"
    );
    assert!(
        text.contains("hint:") && text.contains("GITLAB_TOKEN"),
        "{text}"
    );
    assert!(!text.contains("glpat-wrong-token"), "{text}");

    let anonymous = client(&gitlab, None);
    let (text, _) = rendered(&anonymous.metadata().await.unwrap_err());
    assert!(text.contains("needs a token"), "{text}");

    gitlab.configure(|c| c.admin = false);
    let user = client(&gitlab, Some(TOKEN));
    let (text, status) = rendered(&user.features().await.unwrap_err());
    assert_eq!(status, ExitStatus::Failure);
    assert!(
        text.contains("403") && text.contains("administrator"),
        "{text}"
    );

    gitlab.set_failure(Failure::NotFound);
    let (text, status) = rendered(&user.metadata().await.unwrap_err());
    assert_eq!(status, ExitStatus::Failure);
    assert!(
        text.contains("404") && text.contains("/api/v4/metadata"),
        "{text}"
    );

    gitlab.set_failure(Failure::Unauthorized);
    let (text, _) = rendered(&user.metadata().await.unwrap_err());
    assert!(text.contains("401"), "{text}");
}

#[tokio::test]
async fn a_hanging_gitlab_times_out_with_the_url_named() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").failure(Failure::Hang));
    let api = GitlabClient::new(&gitlab.url, None, None, Duration::from_millis(700)).unwrap();
    let started = Instant::now();
    let err = api.metadata().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let (text, status) = rendered(&err);
    assert_eq!(status, ExitStatus::Failure);
    assert!(text.contains("did not answer within 0.7 s"), "{text}");
    assert!(text.contains(&gitlab.url), "{text}");
}

#[tokio::test]
async fn refused_and_unresolvable_hosts_are_explained() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let api = GitlabClient::new(
        &format!("http://127.0.0.1:{port}"),
        None,
        None,
        Duration::from_secs(2),
    )
    .unwrap();
    let (text, status) = rendered(&api.metadata().await.unwrap_err());
    assert_eq!(status, ExitStatus::Failure);
    assert!(
        text.contains("refused") && text.contains(&format!("127.0.0.1:{port}")),
        "{text}"
    );

    // .invalid never resolves (RFC 6761).
    let api = GitlabClient::new(
        "http://gitlab.duo-selfhost-test.invalid",
        None,
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let (text, _) = rendered(&api.metadata().await.unwrap_err());
    assert!(
        text.contains("cannot resolve the host `gitlab.duo-selfhost-test.invalid`"),
        "{text}"
    );
}

#[tokio::test]
async fn https_with_a_self_signed_certificate_needs_ca_cert() {
    let gitlab = FakeGitlab::start_https(FakeGitlabConfig::new("18.1.1-ee").token(TOKEN));
    assert!(gitlab.url.starts_with("https://127.0.0.1:"));

    let untrusting = GitlabClient::new(
        &gitlab.url,
        Some(Secret::new(TOKEN)),
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let (text, status) = rendered(&untrusting.metadata().await.unwrap_err());
    assert_eq!(status, ExitStatus::Failure);
    assert!(
        text.contains("TLS with") && text.contains("not trusted"),
        "{text}"
    );
    assert!(text.contains("--ca-cert"), "{text}");

    let trusting = client(&gitlab, Some(TOKEN));
    assert_eq!(trusting.metadata().await.unwrap().version, "18.1.1-ee");

    // A CA file that is not PEM is refused up front.
    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), "not a certificate").unwrap();
    let err = GitlabClient::new(&gitlab.url, None, Some(junk.path()), Duration::from_secs(1))
        .unwrap_err();
    assert!(
        format!("{err}").contains("holds no PEM certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn duo_settings_read_and_update_in_both_payload_shapes() {
    for legacy in [false, true] {
        let mut config = FakeGitlabConfig::new("17.10.1-ee").token(TOKEN);
        if legacy {
            config = config.legacy_mutation_payload();
        }
        let gitlab = FakeGitlab::start(config);
        let api = client(&gitlab, Some(TOKEN));
        assert_eq!(api.ai_gateway_url().await.unwrap(), None);
        let stored = api
            .set_ai_gateway_url("http://aigw.example.com:5052")
            .await
            .unwrap();
        assert_eq!(stored, "http://aigw.example.com:5052", "legacy={legacy}");
        assert_eq!(
            gitlab.ai_gateway_url().as_deref(),
            Some("http://aigw.example.com:5052")
        );
        assert_eq!(
            api.ai_gateway_url().await.unwrap().as_deref(),
            Some("http://aigw.example.com:5052")
        );
        let graphql = gitlab
            .requests()
            .into_iter()
            .find(|r| r.path == "/api/graphql")
            .unwrap();
        assert_eq!(graphql.private_token.as_deref(), Some(TOKEN));

        // A URL of another scheme: GitLab's error, nothing changed.
        let err = api
            .set_ai_gateway_url("ftp://aigw.example.com")
            .await
            .unwrap_err();
        let (text, status) = rendered(&err);
        assert_eq!(status, ExitStatus::Failure);
        assert!(
            text.contains("Only allowed schemes are http, https"),
            "{text}"
        );
        assert_eq!(
            gitlab.ai_gateway_url().as_deref(),
            Some("http://aigw.example.com:5052")
        );
    }

    // Before 17.9 there is no such setting.
    let old = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    let (text, _) = rendered(
        &client(&old, Some(TOKEN))
            .ai_gateway_url()
            .await
            .unwrap_err(),
    );
    assert!(
        text.contains("doesn't exist") && text.contains("17.9"),
        "{text}"
    );
}

/// A tracing writer that keeps everything, to look for the token at the most verbose level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_token_never_appears_in_logs_errors_or_debug_output() {
    // A global subscriber: a scoped one misses events when parallel tests cached the
    // callsites' interest first. Logs of the other tests land here too, which only widens
    // the check.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets one");

    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.1.1-ee").token(TOKEN).non_admin());
    let api = client(&gitlab, Some(TOKEN));
    let mut texts = vec![format!("{api:?}")];
    api.metadata().await.unwrap();
    for err in [
        api.license().await.unwrap_err(),
        api.features().await.unwrap_err(),
        api.set_ai_gateway_url("http://aigw:5052")
            .await
            .unwrap_err(),
    ] {
        texts.push(rendered(&err).0);
        texts.push(format!("{err:?}"));
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("GitLab API call"),
        "trace logging was captured: {logs}"
    );
    texts.push(logs);
    for text in texts {
        assert!(!text.contains(TOKEN), "token leaked in: {text}");
    }
}

// ---- point_gitlab_at_gateway ---------------------------------------------------------------

fn template_copy(dir: &Path) -> PathBuf {
    let template = support::omnibus_template();
    let path = dir.join("gitlab.rb");
    std::fs::copy(template, &path).unwrap();
    path
}

fn env_of(path: &Path) -> Vec<(String, String)> {
    gitlab_rb::read_effective_env(path).unwrap().0
}

fn version(text: &str) -> semver::Version {
    semver::Version::parse(text).unwrap()
}

#[tokio::test]
async fn gitlab_17_5_gets_the_gitlab_rb_env_and_the_feature_flag() {
    let dir = tempfile::tempdir().unwrap();
    let rb = template_copy(dir.path());
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.5.0-ee").token(TOKEN));
    let api = client(&gitlab, Some(TOKEN));
    let v = version("17.5.0");
    let request = PointRequest {
        gateway_url: "http://aigw.example.com",
        gitlab_version: &v,
        gitlab_rb: Some(&rb),
        client: Some(&api),
        allow_localhost: false,
        reconfigure: false,
        dry_run: false,
    };
    let outcome = gitlab_config::point_gitlab_at_gateway(&request, &Printer::plain())
        .await
        .unwrap();
    assert_eq!(outcome.gateway_url, "http://aigw.example.com:5052");
    assert_eq!(
        env_of(&rb),
        vec![
            (
                "AI_GATEWAY_URL".to_string(),
                "http://aigw.example.com:5052".to_string()
            ),
            ("GITLAB_LICENSE_MODE".to_string(), "production".to_string()),
            (
                "CUSTOMER_PORTAL_URL".to_string(),
                "https://customers.gitlab.com".to_string()
            ),
        ]
    );
    assert!(matches!(
        outcome.steps[0],
        PointStep::GitlabRbChanged { written: true, .. }
    ));
    assert!(outcome
        .steps
        .contains(&PointStep::FeatureFlagEnabled { applied: true }));
    assert_eq!(
        gitlab.feature_state("ai_custom_model").as_deref(),
        Some("on")
    );
    assert_eq!(
        outcome.manual_steps,
        vec!["sudo gitlab-ctl reconfigure".to_string()]
    );
    // No GraphQL before 17.9.
    assert!(gitlab.requests().iter().all(|r| r.path != "/api/graphql"));

    // Again: nothing changes.
    let again = gitlab_config::point_gitlab_at_gateway(&request, &Printer::plain())
        .await
        .unwrap();
    assert!(matches!(
        again.steps[0],
        PointStep::GitlabRbUnchanged { .. }
    ));
    assert!(again.steps.contains(&PointStep::FeatureFlagAlreadyOn));
    assert!(again.manual_steps.is_empty());
}

#[tokio::test]
async fn gitlab_17_8_without_gitlab_rb_here_is_refused_with_the_command_to_run() {
    let v = version("17.8.1");
    let missing = Path::new("/nonexistent/gitlab.rb");
    let request = PointRequest {
        gateway_url: "http://aigw.example.com:5052",
        gitlab_version: &v,
        gitlab_rb: Some(missing),
        client: None,
        allow_localhost: false,
        reconfigure: false,
        dry_run: false,
    };
    let err = gitlab_config::point_gitlab_at_gateway(&request, &Printer::plain())
        .await
        .unwrap_err();
    let (text, status) = rendered(&err);
    assert_eq!(status, ExitStatus::Failure);
    assert!(
        text.contains("gitlab-rb set AI_GATEWAY_URL=http://aigw.example.com:5052"),
        "{text}"
    );
}

#[tokio::test]
async fn gitlab_18_uses_the_setting_and_no_feature_flag() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("18.1.1-ee").token(TOKEN));
    let api = client(&gitlab, Some(TOKEN));
    let v = version("18.1.1");
    let request = PointRequest {
        gateway_url: "https://aigw.example.com:8443/",
        gitlab_version: &v,
        gitlab_rb: None,
        client: Some(&api),
        allow_localhost: false,
        reconfigure: false,
        dry_run: false,
    };
    let outcome = gitlab_config::point_gitlab_at_gateway(&request, &Printer::plain())
        .await
        .unwrap();
    assert_eq!(
        gitlab.ai_gateway_url().as_deref(),
        Some("https://aigw.example.com:8443")
    );
    assert_eq!(
        outcome.steps,
        vec![PointStep::SettingUpdated {
            previous: None,
            applied: true
        }]
    );
    assert!(outcome.manual_steps.is_empty());
    assert!(gitlab
        .requests()
        .iter()
        .all(|r| !r.path.starts_with("/api/v4/features")));

    let again = gitlab_config::point_gitlab_at_gateway(&request, &Printer::plain())
        .await
        .unwrap();
    assert_eq!(again.steps, vec![PointStep::SettingUnchanged]);

    // Without a token: the exact place to set it by hand.
    let anonymous = client(&gitlab, None);
    let request = PointRequest {
        client: Some(&anonymous),
        ..request
    };
    let outcome = gitlab_config::point_gitlab_at_gateway(&request, &Printer::plain())
        .await
        .unwrap();
    assert!(
        outcome.manual_steps[0].contains("Local AI Gateway URL to https://aigw.example.com:8443")
    );
}

#[tokio::test]
async fn gitlab_17_10_sets_both_the_setting_and_the_env_key_and_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rb = template_copy(dir.path());
    let original = std::fs::read_to_string(&rb).unwrap();
    let gitlab = FakeGitlab::start(
        FakeGitlabConfig::new("17.10.0-ee")
            .token(TOKEN)
            .ai_gateway_url("http://old:5052"),
    );
    let api = client(&gitlab, Some(TOKEN));
    let v = version("17.10.0");
    let dry = PointRequest {
        gateway_url: "http://10.1.2.3:5052",
        gitlab_version: &v,
        gitlab_rb: Some(&rb),
        client: Some(&api),
        allow_localhost: false,
        reconfigure: false,
        dry_run: true,
    };
    let outcome = gitlab_config::point_gitlab_at_gateway(&dry, &Printer::plain())
        .await
        .unwrap();
    assert!(
        matches!(&outcome.steps[0], PointStep::GitlabRbChanged { written: false, diff, .. } if diff.contains("+  'AI_GATEWAY_URL' => 'http://10.1.2.3:5052'"))
    );
    assert!(outcome.steps.contains(&PointStep::SettingUpdated {
        previous: Some("http://old:5052".into()),
        applied: false
    }));
    assert!(outcome
        .steps
        .contains(&PointStep::FeatureFlagEnabled { applied: false }));
    assert_eq!(std::fs::read_to_string(&rb).unwrap(), original);
    assert_eq!(gitlab.ai_gateway_url().as_deref(), Some("http://old:5052"));
    assert_eq!(gitlab.feature_state("ai_custom_model"), None);

    let real = PointRequest {
        dry_run: false,
        ..dry
    };
    gitlab_config::point_gitlab_at_gateway(&real, &Printer::plain())
        .await
        .unwrap();
    assert_eq!(
        env_of(&rb),
        vec![(
            "AI_GATEWAY_URL".to_string(),
            "http://10.1.2.3:5052".to_string()
        )]
    );
    assert_eq!(
        gitlab.ai_gateway_url().as_deref(),
        Some("http://10.1.2.3:5052")
    );
    assert_eq!(
        gitlab.feature_state("ai_custom_model").as_deref(),
        Some("on")
    );
}

#[tokio::test]
async fn a_non_admin_token_leaves_the_exact_feature_flag_command() {
    let dir = tempfile::tempdir().unwrap();
    let rb = template_copy(dir.path());
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.6.0-ee").token(TOKEN).non_admin());
    let api = client(&gitlab, Some(TOKEN));
    let v = version("17.6.0");
    let request = PointRequest {
        gateway_url: "http://aigw.example.com:5052",
        gitlab_version: &v,
        gitlab_rb: Some(&rb),
        client: Some(&api),
        allow_localhost: false,
        reconfigure: false,
        dry_run: false,
    };
    let outcome = gitlab_config::point_gitlab_at_gateway(&request, &Printer::plain())
        .await
        .unwrap();
    assert!(outcome
        .manual_steps
        .contains(&"sudo gitlab-rails runner \"Feature.enable(:ai_custom_model)\"".to_string()));
}

#[tokio::test]
async fn localhost_gateway_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let rb = template_copy(dir.path());
    let original = std::fs::read_to_string(&rb).unwrap();
    let v = version("17.5.0");
    let request = PointRequest {
        gateway_url: "http://localhost:5052",
        gitlab_version: &v,
        gitlab_rb: Some(&rb),
        client: None,
        allow_localhost: false,
        reconfigure: false,
        dry_run: false,
    };
    let (text, status) = rendered(
        &gitlab_config::point_gitlab_at_gateway(&request, &Printer::plain())
            .await
            .unwrap_err(),
    );
    assert_eq!(status, ExitStatus::Failure);
    assert!(text.contains("--allow-localhost"), "{text}");
    assert_eq!(std::fs::read_to_string(&rb).unwrap(), original);

    let allowed = PointRequest {
        allow_localhost: true,
        ..request
    };
    let outcome = gitlab_config::point_gitlab_at_gateway(&allowed, &Printer::plain())
        .await
        .unwrap();
    assert_eq!(outcome.gateway_url, "http://localhost:5052");
    assert!(outcome
        .manual_steps
        .contains(&gitlab_config::ENABLE_FLAG_COMMAND.to_string()));
}

fn model_input(name: &str, family: &str) -> duo_selfhost::gitlab_api::ModelInput {
    duo_selfhost::gitlab_api::ModelInput {
        name: name.into(),
        family: family.into(),
        endpoint: "http://models.example.com:8080/v1".into(),
        identifier: Some(format!("custom_openai/{name}")),
        api_key: Some(Secret::new("sk-model-key")),
    }
}

#[tokio::test]
async fn self_hosted_model_operations_as_gitlab_answers_them() {
    let gitlab = FakeGitlab::start(FakeGitlabConfig::new("17.9.0-ee").token(TOKEN));
    let api = client(&gitlab, Some(TOKEN));
    // The schema question: 17.9's families, no GENERAL; AiFeatures in upper case.
    let families = api
        .enum_values("AiAcceptedSelfHostedModels")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        families,
        vec![
            "MISTRAL",
            "MIXTRAL",
            "CODEGEMMA",
            "CODESTRAL",
            "CODELLAMA",
            "DEEPSEEKCODER"
        ]
    );
    assert!(api.enum_values("NoSuchType").await.unwrap().is_none());
    let newer = FakeGitlab::start(FakeGitlabConfig::new("18.3.0-ee").token(TOKEN));
    let newer_families = client(&newer, Some(TOKEN))
        .enum_values("AiAcceptedSelfHostedModels")
        .await
        .unwrap()
        .unwrap();
    assert!(newer_families.contains(&"GENERAL".to_string()));

    // A family outside the enum is GraphQL's own refusal; nothing is created.
    let err = api
        .save_model(None, &model_input("claude", "CLAUDE_3"))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("Expected \"CLAUDE_3\" to be one of"),
        "{err:#}"
    );
    assert!(gitlab.self_hosted_models().is_empty());

    // Create, then a taken name.
    let created = api
        .save_model(None, &model_input("gemma", "CODEGEMMA"))
        .await
        .unwrap();
    assert_eq!(created.id, "gid://gitlab/Ai::SelfHostedModel/1");
    assert!(created.has_api_token);
    assert_eq!(
        gitlab.self_hosted_models()[0].api_key.as_deref(),
        Some("sk-model-key")
    );
    let err = api
        .save_model(None, &model_input("gemma", "CODEGEMMA"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Name has already been taken"),
        "{err:#}"
    );

    // An empty feature list and a feature the family does not serve: GitLab's payload errors.
    let err = api.assign_features(&[], &created.id).await.unwrap_err();
    assert!(
        err.to_string().contains("Features can't be empty"),
        "{err:#}"
    );
    let err = api
        .assign_features(&["DUO_CHAT".to_string()], &created.id)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Codegemma is incompatible with the Duo Chat feature"),
        "{err:#}"
    );
    let settings = api
        .assign_features(&["CODE_COMPLETIONS".to_string()], &created.id)
        .await
        .unwrap();
    assert_eq!(settings[0].provider, "self_hosted");
    assert_eq!(
        settings[0].self_hosted_model.as_ref().unwrap().name,
        "gemma"
    );

    // A regular user's token: every one of these is GitLab's permission error.
    let user = FakeGitlab::start(FakeGitlabConfig::new("17.9.0-ee").token(TOKEN).non_admin());
    let api = client(&user, Some(TOKEN));
    let err = api.registered_models().await.unwrap_err();
    let (text, status) = rendered(&err);
    assert!(
        text.contains("don't have permission") && text.contains("administrator's token"),
        "{text}"
    );
    assert_eq!(status, ExitStatus::Failure);
    assert!(api
        .save_model(None, &model_input("x", "MISTRAL"))
        .await
        .is_err());
    assert!(api.feature_settings().await.is_err());
    assert!(user.self_hosted_models().is_empty());
}
