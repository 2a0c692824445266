//! The hub's Durable Object class as the runtime sees it (exported to JavaScript as `Hub`):
//! wasm-bindgen glue written out instead of worker's `#[durable_object]`, for two reasons.
//! - Requests arrive as the runtime's `Request`: the hot routes read the method and URL and
//!   nothing else, where `worker::Request::from` also reads `request.cf` (a lazily built object
//!   that cost about as much as the rest of the conversion on a forwarded client request).
//! - The hub sits behind an `Rc`, so work an event starts can outlive the event: a publish is
//!   answered once its write is issued, and its flush and fan-out go on without it.

use super::Hub;
use crate::wire::frame_size::{ClientMessage, FrameSize};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::js_sys::{JsString, Promise, Uint8Array};
use worker::wasm_bindgen_futures::future_to_promise;
use worker::worker_sys::web_sys;
use worker::{Env, State, WebSocket};

#[wasm_bindgen(js_name = Hub)]
pub struct HubObject(Rc<Hub>);

#[wasm_bindgen(js_class = Hub)]
impl HubObject {
    #[wasm_bindgen(constructor)]
    pub fn new(state: worker::worker_sys::DurableObjectState, env: Env) -> HubObject {
        let hub = Rc::new(Hub::new(State::from(state), env));
        *hub.me.borrow_mut() = Rc::downgrade(&hub);
        HubObject(hub)
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
        promise(async move {
            // The size limit is the core's: loaded before the frame is looked at.
            hub.load().await?;
            let max = hub.with_core(|core| core.limits.max_client_frame_bytes)?;
            let message = incoming(&message, max);
            hub.websocket_message(WebSocket::from(ws), message).await.map(|()| JsValue::NULL)
        })
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

/// A client frame as the hub handles it, its size read on the JavaScript side: a text frame is
/// copied into wasm memory only if it may fit `max` bytes (`frame_size.rs`), a binary one never
/// (its length is all the hub reads of it).
fn incoming(message: &JsValue, max: usize) -> ClientMessage {
    if !message.is_string() {
        return ClientMessage::Binary { bytes: Uint8Array::new(message).byte_length() as usize };
    }
    let text: &JsString = message.unchecked_ref();
    let size = FrameSize::Text { utf16_units: text.length() as usize };
    if size.certainly_over(max) {
        return ClientMessage::Oversized { min_bytes: size.min_bytes() };
    }
    ClientMessage::Text(String::from(text))
}

/// An event's future as the promise the runtime awaits; an error rejects it.
fn promise(event: impl std::future::Future<Output = worker::Result<JsValue>> + 'static) -> Promise {
    future_to_promise(async move { event.await.map_err(JsValue::from) })
}
