//! The chat and completions request parsers on arbitrary bytes, and the detector of GitLab's
//! FIM text shapes on what they accept: never panic, and what is accepted is within the
//! documented ranges (so the engine never sees a nonsensical setting).
#![no_main]

use duo_selfhost_fuzz::engine::request::{fill_from_messages, ChatMessage, SamplingParams};
use duo_selfhost_fuzz::server::request::{parse_chat, parse_completion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(call) = parse_chat(data) {
        assert!(!call.messages.is_empty());
        assert_sane(&call.params);
        check_fim(&call.messages);
    }
    if let Ok(call) = parse_completion(data) {
        assert_sane(&call.params);
    }
    // The detector also sees raw text, as the content of the last user message.
    if let Ok(text) = std::str::from_utf8(data) {
        check_fim(&[ChatMessage::new("user", text)]);
    }
});

fn assert_sane(params: &SamplingParams) {
    assert!(params.max_tokens.is_none_or(|n| n >= 1));
    assert!((0.0..=2.0).contains(&params.temperature));
    assert!(params.top_p > 0.0 && params.top_p <= 1.0);
    assert!(params.top_k >= 0);
    assert!((-2.0..=2.0).contains(&params.presence_penalty));
    assert!((-2.0..=2.0).contains(&params.frequency_penalty));
    assert!(params.stop.len() <= 16 && params.stop.iter().all(|s| !s.is_empty()));
}

/// A detected fill comes from the last message, a user's, and both its parts are pieces of it,
/// the prefix before the suffix except in Mistral's suffix-first shape.
fn check_fim(messages: &[ChatMessage]) {
    let Some(fill) = fill_from_messages(messages) else {
        return;
    };
    let last = messages.last().unwrap();
    assert_eq!(last.role, "user");
    let prefix_at = last.content.find(&fill.prefix).expect("the prefix is in the text");
    let suffix_at = last.content.find(&fill.suffix).expect("the suffix is in the text");
    if !last.content.contains("[SUFFIX]") && !fill.prefix.is_empty() && !fill.suffix.is_empty() {
        assert!(prefix_at <= suffix_at + fill.suffix.len());
    }
}
