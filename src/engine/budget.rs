//! What the models of one `serve` take from the machine, decided before any is loaded: the CPU
//! threads split between them (never more in all than were given), the memory each needs (its
//! weights plus its KV cache, from the GGUF's metadata) in RAM and, for the layers it offloads,
//! on the GPU, and the check that they fit, naming the flag that would make one fit.

use std::path::Path;

use super::devices::Accelerator;
use crate::error::Problem;
use crate::serve_config::ByteSize;

/// How much memory a model needs at a context size, before loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// The GGUF's size: llama.cpp maps the weights as they are in the file.
    pub weights: u64,
    /// KV cache bytes for one token of context, over every layer (keys and values, f16).
    pub kv_per_token: u64,
    pub ctx_size: u32,
    /// Repeating layers (`block_count`).
    pub n_layer: u32,
}

/// The part of a model's footprint in one place (RAM, or the GPUs it offloads to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub weights: u64,
    pub kv_per_token: u64,
    pub ctx_size: u32,
}

impl Part {
    pub fn kv_cache(&self) -> u64 {
        self.kv_per_token * u64::from(self.ctx_size)
    }

    pub fn total(&self) -> u64 {
        self.weights + self.kv_cache()
    }
}

impl Footprint {
    pub fn kv_cache(&self) -> u64 {
        self.kv_per_token * u64::from(self.ctx_size)
    }

    pub fn total(&self) -> u64 {
        self.weights + self.kv_cache()
    }

    /// Layers as llama.cpp counts them for `--n-gpu-layers`: the repeating ones and the output
    /// layer.
    pub fn layers(&self) -> u32 {
        self.n_layer + 1
    }

    /// What goes to the GPUs with `offloaded` layers (at most [`Self::layers`]). llama.cpp
    /// offloads from the end: the output layer first, then the last repeating layers, each with
    /// its KV cache. The weights are counted evenly per layer: an estimate (the token embeddings
    /// stay on the CPU, the output layer may be larger than a block).
    pub fn on_device(&self, offloaded: u32) -> Part {
        let layers = u64::from(self.layers());
        let offloaded = u64::from(offloaded).min(layers);
        let repeating = offloaded.saturating_sub(1);
        Part {
            weights: self.weights * offloaded / layers,
            kv_per_token: self.kv_per_token * repeating / u64::from(self.n_layer.max(1)),
            ctx_size: self.ctx_size,
        }
    }

    /// What stays in RAM with `offloaded` layers on the GPUs.
    pub fn in_ram(&self, offloaded: u32) -> Part {
        let device = self.on_device(offloaded);
        Part {
            weights: self.weights - device.weights,
            kv_per_token: self.kv_per_token - device.kv_per_token,
            ctx_size: self.ctx_size,
        }
    }

    /// The most layers (up to `wanted`) whose weights and KV cache fit in `room` bytes of GPU
    /// memory.
    pub fn most_layers_in(&self, room: u64, wanted: u32) -> u32 {
        (0..=wanted.min(self.layers()))
            .rev()
            .find(|&k| self.on_device(k).total() <= room)
            .unwrap_or(0)
    }
}

/// Reads the model's shape from its GGUF (vocabulary-only load: no weights are read).
pub fn footprint(path: &Path, ctx_size: u32) -> anyhow::Result<Footprint> {
    let weights = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
        .len();
    // Only the metadata: a vocabulary-only load leaves llama.cpp's per-layer shape unset.
    let model = super::load_vocab_only(path)?;
    let arch = model
        .meta_val_str("general.architecture")
        .unwrap_or_default();
    let meta = |key: &str| {
        model
            .meta_val_str(&format!("{arch}.{key}"))
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let missing = |key: &str| anyhow::anyhow!("{} has no {arch}.{key}", path.display());
    let n_layer = meta("block_count").ok_or_else(|| missing("block_count"))?;
    let n_head = meta("attention.head_count")
        .ok_or_else(|| missing("attention.head_count"))?
        .max(1);
    // Per-layer head counts (an array) are rare; the query heads are then an upper bound.
    let n_head_kv = meta("attention.head_count_kv").unwrap_or(n_head).max(1);
    let head_dim = meta("embedding_length").unwrap_or(0) / n_head;
    let key_length = meta("attention.key_length").unwrap_or(head_dim);
    let value_length = meta("attention.value_length").unwrap_or(head_dim);
    const F16_BYTES: u64 = 2;
    let kv_per_token = n_layer * n_head_kv * (key_length + value_length) * F16_BYTES;
    Ok(Footprint {
        weights,
        kv_per_token,
        ctx_size,
        n_layer: u32::try_from(n_layer).unwrap_or(u32::MAX - 1),
    })
}

/// The memory this host can give without swapping: MemAvailable from /proc/meminfo.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo.lines().find_map(|line| {
        let kib = line
            .strip_prefix("MemAvailable:")?
            .trim()
            .strip_suffix("kB")?;
        kib.trim().parse::<u64>().ok().map(|k| k * 1024)
    })
}

/// The largest context (a multiple of 256 tokens) whose KV cache fits in `room` bytes.
pub fn largest_context(part: &Part, room: u64) -> u32 {
    let tokens = room / part.kv_per_token.max(1);
    (tokens.min(u64::from(u32::MAX)) as u32) / 256 * 256
}

/// One model as the memory check sees it.
#[derive(Debug, Clone, Copy)]
pub struct Planned<'a> {
    /// The name it is served as.
    pub name: &'a str,
    /// Its slots: a context that fits must leave each of them 64 tokens.
    pub parallel: u32,
    pub footprint: Footprint,
    /// Layers offloaded to the GPUs.
    pub offloaded: u32,
}

/// What the models that fit take, and of how much: the line `serve` shows before loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryUse {
    /// Each model's weights and KV cache, in RAM and on the GPU.
    models: Vec<String>,
    /// The RAM budget and where it comes from (`--memory-limit`, or available memory).
    ram: Option<(u64, &'static str)>,
    ram_used: u64,
    vram: u64,
    vram_used: u64,
    devices: Vec<String>,
}

impl MemoryUse {
    /// Whether any model offloads layers to the GPUs.
    pub fn uses_gpu(&self) -> bool {
        self.vram_used > 0
    }

    /// `memory: a 1.2 GiB weights + 96 MiB KV cache; 1.3 GiB of 2.0 GiB (--memory-limit)`.
    pub fn summary(&self) -> String {
        let mut summary = format!("memory: {}", self.models.join(", "));
        if let Some((budget, source)) = self.ram {
            summary.push_str(&format!(
                "; {} of {} ({source})",
                ByteSize(self.ram_used),
                ByteSize(budget)
            ));
        }
        if self.vram_used > 0 {
            summary.push_str(&format!(
                "; {} of {} free on {}",
                ByteSize(self.vram_used),
                ByteSize(self.vram),
                self.devices.join(", ")
            ));
        }
        summary
    }
}

/// Where a part of a model's footprint goes, for the check and its message.
enum Place<'a> {
    /// RAM: `--memory-limit`, else MemAvailable.
    Ram { source: &'a str },
    /// The GPUs the offloaded layers go to: their free memory.
    Gpu { devices: &'a [String] },
}

/// Refuses, before anything loads, models whose weights and KV caches together exceed the
/// memory there is: in RAM (`limit`, else MemAvailable) the layers kept on the CPU, on the GPUs
/// (their free memory) the layers offloaded. Names the first model that does not fit and the
/// flag that would make it fit.
pub fn check_memory(
    models: &[Planned],
    limit: Option<u64>,
    accelerator: &Accelerator,
) -> Result<MemoryUse, Problem> {
    let ram = match limit {
        Some(limit) => Some((limit, "--memory-limit")),
        None => available_memory().map(|free| (free, "available memory")),
    };
    let vram = accelerator.memory_free;
    let (mut ram_used, mut vram_used) = (0u64, 0u64);
    let mut lines = Vec::new();
    for model in models {
        let (footprint, offloaded) = (&model.footprint, model.offloaded);
        let in_ram = footprint.in_ram(offloaded);
        if let Some((budget, source)) = ram {
            let left = budget.saturating_sub(ram_used);
            if in_ram.total() > left {
                let place = Place::Ram { source };
                return Err(does_not_fit(model, &place, left, budget, ram_used > 0));
            }
        }
        ram_used += in_ram.total();
        let mut line = format!(
            "{} {} weights + {} KV cache",
            model.name,
            ByteSize(in_ram.weights),
            ByteSize(in_ram.kv_cache())
        );
        if offloaded > 0 {
            let on_gpu = footprint.on_device(offloaded);
            let left = vram.saturating_sub(vram_used);
            if on_gpu.total() > left {
                let place = Place::Gpu {
                    devices: &accelerator.devices,
                };
                return Err(does_not_fit(model, &place, left, vram, vram_used > 0));
            }
            vram_used += on_gpu.total();
            line.push_str(&format!(
                " in RAM, {} weights + {} KV cache on the GPU",
                ByteSize(on_gpu.weights),
                ByteSize(on_gpu.kv_cache())
            ));
        }
        lines.push(line);
    }
    Ok(MemoryUse {
        models: lines,
        ram,
        ram_used,
        vram,
        vram_used,
        devices: accelerator.devices.clone(),
    })
}

/// Why `model` does not fit in `place`, where `left` of `budget` bytes is free, and the flag
/// that would make it fit.
fn does_not_fit(
    model: &Planned,
    place: &Place,
    left: u64,
    budget: u64,
    after_others: bool,
) -> Problem {
    let others = if after_others {
        " left after the models before it"
    } else {
        ""
    };
    let (name, footprint, offloaded) = (model.name, &model.footprint, model.offloaded);
    let (part, memory, what, whose) = match place {
        Place::Ram { source } => {
            let what = if offloaded == 0 {
                "its weights".to_string()
            } else {
                format!(
                    "with {offloaded} of {} layers offloaded, the weights it keeps in RAM",
                    footprint.layers()
                )
            };
            (
                footprint.in_ram(offloaded),
                "memory",
                what,
                format!("({source})"),
            )
        }
        Place::Gpu { devices } => (
            footprint.on_device(offloaded),
            "GPU memory",
            format!("its {offloaded} offloaded layers' weights"),
            format!("free on {}", devices.join(", ")),
        ),
    };
    let problem = Problem::user(format!(
        "{name} does not fit in {memory}: {what} ({}) and KV cache for {} tokens ({}) need {}, and {} of the {} {whose} is{others}",
        ByteSize(part.weights),
        part.ctx_size,
        ByteSize(part.kv_cache()),
        ByteSize(part.total()),
        ByteSize(left),
        ByteSize(budget),
    ));
    match place {
        Place::Ram { .. } => {
            let fitting = largest_context(&part, left.saturating_sub(part.weights));
            if fitting >= model.parallel * 64 && part.weights < left {
                problem.hint(format!(
                    "serve it with --ctx-size {fitting} (ctx_size in its [[model]] table) or less, or raise --memory-limit"
                ))
            } else {
                problem.hint(format!(
                    "its weights alone do not fit: serve {name} in a process of its own, on a host with more memory, or raise --memory-limit"
                ))
            }
        }
        Place::Gpu { .. } => match footprint.most_layers_in(left, offloaded) {
            0 => problem.hint(format!(
                "serve {name} on the CPU with --n-gpu-layers 0 (n_gpu_layers = 0 in its [[model]] table), or with a smaller --ctx-size"
            )),
            fitting => problem.hint(format!(
                "offload fewer layers: --n-gpu-layers {fitting} (n_gpu_layers in its [[model]] table) keeps the rest on the CPU; or a smaller --ctx-size"
            )),
        },
    }
}

/// Splits `total` threads between models of the given weights: one each at least, the rest in
/// proportion to their size (a bigger model has more to compute per token), largest remainder
/// first. None when there are more models than threads.
pub fn split_threads(total: usize, weights: &[u64]) -> Option<Vec<usize>> {
    let n = weights.len();
    if n == 0 || total < n {
        return None;
    }
    let spare = (total - n) as u128;
    let sum: u128 = weights.iter().map(|&w| u128::from(w.max(1))).sum();
    let shares: Vec<u128> = weights
        .iter()
        .map(|&w| spare * u128::from(w.max(1)))
        .collect();
    let mut split: Vec<usize> = shares.iter().map(|s| 1 + (s / sum) as usize).collect();
    let mut left = total - split.iter().sum::<usize>();
    let mut by_remainder: Vec<usize> = (0..n).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(shares[i] % sum));
    for &i in by_remainder.iter().cycle() {
        if left == 0 {
            break;
        }
        split[i] += 1;
        left -= 1;
    }
    Some(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_split_without_oversubscribing() {
        assert_eq!(split_threads(2, &[100, 250]), Some(vec![1, 1]));
        assert_eq!(split_threads(8, &[100, 700]), Some(vec![2, 6]));
        assert_eq!(split_threads(4, &[5]), Some(vec![4]));
        assert_eq!(split_threads(1, &[5, 5]), None);
        for total in 2..20 {
            let split = split_threads(total, &[7, 130, 1]).unwrap_or_default();
            if total >= 3 {
                assert_eq!(split.iter().sum::<usize>(), total);
                assert!(split.iter().all(|&t| t >= 1));
            }
        }
    }

    #[test]
    fn the_largest_context_fits_the_room() {
        let f = Part {
            weights: 0,
            kv_per_token: 1000,
            ctx_size: 0,
        };
        assert_eq!(largest_context(&f, 1_000_000), 768);
        assert_eq!(largest_context(&f, 100), 0);
    }

    /// SmolLM2 135M's shape: 30 blocks, 23 040 bytes of KV per token.
    fn smollm2(ctx_size: u32) -> Footprint {
        Footprint {
            weights: 31 * 3_000_000,
            kv_per_token: 23_040,
            ctx_size,
            n_layer: 30,
        }
    }

    #[test]
    fn offloaded_layers_move_their_weights_and_kv_to_the_device() {
        let f = smollm2(4096);
        assert_eq!(f.layers(), 31);
        // Nothing offloaded: all in RAM, as on a CPU build.
        assert_eq!(f.on_device(0).total(), 0);
        assert_eq!(f.in_ram(0).total(), f.total());
        // The output layer first: its weights, no KV cache.
        assert_eq!(f.on_device(1).weights, 3_000_000);
        assert_eq!(f.on_device(1).kv_cache(), 0);
        // Every layer (and more asked than there are): nothing left in RAM.
        for k in [31, 99, u32::MAX] {
            assert_eq!(f.on_device(k).total(), f.total());
            assert_eq!(f.in_ram(k).total(), 0);
        }
        // Half way: the parts add up.
        let (dev, ram) = (f.on_device(16), f.in_ram(16));
        assert_eq!(dev.kv_per_token, 23_040 / 2);
        assert_eq!(dev.total() + ram.total(), f.total());
    }

    fn cpu() -> Accelerator {
        Accelerator {
            backend: "CPU".into(),
            devices: Vec::new(),
            memory_free: 0,
        }
    }

    #[test]
    fn the_second_model_over_the_limit_is_named_with_the_context_that_fits() {
        let model = |name| Planned {
            name,
            parallel: 4,
            footprint: smollm2(4096),
            offloaded: 0,
        };
        let one = smollm2(4096).total();
        let fits = check_memory(&[model("a")], Some(2 * one), &cpu()).unwrap();
        assert!(!fits.uses_gpu());
        assert!(
            fits.summary()
                .starts_with("memory: a 89 MiB weights + 90 MiB KV cache; "),
            "{}",
            fits.summary()
        );
        let refused =
            check_memory(&[model("a"), model("b")], Some(one + one * 3 / 4), &cpu()).unwrap_err();
        assert!(
            refused
                .message
                .starts_with("b does not fit in memory: its weights (89 MiB)"),
            "{refused}"
        );
        assert!(refused
            .message
            .ends_with("(--memory-limit) is left after the models before it"));
        assert!(
            refused
                .hint
                .as_deref()
                .unwrap()
                .starts_with("serve it with --ctx-size "),
            "{refused:?}"
        );
    }

    #[test]
    fn the_most_layers_that_fit_the_device() {
        let f = smollm2(4096);
        assert_eq!(f.most_layers_in(u64::MAX, 31), 31);
        assert_eq!(f.most_layers_in(u64::MAX, 10), 10);
        assert_eq!(f.most_layers_in(0, 31), 0);
        let room = f.on_device(12).total();
        assert_eq!(f.most_layers_in(room, 31), 12);
        assert_eq!(f.most_layers_in(room - 1, 31), 11);
    }
}
