//! Which sockets listen to which channel: the hub's in-memory index, rebuilt from socket
//! attachments after the object wakes from hibernation, so a broadcast touches only subscribers.

use crate::protocol::{batch_json, Channel};
use crate::session::SocketMeta;
use std::collections::HashMap;

/// Generic over the socket handle so it is tested on the host with plain values.
#[derive(Debug)]
pub struct SubscriberIndex<S> {
    by_channel: HashMap<Channel, Vec<(String, S)>>,
}

impl<S> Default for SubscriberIndex<S> {
    fn default() -> Self {
        SubscriberIndex { by_channel: HashMap::new() }
    }
}

impl<S: Clone> SubscriberIndex<S> {
    pub fn from_sockets(sockets: impl IntoIterator<Item = (SocketMeta, S)>) -> Self {
        let mut index = SubscriberIndex::default();
        for (meta, socket) in sockets {
            for channel in &meta.channels {
                index.add(channel, &meta.conn, socket.clone());
            }
        }
        index
    }

    /// Adds a subscriber; adding the same connection twice keeps one entry.
    pub fn add(&mut self, channel: &Channel, conn: &str, socket: S) {
        let subs = self.by_channel.entry(channel.clone()).or_default();
        if !subs.iter().any(|(c, _)| c == conn) {
            subs.push((conn.to_owned(), socket));
        }
    }

    pub fn remove(&mut self, channel: &Channel, conn: &str) {
        if let Some(subs) = self.by_channel.get_mut(channel) {
            subs.retain(|(c, _)| c != conn);
        }
    }

    /// Removes a connection from every channel (it closed).
    pub fn remove_conn(&mut self, conn: &str) {
        for subs in self.by_channel.values_mut() {
            subs.retain(|(c, _)| c != conn);
        }
    }

    pub fn subscribers(&self, channel: &Channel) -> &[(String, S)] {
        self.by_channel.get(channel).map_or(&[], Vec::as_slice)
    }

    /// Plans the sends of one event's broadcasts (`(channel, frame JSON)` in seq order): each
    /// socket gets one message with every frame it subscribes to, as a `batch` when there are
    /// several. Sockets that get the same frames share one message, built once.
    pub fn batches(&self, broadcasts: &[(Channel, String)]) -> Vec<Batch<S>> {
        let mut per_conn: HashMap<&str, (S, Vec<usize>)> = HashMap::new();
        for (i, (channel, _)) in broadcasts.iter().enumerate() {
            for (conn, socket) in self.subscribers(channel) {
                per_conn.entry(conn.as_str()).or_insert_with(|| (socket.clone(), Vec::new())).1.push(i);
            }
        }
        let mut groups: HashMap<Vec<usize>, Vec<S>> = HashMap::new();
        for (socket, frames) in per_conn.into_values() {
            groups.entry(frames).or_default().push(socket);
        }
        let mut batches: Vec<Batch<S>> = groups
            .into_iter()
            .map(|(frames, sockets)| {
                let message = match frames.as_slice() {
                    [one] => broadcasts[*one].1.clone(),
                    many => batch_json(&many.iter().map(|i| broadcasts[*i].1.as_str()).collect::<Vec<_>>()),
                };
                let channels = frames.iter().map(|i| broadcasts[*i].0.clone()).collect();
                Batch { message, sockets, channels }
            })
            .collect();
        batches.sort_by(|a, b| a.channels.cmp(&b.channels));
        batches
    }
}

/// One message for a group of sockets, and the update frames (by channel) it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<S> {
    pub message: String,
    pub sockets: Vec<S>,
    pub channels: Vec<Channel>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(conn: &str, channels: &[&str]) -> SocketMeta {
        let mut m = SocketMeta::new(conn.into());
        m.channels = channels.iter().map(|c| Channel::parse(c).unwrap()).collect();
        m
    }

    fn conns(i: &SubscriberIndex<u32>, c: &str) -> Vec<u32> {
        i.subscribers(&Channel::parse(c).unwrap()).iter().map(|(_, s)| *s).collect()
    }

    #[test]
    fn rebuilt_from_attachments_and_maintained() {
        let mut i = SubscriberIndex::from_sockets(vec![(meta("a", &["btc", "news"]), 1), (meta("b", &["news"]), 2)]);
        assert_eq!(conns(&i, "btc"), [1]);
        assert_eq!(conns(&i, "news"), [1, 2]);
        assert!(conns(&i, "market").is_empty());
        i.add(&Channel::btc(), "b", 2);
        i.add(&Channel::btc(), "b", 2);
        assert_eq!(conns(&i, "btc"), [1, 2]);
        i.remove(&Channel::btc(), "a");
        assert_eq!(conns(&i, "btc"), [2]);
        i.remove_conn("b");
        assert!(conns(&i, "btc").is_empty());
        assert_eq!(conns(&i, "news"), [1]);
    }

    #[test]
    fn one_message_per_socket_per_event() {
        let i = SubscriberIndex::from_sockets(vec![
            (meta("a", &["btc", "market"]), 1),
            (meta("b", &["btc", "market"]), 2),
            (meta("c", &["market"]), 3),
            (meta("d", &["news"]), 4),
        ]);
        let m = Channel::parse("market").unwrap();
        let broadcasts = vec![
            (Channel::btc(), r#"{"n":1}"#.to_owned()),
            (m.clone(), r#"{"n":2}"#.to_owned()),
            (m.clone(), r#"{"n":3}"#.to_owned()),
        ];
        let mut b = i.batches(&broadcasts);
        for x in &mut b {
            x.sockets.sort();
        }
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(b[0].sockets, [1, 2]);
        assert_eq!(b[0].message, r#"{"type":"batch","frames":[{"n":1},{"n":2},{"n":3}]}"#);
        assert_eq!(b[0].channels, [Channel::btc(), m.clone(), m.clone()]);
        assert_eq!(
            (b[1].sockets.clone(), b[1].message.as_str()),
            (vec![3], r#"{"type":"batch","frames":[{"n":2},{"n":3}]}"#)
        );
        let single = i.batches(&broadcasts[..1]);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].message, r#"{"n":1}"#, "a single frame is sent as itself");
        assert!(i.batches(&[]).is_empty());
    }
}
