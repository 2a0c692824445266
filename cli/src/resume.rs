//! Where the client stands in each channel it follows, fed the server's frames: every update
//! passed on once and in order, duplicates dropped, gaps and recreated channels reported, and the
//! `since` positions the next connect resumes from.
//!
//! After each connect a channel's updates are held until its `subscribed` frame, which ends the
//! catch-up and carries the channel's epoch: only then is it known whether those updates continue
//! the seqs the client holds (same epoch) or start a recreated channel over (a new one). The hold
//! is bounded ([`HOLD_BYTES`] per channel): a server that streams and never says `subscribed`
//! makes the client drop the oldest held updates and say so, never grow without end.

use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use tickwire_hub::wire::presence::PresenceFrame;
use tickwire_hub::wire::protocol::{parse_since_param, Channel, EndReason, Epoch, ErrorCode, Seq, ServerFrame, Update};

/// The last seq seen of a channel, and the epoch it belongs to when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub seq: Seq,
    pub epoch: Option<Epoch>,
}

/// What a frame means for the user of the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Welcome {
        conn: String,
        stale_after_seconds: u64,
    },
    /// An update not passed on before, in seq order for its channel.
    Update(Update),
    /// Something to tell the user: a gap, a recreated or deleted channel, an error frame.
    Note(String),
    /// A client frame to send on the current connection.
    Send(String),
    /// The server accepted the token (`--token`): whose it is and when it expires (Unix seconds).
    Authed {
        sub: String,
        exp: u64,
    },
    /// The server refused the token, or a channel needs more than it grants. The client cannot
    /// get another token, so this ends the command.
    TokenRefused(String),
    /// A followed presence channel's member list, or a member's join or leave (the frame as the
    /// server sent it): a fresh list after every reconnect, never a stale one.
    Presence(PresenceFrame<Channel>),
}

/// How a connection opens: the channels named in its URL with their positions (`since`), and
/// the frames sent first, before anything is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub channels: Vec<Channel>,
    pub since: String,
    pub first: Vec<String>,
}

/// `{"op":"auth","token":...}`: presents a token on an open socket.
pub fn auth_op(token: &str) -> String {
    json!({ "op": "auth", "token": token }).to_string()
}

/// The most one channel holds before its `subscribed`, counted as the updates' JSON: twice the
/// hub's default catch-up (`HISTORY_PAGE_BYTES`, 1 MiB). Past it the oldest held updates are
/// dropped (one note says so; their seqs show as a gap), but the newest is always kept.
pub const HOLD_BYTES: usize = 2 << 20;

/// A channel's updates held until its `subscribed`, oldest first with their sizes, within
/// [`HOLD_BYTES`].
#[derive(Debug, Default)]
struct Held {
    updates: VecDeque<(usize, Update)>,
    bytes: usize,
    dropped: u64,
}

#[derive(Debug, Default)]
struct Followed {
    position: Option<Position>,
    /// Updates of the current catch-up, held until `subscribed`; `None` once live.
    held: Option<Held>,
}

/// The client's state over all its connections.
#[derive(Debug, Default)]
pub struct Resume {
    channels: BTreeMap<Channel, Followed>,
    /// The channels come conflated (`watch --every`): a jump in seq is the updates the server
    /// skipped on purpose, not a gap.
    conflated: bool,
}

impl Resume {
    pub fn new(channels: &[Channel]) -> Resume {
        Resume { channels: channels.iter().map(|c| (c.clone(), Followed::default())).collect(), conflated: false }
    }

    /// The same, for channels delivered at most once per interval (`watch --every`).
    pub fn conflated(mut self) -> Resume {
        self.conflated = true;
        self
    }

    /// Starts from the positions of a `--since` argument (`btc:41@epoch,orders:7`), each of
    /// which must name one of `channels`.
    pub fn with_since(channels: &[Channel], since: &str) -> Result<Resume, String> {
        let mut r = Resume::new(channels);
        let parsed = parse_since_param(since).map_err(|frame| match frame {
            ServerFrame::Error { message, .. } => message,
            other => format!("{other:?}"),
        })?;
        for (name, s) in parsed {
            let c = Channel::parse(&name).map_err(|e| e.to_string())?;
            let f = r.channels.get_mut(&c).ok_or(format!("--since names {c}, which is not among the channels"))?;
            // `parse_since_param` refuses `seq@` with an empty epoch: any epoch here is one.
            f.position = Some(Position { seq: s.seq(), epoch: s.epoch().cloned() });
        }
        Ok(r)
    }

    pub fn channels(&self) -> Vec<Channel> {
        self.channels.keys().cloned().collect()
    }

    /// The positions to resume from, in the URL form: `btc:41@9f2c...,orders:7`.
    pub fn since_param(&self) -> String {
        self.since_of(|_| true)
    }

    fn since_of(&self, which: impl Fn(&Channel) -> bool) -> String {
        let parts: Vec<String> = self
            .channels
            .iter()
            .filter(|(c, _)| which(c))
            .filter_map(|(c, f)| f.position.as_ref().map(|p| format!("{c}:{}", at(p))))
            .collect();
        parts.join(",")
    }

    /// How the next connection opens. Without a token every channel is in the URL. With one,
    /// the token goes first as an `auth` op (not in the URL, where logs keep it), and the private
    /// channels follow in a `subscribe` op with their positions, so that the hub judges them
    /// with the token in force; the public ones stay in the URL.
    pub fn opening(&self, token: Option<&str>) -> Opening {
        let Some(token) = token else {
            return Opening { channels: self.channels(), since: self.since_param(), first: Vec::new() };
        };
        let channels = self.channels.keys().filter(|c| !c.is_private()).cloned().collect();
        let mut first = vec![auth_op(token)];
        let private: Vec<_> =
            self.channels.iter().filter(|(c, _)| c.is_private()).map(|(c, f)| (c, f.position.as_ref())).collect();
        if !private.is_empty() {
            first.push(subscribe_op(&private));
        }
        Opening { channels, since: self.since_of(|c| !c.is_private()), first }
    }

    /// A new connection: every channel catches up again before its updates are passed on.
    pub fn connected(&mut self) {
        for f in self.channels.values_mut() {
            f.held = Some(Held::default());
        }
    }

    /// What one server frame means (a `batch` is handled frame by frame).
    pub fn frame(&mut self, frame: ServerFrame) -> Vec<Output> {
        let mut out = Vec::new();
        self.handle(frame, &mut out);
        out
    }

    fn handle(&mut self, frame: ServerFrame, out: &mut Vec<Output>) {
        match frame {
            ServerFrame::Welcome { conn, stale_after_seconds, .. } => {
                out.push(Output::Welcome { conn, stale_after_seconds })
            }
            ServerFrame::Update(u) => match self.channels.get_mut(&u.channel) {
                Some(Followed { held: Some(held), .. }) => hold(held, u, out),
                Some(f) => pass_on(f, u, false, !self.conflated, out),
                None => out.push(Output::Note(format!("ignored an update of {}, which was not asked for", u.channel))),
            },
            ServerFrame::Subscribed { channel, seq, epoch, recovered } => match self.channels.get_mut(&channel) {
                Some(f) => subscribed(&channel, f, seq, epoch, recovered, out),
                None => out.push(Output::Note(format!("ignored a subscription to {channel}, which was not asked for"))),
            },
            // The hub ended a subscription: the token expired, or no longer grants the channel.
            ServerFrame::Unsubscribed { channel, reason: Some(reason) } => {
                let why = match reason {
                    EndReason::TokenExpired => "the token expired",
                    EndReason::Forbidden => "the token no longer grants it",
                };
                out.push(Output::TokenRefused(format!("the server ended {channel}: {why}")))
            }
            ServerFrame::Unsubscribed { channel, reason: None } => {
                if let Some(f) = self.channels.get_mut(&channel) {
                    // The channel was deleted: its next incarnation starts at seq 1 in a new epoch.
                    let start = Position { seq: Seq(0), epoch: None };
                    out.push(Output::Note(format!(
                        "{channel} was deleted on the server; following it again from its next first update"
                    )));
                    out.push(Output::Send(subscribe_op(&[(&channel, Some(&start))])));
                    f.position = Some(start);
                    f.held = Some(Held::default());
                }
            }
            ServerFrame::Delta { channel, seq, .. } => {
                out.push(Output::Note(format!("ignored a delta of {channel} seq {seq}: this client asks for none")))
            }
            ServerFrame::Error { code, message, channel, .. } => {
                let about = channel.map(|c| format!(" ({c})")).unwrap_or_default();
                out.push(match code {
                    ErrorCode::Unauthorized | ErrorCode::Forbidden | ErrorCode::TokenExpired => {
                        Output::TokenRefused(format!("token refused: {}{about}: {message}", code.label()))
                    }
                    _ => Output::Note(format!("server error {}{about}: {message}", code.label())),
                })
            }
            ServerFrame::Authed { sub, exp } => out.push(Output::Authed { sub, exp }),
            ServerFrame::Published { channel, seq, .. } => {
                out.push(Output::Note(format!("published to {channel}: seq {seq}")))
            }
            ServerFrame::Batch { frames } => {
                for f in frames {
                    self.handle(f, out);
                }
            }
            // A presence channel's member list and its changes: passed on for the channels
            // followed, with nothing to resume from.
            ServerFrame::Presence(f) => {
                if self.channels.contains_key(f.channel()) {
                    out.push(Output::Presence(f));
                }
            }
        }
    }
}

/// `41@9f2c...` or `41`.
fn at(p: &Position) -> String {
    match &p.epoch {
        Some(e) => format!("{}@{e}", p.seq),
        None => p.seq.to_string(),
    }
}

/// `{"op":"subscribe","channels":["c",..],"since":{"c":...}}`: each channel resuming from its
/// position, when it has one.
fn subscribe_op(channels: &[(&Channel, Option<&Position>)]) -> String {
    let names: Vec<&Channel> = channels.iter().map(|(c, _)| *c).collect();
    let since: serde_json::Map<String, serde_json::Value> = channels
        .iter()
        .filter_map(|(c, p)| p.map(|p| (c, p)))
        .map(|(c, p)| {
            let at = match &p.epoch {
                Some(e) => json!({ "seq": p.seq, "epoch": e }),
                None => json!(p.seq),
            };
            (c.as_str().to_owned(), at)
        })
        .collect();
    json!({ "op": "subscribe", "channels": names, "since": since }).to_string()
}

/// The end of a channel's catch-up (or, unasked, the server's word that updates before the last
/// one never reached its shard).
fn subscribed(c: &Channel, f: &mut Followed, seq: Seq, epoch: Epoch, recovered: bool, out: &mut Vec<Output>) {
    let epoch = (!epoch.0.is_empty()).then_some(epoch);
    let known = f.position.as_ref().and_then(|p| p.epoch.clone());
    let same_epoch = match (&known, &epoch) {
        (Some(k), Some(e)) if k == e => true,
        (Some(k), Some(e)) => {
            out.push(Output::Note(format!(
                "{c} was recreated on the server (epoch {k} is now {e}); its seqs start over"
            )));
            f.position = Some(Position { seq: Seq(0), epoch: None });
            false
        }
        // One side's epoch is not known: nothing says the seqs continue.
        _ => false,
    };
    // Without the same epoch confirmed, a position the server could not resume from may be one
    // it does not know (ahead of the channel, from a reset storage): its latest value is news.
    let trust_server = !recovered && !same_epoch;
    for (_, u) in f.held.take().unwrap_or_default().updates {
        pass_on(f, u, trust_server, true, out);
    }
    match f.position.as_ref().map(|p| p.seq) {
        Some(last) if seq > last => out
            .push(Output::Note(format!("gap in {c}: the server is at seq {seq}, the last update received was {last}"))),
        Some(last) if seq < last => {
            out.push(Output::Note(format!("{c}: could not resume from seq {last}; the server is at seq {seq}")))
        }
        _ => {}
    }
    f.position = Some(Position { seq, epoch });
}

/// Holds `u` until its channel's `subscribed`, dropping the oldest held updates past
/// [`HOLD_BYTES`]; the first drop of a catch-up is noted.
fn hold(held: &mut Held, u: Update, out: &mut Vec<Output>) {
    let size = encoded_len(&u);
    held.bytes += size;
    held.updates.push_back((size, u));
    while held.bytes > HOLD_BYTES && held.updates.len() > 1 {
        let Some((size, old)) = held.updates.pop_front() else { break };
        held.bytes -= size;
        held.dropped += 1;
        if held.dropped == 1 {
            out.push(Output::Note(format!(
                "{}: more than {} MiB of updates before its subscribed; dropping the oldest",
                old.channel,
                HOLD_BYTES >> 20
            )));
        }
    }
}

/// About the size of `u` as the JSON of its frame: its data's and a frame's other fields.
fn encoded_len(u: &Update) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, &u.data);
    count.0 + u.channel.as_str().len() + 64
}

/// Passes an update on unless it was seen; reports a jump over seqs never received (with `gaps`:
/// a conflated channel's jumps are updates skipped on purpose).
fn pass_on(f: &mut Followed, u: Update, trust_server: bool, gaps: bool, out: &mut Vec<Output>) {
    if let Some(p) = &f.position {
        if u.seq <= p.seq {
            if !trust_server {
                return; // already passed on
            }
            out.push(Output::Note(format!(
                "{}: could not resume from seq {}; the server's latest is seq {}",
                u.channel, p.seq, u.seq
            )));
        } else if gaps && u.seq > p.seq.next() {
            let (from, to) = (p.seq.next(), Seq(u.seq.0 - 1));
            let missing = if from == to { format!("seq {from}") } else { format!("seqs {from}..{to}") };
            out.push(Output::Note(format!("gap in {}: {missing} not received", u.channel)));
        }
    }
    f.position = Some(Position { seq: u.seq, epoch: f.position.as_ref().and_then(|p| p.epoch.clone()) });
    out.push(Output::Update(u));
}

#[cfg(test)]
mod tests;
