//! Which sockets listen to which channel: the hub's in-memory index, rebuilt from socket
//! attachments after the object wakes from hibernation, so a broadcast touches only subscribers.

use crate::protocol::Channel;
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
}
