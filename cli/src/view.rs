//! What `watch` shows: the latest value of each built-in channel with its age and a stale mark,
//! and the connection state, rendered as the lines of a table (on a terminal) or one plain line
//! per update (otherwise). Pure: `now` and colour are arguments.
//!
//! The channels' `data` is decoded with the hub's own types (`BtcTick`, `CoinQuote`,
//! `MarketTotals`, `Sentiment`, `Indicators`), so the shapes are declared once. A value's age
//! counts from when it was last confirmed: its update's `ts`, or later when `/api/snapshot` says
//! the source confirmed it since (a daily index is not news every minute, yet it is fresh).

use crate::errors::short_line;
use crate::format::{age, change_pct, decimal, pct, secs, usd, usd_compact, utc, NONE};
use crate::terminal_text;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tickwire_hub::wire::protocol::{Seq, Update};
use tickwire_hub::wire::values::{BtcTick, CoinQuote, Indicators, MarketTotals, Sentiment};

/// The connection as the user sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnState {
    Connecting,
    Connected {
        conn: String,
    },
    /// Waiting to reconnect until `at_ms` after `reason`.
    Retrying {
        reason: String,
        at_ms: u64,
    },
    Closing,
}

/// One channel's latest value as shown.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    update: Update,
    /// Its cells in the table, decoded once on arrival: a value and the text after it for each
    /// of its channel's rows in [`TABLE`].
    cells: Vec<(String, String)>,
    /// When the value was last confirmed by its source (ms since the epoch).
    confirmed_ms: u64,
    stale: bool,
}

/// A channel's cells from its `data`: a value and the text after it for each of its rows.
type Cells = fn(&Value) -> Vec<(String, String)>;

/// The table: each built-in channel with its rows' labels, how its data gives their cells, and
/// whether the text after a value is a change (coloured by its sign).
const TABLE: [(&str, &[&str], Cells, bool); 4] = [
    ("btc", &["BTC"], |d| vec![btc_cells(d)], true),
    (
        "market",
        &["Market cap", "Volume 24 h", "BTC dominance"],
        |d| market_cells(d).unwrap_or_else(|| [NONE; 3].map(String::from)).map(|v| (v, String::new())).to_vec(),
        false,
    ),
    ("sentiment", &["Fear & Greed"], |d| vec![sentiment_cells(d)], false),
    ("indicators", &["RSI-14"], |d| vec![rsi_cells(d)], false),
];

/// The state `watch` renders.
#[derive(Debug, Clone)]
pub struct View {
    url: String,
    state: ConnState,
    values: BTreeMap<String, Shown>,
    /// The coins of the latest `market` value, largest market cap first.
    coins: Vec<(String, CoinQuote)>,
    stale_after_seconds: Option<u64>,
    note: Option<(u64, String)>,
}

impl View {
    pub fn new(url: &str) -> View {
        View {
            url: url.to_owned(),
            state: ConnState::Connecting,
            values: BTreeMap::new(),
            coins: Vec::new(),
            stale_after_seconds: None,
            note: None,
        }
    }

    pub fn set_state(&mut self, state: ConnState) {
        self.state = state;
    }

    pub fn set_stale_after(&mut self, seconds: u64) {
        self.stale_after_seconds = Some(seconds);
    }

    /// A new value: decoded here, once, not on every redraw. Its strings pass the terminal
    /// filter first, so every cell made from it shows server text escaped.
    pub fn update(&mut self, u: &Update) {
        let mut u = u.clone();
        terminal_text::text_strings(&mut u.data);
        let cells = TABLE.iter().find(|t| t.0 == u.channel.as_str()).map_or_else(Vec::new, |t| (t.2)(&u.data));
        if u.channel.as_str() == "market" {
            self.coins = coins_by_cap(&u.data);
        }
        let shown = Shown { cells, confirmed_ms: u.ts, stale: u.stale, update: u };
        self.values.insert(shown.update.channel.to_string(), shown);
    }

    /// `/api/snapshot` says `channel` at `seq` was confirmed `age_seconds` before `now_ms`,
    /// and whether it is stale. Only for the value shown (a newer one is on its way).
    pub fn confirmed(&mut self, channel: &str, seq: Seq, age_seconds: u64, stale: bool, now_ms: u64) {
        if let Some(s) = self.values.get_mut(channel).filter(|s| s.update.seq == seq) {
            s.confirmed_ms = s.confirmed_ms.max(now_ms.saturating_sub(age_seconds.saturating_mul(1000)));
            s.stale = stale;
        }
    }

    /// Something to show under the state line until the next note (a gap, an error frame).
    pub fn note(&mut self, now_ms: u64, text: &str) {
        self.note = Some((now_ms, text.to_owned()));
    }

    /// The screen: a title with the state, the channels with age and stale mark, the coins.
    pub fn render(&self, now_ms: u64, color: bool) -> Vec<String> {
        let p = Paint(color);
        let mut lines = vec![
            format!("{}  {}  {}", p.bold("tickwire"), terminal_text::text(&self.url), self.state_text(now_ms, p)),
            match &self.note {
                Some((at, note)) => {
                    p.dim(&format!("{} ago: {}", age(ms_between(*at, now_ms)), terminal_text::text(note)))
                }
                None => String::new(),
            },
            p.dim(&format!("  {:<15}{:>12}  {:<14}{:>5}", "CHANNEL", "VALUE", "", "AGE")),
        ];
        for (channel, labels, _, signed) in TABLE {
            let shown = self.values.get(channel);
            for (k, label) in labels.iter().enumerate() {
                let (value, extra) =
                    shown.and_then(|s| s.cells.get(k)).map_or((NONE, ""), |(v, x)| (v.as_str(), x.as_str()));
                let padded = format!("{extra:<14}");
                let extra = if signed { p.signed(&padded, extra) } else { padded };
                lines.push(format!("  {label:<15}{value:>12}  {extra}{}", self.age_cells(shown, now_ms, p)));
            }
        }
        lines.push(String::new());
        lines.push(
            p.dim(&format!("  {:<14}{:>12}{:>10}{:>13}{:>13}", "COIN", "PRICE", "24 H", "MARKET CAP", "VOLUME 24 H")),
        );
        if self.coins.is_empty() {
            lines.push(format!("  {NONE}"));
        }
        for (name, q) in &self.coins {
            let change = known(q.change_24h_pct, change_pct);
            // A coin the latest answers lacked: its last good quote, with how old that is.
            let stale = match (q.stale, q.quoted_at) {
                (false, _) => String::new(),
                (true, Some(t)) => format!("  {}", p.yellow(&format!("STALE {}", age(ms_between(t, now_ms))))),
                (true, None) => format!("  {}", p.yellow("STALE")),
            };
            lines.push(format!(
                "  {:<14}{:>12}{}{:>13}{:>13}{stale}",
                clip(name, 13),
                usd(q.price_usd),
                p.signed(&format!("{change:>10}"), &change),
                known(q.market_cap_usd, usd_compact),
                known(q.volume_24h_usd, usd_compact),
            ));
        }
        lines.push(String::new());
        let stale_after = self.stale_after_seconds.map_or(String::new(), |s| format!(" · stale after {s}s"));
        lines.push(p.dim(&format!("  Ctrl-C quits · ages since the source last confirmed a value{stale_after}")));
        lines
    }

    fn state_text(&self, now_ms: u64, p: Paint) -> String {
        match &self.state {
            ConnState::Connecting => p.yellow("connecting"),
            ConnState::Connected { conn } => p.green(&format!("connected (conn {})", terminal_text::text(conn))),
            ConnState::Retrying { reason, at_ms } => {
                let wait = Duration::from_millis(at_ms.saturating_sub(now_ms));
                p.red(&format!("reconnecting in {} after: {}", secs(wait), terminal_text::text(reason)))
            }
            ConnState::Closing => p.yellow("closing"),
        }
    }

    fn age_cells(&self, shown: Option<&Shown>, now_ms: u64, p: Paint) -> String {
        let Some(s) = shown else { return format!("{NONE:>5}") };
        let age_ms = ms_between(s.confirmed_ms, now_ms);
        let too_old = self
            .stale_after_seconds
            .is_some_and(|a| age_ms > i64::try_from(a.saturating_mul(1000)).unwrap_or(i64::MAX));
        let mark = if s.stale || too_old { format!("  {}", p.yellow("STALE")) } else { String::new() };
        format!("{:>5}{mark}", age(age_ms))
    }
}

/// One plain line for an update (stdout is not a terminal): time, channel, seq, values.
pub fn plain_line(u: &Update) -> String {
    let d = &u.data;
    let text = match u.channel.as_str() {
        "btc" => {
            let (price, change) = btc_cells(d);
            format!("BTC {price} {change}")
        }
        "market" => {
            let mut parts = vec![match market_cells(d) {
                Some([cap, volume, dominance]) => {
                    format!("market cap {cap}, volume 24 h {volume}, BTC dominance {dominance}")
                }
                None => format!("market cap {NONE}"),
            }];
            parts.extend(coins_by_cap(d).into_iter().map(|(n, q)| {
                let stale = if q.stale { " (stale)" } else { "" };
                format!("{n} {} {}{stale}", usd(q.price_usd), known(q.change_24h_pct, change_pct))
            }));
            parts.join(" · ")
        }
        "sentiment" => {
            let (v, class) = sentiment_cells(d);
            format!("Fear & Greed {v} {class}")
        }
        "indicators" => format!("RSI-14 {}", rsi_cells(d).0),
        _ => d.to_string(),
    };
    let stale = if u.stale { " (stale)" } else { "" };
    format!("{} {} #{} {text}{stale}", utc(u.ts), u.channel, u.seq)
}

/// `data` as `T`, decoded from the borrowed value (no copy of it first).
fn get<T: DeserializeOwned>(data: &Value) -> Option<T> {
    T::deserialize(data).ok()
}

fn btc_cells(d: &Value) -> (String, String) {
    get::<BtcTick>(d).map_or((NONE.into(), String::new()), |t| (usd(t.price_usd), known(t.change_24h_pct, change_pct)))
}

/// Market cap, volume 24 h and BTC dominance, when the totals are all there.
fn market_cells(d: &Value) -> Option<[String; 3]> {
    get::<MarketTotals>(d)
        .map(|t| [usd_compact(t.total_market_cap_usd), usd_compact(t.total_volume_24h_usd), pct(t.btc_dominance_pct)])
}

fn sentiment_cells(d: &Value) -> (String, String) {
    get::<Sentiment>(d).map_or((NONE.into(), String::new()), |s| (s.value.to_string(), s.classification))
}

fn rsi_cells(d: &Value) -> (String, String) {
    (get::<Indicators>(d).map_or(NONE.into(), |i| decimal(i.rsi_14)), "hourly".into())
}

/// The coins of a `market` value, largest market cap first (`market` may lack them while its
/// price source has not answered yet).
fn coins_by_cap(d: &Value) -> Vec<(String, CoinQuote)> {
    let mut coins: Vec<(String, CoinQuote)> =
        d.get("coins").and_then(get::<BTreeMap<String, CoinQuote>>).unwrap_or_default().into_iter().collect();
    let cap = |q: &CoinQuote| q.market_cap_usd.unwrap_or(-1.0);
    coins.sort_by(|a, b| cap(&b.1).total_cmp(&cap(&a.1)).then_with(|| a.0.cmp(&b.0)));
    coins
}

/// A number the upstream may not have sent (`None`: unknown) as text, [`NONE`] when unknown:
/// never a made-up 0.
fn known(v: Option<f64>, text: fn(f64) -> String) -> String {
    v.map_or_else(|| NONE.to_owned(), text)
}

/// `later - earlier` in ms, as a signed number (a clock ahead gives a negative age).
fn ms_between(earlier: u64, later: u64) -> i64 {
    i64::try_from(later).unwrap_or(i64::MAX).saturating_sub(i64::try_from(earlier).unwrap_or(i64::MAX))
}

/// `s` cut to a column `max` characters wide, ending in `…` when cut.
fn clip(s: &str, max: usize) -> String {
    short_line(s, max, true)
}

/// ANSI styling when on (a terminal), plain text otherwise. Padding is applied before styling,
/// so escape codes never shift a column.
#[derive(Debug, Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn sgr(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn bold(self, t: &str) -> String {
        self.sgr("1", t)
    }
    fn dim(self, t: &str) -> String {
        self.sgr("2", t)
    }
    fn red(self, t: &str) -> String {
        self.sgr("31", t)
    }
    fn green(self, t: &str) -> String {
        self.sgr("32", t)
    }
    fn yellow(self, t: &str) -> String {
        self.sgr("33", t)
    }
    /// `padded` green when `value` is a rise, red when a fall.
    fn signed(self, padded: &str, value: &str) -> String {
        match value.as_bytes().first() {
            Some(b'+') => self.green(padded),
            Some(b'-') => self.red(padded),
            _ => padded.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
