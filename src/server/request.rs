//! The request bodies of /v1/chat/completions and /v1/completions: JSON in, checked plain values
//! out, or a message saying what is wrong (the server answers it as a 400); then each wire shape
//! as the engine's [`Input`] (a family's FIM text in a message or a prompt is a fill). No I/O,
//! no llama.cpp: the request fuzz target (fuzz/) compiles this file with `engine/request.rs`.

use serde::Deserialize;

use crate::engine::request::{
    fill_from_messages, fill_from_text, ChatMessage, Fill, Input, SamplingParams,
};

/// Why a body was refused, worded for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl Invalid {
    fn new(message: impl Into<String>) -> Self {
        Invalid(message.into())
    }
}

/// How the answer travels back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub stream: bool,
    /// A final usage chunk on a stream (`stream_options.include_usage`).
    pub include_usage: bool,
}

#[derive(Debug)]
pub struct ChatCall {
    /// The served model asked for (picks one when several are served).
    pub model: Option<String>,
    /// Never empty.
    pub messages: Vec<ChatMessage>,
    /// The last message is the assistant's and the answer continues it (an assistant prefill,
    /// as Duo Chat's ReAct prompt ends in `\nThought:`), instead of opening a new turn.
    pub continue_final: bool,
    pub params: SamplingParams,
    pub delivery: Delivery,
}

#[derive(Debug)]
pub struct CompletionCall {
    /// The served model asked for (picks one when several are served).
    pub model: Option<String>,
    pub prompt: Prompt,
    /// Present: fill-in-the-middle.
    pub suffix: Option<String>,
    pub params: SamplingParams,
    pub delivery: Delivery,
}

/// A completion prompt: text, or token ids (OpenAI's array-of-integers form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<u32>),
}

pub fn parse_chat(body: &[u8]) -> Result<ChatCall, Invalid> {
    let request: ChatRequest = decode(body)?;
    let params = request.sampling.to_params(request.max_completion_tokens)?;
    if request.messages.is_empty() {
        return Err(Invalid::new("messages must not be empty"));
    }
    let messages = request
        .messages
        .into_iter()
        .map(|m| {
            Ok(ChatMessage {
                role: m.role,
                content: flatten_content(m.content)?,
            })
        })
        .collect::<Result<Vec<_>, Invalid>>()?;
    let ends_with_assistant = messages.last().is_some_and(|m| m.role == "assistant");
    let continue_final = match (
        request.continue_final_message,
        request.add_generation_prompt,
    ) {
        (Some(true), Some(true)) => {
            return Err(Invalid::new(
                "continue_final_message and add_generation_prompt cannot both be true: continue the last assistant message, or open a new assistant turn",
            ))
        }
        (Some(true), _) if !ends_with_assistant => {
            return Err(Invalid::new(
                "continue_final_message needs the last message to be the assistant's",
            ))
        }
        (Some(explicit), _) => explicit,
        // As llama.cpp's server: a final assistant message is continued unless a new turn is
        // asked for.
        (None, add_generation_prompt) => ends_with_assistant && add_generation_prompt != Some(true),
    };
    Ok(ChatCall {
        model: request.model,
        messages,
        continue_final,
        params,
        delivery: request.sampling.delivery(),
    })
}

pub fn parse_completion(body: &[u8]) -> Result<CompletionCall, Invalid> {
    let request: CompletionRequest = decode(body)?;
    let params = request.sampling.to_params(None)?;
    let prompt = match request.prompt {
        PromptField::One(p) => Prompt::Text(p),
        PromptField::Many(mut list) if list.len() == 1 => Prompt::Text(list.remove(0)),
        PromptField::Tokens(ids) if ids.is_empty() => {
            return Err(Invalid::new("prompt must not be an empty list of tokens"))
        }
        PromptField::Tokens(ids) => Prompt::Tokens(ids),
        PromptField::Many(_) => {
            return Err(Invalid::new(
                "prompt must be one string or one list of token ids (batches of prompts are not supported)",
            ))
        }
    };
    Ok(CompletionCall {
        model: request.model,
        prompt,
        suffix: request.suffix,
        params,
        delivery: request.sampling.delivery(),
    })
}

/// What a chat request asks the engine. GitLab's code completion sends each family's FIM text
/// inside a chat message: that is a fill, not a chat.
pub fn chat_input(messages: Vec<ChatMessage>, continue_final: bool) -> Input {
    match fill_from_messages(&messages) {
        Some(fill) => Input::Fill(fill),
        None => Input::Chat {
            messages,
            continue_final,
        },
    }
}

/// What a completion request asks the engine. A suffix is never ignored: it makes the request
/// fill-in-the-middle, as does a prompt in a family's FIM text.
pub fn completion_input(prompt: Prompt, suffix: Option<String>) -> Result<Input, Invalid> {
    match (prompt, suffix) {
        (Prompt::Tokens(_), Some(_)) => {
            Err(Invalid::new("suffix needs a text prompt, not token ids"))
        }
        (Prompt::Tokens(ids), None) => Ok(Input::Tokens(ids)),
        (Prompt::Text(prefix), Some(suffix)) => Ok(Input::Fill(Fill { prefix, suffix })),
        (Prompt::Text(text), None) => Ok(match fill_from_text(&text) {
            Some(fill) => Input::Fill(fill),
            None => Input::Text(text),
        }),
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Invalid> {
    serde_json::from_slice(body).map_err(|e| Invalid(format!("the request body is not valid: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StopField {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The sampling fields both endpoints share.
#[derive(Debug, Deserialize)]
struct SamplingFields {
    max_tokens: Option<i64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<i32>,
    seed: Option<i64>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    stop: Option<StopField>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    n: Option<u32>,
    /// llama.cpp's and vLLM's extension: generate past end-of-generation tokens.
    #[serde(default)]
    ignore_eos: bool,
}

/// More stop strings than any client needs; each one is checked after every token.
const MAX_STOP_STRINGS: usize = 16;

impl SamplingFields {
    fn to_params(&self, max_tokens: Option<i64>) -> Result<SamplingParams, Invalid> {
        let max_tokens = match max_tokens.or(self.max_tokens) {
            None => None,
            Some(n) if n < 1 => {
                return Err(Invalid(format!("max_tokens must be at least 1, got {n}")))
            }
            Some(n) => Some(u32::try_from(n).map_err(|_| {
                Invalid(format!("max_tokens {n} is more than any model can produce"))
            })?),
        };
        let temperature = self.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(Invalid(format!(
                "temperature must be between 0 and 2, got {temperature}"
            )));
        }
        let top_p = self.top_p.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(Invalid(format!(
                "top_p must be above 0 and at most 1, got {top_p}"
            )));
        }
        for (name, value) in [
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ] {
            if let Some(v) = value {
                if !(-2.0..=2.0).contains(&v) {
                    return Err(Invalid(format!("{name} must be between -2 and 2, got {v}")));
                }
            }
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(Invalid::new("only n = 1 is supported"));
        }
        let stop: Vec<String> = match &self.stop {
            None => Vec::new(),
            Some(StopField::One(s)) => vec![s.clone()],
            Some(StopField::Many(list)) => list.clone(),
        };
        if stop.len() > MAX_STOP_STRINGS {
            return Err(Invalid(format!(
                "at most {MAX_STOP_STRINGS} stop strings are supported, got {}",
                stop.len()
            )));
        }
        Ok(SamplingParams {
            max_tokens,
            temperature,
            top_p,
            top_k: self.top_k.unwrap_or(0).max(0),
            // OpenAI seeds are 64-bit; llama.cpp takes 32.
            seed: self.seed.map(|s| s as u32),
            presence_penalty: self.presence_penalty.unwrap_or(0.0),
            frequency_penalty: self.frequency_penalty.unwrap_or(0.0),
            stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
            ignore_eos: self.ignore_eos,
        })
    }

    fn delivery(&self) -> Delivery {
        Delivery {
            stream: self.stream,
            include_usage: self
                .stream_options
                .as_ref()
                .is_some_and(|o| o.include_usage),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    content: Option<Content>,
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    model: Option<String>,
    messages: Vec<InMessage>,
    max_completion_tokens: Option<i64>,
    /// vLLM's and Hugging Face's names for an assistant prefill.
    continue_final_message: Option<bool>,
    add_generation_prompt: Option<bool>,
    #[serde(flatten)]
    sampling: SamplingFields,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PromptField {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u32>),
}

#[derive(Debug, Deserialize)]
struct CompletionRequest {
    model: Option<String>,
    prompt: PromptField,
    suffix: Option<String>,
    #[serde(flatten)]
    sampling: SamplingFields,
}

fn flatten_content(content: Option<Content>) -> Result<String, Invalid> {
    match content {
        None => Ok(String::new()),
        Some(Content::Text(text)) => Ok(text),
        Some(Content::Parts(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(t)) => text.push_str(&t),
                    (kind, _) => {
                        return Err(Invalid(format!(
                            "content parts of type `{kind}` are not supported; send text"
                        )))
                    }
                }
            }
            Ok(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        match parse_chat(body.as_bytes()) {
            Err(Invalid(message)) => message,
            Ok(call) => panic!("accepted {body}: {call:?}"),
        }
    }

    #[test]
    fn a_plain_chat_request_is_read_with_defaults() {
        let call =
            parse_chat(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert_eq!(call.messages.len(), 1);
        assert_eq!(call.params.max_tokens, None);
        assert_eq!(call.params.temperature, 1.0);
        assert!(!call.delivery.stream);
    }

    #[test]
    fn nonsense_is_refused_with_the_field_named() {
        let user = r#""messages":[{"role":"user","content":"hi"}]"#;
        assert!(refused(&format!("{{{user},\"max_tokens\":-5}}")).contains("max_tokens"));
        assert!(refused(&format!("{{{user},\"max_tokens\":99999999999}}")).contains("max_tokens"));
        assert!(refused(&format!("{{{user},\"temperature\":7}}")).contains("temperature"));
        assert!(refused(&format!("{{{user},\"top_p\":0}}")).contains("top_p"));
        assert!(refused(&format!("{{{user},\"n\":3}}")).contains("n = 1"));
        assert!(refused(&format!("{{{user},\"max_tokens\":\"ten\"}}")).contains("not valid"));
        let stops: Vec<String> = (0..17).map(|i| format!("\"s{i}\"")).collect();
        assert!(refused(&format!("{{{user},\"stop\":[{}]}}", stops.join(","))).contains("stop"));
        assert!(refused(r#"{"messages":[]}"#).contains("empty"));
        assert!(
            refused(r#"{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#)
                .contains("image_url")
        );
    }

    #[test]
    fn bodies_that_are_not_json_text_are_refused() {
        for body in [&b""[..], b"{", b"\xff\xfe{}", b"null", b"[]"] {
            assert!(parse_chat(body).is_err(), "{body:?}");
            assert!(parse_completion(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn completions_take_one_prompt_and_an_optional_suffix() {
        let call = parse_completion(br#"{"prompt":["def f("],"suffix":"\n","stream":true,"stream_options":{"include_usage":true}}"#).unwrap();
        assert_eq!(call.prompt, Prompt::Text("def f(".into()));
        assert_eq!(call.suffix.as_deref(), Some("\n"));
        assert!(call.delivery.stream && call.delivery.include_usage);
        assert!(parse_completion(br#"{"prompt":["a","b"]}"#).is_err());
        let call = parse_completion(br#"{"prompt":[1,2,3]}"#).unwrap();
        assert_eq!(call.prompt, Prompt::Tokens(vec![1, 2, 3]));
        assert!(parse_completion(br#"{"prompt":[]}"#).is_err());
        assert!(parse_completion(br#"{"prompt":[-1]}"#).is_err());
    }

    #[test]
    fn a_final_assistant_message_is_continued_unless_a_new_turn_is_asked_for() {
        let prefill =
            r#"[{"role":"user","content":"q"},{"role":"assistant","content":"\nThought:"}]"#;
        let call =
            |extra: &str| parse_chat(format!("{{\"messages\":{prefill}{extra}}}").as_bytes());
        assert!(call("").unwrap().continue_final);
        assert!(
            call(r#","continue_final_message":true,"add_generation_prompt":false"#)
                .unwrap()
                .continue_final
        );
        assert!(
            !call(r#","add_generation_prompt":true"#)
                .unwrap()
                .continue_final
        );
        assert!(
            !call(r#","continue_final_message":false"#)
                .unwrap()
                .continue_final
        );
        let both =
            call(r#","continue_final_message":true,"add_generation_prompt":true"#).unwrap_err();
        assert!(both.0.contains("cannot both be true"), "{both:?}");
        let user_last = parse_chat(
            br#"{"messages":[{"role":"user","content":"q"}],"continue_final_message":true}"#,
        )
        .unwrap_err();
        assert!(user_last.0.contains("assistant"), "{user_last:?}");
        let plain = parse_chat(br#"{"messages":[{"role":"user","content":"q"}]}"#).unwrap();
        assert!(!plain.continue_final);
    }

    #[test]
    fn each_wire_shape_becomes_its_engine_input() {
        let fill = |prefix: &str, suffix: &str| {
            Input::Fill(Fill {
                prefix: prefix.into(),
                suffix: suffix.into(),
            })
        };
        let chat = parse_chat(br#"{"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert_eq!(
            chat_input(chat.messages, chat.continue_final),
            Input::Chat {
                messages: vec![ChatMessage::new("user", "hi")],
                continue_final: false
            }
        );
        let codestral = vec![ChatMessage::new("user", "<s>[SUFFIX]b[PREFIX]a")];
        assert_eq!(chat_input(codestral, false), fill("a", "b"));
        let text = |t: &str| Prompt::Text(t.into());
        assert_eq!(
            completion_input(text("a"), Some("b".into())),
            Ok(fill("a", "b"))
        );
        assert_eq!(
            completion_input(text("<PRE> a <SUF>b <MID>"), None),
            Ok(fill("a", "b"))
        );
        assert_eq!(
            completion_input(text("a"), None),
            Ok(Input::Text("a".into()))
        );
        assert_eq!(
            completion_input(Prompt::Tokens(vec![1]), None),
            Ok(Input::Tokens(vec![1]))
        );
        let refused = completion_input(Prompt::Tokens(vec![1]), Some(String::new())).unwrap_err();
        assert!(
            refused.0.contains("suffix needs a text prompt"),
            "{refused:?}"
        );
    }
}
