//! What must never reach a log, and a detector that finds it also when encoded: the raw SSNs,
//! names and dates of birth that events carry, searched for in the text as written, in the
//! text with JSON and Rust `Debug` escapes undone (to three levels), and in every base64 run
//! (standard and URL-safe alphabets, any alignment), hex run and list of byte numbers decoded,
//! and what those decode to in turn.

use std::path::Path;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::RawRecord;

/// Every SSN, first and last name and date of birth in `records`, raw: strings as they are,
/// dates of birth as epoch milliseconds and as `YYYY-MM-DD`. Values shorter than 5 characters
/// (e.g. "Wu", "Lee") are substrings of ordinary words and are left out.
pub fn sensitive_values(records: &[RawRecord]) -> Vec<String> {
    let mut values = Vec::new();
    for record in records {
        for field in ["SSN", "FirstName", "LastName"] {
            if let Some(text) = record.row_field(field).and_then(|v| v.as_str()) {
                values.push(text.to_string());
            }
        }
        if let Some(ms) = record.row_field("DOB").and_then(|v| v.as_i64()) {
            values.push(ms.to_string());
            let mut day = String::new();
            cdc_pipeline::temporal::write_date(&mut day, ms.div_euclid(86_400_000) as i32);
            values.push(day);
        }
    }
    values.sort();
    values.dedup();
    values.retain(|v| v.len() >= 5);
    values
}

/// [`sensitive_values`] of every sample event in `events/`.
pub fn sample_sensitive_values() -> Vec<String> {
    let records: Vec<RawRecord> = crate::event_files().iter().flat_map(|f| crate::raw_records(f)).collect();
    sensitive_values(&records)
}

/// [`sensitive_values`] of the event text `event`.
pub fn event_sensitive_values(event: &[u8]) -> Vec<String> {
    sensitive_values(&crate::raw_records_in(event, Path::new("<event>")))
}

/// A raw value found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub value: String,
    /// How it was written: `raw`, `unescaped×N`, `base64`, `hex`, `byte list`.
    pub encoding: String,
    /// Up to 80 characters around it, in the view it was found in.
    pub context: String,
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') if chars.peek() == Some(&'{') => {
                chars.next();
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                out.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
            }
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                out.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
            }
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.extend(u8::from_str_radix(&hex, 16).ok().map(char::from));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Maximal runs of characters for which `keep` holds, at least `min` long.
fn runs(text: &str, min: usize, keep: impl Fn(char) -> bool) -> Vec<&str> {
    text.split(|c: char| !keep(c)).filter(|run| run.len() >= min).collect()
}

fn base64_decodings(text: &str) -> Vec<Vec<u8>> {
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let engines = [
        (GeneralPurpose::new(&alphabet::STANDARD, config), ['+', '/']),
        (GeneralPurpose::new(&alphabet::URL_SAFE, config), ['-', '_']),
    ];
    let mut out = Vec::new();
    for (engine, extra) in &engines {
        for run in runs(text, 12, |c| c.is_ascii_alphanumeric() || extra.contains(&c)) {
            for offset in 0..4 {
                let rest = &run[offset..];
                if let Ok(bytes) = engine.decode(&rest[..rest.len() - rest.len() % 4]) {
                    out.push(bytes);
                }
            }
        }
    }
    out
}

fn hex_decodings(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for run in runs(text, 10, |c| c.is_ascii_hexdigit()) {
        for offset in 0..2 {
            let rest = &run[offset..];
            out.extend(hex::decode(&rest[..rest.len() - rest.len() % 2]).ok());
        }
    }
    out
}

/// `[49, 50, 51]`-style byte lists (a `Vec<u8>`'s `Debug`).
fn byte_list_decodings(text: &str) -> Vec<Vec<u8>> {
    runs(text, 8, |c| c.is_ascii_digit() || c == ',' || c == ' ')
        .into_iter()
        .filter_map(|run| run.split(',').map(|n| n.trim().parse::<u8>().ok()).collect::<Option<Vec<u8>>>())
        .collect()
}

/// How many decodings deep the detector looks: 2 finds a value in the base64 of a record
/// inside an event that was itself written as hex, base64 or a byte list.
const DEPTH: usize = 2;

/// Every view of `text` the detector searches, with how it was derived: the text, with
/// escapes undone, and (`depth` times over) what its base64, hex and byte-list runs decode to.
fn views(text: &str, depth: usize) -> Vec<(String, String)> {
    let mut texts = vec![("raw".to_string(), text.to_string())];
    for level in 1..=3 {
        let next = unescape(&texts.last().expect("one view").1);
        if next == texts.last().expect("one view").1 {
            break;
        }
        texts.push((format!("unescaped×{level}"), next));
    }
    let mut views = texts.clone();
    if depth == 0 {
        return views;
    }
    for (how, view) in &texts {
        let decoded = [
            ("base64", base64_decodings(view)),
            ("hex", hex_decodings(view)),
            ("byte list", byte_list_decodings(view)),
        ];
        for (encoding, fragments) in decoded {
            for fragment in fragments {
                let fragment = String::from_utf8_lossy(&fragment).into_owned();
                for (inner, view) in self::views(&fragment, depth - 1) {
                    views.push((format!("{encoding} of {how}, then {inner}"), view));
                }
            }
        }
    }
    views
}

/// Every value of `values` that `text` holds in any of the detector's views.
pub fn find_leaks(text: &str, values: &[String]) -> Vec<Leak> {
    let mut leaks = Vec::new();
    let views = views(text, DEPTH);
    for value in values {
        // SQL literals double single quotes: O'Brien is written 'O''Brien'.
        let forms = [value.clone(), value.replace('\'', "''")];
        'views: for (encoding, view) in &views {
            for form in &forms {
                if let Some(at) = view.find(form.as_str()) {
                    let start = view.floor_char_boundary(at.saturating_sub(40));
                    let end = view.ceil_char_boundary((at + form.len() + 40).min(view.len()));
                    leaks.push(Leak {
                        value: value.clone(),
                        encoding: encoding.clone(),
                        context: view[start..end].to_string(),
                    });
                    break 'views;
                }
            }
        }
    }
    leaks
}
