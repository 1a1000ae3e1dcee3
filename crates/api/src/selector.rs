//! Label and field selectors: parsing (upstream syntax and errors) and matching.
//!
//! * [`LabelSelector`] is what `?labelSelector=` and the structured `spec.selector` of workloads
//!   mean. It parses the string syntax exactly as apimachinery's `labels.Parse` does — the same
//!   tokens, the same leniencies (`x in ()` is the set `{""}`), the same error texts
//!   (`unable to parse requirement: ...`, `found ',', expected: ...`) — because clients show
//!   those messages verbatim in the 400 `Status`. Its [`Display`](fmt::Display) is upstream's
//!   canonical form (requirements sorted by key, set values sorted), which is what a Scale's
//!   `status.selector` and `kubectl describe` show.
//! * [`FieldSelector`] is `?fieldSelector=`: `f=v`, `f==v`, `f!=v` terms joined by `,`, values
//!   escaped with `\`, as in apimachinery's `fields.ParseSelector`. Which field names a resource
//!   accepts is the server's decision; [`FieldSelector::fields`] lists them and
//!   [`SelectorError`] carries upstream's rejection texts.
//! * [`field_value`] computes a resource's selectable field from its JSON the way upstream's
//!   `ToSelectableFields` functions do (Go zero values when absent).
//!
//! Guarantees: parsing never panics, whatever the input; matching never allocates (the watch
//! cache runs it over every cached object of a list).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::hash::BuildHasher;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::Value;

use crate::resources::{ResourceInfo, SelectableField};
use crate::status::ApiError;
use crate::validation;

/// Why a selector was rejected. `Display` is the message of the 400 `Status`, worded as upstream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A `labelSelector` string that does not parse or names an invalid key or value.
    #[error("{0}")]
    Label(String),
    /// A requirement built from structured input (a `LabelSelector` object) that fails
    /// validation; the text is upstream's aggregated field errors.
    #[error("{0}")]
    Requirement(String),
    /// A `matchExpressions[].operator` other than In, NotIn, Exists and DoesNotExist.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    InvalidOperator(String),
    /// A `fieldSelector` term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldSyntax { selector: String, term: String },
    /// A `\` in a field selector value not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A bare `,` or `=` in a field selector value. Upstream prints the character as its code
    /// point (`... in value: 61` for `=`); so do we.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
    /// A field the resource does not support, for resources with their own field list
    /// (pods, nodes, events, secrets, services, namespaces, replication controllers, CRDs).
    #[error("field label not supported: {0}")]
    FieldLabelNotSupported(String),
    /// A field the resource does not support, for resources that only know the two metadata
    /// fields (upstream's default conversion).
    #[error(
        "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        go_quote(.0)
    )]
    UnknownFieldSelector(String),
}

impl From<SelectorError> for ApiError {
    /// Every selector error is the client's fault: 400 BadRequest, as upstream's list handler
    /// answers a bad `labelSelector` or `fieldSelector`.
    fn from(e: SelectorError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering values the way Go does, so error texts match upstream byte for byte.

/// Go's `%q` (`strconv.Quote`): how `field.Invalid` renders a string value.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint`: controls, format characters and every space but
/// U+0020 are escaped. Only reachable with keys/values that are invalid anyway.
fn is_go_printable(c: char) -> bool {
    c == ' '
        || !(c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{feff}'))
}

/// How `field.Invalid` renders a `[]string` bad value: `json.Marshal`, where a nil slice is
/// `null` (upstream hands over `nil` whenever a requirement has no values).
fn go_json_list(values: &[String]) -> String {
    if values.is_empty() {
        return "null".to_string();
    }
    let mut out = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                // Go escapes HTML-significant characters and the JS line separators.
                c if u32::from(c) < 0x20
                    || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') =>
                {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

/// Upstream's `field.ErrorList` + `ToAggregate()` for the one error type selectors produce:
/// duplicates dropped, one error printed bare, several as `[a, b]`.
#[derive(Default)]
struct ErrorList(Vec<String>);

impl ErrorList {
    fn invalid(&mut self, field: &str, rendered_value: String, detail: &str) {
        let msg = format!("{field}: Invalid value: {rendered_value}: {detail}");
        if !self.0.contains(&msg) {
            self.0.push(msg);
        }
    }

    fn into_result(self) -> Result<(), String> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0.concat()),
            _ => Err(format!("[{}]", self.0.join(", "))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Label selectors.

/// Read access to a set of labels, so selectors can match typed maps and raw JSON alike without
/// copying them.
pub trait Labels {
    /// The value of label `key`, if the label is present.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A `metadata.labels` JSON object; a non-string value counts as absent.
impl Labels for serde_json::Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

/// Absent labels (`ObjectMeta::labels` is an `Option`) are the empty set.
impl<T: Labels> Labels for Option<T> {
    fn label(&self, key: &str) -> Option<&str> {
        self.as_ref().and_then(|l| l.label(key))
    }
}

impl<T: Labels + ?Sized> Labels for &T {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

/// How a requirement relates a label to its values (upstream's `selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    /// `a=b`.
    Equals,
    /// `a==b`; kept apart from `Equals` only so the string form round-trips.
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    /// `a>1`: the label parses as an integer greater than the value.
    GreaterThan,
    /// `a<1`.
    LessThan,
}

impl Operator {
    /// Upstream's operator string (`in`, `!=`, `exists`, `gt`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One condition on one label. Always valid: the constructors validate as upstream's
/// `NewRequirement` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Parsed requirements hold these sorted and unique; structured ones keep the given order.
    values: Vec<String>,
    /// The integer bound of `GreaterThan`/`LessThan`, parsed once at construction.
    bound: i64,
}

impl Requirement {
    /// Builds and validates a requirement: the key must be a qualified name, every value a label
    /// value, and the number of values must suit the operator.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        Self::build(key, operator, values).map_err(SelectorError::Requirement)
    }

    /// Upstream's `NewRequirement` with a nil path: errors name `key`, `values`, `values[i]` and
    /// `values[i][key]`.
    fn build(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, String> {
        let mut errs = ErrorList::default();
        let key_errs = validation::qualified_name(key);
        if !key_errs.is_empty() {
            errs.invalid("key", go_quote(key), &key_errs.join("; "));
        }
        let mut bound = 0;
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.invalid(
                        "values",
                        go_json_list(&values),
                        "for 'in', 'notin' operators, values set can't be empty",
                    );
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.invalid(
                        "values",
                        go_json_list(&values),
                        "exact-match compatibility requires one single value",
                    );
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.invalid(
                        "values",
                        go_json_list(&values),
                        "values set must be empty for exists and does not exist",
                    );
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.invalid(
                        "values",
                        go_json_list(&values),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    );
                }
                for (i, v) in values.iter().enumerate() {
                    match v.parse::<i64>() {
                        Ok(n) => bound = n,
                        Err(_) => errs.invalid(
                            &format!("values[{i}]"),
                            go_quote(v),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ),
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = validation::label_value(v);
            if !value_errs.is_empty() {
                errs.invalid(
                    &format!("values[{i}][{key}]"),
                    go_quote(v),
                    &value_errs.join("; "),
                );
            }
        }
        errs.into_result()?;
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
            bound,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Whether `labels` satisfy this requirement. `!=` and `notin` hold for objects without the
    /// label; `>`/`<` never hold for a label that is not an integer.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.label(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|n| n > self.bound),
            Operator::LessThan => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|n| n < self.bound),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, open, close) = match self.operator {
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Exists => return f.write_str(&self.key),
            Operator::Equals => ("=", "", ""),
            Operator::DoubleEquals => ("==", "", ""),
            Operator::NotEquals => ("!=", "", ""),
            Operator::GreaterThan => (">", "", ""),
            Operator::LessThan => ("<", "", ""),
            Operator::In => (" in ", "(", ")"),
            Operator::NotIn => (" notin ", "(", ")"),
        };
        write!(f, "{}{op}{open}", self.key)?;
        // Values print sorted (upstream's `safeSort`), without reordering the requirement.
        if self.values.is_sorted() {
            write_joined(f, self.values.iter().map(String::as_str))?;
        } else {
            let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            write_joined(f, sorted.into_iter())?;
        }
        f.write_str(close)
    }
}

fn write_joined<'a>(
    f: &mut fmt::Formatter<'_>,
    items: impl Iterator<Item = &'a str>,
) -> fmt::Result {
    for (i, v) in items.enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        f.write_str(v)?;
    }
    Ok(())
}

/// A label selector: the AND of its requirements. The default selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Sorted by key (stable, so equal keys keep their input order) — upstream's `ByKey` order,
    /// which makes the string form deterministic.
    requirements: Vec<Requirement>,
    /// Upstream's `labels.Nothing()`: what a missing (`null`) structured selector means.
    nothing: bool,
}

impl LabelSelector {
    /// Selects every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Selects no object (a workload whose `spec.selector` is null).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `labelSelector` string syntax; the empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Parser::new(s).parse().map_err(SelectorError::Label)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Converts a structured selector (`matchLabels` + `matchExpressions`), as upstream's
    /// `LabelSelectorAsSelector`: an empty one selects everything; the first invalid entry
    /// (labels in key order, then expressions in order) is the error.
    pub fn from_k8s(sel: &metav1::LabelSelector) -> Result<Self, SelectorError> {
        let labels = sel.match_labels.as_ref();
        let exprs = sel.match_expressions.as_deref().unwrap_or_default();
        let mut requirements = Vec::with_capacity(labels.map_or(0, BTreeMap::len) + exprs.len());
        for (k, v) in labels.into_iter().flatten() {
            requirements.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
        }
        for e in exprs {
            let op = match e.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::InvalidOperator(other.to_string())),
            };
            requirements.push(Requirement::new(
                &e.key,
                op,
                e.values.clone().unwrap_or_default(),
            )?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// As [`from_k8s`](Self::from_k8s), with a missing selector selecting nothing.
    pub fn from_k8s_opt(sel: Option<&metav1::LabelSelector>) -> Result<Self, SelectorError> {
        match sel {
            Some(s) => Self::from_k8s(s),
            None => Ok(Self::nothing()),
        }
    }

    /// `key=value` for every entry of `set` (a Service's or ReplicationController's selector map),
    /// without validation, as upstream's `SelectorFromSet`; an empty set selects everything.
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        // BTreeMap iteration is already in key order.
        let requirements = set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
                bound: 0,
            })
            .collect();
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Adds a requirement, keeping key order (after existing requirements with the same key).
    /// Adding to the nothing selector leaves it selecting nothing, as upstream.
    pub fn add(&mut self, r: Requirement) {
        if self.nothing {
            return;
        }
        let at = self.requirements.partition_point(|x| x.key <= r.key);
        self.requirements.insert(at, r);
    }

    /// True when the selector does not restrict anything (upstream's `Empty()`).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for [`LabelSelector::nothing`].
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The single value label `key` must have, if the selector pins it (`key=v`, `key==v` or
    /// `key in (v)`); decided by the first requirement on `key`, as upstream.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }

    /// Whether an object with `labels` is selected.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether a JSON object is selected, by its `metadata.labels`.
    pub fn matches_object(&self, object: &Value) -> bool {
        let labels = object
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.matches(&labels)
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form; empty for both everything and nothing, as upstream.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nothing {
            return Ok(());
        }
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, SelectorError> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// The label selector lexer and parser. They follow apimachinery's state machine step for step
// (including which literal each error quotes), since the error texts are part of the API.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn special_token(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// The next byte, or 0 at the end. Like upstream, a NUL byte in the input reads as an end
    /// marker (it ends the token it is in) but is consumed.
    fn read(&mut self) -> u8 {
        match self.s.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    /// Slices the input; token boundaries always sit next to ASCII bytes, so this cannot split a
    /// character, but a bad range yields "" rather than a panic.
    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.s.get(from..to).unwrap_or_default()
    }

    fn lex(&mut self) -> (Token, &'a str) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, "");
        }
        self.unread();
        if is_special(ch) {
            self.scan_special()
        } else {
            self.scan_identifier_or_keyword()
        }
    }

    fn scan_identifier_or_keyword(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let mut end = start;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            end = self.pos;
        }
        let lit = self.slice(start, end);
        let tok = match lit {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Identifier,
        };
        (tok, lit)
    }

    /// The longest operator at the current position (`!=` rather than `!`).
    fn scan_special(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special(ch) {
                self.unread();
                break;
            }
            match special_token(self.slice(start, self.pos)) {
                Some(tok) => last = Some((tok, self.pos)),
                None if last.is_some() => {
                    self.unread();
                    break;
                }
                None => {}
            }
        }
        match last {
            Some((tok, end)) => (tok, self.slice(start, end)),
            // Unreachable (every single special character is a token), kept for totality.
            None => (Token::Error, self.slice(start, self.pos)),
        }
    }
}

/// Whether `in`/`notin` are operators (after a key) or plain identifiers (everywhere else:
/// `in=notin` and `a in (in)` are valid).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser<'a> {
    items: Vec<(Token, &'a str)>,
    position: usize,
}

/// Upstream's list of binary operators, as its error message prints them.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        let mut lexer = Lexer { s, pos: 0 };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            items.push(item);
            if item.0 == Token::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn lookahead(&self, ctx: Context) -> (Token, &'a str) {
        let (tok, lit) = self
            .items
            .get(self.position)
            .copied()
            .unwrap_or((Token::EndOfString, ""));
        match (ctx, tok) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn consume(&mut self, ctx: Context) -> (Token, &'a str) {
        let item = self.lookahead(ctx);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = inferred {
            return Requirement::build(key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        // Values are a set: sorted, duplicates dropped.
        let values = values.into_iter().map(str::to_string).collect();
        Requirement::build(key, op, values)
    }

    /// The key, and `Exists`/`DoesNotExist` when no binary operator follows it. A `!key`
    /// followed by something else stays `DoesNotExist`; the caller then trips over the rest.
    fn parse_key_and_infer_operator(&mut self) -> Result<(&'a str, Option<Operator>), String> {
        let (mut tok, mut lit) = self.consume(Context::Values);
        let mut op = None;
        if tok == Token::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let errs = validation::qualified_name(lit);
        if !errs.is_empty() {
            // Upstream validates with a nil field path, which prints as `<nil>`.
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                go_quote(lit),
                errs.join("; ")
            ));
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
        })
    }

    /// `(a,b,...)`; `()` is the set holding only the empty string.
    fn parse_values(&mut self) -> Result<BTreeSet<&'a str>, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (closing, _) = self.consume(Context::Values);
                if closing != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([""]))
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    /// A comma-separated list whose empty entries are the empty string (`(a,,b)`, `(,a)`,
    /// `(a,)`). Leaves the closing `)` for the caller.
    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<&'a str>, String> {
        let mut set = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (next, next_lit) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{next_lit}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert("");
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        set.insert("");
                        return Ok(set);
                    }
                    if next == Token::Comma {
                        set.insert("");
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`; nothing (`a=`) is the empty string.
    fn parse_exact_value(&mut self) -> Result<BTreeSet<&'a str>, String> {
        let (next, _) = self.lookahead(Context::Values);
        if next == Token::EndOfString || next == Token::Comma {
            return Ok(BTreeSet::from([""]));
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(BTreeSet::from([lit]))
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors.

/// `=`/`==` or `!=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    Equals,
    NotEquals,
}

/// One term of a field selector, with its value unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    fn holds(&self, actual: FieldValue<'_>) -> bool {
        let eq = actual.eq_str(&self.value);
        match self.operator {
            FieldOperator::Equals => eq,
            FieldOperator::NotEquals => !eq,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// A field selector: the AND of its terms. The default selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// In the order of their raw text, sorted (upstream sorts terms before parsing them).
    terms: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    /// `field=value` (what a kubelet asks for: `spec.nodeName=<node>`).
    pub fn one_term_equal(field: &str, value: &str) -> Self {
        FieldSelector {
            terms: vec![FieldRequirement {
                field: field.to_string(),
                operator: FieldOperator::Equals,
                value: value.to_string(),
            }],
        }
    }

    /// Parses the `fieldSelector` syntax. Whitespace is not trimmed (`a = b` is the field `a `);
    /// empty terms are skipped; a term with both an empty field and an empty value (`=`) means
    /// nothing and is dropped, as upstream. The field names are not checked here: see
    /// [`FieldSelector::fields`].
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, raw)) = split_term(part) else {
                return Err(SelectorError::FieldSyntax {
                    selector: selector.to_string(),
                    term: part.to_string(),
                });
            };
            let value = unescape_value(raw)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            terms.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    pub fn is_everything(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// The field names the selector uses, in term order (a name may repeat).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.field.as_str())
    }

    /// The first field (in term order, which is the order upstream checks them) for which
    /// `is_supported` says no; the server turns it into
    /// [`SelectorError::FieldLabelNotSupported`] or [`SelectorError::UnknownFieldSelector`].
    pub fn unsupported_field(&self, mut is_supported: impl FnMut(&str) -> bool) -> Option<&str> {
        self.fields().find(|f| !is_supported(f))
    }

    /// Renames `from` to `to` in every term (upstream's field label conversion, e.g. a pod's
    /// legacy `spec.host` is `spec.nodeName`).
    pub fn rename_field(&mut self, from: &str, to: &str) {
        for t in &mut self.terms {
            if t.field == from {
                t.field = to.to_string();
            }
        }
    }

    /// The value `field` must equal, if some term says `field=value` (the first such term).
    /// The server uses this to answer from an index (`metadata.name`, `spec.nodeName`).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.operator == FieldOperator::Equals && t.field == field)
            .map(|t| t.value.as_str())
    }

    /// Every `field=value` term, in order.
    pub fn exact_matches(&self) -> impl Iterator<Item = (&str, &str)> {
        self.terms
            .iter()
            .filter(|t| t.operator == FieldOperator::Equals)
            .map(|t| (t.field.as_str(), t.value.as_str()))
    }

    /// Whether an object is selected, given the value of each field it has. A field the lookup
    /// does not know reads as the empty string, as in upstream's `fields.Set`.
    pub fn matches<'v, V, F>(&self, mut value_of: F) -> bool
    where
        F: FnMut(&str) -> Option<V>,
        V: Into<FieldValue<'v>>,
    {
        self.terms.iter().all(|t| {
            let actual = value_of(&t.field).map_or(FieldValue::Str(""), Into::into);
            t.holds(actual)
        })
    }

    /// Whether a JSON object of `resource` is selected, reading each field from the object
    /// through the resource's selectable fields (fields it does not have read as "").
    pub fn matches_object(&self, resource: &ResourceInfo, object: &Value) -> bool {
        self.matches(|name| {
            resource
                .selectable_field(name)
                .map(|f| field_value_ref(object, &f))
        })
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical string form: terms in sorted order, `==` written `=`, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, SelectorError> {
        Self::parse(s)
    }
}

/// Splits on commas not preceded by an escaping backslash; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::with_capacity(1);
    let mut start = 0;
    let mut in_slash = false;
    // Byte-wise is exact: `\` and `,` are ASCII and never occur inside a multi-byte character.
    for (i, b) in selector.bytes().enumerate() {
        if in_slash {
            in_slash = false;
        } else if b == b'\\' {
            in_slash = true;
        } else if b == b',' {
            terms.push(selector.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    terms.push(selector.get(start..).unwrap_or_default());
    terms
}

/// Splits a term at the first operator; `!=` and `==` win over `=` at the same position. The
/// field part cannot be escaped, so the first operator is the split point.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    let bytes = term.as_bytes();
    for i in 0..bytes.len() {
        let rest = &bytes[i..];
        let (op, len) = if rest.starts_with(b"!=") {
            (FieldOperator::NotEquals, 2)
        } else if rest.starts_with(b"==") {
            (FieldOperator::Equals, 2)
        } else if rest.starts_with(b"=") {
            (FieldOperator::Equals, 1)
        } else {
            continue;
        };
        let field = term.get(..i)?;
        let value = term.get(i + len..)?;
        return Some((field, op, value));
    }
    None
}

/// Escapes `\`, `,` and `=` so an arbitrary string can be a field selector value.
pub fn escape_value(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\\', ',', '=']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// Reverses [`escape_value`]; a bare `,`/`=` or a `\` before anything else is an error.
pub fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::InvalidEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::UnescapedCharacter(c)),
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Field values.

/// The value of a selectable field, borrowed from the object where possible so matching does
/// not allocate. Compares with selector values by its string form (`true`, `3`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl FieldValue<'_> {
    /// Whether the value's string form is exactly `s`, without building that string.
    pub fn eq_str(&self, s: &str) -> bool {
        match *self {
            FieldValue::Str(v) => v == s,
            FieldValue::Bool(b) => s == if b { "true" } else { "false" },
            _ => {
                let mut w = PrefixMatcher { rest: s };
                write!(w, "{self}").is_ok() && w.rest.is_empty()
            }
        }
    }
}

impl<'a> From<&'a str> for FieldValue<'a> {
    fn from(s: &'a str) -> Self {
        FieldValue::Str(s)
    }
}

impl<'a> From<&'a String> for FieldValue<'a> {
    fn from(s: &'a String) -> Self {
        FieldValue::Str(s)
    }
}

impl fmt::Display for FieldValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Str(s) => f.write_str(s),
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Int(n) => write!(f, "{n}"),
            FieldValue::UInt(n) => write!(f, "{n}"),
            FieldValue::Float(x) => write!(f, "{x}"),
        }
    }
}

/// A `fmt::Write` sink that checks the text written is a prefix of `rest`, consuming it; fails
/// at the first difference.
struct PrefixMatcher<'s> {
    rest: &'s str,
}

impl fmt::Write for PrefixMatcher<'_> {
    fn write_str(&mut self, chunk: &str) -> fmt::Result {
        match self.rest.strip_prefix(chunk) {
            Some(r) => {
                self.rest = r;
                Ok(())
            }
            None => Err(fmt::Error),
        }
    }
}

/// The value of `field` in `object`: the dotted path followed through nested objects; strings
/// as they are, booleans and numbers in their decimal form; absent, `null` or not a scalar →
/// the field's default (the Go zero value upstream's typed structs would hold).
pub fn field_value_ref<'a>(object: &'a Value, field: &SelectableField) -> FieldValue<'a> {
    let mut cur = object;
    for segment in field.path.split('.') {
        match cur.get(segment) {
            Some(v) => cur = v,
            None => return FieldValue::Str(field.default),
        }
    }
    match cur {
        Value::String(s) => FieldValue::Str(s),
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                FieldValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                FieldValue::UInt(u)
            } else {
                FieldValue::Float(n.as_f64().unwrap_or_default())
            }
        }
        Value::Null | Value::Array(_) | Value::Object(_) => FieldValue::Str(field.default),
    }
}

/// [`field_value_ref`] as an owned string (for caches that precompute field values).
pub fn field_value(object: &Value, field: &SelectableField) -> String {
    field_value_ref(object, field).to_string()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "in tests a panic is a failure with a backtrace"
)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Upstream's label value message (`validation.IsValidLabelValue`).
    const BAD_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    /// Upstream's qualified-name message for the name part.
    const BAD_NAME: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse_err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(sel) => panic!("{s:?} parsed as {sel}, expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn label_parse_canonical_form() {
        // (input, canonical string): requirements sorted by key, set values sorted and unique,
        // whitespace dropped, `==` kept.
        let cases = [
            ("", ""),
            ("x=a,y=b,z=c", "x=a,y=b,z=c"),
            ("x!=a,y=b", "x!=a,y=b"),
            ("x=", "x="),
            ("x= ", "x="),
            ("x=,z= ", "x=,z="),
            ("x= ,z= ", "x=,z="),
            ("!x", "!x"),
            ("x>1", "x>1"),
            ("x>1,z<5", "x>1,z<5"),
            ("x==a", "x==a"),
            ("x=a,a=x", "a=x,x=a"),
            ("\rx", "x"),
            ("  a  ", "a"),
            ("foo  in\t (abc)", "foo in (abc)"),
            ("x notin\n (abc)", "x notin (abc)"),
            ("x  notin\t\t(abc,def)", "x notin (abc,def)"),
            ("x in (def,abc)", "x in (abc,def)"),
            ("x in (abc,)", "x in (,abc)"),
            ("x in (abc,abc)", "x in (abc)"),
            ("x in ()", "x in ()"),
            ("x notin ( )", "x notin ()"),
            ("x in (a,,)", "x in (,a)"),
            ("x in (a,,,)", "x in (,a)"),
            ("x in (a,,a,,a,,)", "x in (,a)"),
            ("x notin (, a)", "x notin (,a)"),
            (
                "x notin (abc,,def),bar,z in (),w",
                "bar,w,x notin (,abc,def),z in ()",
            ),
            ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
            ("notin=in", "notin=in"),
            ("in in (in)", "in in (in)"),
            (
                "this-is-a-dns.domain.com/key-with-dash",
                "this-is-a-dns.domain.com/key-with-dash",
            ),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
                "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
            ),
            // Equal keys keep their input order.
            ("z!=a,z", "z!=a,z"),
            ("z,z!=a", "z,z!=a"),
            (
                "app=web,tier in (b,a),!canary",
                "app=web,!canary,tier in (a,b)",
            ),
        ];
        for (input, want) in cases {
            let sel = LabelSelector::parse(input)
                .unwrap_or_else(|e| panic!("{input:?} failed to parse: {e}"));
            assert_eq!(sel.to_string(), want, "canonical form of {input:?}");
            // The canonical form parses back to the same selector.
            assert_eq!(
                LabelSelector::parse(want).ok(),
                Some(sel),
                "round trip of {input:?}"
            );
        }
    }

    #[test]
    fn label_parse_structure() {
        let sel = LabelSelector::parse("x in (b,a),!y,z").unwrap();
        let got: Vec<(&str, Operator, Vec<&str>)> = sel
            .requirements()
            .iter()
            .map(|r| {
                (
                    r.key(),
                    r.operator(),
                    r.values().iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("x", Operator::In, vec!["a", "b"]),
                ("y", Operator::DoesNotExist, vec![]),
                ("z", Operator::Exists, vec![]),
            ]
        );
        assert!(LabelSelector::parse("").unwrap().is_everything());
        assert!(!LabelSelector::parse("a").unwrap().is_everything());
    }

    #[test]
    fn label_parse_errors_match_upstream() {
        let long_value = format!("x={}", "a".repeat(64));
        let cases: Vec<(&str, String)> = vec![
            (
                "x=a||y=b",
                format!(
                    "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": {BAD_VALUE}"
                ),
            ),
            ("x==a==b", "found '==', expected: ',' or 'end of string'".into()),
            ("!x=a", "found '=', expected: ',' or 'end of string'".into()),
            (
                "x<a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
            ),
            ("x,,y", "found ',', expected: identifier after ','".into()),
            (",x,y", "found ',', expected: !, identifier, or 'end of string'".into()),
            (
                "x nott in (y)",
                "unable to parse requirement: found 'nott', expected: in, notin, =, ==, !=, gt, lt".into(),
            ),
            ("a in (xyz),", "found '', expected: identifier after ','".into()),
            ("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'".into()),
            (
                "a in (xyz abc)",
                "unable to parse requirement: found 'abc', expected: ',' or ')'".into(),
            ),
            (
                "a notin(",
                "unable to parse requirement: found '', expected: ',', ')' or identifier".into(),
            ),
            (
                "a (",
                "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt".into(),
            ),
            ("(", "found '(', expected: !, identifier, or 'end of string'".into()),
            ("x in y", "unable to parse requirement: found 'y' expected: '('".into()),
            (
                "x in (a,=)",
                "unable to parse requirement: found '=', expected: ',', or identifier".into(),
            ),
            ("x=(", "unable to parse requirement: found '(', expected: identifier".into()),
            ("!", "unable to parse requirement: found '', expected: identifier".into()),
            ("!!x", "unable to parse requirement: found '!', expected: identifier".into()),
            (
                "x/y/z=a",
                "unable to parse requirement: <nil>: Invalid value: \"x/y/z\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into(),
            ),
            (
                "Example.com/x",
                "unable to parse requirement: <nil>: Invalid value: \"Example.com/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into(),
            ),
            (
                "-x",
                format!("unable to parse requirement: <nil>: Invalid value: \"-x\": {BAD_NAME}"),
            ),
            (
                "x in (-a,b-)",
                format!(
                    "unable to parse requirement: [values[0][x]: Invalid value: \"-a\": {BAD_VALUE}, values[1][x]: Invalid value: \"b-\": {BAD_VALUE}]"
                ),
            ),
            (
                long_value.as_str(),
                format!(
                    "unable to parse requirement: values[0][x]: Invalid value: \"{}\": must be no more than 63 characters",
                    "a".repeat(64)
                ),
            ),
            (
                "x>-1",
                format!(
                    "unable to parse requirement: values[0][x]: Invalid value: \"-1\": {BAD_VALUE}"
                ),
            ),
            (
                "x=a b",
                "found 'b', expected: ',' or 'end of string'".into(),
            ),
            (
                "x=\"q\"",
                format!(
                    "unable to parse requirement: values[0][x]: Invalid value: \"\\\"q\\\"\": {BAD_VALUE}"
                ),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_err(input), want, "error for {input:?}");
        }
    }

    #[test]
    fn label_parse_never_panics_on_odd_input() {
        // Non-ASCII, NUL bytes and stray operators must produce an answer, not a panic. A NUL
        // ends the current token (upstream reads it as its end marker).
        for input in [
            "é",
            "é=é",
            "a=é",
            "a\0b",
            "\0",
            "x in (\0",
            "=",
            "!=",
            "==",
            "<>",
            ")(",
            "a in ((",
            "a,",
            ",",
            "!a!",
            "a=b)",
            "a in (b))",
            "ü in (ä,ö)",
        ] {
            let _ = LabelSelector::parse(input);
        }
        assert_eq!(LabelSelector::parse("\0").unwrap().to_string(), "");
        assert_eq!(
            parse_err("é"),
            "unable to parse requirement: <nil>: Invalid value: \"é\": ".to_string() + BAD_NAME
        );
    }

    #[test]
    fn label_lexer_tokens() {
        let cases: [(&str, &[Token]); 8] = [
            (
                "key in ( value )",
                &[
                    Token::Identifier,
                    Token::In,
                    Token::OpenPar,
                    Token::Identifier,
                    Token::ClosedPar,
                ],
            ),
            (
                "key notin ( value1, value2 )",
                &[
                    Token::Identifier,
                    Token::NotIn,
                    Token::OpenPar,
                    Token::Identifier,
                    Token::Comma,
                    Token::Identifier,
                    Token::ClosedPar,
                ],
            ),
            ("!key", &[Token::DoesNotExist, Token::Identifier]),
            (
                "x in (),y",
                &[
                    Token::Identifier,
                    Token::In,
                    Token::OpenPar,
                    Token::ClosedPar,
                    Token::Comma,
                    Token::Identifier,
                ],
            ),
            (
                "== != (), = notin",
                &[
                    Token::DoubleEquals,
                    Token::NotEquals,
                    Token::OpenPar,
                    Token::ClosedPar,
                    Token::Comma,
                    Token::Equals,
                    Token::NotIn,
                ],
            ),
            (
                "key>2",
                &[Token::Identifier, Token::GreaterThan, Token::Identifier],
            ),
            (
                "key<1",
                &[Token::Identifier, Token::LessThan, Token::Identifier],
            ),
            (
                "~ || =!",
                &[
                    Token::Identifier,
                    Token::Identifier,
                    Token::Equals,
                    Token::DoesNotExist,
                ],
            ),
        ];
        for (input, want) in cases {
            let mut lexer = Lexer { s: input, pos: 0 };
            let mut got = Vec::new();
            loop {
                let (tok, _) = lexer.lex();
                if tok == Token::EndOfString {
                    break;
                }
                got.push(tok);
            }
            assert_eq!(got, want, "tokens of {input:?}");
        }
    }

    #[test]
    fn label_matching() {
        // (selector, labels, selected?)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            ("", &[("x", "y")], true),
            ("", &[], true),
            ("x=y", &[("x", "y")], true),
            ("x=y", &[("x", "z")], false),
            ("x=z", &[], false),
            ("x==y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            // `!=` and `notin` select objects without the label.
            ("x!=y", &[], true),
            ("x notin (a)", &[], true),
            ("x notin (a)", &[("x", "a")], false),
            ("x notin (a)", &[("x", "b")], true),
            ("x in (a,b)", &[("x", "b")], true),
            ("x in (a,b)", &[("x", "c")], false),
            ("x in (a,b)", &[], false),
            ("notin=in", &[("notin", "in")], true),
            ("x", &[("x", "")], true),
            ("x", &[("y", "z")], false),
            ("!x", &[("y", "z")], true),
            ("!x", &[("x", "z")], false),
            ("x>1", &[("x", "2")], true),
            ("x>1", &[("x", "1")], false),
            ("x>1", &[("x", "0")], false),
            ("x>1", &[("x", "v2")], false),
            ("x>1", &[], false),
            ("x<1", &[("x", "0")], true),
            ("x<1", &[("x", "-5")], true),
            ("x<1", &[("x", "2")], false),
            ("x<10", &[("x", "+3")], true),
            ("x in ()", &[("x", "")], true),
            ("x in ()", &[("x", "a")], false),
            ("x in ()", &[], false),
            ("x=", &[("x", "")], true),
            ("x=", &[], false),
            ("x notin (),y", &[("y", "")], true),
            ("x notin (),!y", &[("y", "")], false),
            ("x,y in (a)", &[("x", "1")], false),
            (
                "foo=bar,foobar=bar,baz=blah",
                &[("foo", "bar"), ("baz", "blah")],
                false,
            ),
        ];
        for (selector, labels, want) in cases {
            let sel = LabelSelector::parse(selector).unwrap();
            let labels = set(labels);
            assert_eq!(sel.matches(&labels), *want, "{selector:?} on {labels:?}");
            // The same answer through every `Labels` implementation.
            let hash: HashMap<String, String> = labels.clone().into_iter().collect();
            assert_eq!(sel.matches(&hash), *want, "{selector:?} on a HashMap");
            let object = json!({"metadata": {"labels": labels}});
            assert_eq!(sel.matches_object(&object), *want, "{selector:?} on JSON");
        }
    }

    #[test]
    fn label_matching_absent_and_non_string_labels() {
        let none: Option<BTreeMap<String, String>> = None;
        assert!(LabelSelector::parse("x!=a").unwrap().matches(&none));
        assert!(!LabelSelector::parse("x").unwrap().matches(&none));
        assert!(
            LabelSelector::parse("!x")
                .unwrap()
                .matches_object(&json!({"metadata": {}}))
        );
        assert!(
            LabelSelector::parse("!x")
                .unwrap()
                .matches_object(&json!({}))
        );
        // A label that is not a string is not a label.
        let odd = json!({"metadata": {"labels": {"x": 1}}});
        assert!(!LabelSelector::parse("x").unwrap().matches_object(&odd));
    }

    fn k8s_selector(
        labels: &[(&str, &str)],
        exprs: &[(&str, &str, Option<&[&str]>)],
    ) -> metav1::LabelSelector {
        metav1::LabelSelector {
            match_labels: (!labels.is_empty()).then(|| set(labels)),
            match_expressions: (!exprs.is_empty()).then(|| {
                exprs
                    .iter()
                    .map(|(k, op, vals)| metav1::LabelSelectorRequirement {
                        key: k.to_string(),
                        operator: op.to_string(),
                        values: vals.map(|v| v.iter().map(|s| s.to_string()).collect()),
                    })
                    .collect()
            }),
        }
    }

    #[test]
    fn from_k8s_converts_and_renders() {
        let cases: Vec<(metav1::LabelSelector, &str)> = vec![
            (metav1::LabelSelector::default(), ""),
            (
                metav1::LabelSelector {
                    match_labels: Some(BTreeMap::new()),
                    match_expressions: Some(vec![]),
                },
                "",
            ),
            (k8s_selector(&[("app", "web")], &[]), "app=web"),
            (
                k8s_selector(&[("app", "web")], &[("tier", "In", Some(&["b", "a"]))]),
                "app=web,tier in (a,b)",
            ),
            (
                k8s_selector(
                    &[("z", "1"), ("a", "2")],
                    &[
                        ("m", "Exists", None),
                        ("b", "DoesNotExist", Some(&[])),
                        ("c", "NotIn", Some(&["x"])),
                    ],
                ),
                "a=2,!b,c notin (x),m,z=1",
            ),
            // Structured values are not deduplicated; they print sorted.
            (
                k8s_selector(&[], &[("k", "In", Some(&["b", "a", "b"]))]),
                "k in (a,b,b)",
            ),
            // The empty string is a valid value.
            (k8s_selector(&[("k", "")], &[]), "k="),
        ];
        for (sel, want) in cases {
            let got = LabelSelector::from_k8s(&sel).unwrap();
            assert_eq!(got.to_string(), want);
            assert!(!got.is_nothing());
        }
        assert!(
            LabelSelector::from_k8s(&metav1::LabelSelector::default())
                .unwrap()
                .is_everything()
        );
    }

    #[test]
    fn from_k8s_matches_like_parse() {
        let sel = LabelSelector::from_k8s(&k8s_selector(
            &[("app", "web")],
            &[("tier", "NotIn", Some(&["db"])), ("track", "Exists", None)],
        ))
        .unwrap();
        assert!(sel.matches(&set(&[("app", "web"), ("track", "x")])));
        assert!(!sel.matches(&set(&[("app", "web"), ("track", "x"), ("tier", "db")])));
        assert!(!sel.matches(&set(&[("app", "web")])));
        assert_eq!(sel.requires_exact_match("app"), Some("web"));
    }

    #[test]
    fn from_k8s_errors_match_upstream() {
        let cases: Vec<(metav1::LabelSelector, String)> = vec![
            (
                k8s_selector(&[], &[("k", "In", None)]),
                "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty".into(),
            ),
            (
                k8s_selector(&[], &[("k", "NotIn", Some(&[]))]),
                "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty".into(),
            ),
            (
                k8s_selector(&[], &[("k", "Exists", Some(&["a"]))]),
                "values: Invalid value: [\"a\"]: values set must be empty for exists and does not exist".into(),
            ),
            (
                k8s_selector(&[], &[("k", "DoesNotExist", Some(&["a", "<b>"]))]),
                format!(
                    "[values: Invalid value: [\"a\",\"\\u003cb\\u003e\"]: values set must be empty for exists and does not exist, values[1][k]: Invalid value: \"<b>\": {BAD_VALUE}]"
                ),
            ),
            (
                k8s_selector(&[], &[("k", "Equals", Some(&["a"]))]),
                "\"Equals\" is not a valid label selector operator".into(),
            ),
            (
                k8s_selector(&[], &[("k", "in", Some(&["a"]))]),
                "\"in\" is not a valid label selector operator".into(),
            ),
            (
                k8s_selector(&[("app", "-x")], &[]),
                format!("values[0][app]: Invalid value: \"-x\": {BAD_VALUE}"),
            ),
            (
                k8s_selector(&[], &[("a b", "Exists", None)]),
                format!("key: Invalid value: \"a b\": {BAD_NAME}"),
            ),
            // The first bad entry wins: labels (in key order) before expressions.
            (
                k8s_selector(&[("b", "-"), ("a", "-")], &[("k", "Bogus", None)]),
                format!("values[0][a]: Invalid value: \"-\": {BAD_VALUE}"),
            ),
        ];
        for (sel, want) in cases {
            let err = LabelSelector::from_k8s(&sel).expect_err("should fail");
            assert_eq!(err.to_string(), want, "for {sel:?}");
        }
    }

    #[test]
    fn nothing_selects_nothing() {
        let nothing = LabelSelector::from_k8s_opt(None).unwrap();
        assert!(nothing.is_nothing());
        assert!(!nothing.is_everything());
        assert!(!nothing.matches(&set(&[])));
        assert!(!nothing.matches(&set(&[("a", "b")])));
        assert_eq!(nothing.to_string(), "");
        let mut still = nothing.clone();
        still.add(Requirement::new("a", Operator::Exists, vec![]).unwrap());
        assert_eq!(still, nothing);
        assert!(LabelSelector::everything().matches(&set(&[("a", "b")])));
        assert!(LabelSelector::everything().is_everything());
    }

    #[test]
    fn from_set_and_add() {
        let mut sel = LabelSelector::from_set(&set(&[("b", "2"), ("a", "1")]));
        assert_eq!(sel.to_string(), "a=1,b=2");
        assert!(LabelSelector::from_set(&set(&[])).is_everything());
        sel.add(Requirement::new("a", Operator::NotIn, vec!["3".into()]).unwrap());
        sel.add(Requirement::new("0", Operator::DoesNotExist, vec![]).unwrap());
        sel.add(Requirement::new("c", Operator::GreaterThan, vec!["5".into()]).unwrap());
        assert_eq!(sel.to_string(), "!0,a=1,a notin (3),b=2,c>5");
        assert!(sel.matches(&set(&[("a", "1"), ("b", "2"), ("c", "6")])));
        assert!(!sel.matches(&set(&[("a", "1"), ("b", "2"), ("c", "5")])));
    }

    #[test]
    fn requirement_constructor_validation() {
        let long_key = "a".repeat(254);
        let cases: Vec<(&str, Operator, Vec<&str>, Option<String>)> = vec![
            ("x1", Operator::In, vec![], Some("values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty".into())),
            ("x3", Operator::In, vec!["foo"], None),
            ("x5", Operator::Equals, vec!["bar", "foo"], Some("values: Invalid value: [\"bar\",\"foo\"]: exact-match compatibility requires one single value".into())),
            ("x6", Operator::Exists, vec![], None),
            ("x8", Operator::Exists, vec!["foo"], Some("values: Invalid value: [\"foo\"]: values set must be empty for exists and does not exist".into())),
            ("x11", Operator::GreaterThan, vec!["1"], None),
            ("x13", Operator::GreaterThan, vec![], Some("values: Invalid value: null: for 'Gt', 'Lt' operators, exactly one value is required".into())),
            ("x14", Operator::LessThan, vec!["bar"], Some("values[0]: Invalid value: \"bar\": for 'Gt', 'Lt' operators, the value must be an integer".into())),
            ("x17", Operator::Equals, vec!["a b"], Some(format!("values[0][x17]: Invalid value: \"a b\": {BAD_VALUE}"))),
            (
                long_key.as_str(),
                Operator::Exists,
                vec![],
                Some(format!("key: Invalid value: \"{}\": name part must be no more than 63 characters", "a".repeat(254))),
            ),
        ];
        for (key, op, values, want) in cases {
            let got = Requirement::new(key, op, values.iter().map(|s| s.to_string()).collect());
            assert_eq!(
                got.err().map(|e| e.to_string()),
                want,
                "requirement {key} {op:?}"
            );
        }
    }

    #[test]
    fn requires_exact_match() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("key in (value)", "key", Some("value")),
            ("key in (value,value2)", "key", None),
            (
                "key in (value,value1),key2 in (value2)",
                "key2",
                Some("value2"),
            ),
            ("key=value", "key", Some("value")),
            ("key==value", "key", Some("value")),
            ("key!=value", "key", None),
            ("key", "key", None),
            ("key=value", "other", None),
            // The first requirement on the key decides.
            ("key!=a,key=b", "key", None),
        ];
        for (selector, key, want) in cases {
            let sel = LabelSelector::parse(selector).unwrap();
            assert_eq!(sel.requires_exact_match(key), *want, "{selector:?} / {key}");
        }
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("\n\t\u{1}\u{7f}é\u{a0}"),
            r#""\n\t\x01\x7fé\u00a0""#
        );
        assert_eq!(go_json_list(&[]), "null");
        assert_eq!(
            go_json_list(&["a".into(), "\"<&>\"\n".into()]),
            r#"["a","\"\u003c\u0026\u003e\"\n"]"#
        );
    }

    #[test]
    fn field_parse_canonical_form() {
        let cases = [
            ("", ""),
            ("x=a,y=b,z=c", "x=a,y=b,z=c"),
            ("x!=a,y=b", "x!=a,y=b"),
            (r"x=a||y\=b", r"x=a||y\=b"),
            (r"x=a\=\=b", r"x=a\=\=b"),
            ("x==a", "x=a"),
            ("x=a,a=x", "a=x,x=a"),
            ("b=2,,a=1,", "a=1,b=2"),
            (",", ""),
            // A term that is only an operator means nothing.
            ("=", ""),
            ("!=", ""),
            ("=,a=b", "a=b"),
            // An empty field with a value is kept (the server rejects it as unsupported).
            ("=x", "=x"),
            (r"k=\,,k2=v2", r"k2=v2,k=\,"),
            (r"k=\\,k2=v2", r"k2=v2,k=\\"),
            (r"k=\\\,,k2=v2", r"k2=v2,k=\\\,"),
            ("x=", "x="),
            // No trimming: the field is `metadata.name ` and the value ` x`.
            ("metadata.name = x", "metadata.name = x"),
            ("함=수,목=록", "목=록,함=수"),
        ];
        for (input, want) in cases {
            let sel = FieldSelector::parse(input)
                .unwrap_or_else(|e| panic!("{input:?} failed to parse: {e}"));
            assert_eq!(sel.to_string(), want, "canonical form of {input:?}");
            assert_eq!(
                FieldSelector::parse(want).ok(),
                Some(sel),
                "round trip of {input:?}"
            );
        }
        let sel = FieldSelector::parse(r"k=\,\\\=,b!=").unwrap();
        assert_eq!(
            sel.requirements(),
            &[
                FieldRequirement {
                    field: "b".into(),
                    operator: FieldOperator::NotEquals,
                    value: "".into()
                },
                FieldRequirement {
                    field: "k".into(),
                    operator: FieldOperator::Equals,
                    value: r",\=".into()
                },
            ]
        );
        let sel = FieldSelector::parse("metadata.name = x").unwrap();
        assert_eq!(sel.fields().collect::<Vec<_>>(), vec!["metadata.name "]);
        assert_eq!(sel.requirements()[0].value, " x");
    }

    #[test]
    fn field_parse_errors_match_upstream() {
        let cases = [
            ("x", "invalid selector: 'x'; can't understand 'x'"),
            ("x=a,b", "invalid selector: 'x=a,b'; can't understand 'b'"),
            // Terms are checked in sorted order.
            ("z,a", "invalid selector: 'z,a'; can't understand 'a'"),
            (
                "x in (a)",
                "invalid selector: 'x in (a)'; can't understand 'x in (a)'",
            ),
            (
                "x in (a,b,c)",
                "invalid selector: 'x in (a,b,c)'; can't understand 'b'",
            ),
            (
                "x=a||y=b",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "x==a==b",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "a!==b",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                r"k=\a",
                r"invalid field selector: invalid escape sequence: \a",
            ),
            (
                r"k=\",
                r"invalid field selector: invalid escape sequence: \",
            ),
            (
                r"k=\\\",
                r"invalid field selector: invalid escape sequence: \",
            ),
            (
                r"k=\é",
                r"invalid field selector: invalid escape sequence: \é",
            ),
        ];
        for (input, want) in cases {
            let err = FieldSelector::parse(input).expect_err(input);
            assert_eq!(err.to_string(), want, "error for {input:?}");
        }
    }

    #[test]
    fn field_split_helpers() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("a", &["a"]),
            (
                "a=avalue,b==bvalue,c!=cvalue",
                &["a=avalue", "b==bvalue", "c!=cvalue"],
            ),
            ("a=a,", &["a=a", ""]),
            (",a=a", &["", "a=a"]),
            (r"k=\,,k2=v2", &[r"k=\,", "k2=v2"]),
            (r"k=\\,k2=v2", &[r"k=\\", "k2=v2"]),
            (r"k=\\\,,k2=v2", &[r"k=\\\,", "k2=v2"]),
            (r"k=\a\b\", &[r"k=\a\b\"]),
            ("함=수,목=록", &["함=수", "목=록"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_terms(input), *want, "split_terms({input:?})");
        }
        let cases = [
            ("a=value", Some(("a", FieldOperator::Equals, "value"))),
            ("b==value", Some(("b", FieldOperator::Equals, "value"))),
            ("c!=value", Some(("c", FieldOperator::NotEquals, "value"))),
            ("", None),
            ("a", None),
            (r"k=\,", Some(("k", FieldOperator::Equals, r"\,"))),
            (
                r"k=\\\a\b\=\,\",
                Some(("k", FieldOperator::Equals, r"\\\a\b\=\,\")),
            ),
            ("함=수", Some(("함", FieldOperator::Equals, "수"))),
        ];
        for (input, want) in cases {
            assert_eq!(split_term(input), want, "split_term({input:?})");
        }
    }

    #[test]
    fn field_escaping_round_trips() {
        for (raw, escaped) in [
            ("", ""),
            ("a", "a"),
            ("=", r"\="),
            (",", r"\,"),
            (r"\", r"\\"),
            (r"\=\,\", r"\\\=\\\,\\"),
        ] {
            assert_eq!(escape_value(raw), escaped);
            assert_eq!(unescape_value(escaped).unwrap(), raw);
        }
        for bad in [r"\", r"\\\", r"\a"] {
            assert!(matches!(
                unescape_value(bad),
                Err(SelectorError::InvalidEscape(_))
            ));
        }
    }

    #[test]
    fn field_matching() {
        let fields = set(&[("foo", "bar"), ("baz", "blah"), ("complex", r"=value\,\")]);
        let lookup = |name: &str| fields.get(name);
        let cases = [
            ("", true),
            ("foo=bar", true),
            ("foo==bar", true),
            ("baz=blah", true),
            ("foo=bar,baz=blah", true),
            (r"foo=bar,baz=blah,complex=\=value\\\,\\", true),
            ("foo=blah", false),
            ("baz=bar", false),
            ("foo=bar,foobar=bar,baz=blah", false),
            ("foo!=bar", false),
            ("foo!=x", true),
            // An unknown field reads as "".
            ("missing=", true),
            ("missing!=", false),
            ("missing!=x", true),
        ];
        for (selector, want) in cases {
            let sel = FieldSelector::parse(selector).unwrap();
            assert_eq!(sel.matches(lookup), want, "{selector:?}");
        }
        assert!(FieldSelector::one_term_equal("foo", "bar").matches(lookup));
        assert!(!FieldSelector::one_term_equal("foo", "baz").matches(lookup));
    }

    #[test]
    fn field_introspection() {
        let mut sel =
            FieldSelector::parse("spec.host=n1,metadata.name=web,status.phase!=Running").unwrap();
        assert_eq!(
            sel.fields().collect::<Vec<_>>(),
            vec!["metadata.name", "spec.host", "status.phase"]
        );
        assert_eq!(sel.requires_exact_match("metadata.name"), Some("web"));
        assert_eq!(sel.requires_exact_match("status.phase"), None);
        sel.rename_field("spec.host", "spec.nodeName");
        assert_eq!(sel.requires_exact_match("spec.nodeName"), Some("n1"));
        assert_eq!(
            sel.exact_matches().collect::<Vec<_>>(),
            vec![("metadata.name", "web"), ("spec.nodeName", "n1")]
        );
        assert_eq!(
            sel.unsupported_field(|f| f.starts_with("metadata.") || f == "spec.nodeName"),
            Some("status.phase")
        );
        assert_eq!(sel.unsupported_field(|_| true), None);
        assert!(FieldSelector::parse("").unwrap().is_everything());
        assert!(!sel.is_everything());
    }

    #[test]
    fn unsupported_field_errors_are_400() {
        let e: ApiError = SelectorError::FieldLabelNotSupported("xyz".into()).into();
        assert_eq!(e.message, "field label not supported: xyz");
        assert_eq!(e.code, 400);
        let s = e.to_status();
        assert_eq!(s["reason"], "BadRequest");
        assert_eq!(s["code"], 400);
        assert_eq!(
            SelectorError::UnknownFieldSelector("spec.x".into()).to_string(),
            r#""spec.x" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        let e: ApiError = LabelSelector::parse("a in").unwrap_err().into();
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "unable to parse requirement: found '' expected: '('"
        );
    }

    #[test]
    fn field_values_from_json() {
        let pod = json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"nodeName": "n1", "hostNetwork": true, "restartPolicy": null},
            "status": {"podIPs": [{"ip": "10.0.0.1"}]},
        });
        let pods = crate::resources::lookup("", "v1", "pods").unwrap();
        let value = |name: &str| field_value(&pod, &pods.selectable_field(name).unwrap());
        assert_eq!(value("metadata.name"), "web");
        assert_eq!(value("metadata.namespace"), "default");
        assert_eq!(value("spec.nodeName"), "n1");
        assert_eq!(value("spec.hostNetwork"), "true");
        // Absent, null → the default.
        assert_eq!(value("spec.restartPolicy"), "");
        assert_eq!(value("status.phase"), "");
        let bare = json!({});
        let host_network = pods.selectable_field("spec.hostNetwork").unwrap();
        assert_eq!(field_value(&bare, &host_network), "false");

        let rcs = crate::resources::lookup("", "v1", "replicationcontrollers").unwrap();
        let replicas = rcs.selectable_field("status.replicas").unwrap();
        assert_eq!(
            field_value(&json!({"status": {"replicas": 3}}), &replicas),
            "3"
        );
        assert_eq!(field_value(&json!({"status": {}}), &replicas), "0");
        assert_eq!(field_value(&json!({"status": 7}), &replicas), "0");
        assert_eq!(
            field_value(&json!({"status": {"replicas": u64::MAX}}), &replicas),
            u64::MAX.to_string()
        );

        let events = crate::resources::lookup("", "v1", "events").unwrap();
        let source = events.selectable_field("source").unwrap();
        assert_eq!(
            field_value(&json!({"source": {"component": "kubelet"}}), &source),
            "kubelet"
        );
        // An object or array where a scalar belongs reads as the default.
        let odd = SelectableField {
            name: "spec",
            path: "spec",
            default: "",
        };
        assert_eq!(field_value(&pod, &odd), "");
    }

    #[test]
    fn field_value_comparison_is_textual() {
        let cases = [
            (FieldValue::Str("a"), "a", true),
            (FieldValue::Str("a"), "b", false),
            (FieldValue::Bool(true), "true", true),
            (FieldValue::Bool(false), "false", true),
            (FieldValue::Bool(true), "True", false),
            (FieldValue::Int(3), "3", true),
            (FieldValue::Int(3), "03", false),
            (FieldValue::Int(3), "", false),
            (FieldValue::Int(-12), "-12", true),
            (FieldValue::Int(12), "1", false),
            (FieldValue::Int(12), "123", false),
            (FieldValue::UInt(u64::MAX), "18446744073709551615", true),
            (FieldValue::Float(1.5), "1.5", true),
        ];
        for (value, s, want) in cases {
            assert_eq!(value.eq_str(s), want, "{value:?} vs {s:?}");
            assert_eq!(value.to_string() == s, want, "{value:?} display vs {s:?}");
        }
    }

    #[test]
    fn field_matches_object() {
        let pods = crate::resources::lookup("", "v1", "pods").unwrap();
        let pod = json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running"},
        });
        let cases = [
            ("spec.nodeName=n1", true),
            ("spec.nodeName=n2", false),
            ("spec.nodeName=n1,status.phase!=Running", false),
            ("status.phase!=Succeeded,metadata.namespace=default", true),
            ("spec.hostNetwork=false", true),
            ("spec.hostNetwork=", false),
            ("spec.schedulerName=", true),
        ];
        for (selector, want) in cases {
            let sel = FieldSelector::parse(selector).unwrap();
            assert_eq!(sel.matches_object(pods, &pod), want, "{selector:?}");
        }
    }
}
