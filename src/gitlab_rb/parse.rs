//! The parser: finds the active `gitlab_rails['env']` hash and index assignments in
//! gitlab.rb's tokens, with the byte offsets the planner edits at, and the commented example
//! block the template carries.

use super::env::{unsupported, EnvError, EnvHash};
use super::lexer::{tokenize, Token, TokenKind};

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) key: String,
    /// `Some('\'')`/`Some('"')` for `'K' =>`, `None` for a `K:` label.
    pub(super) key_quote: Option<char>,
    pub(super) key_start: usize,
    /// The end of the key literal (before `:` for a label).
    pub(super) key_end: usize,
    pub(super) value: String,
    pub(super) value_quote: char,
    pub(super) value_start: usize,
    pub(super) value_end: usize,
    /// The comma after the value, if any.
    pub(super) comma: Option<usize>,
}

impl Entry {
    pub(super) fn end(&self) -> usize {
        self.comma.map(|c| c + 1).unwrap_or(self.value_end)
    }
}

#[derive(Debug, Clone)]
pub(super) struct HashAssignment {
    pub(super) stmt_start: usize,
    pub(super) open: usize,
    pub(super) close: usize,
    pub(super) entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
pub(super) struct IndexAssignment {
    pub(super) stmt_start: usize,
    pub(super) key: String,
    pub(super) key_quote: char,
    pub(super) value: String,
    pub(super) value_quote: char,
    pub(super) value_start: usize,
    pub(super) value_end: usize,
}

#[derive(Debug, Clone)]
pub(super) enum Statement {
    Hash(HashAssignment),
    Index(IndexAssignment),
}

/// What the parser found in a gitlab.rb.
#[derive(Debug, Clone)]
pub(super) struct EnvFile {
    pub(super) statements: Vec<Statement>,
    /// Byte offset just after the last commented `# gitlab_rails['env'] = { ... # }` example.
    pub(super) template_example_end: Option<usize>,
}

pub(super) const TARGET: &str = "gitlab_rails";

pub(super) fn at_statement_start(sig: &[&Token], i: usize) -> bool {
    i == 0 || matches!(sig[i - 1].kind, TokenKind::Newline | TokenKind::Punct(";"))
}

impl EnvFile {
    pub(super) fn effective(&self) -> EnvHash {
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

    pub(super) fn last_hash(&self) -> Option<usize> {
        self.statements
            .iter()
            .rposition(|s| matches!(s, Statement::Hash(_)))
    }
}

pub(super) struct Parser<'a> {
    pub(super) sig: Vec<&'a Token>,
    pub(super) pos: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn peek(&self) -> Option<&'a Token> {
        self.sig.get(self.pos).copied()
    }

    pub(super) fn next(&mut self) -> Option<&'a Token> {
        let t = self.peek();
        self.pos += 1;
        t
    }

    pub(super) fn skip_newlines(&mut self) {
        while matches!(self.peek().map(|t| &t.kind), Some(TokenKind::Newline)) {
            self.pos += 1;
        }
    }

    pub(super) fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek().map(|t| &t.kind), Some(TokenKind::Punct(q)) if *q == p)
    }

    pub(super) fn line(&self) -> usize {
        self.peek()
            .or_else(|| self.sig.last().copied())
            .map(|t| t.line)
            .unwrap_or(1)
    }

    /// `gitlab_rails['env']` at `self.pos`, consumed when it matches.
    pub(super) fn env_reference(&mut self) -> bool {
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
    pub(super) fn literal_value(
        &mut self,
        what: &str,
    ) -> Result<(String, char, usize, usize), EnvError> {
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
    pub(super) fn statement_end(&mut self, what: &str) -> Result<(), EnvError> {
        match self.peek().map(|t| &t.kind) {
            None | Some(TokenKind::Newline) | Some(TokenKind::Punct(";")) => Ok(()),
            Some(_) => Err(unsupported(
                self.line(),
                format!("{what} continues with an expression (a method call, an operator or a condition) that duo-selfhost cannot evaluate"),
            )),
        }
    }

    pub(super) fn hash(
        &mut self,
        line: usize,
        stmt_start: usize,
    ) -> Result<HashAssignment, EnvError> {
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
    pub(super) fn skip_newlines_before_comma(&mut self) {
        let save = self.pos;
        self.skip_newlines();
        if !self.is_punct(",") {
            self.pos = save;
        }
    }
}

pub(super) fn parse(text: &str) -> Result<EnvFile, EnvError> {
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
pub(super) fn block_depths(sig: &[&Token]) -> Vec<usize> {
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
pub(super) fn follows_assignment(sig: &[&Token], i: usize) -> bool {
    i > 0
        && matches!(
            sig[i - 1].kind,
            TokenKind::Punct("=") | TokenKind::Punct("||=")
        )
}

/// The end of the last commented `# gitlab_rails['env'] = {` ... `# }` block (the template's
/// example), so a new block lands right after it.
pub(super) fn template_example_end(text: &str, tokens: &[Token]) -> Option<usize> {
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
pub(super) fn opens_commented_env(comment: &str) -> bool {
    pub(super) fn rest_after_open(comment: &str) -> Option<&str> {
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
pub(super) fn closes_commented_hash(comment: &str) -> bool {
    comment
        .strip_prefix('#')
        .is_some_and(|rest| rest.trim() == "}")
}

pub(super) fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

/// The offset just after the newline ending the line that holds `pos` (or the text's end).
pub(super) fn line_end(text: &str, pos: usize) -> usize {
    text[pos..]
        .find('\n')
        .map(|i| pos + i + 1)
        .unwrap_or(text.len())
}

pub(super) fn line_number(text: &str, pos: usize) -> usize {
    text[..pos].bytes().filter(|b| *b == b'\n').count() + 1
}

/// The newline sequence used by the line holding `pos`, else by the file.
pub(super) fn newline_at(text: &str, pos: usize) -> &'static str {
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
pub(super) fn first_on_line(text: &str, pos: usize) -> bool {
    text[line_start(text, pos)..pos]
        .bytes()
        .all(|b| b == b' ' || b == b'\t')
}

/// Whether only whitespace or a comment follows `pos` on its line.
pub(super) fn last_on_line(text: &str, pos: usize) -> bool {
    let rest = &text[pos..line_end(text, pos)];
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.is_empty() || rest.starts_with('#') || rest.starts_with('\n') || rest.starts_with("\r\n")
}

pub(super) fn indent_of(text: &str, pos: usize) -> &str {
    let start = line_start(text, pos);
    let line = &text[start..];
    let len = line
        .bytes()
        .take_while(|b| *b == b' ' || *b == b'\t')
        .count();
    &line[..len]
}
