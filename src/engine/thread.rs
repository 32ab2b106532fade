//! The engine thread's start: it loads the model, decides its FIM mode and cache reuse,
//! compiles the chat template, creates the llama.cpp context sized for the slots, reports the
//! model ready, then runs the scheduler until every handle is gone. Nothing here runs per request.

use std::num::NonZeroU32;
use std::sync::atomic::AtomicUsize;
use std::sync::{mpsc, Arc};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

use super::prompt::{self, ChatTemplate};
use super::scheduler::{Scheduler, SlotLayout};
use super::{backend, devices, EngineConfig, Job, KvReuse, Metrics, ModelInfo, Offload};

/// What the thread reports once the model is ready to serve, or why it is not.
pub(super) type Ready = anyhow::Result<(Arc<LlamaModel>, ChatTemplate, ModelInfo)>;

pub(super) fn engine_thread(
    config: EngineConfig,
    jobs: mpsc::Receiver<Job>,
    ready: mpsc::Sender<Ready>,
    metrics: Arc<Metrics>,
    outstanding: Arc<AtomicUsize>,
) {
    let loaded = (|| -> anyhow::Result<_> {
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(config.n_gpu_layers);
        let model =
            LlamaModel::load_from_file(backend, &config.model_path, &params).map_err(|e| {
                crate::error::Problem::user(format!(
                    "llama.cpp refused the file ({e}); its log lines above say why"
                ))
                .hint("a file cut short or damaged (\"corrupted or incomplete\" above) needs downloading again; an architecture llama.cpp does not know needs another model")
            })?;
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
    // Compiled once, here; each request renders it on its own thread.
    let template = match &config.chat_template {
        Some(source) => ChatTemplate::from_source(&model, source, prompt::TemplateOrigin::File),
        None => ChatTemplate::from_model(&model),
    };
    let template = match template {
        Ok(template) => template,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
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
        chat_template: template.origin,
        offload: Offload::decide(
            config.n_gpu_layers,
            model.n_layer() + 1,
            &devices::Accelerator::from_devices(&devices::list().unwrap_or_default()),
        ),
    };
    if ready.send(Ok((model.clone(), template, info))).is_err() {
        return;
    }
    let layout = SlotLayout {
        parallel,
        runs_per_slot,
        n_batch,
        slot_context,
    };
    Scheduler::new(&model, ctx, layout, &config, metrics, outstanding).run(jobs);
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
