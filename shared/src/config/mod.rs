//! Pipeline configuration: one TOML file, parsed strictly and validated at cold start.
//!
//! Every error names the file, the line and the key, so that a bad deploy fails loudly
//! before the first record is touched. An unknown key is an error, never ignored, and no
//! error echoes a value from the file ([`crate::redact::config_message`]). Without a file,
//! [`Config::default_routing`] routes every data topic to `public.<last topic segment>`.
//!
//! - `model.rs`: the built types every stage reads, and routing ([`Config::table_for_topic`]).
//! - `parse.rs`: the TOML (`Raw*` structs, `deny_unknown_fields`), the checks, [`ConfigError`]
//!   ([`Config::load`], [`Config::parse`]).
//!
//! The model sits low in the crate: it depends only on leaves ([`crate::column_type`] for
//! `type` hints, [`crate::mask`] for masks and their config form, [`crate::value`] for rule
//! bounds), so that the decoders, checks, transform and loader above it can all read it.

mod model;
mod parse;

pub use model::{
    ChangeSchema, ColumnConfig, Config, DeleteMode, Detect, DetectPolicy, DriftPolicy, LoadPath, NulPolicy, OpPolicy,
    PipelineOptions, Placeholder, Rules, SensitiveKind, TableConfig, TableName, TombstonePolicy, TopicPattern,
    UnroutablePolicy,
};
pub use parse::ConfigError;

// The masks are one module, their config form included, and bounds are values; kept at these
// paths for their users.
pub use crate::mask::{MIN_KEY_HMAC_LENGTH, Mask};
pub use crate::value::Bound;
