//! `[agent] include`: further files of `[[target]]` tables (what `mtls-prober plan`
//! writes), found by glob patterns and read beside `probes.toml`.
//!
//! This module is the seam between "which files" and "which raw targets": [`expand`]
//! turns the patterns into a sorted, de-duplicated list of files, [`read`] yields one
//! [`IncludedRaw`] (file, raw targets) per file. Validation of the targets themselves is
//! the same code as for `probes.toml`'s own (`validate`), run with the included file
//! named in every message.
//!
//! Patterns follow the shell: `*`, `?`, `[...]` and `**`; a wildcard never matches a
//! leading dot, so a Kubernetes ConfigMap volume's `..data` and `..2026_…` entries are
//! not read twice beside the symlinks that point into them. A pattern without wildcards
//! names one file, which must exist (a typo must not pass silently); a pattern with
//! wildcards may match nothing (an empty or not yet created matrix ConfigMap).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use config::{File, FileFormat};
use serde::Deserialize;

use super::ConfigError;
use super::document::TargetTables;
use super::error::EnvKeys;
use super::raw::{RawTarget, RawTargets};

/// The most files all patterns together may pull in.
pub const MAX_INCLUDED_FILES: usize = 1024;

/// An included file: only `[[target]]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a TOML document of [[target]] tables"
)]
struct RawInclude {
    /// `[[target]]`, in file order.
    target: Option<Vec<RawTarget>>,
}

/// One included file and the raw `[[target]]` tables it holds, in file order.
#[derive(Debug)]
pub struct IncludedRaw {
    /// The file, as matched (absolute when the pattern was).
    pub file: PathBuf,
    /// Its `[[target]]` tables.
    pub targets: RawTargets<'static>,
}

/// A pattern as written resolved against the config file's directory (`base_dir`);
/// absolute patterns and patterns of configs without a directory stay as they are.
pub fn resolve(pattern: &str, base_dir: Option<&Path>) -> String {
    match base_dir {
        Some(dir) if Path::new(pattern).is_relative() => {
            dir.join(pattern).to_string_lossy().into_owned()
        }
        _ => pattern.to_owned(),
    }
}

/// Whether `pattern` has glob metacharacters.
fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The files the (resolved) patterns match, each once, in pattern order and then in
/// path order. The error is `(index of the pattern, problem)`.
pub fn expand(patterns: &[String]) -> Result<Vec<PathBuf>, (usize, String)> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        if !is_glob(pattern) {
            let path = PathBuf::from(pattern);
            if !path.is_file() {
                let why = match std::fs::metadata(&path) {
                    Ok(_) => "is not a regular file".to_owned(),
                    Err(e) => format!("cannot be read: {e}"),
                };
                return Err((
                    i,
                    format!(
                        "{pattern:?} {why}; expected an existing file of [[target]] tables, or \
                         a glob such as \"matrix/*.toml\" (which may match nothing)"
                    ),
                ));
            }
            if seen.insert(path.clone()) {
                files.push(path);
            }
            continue;
        }
        let paths = glob::glob_with(pattern, options)
            .map_err(|e| (i, format!("{pattern:?} is not a valid glob: {e}")))?;
        for entry in paths {
            let path = entry.map_err(|e| {
                (
                    i,
                    format!(
                        "{pattern:?}: cannot read {}: {}",
                        e.path().display(),
                        e.error()
                    ),
                )
            })?;
            // Directories that happen to match (`matrix/*`) hold no targets themselves.
            if path.is_dir() {
                continue;
            }
            if seen.insert(path.clone()) {
                files.push(path);
            }
            if files.len() > MAX_INCLUDED_FILES {
                return Err((
                    i,
                    format!(
                        "the patterns match more than {MAX_INCLUDED_FILES} files; expected \
                         fewer, larger files of targets"
                    ),
                ));
            }
        }
    }
    Ok(files)
}

/// Reads the `[[target]]` tables of every file the patterns match. Errors name the
/// file (`config_file` with key `agent.include[i]` for a pattern problem, else the
/// included file with the key inside it).
pub fn read(patterns: &[String], config_file: &Path) -> Result<Vec<IncludedRaw>, ConfigError> {
    let files = expand(patterns).map_err(|(i, problem)| {
        ConfigError::new(config_file, Some(format!("agent.include[{i}]")), problem)
    })?;
    // A glob beside the config file (`*.toml`) matches the config file itself: it is
    // the main file, not an include of itself.
    let own = std::fs::canonicalize(config_file).ok();
    files
        .into_iter()
        .filter(|file| own.is_none() || std::fs::canonicalize(file).ok() != own)
        .map(|file| {
            let targets = read_one(&file)?;
            Ok(IncludedRaw { file, targets })
        })
        .collect()
}

/// One included file's `[[target]]` tables.
///
/// The `config` crate reads it (not `toml` directly) so that every scalar arrives as a
/// string exactly as in `probes.toml` and every message is worded the same.
fn read_one(file: &Path) -> Result<RawTargets<'static>, ConfigError> {
    let bytes = crate::fsutil::read_small(file)
        .map_err(|e| ConfigError::new(file, None, format!("cannot read the included file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        ConfigError::new(
            file,
            None,
            format!(
                "the included file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    // Table by table when the file holds only `[[target]]` tables and reads cleanly
    // (`super::document`); otherwise whole, for the `config` crate's own messages.
    if let Some(chunks) = super::document::only_targets(&text, file) {
        return Ok(RawTargets::Tables(TargetTables::new(
            std::borrow::Cow::Owned(text),
            chunks?,
        )));
    }
    let tree = config::Config::builder()
        .add_source(File::from_str(&text, FileFormat::Toml))
        .build()
        .map_err(|e| {
            let problem = match e {
                config::ConfigError::FileParse { cause, .. } => {
                    format!("not valid TOML: {}", cause.to_string().trim_end())
                }
                other => other.to_string(),
            };
            ConfigError::new(file, None, problem)
        })?;
    let raw: RawInclude = serde_path_to_error::deserialize(tree).map_err(|e| {
        let mut err = ConfigError::from_deserialize(file, &EnvKeys::default(), e);
        let top_level = err.key.as_deref().is_some_and(|k| !k.contains(['.', '[']));
        if top_level && err.problem.starts_with("unknown key") {
            err.problem = format!(
                "{}; an included file may hold only [[target]] tables (agent, identity, \
                 serve and discover belong in the main config file)",
                err.problem.split(';').next().unwrap_or_default()
            );
        }
        err
    })?;
    Ok(RawTargets::Read(raw.target.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn globs_are_sorted_deduplicated_and_skip_dot_entries() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let b = write(d, "m/b.toml", "");
        let a = write(d, "m/a.toml", "");
        write(d, "m/..data/a.toml", "");
        write(d, "m/.hidden.toml", "");
        write(d, "m/notes.txt", "");
        std::fs::create_dir_all(d.join("m/dir.toml")).unwrap();
        let pats = vec![
            resolve("m/*.toml", Some(d)),
            resolve("m/a.toml", Some(d)),
            resolve("m/**/*.toml", Some(d)),
        ];
        assert_eq!(expand(&pats).unwrap(), vec![a, b]);
    }

    #[test]
    fn a_glob_may_match_nothing_but_a_plain_path_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let pats = vec![resolve("none/*.toml", Some(dir.path()))];
        assert!(expand(&pats).unwrap().is_empty());
        let pats = vec![
            resolve("none/*.toml", Some(dir.path())),
            resolve("matrix.toml", Some(dir.path())),
        ];
        let (i, problem) = expand(&pats).unwrap_err();
        assert_eq!(i, 1);
        assert!(
            problem.contains("matrix.toml\" cannot be read"),
            "{problem}"
        );
        let (_, problem) = expand(&["[".to_owned()]).unwrap_err();
        assert!(problem.contains("not a valid glob"), "{problem}");
    }

    #[test]
    fn relative_patterns_follow_the_config_directory() {
        assert_eq!(
            resolve("m/*.toml", Some(Path::new("/etc/p"))),
            "/etc/p/m/*.toml"
        );
        assert_eq!(
            resolve("/abs/*.toml", Some(Path::new("/etc/p"))),
            "/abs/*.toml"
        );
        assert_eq!(resolve("m/*.toml", None), "m/*.toml");
    }

    #[test]
    fn an_included_file_holds_only_targets() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "x.toml",
            "[agent]\nlisten = \"127.0.0.1:1\"\n[[target]]\nname = \"a\"\naddress = \"a:1\"\n",
        );
        let e = read(
            &[f.to_string_lossy().into_owned()],
            Path::new("probes.toml"),
        )
        .unwrap_err();
        assert_eq!(e.file, f);
        assert_eq!(e.key.as_deref(), Some("agent"));
        assert!(
            e.problem
                .starts_with("unknown key \"agent\"; an included file may hold only [[target]]"),
            "{}",
            e.problem
        );
        let f = write(
            dir.path(),
            "y.toml",
            "[[target]]\nname = \"a\"\nadress = \"x\"\n",
        );
        let e = read(
            &[f.to_string_lossy().into_owned()],
            Path::new("probes.toml"),
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("target[0].adress"));
        assert!(e.problem.contains("expected one of"), "{}", e.problem);
        let f = write(dir.path(), "z.toml", "[[target]\n");
        let e = read(
            &[f.to_string_lossy().into_owned()],
            Path::new("probes.toml"),
        )
        .unwrap_err();
        assert_eq!((e.file, e.key), (f, None));
        assert!(e.problem.starts_with("not valid TOML"), "{}", e.problem);
    }

    const PLAIN_A: &str = "[[target]]\nname = \"a\"\naddress = \"a:80\"\nmode = \"plaintext\"\n";

    #[test]
    fn a_config_loads_its_included_targets_with_its_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(
            dir.path(),
            "probes.toml",
            &format!(
                "[agent]\nsource = \"n\"\ninterval = \"7s\"\ninclude = [\"m/*.toml\"]\n{PLAIN_A}"
            ),
        );
        let inc = write(
            dir.path(),
            "m/x.toml",
            "[[target]]\nname = \"b\"\naddress = \"b:80\"\nmode = \"plaintext\"\n",
        );
        let cfg = crate::config::load(&main, &Default::default()).unwrap();
        let names: Vec<_> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(cfg.targets[1].interval, std::time::Duration::from_secs(7));
        assert_eq!(cfg.included.len(), 1);
        assert_eq!(cfg.included[0].path, inc);
        assert_eq!(cfg.included[0].targets, ["b"]);
        assert_eq!(crate::config::input_files(&main, &cfg), [main.clone(), inc]);
    }

    #[test]
    fn a_name_defined_twice_names_both_files_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(
            dir.path(),
            "probes.toml",
            &format!("[agent]\nsource = \"n\"\ninclude = [\"m/*.toml\"]\n{PLAIN_A}"),
        );
        let inc = write(dir.path(), "m/x.toml", &format!("{PLAIN_A}{PLAIN_A}"));
        let e = crate::config::load(&main, &Default::default()).unwrap_err();
        assert_eq!(e.file, inc);
        assert_eq!(e.key.as_deref(), Some("target[0].name"));
        assert_eq!(
            e.problem,
            format!(
                "\"a\" is already used by target[0] in {}; expected a unique name",
                main.display()
            )
        );
        // Two included files: the later one is blamed, the earlier one named.
        write(
            dir.path(),
            "probes.toml",
            "[agent]\nsource = \"n\"\ninclude = [\"m/*.toml\"]\n",
        );
        write(dir.path(), "m/x.toml", PLAIN_A);
        let y = write(dir.path(), "m/y.toml", PLAIN_A);
        let e = crate::config::load(&main, &Default::default()).unwrap_err();
        assert_eq!((e.file, e.key.as_deref()), (y, Some("target[0].name")));
        assert!(
            e.problem
                .contains(&format!("target[0] in {}", inc.display())),
            "{}",
            e.problem
        );
        // Within one included file, the message is the config file's own.
        write(
            dir.path(),
            "m/y.toml",
            &format!("{PLAIN_A}{PLAIN_A}").replace("\"a\"", "\"c\""),
        );
        let e = crate::config::load(&main, &Default::default()).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("target[1].name"));
        assert_eq!(
            e.problem,
            "\"c\" is already used by target[0]; expected a unique name"
        );
    }

    #[test]
    fn include_patterns_are_checked_like_every_key() {
        let dir = tempfile::tempdir().unwrap();
        for (include, key, fragment) in [
            ("[\"\"]", "agent.include[0]", "expected a path or glob"),
            ("[\"m/[.toml\"]", "agent.include[0]", "not a valid glob"),
            (
                "[\"a/*.toml\", \"a/*.toml\"]",
                "agent.include[1]",
                "already listed as agent.include[0]",
            ),
            (
                "[\"missing.toml\"]",
                "agent.include[0]",
                "missing.toml\" cannot be read",
            ),
            ("\"m/*.toml\"", "agent.include", "expected a list"),
        ] {
            let main = write(
                dir.path(),
                "probes.toml",
                &format!("[agent]\nsource = \"n\"\ninclude = {include}\n"),
            );
            let e = crate::config::load(&main, &Default::default()).unwrap_err();
            assert_eq!(e.file, main, "{include}");
            assert_eq!(e.key.as_deref(), Some(key), "{include}: {e}");
            assert!(e.problem.contains(fragment), "{include}: {e}");
        }
    }

    #[test]
    fn errors_inside_an_included_file_name_it_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(
            dir.path(),
            "probes.toml",
            "[agent]\nsource = \"n\"\ninclude = [\"m/*.toml\"]\n",
        );
        let inc = write(
            dir.path(),
            "m/x.toml",
            &format!("{PLAIN_A}[[target]]\nname = \"b\"\naddress = \"b:80\"\nmode = \"quic\"\n"),
        );
        let e = crate::config::load(&main, &Default::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: target[1].mode: got \"quic\"; expected one of \"mtls\", \"tls\", \"plaintext\"",
                inc.display()
            )
        );
        // An environment override of the config file's own targets does not leak into
        // the included file's messages.
        let env = [("MTLS_PROBER_TARGET".to_owned(), String::new())]
            .into_iter()
            .collect();
        let e = crate::config::load(&main, &env).unwrap_err();
        assert!(!e.problem.contains("environment"), "{e}");
    }
}
