//! Resolving `--target helm`'s inputs from the flags and the state file: the release, the chart
//! source, the TLS files, GitLab (client and version) and the gateway image. Checks that ask the
//! cluster are `checks`.

use std::path::Path;

use super::GITLAB_TIMEOUT;
use crate::cli::{GitlabConnectionArgs, HelmArgs, ImageChoiceArgs};
use crate::commands::gitlab_version::{self, Sources, Voice};
use crate::error::Problem;
use crate::gateway_image;
use crate::gitlab_api::GitlabClient;
use crate::helm::{self, Release, TlsFiles};
use crate::output::{Mark, Printer};
use crate::registry::RegistryChoice;

/// Where the gateway goes and from what: the release (its names checked), the chart, the TLS
/// files for the ingress secret, and helm's flags.
pub(super) struct Deployment<'a> {
    pub flags: &'a HelmArgs,
    pub release: Release,
    pub chart: helm::ChartSource,
    pub tls: Option<TlsFiles>,
}

/// `release` checked, with the chart `image`'s `--offline` allows (`gitlab_version` names the
/// bundle that brings it when it is missing).
pub(super) fn deployment<'a>(
    flags: &'a HelmArgs,
    release: Release,
    image: &ImageChoiceArgs,
    gitlab_version: Option<&str>,
) -> anyhow::Result<Deployment<'a>> {
    helm::check_release(&release)?;
    let chart = chart_source(image, &release, gitlab_version)?;
    Ok(Deployment {
        flags,
        release,
        chart,
        tls: tls_files(flags),
    })
}

/// The GitLab the gateway serves: its API client, its version, and the gitlab.rb that points
/// it at the gateway where the version needs it.
pub(super) struct GitlabTarget<'a> {
    pub client: GitlabClient,
    pub version: semver::Version,
    pub gitlab_rb: &'a Path,
}

/// GitLab at `gitlab_url`, its version from `flag`, else its API, else `recorded`.
pub(super) fn connect_gitlab<'a>(
    gitlab_url: &str,
    args: &'a GitlabConnectionArgs,
    flag: Option<&str>,
    recorded: Option<&str>,
    printer: &Printer,
) -> anyhow::Result<GitlabTarget<'a>> {
    let client = gitlab_version::client(args, gitlab_url, GITLAB_TIMEOUT)?;
    let sources = Sources {
        flag,
        api: Some(&client),
        host_manifest: false,
        recorded,
    };
    let version = crate::commands::runtime()?
        .block_on(gitlab_version::find(sources, Voice::Helm, printer))?
        .map(|(version, _)| version)
        .ok_or_else(|| {
            Problem::user(
                "the GitLab version is needed to choose the gateway image and how to point GitLab at it",
            )
            .hint("pass --gitlab-version 17.5.0 (GitLab shows it under Help), or a token with --gitlab-token to read it from GitLab")
        })?;
    Ok(GitlabTarget {
        client,
        version,
        gitlab_rb: &args.gitlab_rb,
    })
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

pub(super) fn release_of(args: &HelmArgs) -> Release {
    Release {
        name: args.release.clone(),
        namespace: args.namespace.clone(),
        chart_version: args.chart_version.clone(),
    }
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

/// The image as (repository, tag): `--image` as given, else the image-tag rules for the GitLab
/// version, from `--registry`, else the repository the release already uses, else GitLab's.
pub(super) fn choose_image(
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
    let chosen = crate::commands::runtime()?.block_on(gateway_image::resolve(
        version,
        &registry,
        choice.available_tags.as_deref(),
        if choice.offline {
            gateway_image::Lookup::BundleOnly
        } else {
            gateway_image::Lookup::Online
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
