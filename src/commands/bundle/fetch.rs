//! What `bundle create` fetches from outside this machine before it writes: the AI Gateway chart
//! (`helm pull`, checked to be the chart and version asked for) and the files of each vLLM
//! model's Hugging Face repository (listed through the Hub API, downloaded into the cache).

use crate::bundle::writer;
use crate::catalog::{Model, VllmSource};
use crate::cli::BundleCreateArgs;
use crate::error::Problem;
use crate::helm;
use crate::model_cache;
use crate::output::{Mark, Printer};

use crate::commands::progress::{PullBars, PullLook};

/// The repository vLLM loads for a catalog model, or an error saying how the model is served.
pub(super) fn vllm_source(model: &'static Model) -> anyhow::Result<&'static VllmSource> {
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
pub(super) struct PulledChart {
    _dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
    pub version: String,
}

/// `helm pull` of the AI Gateway chart at the version `install --target helm` would use, from
/// GitLab's chart repository (or `--chart-repo`), checked to be that chart and version.
pub(super) fn pull_chart(
    args: &BundleCreateArgs,
    printer: &Printer,
) -> anyhow::Result<PulledChart> {
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
pub(super) struct CachedHfFile {
    pub model: &'static Model,
    pub repo: &'static str,
    pub commit: String,
    pub file: String,
    pub blob: String,
    pub path: std::path::PathBuf,
}

/// Lists each vLLM model's repository through the Hub API, keeps the files vLLM loads, checks
/// the cache has room for those it lacks, and downloads them (resumed and checked as `models
/// pull` does).
pub(super) async fn fetch_vllm_weights(
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
            let reporter = PullBars::new(printer, &file.name, PullLook::BundleItem);
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
