//! A parser for the `Debug` text of prost-generated messages.
//!
//! prost messages have no reflection, but `#[derive(prost::Message)]` writes a `Debug` impl whose
//! output is a complete and regular rendering of the decoded message: every field in declaration
//! order under its Rust name, `Some(..)`/`None` for optional fields, `[..]` for repeated fields
//! (bytes render as a list of numbers), `{k: v}` for maps, and strings/numbers in Rust's own
//! `Debug` syntax. This module turns that text back into a [`Node`] tree, which
//! [`crate::convert`] walks next to the JSON schema.
//!
//! The grammar accepted is exactly what prost 0.14 and std's `Debug` produce for the shapes that
//! occur in Kubernetes messages; anything else is an error, never a panic.

use std::fmt;

/// One value of a decoded message, as rendered by `Debug`.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// `Name { field: value, .. }`; a struct without fields prints as a bare `Name`.
    Struct(String, Vec<(String, Node)>),
    /// `Some(value)`: an optional field that was present on the wire.
    Some(Box<Node>),
    /// `None`: an optional field absent from the wire.
    None,
    /// `[a, b]`: a repeated field.
    List(Vec<Node>),
    /// A non-empty list of integers only: a repeated integer field or, most often, the bytes of
    /// a `bytes` field. Kept apart because a megabyte of Secret data is a million of them.
    Ints(Vec<i64>),
    /// `{k: v}`: a map field.
    Map(Vec<(Node, Node)>),
    /// A string, unescaped.
    Str(String),
    /// A number exactly as printed (`-3`, `1.5`, `1e-7`, `NaN`, `inf`).
    Num(String),
    Bool(bool),
}

/// Where the text stopped making sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub what: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.what, self.offset)
    }
}

/// Nesting beyond this is refused. prost stops decoding at 100 nested messages and each
/// message adds at most three levels here (`Some`, struct, list or map).
const MAX_DEPTH: usize = 400;

/// Parses the whole of `text` as one value.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let mut p = Parser { s: text, pos: 0 };
    let node = p.value(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(p.err("trailing text"));
    }
    Ok(node)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> ParseError {
        ParseError {
            offset: self.pos,
            what,
        }
    }

    // The grammar's punctuation is ASCII, so the parser steps through bytes and slices the
    // text only at ASCII positions, which are always character boundaries.

    fn rest(&self) -> &str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn byte(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Advances past bytes matching `pred`.
    fn skip_while(&mut self, pred: impl Fn(u8) -> bool) {
        while self.byte().is_some_and(&pred) {
            self.pos += 1;
        }
    }

    fn skip_ws(&mut self) {
        self.skip_while(|b| b == b' ');
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.byte() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.skip_ws();
        match self.byte() {
            Some(b'"') => self.string().map(Node::Str),
            Some(b'[') => {
                self.pos += 1;
                if let Some(ints) = self.ints() {
                    return Ok(Node::Ints(ints));
                }
                self.list(depth).map(Node::List)
            }
            Some(b'{') => {
                self.pos += 1;
                self.map(depth).map(Node::Map)
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => Ok(Node::Num(self.number())),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.named(depth),
            Some(_) => Err(self.err("unexpected character")),
            None => Err(self.err("unexpected end of text")),
        }
    }

    /// A value that starts with an identifier: a struct, `Some(..)`, `None`, a bool, or one of
    /// the non-finite floats.
    fn named(&mut self, depth: usize) -> Result<Node, ParseError> {
        let name = self.ident();
        match name {
            "None" => return Ok(Node::None),
            "true" => return Ok(Node::Bool(true)),
            "false" => return Ok(Node::Bool(false)),
            "NaN" | "inf" => return Ok(Node::Num(name.to_string())),
            _ => {}
        }
        let name = name.to_string();
        if name == "Some" && self.eat(b'(') {
            let inner = self.value(depth + 1)?;
            self.expect(b')', "expected ')' closing Some(")?;
            return Ok(Node::Some(Box::new(inner)));
        }
        if !self.eat(b'{') {
            // `debug_struct` with no fields prints only the name.
            return Ok(Node::Struct(name, Vec::new()));
        }
        let mut fields = Vec::new();
        if self.eat(b'}') {
            return Ok(Node::Struct(name, fields));
        }
        loop {
            self.skip_ws();
            let field = self.ident().to_string();
            if field.is_empty() {
                return Err(self.err("expected a field name"));
            }
            self.expect(b':', "expected ':' after a field name")?;
            let value = self.value(depth + 1)?;
            fields.push((field, value));
            if self.eat(b'}') {
                return Ok(Node::Struct(name, fields));
            }
            self.expect(b',', "expected ',' or '}' in a struct")?;
        }
    }

    /// After `[`: the list if it holds only integers (and at least one), consuming it up to and
    /// including `]`; otherwise nothing is consumed.
    fn ints(&mut self) -> Option<Vec<i64>> {
        let start = self.pos;
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            match self.number_text().parse::<i64>() {
                Ok(n) => out.push(n),
                Err(_) => break,
            }
            if self.eat(b']') {
                return Some(out);
            }
            if !self.eat(b',') {
                break;
            }
        }
        self.pos = start;
        None
    }

    fn list(&mut self, depth: usize) -> Result<Vec<Node>, ParseError> {
        let mut items = Vec::new();
        if self.eat(b']') {
            return Ok(items);
        }
        loop {
            items.push(self.value(depth + 1)?);
            if self.eat(b']') {
                return Ok(items);
            }
            self.expect(b',', "expected ',' or ']' in a list")?;
        }
    }

    fn map(&mut self, depth: usize) -> Result<Vec<(Node, Node)>, ParseError> {
        let mut entries = Vec::new();
        if self.eat(b'}') {
            return Ok(entries);
        }
        loop {
            let key = self.value(depth + 1)?;
            self.expect(b':', "expected ':' after a map key")?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            if self.eat(b'}') {
                return Ok(entries);
            }
            self.expect(b',', "expected ',' or '}' in a map")?;
        }
    }

    /// A Rust identifier, including raw ones such as `r#type`.
    fn ident(&mut self) -> &str {
        let start = self.pos;
        self.skip_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'#');
        self.s.get(start..self.pos).unwrap_or("")
    }

    fn number(&mut self) -> String {
        self.number_text().to_string()
    }

    /// The text of a number token (empty if there is none).
    fn number_text(&mut self) -> &str {
        let start = self.pos;
        if self.rest().starts_with("-inf") {
            self.pos += 4;
        } else {
            self.skip_while(|b| {
                b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
            });
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    /// A string in `<str as Debug>` syntax: `"` delimited, with `\\ \" \' \n \r \t \0` and
    /// `\u{hex}` escapes; every other character appears as itself.
    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            self.skip_while(|b| b != b'"' && b != b'\\');
            out.push_str(self.s.get(start..self.pos).unwrap_or(""));
            let Some(c) = self.byte() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            if c == b'"' {
                return Ok(out);
            }
            let Some(e) = self.byte() else {
                return Err(self.err("unterminated escape"));
            };
            self.pos += 1;
            match e {
                b'\\' | b'"' | b'\'' => out.push(char::from(e)),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'0' => out.push('\0'),
                b'u' => out.push(self.unicode_escape()?),
                _ => return Err(self.err("unknown string escape")),
            }
        }
    }

    /// The `{hex}` part of a `\u{hex}` escape.
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        if !self.rest().starts_with('{') {
            return Err(self.err("expected '{' in a \\u escape"));
        }
        let Some(end) = self.rest().find('}') else {
            return Err(self.err("unterminated \\u escape"));
        };
        let hex = self.rest().get(1..end).unwrap_or("");
        let c = u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.err("invalid \\u escape"))?;
        self.pos += end + 1;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Node {
        Node::Str(v.to_string())
    }

    #[test]
    fn parses_nested_structs_options_lists_and_maps() {
        let text = r#"Outer { r#type: Some("a\"b\\c\n\u{1}é'"), n: Some(-42), f: None, b: Some(false), list: [Inner { x: [1, 2] }, Empty], map: {"k": Some(1.5e-7), "": NaN} }"#;
        let node = parse(text).expect("parses");
        assert_eq!(
            node,
            Node::Struct(
                "Outer".into(),
                vec![
                    ("r#type".into(), Node::Some(Box::new(s("a\"b\\c\n\u{1}é'")))),
                    ("n".into(), Node::Some(Box::new(Node::Num("-42".into())))),
                    ("f".into(), Node::None),
                    ("b".into(), Node::Some(Box::new(Node::Bool(false)))),
                    (
                        "list".into(),
                        Node::List(vec![
                            Node::Struct(
                                "Inner".into(),
                                vec![("x".into(), Node::Ints(vec![1, 2]))]
                            ),
                            Node::Struct("Empty".into(), vec![]),
                        ])
                    ),
                    (
                        "map".into(),
                        Node::Map(vec![
                            (s("k"), Node::Some(Box::new(Node::Num("1.5e-7".into())))),
                            (s(""), Node::Num("NaN".into())),
                        ])
                    ),
                ]
            )
        );
    }

    #[test]
    fn round_trips_what_std_debug_prints_for_awkward_strings() {
        let awkward =
            "tab\there \"quoted\" back\\slash nul\0 bell\u{7} zero-width\u{200b} ünï 日本 'single'";
        let text = format!("{:?}", Some(awkward));
        assert_eq!(parse(&text), Ok(Node::Some(Box::new(s(awkward)))));
    }

    #[test]
    fn integer_lists_are_compact_and_other_lists_are_not() {
        assert_eq!(parse("[0, -5, 255]"), Ok(Node::Ints(vec![0, -5, 255])));
        assert_eq!(parse("[]"), Ok(Node::List(vec![])));
        assert_eq!(
            parse("[1, 2.5]"),
            Ok(Node::List(vec![
                Node::Num("1".into()),
                Node::Num("2.5".into())
            ]))
        );
        assert_eq!(
            parse("[1, \"a\"]"),
            Ok(Node::List(vec![
                Node::Num("1".into()),
                Node::Str("a".into())
            ]))
        );
        assert_eq!(
            parse("[99999999999999999999]"),
            Ok(Node::List(vec![Node::Num("99999999999999999999".into())]))
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "",
            "Some(",
            "X { a 1 }",
            "[1, 2",
            "\"open",
            "\"\\q\"",
            "\"\\u{110000}\"",
            "X { a: 1 } tail",
            "@",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn refuses_unbounded_nesting() {
        let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(parse(&deep).map_err(|e| e.what), Err("nesting too deep"));
    }
}
