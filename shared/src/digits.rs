//! Fixed-width decimal and hex digits without `core::fmt`: positions, dates and times are
//! written once per value in the hot loop, where `write!` costs more than the digits.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `value` in decimal, left-padded with zeros to `width` digits (more if it needs them).
pub fn push_decimal(out: &mut String, mut value: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut start = buf.len();
    while value > 0 {
        start -= 1;
        buf[start] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    push_padded(out, &buf, start, width);
}

/// `value` in lowercase hex, left-padded with zeros to `width` digits (more if it needs them).
pub fn push_hex(out: &mut String, mut value: u64, width: usize) {
    let mut buf = [b'0'; 16];
    let mut start = buf.len();
    while value > 0 {
        start -= 1;
        buf[start] = HEX[(value & 0xf) as usize];
        value >>= 4;
    }
    push_padded(out, &buf, start, width);
}

/// One byte as two lowercase hex digits.
pub fn push_hex_byte(out: &mut String, byte: u8) {
    out.push(HEX[usize::from(byte >> 4)] as char);
    out.push(HEX[usize::from(byte & 0xf)] as char);
}

fn push_padded(out: &mut String, digits: &[u8], start: usize, width: usize) {
    // The buffer starts as all zeros, so the padding up to its length is already in it.
    let from = digits.len().saturating_sub(width).min(start);
    for _ in digits.len()..width {
        out.push('0');
    }
    // The buffer holds ASCII digits only.
    out.push_str(std::str::from_utf8(&digits[from..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decimal(value: u64, width: usize) -> String {
        let mut out = String::new();
        push_decimal(&mut out, value, width);
        out
    }

    fn hex(value: u64, width: usize) -> String {
        let mut out = String::new();
        push_hex(&mut out, value, width);
        out
    }

    #[test]
    fn edges() {
        assert_eq!(decimal(0, 0), "");
        assert_eq!(decimal(0, 1), "0");
        assert_eq!(decimal(7, 4), "0007");
        assert_eq!(decimal(u64::MAX, 20), "18446744073709551615");
        assert_eq!(decimal(12345, 2), "12345");
        assert_eq!(hex(0, 16), "0000000000000000");
        assert_eq!(hex(u64::MAX, 16), "ffffffffffffffff");
        let mut out = String::new();
        push_hex_byte(&mut out, 0x0f);
        push_hex_byte(&mut out, 0xa0);
        assert_eq!(out, "0fa0");
    }

    proptest! {
        #[test]
        fn same_as_format(value: u64, width in 0usize..24) {
            prop_assert_eq!(decimal(value, width), format!("{value:0width$}"));
            prop_assert_eq!(hex(value, width), format!("{value:0width$x}"));
        }
    }
}
