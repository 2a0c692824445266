//! The one filter between what a server sends and the terminal: every server-supplied string the
//! client prints (table cells, stderr lines, error messages, close reasons, `tail`'s JSON lines)
//! passes through [`escape`], so a hostile server, or an upstream through an honest one, cannot
//! set the window title, write the clipboard (OSC 52), repaint the screen or reorder what is
//! shown. The client's own escape sequences (`watch`'s redraw and colours) are added after it.
//!
//! Escaped, never written raw:
//! - every C0 control (U+0000–U+001F), tab and line breaks included: a cell or a line of the
//!   client's is one line, and the client makes its own line breaks (stderr lines are first made
//!   one line by [`crate::errors::one_line`], which turns whitespace runs into one space);
//! - DEL (U+007F) and every C1 control (U+0080–U+009F: `\u{9b}` is CSI on many terminals);
//! - the bidi controls that reorder text (U+202A–U+202E embeddings and overrides, U+2066–U+2069
//!   isolates, the marks U+200E, U+200F and U+061C) and the line and paragraph separators
//!   U+2028 and U+2029.
//!
//! Everything else, non-ASCII letters and symbols included, is kept as is. A backslash is kept
//! too: text that merely looks like an escape is harmless.

use serde_json::Value;
use std::borrow::Cow;

/// How an escaped character is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `\u{1b}`: for text a person reads.
    Text,
    /// `\u001b`: for JSON text. These characters can only stand inside a JSON string (outside
    /// strings JSON is ASCII punctuation, digits and letters), where `\uXXXX` is the same value:
    /// the line stays valid JSON that decodes to what the server sent.
    Json,
}

/// Whether `c` must not reach the terminal raw.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}'
        | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character of [`is_unsafe`] escaped in `style`; borrowed when there is none.
pub fn escape(text: &str, style: Style) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else {
            // Every unsafe character is in the Basic Multilingual Plane: four hex digits hold it.
            match style {
                Style::Text => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
                Style::Json => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            }
        }
    }
    Cow::Owned(out)
}

/// Server text for a person to read: [`escape`] in [`Style::Text`].
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, Style::Text)
}

/// A JSON line for stdout: [`escape`] in [`Style::Json`].
pub fn json(s: &str) -> Cow<'_, str> {
    escape(s, Style::Json)
}

/// Every string in `v`, object keys included, passed through [`text`]: the cells made from a
/// channel's data (coin ids, the Fear & Greed classification) then show server text escaped.
pub fn text_strings(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Cow::Owned(safe) = text(s) {
                *s = safe;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(text_strings),
        Value::Object(map) => {
            if map.keys().any(|k| k.chars().any(is_unsafe)) {
                *map = std::mem::take(map).into_iter().map(|(k, v)| (text(&k).into_owned(), v)).collect();
            }
            map.values_mut().for_each(text_strings);
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn every_class_is_escaped() {
        let cases = [
            ("\x1b]0;title\x07", "\\u{1b}]0;title\\u{7}"),
            ("\x1b]52;c;cHduZWQ=\x07", "\\u{1b}]52;c;cHduZWQ=\\u{7}"),
            ("\x1b[2J\x1b[31mred", "\\u{1b}[2J\\u{1b}[31mred"),
            ("\u{9b}31m", "\\u{9b}31m"),
            ("a\u{80}b\u{9f}c", "a\\u{80}b\\u{9f}c"),
            ("del\x7f", "del\\u{7f}"),
            ("nul\0", "nul\\u{0}"),
            ("a\tb\nc\rd", "a\\u{9}b\\u{a}c\\u{d}d"),
            ("\u{202e}evil\u{202c}", "\\u{202e}evil\\u{202c}"),
            ("\u{202a}\u{202b}\u{202d}", "\\u{202a}\\u{202b}\\u{202d}"),
            ("\u{2066}x\u{2067}\u{2068}\u{2069}", "\\u{2066}x\\u{2067}\\u{2068}\\u{2069}"),
            ("\u{200e}\u{200f}\u{61c}", "\\u{200e}\\u{200f}\\u{61c}"),
            ("\u{2028}\u{2029}", "\\u{2028}\\u{2029}"),
        ];
        for (raw, want) in cases {
            assert_eq!(text(raw), want, "{raw:?}");
            assert!(!text(raw).chars().any(is_unsafe));
        }
    }

    #[test]
    fn valid_text_is_unchanged_and_borrowed() {
        for ok in [
            "",
            "bitcoin",
            "Extreme Fear",
            "wrapped-bitcoin_2",
            "Ça coûte 3 € · 42 ¥ — ok…",
            "日本語 العربية עברית ελληνικά",
            "emoji 🚀 and ZWJ 👩\u{200d}💻",
            "nbsp\u{a0}here, soft\u{ad}hyphen",
            "a backslash \\u{1b} that only looks like one",
            "–",
        ] {
            assert!(matches!(text(ok), Cow::Borrowed(s) if s == ok), "{ok:?}");
            assert!(matches!(json(ok), Cow::Borrowed(s) if s == ok), "{ok:?}");
        }
    }

    #[test]
    fn the_neighbours_of_each_range_are_kept() {
        for c in ['\u{20}', '\u{7e}', '\u{a0}', '\u{61b}', '\u{61d}', '\u{200d}', '\u{2027}', '\u{202f}', '\u{2065}'] {
            assert!(!is_unsafe(c), "{c:?}");
        }
        for c in ['\u{1f}', '\u{7f}', '\u{80}', '\u{9f}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}'] {
            assert!(is_unsafe(c), "{c:?}");
        }
    }

    #[test]
    fn data_strings_and_keys_are_escaped() {
        let mut v =
            json!({"coins": {"\u{1b}]0;t\u{7}": {"price_usd": 1.5}}, "classification": "\u{9b}2J", "n": [1, "ok"]});
        text_strings(&mut v);
        assert_eq!(
            v,
            json!({"coins": {"\\u{1b}]0;t\\u{7}": {"price_usd": 1.5}}, "classification": "\\u{9b}2J", "n": [1, "ok"]})
        );
    }

    #[test]
    fn json_lines_stay_json_with_the_same_value() {
        let hostile = "\x1b]0;t\x07 \u{9b}2J \u{202e}x\u{2069} \x7f ü";
        let value = json!({"type": "update", hostile: [hostile, {"k": hostile}]});
        let line = serde_json::to_string(&value).unwrap();
        assert!(line.contains('\u{9b}') && line.contains('\u{7f}'), "serde_json keeps C1 and DEL raw: {line}");
        let safe = json(&line);
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        assert!(safe.contains("\\u009b2J") && safe.contains("\\u202ex") && safe.contains('ü'), "{safe}");
        assert_eq!(serde_json::from_str::<Value>(&safe).unwrap(), value, "the same value");
    }
}
