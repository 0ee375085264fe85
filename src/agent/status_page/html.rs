//! Escaping and small formatting helpers for the status page.
//!
//! Every piece of text that did not come from this module's own literals goes through
//! [`esc`]: target names and addresses come from config, `detail`, SPIFFE IDs, issuers and
//! the `server` header come from peers, and a hostile peer chooses them freely.

use std::fmt;
use std::time::{Duration, SystemTime};

/// Text escaped for HTML element content *and* quoted attribute values, cut to a byte
/// bound. Formatting it writes straight into the output: no intermediate `String`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Esc<'a> {
    text: &'a str,
    max: usize,
}

/// Escapes `text` (see [`Esc`]), showing at most `max` bytes of it followed by "…".
pub(super) const fn esc(text: &str, max: usize) -> Esc<'_> {
    Esc { text, max }
}

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shown, cut) = bounded(self.text, self.max);
        let mut start = 0;
        for (i, c) in shown.char_indices() {
            let replacement = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                '\t' | '\n' | '\r' => continue,
                // Control characters are invalid in HTML, and bidi overrides let a peer
                // make text read differently from what it is (e.g. a reversed SPIFFE ID).
                c if c.is_control() || is_bidi_control(c) => "\u{FFFD}",
                _ => continue,
            };
            f.write_str(&shown[start..i])?;
            f.write_str(replacement)?;
            start = i + c.len_utf8();
        }
        f.write_str(&shown[start..])?;
        if cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary,
/// and whether anything was cut.
pub(super) fn bounded(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

const fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// A duration in at most two units, coarse enough to read at a glance: `45s`, `12m 5s`,
/// `3h`, `3h 12m`, `4d 2h`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Span(pub(super) Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        let (m, h, d) = (s / 60, s / 3600, s / 86_400);
        let (big, big_unit, small, small_unit) = if d > 0 {
            (d, "d", h % 24, "h")
        } else if h > 0 {
            (h, "h", m % 60, "m")
        } else if m > 0 {
            (m, "m", s % 60, "s")
        } else {
            return write!(f, "{s}s");
        };
        write!(f, "{big}{big_unit}")?;
        if small > 0 {
            write!(f, " {small}{small_unit}")?;
        }
        Ok(())
    }
}

/// `then` relative to `now`: `in 3h 12m` or `2h 5m ago`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Relative {
    pub(super) then: SystemTime,
    pub(super) now: SystemTime,
}

impl fmt::Display for Relative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.then.duration_since(self.now) {
            Ok(ahead) => write!(f, "in {}", Span(ahead)),
            Err(e) => write!(f, "{} ago", Span(e.duration())),
        }
    }
}

/// How close a certificate's `not_after` is; drives the highlight of expiry cells.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum Expiry {
    /// Already past `not_after`.
    Expired,
    /// Less than a third of its lifetime left, or less than the floor.
    Soon,
    /// Further away.
    Later,
}

impl Expiry {
    /// Classifies a certificate against `now`, relative to its own lifetime: Istio's
    /// 24-hour certificates are rotated at half their life and are not "expiring soon"
    /// with 20 hours left, a one-year certificate with a month left is. Less than a
    /// third of the lifetime left, or less than `floor`, is `Soon`. Without
    /// `not_before`, the floor alone decides.
    pub(super) fn of(
        not_before: Option<SystemTime>,
        not_after: SystemTime,
        now: SystemTime,
        floor: Duration,
    ) -> Self {
        let Ok(left) = not_after.duration_since(now) else {
            return Self::Expired;
        };
        let lifetime = not_before.and_then(|nb| not_after.duration_since(nb).ok());
        let third = lifetime.map_or(Duration::ZERO, |l| l / 3);
        if left < floor || left < third {
            Self::Soon
        } else {
            Self::Later
        }
    }

    /// The element's CSS classes.
    pub(super) const fn class(self) -> &'static str {
        match self {
            Self::Expired => "expiry expired",
            Self::Soon => "expiry soon",
            Self::Later => "expiry",
        }
    }

    /// Writes "expired 2h ago" or "in 3h".
    pub(super) fn write_relative(
        self,
        f: &mut (impl fmt::Write + ?Sized),
        not_after: SystemTime,
        now: SystemTime,
    ) -> fmt::Result {
        let rel = Relative {
            then: not_after,
            now,
        };
        match self {
            Self::Expired => write!(f, "expired {rel}"),
            Self::Soon | Self::Later => write!(f, "{rel}"),
        }
    }
}

/// A success ratio as a percentage: `100%` when perfect, else with three decimals,
/// rounded *down* so that 99.9996% never reads as a clean `100.000%`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Percent(pub(super) f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        if r.is_nan() {
            f.write_str("–")
        } else if r >= 1.0 {
            f.write_str("100%")
        } else {
            let thousandths = (r.max(0.0) * 100_000.0).floor() / 1000.0;
            write!(f, "{thousandths:.3}%")
        }
    }
}

/// A time as RFC 3339 UTC to the second.
pub(super) fn rfc3339(t: SystemTime) -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_seconds(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_controls_and_bidi() {
        let s = esc("<a href=\"x\" onclick='y'>&\u{0}\u{202E}\n", 100).to_string();
        assert_eq!(
            s,
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;\u{FFFD}\u{FFFD}\n"
        );
    }

    #[test]
    fn cuts_on_a_char_boundary_and_marks_it() {
        assert_eq!(esc("héllo", 2).to_string(), "h…");
        assert_eq!(esc("héllo", 3).to_string(), "hé…");
        assert_eq!(esc("héllo", 6).to_string(), "héllo");
        // The bound applies before escaping, so an entity is never cut in half.
        assert_eq!(esc("<<<", 2).to_string(), "&lt;&lt;…");
    }

    #[test]
    fn spans_and_percentages() {
        let d = Duration::from_secs;
        assert_eq!(Span(d(45)).to_string(), "45s");
        assert_eq!(Span(d(12 * 60 + 5)).to_string(), "12m 5s");
        assert_eq!(Span(d(3 * 3600 + 12 * 60)).to_string(), "3h 12m");
        assert_eq!(Span(d(4 * 86_400 + 7200)).to_string(), "4d 2h");
        assert_eq!(Span(d(3 * 3600)).to_string(), "3h");
        assert_eq!(Percent(1.0).to_string(), "100%");
        assert_eq!(Percent(0.99995).to_string(), "99.995%");
        assert_eq!(Percent(0.999_999).to_string(), "99.999%");
        assert_eq!(Percent(0.0).to_string(), "0.000%");
    }

    #[test]
    fn expiry_classes() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let h = |n: u64| Duration::from_secs(n * 3600);
        let floor = h(1);
        assert_eq!(Expiry::of(None, now - h(2), now, floor), Expiry::Expired);
        // An Istio certificate: 24 h, 20 h left. Was "expiring soon".
        assert_eq!(
            Expiry::of(Some(now - h(4)), now + h(20), now, floor),
            Expiry::Later
        );
        // 7 of 24 hours left: under a third.
        assert_eq!(
            Expiry::of(Some(now - h(17)), now + h(7), now, floor),
            Expiry::Soon
        );
        // A year-long certificate with five months left is fine; 20 days left of a
        // 90-day one is not.
        assert_eq!(
            Expiry::of(Some(now - h(24 * 215)), now + h(24 * 150), now, floor),
            Expiry::Later
        );
        assert_eq!(
            Expiry::of(Some(now - h(24 * 70)), now + h(24 * 20), now, floor),
            Expiry::Soon
        );
        // The floor wins over a long lifetime; no not_before: the floor alone.
        assert_eq!(
            Expiry::of(Some(now - h(10)), now + h(1) / 2, now, floor),
            Expiry::Soon
        );
        assert_eq!(Expiry::of(None, now + h(3), now, floor), Expiry::Later);
        let mut s = String::new();
        Expiry::Expired
            .write_relative(&mut s, now - h(2), now)
            .unwrap();
        assert_eq!(s, "expired 2h ago");
    }
}
