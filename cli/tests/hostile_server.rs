//! The real `tickwire` binary against a hostile server on 127.0.0.1 (a small tungstenite server
//! and a raw HTTP one, started and stopped by each test): every string the server sends carries
//! terminal escape sequences (window title, OSC 52 clipboard, CSI, the C1 CSI, bidi overrides,
//! BEL, DEL), and neither `tail`, nor `watch` (piped, or drawing its table on a pseudo-terminal),
//! nor `publish` writes one raw byte of them, while the text stays readable in escaped form. And
//! a server that streams without ever saying `subscribed`, then sends a message over the client's
//! cap, is cut off and reported, the client's memory bounded.
#![cfg(not(target_arch = "wasm32"))]

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode, protocol::CloseFrame, Message};

/// Window title, clipboard write, clear screen and red, the C1 CSI, a right-to-left override and
/// an isolate, BEL and DEL: short enough for a close reason (123 bytes).
const EVIL: &str =
    "\x1b]0;pwned\x07\x1b]52;c;cHduZWQ=\x07\x1b[2J\x1b[31m\u{9b}31m\u{202e}evil\u{202c}\u{2066}x\u{2069}\x07\x7f";
/// `EVIL` as the client shows it to a person.
const EVIL_TEXT: &str = r"\u{1b}]0;pwned\u{7}\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[2J\u{1b}[31m\u{9b}31m\u{202e}evil\u{202c}\u{2066}x\u{2069}\u{7}\u{7f}";
/// `EVIL` inside one of `tail`'s JSON lines.
const EVIL_JSON: &str = r"\u001b]0;pwned\u0007\u001b]52;c;cHduZWQ=\u0007\u001b[2J\u001b[31m\u009b31m\u202eevil\u202c\u2066x\u2069\u0007\u007f";

/// The bytes a terminal acts on that must never come from the server raw: ESC, BEL, C1 (UTF-8
/// `C2 80`..`C2 9F`), and the bidi overrides and isolates.
fn assert_no_raw_controls(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    for (i, b) in out.iter().enumerate() {
        assert!(*b != 0x1b && *b != 0x07 && *b != 0x7f, "{what}: raw byte {b:#04x} at {i} in\n{text}");
        if *b == 0xc2 {
            let next = out.get(i + 1).copied().unwrap_or(0);
            assert!(!(0x80..=0x9f).contains(&next), "{what}: raw C1 {next:#04x} at {i} in\n{text}");
        }
    }
    for bidi in ['\u{202e}', '\u{202c}', '\u{2066}', '\u{2069}'] {
        assert!(!text.contains(bidi), "{what}: raw {bidi:?} in\n{text}");
    }
}

/// A WebSocket server for one connection: it sends `script` and reads until the client leaves.
/// The listener closes once the connection is accepted, so a reconnect is refused and the client
/// (run with `--retries 0`) gives up. Its URL and its thread.
fn ws_server(script: impl IntoIterator<Item = Message, IntoIter: Send + 'static>) -> (String, JoinHandle<()>) {
    let script = script.into_iter();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        drop(listener);
        let mut ws = tungstenite::accept(tcp).unwrap();
        for m in script {
            // The client may hang up first (a message over its cap).
            if ws.send(m).is_err() {
                return;
            }
        }
        while ws.read().is_ok() {}
    });
    (url, server)
}

/// An HTTP server for one request: it answers `status` with `body`. Its URL and its thread.
fn http_server(status: &'static str, body: Vec<u8>) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers, then the body by its length (the client's publish body is small).
        while let Ok(n) = tcp.read(&mut buf) {
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        let _ = tcp.write_all(head.as_bytes());
        let _ = tcp.write_all(&body);
    });
    (url, server)
}

/// Runs `tickwire args`, killed after 30 s; its exit code, stdout and stderr.
fn tickwire(args: &[&str]) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let (code, stdout, stderr, _) = tickwire_peak(args);
    (code, stdout, stderr)
}

/// [`tickwire`], and the highest resident memory seen while it ran (`VmHWM`, in KiB).
fn tickwire_peak(args: &[&str]) -> (Option<i32>, Vec<u8>, Vec<u8>, u64) {
    run_peak(Command::new(env!("CARGO_BIN_EXE_tickwire")).args(args))
}

/// Runs `command`, killed after 30 s; its exit code, stdout and stderr.
fn run(command: &mut Command) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let (code, stdout, stderr, _) = run_peak(command);
    (code, stdout, stderr)
}

/// [`run`], and the highest resident memory seen while it ran (`VmHWM`, in KiB).
fn run_peak(command: &mut Command) -> (Option<i32>, Vec<u8>, Vec<u8>, u64) {
    let mut child = command
        .env_remove("TICKWIRE_URL")
        .env_remove("TICKWIRE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut out = Vec::new();
            let _ = r.read_to_end(&mut out);
            out
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        let status = std::fs::read_to_string(&status_file).unwrap_or_default();
        let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().split(' ').next());
        peak_kib = peak_kib.max(hwm.and_then(|v| v.parse().ok()).unwrap_or(0));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        thread::sleep(Duration::from_millis(20));
    };
    (status.code(), stdout.join().unwrap(), stderr.join().unwrap(), peak_kib)
}

/// The server's thread has ended: the client came and went.
fn stopped(server: JoinHandle<()>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(server.is_finished(), "the server's connection is over");
    server.join().unwrap();
}

fn text(m: Value) -> Message {
    Message::text(m.to_string())
}

fn close() -> Message {
    Message::Close(Some(CloseFrame { code: CloseCode::Library(4000), reason: EVIL.into() }))
}

fn welcome() -> Message {
    text(json!({"type": "welcome", "conn": EVIL, "protocol": 1, "channels": [], "stale_after_seconds": 180}))
}

fn update(channel: &str, seq: u64, data: Value) -> Message {
    text(
        json!({"type": "update", "channel": channel, "seq": seq, "ts": 1_700_000_000_000u64, "stale": false, "data": data}),
    )
}

fn subscribed(channel: &str, seq: u64) -> Message {
    text(json!({"type": "subscribed", "channel": channel, "seq": seq, "epoch": EVIL, "recovered": false}))
}

fn error() -> Message {
    text(json!({"type": "error", "code": "bad_json", "message": EVIL}))
}

#[test]
fn tail_writes_no_raw_control_from_a_hostile_server() {
    let script = vec![
        welcome(),
        error(),
        update("news", 2, json!({EVIL: EVIL, "list": [EVIL, 1]})),
        subscribed("news", 5),
        update("news", 6, json!(EVIL)),
        Message::text(EVIL),
        close(),
    ];
    let (url, server) = ws_server(script);
    let (code, stdout, stderr) =
        tickwire(&["tail", "news", "--since", "news:1@e0", "--url", &url, "--retries", "0", "--retry-max", "1"]);
    stopped(server);
    let (out, err) = (String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    assert_eq!(code, Some(1), "the reconnect is refused and --retries 0 gives up\n{out}\n{err}");
    assert_no_raw_controls("tail's stdout", &stdout);
    assert_no_raw_controls("tail's stderr", &stderr);

    // Each line is JSON holding exactly what the server sent.
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["data"], json!({EVIL: EVIL, "list": [EVIL, 1]}));
    assert_eq!(lines[1]["data"], json!(EVIL));
    assert!(out.contains(&format!("\"{EVIL_JSON}\"")), "{out}");

    for said in [
        format!("connected (conn {EVIL_TEXT})"),
        format!("server error bad_json: {EVIL_TEXT}"),
        format!("news was recreated on the server (epoch e0 is now {EVIL_TEXT})"),
        format!("the server closed the connection with 4000 {EVIL_TEXT}; retrying in"),
        "skipped a message:".to_owned(),
    ] {
        assert!(err.contains(&said), "stderr lacks {said:?}:\n{err}");
    }
}

/// A hub's frames for `watch`, every string hostile: coin ids, the classification, `conn`,
/// epochs, an error message and the close reason.
fn watch_script() -> Vec<Message> {
    let quote = json!({"price_usd": 1.0, "change_24h_pct": 2.0, "market_cap_usd": 3e12, "volume_24h_usd": 4e9});
    let market = json!({
        "coins": {EVIL: quote},
        "total_market_cap_usd": 2.41e12, "total_volume_24h_usd": 8.9e10, "btc_dominance_pct": 52.3
    });
    vec![
        welcome(),
        update("btc", 1, json!({"price_usd": 67123.45, "change_24h_pct": 1.2})),
        update("market", 1, market),
        update("sentiment", 1, json!({"value": 50, "classification": EVIL})),
        update("indicators", 1, json!(EVIL)),
        subscribed("btc", 1),
        subscribed("market", 1),
        subscribed("sentiment", 1),
        subscribed("indicators", 1),
        error(),
        close(),
    ]
}

#[test]
fn watch_with_piped_output_writes_no_raw_control_from_a_hostile_server() {
    let script = watch_script();
    let (url, server) = ws_server(script);
    let (code, stdout, stderr) = tickwire(&["watch", &url, "--retries", "0", "--retry-max", "1"]);
    stopped(server);
    let (out, err) = (String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert_no_raw_controls("watch's stdout", &stdout);
    assert_no_raw_controls("watch's stderr", &stderr);
    for shown in [
        format!("(conn {EVIL_TEXT})"),
        format!("{EVIL_TEXT} $1.00 +2.00 %"),
        format!("Fear & Greed 50 {EVIL_TEXT}"),
        format!("disconnected: the server closed the connection with 4000 {EVIL_TEXT}; reconnecting in"),
    ] {
        assert!(out.contains(&shown), "stdout lacks {shown:?}:\n{out}");
    }
    assert!(err.contains(&format!("server error bad_json: {EVIL_TEXT}")), "{err}");
}

/// The escape sequences `watch` itself draws its table with (`screen.rs`, `view.rs`).
const OWN_SEQUENCES: [&str; 15] = [
    "\x1b[?1049h",
    "\x1b[?25l",
    "\x1b[?7l",
    "\x1b[?7h",
    "\x1b[?25h",
    "\x1b[?1049l",
    "\x1b[H",
    "\x1b[K",
    "\x1b[J",
    "\x1b[0m",
    "\x1b[1m",
    "\x1b[2m",
    "\x1b[31m",
    "\x1b[32m",
    "\x1b[33m",
];

#[test]
fn watch_on_a_terminal_draws_only_its_own_escape_sequences() {
    let (url, server) = ws_server(watch_script());
    // util-linux `script` (Debian's essential bsdutils) runs it on a pseudo-terminal and copies
    // every byte written to it.
    let command = format!("{} watch {url} --retries 0 --retry-max 1", env!("CARGO_BIN_EXE_tickwire"));
    let (code, pty, _) = run(Command::new("script").args(["-qec", &command, "/dev/null"]));
    stopped(server);
    let mut shown = String::from_utf8_lossy(&pty).into_owned();
    assert!(shown.contains("\x1b[?1049h") && shown.contains("\x1b[?1049l"), "the table was drawn: {shown:?}");
    for own in OWN_SEQUENCES {
        shown = shown.replace(own, "");
    }
    assert_eq!(code, Some(1), "{shown}");
    assert_no_raw_controls("watch's terminal", shown.as_bytes());
    for drawn in [
        format!("connected (conn {EVIL_TEXT})"),
        format!("Fear & Greed             50  {EVIL_TEXT}"),
        r"  \u{1b}]0;pwn…".to_owned(), // the coin id, escaped, then cut to its column
        format!("after: the server closed the connection with 4000 {EVIL_TEXT}"),
    ] {
        assert!(shown.contains(&drawn), "the terminal lacks {drawn:?}:\n{shown}");
    }
}

#[test]
fn publish_writes_no_raw_control_from_a_hostile_error_body() {
    let body = json!({"error": {"code": EVIL, "message": EVIL}}).to_string().into_bytes();
    let (url, server) = http_server("400 Bad Request", body);
    let (code, stdout, stderr) = tickwire(&["publish", "news", "{}", "--url", &url]);
    stopped(server);
    let err = String::from_utf8_lossy(&stderr);
    assert_eq!(code, Some(6), "{err}");
    assert!(stdout.is_empty());
    assert_no_raw_controls("publish's stderr", &stderr);
    assert!(err.contains(&format!("400: refused ({EVIL_TEXT}: {EVIL_TEXT})")), "{err}");

    // Not JSON at all: the raw body is quoted, escaped.
    let (url, server) = http_server("502 Bad Gateway", format!("<h1>{EVIL}</h1>").into_bytes());
    let (code, _, stderr) = tickwire(&["publish", "news", "{}", "--url", &url]);
    stopped(server);
    let err = String::from_utf8_lossy(&stderr);
    assert_eq!(code, Some(1), "{err}");
    assert_no_raw_controls("publish's stderr", &stderr);
    assert!(err.contains(&format!("502: server error (<h1>{EVIL_TEXT}</h1>)")), "{err}");
}

#[test]
fn a_server_that_never_says_subscribed_and_then_sends_too_much_is_cut_off() {
    // 30 MB of updates without a `subscribed`, made as they are sent, then one message of 9 MiB.
    let data = "x".repeat(100_000);
    let updates = (1..=300).map(move |seq| {
        Message::text(format!(
            r#"{{"type":"update","channel":"news","seq":{seq},"ts":1,"stale":false,"data":"{data}"}}"#
        ))
    });
    let script = std::iter::once(welcome()).chain(updates).chain(std::iter::once(Message::text("y".repeat(9 << 20))));
    let (url, server) = ws_server(script);
    let (code, stdout, stderr, peak_kib) =
        tickwire_peak(&["tail", "news", "--url", &url, "--retries", "0", "--retry-max", "1"]);
    stopped(server);
    let err = String::from_utf8_lossy(&stderr);
    assert_eq!(code, Some(1), "{err}");
    assert!(stdout.is_empty(), "nothing is passed on before subscribed");
    let dropped = "news: more than 2 MiB of updates before its subscribed; dropping the oldest";
    assert_eq!(err.matches(dropped).count(), 1, "{err}");
    assert!(err.contains("refused a message from the server:"), "{err}");
    assert!(err.contains("(the client reads at most 8 MiB); retrying in"), "{err}");
    // The hold (2 MiB) and the largest message read (100 KB here) bound it, not the 30 MB sent.
    assert!(peak_kib > 0, "the peak is measured (/proc)");
    assert!(peak_kib < 24 << 10, "peak resident memory {peak_kib} KiB");
}
