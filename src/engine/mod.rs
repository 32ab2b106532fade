//! The embedded llama.cpp engine: one dedicated thread owns the model and its context,
//! runs continuous batching over parallel sequences, and reuses each slot's KV cache: the
//! common prefix in place and, after an edit, the unchanged runs moved to their new positions.
//! It knows nothing of HTTP: requests arrive as token lists and leave as text events.

pub mod budget;
mod cpu;
pub mod devices;
pub mod metrics;
pub mod prompt;
pub mod request;
pub mod reuse;

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

pub use cpu::{exec_faster_build, kernels_description};
pub use metrics::Metrics;
use prompt::{ChatTemplate, FimLayout, FimMode};
pub use request::SamplingParams;
use reuse::ReusePlan;

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
                engine_thread(
                    thread_config,
                    jobs_rx,
                    ready_tx,
                    thread_metrics,
                    thread_outstanding,
                )
            })?;
        let (model, info) = ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the engine thread stopped while loading the model"))??;
        let template = match &config.chat_template {
            Some(source) => {
                ChatTemplate::from_source(&model, source, prompt::TemplateOrigin::File)?
            }
            None => ChatTemplate::from_model(&model)?,
        };
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

    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Admits a request: checks its length and the queue bound, then hands it to the engine.
    pub fn submit(
        &self,
        prompt: Vec<LlamaToken>,
        params: SamplingParams,
        stop_tokens: Vec<LlamaToken>,
    ) -> Result<UnboundedReceiver<Event>, SubmitError> {
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

type Ready = anyhow::Result<(Arc<LlamaModel>, ModelInfo)>;

fn engine_thread(
    config: EngineConfig,
    jobs: mpsc::Receiver<Job>,
    ready: mpsc::Sender<Ready>,
    metrics: Arc<Metrics>,
    outstanding: Arc<AtomicUsize>,
) {
    let loaded = (|| -> anyhow::Result<_> {
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(config.n_gpu_layers);
        let model = LlamaModel::load_from_file(backend, &config.model_path, &params)
            .map_err(|e| anyhow::anyhow!("could not load {}: {e}", config.model_path.display()))?;
        let fim = prompt::detect_fim(&model, config.fim_tokens.as_deref(), config.fim_layout)?;
        Ok((backend, Arc::new(model), fim))
    })();
    let (backend, model, fim) = match loaded {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let parallel = config.parallel.max(1);
    let n_batch = config.ctx_size.clamp(64, 512);
    let shiftable = kv_shiftable(&model);
    if !shiftable && config.reuse_min_run > 0 {
        tracing::warn!(
            "this model's KV cache cannot be shifted; only common prompt prefixes are reused"
        );
    }
    // Each kept run waits for its place in a spare sequence of its own, so a slot with k runs
    // uses k + 1 sequences; llama.cpp allows LLAMA_MAX_SEQ in all.
    let runs_per_slot = if shiftable && config.reuse_min_run > 0 {
        (MAX_SEQUENCES / parallel)
            .saturating_sub(1)
            .min(MAX_RUNS_PER_SLOT)
    } else {
        0
    };
    let kv_reuse = if runs_per_slot > 0 {
        KvReuse::ShiftedRuns {
            min_run: config.reuse_min_run,
        }
    } else {
        KvReuse::Prefix
    };
    // With shifted runs, one KV buffer shared by every sequence: moving a run between sequences
    // is then a change of the cells' owners, not a copy. The scheduler keeps each slot within
    // its share. Its price: a request batched with others attends over the shared buffer and
    // may round differently from the same request alone (greedy answers of a tiny model can
    // then differ); with prefix reuse only, each slot has a buffer of its own and answers do
    // not depend on what they were batched with.
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(config.ctx_size))
        .with_n_batch(n_batch)
        .with_n_ubatch(n_batch)
        .with_n_seq_max(parallel * (1 + runs_per_slot))
        .with_kv_unified(runs_per_slot > 0)
        .with_n_threads(config.threads)
        .with_n_threads_batch(config.threads);
    let ctx = match model.new_context(backend, ctx_params) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!(
                "could not create a llama.cpp context of {} tokens: {e}",
                config.ctx_size
            )));
            return;
        }
    };
    // Each slot owns an equal share of the context.
    let slot_context = ctx.n_ctx() / parallel;
    let info = ModelInfo {
        fim,
        slot_context,
        n_ctx_train: model.n_ctx_train(),
        parallel,
        kv_reuse,
        offload: Offload::decide(
            config.n_gpu_layers,
            model.n_layer() + 1,
            &devices::Accelerator::from_devices(&devices::list().unwrap_or_default()),
        ),
    };
    if ready.send(Ok((model.clone(), info))).is_err() {
        return;
    }
    let mut scheduler = Scheduler {
        model: &model,
        ctx,
        batch: LlamaBatch::new(n_batch as usize, 1),
        n_batch: n_batch as usize,
        slots: (0..parallel)
            .map(|seq| Slot {
                seq: seq as i32,
                spare: (0..runs_per_slot)
                    .map(|k| (parallel + seq * runs_per_slot + k) as i32)
                    .collect(),
                cached: Vec::new(),
                active: None,
                last_used: 0,
            })
            .collect(),
        queue: VecDeque::new(),
        slot_context: slot_context as usize,
        reuse_min_run: config.reuse_min_run,
        default_seed: config.seed,
        admitted: 0,
        metrics,
        outstanding,
    };
    scheduler.run(jobs);
}

/// llama.cpp's own limit on sequences in one context (LLAMA_MAX_SEQ).
const MAX_SEQUENCES: u32 = 256;
/// Runs kept per request at most: a nonce repeated in ten tags makes about eleven.
const MAX_RUNS_PER_SLOT: u32 = 16;

/// Whether llama.cpp can move this model's cached keys to other positions (its K-shift): not
/// for recurrent or hybrid memory, nor for multi-axis RoPE (llama_kv_cache::get_can_shift).
fn kv_shiftable(model: &LlamaModel) -> bool {
    use llama_cpp_2::model::RopeType;
    let multi_axis_rope = matches!(
        model.rope_type(),
        Some(RopeType::MRope | RopeType::IMRope | RopeType::Vision)
    );
    let per_layer_rope = model
        .meta_val_str("general.architecture")
        .is_ok_and(|arch| arch == "step35");
    !(model.is_recurrent() || model.is_hybrid() || multi_axis_rope || per_layer_rope)
}

struct Slot {
    seq: i32,
    /// Spare sequences that hold kept runs until the prompt reaches their new place.
    spare: Vec<i32>,
    /// Tokens whose keys and values are in this sequence's KV cache, in position order.
    cached: Vec<LlamaToken>,
    active: Option<Active>,
    /// When the slot last took a request (admission count): the least recent goes first.
    last_used: u64,
}

/// The rest of a prompt after the kept prefix, in order.
enum Segment {
    /// Tokens to evaluate.
    Evaluate(Vec<LlamaToken>),
    /// A kept run waiting in `spare`: moved by `shift` positions into the slot's sequence.
    Restore {
        spare: i32,
        shift: i32,
        tokens: Vec<LlamaToken>,
    },
}

struct Active {
    job: Job,
    /// Tokens to evaluate next: a part of the prompt, then each sampled token.
    pending: Vec<LlamaToken>,
    /// What follows `pending` in the prompt; a run is restored only once everything before it
    /// is in the cache, since llama.cpp appends each sequence's tokens after its last position.
    segments: VecDeque<Segment>,
    /// None for greedy decoding, which takes the highest logit directly (see `argmax`).
    sampler: Option<LlamaSampler>,
    /// Where this slot's logits are in the batch just decoded.
    logits_at: Option<i32>,
    prompt_tokens: u32,
    cached_tokens: u32,
    generated: u32,
    /// Bytes of a UTF-8 character split across tokens.
    partial_utf8: Vec<u8>,
    /// Text held back because it might be the start of a stop string.
    unsent: String,
    admitted_at: Instant,
    last_token_at: Option<Instant>,
}

struct Scheduler<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    slots: Vec<Slot>,
    queue: VecDeque<Job>,
    slot_context: usize,
    reuse_min_run: usize,
    default_seed: Option<u32>,
    admitted: u64,
    metrics: Arc<Metrics>,
    outstanding: Arc<AtomicUsize>,
}

impl Scheduler<'_> {
    fn run(&mut self, jobs: mpsc::Receiver<Job>) {
        let mut open = true;
        loop {
            // Block only when there is nothing to decode.
            if self.queue.is_empty() && self.slots.iter().all(|s| s.active.is_none()) {
                if !open {
                    return;
                }
                match jobs.recv() {
                    Ok(job) => self.queue.push_back(job),
                    Err(_) => return,
                }
            }
            loop {
                match jobs.try_recv() {
                    Ok(job) => self.queue.push_back(job),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            self.drop_abandoned();
            self.admit();
            self.publish_gauges();
            if self.slots.iter().any(|s| s.active.is_some()) {
                self.step();
            }
            self.publish_gauges();
        }
    }

    fn publish_gauges(&self) {
        let busy = self.slots.iter().filter(|s| s.active.is_some()).count();
        self.metrics
            .busy_slots
            .store(busy as u64, Ordering::Relaxed);
        self.metrics
            .queue_depth
            .store(self.queue.len() as u64, Ordering::Relaxed);
    }

    fn finished_job(&self) {
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
    }

    /// A client that went away frees its slot (or its queue place) at once.
    fn drop_abandoned(&mut self) {
        let before = self.queue.len();
        self.queue.retain(|job| !job.events.is_closed());
        for _ in self.queue.len()..before {
            self.finished_job();
        }
        for i in 0..self.slots.len() {
            let closed = self.slots[i]
                .active
                .as_ref()
                .is_some_and(|a| a.job.events.is_closed());
            if closed {
                self.release(i);
                self.finished_job();
                tracing::debug!(slot = i, "client went away; slot freed");
            }
        }
    }

    /// Frees a slot's request; runs still waiting in spare sequences give their cells back.
    fn release(&mut self, i: usize) -> Option<Active> {
        let active = self.slots[i].active.take()?;
        for segment in &active.segments {
            if let Segment::Restore { spare, .. } = segment {
                let _ = self.ctx.clear_kv_cache_seq(Some(*spare as u32), None, None);
            }
        }
        Some(active)
    }

    /// Moves waiting requests into free slots, each to the slot whose cache saves it the most
    /// evaluation (the least recently used among equals), keeping what the plan keeps.
    fn admit(&mut self) {
        while let Some(job) = self.queue.front() {
            let best = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.active.is_none())
                .map(|(i, s)| {
                    let min_run = if s.spare.is_empty() {
                        0
                    } else {
                        self.reuse_min_run
                    };
                    let plan = reuse::plan(&s.cached, &job.prompt, min_run, s.spare.len());
                    (i, plan)
                })
                .max_by_key(|(i, plan)| (plan.kept(), std::cmp::Reverse(self.slots[*i].last_used)));
            let Some((index, plan)) = best else { return };
            let mut job = self.queue.pop_front().expect("front exists");
            job.params.seed = job.params.seed.or(self.default_seed);
            let (plan, segments) = self.apply_plan(index, plan, &job.prompt);
            let kept = plan.kept();
            let shifted = plan.shifted();
            let sampler = build_sampler(self.model, &job.params);
            self.metrics
                .prompt_tokens
                .fetch_add(job.prompt.len() as u64, Ordering::Relaxed);
            self.metrics
                .prompt_tokens_reused
                .fetch_add(kept as u64, Ordering::Relaxed);
            self.metrics
                .prompt_tokens_reused_shifted
                .fetch_add(shifted as u64, Ordering::Relaxed);
            self.metrics
                .prompt_tokens_evaluated
                .fetch_add((job.prompt.len() - kept) as u64, Ordering::Relaxed);
            tracing::debug!(
                slot = index,
                prompt = job.prompt.len(),
                reused_prefix = plan.prefix,
                reused_shifted = shifted,
                runs = plan.runs.len(),
                evaluated = job.prompt.len() - kept,
                "request admitted"
            );
            self.admitted += 1;
            let slot = &mut self.slots[index];
            slot.last_used = self.admitted;
            slot.active = Some(Active {
                pending: Vec::new(),
                segments,
                prompt_tokens: job.prompt.len() as u32,
                cached_tokens: kept as u32,
                job,
                sampler,
                logits_at: None,
                generated: 0,
                partial_utf8: Vec::new(),
                unsent: String::new(),
                admitted_at: Instant::now(),
                last_token_at: None,
            });
        }
    }

    /// Prepares slot `index`'s cache for `prompt`: each kept run goes to a spare sequence, the
    /// cache is cut back to the kept prefix, and the rest of the prompt becomes segments.
    /// Returns the plan as applied (prefix only when llama.cpp could not cut the cache).
    fn apply_plan(
        &mut self,
        index: usize,
        mut plan: ReusePlan,
        prompt: &[LlamaToken],
    ) -> (ReusePlan, VecDeque<Segment>) {
        let slot = &mut self.slots[index];
        let seq = slot.seq;
        for (run, &spare) in plan.runs.iter().zip(&slot.spare) {
            let _ = self.ctx.kv_cache_seq_cp(
                seq,
                spare,
                Some(run.cached_at as u32),
                Some((run.cached_at + run.len) as u32),
            );
        }
        let trimmed = self
            .ctx
            .clear_kv_cache_seq(Some(seq as u32), Some(plan.prefix as u32), None);
        if !matches!(trimmed, Ok(true)) {
            // A memory that cannot drop part of a sequence starts over.
            let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
            for &spare in &slot.spare[..plan.runs.len()] {
                let _ = self.ctx.clear_kv_cache_seq(Some(spare as u32), None, None);
            }
            plan = ReusePlan::default();
        }
        slot.cached.truncate(plan.prefix);
        let mut segments = VecDeque::new();
        let mut at = plan.prefix;
        for (run, &spare) in plan.runs.iter().zip(&slot.spare) {
            if run.prompt_at > at {
                segments.push_back(Segment::Evaluate(prompt[at..run.prompt_at].to_vec()));
            }
            segments.push_back(Segment::Restore {
                spare,
                shift: run.prompt_at as i32 - run.cached_at as i32,
                tokens: prompt[run.prompt_at..run.prompt_at + run.len].to_vec(),
            });
            at = run.prompt_at + run.len;
        }
        segments.push_back(Segment::Evaluate(prompt[at..].to_vec()));
        (plan, segments)
    }

    /// Brings slot `i` to its next tokens to evaluate: kept runs whose place has come are moved
    /// into the slot's sequence (their cells change owner and position, nothing is evaluated).
    fn next_segment(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        let Some(active) = slot.active.as_mut() else {
            return;
        };
        while active.pending.is_empty() {
            match active.segments.pop_front() {
                None => return,
                Some(Segment::Evaluate(tokens)) => active.pending = tokens,
                Some(Segment::Restore {
                    spare,
                    shift,
                    tokens,
                }) => {
                    let _ = self.ctx.kv_cache_seq_add(spare, None, None, shift);
                    let _ = self.ctx.kv_cache_seq_cp(spare, slot.seq, None, None);
                    let _ = self.ctx.clear_kv_cache_seq(Some(spare as u32), None, None);
                    slot.cached.extend(tokens);
                }
            }
        }
    }

    /// One decode over every active slot: one token for each generating slot, then prompt
    /// chunks in the room left, so a long prompt never stalls the others for long.
    fn step(&mut self) {
        for i in 0..self.slots.len() {
            self.next_segment(i);
        }
        self.batch.clear();
        let mut room = self.n_batch;
        // Generating slots first (they need a single token), then prompts.
        let mut order: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].active.is_some())
            .collect();
        order.sort_by_key(|&i| self.slots[i].active.as_ref().map(|a| a.pending.len()));
        let mut in_batch = Vec::new();
        for i in order {
            if room == 0 {
                break;
            }
            let slot = &mut self.slots[i];
            let active = slot.active.as_mut().expect("active slot");
            let take = active.pending.len().min(room);
            // Logits only at the prompt's last token (or the sampled one).
            let completes = take == active.pending.len() && active.segments.is_empty();
            let start = slot.cached.len();
            for (k, token) in active.pending[..take].iter().enumerate() {
                let logits = completes && k + 1 == take;
                if logits {
                    active.logits_at = Some(self.batch.n_tokens());
                }
                self.batch
                    .add(*token, (start + k) as i32, &[slot.seq], logits)
                    .expect("batch sized to n_batch");
            }
            room -= take;
            in_batch.push((i, take));
        }
        self.metrics.decode_steps.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .decode_sequences
            .fetch_add(in_batch.len() as u64, Ordering::Relaxed);
        if let Err(e) = self.ctx.decode(&mut self.batch) {
            tracing::warn!("llama.cpp decode failed: {e}");
            for (i, _) in in_batch {
                if let Some(active) = self.release(i) {
                    let _ = active
                        .job
                        .events
                        .send(Event::Failed(format!("the model could not decode: {e}")));
                    self.outstanding.fetch_sub(1, Ordering::AcqRel);
                }
                let slot = &mut self.slots[i];
                let _ = self
                    .ctx
                    .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                slot.cached.clear();
            }
            return;
        }
        for (i, took) in in_batch {
            let slot = &mut self.slots[i];
            let active = slot.active.as_mut().expect("active slot");
            slot.cached.extend(active.pending.drain(..took));
            let Some(at) = active.logits_at.take() else {
                continue;
            };
            let token = match active.sampler.as_mut() {
                Some(sampler) => sampler.sample(&self.ctx, at),
                None => LlamaToken::new(argmax(self.ctx.get_logits_ith(at))),
            };
            let now = Instant::now();
            let finish = self.after_sample(i, token, now);
            if let Some((finish, text)) = finish {
                let active = self.release(i).expect("active slot");
                if !text.is_empty() {
                    let _ = active.job.events.send(Event::Text(text));
                }
                let _ = active.job.events.send(Event::Done {
                    finish,
                    usage: Usage {
                        prompt_tokens: active.prompt_tokens,
                        completion_tokens: active.generated,
                        cached_tokens: active.cached_tokens,
                    },
                });
                self.finished_job();
            }
        }
    }

    /// Handles a sampled token; returns the finish reason and the last text when done.
    fn after_sample(
        &mut self,
        i: usize,
        token: LlamaToken,
        now: Instant,
    ) -> Option<(FinishReason, String)> {
        let model = self.model;
        let slot = &mut self.slots[i];
        let cached = slot.cached.len();
        let active = slot.active.as_mut().expect("active slot");
        match active.last_token_at {
            None => self
                .metrics
                .time_to_first_token
                .observe(now - active.admitted_at),
            Some(prev) => self.metrics.time_per_output_token.observe(now - prev),
        }
        active.last_token_at = Some(now);
        let ends_fill = active.job.stop_tokens.contains(&token);
        if (model.vocab().is_eog(token) || ends_fill) && !active.job.params.ignore_eos {
            return Some((FinishReason::Stop, std::mem::take(&mut active.unsent)));
        }
        active.generated += 1;
        self.metrics
            .generated_tokens
            .fetch_add(1, Ordering::Relaxed);
        active
            .partial_utf8
            .extend(model.vocab().token_to_piece(token, false, None));
        let text = take_utf8(&mut active.partial_utf8);
        active.unsent.push_str(&text);
        if let Some(at) = earliest_stop(&active.unsent, &active.job.params.stop) {
            active.unsent.truncate(at);
            return Some((FinishReason::Stop, std::mem::take(&mut active.unsent)));
        }
        let out_of_tokens = active
            .job
            .params
            .max_tokens
            .is_some_and(|max| active.generated >= max);
        // The sampled token would be evaluated at position `cached`.
        let out_of_context = cached + 1 >= self.slot_context;
        if out_of_tokens || out_of_context {
            let mut rest = std::mem::take(&mut active.unsent);
            rest.push_str(&String::from_utf8_lossy(&active.partial_utf8));
            return Some((FinishReason::Length, rest));
        }
        let hold = stop_prefix_len(&active.unsent, &active.job.params.stop);
        let ready = active.unsent.len() - hold;
        if ready > 0 {
            let text: String = active.unsent.drain(..ready).collect();
            let _ = active.job.events.send(Event::Text(text));
        }
        active.pending.push(token);
        None
    }
}

/// A sampler chain for the request, or None when it decodes greedily with no penalties: then
/// the token is the highest logit, found without llama.cpp's sampler, which first copies the
/// whole vocabulary into a candidate array for every token (about 1.5% of the engine's time
/// with 8 streams on SmolLM2, a 49,152-token vocabulary).
fn build_sampler(model: &LlamaModel, params: &SamplingParams) -> Option<LlamaSampler> {
    let penalties = params.presence_penalty != 0.0 || params.frequency_penalty != 0.0;
    if params.temperature <= 0.0 && !penalties {
        return None;
    }
    let mut chain = Vec::new();
    if penalties {
        chain.push(LlamaSampler::penalties(
            model.n_vocab(),
            64,
            1.0,
            params.frequency_penalty,
            params.presence_penalty,
        ));
    }
    if params.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        if params.top_k > 0 {
            chain.push(LlamaSampler::top_k(params.top_k));
        }
        if params.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(params.top_p, 1));
        }
        chain.push(LlamaSampler::temp(params.temperature));
        chain.push(LlamaSampler::dist(params.seed.unwrap_or_else(rand::random)));
    }
    Some(LlamaSampler::chain_simple(chain))
}

/// The index of the highest logit, the first one on a tie (as llama.cpp's greedy sampler);
/// NaN never wins.
fn argmax(logits: &[f32]) -> i32 {
    let mut best = 0;
    let mut best_logit = f32::NEG_INFINITY;
    for (i, &logit) in logits.iter().enumerate() {
        if logit > best_logit {
            best = i;
            best_logit = logit;
        }
    }
    best as i32
}

/// The complete UTF-8 text at the front of `bytes`, leaving a split character behind.
fn take_utf8(bytes: &mut Vec<u8>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let s = s.to_string();
            bytes.clear();
            s
        }
        Err(e) if e.error_len().is_none() => {
            let valid = e.valid_up_to();
            let s = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            bytes.drain(..valid);
            s
        }
        Err(_) => {
            let s = String::from_utf8_lossy(bytes).into_owned();
            bytes.clear();
            s
        }
    }
}

/// Byte offset of the first stop string in `text`.
fn earliest_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

/// Length of the longest end of `text` that could begin a stop string: held back until known.
fn stop_prefix_len(text: &str, stops: &[String]) -> usize {
    let mut longest = 0;
    for stop in stops {
        for (k, _) in stop.char_indices().skip(1) {
            if k > longest && text.ends_with(&stop[..k]) {
                longest = k;
            }
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_prefix_holds_back_a_possible_stop() {
        let stops = vec!["[INST]".to_string(), "\n\n".to_string()];
        assert_eq!(stop_prefix_len("code [IN", &stops), 3);
        assert_eq!(stop_prefix_len("code\n", &stops), 1);
        assert_eq!(stop_prefix_len("code", &stops), 0);
        assert_eq!(earliest_stop("a\n\nb[INST]", &stops), Some(1));
    }

    #[test]
    fn argmax_takes_the_first_highest_logit_and_never_nan() {
        assert_eq!(argmax(&[0.5, 2.0, -1.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -3.0, -2.0]), 2);
        assert_eq!(argmax(&[-f32::INFINITY, f32::NAN]), 0);
    }

    #[test]
    fn split_utf8_waits_for_the_rest() {
        let mut bytes = "é".as_bytes()[..1].to_vec();
        assert_eq!(take_utf8(&mut bytes), "");
        bytes.push("é".as_bytes()[1]);
        assert_eq!(take_utf8(&mut bytes), "é");
        assert!(bytes.is_empty());
    }
}
