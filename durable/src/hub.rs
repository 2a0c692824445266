//! The hub Durable Object: holds browsers' WebSockets (hibernation API) and broadcasts updates.
//!
//! A thin shell around [`HubCore`]: it loads the core from storage on first use, hands it each
//! event, persists the keys the event dirtied, and sends the frames it returns. Routes (internal,
//! reached only through the Worker): `GET /ws`, `POST /ingest`, `GET /stats`.

use crate::hub_core::{HubCore, SocketMeta, StorageKey};
use crate::internal::Ingest;
use std::cell::RefCell;
use worker::*;

#[durable_object]
pub struct Hub {
    state: State,
    /// Loaded lazily: after hibernation the object is rebuilt and reads storage again.
    core: RefCell<Option<HubCore>>,
}

impl DurableObject for Hub {
    fn new(state: State, _env: Env) -> Self {
        // The runtime answers `ping` with `pong` itself, without waking a hibernating object.
        match WebSocketRequestResponsePair::new("ping", "pong") {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => console_error!("hub: could not set the ping auto-response: {e:?}"),
        }
        Self {
            state,
            core: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.load().await?;
        match (req.method(), req.path().as_str()) {
            (Method::Get, "/ws") => self.accept(),
            (Method::Post, "/ingest") => {
                let ingest: Ingest = match req.json().await {
                    Ok(i) => i,
                    Err(e) => return Response::error(format!("bad ingest body: {e}"), 400),
                };
                let fx = self.with_core(|core| core.ingest(ingest));
                for (_channel, frame) in &fx.broadcasts {
                    self.broadcast(frame);
                }
                self.persist(&fx.dirty).await?;
                Response::from_json(&fx.result)
            }
            (Method::Get, "/stats") => {
                let sockets = self.state.get_websockets().len() as u64;
                Response::from_json(&self.with_core(|core| core.stats(sockets)))
            }
            _ => Response::error("no such hub route", 404),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        _message: WebSocketIncomingMessage,
    ) -> Result<()> {
        // Client ops (subscribe, unsubscribe) are not part of this version; tell the client
        // rather than dropping its message silently.
        let frame = crate::protocol::ServerFrame::Error {
            code: crate::protocol::ErrorCode::UnknownOp,
            message: "this hub accepts no client messages yet; `ping` is answered with `pong`"
                .into(),
        };
        if let Err(e) = ws.send_with_str(frame.to_json()) {
            console_warn!("hub: reply failed: {e:?}");
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.load().await?;
        let key = self.with_core(|core| core.disconnect());
        // Complete the closing handshake; 1005/1006 are reserved and cannot be sent back.
        let reply = if (1000..5000).contains(&code) && code != 1005 && code != 1006 {
            code as u16
        } else {
            1000
        };
        let _ = ws.close(Some(reply), Some("bye"));
        self.persist(&[key]).await
    }

    async fn websocket_error(&self, ws: WebSocket, error: Error) -> Result<()> {
        console_warn!("hub: socket error: {error:?}");
        self.load().await?;
        let key = self.with_core(|core| core.disconnect());
        let _ = ws.close(Some(1011), Some("socket error"));
        self.persist(&[key]).await
    }
}

impl Hub {
    /// Reads the whole hub state once per object lifetime (it is small: one key per channel).
    async fn load(&self) -> Result<()> {
        if self.core.borrow().is_some() {
            return Ok(());
        }
        let map = self.state.storage().list().await?;
        let mut entries = Vec::new();
        map.for_each(&mut |value, key| {
            if let (Some(k), Some(v)) = (key.as_string(), value.as_string()) {
                match serde_json::from_str(&v) {
                    Ok(json) => entries.push((k, json)),
                    Err(e) => {
                        console_error!("hub: stored {k} is not JSON ({e}); starting it afresh")
                    }
                }
            }
        });
        let (core, corrupt) = HubCore::from_entries(entries);
        for c in corrupt {
            console_error!(
                "hub: stored {} is unreadable ({}); starting it afresh",
                c.key,
                c.error
            );
        }
        // Another event may have loaded it while we awaited storage; keep the first.
        self.core.borrow_mut().get_or_insert(core);
        Ok(())
    }

    /// Runs `f` on the loaded core. The borrow never spans an await, so events cannot collide.
    fn with_core<T>(&self, f: impl FnOnce(&mut HubCore) -> T) -> T {
        let mut guard = self.core.borrow_mut();
        f(guard.get_or_insert_with(HubCore::default))
    }

    async fn persist(&self, keys: &[StorageKey]) -> Result<()> {
        let storage = self.state.storage();
        for key in keys {
            let json = self.with_core(|core| core.entry(key)).to_string();
            storage.put(&key.as_string(), json).await?;
        }
        Ok(())
    }

    fn accept(&self) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let (meta, frames, key) = self.with_core(|core| core.connect(connection_id()));
        pair.server.serialize_attachment(&meta)?;
        for frame in &frames {
            pair.server.send_with_str(frame)?;
        }
        // Counting the connection must not hold up the handshake.
        let storage = self.state.storage();
        let json = self.with_core(|core| core.entry(&key)).to_string();
        self.state.wait_until(async move {
            if let Err(e) = storage.put(&key.as_string(), json).await {
                console_error!("hub: could not persist counters: {e:?}");
            }
        });
        Response::from_websocket(pair.client)
    }

    /// Sends one already-serialised frame to every socket. A socket whose send fails is closed,
    /// so one dead peer cannot fail the publish for the others.
    fn broadcast(&self, frame: &str) {
        for ws in self.state.get_websockets() {
            if let Err(e) = ws.send_with_str(frame) {
                let conn = ws
                    .deserialize_attachment::<SocketMeta>()
                    .ok()
                    .flatten()
                    .map(|m| m.conn)
                    .unwrap_or_default();
                console_warn!("hub: send to {conn} failed ({e:?}); closing it");
                let _ = ws.close(Some(1011), Some("send failed"));
            }
        }
    }
}

/// A random connection id (16 hex digits) so clients and logs can tell connections apart.
fn connection_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Fall back to the clock: ids only need to be distinct enough for logs.
        bytes = Date::now().as_millis().to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
