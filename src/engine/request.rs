//! What a request asks of the engine, in plain types with no llama.cpp in them: the sampling
//! settings, the chat messages, and the recognition of GitLab's Codestral FIM-in-chat shape.
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

/// GitLab's self-hosted code completion sends Codestral FIM inside a chat message:
/// `<s>[SUFFIX]{suffix}[PREFIX]{prefix}` (suffix first). Returns (prefix, suffix) when the last
/// user message has that shape.
pub fn codestral_chat_fim(messages: &[ChatMessage]) -> Option<(String, String)> {
    let last = messages.iter().rev().find(|m| m.role == "user")?;
    let body = last.content.trim_start();
    let body = body.strip_prefix("<s>").unwrap_or(body).trim_start();
    let rest = body.strip_prefix("[SUFFIX]")?;
    let split = rest.find("[PREFIX]")?;
    let suffix = &rest[..split];
    let prefix = &rest[split + "[PREFIX]".len()..];
    let prefix = prefix.strip_suffix("[MIDDLE]").unwrap_or(prefix);
    Some((prefix.to_string(), suffix.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codestral_shape_is_recognised_suffix_first() {
        let messages = [
            ChatMessage::new("system", "fill the gap"),
            ChatMessage::new("user", "<s>[SUFFIX]\n    return x\n[PREFIX]def f(x):\n"),
        ];
        let (prefix, suffix) = codestral_chat_fim(&messages).unwrap();
        assert_eq!(prefix, "def f(x):\n");
        assert_eq!(suffix, "\n    return x\n");
    }

    #[test]
    fn ordinary_chat_is_not_fim() {
        assert!(codestral_chat_fim(&[ChatMessage::new("user", "What is [PREFIX]?")]).is_none());
        assert!(codestral_chat_fim(&[ChatMessage::new("user", "hello")]).is_none());
    }
}
