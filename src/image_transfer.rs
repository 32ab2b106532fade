//! Moving images in and out of the Docker Engine through its API, for bundles: export
//! (`/images/get`, the `docker save` format), load (`/images/load`), tag and push. Pulling and
//! running containers stay in `docker`.

use std::io::Read;
use std::path::Path;

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    ImportImageOptionsBuilder, PushImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::error::Problem;
use crate::image_tag::split_reference;

/// An image's id (`sha256:...`) and size in bytes; `None` when the engine does not have it.
pub async fn id_and_size(
    docker: &Docker,
    reference: &str,
) -> anyhow::Result<Option<(String, u64)>> {
    match docker.inspect_image(reference).await {
        Ok(image) => Ok(Some((
            image.id.unwrap_or_default(),
            image.size.unwrap_or(0).max(0) as u64,
        ))),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("inspecting the image {reference}"))),
    }
}

/// The images as one archive in the `docker save` format; layers the images share are in
/// it once.
pub fn export<'a>(
    docker: &'a Docker,
    references: &'a [&'a str],
) -> impl Stream<Item = anyhow::Result<Bytes>> + 'a {
    let names = references.join(", ");
    docker.export_images(references).map(move |chunk| {
        chunk.map_err(|e| {
            anyhow::Error::new(e).context(format!("exporting {names} from the Docker Engine"))
        })
    })
}

/// Loads a `docker save` archive into the engine; the images come back under their tags.
pub async fn load_archive(docker: &Docker, archive: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(archive)?;
    // The engine reads the body as it comes; a megabyte at a time keeps memory flat.
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        let mut buffer = vec![0u8; 1 << 20];
        match file.read(&mut buffer) {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buffer)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let options = ImportImageOptionsBuilder::default().quiet(true).build();
    let mut progress = docker.import_image_stream(options, chunks, None);
    while let Some(info) = progress.next().await {
        let info = info.map_err(|e| {
            Problem::tool(format!("the Docker Engine could not load the images: {e}"))
        })?;
        if let Some(error) = info.error_detail.and_then(|d| d.message) {
            return Err(Problem::tool(format!(
                "the Docker Engine could not load the images: {error}"
            ))
            .into());
        }
    }
    Ok(())
}

/// Tags `source` as `target` (`repository:tag`).
pub async fn tag(docker: &Docker, source: &str, target: &str) -> anyhow::Result<()> {
    let (repository, tag) = split_reference(target);
    let options = TagImageOptionsBuilder::default()
        .repo(repository)
        .tag(tag)
        .build();
    docker
        .tag_image(source, Some(options))
        .await
        .map_err(|e| anyhow::Error::new(e).context(format!("tagging {source} as {target}")))
}

/// Pushes `reference` to its registry (anonymously: a site registry inside the network).
pub async fn push(docker: &Docker, reference: &str) -> anyhow::Result<()> {
    let (repository, tag) = split_reference(reference);
    let options = PushImageOptionsBuilder::default().tag(tag).build();
    // The engine wants an X-Registry-Auth header even for anonymous pushes.
    let mut progress = docker.push_image(
        repository,
        Some(options),
        Some(DockerCredentials::default()),
    );
    while let Some(info) = progress.next().await {
        let info = info.map_err(|e| push_problem(reference, &e.to_string()))?;
        if let Some(error) = info.error_detail.and_then(|d| d.message) {
            return Err(push_problem(reference, &error));
        }
    }
    Ok(())
}

fn push_problem(reference: &str, cause: &str) -> anyhow::Error {
    Problem::user(format!("could not push {reference}: {cause}"))
        .hint("check that the registry in --push-to answers from this host (an HTTP registry must be listed under insecure-registries in /etc/docker/daemon.json unless it is on 127.0.0.1)")
        .into()
}
