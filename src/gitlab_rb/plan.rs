//! The edit planner: byte-level edits of gitlab.rb that change only `gitlab_rails['env']`
//! (or the index assignments that override it), verified by parsing the result again, and
//! the Ruby string literals they write.

use std::collections::{BTreeMap, BTreeSet};

use super::env::{effective_env, unsupported, EnvChange, EnvError, EnvHash};
use super::parse::*;

/// A Ruby string literal that reads back exactly `value`.
pub fn ruby_string_literal(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    if quote == '"' {
        out.push('"');
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '#' if matches!(chars.peek(), Some('{') | Some('$') | Some('@')) => {
                    out.push_str("\\#")
                }
                _ => out.push(c),
            }
        }
        out.push('"');
    } else {
        out.push('\'');
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                _ => out.push(c),
            }
        }
        out.push('\'');
    }
    out
}

/// Checks a key is an environment variable name and a value can be written on one line.
pub fn validate_change(change: &EnvChange) -> Result<(), EnvError> {
    let key = change.key();
    let valid_key = !key.is_empty()
        && key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_key {
        return Err(EnvError::BadChange(format!(
            "`{key}` is not an environment variable name (letters, digits and `_`, not starting with a digit)"
        )));
    }
    if let EnvChange::Set { value, .. } = change {
        if let Some(c) = value.chars().find(|c| c.is_control() && *c != '\t') {
            let what = match c {
                '\n' => "a newline".to_string(),
                '\r' => "a carriage return".to_string(),
                '\0' => "a NUL byte".to_string(),
                other => format!("the control character U+{:04X}", other as u32),
            };
            return Err(EnvError::BadChange(format!(
                "the value for {key} contains {what}, which an environment variable file cannot hold"
            )));
        }
    }
    Ok(())
}

/// The variables GitLab reads as URLs, with an example value for the hint.
const URL_VARIABLES: &[(&str, &str)] = &[
    (
        "AI_GATEWAY_URL",
        "AI_GATEWAY_URL=http://aigw.example.com:5052",
    ),
    (
        "CUSTOMER_PORTAL_URL",
        "CUSTOMER_PORTAL_URL=https://customers.gitlab.com",
    ),
];

/// Checks a value GitLab reads as a URL is one: what omnibus would render without complaint
/// and GitLab would fail on only at its first Duo request. The value itself is not repeated,
/// in case it carries credentials.
pub fn validate_known_value(change: &EnvChange) -> Result<(), EnvError> {
    let EnvChange::Set { key, value } = change else {
        return Ok(());
    };
    let Some(&(_, example)) = URL_VARIABLES.iter().find(|(name, _)| name == key) else {
        return Ok(());
    };
    let reason = match url::Url::parse(value) {
        _ if value.is_empty() => Some(format!(
            "the value is empty (to remove the variable: duo-selfhost gitlab-rb unset {key})"
        )),
        Err(url::ParseError::RelativeUrlWithoutBase) => Some("the value has no scheme".to_string()),
        Err(e) => Some(format!("the value does not parse as one ({e})")),
        Ok(url) if !url.path().is_empty() && url.path().bytes().all(|b| b.is_ascii_digit()) => {
            Some("the value is a host and port with no scheme in front".to_string())
        }
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            Some(format!("the value's scheme is `{}`", url.scheme()))
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            Some("the value has no host".to_string())
        }
        Ok(_) => None,
    };
    match reason {
        Some(reason) => Err(EnvError::NotAUrl {
            key: key.clone(),
            reason,
            example,
        }),
        None => Ok(()),
    }
}

#[derive(Debug, Clone)]
pub(super) struct Edit {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) text: String,
}

pub(super) fn apply_edits(text: &str, mut edits: Vec<Edit>) -> Result<String, EnvError> {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(text.len() + 256);
    let mut at = 0;
    for edit in &edits {
        if edit.start < at {
            return Err(EnvError::Internal(format!(
                "two planned edits overlap near line {}",
                line_number(text, edit.start)
            )));
        }
        out.push_str(&text[at..edit.start]);
        out.push_str(&edit.text);
        at = edit.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// Plans the edit for `changes` and returns the new text, or `None` when nothing needs to
/// change. Only the last active hash and the index assignments after it are touched.
pub fn plan_edit(text: &str, changes: &[EnvChange]) -> Result<Option<String>, EnvError> {
    for change in changes {
        validate_change(change)?;
    }
    let file = parse(text)?;
    let before = file.effective();

    // The last change for each key wins, in the order the keys were first given.
    let mut desired: Vec<(String, Option<String>)> = Vec::new();
    for change in changes {
        let value = match change {
            EnvChange::Set { value, .. } => Some(value.clone()),
            EnvChange::Unset { .. } => None,
        };
        match desired.iter_mut().find(|(k, _)| k == change.key()) {
            Some(slot) => slot.1 = value,
            None => desired.push((change.key().to_string(), value)),
        }
    }
    desired.retain(|(k, v)| before.get(k) != v.as_deref());
    if desired.is_empty() {
        return Ok(None);
    }

    let last_hash = file.last_hash();
    let overriding: Vec<&IndexAssignment> = file.statements
        [last_hash.map(|i| i + 1).unwrap_or(0)..]
        .iter()
        .filter_map(|s| match s {
            Statement::Index(index) => Some(index),
            Statement::Hash(_) => None,
        })
        .collect();
    let hash = last_hash.and_then(|i| match &file.statements[i] {
        Statement::Hash(h) => Some(h),
        Statement::Index(_) => None,
    });

    let mut edits = Vec::new();
    let mut hash_plan = HashPlan::default();
    let mut new_entries: Vec<(String, String)> = Vec::new();
    for (key, value) in &desired {
        match value {
            Some(value) => {
                if let Some(index) = overriding.iter().rev().find(|ix| &ix.key == key) {
                    edits.push(Edit {
                        start: index.value_start,
                        end: index.value_end,
                        text: ruby_string_literal(value, index.value_quote),
                    });
                } else if let Some(pos) =
                    hash.and_then(|h| h.entries.iter().rposition(|e| &e.key == key))
                {
                    hash_plan.replaced.insert(pos, value.clone());
                } else {
                    new_entries.push((key.clone(), value.clone()));
                }
            }
            None => {
                for index in overriding.iter().filter(|ix| &ix.key == key) {
                    edits.push(remove_index_line(text, index)?);
                }
                if let Some(h) = hash {
                    for (pos, _) in h.entries.iter().enumerate().filter(|(_, e)| &e.key == key) {
                        hash_plan.removed.insert(pos);
                    }
                }
            }
        }
    }

    if let Some(h) = hash {
        hash_plan.added = new_entries;
        edits.extend(plan_hash_edits(text, h, &hash_plan)?);
    } else if !new_entries.is_empty() {
        match overriding.last() {
            Some(last_index) => edits.push(append_index_lines(text, last_index, &new_entries)),
            None => edits.push(new_block(text, file.template_example_end, &new_entries)),
        }
    }

    let new_text = apply_edits(text, edits)?;
    verify(&new_text, &before, &desired)?;
    Ok(Some(new_text))
}

/// Reads the new text back and checks it yields exactly the intended hash.
pub(super) fn verify(
    new_text: &str,
    before: &EnvHash,
    desired: &[(String, Option<String>)],
) -> Result<(), EnvError> {
    let mut expected = before.clone();
    for (key, value) in desired {
        match value {
            Some(v) => expected.insert(key, v),
            None => expected.remove(key),
        }
    }
    let after = effective_env(new_text)
        .map_err(|e| EnvError::Internal(format!("the edited file no longer parses ({e})")))?;
    if after.sorted() != expected.sorted() {
        return Err(EnvError::Internal(format!(
            "the edited file would yield {:?} instead of {:?}",
            after.sorted(),
            expected.sorted()
        )));
    }
    Ok(())
}

#[derive(Debug, Default)]
pub(super) struct HashPlan {
    pub(super) replaced: BTreeMap<usize, String>,
    pub(super) removed: BTreeSet<usize>,
    pub(super) added: Vec<(String, String)>,
}

pub(super) fn remove_index_line(text: &str, index: &IndexAssignment) -> Result<Edit, EnvError> {
    if !first_on_line(text, index.stmt_start) || !last_on_line(text, index.value_end) {
        return Err(unsupported(
            line_number(text, index.stmt_start),
            format!(
                "gitlab_rails['env']['{}'] shares its line with other code; move it to a line of its own",
                index.key
            ),
        ));
    }
    Ok(Edit {
        start: line_start(text, index.stmt_start),
        end: line_end(text, index.value_end),
        text: String::new(),
    })
}

pub(super) fn append_index_lines(
    text: &str,
    last: &IndexAssignment,
    entries: &[(String, String)],
) -> Edit {
    let at = line_end(text, last.value_end);
    let nl = newline_at(text, last.stmt_start);
    let indent = indent_of(text, last.stmt_start);
    let mut insert = String::new();
    if at == text.len() && !text.ends_with('\n') {
        insert.push_str(nl);
    }
    for (key, value) in entries {
        insert.push_str(&format!(
            "{indent}gitlab_rails['env'][{}] = {}{nl}",
            ruby_string_literal(key, last.key_quote),
            ruby_string_literal(value, last.value_quote)
        ));
    }
    Edit {
        start: at,
        end: at,
        text: insert,
    }
}

/// The comment line that marks a block duo-selfhost added.
pub const ADDED_BLOCK_COMMENT: &str =
    "# Added by duo-selfhost: environment for GitLab Rails (GitLab Duo Self-Hosted AI gateway).";

pub(super) fn new_block(text: &str, after: Option<usize>, entries: &[(String, String)]) -> Edit {
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let at = after.unwrap_or(text.len());
    let mut block = String::new();
    if at == text.len() && !text.is_empty() && !text.ends_with('\n') {
        block.push_str(nl);
    }
    if at > 0 {
        block.push_str(nl);
    }
    block.push_str(ADDED_BLOCK_COMMENT);
    block.push_str(nl);
    block.push_str("gitlab_rails['env'] = {");
    block.push_str(nl);
    for (i, (key, value)) in entries.iter().enumerate() {
        block.push_str(&format!(
            "  {} => {}{}{nl}",
            ruby_string_literal(key, '\''),
            ruby_string_literal(value, '\''),
            if i + 1 < entries.len() { "," } else { "" }
        ));
    }
    block.push('}');
    block.push_str(nl);
    Edit {
        start: at,
        end: at,
        text: block,
    }
}

/// Merges overlapping deletions (edits with no new text) into their union; other edits stay.
pub(super) fn merge_removals(edits: Vec<Edit>) -> Vec<Edit> {
    let (mut removals, mut others): (Vec<Edit>, Vec<Edit>) =
        edits.into_iter().partition(|e| e.text.is_empty());
    removals.sort_by_key(|e| (e.start, e.end));
    let mut merged: Vec<Edit> = Vec::with_capacity(removals.len());
    for edit in removals {
        match merged.last_mut() {
            Some(last) if edit.start < last.end => last.end = last.end.max(edit.end),
            _ => merged.push(edit),
        }
    }
    others.extend(merged);
    others
}

pub(super) fn plan_hash_edits(
    text: &str,
    hash: &HashAssignment,
    plan: &HashPlan,
) -> Result<Vec<Edit>, EnvError> {
    let mut edits = Vec::new();
    let entries = &hash.entries;
    let close_line = line_number(text, hash.close);

    for (pos, value) in &plan.replaced {
        let entry = &entries[*pos];
        edits.push(Edit {
            start: entry.value_start,
            end: entry.value_end,
            text: ruby_string_literal(value, entry.value_quote),
        });
    }

    for pos in &plan.removed {
        let entry = &entries[*pos];
        let own_lines = first_on_line(text, entry.key_start)
            && last_on_line(text, entry.end())
            && line_number(text, entry.key_start) > line_number(text, hash.open)
            && line_number(text, entry.end()) < close_line;
        if own_lines {
            edits.push(Edit {
                start: line_start(text, entry.key_start),
                end: line_end(text, entry.end()),
                text: String::new(),
            });
        } else if let Some(comma) = entry.comma {
            // Inline: remove the entry, its comma and the spaces after it.
            let mut end = comma + 1;
            while matches!(text.as_bytes().get(end), Some(b' ') | Some(b'\t')) {
                end += 1;
            }
            edits.push(Edit {
                start: entry.key_start,
                end,
                text: String::new(),
            });
        } else {
            // The last entry without a comma: remove from the comma of the nearest entry that
            // stays, so no comma is left dangling when the entries before it go too.
            let start = (0..*pos)
                .rev()
                .find(|p| !plan.removed.contains(p))
                .and_then(|p| entries[p].comma)
                .unwrap_or(entry.key_start);
            edits.push(Edit {
                start,
                end: entry.value_end,
                text: String::new(),
            });
        }
    }

    // Removals that now cover one another (inline entries removed together) become one.
    edits = merge_removals(edits);

    let survivors: Vec<usize> = (0..entries.len())
        .filter(|i| !plan.removed.contains(i))
        .collect();
    let trailing_comma = entries.last().is_some_and(|e| e.comma.is_some());
    // Removing the last entry by its lines leaves the new last one with a comma; drop it to keep
    // the file's style (no trailing comma).
    let last_removed_by_line = entries.last().is_some_and(|e| e.comma.is_none())
        && plan.removed.contains(&(entries.len() - 1))
        && edits.iter().any(|e| {
            e.text.is_empty() && e.start == line_start(text, entries[entries.len() - 1].key_start)
        });

    let anchor = survivors.last().map(|i| &entries[*i]);
    if plan.added.is_empty() {
        if last_removed_by_line {
            if let Some(comma) = anchor.and_then(|a| a.comma) {
                edits.push(Edit {
                    start: comma,
                    end: comma + 1,
                    text: String::new(),
                });
            }
        }
        return Ok(edits);
    }

    let style = anchor.or(entries.last());
    let key_quote = style.map(|e| e.key_quote).unwrap_or(Some('\''));
    let value_quote = style.map(|e| e.value_quote).unwrap_or('\'');
    // The text between a key and its value (` => `, `: `), copied when it sits on one line.
    let separator = style
        .map(|e| &text[e.key_end..e.value_start])
        .filter(|sep| !sep.contains('\n') && !sep.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            if key_quote.is_some() {
                " => ".into()
            } else {
                ": ".into()
            }
        });
    let format_entry = |key: &str, value: &str| -> String {
        let key_text = match key_quote {
            Some(q) => ruby_string_literal(key, q),
            None => key.to_string(),
        };
        format!(
            "{key_text}{separator}{}",
            ruby_string_literal(value, value_quote)
        )
    };

    let nl = newline_at(text, hash.open);
    let anchor_end = anchor.map(|a| a.end()).unwrap_or(hash.open + 1);
    let multiline = close_line > line_number(text, anchor_end);
    if multiline {
        let indent = match anchor {
            Some(a) if first_on_line(text, a.key_start) => indent_of(text, a.key_start).to_string(),
            _ => format!("{}  ", indent_of(text, hash.stmt_start)),
        };
        if let Some(a) = anchor {
            if a.comma.is_none() {
                edits.push(Edit {
                    start: a.value_end,
                    end: a.value_end,
                    text: ",".into(),
                });
            }
        }
        let at = line_end(text, anchor_end);
        let mut insert = String::new();
        for (i, (key, value)) in plan.added.iter().enumerate() {
            let comma = trailing_comma || i + 1 < plan.added.len();
            insert.push_str(&format!(
                "{indent}{}{}{nl}",
                format_entry(key, value),
                if comma { "," } else { "" }
            ));
        }
        edits.push(Edit {
            start: at,
            end: at,
            text: insert,
        });
    } else {
        let items: Vec<String> = plan.added.iter().map(|(k, v)| format_entry(k, v)).collect();
        match anchor {
            Some(a) => {
                // Removing the entries after the anchor may take the anchor's comma with them
                // (the last entry goes from the previous comma): then insert after its value.
                let comma_kept = a.comma.filter(|c| {
                    !edits
                        .iter()
                        .any(|e| e.text.is_empty() && e.start <= *c && *c < e.end)
                });
                let (at, text_to_insert) = if comma_kept.is_some() {
                    (
                        anchor_end,
                        format!(
                            " {}{}",
                            items.join(", "),
                            if trailing_comma { "," } else { "" }
                        ),
                    )
                } else {
                    (a.value_end, format!(", {}", items.join(", ")))
                };
                edits.push(Edit {
                    start: at,
                    end: at,
                    text: text_to_insert,
                });
            }
            None => {
                // Every entry is gone (or there were none): the new items replace the whole
                // inside of the braces, which already covers the removals planned above.
                edits.retain(|e| e.end <= hash.open || e.start > hash.close);
                edits.push(Edit {
                    start: hash.open + 1,
                    end: hash.close,
                    text: format!(" {} ", items.join(", ")),
                });
            }
        }
    }
    Ok(edits)
}
