//! Config errors that name the file, the key and what was expected.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::Env;

/// A config problem: which file, which key (`target[2].spiffe_id`), what was wrong.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ConfigError {
    /// The file (or origin name) the config came from.
    pub file: PathBuf,
    /// The key path, when the problem is tied to one.
    pub key: Option<String>,
    /// What was found and what was expected.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {}: {}", self.file.display(), key, self.problem),
            None => write!(f, "{}: {}", self.file.display(), self.problem),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// A problem in `file`, at `key` when it is tied to one.
    pub fn new(file: &Path, key: Option<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            key,
            problem: problem.into(),
        }
    }

    /// Turns a deserialization error of the raw tree into a message with the key path.
    ///
    /// The `config` crate reports serde's custom errors (unknown fields among them) as a
    /// bare message and type errors with its own key and origin; `serde_path_to_error`
    /// gives the path in both cases, so the message here is rebuilt from the parts.
    pub(super) fn from_deserialize(
        file: &Path,
        env_keys: &EnvKeys,
        err: serde_path_to_error::Error<config::ConfigError>,
    ) -> Self {
        let mut key = path_to_key(err.path());
        let inner = err.into_inner();
        let problem = match describe(inner) {
            Described::UnknownKey { name, expected } => {
                // serde_path_to_error usually ends the path at the unknown key already.
                let ends_with_name = key.rsplit(['.', '[']).next() == Some(name.as_str());
                if !ends_with_name {
                    key = if key.is_empty() {
                        name.clone()
                    } else {
                        format!("{key}.{name}")
                    };
                }
                let mut problem = format!("unknown key {name:?}");
                if !expected.is_empty() {
                    problem.push_str(&format!("; expected one of: {}", expected.join(", ")));
                }
                problem
            }
            Described::Other(problem) => problem,
        };
        let key = (!key.is_empty()).then_some(key);
        let mut this = Self::new(file, key, problem);
        env_keys.annotate(&mut this);
        this
    }
}

/// The `MTLS_PROBER_*` variables that take part in a load, by the key they set, so
/// that a message about such a key can say where its value came from.
#[derive(Debug, Default)]
pub(super) struct EnvKeys {
    by_key: BTreeMap<String, String>,
}

impl EnvKeys {
    /// Collects the override variables of `env` (see [`env_var_key`]).
    pub(super) fn new(env: &Env) -> Self {
        let by_key = env
            .iter()
            .filter_map(|(var, value)| {
                let key = env_var_key(var)?;
                // Empty scalar variables are ignored by the loader (they mean "unset").
                let in_effect =
                    !value.trim().is_empty() || super::raw::ENV_LIST_KEYS.contains(&key.as_str());
                in_effect.then(|| (key, var.clone()))
            })
            .collect();
        Self { by_key }
    }

    /// The key a variable of the environment sets, if it is one of ours.
    pub(super) fn key_of(&self, var: &str) -> Option<&str> {
        self.by_key
            .iter()
            .find(|(_, v)| v.as_str() == var)
            .map(|(k, _)| k.as_str())
    }

    /// The variable that set `key` or one of its parents.
    pub(super) fn var_for(&self, key: &str) -> Option<&str> {
        self.by_key.iter().find_map(|(k, var)| {
            let covers = key == k
                || key
                    .strip_prefix(k.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']));
            covers.then_some(var.as_str())
        })
    }

    /// A variable that sets some key inside the same array entry as `key`
    /// (`target[1].timeout` for `target[1].name`): an index the file does not have
    /// creates an entry that has only that key.
    fn var_in_entry(&self, key: &str) -> Option<&str> {
        let entry = &key[..=key.find(']')?];
        self.by_key
            .iter()
            .find(|(k, _)| k.starts_with(entry))
            .map(|(_, var)| var.as_str())
    }

    /// Appends "(set by environment variable …)" to a message whose key came from one.
    pub(super) fn annotate(&self, err: &mut ConfigError) {
        let Some(key) = &err.key else {
            return;
        };
        if self.var_for(key).is_none()
            && let Some(var) = self.var_in_entry(key)
        {
            err.problem.push_str(&format!(
                " (environment variable {var} sets a key of this entry; an index the \
                 file does not have creates a new, incomplete entry)"
            ));
        }
        if let Some(var) = self.var_for(key) {
            err.problem
                .push_str(&format!(" (set by environment variable {var})"));
            if !key.contains(['.', '[']) {
                err.problem.push_str(
                    "; nested keys are separated by \"__\", \
                     e.g. MTLS_PROBER_AGENT__LISTEN for agent.listen",
                );
            }
        }
    }
}

/// The config key an environment variable sets, the way the `config` crate derives
/// it: lowercased, the `MTLS_PROBER_` prefix removed, `__` turned into `.`.
/// `None` for variables without the prefix.
pub(super) fn env_var_key(var: &str) -> Option<String> {
    let lower = var.to_lowercase();
    let prefix = format!("{}_", super::raw::ENV_PREFIX.to_lowercase());
    let rest = lower.strip_prefix(&prefix)?;
    Some(rest.replace(super::raw::ENV_SEPARATOR, "."))
}

/// `target[2].http.path`, from serde_path_to_error's segments.
fn path_to_key(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;

    let mut key = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: k } | Segment::Enum { variant: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            Segment::Unknown => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push('?');
            }
        }
    }
    key
}

/// What a `config` error says, without its own key and origin decorations.
enum Described {
    /// serde's `deny_unknown_fields` refusal.
    UnknownKey { name: String, expected: Vec<String> },
    /// Anything else, as a message.
    Other(String),
}

fn describe(err: config::ConfigError) -> Described {
    match err {
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => Described::Other(format!(
            "expected {}, got {}",
            toml_words(expected),
            toml_words(&unexpected.to_string()),
        )),
        config::ConfigError::At { error, .. } => describe(*error),
        config::ConfigError::Message(message) => parse_unknown_field(&message)
            .unwrap_or_else(|| Described::Other(invalid_type(&message).unwrap_or(message))),
        config::ConfigError::NotFound(key) => Described::Other(format!("missing key {key:?}")),
        other => Described::Other(other.to_string()),
    }
}

/// Parses serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`",
/// or "there are no fields").
fn parse_unknown_field(message: &str) -> Option<Described> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some(Described::UnknownKey {
        name: name.to_owned(),
        expected,
    })
}

/// Speaks TOML rather than serde: a "sequence" is a list, a "map" a table.
fn toml_words(s: &str) -> String {
    match s {
        "sequence" | "a sequence" | "an array" => "a list".to_owned(),
        "map" | "a map" => "a table".to_owned(),
        "unit value" => "an empty value".to_owned(),
        other => other.to_owned(),
    }
}

/// Rewrites serde's "invalid type: X, expected Y" as "expected Y, got X".
fn invalid_type(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: ")?;
    let (got, expected) = rest.split_once(", expected ")?;
    Some(format!(
        "expected {}, got {}",
        toml_words(expected),
        toml_words(got)
    ))
}
