//! The embedded llama.cpp engine: one dedicated thread owns the model and its context,
//! runs continuous batching over parallel sequences, and reuses cached prompt prefixes.
//! It knows nothing of HTTP: requests arrive as token lists and leave as text events.

pub mod metrics;
pub mod prompt;
pub mod request;

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

pub use metrics::Metrics;
use prompt::{ChatTemplate, FimMode};
pub use request::SamplingParams;

/// llama.cpp's backend may be initialised once per process.
pub fn backend() -> anyhow::Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
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
    pub n_gpu_layers: u32,
    pub fim_tokens: Option<String>,
    /// Requests allowed to wait beyond the busy slots.
    pub max_queue: usize,
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
}

struct Job {
    prompt: Vec<LlamaToken>,
    params: SamplingParams,
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
        let template = ChatTemplate::from_model(&model)?;
        metrics
            .slots
            .store(u64::from(config.parallel), Ordering::Relaxed);
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
        let fim = prompt::detect_fim(&model, config.fim_tokens.as_deref())?;
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
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(config.ctx_size))
        .with_n_batch(n_batch)
        .with_n_ubatch(n_batch)
        .with_n_seq_max(parallel)
        .with_kv_unified(false)
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
    // Without a unified KV cache each sequence owns an equal share of the context.
    let slot_context = ctx.n_ctx() / parallel;
    let info = ModelInfo {
        fim,
        slot_context,
        n_ctx_train: model.n_ctx_train(),
        parallel,
    };
    if ready.send(Ok((model.clone(), info))).is_err() {
        return;
    }
    let mut scheduler = Scheduler {
        model: &model,
        ctx,
        batch: LlamaBatch::new(n_batch as usize, 1),
        n_batch: n_batch as usize,
        slots: (0..parallel as i32)
            .map(|seq| Slot {
                seq,
                cached: Vec::new(),
                active: None,
            })
            .collect(),
        queue: VecDeque::new(),
        slot_context: slot_context as usize,
        metrics,
        outstanding,
    };
    scheduler.run(jobs);
}

struct Slot {
    seq: i32,
    /// Tokens whose keys and values are in this sequence's KV cache, in position order.
    cached: Vec<LlamaToken>,
    active: Option<Active>,
}

struct Active {
    job: Job,
    /// Tokens to evaluate next: the prompt's uncached tail, then each sampled token.
    pending: Vec<LlamaToken>,
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
                self.slots[i].active = None;
                self.finished_job();
                tracing::debug!(slot = i, "client went away; slot freed");
            }
        }
    }

    /// Moves waiting requests into free slots, each to the slot whose cache shares the
    /// longest prefix with its prompt, dropping only the diverging tail of that cache.
    fn admit(&mut self) {
        while let Some(job) = self.queue.front() {
            let best = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.active.is_none())
                .map(|(i, s)| (i, common_prefix(&s.cached, &job.prompt)))
                .max_by_key(|&(i, common)| (common, std::cmp::Reverse(i)));
            let Some((index, common)) = best else { return };
            let job = self.queue.pop_front().expect("front exists");
            // At least one prompt token must be evaluated to get logits to sample from.
            let keep = common.min(job.prompt.len() - 1);
            let slot = &mut self.slots[index];
            let trimmed =
                self.ctx
                    .clear_kv_cache_seq(Some(slot.seq as u32), Some(keep as u32), None);
            if !matches!(trimmed, Ok(true)) {
                let _ = self
                    .ctx
                    .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                slot.cached.clear();
            } else {
                slot.cached.truncate(keep);
            }
            let keep = slot.cached.len();
            let sampler = build_sampler(self.model, &job.params);
            self.metrics
                .prompt_tokens
                .fetch_add(job.prompt.len() as u64, Ordering::Relaxed);
            self.metrics
                .prompt_tokens_reused
                .fetch_add(keep as u64, Ordering::Relaxed);
            self.metrics
                .prompt_tokens_evaluated
                .fetch_add((job.prompt.len() - keep) as u64, Ordering::Relaxed);
            tracing::debug!(
                slot = index,
                prompt = job.prompt.len(),
                reused = keep,
                "request admitted"
            );
            slot.active = Some(Active {
                pending: job.prompt[keep..].to_vec(),
                prompt_tokens: job.prompt.len() as u32,
                cached_tokens: keep as u32,
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

    /// One decode over every active slot: one token for each generating slot, then prompt
    /// chunks in the room left, so a long prompt never stalls the others for long.
    fn step(&mut self) {
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
            let completes = take == active.pending.len();
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
                let slot = &mut self.slots[i];
                if let Some(active) = slot.active.take() {
                    let _ = active
                        .job
                        .events
                        .send(Event::Failed(format!("the model could not decode: {e}")));
                    self.outstanding.fetch_sub(1, Ordering::AcqRel);
                }
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
                let slot = &mut self.slots[i];
                let active = slot.active.take().expect("active slot");
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
        if model.vocab().is_eog(token) && !active.job.params.ignore_eos {
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

pub fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
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
