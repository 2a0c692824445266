//! The frames of a `presence-` channel (wire protocol v1): the member list (`presence`) and its
//! changes (`join`, `leave`), which `ServerFrame::Presence` carries; and what names a presence
//! channel. Who is a member is decided in `core/presence.rs`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What starts a presence channel's name (a private channel: `Channel::is_private`).
pub const PRESENCE_PREFIX: &str = "presence-";

/// Whether a channel name is a presence channel's: its subscribers are its members.
pub fn is_presence(channel: &str) -> bool {
    channel.starts_with(PRESENCE_PREFIX)
}

/// A presence channel's member as lists show it: its token's `sub` and `info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Map<String, Value>>,
}

/// Frames sent to a socket with the `presence` capability on the channel. `C` is the channel
/// name's type (`protocol::Channel`: generic so that this file does not depend on the one that
/// carries its frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PresenceFrame<C> {
    /// The members (distinct token `sub`s, across every shard), sent when the socket subscribes
    /// and whenever its list must be replaced; `members` is left out past
    /// `MAX_PRESENCE_MEMBERS` (the count only).
    Presence {
        channel: C,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        members: Option<Vec<Member>>,
        count: u64,
    },
    /// A member's first socket arrived; `sub` and `info` are left out past the bound.
    Join {
        channel: C,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sub: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        info: Option<Map<String, Value>>,
        count: u64,
    },
    /// A member's last socket went; `sub` is left out past the bound.
    Leave {
        channel: C,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sub: Option<String>,
        count: u64,
    },
}

impl<C> PresenceFrame<C> {
    pub fn channel(&self) -> &C {
        match self {
            PresenceFrame::Presence { channel, .. }
            | PresenceFrame::Join { channel, .. }
            | PresenceFrame::Leave { channel, .. } => channel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::protocol::{Channel, ServerFrame};

    #[test]
    fn presence_frames_read_back_as_server_frames() {
        let room = Channel::parse("presence-room").unwrap();
        let frames = [
            PresenceFrame::Presence {
                channel: room.clone(),
                members: Some(vec![Member { sub: "ann".into(), info: None }]),
                count: 1,
            },
            PresenceFrame::Join { channel: room.clone(), sub: None, info: None, count: 3 },
            PresenceFrame::Leave { channel: room.clone(), sub: Some("ann".into()), count: 0 },
        ];
        let texts = [
            r#"{"type":"presence","channel":"presence-room","members":[{"sub":"ann"}],"count":1}"#,
            r#"{"type":"join","channel":"presence-room","count":3}"#,
            r#"{"type":"leave","channel":"presence-room","sub":"ann","count":0}"#,
        ];
        for (frame, text) in frames.into_iter().zip(texts) {
            let framed = ServerFrame::Presence(frame);
            assert_eq!(framed.to_json(), text);
            assert_eq!(serde_json::from_str::<ServerFrame>(text).unwrap(), framed);
        }
        assert!(is_presence(room.as_str()) && room.is_private());
        assert!(!is_presence("private-room"));
    }
}
