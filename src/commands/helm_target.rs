//! `install --target helm` and `upgrade --target helm`: the seed's Helm steps, driven through
//! the real helm and kubectl. Check the tools, the cluster and the certificate; plan; show the
//! plan (`--dry-run`) or run it step by step; point GitLab at the gateway; record the state.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cli::{GitlabConnectionArgs, HelmArgs, ImageChoiceArgs, InstallArgs, UpgradeArgs};
use crate::error::{ExitStatus, Problem};
use crate::gitlab_api::GitlabClient;
use crate::gitlab_config::{self, PointOutcome, PointRequest};
use crate::helm::exec::{self, Captured, Cmd, RunError, Show};
use crate::helm::{self, GatewayValues, KeptValues, PlanInput, Release, Step, TlsFiles};
use crate::image_tag;
use crate::output::{Mark, Printer};
use crate::registry::RegistryChoice;
use crate::state::{self, GatewayState, GitlabState, State};

/// Deadline for quick queries (versions, context, reading a release).
const QUERY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// Deadline for each GitLab API call.
const GITLAB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn install(args: &InstallArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let domain = helm::check_domain(args.gateway_host.as_deref().ok_or_else(|| {
        Problem::user(
            "the Helm target needs the gateway's domain, the ingress host GitLab reaches it by",
        )
        .hint("pass --gateway-host ai-gateway.example.com (a DNS name you can add a record for)")
    })?)?;
    let gitlab_url = helm::check_gitlab_url(&gitlab_url_for_install(&args.gitlab)?)?;
    let env = crate::env_var::parse_assignments(&args.env)?;
    let release = release_of(&args.helm);
    helm::check_release(&release)?;
    let chart = chart_source(&args.image, &release, args.gitlab_version.as_deref())?;
    let tls = tls_files(&args.helm);

    let tools = check_tools(printer)?;
    // The certificate is checked before anything touches the cluster.
    if let Some(tls) = &tls {
        check_certificate(tls, &domain, printer)?;
    }
    let client = gitlab_client(&gitlab_url, &args.gitlab)?;
    let gitlab_version = gitlab_version(args.gitlab_version.as_deref(), None, &client, printer)?;
    let (image_repository, image_tag) = choose_image(&gitlab_version, &args.image, None, printer)?;

    let values = GatewayValues {
        image_repository,
        image_tag,
        gitlab_url: gitlab_url.clone(),
        domain: domain.clone(),
        ingress_class: args.helm.ingress_class.clone(),
        tls_secret: release.tls_secret(),
        env,
        kept: KeptValues::default(),
    };
    let rendered = helm::render_values(&release, &values)?;
    let values_path = args.helm.values_out.clone();
    let shown_path = values_path
        .clone()
        .unwrap_or_else(|| PathBuf::from("<temporary values file>"));
    let steps = helm::plan(&PlanInput {
        release: &release,
        values_file: &shown_path,
        tls: tls.as_ref(),
        tls_secret: &values.tls_secret,
        timeout_secs: args.helm.helm_timeout,
        create_namespace: true,
        chart: &chart,
    });

    if args.dry_run {
        let then = point_note(&gitlab_version, &values);
        show_plan(
            &steps,
            &release,
            &values,
            values_path.as_deref(),
            &then,
            printer,
        )?;
        return Ok(ExitStatus::Success);
    }

    // Read now: a broken state file is refused before the cluster changes.
    let state_path = state::resolve_path(args.state_file.as_deref());
    let mut recorded = state::load(&state_path)?.unwrap_or_default();
    let cluster = check_cluster(printer)?;
    if tls.is_none() {
        require_existing_secret(&release, printer)?;
    }
    let values_file = ValuesFile::write(values_path.as_deref(), &rendered)?;
    let steps = helm::plan(&PlanInput {
        release: &release,
        values_file: values_file.path(),
        tls: tls.as_ref(),
        tls_secret: &values.tls_secret,
        timeout_secs: args.helm.helm_timeout,
        create_namespace: true,
        chart: &chart,
    });
    run_steps_keeping_values(&steps, values_file, printer)?;

    // The gateway runs: record it before GitLab is pointed at it, so a refusal there leaves
    // an accurate state file and a rerun of install changes nothing in the cluster.
    recorded.gitlab = Some(GitlabState {
        url: gitlab_url.clone(),
        version: gitlab_version.to_string(),
        gitlab_rb: Some(args.gitlab.gitlab_rb.clone()).filter(|p| p.exists()),
    });
    recorded.gateway = Some(gateway_state(&release, &values, &rendered));
    state::save(&state_path, &recorded)?;

    let pointed = point_gitlab(
        &client,
        &gitlab_version,
        &values,
        &args.gitlab.gitlab_rb,
        printer,
    )?;

    report_done(
        "installed",
        &release,
        &values,
        &cluster,
        &tools,
        &pointed,
        values_path.as_deref(),
        &state_path,
        printer,
    );
    Ok(ExitStatus::Success)
}

pub fn upgrade(args: &UpgradeArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let state_path = state::resolve_path(args.state_file.as_deref());
    let recorded = state::load(&state_path)?;
    let release = release_for_upgrade(&args.helm, recorded.as_ref());
    helm::check_release(&release)?;
    let chart = chart_source(&args.image, &release, args.to_version.as_deref())?;
    let tls = tls_files(&args.helm);

    let tools = check_tools(printer)?;
    let cluster = check_cluster(printer)?;
    let current = read_release_values(&release, printer)?;
    if let Some(tls) = &tls {
        check_certificate(tls, &current.domain, printer)?;
    }

    let gitlab_url = match &args.gitlab.gitlab_url {
        Some(url) => helm::check_gitlab_url(url)?,
        None => current.gitlab_url.clone(),
    };
    let client = gitlab_client(&gitlab_url, &args.gitlab)?;
    let recorded_version = recorded
        .as_ref()
        .and_then(|s| s.gitlab.as_ref())
        .map(|g| g.version.clone())
        .filter(|v| !v.is_empty());
    let gitlab_version = gitlab_version(
        args.to_version.as_deref(),
        recorded_version.as_deref(),
        &client,
        printer,
    )?;
    let (image_repository, image_tag) = choose_image(
        &gitlab_version,
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
    if !image_changes && tls.is_none() && gitlab_url == current.gitlab_url {
        printer.result(format!(
            "the release {} already runs {}; nothing to do",
            release.name,
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
    let rendered = helm::render_values(&release, &values)?;
    let values_path = args.helm.values_out.clone();
    if args.dry_run {
        let shown_path = values_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("<temporary values file>"));
        let steps = helm::plan(&PlanInput {
            release: &release,
            values_file: &shown_path,
            tls: tls.as_ref(),
            tls_secret: &values.tls_secret,
            timeout_secs: args.helm.helm_timeout,
            create_namespace: false,
            chart: &chart,
        });
        printer.info(format!(
            "would upgrade {} from {} to {}",
            release.name,
            current.image(),
            values.image()
        ));
        let then = point_note(&gitlab_version, &values);
        show_plan(
            &steps,
            &release,
            &values,
            values_path.as_deref(),
            &then,
            printer,
        )?;
        return Ok(ExitStatus::Success);
    }

    let values_file = ValuesFile::write(values_path.as_deref(), &rendered)?;
    let steps = helm::plan(&PlanInput {
        release: &release,
        values_file: values_file.path(),
        tls: tls.as_ref(),
        tls_secret: &values.tls_secret,
        timeout_secs: args.helm.helm_timeout,
        create_namespace: false,
        chart: &chart,
    });
    run_steps_keeping_values(&steps, values_file, printer)?;

    let mut recorded = recorded.unwrap_or_default();
    recorded.gitlab = Some(GitlabState {
        url: values.gitlab_url.clone(),
        version: gitlab_version.to_string(),
        gitlab_rb: recorded.gitlab.and_then(|g| g.gitlab_rb),
    });
    recorded.gateway = Some(gateway_state(&release, &values, &rendered));
    state::save(&state_path, &recorded)?;

    // Upgrading GitLab can clear the gateway URL (reference 2.4); setting it again changes
    // nothing when it is still there.
    let pointed = point_gitlab(
        &client,
        &gitlab_version,
        &values,
        &args.gitlab.gitlab_rb,
        printer,
    )?;

    report_done(
        "upgraded",
        &release,
        &values,
        &cluster,
        &tools,
        &pointed,
        values_path.as_deref(),
        &state_path,
        printer,
    );
    Ok(ExitStatus::Success)
}

/// What pointing GitLab will do, for the dry run.
fn point_note(version: &semver::Version, values: &GatewayValues) -> String {
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

/// A client for GitLab's API with the user's token and CA certificate.
fn gitlab_client(gitlab_url: &str, args: &GitlabConnectionArgs) -> anyhow::Result<GitlabClient> {
    GitlabClient::new(
        gitlab_url,
        args.gitlab_token.clone(),
        args.ca_cert.as_deref(),
        GITLAB_TIMEOUT,
    )
}

/// The GitLab version: the flag, else GitLab's API (with a token), else the state file's.
fn gitlab_version(
    flag: Option<&str>,
    recorded: Option<&str>,
    client: &GitlabClient,
    printer: &Printer,
) -> anyhow::Result<semver::Version> {
    if let Some(text) = flag {
        return image_tag::parse_gitlab_version(text);
    }
    if client.has_token() {
        let metadata = crate::commands::runtime()?.block_on(client.metadata())?;
        printer.info(format!(
            "{} GitLab {} at {}",
            printer.mark(Mark::Ok),
            metadata.version,
            client.base_url()
        ));
        return image_tag::parse_gitlab_version(&metadata.version);
    }
    if let Some(text) = recorded {
        return image_tag::parse_gitlab_version(text);
    }
    Err(Problem::user(
        "the GitLab version is needed to choose the gateway image and how to point GitLab at it",
    )
    .hint("pass --gitlab-version 17.5.0 (GitLab shows it under Help), or a token with --gitlab-token to read it from GitLab")
    .into())
}

/// Points GitLab at `https://<gateway domain>` the version-aware way (gitlab.rb up to 17.8,
/// the application setting from 17.9); what is left to do by hand is printed.
fn point_gitlab(
    client: &GitlabClient,
    version: &semver::Version,
    values: &GatewayValues,
    gitlab_rb: &Path,
    printer: &Printer,
) -> anyhow::Result<PointOutcome> {
    // The ingress serves HTTPS on 443; written out, because a URL without a port means the
    // Docker gateway's 5052 to gitlab_config.
    let gateway_url = format!("{}:443", values.gateway_url());
    let request = PointRequest {
        gateway_url: &gateway_url,
        gitlab_version: version,
        gitlab_rb: Some(gitlab_rb),
        client: Some(client),
        allow_localhost: false,
        // Reconfigure where omnibus is installed; elsewhere the edit is left for the
        // administrator to apply, and the outcome says so.
        reconfigure: crate::gitlab_rb::find_gitlab_ctl().is_ok(),
        dry_run: false,
    };
    let outcome = crate::commands::runtime()?
        .block_on(gitlab_config::point_gitlab_at_gateway(&request, printer))?;
    for step in &outcome.manual_steps {
        printer.warn(format!("still to do by hand: {step}"));
    }
    Ok(outcome)
}

/// The chart from GitLab's repository, or under `--offline` the archive `bundle load` stored:
/// missing, it is an error naming the bundle commands that bring it.
fn chart_source(
    image: &ImageChoiceArgs,
    release: &Release,
    gitlab_version: Option<&str>,
) -> anyhow::Result<helm::ChartSource> {
    if !image.offline {
        return Ok(helm::ChartSource::Repository);
    }
    let archive = helm::stored_chart_path(&release.chart_version);
    if !archive.is_file() {
        return Err(Problem::user(format!(
            "--offline: no bundle has brought the AI Gateway chart {} to this host ({} is missing), and --offline forbids the chart repository",
            release.chart_version,
            archive.display()
        ))
        .hint(format!(
            "on a connected machine: duo-selfhost bundle create --target helm --chart-version {} --gitlab-version {} --output duo.bundle; here: duo-selfhost bundle load duo.bundle",
            release.chart_version,
            gitlab_version.unwrap_or("VERSION")
        ))
        .into());
    }
    let (name, version) = helm::chart_archive_identity(&archive)?;
    if name != helm::CHART_NAME || version != release.chart_version {
        return Err(Problem::user(format!(
            "{} holds the chart {name} {version}, not {} {}",
            archive.display(),
            helm::CHART_NAME,
            release.chart_version
        ))
        .hint("load the bundle again: duo-selfhost bundle load duo.bundle")
        .into());
    }
    Ok(helm::ChartSource::Archive(archive))
}

fn release_of(args: &HelmArgs) -> Release {
    Release {
        name: args.release.clone(),
        namespace: args.namespace.clone(),
        chart_version: args.chart_version.clone(),
    }
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

fn tls_files(args: &HelmArgs) -> Option<TlsFiles> {
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    }
}

/// `--env KEY=VALUE` into ordered pairs.
/// What the tools said about themselves.
struct Tools {
    helm: String,
    kubectl: String,
}

/// kubectl and helm on PATH, helm new enough; prints their versions.
fn check_tools(printer: &Printer) -> anyhow::Result<Tools> {
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

    let helm_out = query(&Cmd::new("helm", ["version", "--short"]), printer)?;
    let helm_version = helm::parse_helm_version(&helm_out.stdout)
        .filter(|_| helm_out.success())
        .ok_or_else(|| {
            Problem::user(format!(
                "`helm version --short` did not report a version: {}",
                helm_out.tail(3)
            ))
            .hint("check the helm on PATH: helm version")
        })?;
    if helm_version < helm::MIN_HELM {
        return Err(Problem::user(format!(
            "helm {helm_version} is too old: the AI Gateway chart needs helm {} or later",
            helm::MIN_HELM
        ))
        .hint("install a newer helm (https://helm.sh/docs/intro/install/) and put it first on PATH")
        .into());
    }
    let kubectl_out = query(
        &Cmd::new("kubectl", ["version", "--client", "-o", "json"]),
        printer,
    )?;
    let kubectl_version = helm::parse_kubectl_version(&kubectl_out.stdout, "clientVersion")
        .filter(|_| kubectl_out.success())
        .ok_or_else(|| {
            Problem::user(format!(
                "`kubectl version --client -o json` did not report a version: {}",
                kubectl_out.tail(3)
            ))
            .hint("check the kubectl on PATH: kubectl version --client")
        })?;
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

/// The cluster kubectl talks to.
struct Cluster {
    context: String,
    server_version: String,
}

/// A current context whose API server answers.
fn check_cluster(printer: &Printer) -> anyhow::Result<Cluster> {
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

fn check_certificate(tls: &TlsFiles, domain: &str, printer: &Printer) -> anyhow::Result<()> {
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
fn require_existing_secret(release: &Release, printer: &Printer) -> anyhow::Result<()> {
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
fn read_release_values(release: &Release, printer: &Printer) -> anyhow::Result<GatewayValues> {
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

/// The image as (repository, tag): `--image` as given, else the image-tag rules for the GitLab
/// version, from `--registry`, else the repository the release already uses, else GitLab's.
fn choose_image(
    version: &semver::Version,
    choice: &ImageChoiceArgs,
    current_repository: Option<&str>,
    printer: &Printer,
) -> anyhow::Result<(String, String)> {
    if let Some(image) = &choice.image {
        return helm::split_image(image).ok_or_else(|| {
            Problem::user(format!("--image `{image}` has no tag"))
                .hint("pass REPOSITORY:TAG, such as --image registry.gitlab.com/…/model-gateway:self-hosted-v17.5.0-ee")
                .into()
        });
    }
    let registry = match (&choice.registry, current_repository) {
        (Some(registry), _) => registry.clone(),
        (None, Some(current)) if !current.is_empty() => {
            [RegistryChoice::Gitlab, RegistryChoice::Dockerhub]
                .into_iter()
                .find(|known| known.repository() == current)
                .unwrap_or_else(|| RegistryChoice::Mirror(current.to_string()))
        }
        (None, _) => RegistryChoice::Gitlab,
    };
    let chosen = crate::commands::runtime()?.block_on(image_tag::resolve(
        version,
        &registry,
        choice.available_tags.as_deref(),
        if choice.offline {
            image_tag::Lookup::BundleOnly
        } else {
            image_tag::Lookup::Online
        },
    ))?;
    for warning in &chosen.warnings {
        printer.warn(warning);
    }
    printer.info(format!(
        "{} image {} for GitLab {}",
        printer.mark(Mark::Ok),
        chosen.image,
        chosen.gitlab_version
    ));
    Ok((chosen.repository, chosen.tag))
}

fn query(cmd: &Cmd, printer: &Printer) -> anyhow::Result<Captured> {
    exec::query(cmd, QUERY_DEADLINE, printer).map_err(|e| run_error(e, None))
}

fn run_error(err: RunError, step: Option<&Step>) -> anyhow::Error {
    match err {
        RunError::NotFound { program } => Problem::user(format!("{program} is not on PATH"))
            .hint(format!("install {program} and run the command again"))
            .into(),
        RunError::Deadline { command, seconds } => {
            let fix = step.map(|s| s.fix.clone()).unwrap_or_else(|| {
                "check that the cluster answers: kubectl cluster-info".to_string()
            });
            Problem::user(format!(
                "`{command}` did not finish within {seconds} s; duo-selfhost stopped it"
            ))
            .hint(fix)
            .into()
        }
        other => anyhow::Error::new(other),
    }
}

/// Runs the steps; when one fails, a temporary values file is kept so the user can see what
/// helm was given (the error names its path).
fn run_steps_keeping_values(
    steps: &[Step],
    values_file: ValuesFile,
    printer: &Printer,
) -> anyhow::Result<()> {
    match run_steps(steps, printer) {
        // A temporary values file is removed here, once helm is done with it.
        Ok(()) => {
            drop(values_file);
            Ok(())
        }
        Err(err) => {
            if let ValuesFile::Temporary(path) = values_file {
                if let Ok(kept) = path.keep() {
                    printer.warn(format!(
                        "kept the values file helm was given: {}",
                        kept.display()
                    ));
                }
            }
            Err(err)
        }
    }
}

/// Runs each step under a spinner; the first failure stops with the tool's output and the fix.
fn run_steps(steps: &[Step], printer: &Printer) -> anyhow::Result<()> {
    for step in steps {
        printer.detail(format!("$ {}", step.shell_line()));
        let spinner = printer.spinner(format!("{}…", step.title));
        let result = run_step(step, printer, &spinner);
        spinner.finish_and_clear();
        let (command, captured) = result?;
        if !captured.success() {
            let status = captured
                .code
                .map(|c| format!("status {c}"))
                .unwrap_or_else(|| "a signal".into());
            let output = captured.tail(15);
            return Err(Problem::user(format!(
                "could not {}: `{command}` exited with {status}:\n    {}",
                step.title,
                output.replace('\n', "\n    ")
            ))
            .hint(helm::fix_for_output(&output, &step.fix))
            .into());
        }
        printer.info(format!("{} {}", printer.mark(Mark::Ok), step.title));
    }
    Ok(())
}

/// Runs a step's command (and the command it pipes into); returns the one that decides.
fn run_step(
    step: &Step,
    printer: &Printer,
    spinner: &indicatif::ProgressBar,
) -> anyhow::Result<(Cmd, Captured)> {
    let Some(next) = &step.piped_into else {
        let out = exec::run(
            &step.command,
            None,
            step.deadline,
            Show::Stream,
            printer,
            Some(spinner),
        )
        .map_err(|e| run_error(e, Some(step)))?;
        return Ok((step.command.clone(), out));
    };
    // The first half prints a manifest (a Secret's holds the key): parsed, never shown.
    let show_first = if step.secret_output {
        Show::StderrOnly
    } else {
        Show::Nothing
    };
    let first = exec::run(
        &step.command,
        None,
        step.deadline,
        show_first,
        printer,
        Some(spinner),
    )
    .map_err(|e| run_error(e, Some(step)))?;
    if !first.success() {
        let scrubbed = Captured {
            stdout: String::new(),
            ..first
        };
        return Ok((step.command.clone(), scrubbed));
    }
    let second = exec::run(
        next,
        Some(first.stdout.as_bytes()),
        step.deadline,
        Show::Stream,
        printer,
        Some(spinner),
    )
    .map_err(|e| run_error(e, Some(step)))?;
    Ok((next.clone(), second))
}

/// The values file helm reads: the user's `--values-out` (kept) or a temporary one.
enum ValuesFile {
    Kept(PathBuf),
    Temporary(tempfile::TempPath),
}

impl ValuesFile {
    fn write(out: Option<&Path>, text: &str) -> anyhow::Result<ValuesFile> {
        use std::io::Write;
        let dir = out
            .and_then(Path::parent)
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| match out {
                Some(_) => PathBuf::from("."),
                None => std::env::temp_dir(),
            });
        let mut file = tempfile::Builder::new()
            // Hidden while it is staged for --values-out; a temporary file may be kept for the user.
            .prefix(if out.is_some() {
                ".duo-selfhost-helm-values-"
            } else {
                "duo-selfhost-helm-values-"
            })
            .suffix(".yaml")
            .tempfile_in(&dir)
            .map_err(|e| {
                Problem::user(format!(
                    "cannot write the values file in {}: {e}",
                    dir.display()
                ))
                .hint("pass --values-out with a path in a writable directory")
            })?;
        file.write_all(text.as_bytes())?;
        file.as_file().sync_all()?;
        match out {
            // Written whole, then renamed: the kept file is never half-written.
            Some(path) => {
                file.persist(path).map_err(|e| {
                    Problem::user(format!("cannot write {}: {}", path.display(), e.error))
                        .hint("pass --values-out with a path in a writable directory")
                })?;
                Ok(ValuesFile::Kept(path.to_path_buf()))
            }
            None => Ok(ValuesFile::Temporary(file.into_temp_path())),
        }
    }

    fn path(&self) -> &Path {
        match self {
            ValuesFile::Kept(path) => path,
            ValuesFile::Temporary(path) => path,
        }
    }
}

/// `--dry-run`: the commands and the values file, on stdout (or as one JSON document).
fn show_plan(
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

fn gateway_state(release: &Release, values: &GatewayValues, rendered: &str) -> GatewayState {
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
fn report_done(
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
