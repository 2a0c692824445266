//! Property tests of a new socket through `HubCore`: `connect` with `?channels=` / `?since=`,
//! then `message` with client text frames.

mod common;

use common::client::{
    channel_name, client_frame, error_frame, joined, list_sep, round_trips, since_entry, APP, APP_EPOCH,
};
use common::{any_text, config, mutated, mutation};
use proptest::collection::vec;
use proptest::option::weighted;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use tickwire_hub::core::channel::Catchup;
use tickwire_hub::core::close::CloseReason;
use tickwire_hub::core::publish::AppPublish;
use tickwire_hub::core::socket::{Action, ConnectParams, SocketMeta};
use tickwire_hub::core::HubCore;
use tickwire_hub::feeds::settings::FeedSettings;
use tickwire_hub::settings::HubLimits;
use tickwire_hub::wire::protocol::{parse_since_param, Channel, Epoch, ErrorCode, Seq, ServerFrame, Since, Update};

/// The app channels (`APP`) are published 3 times each, seq 1..=3.
const APP_SEQ: u64 = 3;

// ---------------------------------------------------------------------------------------------
// A new socket: `?channels=` / `?since=`, then client text frames
// ---------------------------------------------------------------------------------------------

const NOW: u64 = 1_700_000_000_000;

/// A small hub: the defaults, maybe tight limits, maybe two app channels published 3 times
/// each. Returns the app channels' history for catch-ups.
fn hub(app_channels: bool, tight: bool) -> (HubCore, BTreeMap<Channel, Vec<Update>>) {
    let mut hub = HubCore::new(HubLimits::default(), FeedSettings::default());
    if tight {
        hub.limits =
            HubLimits { max_subscriptions: 2, client_msgs_per_10s: 3, max_client_frame_bytes: 256, ..hub.limits };
    }
    let mut history: BTreeMap<Channel, Vec<Update>> = BTreeMap::new();
    if app_channels {
        for name in APP {
            for n in 1..=APP_SEQ {
                let channel = Channel::parse(name).expect("valid");
                let p = AppPublish { channel, ts: n, data: json!({ "n": n }) };
                let (_, fx) = hub.publish(p, || Epoch(APP_EPOCH.to_owned())).expect("an app channel");
                for w in fx.history {
                    history.entry(w.put.channel.clone()).or_default().push(w.put);
                }
            }
        }
    }
    (hub, history)
}

fn channels_param() -> impl Strategy<Value = String> {
    mutated(vec((channel_name(), list_sep()), 0..10).prop_map(joined))
}

/// `?channels=` and `?since=` together, the since entries mostly naming listed channels; each
/// parameter may be absent.
fn connect_params() -> impl Strategy<Value = (Option<String>, Option<String>)> {
    let since_name = || prop_oneof![4 => any::<Index>().prop_map(Ok), 1 => channel_name().prop_map(Err)];
    // All entries well formed (the whole parameter is refused for one bad entry), or not.
    let clean = (prop_oneof![3 => 0u64..6, 1 => any::<u64>()], weighted(0.3, select(vec![APP_EPOCH, "other"])))
        .prop_map(|(seq, epoch)| format!(":{seq}{}", epoch.map_or(String::new(), |e| format!("@{e}"))));
    let since = prop_oneof![
        vec((clean, since_name(), Just(",")), 0..6),
        vec((since_entry(Just(String::new())), since_name(), list_sep()), 0..6),
    ];
    (vec((channel_name(), list_sep()), 0..10), since, mutation(), mutation(), 0u8..8).prop_map(
        |(names, since, m1, m2, absent)| {
            let since = since
                .into_iter()
                .map(|(entry, name, sep)| {
                    let name = match name {
                        Ok(i) if !names.is_empty() => names[i.index(names.len())].0.clone(),
                        Ok(_) => "btc".to_owned(),
                        Err(n) => n,
                    };
                    (format!("{name}{entry}"), sep)
                })
                .collect();
            let channels = (absent != 0).then(|| m1.apply(joined(names)));
            let since = (absent != 1).then(|| m2.apply(joined(since)));
            (channels, since)
        },
    )
}

/// The catch-up the shell runs for a `Subscribe` action: planned from `since`, then answered
/// from history; it ends with `subscribed` for the channel.
fn check_catchup(
    hub: &HubCore,
    history: &BTreeMap<Channel, Vec<Update>>,
    c: &Channel,
    since: Option<&Since>,
) -> Result<(), TestCaseError> {
    let plan = hub.plan(c, since);
    let app = history.contains_key(c);
    let want = match since {
        _ if !app => Catchup::Latest,
        None => Catchup::Latest,
        Some(s) if s.epoch().is_some_and(|e| e.0 != APP_EPOCH) || s.seq().0 > APP_SEQ => Catchup::Latest,
        Some(s) if s.seq().0 == APP_SEQ => Catchup::UpToDate,
        Some(s) => Catchup::Replay { from: Seq(s.seq().0 + 1), to: Seq(APP_SEQ) },
    };
    prop_assert_eq!(&plan, &want);
    let fetched: Vec<Update> = match plan {
        Catchup::Replay { from, to } => history[c].iter().filter(|u| (from..=to).contains(&u.seq)).cloned().collect(),
        _ => Vec::new(),
    };
    let replayed = fetched.len();
    let frames = hub.catchup_frames(c, &plan, fetched, NOW);
    let (last, updates) = frames.split_last().expect("at least `subscribed`");
    let ServerFrame::Subscribed { channel, seq, recovered, .. } = last else {
        return Err(TestCaseError::fail(format!("catch-up ends with {last:?}")));
    };
    prop_assert_eq!(channel, c);
    prop_assert_eq!(*seq, Seq(if app { APP_SEQ } else { 0 }));
    prop_assert_eq!(*recovered, !matches!(plan, Catchup::Latest));
    for f in updates {
        prop_assert!(matches!(f, ServerFrame::Update(u) if &u.channel == c), "{:?}", f);
        round_trips(f)?;
    }
    match plan {
        Catchup::Replay { .. } => prop_assert_eq!(updates.len(), replayed),
        Catchup::UpToDate => prop_assert!(updates.is_empty()),
        Catchup::Latest => prop_assert_eq!(updates.len(), usize::from(app)),
    }
    Ok(())
}

fn check_connect(
    hub: &mut HubCore,
    history: &BTreeMap<Channel, Vec<Update>>,
    channels: Option<&str>,
    since: Option<&str>,
) -> Result<SocketMeta, TestCaseError> {
    let (meta, actions) =
        hub.connect("c0".to_owned(), ConnectParams { channels, since, delta: None, every: None }, None, 0);
    let inputs = [channels.unwrap_or_default(), since.unwrap_or_default()];
    let Some(Action::Send(welcome @ ServerFrame::Welcome { conn, channels: listed, .. })) = actions.first() else {
        return Err(TestCaseError::fail(format!("connect does not start with welcome: {actions:?}")));
    };
    prop_assert_eq!(conn, "c0");
    prop_assert_eq!(listed, &Channel::built_in(), "welcome lists the built-in channels");
    round_trips(welcome)?;

    let names: Vec<&str> = match channels {
        None => Channel::BUILT_IN.to_vec(),
        Some(list) => list.split(',').filter(|c| !c.is_empty()).collect(),
    };
    let distinct: HashSet<&str> = names.iter().copied().collect();
    let since_entries = since.map_or(0, |s| s.split(',').filter(|p| !p.is_empty()).count());
    let parsed_since = since.map(parse_since_param);

    let mut subscribed: Vec<Channel> = Vec::new();
    let mut since_errors = 0;
    for a in &actions[1..] {
        match a {
            Action::Subscribe(c, s) => {
                prop_assert!(distinct.contains(c.as_str()), "{} was not asked for", c);
                prop_assert!(!subscribed.contains(c), "{} twice", c);
                // The first `since` entry for the channel, if the parameter parsed.
                let want = match &parsed_since {
                    Some(Ok(list)) => list.iter().find(|(n, _)| n == c.as_str()).map(|(_, s)| s.clone()),
                    _ => None,
                };
                prop_assert_eq!(s, &want);
                check_catchup(hub, history, c, s.as_ref())?;
                subscribed.push(c.clone());
            }
            Action::Send(frame) => {
                let code = error_frame(frame, &inputs)?;
                prop_assert!(
                    matches!(
                        code,
                        ErrorCode::InvalidSince | ErrorCode::InvalidChannel | ErrorCode::TooManySubscriptions
                    ),
                    "{:?}",
                    code
                );
                since_errors += usize::from(code == ErrorCode::InvalidSince);
            }
            other => prop_assert!(false, "unexpected action on connect: {:?}", other),
        }
    }
    prop_assert_eq!(&meta.channels, &subscribed);
    prop_assert!(subscribed.len() <= hub.limits.max_subscriptions);
    // Welcome, at most one answer per distinct name, and one `invalid_since` for a `since`
    // that does not parse or per entry naming a channel not asked for.
    prop_assert!(since_errors <= since_entries.max(1));
    prop_assert!(
        actions.len() <= 1 + distinct.len() + since_entries.max(1),
        "{} actions for {} distinct names and {} since entries",
        actions.len(),
        distinct.len(),
        since_entries
    );
    Ok(meta)
}

/// One client text frame on an open socket.
fn check_message(
    hub: &mut HubCore,
    history: &BTreeMap<Channel, Vec<Update>>,
    meta: &mut SocketMeta,
    text: &str,
    now: u64,
) -> Result<(), TestCaseError> {
    let before = meta.channels.clone();
    let actions = hub.message(meta, text, now);
    let limits = hub.limits;
    if text.len() > limits.max_client_frame_bytes {
        prop_assert_eq!(actions, vec![Action::Close(CloseReason::TooBig)]);
        return Ok(());
    }
    if actions.iter().any(|a| matches!(a, Action::Close(_))) {
        prop_assert_eq!(actions.len(), 2);
        let rate_limited = matches!(&actions[0], Action::Send(ServerFrame::Error { code: ErrorCode::RateLimited, .. }));
        prop_assert!(rate_limited, "{:?}", actions);
        prop_assert_eq!(&actions[1], &Action::Close(CloseReason::RateLimited));
        return Ok(());
    }
    let json: Option<Value> = serde_json::from_str(text).ok();
    let distinct_names = json
        .as_ref()
        .and_then(|v| {
            v.get("channels")?.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<HashSet<_>>().len())
        })
        .unwrap_or(0);
    let since_entries = json.as_ref().and_then(|v| v.get("since")?.as_object().map(|m| m.len())).unwrap_or(0);

    let mut subscribed: Vec<Channel> = Vec::new();
    let mut unsubscribed: Vec<Channel> = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        match a {
            Action::Subscribe(c, s) => {
                prop_assert!(!before.contains(c) && !subscribed.contains(c), "{:?}", a);
                check_catchup(hub, history, c, s.as_ref())?;
                subscribed.push(c.clone());
            }
            Action::Held(c) => prop_assert!(before.contains(c), "{:?}", a),
            Action::Unsubscribe(c) => {
                prop_assert_eq!(
                    actions.get(i + 1),
                    Some(&Action::Send(ServerFrame::Unsubscribed { channel: c.clone(), reason: None }))
                );
                unsubscribed.push(c.clone());
            }
            Action::Send(f @ ServerFrame::Unsubscribed { channel, .. }) => {
                prop_assert!(i > 0 && actions[i - 1] == Action::Unsubscribe(channel.clone()));
                round_trips(f)?;
            }
            Action::Send(f) => {
                let code = error_frame(f, &[text])?;
                prop_assert!(code != ErrorCode::RateLimited);
            }
            Action::Close(_) => unreachable!("handled above"),
            // This hub verifies no token, so nothing is published or granted.
            Action::Publish(..) | Action::Regrant | Action::TokenRefused(_) => prop_assert!(false, "{:?}", a),
        }
    }
    prop_assert!(subscribed.is_empty() || unsubscribed.is_empty(), "one op per frame");
    let want: Vec<Channel> =
        before.iter().filter(|c| !unsubscribed.contains(c)).cloned().chain(subscribed.iter().cloned()).collect();
    prop_assert_eq!(&meta.channels, &want);
    prop_assert!(meta.channels.len() <= limits.max_subscriptions.max(before.len()));
    prop_assert!(
        actions.len() <= 1 + 2 * distinct_names + since_entries,
        "{} actions for {} distinct names and {} since entries: {:?}",
        actions.len(),
        distinct_names,
        since_entries,
        text
    );
    Ok(())
}

fn frame_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => client_frame(),
        2 => any_text(),
        // Past `max_client_frame_bytes` (4096 by default, 256 when tight).
        1 => (client_frame(), select(vec![257, 4097])).prop_map(|(f, n)| format!("{f}{}", " ".repeat(n))),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn connect_any_params(
        app in any::<bool>(),
        tight in any::<bool>(),
        channels in weighted(0.8, any_text()),
        since in weighted(0.8, any_text()),
    ) {
        let (mut hub, history) = hub(app, tight);
        check_connect(&mut hub, &history, channels.as_deref(), since.as_deref())?;
    }

    #[test]
    fn connect_structured_params(
        app in any::<bool>(),
        tight in any::<bool>(),
        (channels, since) in connect_params(),
    ) {
        let (mut hub, history) = hub(app, tight);
        check_connect(&mut hub, &history, channels.as_deref(), since.as_deref())?;
    }

    #[test]
    fn messages_after_connect(
        app in any::<bool>(),
        tight in any::<bool>(),
        channels in weighted(0.5, channels_param()),
        frames in vec((frame_text(), 0u64..8_000), 1..7),
    ) {
        let (mut hub, history) = hub(app, tight);
        let mut meta = check_connect(&mut hub, &history, channels.as_deref(), None)?;
        let mut now = NOW;
        for (text, dt) in &frames {
            now += dt;
            check_message(&mut hub, &history, &mut meta, text, now)?;
        }
    }
}
