//! `duo-selfhost image-tag`: prints the AI Gateway image for a GitLab version.
//!
//! The image reference alone goes to stdout so it can feed `docker pull`; warnings go to
//! stderr, and `--json` prints the whole choice as one document.

use crate::cli::ImageTagArgs;
use crate::error::ExitStatus;
use crate::gateway_image::{self, TagSource};
use crate::image_tag;
use crate::output::Printer;

pub fn run(args: ImageTagArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let version = image_tag::parse_gitlab_version(&args.gitlab_version)?;
    let choice = super::runtime()?.block_on(gateway_image::resolve(
        &version,
        &args.registry,
        args.available_tags.as_deref(),
        if args.offline {
            gateway_image::Lookup::OfflineRule
        } else {
            gateway_image::Lookup::Online
        },
    ))?;
    for warning in &choice.warnings {
        printer.warn(warning);
    }
    let from = match choice.source {
        TagSource::File => "the tag list",
        TagSource::Registry => "the registry's tags",
        TagSource::Offline => "the offline rule",
        TagSource::Bundle => "the tag list a bundle brought",
    };
    printer.detail(format!(
        "GitLab {}: gateway tag {} from {from}",
        choice.gitlab_version, choice.tag
    ));
    if printer.json {
        printer.json_document(&serde_json::to_value(&choice)?);
    } else {
        printer.result(&choice.image);
    }
    Ok(ExitStatus::Success)
}
