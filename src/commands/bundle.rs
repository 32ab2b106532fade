//! `duo-selfhost bundle create|verify|load`: an air-gapped install's two machines. On the
//! connected one, choose and pull the gateway images as `image-tag` and `install` would, take
//! the GGUFs from the cache (or download vLLM's Hugging Face weights into it), `helm pull` the
//! chart for `--target helm`, and write one bundle; on the air-gapped one, check it and load it,
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
use crate::catalog::{Model, VllmSource};
use crate::cli::{
    BundleCommand, BundleCreateArgs, BundleLoadArgs, BundleRuntime, BundleVerifyArgs, Target,
};
use crate::error::{ExitStatus, Problem};
use crate::helm;
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

/// The repository vLLM loads for a catalog model, or an error saying how the model is served.
fn vllm_source(model: &'static Model) -> anyhow::Result<&'static VllmSource> {
    model.vllm.as_ref().ok_or_else(|| {
        Problem::user(format!(
            "{} ({}) is not served by vLLM, so --model-runtime vllm has no weights to bundle for it",
            model.name, model.title
        ))
        .hint(format!(
            "bundle its GGUF for the embedded runtime instead: --model-runtime embedded --model {}; `duo-selfhost models list` shows which models vLLM serves",
            model.name
        ))
        .into()
    })
}

/// The chart archive `helm pull` fetched, in a directory of its own that goes with it.
struct PulledChart {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    version: String,
}

/// `helm pull` of the AI Gateway chart at the version `install --target helm` would use, from
/// GitLab's chart repository (or `--chart-repo`), checked to be that chart and version.
fn pull_chart(args: &BundleCreateArgs, printer: &Printer) -> anyhow::Result<PulledChart> {
    let version = args.chart_version.trim().to_string();
    let valid = !version.is_empty()
        && !version.starts_with('.')
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    if !valid {
        return Err(Problem::user(format!(
            "--chart-version `{}` is not a chart version",
            args.chart_version
        ))
        .hint(format!(
            "pass a version such as --chart-version {}",
            helm::DEFAULT_CHART_VERSION
        ))
        .into());
    }
    if crate::programs::find_on_path("helm").is_none() {
        return Err(Problem::user(
            "helm is not on PATH; bundle create --target helm fetches the AI Gateway chart with `helm pull`",
        )
        .hint("install helm 3.11 or later (https://helm.sh/docs/intro/install/) on this connected machine, or bundle for --target docker")
        .into());
    }
    let repo_url = args.chart_repo.as_deref().unwrap_or(helm::REPO_URL);
    let dir = tempfile::Builder::new()
        .prefix("duo-selfhost-chart-")
        .tempdir()
        .map_err(|e| Problem::tool(format!("could not make a temporary directory: {e}")))?;
    let command = helm::pull_command(repo_url, &version, dir.path());
    printer.detail(format!("running {command}"));
    let out = helm::exec::query(&command, std::time::Duration::from_secs(300), printer)?;
    if !out.success() {
        return Err(Problem::user(format!(
            "`{command}` failed: {}",
            out.tail(5)
        ))
        .hint(format!(
            "check that this machine reaches {repo_url} (a proxy needs HTTPS_PROXY) and that the chart has version {version} there"
        ))
        .into());
    }
    let archives: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
        .collect();
    let [path] = archives.as_slice() else {
        return Err(Problem::tool(format!(
            "`{command}` left {} chart archives instead of one",
            archives.len()
        ))
        .into());
    };
    let (name, found) = helm::chart_archive_identity(path)?;
    if name != helm::CHART_NAME || found != version {
        return Err(Problem::user(format!(
            "{repo_url} answered `helm pull` with the chart {name} {found}, not {} {version}",
            helm::CHART_NAME
        ))
        .hint("check --chart-repo: it must serve GitLab's AI Gateway chart")
        .into());
    }
    printer.info(format!(
        "{} chart {} {version} from {repo_url}",
        printer.mark(Mark::Ok),
        helm::CHART_NAME
    ));
    Ok(PulledChart {
        path: path.clone(),
        _dir: dir,
        version,
    })
}

/// One file of a vLLM model's repository, in the local Hugging Face cache.
struct CachedHfFile {
    model: &'static Model,
    repo: &'static str,
    commit: String,
    file: String,
    blob: String,
    path: std::path::PathBuf,
}

/// Lists each vLLM model's repository through the Hub API, keeps the files vLLM loads, checks
/// the cache has room for those it lacks, and downloads them (resumed and checked as `models
/// pull` does).
async fn fetch_vllm_weights(
    models: &[&'static Model],
    printer: &Printer,
) -> anyhow::Result<Vec<CachedHfFile>> {
    let endpoint = model_cache::hf_endpoint();
    let token = model_cache::hf_token();
    let mut wanted = Vec::new();
    for model in models {
        let source = vllm_source(model)?;
        let listing =
            model_cache::list_repo(&endpoint, source.repo, "main", token.as_ref()).await?;
        let names: Vec<&str> = listing.files.iter().map(|f| f.name.as_str()).collect();
        let keep = crate::vllm::files_for_load(source.load, &names);
        let files: Vec<model_cache::RepoFile> = listing
            .files
            .iter()
            .filter(|f| keep.contains(&f.name.as_str()))
            .cloned()
            .collect();
        printer.info(format!(
            "{} {}: {} at {} ({} of its {} files)",
            printer.mark(Mark::Ok),
            model.name,
            source.repo,
            &listing.commit[..12],
            files.len(),
            listing.files.len()
        ));
        wanted.push((*model, source, listing.commit, files));
    }

    // Room in the cache for what is not there yet; a size the listing leaves out counts as 0.
    let missing: u64 = wanted
        .iter()
        .flat_map(|(_, source, commit, files)| {
            files.iter().filter_map(move |f| {
                (!model_cache::repo_snapshot_path(source.repo, commit, &f.name).is_file())
                    .then_some(f.bytes.unwrap_or(0))
            })
        })
        .sum();
    if missing > 0 {
        let hf_home = model_cache::ensure_hf_home()?;
        writer::check_space(&hf_home, missing, "downloading the vLLM weights")?;
    }

    let mut cached = Vec::new();
    for (model, source, commit, files) in wanted {
        for file in files {
            let reporter = PullReporter::new(printer, &file.name);
            let pulled = model_cache::pull_file(
                &file.at(source.repo, &commit),
                file.blob_name(),
                &endpoint,
                token.as_ref(),
                &reporter,
            )
            .await?;
            let blob = std::fs::canonicalize(&pulled.path)
                .ok()
                .and_then(|b| b.file_name().map(|n| n.to_string_lossy().into_owned()))
                .ok_or_else(|| {
                    Problem::tool(format!(
                        "{} is not a link to a blob of the cache",
                        pulled.path.display()
                    ))
                })?;
            cached.push(CachedHfFile {
                model,
                repo: source.repo,
                commit: commit.clone(),
                file: file.name.clone(),
                blob,
                path: pulled.path,
            });
        }
    }
    Ok(cached)
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
    if !report.hf_files_placed.is_empty() {
        printer.info(format!(
            "{} {} Hugging Face file(s) in the cache {} (vLLM's weights)",
            printer.mark(Mark::Ok),
            report.hf_files_placed.len(),
            model_cache::hf_home().join("hub").display()
        ));
        for path in &report.hf_files_placed {
            printer.detail(format!("  {path}"));
        }
    }
    if !report.hf_files_present.is_empty() {
        printer.info(format!(
            "{} {} Hugging Face file(s) were already in the cache",
            printer.mark(Mark::Ok),
            report.hf_files_present.len()
        ));
    }
    for path in &report.charts_stored {
        printer.info(format!(
            "{} chart archive stored: {path}",
            printer.mark(Mark::Ok)
        ));
    }
    for path in &report.charts_present {
        printer.info(format!(
            "{} chart archive {path} was already stored",
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
    file: String,
}

impl<'a> PullReporter<'a> {
    fn new(printer: &'a Printer, file: &str) -> Self {
        PullReporter {
            inner: BarProgress::new(printer),
            file: file.to_string(),
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
