//! Reading a request body with a byte cap (wasm glue). A body sent without `Content-Length`
//! (chunked) is only as large as its sender makes it: it is read chunk by chunk and abandoned
//! as soon as it passes the cap, so a publish never costs the hub more than the cap in memory,
//! and its sender learns at once instead of after streaming the rest. The Worker reads a publish
//! without `Content-Length` this way before forwarding it; the hub reads every publish this way.

use worker::js_sys::{Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;
use worker::Result;

/// A body read up to the cap.
pub enum Capped {
    Body(Vec<u8>),
    /// More than the cap arrived; the rest was not read.
    TooLarge,
}

/// Reads `req`'s body, at most `max` bytes of it.
pub async fn read_capped(req: &web_sys::Request, max: usize) -> Result<Capped> {
    let Some(stream) = req.body() else { return Ok(Capped::Body(Vec::new())) };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let (done_key, value_key) = (JsValue::from_str("done"), JsValue::from_str("value"));
    let mut body = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await?;
        if Reflect::get(&chunk, &done_key)?.is_truthy() {
            return Ok(Capped::Body(body));
        }
        let bytes: Uint8Array = Reflect::get(&chunk, &value_key)?.unchecked_into();
        let len = bytes.length() as usize;
        if body.len() + len > max {
            // Not cancelled: the runtime drops the rest of the body once the answer is sent (a
            // cancel would run after that and fail, uncaught).
            reader.release_lock();
            return Ok(Capped::TooLarge);
        }
        let start = body.len();
        body.resize(start + len, 0);
        bytes.copy_to(&mut body[start..]);
    }
}
