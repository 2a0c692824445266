//! Failures said in one line, the way a user reads them ("connection refused", not an error
//! type's debug form), and the one place such lines are written to stderr.

use crate::terminal_text;
use std::io::ErrorKind;

/// The reason of an I/O failure: the kind in words, or the OS message without its error number.
pub fn io_reason(e: &std::io::Error) -> String {
    let kind = match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::ConnectionReset => "connection reset by the server",
        ErrorKind::ConnectionAborted => "connection aborted",
        ErrorKind::TimedOut => "timed out",
        ErrorKind::UnexpectedEof => "the server closed the connection",
        ErrorKind::BrokenPipe => "the connection broke",
        ErrorKind::AddrNotAvailable => "address not available",
        _ => "",
    };
    if !kind.is_empty() {
        return kind.to_owned();
    }
    let text = e.to_string();
    one_line(text.split(" (os error").next().unwrap_or(&text))
}

/// `text` on one line: line breaks and runs of spaces become one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` on one line and at most `max` characters: cut when longer, ending in `…` (counted in
/// `max`, so the result still fits a column that wide) when `ellipsis`.
pub fn short_line(text: &str, max: usize, ellipsis: bool) -> String {
    let line = one_line(text);
    if line.chars().count() <= max {
        return line;
    }
    let mark = ellipsis && max > 0;
    let mut short: String = line.chars().take(if mark { max - 1 } else { max }).collect();
    if mark {
        short.push('…');
    }
    short
}

/// One line on stderr, prefixed with the program's name; a closed stderr is not an error. The
/// line may quote a server (an error message, a close reason, an epoch): it goes through the
/// terminal filter whole.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "tickwire: {}", terminal_text::text(&one_line(line)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Error;

    #[test]
    fn io_failures_in_words() {
        assert_eq!(io_reason(&Error::from(ErrorKind::ConnectionRefused)), "connection refused");
        assert_eq!(io_reason(&Error::from_raw_os_error(111)), "connection refused");
        assert_eq!(io_reason(&Error::from_raw_os_error(113)), "No route to host");
        assert_eq!(io_reason(&Error::other("dns\nfailed")), "dns failed");
    }

    #[test]
    fn short_lines_fit_their_width() {
        assert_eq!(short_line("a\n b  c", 5, true), "a b c");
        assert_eq!(short_line("a\n b  cd", 5, true), "a b …");
        assert_eq!(short_line("a\n b  cd", 5, false), "a b c");
        assert_eq!(short_line("ééé", 2, true), "é…");
        assert_eq!(short_line("abc", 0, true), "");
        assert_eq!(short_line("", 3, true), "");
    }
}
