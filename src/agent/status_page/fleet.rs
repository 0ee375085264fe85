//! The fleet's lines on the status page (SPEC §12): which share this agent holds, and
//! who else probes each edge. Kept apart so the page's layout can move around them.

use std::fmt;
use std::time::SystemTime;

use super::html::{Span, esc, rfc3339};
use super::{MAX_NAME, MAX_PROBLEM};
use crate::agent::view::{EdgeFleet, FleetView, Share};

/// `<dt>Fleet</dt><dd>…</dd>` in the facts list; nothing without `[fleet]`.
pub(super) fn write_facts(
    out: &mut dyn fmt::Write,
    fleet: Option<&FleetView>,
    now: SystemTime,
) -> fmt::Result {
    let Some(f) = fleet else {
        return Ok(());
    };
    out.write_str("<dt>Fleet</dt><dd>")?;
    match f.state {
        "sharing" => {
            write!(
                out,
                "sharing with {} agents, k = {}: this agent ({}) probes {} of {} shared edges",
                f.members, f.probers_per_target, f.self_addr, f.assigned, f.shared
            )?;
        }
        "starting" => write!(
            out,
            "<span class=\"bad\">starting: not probing shared edges yet</span>"
        )?,
        _ => write!(
            out,
            "<span class=\"bad\">failing open: this agent probes all {} shared edges</span>",
            f.shared
        )?,
    }
    if f.all > 0 {
        write!(out, ", plus {} probed by every agent", f.all)?;
    }
    write!(
        out,
        "<br><small>peers {}, epoch {}",
        esc(&f.peers, MAX_NAME),
        f.epoch
    )?;
    if let Some(next) = f.next_rotation {
        let left = next.duration_since(now).unwrap_or_default();
        write!(out, ", next rotation in {} ({})", Span(left), rfc3339(next))?;
    }
    out.write_str("</small>")?;
    if let Some(problem) = &f.problem {
        write!(
            out,
            "<br><span class=\"bad\">{}</span>",
            esc(problem, MAX_PROBLEM)
        )?;
    }
    out.write_str("</dd>\n")
}

/// Under an edge's name: who probes it.
pub(super) fn write_edge(out: &mut dyn fmt::Write, fleet: Option<&EdgeFleet>) -> fmt::Result {
    let Some(f) = fleet else {
        return Ok(());
    };
    match (f.share, &f.probers) {
        (Share::Assigned, Some(probers)) => {
            out.write_str("<br><small>probed by ")?;
            for (i, p) in probers.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write!(out, "{p}")?;
            }
            out.write_str("</small>")
        }
        (Share::All, _) => out.write_str("<br><small>probed by every agent (fleet = all)</small>"),
        _ => out.write_str("<br><small>probed by every agent (failing open)</small>"),
    }
}
