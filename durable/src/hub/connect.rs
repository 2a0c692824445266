//! `GET /ws` (wasm glue): a socket accepted (hibernation API), given a connection id and the
//! actions the core decides for its connect (`core/socket.rs`: welcome, subscriptions,
//! catch-ups), which `socket.rs` carries out like any other socket's.

use super::{random_hex, Hub};
use crate::core::socket::{CloseReason, ConnectParams};
use worker::*;

impl Hub {
    pub(crate) async fn accept(&self, params: ConnectParams<'_>) -> Result<Response> {
        // Before the socket exists: the check may pull from shard 0 (see `websocket_message`).
        let vouched = self.vouch().await;
        // Build the index before this socket exists, so the rebuild cannot count it twice.
        let before = self.btc_watchers();
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let (mut meta, actions) = self.with_core(|core| core.connect(random_hex(), params))?;
        self.run(&pair.server, &mut meta, actions, vouched).await;
        // A connect that fails from here on must not leave the socket counted and subscribed.
        let answered = pair.server.serialize_attachment(&meta).and_then(|()| Response::from_websocket(pair.client));
        if answered.is_err() && !meta.closing {
            self.close(&pair.server, &mut meta, CloseReason::Error);
        }
        self.btc_watchers_changed(before).await;
        self.counters_changed().await;
        answered
    }
}
