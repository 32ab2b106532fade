//! Images: whether one is on this host, pulling it (one progress bar per layer, through the
//! report) as the pull policy says. Nothing here touches a container; how a reference splits
//! into repository and tag is `image_tag`'s.

use std::collections::BTreeMap;

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use indicatif::ProgressBar;

use super::{engine_message, is_not_found};
use crate::error::Problem;
use crate::image_tag::split_reference;
use crate::report::Report;

/// When to pull an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    Always,
    Missing,
    Never,
}

/// Whether the image is on this host.
pub async fn image_present(docker: &Docker, image: &str) -> anyhow::Result<bool> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context(format!("inspecting the image {image}"))),
    }
}

/// Makes sure the image is on this host, pulling it as the policy says.
pub async fn ensure_image(
    docker: &Docker,
    image: &str,
    policy: Pull,
    report: &dyn Report,
) -> anyhow::Result<()> {
    match policy {
        Pull::Always => pull(docker, image, report).await,
        Pull::Missing if image_present(docker, image).await? => {
            report.detail(&format!("image {image} is already on this host"));
            Ok(())
        }
        Pull::Missing => pull(docker, image, report).await,
        Pull::Never if image_present(docker, image).await? => Ok(()),
        Pull::Never => Err(Problem::user(format!(
            "the image {image} is not on this host, and --pull never forbids pulling it"
        ))
        .hint(format!(
            "load it first (docker load, or skopeo copy into this engine), or re-run with --pull missing; expected: {image}"
        ))
        .into()),
    }
}

/// Pulls an image with one progress bar per layer (hidden without a terminal; with `-v` each
/// layer's status changes are printed as lines instead).
pub async fn pull(docker: &Docker, image: &str, report: &dyn Report) -> anyhow::Result<()> {
    let (repository, tag) = split_reference(image);
    report.info(&format!("Pulling {image}"));
    let options = CreateImageOptionsBuilder::default()
        .from_image(repository)
        .tag(tag)
        .build();
    let multi = report.progress_group();
    let mut bars: BTreeMap<String, (ProgressBar, String)> = BTreeMap::new();
    let mut stream = docker.create_image(Some(options), None, None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| {
            Problem::user(format!("could not pull {image}: {}", engine_message(&e))).hint(
                "check that the registry is reachable from this host and has this tag \
                 (`duo-selfhost image-tag` lists the choice), or load the image and use --pull never",
            )
        })?;
        let status = info.status.unwrap_or_default();
        let Some(id) = info.id.filter(|id| id != tag && !id.is_empty()) else {
            if !status.is_empty() {
                report.detail(&status);
            }
            continue;
        };
        let (bar, last_status) = bars.entry(id.clone()).or_insert_with(|| {
            let bar =
                multi.add(report.progress_bar(0, "{msg:40} [{bar:30}] {bytes}/{total_bytes}"));
            (bar, String::new())
        });
        if let Some(detail) = info.progress_detail {
            if let (Some(current), Some(total)) = (detail.current, detail.total) {
                if total > 0 {
                    bar.set_length(total as u64);
                    bar.set_position(current.max(0) as u64);
                }
            }
        }
        if *last_status != status {
            bar.set_message(format!("{id}: {status}"));
            report.detail(&format!("layer {id}: {status}"));
            *last_status = status;
        }
    }
    for (bar, _) in bars.values() {
        bar.finish();
    }
    report.info(&format!("Pulled {image} ({} layers)", bars.len()));
    Ok(())
}

/// The first image on this engine whose repository is one of `repositories` (any tag), as
/// `repository:tag`: something to run a one-off command from without pulling.
pub async fn local_image_of(docker: &Docker, repositories: &[&str]) -> Option<String> {
    let images = docker
        .list_images(None::<bollard::query_parameters::ListImagesOptions>)
        .await
        .ok()?;
    repositories.iter().find_map(|wanted| {
        images
            .iter()
            .flat_map(|image| image.repo_tags.iter())
            .find(|tag| split_reference(tag).0 == *wanted)
            .cloned()
    })
}
