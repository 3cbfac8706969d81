//! Cron schedules for `sync` and `resign`, and the longest gap between two ticks.
//!
//! Expressions use the `cron` crate's grammar: 6 or 7 fields, seconds first and
//! required, an optional year last; day-of-week numbers run from Sunday = 1 (names
//! such as `Mon-Fri` avoid the trap). Schedules are evaluated in UTC.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::Reason;

/// A parsed cron schedule, evaluated in UTC.
#[derive(Clone)]
pub struct CronSchedule {
    schedule: cron::Schedule,
}

/// How a scan for the longest gap ended badly.
pub(crate) enum GapError {
    /// The schedule has no tick after `last` (or none at all).
    Ends(Option<DateTime<Utc>>),
}

impl CronSchedule {
    /// Parses an expression; a 5-field crontab line gets a hint to add seconds.
    pub(crate) fn parse(expression: &str) -> Result<CronSchedule, Reason> {
        let expression = expression.trim();
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if fields.len() == 5 {
            return Err(Reason::CronWithoutSeconds {
                expression: fields.join(" "),
            });
        }
        match cron::Schedule::from_str(expression) {
            Ok(schedule) => Ok(CronSchedule { schedule }),
            Err(e) => {
                // The cron error's text is the expression, a caret line and a message:
                // keep the message only, so the error stays one line.
                let text = e.to_string();
                let message = text
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && *l != expression && !l.starts_with('^'))
                    .unwrap_or("not a valid expression");
                Err(Reason::Invalid(format!(
                    "invalid cron expression {expression:?}: {message} \
                     (6 or 7 fields, seconds first: \"0 */15 * * * *\")"
                )))
            }
        }
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        self.schedule.source()
    }

    /// Whether the day-of-week field uses numbers (Sunday = 1 here, unlike crontab).
    pub(crate) fn numeric_day_of_week(&self) -> bool {
        self.expression()
            .split_whitespace()
            .nth(5)
            .is_some_and(|dow| dow.bytes().any(|b| b.is_ascii_digit()))
    }

    /// The first tick strictly after `time`, or `None` when the schedule has ended.
    pub fn next_after(&self, time: SystemTime) -> Option<SystemTime> {
        let time: DateTime<Utc> = time.into();
        self.schedule.after(&time).next().map(SystemTime::from)
    }

    /// The first tick strictly after `time` (UTC).
    fn after(&self, time: &DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(time).next()
    }

    /// The last tick at or before `time` (UTC).
    fn at_or_before(&self, time: &DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&(*time + chrono::Duration::seconds(1)))
            .next_back()
    }

    /// The longest gap between consecutive ticks from `start` (counted as a tick: the
    /// daemon re-signs when it starts) over `horizon`, among gaps of at least `step`.
    ///
    /// Gaps shorter than `step` are not measured: the scan jumps `step` ahead from each
    /// tick and measures only the gap that spans the landing point, so it costs at
    /// most `horizon / step` iterations. Returns `None` when no gap reaches `step`, and
    /// `(gap, gap start)` otherwise.
    pub(crate) fn longest_gap(
        &self,
        start: DateTime<Utc>,
        horizon: Duration,
        step: Duration,
    ) -> Result<Option<(Duration, DateTime<Utc>)>, GapError> {
        let step = chrono::Duration::seconds(step.as_secs().max(1) as i64);
        let end = start + chrono::Duration::seconds(horizon.as_secs().min(i64::MAX as u64) as i64);
        let mut longest: Option<(chrono::Duration, DateTime<Utc>)> = None;
        let mut record = |from: DateTime<Utc>, to: DateTime<Utc>| {
            let gap = to - from;
            if gap >= step && longest.is_none_or(|(g, _)| gap > g) {
                longest = Some((gap, from));
            }
        };
        let mut tick = start;
        while tick < end {
            let next = self
                .after(&tick)
                .ok_or(GapError::Ends(Some(tick).filter(|t| *t != start)))?;
            if next - tick >= step {
                record(tick, next);
                tick = next;
                continue;
            }
            // Ticks between `tick` and `tick + step` are less than `step` apart; measure
            // the gap that spans `tick + step` exactly.
            let before = self.at_or_before(&(tick + step)).unwrap_or(next);
            let after = self.after(&before).ok_or(GapError::Ends(Some(before)))?;
            record(before, after);
            tick = after;
        }
        Ok(longest.map(|(gap, from)| (gap.to_std().unwrap_or(Duration::MAX), from)))
    }
}

/// Formats a tick for messages.
pub(crate) fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronSchedule")
            .field(&self.expression())
            .finish()
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expression())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const HOUR: u64 = 3600;

    fn start() -> DateTime<Utc> {
        // A Thursday.
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn gap(expr: &str, horizon_h: u64, step_h: u64) -> Option<(Duration, DateTime<Utc>)> {
        let s = CronSchedule::parse(expr).unwrap();
        let step = Duration::from_secs(step_h * HOUR);
        s.longest_gap(start(), Duration::from_secs(horizon_h * HOUR), step)
            .ok()
            .unwrap()
    }

    #[test]
    fn five_fields_get_a_seconds_hint() {
        let err = CronSchedule::parse("*/15 * * * *").unwrap_err();
        assert_eq!(
            err,
            Reason::CronWithoutSeconds {
                expression: "*/15 * * * *".into()
            }
        );
        assert!(err.to_string().contains("write \"0 */15 * * * *\""));
    }

    #[test]
    fn invalid_expressions_give_one_line() {
        let err = CronSchedule::parse("0 0 0 * * 0").unwrap_err().to_string();
        assert!(
            err.contains("Days of Week must be greater than or equal to 1"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        let err = CronSchedule::parse("every hour").unwrap_err().to_string();
        assert!(
            err.contains("invalid cron expression") && !err.contains('\n'),
            "{err}"
        );
    }

    #[test]
    fn accepts_six_and_seven_fields_and_shortcuts() {
        assert!(CronSchedule::parse("0 */15 * * * *").is_ok());
        assert!(CronSchedule::parse("0 0 * * * * 2026-2099").is_ok());
        assert_eq!(
            CronSchedule::parse("@hourly").unwrap().expression(),
            "@hourly"
        );
        assert!(CronSchedule::parse("0 0 9 * * 1-5")
            .unwrap()
            .numeric_day_of_week());
        assert!(!CronSchedule::parse("0 0 9 * * Mon-Fri")
            .unwrap()
            .numeric_day_of_week());
    }

    #[test]
    fn regular_schedules_have_their_period_as_gap() {
        let (g, _) = gap("0 0 */2 * * *", 24 * 30, 1).unwrap();
        assert_eq!(g, Duration::from_secs(2 * HOUR));
        // Gaps shorter than the step are not reported.
        assert_eq!(gap("0 */10 * * * *", 24 * 30, 1), None);
    }

    #[test]
    fn the_weekend_gap_of_a_business_hours_schedule_is_found() {
        // Every 10 minutes, 09:00-17:50, Monday to Friday: the longest gap is from
        // Friday 17:50 to Monday 09:00.
        let (g, from) = gap("0 */10 9-17 * * Mon-Fri", 24 * 30, 1).unwrap();
        assert_eq!(g, Duration::from_secs(63 * HOUR + 10 * 60));
        assert_eq!(rfc3339(from), "2026-01-02T17:50:00Z");
    }

    #[test]
    fn monthly_gaps_and_the_gap_from_start() {
        let (g, _) = gap("0 0 0 1 * *", 24 * 366, 12).unwrap();
        assert_eq!(g, Duration::from_secs(31 * 24 * HOUR));
        // Starting on Jan 1 00:00 with a 06:00 daily tick: first gap is 6 h, then 24 h.
        let (g, _) = gap("0 0 6 * * *", 24 * 10, 1).unwrap();
        assert_eq!(g, Duration::from_secs(24 * HOUR));
    }

    #[test]
    fn ending_and_never_firing_schedules() {
        let horizon = Duration::from_secs(24 * 366 * HOUR);
        let ended = CronSchedule::parse("0 0 0 * * * 2026").unwrap();
        match ended.longest_gap(start(), horizon, Duration::from_secs(HOUR)) {
            Err(GapError::Ends(Some(last))) => assert_eq!(rfc3339(last), "2026-12-31T00:00:00Z"),
            _ => panic!("expected the schedule to end"),
        }
        let never = CronSchedule::parse("0 0 0 30 Feb *").unwrap();
        assert!(matches!(
            never.longest_gap(start(), horizon, Duration::from_secs(HOUR)),
            Err(GapError::Ends(None))
        ));
    }

    #[test]
    fn next_after_is_strict() {
        let s = CronSchedule::parse("0 0 * * * *").unwrap();
        let t: SystemTime = start().into();
        assert_eq!(s.next_after(t), Some(t + Duration::from_secs(HOUR)));
    }
}
