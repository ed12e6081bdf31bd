//! Parser error messages without the values they quote.
//!
//! serde's errors quote the offending input: ``invalid type: integer `987654329`, expected a
//! string``, `invalid value: string "Jane Doe"`, ``unknown field `ssn` ``. An MSK event, a dead
//! letter and a config file hold patient data, so an error built from them keeps only what
//! locates and classifies the fault: the category (`invalid type`), the *kind* of value found
//! (`integer`), what was expected when that text comes from our own types, and the position
//! (`at line 1 column 40`). Everything between quotes or backticks is withheld.
//!
//! serde's wording is fixed by `serde::de::Unexpected` and `serde::de::Error`'s provided
//! methods (<https://docs.rs/serde/latest/serde/de/enum.Unexpected.html>); serde_json appends
//! ` at line L column C`.

/// `message` with every quoted fragment withheld. The result names a category, a kind and a
/// position only; it never contains text between `` ` `` or `"` of the input.
pub fn parser_message(message: &str) -> String {
    let (body, position) = split_position(message);
    let redacted = if let Some(rest) = strip_any(body, &["invalid type: ", "invalid value: "]) {
        let category = &body[..body.len() - rest.len() - 2];
        let (found, expected) = split_expected(rest);
        let kind = found.split(['`', '"']).next().unwrap_or("").trim();
        join(&format!("{category}: {}", if kind.is_empty() { "a value" } else { kind }), expected)
    } else if let Some(rest) = strip_any(body, &["unknown field ", "unknown variant "]) {
        let category = &body[..body.len() - rest.len() - 1];
        join(category, split_expected(rest).1)
    } else {
        without_quoted(body)
    };
    format!("{redacted}{position}")
}

/// For a config file, whose keys are ours and hold no patient data: like [`parser_message`],
/// but an unknown or missing key keeps its name and the names expected (``unknown field
/// `requird`, expected one of `required`, `mask` ``) when every quoted fragment is a plain
/// key name — a letter or `_` first, then letters, digits, `_` or `-`.
/// An unknown variant (a value) is withheld, the variants expected kept.
pub fn config_message(message: &str) -> String {
    let (body, position) = split_position(message);
    let names_only = |text: &str| {
        !text.contains('"')
            && text.matches('`').count().is_multiple_of(2)
            && text.split('`').skip(1).step_by(2).all(|fragment| {
                let mut chars = fragment.chars();
                chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
    };
    let about_keys = ["unknown field ", "missing field ", "duplicate field "].iter().any(|p| body.starts_with(p));
    if about_keys && names_only(body) {
        return message.to_string();
    }
    if let Some(rest) = body.strip_prefix("unknown variant ")
        && let (_, Some(expected)) = split_expected(rest)
        && names_only(expected)
    {
        return format!("unknown variant, expected {expected}{position}");
    }
    parser_message(message)
}

fn strip_any<'a>(text: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    prefixes.iter().find_map(|p| text.strip_prefix(p))
}

/// `(found, Some(expected))` for `"<found>, expected <expected>"`.
fn split_expected(text: &str) -> (&str, Option<&str>) {
    match text.rfind(", expected ") {
        Some(at) => (&text[..at], Some(&text[at + ", expected ".len()..])),
        None => (text, None),
    }
}

/// What was expected comes from our own types (`a string`, `i64`, ``one of `a`, `b` ``) —
/// except in custom messages, so it is kept only when it quotes nothing.
fn join(head: &str, expected: Option<&str>) -> String {
    match expected {
        Some(expected) if !expected.contains(['`', '"', '\'']) => format!("{head}, expected {expected}"),
        _ => head.to_string(),
    }
}

/// `(" at line L column C" or "", the rest)`; serde_json and toml both end with it.
fn split_position(message: &str) -> (&str, &str) {
    let Some(at) = message.rfind(" at line ") else { return (message, "") };
    let tail = &message[at + " at line ".len()..];
    let well_formed = tail.split_once(" column ").is_some_and(|(l, c)| {
        !l.is_empty() && !c.is_empty() && (l.bytes().chain(c.bytes())).all(|b| b.is_ascii_digit())
    });
    if well_formed { (&message[..at], &message[at..]) } else { (message, "") }
}

/// `text` with each `` `…` ``, `"…"` (backslash escapes honoured) and `'…'` run replaced by
/// `…`; an unclosed quote withholds the rest.
fn without_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if !matches!(c, '`' | '"' | '\'') {
            out.push(c);
            continue;
        }
        out.push('…');
        let mut escaped = false;
        for inner in chars.by_ref() {
            match inner {
                '\\' if c == '"' && !escaped => escaped = true,
                _ if inner == c && !escaped => break,
                _ => escaped = false,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real messages of serde_json 1.0 for inputs holding the secrets below, and of toml.
    fn messages() -> Vec<String> {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Record {
            name: String,
            offset: i64,
            kind: Kind,
        }
        #[derive(serde::Deserialize, Debug)]
        enum Kind {
            Create,
        }
        let inputs = [
            r#"{"name": 987654329, "offset": 1, "kind": "Create"}"#,
            r#"{"name": "x", "offset": "Jane O\"Doe", "kind": "Create"}"#,
            r#"{"name": "x", "offset": 1.5e3, "kind": "Create"}"#,
            r#"{"name": "x", "offset": 1, "kind": "1984-03-02"}"#,
            r#"{"name": "x", "offset": 1, "kind": "Create", "123-45-6789": 1}"#,
            r#"{"name": "x", "offset": 18446744073709551615, "kind": "Create"}"#,
            r#"{"name": true, "offset": 1, "kind": "Create"}"#,
        ];
        let mut all: Vec<String> =
            inputs.iter().map(|i| serde_json::from_str::<Record>(i).unwrap_err().to_string()).collect();
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Toml {
            salt: String,
        }
        all.push(toml::from_str::<Toml>("salt = 987654329").unwrap_err().message().to_string());
        all
    }

    #[test]
    fn withholds_every_quoted_value_and_keeps_kind_and_position() {
        let secrets =
            ["987654329", "Jane", "Doe", "1.5e3", "1500", "1984-03-02", "123-45-6789", "18446744073709551615", "true"];
        let redacted: Vec<String> = messages().iter().map(|m| parser_message(m)).collect();
        for (raw, clean) in messages().iter().zip(&redacted) {
            assert!(secrets.iter().any(|s| raw.contains(s)), "the raw message quotes its value: {raw}");
            for secret in secrets {
                assert!(!clean.contains(secret), "{secret} survived in {clean:?} (from {raw:?})");
            }
        }
        assert_eq!(redacted[0], "invalid type: integer, expected a string at line 1 column 18");
        assert!(redacted[1].starts_with("invalid type: string, expected i64 at line 1 column "), "{}", redacted[1]);
        assert!(redacted[2].starts_with("invalid type: floating point, expected i64"), "{}", redacted[2]);
        assert!(redacted[3].starts_with("unknown variant at line 1 column "), "{}", redacted[3]);
        assert!(redacted[4].starts_with("unknown field at line 1 column "), "{}", redacted[4]);
        assert!(redacted[6].starts_with("invalid type: boolean, expected a string"), "{}", redacted[6]);
        assert!(redacted[7].starts_with("invalid type: integer, expected a string"), "{}", redacted[7]);
    }

    #[test]
    fn config_errors_keep_key_names_but_not_values() {
        let typo = "unknown field `requird`, expected one of `required`, `mask`";
        assert_eq!(config_message(typo), typo);
        assert_eq!(config_message("unknown field `123-45-6789`, expected `mask`"), "unknown field");
        assert_eq!(
            config_message("invalid type: integer `987654329`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(config_message("unknown variant `Marisol`, expected `hmac`"), "unknown variant, expected `hmac`");
        assert_eq!(config_message("unknown variant `x`, expected `a\"`"), "unknown variant");
    }

    #[test]
    fn quoted_runs_are_withheld_even_in_unknown_wording() {
        assert_eq!(without_quoted(r#"bad "a\"b" and `c` and 'd' ok"#), "bad … and … and … ok");
        assert_eq!(without_quoted("unclosed `secret and more"), "unclosed …");
        assert_eq!(parser_message("custom: `x` at line 3 column 9"), "custom: … at line 3 column 9");
        assert_eq!(
            parser_message("EOF while parsing a string at line 1 column 7"),
            "EOF while parsing a string at line 1 column 7"
        );
        // A fake position inside the value is not mistaken for one.
        assert_eq!(parser_message("bad `v at line 1 column 2`"), "bad …");
    }
}
