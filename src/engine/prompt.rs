//! Turning requests into the exact tokens the engine evaluates: the GGUF's own Jinja chat
//! template (rendered with minijinja, not llama.cpp's built-in approximations), and the
//! fill-in-the-middle prompt, native or emulated. No decoding happens here.

pub use super::request::ChatMessage;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

/// The model's fill-in-the-middle tokens. Mistral's suffix-first format has no middle token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FimTokens {
    pub pre: LlamaToken,
    pub suf: LlamaToken,
    pub mid: Option<LlamaToken>,
}

/// The order a model was trained to read a fill in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FimLayout {
    /// Prefix-suffix-middle: `PRE prefix SUF suffix MID` (CodeGemma, Code Llama, DeepSeek
    /// Coder, Qwen coder, StarCoder and most others).
    Psm,
    /// Suffix-prefix, Mistral's format: `SUF suffix PRE prefix` (Codestral, Mistral, Mixtral;
    /// Mistral tokenizers V2/V3). Typing at the cursor only appends to the prompt.
    Spm,
}

impl FimLayout {
    pub fn label(self) -> &'static str {
        match self {
            FimLayout::Psm => "psm",
            FimLayout::Spm => "spm",
        }
    }
}

/// How a fill is run for this model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FimMode {
    /// The model's own FIM tokens (from the GGUF or `--fim-tokens`) in its layout.
    Native {
        tokens: FimTokens,
        layout: FimLayout,
    },
    /// No FIM tokens: an instruction through the chat template carries suffix and prefix.
    Emulated,
}

impl FimMode {
    pub fn label(&self) -> &'static str {
        match self {
            FimMode::Native { .. } => "native",
            FimMode::Emulated => "emulated",
        }
    }

    pub fn layout(&self) -> Option<FimLayout> {
        match self {
            FimMode::Native { layout, .. } => Some(*layout),
            FimMode::Emulated => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("--fim-tokens wants the tokens PRE,SUF,MID (or PRE,SUF for --fim-layout spm) separated by commas, got `{0}`")]
    FimTokenCount(String),
    #[error("`{0}` is not a single token in this model's vocabulary")]
    NotAToken(String),
    #[error("the prefix-suffix-middle layout needs a middle token, and this model has none; use --fim-layout spm or name one in --fim-tokens")]
    NoMiddleToken,
    #[error("token id {id} is not in this model's vocabulary of {vocab} tokens")]
    TokenOutOfRange { id: u32, vocab: u32 },
    #[error("the model's chat template does not render: {0}")]
    Template(String),
}

/// Mistral's control tokens for its suffix-first FIM format.
const MISTRAL_FIM: [&str; 3] = ["[PREFIX]", "[SUFFIX]", "[MIDDLE]"];

/// The FIM mode of a model: `--fim-tokens` when given, else the GGUF's fim_pre/fim_suf/fim_mid
/// when all three exist (a lone fim_rep or fim_pad does not make a FIM model), else Mistral's
/// `[PREFIX]`/`[SUFFIX]` control tokens, else emulated. The layout is `layout` when given, else
/// suffix-prefix for Mistral's tokens and prefix-suffix-middle for every other family.
pub fn detect_fim(
    model: &LlamaModel,
    fim_tokens: Option<&str>,
    layout: Option<FimLayout>,
) -> Result<FimMode, PromptError> {
    let tokens = match fim_tokens {
        Some(spec) => {
            let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
            if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
                return Err(PromptError::FimTokenCount(spec.to_string()));
            }
            let mid = match parts.get(2) {
                Some(text) => Some(single_token(model, text)?),
                None => None,
            };
            Some(FimTokens {
                pre: single_token(model, parts[0])?,
                suf: single_token(model, parts[1])?,
                mid,
            })
        }
        None => gguf_fim_tokens(model),
    };
    let Some(tokens) = tokens else {
        return Ok(FimMode::Emulated);
    };
    let mistral = token_text(model, tokens.pre) == MISTRAL_FIM[0];
    let layout = layout.unwrap_or(if mistral {
        FimLayout::Spm
    } else {
        FimLayout::Psm
    });
    if layout == FimLayout::Psm && tokens.mid.is_none() {
        return Err(PromptError::NoMiddleToken);
    }
    Ok(FimMode::Native { tokens, layout })
}

fn gguf_fim_tokens(model: &LlamaModel) -> Option<FimTokens> {
    let vocab = model.vocab();
    let (pre, suf, mid) = (vocab.fim_pre(), vocab.fim_suf(), vocab.fim_mid());
    if [pre, suf, mid].iter().all(|t| t.0 >= 0) {
        return Some(FimTokens {
            pre,
            suf,
            mid: Some(mid),
        });
    }
    // llama.cpp does not name Mistral's FIM tokens in the GGUF; they are control tokens.
    let [pre, suf, mid] = MISTRAL_FIM.map(|text| single_token(model, text).ok());
    Some(FimTokens {
        pre: pre?,
        suf: suf?,
        mid,
    })
}

/// Tokens that end a fill, besides end-of-generation: the FIM markers themselves and the
/// families' end-of-fill and file-separator tokens the vocabulary has.
pub fn fill_stop_tokens(model: &LlamaModel, mode: FimMode) -> Vec<LlamaToken> {
    let FimMode::Native { tokens, .. } = mode else {
        return Vec::new();
    };
    let mut stops: Vec<LlamaToken> = [Some(tokens.pre), Some(tokens.suf), tokens.mid]
        .into_iter()
        .flatten()
        .collect();
    for text in END_OF_FILL {
        if let Ok(token) = single_token(model, text) {
            if !stops.contains(&token) {
                stops.push(token);
            }
        }
    }
    stops
}

/// End-of-fill texts by family: Code Llama's `<EOT>`, CodeGemma's file separator, Qwen's and
/// StarCoder's FIM padding and file markers, DeepSeek's end of sentence, Mistral's instructions.
const END_OF_FILL: &[&str] = &[
    "<EOT>",
    "▁<EOT>",
    "<|file_separator|>",
    "<|fim_pad|>",
    "<|file_sep|>",
    "<|repo_name|>",
    "<file_sep>",
    "<|endoftext|>",
    "<｜end▁of▁sentence｜>",
    "[INST]",
    "[/INST]",
];

/// The id of a token given by its exact text (special tokens included).
pub fn single_token(model: &LlamaModel, text: &str) -> Result<LlamaToken, PromptError> {
    let tokens = model.vocab().tokenize(text.as_bytes(), false, true);
    match tokens.as_slice() {
        [one] => Ok(*one),
        _ => Err(PromptError::NotAToken(text.to_string())),
    }
}

/// User text to tokens: special-token text inside it stays plain text, so a prompt cannot
/// smuggle control tokens in.
pub fn tokenize_text(model: &LlamaModel, text: &str) -> Vec<LlamaToken> {
    model.vocab().tokenize(text.as_bytes(), false, false)
}

/// A prompt given as token ids, each checked against the vocabulary.
pub fn checked_tokens(model: &LlamaModel, ids: &[u32]) -> Result<Vec<LlamaToken>, PromptError> {
    let vocab = model.n_vocab() as u32;
    ids.iter()
        .map(|&id| match i32::try_from(id) {
            Ok(token) if id < vocab => Ok(LlamaToken(token)),
            _ => Err(PromptError::TokenOutOfRange { id, vocab }),
        })
        .collect()
}

/// A plain completion prompt, with BOS when the vocabulary wants one.
pub fn completion_tokens(model: &LlamaModel, prompt: &str) -> Vec<LlamaToken> {
    let mut tokens = bos(model).into_iter().collect::<Vec<_>>();
    tokens.extend(tokenize_text(model, prompt));
    tokens
}

fn bos(model: &LlamaModel) -> Option<LlamaToken> {
    let vocab = model.vocab();
    (vocab.should_add_bos() && vocab.bos().0 >= 0).then(|| vocab.bos())
}

/// The native FIM sequence in `layout`: prefix-suffix-middle `[BOS] PRE prefix SUF suffix MID`,
/// or Mistral's suffix-prefix `[BOS] SUF suffix PRE prefix`, where typing at the cursor only
/// appends. Pure over already tokenized text so tests can assert it token by token.
pub fn native_fim_sequence(
    bos: Option<LlamaToken>,
    fim: FimTokens,
    layout: FimLayout,
    prefix: &[LlamaToken],
    suffix: &[LlamaToken],
) -> Vec<LlamaToken> {
    let mut out = Vec::with_capacity(prefix.len() + suffix.len() + 4);
    out.extend(bos);
    match layout {
        FimLayout::Psm => {
            out.push(fim.pre);
            out.extend_from_slice(prefix);
            out.push(fim.suf);
            out.extend_from_slice(suffix);
            out.extend(fim.mid);
        }
        FimLayout::Spm => {
            out.push(fim.suf);
            out.extend_from_slice(suffix);
            out.push(fim.pre);
            out.extend_from_slice(prefix);
        }
    }
    out
}

/// The system prompt of an emulated fill, after GitLab's own for chat models.
pub const EMULATED_FIM_SYSTEM: &str = "You complete code. You are given the code after a gap, \
then the code before it. Reply with only the code that goes in the gap, continuing exactly where \
the code before it stops, with no explanation and no code fences.";

/// The messages of an emulated fill for a model without FIM tokens: the code after the cursor
/// comes first, so that typing at the cursor only appends to the prompt.
pub fn emulated_fim_messages(prefix: &str, suffix: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new("system", EMULATED_FIM_SYSTEM),
        ChatMessage::new(
            "user",
            format!("Code after the gap:\n{suffix}\n\nCode before the gap:\n{prefix}"),
        ),
    ]
}

/// What a chat model answered to an emulated fill, made fit to insert at the cursor: the
/// code inside a fence when it wrote one (the prose around it dropped), a lead-in sentence
/// dropped, and the answer cut where it starts repeating the code after the cursor.
pub fn clean_emulated_fill(answer: &str, suffix: &str) -> String {
    let mut code = match answer.find("```") {
        Some(open) => {
            let after_fence = &answer[open + 3..];
            // The fence line may name a language: the code starts on the next line.
            let body = after_fence.split_once('\n').map_or("", |(_, body)| body);
            body.split("```").next().unwrap_or("").to_string()
        }
        None => drop_lead_in(answer).to_string(),
    };
    let first_suffix_line = suffix.lines().map(str::trim).find(|l| !l.is_empty());
    if let Some(line) = first_suffix_line {
        let mut at = 0;
        for piece in code.split_inclusive('\n') {
            if piece.trim() == line {
                code.truncate(at);
                break;
            }
            at += piece.len();
        }
    }
    let kept = code.trim_end_matches(['\n', ' ', '\t']).len();
    code.truncate(kept);
    code
}

/// An answer's first line when it is a sentence introducing the code ("Here is the code:").
fn drop_lead_in(answer: &str) -> &str {
    let Some((first, rest)) = answer.split_once('\n') else {
        return answer;
    };
    let line = first.trim();
    let words = line.split_whitespace().count();
    let starts_like_prose = line
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() && c.is_uppercase());
    if line.ends_with(':') && words >= 3 && starts_like_prose {
        rest
    } else {
        answer
    }
}

/// The tokens the engine evaluates for a fill-in-the-middle request.
pub fn fim_tokens(
    model: &LlamaModel,
    template: &ChatTemplate,
    mode: FimMode,
    prefix: &str,
    suffix: &str,
) -> Result<Vec<LlamaToken>, PromptError> {
    match mode {
        FimMode::Native { tokens, layout } => Ok(native_fim_sequence(
            bos(model),
            tokens,
            layout,
            &tokenize_text(model, prefix),
            &tokenize_text(model, suffix),
        )),
        FimMode::Emulated => template.tokens(model, &emulated_fim_messages(prefix, suffix)),
    }
}

/// The chat template, compiled once: the GGUF's `tokenizer.chat_template`, a file given with
/// `--chat-template`, or ChatML when the GGUF has none.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    bos_text: String,
    eos_text: String,
    pub origin: TemplateOrigin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateOrigin {
    Gguf,
    File,
    /// The GGUF has no template: ChatML, which a base model was not trained on.
    Fallback,
}

impl TemplateOrigin {
    pub fn label(self) -> &'static str {
        match self {
            TemplateOrigin::Gguf => "gguf",
            TemplateOrigin::File => "file",
            TemplateOrigin::Fallback => "fallback",
        }
    }
}

/// ChatML, for a GGUF without a template of its own.
const FALLBACK_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Marks where a continued assistant message ends in the rendered text.
const PREFILL_END: &str = "<<duo-selfhost:prefill-end>>";

impl ChatTemplate {
    /// The GGUF's template, else ChatML (`origin` says which).
    pub fn from_model(model: &LlamaModel) -> Result<Self, PromptError> {
        match model.meta_val_str("tokenizer.chat_template") {
            Ok(source) => Self::from_source(model, &source, TemplateOrigin::Gguf),
            Err(_) => Self::from_source(model, FALLBACK_TEMPLATE, TemplateOrigin::Fallback),
        }
    }

    pub fn from_source(
        model: &LlamaModel,
        source: &str,
        origin: TemplateOrigin,
    ) -> Result<Self, PromptError> {
        let mut template = Self::new(
            source,
            token_text(model, model.vocab().bos()),
            token_text(model, model.vocab().eos()),
        )?;
        template.origin = origin;
        Ok(template)
    }

    pub fn new(source: &str, bos_text: String, eos_text: String) -> Result<Self, PromptError> {
        let mut env = minijinja::Environment::new();
        // HF templates are Python Jinja: str methods (.strip(), .startswith()) and raise_exception.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        // Hugging Face renders chat templates with trim_blocks and lstrip_blocks on.
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| PromptError::Template(e.to_string()))?,
        );
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| PromptError::Template(e.to_string()))?;
        Ok(ChatTemplate {
            env,
            bos_text,
            eos_text,
            origin: TemplateOrigin::File,
        })
    }

    /// The prompt text, with the assistant turn opened.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, PromptError> {
        self.render_as(messages, false)
    }

    /// The prompt text; with `continue_final`, it ends inside the last (assistant) message, as
    /// Hugging Face's `continue_final_message`: rendered without a generation prompt and cut
    /// where that message's content ends, whatever the template writes to close a turn.
    pub fn render_as(
        &self,
        messages: &[ChatMessage],
        continue_final: bool,
    ) -> Result<String, PromptError> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| PromptError::Template(e.to_string()))?;
        let last = messages.len().saturating_sub(1);
        let rendered = template
            .render(minijinja::context! {
                messages => messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let content = if continue_final && i == last {
                            format!("{}{PREFILL_END}", m.content)
                        } else {
                            m.content.clone()
                        };
                        minijinja::context! { role => m.role.clone(), content => content }
                    })
                    .collect::<Vec<_>>(),
                add_generation_prompt => !continue_final,
                bos_token => self.bos_text.clone(),
                eos_token => self.eos_text.clone(),
            })
            .map_err(|e| PromptError::Template(e.to_string()))?;
        if !continue_final {
            return Ok(rendered);
        }
        match rendered.find(PREFILL_END) {
            Some(end) => Ok(rendered[..end].to_string()),
            None => Err(PromptError::Template(
                "the template does not write the last message, so it cannot be continued; send it without continue_final_message".into(),
            )),
        }
    }

    /// The rendered prompt as tokens: the template's special tokens parsed as such, BOS added
    /// only when the vocabulary wants one and the template did not write it.
    pub fn tokens(
        &self,
        model: &LlamaModel,
        messages: &[ChatMessage],
    ) -> Result<Vec<LlamaToken>, PromptError> {
        self.tokens_as(model, messages, false)
    }

    /// `tokens`, ending inside the last message when `continue_final` (see `render_as`).
    pub fn tokens_as(
        &self,
        model: &LlamaModel,
        messages: &[ChatMessage],
        continue_final: bool,
    ) -> Result<Vec<LlamaToken>, PromptError> {
        let text = self.render_as(messages, continue_final)?;
        let mut tokens = model.vocab().tokenize(text.as_bytes(), false, true);
        if let Some(bos) = bos(model) {
            if tokens.first() != Some(&bos) {
                tokens.insert(0, bos);
            }
        }
        Ok(tokens)
    }
}

fn token_text(model: &LlamaModel, token: LlamaToken) -> String {
    if token.0 < 0 {
        return String::new();
    }
    model
        .vocab()
        .text(token)
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_sequences_in_both_layouts() {
        let fim = FimTokens {
            pre: LlamaToken(1),
            suf: LlamaToken(2),
            mid: Some(LlamaToken(3)),
        };
        let ids = |layout| {
            native_fim_sequence(
                Some(LlamaToken(0)),
                fim,
                layout,
                &[LlamaToken(10)],
                &[LlamaToken(20), LlamaToken(21)],
            )
            .iter()
            .map(|t| t.0)
            .collect::<Vec<i32>>()
        };
        assert_eq!(ids(FimLayout::Psm), [0, 1, 10, 2, 20, 21, 3]);
        assert_eq!(ids(FimLayout::Spm), [0, 2, 20, 21, 1, 10]);
    }

    #[test]
    fn emulated_answers_lose_fences_lead_ins_and_the_repeated_suffix() {
        let suffix = "\n    return total\n";
        assert_eq!(
            clean_emulated_fill(
                "Here's the code that goes in the gap:\n```python\n    total += x\n```\nThis adds x.",
                suffix
            ),
            "    total += x"
        );
        assert_eq!(
            clean_emulated_fill("Here is the missing code:\n    total += x\n", suffix),
            "    total += x"
        );
        assert_eq!(
            clean_emulated_fill("    total += x\n    return total\n", suffix),
            "    total += x"
        );
        // Code stays as it is, its own colons and indentation included.
        assert_eq!(
            clean_emulated_fill("for x in xs:\n        total += x", suffix),
            "for x in xs:\n        total += x"
        );
        assert_eq!(clean_emulated_fill("x + 1)", ""), "x + 1)");
    }

    #[test]
    fn templates_get_python_string_methods_and_raise_exception() {
        let t = ChatTemplate::new(
            "{% if messages[0].role == 'bad' %}{{ raise_exception('no') }}{% endif %}{{ bos_token }}{% for m in messages %}{{ m.content.strip() }}|{% endfor %}",
            "<s>".into(),
            "</s>".into(),
        )
        .unwrap();
        assert_eq!(
            t.render(&[ChatMessage::new("user", "  hi  ")]).unwrap(),
            "<s>hi|"
        );
        assert!(t.render(&[ChatMessage::new("bad", "x")]).is_err());
    }
}
