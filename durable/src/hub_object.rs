//! The hub's Durable Object class as the runtime sees it (exported to JavaScript as `Hub`):
//! wasm-bindgen glue written out instead of worker's `#[durable_object]`, for two reasons.
//! - Requests arrive as the runtime's `Request`: the hot routes read the method and URL and
//!   nothing else, where `worker::Request::from` also reads `request.cf` (a lazily built object
//!   that cost about as much as the rest of the conversion on a forwarded client request).
//! - The hub sits behind an `Rc`, so work an event starts can outlive the event: a publish is
//!   answered once its write is issued, and its flush and fan-out go on without it.

use crate::hub::Hub;
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
        let f = hub.fetch(req);
        future_to_promise(async move { f.await.map(JsValue::from).map_err(JsValue::from) })
    }

    pub fn alarm(&self) -> Promise {
        let hub = self.0.clone();
        future_to_promise(async move { hub.alarm().await.map(|()| JsValue::UNDEFINED).map_err(JsValue::from) })
    }

    #[wasm_bindgen(js_name = webSocketMessage)]
    pub fn web_socket_message(&self, ws: web_sys::WebSocket, message: JsValue) -> Promise {
        let hub = self.0.clone();
        let message = match message.as_string() {
            Some(text) => WebSocketIncomingMessage::String(text),
            None => WebSocketIncomingMessage::Binary(Uint8Array::new(&message).to_vec()),
        };
        future_to_promise(async move {
            hub.websocket_message(WebSocket::from(ws), message).await.map(|()| JsValue::NULL).map_err(JsValue::from)
        })
    }

    #[wasm_bindgen(js_name = webSocketClose)]
    pub fn web_socket_close(&self, ws: web_sys::WebSocket, code: usize, _reason: String, _clean: bool) -> Promise {
        let hub = self.0.clone();
        future_to_promise(async move {
            hub.websocket_close(WebSocket::from(ws), code).await.map(|()| JsValue::NULL).map_err(JsValue::from)
        })
    }

    #[wasm_bindgen(js_name = webSocketError)]
    pub fn web_socket_error(&self, ws: web_sys::WebSocket, error: JsValue) -> Promise {
        let hub = self.0.clone();
        future_to_promise(async move {
            hub.websocket_error(WebSocket::from(ws), error).await.map(|()| JsValue::NULL).map_err(JsValue::from)
        })
    }
}
