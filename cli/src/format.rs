//! Numbers and times as the terminal shows them: `$67,123.45`, `+1.23 %`, `$2.41T`, `52.3 %`,
//! ages like `12s` or `3m`, and UTC times. Non-finite numbers show as `–`, never a panic.

/// What a missing or unusable number shows as.
pub const NONE: &str = "–";

/// A price in dollars: cents above $1 with thousands separators, more decimals below.
pub fn usd(v: f64) -> String {
    if !v.is_finite() {
        return NONE.to_owned();
    }
    let decimals = match v.abs() {
        a if a >= 1.0 || a == 0.0 => 2,
        a if a >= 0.01 => 4,
        _ => 8,
    };
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let sign = if v < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') { "-" } else { "" };
    format!("{sign}${}.{frac}", group(int))
}

/// `1234567` → `1,234,567`.
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A large dollar amount in three significant digits: `$2.41T`, `$98.1B`, `$375B`, `$2.20B`.
pub fn usd_compact(v: f64) -> String {
    if !v.is_finite() {
        return NONE.to_owned();
    }
    const UNITS: [(f64, &str); 4] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")];
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    for (i, (scale, unit)) in UNITS.iter().enumerate() {
        if a >= *scale {
            let x = a / scale;
            // Rounding may carry into the next unit up: 999.96B is $1.00T.
            let decimals = if x >= 99.95 {
                0
            } else if x >= 9.995 {
                1
            } else {
                2
            };
            let text = format!("{x:.decimals$}");
            if text == "1000" && i > 0 {
                return format!("{sign}$1.00{}", UNITS[i - 1].1);
            }
            return format!("{sign}${text}{unit}");
        }
    }
    usd(v)
}

/// A change in percent with its sign: `+1.23 %`, `-0.82 %`.
pub fn change_pct(v: f64) -> String {
    if !v.is_finite() {
        return NONE.to_owned();
    }
    let text = format!("{v:+.2}");
    // -0.001 rounds to "-0.00": no sign on a change that shows as zero.
    let text = if text == "-0.00" { "+0.00".to_owned() } else { text };
    format!("{text} %")
}

/// A share in percent: `52.3 %`.
pub fn pct(v: f64) -> String {
    if !v.is_finite() {
        return NONE.to_owned();
    }
    format!("{v:.1} %")
}

/// A plain number with two decimals (an index such as RSI).
pub fn decimal(v: f64) -> String {
    if !v.is_finite() {
        return NONE.to_owned();
    }
    format!("{v:.2}")
}

/// How long ago, in the largest whole unit: `0s`..`59s`, `1m`..`59m`, `1h`..`47h`, then days.
/// A time in the future (another machine's clock ahead of this one) is `0s`.
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Ms since the Unix epoch as UTC, `2026-11-23T12:34:56Z`; out of range: the number itself.
pub fn utc(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// The server's word that it accepted the token: whose, and until when (`exp`, Unix seconds;
/// the server allows a little leeway past it).
pub fn authed(sub: &str, exp: u64) -> String {
    format!("authed as {sub} (token valid until {})", utc(exp.saturating_mul(1000)))
}

/// A duration in seconds with one decimal: `1.2 s`.
pub fn secs(d: std::time::Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        let cases = [
            (67123.45, "$67,123.45"),
            (64123.456, "$64,123.46"),
            (3120.5, "$3,120.50"),
            (142.1, "$142.10"),
            (1.0, "$1.00"),
            (999.999, "$1,000.00"),
            (1234567.891, "$1,234,567.89"),
            (0.4521, "$0.4521"),
            (0.00001236, "$0.00001236"),
            (0.0, "$0.00"),
            (-5.5, "-$5.50"),
            (-0.0, "$0.00"),
            (f64::NAN, "–"),
            (f64::INFINITY, "–"),
        ];
        for (v, want) in cases {
            assert_eq!(usd(v), want, "{v}");
        }
    }

    #[test]
    fn large_amounts() {
        let cases = [
            (2.41e12, "$2.41T"),
            (1.26e12, "$1.26T"),
            (9.81e10, "$98.1B"),
            (8.9e10, "$89.0B"),
            (3.75e11, "$375B"),
            (2.2e9, "$2.20B"),
            (6.5e10, "$65.0B"),
            (999.96e9, "$1.00T"),
            (12_345_678.0, "$12.3M"),
            (1500.0, "$1.50K"),
            (999.0, "$999.00"),
            (-2.41e12, "-$2.41T"),
            (1e15, "$1000T"),
            (f64::NAN, "–"),
        ];
        for (v, want) in cases {
            assert_eq!(usd_compact(v), want, "{v}");
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(change_pct(1.2345), "+1.23 %");
        assert_eq!(change_pct(-0.82), "-0.82 %");
        assert_eq!(change_pct(0.0), "+0.00 %");
        assert_eq!(change_pct(-0.001), "+0.00 %");
        assert_eq!(change_pct(f64::NAN), "–");
        assert_eq!(pct(52.3), "52.3 %");
        assert_eq!(pct(f64::NEG_INFINITY), "–");
        assert_eq!(decimal(55.123), "55.12");
        assert_eq!(decimal(f64::NAN), "–");
    }

    #[test]
    fn ages() {
        let cases = [
            (-5_000, "0s"),
            (0, "0s"),
            (999, "0s"),
            (12_000, "12s"),
            (59_999, "59s"),
            (60_000, "1m"),
            (3_599_999, "59m"),
        ];
        for (ms, want) in cases {
            assert_eq!(age(ms), want, "{ms}");
        }
        assert_eq!(age(3_600_000), "1h");
        assert_eq!(age(47 * 3_600_000), "47h");
        assert_eq!(age(48 * 3_600_000), "2d");
        assert_eq!(age(i64::MAX), format!("{}d", i64::MAX / 1000 / 86_400));
    }

    #[test]
    fn times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(utc(u64::MAX), u64::MAX.to_string());
        assert_eq!(secs(std::time::Duration::from_millis(1234)), "1.2 s");
    }
}
