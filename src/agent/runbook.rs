//! `docs/runbook.md` served as HTML at `/docs/runbook`, rendered once with
//! pulldown-cmark. Every heading gets an `id`: a reason's section is `#cert_expired`,
//! exactly the label value, so the links of the status page, `probe` and the alerts
//! (`…/docs/runbook#reason`) land on it. The Markdown is compiled in, so the page works
//! on an agent without internet access.

use std::collections::HashSet;
use std::sync::OnceLock;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

use crate::classify::RUNBOOK;

/// The rendered page (built on first use, then shared).
pub fn page() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| render(RUNBOOK))
}

/// Renders runbook Markdown as a whole HTML page with an `id` on every heading.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut events: Vec<Event<'_>> = Parser::new_ext(markdown, options).collect();
    let mut used = HashSet::new();
    let mut i = 0;
    while i < events.len() {
        if let Event::Start(Tag::Heading { id: None, .. }) = &events[i] {
            let mut text = String::new();
            for e in &events[i + 1..] {
                match e {
                    Event::End(TagEnd::Heading(_)) => break,
                    Event::Text(t) | Event::Code(t) => text.push_str(t),
                    _ => {}
                }
            }
            let mut slug = slug(&text);
            if !used.insert(slug.clone()) {
                let mut n = 2;
                while !used.insert(format!("{slug}-{n}")) {
                    n += 1;
                }
                slug = format!("{slug}-{n}");
            }
            if let Event::Start(Tag::Heading { id, .. }) = &mut events[i] {
                *id = Some(CowStr::from(slug));
            }
        }
        i += 1;
    }
    let mut body = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut body, events.into_iter());
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>mtls-prober runbook</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <nav><a href=\"../\">← status page</a></nav>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )
}

/// A reason or finding name is its own anchor (`cert_expired`); any other heading is
/// lowercased with runs of other characters turned into `-`.
fn slug(text: &str) -> String {
    let t = text.trim();
    if !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return t.to_owned();
    }
    let mut out = String::new();
    for c in t.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "section".into()
    } else {
        out
    }
}

const CSS: &str = "\
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#111;background:#fff}\
nav{padding:.5em 1em;background:#f3f3f3;border-bottom:1px solid #ddd}\
main{max-width:52em;margin:0 auto;padding:0 1em 4em}\
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-top:1px solid #ddd;padding-top:.6em}\
:target{background:#fff6cc}\
pre{background:#f6f8fa;padding:.6em .8em;overflow-x:auto;font-size:13px}\
code{font-family:ui-monospace,monospace;font-size:.92em}\
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.2em .5em}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Reason;

    #[test]
    fn every_reason_has_its_anchor() {
        let page = page();
        for r in Reason::ALL {
            let anchor = format!(" id=\"{}\"", r.as_str());
            assert!(page.contains(&anchor), "no {anchor} in the runbook page");
        }
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<script"), "no scripts");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("cert_expired"), "cert_expired");
        assert_eq!(slug("Stage: local"), "stage-local");
        assert_eq!(slug("  What to do first? "), "what-to-do-first");
        let html = render("## a_b\n\n## a_b\n\n# `x`\n");
        assert!(
            html.contains("id=\"a_b\"") && html.contains("id=\"a_b-2\""),
            "{html}"
        );
        assert!(html.contains("<h1 id=\"x\">"), "{html}");
    }
}
