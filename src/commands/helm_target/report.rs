//! What `--target helm` shows: the plan under `--dry-run` (commands, values with secrets
//! masked, what pointing GitLab will do), the state file's record of the gateway, and the
//! closing report (or one JSON document).

use std::path::Path;

use sha2::{Digest, Sha256};

use super::checks::{Cluster, Tools};
use crate::gitlab_config::{self, PointOutcome};
use crate::helm::{self, GatewayValues, Release, Step};
use crate::output::Printer;
use crate::state::GatewayState;

/// What pointing GitLab will do, for the dry run.
pub(super) fn point_note(version: &semver::Version, values: &GatewayValues) -> String {
    let how = if *version >= gitlab_config::setting_version() {
        "the Duo setting Local AI Gateway URL"
    } else {
        "AI_GATEWAY_URL in gitlab_rails['env'], then gitlab-ctl reconfigure"
    };
    format!(
        "point GitLab {version} at {}:443 ({how})",
        values.gateway_url()
    )
}

/// `--dry-run`: the commands and the values file, on stdout (or as one JSON document).
pub(super) fn show_plan(
    steps: &[Step],
    release: &Release,
    values: &GatewayValues,
    values_out: Option<&Path>,
    then: &str,
    printer: &Printer,
) -> anyhow::Result<()> {
    let mut shown = values.clone();
    for (name, value) in shown.env.iter_mut() {
        if crate::secret::is_secret_name(name) {
            *value = "****".into();
        }
    }
    let text = helm::render_values(release, &shown)?;
    let values_name = values_out
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<temporary values file>".into());
    if printer.json {
        printer.json_document(&serde_json::json!({
            "dry_run": true,
            "target": "helm",
            "release": release,
            "image": values.image(),
            "gateway_url": values.gateway_url(),
            "commands": steps.iter().map(Step::shell_line).collect::<Vec<_>>(),
            "values_file": values_name,
            "values": text,
            "then": then,
        }));
        return Ok(());
    }
    printer.info("dry run: nothing was changed; these are the commands and the values file");
    printer.result("# commands");
    for step in steps {
        printer.result(step.shell_line());
    }
    printer.result(format!("# then: {then}"));
    printer.result(format!("# values file {values_name}"));
    printer.result(text.trim_end());
    Ok(())
}

pub(super) fn gateway_state(
    release: &Release,
    values: &GatewayValues,
    rendered: &str,
) -> GatewayState {
    GatewayState {
        target: "helm".into(),
        url: values.gateway_url(),
        image: values.image(),
        container_name: None,
        namespace: Some(release.namespace.clone()),
        release: Some(release.name.clone()),
        log_dir: None,
        settings_hash: hex::encode(Sha256::digest(rendered.as_bytes())),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn report_done(
    verb: &str,
    release: &Release,
    values: &GatewayValues,
    cluster: &Cluster,
    tools: &Tools,
    pointed: &PointOutcome,
    values_out: Option<&Path>,
    state_path: &Path,
    printer: &Printer,
) {
    if printer.json {
        printer.json_document(&serde_json::json!({
            "target": "helm",
            "action": verb,
            "release": release,
            "context": cluster.context,
            "kubernetes_version": cluster.server_version,
            "helm_version": tools.helm,
            "kubectl_version": tools.kubectl,
            "image": values.image(),
            "gateway_url": values.gateway_url(),
            "values_file": values_out,
            "state_file": state_path,
            "gitlab": pointed,
        }));
        return;
    }
    printer.result(format!(
        "{verb} the AI Gateway: release {} in namespace {} (context {}), image {}",
        release.name,
        release.namespace,
        cluster.context,
        values.image()
    ));
    printer.result(format!(
        "gateway URL: {} (point a DNS record for {} at the ingress)",
        values.gateway_url(),
        values.domain
    ));
    if pointed.manual_steps.is_empty() {
        printer.result(format!(
            "GitLab uses the gateway at {}",
            pointed.gateway_url
        ));
    }
    match values_out {
        Some(path) => printer.result(format!("values file: {}", path.display())),
        None => printer.info("pass --values-out FILE to keep the values file"),
    }
}
