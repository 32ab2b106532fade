//! `duo-selfhost bundle create|verify|load`: an air-gapped install's two machines. On the
//! connected one, choose and pull the gateway images as `image-tag` and `install` would, take
//! the models from the cache and write one bundle; on the air-gapped one, check it and load it,
//! then name the `install` command to run. The format and the checks live in `crate::bundle`.

use std::cell::RefCell;
use std::io::Write;
use std::time::Instant;

use futures_util::StreamExt;
use indicatif::{HumanBytes, ProgressBar};
use semver::Version;

use crate::bundle::loader::{self, LoadReport};
use crate::bundle::manifest::{BundledImage, Content, Manifest};
use crate::bundle::reader::Bundle;
use crate::bundle::writer::{self, BundleWriter};
use crate::bundle::Progress;
use crate::catalog::Model;
use crate::cli::{
    BundleCommand, BundleCreateArgs, BundleLoadArgs, BundleRuntime, BundleVerifyArgs,
};
use crate::error::{ExitStatus, Problem};
use crate::image_tag;
use crate::model_cache::{self, PullPhase, PullProgress};
use crate::output::{Mark, Printer};
use crate::registry::{self, RegistryChoice};
use crate::{docker, image_transfer};

pub fn run(command: BundleCommand, printer: &Printer) -> anyhow::Result<ExitStatus> {
    match command {
        BundleCommand::Create(args) => create(args, printer),
        BundleCommand::Verify(args) => verify(args, printer),
        BundleCommand::Load(args) => load(args, printer),
    }
}

/// zstd's default level: most of the gain for image layers at a speed near the disk's.
const ZSTD_LEVEL: i32 = 3;

/// Runs `work` until it ends or Ctrl-C arrives; on Ctrl-C the work is dropped (a bundle
/// writer removes its partial file, a load its staging directory) and the error says so.
fn until_interrupted<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    what: &str,
) -> anyhow::Result<T> {
    super::runtime()?.block_on(async {
        tokio::select! {
            outcome = work => outcome,
            _ = tokio::signal::ctrl_c() => Err(Problem::user(format!(
                "interrupted: {what} was stopped and nothing half-written was kept"
            ))
            .hint("run the same command again")
            .into()),
        }
    })
}

/// A gateway image chosen for one GitLab version, with the tag list it was chosen from.
struct GatewayChoice {
    gitlab: Version,
    image: String,
    /// The registry's tags for the version's minor, as `image-tag` would see them.
    minor_tags: Vec<String>,
}

fn create(args: BundleCreateArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let mut versions = Vec::new();
    for text in &args.gitlab_versions {
        let version = image_tag::parse_gitlab_version(text)?;
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    let models = bundled_models(&args)?;
    let output = args.output.clone();
    until_interrupted(
        create_bundle(args, versions, models, printer),
        &format!("writing {}", output.display()),
    )
}

/// The catalog models whose GGUFs go in; only the embedded runtime serves GGUFs.
fn bundled_models(args: &BundleCreateArgs) -> anyhow::Result<Vec<&'static Model>> {
    if args.model_runtime == BundleRuntime::Vllm && !args.models.is_empty() {
        return Err(Problem::user(
            "--model with --model-runtime vllm: a bundle carries GGUFs for the embedded runtime, and vLLM loads Hugging Face weights, which bundles do not carry yet",
        )
        .hint("bundle the vLLM image without --model, and copy the model's Hugging Face cache (HF_HOME/hub/models--...) across with it")
        .into());
    }
    let mut models: Vec<&'static Model> = Vec::new();
    for name in &args.models {
        let model = model_cache::find_model(name)?;
        model_cache::local_source(model)?;
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
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let started = Instant::now();
    let all_tags = match &args.available_tags {
        Some(file) => image_tag::read_tag_file(file)?,
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
            .ok_or_else(|| image_tag::no_tag_for_minor(version, &place, &all_tags))?;
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
    let pull = super::install::pull_policy(args.pull);
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

    let mut ggufs = Vec::new();
    let mut gguf_bytes = 0;
    for model in &models {
        let source = model_cache::local_source(model)?;
        let path = match model_cache::locate(model) {
            Some(path) => path,
            None => {
                printer.info(format!(
                    "{} is not in the model cache; pulling it",
                    model.name
                ));
                let reporter = PullReporter::new(printer, source.file);
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
        gguf_bytes += std::fs::metadata(&path)?.len();
        ggufs.push((*model, source, path));
    }

    let output_dir = match args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => std::path::PathBuf::from("."),
    };
    // Images are counted at their size in the engine: zstd only makes the bundle smaller.
    let needed = image_bytes + gguf_bytes + (1 << 20);
    writer::check_space(
        &output_dir,
        needed,
        &format!("the bundle {}", args.output.display()),
    )?;

    let progress = BarProgress::new(printer);
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
        (BundleRuntime::Vllm, _) => {
            install.extend(["--model-runtime".to_string(), "vllm".to_string()])
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

fn verify(args: BundleVerifyArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let started = Instant::now();
    let bundle = Bundle::open(&args.file)?;
    bundle.verify(&BarProgress::new(printer))?;
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

fn load(args: BundleLoadArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
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
                &BarProgress::new(printer),
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
        && docker::split_reference(push_to).1 == "latest";
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
    for image in &report.images_loaded {
        printer.info(format!("{} loaded {image}", printer.mark(Mark::Ok)));
    }
    for image in &report.images_present {
        printer.info(format!(
            "{} {image} was already loaded",
            printer.mark(Mark::Ok)
        ));
    }
    for image in &report.images_pushed {
        printer.info(format!("{} pushed {image}", printer.mark(Mark::Ok)));
    }
    for path in &report.models_placed {
        printer.info(format!(
            "{} model in the cache: {path}",
            printer.mark(Mark::Ok)
        ));
    }
    for model in &report.models_present {
        printer.info(format!(
            "{} {model} was already in the model cache",
            printer.mark(Mark::Ok)
        ));
    }
    for path in &report.tag_lists_written {
        printer.info(format!(
            "{} tag list stored: {path}",
            printer.mark(Mark::Ok)
        ));
    }
    let summary = if report.changed() {
        "loaded"
    } else {
        "already loaded; nothing changed"
    };
    printer.result(format!(
        "{} {} {summary} ({:.1} s); next, on this host:",
        printer.mark(Mark::Ok),
        bundle.name(),
        started.elapsed().as_secs_f64()
    ));
    printer.result(format!(
        "  {} --gitlab-url URL --gateway-host HOST",
        report.install_command
    ));
    Ok(ExitStatus::Success)
}

/// Draws bundle progress: a bar per item on a terminal, a line per item with `-v`.
struct BarProgress<'a> {
    printer: &'a Printer,
    bar: RefCell<Option<ProgressBar>>,
}

impl<'a> BarProgress<'a> {
    fn new(printer: &'a Printer) -> Self {
        BarProgress {
            printer,
            bar: RefCell::new(None),
        }
    }
}

impl Progress for BarProgress<'_> {
    fn begin(&self, item: &str, total: Option<u64>) {
        self.printer.detail(format!(
            "{item}{}",
            total
                .map(|t| format!(" ({})", HumanBytes(t)))
                .unwrap_or_default()
        ));
        let bar = self.printer.progress_bar(
            total.unwrap_or(0),
            "  {msg:30!} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec}",
        );
        bar.set_message(item.to_string());
        if let Some(old) = self.bar.replace(Some(bar)) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(bytes);
        }
    }

    fn end(&self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A model pull during `bundle create`, drawn like bundle progress.
struct PullReporter<'a> {
    inner: BarProgress<'a>,
    file: &'static str,
}

impl<'a> PullReporter<'a> {
    fn new(printer: &'a Printer, file: &'static str) -> Self {
        PullReporter {
            inner: BarProgress::new(printer),
            file,
        }
    }
}

impl PullProgress for PullReporter<'_> {
    fn begin(&self, phase: PullPhase, total: Option<u64>, position: u64) {
        let verb = match phase {
            PullPhase::Verifying => "verifying",
            PullPhase::Downloading => "downloading",
        };
        self.inner.begin(&format!("{verb} {}", self.file), total);
        self.inner.advance(position);
    }

    fn advance(&self, bytes: u64) {
        self.inner.advance(bytes);
    }

    fn note(&self, message: &str) {
        self.inner.printer.warn(message);
    }

    fn end(&self) {
        self.inner.end();
    }
}
