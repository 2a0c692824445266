//! The terminal while `watch` draws on it: the alternate screen, no cursor, no line wrap (a line
//! wider than the terminal is cut, not wrapped), each frame drawn over the last in one write;
//! the terminal as it was once dropped.

use std::io::Write;

const ENTER: &str = "\x1b[?1049h\x1b[?25l\x1b[?7l";
const LEAVE: &str = "\x1b[?7h\x1b[?25h\x1b[?1049l";

pub struct Screen {
    active: bool,
}

impl Screen {
    pub fn enter() -> Screen {
        let _ = write_out(ENTER);
        Screen { active: true }
    }

    pub fn draw(&mut self, lines: &[String]) -> std::io::Result<()> {
        write_out(&frame(lines))
    }

    pub fn leave(&mut self) {
        if std::mem::take(&mut self.active) {
            let _ = write_out(LEAVE);
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Home, each line cleared to its end, and everything below cleared: no flicker, no leftovers.
fn frame(lines: &[String]) -> String {
    let mut out = String::from("\x1b[H");
    out.push_str(&lines.join("\x1b[K\r\n"));
    out.push_str("\x1b[K\x1b[J");
    out
}

fn write_out(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_frame_overwrites_in_place() {
        let f = super::frame(&["a".into(), "bc".into()]);
        assert_eq!(f, "\x1b[Ha\x1b[K\r\nbc\x1b[K\x1b[J");
    }
}
