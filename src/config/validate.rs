//! stub
use std::path::Path;
use super::{Config, ConfigError, Env};
pub(super) fn load_file(path: &Path, _env: &Env) -> Result<Config, ConfigError> {
    Err(ConfigError { file: path.into(), key: None, problem: "not implemented".into() })
}
pub(super) fn load_str(_t: &str, origin: &str, _env: &Env) -> Result<Config, ConfigError> {
    Err(ConfigError { file: origin.into(), key: None, problem: "not implemented".into() })
}
