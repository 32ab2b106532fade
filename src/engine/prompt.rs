//! Turning requests into the exact tokens the engine evaluates: the GGUF's own Jinja chat
//! template (rendered with minijinja, not llama.cpp's built-in approximations), and the
//! fill-in-the-middle prompt, native or emulated. No decoding happens here.

pub use super::request::ChatMessage;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

/// The model's three fill-in-the-middle tokens, prefix-suffix-middle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FimTokens {
    pub pre: LlamaToken,
    pub suf: LlamaToken,
    pub mid: LlamaToken,
}

/// How `suffix` is honoured for this model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FimMode {
    /// The model's own FIM tokens (from the GGUF or `--fim-tokens`).
    Native(FimTokens),
    /// No FIM tokens: an instruction through the chat template carries prefix and suffix.
    Emulated,
}

impl FimMode {
    pub fn label(&self) -> &'static str {
        match self {
            FimMode::Native(_) => "native",
            FimMode::Emulated => "emulated",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("--fim-tokens wants three tokens PRE,SUF,MID separated by commas, got `{0}`")]
    FimTokenCount(String),
    #[error("`{0}` is not a single token in this model's vocabulary")]
    NotAToken(String),
    #[error("the model's chat template does not render: {0}")]
    Template(String),
}

/// The FIM mode of a model: `--fim-tokens` when given, else the GGUF's fim_pre/fim_suf/fim_mid
/// when all three exist (a lone fim_rep or fim_pad does not make a FIM model), else emulated.
pub fn detect_fim(model: &LlamaModel, fim_tokens: Option<&str>) -> Result<FimMode, PromptError> {
    if let Some(spec) = fim_tokens {
        let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(PromptError::FimTokenCount(spec.to_string()));
        }
        let pre = single_token(model, parts[0])?;
        let suf = single_token(model, parts[1])?;
        let mid = single_token(model, parts[2])?;
        return Ok(FimMode::Native(FimTokens { pre, suf, mid }));
    }
    let vocab = model.vocab();
    let (pre, suf, mid) = (vocab.fim_pre(), vocab.fim_suf(), vocab.fim_mid());
    if [pre, suf, mid].iter().all(|t| t.0 >= 0) {
        Ok(FimMode::Native(FimTokens { pre, suf, mid }))
    } else {
        Ok(FimMode::Emulated)
    }
}

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

/// The native FIM sequence, prefix-suffix-middle: `[BOS] PRE prefix SUF suffix MID`.
/// Pure over already tokenized text so tests can assert it token by token.
pub fn native_fim_sequence(
    bos: Option<LlamaToken>,
    fim: FimTokens,
    prefix: &[LlamaToken],
    suffix: &[LlamaToken],
) -> Vec<LlamaToken> {
    let mut out = Vec::with_capacity(prefix.len() + suffix.len() + 4);
    out.extend(bos);
    out.push(fim.pre);
    out.extend_from_slice(prefix);
    out.push(fim.suf);
    out.extend_from_slice(suffix);
    out.push(fim.mid);
    out
}

/// The system prompt of an emulated fill, after GitLab's own for chat models.
pub const EMULATED_FIM_SYSTEM: &str =
    "You complete code. You are given the code before and after a gap. \
Reply with only the code that fills the gap, with no explanation and no code fences.";

/// The messages of an emulated fill for a model without FIM tokens.
pub fn emulated_fim_messages(prefix: &str, suffix: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new("system", EMULATED_FIM_SYSTEM),
        ChatMessage::new(
            "user",
            format!(
                "Code before the gap:\n{prefix}\n\nCode after the gap:\n{suffix}\n\nWrite the code that goes in the gap."
            ),
        ),
    ]
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
        FimMode::Native(fim) => Ok(native_fim_sequence(
            bos(model),
            fim,
            &tokenize_text(model, prefix),
            &tokenize_text(model, suffix),
        )),
        FimMode::Emulated => template.tokens(model, &emulated_fim_messages(prefix, suffix)),
    }
}

/// The GGUF's `tokenizer.chat_template`, compiled once.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    bos_text: String,
    eos_text: String,
}

/// ChatML, for a GGUF without a template of its own.
const FALLBACK_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

impl ChatTemplate {
    pub fn from_model(model: &LlamaModel) -> Result<Self, PromptError> {
        let source = model
            .meta_val_str("tokenizer.chat_template")
            .unwrap_or_else(|_| FALLBACK_TEMPLATE.to_string());
        Self::new(
            &source,
            token_text(model, model.vocab().bos()),
            token_text(model, model.vocab().eos()),
        )
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
        })
    }

    /// The prompt text, with the assistant turn opened.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, PromptError> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| PromptError::Template(e.to_string()))?;
        template
            .render(minijinja::context! {
                messages => messages
                    .iter()
                    .map(|m| minijinja::context! { role => m.role.clone(), content => m.content.clone() })
                    .collect::<Vec<_>>(),
                add_generation_prompt => true,
                bos_token => self.bos_text.clone(),
                eos_token => self.eos_text.clone(),
            })
            .map_err(|e| PromptError::Template(e.to_string()))
    }

    /// The rendered prompt as tokens: the template's special tokens parsed as such, BOS added
    /// only when the vocabulary wants one and the template did not write it.
    pub fn tokens(
        &self,
        model: &LlamaModel,
        messages: &[ChatMessage],
    ) -> Result<Vec<LlamaToken>, PromptError> {
        let text = self.render(messages)?;
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
    fn native_sequence_is_pre_prefix_suf_suffix_mid() {
        let fim = FimTokens {
            pre: LlamaToken(1),
            suf: LlamaToken(2),
            mid: LlamaToken(3),
        };
        let seq = native_fim_sequence(
            Some(LlamaToken(0)),
            fim,
            &[LlamaToken(10)],
            &[LlamaToken(20), LlamaToken(21)],
        );
        let ids: Vec<i32> = seq.iter().map(|t| t.0).collect();
        assert_eq!(ids, [0, 1, 10, 2, 20, 21, 3]);
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
