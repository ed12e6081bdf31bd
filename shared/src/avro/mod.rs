//! Debezium records written by Kafka Connect's `AvroConverter` behind a schema registry: the
//! registry's wire format ([`frame`]), and the Avro datum turned into the JsonConverter's form
//! of the same change ([`connect`]), which the JSON decoder then reads as it reads every other
//! record — so an Avro change gives exactly the rows, positions, rules and masks its JSON twin
//! gives.
//!
//! Pure: no I/O. Fetching schemas from a registry (Confluent's REST API, AWS Glue's
//! `GetSchemaVersion`) and caching them is the caller's.

pub mod connect;
pub mod encode;
pub mod frame;

use crate::rule::Rule;

/// Why an Avro record could not be read. Every variant names a kind of failure and, where one
/// is known, the schema's id: never a byte of the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvroError {
    /// Bytes that open like a registry frame but are not a whole one (too short, an unknown
    /// header version or compression byte).
    #[error("not a schema registry frame: {0}")]
    Frame(&'static str),
    /// A Glue frame flagged zlib whose data does not inflate.
    #[error("the frame's zlib data does not inflate")]
    Compression,
    /// The registry's schema text is no Avro schema (a Protobuf or JSON Schema, or broken).
    #[error("schema {0} is not an Avro schema")]
    NotAvro(String),
    /// The datum does not decode with its schema, or bytes are left after it.
    #[error("the data does not match schema {0}")]
    Data(String),
    /// An Avro type the Connect mapping has no form for (e.g. `big-decimal`, `duration`).
    #[error("schema {schema} has a type the pipeline does not read: {kind}")]
    Unsupported {
        /// The schema's id.
        schema: String,
        /// The Avro type or logical type.
        kind: String,
    },
}

impl AvroError {
    /// The reject rule of a record this error stops.
    pub fn rule(&self) -> Rule {
        match self {
            AvroError::Frame(_) | AvroError::Compression | AvroError::Data(_) => Rule::AvroData,
            AvroError::NotAvro(_) | AvroError::Unsupported { .. } => Rule::AvroSchema,
        }
    }
}
