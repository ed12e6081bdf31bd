//! The S3 dead-letter store: JSON Lines objects, one per invocation, stage and
//! topic-partition, under
//! `<prefix>/<stage>/<topic>/<partition>/<yyyy>/<mm>/<dd>/<first>-<last>-<request id>.jsonl`
//! (offsets zero-padded to 20 digits, so key order is offset order).
//!
//! Each line carries the record exactly as received (base64 key and value, headers,
//! coordinates) and why it failed (stage, column and rule names, error class) — never a
//! decoded value. The reader also accepts what an MSK or self-managed Kafka event source
//! mapping writes to an S3 on-failure destination: one JSON object whose `payload` is the
//! whole original event as an escaped JSON string (see [`read`]).
//!
//! Three parts: `format` (pure: the line, the keys, grouping into objects, reading an object
//! back), `on_failure` (pure: Lambda's on-failure records) and `store` (S3: write all or none,
//! read, archive, list, with one encryption decision). Their public items are re-exported
//! here: `dlq::Store`, `dlq::objects`, … is the one path to each.

mod format;
mod on_failure;
mod store;

pub use format::{
    Contents, Coordinates, DeadLetter, Failed, Object, ReadError, Summary, Writer, objects, read, summarize,
};
pub use on_failure::{OnFailureSummary, on_failure_event};
pub use store::{Listing, Page, Store, StoreError};
pub(crate) use store::{encrypted, error_code};
