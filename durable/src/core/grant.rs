//! A socket's grant (wasm-free core): the `auth` op that presents or refreshes a token, and
//! the end of its private channels when the token expires. What a grant allows is decided in
//! `auth/access.rs`.

use crate::auth::access::{grant_of, token_refusal, Grant};
use crate::auth::{Capability, Keys};
use crate::core::socket::{Action, SocketMeta};
use crate::wire::protocol::{Channel, EndReason, ServerFrame};

impl SocketMeta {
    /// An `auth` op: a valid token replaces the socket's grant (a refresh); the private
    /// channels it no longer grants end with `unsubscribed`, reason `forbidden`, and the others
    /// go on with no gap. A refused token changes nothing: the socket keeps its public
    /// channels, and its old grant until that expires.
    pub(crate) fn on_auth(&mut self, token: &str, keys: &Keys, now_s: u64) -> Vec<Action> {
        let grant = match grant_of(token, keys, now_s) {
            Ok(grant) => grant,
            Err(e) => return vec![Action::TokenRefused(e.reason()), Action::Send(token_refusal(&e))],
        };
        let authed = ServerFrame::Authed { sub: grant.sub.clone(), exp: grant.exp };
        let lost: Vec<Channel> = self
            .private_channels()
            .filter(|c| !grant.caps.allows(c.as_str(), Capability::Subscribe))
            .cloned()
            .collect();
        self.grant = Some(grant);
        let mut actions = self.end(lost, EndReason::Forbidden);
        actions.push(Action::Regrant);
        actions.push(Action::Send(authed));
        actions
    }

    /// Ends the private subscriptions of a socket whose grant has expired (reason
    /// `token_expired`); nothing for any other socket.
    pub(crate) fn end_expired(&mut self, now_s: u64) -> Vec<Action> {
        match &self.grant {
            Some(g) if g.expired(now_s) => {
                let ended: Vec<Channel> = self.private_channels().cloned().collect();
                self.end(ended, EndReason::TokenExpired)
            }
            _ => Vec::new(),
        }
    }

    /// When the socket's private channels stop being sent to it (Unix seconds), for the
    /// subscriber index: `None` for a public channel.
    pub fn expiry(&self, channel: &Channel) -> Option<u64> {
        if !channel.is_private() {
            return None;
        }
        Some(self.grant.as_ref().map_or(0, Grant::valid_until))
    }
}
