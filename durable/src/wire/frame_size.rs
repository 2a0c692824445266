//! A client frame judged by its size as the runtime hands it over, before it is copied into
//! wasm memory: wasm memory never shrinks, so copying a 1 MiB frame only to refuse it would
//! grow the object's heap for good.
//!
//! The runtime gives a text frame as a JavaScript string, whose length counts UTF-16 code
//! units, not the UTF-8 bytes `MAX_CLIENT_FRAME_BYTES` counts. Each unit is at least one byte
//! and at most three (a surrogate pair is two units and four bytes; a lone surrogate becomes
//! U+FFFD, three bytes), so a string of `n` units is `n..=3n` bytes. A frame of more units than
//! the limit is certainly over it and is refused without a copy; any other is copied (at most
//! three times the limit) and measured exactly by `SocketMeta::on_text`, so no frame within the
//! limit is ever refused. A binary frame's length is its byte length, read without a copy (the
//! protocol never reads its bytes).

/// What the runtime says about a client frame's size without copying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameSize {
    /// A text frame: its JavaScript string's `length`.
    Text { utf16_units: usize },
    /// A binary frame: its `byteLength`.
    Binary { bytes: usize },
}

impl FrameSize {
    /// The fewest UTF-8 bytes the frame can hold.
    pub fn min_bytes(self) -> usize {
        match self {
            FrameSize::Text { utf16_units } => utf16_units,
            FrameSize::Binary { bytes } => bytes,
        }
    }

    /// Whether the frame is over `max_bytes` whatever its content: then it is refused (closed
    /// with 1009) without being copied. False for every frame of at most `max_bytes` bytes.
    pub fn certainly_over(self, max_bytes: usize) -> bool {
        self.min_bytes() > max_bytes
    }
}

/// A client frame as the hub handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// A text frame that may fit the limit, copied into wasm memory.
    Text(String),
    /// A binary frame, by its byte length (the protocol is JSON text only).
    Binary { bytes: usize },
    /// A text frame refused by its length, never copied: at least `min_bytes` UTF-8 bytes.
    Oversized { min_bytes: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> FrameSize {
        FrameSize::Text { utf16_units: s.encode_utf16().count() }
    }

    #[test]
    fn no_frame_within_the_limit_is_refused_and_none_clearly_over_is_copied() {
        let max = 4096;
        // One, two, three and four UTF-8 bytes per character; just under, at and over the
        // limit in bytes.
        for unit in ["a", "é", "€", "😀"] {
            for bytes in [max - 8, max - 1, max, max + 1, max + 8, 3 * max, 3 * max + 3, 1 << 20] {
                let s = unit.repeat(bytes / unit.len());
                let size = text(&s);
                if s.len() <= max {
                    assert!(!size.certainly_over(max), "{} bytes of {unit:?} refused", s.len());
                }
                if size.certainly_over(max) {
                    assert!(s.len() > max, "{} bytes of {unit:?}", s.len());
                }
                // What is copied is at most three times the limit.
                if !size.certainly_over(max) {
                    assert!(s.len() <= 3 * max, "{} bytes of {unit:?} copied", s.len());
                }
            }
        }
        assert!(text(&"a".repeat(max + 1)).certainly_over(max));
        assert!(!text(&"a".repeat(max)).certainly_over(max));
        // 1,366 units of three bytes are 4,098 bytes: over, but only the exact count knows.
        assert!(!text(&"€".repeat(1366)).certainly_over(max));
    }

    #[test]
    fn binary_frames_are_judged_by_their_byte_length() {
        assert!(!FrameSize::Binary { bytes: 4096 }.certainly_over(4096));
        assert!(FrameSize::Binary { bytes: 4097 }.certainly_over(4096));
        assert_eq!(FrameSize::Binary { bytes: 7 }.min_bytes(), 7);
    }
}
