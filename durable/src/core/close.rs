//! How a connection ends: why (a bounded set, for metrics), the close code and reason the hub
//! sends, and how it answers a client's own close frame.

use serde::{Deserialize, Serialize};

/// The close code and reason text the hub sends when it ends a connection (README lists them).
pub fn close_frame(reason: CloseReason) -> (u16, &'static str) {
    match reason {
        // RFC 6455 "message too big": a frame over MAX_CLIENT_FRAME_BYTES.
        CloseReason::TooBig => (1009, "frame too large"),
        // Over CLIENT_MSGS_PER_10S; an `error` frame `rate_limited` comes first.
        CloseReason::RateLimited => (4029, "rate limited"),
        // The hub could not send to the socket, or the socket errored.
        CloseReason::SendFailed | CloseReason::Error => (1011, "send failed"),
        // The client's own close is echoed with its code; this is the fallback.
        CloseReason::Client => (1000, "bye"),
        // A presence socket that answered no `ping` for `PRESENCE_SILENT_SECONDS`.
        CloseReason::Silent => (4008, "silent"),
    }
}

/// How the hub answers a client's close frame with `code`: `None` for 1006 (the connection
/// dropped without a close frame: nobody is left to answer, and a close costs the runtime about
/// 0.1 ms per socket, which a network drop of thousands of sockets would pay for nothing); the
/// code itself when it may be sent; 1000 for 1005 (a close frame without a code: reserved, it
/// cannot be sent back) and anything outside 1000..5000.
pub fn close_reply(code: usize) -> Option<u16> {
    match code {
        1006 => None,
        1005 => Some(1000),
        1000..=4999 => u16::try_from(code).ok(),
        _ => Some(1000),
    }
}

/// Why a connection ended (bounded, for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The client closed it.
    Client,
    /// The socket errored.
    Error,
    /// The hub closed it: frame over the size limit.
    TooBig,
    /// The hub closed it: too many messages.
    RateLimited,
    /// The hub closed it: a send to it failed.
    SendFailed,
    /// The hub closed it: a presence socket silent for too long (`PRESENCE_SILENT_SECONDS`).
    Silent,
}

impl CloseReason {
    pub const ALL: [CloseReason; 6] = [
        CloseReason::Client,
        CloseReason::Error,
        CloseReason::TooBig,
        CloseReason::RateLimited,
        CloseReason::SendFailed,
        CloseReason::Silent,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::Error => "error",
            CloseReason::TooBig => "too_big",
            CloseReason::RateLimited => "rate_limited",
            CloseReason::SendFailed => "send_failed",
            CloseReason::Silent => "silent",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_is_echoed_unless_it_cannot_be() {
        let cases = [(1000, Some(1000)), (1001, Some(1001)), (4000, Some(4000)), (1005, Some(1000))];
        for (code, reply) in cases.into_iter().chain([(1006, None), (999, Some(1000)), (5000, Some(1000))]) {
            assert_eq!(close_reply(code), reply, "{code}");
        }
    }
}
