//! The hub's Durable Object class as the runtime sees it (exported to JavaScript as `Hub`):
//! wasm-bindgen glue written out instead of worker's `#[durable_object]`, for two reasons.
//! - Requests arrive as the runtime's `Request`: the hot routes read the method and URL and
//!   nothing else, where `worker::Request::from` also reads `request.cf` (a lazily built object
//!   that cost about as much as the rest of the conversion on a forwarded client request).
//! - The hub sits behind an `Rc`, so work an event starts can outlive the event: a publish is
//!   answered once its write is issued, and its flush and fan-out go on without it.

use super::Hub;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::js_sys::{Promise, Uint8Array};
use worker::wasm_bindgen_futures::future_to_promise;
use worker::worker_sys::web_sys;
use worker::{Env, State, WebSocket, WebSocketIncomingMessage};

#[wasm_bindgen(js_name = Hub)]
pub struct HubObject(Rc<Hub>);

#[wasm_bindgen(js_class = Hub)]
impl HubObject {
    #[wasm_bindgen(constructor)]
    pub fn new(state: worker::worker_sys::DurableObjectState, env: Env) -> HubObject {
        HubObject(Rc::new(Hub::new(State::from(state), env)))
    }

    pub fn fetch(&self, req: web_sys::Request) -> Promise {
        let hub = self.0.clone();
        promise(async move { hub.fetch(req).await.map(JsValue::from) })
    }

    pub fn alarm(&self) -> Promise {
        let hub = self.0.clone();
        promise(async move { hub.alarm().await.map(|()| JsValue::UNDEFINED) })
    }

    #[wasm_bindgen(js_name = webSocketMessage)]
    pub fn web_socket_message(&self, ws: web_sys::WebSocket, message: JsValue) -> Promise {
        let hub = self.0.clone();
        let message = match message.as_string() {
            Some(text) => WebSocketIncomingMessage::String(text),
            None => WebSocketIncomingMessage::Binary(Uint8Array::new(&message).to_vec()),
        };
        promise(async move { hub.websocket_message(WebSocket::from(ws), message).await.map(|()| JsValue::NULL) })
    }

    #[wasm_bindgen(js_name = webSocketClose)]
    pub fn web_socket_close(&self, ws: web_sys::WebSocket, code: usize, _reason: String, _clean: bool) -> Promise {
        let hub = self.0.clone();
        promise(async move { hub.websocket_close(WebSocket::from(ws), code).await.map(|()| JsValue::NULL) })
    }

    #[wasm_bindgen(js_name = webSocketError)]
    pub fn web_socket_error(&self, ws: web_sys::WebSocket, error: JsValue) -> Promise {
        let hub = self.0.clone();
        promise(async move { hub.websocket_error(WebSocket::from(ws), error).await.map(|()| JsValue::NULL) })
    }
}

/// An event's future as the promise the runtime awaits; an error rejects it.
fn promise(event: impl std::future::Future<Output = worker::Result<JsValue>> + 'static) -> Promise {
    future_to_promise(async move { event.await.map_err(JsValue::from) })
}
