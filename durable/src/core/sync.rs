//! Healing a replica (`replica_sync.rs`): the replica's digest of its channels, and the
//! sequencer's page of what differs from it. The replica applies a page like a fan-out of
//! confirmed latest values (`HubCore::apply`), so its sockets get the latest value and, where
//! they missed updates, `subscribed` with `recovered: false`; channels it lacks are created and
//! channels the sequencer no longer has are deleted.

use super::HubCore;
use crate::wire::bodies::{Confirmed, Have, Position, Sequenced, SyncPage};
use crate::wire::protocol::Channel;
use std::collections::BTreeMap;

impl HubCore {
    /// Every channel this shard has and where it stands: what a replica sends `POST /sync`.
    pub fn digest(&self) -> Vec<Have> {
        self.channels.iter().map(|(c, m)| Have { channel: c.clone(), epoch: m.epoch.clone(), seq: m.seq }).collect()
    }

    /// The sequencer's answer to a replica's digest `have`, at its position `at`: the latest
    /// value of every channel whose epoch or seq differs (or that the replica lacks), in name
    /// order, until their values' JSON passes `budget` bytes (the first always fits; `more`
    /// says the rest follows), and every app channel the replica has that this shard does not.
    pub fn sync_page(&self, have: &[Have], budget: usize, at: Position) -> SyncPage {
        let theirs: BTreeMap<&Channel, &Have> = have.iter().map(|h| (&h.channel, h)).collect();
        let deleted = have
            .iter()
            .filter(|h| !h.channel.is_built_in() && !self.channels.contains_key(&h.channel))
            .map(|h| h.channel.clone())
            .collect();
        let (mut changed, mut used, mut more) = (Vec::new(), 0usize, false);
        for (channel, meta) in &self.channels {
            let Some(latest) = &meta.latest else { continue };
            if theirs.get(channel).is_some_and(|h| h.epoch == meta.epoch && h.seq == meta.seq) {
                continue;
            }
            let bytes = serde_json::to_string(&latest.data).map_or(0, |s| s.len());
            if !changed.is_empty() && used.saturating_add(bytes) > budget {
                more = true;
                break;
            }
            used = used.saturating_add(bytes);
            changed.push(Confirmed {
                latest: Sequenced { epoch: meta.epoch.clone(), update: latest.clone() },
                confirmed_at: meta.confirmed_at,
            });
        }
        SyncPage { at, changed, deleted, more }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::publish::AppPublish;
    use crate::core::HubCore;
    use crate::feeds::settings::FeedSettings;
    use crate::settings::HubLimits;
    use crate::wire::bodies::{Apply, Position, SyncPage};
    use crate::wire::protocol::{Channel, Epoch, ServerFrame};
    use serde_json::{json, Value};

    fn core() -> HubCore {
        HubCore::new(HubLimits { history_len: 5, ..HubLimits::default() }, FeedSettings::default())
    }

    fn ch(name: &str) -> Channel {
        Channel::parse(name).unwrap()
    }

    /// Epochs that differ across calls, so a channel deleted and published again gets a new one.
    fn epochs() -> impl FnMut() -> Epoch {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        || Epoch(format!("e{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
    }

    /// Publishes `data` to `channel` on the sequencer and applies the fan-out to each replica.
    fn publish_everywhere(seq0: &mut HubCore, replicas: &mut [&mut HubCore], channel: &str, data: Value) {
        let p = AppPublish { channel: ch(channel), ts: 1, data };
        let (_, fx) = seq0.publish(p, epochs()).unwrap();
        for r in replicas {
            r.apply(Apply { updates: fx.fanout.clone(), ..Apply::default() });
        }
    }

    fn at(n: u64) -> Position {
        Position { run: "r".into(), n }
    }

    /// Syncs `replica` with `seq0` page by page; returns the pages and every frame broadcast.
    fn heal(seq0: &HubCore, replica: &mut HubCore, budget: usize) -> (Vec<SyncPage>, Vec<Value>) {
        let (mut pages, mut frames) = (Vec::new(), Vec::new());
        loop {
            let page = seq0.sync_page(&replica.digest(), budget, at(9));
            let fx = replica.apply(Apply {
                confirmed: page.changed.clone(),
                deleted: page.deleted.clone(),
                ..Apply::default()
            });
            frames.extend(fx.broadcasts.iter().map(|b| serde_json::from_str::<Value>(&b.frame).unwrap()));
            let more = page.more;
            pages.push(page);
            if !more {
                return (pages, frames);
            }
            assert!(pages.len() < 20, "no progress");
        }
    }

    #[test]
    fn a_replica_in_step_gets_an_empty_page() {
        let (mut seq0, mut r) = (core(), core());
        publish_everywhere(&mut seq0, &mut [&mut r], "news", json!(1));
        let page = seq0.sync_page(&r.digest(), 1 << 20, at(3));
        assert_eq!(page, SyncPage { at: at(3), changed: vec![], deleted: vec![], more: false });
    }

    #[test]
    fn a_replica_that_missed_fan_outs_gets_the_latest_values_created_and_deleted_channels() {
        let (mut seq0, mut r) = (core(), core());
        publish_everywhere(&mut seq0, &mut [&mut r], "quiet", json!({"v": 1}));
        publish_everywhere(&mut seq0, &mut [&mut r], "doomed", json!({"v": 1}));
        publish_everywhere(&mut seq0, &mut [&mut r], "steady", json!({"v": 1}));
        // The replica is left out: quiet moves on, fresh is created, doomed deleted.
        publish_everywhere(&mut seq0, &mut [], "quiet", json!({"v": 2}));
        publish_everywhere(&mut seq0, &mut [], "quiet", json!({"v": 3}));
        publish_everywhere(&mut seq0, &mut [], "fresh", json!({"v": 1}));
        seq0.delete_app(&ch("doomed")).unwrap();

        let (pages, frames) = heal(&seq0, &mut r, 1 << 20);
        assert_eq!(pages.len(), 1);
        let names: Vec<&str> = pages[0].changed.iter().map(|c| c.latest.update.channel.as_str()).collect();
        assert_eq!(names, ["fresh", "quiet"], "only what differs: steady is not shipped");
        assert_eq!(pages[0].deleted, [ch("doomed")]);
        // Sockets of quiet get seq 3 and `recovered: false` (2 is lost to them); fresh starts
        // at 1, which a socket that subscribed before it existed (at seq 0) takes as is.
        let quiet = ServerFrame::Subscribed {
            channel: ch("quiet"),
            seq: crate::wire::protocol::Seq(3),
            epoch: seq0.digest().iter().find(|h| h.channel == ch("quiet")).unwrap().epoch.clone(),
            recovered: false,
        };
        assert!(frames.iter().any(|f| f["channel"] == "quiet" && f["seq"] == 3 && f["type"] == "update"));
        assert!(frames.contains(&serde_json::from_str(&quiet.to_json()).unwrap()));
        assert!(frames.iter().any(|f| f["channel"] == "fresh" && f["seq"] == 1 && f["type"] == "update"));
        assert_eq!(r.digest(), seq0.digest(), "in step afterwards");
        assert!(!r.is_known(&ch("doomed")));
    }

    #[test]
    fn a_page_holds_its_byte_budget_and_the_rest_follows() {
        let (mut seq0, mut r) = (core(), core());
        let big = "x".repeat(1000);
        for name in ["a1", "a2", "a3", "a4", "a5"] {
            publish_everywhere(&mut seq0, &mut [], name, json!(big));
        }
        let (pages, _) = heal(&seq0, &mut r, 2500);
        assert_eq!(pages.iter().map(|p| p.changed.len()).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(pages.iter().map(|p| p.more).collect::<Vec<_>>(), [true, true, false]);
        // A value above the budget still goes, alone: every page makes progress.
        let (pages, _) = heal(&seq0, &mut core(), 10);
        assert_eq!(pages.iter().map(|p| p.changed.len()).collect::<Vec<_>>(), [1, 1, 1, 1, 1]);
        assert_eq!(r.digest(), seq0.digest());
    }

    #[test]
    fn another_epoch_is_a_difference_and_built_ins_are_never_deleted() {
        let (mut seq0, mut r) = (core(), core());
        publish_everywhere(&mut seq0, &mut [&mut r], "news", json!(1));
        seq0.delete_app(&ch("news")).unwrap();
        publish_everywhere(&mut seq0, &mut [], "news", json!(2)); // a new epoch, seq 1 again
        let mut have = r.digest();
        have.push(crate::wire::bodies::Have {
            channel: Channel::btc(),
            epoch: Epoch("x".into()),
            seq: crate::wire::protocol::Seq(4),
        });
        let page = seq0.sync_page(&have, 1 << 20, at(1));
        assert_eq!(page.changed.len(), 1, "same seq, other epoch");
        assert!(page.deleted.is_empty(), "btc is the sequencer's even before its first value");
        heal(&seq0, &mut r, 1 << 20);
        assert_eq!(r.digest(), seq0.digest());
    }
}
