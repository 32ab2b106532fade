//! `install --target helm`: the gateway's domain, GitLab's URL and the new release's values from
//! the flags (and gitlab.rb), then the [`Rollout`](super::Rollout) that creates the namespace and
//! installs the release.

use crate::cli::{GitlabConnectionArgs, InstallArgs};
use crate::error::{ExitStatus, Problem};
use crate::helm::{self, GatewayValues, KeptValues};
use crate::output::Printer;
use crate::state;

use super::checks::{check_certificate, check_cluster, check_tools, require_existing_secret};
use super::inputs::{choose_image, connect_gitlab, deployment, release_of};
use super::{Action, Rollout};

pub fn install(args: &InstallArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let domain = helm::check_domain(args.gateway_host.as_deref().ok_or_else(|| {
        Problem::user(
            "the Helm target needs the gateway's domain, the ingress host GitLab reaches it by",
        )
        .hint("pass --gateway-host ai-gateway.example.com (a DNS name you can add a record for)")
    })?)?;
    let gitlab_url = crate::gitlab_api::gitlab_url(&gitlab_url_for_install(&args.gitlab)?)?;
    let env = crate::env_var::parse_assignments(&args.env)?;
    let flag_version = args.gitlab_version.as_deref();
    let target = deployment(
        &args.helm,
        release_of(&args.helm),
        &args.image,
        flag_version,
    )?;

    let tools = check_tools(printer)?;
    // The certificate is checked before anything touches the cluster.
    if let Some(tls) = &target.tls {
        check_certificate(tls, &domain, printer)?;
    }
    let gitlab = connect_gitlab(&gitlab_url, &args.gitlab, flag_version, None, printer)?;
    let (image_repository, image_tag) = choose_image(&gitlab.version, &args.image, None, printer)?;

    let values = GatewayValues {
        image_repository,
        image_tag,
        gitlab_url: gitlab_url.clone(),
        domain: domain.clone(),
        ingress_class: args.helm.ingress_class.clone(),
        tls_secret: target.release.tls_secret(),
        env,
        kept: KeptValues::default(),
    };
    let rollout = Rollout::new(Action::Install, &target, values, &gitlab)?;
    if args.dry_run {
        rollout.show(printer)?;
        return Ok(ExitStatus::Success);
    }

    // Read now: a broken state file is refused before the cluster changes.
    let state_path = state::resolve_path(args.state.state_file.as_deref());
    let recorded = state::load(&state_path)?.unwrap_or_default();
    let cluster = check_cluster(printer)?;
    if target.tls.is_none() {
        require_existing_secret(&target.release, printer)?;
    }
    let gitlab_rb = Some(args.gitlab.gitlab_rb.clone()).filter(|p| p.exists());
    rollout.apply(&state_path, recorded, gitlab_rb, &cluster, &tools, printer)
}

/// `--gitlab-url`, else `external_url` from gitlab.rb when GitLab runs on this host.
fn gitlab_url_for_install(args: &GitlabConnectionArgs) -> anyhow::Result<String> {
    if let Some(url) = &args.gitlab_url {
        return Ok(url.clone());
    }
    if args.gitlab_rb.exists() {
        let text = crate::gitlab_rb::read_file(&args.gitlab_rb)?;
        if let Some(url) = crate::gitlab_rb::external_url(&text) {
            return Ok(url);
        }
    }
    Err(Problem::user(format!(
        "the Helm target needs GitLab's URL (the gateway calls GitLab's API from the cluster), and {} has no external_url to take it from",
        args.gitlab_rb.display()
    ))
    .hint("pass --gitlab-url https://gitlab.example.com")
    .into())
}
