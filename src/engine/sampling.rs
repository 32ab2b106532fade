//! What the decode loop does with each sampled token, kept apart from the scheduler: the
//! sampler chain of a request (or none, for greedy decoding), the greedy argmax, whole UTF-8
//! characters out of token bytes, and where stop strings end or may begin.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;

use super::SamplingParams;

/// A sampler chain for the request, or None when it decodes greedily with no penalties: then
/// the token is the highest logit, found without llama.cpp's sampler, which first copies the
/// whole vocabulary into a candidate array for every token (about 1.5% of the engine's time
/// with 8 streams on SmolLM2, a 49,152-token vocabulary).
pub(super) fn build_sampler(model: &LlamaModel, params: &SamplingParams) -> Option<LlamaSampler> {
    let penalties = params.presence_penalty != 0.0 || params.frequency_penalty != 0.0;
    if params.temperature <= 0.0 && !penalties {
        return None;
    }
    let mut chain = Vec::new();
    if penalties {
        chain.push(LlamaSampler::penalties(
            model.n_vocab(),
            64,
            1.0,
            params.frequency_penalty,
            params.presence_penalty,
        ));
    }
    if params.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        if params.top_k > 0 {
            chain.push(LlamaSampler::top_k(params.top_k));
        }
        if params.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(params.top_p, 1));
        }
        chain.push(LlamaSampler::temp(params.temperature));
        chain.push(LlamaSampler::dist(params.seed.unwrap_or_else(rand::random)));
    }
    Some(LlamaSampler::chain_simple(chain))
}

/// The index of the highest logit, the first one on a tie (as llama.cpp's greedy sampler);
/// NaN never wins.
pub(super) fn argmax(logits: &[f32]) -> i32 {
    let mut best = 0;
    let mut best_logit = f32::NEG_INFINITY;
    for (i, &logit) in logits.iter().enumerate() {
        if logit > best_logit {
            best = i;
            best_logit = logit;
        }
    }
    best as i32
}

/// The complete UTF-8 text at the front of `bytes`, leaving a split character behind.
pub(super) fn take_utf8(bytes: &mut Vec<u8>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let s = s.to_string();
            bytes.clear();
            s
        }
        Err(e) if e.error_len().is_none() => {
            let valid = e.valid_up_to();
            let s = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            bytes.drain(..valid);
            s
        }
        Err(_) => {
            let s = String::from_utf8_lossy(bytes).into_owned();
            bytes.clear();
            s
        }
    }
}

/// Byte offset of the first stop string in `text`.
pub(super) fn earliest_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

/// Length of the longest end of `text` that could begin a stop string: held back until known.
pub(super) fn stop_prefix_len(text: &str, stops: &[String]) -> usize {
    let mut longest = 0;
    for stop in stops {
        for (k, _) in stop.char_indices().skip(1) {
            if k > longest && text.ends_with(&stop[..k]) {
                longest = k;
            }
        }
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_prefix_holds_back_a_possible_stop() {
        let stops = vec!["[INST]".to_string(), "\n\n".to_string()];
        assert_eq!(stop_prefix_len("code [IN", &stops), 3);
        assert_eq!(stop_prefix_len("code\n", &stops), 1);
        assert_eq!(stop_prefix_len("code", &stops), 0);
        assert_eq!(earliest_stop("a\n\nb[INST]", &stops), Some(1));
    }

    #[test]
    fn argmax_takes_the_first_highest_logit_and_never_nan() {
        assert_eq!(argmax(&[0.5, 2.0, -1.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -3.0, -2.0]), 2);
        assert_eq!(argmax(&[-f32::INFINITY, f32::NAN]), 0);
    }

    #[test]
    fn split_utf8_waits_for_the_rest() {
        let mut bytes = "é".as_bytes()[..1].to_vec();
        assert_eq!(take_utf8(&mut bytes), "");
        bytes.push("é".as_bytes()[1]);
        assert_eq!(take_utf8(&mut bytes), "é");
        assert!(bytes.is_empty());
    }
}
