//! Numeric literals in SQL text. Redshift types a literal such as `3.14159` as DECIMAL(6,5), and
//! a DECIMAL has at most 38 digits, so the emulator refuses a statement whose numeric literal
//! (outside quotes, quoted identifiers and comments) has more digits. PostgreSQL would accept it
//! as an unbounded numeric.

/// Most digits a numeric literal may have (Redshift's maximum DECIMAL precision).
pub const MAX_LITERAL_DIGITS: usize = 38;

/// The most digits of any numeric literal in `sql`: digits on both sides of the decimal point,
/// without the integer part's leading zeros (a DECIMAL's precision). String literals follow
/// the emulator's sessions (`standard_conforming_strings = off`: a backslash escapes).
pub fn widest_numeric_literal(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut widest = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        i = match b {
            b'\'' => skip_quoted(bytes, i, b'\'', true),
            b'"' => skip_quoted(bytes, i, b'"', false),
            b'-' if next == Some(b'-') => bytes[i..].iter().position(|&c| c == b'\n').map_or(bytes.len(), |n| i + n),
            b'/' if next == Some(b'*') => skip_block_comment(bytes, i),
            b'$' => skip_dollar(bytes, i),
            b if is_identifier_start(b) => skip_while(bytes, i, is_identifier_part),
            b'0'..=b'9' | b'.' if b != b'.' || next.is_some_and(|c| c.is_ascii_digit()) => {
                let (end, digits) = numeric_literal(bytes, i);
                widest = widest.max(digits);
                end
            }
            _ => i + 1,
        };
    }
    widest
}

fn is_identifier_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_identifier_part(b: u8) -> bool {
    is_identifier_start(b) || b.is_ascii_digit() || b == b'$'
}

fn skip_while(bytes: &[u8], mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
    while i < bytes.len() && keep(bytes[i]) {
        i += 1;
    }
    i
}

/// Past the closing `quote` of the literal opening at `start`; a doubled quote is one
/// character, and with `backslash` a backslash escapes the next byte.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash => i += 2,
            c if c == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Past a (nested) `/* … */` comment.
pub(crate) fn skip_block_comment(bytes: &[u8], start: usize) -> usize {
    let (mut i, mut depth) = (start + 2, 1);
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if bytes[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Past `$1` (a parameter) or a `$tag$ … $tag$` string; a lone `$` is one byte.
fn skip_dollar(bytes: &[u8], start: usize) -> usize {
    if bytes.get(start + 1).is_some_and(u8::is_ascii_digit) {
        return skip_while(bytes, start + 1, |b| b.is_ascii_digit());
    }
    let tag_end = skip_while(bytes, start + 1, |b| is_identifier_start(b) || b.is_ascii_digit());
    if bytes.get(tag_end) != Some(&b'$') {
        return start + 1;
    }
    let tag = &bytes[start..=tag_end];
    let body = tag_end + 1;
    bytes[body..].windows(tag.len()).position(|w| w == tag).map_or(bytes.len(), |n| body + n + tag.len())
}

/// The end of the numeric literal at `start` and its digit count (see [`widest_numeric_literal`]).
fn numeric_literal(bytes: &[u8], start: usize) -> (usize, usize) {
    let int_end = skip_while(bytes, start, |b| b.is_ascii_digit());
    let significant = bytes[start..int_end].iter().skip_while(|&&b| b == b'0').count();
    let mut end = int_end;
    let mut fraction = 0;
    if bytes.get(end) == Some(&b'.') {
        let fraction_end = skip_while(bytes, end + 1, |b| b.is_ascii_digit());
        fraction = fraction_end - end - 1;
        end = fraction_end;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        if bytes.get(end + 1 + sign).is_some_and(u8::is_ascii_digit) {
            end = skip_while(bytes, end + 1 + sign, |b| b.is_ascii_digit());
        }
    }
    (end, significant + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_digits_of_a_decimal_literal() {
        assert_eq!(widest_numeric_literal("SELECT 1"), 1);
        assert_eq!(widest_numeric_literal("SELECT 3.14159"), 6);
        assert_eq!(widest_numeric_literal("SELECT 000012.50, .5, 7."), 4);
        assert_eq!(widest_numeric_literal("SELECT -2E-19 + 2.0e19"), 2);
        let nines = "9".repeat(38);
        assert_eq!(widest_numeric_literal(&format!("INSERT INTO t VALUES ({nines}, 0.{nines})")), 38);
        assert_eq!(widest_numeric_literal(&format!("SELECT 1{nines}")), 39);
        assert_eq!(widest_numeric_literal(&format!("SELECT 1.{nines}")), 39);
    }

    #[test]
    fn skips_strings_identifiers_comments_and_parameters() {
        let long = "1".repeat(60);
        for sql in [
            format!("SELECT '{long}'"),
            format!("SELECT 'it''s {long}'"),
            format!(r"SELECT 'a\' {long}'"),
            format!("SELECT E'{long}'::numeric"),
            format!("SELECT \"c{long}\" FROM t"),
            format!("SELECT c{long} FROM t"),
            format!("SELECT 1 -- {long}\n"),
            format!("SELECT /* /* {long} */ {long} */ 1"),
            format!("SELECT $${long}$$, $tag${long}$tag$"),
            format!("SELECT $1, ${long}"),
        ] {
            assert!(widest_numeric_literal(&sql) <= 1, "{sql}");
        }
        assert_eq!(widest_numeric_literal(&format!("SELECT 'x', {long}, 'y'")), 60);
        assert_eq!(widest_numeric_literal("SELECT 'unterminated"), 0);
    }
}
