//! A tokenizer for the part of Ruby a gitlab.rb uses: comments (`#`, `=begin`/`=end`), strings in
//! both quote styles with their escapes and `#{}` interpolation, `%w()`-style literals, heredocs,
//! identifiers, numbers and punctuation. It does not evaluate anything; the env parser reads tokens.
//! One cohesive thing, Ruby's lexical rules, with its tests beside it.

/// What a token is. Strings carry their decoded value when it is a plain literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    Newline,
    Comment,
    Ident(String),
    /// A quoted string: `value` is what Ruby reads back when `literal` (no interpolation).
    Str {
        value: String,
        literal: bool,
        quote: char,
    },
    /// `%w()`, heredocs, and other literals the env parser never needs to read.
    OtherLiteral,
    Number(String),
    Punct(&'static str),
}

#[derive(Debug, Clone)]
pub struct Token {
    pub kind: TokenKind,
    /// Byte offsets into the source: `start..end`.
    pub start: usize,
    pub end: usize,
    /// 1-based line of `start`.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub line: usize,
    pub message: String,
}

const PUNCTS: &[&str] = &[
    "**=", "<=>", "===", "...", "||=", "&&=", "<<=", ">>=", "=>", "==", "=~", "!=", "!~", "<=",
    ">=", "&&", "||", "::", "..", "+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "->", "**", "<<",
    ">>", "=", "{", "}", "[", "]", "(", ")", ",", ";", ".", ":", "+", "-", "*", "/", "%", "!", "?",
    "<", ">", "&", "|", "^", "~", "@", "$", "\\",
];

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    tokens: Vec<Token>,
    /// Heredocs opened on the current line, read after its newline: (terminator, squiggly/dash).
    pending_heredocs: Vec<(String, bool)>,
}

/// Tokenizes a whole file. Stops at a line that is exactly `__END__`, as Ruby does.
pub fn tokenize(src: &str) -> Result<Vec<Token>, LexError> {
    let mut lexer = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        line: 1,
        tokens: Vec::new(),
        pending_heredocs: Vec::new(),
    };
    lexer.run(None)?;
    Ok(lexer.tokens)
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

impl<'a> Lexer<'a> {
    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn error(&self, message: impl Into<String>) -> LexError {
        LexError {
            line: self.line,
            message: message.into(),
        }
    }

    fn at_line_start(&self) -> bool {
        self.pos == 0 || self.bytes[self.pos - 1] == b'\n'
    }

    fn push(&mut self, kind: TokenKind, start: usize, line: usize) {
        self.tokens.push(Token {
            kind,
            start,
            end: self.pos,
            line,
        });
    }

    /// Whether the previous significant token ends an expression, so that `%`, `/`, `<<` and
    /// `?` are operators rather than the start of a literal.
    fn after_value(&self) -> bool {
        match self.tokens.last().map(|t| &t.kind) {
            Some(TokenKind::Ident(name)) => !matches!(
                name.as_str(),
                "if" | "unless"
                    | "while"
                    | "until"
                    | "and"
                    | "or"
                    | "not"
                    | "return"
                    | "when"
                    | "puts"
                    | "p"
            ),
            Some(TokenKind::Str { .. })
            | Some(TokenKind::Number(_))
            | Some(TokenKind::OtherLiteral) => true,
            Some(TokenKind::Punct(p)) => matches!(*p, ")" | "]" | "}"),
            _ => false,
        }
    }

    /// `foo %w(a)` or `load <<~EOS`: after a method name, a space before the operator and none
    /// after it make Ruby read a literal argument, not an operator.
    fn command_argument(&self, op_len: usize) -> bool {
        matches!(
            self.tokens.last().map(|t| &t.kind),
            Some(TokenKind::Ident(_))
        ) && self.pos > 0
            && matches!(self.bytes[self.pos - 1], b' ' | b'\t')
            && self
                .bytes
                .get(self.pos + op_len)
                .is_some_and(|c| !c.is_ascii_whitespace() && *c != b'=')
    }

    /// Lexes until the end of input, or until the `}` closing an interpolation when
    /// `interpolation_depth` is given.
    fn run(&mut self, mut interpolation_depth: Option<usize>) -> Result<(), LexError> {
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            let start = self.pos;
            let line = self.line;
            if self.at_line_start() && interpolation_depth.is_none() {
                let rest = &self.src[self.pos..];
                if rest.starts_with("__END__")
                    && matches!(rest.as_bytes().get(7), None | Some(b'\n') | Some(b'\r'))
                {
                    return Ok(());
                }
                if rest.starts_with("=begin")
                    && rest
                        .as_bytes()
                        .get(6)
                        .is_none_or(|c| c.is_ascii_whitespace())
                {
                    self.block_comment()?;
                    continue;
                }
            }
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.push(TokenKind::Newline, start, line);
                    self.line += 1;
                    if !self.pending_heredocs.is_empty() {
                        self.heredoc_bodies()?;
                    }
                }
                b' ' | b'\t' | b'\r' | b'\x0c' => self.pos += 1,
                b'\\' if self.peek(1) == Some(b'\n') => {
                    // A line continuation: no newline token.
                    self.pos += 2;
                    self.line += 1;
                }
                b'\\' if self.peek(1) == Some(b'\r') && self.peek(2) == Some(b'\n') => {
                    self.pos += 3;
                    self.line += 1;
                }
                b'#' => {
                    while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                    // The comment token excludes a CR before the newline.
                    let mut end = self.pos;
                    if end > start && self.bytes[end - 1] == b'\r' {
                        end -= 1;
                    }
                    self.tokens.push(Token {
                        kind: TokenKind::Comment,
                        start,
                        end,
                        line,
                    });
                }
                b'\'' => {
                    self.pos += 1;
                    let value = self.single_quoted(b'\'', None)?;
                    self.push(
                        TokenKind::Str {
                            value,
                            literal: true,
                            quote: '\'',
                        },
                        start,
                        line,
                    );
                }
                b'"' | b'`' => {
                    self.pos += 1;
                    let (value, literal) = self.double_quoted(b, None)?;
                    self.push(
                        TokenKind::Str {
                            value,
                            literal: literal && b == b'"',
                            quote: b as char,
                        },
                        start,
                        line,
                    );
                }
                b'%' if (!self.after_value() || self.command_argument(1))
                    && self.percent_literal()? =>
                {
                    self.push(TokenKind::OtherLiteral, start, line);
                }
                b'<' if (!self.after_value() || self.command_argument(2))
                    && self.heredoc_start() =>
                {
                    self.push(TokenKind::OtherLiteral, start, line);
                }
                b'?' if !self.after_value()
                    && self.peek(1).is_some_and(|c| c.is_ascii_graphic())
                    && self.peek(2).is_none_or(|c| !is_ident_char(c)) =>
                {
                    // A character literal such as ?a.
                    self.pos += 2;
                    self.push(TokenKind::OtherLiteral, start, line);
                }
                b'0'..=b'9' => {
                    while self.pos < self.bytes.len()
                        && (self.bytes[self.pos].is_ascii_alphanumeric()
                            || self.bytes[self.pos] == b'_'
                            || (self.bytes[self.pos] == b'.'
                                && self.peek(1).is_some_and(|c| c.is_ascii_digit())))
                    {
                        self.pos += 1;
                    }
                    let text = self.src[start..self.pos].to_string();
                    self.push(TokenKind::Number(text), start, line);
                }
                _ if is_ident_start(b) => {
                    while self.pos < self.bytes.len() && is_ident_char(self.bytes[self.pos]) {
                        self.pos += 1;
                    }
                    if matches!(self.peek(0), Some(b'?') | Some(b'!')) && self.peek(1) != Some(b'=')
                    {
                        self.pos += 1;
                    }
                    let text = self.src[start..self.pos].to_string();
                    self.push(TokenKind::Ident(text), start, line);
                }
                b'{' if interpolation_depth.is_some() => {
                    interpolation_depth = interpolation_depth.map(|d| d + 1);
                    self.pos += 1;
                    self.push(TokenKind::Punct("{"), start, line);
                }
                b'}' if interpolation_depth.is_some() => {
                    if interpolation_depth == Some(0) {
                        self.pos += 1;
                        return Ok(());
                    }
                    interpolation_depth = interpolation_depth.map(|d| d - 1);
                    self.pos += 1;
                    self.push(TokenKind::Punct("}"), start, line);
                }
                _ => {
                    let rest = &self.src[self.pos..];
                    match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
                        Some(p) => {
                            self.pos += p.len();
                            self.push(TokenKind::Punct(p), start, line);
                        }
                        None => {
                            // Any other character: skip it as one char (never inside what we edit).
                            let len = rest.chars().next().map(char::len_utf8).unwrap_or(1);
                            self.pos += len;
                        }
                    }
                }
            }
        }
        if interpolation_depth.is_some() {
            return Err(self.error("an interpolation `#{` is not closed"));
        }
        Ok(())
    }

    fn block_comment(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let line = self.line;
        loop {
            // Advance to the next line.
            match self.src[self.pos..].find('\n') {
                Some(i) => {
                    self.pos += i + 1;
                    self.line += 1;
                }
                None => return Err(self.error("`=begin` without a matching `=end`")),
            }
            let rest = &self.src[self.pos..];
            if rest.starts_with("=end")
                && rest
                    .as_bytes()
                    .get(4)
                    .is_none_or(|c| c.is_ascii_whitespace())
            {
                let end_of_line = rest
                    .find('\n')
                    .map(|i| self.pos + i)
                    .unwrap_or(self.src.len());
                self.pos = end_of_line;
                self.tokens.push(Token {
                    kind: TokenKind::Comment,
                    start,
                    end: end_of_line,
                    line,
                });
                return Ok(());
            }
        }
    }

    fn note_newline(&mut self, b: u8) {
        if b == b'\n' {
            self.line += 1;
        }
    }

    /// Reads a single-quoted body up to `close`; `\\` and `\<close>` are the only escapes.
    /// `open` is the opening delimiter for bracket pairs, which nest.
    fn single_quoted(&mut self, close: u8, open: Option<u8>) -> Result<String, LexError> {
        let start_line = self.line;
        let mut value = Vec::new();
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            self.note_newline(b);
            if b == b'\\' {
                if let Some(next) = self.peek(1) {
                    if next == b'\\' || next == close || Some(next) == open {
                        value.push(next);
                        self.pos += 2;
                        continue;
                    }
                }
                value.push(b);
                self.pos += 1;
                continue;
            }
            if self.delimiter_closes(b, open, close, &mut depth) {
                return Ok(String::from_utf8_lossy(&value).into_owned());
            }
            value.push(b);
        }
        Err(unclosed_string(start_line))
    }

    /// Reads a double-quoted body up to `close`, decoding escapes. Returns the value and whether
    /// it is a plain literal (no interpolation).
    fn double_quoted(&mut self, close: u8, open: Option<u8>) -> Result<(String, bool), LexError> {
        let start_line = self.line;
        let mut value = Vec::new();
        let mut literal = true;
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            self.note_newline(b);
            match b {
                b'\\' => {
                    self.pos += 1;
                    self.escape(&mut value)?;
                }
                b'#' if self.peek(1) == Some(b'{') => {
                    literal = false;
                    self.pos += 2;
                    // The interpolated code is lexed (so nested strings and braces are skipped
                    // correctly) but its tokens are dropped: it is not part of the statement.
                    let saved = self.tokens.len();
                    self.run(Some(0))?;
                    self.tokens.truncate(saved);
                }
                b'#' if matches!(self.peek(1), Some(b'@') | Some(b'$')) => {
                    literal = false;
                    value.push(b);
                    self.pos += 1;
                }
                _ => {
                    if self.delimiter_closes(b, open, close, &mut depth) {
                        return Ok((String::from_utf8_lossy(&value).into_owned(), literal));
                    }
                    value.push(b);
                }
            }
        }
        Err(unclosed_string(start_line))
    }

    /// Steps over `b`, a plain byte of a string body, keeping count of nested bracket pairs;
    /// true when it is the `close` that ends the string (not one closing a nested `open`).
    fn delimiter_closes(&mut self, b: u8, open: Option<u8>, close: u8, depth: &mut usize) -> bool {
        self.pos += 1;
        if Some(b) == open {
            *depth += 1;
        } else if b == close {
            if *depth == 0 {
                return true;
            }
            *depth -= 1;
        }
        false
    }

    /// Decodes one escape after a backslash (already consumed) in a double-quoted string.
    fn escape(&mut self, value: &mut Vec<u8>) -> Result<(), LexError> {
        let Some(b) = self.peek(0) else {
            return Err(self.error("a string ends in a backslash"));
        };
        self.pos += 1;
        let simple = match b {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b's' => Some(b' '),
            b'r' => Some(b'\r'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'e' => Some(0x1b),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            b'\n' => {
                // An escaped newline is a line continuation inside the string.
                self.line += 1;
                return Ok(());
            }
            _ => None,
        };
        if let Some(c) = simple {
            value.push(c);
            return Ok(());
        }
        match b {
            b'0'..=b'7' => {
                let mut n = (b - b'0') as u32;
                for _ in 0..2 {
                    match self.peek(0) {
                        Some(d @ b'0'..=b'7') => {
                            n = n * 8 + (d - b'0') as u32;
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                value.push((n & 0xff) as u8);
            }
            b'x' => {
                let mut n = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match self.peek(0).and_then(|d| (d as char).to_digit(16)) {
                        Some(d) => {
                            n = n * 16 + d;
                            self.pos += 1;
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    return Err(self.error("invalid \\x escape in a string"));
                }
                value.push(n as u8);
            }
            b'u' => {
                let mut push_code = |code: u32, lexer: &Self| -> Result<(), LexError> {
                    let c = char::from_u32(code)
                        .ok_or_else(|| lexer.error("invalid \\u escape in a string"))?;
                    let mut buf = [0u8; 4];
                    value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    Ok(())
                };
                if self.peek(0) == Some(b'{') {
                    self.pos += 1;
                    loop {
                        while self.peek(0) == Some(b' ') {
                            self.pos += 1;
                        }
                        if self.peek(0) == Some(b'}') {
                            self.pos += 1;
                            break;
                        }
                        let start = self.pos;
                        while self.peek(0).is_some_and(|d| d.is_ascii_hexdigit()) {
                            self.pos += 1;
                        }
                        if start == self.pos {
                            return Err(self.error("invalid \\u{} escape in a string"));
                        }
                        let code = u32::from_str_radix(&self.src[start..self.pos], 16)
                            .map_err(|_| self.error("invalid \\u{} escape in a string"))?;
                        push_code(code, self)?;
                    }
                } else {
                    let start = self.pos;
                    if self.bytes.len() < start + 4 {
                        return Err(self.error("invalid \\u escape in a string"));
                    }
                    let code = u32::from_str_radix(&self.src[start..start + 4], 16)
                        .map_err(|_| self.error("invalid \\u escape in a string"))?;
                    self.pos += 4;
                    push_code(code, self)?;
                }
            }
            b'c' | b'C' | b'M' => {
                return Err(
                    self.error("control and meta escapes (\\c, \\C-, \\M-) are not supported")
                );
            }
            _ => {
                // Any other escaped character stands for itself (\\, \", \#, \').
                // Copy the whole UTF-8 character.
                let start = self.pos - 1;
                let len = self.src[start..]
                    .chars()
                    .next()
                    .map(char::len_utf8)
                    .unwrap_or(1);
                value.extend_from_slice(&self.bytes[start..start + len]);
                self.pos = start + len;
            }
        }
        Ok(())
    }

    /// `%w(...)`, `%q[...]`, `%(...)` and friends; returns false when `%` is not one.
    fn percent_literal(&mut self) -> Result<bool, LexError> {
        let mut i = self.pos + 1;
        let kind = match self.bytes.get(i) {
            Some(c) if b"qQwWiIsrx".contains(c) => {
                i += 1;
                Some(*c)
            }
            _ => None,
        };
        let Some(&open) = self.bytes.get(i) else {
            return Ok(false);
        };
        let close = match open {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            b'<' => b'>',
            c if c.is_ascii_punctuation() && kind.is_some() => c,
            b'|' | b'!' | b'/' | b'^' => open,
            _ => return Ok(false),
        };
        self.pos = i + 1;
        let nest = if open != close { Some(open) } else { None };
        match kind {
            Some(b'q') | Some(b'w') | Some(b'i') | Some(b's') => {
                self.single_quoted(close, nest)?;
            }
            _ => {
                self.double_quoted(close, nest)?;
            }
        }
        Ok(true)
    }

    /// `<<~EOS`, `<<-'EOS'`, `<<EOS`: records the terminator; the body is skipped after the
    /// current line ends. Returns false when `<<` is not a heredoc here.
    fn heredoc_start(&mut self) -> bool {
        let rest = &self.src[self.pos..];
        let Some(after) = rest.strip_prefix("<<") else {
            return false;
        };
        let (indented, after) = match after.as_bytes().first() {
            Some(b'~') | Some(b'-') => (true, &after[1..]),
            _ => (false, after),
        };
        let (quote, body) = match after.as_bytes().first() {
            Some(q @ (b'\'' | b'"' | b'`')) => (Some(*q), &after[1..]),
            _ => (None, after),
        };
        let name_len = body.bytes().take_while(|c| is_ident_char(*c)).count();
        if name_len == 0 || (quote.is_none() && !is_ident_start(body.as_bytes()[0])) {
            return false;
        }
        let name = body[..name_len].to_string();
        let mut consumed = rest.len() - body.len() + name_len;
        if let Some(q) = quote {
            if body.as_bytes().get(name_len) != Some(&q) {
                return false;
            }
            consumed += 1;
        }
        self.pos += consumed;
        self.pending_heredocs.push((name, indented));
        true
    }

    /// Skips the bodies of the heredocs opened on the line just ended.
    fn heredoc_bodies(&mut self) -> Result<(), LexError> {
        let pending = std::mem::take(&mut self.pending_heredocs);
        for (name, indented) in pending {
            let start_line = self.line;
            loop {
                if self.pos >= self.bytes.len() {
                    return Err(LexError {
                        line: start_line,
                        message: format!("heredoc `{name}` is not terminated"),
                    });
                }
                let end = self.src[self.pos..]
                    .find('\n')
                    .map(|i| self.pos + i + 1)
                    .unwrap_or(self.src.len());
                let line_text = self.src[self.pos..end].trim_end_matches(['\n', '\r']);
                let candidate = if indented {
                    line_text.trim_start()
                } else {
                    line_text
                };
                self.pos = end;
                self.line += 1;
                if candidate == name {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn unclosed_string(start_line: usize) -> LexError {
    LexError {
        line: start_line,
        message: "a string is not closed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(src: &str) -> Vec<(String, bool)> {
        tokenize(src)
            .unwrap()
            .into_iter()
            .filter_map(|t| match t.kind {
                TokenKind::Str { value, literal, .. } => Some((value, literal)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn single_quotes_keep_backslashes_except_quote_and_backslash() {
        assert_eq!(
            strings(r"'a\'b\\c\nd'"),
            vec![(r"a'b\c\nd".to_string(), true)]
        );
    }

    #[test]
    fn double_quotes_decode_escapes_and_spot_interpolation() {
        assert_eq!(
            strings(r#""a\"b\\c\td\#{x}""#),
            vec![("a\"b\\c\td#{x}".to_string(), true)]
        );
        assert_eq!(
            strings(r#""pre #{ "in" + x } post" 'z'"#),
            vec![("pre  post".to_string(), false), ("z".to_string(), true)]
        );
        assert_eq!(strings(r#""\u00e9\u{1F600}\x41\101""#)[0].0, "é😀AA");
    }

    #[test]
    fn comments_hide_code_and_strings_hide_hashes() {
        let tokens = tokenize("x = 'a # b' # c 'd'\n").unwrap();
        let kinds: Vec<_> = tokens.iter().map(|t| t.kind.clone()).collect();
        assert!(matches!(kinds[2], TokenKind::Str { ref value, .. } if value == "a # b"));
        assert_eq!(kinds[3], TokenKind::Comment);
        assert_eq!(kinds[4], TokenKind::Newline);
    }

    #[test]
    fn heredocs_percent_literals_and_block_comments_are_opaque() {
        let src = "a = <<~EOS\n  'x' # y\n  EOS\nb = %w(p 'q)\n=begin\n'\n=end\nc = 1 % 2\n";
        let tokens = tokenize(src).unwrap();
        let idents: Vec<_> = tokens
            .iter()
            .filter_map(|t| match &t.kind {
                TokenKind::Ident(n) => Some((n.as_str(), t.line)),
                _ => None,
            })
            .collect();
        assert_eq!(idents, vec![("a", 1), ("b", 4), ("c", 8)]);
        assert!(strings(src).is_empty());
    }

    #[test]
    fn unclosed_string_names_its_line() {
        let err = tokenize("a = 1\nb = 'open\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
