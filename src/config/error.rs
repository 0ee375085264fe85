//! Config errors that name the file, the key and what was expected.

use std::fmt;
use std::path::PathBuf;

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
