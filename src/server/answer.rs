//! The wire shapes of an answer: the chat completion, the chat chunk, the text completion, the
//! text chunk, and the pieces that open and close a stream. Each shape is one function, picked
//! once when the answer is created (after llama.cpp's server-task.cpp), and the engine's events
//! are rendered through them, whole or as server-sent events. Reading requests is `request.rs`'s.

use std::convert::Infallible;

use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use super::{unix_now, ApiError};
use crate::engine::{Event, FinishReason, Usage};

/// One answer on its way back: its id, time and model, and the shape it has on the wire.
pub(super) struct Answer {
    id: String,
    created: u64,
    model: String,
    shape: &'static Shape,
}

/// Everything that differs between the answer to a chat request and to a text completion.
struct Shape {
    /// OpenAI's id prefix.
    id_prefix: &'static str,
    /// The `object` of every chunk of a stream.
    chunk_object: &'static str,
    /// The whole answer at once.
    completion: fn(&Answer, &str, FinishReason, &Usage) -> Value,
    /// What a stream sends before the first piece of text.
    opening: fn(&Answer) -> Option<Value>,
    /// The chunk carrying one piece of text.
    piece: fn(&Answer, &str) -> Value,
    /// The chunk that ends the text, with the finish reason.
    finish: fn(&Answer, FinishReason) -> Value,
}

const CHAT: Shape = Shape {
    id_prefix: "chatcmpl",
    chunk_object: "chat.completion.chunk",
    completion: chat_completion,
    opening: chat_opening,
    piece: chat_piece,
    finish: chat_finish,
};

const TEXT: Shape = Shape {
    id_prefix: "cmpl",
    chunk_object: "text_completion",
    completion: text_completion,
    opening: |_| None,
    piece: text_piece,
    finish: text_finish,
};

impl Answer {
    /// The answer to /v1/chat/completions from `model`.
    pub(super) fn chat(model: &str) -> Self {
        Self::new(&CHAT, model)
    }

    /// The answer to /v1/completions from `model`.
    pub(super) fn text(model: &str) -> Self {
        Self::new(&TEXT, model)
    }

    fn new(shape: &'static Shape, model: &str) -> Self {
        Answer {
            id: format!("{}-{}", shape.id_prefix, random_id()),
            created: unix_now(),
            model: model.to_string(),
            shape,
        }
    }

    /// The fields every answer and chunk starts with, around its choices.
    fn envelope(&self, object: &str, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
    }

    /// The last chunk of a stream that asked for usage: no choices, the usage.
    fn usage_chunk(&self, usage: &Usage) -> Value {
        with_usage(self.envelope(self.shape.chunk_object, json!([])), usage)
    }

    /// The end of a stream: the finish chunk, the usage chunk when asked, then `[DONE]`.
    fn closing(&self, finish: FinishReason, usage: &Usage, include_usage: bool) -> Vec<SseEvent> {
        let mut out = vec![data((self.shape.finish)(self, finish))];
        if include_usage {
            out.push(data(self.usage_chunk(usage)));
        }
        out.push(done());
        out
    }
}

fn chat_completion(answer: &Answer, text: &str, finish: FinishReason, usage: &Usage) -> Value {
    let choice = json!({
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "logprobs": null,
        "finish_reason": finish.as_str(),
    });
    with_usage(answer.envelope("chat.completion", json!([choice])), usage)
}

fn chat_chunk(answer: &Answer, delta: Value, finish: Option<FinishReason>) -> Value {
    let finish = finish.map(FinishReason::as_str);
    let choice = json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish});
    answer.envelope(CHAT.chunk_object, json!([choice]))
}

fn chat_opening(answer: &Answer) -> Option<Value> {
    Some(chat_chunk(
        answer,
        json!({"role": "assistant", "content": ""}),
        None,
    ))
}

fn chat_piece(answer: &Answer, text: &str) -> Value {
    chat_chunk(answer, json!({ "content": text }), None)
}

fn chat_finish(answer: &Answer, finish: FinishReason) -> Value {
    chat_chunk(answer, json!({}), Some(finish))
}

fn text_completion(answer: &Answer, text: &str, finish: FinishReason, usage: &Usage) -> Value {
    let choice = json!({
        "index": 0,
        "text": text,
        "logprobs": null,
        "finish_reason": finish.as_str(),
    });
    with_usage(answer.envelope("text_completion", json!([choice])), usage)
}

fn text_chunk(answer: &Answer, text: &str, finish: Option<FinishReason>) -> Value {
    let finish = finish.map(FinishReason::as_str);
    let choice = json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish});
    answer.envelope(TEXT.chunk_object, json!([choice]))
}

fn text_piece(answer: &Answer, text: &str) -> Value {
    text_chunk(answer, text, None)
}

fn text_finish(answer: &Answer, finish: FinishReason) -> Value {
    text_chunk(answer, "", Some(finish))
}

fn with_usage(mut value: Value, usage: &Usage) -> Value {
    value["usage"] = json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    });
    value
}

fn data(value: Value) -> SseEvent {
    SseEvent::default().data(value.to_string())
}

fn done() -> SseEvent {
    SseEvent::default().data("[DONE]")
}

fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Waits for the whole answer. If the client goes away, this future is dropped with the
/// receiver, and the engine frees the slot at its next step.
pub(super) async fn whole(
    mut events: UnboundedReceiver<Event>,
    answer: Answer,
) -> Result<Json<Value>, ApiError> {
    let mut text = String::new();
    let (finish, usage) = loop {
        match events.recv().await {
            Some(Event::Text(piece)) => text.push_str(&piece),
            Some(Event::Done { finish, usage }) => break (finish, usage),
            Some(Event::Failed(message)) => {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    message,
                    "server_error",
                    "engine_error",
                ))
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the engine stopped before finishing",
                    "server_error",
                    "engine_error",
                ))
            }
        }
    };
    Ok(Json((answer.shape.completion)(
        &answer, &text, finish, &usage,
    )))
}

/// Server-sent events: the opening, one chunk per text piece, a final chunk with finish_reason,
/// a usage chunk when asked (stream_options.include_usage), then `data: [DONE]`. Dropping the
/// stream (client gone) drops the receiver, which frees the slot.
pub(super) fn stream(
    events: UnboundedReceiver<Event>,
    answer: Answer,
    include_usage: bool,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let opening = stream::iter((answer.shape.opening)(&answer).map(data));
    let body = stream::unfold(Some((events, answer)), move |state| async move {
        let (mut events, answer) = state?;
        match events.recv().await {
            Some(Event::Text(text)) => {
                let piece = data((answer.shape.piece)(&answer, &text));
                Some((vec![piece], Some((events, answer))))
            }
            Some(Event::Done { finish, usage }) => {
                Some((answer.closing(finish, &usage, include_usage), None))
            }
            Some(Event::Failed(message)) => {
                let error = json!({"error": {"message": message, "type": "server_error", "code": "engine_error"}});
                Some((vec![data(error), done()], None))
            }
            None => None,
        }
    });
    Sse::new(
        opening
            .chain(body.flat_map(stream::iter))
            .map(Ok::<_, Infallible>),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(shape: &'static Shape) -> Answer {
        Answer {
            id: "x-1".into(),
            created: 7,
            model: "m".into(),
            shape,
        }
    }

    const USAGE: Usage = Usage {
        prompt_tokens: 3,
        completion_tokens: 2,
        cached_tokens: 1,
    };

    #[test]
    fn each_shape_renders_its_own_wire_text() {
        let chat = answer(&CHAT);
        assert_eq!(
            (CHAT.completion)(&chat, "hi", FinishReason::Stop, &USAGE).to_string(),
            r#"{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"hi","role":"assistant"}}],"created":7,"id":"x-1","model":"m","object":"chat.completion","usage":{"completion_tokens":2,"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1},"total_tokens":5}}"#
        );
        assert_eq!(
            (CHAT.piece)(&chat, "hi").to_string(),
            r#"{"choices":[{"delta":{"content":"hi"},"finish_reason":null,"index":0,"logprobs":null}],"created":7,"id":"x-1","model":"m","object":"chat.completion.chunk"}"#
        );
        assert_eq!(
            (CHAT.finish)(&chat, FinishReason::Length)["choices"][0]["delta"],
            json!({})
        );
        assert!((CHAT.opening)(&chat).is_some());
        let text = answer(&TEXT);
        assert_eq!(
            (TEXT.finish)(&text, FinishReason::Length).to_string(),
            r#"{"choices":[{"finish_reason":"length","index":0,"logprobs":null,"text":""}],"created":7,"id":"x-1","model":"m","object":"text_completion"}"#
        );
        assert!((TEXT.opening)(&text).is_none());
        assert_eq!(
            text.usage_chunk(&USAGE).to_string(),
            r#"{"choices":[],"created":7,"id":"x-1","model":"m","object":"text_completion","usage":{"completion_tokens":2,"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1},"total_tokens":5}}"#
        );
    }
}
