//! Deleting an app channel (wasm glue): the sequencer's `DELETE /api/channels/<name>`, and on
//! every shard the removal of a deleted channel's subscribers. The decision is the core's
//! (`HubCore::delete_app`, `HubCore::apply`); storage and fan-out go the write path's way.

use super::answer::answer;
use super::broadcast::attachment;
use super::Hub;
use crate::clock::now_ms;
use crate::core::publish::DeleteRefusal;
use crate::core::{RemovedChannel, Undeletable};
use crate::log::{Event, Level};
use crate::wire::protocol::{Channel, ServerFrame};
use worker::worker_sys::web_sys;
use worker::*;

impl Hub {
    /// Deletes the app channel `name` as the client wrote it in the path: 200 with its last seq,
    /// or the API's JSON error (400 `invalid_channel`, 403 `channel_reserved`, 404
    /// `unknown_channel`). The Worker has checked the token.
    pub(crate) async fn delete_channel(&self, name: &str) -> Result<web_sys::Response> {
        let refuse = |r: DeleteRefusal| answer(r.status(), &r.body(), None);
        let channel = match Channel::parse(name) {
            Ok(c) => c,
            Err(e) => return refuse(DeleteRefusal::InvalidChannel(e.0)),
        };
        match self.with_core(|core| core.delete_app(&channel))? {
            Err(Undeletable::BuiltIn) => refuse(DeleteRefusal::BuiltIn),
            Err(Undeletable::Unknown) => refuse(DeleteRefusal::Unknown(name.to_owned())),
            Ok((seq, fx)) => {
                self.execute(fx).await?;
                let body = serde_json::json!({ "channel": channel, "deleted": true, "seq": seq });
                answer(200, &body.to_string(), None)
            }
        }
    }

    /// Tells every subscriber of the removed channels `unsubscribed` and drops the channels from
    /// their subscriptions (index and attachment). A deletion is rare and authenticated, so
    /// going through every socket's attachment once is affordable.
    pub(crate) fn unsubscribe_everyone(&self, removed: &[RemovedChannel]) {
        let channels: Vec<Channel> = removed.iter().map(|r| r.channel.clone()).collect();
        for ws in self.state.get_websockets() {
            let Some(mut meta) = attachment(&ws) else { continue };
            if meta.closing || !meta.channels.iter().any(|c| channels.contains(c)) {
                continue;
            }
            let gone = meta.retain_channels(|c| !channels.contains(c));
            self.with_subscribers(|f| f.unsubscribe(&meta, &gone));
            self.presence_socket(&meta.conn, Some(&meta));
            if let Err(e) = ws.serialize_attachment(&meta) {
                self.line(Level::Warn, Event::AttachmentFailed).conn(&meta.conn).detail(format_args!("{e:?}")).emit();
            }
            // Nothing of a private channel reaches a socket whose token has expired, not even this.
            let now_s = now_ms() / 1000;
            for channel in gone.into_iter().filter(|c| meta.expiry(c).is_none_or(|until| until >= now_s)) {
                if let Err(e) = ws.send_with_str(ServerFrame::Unsubscribed { channel, reason: None }.to_json()) {
                    self.line(Level::Warn, Event::SendFailed).conn(&meta.conn).detail(format_args!("{e:?}")).emit();
                }
            }
        }
    }
}
