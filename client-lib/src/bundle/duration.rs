//! Durations in a key bundle, in the configuration file's grammar: `7d`, `12h`, `1d12h`,
//! `30m`, `45s`, `2w`.
//!
//! One or more `<digits><unit>` groups, largest unit first, no spaces. Units: `w` (7
//! days), `d` (24 hours), `h`, `m` (minutes), `s`. Months and years are refused (their
//! length varies). The daemon's configuration crate parses the same grammar; the client
//! library keeps its own copy so that it does not depend on the daemon's crates.

use std::fmt;
use std::time::Duration;

const UNITS: [(char, u64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

/// Parses a duration such as `7d` or `1d12h`; the error is a reason for a message.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("empty duration; write a number and a unit such as 7d, 12h or 30m".into());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    let mut last_rank: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number, then one of the units w, d, h, m, s"
            ));
        }
        let (number, after) = rest.split_at(digits);
        let mut chars = after.chars();
        let unit = chars.next().ok_or_else(|| {
            format!("invalid duration {text:?}: {number} has no unit; add one of w, d, h, m, s")
        })?;
        let rank = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(|| {
            format!("invalid duration {text:?}: unknown unit {unit:?} (use w, d, h, m or s)")
        })?;
        if last_rank.is_some_and(|last| rank <= last) {
            return Err(format!(
                "invalid duration {text:?}: units must each appear once, largest first (as in 1d12h)"
            ));
        }
        last_rank = Some(rank);
        let too_long = || format!("duration {text:?} is too long");
        let value: u64 = number.parse().map_err(|_| too_long())?;
        let secs = value.checked_mul(UNITS[rank].1).ok_or_else(too_long)?;
        total = total.checked_add(secs).ok_or_else(too_long)?;
        rest = chars.as_str();
    }
    Ok(Duration::from_secs(total))
}

/// Displays a duration in the same grammar, largest units first (`1d12h`, `0s`);
/// sub-second parts are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleDuration(pub Duration);

impl fmt::Display for BundleDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_secs();
        if rest == 0 {
            return f.write_str("0s");
        }
        // Days rather than weeks: 14d reads better than 2w.
        for (unit, size) in UNITS.iter().skip(1) {
            if rest >= *size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_the_config_grammar() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(
            parse_duration("1d12h30m15s"),
            Ok(Duration::from_secs(86_400 + 12 * 3_600 + 30 * 60 + 15))
        );
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "", "7", "d", "1y", "1M", "12h1d", "1h1h", "-1d", "1.5d", "1 d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("99999999999999999999999s").is_err());
        for text in ["90d", "1d12h", "30m", "1h30m15s", "0s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(BundleDuration(d).to_string(), text);
        }
    }
}
