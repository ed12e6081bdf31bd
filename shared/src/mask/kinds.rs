//! Every mask kind in one place: its config form, its behaviour, what it stores and whether it
//! may mask a key, each an exhaustive `match` (see the module docs of [`crate::mask`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::Masker;
use crate::rule::Rule;
use crate::temporal;
use crate::value::Value;

/// A mask kind: the `type` of a `mask` in the config (`mask = "hmac"`,
/// `mask = { type = "partial", … }`), without its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskKind {
    /// `redact`: a fixed text.
    Redact,
    /// `null`: NULL.
    Null,
    /// `partial`: the last characters kept, the others replaced.
    Partial,
    /// `hmac`: a keyed pseudonym.
    Hmac,
    /// `year`: January 1 of the date's year.
    Year,
}

impl MaskKind {
    /// Every kind, in the order error messages list them.
    pub const ALL: [MaskKind; 5] =
        [MaskKind::Redact, MaskKind::Null, MaskKind::Partial, MaskKind::Hmac, MaskKind::Year];

    /// The kind's name: its `type` in the config and its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            MaskKind::Redact => "redact",
            MaskKind::Null => "null",
            MaskKind::Partial => "partial",
            MaskKind::Hmac => "hmac",
            MaskKind::Year => "year",
        }
    }

    /// The config fields (besides `type`) the kind takes.
    fn fields(self) -> &'static [&'static str] {
        match self {
            MaskKind::Redact => &["with"],
            MaskKind::Null | MaskKind::Year => &[],
            MaskKind::Partial => &["keep_last", "char"],
            MaskKind::Hmac => &["length", "salt"],
        }
    }

    fn parse(name: &str) -> Option<MaskKind> {
        MaskKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// A configured mask, with its settings.
#[derive(Debug, Clone)]
pub enum Mask {
    /// Replace the value with a fixed text.
    Redact {
        /// The text (`with`, default `REDACTED`).
        with: String,
    },
    /// Replace the value with NULL.
    Null,
    /// Keep the last `keep_last` characters, replace the others with `mask_char`. A value not
    /// longer than `keep_last` is masked entirely.
    Partial {
        /// Characters (Unicode scalar values) kept at the end (`keep_last`, default 4).
        keep_last: usize,
        /// The replacement character (`char`, default `*`).
        mask_char: char,
    },
    /// HMAC-SHA256 under the masking key, lowercase hex, optionally cut to `length` chars.
    /// Deterministic, so joins and key columns still work. With a `salt`, under a key derived
    /// from the masking key and the salt: one SSN then has different pseudonyms in tables with
    /// different salts (no join across them), the same within a salt.
    Hmac {
        /// Hex characters kept (8 to 64); `None`: all 64.
        length: Option<usize>,
        /// The salt whose derived key masks (see [`Masker::with_salts`]); `None`: the masking key.
        salt: Option<Arc<str>>,
    },
    /// Dates and timestamps become January 1 of their year.
    Year,
}

/// The shortest HMAC (hex characters) allowed on a key column.
pub const MIN_KEY_HMAC_LENGTH: usize = 16;

/// What a masked column stores, for its type in the target (`redshift::types::column_type`):
/// never narrower than the mask's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Text of at most `bytes` UTF-8 bytes: `VARCHAR(bytes)`.
    Text {
        /// The widest output, in bytes.
        bytes: u32,
    },
    /// Text as long as the source text, in characters, each of them possibly wider in bytes
    /// than the one it replaces: the type of the source column's text.
    SourceText,
    /// A value of the source column's own type (or NULL): that type.
    SourceType,
}

/// Why a mask could not apply to a value (the record is rejected; the value is never named).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// `hmac` without a masking key (a `Masker` built without one).
    #[error("an hmac mask is configured but no masking key is set")]
    NoKey,
    /// `year` on a value that is no date, timestamp, or text of one.
    #[error("the year mask needs a date or timestamp")]
    NotADate,
}

impl MaskError {
    /// The reject rule: `mask_key` or `mask_year`.
    pub fn rule(self) -> Rule {
        match self {
            MaskError::NoKey => Rule::MaskKey,
            MaskError::NotADate => Rule::MaskYear,
        }
    }
}

impl Mask {
    /// The mask's kind.
    pub fn kind(&self) -> MaskKind {
        match self {
            Mask::Redact { .. } => MaskKind::Redact,
            Mask::Null => MaskKind::Null,
            Mask::Partial { .. } => MaskKind::Partial,
            Mask::Hmac { .. } => MaskKind::Hmac,
            Mask::Year => MaskKind::Year,
        }
    }

    /// The kind's name (`redact`, `null`, `partial`, `hmac`, `year`).
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Safe on a key column: deterministic and keeps distinct keys distinct — an HMAC of at
    /// least [`MIN_KEY_HMAC_LENGTH`] hex characters (64 bits: the chance that two of a billion
    /// keys collide is under 3 %; at 8 characters two patients merge after ~77,000 keys).
    pub fn keeps_keys_distinct(&self) -> bool {
        match self {
            Mask::Hmac { length, .. } => length.is_none_or(|n| n >= MIN_KEY_HMAC_LENGTH),
            Mask::Redact { .. } | Mask::Null | Mask::Partial { .. } | Mask::Year => false,
        }
    }

    /// Which masks [`Mask::keeps_keys_distinct`] allows, for the message that refuses another.
    pub fn key_safe_masks() -> String {
        format!("only `hmac` (with a `length` of at least {MIN_KEY_HMAC_LENGTH}, or none) keeps them distinct")
    }

    /// Whether it needs the masking key (a pipeline without one refuses the config).
    pub fn needs_key(&self) -> bool {
        match self {
            Mask::Hmac { .. } => true,
            Mask::Redact { .. } | Mask::Null | Mask::Partial { .. } | Mask::Year => false,
        }
    }

    /// The salt whose derived key it masks under, if any ([`Masker::with_salts`] derives one
    /// key per salt in use).
    pub fn salt(&self) -> Option<&Arc<str>> {
        match self {
            Mask::Hmac { salt, .. } => salt.as_ref(),
            Mask::Redact { .. } | Mask::Null | Mask::Partial { .. } | Mask::Year => None,
        }
    }

    /// What the masked column stores.
    pub fn stored(&self) -> Stored {
        let bytes = |n: usize| Stored::Text { bytes: u32::try_from(n).unwrap_or(u32::MAX) };
        match self {
            Mask::Hmac { length, .. } => bytes(length.unwrap_or(64)),
            Mask::Redact { with } => bytes(with.len()),
            // The mask character may be wider than what it replaces.
            Mask::Partial { .. } => Stored::SourceText,
            Mask::Null | Mask::Year => Stored::SourceType,
        }
    }

    /// Mask `value` (`keys`: the masking keys, for `hmac`). NULL stays NULL.
    ///
    /// Errors: [`MaskError::NoKey`] for `hmac` when `keys` has no key (for its salt);
    /// [`MaskError::NotADate`] for `year` on anything but a date, a timestamp or their text.
    pub fn apply<'a>(&self, keys: &Masker, value: Value<'a>) -> Result<Value<'a>, MaskError> {
        if value.is_null() {
            return Ok(value);
        }
        Ok(match self {
            Mask::Null => Value::Null,
            Mask::Redact { with } => Value::Text(Cow::Owned(with.clone())),
            Mask::Partial { keep_last, mask_char } => {
                let text = value.text();
                let count = text.chars().count();
                let keep = if count > *keep_last { *keep_last } else { 0 };
                let mut out = String::with_capacity(text.len());
                out.extend(std::iter::repeat_n(*mask_char, count - keep));
                out.extend(text.chars().skip(count - keep));
                Value::Text(Cow::Owned(out))
            }
            Mask::Hmac { length, salt } => {
                let mut digest = keys.hmac_hex_salted(value.text().as_bytes(), salt.as_ref())?;
                if let Some(length) = length {
                    digest.truncate(*length);
                }
                Value::Text(Cow::Owned(digest))
            }
            Mask::Year => match value {
                Value::Date(days) => Value::Date(temporal::year_start_of_date(days).ok_or(MaskError::NotADate)?),
                Value::Timestamp(micros) => {
                    Value::Timestamp(temporal::year_start_of_timestamp(micros).ok_or(MaskError::NotADate)?)
                }
                Value::Text(text) => {
                    let days = temporal::parse_date(&text)
                        .or_else(|| {
                            temporal::parse_timestamp(&text)
                                .and_then(|m| i32::try_from(m.div_euclid(temporal::MICROS_PER_DAY)).ok())
                        })
                        .ok_or(MaskError::NotADate)?;
                    Value::Date(temporal::year_start_of_date(days).ok_or(MaskError::NotADate)?)
                }
                _ => return Err(MaskError::NotADate),
            },
        })
    }
}

/// A mask as the config writes it: `mask = "hmac"` or
/// `mask = { type = "partial", keep_last = 4, char = "#" }` (`[tables.columns.<name>]`,
/// `[tables.detect]`). Unknown fields are refused while parsing; [`RawMask::build`] checks the
/// rest.
#[derive(Default)]
pub(crate) struct RawMask {
    kind: String,
    with: Option<String>,
    keep_last: Option<usize>,
    mask_char: Option<String>,
    length: Option<usize>,
    salt: Option<String>,
}

impl RawMask {
    /// The mask, or a message for the config error (naming fields and kinds, never a value):
    /// an unknown `type`, a field the kind does not take, or a setting out of range.
    pub(crate) fn build(self) -> Result<Mask, String> {
        let Some(kind) = MaskKind::parse(&self.kind) else {
            let names: Vec<&str> = MaskKind::ALL.iter().map(|k| k.name()).collect();
            let (last, first) = names.split_last().expect("there are mask kinds");
            return Err(format!("unknown mask type `{}`; expected {} or {last}", self.kind, first.join(", ")));
        };
        for (name, present) in [
            ("with", self.with.is_some()),
            ("keep_last", self.keep_last.is_some()),
            ("char", self.mask_char.is_some()),
            ("length", self.length.is_some()),
            ("salt", self.salt.is_some()),
        ] {
            if present && !kind.fields().contains(&name) {
                return Err(format!("`{name}` does not apply to mask type `{}`", self.kind));
            }
        }
        Ok(match kind {
            MaskKind::Redact => Mask::Redact { with: self.with.unwrap_or_else(|| "REDACTED".into()) },
            MaskKind::Null => Mask::Null,
            MaskKind::Year => Mask::Year,
            MaskKind::Partial => {
                let mask_char = match self.mask_char.as_deref() {
                    None => '*',
                    Some(s) if s.chars().count() == 1 => s.chars().next().unwrap_or('*'),
                    Some(_) => return Err("`char` must be exactly one character".into()),
                };
                Mask::Partial { keep_last: self.keep_last.unwrap_or(4), mask_char }
            }
            MaskKind::Hmac => {
                if self.salt.as_deref().is_some_and(str::is_empty) {
                    return Err("hmac `salt` must not be empty".into());
                }
                match self.length {
                    Some(n) if !(8..=64).contains(&n) => {
                        return Err("hmac `length` must be 8 to 64 hex characters".into());
                    }
                    length => Mask::Hmac { length, salt: self.salt.map(Arc::from) },
                }
            }
        })
    }
}

impl<'de> Deserialize<'de> for RawMask {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMask;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mask name or a table with `type`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMask, E> {
                Ok(RawMask { kind: v.to_string(), ..RawMask::default() })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMask, A::Error> {
                let mut mask = RawMask::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "type" => mask.kind = map.next_value()?,
                        "with" => mask.with = Some(map.next_value()?),
                        "keep_last" => mask.keep_last = Some(map.next_value()?),
                        "char" => mask.mask_char = Some(map.next_value()?),
                        "length" => mask.length = Some(map.next_value()?),
                        "salt" => mask.salt = Some(map.next_value()?),
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["type", "with", "keep_last", "char", "length", "salt"],
                            ));
                        }
                    }
                }
                if mask.kind.is_empty() {
                    return Err(de::Error::missing_field("type"));
                }
                Ok(mask)
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::temporal::{parse_date, parse_timestamp};

    fn text(s: &str) -> Value<'_> {
        Value::Text(Cow::Borrowed(s))
    }

    #[test]
    fn hmac_is_deterministic_and_truncates() {
        let masker = Masker::new(Some(b"k"));
        let a = masker.apply(&Mask::Hmac { length: None, salt: None }, text("123-45-6789")).unwrap();
        let b = masker.apply(&Mask::Hmac { length: None, salt: None }, text("123-45-6789")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.text().len(), 64);
        let short = masker.apply(&Mask::Hmac { length: Some(16), salt: None }, text("123-45-6789")).unwrap();
        assert_eq!(short.text(), &a.text()[..16]);
        assert_eq!(Masker::new(None).apply(&Mask::Hmac { length: None, salt: None }, text("x")), Err(MaskError::NoKey));
    }

    #[test]
    fn partial_never_reveals_a_short_value() {
        let m = Masker::new(None);
        let partial = Mask::Partial { keep_last: 4, mask_char: '*' };
        assert_eq!(m.apply(&partial, text("123-45-6789")).unwrap().text(), "*******6789");
        assert_eq!(m.apply(&partial, text("abcd")).unwrap().text(), "****");
        assert_eq!(m.apply(&partial, text("Zoë Ångström")).unwrap().text(), "********tröm");
    }

    #[test]
    fn year_and_simple_masks() {
        let m = Masker::new(None);
        let dob = Value::Timestamp(parse_timestamp("1958-07-21T13:45:30.457").unwrap());
        assert_eq!(m.apply(&Mask::Year, dob).unwrap().text(), "1958-01-01 00:00:00.000000");
        let date = Value::Date(parse_date("2001-12-31").unwrap());
        assert_eq!(m.apply(&Mask::Year, date).unwrap().text(), "2001-01-01");
        assert_eq!(m.apply(&Mask::Year, text("1990-05-06")).unwrap().text(), "1990-01-01");
        assert_eq!(m.apply(&Mask::Year, text("not a date")), Err(MaskError::NotADate));
        assert_eq!(m.apply(&Mask::Year, Value::Int(5)), Err(MaskError::NotADate));
        assert!(m.apply(&Mask::Null, text("x")).unwrap().is_null());
        assert_eq!(m.apply(&Mask::Redact { with: "***".into() }, text("x")).unwrap().text(), "***");
        assert!(m.apply(&Mask::Redact { with: "***".into() }, Value::Null).unwrap().is_null());
    }

    #[test]
    fn every_kind_is_configured_by_its_name() {
        for kind in MaskKind::ALL {
            let mask = RawMask { kind: kind.name().into(), ..RawMask::default() }.build().unwrap();
            assert_eq!(mask.kind(), kind);
        }
        let unknown = RawMask { kind: "shuffle".into(), ..RawMask::default() }.build().unwrap_err();
        assert_eq!(unknown, "unknown mask type `shuffle`; expected redact, null, partial, hmac or year");
    }

    #[test]
    fn each_kind_says_what_its_column_stores() {
        assert_eq!(Mask::Hmac { length: None, salt: None }.stored(), Stored::Text { bytes: 64 });
        assert_eq!(Mask::Hmac { length: Some(16), salt: None }.stored(), Stored::Text { bytes: 16 });
        assert_eq!(Mask::Redact { with: "REDACTED".into() }.stored(), Stored::Text { bytes: 8 });
        assert_eq!(Mask::Partial { keep_last: 4, mask_char: '*' }.stored(), Stored::SourceText);
        assert_eq!(Mask::Null.stored(), Stored::SourceType);
        assert_eq!(Mask::Year.stored(), Stored::SourceType);
    }
}
