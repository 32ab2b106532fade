//! `bundle create`: the gateway images chosen for each GitLab version (as `image-tag` would) and
//! exported from the Docker Engine, the models, the chart and the tag lists written into one
//! bundle, and the `install` command the air-gapped host will run.

use std::io::Write;
use std::time::Instant;

use futures_util::StreamExt;
use indicatif::HumanBytes;
use semver::Version;

use crate::bundle::manifest::{BundledImage, Content, Manifest};
use crate::bundle::writer::{self, BundleWriter};
use crate::bundle::Progress;
use crate::catalog::Model;
use crate::cli::{BundleCreateArgs, BundleRuntime, Target};
use crate::error::{ExitStatus, Problem};
use crate::gateway_image;
use crate::helm;
use crate::image_tag;
use crate::model_cache;
use crate::output::{Mark, Printer};
use crate::registry::{self, RegistryChoice};
use crate::{docker, image_transfer};

use super::fetch::{fetch_vllm_weights, pull_chart, vllm_source, PulledChart};
use super::until_interrupted;
use crate::commands::progress::{ItemBars, PullBars, PullLook};

/// zstd's default level: most of the gain for image layers at a speed near the disk's.
const ZSTD_LEVEL: i32 = 3;

/// A gateway image chosen for one GitLab version, with the tag list it was chosen from.
struct GatewayChoice {
    gitlab: Version,
    image: String,
    /// The registry's tags for the version's minor, as `image-tag` would see them.
    minor_tags: Vec<String>,
}

pub(super) fn create(args: BundleCreateArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let mut versions = Vec::new();
    for text in &args.gitlab_versions {
        let version = image_tag::parse_gitlab_version(text)?;
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    if args.target != Target::Helm && args.chart_repo.is_some() {
        return Err(Problem::user(
            "--chart-repo names where the Helm chart comes from, and this bundle is for --target docker, which carries no chart",
        )
        .hint("add --target helm, or drop --chart-repo")
        .into());
    }
    let models = bundled_models(&args)?;
    let chart = match args.target {
        Target::Helm => Some(pull_chart(&args, printer)?),
        Target::Docker => None,
    };
    let output = args.output.clone();
    until_interrupted(
        create_bundle(args, versions, models, chart, printer),
        &format!("writing {}", output.display()),
    )
}

/// The catalog models that go in: their GGUFs for the embedded runtime, their Hugging Face
/// repositories for vLLM.
fn bundled_models(args: &BundleCreateArgs) -> anyhow::Result<Vec<&'static Model>> {
    let mut models: Vec<&'static Model> = Vec::new();
    for name in &args.models {
        let model = model_cache::find_model(name)?;
        match args.model_runtime {
            BundleRuntime::Embedded => {
                model_cache::local_source(model)?;
            }
            BundleRuntime::Vllm => {
                vllm_source(model)?;
            }
        }
        if !models.iter().any(|m| m.name == model.name) {
            models.push(model);
        }
    }
    Ok(models)
}

async fn create_bundle(
    args: BundleCreateArgs,
    versions: Vec<Version>,
    models: Vec<&'static Model>,
    chart: Option<PulledChart>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let started = Instant::now();
    let all_tags = match &args.available_tags {
        Some(file) => gateway_image::read_tag_file(file)?,
        None => registry::list_registry_tags(&args.registry)
            .await
            .map_err(|e| {
                Problem::user(format!(
                    "bundle create needs the tag list of {} to choose as image-tag does: {e:#}",
                    args.registry.repository()
                ))
                .hint("run it where the registry answers, or pass --available-tags FILE")
            })?,
    };
    let mut gateways = Vec::new();
    for version in &versions {
        let place = match &args.available_tags {
            Some(file) => format!("the tag list {}", file.display()),
            None => args.registry.repository(),
        };
        let tag = image_tag::pick_gateway_tag(all_tags.iter().map(String::as_str), version)
            .ok_or_else(|| gateway_image::no_tag_for_minor(version, &place, &all_tags))?;
        let image = format!("{}:{tag}", args.registry.repository());
        let minor_tags = all_tags
            .iter()
            .filter(|t| image_tag::tag_matches_minor(t, version))
            .cloned()
            .collect();
        printer.info(format!(
            "{} GitLab {version}: {}",
            printer.mark(Mark::Ok),
            image
        ));
        gateways.push(GatewayChoice {
            gitlab: version.clone(),
            image,
            minor_tags,
        });
    }

    let engine = docker::connect().await?;
    let pull = crate::commands::install::pull_policy(args.pull);
    let mut images: Vec<BundledImage> = gateways
        .iter()
        .map(|g| BundledImage {
            reference: g.image.clone(),
            id: String::new(),
            role: "gateway".into(),
            gitlab_version: Some(g.gitlab.to_string()),
        })
        .collect();
    if args.model_runtime == BundleRuntime::Vllm {
        images.push(BundledImage {
            reference: docker::VLLM_IMAGE.to_string(),
            id: String::new(),
            role: "vllm".into(),
            gitlab_version: None,
        });
    }
    let mut image_bytes = 0;
    for image in &mut images {
        docker::ensure_image(&engine, &image.reference, pull, printer).await?;
        let (id, size) = image_transfer::id_and_size(&engine, &image.reference)
            .await?
            .ok_or_else(|| Problem::tool(format!("{} vanished after the pull", image.reference)))?;
        image.id = id;
        image_bytes += size;
    }

    let hf_files = match args.model_runtime {
        BundleRuntime::Vllm => fetch_vllm_weights(&models, printer).await?,
        BundleRuntime::Embedded => Vec::new(),
    };
    let mut file_bytes = hf_files
        .iter()
        .map(|f| std::fs::metadata(&f.path).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()?;
    if let Some(chart) = &chart {
        file_bytes += std::fs::metadata(&chart.path)?.len();
    }
    let mut ggufs = Vec::new();
    let gguf_models = match args.model_runtime {
        BundleRuntime::Embedded => models.as_slice(),
        BundleRuntime::Vllm => &[],
    };
    for model in gguf_models {
        let source = model_cache::local_source(model)?;
        let path = match model_cache::locate(model) {
            Some(path) => path,
            None => {
                printer.info(format!(
                    "{} is not in the model cache; pulling it",
                    model.name
                ));
                let reporter = PullBars::new(printer, source.file, PullLook::BundleItem);
                model_cache::pull(
                    source,
                    &model_cache::hf_endpoint(),
                    model_cache::hf_token().as_ref(),
                    &reporter,
                )
                .await?
                .path
            }
        };
        file_bytes += std::fs::metadata(&path)?.len();
        ggufs.push((*model, source, path));
    }

    let output_dir = match args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => std::path::PathBuf::from("."),
    };
    // Images are counted at their size in the engine: zstd only makes the bundle smaller.
    let needed = image_bytes + file_bytes + (1 << 20);
    writer::check_space(
        &output_dir,
        needed,
        &format!("the bundle {}", args.output.display()),
    )?;

    let progress = ItemBars::new(printer);
    let mut bundle = BundleWriter::create(&args.output)?;
    let references: Vec<&str> = images.iter().map(|i| i.reference.as_str()).collect();
    printer.info(format!(
        "exporting {} image(s) from the Docker Engine ({} unpacked)",
        images.len(),
        HumanBytes(image_bytes)
    ));
    progress.begin("images/images.tar.zst", Some(image_bytes));
    let entry = bundle.begin_entry("images/images.tar.zst")?;
    let mut encoder = zstd::stream::write::Encoder::new(entry, ZSTD_LEVEL)?;
    let mut uncompressed_size = 0u64;
    let mut export = image_transfer::export(&engine, &references);
    while let Some(chunk) = export.next().await {
        let chunk = chunk?;
        encoder.write_all(&chunk)?;
        uncompressed_size += chunk.len() as u64;
        progress.advance(chunk.len() as u64);
    }
    let entry = encoder.finish()?;
    entry.finish(Content::Images {
        images: images.clone(),
        uncompressed_size,
    })?;
    progress.end();

    for (model, source, path) in &ggufs {
        let sha256 = bundle.add_file(
            &format!("models/{}/{}", model.name, source.file),
            path,
            Content::Gguf {
                model: model.name.to_string(),
            },
            &progress,
        )?;
        // The bundle vouches for these bytes on the other side: they must be the catalog's.
        if let Some(pinned) = source.sha256.filter(|pin| *pin != sha256) {
            return Err(Problem::user(format!(
                "the cached {} ({}) has sha256 {sha256}, not the {pinned} the catalog pins",
                model.name,
                path.display()
            ))
            .hint(format!(
                "remove it and run duo-selfhost models pull {}",
                model.name
            ))
            .into());
        }
    }
    for hf in &hf_files {
        bundle.add_file(
            &format!("hf/{}/{}", hf.repo.replace('/', "--"), hf.file),
            &hf.path,
            Content::HfFile {
                model: hf.model.name.to_string(),
                repo: hf.repo.to_string(),
                commit: hf.commit.clone(),
                branch: "main".to_string(),
                file: hf.file.clone(),
                blob: hf.blob.clone(),
            },
            &progress,
        )?;
    }
    if let Some(chart) = &chart {
        bundle.add_file(
            &format!("charts/{}-{}.tgz", helm::CHART_NAME, chart.version),
            &chart.path,
            Content::HelmChart {
                chart: helm::CHART_NAME.to_string(),
                version: chart.version.clone(),
            },
            &progress,
        )?;
    }
    for gateway in &gateways {
        let minor = format!("{}.{}", gateway.gitlab.major, gateway.gitlab.minor);
        let mut text = gateway.minor_tags.join("\n");
        text.push('\n');
        bundle.add_bytes(
            &format!("tags/gateway-{minor}.txt"),
            text.as_bytes(),
            Content::TagList {
                gitlab_minor: minor,
            },
        )?;
    }
    let install_args = install_args(&args, &gateways, &models);
    let (manifest, size) = bundle.finish(
        versions.iter().map(Version::to_string).collect(),
        install_args,
    )?;
    report_created(&args, &manifest, size, started, printer)
}

/// What `install` should be run with on the air-gapped host.
fn install_args(
    args: &BundleCreateArgs,
    gateways: &[GatewayChoice],
    models: &[&'static Model],
) -> Vec<String> {
    let mut install = vec!["install".to_string(), "--offline".to_string()];
    if args.target == Target::Helm {
        install.extend([
            "--target".to_string(),
            "helm".to_string(),
            "--chart-version".to_string(),
            args.chart_version.trim().to_string(),
        ]);
    }
    if let Some(first) = gateways.first() {
        install.extend(["--gitlab-version".to_string(), first.gitlab.to_string()]);
    }
    if args.registry != RegistryChoice::Gitlab {
        install.extend(["--registry".to_string(), args.registry.repository()]);
    }
    match (args.model_runtime, models.first()) {
        (BundleRuntime::Embedded, Some(model)) => install.extend([
            "--model-runtime".to_string(),
            "embedded".to_string(),
            "--model".to_string(),
            model.name.to_string(),
        ]),
        (BundleRuntime::Vllm, model) => {
            install.extend(["--model-runtime".to_string(), "vllm".to_string()]);
            if let Some(model) = model {
                install.extend(["--model".to_string(), model.name.to_string()]);
            }
        }
        (BundleRuntime::Embedded, None) => {}
    }
    install
}

fn report_created(
    args: &BundleCreateArgs,
    manifest: &Manifest,
    size: u64,
    started: Instant,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let seconds = started.elapsed().as_secs_f64();
    if printer.json {
        printer.json_document(&serde_json::json!({
            "bundle": args.output.display().to_string(),
            "bytes": size,
            "seconds": seconds,
            "manifest": manifest,
        }));
        return Ok(ExitStatus::Success);
    }
    printer.result(format!(
        "{} wrote {} ({}, {} items, {seconds:.1} s) for GitLab {}",
        printer.mark(Mark::Ok),
        args.output.display(),
        HumanBytes(size),
        manifest.items.len(),
        manifest.gitlab_versions.join(", ")
    ));
    printer.info(format!(
        "carry it to the air-gapped host, then: duo-selfhost bundle load {}",
        args.output.display()
    ));
    Ok(ExitStatus::Success)
}
