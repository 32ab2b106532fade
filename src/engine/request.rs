//! What a request asks of the engine, in plain types with no llama.cpp in them: the input (chat
//! messages, text, token ids or a fill), the sampling settings, and the recognition of the FIM
//! text shapes GitLab's AI Gateway sends.
//! Free of llama.cpp so the request fuzz target (fuzz/) can compile this file on its own.

use serde::Serialize;

/// One chat message as the template sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// What a request asks the engine to continue, whatever wire shape it came in; the engine turns
/// it into tokens (`Engine::prepare`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Messages through the chat template. With `continue_final` the answer continues the last
    /// (assistant) message instead of opening a new turn.
    Chat {
        messages: Vec<ChatMessage>,
        continue_final: bool,
    },
    /// A plain completion prompt.
    Text(String),
    /// A prompt already in token ids, checked against the vocabulary.
    Tokens(Vec<u32>),
    /// Fill-in-the-middle, laid out in the loaded model's own format.
    Fill(Fill),
}

/// Sampling settings of one request (OpenAI's fields).
#[derive(Debug, Clone)]
pub struct SamplingParams {
    pub max_tokens: Option<u32>,
    /// 0 (or below) is greedy.
    pub temperature: f32,
    pub top_p: f32,
    /// 0 disables.
    pub top_k: i32,
    pub seed: Option<u32>,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// Never emitted; generation ends at the first.
    pub stop: Vec<String>,
    /// Keep generating past end-of-generation tokens (llama.cpp's and vLLM's extension; used by
    /// benchmarks that need a fixed number of tokens).
    pub ignore_eos: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            max_tokens: None,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: None,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            stop: Vec::new(),
            ignore_eos: false,
        }
    }
}

/// A fill-in-the-middle request: the code before and after the cursor. Every wire shape of one
/// (a `suffix` field, or a family's FIM text in a prompt or chat message) becomes this, and the
/// engine lays it out in the loaded model's own format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill {
    pub prefix: String,
    pub suffix: String,
}

impl Fill {
    fn new(prefix: &str, suffix: &str) -> Self {
        Fill {
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
        }
    }
}

/// The FIM text shapes GitLab's AI Gateway sends per model family (reference 3.4a), recognised
/// only when the whole text has the shape: the first marker at the start (after a BOS text),
/// the others in order, the closing one at the end.
pub fn fill_from_text(text: &str) -> Option<Fill> {
    codestral_fill(text)
        .or_else(|| psm_fill(text, "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"))
        .or_else(|| psm_fill(text, "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"))
        .or_else(|| code_llama_fill(text))
}

/// A chat request whose last message is a user message holding a FIM text shape.
pub fn fill_from_messages(messages: &[ChatMessage]) -> Option<Fill> {
    let last = messages.last().filter(|m| m.role == "user")?;
    fill_from_text(&last.content)
}

/// Codestral, Mistral and Mixtral: `<s>[SUFFIX]{suffix}[PREFIX]{prefix}` (suffix first), with
/// `</s>` or no BOS text, and a `[MIDDLE]` at the end in the text-completion variant.
fn codestral_fill(text: &str) -> Option<Fill> {
    let body = text.trim_start();
    let body = body
        .strip_prefix("<s>")
        .or_else(|| body.strip_prefix("</s>"))
        .unwrap_or(body);
    let rest = body.strip_prefix("[SUFFIX]")?;
    let (suffix, prefix) = rest.split_once("[PREFIX]")?;
    let prefix = prefix.strip_suffix("[MIDDLE]").unwrap_or(prefix);
    Some(Fill::new(prefix, suffix))
}

/// Prefix-suffix-middle text: `{pre}{prefix}{suf}{suffix}{mid}` (CodeGemma, DeepSeek Coder).
fn psm_fill(text: &str, pre: &str, suf: &str, mid: &str) -> Option<Fill> {
    let body = text.trim_start();
    let body = body.strip_prefix("<bos>").unwrap_or(body);
    let rest = body.strip_prefix(pre)?;
    let rest = rest.trim_end().strip_suffix(mid)?;
    let (prefix, suffix) = rest.split_once(suf)?;
    Some(Fill::new(prefix, suffix))
}

/// Code Llama: `<PRE> {prefix} <SUF>{suffix} <MID>`; the spaces around the markers belong to
/// the format, not to the code.
fn code_llama_fill(text: &str) -> Option<Fill> {
    let fill = psm_fill(text, "<PRE>", "<SUF>", "<MID>")?;
    let prefix = fill.prefix.strip_prefix(' ').unwrap_or(&fill.prefix);
    let prefix = prefix.strip_suffix(' ').unwrap_or(prefix);
    let suffix = fill.suffix.strip_suffix(' ').unwrap_or(&fill.suffix);
    Some(Fill::new(prefix, suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gitlab_fim_shape_is_recognised() {
        let (p, s) = ("def f(x):\n    ", "\n    return x\n");
        let expected = Some(Fill::new(p, s));
        for text in [
            format!("<s>[SUFFIX]{s}[PREFIX]{p}"),
            format!("</s>[SUFFIX]{s}[PREFIX]{p}[MIDDLE]"),
            format!("[SUFFIX]{s}[PREFIX]{p}"),
            format!("<|fim_prefix|>{p}<|fim_suffix|>{s}<|fim_middle|>"),
            format!("<PRE> {p} <SUF>{s} <MID>"),
            format!("<｜fim▁begin｜>{p}<｜fim▁hole｜>{s}<｜fim▁end｜>"),
        ] {
            assert_eq!(fill_from_text(&text), expected, "{text:?}");
        }
    }

    #[test]
    fn codestral_shape_is_recognised_suffix_first() {
        let messages = [
            ChatMessage::new("system", "fill the gap"),
            ChatMessage::new("user", "<s>[SUFFIX]\n    return x\n[PREFIX]def f(x):\n"),
        ];
        let fill = fill_from_messages(&messages).unwrap();
        assert_eq!(fill.prefix, "def f(x):\n");
        assert_eq!(fill.suffix, "\n    return x\n");
    }

    #[test]
    fn ordinary_chat_is_not_fim() {
        for text in [
            "What is [PREFIX]?",
            "hello",
            "Explain <|fim_prefix|> tokens",
            "<|fim_prefix|>a<|fim_suffix|>b",
            "Use <PRE> a <SUF>b <MID> like this.",
        ] {
            assert!(fill_from_text(text).is_none(), "{text:?}");
        }
        // A FIM shape in an earlier message, or from the assistant, is not this request's.
        let messages = [
            ChatMessage::new("user", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"),
            ChatMessage::new("assistant", "ok"),
        ];
        assert!(fill_from_messages(&messages).is_none());
    }
}
