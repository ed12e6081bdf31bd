//! Calendar arithmetic and the fixed text forms of dates and times.
//!
//! Internally a date is days since 1970-01-01, a time is microseconds since midnight and a
//! timestamp is microseconds since the Unix epoch in UTC: microseconds are Redshift's
//! precision, so finer digits are truncated toward the past when values are decoded.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i32 = 719_163;

/// Years we accept: what both Redshift literals and the source databases can hold.
pub const MIN_YEAR: i32 = 1;
pub const MAX_YEAR: i32 = 9999;

pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    let date = NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_FROM_CE)?)?;
    (MIN_YEAR..=MAX_YEAR).contains(&date.year()).then_some(date)
}

pub fn days_from_date(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - UNIX_EPOCH_FROM_CE
}

/// Is a day count inside the supported calendar range?
pub fn valid_date(days: i32) -> bool {
    date_from_days(days).is_some()
}

/// Is a timestamp inside the supported calendar range?
pub fn valid_timestamp(micros: i64) -> bool {
    i32::try_from(micros.div_euclid(MICROS_PER_DAY)).is_ok_and(valid_date)
}

/// Convert a count of `unit`-long ticks to microseconds, flooring sub-microsecond digits.
pub fn to_micros(ticks: i64, ticks_per_second: i64) -> Option<i64> {
    match ticks_per_second {
        1_000 => ticks.checked_mul(1_000),
        1_000_000 => Some(ticks),
        1_000_000_000 => Some(ticks.div_euclid(1_000)),
        _ => None,
    }
}

/// Microseconds since the epoch → January 1 of the same year, 00:00.
pub fn year_start_of_timestamp(micros: i64) -> Option<i64> {
    let days = i32::try_from(micros.div_euclid(MICROS_PER_DAY)).ok()?;
    Some(i64::from(year_start_of_date(days)?) * MICROS_PER_DAY)
}

/// Days since the epoch → January 1 of the same year.
pub fn year_start_of_date(days: i32) -> Option<i32> {
    let date = date_from_days(days)?;
    Some(days_from_date(NaiveDate::from_ymd_opt(date.year(), 1, 1)?))
}

fn push_padded(out: &mut String, value: u32, width: usize) {
    crate::digits::push_decimal(out, u64::from(value), width);
}

/// `YYYY-MM-DD`. Out-of-range inputs are rejected at decode time; here they print as `invalid`.
pub fn write_date(out: &mut String, days: i32) {
    match date_from_days(days) {
        Some(date) => {
            push_padded(out, date.year() as u32, 4);
            out.push('-');
            push_padded(out, date.month(), 2);
            out.push('-');
            push_padded(out, date.day(), 2);
        }
        None => out.push_str("invalid"),
    }
}

/// `HH:MM:SS.ffffff`.
pub fn write_time(out: &mut String, micros: i64) {
    let micros = micros.rem_euclid(MICROS_PER_DAY);
    let secs = micros / MICROS_PER_SECOND;
    push_padded(out, (secs / 3600) as u32, 2);
    out.push(':');
    push_padded(out, (secs / 60 % 60) as u32, 2);
    out.push(':');
    push_padded(out, (secs % 60) as u32, 2);
    out.push('.');
    push_padded(out, (micros % MICROS_PER_SECOND) as u32, 6);
}

/// `YYYY-MM-DD<sep>HH:MM:SS.ffffff`.
pub fn write_timestamp(out: &mut String, micros: i64, separator: char) {
    let days = micros.div_euclid(MICROS_PER_DAY);
    match i32::try_from(days) {
        Ok(days) => write_date(out, days),
        Err(_) => out.push_str("invalid"),
    }
    out.push(separator);
    write_time(out, micros.rem_euclid(MICROS_PER_DAY));
}

fn micros_of(date_time: NaiveDateTime) -> Option<i64> {
    let days = i64::from(days_from_date(date_time.date()));
    let time = date_time.time();
    let in_day = i64::from(time.num_seconds_from_midnight()) * MICROS_PER_SECOND + i64::from(time.nanosecond() / 1_000);
    let micros = days.checked_mul(MICROS_PER_DAY)?.checked_add(in_day)?;
    valid_timestamp(micros).then_some(micros)
}

/// `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<i32> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let days = days_from_date(date);
    valid_date(days).then_some(days)
}

/// An ISO-8601 timestamp. With a zone (`Z`, `+hh:mm`) it is converted to UTC; without one it
/// is taken as UTC wall-clock time, as Debezium does for zone-less source types.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(zoned) = chrono::DateTime::parse_from_rfc3339(text) {
        return micros_of(zoned.naive_utc());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
            return micros_of(local);
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    micros_of(date.and_hms_opt(0, 0, 0)?)
}

/// An ISO-8601 time, optionally with a zone (`io.debezium.time.ZonedTime`), as UTC µs since
/// midnight.
pub fn parse_time(text: &str) -> Option<i64> {
    let (clock, offset_secs) = split_zone(text)?;
    let time =
        NaiveTime::parse_from_str(clock, "%H:%M:%S%.f").or_else(|_| NaiveTime::parse_from_str(clock, "%H:%M")).ok()?;
    let micros = i64::from(time.num_seconds_from_midnight()) * MICROS_PER_SECOND + i64::from(time.nanosecond() / 1_000);
    Some((micros - offset_secs * MICROS_PER_SECOND).rem_euclid(MICROS_PER_DAY))
}

/// Split `12:00:00+05:30` into the clock text and the zone offset in seconds.
fn split_zone(text: &str) -> Option<(&str, i64)> {
    if let Some(clock) = text.strip_suffix('Z') {
        return Some((clock, 0));
    }
    match text.rfind(['+', '-']) {
        Some(i) => {
            let (clock, zone) = text.split_at(i);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let zone = &zone[1..];
            let (hours, minutes) = match zone.split_once(':') {
                Some((h, m)) => (h, m),
                None if zone.len() == 4 => zone.split_at(2),
                None => (zone, "0"),
            };
            let offset = hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60;
            Some((clock, sign * offset))
        }
        None => Some((text, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(days: i32) -> String {
        let mut s = String::new();
        write_date(&mut s, days);
        s
    }

    fn ts(micros: i64) -> String {
        let mut s = String::new();
        write_timestamp(&mut s, micros, ' ');
        s
    }

    #[test]
    fn debezium_documented_vectors() {
        // From the Debezium SQL Server data type tests.
        assert_eq!(date(17725), "2018-07-13");
        assert_eq!(ts(to_micros(1_531_488_225_780, 1_000).unwrap()), "2018-07-13 13:23:45.780000");
        assert_eq!(ts(to_micros(1_531_481_025_340_000_000, 1_000_000_000).unwrap()), "2018-07-13 11:23:45.340000");
        assert_eq!(ts(1_529_507_596_945_104), "2018-06-20 15:13:16.945104");
        // DOB before 1970 uses floor division.
        assert_eq!(ts(to_micros(-361_275_269_543, 1_000).unwrap()), "1958-07-21 13:45:30.457000");
    }

    #[test]
    fn nanoseconds_truncate_toward_the_past() {
        assert_eq!(to_micros(1_999, 1_000_000_000), Some(1));
        assert_eq!(to_micros(-1, 1_000_000_000), Some(-1));
        assert_eq!(ts(to_micros(-1, 1_000_000_000).unwrap()), "1969-12-31 23:59:59.999999");
    }

    #[test]
    fn times() {
        let mut s = String::new();
        write_time(&mut s, 37_425_678_900);
        assert_eq!(s, "10:23:45.678900");
        assert_eq!(parse_time("10:23:45.6789Z"), Some(37_425_678_900));
        assert_eq!(parse_time("12:00:00+02:00"), Some(10 * 3600 * MICROS_PER_SECOND));
        assert_eq!(parse_time("01:00:00+02:00"), Some(23 * 3600 * MICROS_PER_SECOND));
        assert_eq!(parse_time("nonsense"), None);
    }

    #[test]
    fn zoned_timestamps_convert_to_utc() {
        assert_eq!(ts(parse_timestamp("2018-07-13T12:23:45.456+11:00").unwrap()), "2018-07-13 01:23:45.456000");
        assert_eq!(ts(parse_timestamp("2018-07-13T12:23:45.123456789Z").unwrap()), "2018-07-13 12:23:45.123456");
        assert_eq!(ts(parse_timestamp("2018-07-13 12:23:45").unwrap()), "2018-07-13 12:23:45.000000");
        assert_eq!(ts(parse_timestamp("2018-07-13").unwrap()), "2018-07-13 00:00:00.000000");
        assert_eq!(parse_timestamp("13/07/2018"), None);
    }

    #[test]
    fn calendar_range() {
        assert!(valid_date(parse_date("9999-12-31").unwrap()));
        assert!(parse_date("0000-01-01").is_none());
        assert!(!valid_date(i32::MAX));
        assert!(!valid_timestamp(i64::MAX));
        assert_eq!(year_start_of_date(parse_date("1958-07-21").unwrap()), parse_date("1958-01-01"));
    }
}
