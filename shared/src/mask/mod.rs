//! Column masks, applied after validation and before a value can reach any output.
//!
//! NULL stays NULL under every mask: it reveals nothing. A mask that cannot apply to a
//! value (e.g. `year` on text that is no date) is an error, never a pass-through.
//!
//! Everything a mask kind is lives in one file, `kinds.rs`, as one exhaustive `match` per
//! question: its config form ([`MaskKind`]: the `type` name and the fields it takes; the
//! private `RawMask::build`), what it does to a value ([`Mask::apply`]), what the target column
//! stores ([`Mask::stored`], read by `redshift::types::column_type`), whether it may mask a key
//! ([`Mask::keeps_keys_distinct`]) and whether it needs the masking key ([`Mask::needs_key`],
//! [`Mask::salt`]). `masker.rs` holds the keys ([`Masker`]: the HMAC key, pre-keyed, and one
//! derived key per salt).
//!
//! A new mask is a [`MaskKind`] and a [`Mask`] variant, then the arms the compiler asks for in
//! `kinds.rs` (a new field of its config form also goes into `RawMask`), a test there, and its
//! row in README "Configuration" (the masks table).
//!
//! A leaf: the config model holds masks (`[tables.columns] mask`, `[tables.detect] mask`) and
//! the transform, the DDL and the loader read them, so it depends on none of them.

mod kinds;
mod masker;

pub(crate) use kinds::RawMask;
pub use kinds::{MIN_KEY_HMAC_LENGTH, Mask, MaskError, MaskKind, Stored};
pub use masker::{MIN_KEY_BYTES, Masker, SALT_KEY_DOMAIN};
