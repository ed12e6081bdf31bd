//! The reject rules: every reason a record can be dead-lettered for, as one [`Rule`] enum.
//!
//! A leaf (it imports nothing of the crate), below [`crate::row`]'s `Reason`, which pairs a
//! rule with a column, and below every module that rejects: the decoders and their error
//! enums (`DecodeError`, `PositionError`, `ConvertError`, `MaskError`, `SensitiveKind`, whose
//! `rule()` returns a `Rule`), `validate`, `transform`, `plan`, the loader and its apply SQL.
//!
//! A rule is written and read by its snake_case name: in dead letters (`{"column": …,
//! "rule": "pattern"}`), `cdc explain` lines, logs, and the apply SQL's `_cdc_reject` column,
//! whose report comes back as text and is parsed again ([`Rule::from_str`](std::str::FromStr)).
//! README.md, "Rule names", lists the same names (a test compares them).

use std::fmt;
use std::str::FromStr;

/// Why a record was rejected: one check it failed. Serialized and displayed as its
/// snake_case name ([`Rule::as_str`]); the comment of each variant says who rejects with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `base64`: the Kafka value (batch decoding) or a `bytes` field of the row
    /// (`ConvertError::Base64`) is not valid base64.
    Base64,
    /// `json`: the value is not UTF-8 JSON (`DecodeError::Json`).
    Json,
    /// `not_an_envelope`: JSON without Debezium's envelope fields (`DecodeError::NotAnEnvelope`).
    NotAnEnvelope,
    /// `schema`: the `schema` half is no Connect schema (`DecodeError::Schema`).
    Schema,
    /// `unknown_op`: an `op` other than r, c, u, d, t, m (`DecodeError::UnknownOp`).
    UnknownOp,
    /// `source`: a `source` block with fields of the wrong type (`DecodeError::Source`).
    Source,
    /// `source_position`: a source position field that is malformed (`PositionError`).
    SourcePosition,
    /// `row_image`: an upsert without its `after` image, or an image that is no JSON object.
    RowImage,
    /// `key_base64`: a Kafka key that is not base64, for a table without a configured `key`.
    KeyBase64,
    /// `key_json`: a Kafka key that is not JSON, for a table without a configured `key`.
    KeyJson,
    /// `missing_key`: no key columns at all, or a key column that is absent or null.
    MissingKey,
    /// `column_name`: a field name Redshift cannot name (empty, NUL, over 127 bytes).
    ColumnName,
    /// `duplicate_column`: two fields naming one column once lowercased.
    DuplicateColumn,
    /// `mask_on_key`: a mask that cannot keep keys distinct, on a key column taken from the
    /// Kafka key.
    MaskOnKey,
    /// `unknown_column`: an upsert without a column its table's config masks (a misspelling
    /// until shown otherwise).
    UnknownColumn,
    /// `detected_ssn`: `[tables.detect]` (`policy = "reject"`) found an SSN's shape.
    DetectedSsn,
    /// `detected_email`: `[tables.detect]` found an e-mail address.
    DetectedEmail,
    /// `detected_phone`: `[tables.detect]` found a phone number.
    DetectedPhone,
    /// `detected_date`: `[tables.detect]` found a date written as text.
    DetectedDate,
    /// `unroutable`: a data topic no table routes, with `unroutable = "reject"`.
    Unroutable,
    /// `truncate`: an op `t`, with `on_truncate = "reject"`.
    Truncate,
    /// `message`: an op `m`, with `on_message = "reject"`.
    Message,
    /// `type`: a JSON type that does not fit the column type (`ConvertError::Type`).
    Type,
    /// `invalid_string`: a string escape that is no valid Unicode (`ConvertError::InvalidString`).
    InvalidString,
    /// `nul`: a NUL character, with `nul = "reject"` (`ConvertError::Nul`).
    Nul,
    /// `int_range`: an integer beyond its declared width (`ConvertError::IntRange`).
    IntRange,
    /// `decimal_range`: a decimal beyond 38 digits (`ConvertError::DecimalRange`).
    DecimalRange,
    /// `date_range`: a date or timestamp outside years 1–9999 (`ConvertError::DateRange`).
    DateRange,
    /// `required`: a null in a `required` column (`validate::check`).
    Required,
    /// `max_bytes`: text longer than `max_bytes` UTF-8 bytes (`validate::check`).
    MaxBytes,
    /// `pattern`: text the column's `pattern` does not match (`validate::check`).
    Pattern,
    /// `one_of`: text outside the column's `one_of` set (`validate::check`).
    OneOf,
    /// `min`: a value below (or not comparable with) the column's `min` (`validate::check`).
    Min,
    /// `max`: a value above (or not comparable with) the column's `max` (`validate::check`).
    Max,
    /// `not_future`: a date or timestamp after the invocation's clock, or no date at all
    /// (`validate::check`).
    NotFuture,
    /// `mask_year`: a `year` mask on a value that is no date (`MaskError::NotADate`).
    MaskYear,
    /// `mask_key`: an `hmac` mask without a masking key (`MaskError::NoKey`).
    MaskKey,
    /// `time_range`: a time of day outside 00:00:00–24:00:00 (`ConvertError::TimeRange`).
    TimeRange,
    /// `infinity`: PostgreSQL's `±infinity` date or timestamp (`ConvertError::Infinity`).
    Infinity,
    /// `unsupported_type`: a logical type the pipeline does not decode
    /// (`ConvertError::Unsupported`).
    UnsupportedType,
    /// `unavailable_value`: Debezium's unavailable-value placeholder in a key column
    /// (transform), or kept in a column of a row the target does not hold (the apply SQL).
    UnavailableValue,
    /// `tombstone_key`: a tombstone whose Kafka key does not carry its table's `key`, and
    /// whose delete event the batch does not show.
    TombstoneKey,
    /// `position_regressed`: a change whose order against the latest of its key (in the batch
    /// or in the target) cannot be known.
    PositionRegressed,
    /// `stale_fill`: values filled in from an earlier change of the batch that is not newer
    /// than the row the target holds (the apply SQL).
    StaleFill,
    /// `target_table_missing`: the target table does not exist (loader).
    TargetTableMissing,
    /// `missing_metadata_column`: the target lacks one of the `_cdc_*` columns (loader).
    MissingMetadataColumn,
    /// `delete_ledger_missing`: a delete that needs the schema's delete ledger, which does not
    /// exist (the apply SQL).
    DeleteLedgerMissing,
    /// `drift`: a source column the target lacks, under `drift = "dlq"` (loader).
    Drift,
    /// `varchar_length`: text longer than its VARCHAR or CHAR column, in bytes (loader).
    VarcharLength,
    /// `decimal_scale`: more fractional digits than the target column keeps (loader).
    DecimalScale,
    /// `decimal_precision`: more integer digits than the target column holds (loader).
    DecimalPrecision,
    /// `integer_range`: outside the target integer column's range (loader).
    IntegerRange,
    /// `float_precision`: a number the target float column would not give back exactly
    /// (loader).
    FloatPrecision,
    /// `not_a_number`: NaN or ±Infinity into a DECIMAL or integer column (loader).
    NotANumber,
    /// `char_single_byte`: a multibyte character in a CHAR column (loader).
    CharSingleByte,
    /// `not_null`: a null in a NOT NULL column (loader).
    NotNull,
    /// `row_too_large`: a row too large for one Data API statement (SQL rendering).
    RowTooLarge,
    /// `statement_too_large`: a table whose column lists alone make a statement too large
    /// (SQL rendering).
    StatementTooLarge,
    /// `rejected_by_database`: the row the database refused, isolated by bisection (loader).
    RejectedByDatabase,
    /// `copy_unsupported_value`: a value the staged COPY file cannot carry exactly into its
    /// column's type (a kind the column takes only as a SQL literal), on a `load = "copy"`
    /// table (loader).
    CopyUnsupportedValue,
    /// `converter_string`: a value Kafka Connect's `StringConverter` wrote (`Struct{…}`,
    /// `DecodeError::StringConverter`): the connector's `value.converter` is wrong.
    ConverterString,
    /// `unwrapped_record`: a flat row, as Debezium's `ExtractNewRecordState` ("unwrap")
    /// transform writes it (`DecodeError::Unwrapped`): it carries no op or source position.
    UnwrappedRecord,
    /// `converter_binary`: a schema-registry frame, Avro, Protobuf or JSON Schema under a
    /// Confluent or AWS Glue converter (`DecodeError::SchemaRegistryFrame`).
    ConverterBinary,
    /// `cast`: a value `[tables.change_schema] cast` cannot convert exactly (decoding).
    Cast,
    /// `avro_schema_unknown`: a schema-registry frame whose schema the registry does not have
    /// (batch decoding).
    AvroSchemaUnknown,
    /// `avro_schema`: a registry schema that is no Avro schema, or has a type the pipeline does
    /// not read (batch decoding).
    AvroSchema,
    /// `avro_data`: a frame cut short, or a datum that does not match its schema (batch
    /// decoding).
    AvroData,
    /// `registry_json_format`: a record the event source mapping's schema registry integration
    /// delivered as JSON (`EventRecordFormat` `JSON`), whose Debezium types cannot be read
    /// exactly (batch decoding).
    RegistryJsonFormat,
}

impl Rule {
    /// Every rule, in README.md's order ("Rule names").
    pub const ALL: [Rule; 68] = [
        Rule::Base64,
        Rule::Json,
        Rule::NotAnEnvelope,
        Rule::Schema,
        Rule::UnknownOp,
        Rule::Source,
        Rule::SourcePosition,
        Rule::RowImage,
        Rule::KeyBase64,
        Rule::KeyJson,
        Rule::MissingKey,
        Rule::ColumnName,
        Rule::DuplicateColumn,
        Rule::MaskOnKey,
        Rule::UnknownColumn,
        Rule::DetectedSsn,
        Rule::DetectedEmail,
        Rule::DetectedPhone,
        Rule::DetectedDate,
        Rule::Unroutable,
        Rule::Truncate,
        Rule::Message,
        Rule::Type,
        Rule::InvalidString,
        Rule::Nul,
        Rule::IntRange,
        Rule::DecimalRange,
        Rule::DateRange,
        Rule::Required,
        Rule::MaxBytes,
        Rule::Pattern,
        Rule::OneOf,
        Rule::Min,
        Rule::Max,
        Rule::NotFuture,
        Rule::MaskYear,
        Rule::MaskKey,
        Rule::TimeRange,
        Rule::Infinity,
        Rule::UnsupportedType,
        Rule::UnavailableValue,
        Rule::TombstoneKey,
        Rule::PositionRegressed,
        Rule::StaleFill,
        Rule::TargetTableMissing,
        Rule::MissingMetadataColumn,
        Rule::DeleteLedgerMissing,
        Rule::Drift,
        Rule::VarcharLength,
        Rule::DecimalScale,
        Rule::DecimalPrecision,
        Rule::IntegerRange,
        Rule::FloatPrecision,
        Rule::NotANumber,
        Rule::CharSingleByte,
        Rule::NotNull,
        Rule::RowTooLarge,
        Rule::StatementTooLarge,
        Rule::RejectedByDatabase,
        Rule::CopyUnsupportedValue,
        Rule::ConverterString,
        Rule::UnwrappedRecord,
        Rule::ConverterBinary,
        Rule::Cast,
        Rule::AvroSchemaUnknown,
        Rule::AvroSchema,
        Rule::AvroData,
        Rule::RegistryJsonFormat,
    ];

    /// The rule's name as dead letters, logs and README.md write it: snake_case ASCII, short
    /// enough for the apply SQL's `_cdc_reject VARCHAR(32)`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::Base64 => "base64",
            Rule::Json => "json",
            Rule::NotAnEnvelope => "not_an_envelope",
            Rule::Schema => "schema",
            Rule::UnknownOp => "unknown_op",
            Rule::Source => "source",
            Rule::SourcePosition => "source_position",
            Rule::RowImage => "row_image",
            Rule::KeyBase64 => "key_base64",
            Rule::KeyJson => "key_json",
            Rule::MissingKey => "missing_key",
            Rule::ColumnName => "column_name",
            Rule::DuplicateColumn => "duplicate_column",
            Rule::MaskOnKey => "mask_on_key",
            Rule::UnknownColumn => "unknown_column",
            Rule::DetectedSsn => "detected_ssn",
            Rule::DetectedEmail => "detected_email",
            Rule::DetectedPhone => "detected_phone",
            Rule::DetectedDate => "detected_date",
            Rule::Unroutable => "unroutable",
            Rule::Truncate => "truncate",
            Rule::Message => "message",
            Rule::Type => "type",
            Rule::InvalidString => "invalid_string",
            Rule::Nul => "nul",
            Rule::IntRange => "int_range",
            Rule::DecimalRange => "decimal_range",
            Rule::DateRange => "date_range",
            Rule::Required => "required",
            Rule::MaxBytes => "max_bytes",
            Rule::Pattern => "pattern",
            Rule::OneOf => "one_of",
            Rule::Min => "min",
            Rule::Max => "max",
            Rule::NotFuture => "not_future",
            Rule::MaskYear => "mask_year",
            Rule::MaskKey => "mask_key",
            Rule::TimeRange => "time_range",
            Rule::Infinity => "infinity",
            Rule::UnsupportedType => "unsupported_type",
            Rule::UnavailableValue => "unavailable_value",
            Rule::TombstoneKey => "tombstone_key",
            Rule::PositionRegressed => "position_regressed",
            Rule::StaleFill => "stale_fill",
            Rule::TargetTableMissing => "target_table_missing",
            Rule::MissingMetadataColumn => "missing_metadata_column",
            Rule::DeleteLedgerMissing => "delete_ledger_missing",
            Rule::Drift => "drift",
            Rule::VarcharLength => "varchar_length",
            Rule::DecimalScale => "decimal_scale",
            Rule::DecimalPrecision => "decimal_precision",
            Rule::IntegerRange => "integer_range",
            Rule::FloatPrecision => "float_precision",
            Rule::NotANumber => "not_a_number",
            Rule::CharSingleByte => "char_single_byte",
            Rule::NotNull => "not_null",
            Rule::RowTooLarge => "row_too_large",
            Rule::StatementTooLarge => "statement_too_large",
            Rule::CopyUnsupportedValue => "copy_unsupported_value",
            Rule::Cast => "cast",
            Rule::AvroSchemaUnknown => "avro_schema_unknown",
            Rule::AvroSchema => "avro_schema",
            Rule::AvroData => "avro_data",
            Rule::RegistryJsonFormat => "registry_json_format",
            Rule::RejectedByDatabase => "rejected_by_database",
            Rule::ConverterString => "converter_string",
            Rule::UnwrappedRecord => "unwrapped_record",
            Rule::ConverterBinary => "converter_binary",
        }
    }

    /// For the rules that mean "the connector is configured otherwise than this pipeline
    /// reads", the Debezium or Kafka Connect setting to change, as `cdc explain` prints it
    /// (`hints`) and README "Debezium connector configuration" lists it. `None` for every rule
    /// about one record's content. `cdc connector-config` writes a configuration that avoids
    /// all of them.
    pub const fn remedy(self) -> Option<&'static str> {
        Some(match self {
            Rule::ConverterString => {
                "set value.converter=org.apache.kafka.connect.json.JsonConverter and \
                 value.converter.schemas.enable=true in the connector configuration (MSK Connect's \
                 default worker configuration uses StringConverter)"
            }
            Rule::UnwrappedRecord => {
                "remove the ExtractNewRecordState transform (transforms=unwrap) from the connector \
                 configuration: the pipeline needs Debezium's change event envelope (op, source \
                 position) to order and apply changes"
            }
            Rule::ConverterBinary => {
                "for Avro, set the functions' SCHEMA_REGISTRY (glue or confluent, template parameter \
                 SchemaRegistry) so that they read the registry's schemas; otherwise set \
                 value.converter=org.apache.kafka.connect.json.JsonConverter and \
                 value.converter.schemas.enable=true in the connector configuration instead of a \
                 Protobuf/JSON Schema registry converter (Confluent or AWS Glue)"
            }
            Rule::RegistryJsonFormat => {
                "set the event source mapping's SchemaRegistryConfig EventRecordFormat to SOURCE \
                 (the template does): as JSON, Lambda delivers an Avro record without the Connect \
                 types that say how to read its decimals and times exactly"
            }
            Rule::KeyJson => {
                "set key.converter=org.apache.kafka.connect.json.JsonConverter and \
                 key.converter.schemas.enable=true in the connector configuration (a StringConverter \
                 key reads Struct{…})"
            }
            _ => return None,
        })
    }
}

/// A text that names no [`Rule`]. It carries no text: what failed to parse may be anything
/// a warehouse or an older dead letter returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a rule name")]
pub struct UnknownRule;

impl FromStr for Rule {
    type Err = UnknownRule;

    /// The rule named `name` exactly as [`Rule::as_str`] writes it (case-sensitive);
    /// [`UnknownRule`] otherwise. Reads dead letters and the apply SQL's report, not records:
    /// a linear search is plenty.
    fn from_str(name: &str) -> Result<Rule, UnknownRule> {
        Rule::ALL.into_iter().find(|rule| rule.as_str() == name).ok_or(UnknownRule)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Rule {
    /// A rule from its name; an unknown name is an error that does not quote it.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Rule, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Rule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rule name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Rule, E> {
                name.parse().map_err(|_| E::custom("unknown rule name"))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_distinct_parse_back_and_fit_the_reject_column() {
        let names: BTreeSet<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Rule::ALL.len(), "two rules share a name");
        // In declaration order with no gap: a variant left out of ALL shows here unless it is
        // the last one (and then README's list shows it).
        assert!(Rule::ALL.iter().enumerate().all(|(i, rule)| *rule as usize == i), "ALL is not every variant in order");
        for rule in Rule::ALL {
            assert_eq!(rule.as_str().parse::<Rule>(), Ok(rule));
            assert_eq!(rule.to_string(), rule.as_str());
            assert!(rule.as_str().len() <= 32, "{rule} does not fit _cdc_reject VARCHAR(32)");
            assert!(rule.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
        assert_eq!("retired_rule".parse::<Rule>(), Err(UnknownRule));
        assert_eq!("Pattern".parse::<Rule>(), Err(UnknownRule), "names are case-sensitive");
        assert_eq!("".parse::<Rule>(), Err(UnknownRule));
    }

    #[test]
    fn serde_reads_and_writes_the_name_and_never_quotes_an_unknown_one() {
        for rule in Rule::ALL {
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{}\"", rule.as_str()));
            assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
        }
        let error = serde_json::from_str::<Rule>("\"219-09-9999\"").unwrap_err().to_string();
        assert!(!error.contains("219"), "{error}");
        assert!(serde_json::from_str::<Rule>("7").is_err());
    }

    /// The rules that mean "the connector writes something else" name a setting; no rule about
    /// one record's content pretends to.
    #[test]
    fn remedies_name_the_connector_setting() {
        let with_remedy: Vec<Rule> = Rule::ALL.into_iter().filter(|r| r.remedy().is_some()).collect();
        assert_eq!(
            with_remedy,
            [
                Rule::KeyJson,
                Rule::ConverterString,
                Rule::UnwrappedRecord,
                Rule::ConverterBinary,
                Rule::RegistryJsonFormat
            ]
        );
        for rule in [Rule::ConverterString, Rule::ConverterBinary] {
            assert!(rule.remedy().unwrap().contains("value.converter=org.apache.kafka.connect.json.JsonConverter"));
            assert!(rule.remedy().unwrap().contains("value.converter.schemas.enable=true"));
        }
        assert!(Rule::KeyJson.remedy().unwrap().contains("key.converter=org.apache.kafka.connect.json.JsonConverter"));
        assert!(Rule::UnwrappedRecord.remedy().unwrap().contains("transforms=unwrap"));
    }

    /// README.md's "Rule names" paragraph lists exactly the rules there are.
    #[test]
    fn readme_lists_every_rule_and_no_other() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
        let start = readme.find("**Rule names**").expect("README has a \"Rule names\" paragraph");
        let paragraph = &readme[start..];
        let paragraph = &paragraph[..paragraph.find("\n\n").unwrap_or(paragraph.len())];
        let listed: BTreeSet<&str> = paragraph.split('`').skip(1).step_by(2).collect();
        let rules: BTreeSet<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        let missing: Vec<_> = rules.difference(&listed).collect();
        let unknown: Vec<_> = listed.difference(&rules).collect();
        assert!(missing.is_empty() && unknown.is_empty(), "README lacks {missing:?}; names no rule {unknown:?}");
    }
}
