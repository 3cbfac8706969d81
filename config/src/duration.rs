//! Durations as written in the config file: `90d`, `12h`, `1d12h`, `30m`, `45s`, `2w`.
//!
//! The grammar is one or more `<digits><unit>` groups, largest unit first, with
//! no spaces. Units: `w` (7 days), `d` (24 hours), `h`, `m` (minutes), `s`.
//! Months and years are refused because their length varies (`1y` is written
//! `365d`), and `m` always means minutes, so `1M` cannot be misread.

use std::fmt;
use std::time::Duration;

/// The longest duration accepted anywhere in the config: 100 years (36,500 days).
///
/// Longer values are typing mistakes, and keeping durations small means adding one
/// to the current time can never overflow a date type.
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * DAY);

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// Units from largest to smallest; a duration lists them in this order.
const UNITS: [(char, u64); 5] = [
    ('w', WEEK),
    ('d', DAY),
    ('h', HOUR),
    ('m', MINUTE),
    ('s', 1),
];

/// Parses a duration such as `90d` or `1d12h` (the configuration's grammar); the
/// error is a reason for a message.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse(text)
}

pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("empty duration; write a number and a unit such as 90d, 12h or 30m".into());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    let mut last_rank: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number before {:?}",
                rest.chars().next().unwrap_or(' ')
            ));
        }
        let (number, after) = rest.split_at(digits);
        let mut unit_chars = after.chars();
        let Some(unit) = unit_chars.next() else {
            return Err(format!(
                "invalid duration {text:?}: {number} has no unit; add one of w, d, h, m, s"
            ));
        };
        let Some(rank) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(unknown_unit(text, unit));
        };
        if last_rank.is_some_and(|last| rank <= last) {
            return Err(format!(
                "invalid duration {text:?}: units must each appear once, largest first (as in 1d12h)"
            ));
        }
        last_rank = Some(rank);
        let value: u64 = number.parse().map_err(|_| too_long(text))?;
        let seconds = value
            .checked_mul(UNITS[rank].1)
            .ok_or_else(|| too_long(text))?;
        total = total.checked_add(seconds).ok_or_else(|| too_long(text))?;
        rest = unit_chars.as_str();
    }
    let duration = Duration::from_secs(total);
    if duration > MAX_DURATION {
        return Err(too_long(text));
    }
    Ok(duration)
}

fn unknown_unit(text: &str, unit: char) -> String {
    let hint = match unit {
        'y' | 'Y' => "; a year is written 365d",
        'M' => "; months vary in length, write days (30d); m is minutes",
        'D' | 'H' | 'S' | 'W' => "; units are lower case",
        _ => "",
    };
    format!("invalid duration {text:?}: unknown unit {unit:?} (use w, d, h, m or s){hint}")
}

fn too_long(text: &str) -> String {
    format!("duration {text:?} is longer than the maximum of 36500d")
}

/// Displays a duration in the config grammar, largest units first (`1d12h`, `0s`).
///
/// Sub-second parts are dropped: the config never produces them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_secs();
        if rest == 0 {
            return f.write_str("0s");
        }
        // Weeks are not used for display: 14d reads better than 2w.
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
    fn parses_single_and_compound_units() {
        assert_eq!(parse("90d"), Ok(Duration::from_secs(90 * DAY)));
        assert_eq!(parse("12h"), Ok(Duration::from_secs(12 * HOUR)));
        assert_eq!(parse("30m"), Ok(Duration::from_secs(30 * MINUTE)));
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * DAY)));
        assert_eq!(parse("1d12h"), Ok(Duration::from_secs(36 * HOUR)));
        assert_eq!(
            parse("1h30m15s"),
            Ok(Duration::from_secs(HOUR + 30 * MINUTE + 15))
        );
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_years_months_and_malformed_text() {
        assert!(parse("1y").unwrap_err().contains("365d"));
        assert!(parse("1M").unwrap_err().contains("m is minutes"));
        assert!(parse("12").unwrap_err().contains("no unit"));
        assert!(parse("d").unwrap_err().contains("expected a number"));
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("1 d").is_err());
        assert!(parse("12h1d").unwrap_err().contains("largest first"));
        assert!(parse("1h1h").is_err());
        assert!(parse("-1d").is_err());
        assert!(parse("1.5d").is_err());
    }

    #[test]
    fn refuses_overflow_and_values_past_the_maximum() {
        assert!(parse("36501d").unwrap_err().contains("maximum"));
        assert!(parse("99999999999999999999999s")
            .unwrap_err()
            .contains("maximum"));
        assert!(parse("3000000000000000w").unwrap_err().contains("maximum"));
        assert_eq!(parse("36500d"), Ok(MAX_DURATION));
    }

    #[test]
    fn displays_in_the_config_grammar() {
        let show = |s: u64| HumanDuration(Duration::from_secs(s)).to_string();
        assert_eq!(show(0), "0s");
        assert_eq!(show(90 * DAY), "90d");
        assert_eq!(show(36 * HOUR), "1d12h");
        assert_eq!(show(HOUR + 15), "1h15s");
        for text in ["90d", "1d12h", "30m", "1h30m15s"] {
            assert_eq!(HumanDuration(parse(text).unwrap()).to_string(), text);
        }
    }
}
