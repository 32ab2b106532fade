//! `--only` and `--skip`: which checks a run prints, and which it runs besides because a printed
//! check needs them. Pure; running the checks is `runner`'s.

use std::collections::{HashMap, HashSet};

use super::Check;

/// Which checks to run and which to print, from `--only` and `--skip` (ids or prefixes such as
/// `gateway.*` or `gateway`). Checks that a printed check needs run too, unprinted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub run: HashSet<&'static str>,
    pub print: HashSet<&'static str>,
}

/// Whether `pattern` (an id, `prefix.*` or a bare component) names `id`.
pub fn pattern_matches(pattern: &str, id: &str) -> bool {
    let pattern = pattern.trim();
    if let Some(prefix) = pattern.strip_suffix(".*").or(pattern.strip_suffix('*')) {
        let prefix = prefix.trim_end_matches('.');
        return prefix.is_empty() || id == prefix || id.starts_with(&format!("{prefix}."));
    }
    id == pattern || id.starts_with(&format!("{pattern}."))
}

/// Applies `--only`/`--skip`; a pattern that names no check is an error listing the ids.
pub fn select(checks: &[Check], only: &[String], skip: &[String]) -> Result<Selection, String> {
    for pattern in only.iter().chain(skip) {
        if !checks.iter().any(|c| pattern_matches(pattern, c.id)) {
            let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
            // What a pattern could have been: an id, or a prefix of one written as `prefix.*`.
            let mut patterns: Vec<String> = Vec::new();
            for id in &ids {
                for (at, _) in id.match_indices('.') {
                    let prefix = format!("{}.*", &id[..at]);
                    if !patterns.contains(&prefix) {
                        patterns.push(prefix);
                    }
                }
                patterns.push(id.to_string());
            }
            let guess = crate::suggest::did_you_mean(pattern, patterns.iter().map(String::as_str));
            return Err(format!(
                "`{pattern}` names no check; {guess}the checks are: {}",
                ids.join(", ")
            ));
        }
    }
    let print: HashSet<&'static str> = checks
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|p| pattern_matches(p, c.id)))
        .filter(|c| !skip.iter().any(|p| pattern_matches(p, c.id)))
        .map(|c| c.id)
        .collect();
    let by_id: HashMap<&str, &Check> = checks.iter().map(|c| (c.id, c)).collect();
    let mut run = print.clone();
    let mut pending: Vec<&'static str> = print.iter().copied().collect();
    while let Some(id) = pending.pop() {
        if let Some(check) = by_id.get(id) {
            for dep in check.needs.iter().chain(check.after) {
                if run.insert(dep) {
                    pending.push(dep);
                }
            }
        }
    }
    Ok(Selection { run, print })
}

#[cfg(test)]
mod tests {
    use super::super::runner::test_checks::*;
    use super::*;

    #[test]
    fn selection_by_id_and_prefix_pulls_in_needs() {
        let checks = [
            check("model.models", &[], ok_body),
            check("model.chat", &["model.models"], ok_body),
            check("gateway.healthz", &[], ok_body),
            check("gateway.container.env", &[], ok_body),
        ];
        let s = select(&checks, &["model.chat".into()], &[]).unwrap();
        assert!(s.run.contains("model.models") && !s.print.contains("model.models"));
        let s = select(
            &checks,
            &["gateway.*".into()],
            &["gateway.container".into()],
        )
        .unwrap();
        assert_eq!(s.print, HashSet::from(["gateway.healthz"]));
        assert!(select(&checks, &["nothing.here".into()], &[]).is_err());
        assert!(!pattern_matches("model", "models.x"));
        assert!(pattern_matches("*", "models.x"));
    }
}
