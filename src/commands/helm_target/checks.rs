//! The checks `--target helm` makes before it changes anything: kubectl and helm on PATH and
//! new enough, a cluster that answers, a certificate that covers the domain, the ingress secret,
//! and (for an upgrade) the installed release's values.

use super::steps::query;
use crate::error::Problem;
use crate::helm::exec::Cmd;
use crate::helm::{self, GatewayValues, Release, TlsFiles};
use crate::output::{Mark, Printer};

/// What the tools said about themselves.
pub(super) struct Tools {
    pub helm: String,
    pub kubectl: String,
}

/// kubectl and helm on PATH, helm new enough; prints their versions.
pub(super) fn check_tools(printer: &Printer) -> anyhow::Result<Tools> {
    let mut paths = Vec::new();
    for (tool, install) in [
        ("kubectl", "install kubectl (Debian: apt-get install kubernetes-client; others: https://kubernetes.io/docs/tasks/tools/)"),
        ("helm", "install helm 3.11 or later (https://helm.sh/docs/intro/install/)"),
    ] {
        let Some(path) = crate::programs::find_on_path(tool) else {
            return Err(Problem::user(format!(
                "{tool} is not on PATH; the Helm target drives the real {tool}"
            ))
            .hint(format!("{install}, then run the command again"))
            .into());
        };
        paths.push(path);
    }

    let helm_version = reported_version(
        Cmd::new("helm", ["version", "--short"]),
        helm::parse_helm_version,
        "helm version",
        printer,
    )?;
    if helm_version < helm::MIN_HELM {
        return Err(Problem::user(format!(
            "helm {helm_version} is too old: the AI Gateway chart needs helm {} or later",
            helm::MIN_HELM
        ))
        .hint("install a newer helm (https://helm.sh/docs/intro/install/) and put it first on PATH")
        .into());
    }
    let kubectl_version = reported_version(
        Cmd::new("kubectl", ["version", "--client", "-o", "json"]),
        |out| helm::parse_kubectl_version(out, "clientVersion"),
        "kubectl version --client",
        printer,
    )?;
    let ok = printer.mark(Mark::Ok);
    printer.info(format!(
        "{ok} kubectl {kubectl_version} ({})",
        paths[0].display()
    ));
    printer.info(format!(
        "{ok} helm v{helm_version} ({})",
        paths[1].display()
    ));
    Ok(Tools {
        helm: format!("v{helm_version}"),
        kubectl: kubectl_version,
    })
}

/// The version a tool's `command` prints about itself, or an error naming the command and how
/// to check the tool by hand (`check`).
fn reported_version<T>(
    command: Cmd,
    parse: impl FnOnce(&str) -> Option<T>,
    check: &str,
    printer: &Printer,
) -> anyhow::Result<T> {
    let out = query(&command, printer)?;
    let version = parse(&out.stdout).filter(|_| out.success());
    version.ok_or_else(|| {
        Problem::user(format!(
            "`{command}` did not report a version: {}",
            out.tail(3)
        ))
        .hint(format!("check the {} on PATH: {check}", command.program))
        .into()
    })
}

/// The cluster kubectl talks to.
pub(super) struct Cluster {
    pub context: String,
    pub server_version: String,
}

/// A current context whose API server answers.
pub(super) fn check_cluster(printer: &Printer) -> anyhow::Result<Cluster> {
    let context = query(&Cmd::new("kubectl", ["config", "current-context"]), printer)?;
    let name = context.stdout.trim().to_string();
    if !context.success() || name.is_empty() {
        return Err(Problem::user(format!(
            "kubectl has no current context: {}",
            context.tail(3)
        ))
        .hint("choose the cluster: kubectl config get-contexts; kubectl config use-context NAME")
        .into());
    }
    let version = query(
        &Cmd::new(
            "kubectl",
            ["version", "-o", "json", "--request-timeout=20s"],
        ),
        printer,
    )?;
    let server = helm::parse_kubectl_version(&version.stdout, "serverVersion");
    let Some(server_version) = server.filter(|_| version.success()) else {
        return Err(Problem::user(format!(
            "the cluster of context {name} is not reachable: {}",
            version.tail(5)
        ))
        .hint("check the connection and credentials: kubectl cluster-info")
        .into());
    };
    printer.info(format!(
        "{} cluster context {name} (Kubernetes {server_version})",
        printer.mark(Mark::Ok)
    ));
    Ok(Cluster {
        context: name,
        server_version,
    })
}

pub(super) fn check_certificate(
    tls: &TlsFiles,
    domain: &str,
    printer: &Printer,
) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let summary = helm::tls::check(&tls.cert, &tls.key, domain, now, printer)?;
    printer.info(format!(
        "{} certificate {} covers {domain}, valid until {}",
        printer.mark(Mark::Ok),
        tls.cert.display(),
        helm::tls::human_date(summary.not_after)
    ));
    if summary.days_left < helm::tls::EXPIRY_WARNING_DAYS {
        printer.warn(format!(
            "the certificate expires in {} days; renew it and run `duo-selfhost upgrade --target helm --tls-cert … --tls-key …`",
            summary.days_left
        ));
    }
    Ok(())
}

/// Without --tls-cert/--tls-key the ingress secret must already be there.
pub(super) fn require_existing_secret(release: &Release, printer: &Printer) -> anyhow::Result<()> {
    let secret = release.tls_secret();
    let found = query(
        &Cmd::new(
            "kubectl",
            [
                "get".to_string(),
                "secret".into(),
                secret.clone(),
                format!("--namespace={}", release.namespace),
                "--ignore-not-found".into(),
                "-o".into(),
                "name".into(),
            ],
        ),
        printer,
    )?;
    if found.success() && !found.stdout.trim().is_empty() {
        printer.info(format!(
            "{} TLS secret {secret} exists in {}",
            printer.mark(Mark::Ok),
            release.namespace
        ));
        return Ok(());
    }
    Err(Problem::user(format!(
        "the gateway's ingress needs the TLS secret {secret} in namespace {}, and there is none",
        release.namespace
    ))
    .hint(
        "pass the certificate for the gateway domain: --tls-cert gateway.pem --tls-key gateway.key",
    )
    .into())
}

/// The installed release's values, read back into what duo-selfhost manages.
pub(super) fn read_release_values(
    release: &Release,
    printer: &Printer,
) -> anyhow::Result<GatewayValues> {
    let out = query(
        &Cmd::new(
            "helm",
            [
                "get".to_string(),
                "values".into(),
                release.name.clone(),
                format!("--namespace={}", release.namespace),
                "-o".into(),
                "json".into(),
            ],
        ),
        printer,
    )?;
    if !out.success() {
        if out.stderr.contains("not found") {
            return Err(Problem::user(format!(
                "there is no Helm release {} in namespace {}",
                release.name, release.namespace
            ))
            .hint("install it first: duo-selfhost install --target helm --gateway-host … --gitlab-url …; or pass --release/--namespace")
            .into());
        }
        return Err(Problem::user(format!(
            "could not read the values of the release {}: {}",
            release.name,
            out.tail(5)
        ))
        .hint(format!(
            "check: helm get values {} --namespace {}",
            release.name, release.namespace
        ))
        .into());
    }
    let json: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| {
        Problem::tool(format!(
            "`helm get values -o json` printed something that is not JSON: {e}"
        ))
    })?;
    Ok(helm::values_from_release(&json)?)
}
