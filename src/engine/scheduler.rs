//! The scheduler on the engine thread: the slots (one llama.cpp sequence each, plus spares for
//! kept runs), admission to the slot whose cache saves the most evaluation, and the decode
//! step that batches every active slot. Loading and the public handle live in `thread.rs` and
//! `mod.rs`; what happens to one sampled token's text, in `sampling.rs`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::reuse::{self, ReusePlan};
use super::sampling::{argmax, build_sampler, earliest_stop, stop_prefix_len, take_utf8};
use super::{EngineConfig, Event, FinishReason, Job, Metrics, Usage};

/// How the context is cut up, decided when it is created.
pub(super) struct SlotLayout {
    pub parallel: u32,
    /// Spare sequences per slot for kept runs (0: prefix reuse only).
    pub runs_per_slot: u32,
    pub n_batch: u32,
    /// Each slot's share of the context.
    pub slot_context: u32,
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

pub(super) struct Scheduler<'m> {
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

impl<'m> Scheduler<'m> {
    pub(super) fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        layout: SlotLayout,
        config: &EngineConfig,
        metrics: Arc<Metrics>,
        outstanding: Arc<AtomicUsize>,
    ) -> Self {
        let SlotLayout {
            parallel,
            runs_per_slot,
            n_batch,
            slot_context,
        } = layout;
        Scheduler {
            model,
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
        }
    }

    pub(super) fn run(&mut self, jobs: mpsc::Receiver<Job>) {
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
