//! Typed settings from wrangler vars, shared by the Worker and the hub: one parser for numbers
//! with defaults and ranges, and the hub's limits.

use std::fmt;

/// A var that is set but unusable; names the var so an operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub var: &'static str,
    pub problem: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wrangler var {}: {}", self.var, self.problem)
    }
}

impl std::error::Error for SettingError {}

/// Reads vars through a lookup function; unset or blank vars take their defaults.
pub struct Vars<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub fn text(&self, var: &str) -> Option<String> {
        (self.0)(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A whole number in `min..=max`, or `default` when unset.
    pub fn number(&self, var: &'static str, default: u64, min: u64, max: u64) -> Result<u64, SettingError> {
        let Some(raw) = self.text(var) else { return Ok(default) };
        let n: u64 =
            raw.parse().map_err(|_| SettingError { var, problem: format!("{raw:?} is not a whole number") })?;
        if !(min..=max).contains(&n) {
            return Err(SettingError { var, problem: format!("{n} is outside {min}..={max}") });
        }
        Ok(n)
    }
}

/// The hub's limits (README documents each var).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubLimits {
    /// `HISTORY_LEN`: updates kept per channel for resume.
    pub history_len: u64,
    /// `MAX_CLIENT_FRAME_BYTES`: a larger client frame closes the socket with 1009.
    pub max_client_frame_bytes: usize,
    /// `MAX_SUBSCRIPTIONS`: channels one socket may subscribe to.
    pub max_subscriptions: usize,
    /// `CLIENT_MSGS_PER_10S`: client messages allowed per 10 s window before the socket is closed.
    pub client_msgs_per_10s: u32,
    /// `HUB_SHARDS`: objects the sockets are spread over.
    pub shards: u32,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            history_len: 300,
            max_client_frame_bytes: 4096,
            max_subscriptions: 32,
            client_msgs_per_10s: 50,
            shards: 1,
        }
    }
}

impl HubLimits {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<HubLimits, SettingError> {
        let d = HubLimits::default();
        Ok(HubLimits {
            history_len: vars.number("HISTORY_LEN", d.history_len, 1, 10_000)?,
            max_client_frame_bytes: vars.number(
                "MAX_CLIENT_FRAME_BYTES",
                d.max_client_frame_bytes as u64,
                64,
                1 << 20,
            )? as usize,
            max_subscriptions: vars.number("MAX_SUBSCRIPTIONS", d.max_subscriptions as u64, 1, 1024)? as usize,
            client_msgs_per_10s: vars.number("CLIENT_MSGS_PER_10S", d.client_msgs_per_10s as u64, 1, 100_000)? as u32,
            shards: vars.number("HUB_SHARDS", d.shards as u64, 1, 64)? as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Vars(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn numbers_default_parse_and_range_check() {
        let v = vars(&[("A", "12"), ("B", " "), ("C", "x"), ("D", "99")]);
        assert_eq!(v.number("A", 1, 0, 100), Ok(12));
        assert_eq!(v.number("B", 7, 0, 100), Ok(7));
        assert_eq!(v.number("UNSET", 7, 0, 100), Ok(7));
        assert!(v.number("C", 1, 0, 100).unwrap_err().to_string().contains("C: \"x\" is not a whole number"));
        assert!(v.number("D", 1, 0, 50).unwrap_err().problem.contains("outside 0..=50"));
    }

    #[test]
    fn hub_limits() {
        assert_eq!(HubLimits::from_vars(&vars(&[])).unwrap(), HubLimits::default());
        let l = HubLimits::from_vars(&vars(&[("HISTORY_LEN", "5"), ("HUB_SHARDS", "4")])).unwrap();
        assert_eq!((l.history_len, l.shards), (5, 4));
        assert_eq!(HubLimits::from_vars(&vars(&[("HISTORY_LEN", "0")])).unwrap_err().var, "HISTORY_LEN");
    }
}
