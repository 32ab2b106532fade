//! The chat and completions request parsers on arbitrary bytes, and GitLab's Codestral
//! FIM-in-chat detector on what they accept: never panic, and what is accepted is within the
//! documented ranges (so the engine never sees a nonsensical setting).
#![no_main]

use duo_selfhost_fuzz::engine::request::{codestral_chat_fim, ChatMessage, SamplingParams};
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

/// A detected fill comes from the last user message: `[SUFFIX]` then the suffix, `[PREFIX]`
/// then the prefix, in that order.
fn check_fim(messages: &[ChatMessage]) {
    let Some((prefix, suffix)) = codestral_chat_fim(messages) else {
        return;
    };
    let last = messages.iter().rev().find(|m| m.role == "user").unwrap();
    let at_suffix = last.content.find("[SUFFIX]").expect("a fill has a [SUFFIX] marker");
    let suffix_at = at_suffix + "[SUFFIX]".len();
    assert!(last.content[suffix_at..].starts_with(&suffix));
    let rest = &last.content[suffix_at + suffix.len()..];
    assert!(rest.starts_with("[PREFIX]"));
    assert!(rest["[PREFIX]".len()..].starts_with(&prefix));
}
