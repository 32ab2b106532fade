//! Finds the active `gitlab_rails['env']` assignments in gitlab.rb, computes the hash omnibus
//! ends up with, and plans byte-level edits that change only that hash (or the index
//! assignments that override it). Everything else in the file stays byte-identical.

use std::collections::{BTreeMap, BTreeSet};

use super::lexer::{tokenize, Token, TokenKind};

/// Why gitlab.rb cannot be read or edited safely. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("line {line}: {message}")]
    Unsupported { line: usize, message: String },
    #[error("{0}")]
    BadChange(String),
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

fn unsupported(line: usize, message: impl Into<String>) -> EnvError {
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

    fn insert(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }

    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn sorted(&self) -> BTreeMap<&str, &str> {
        self.iter().collect()
    }
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    /// `Some('\'')`/`Some('"')` for `'K' =>`, `None` for a `K:` label.
    key_quote: Option<char>,
    key_start: usize,
    /// The end of the key literal (before `:` for a label).
    key_end: usize,
    value: String,
    value_quote: char,
    value_start: usize,
    value_end: usize,
    /// The comma after the value, if any.
    comma: Option<usize>,
}

impl Entry {
    fn end(&self) -> usize {
        self.comma.map(|c| c + 1).unwrap_or(self.value_end)
    }
}

#[derive(Debug, Clone)]
struct HashAssignment {
    stmt_start: usize,
    open: usize,
    close: usize,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct IndexAssignment {
    stmt_start: usize,
    key: String,
    key_quote: char,
    value: String,
    value_quote: char,
    value_start: usize,
    value_end: usize,
}

#[derive(Debug, Clone)]
enum Statement {
    Hash(HashAssignment),
    Index(IndexAssignment),
}

/// What the parser found in a gitlab.rb.
#[derive(Debug, Clone)]
struct EnvFile {
    statements: Vec<Statement>,
    /// Byte offset just after the last commented `# gitlab_rails['env'] = { ... # }` example.
    template_example_end: Option<usize>,
}

const TARGET: &str = "gitlab_rails";

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

fn at_statement_start(sig: &[&Token], i: usize) -> bool {
    i == 0 || matches!(sig[i - 1].kind, TokenKind::Newline | TokenKind::Punct(";"))
}

impl EnvFile {
    fn effective(&self) -> EnvHash {
        let mut env = EnvHash::default();
        for statement in &self.statements {
            match statement {
                Statement::Hash(hash) => {
                    env = EnvHash::default();
                    for entry in &hash.entries {
                        env.insert(&entry.key, &entry.value);
                    }
                }
                Statement::Index(index) => env.insert(&index.key, &index.value),
            }
        }
        env
    }

    fn last_hash(&self) -> Option<usize> {
        self.statements
            .iter()
            .rposition(|s| matches!(s, Statement::Hash(_)))
    }
}

struct Parser<'a> {
    sig: Vec<&'a Token>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.sig.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<&'a Token> {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek().map(|t| &t.kind), Some(TokenKind::Newline)) {
            self.pos += 1;
        }
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek().map(|t| &t.kind), Some(TokenKind::Punct(q)) if *q == p)
    }

    fn line(&self) -> usize {
        self.peek()
            .or_else(|| self.sig.last().copied())
            .map(|t| t.line)
            .unwrap_or(1)
    }

    /// `gitlab_rails['env']` at `self.pos`, consumed when it matches.
    fn env_reference(&mut self) -> bool {
        let p = self.pos;
        let matches = matches!(self.sig.get(p).map(|t| &t.kind), Some(TokenKind::Ident(n)) if n == TARGET)
            && matches!(self.sig.get(p + 1).map(|t| &t.kind), Some(TokenKind::Punct("[")))
            && matches!(self.sig.get(p + 2).map(|t| &t.kind), Some(TokenKind::Str { value, literal: true, .. }) if value == "env")
            && matches!(self.sig.get(p + 3).map(|t| &t.kind), Some(TokenKind::Punct("]")))
            // `gitlab_rails ['env']` with a space would be a method call with an array.
            && self.sig[p].end == self.sig[p + 1].start;
        if matches {
            self.pos += 4;
        }
        matches
    }

    /// A value omnibus writes as is: a string literal without interpolation, or an integer.
    fn literal_value(&mut self, what: &str) -> Result<(String, char, usize, usize), EnvError> {
        let line = self.line();
        let Some(token) = self.next() else {
            return Err(unsupported(line, format!("{what} has no value")));
        };
        match &token.kind {
            TokenKind::Str {
                value,
                literal: true,
                quote,
            } => Ok((value.clone(), *quote, token.start, token.end)),
            TokenKind::Str { literal: false, .. } => Err(unsupported(
                token.line,
                format!("{what} uses string interpolation, which duo-selfhost cannot evaluate"),
            )),
            TokenKind::Number(n) if n.bytes().all(|b| b.is_ascii_digit() || b == b'_') => {
                Ok((n.replace('_', ""), '\'', token.start, token.end))
            }
            _ => Err(unsupported(
                token.line,
                format!("{what} is not a literal string, so duo-selfhost cannot evaluate it"),
            )),
        }
    }

    /// After a complete statement: a newline, `;`, or the end (comments are already skipped).
    fn statement_end(&mut self, what: &str) -> Result<(), EnvError> {
        match self.peek().map(|t| &t.kind) {
            None | Some(TokenKind::Newline) | Some(TokenKind::Punct(";")) => Ok(()),
            Some(_) => Err(unsupported(
                self.line(),
                format!("{what} continues with an expression (a method call, an operator or a condition) that duo-selfhost cannot evaluate"),
            )),
        }
    }

    fn hash(&mut self, line: usize, stmt_start: usize) -> Result<HashAssignment, EnvError> {
        let open = self.next().expect("caller checked `{`").start;
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            self.skip_newlines();
            let Some(token) = self.peek() else {
                return Err(unsupported(
                    line,
                    "the gitlab_rails['env'] hash is not closed",
                ));
            };
            if token.kind == TokenKind::Punct("}") {
                self.pos += 1;
                return Ok(HashAssignment {
                    stmt_start,
                    open,
                    close: token.start,
                    entries,
                });
            }
            if let Some(last) = entries.last() {
                if last.comma.is_none() {
                    return Err(unsupported(
                        token.line,
                        "expected `,` or `}` after an entry of the gitlab_rails['env'] hash",
                    ));
                }
            }
            let entry_line = token.line;
            self.pos += 1;
            let next_is_colon = |p: &Self| matches!(p.peek(), Some(t) if t.kind == TokenKind::Punct(":") && t.start == token.end);
            let (key, key_quote) = match &token.kind {
                TokenKind::Str {
                    value,
                    literal: true,
                    quote,
                } if *quote != '`' => {
                    if next_is_colon(self) {
                        self.pos += 1;
                        (value.clone(), None)
                    } else if self.is_punct("=>") {
                        self.pos += 1;
                        (value.clone(), Some(*quote))
                    } else {
                        return Err(unsupported(
                            entry_line,
                            "expected `=>` after a key in the gitlab_rails['env'] hash",
                        ));
                    }
                }
                TokenKind::Ident(name) if next_is_colon(self) => {
                    self.pos += 1;
                    (name.clone(), None)
                }
                _ => {
                    return Err(unsupported(
                        entry_line,
                        "a key in the gitlab_rails['env'] hash is not a literal string",
                    ))
                }
            };
            self.skip_newlines();
            let (value, value_quote, value_start, value_end) =
                self.literal_value(&format!("the value of {key}"))?;
            self.skip_newlines_before_comma();
            let comma = if self.is_punct(",") {
                let c = self.next().map(|t| t.start);
                c
            } else {
                None
            };
            entries.push(Entry {
                key,
                key_quote,
                key_start: token.start,
                key_end: token.end,
                value,
                value_quote,
                value_start,
                value_end,
                comma,
            });
        }
    }

    /// Ruby allows a newline between a value and its comma only in odd layouts; we accept it
    /// when reading but the comma then belongs to the value's entry.
    fn skip_newlines_before_comma(&mut self) {
        let save = self.pos;
        self.skip_newlines();
        if !self.is_punct(",") {
            self.pos = save;
        }
    }
}

fn parse(text: &str) -> Result<EnvFile, EnvError> {
    let tokens = tokenize(text).map_err(|e| unsupported(e.line, e.message))?;
    let sig: Vec<&Token> = tokens
        .iter()
        .filter(|t| t.kind != TokenKind::Comment)
        .collect();
    let depth = block_depths(&sig);
    let mut parser = Parser { sig, pos: 0 };
    let mut statements = Vec::new();
    while parser.pos < parser.sig.len() {
        let i = parser.pos;
        if !at_statement_start(&parser.sig, i) || !parser.env_reference() {
            parser.pos = i + 1;
            continue;
        }
        let start_token = parser.sig[i];
        let line = start_token.line;
        if depth[i] > 0 {
            return Err(unsupported(
                line,
                "gitlab_rails['env'] is set inside a condition or block (if/unless/case/do ... end), so duo-selfhost cannot tell whether it applies",
            ));
        }
        match parser.peek().map(|t| &t.kind) {
            None | Some(TokenKind::Newline) | Some(TokenKind::Punct(";")) => {}
            Some(TokenKind::Punct("=")) => {
                parser.pos += 1;
                parser.skip_newlines();
                if !parser.is_punct("{") {
                    return Err(unsupported(
                        line,
                        "gitlab_rails['env'] is assigned something other than a literal hash, which duo-selfhost cannot evaluate",
                    ));
                }
                let hash = parser.hash(line, start_token.start)?;
                parser.statement_end("the gitlab_rails['env'] hash")?;
                statements.push(Statement::Hash(hash));
            }
            Some(TokenKind::Punct("[")) => {
                parser.pos += 1;
                let key_token = parser.next();
                let (key, key_quote) = match key_token.map(|t| &t.kind) {
                    Some(TokenKind::Str {
                        value,
                        literal: true,
                        quote,
                    }) => (value.clone(), *quote),
                    _ => {
                        return Err(unsupported(
                            line,
                            "gitlab_rails['env'][...] uses a key that is not a literal string",
                        ))
                    }
                };
                if !parser.is_punct("]") {
                    return Err(unsupported(line, "gitlab_rails['env'][...] is not closed by `]`"));
                }
                parser.pos += 1;
                if !parser.is_punct("=") {
                    return Err(unsupported(
                        line,
                        format!("gitlab_rails['env']['{key}'] is changed by an expression other than `=`, which duo-selfhost cannot evaluate"),
                    ));
                }
                parser.pos += 1;
                parser.skip_newlines();
                let (value, value_quote, value_start, value_end) =
                    parser.literal_value(&format!("gitlab_rails['env']['{key}']"))?;
                parser.statement_end(&format!("gitlab_rails['env']['{key}']"))?;
                statements.push(Statement::Index(IndexAssignment {
                    stmt_start: start_token.start,
                    key,
                    key_quote,
                    value,
                    value_quote,
                    value_start,
                    value_end,
                }));
            }
            Some(_) => {
                return Err(unsupported(
                    line,
                    "gitlab_rails['env'] is changed by an expression (a method call or an operator) that duo-selfhost cannot evaluate",
                ))
            }
        }
    }
    Ok(EnvFile {
        statements,
        template_example_end: template_example_end(text, &tokens),
    })
}

/// For each significant token, how many `if`/`unless`/`case`/`def`/`do`/... blocks enclose
/// it. Modifier forms (`x = 1 if y`) do not open a block: only keywords at a statement start do.
fn block_depths(sig: &[&Token]) -> Vec<usize> {
    let mut depths = Vec::with_capacity(sig.len());
    let mut depth = 0usize;
    // `while x do` uses `do` as part of the loop it already counted.
    let mut loop_line = None;
    for (i, token) in sig.iter().enumerate() {
        depths.push(depth);
        let TokenKind::Ident(word) = &token.kind else {
            continue;
        };
        // `x.end` or `:if` are method names and symbols, not keywords.
        let after_dot_or_colon = i > 0
            && (matches!(
                sig[i - 1].kind,
                TokenKind::Punct(".") | TokenKind::Punct("::")
            ) || (sig[i - 1].kind == TokenKind::Punct(":") && sig[i - 1].end == token.start));
        if after_dot_or_colon {
            continue;
        }
        match word.as_str() {
            "if" | "unless" | "case" | "def" | "class" | "module" | "begin"
                if at_statement_start(sig, i) || follows_assignment(sig, i) =>
            {
                depth += 1
            }
            "while" | "until" | "for" if at_statement_start(sig, i) => {
                depth += 1;
                loop_line = Some(token.line);
            }
            "do" if loop_line != Some(token.line) => depth += 1,
            "end" => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    depths
}

/// `x = if ...`: a keyword right after `=` opens a block too.
fn follows_assignment(sig: &[&Token], i: usize) -> bool {
    i > 0
        && matches!(
            sig[i - 1].kind,
            TokenKind::Punct("=") | TokenKind::Punct("||=")
        )
}

/// The end of the last commented `# gitlab_rails['env'] = {` ... `# }` block (the template's
/// example), so a new block lands right after it.
fn template_example_end(text: &str, tokens: &[Token]) -> Option<usize> {
    let comments: Vec<&Token> = tokens
        .iter()
        .filter(|t| t.kind == TokenKind::Comment && line_start(text, t.start) == t.start)
        .collect();
    let mut found = None;
    let mut i = 0;
    while i < comments.len() {
        if opens_commented_env(&text[comments[i].start..comments[i].end]) {
            let mut j = i + 1;
            while j < comments.len() && comments[j].line == comments[j - 1].line + 1 {
                if closes_commented_hash(&text[comments[j].start..comments[j].end]) {
                    found = Some(line_end(text, comments[j].end));
                    break;
                }
                j += 1;
            }
            i = j;
        }
        i += 1;
    }
    found
}

/// `# gitlab_rails['env'] = {`, spaced any way. Matched by hand: compiling the equivalent
/// regex took about a tenth of a whole `gitlab-rb set` run on the omnibus template.
fn opens_commented_env(comment: &str) -> bool {
    fn rest_after_open(comment: &str) -> Option<&str> {
        let rest = comment.strip_prefix('#')?.trim_start();
        let rest = rest.strip_prefix("gitlab_rails")?.trim_start();
        let rest = rest.strip_prefix('[')?.trim_start();
        let rest = rest.strip_prefix(['\'', '"'])?.strip_prefix("env")?;
        let rest = rest.strip_prefix(['\'', '"'])?.trim_start();
        let rest = rest.strip_prefix(']')?.trim_start();
        let rest = rest.strip_prefix('=')?.trim_start();
        rest.strip_prefix('{')
    }
    rest_after_open(comment).is_some_and(|rest| rest.trim().is_empty())
}

/// `# }`, spaced any way.
fn closes_commented_hash(comment: &str) -> bool {
    comment
        .strip_prefix('#')
        .is_some_and(|rest| rest.trim() == "}")
}

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

/// The offset just after the newline ending the line that holds `pos` (or the text's end).
fn line_end(text: &str, pos: usize) -> usize {
    text[pos..]
        .find('\n')
        .map(|i| pos + i + 1)
        .unwrap_or(text.len())
}

fn line_number(text: &str, pos: usize) -> usize {
    text[..pos].bytes().filter(|b| *b == b'\n').count() + 1
}

/// The newline sequence used by the line holding `pos`, else by the file.
fn newline_at(text: &str, pos: usize) -> &'static str {
    let end = line_end(text, pos);
    if end > 1 && text.as_bytes()[end - 1] == b'\n' {
        if text.as_bytes()[end - 2] == b'\r' {
            return "\r\n";
        }
        return "\n";
    }
    if text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

/// Whether only whitespace precedes `pos` on its line.
fn first_on_line(text: &str, pos: usize) -> bool {
    text[line_start(text, pos)..pos]
        .bytes()
        .all(|b| b == b' ' || b == b'\t')
}

/// Whether only whitespace or a comment follows `pos` on its line.
fn last_on_line(text: &str, pos: usize) -> bool {
    let rest = &text[pos..line_end(text, pos)];
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.is_empty() || rest.starts_with('#') || rest.starts_with('\n') || rest.starts_with("\r\n")
}

fn indent_of(text: &str, pos: usize) -> &str {
    let start = line_start(text, pos);
    let line = &text[start..];
    let len = line
        .bytes()
        .take_while(|b| *b == b' ' || *b == b'\t')
        .count();
    &line[..len]
}

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

#[derive(Debug, Clone)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

fn apply_edits(text: &str, mut edits: Vec<Edit>) -> Result<String, EnvError> {
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
fn verify(
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
struct HashPlan {
    replaced: BTreeMap<usize, String>,
    removed: BTreeSet<usize>,
    added: Vec<(String, String)>,
}

fn remove_index_line(text: &str, index: &IndexAssignment) -> Result<Edit, EnvError> {
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

fn append_index_lines(text: &str, last: &IndexAssignment, entries: &[(String, String)]) -> Edit {
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

fn new_block(text: &str, after: Option<usize>, entries: &[(String, String)]) -> Edit {
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
fn merge_removals(edits: Vec<Edit>) -> Vec<Edit> {
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

fn plan_hash_edits(
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

#[cfg(test)]
mod tests {
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
