//! Calendar arithmetic and the fixed text forms of dates and times.
//!
//! Internally a date is days since 1970-01-01, a time is microseconds since midnight and a
//! timestamp is microseconds since the Unix epoch in UTC: microseconds are Redshift's
//! precision, so finer digits are truncated toward the past when values are decoded.
//!
//! A leaf (chrono and [`digits`](crate::digits) only), and the crate's one clock
//! ([`now_micros`]).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// µs in one second.
pub const MICROS_PER_SECOND: i64 = 1_000_000;
/// µs in one day (86,400 s: no leap seconds, as in Unix time).
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// The largest time of day: `24:00:00`, which PostgreSQL and Redshift both store
/// ("TIME … 00:00:00 to 24:00:00", Redshift's datetime types page).
pub const MAX_TIME_MICROS: i64 = MICROS_PER_DAY;
/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i32 = 719_163;

/// The earliest year we accept: what both Redshift literals and the source databases can
/// hold (no BC dates).
pub const MIN_YEAR: i32 = 1;
/// The latest year we accept (four-digit years).
pub const MAX_YEAR: i32 = 9999;

/// The wall clock now, in microseconds since the Unix epoch (UTC): the reference of
/// `not_future`, `_cdc_loaded_at`, dead-letter times and metric timestamps. A clock before
/// 1970 reads as 0 and one past `i64::MAX` µs (year 294,247) as `i64::MAX`: neither happens on
/// a host that runs this, and a panic would fail every batch.
pub fn now_micros() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

/// The calendar date `days` after 1970-01-01 (negative: before), or `None` outside years
/// [`MIN_YEAR`]–[`MAX_YEAR`].
pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    let date = NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_FROM_CE)?)?;
    (MIN_YEAR..=MAX_YEAR).contains(&date.year()).then_some(date)
}

/// Days from 1970-01-01 to `date` (negative before it).
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

/// Is a time of day (µs since midnight) one Redshift's TIME holds: 00:00:00 to 24:00:00?
pub fn valid_time(micros: i64) -> bool {
    (0..=MAX_TIME_MICROS).contains(&micros)
}

/// `HH:MM:SS.ffffff`; `24:00:00.000000` for the end of the day.
pub fn write_time(out: &mut String, micros: i64) {
    if micros == MAX_TIME_MICROS {
        out.push_str("24:00:00.000000");
        return;
    }
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

/// `YYYY-MM-DD`, optionally with a zone suffix (`Z`, `+hh:mm`): Debezium's
/// `io.debezium.time.IsoDate` writes `2018-07-13Z` (`DateTimeFormatter.ISO_OFFSET_DATE`). The
/// calendar date is kept as written; a zone does not move it.
pub fn parse_date(text: &str) -> Option<i32> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(split_zone(text).map_or(text, |(date, _)| date), "%Y-%m-%d"))
        .ok()?;
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

/// An ISO-8601 time, optionally with a zone (`io.debezium.time.ZonedTime`, `IsoTime`), as UTC
/// µs since midnight. Fractions of up to 9 digits are floored to the microsecond. `24:00:00`
/// (PostgreSQL's end of day, which Debezium sends as `24:00:00Z`) is kept as such in UTC.
pub fn parse_time(text: &str) -> Option<i64> {
    let (clock, offset_secs) = split_zone(text)?;
    let micros =
        match NaiveTime::parse_from_str(clock, "%H:%M:%S%.f").or_else(|_| NaiveTime::parse_from_str(clock, "%H:%M")) {
            Ok(time) => {
                i64::from(time.num_seconds_from_midnight()) * MICROS_PER_SECOND + i64::from(time.nanosecond() / 1_000)
            }
            Err(_) if is_end_of_day(clock) => MAX_TIME_MICROS,
            Err(_) => return None,
        };
    if micros == MAX_TIME_MICROS && offset_secs == 0 {
        return Some(MAX_TIME_MICROS);
    }
    Some((micros - offset_secs * MICROS_PER_SECOND).rem_euclid(MICROS_PER_DAY))
}

/// `24:00`, `24:00:00`, `24:00:00.000…`.
fn is_end_of_day(clock: &str) -> bool {
    let Some(rest) = clock.strip_prefix("24:00") else { return false };
    let rest = rest.strip_prefix(":00").unwrap_or(rest);
    rest.is_empty() || rest.strip_prefix('.').is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b == b'0'))
}

/// Split `12:00:00+05:30` (or `2018-07-13Z`) into the text before the zone and the zone
/// offset in seconds. A zone is `Z` or `±hh`, `±hhmm`, `±hh:mm` at the end; text without one
/// has offset 0.
fn split_zone(text: &str) -> Option<(&str, i64)> {
    if let Some(clock) = text.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let Some(i) = text.rfind(['+', '-']) else { return Some((text, 0)) };
    let (clock, zone) = text.split_at(i);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits = &zone[1..];
    let (hours, minutes) = match digits.len() {
        2 => (digits, "00"),
        4 => digits.split_at(2),
        5 if digits.as_bytes()[2] == b':' => (&digits[..2], &digits[3..]),
        _ => return None,
    };
    if !hours.bytes().chain(minutes.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let offset = hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60;
    Some((clock, sign * offset))
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
        // Debezium's IsoTime: seconds always, 0-9 fraction digits, `Z` (floored to the µs).
        assert_eq!(parse_time("10:23:45.6789012Z"), Some(37_425_678_901));
        assert_eq!(parse_time("10:15:00Z"), Some(36_900 * MICROS_PER_SECOND));
        assert_eq!(parse_time("12:00:00-0230"), Some((14 * 3600 + 1800) * MICROS_PER_SECOND));
        // PostgreSQL's end of day survives as 24:00:00.
        assert_eq!(parse_time("24:00:00Z"), Some(MAX_TIME_MICROS));
        assert_eq!(parse_time("24:00:00.000000"), Some(MAX_TIME_MICROS));
        assert_eq!(parse_time("24:00:01"), None);
        s.clear();
        write_time(&mut s, MAX_TIME_MICROS);
        assert_eq!(s, "24:00:00.000000");
        assert!(valid_time(MAX_TIME_MICROS) && !valid_time(MAX_TIME_MICROS + 1) && !valid_time(-1));
    }

    #[test]
    fn dates_with_a_zone_suffix_keep_their_calendar_date() {
        // io.debezium.time.IsoDate (DateTimeFormatter.ISO_OFFSET_DATE).
        assert_eq!(parse_date("2018-07-13Z"), Some(17725));
        assert_eq!(parse_date("2018-07-13+02:00"), Some(17725));
        assert_eq!(parse_date("2018-07-13-05:00"), Some(17725));
        assert_eq!(parse_date("2018-07-13"), Some(17725));
        assert_eq!(parse_date("0001-01-01Z").map(date), Some("0001-01-01".to_string()));
        assert_eq!(parse_date("+5877611-06-21Z"), None);
        assert_eq!(parse_date("2018-07-13Q"), None);
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
