//! Loading the hub (wasm glue): the core from storage and the subscriber index from the
//! sockets' attachments, each once per object lifetime, and the borrows every route uses.

use super::broadcast::{attachment, Subscribers};
use super::Hub;
use crate::auth::{Keys, MIN_SECRET_BYTES};
use crate::core::storage_key::StorageKey;
use crate::core::HubCore;
use crate::feeds::settings::FeedSettings;
use crate::log::{Event, Level};
use crate::settings::{HubLimits, Secret, Vars};
use crate::wire::protocol::Channel;
use worker::*;

impl Hub {
    /// Reads channel metas, counters and upstream bookkeeping once per object lifetime.
    pub(crate) async fn load(&self) -> Result<()> {
        if self.core.borrow().is_some() {
            return Ok(());
        }
        let storage = self.state.storage();
        let mut entries = Vec::new();
        let metas = storage.list_with_options(ListOptions::new().prefix(StorageKey::META_PREFIX)).await?;
        let others = storage.get_multiple(StorageKey::SINGLETONS.to_vec()).await?;
        for map in [metas, others] {
            map.for_each(&mut |value, key| {
                if let (Some(k), Some(v)) = (key.as_string(), value.as_string()) {
                    entries.push((k, v));
                }
            });
        }
        let vars = Vars(|name: &str| self.env.var(name).ok().map(|v| v.to_string()));
        let limits = HubLimits::from_vars(&vars).unwrap_or_else(|e| {
            self.line(Level::Error, Event::SettingsInvalid).detail(format_args!("{e}; using default limits")).emit();
            HubLimits::default()
        });
        let feeds = FeedSettings::from_vars(&vars).unwrap_or_else(|e| {
            self.line(Level::Error, Event::SettingsInvalid)
                .detail(format_args!("{e}; using default feed settings"))
                .emit();
            FeedSettings::default()
        });
        let mut core = HubCore::new(limits, feeds);
        let (current, previous) = (vars.text("TOKEN_SECRET"), vars.text("TOKEN_SECRET_PREVIOUS"));
        core.keys = Keys::new(current.as_deref(), previous.as_deref());
        if core.keys.ignored_short() {
            self.line(Level::Error, Event::SettingsInvalid)
                .kind("token_secret")
                .detail(format_args!("a token secret shorter than {MIN_SECRET_BYTES} bytes is ignored"))
                .emit();
        }
        core.publish_token = vars.text("PUBLISH_TOKEN").map(Secret);
        for c in core.load(entries) {
            self.line(Level::Error, Event::StorageUnreadable)
                .detail(format_args!("stored {} is unreadable ({}); starting it afresh", c.key, c.error))
                .emit();
        }
        // Another event may have loaded it while we awaited storage; keep the first.
        self.core.borrow_mut().get_or_insert(core);
        Ok(())
    }

    /// Runs `f` on the loaded core. The borrow never spans an await.
    ///
    /// Every event loads the core before anything else (`fetch`, `alarm`, and the socket
    /// events through `load`), so an unloaded core here is a bug, and an error: a default must
    /// never stand in for the stored state, nor keep `load` from reading it later. Paths that
    /// cannot fail (a socket's actions, the flush, the fan-out) skip their work instead; the
    /// error has been logged here.
    pub(crate) fn with_core<T>(&self, f: impl FnOnce(&mut HubCore) -> T) -> Result<T> {
        match self.core.borrow_mut().as_mut() {
            Some(core) => Ok(f(core)),
            None => {
                self.line(Level::Error, Event::SetupFailed).detail("the core was used before it was loaded").emit();
                Err(Error::RustError("hub: the core was used before it was loaded".into()))
            }
        }
    }

    /// Runs `f` on the subscriber index, first rebuilding it from the sockets' attachments if
    /// the object has just woken up.
    pub(crate) fn with_subscribers<T>(&self, f: impl FnOnce(&Subscribers) -> T) -> T {
        let mut guard = self.subscribers.borrow_mut();
        let index = guard.get_or_insert_with(|| {
            Subscribers::rebuild(self.state.get_websockets().into_iter().filter_map(|ws| {
                let meta = attachment(&ws)?;
                (!meta.closing).then_some((meta, ws))
            }))
        });
        f(index)
    }

    pub(crate) fn btc_watchers(&self) -> usize {
        self.with_subscribers(|f| f.subscribers(&Channel::btc()))
    }
}
