//! `duo-selfhost serve`: merge the flags over the `--config` file, resolve the models, find the
//! GPUs and decide each model's offload, split the threads and check the memory (RAM and GPU),
//! bind, load each model on its own engine thread while /health says 503, serve the
//! OpenAI-compatible API, stop cleanly on SIGINT or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{FimLayoutArg, ServeArgs};
use crate::engine::budget::{self, Footprint};
use crate::engine::devices::{self, Accelerator};
use crate::engine::prompt::{FimLayout, TemplateOrigin};
use crate::engine::{self, Engine, EngineConfig, Metrics, Offload};
use crate::error::{ExitStatus, Problem};
use crate::model_cache::{self, LocalModel};
use crate::output::Printer;
use crate::secret::Secret;
use crate::serve_config::{self, FimLayoutName, ModelEntry, ServeFile};
use crate::server::{self, AppState, ServedModel, ServerConfig};

/// One model as it will be served: the flags over its [[model]] table over the defaults.
struct PlannedModel {
    local: LocalModel,
    served_name: String,
    ctx_size: u32,
    parallel: u32,
    /// `--n-gpu-layers` or the table's `n_gpu_layers`; unset means every layer when there is a
    /// GPU to offload to.
    n_gpu_layers: Option<u32>,
    fim_tokens: Option<String>,
    fim_layout: Option<FimLayout>,
    chat_template: Option<PathBuf>,
}

pub fn run(args: ServeArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    // Before anything else: a package's baseline build hands over to its faster kernels here.
    engine::exec_faster_build()?;
    let file = match &args.config {
        Some(path) => serve_config::read(path)?,
        None => ServeFile::default(),
    };
    let models = plan_models(&args, &file)?;
    let several = models.len() > 1;
    let host_text = args
        .host
        .clone()
        .or(file.host.clone())
        .unwrap_or_else(|| "127.0.0.1".to_string());
    let host: IpAddr = host_text.parse().map_err(|_| {
        Problem::user(format!("--host {host_text} is not an IP address"))
            .hint("use 127.0.0.1 (this host only) or 0.0.0.0 (every interface)")
    })?;
    let port = args.port.or(file.port).unwrap_or(8080);
    let api_key = match (
        &args.api_key,
        args.api_key_file.as_ref().or(file.api_key_file.as_ref()),
    ) {
        (Some(key), _) => Some(key.clone()),
        (None, Some(path)) => Some(read_key_file(path)?),
        (None, None) => None,
    }
    .filter(|k| !k.is_empty());
    if !host.is_loopback() && api_key.is_none() {
        printer.warn(format!(
            "serving on {host} without an API key: anyone who can reach this port can use the model; set --api-key or DUO_SELFHOST_API_KEY"
        ));
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as i32)
        .unwrap_or(4);
    let threads = args.threads.or(file.threads).unwrap_or(cores);
    if threads > cores {
        printer.warn(format!(
            "--threads {threads} is more than the {cores} cores this process may use: llama.cpp slows down when its threads outnumber the cores; leave --threads out to use {cores}"
        ));
    }
    let weights: Vec<u64> = models
        .iter()
        .map(|m| {
            std::fs::metadata(&m.local.path)
                .map(|md| md.len())
                .unwrap_or(0)
        })
        .collect();
    let split = budget::split_threads(threads.max(1) as usize, &weights).ok_or_else(|| {
        Problem::user(format!(
            "{} models need a thread each, and there are {threads} threads",
            models.len()
        ))
        .hint(format!(
            "raise --threads to at least {} (without oversubscribing the cores), or serve fewer models in this process",
            models.len()
        ))
    })?;
    if several {
        let shares: Vec<String> = models
            .iter()
            .zip(&split)
            .map(|(m, t)| format!("{} {t}", m.served_name))
            .collect();
        printer.info(format!("threads: {threads} split as {}", shares.join(", ")));
    }
    let device_list = devices::list()?;
    let accelerator = Accelerator::from_devices(&device_list);
    let compiled = devices::compiled_gpu_backends();
    printer.info(devices::describe(&device_list, &compiled));
    // A GGUF llama.cpp cannot read has no footprint; its load reports it with its own message.
    let footprints: Vec<Option<Footprint>> = models
        .iter()
        .map(|m| budget::footprint(&m.local.path, m.ctx_size).ok())
        .collect();
    let offloads: Vec<(u32, Option<Offload>)> = models
        .iter()
        .zip(&footprints)
        .map(|(model, footprint)| {
            let n_gpu_layers = resolve_gpu_layers(model.n_gpu_layers, &accelerator, footprint);
            let offload = footprint
                .as_ref()
                .map(|f| Offload::decide(n_gpu_layers, f.layers(), &accelerator));
            (n_gpu_layers, offload)
        })
        .collect();
    if !accelerator.has_gpu() {
        if let Some(asked) = models
            .iter()
            .filter_map(|m| m.n_gpu_layers)
            .find(|&n| n > 0)
        {
            let why = if compiled.is_empty() {
                "this build has no GPU backend".to_string()
            } else {
                format!("{} found no GPU device", compiled.join(", "))
            };
            let mut warning = format!(
                "--n-gpu-layers {asked} asks to offload layers, but {why}: every layer runs on the CPU"
            );
            if let Some(hint) = devices::no_device_hint(&compiled) {
                warning.push_str(&format!(" ({hint})"));
            } else if compiled.is_empty() {
                warning.push_str(
                    " (README: GPU builds: cargo build --release --features cuda, vulkan or metal)",
                );
            }
            printer.warn(warning);
        }
    }
    let memory_limit = args.memory_limit.or(file.memory_limit);
    let planned: Vec<budget::Planned> = models
        .iter()
        .zip(&footprints)
        .zip(&offloads)
        .filter_map(|((model, footprint), (_, offload))| {
            Some(budget::Planned {
                name: &model.served_name,
                parallel: model.parallel,
                footprint: (*footprint)?,
                offloaded: offload.as_ref().map_or(0, |o| o.offloaded),
            })
        })
        .collect();
    let memory = budget::check_memory(&planned, memory_limit.map(|l| l.0), &accelerator)?;
    if several || memory_limit.is_some() || memory.uses_gpu() {
        printer.info(memory.summary());
    }
    let max_queue = args.max_queue.or(file.max_queue).unwrap_or(64);
    let reuse_min_run = args.reuse_min_run.or(file.reuse_min_run).unwrap_or(32);
    let mut engine_configs = Vec::new();
    for ((model, &model_threads), &(n_gpu_layers, _)) in models.iter().zip(&split).zip(&offloads) {
        let chat_template = match &model.chat_template {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                Problem::user(format!(
                    "cannot read the chat template {}: {e}",
                    path.display()
                ))
                .hint(
                    "pass a readable Jinja file to --chat-template, or leave it out to use the GGUF's",
                )
            })?),
            None => None,
        };
        engine_configs.push(EngineConfig {
            model_path: model.local.path.clone(),
            ctx_size: model.ctx_size,
            parallel: model.parallel,
            threads: model_threads as i32,
            n_gpu_layers,
            fim_tokens: model.fim_tokens.clone(),
            fim_layout: model.fim_layout,
            chat_template,
            reuse_min_run,
            seed: args.seed.or(file.seed),
            max_queue,
        });
    }
    let metrics = Arc::new(Metrics::default());
    let state = AppState::new(
        ServerConfig {
            api_key,
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(4 * 1024 * 1024),
            body_timeout: std::time::Duration::from_secs(
                args.body_timeout.or(file.body_timeout).unwrap_or(30),
            ),
        },
        metrics.clone(),
    );

    let runtime = super::runtime()?;
    runtime.block_on(async {
        let addr = SocketAddr::new(host, port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Problem::user(format!("cannot listen on {addr}: {e}"))
                .hint(format!("pick a free port: duo-selfhost serve --port {}", port.wrapping_add(1)))
        })?;
        printer.info(format!("engine: llama.cpp, {}", engine::kernels_description()));
        for ((model, model_threads), (_, offload)) in models.iter().zip(&split).zip(&offloads) {
            let layers = offload
                .as_ref()
                .map(|o| format!(", {}", o.label()))
                .unwrap_or_default();
            printer.info(format!(
                "loading {} ({}) with {model_threads} threads, {} slots{layers}",
                model.local.name,
                model.local.path.display(),
                model.parallel
            ));
        }

        // The models load on their own threads, one after the other; /health answers 503 until
        // every one is ready.
        let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel();
        let loading_state = state.clone();
        let names: Vec<String> = models.iter().map(|m| m.served_name.clone()).collect();
        let paths: Vec<PathBuf> = models.iter().map(|m| m.local.path.clone()).collect();
        std::thread::spawn(move || {
            let _ = loaded_tx.send(load_all(names, paths, engine_configs, metrics, &loading_state));
        });

        let app = server::router(state.clone());
        let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
        let server = server::serve(listener, app, HEADER_TIMEOUT, async move {
            shutdown_signal().await;
            let _ = stopping_tx.send(true);
        });
        // Running requests get a grace period; a client that never hangs up does not hold
        // the process forever.
        let server = async move {
            tokio::select! {
                _ = server => Ok::<_, anyhow::Error>(()),
                _ = async {
                    let _ = stopping_rx.wait_for(|stopping| *stopping).await;
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                } => {
                    tracing::warn!("requests still running after {} s; stopping anyway", SHUTDOWN_GRACE.as_secs());
                    Ok(())
                }
            }
        };
        let mut server = std::pin::pin!(server);
        tokio::select! {
            loaded = loaded_rx => {
                match loaded {
                    Ok(Ok(loaded)) => {
                        for (model, summary) in models.iter().zip(loaded) {
                            if summary.fallback {
                                printer.warn(format!(
                                    "{} has no chat template: chat requests use ChatML, which a base model was not trained on; pass the model's own with --chat-template FILE",
                                    model.local.name
                                ));
                            }
                            if let Some((per_slot, trained, slots)) = summary.beyond_training {
                                printer.warn(format!(
                                    "{}: {per_slot} tokens per slot is more than the {trained} it was trained on, and answers to longer prompts degrade; --ctx-size {} (ctx_size in its [[model]] table) keeps each of the {slots} slots within it",
                                    model.served_name,
                                    u64::from(trained) * u64::from(slots)
                                ));
                            }
                            printer.info(format!(
                                "serving {} on http://{addr}/v1 (fill-in-the-middle: {}, {})",
                                model.served_name, summary.fim, summary.context
                            ));
                        }
                    }
                    Ok(Err(e)) => {
                        if let Some(bad) = e.downcast_ref::<crate::engine::prompt::PromptError>() {
                            return Err(Problem::user(bad.to_string())
                                .hint("name the model's FIM tokens by their exact text, e.g. --fim-tokens '<fim_prefix>,<fim_suffix>,<fim_middle>' (PRE,SUF with --fim-layout spm), or leave --fim-tokens out")
                                .into());
                        }
                        return Err(e);
                    }
                    Err(_) => anyhow::bail!("the model loader stopped unexpectedly"),
                }
            }
            result = &mut server => {
                result?;
                return Ok(());
            }
        }
        server.await?;
        printer.info("stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitStatus::Success)
}

/// What the startup lines say about a loaded model.
struct LoadSummary {
    fim: String,
    context: String,
    /// No chat template in the GGUF: chat falls back to ChatML.
    fallback: bool,
    /// Each slot holds more tokens than the model was trained on: (per slot, trained, slots).
    beyond_training: Option<(u32, u32, u32)>,
}

/// Loads every model in order and hands them to the server together.
fn load_all(
    names: Vec<String>,
    paths: Vec<PathBuf>,
    configs: Vec<EngineConfig>,
    metrics: Arc<Metrics>,
    state: &AppState,
) -> anyhow::Result<Vec<LoadSummary>> {
    let mut served = Vec::new();
    let mut summaries = Vec::new();
    for ((name, path), config) in names.into_iter().zip(paths).zip(configs) {
        let engine = Engine::start(config, metrics.clone())
            .map_err(|e| e.context(format!("could not load {}", path.display())))?;
        summaries.push(LoadSummary {
            fim: match engine.info.fim.layout() {
                Some(layout) => format!("native, {} layout", layout.label()),
                None => engine.info.fim.label().to_string(),
            },
            context: format!(
                "{} tokens per slot, cache reuse: {}, {}",
                engine.info.slot_context,
                engine.info.kv_reuse.label(),
                engine.info.offload.label()
            ),
            fallback: engine.info.chat_template == TemplateOrigin::Fallback,
            beyond_training: (engine.info.n_ctx_train > 0
                && engine.info.slot_context > engine.info.n_ctx_train)
                .then_some((
                    engine.info.slot_context,
                    engine.info.n_ctx_train,
                    engine.info.parallel,
                )),
        });
        served.push(ServedModel { name, engine });
    }
    let _ = state.models.set(served);
    Ok(summaries)
}

/// The models to serve: `--model` (repeated) replaces the file's [[model]] tables; the
/// per-model flags apply to every model and override the tables' values.
fn plan_models(args: &ServeArgs, file: &ServeFile) -> anyhow::Result<Vec<PlannedModel>> {
    let entries: Vec<ModelEntry> = if !args.model.is_empty() {
        args.model
            .iter()
            .map(|model| ModelEntry {
                model: model.clone(),
                ..ModelEntry::default()
            })
            .collect()
    } else if !file.models.is_empty() {
        file.models.clone()
    } else {
        vec![ModelEntry {
            model: crate::catalog::DEMO_MODEL.to_string(),
            ..ModelEntry::default()
        }]
    };
    if !args.served_model_name.is_empty() && args.served_model_name.len() != entries.len() {
        return Err(Problem::user(format!(
            "{} --served-model-name for {} models",
            args.served_model_name.len(),
            entries.len()
        ))
        .hint("give one --served-model-name per --model, in the same order, or none")
        .into());
    }
    let several = entries.len() > 1;
    let mut planned: Vec<PlannedModel> = Vec::new();
    for (at, entry) in entries.into_iter().enumerate() {
        let local = model_cache::resolve_local(&entry.model)?;
        let served_name = args
            .served_model_name
            .get(at)
            .cloned()
            .or(entry.served_model_name)
            .unwrap_or_else(|| local.name.clone());
        if planned.iter().any(|p| p.served_name == served_name) {
            return Err(Problem::user(format!(
                "two models are served as `{served_name}`: a request could not pick one"
            ))
            .hint(
                "give each its own --served-model-name (served_model_name in its [[model]] table)",
            )
            .into());
        }
        let parallel = args.parallel.or(entry.parallel).unwrap_or(4);
        let ctx_size = args.ctx_size.or(entry.ctx_size).unwrap_or(8192);
        let which = if several {
            format!(" for {served_name}")
        } else {
            String::new()
        };
        if parallel == 0 {
            return Err(Problem::user(format!("--parallel must be at least 1{which}")).into());
        }
        if ctx_size < parallel * 64 {
            return Err(Problem::user(format!(
                "--ctx-size {ctx_size} leaves under 64 tokens for each of the {parallel} parallel slots{which}"
            ))
            .hint("raise --ctx-size or lower --parallel")
            .into());
        }
        planned.push(PlannedModel {
            local,
            served_name,
            ctx_size,
            parallel,
            n_gpu_layers: args.n_gpu_layers.or(entry.n_gpu_layers),
            fim_tokens: args.fim_tokens.clone().or(entry.fim_tokens),
            fim_layout: match (args.fim_layout, entry.fim_layout) {
                (Some(FimLayoutArg::Psm), _) | (None, Some(FimLayoutName::Psm)) => {
                    Some(FimLayout::Psm)
                }
                (Some(FimLayoutArg::Spm), _) | (None, Some(FimLayoutName::Spm)) => {
                    Some(FimLayout::Spm)
                }
                (None, None) => None,
            },
            chat_template: args.chat_template.clone().or(entry.chat_template),
        });
    }
    Ok(planned)
}

/// The API key from the first line of a file.
fn read_key_file(path: &std::path::Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problem::user(format!(
            "cannot read the API key file {}: {e}",
            path.display()
        ))
        .hint(
            "point --api-key-file (api_key_file in the config) at a readable file holding the key",
        )
    })?;
    let key = text.lines().next().unwrap_or_default().trim();
    if key.is_empty() {
        return Err(
            Problem::user(format!("the API key file {} is empty", path.display()))
                .hint("write the key on its first line")
                .into(),
        );
    }
    Ok(Secret::new(key))
}

/// `--n-gpu-layers` as given; unset, every layer when there is a GPU to offload to (llama.cpp's
/// count: the repeating layers and the output layer), none otherwise.
fn resolve_gpu_layers(
    asked: Option<u32>,
    accelerator: &Accelerator,
    footprint: &Option<Footprint>,
) -> u32 {
    match asked {
        Some(n) => n,
        None if accelerator.has_gpu() => footprint.as_ref().map_or(u32::MAX, Footprint::layers),
        None => 0,
    }
}

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);
/// A request line and headers take milliseconds; a client slower than this is disconnected.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop): stop accepting, finish what is running.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing running requests");
}
