//! The `[[target]]` tables of a config or included file, read one at a time.
//!
//! The `config` crate turns a whole file into its own tree of values before anything is
//! deserialized: about 8 KB per `[[target]]` table of 240 bytes, 85 MB for a file of
//! 10,000 targets. Parsing the whole file with `toml` instead is not much better: its
//! token list and document tree take about 60 MB for the same file. Here the text is
//! cut at its table headers first (one pass of the `toml` lexer, which allocates
//! nothing), then:
//!
//! - each `[[target]]` table (with its `[target.http]` sub-tables) is parsed on its own,
//!   converted to a small `config::Value` and deserialized through the `config` crate's
//!   own deserializer, so every conversion (a number or boolean read as a string) and
//!   every message about a key or value is the one the `config` crate gave before; only
//!   one table's tree exists at any moment;
//! - everything else (`[agent]`, `[identity]`, `[serve]`, `[[discover]]`, …) is parsed
//!   as one small document and handed to the `config` crate as a source, where the
//!   `MTLS_PROBER_*` overrides are layered on top as before.
//!
//! Whatever this reading is not sure to understand exactly as the whole-file reading
//! would (a syntax or number error anywhere, a quoted table name, a `[target]` table, a
//! `target` key outside `[[target]]` headers), it declines ([`split`] returns `None`)
//! and the caller reads the whole file through the `config` crate, as before: errors
//! are then reported by the same code with the same positions.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use config::{Map, Source, Value, ValueKind};
use toml::de::{DeTable, DeValue};
use toml_parser::Source as Text;
use toml_parser::lexer::TokenKind;

use super::ConfigError;
use super::error::EnvKeys;
use super::raw::RawTarget;

/// The key of the tables read one at a time.
const TARGET: &str = "target";

/// A file read without building its `[[target]]` tables into one tree.
pub(super) struct Split {
    /// Every table but `[[target]]`, for the `config` crate.
    pub(super) rest: Tables,
    /// The byte ranges of the `[[target]]` tables, in file order; every one of them
    /// deserialized once (see [`TargetTables`]).
    pub(super) targets: Vec<Range<usize>>,
    /// The first target that did not deserialize; reported after the rest of the file
    /// has been read, as a whole-file read would find syntax errors first.
    pub(super) error: Option<ConfigError>,
}

/// Reads `text` (named `file` in messages) table by table; `None` when the caller must
/// read it whole through the `config` crate (see the module documentation).
pub(super) fn split(text: &str, file: &Path) -> Option<Split> {
    let (rest, targets) = sections(text)?;
    let mut error = None;
    // Every table is deserialized here and dropped: errors are found now, before the
    // rest of the file is validated, as a whole-file read would find them; the values
    // are made again one at a time when they are converted (`TargetTables`).
    for (i, chunk) in targets.iter().enumerate() {
        let value = one_target(&text[chunk.clone()])?;
        if error.is_none()
            && let Err(e) = deserialize(value, i, file)
        {
            error = Some(e);
        }
    }
    let rest = DeTable::parse(&rest).ok()?.into_inner();
    if rest.contains_key(TARGET) || rest.iter().any(|(_, v)| check(v.get_ref()).is_err()) {
        return None;
    }
    let mut map = Map::new();
    for (key, value) in rest {
        map.insert(key.into_inner().into_owned(), to_value(value.into_inner()));
    }
    Some(Split {
        rest: Tables(map),
        targets,
        error,
    })
}

/// The `[[target]]` table number `i` of `file`, with keys in messages as a whole-file
/// read names them (`target[i].key`).
fn deserialize(value: Value, i: usize, file: &Path) -> Result<RawTarget, ConfigError> {
    serde_path_to_error::deserialize::<_, RawTarget>(value).map_err(|e| {
        let mut e = ConfigError::from_deserialize(file, &EnvKeys::default(), e);
        e.key = Some(match e.key {
            Some(k) => format!("{TARGET}[{i}].{k}"),
            None => format!("{TARGET}[{i}]"),
        });
        e
    })
}

/// The `[[target]]` tables of a file that [`split`] read, kept as text and deserialized
/// again one at a time as validation converts them: the raw form of 10,000 targets
/// (≈ 800 bytes each with its strings) never exists beside their validated form, only
/// the text (≈ 250 bytes each) does.
#[derive(Debug)]
pub struct TargetTables<'a> {
    text: Cow<'a, str>,
    chunks: Vec<Range<usize>>,
}

impl<'a> TargetTables<'a> {
    /// Tables `chunks` of `text`, every one of which [`split`] deserialized.
    pub(crate) fn new(text: Cow<'a, str>, chunks: Vec<Range<usize>>) -> Self {
        Self { text, chunks }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// How many tables.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Table `i`, deserialized; `file` names it in messages.
    pub fn get(&self, i: usize, file: &Path) -> Result<RawTarget, ConfigError> {
        let range = self.chunks.get(i).cloned().unwrap_or_default();
        let section = self.text.get(range).unwrap_or_default();
        match one_target(section) {
            Some(value) => deserialize(value, i, file),
            // `split` parsed this same section already.
            None => Err(ConfigError::new(
                file,
                Some(format!("{TARGET}[{i}]")),
                "the table could not be read again",
            )),
        }
    }
}

/// One `[[target]]` section (header, keys, sub-tables) as the `config` crate would
/// hold its table; `None` unless it parses to exactly one such table.
fn one_target(section: &str) -> Option<Value> {
    let mut doc = DeTable::parse(section).ok()?.into_inner();
    let DeValue::Array(items) = doc.remove(TARGET)?.into_inner() else {
        return None;
    };
    if !doc.is_empty() || items.len() != 1 {
        return None;
    }
    let table = items.into_iter().next()?.into_inner();
    check(&table).ok()?;
    Some(to_value(table))
}

/// The text outside `[[target]]` sections, and the byte ranges of those sections (each
/// from its `[[target]]` header to the next header that is not a `[target.…]` one).
/// `None` for anything unusual: a quoted or malformed header, `[target]`, a
/// `[target.…]` header before any `[[target]]`, unbalanced brackets.
fn sections(text: &str) -> Option<(String, Vec<Range<usize>>)> {
    let mut rest = String::new();
    let mut chunks: Vec<Range<usize>> = Vec::new();
    let mut in_target = false;
    let headers = headers(text)?;
    let ends = headers
        .iter()
        .skip(1)
        .map(|h| h.start)
        .chain(std::iter::once(text.len()));
    rest.push_str(&text[..headers.first().map_or(text.len(), |h| h.start)]);
    for (h, end) in headers.iter().zip(ends) {
        let range = h.start..end;
        match (h.target, h.segments, h.array) {
            (true, 1, true) => {
                chunks.push(range);
                in_target = true;
            }
            (true, n, _) if n > 1 && in_target => chunks.last_mut()?.end = end,
            (true, _, _) => return None,
            (false, _, _) => {
                rest.push_str(&text[range]);
                in_target = false;
            }
        }
    }
    Some((rest, chunks))
}

/// A table header at the start of a line: `[a.b]` or `[[a.b]]`.
struct Header {
    start: usize,
    array: bool,
    /// Its first key is `target`.
    target: bool,
    /// How many keys it has (`target.http` has 2).
    segments: usize,
}

/// The table headers of `text`, found with the `toml` lexer: a `[` that starts a line
/// outside any value. Brackets and braces inside values (multi-line arrays and inline
/// tables) are counted so that a `[` starting a line inside a value is not a header;
/// strings are whole tokens, so brackets inside them never count.
fn headers(text: &str) -> Option<Vec<Header>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut line_start = true;
    let mut tokens = Text::new(text).lex().peekable();
    while let Some(token) = tokens.next() {
        match token.kind() {
            TokenKind::Eof => break,
            TokenKind::Newline => line_start |= depth == 0,
            TokenKind::Whitespace | TokenKind::Comment => {}
            TokenKind::LeftSquareBracket if depth == 0 && line_start => {
                let array = tokens
                    .next_if(|t| t.kind() == TokenKind::LeftSquareBracket)
                    .is_some();
                let mut keys: Vec<&str> = Vec::new();
                loop {
                    let t = tokens.next()?;
                    match t.kind() {
                        TokenKind::Whitespace | TokenKind::Dot => {}
                        TokenKind::Atom => keys.push(text.get(t.span().start()..t.span().end())?),
                        TokenKind::RightSquareBracket => break,
                        _ => return None,
                    }
                }
                if array {
                    tokens.next_if(|t| t.kind() == TokenKind::RightSquareBracket)?;
                }
                out.push(Header {
                    start: token.span().start(),
                    array,
                    target: keys.first() == Some(&TARGET),
                    segments: keys.len(),
                });
                line_start = false;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                depth += 1;
                line_start = false;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.checked_sub(1)?;
                line_start = false;
            }
            _ => line_start = false,
        }
    }
    (depth == 0).then_some(out)
}

/// The document's tables other than `[[target]]`, for `config::ConfigBuilder::add_source`.
#[derive(Clone, Debug)]
pub(super) struct Tables(Map<String, Value>);

impl Tables {
    /// Whether the document had nothing but `[[target]]` tables.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Source for Tables {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        Ok(self.0.clone())
    }
}

/// The conversions the `config` crate makes when it reads a TOML file.
fn integer(i: &toml::de::DeInteger<'_>) -> Option<i64> {
    i64::from_str_radix(i.as_str(), i.radix()).ok()
}

fn float(f: &toml::de::DeFloat<'_>) -> Option<f64> {
    let v = f.as_str().parse::<f64>().ok()?;
    (!v.is_infinite() || f.as_str().contains("inf")).then_some(v)
}

/// Whether every number in `v` converts (without building anything); one that does
/// not is an error the whole-file reading reports in its own words.
fn check(v: &DeValue<'_>) -> Result<(), ()> {
    let ok = match v {
        DeValue::Integer(i) => integer(i).is_some(),
        DeValue::Float(f) => float(f).is_some(),
        DeValue::Array(items) => items.iter().all(|i| check(i.get_ref()).is_ok()),
        DeValue::Table(t) => t.iter().all(|(_, v)| check(v.get_ref()).is_ok()),
        DeValue::String(_) | DeValue::Boolean(_) | DeValue::Datetime(_) => true,
    };
    if ok { Ok(()) } else { Err(()) }
}

/// `v` as the `config` crate represents it after reading a file; numbers were checked
/// by [`check`] (one that still fails to convert would become its text).
fn to_value(v: DeValue<'_>) -> Value {
    let kind = match v {
        DeValue::String(s) => ValueKind::String(s.into_owned()),
        DeValue::Integer(i) => {
            integer(&i).map_or_else(|| ValueKind::String(i.as_str().to_owned()), ValueKind::I64)
        }
        DeValue::Float(f) => float(&f).map_or_else(
            || ValueKind::String(f.as_str().to_owned()),
            ValueKind::Float,
        ),
        DeValue::Boolean(b) => ValueKind::Boolean(b),
        DeValue::Datetime(d) => ValueKind::String(d.to_string()),
        DeValue::Array(items) => ValueKind::Array(
            items
                .into_iter()
                .map(|i| to_value(i.into_inner()))
                .collect(),
        ),
        DeValue::Table(t) => ValueKind::Table(
            t.into_iter()
                .map(|(k, v)| (k.into_inner().into_owned(), to_value(v.into_inner())))
                .collect(),
        ),
    };
    Value::new(None, kind)
}

/// A file of `[[target]]` tables alone (an included file), read table by table; `None`
/// when it holds anything else or is not understood (the caller reads it whole).
pub(super) fn only_targets(
    text: &str,
    file: &Path,
) -> Option<Result<Vec<Range<usize>>, ConfigError>> {
    let split = split(text, file)?;
    if !split.rest.is_empty() {
        return None;
    }
    Some(match split.error {
        Some(e) => Err(e),
        None => Ok(split.targets),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Env, load_str};
    use super::split;

    /// The whole file through the `config` crate, as before: an (ignored) empty
    /// variable that addresses `target` selects that path.
    fn via_config_crate() -> Env {
        [("MTLS_PROBER_TARGET".to_owned(), String::new())]
            .into_iter()
            .collect()
    }

    const VALID: &str = "name = \"a\"\naddress = \"a:80\"\nmode = \"plaintext\"\n";

    /// Values of every TOML type, including ones the `config` crate converts.
    const VALUES: [&str; 14] = [
        "\"10s\"",
        "3",
        "0x1f",
        "1.5",
        "1e3",
        "-0.0",
        "true",
        "1979-05-27T07:32:00Z",
        "[\"h2\", \"http/1.1\"]",
        "[1, 2]",
        "[]",
        "{ a = \"b\" }",
        "[[\"x\"]]",
        "\"\"",
    ];

    const KEYS: [&str; 14] = [
        "name",
        "address",
        "mode",
        "expect",
        "spiffe_id",
        "trust_domain",
        "server_name",
        "alpn",
        "tls_versions",
        "verify_strict",
        "interval",
        "timeout",
        "http",
        "bogus",
    ];

    const HTTP_KEYS: [&str; 6] = [
        "method",
        "path",
        "expect_status",
        "headers",
        "max_body_bytes",
        "bogus",
    ];

    /// Loads `text` both ways and compares; counts loads, refusals and how often the
    /// table-by-table reading was used.
    #[derive(Default)]
    struct Tally {
        loaded: usize,
        split: usize,
        refusals: std::collections::BTreeSet<String>,
    }

    impl Tally {
        fn same(&mut self, text: &str) {
            let direct = load_str(text, "x.toml", &Env::new());
            let old = load_str(text, "x.toml", &via_config_crate());
            assert_eq!(direct, old, "for:\n{text}");
            if split(text, Path::new("x.toml")).is_some() {
                self.split += 1;
            }
            match direct {
                Ok(_) => self.loaded += 1,
                Err(e) => {
                    self.refusals
                        .insert(e.problem.split(['"', '`']).next().unwrap_or("").to_owned());
                }
            }
        }
    }

    #[test]
    fn targets_read_table_by_table_load_and_fail_exactly_as_before() {
        let mut t = Tally::default();
        for key in KEYS {
            for value in VALUES {
                // The key replaces its valid value, or is added.
                let valid: String = VALID
                    .lines()
                    .filter(|l| !l.starts_with(&format!("{key} ")))
                    .map(|l| format!("{l}\n"))
                    .collect();
                t.same(&format!(
                    "[agent]\nsource = \"n\"\n[[target]]\n{VALID}[[target]]\n{}{key} = {value}\n",
                    valid.replace("\"a\"", "\"b\"").replace("a:80", "b:80")
                ));
            }
        }
        for key in HTTP_KEYS {
            for value in VALUES {
                t.same(&format!(
                    "[agent]\nsource = \"n\"\n[[target]]\n{VALID}[target.http]\n{key} = {value}\n"
                ));
                t.same(&format!(
                    "[agent]\nsource = \"n\"\n[[target]]\n{VALID}[target.http.headers]\nx-a = {value}\n"
                ));
            }
        }
        for value in VALUES {
            t.same(&format!("[agent]\nsource = \"n\"\ntarget = {value}\n"));
        }
        // The corpus covers loads and the kinds of refusal (unknown key, type, value),
        // and the table-by-table reading took almost all of it.
        assert!(t.loaded >= 20, "{} loaded", t.loaded);
        assert!(t.refusals.len() >= 10, "{:#?}", t.refusals);
        assert!(t.split >= 250, "{} read table by table", t.split);
    }

    #[test]
    fn unusual_files_are_read_whole_or_cut_correctly() {
        let a = "[[target]]\nname = \"a\"\naddress = \"a:1\"\nmode = \"plaintext\"\n";
        let b = "[[target]]\nname = \"b\"\naddress = \"b:1\"\nmode = \"plaintext\"\n";
        let agent = "[agent]\nsource = \"n\"\n";
        for (text, splits) in [
            // Interleaved sections, comments, sub-tables, blank lines.
            (
                format!("{a}[target.http]\npath = \"/x\"\n{agent}# [[target]]\n{b}"),
                true,
            ),
            // CRLF line ends and a comment after a header.
            (
                format!("{agent}{a}")
                    .replace('\n', "\r\n")
                    .replace("[[target]]", "[[target]] # x"),
                true,
            ),
            // A `[` starting a line inside a multi-line array is no header.
            (format!("{agent}{a}alpn = [\n[\"h2\"],\n]\n{b}"), true),
            (
                format!("{agent}{a}alpn = [\n\"h2\",\n]\n[target.http]\npath = \"/\"\n{b}"),
                true,
            ),
            // Brackets inside strings, also multi-line ones.
            (
                format!("{agent}{a}server_name = \"\"\"\n[[target]]\nname = \"c\"\n\"\"\"\n{b}"),
                true,
            ),
            (format!("{agent}{a}server_name = '[x]'\n{b}"), true),
            // Whitespace inside a header.
            (
                format!(
                    "{agent}[[ target ]]\nname = \"a\"\naddress = \"a:1\"\nmode = \"plaintext\"\n[ target . http ]\npath = \"/\"\n"
                ),
                true,
            ),
            // Read whole: quoted names, `[target]`, an orphan sub-table, keys outside.
            (
                format!(
                    "{agent}[[\"target\"]]\nname = \"a\"\naddress = \"a:1\"\nmode = \"plaintext\"\n"
                ),
                false,
            ),
            (format!("{agent}[target]\nname = \"a\"\n"), false),
            (format!("{agent}[target.http]\npath = \"/\"\n{a}"), false),
            (format!("target.name = \"a\"\n{agent}"), false),
            (format!("target = [{{ name = \"a\" }}]\n{agent}{a}"), false),
            // Syntax and number errors are reported by the whole-file reading.
            (format!("{agent}{a}name = \"x\n{b}"), false),
            (format!("{agent}{a}{b}interval = 1e999\n"), false),
            (format!("{agent}jitter = 99999999999999999999\n{a}"), false),
            (format!("{agent}{a}[[target\n"), false),
            (format!("{agent}{a}alpn = [\n"), false),
            // Defined twice within one section.
            (format!("{agent}{a}[target.http]\n[target.http]\n"), false),
            (format!("{agent}{a}name = \"b\"\n"), false),
        ] {
            assert_eq!(
                split(&text, Path::new("x.toml")).is_some(),
                splits,
                "for:\n{text}"
            );
            let mut t = Tally::default();
            t.same(&text);
        }
    }

    #[test]
    fn the_repository_examples_load_the_same() {
        let mut t = Tally::default();
        for entry in std::fs::read_dir("tests/data/config/good")
            .unwrap()
            .chain(std::fs::read_dir("tests/data/config/bad").unwrap())
        {
            let path = entry.unwrap().path();
            t.same(&std::fs::read_to_string(&path).unwrap());
        }
        let example = std::fs::read_to_string("probes.toml").unwrap();
        t.same(&example);
        assert!(split(&example, Path::new("probes.toml")).is_some());
    }
}
