//! `gitlab_rails['env']` as data: the errors, a change, the effective hash omnibus ends up
//! with, and `external_url`. The parser is in `parse.rs` and the edit planner in `plan.rs`;
//! the tests here cover all three through the file's real shapes.

use std::collections::BTreeMap;

use super::lexer::{tokenize, Token, TokenKind};
use super::parse::{at_statement_start, parse};

/// Why gitlab.rb cannot be read or edited safely. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("line {line}: {message}")]
    Unsupported { line: usize, message: String },
    #[error("{0}")]
    BadChange(String),
    /// A value GitLab reads as a URL that is not one (say `AI_GATEWAY_URL=aigw:5052`).
    #[error("{key} must be an http:// or https:// URL, and {reason}")]
    NotAUrl {
        key: String,
        reason: String,
        example: &'static str,
    },
    /// The planned edit did not read back as intended: a bug, and nothing is written.
    #[error("internal check failed: {0}")]
    Internal(String),
}

impl EnvError {
    pub fn line(&self) -> Option<usize> {
        match self {
            EnvError::Unsupported { line, .. } => Some(*line),
            _ => None,
        }
    }
}

pub(super) fn unsupported(line: usize, message: impl Into<String>) -> EnvError {
    EnvError::Unsupported {
        line,
        message: message.into(),
    }
}

/// One change asked for by `gitlab-rb set` / `unset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChange {
    Set { key: String, value: String },
    Unset { key: String },
}

impl EnvChange {
    pub fn set(key: impl Into<String>, value: impl Into<String>) -> Self {
        EnvChange::Set {
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn unset(key: impl Into<String>) -> Self {
        EnvChange::Unset { key: key.into() }
    }

    pub fn key(&self) -> &str {
        match self {
            EnvChange::Set { key, .. } | EnvChange::Unset { key } => key,
        }
    }
}

/// The effective env hash, in the order omnibus would hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvHash(pub Vec<(String, String)>);

impl EnvHash {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn insert(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }

    pub(super) fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub(super) fn sorted(&self) -> BTreeMap<&str, &str> {
        self.iter().collect()
    }
}

/// The effective `gitlab_rails['env']` of a gitlab.rb: the last active hash assignment, with
/// the index assignments after it applied on top. Commented lines do not count.
pub fn effective_env(text: &str) -> Result<EnvHash, EnvError> {
    Ok(parse(text)?.effective())
}

/// Whether gitlab.rb assigns `gitlab_rails['env']` at all (a hash or an index assignment).
pub fn has_env_assignment(text: &str) -> Result<bool, EnvError> {
    Ok(!parse(text)?.statements.is_empty())
}

/// The last active `external_url '...'` in a gitlab.rb, if it is a plain string.
pub fn external_url(text: &str) -> Option<String> {
    let tokens = tokenize(text).ok()?;
    let sig: Vec<&Token> = tokens
        .iter()
        .filter(|t| t.kind != TokenKind::Comment)
        .collect();
    let mut found = None;
    for i in 0..sig.len() {
        if !at_statement_start(&sig, i) || sig[i].kind != TokenKind::Ident("external_url".into()) {
            continue;
        }
        let mut j = i + 1;
        let paren = matches!(sig.get(j).map(|t| &t.kind), Some(TokenKind::Punct("(")));
        if paren {
            j += 1;
        }
        if let Some(TokenKind::Str {
            value,
            literal: true,
            ..
        }) = sig.get(j).map(|t| &t.kind)
        {
            found = Some(value.clone());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::parse::*;
    use super::super::plan::*;
    use super::*;

    fn env(text: &str) -> Vec<(String, String)> {
        effective_env(text).unwrap().0
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_templates_commented_env_example_is_recognised_however_spaced() {
        for comment in [
            "# gitlab_rails['env'] = {",
            "#gitlab_rails[\"env\"]={",
            "#  gitlab_rails[ 'env' ] =  {  ",
            "# gitlab_rails['env\"] = {\r",
        ] {
            assert!(opens_commented_env(comment), "{comment:?}");
        }
        for comment in [
            "gitlab_rails['env'] = {",
            "# gitlab_rails['env'] = {}",
            "# gitlab_rails['envs'] = {",
            "# gitlab_rails['env'] = { 'A' => 'b' }",
            "# gitlab_rails['env'] =",
            "# sidekiq['env'] = {",
        ] {
            assert!(!opens_commented_env(comment), "{comment:?}");
        }
        assert!(closes_commented_hash("# }") && closes_commented_hash("#}  "));
        assert!(!closes_commented_hash("# },") && !closes_commented_hash("}"));
    }

    #[test]
    fn one_line_hash_with_every_entry_replaced() {
        // Found by tests/gitlab_rb_props.rs: the removal and the new items used to overlap.
        let text = "gitlab_rails['env'] = { 'A' => '' }\n";
        let changes = [EnvChange::unset("A"), EnvChange::set("B", "b")];
        let new = plan_edit(text, &changes).unwrap().unwrap();
        assert_eq!(new, "gitlab_rails['env'] = { 'B' => 'b' }\n");
    }

    #[test]
    fn one_line_hash_losing_its_last_two_entries() {
        // Found by tests/gitlab_rb_props.rs: both removals claimed the comma between them.
        let text = "gitlab_rails['env'] = { '_x1' => '', 'A' => '', 'DUO_WORKFLOW_URL' => '' }";
        let changes = [
            EnvChange::Unset { key: "A".into() },
            EnvChange::Unset {
                key: "DUO_WORKFLOW_URL".into(),
            },
        ];
        let out = plan_edit(text, &changes).unwrap().unwrap();
        assert_eq!(out, "gitlab_rails['env'] = { '_x1' => '' }");
    }

    #[test]
    fn one_line_hash_losing_its_last_entry_and_gaining_one() {
        // Found by tests/gitlab_rb_props.rs: the insertion used to land inside the removal.
        let text = "gitlab_rails['env'] = { 'TZ' => '', 'A' => '' }";
        let changes = [EnvChange::unset("A"), EnvChange::set("B", "b")];
        let new = plan_edit(text, &changes).unwrap().unwrap();
        assert_eq!(new, "gitlab_rails['env'] = { 'TZ' => '', 'B' => 'b' }");
    }

    #[test]
    fn commented_assignments_do_not_count() {
        let text = "# gitlab_rails['env'] = {\n#   'A' => 'b'\n# }\n";
        assert!(env(text).is_empty());
    }

    #[test]
    fn last_assignment_wins_and_index_assignments_apply_on_top() {
        let text = "gitlab_rails['env'] = { 'A' => '1' }\ngitlab_rails['env']['Z'] = 'lost'\ngitlab_rails['env'] = {\n  \"B\" => \"2\", # inline\n  'C' => '3',\n}\ngitlab_rails['env']['B'] = 'override'\n";
        assert_eq!(env(text), pairs(&[("B", "override"), ("C", "3")]));
    }

    #[test]
    fn other_services_env_hashes_are_ignored() {
        let text = "registry['env'] = { 'A' => '1' }\ngitaly['env'] = { 'B' => '2' }\n";
        assert!(env(text).is_empty());
    }

    #[test]
    fn set_replaces_only_the_value_bytes() {
        let text =
            "x = 1 # keep\ngitlab_rails['env'] = {\n  \"A\" => \"old\", # note\n  'B' => 'b'\n}\n";
        let new = plan_edit(text, &[EnvChange::set("A", "new")])
            .unwrap()
            .unwrap();
        assert_eq!(
            new,
            "x = 1 # keep\ngitlab_rails['env'] = {\n  \"A\" => \"new\", # note\n  'B' => 'b'\n}\n"
        );
    }

    #[test]
    fn set_adds_an_entry_in_the_hash_style() {
        let text = "gitlab_rails['env'] = {\n    \"A\" => \"a\" # first\n}\n";
        let new = plan_edit(text, &[EnvChange::set("K", "v")])
            .unwrap()
            .unwrap();
        assert_eq!(
            new,
            "gitlab_rails['env'] = {\n    \"A\" => \"a\", # first\n    \"K\" => \"v\"\n}\n"
        );
        let trailing = "gitlab_rails['env'] = {\n  'A' => 'a',\n}\n";
        let new = plan_edit(trailing, &[EnvChange::set("K", "v")])
            .unwrap()
            .unwrap();
        assert_eq!(
            new,
            "gitlab_rails['env'] = {\n  'A' => 'a',\n  'K' => 'v',\n}\n"
        );
    }

    #[test]
    fn set_inline_and_empty_hashes() {
        let new = plan_edit("gitlab_rails['env'] = {}\n", &[EnvChange::set("K", "v")])
            .unwrap()
            .unwrap();
        assert_eq!(new, "gitlab_rails['env'] = { 'K' => 'v' }\n");
        let new = plan_edit(
            "gitlab_rails['env'] = { 'A' => 'a' }\n",
            &[EnvChange::set("K", "v")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(new, "gitlab_rails['env'] = { 'A' => 'a', 'K' => 'v' }\n");
    }

    #[test]
    fn unset_removes_lines_and_keeps_style() {
        let text = "gitlab_rails['env'] = {\n  'A' => 'a',\n  'B' => 'b'\n}\n";
        let new = plan_edit(text, &[EnvChange::unset("B")]).unwrap().unwrap();
        assert_eq!(new, "gitlab_rails['env'] = {\n  'A' => 'a'\n}\n");
        let new = plan_edit(text, &[EnvChange::unset("A")]).unwrap().unwrap();
        assert_eq!(new, "gitlab_rails['env'] = {\n  'B' => 'b'\n}\n");
    }

    #[test]
    fn nothing_to_change_is_none() {
        let text = "gitlab_rails['env'] = { 'A' => 'a' }\n";
        assert_eq!(plan_edit(text, &[EnvChange::set("A", "a")]).unwrap(), None);
        assert_eq!(plan_edit(text, &[EnvChange::unset("B")]).unwrap(), None);
    }

    #[test]
    fn values_round_trip_through_literals() {
        for value in [
            "it's",
            "back\\slash",
            "#{not}",
            "\"q\"",
            "#@x #$y",
            "tab\there",
        ] {
            for quote in ['\'', '"'] {
                let text = format!(
                    "gitlab_rails['env'] = {{ 'A' => {} }}\n",
                    ruby_string_literal(value, quote)
                );
                assert_eq!(
                    effective_env(&text).unwrap().get("A"),
                    Some(value),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn url_variables_must_hold_urls_and_other_values_are_free() {
        let reason =
            |key: &str, value: &str| match validate_known_value(&EnvChange::set(key, value)) {
                Ok(()) => None,
                Err(EnvError::NotAUrl { reason, .. }) => Some(reason),
                Err(other) => panic!("{other:?}"),
            };
        for good in [
            "http://aigw:5052",
            "https://aigw.example.com/",
            "http://10.0.0.5:5052",
        ] {
            assert_eq!(reason("AI_GATEWAY_URL", good), None, "{good}");
        }
        assert_eq!(
            reason("CUSTOMER_PORTAL_URL", "https://customers.gitlab.com"),
            None
        );
        for (bad, expected) in [
            ("aigw.example.com", "no scheme"),
            ("aigw.example.com:5052", "host and port"),
            ("10.0.0.5:5052", "no scheme"),
            ("ftp://aigw", "scheme is `ftp`"),
            ("http://", "empty host"),
            ("", "gitlab-rb unset AI_GATEWAY_URL"),
        ] {
            let got = reason("AI_GATEWAY_URL", bad).unwrap_or_default();
            assert!(got.contains(expected), "{bad:?}: {got:?}");
        }
        assert!(reason("CUSTOMER_PORTAL_URL", "customers.gitlab.com").is_some());
        // Other variables and unsets are not URL checked, and the planner itself stays about syntax.
        assert_eq!(reason("TZ", "Europe/Berlin"), None);
        assert_eq!(
            validate_known_value(&EnvChange::unset("AI_GATEWAY_URL")),
            Ok(())
        );
        assert!(plan_edit("", &[EnvChange::set("AI_GATEWAY_URL", "x")]).is_ok());
    }

    #[test]
    fn refusals_name_the_line() {
        let err =
            effective_env("a = 1\ngitlab_rails['env'] = base.merge('A' => 'b')\n").unwrap_err();
        assert_eq!(err.line(), Some(2));
        let err = effective_env("gitlab_rails['env'] = {\n  'A' => \"#{x}\"\n}\n").unwrap_err();
        assert_eq!(err.line(), Some(2));
        let err = effective_env("gitlab_rails['env'].merge!('A' => 'b')\n").unwrap_err();
        assert_eq!(err.line(), Some(1));
        assert!(matches!(
            plan_edit("", &[EnvChange::set("A", "x\ny")]),
            Err(EnvError::BadChange(_))
        ));
        assert!(matches!(
            plan_edit("", &[EnvChange::set("1A", "x")]),
            Err(EnvError::BadChange(_))
        ));
    }

    #[test]
    fn assignments_inside_blocks_are_refused_but_modifiers_and_closed_blocks_are_not() {
        let err =
            effective_env("if File.exist?('/x')\n  gitlab_rails['env'] = { 'A' => 'b' }\nend\n")
                .unwrap_err();
        assert_eq!(err.line(), Some(2));
        let err = effective_env("%w(a).each do |x|\n  gitlab_rails['env']['A'] = 'b'\nend\n")
            .unwrap_err();
        assert_eq!(err.line(), Some(2));
        let text = "x = 1 if y\nwhile z do\n  z = false\nend\nfoo.end\ngitlab_rails['env'] = { 'A' => 'b' }\n";
        assert_eq!(env(text), pairs(&[("A", "b")]));
    }

    #[test]
    fn label_style_keys_are_read_and_extended_in_their_style() {
        let text = "gitlab_rails['env'] = {\n  A: 'a',\n  \"B\": \"b\"\n}\n";
        assert_eq!(env(text), pairs(&[("A", "a"), ("B", "b")]));
        let new = plan_edit(text, &[EnvChange::set("C", "c")])
            .unwrap()
            .unwrap();
        assert_eq!(
            new,
            "gitlab_rails['env'] = {\n  A: 'a',\n  \"B\": \"b\",\n  C: \"c\"\n}\n"
        );
    }

    #[test]
    fn external_url_reads_the_active_line() {
        assert_eq!(
            external_url(
                "# external_url 'http://no'\nexternal_url \"https://gitlab.example.com\"\n"
            ),
            Some("https://gitlab.example.com".into())
        );
        assert_eq!(external_url("# external_url 'x'\n"), None);
    }
}
