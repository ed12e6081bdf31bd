//! The masking keys: the HMAC key, pre-keyed once, and the key derived for each salt in use.
//! What each mask does with them is [`Mask::apply`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Mask, MaskError};
use crate::value::Value;

/// The shortest masking key accepted: 32 bytes, SHA-256's output size (RFC 2104 §3: "less
/// than L bytes is strongly discouraged as it would decrease the security strength").
pub const MIN_KEY_BYTES: usize = 32;

/// Holds the HMAC key, pre-keyed once so each value costs one clone and two hash passes; and
/// the key derived for each salt in use.
#[derive(Clone)]
pub struct Masker {
    hmac: Option<Hmac<Sha256>>,
    salted: HashMap<Arc<str>, Hmac<Sha256>>,
}

impl fmt::Debug for Masker {
    /// Never print the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker").field("has_key", &self.hmac.is_some()).finish()
    }
}

/// HKDF's extract salt for per-column salt keys: fixed, so a key and a salt always give one key.
pub const SALT_KEY_DOMAIN: &[u8] = b"msk-redshift-cdc/hmac-mask-salt/v1";

impl Masker {
    /// `key`: the HMAC secret's bytes (short keys are refused by the caller).
    pub fn new(key: Option<&[u8]>) -> Masker {
        Masker::with_salts(key, std::iter::empty())
    }

    /// A masker that also holds, for each of `salts`, a key derived with HKDF-SHA256
    /// (RFC 5869: <https://www.rfc-editor.org/rfc/rfc5869>) from the masking key as input key
    /// material, the fixed extract salt [`SALT_KEY_DOMAIN`] and the column's salt as `info`.
    /// The masking key is HKDF's *message* here, never its HMAC key, so no data pseudonym
    /// HMAC(key, text) can equal a derived key (an unsalted column must not reveal one).
    pub fn with_salts<'s>(key: Option<&[u8]>, salts: impl IntoIterator<Item = &'s Arc<str>>) -> Masker {
        let keyed = |k: &[u8]| Hmac::<Sha256>::new_from_slice(k).expect("HMAC accepts keys of any length");
        let hmac = key.map(keyed);
        let salted = match key {
            Some(key) => {
                let hkdf = hkdf::Hkdf::<Sha256>::new(Some(SALT_KEY_DOMAIN), key);
                salts
                    .into_iter()
                    .map(|salt| {
                        let mut derived = [0u8; 32];
                        hkdf.expand(salt.as_bytes(), &mut derived).expect("32 bytes is a valid HKDF-SHA256 length");
                        (salt.clone(), keyed(&derived))
                    })
                    .collect()
            }
            None => HashMap::new(),
        };
        Masker { hmac, salted }
    }

    /// Whether a masking key is set (`hmac` masks need one).
    pub fn has_key(&self) -> bool {
        self.hmac.is_some()
    }

    /// Lowercase hex HMAC-SHA256 of `data` under the masking key: 64 characters.
    /// [`MaskError::NoKey`] without a key.
    pub fn hmac_hex(&self, data: &[u8]) -> Result<String, MaskError> {
        self.hmac_hex_salted(data, None)
    }

    /// Lowercase hex HMAC-SHA256 of `data`, under the key of `salt` when there is one;
    /// [`MaskError::NoKey`] without a key (or a salt this masker was not built with).
    pub(super) fn hmac_hex_salted(&self, data: &[u8], salt: Option<&Arc<str>>) -> Result<String, MaskError> {
        let keyed = match salt {
            Some(salt) => self.salted.get(salt),
            None => self.hmac.as_ref(),
        };
        let mut mac = keyed.cloned().ok_or(MaskError::NoKey)?;
        mac.update(data);
        let mut out = String::with_capacity(64);
        for byte in mac.finalize().into_bytes() {
            crate::digits::push_hex_byte(&mut out, byte);
        }
        Ok(out)
    }

    /// Mask `value` with `mask` under these keys: [`Mask::apply`] (errors are its).
    #[inline]
    pub fn apply<'a>(&self, mask: &Mask, value: Value<'a>) -> Result<Value<'a>, MaskError> {
        mask.apply(self, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let masker = Masker::new(Some(b"Jefe"));
        assert_eq!(
            masker.hmac_hex(b"what do ya want for nothing?").unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn debug_never_prints_the_key() {
        assert_eq!(format!("{:?}", Masker::new(Some(b"secret-key"))), "Masker { has_key: true }");
    }

    /// Review (issue 12): a salt's key was HMAC(key, "cdc-mask-salt:" ‖ salt) — the very function
    /// an unsalted `hmac` mask applies to column values (now HKDF with the key as its message). Whoever can put the text
    /// `cdc-mask-salt:<salt>` into any column masked by an unsalted, untruncated `hmac` (a name a
    /// patient types in a portal) reads the salt's key in hex from the masked table, and with it
    /// computes the salted pseudonym of every SSN (10^9 candidates) to undo the salted column.
    #[test]
    fn review_an_unsalted_pseudonym_never_reveals_a_salted_key() {
        let salt: Arc<str> = Arc::from("visits");
        let masker = Masker::with_salts(Some(&[7u8; 32]), [&salt]);
        let unsalted = Mask::Hmac { length: None, salt: None };
        let salted = Mask::Hmac { length: None, salt: Some(salt.clone()) };
        let stored = masker.apply(&unsalted, Value::Text("cdc-mask-salt:visits".into())).unwrap();
        let derived: Vec<u8> =
            (0..64).step_by(2).map(|i| u8::from_str_radix(&stored.text()[i..i + 2], 16).unwrap()).collect();
        let from_the_table = Masker::new(Some(&derived)).apply(&unsalted, Value::Text("219-09-9999".into())).unwrap();
        let in_the_salted_column = masker.apply(&salted, Value::Text("219-09-9999".into())).unwrap();
        assert_ne!(from_the_table, in_the_salted_column, "the salted key was read back from an unsalted pseudonym");
    }

    #[test]
    fn salts_give_each_table_its_own_pseudonyms() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("patients"), Arc::from("claims"));
        let masker = Masker::with_salts(Some(&[7u8; 32]), [&a, &b]);
        let mask = |salt: Option<&Arc<str>>| Mask::Hmac { length: None, salt: salt.cloned() };
        let plain = masker.apply(&mask(None), Value::Text("123-45-6789".into())).unwrap();
        let in_a = masker.apply(&mask(Some(&a)), Value::Text("123-45-6789".into())).unwrap();
        let in_b = masker.apply(&mask(Some(&b)), Value::Text("123-45-6789".into())).unwrap();
        assert!(plain != in_a && in_a != in_b && plain != in_b);
        assert_eq!(
            masker.apply(&mask(Some(&a)), Value::Text("123-45-6789".into())).unwrap(),
            in_a,
            "stable within a salt"
        );
    }
}
