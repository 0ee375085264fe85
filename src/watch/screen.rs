//! The live view's terminal handling: the alternate screen, frames that fit the
//! window, and the terminal given back on every way out.
//!
//! Each frame is drawn from the top of the alternate screen, one line per row, each
//! cut to the window's width and cleared to its end, so a redraw never scrolls and
//! nothing piles up in the scrollback (a cursor-up redraw of a frame taller than the
//! window leaves a copy per redraw). Leaving restores the normal screen, as `less`,
//! `top` and `watch(1)` do; the final report is printed after that, on the normal
//! screen, where it stays.

use std::io::Write;

/// Enter the alternate screen, hide the cursor.
const ENTER: &str = "\x1b[?1049h\x1b[?25l";
/// Show the cursor, leave the alternate screen.
const LEAVE: &str = "\x1b[?25h\x1b[?1049l";

/// The terminal's size in (columns, rows); 80×24 when it cannot be read (not a
/// terminal, or a terminal that does not say).
pub fn size() -> (usize, usize) {
    terminal_size::terminal_size()
        .map(|(w, h)| (usize::from(w.0), usize::from(h.0)))
        .filter(|&(w, h)| w > 0 && h > 0)
        .unwrap_or((80, 24))
}

/// The alternate screen while it lives; dropping it restores the terminal, also when
/// the watch is stopped by Ctrl-C or unwinds.
#[derive(Debug)]
pub struct Screen {
    active: bool,
}

impl Screen {
    /// Switches to the alternate screen.
    pub fn enter() -> Self {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(ENTER.as_bytes());
        let _ = out.flush();
        Self { active: true }
    }

    /// Draws `lines` as the whole screen: from the top, each cut to `width` columns.
    pub fn draw(&mut self, lines: &[String], width: usize) {
        let mut frame = String::from("\x1b[H");
        for line in lines {
            frame.push_str(&fit(line, width));
            frame.push_str("\x1b[K\r\n");
        }
        frame.push_str("\x1b[J");
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(frame.as_bytes());
        let _ = out.flush();
    }

    /// Restores the normal screen (idempotent; also done on drop).
    pub fn leave(&mut self) {
        if std::mem::take(&mut self.active) {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(LEAVE.as_bytes());
            let _ = out.flush();
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.leave();
    }
}

/// `line` cut to `width` characters (a cut line ends with `…`). Every character of
/// the view is one column wide (ASCII plus `≥`, `…`, `#`, `-`).
pub fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_owned();
    }
    let mut s: String = line.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn lines_are_cut_to_the_width() {
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abcd", 3), "ab…");
        assert_eq!(fit("≥≥≥≥", 2), "≥…");
    }
}
