//! `upgrade --target helm`: the installed release's values read back, the image the GitLab
//! version calls for, `--check` and the nothing-to-do case, then the
//! [`Rollout`](super::Rollout) that upgrades the release in place.

use crate::cli::{HelmArgs, UpgradeArgs};
use crate::error::ExitStatus;
use crate::helm::{GatewayValues, Release};
use crate::output::Printer;
use crate::state::{self, State};

use super::checks::{check_certificate, check_cluster, check_tools, read_release_values};
use super::inputs::{choose_image, connect_gitlab, deployment, release_of};
use super::{Action, Rollout};

pub fn upgrade(args: &UpgradeArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let state_path = state::resolve_path(args.state.state_file.as_deref());
    let recorded = state::load(&state_path)?;
    let release = release_for_upgrade(&args.helm, recorded.as_ref());
    let target = deployment(&args.helm, release, &args.image, args.to_version.as_deref())?;

    let tools = check_tools(printer)?;
    let cluster = check_cluster(printer)?;
    let current = read_release_values(&target.release, printer)?;
    if let Some(tls) = &target.tls {
        check_certificate(tls, &current.domain, printer)?;
    }

    let gitlab_url = match &args.gitlab.gitlab_url {
        Some(url) => crate::gitlab_api::gitlab_url(url)?,
        None => current.gitlab_url.clone(),
    };
    let recorded_version = recorded
        .as_ref()
        .and_then(|s| s.gitlab.as_ref())
        .map(|g| g.version.clone())
        .filter(|v| !v.is_empty());
    let gitlab = connect_gitlab(
        &gitlab_url,
        &args.gitlab,
        args.to_version.as_deref(),
        recorded_version.as_deref(),
        printer,
    )?;
    let (image_repository, image_tag) = choose_image(
        &gitlab.version,
        &args.image,
        Some(&current.image_repository),
        printer,
    )?;
    let image_changes = (image_repository.as_str(), image_tag.as_str())
        != (
            current.image_repository.as_str(),
            current.image_tag.as_str(),
        );

    if args.check {
        return Ok(if image_changes {
            printer.result(format!(
                "upgrade available: {} -> {image_repository}:{image_tag}",
                current.image()
            ));
            ExitStatus::UpgradeAvailable
        } else {
            printer.result(format!("up to date: {}", current.image()));
            ExitStatus::Success
        });
    }
    if !image_changes && target.tls.is_none() && gitlab_url == current.gitlab_url {
        printer.result(format!(
            "the release {} already runs {}; nothing to do",
            target.release.name,
            current.image()
        ));
        return Ok(ExitStatus::Success);
    }

    let values = GatewayValues {
        image_repository,
        image_tag,
        gitlab_url: gitlab_url.clone(),
        ..current.clone()
    };
    if values.image_repository != current.image_repository && !current.image_repository.is_empty() {
        printer.warn(format!(
            "the image repository changes from {} to {} (pass --registry to keep a mirror)",
            current.image_repository, values.image_repository
        ));
    }
    let upgraded_image = values.image();
    let rollout = Rollout::new(Action::Upgrade, &target, values, &gitlab)?;
    if args.dry_run {
        printer.info(format!(
            "would upgrade {} from {} to {upgraded_image}",
            target.release.name,
            current.image(),
        ));
        rollout.show(printer)?;
        return Ok(ExitStatus::Success);
    }

    let mut recorded = recorded.unwrap_or_default();
    let gitlab_rb = recorded.gitlab.take().and_then(|g| g.gitlab_rb);
    rollout.apply(&state_path, recorded, gitlab_rb, &cluster, &tools, printer)
}

/// The release an upgrade works on: the flags, except that the state file's namespace and
/// release win over the flags' defaults (install may have used other names).
fn release_for_upgrade(args: &HelmArgs, recorded: Option<&State>) -> Release {
    let mut release = release_of(args);
    let gateway = recorded
        .and_then(|s| s.gateway.as_ref())
        .filter(|g| g.target == "helm");
    if let Some(gateway) = gateway {
        if args.namespace == "ai-gateway" {
            if let Some(ns) = &gateway.namespace {
                release.namespace = ns.clone();
            }
        }
        if args.release == "ai-gateway" {
            if let Some(name) = &gateway.release {
                release.name = name.clone();
            }
        }
    }
    release
}
