//! The embedded llama.cpp engine: one dedicated thread owns the model and its context,
//! runs continuous batching over parallel sequences, and reuses each slot's KV cache: the
//! common prefix in place and, after an edit, the unchanged runs moved to their new positions.
//! It knows nothing of HTTP: a request arrives as an [`Input`] (chat, text, token ids or a
//! fill), is prepared into tokens on the caller's thread, and leaves as text events. This file
//! is the handle, its configuration and its events; the thread and the scheduler have their own.

pub mod budget;
mod cpu;
pub mod devices;
pub mod metrics;
pub mod prompt;
pub mod request;
pub mod reuse;
mod sampling;
mod scheduler;
mod thread;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

pub use cpu::{exec_faster_build, kernels_description};
pub use metrics::Metrics;
use prompt::{ChatTemplate, FimLayout, FimMode, PromptError, TemplateOrigin};
pub use request::{Input, SamplingParams};

/// llama.cpp's backend may be initialised once per process.
pub fn backend() -> anyhow::Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
    cpu::check()?;
    // llama.cpp's own logging goes through tracing (target llama_cpp_2), quiet unless -v.
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let backend =
        LlamaBackend::init().map_err(|e| anyhow::anyhow!("could not initialise llama.cpp: {e}"))?;
    Ok(BACKEND.get_or_init(|| backend))
}

/// Loads only the vocabulary of a GGUF: enough to tokenize and build prompts (tests, tools).
pub fn load_vocab_only(path: &std::path::Path) -> anyhow::Result<LlamaModel> {
    let params = LlamaModelParams::default().with_vocab_only(true);
    LlamaModel::load_from_file(backend()?, path, &params)
        .map_err(|e| anyhow::anyhow!("could not load {}: {e}", path.display()))
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub model_path: PathBuf,
    pub ctx_size: u32,
    pub parallel: u32,
    pub threads: i32,
    /// Layers to offload to the GPUs (llama.cpp's count, output layer included); more than the
    /// model has means all of them.
    pub n_gpu_layers: u32,
    pub fim_tokens: Option<String>,
    pub fim_layout: Option<FimLayout>,
    /// A Jinja chat template replacing the GGUF's (`--chat-template`).
    pub chat_template: Option<String>,
    /// Shortest cached run kept after an edit; 0 keeps only the common prefix.
    pub reuse_min_run: usize,
    /// Requests allowed to wait beyond the busy slots.
    pub max_queue: usize,
    /// The sampling seed of a request that gives none; `None`: a random one each time.
    pub seed: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens that came from the slot's KV cache instead of being evaluated.
    pub cached_tokens: u32,
}

/// What a request receives, in order: text pieces, then exactly one `Done` or `Failed`.
#[derive(Debug, Clone)]
pub enum Event {
    Text(String),
    Done { finish: FinishReason, usage: Usage },
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the server is busy: {0} requests are already waiting")]
    QueueFull(usize),
    #[error("the prompt is {prompt} tokens, longer than the context of {context} tokens per slot")]
    PromptTooLong { prompt: usize, context: u32 },
    #[error("the engine has stopped")]
    Stopped,
}

/// What the server needs to know about the loaded model.
pub struct ModelInfo {
    pub fim: FimMode,
    pub slot_context: u32,
    pub n_ctx_train: u32,
    pub parallel: u32,
    /// How much of a slot's cache a new prompt can keep.
    pub kv_reuse: KvReuse,
    /// Where the chat template came from (the GGUF's, a file, or the ChatML fallback).
    pub chat_template: TemplateOrigin,
    pub offload: Offload,
}

/// Where a loaded model's layers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offload {
    /// The backend of the devices layers went to (`Vulkan`, `CUDA`), or `CPU`.
    pub backend: String,
    /// Those devices (`Vulkan0`); empty when every layer is on the CPU.
    pub devices: Vec<String>,
    /// Layers as llama.cpp counts them: the repeating ones and the output layer.
    pub layers: u32,
    pub offloaded: u32,
}

impl Offload {
    /// As llama.cpp decides when loading: `min(n_gpu_layers, layers)` when it has a GPU device
    /// to offload to, none otherwise.
    pub fn decide(n_gpu_layers: u32, layers: u32, accelerator: &devices::Accelerator) -> Offload {
        if !accelerator.has_gpu() || n_gpu_layers == 0 {
            return Offload {
                backend: "CPU".into(),
                devices: Vec::new(),
                layers,
                offloaded: 0,
            };
        }
        Offload {
            backend: accelerator.backend.clone(),
            devices: accelerator.devices.clone(),
            layers,
            offloaded: n_gpu_layers.min(layers),
        }
    }

    /// `31/31 layers on Vulkan0`, `0/31 layers offloaded (CPU)`.
    pub fn label(&self) -> String {
        if self.offloaded == 0 {
            format!("0/{} layers offloaded (CPU)", self.layers)
        } else {
            format!(
                "{}/{} layers on {}",
                self.offloaded,
                self.layers,
                self.devices.join(", ")
            )
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvReuse {
    /// The common prefix, and runs of at least `min_run` tokens moved to their new place.
    ShiftedRuns { min_run: usize },
    /// Only the common prefix: `--reuse-min-run 0`, or a model whose KV cannot be shifted.
    Prefix,
}

impl KvReuse {
    pub fn label(self) -> &'static str {
        match self {
            KvReuse::ShiftedRuns { .. } => "shifted-runs",
            KvReuse::Prefix => "prefix",
        }
    }
}

/// What the engine runs: the prompt, how to sample, and tokens besides end-of-generation that
/// end the answer (a fill's own markers).
struct Job {
    prompt: Vec<LlamaToken>,
    params: SamplingParams,
    stop_tokens: Vec<LlamaToken>,
    events: UnboundedSender<Event>,
}

/// A request's input as the engine runs it, made by [`Engine::prepare`].
pub struct Prepared {
    tokens: Vec<LlamaToken>,
    /// Tokens besides end-of-generation that end the answer.
    stop_tokens: Vec<LlamaToken>,
    /// Set for a fill.
    pub fill: Option<FillRun>,
}

/// How a fill was run, and the suffix an emulated fill's answer is cleaned against.
#[derive(Debug, Clone)]
pub struct FillRun {
    pub mode: FimMode,
    pub suffix: String,
}

impl Prepared {
    fn plain(tokens: Vec<LlamaToken>) -> Self {
        Prepared {
            tokens,
            stop_tokens: Vec::new(),
            fill: None,
        }
    }
}

/// The handle the HTTP layer holds. Tokenising and template rendering happen on the caller's
/// thread (the vocabulary is immutable); decoding happens only on the engine thread.
pub struct Engine {
    model: Arc<LlamaModel>,
    template: ChatTemplate,
    pub info: ModelInfo,
    pub metrics: Arc<Metrics>,
    jobs: mpsc::Sender<Job>,
    /// Requests admitted and not finished (in a slot or waiting).
    outstanding: Arc<AtomicUsize>,
    max_queue: usize,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Engine {
    /// Loads the model on a new dedicated thread and returns once it is ready.
    pub fn start(config: EngineConfig, metrics: Arc<Metrics>) -> anyhow::Result<Engine> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let outstanding = Arc::new(AtomicUsize::new(0));
        let thread_metrics = metrics.clone();
        let thread_outstanding = outstanding.clone();
        let thread_config = config.clone();
        let thread = std::thread::Builder::new()
            .name("llama-engine".into())
            .spawn(move || {
                thread::engine_thread(
                    thread_config,
                    jobs_rx,
                    ready_tx,
                    thread_metrics,
                    thread_outstanding,
                )
            })?;
        let (model, template, info) = ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the engine thread stopped while loading the model"))??;
        // Several engines may share one Metrics: the gauge counts every model's slots.
        metrics
            .slots
            .fetch_add(u64::from(config.parallel), Ordering::Relaxed);
        Ok(Engine {
            model,
            template,
            info,
            metrics,
            jobs: jobs_tx,
            outstanding,
            max_queue: config.max_queue,
            thread: Some(thread),
        })
    }

    /// The tokens `input` runs as, the tokens that end its answer, and for a fill how it is
    /// run (in the model's own FIM layout, whatever shape it arrived in). Called on the
    /// caller's thread: the vocabulary and the template are immutable, and the engine thread
    /// is kept for decoding.
    pub fn prepare(&self, input: Input) -> Result<Prepared, PromptError> {
        let model = &*self.model;
        let prepared = match input {
            Input::Chat {
                messages,
                continue_final,
            } => Prepared::plain(self.template.tokens_as(model, &messages, continue_final)?),
            Input::Text(text) => Prepared::plain(prompt::completion_tokens(model, &text)),
            Input::Tokens(ids) => Prepared::plain(prompt::checked_tokens(model, &ids)?),
            Input::Fill(fill) => {
                let mode = self.info.fim;
                let tokens =
                    prompt::fim_tokens(model, &self.template, mode, &fill.prefix, &fill.suffix)?;
                Prepared {
                    tokens,
                    stop_tokens: prompt::fill_stop_tokens(model, mode),
                    fill: Some(FillRun {
                        mode,
                        suffix: fill.suffix,
                    }),
                }
            }
        };
        Ok(prepared)
    }

    /// Admits a request: checks its length and the queue bound, then hands it to the engine.
    pub fn submit(
        &self,
        prepared: Prepared,
        params: SamplingParams,
    ) -> Result<UnboundedReceiver<Event>, SubmitError> {
        let Prepared {
            tokens: prompt,
            stop_tokens,
            ..
        } = prepared;
        if prompt.len() >= self.info.slot_context as usize || prompt.is_empty() {
            return Err(SubmitError::PromptTooLong {
                prompt: prompt.len(),
                context: self.info.slot_context,
            });
        }
        let limit = self.info.parallel as usize + self.max_queue;
        let admitted = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            });
        if admitted.is_err() {
            return Err(SubmitError::QueueFull(self.max_queue));
        }
        let (tx, rx) = unbounded_channel();
        let job = Job {
            prompt,
            params,
            stop_tokens,
            events: tx,
        };
        if self.jobs.send(job).is_err() {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            return Err(SubmitError::Stopped);
        }
        Ok(rx)
    }

    /// Stops the engine thread once its running requests are done or abandoned.
    pub fn shutdown(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}
