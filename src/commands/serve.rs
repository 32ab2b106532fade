//! `duo-selfhost serve`: resolve the model, bind, load it on the engine thread while /health
//! says 503, serve the OpenAI-compatible API, stop cleanly on SIGINT or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::cli::{FimLayoutArg, ServeArgs};
use crate::engine::prompt::{FimLayout, TemplateOrigin};
use crate::engine::{Engine, EngineConfig, Metrics};
use crate::error::{ExitStatus, Problem};
use crate::model_cache;
use crate::output::Printer;
use crate::server::{self, AppState, ServerConfig};

pub fn run(args: ServeArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let model = model_cache::resolve_local(&args.model)?;
    let served_name = args
        .served_model_name
        .clone()
        .unwrap_or_else(|| model.name.clone());
    if args.parallel == 0 {
        return Err(Problem::user("--parallel must be at least 1").into());
    }
    if args.ctx_size < args.parallel * 64 {
        return Err(Problem::user(format!(
            "--ctx-size {} leaves under 64 tokens for each of the {} parallel slots",
            args.ctx_size, args.parallel
        ))
        .hint("raise --ctx-size or lower --parallel")
        .into());
    }
    let host: IpAddr = args.host.parse().map_err(|_| {
        Problem::user(format!("--host {} is not an IP address", args.host))
            .hint("use 127.0.0.1 (this host only) or 0.0.0.0 (every interface)")
    })?;
    let api_key = args.api_key.clone().filter(|k| !k.is_empty());
    if !host.is_loopback() && api_key.is_none() {
        printer.warn(format!(
            "serving on {host} without an API key: anyone who can reach this port can use the model; set --api-key or DUO_SELFHOST_API_KEY"
        ));
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() as i32)
            .unwrap_or(4)
    });
    let chat_template = match &args.chat_template {
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
    let engine_config = EngineConfig {
        model_path: model.path.clone(),
        ctx_size: args.ctx_size,
        parallel: args.parallel,
        threads,
        n_gpu_layers: args.n_gpu_layers,
        fim_tokens: args.fim_tokens.clone(),
        fim_layout: args.fim_layout.map(|layout| match layout {
            FimLayoutArg::Psm => FimLayout::Psm,
            FimLayoutArg::Spm => FimLayout::Spm,
        }),
        chat_template,
        reuse_min_run: args.reuse_min_run,
        max_queue: args.max_queue,
    };
    let metrics = Arc::new(Metrics::default());
    let state = AppState::new(
        ServerConfig {
            served_name: served_name.clone(),
            api_key,
            max_body_bytes: args.max_body_bytes,
            body_timeout: std::time::Duration::from_secs(args.body_timeout),
        },
        metrics.clone(),
    );

    let runtime = super::runtime()?;
    runtime.block_on(async {
        let addr = SocketAddr::new(host, args.port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Problem::user(format!("cannot listen on {addr}: {e}"))
                .hint(format!("pick a free port: duo-selfhost serve --port {}", args.port.wrapping_add(1)))
        })?;
        printer.info(format!(
            "loading {} ({}) with {threads} threads, {} slots",
            model.name,
            model.path.display(),
            args.parallel
        ));

        // The model loads on its own thread; /health answers 503 until it is ready.
        let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel();
        let loading_state = state.clone();
        std::thread::spawn(move || {
            let result = Engine::start(engine_config, metrics).map(|engine| {
                let fim = match engine.info.fim.layout() {
                    Some(layout) => format!("native, {} layout", layout.label()),
                    None => engine.info.fim.label().to_string(),
                };
                let fallback = engine.template().origin == TemplateOrigin::Fallback;
                let context = format!(
                    "{} tokens per slot, cache reuse: {}",
                    engine.info.slot_context,
                    engine.info.kv_reuse.label()
                );
                let _ = loading_state.engine.set(engine);
                (fim, context, fallback)
            });
            let _ = loaded_tx.send(result);
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
                    Ok(Ok((fim, context, fallback))) => {
                        if fallback {
                            printer.warn(format!(
                                "{} has no chat template: chat requests use ChatML, which a base model was not trained on; pass the model's own with --chat-template FILE",
                                model.name
                            ));
                        }
                        printer.info(format!(
                            "serving {served_name} on http://{addr}/v1 (fill-in-the-middle: {fim}, {context})"
                        ));
                    }
                    Ok(Err(e)) => {
                        if let Some(bad) = e.downcast_ref::<crate::engine::prompt::PromptError>() {
                            return Err(Problem::user(bad.to_string())
                                .hint("name the model's FIM tokens by their exact text, e.g. --fim-tokens '<fim_prefix>,<fim_suffix>,<fim_middle>' (PRE,SUF with --fim-layout spm), or leave --fim-tokens out")
                                .into());
                        }
                        return Err(e.context(format!("could not load {}", model.path.display())));
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
