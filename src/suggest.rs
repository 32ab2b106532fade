//! "Did you mean ...?": the known name closest to a mistyped one, for error hints.

/// The candidate nearest to `typed` by edit distance, ignoring ASCII case, when it is near
/// enough to be a typo: at most a third of the typed length in edits (at least one). Ties go
/// to the earlier candidate, so the answer does not depend on anything but the list's order.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    let limit = (typed.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = strsim::levenshtein(&typed, &candidate.to_ascii_lowercase());
            (distance, candidate)
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// ` (did you mean `X`?)` for a hint, or nothing when no candidate is close.
pub fn did_you_mean<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(typed, candidates)
        .map(|name| format!("did you mean `{name}`? "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_name_and_strangers_find_none() {
        let names = [
            "codestral",
            "mistral-7b",
            "mixtral-8x7b",
            "ctx_size",
            "parallel",
        ];
        assert_eq!(closest("codestrl", names), Some("codestral"));
        assert_eq!(closest("Mistral-7B", names), Some("mistral-7b"));
        assert_eq!(closest("mistral-7", names), Some("mistral-7b"));
        assert_eq!(closest("ctx_sise", names), Some("ctx_size"));
        assert_eq!(closest("paralel", names), Some("parallel"));
        assert_eq!(closest("llama", names), None);
        assert_eq!(closest("x", names), None);
        assert_eq!(closest("", names), None);
        assert_eq!(
            did_you_mean("codestrl", names),
            "did you mean `codestral`? "
        );
        assert_eq!(did_you_mean("llama", names), "");
    }
}
