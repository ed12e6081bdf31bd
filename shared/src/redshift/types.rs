//! Column types for the target: from the Debezium schema, the value, and the mask (a masked
//! column stores the mask's output, e.g. 64 hex characters for `hmac`).

use crate::debezium::{ColumnType, FieldSchema};
use crate::mask::{Mask, Stored};
use crate::value::Value;

/// Redshift's longest VARCHAR, in bytes.
pub const MAX_VARCHAR_BYTES: u32 = 65_535;

/// Which database's DDL the column types (and `cdc ddl`'s `CREATE TABLE`) are written for.
/// Not the loader's [`Dialect`](super::dialect::Dialect): the loader always speaks Redshift
/// (the emulator reads Redshift's SQL); only the tables it loads into are created in the
/// database that runs behind the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlFlavor {
    /// Amazon Redshift: `VARBYTE`, `DISTSTYLE AUTO SORTKEY AUTO`.
    Redshift,
    /// PostgreSQL 15, as behind the local Data API emulator: `BYTEA`, no table options.
    Postgres,
}

fn varchar(bytes: u32) -> String {
    format!("VARCHAR({})", bytes.clamp(1, MAX_VARCHAR_BYTES))
}

/// Bytes a source string column can need in UTF-8: its length (in characters for
/// NVARCHAR, bytes for VARCHAR) times 4, the widest UTF-8 character.
fn text_type(field: Option<&FieldSchema>) -> String {
    match field.and_then(|f| f.source_length) {
        Some(length) => varchar(length.saturating_mul(4)),
        None => varchar(MAX_VARCHAR_BYTES),
    }
}

/// `DECIMAL(p, s)` for a source decimal of that precision, as Redshift can hold it: at most
/// 38 digits, and never 19. "DECIMAL values with 19 or fewer significant digits of precision
/// are stored internally as 8-byte integers" — `9999999999999999999` (19 nines) overflows a
/// DECIMAL(19,0) — "while DECIMAL values with 20 to 38 significant digits of precision are
/// stored as 16-byte integers" (Redshift Database Developer Guide, "Numeric types"). A source
/// DECIMAL(19, s) (SQL Server's `money` is DECIMAL(19,4)) therefore becomes DECIMAL(20, s);
/// 18 digits or fewer always fit 64 bits.
pub fn decimal(precision: u32, scale: u32) -> String {
    let precision = match precision.clamp(1, 38) {
        19 => 20,
        p => p,
    };
    format!("DECIMAL({precision}, {scale})")
}

fn from_column_type(ty: &ColumnType, field: Option<&FieldSchema>, flavor: DdlFlavor) -> Option<String> {
    Some(match ty {
        ColumnType::Boolean => "BOOLEAN".into(),
        ColumnType::Int(8 | 16) => "SMALLINT".into(),
        ColumnType::Int(32) => "INTEGER".into(),
        ColumnType::Int(_) => "BIGINT".into(),
        ColumnType::Float32 => "REAL".into(),
        ColumnType::Float64 => "DOUBLE PRECISION".into(),
        ColumnType::Decimal { scale, precision } => decimal(precision.unwrap_or(38), *scale),
        ColumnType::DecimalText { scale } => format!("DECIMAL(38, {})", scale.unwrap_or(10)),
        ColumnType::VariableScaleDecimal => "DECIMAL(38, 10)".into(),
        ColumnType::Date => "DATE".into(),
        ColumnType::Time(_) | ColumnType::TimeText => "TIME".into(),
        ColumnType::Timestamp(_) | ColumnType::TimestampText => "TIMESTAMP".into(),
        ColumnType::Uuid => "VARCHAR(36)".into(),
        ColumnType::Bytes => match flavor {
            DdlFlavor::Redshift => "VARBYTE".into(),
            DdlFlavor::Postgres => "BYTEA".into(),
        },
        ColumnType::String | ColumnType::Json | ColumnType::Composite => text_type(field),
        ColumnType::Untyped | ColumnType::Unsupported(_) => return None,
    })
}

fn from_value(value: &Value<'_>, flavor: DdlFlavor) -> String {
    match value {
        Value::Bool(_) => "BOOLEAN".into(),
        Value::Int(_) => "BIGINT".into(),
        Value::Float(_) => "DOUBLE PRECISION".into(),
        Value::Decimal(d) => format!("DECIMAL(38, {})", d.scale),
        Value::Date(_) => "DATE".into(),
        Value::Time(_) => "TIME".into(),
        Value::Timestamp(_) => "TIMESTAMP".into(),
        Value::Bytes(_) => from_column_type(&ColumnType::Bytes, None, flavor).unwrap_or_default(),
        Value::Text(_) | Value::Null | Value::Unavailable => varchar(MAX_VARCHAR_BYTES),
    }
}

/// The SQL type of a target column.
///
/// `field`: the Debezium schema of the column, when the message had one; `sample`: a value
/// of it (used when there is no schema); `mask`: the column's mask, whose [`Mask::stored`]
/// decides a masked column's type.
pub fn column_type(
    field: Option<&FieldSchema>,
    sample: Option<&Value<'_>>,
    mask: Option<&Mask>,
    flavor: DdlFlavor,
) -> String {
    match mask.map(Mask::stored) {
        Some(Stored::Text { bytes }) => return varchar(bytes),
        Some(Stored::SourceText) => return text_type(field),
        Some(Stored::SourceType) | None => {}
    }
    if let Some(ty) = field.and_then(|f| from_column_type(&f.ty, Some(f), flavor)) {
        return ty;
    }
    from_value(sample.unwrap_or(&Value::Null), flavor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debezium::TimeUnit;
    use std::sync::Arc;

    fn field(ty: ColumnType, source_length: Option<u32>) -> FieldSchema {
        FieldSchema { name: Arc::from("x"), column: Arc::from("x"), ty, optional: true, source_length }
    }

    #[test]
    fn schema_types_map_to_redshift() {
        let t = |ty, len| column_type(Some(&field(ty, len)), None, None, DdlFlavor::Redshift);
        assert_eq!(t(ColumnType::Int(32), None), "INTEGER");
        assert_eq!(t(ColumnType::Int(16), None), "SMALLINT");
        assert_eq!(t(ColumnType::Decimal { scale: 2, precision: Some(10) }, None), "DECIMAL(10, 2)");
        assert_eq!(t(ColumnType::Decimal { scale: 4, precision: Some(19) }, None), "DECIMAL(20, 4)", "64-bit at 19");
        assert_eq!(t(ColumnType::Decimal { scale: 0, precision: Some(18) }, None), "DECIMAL(18, 0)");
        assert_eq!(t(ColumnType::Timestamp(TimeUnit::Nanos), None), "TIMESTAMP");
        assert_eq!(t(ColumnType::String, Some(100)), "VARCHAR(400)");
        assert_eq!(t(ColumnType::String, None), "VARCHAR(65535)");
        assert_eq!(t(ColumnType::Bytes, None), "VARBYTE");
        assert_eq!(column_type(Some(&field(ColumnType::Bytes, None)), None, None, DdlFlavor::Postgres), "BYTEA");
    }

    #[test]
    fn masks_decide_the_type_of_masked_columns() {
        let ssn = field(ColumnType::String, Some(10));
        assert_eq!(
            column_type(Some(&ssn), None, Some(&Mask::Hmac { length: None, salt: None }), DdlFlavor::Redshift),
            "VARCHAR(64)"
        );
        assert_eq!(
            column_type(Some(&ssn), None, Some(&Mask::Hmac { length: Some(16), salt: None }), DdlFlavor::Redshift),
            "VARCHAR(16)"
        );
        let dob = field(ColumnType::Timestamp(TimeUnit::Millis), None);
        assert_eq!(column_type(Some(&dob), None, Some(&Mask::Year), DdlFlavor::Redshift), "TIMESTAMP");
        let id = field(ColumnType::Int(32), None);
        assert_eq!(
            column_type(Some(&id), None, Some(&Mask::Redact { with: "REDACTED".into() }), DdlFlavor::Redshift),
            "VARCHAR(8)"
        );
    }

    #[test]
    fn without_a_schema_the_value_decides() {
        assert_eq!(column_type(None, Some(&Value::Int(1)), None, DdlFlavor::Redshift), "BIGINT");
        assert_eq!(column_type(None, None, None, DdlFlavor::Redshift), "VARCHAR(65535)");
    }
}
