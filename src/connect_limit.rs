//! Connects per client address: every `/ws` upgrade is counted by the platform's rate limiting
//! binding ([`BINDING`], `[[ratelimits]]` in wrangler.toml) under the client's address before
//! any hub is touched, and one over the limit is refused with 429 `rate_limited`. This module
//! picks the key; `routes.rs` asks the binding.

use std::net::IpAddr;

/// The binding's name in wrangler.toml.
pub const BINDING: &str = "CONNECT_LIMITER";

/// What a refused client is told to wait, in seconds: the binding's period (`period = 10`).
pub const RETRY_AFTER_SECS: u64 = 10;

/// The key a connect is counted under: the client's address as the edge reports it
/// (`CF-Connecting-IP`, which Cloudflare sets and a client cannot), an IPv6 address by its /64
/// (one subscriber's usual allocation, so rotating addresses inside it does not escape the
/// limit). Without a readable address (a runtime that does not set the header) every such
/// connect shares one key, so they are still bounded together rather than not at all.
pub fn client_key(cf_connecting_ip: Option<&str>) -> String {
    match cf_connecting_ip.and_then(|v| v.trim().parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_addresses_and_ipv6_counts_by_its_64() {
        assert_eq!(client_key(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(client_key(Some(" 203.0.113.7 ")), "203.0.113.7");
        assert_eq!(client_key(Some("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(client_key(Some("2001:db8:1:2:bbbb:cccc:dddd:eeee")), "2001:db8:1:2::/64", "the same /64");
        assert_ne!(client_key(Some("2001:db8:1:3::1")), client_key(Some("2001:db8:1:2::1")));
        assert_eq!(client_key(Some("::ffff:203.0.113.7")), "203.0.113.7", "a mapped IPv4 is that address");
        for odd in [None, Some(""), Some("not an address"), Some("203.0.113.7, 10.0.0.1")] {
            assert_eq!(client_key(odd), "unknown", "{odd:?}");
        }
    }
}
