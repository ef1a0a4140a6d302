//! Names and labels as they may reach a terminal: control characters shown as escapes, so a
//! file name cannot move the cursor, colour the screen or start a line of its own.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters a terminal acts on instead of showing: C0 and C1 controls and DEL, the line and
/// paragraph separators, and the marks that reorder bidirectional text (they can make a name
/// read as another).
fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` for one line of a terminal: unchanged when it holds no character a terminal acts on
/// (letters of any script, é or 日本, stay as they are); otherwise each such character is
/// written as an escape (`\n`, `\r`, `\t`, `\x1b`, `\u{202e}`) and each backslash is doubled,
/// so the escaped form reads back to one name only.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(acts_on_terminal) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii() && acts_on_terminal(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if acts_on_terminal(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A message of several lines (an error whose cause quotes a library's report) for a
/// terminal: its line breaks kept, every line escaped as by [`terminal`].
pub fn terminal_lines(s: &str) -> String {
    s.split('\n').map(terminal).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_and_other_scripts_stay() {
        for s in [
            "clip.mp4",
            "café/日本語 ビデオ.mkv",
            "a\\b.mp4",
            "Ωmega – 1.webm",
        ] {
            assert!(matches!(terminal(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(
            terminal("a\nb\x1b[31mc\td\re\u{7f}"),
            "a\\nb\\x1b[31mc\\td\\re\\x7f"
        );
        assert_eq!(
            terminal("x\u{85}y\u{202e}z\u{2028}"),
            "x\\u{85}y\\u{202e}z\\u{2028}"
        );
        assert_eq!(terminal("é\0日"), "é\\x00日");
    }

    #[test]
    fn escaped_names_read_back_to_one_name() {
        // A real newline and a backslash followed by `n` differ once escaped.
        assert_eq!(terminal("a\\n\n"), "a\\\\n\\n");
        assert_ne!(terminal("a\\n\n"), terminal("a\n\n"));
        assert!(!terminal("x\ny\x1b").contains(['\n', '\x1b']));
    }

    #[test]
    fn messages_keep_their_line_breaks() {
        assert_eq!(
            terminal_lines("cannot open a\x1b[2Jb\nframe #0: c10"),
            "cannot open a\\x1b[2Jb\nframe #0: c10"
        );
    }
}
