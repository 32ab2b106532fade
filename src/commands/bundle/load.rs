//! `bundle verify` and `bundle load` on the air-gapped host: every checksum checked, then the
//! images, models, chart and tag lists put where `install --offline` finds them, and what
//! changed reported with the `install` command to run next.

use std::time::Instant;

use crate::bundle::loader::{self, LoadReport};
use crate::bundle::reader::Bundle;
use crate::cli::{BundleLoadArgs, BundleVerifyArgs};
use crate::docker;
use crate::error::{ExitStatus, Problem};
use crate::model_cache;
use crate::output::{Mark, Printer};

use super::until_interrupted;
use crate::commands::progress::ItemBars;

pub(super) fn verify(args: BundleVerifyArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let started = Instant::now();
    let bundle = Bundle::open(&args.file)?;
    bundle.verify(&ItemBars::new(printer))?;
    let manifest = &bundle.manifest;
    if printer.json {
        printer.json_document(&serde_json::json!({
            "bundle": bundle.name(),
            "ok": true,
            "manifest": manifest,
        }));
        return Ok(ExitStatus::Success);
    }
    printer.result(format!(
        "{} {}: every checksum matches ({} items, format {}, made by duo-selfhost {}, GitLab {}; {:.1} s)",
        printer.mark(Mark::Ok),
        bundle.name(),
        manifest.items.len(),
        manifest.format_version,
        manifest.duo_selfhost_version,
        manifest.gitlab_versions.join(", "),
        started.elapsed().as_secs_f64()
    ));
    Ok(ExitStatus::Success)
}

pub(super) fn load(args: BundleLoadArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    if let Some(push_to) = &args.push_to {
        check_push_target(push_to)?;
    }
    let started = Instant::now();
    let bundle = Bundle::open(&args.file)?;
    let report = until_interrupted(
        async {
            let engine = docker::connect().await?;
            loader::load(
                &bundle,
                &engine,
                args.push_to.as_deref(),
                &ItemBars::new(printer),
            )
            .await
        },
        &format!("loading {}", bundle.name()),
    )?;
    report_loaded(&bundle, &report, started, printer)
}

/// `--push-to` must name a repository on a registry: HOST[:PORT]/PATH, no tag.
fn check_push_target(push_to: &str) -> anyhow::Result<()> {
    let valid = push_to
        .split_once('/')
        .is_some_and(|(host, path)| !host.is_empty() && !path.is_empty())
        && !push_to.contains('@')
        && crate::image_tag::split_reference(push_to).1 == "latest";
    if valid {
        return Ok(());
    }
    Err(Problem::user(format!(
        "--push-to `{push_to}` is not a registry repository HOST[:PORT]/PATH"
    ))
    .hint("give it without a tag, such as --push-to registry.example.com:5000/ai/model-gateway")
    .into())
}

fn report_loaded(
    bundle: &Bundle,
    report: &LoadReport,
    started: Instant,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    if printer.json {
        printer.json_document(&serde_json::json!({
            "bundle": bundle.name(),
            "changed": report.changed(),
            "seconds": started.elapsed().as_secs_f64(),
            "report": report,
        }));
        return Ok(ExitStatus::Success);
    }
    let ok = printer.mark(Mark::Ok);
    // One line an item, in the order the load did them; the Hugging Face files, which can be
    // many, are counted instead (listed with -v).
    let each = |items: &[String], line: fn(&str) -> String| {
        for item in items {
            printer.info(format!("{ok} {}", line(item)));
        }
    };
    each(&report.images_loaded, |image| format!("loaded {image}"));
    each(&report.images_present, |image| {
        format!("{image} was already loaded")
    });
    each(&report.images_pushed, |image| format!("pushed {image}"));
    each(&report.models_placed, |path| {
        format!("model in the cache: {path}")
    });
    each(&report.models_present, |model| {
        format!("{model} was already in the model cache")
    });
    if !report.hf_files_placed.is_empty() {
        printer.info(format!(
            "{ok} {} Hugging Face file(s) in the cache {} (vLLM's weights)",
            report.hf_files_placed.len(),
            model_cache::hf_home().join("hub").display()
        ));
        for path in &report.hf_files_placed {
            printer.detail(format!("  {path}"));
        }
    }
    if !report.hf_files_present.is_empty() {
        printer.info(format!(
            "{ok} {} Hugging Face file(s) were already in the cache",
            report.hf_files_present.len()
        ));
    }
    each(&report.charts_stored, |path| {
        format!("chart archive stored: {path}")
    });
    each(&report.charts_present, |path| {
        format!("chart archive {path} was already stored")
    });
    each(&report.tag_lists_written, |path| {
        format!("tag list stored: {path}")
    });
    let summary = if report.changed() {
        "loaded"
    } else {
        "already loaded; nothing changed"
    };
    printer.result(format!(
        "{ok} {} {summary} ({:.1} s); next, on this host:",
        bundle.name(),
        started.elapsed().as_secs_f64()
    ));
    printer.result(format!(
        "  {} --gitlab-url URL --gateway-host HOST",
        report.install_command
    ));
    Ok(ExitStatus::Success)
}
