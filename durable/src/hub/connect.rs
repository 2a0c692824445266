//! `GET /ws` (wasm glue): a socket accepted (hibernation API), given a connection id, the grant
//! of its `?token=` if it presented one, and the actions the core decides for its connect
//! (`core/socket.rs`: welcome, subscriptions, catch-ups), which `socket.rs` carries out like
//! any other socket's.

use super::answer::answer;
use super::{random_hex, Hub};
use crate::api::route;
use crate::auth::access::token_refusal_body;
use crate::clock::now_ms;
use crate::core::close::CloseReason;
use crate::core::socket::ConnectParams;
use crate::log::{Event, Level};
use worker::worker_sys::web_sys;
use worker::*;

impl Hub {
    /// A bad `?token=` is refused before the upgrade (401 and the API's JSON error body): a
    /// client that presents a token means to use it, and must not get a socket without it.
    pub(crate) async fn accept(&self, params: ConnectParams<'_>, token: Option<&str>) -> Result<web_sys::Response> {
        let grant = match token {
            None => None,
            Some(token) => match self.with_core(|core| core.check_token(token, now_ms()))? {
                Ok(grant) => Some(grant),
                Err(e) => {
                    // The reason and what it means, never the token.
                    self.line(Level::Warn, Event::RequestRefused).path(route::WS).kind(e.reason()).detail(&e).emit();
                    self.counters_changed().await;
                    return answer(401, &token_refusal_body(&e), None);
                }
            },
        };
        // Before the socket exists: the check may pull from shard 0 (see `websocket_message`).
        let vouched = self.vouch().await;
        // Build the index before this socket exists, so the rebuild cannot count it twice.
        let before = self.btc_watchers();
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let (mut meta, actions) = self.with_core(|core| core.connect(random_hex(), params, grant, now_ms()))?;
        self.run(&pair.server, &mut meta, actions, vouched).await;
        self.presence_socket_if(false, &meta.conn, Some(&meta));
        // A connect that fails from here on must not leave the socket counted and subscribed.
        let answered = pair.server.serialize_attachment(&meta).and_then(|()| Response::from_websocket(pair.client));
        if answered.is_err() && !meta.closing {
            self.close(&pair.server, &mut meta, CloseReason::Error);
        }
        self.btc_watchers_changed(before).await;
        self.counters_changed().await;
        self.presence_flush().await;
        answered.map(Into::into)
    }
}
