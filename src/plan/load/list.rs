//! A `kind: List` in the block style `kubectl get -o yaml` prints, read item by item
//! and in parallel instead of as one YAML document (docs/performance.md, "`plan` on a
//! large cluster").

use serde_yaml_ng::Value;

use super::{Classified, LoadError, Loaded, Source, classify};

/// The items of a single-document `kind: List` in the block style `kubectl get -o yaml`
/// prints (`items:` at column 0, each item a `- ` at column 0, its other lines indented
/// by two), as the byte ranges of the items' lines. `None` for anything else, which
/// then takes the general path.
///
/// Why: the YAML parser buffers every event of a document before deserializing it, so a
/// 50 MB List would cost ten times its size at once; parsed item by item it costs one
/// item. A line at column 0 inside the items can only start the next item or end the
/// list (block scalars of an item are indented further), so the split is exact for
/// this style; anything unexpected falls back to the general path.
pub(super) fn kubectl_list_items(text: &str) -> Option<Vec<(usize, usize)>> {
    let body = text.strip_prefix("---\n").unwrap_or(text);
    let offset = text.len() - body.len();
    let mut items = Vec::new();
    let mut in_items = false;
    let mut pos = offset;
    let mut current: Option<usize> = None;
    for line in body.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        if content == "---" || content == "..." {
            return None; // several documents: the general path
        }
        if !in_items {
            if content == "items:" {
                in_items = true;
            }
            continue;
        }
        if content.is_empty() || content.starts_with(' ') || content.starts_with('#') {
            if current.is_none() && content.starts_with(' ') {
                return None;
            }
            continue;
        }
        if let Some(first) = current.take() {
            items.push((first, start));
        }
        if content.starts_with("- ") {
            current = Some(start);
        } else if content.starts_with('-') {
            return None;
        } else {
            in_items = false; // `kind: List`, `metadata:` after the items
        }
    }
    if let Some(first) = current {
        items.push((first, pos));
    }
    (in_items || !items.is_empty()).then_some(items)
}

/// Parses the items found by [`kubectl_list_items`], each on its own, spread over the
/// machine's cores in contiguous runs and stored in input order.
///
/// Why threads: the YAML parser is the whole cost of planning a large cluster (about
/// 15 MB/s of `kubectl get -o yaml` on one core), and the items are independent. Each
/// thread holds one item's events at a time, so memory stays as in the sequential
/// form. The first bad item (in input order) is the error reported.
pub(super) fn load_list_items(
    text: &str,
    items: &[(usize, usize)],
    file: &str,
    out: &mut Loaded,
) -> Result<(), LoadError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, MAX_PARSE_THREADS);
    // Small inputs are not worth a thread.
    let threads = if items.len() < 64 { 1 } else { threads };
    let per_run = items.len().div_ceil(threads).max(1);
    let runs: Vec<Result<Vec<Classified>, LoadError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_run)
            .enumerate()
            .map(|(n, run)| {
                let first = n * per_run;
                scope.spawn(move || parse_run(text, run, first, file))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(LoadError {
                        file: file.to_owned(),
                        doc: Some(0),
                        item: None,
                        problem: "the YAML parser failed unexpectedly".to_owned(),
                    })
                })
            })
            .collect()
    });
    let mut i = 0;
    for run in runs {
        for c in run? {
            c.store(
                Source {
                    file: file.to_owned(),
                    doc: 0,
                    item: Some(i),
                },
                out,
            );
            i += 1;
        }
    }
    Ok(())
}

/// At most this many threads parse one List: beyond it the input's reading and the
/// merge dominate.
const MAX_PARSE_THREADS: usize = 8;

/// Parses one contiguous run of List items (`first` is the index of its first item).
fn parse_run(
    text: &str,
    run: &[(usize, usize)],
    first: usize,
    file: &str,
) -> Result<Vec<Classified>, LoadError> {
    let mut parsed = Vec::with_capacity(run.len());
    let mut item = String::new();
    for (k, &(start, end)) in run.iter().enumerate() {
        let error = |problem: String| LoadError {
            file: file.to_owned(),
            doc: Some(0),
            item: Some(first + k),
            problem,
        };
        // Un-indent: "- key: v" → "key: v", "  key: v" → "key: v".
        item.clear();
        for line in text[start..end].split_inclusive('\n') {
            if line.starts_with("- ") || line.starts_with("  ") {
                item.push_str(&line[2..]);
            } else {
                item.push('\n'); // a blank line or a comment at column 0
            }
        }
        let value: Value = serde_yaml_ng::from_str(&item).map_err(|e| {
            error(format!(
                "not valid YAML (lines counted within the item): {e}"
            ))
        })?;
        parsed.push(classify(value).map_err(error)?);
    }
    Ok(parsed)
}
