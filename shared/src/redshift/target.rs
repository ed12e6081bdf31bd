//! The target table as Redshift describes it, and the checks made against it before any SQL
//! is sent: metadata columns present, columns the target lacks (drift), VARCHAR limits.
//!
//! It only reads what `DescribeTable` returned (the loader describes, once per warm
//! container): it sends no SQL.

use std::collections::HashMap;

use super::sql::METADATA_COLUMNS;
use crate::config::TableName;
use crate::row::{Column, Reason};
use crate::rule::Rule;
use crate::value::{Decimal, Value};

/// One column of a target table, as the warehouse describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetColumn {
    /// The name exactly as the cluster reports it. Redshift folds unquoted and (by default)
    /// quoted identifiers to lowercase; with `enable_case_sensitive_identifier` on it keeps
    /// their case ("Names and identifiers", `enable_case_sensitive_identifier` in the Redshift
    /// Database Developer Guide). The pipeline writes lowercase names, so a column named
    /// `Email` on such a cluster is not the pipeline's `email`: it is drift, never a silent
    /// match that the SQL would then miss.
    pub name: String,
    /// The database's type name, e.g. `varchar`, `int4`, `timestamp`.
    pub type_name: String,
    /// For character types: the maximum length in bytes (Redshift counts bytes).
    pub max_bytes: Option<usize>,
    /// For `numeric`/`decimal`: (precision, scale).
    pub numeric: Option<(u32, u32)>,
    /// Declared NOT NULL (`ColumnMetadata.nullable` 0).
    pub not_null: bool,
}

impl TargetColumn {
    /// A column as `DescribeTable` reports it. The Data API's `ColumnMetadata` puts a
    /// character column's size in `precision` ("The precision value of a decimal number column,
    /// or the column length for a non-numeric column", API reference), and AWS's examples show
    /// `varchar(200)` as `length 0, precision 200`; PostgreSQL-based tools fill `length`. Either
    /// is read.
    pub fn described(
        name: &str,
        type_name: &str,
        length: i32,
        precision: i32,
        scale: i32,
        nullable: i32,
    ) -> TargetColumn {
        let lower = type_name.to_ascii_lowercase();
        let positive = |n: i32| u32::try_from(n).ok().filter(|n| *n > 0);
        let max_bytes =
            is_character_type(&lower).then(|| positive(length).or(positive(precision))).flatten().map(|n| n as usize);
        let numeric = matches!(lower.as_str(), "numeric" | "decimal")
            .then(|| positive(precision).map(|p| (p, u32::try_from(scale).unwrap_or(0))))
            .flatten();
        TargetColumn {
            name: name.to_string(),
            type_name: type_name.to_string(),
            max_bytes,
            numeric,
            not_null: nullable == 0,
        }
    }
}

/// A target table as the warehouse describes it (no columns: it does not exist).
#[derive(Debug, Clone)]
pub struct TargetTable {
    /// The table, as configured (`schema.table`).
    pub name: TableName,
    /// Its columns, in the order described.
    pub columns: Vec<TargetColumn>,
    by_name: HashMap<String, usize>,
}

impl TargetTable {
    /// The table `name` with `columns` (none for a table that does not exist).
    pub fn new(name: TableName, columns: Vec<TargetColumn>) -> TargetTable {
        let by_name = columns.iter().enumerate().map(|(i, c)| (c.name.clone(), i)).collect();
        TargetTable { name, columns, by_name }
    }

    /// Redshift's DescribeTable answers an empty column list for a table that does not exist.
    pub fn exists(&self) -> bool {
        !self.columns.is_empty()
    }

    /// The column named exactly `name` (see [`TargetColumn::name`] on case), if any.
    pub fn column(&self, name: &str) -> Option<&TargetColumn> {
        self.by_name.get(name).map(|&i| &self.columns[i])
    }

    /// Metadata columns the table lacks; the apply SQL needs all of them.
    pub fn missing_metadata_columns(&self) -> Vec<&'static str> {
        METADATA_COLUMNS.into_iter().filter(|c| self.column(c).is_none()).collect()
    }

    /// The subset of `columns` the table does not have.
    pub fn unknown<'c>(&self, columns: impl IntoIterator<Item = &'c str>) -> Vec<&'c str> {
        columns.into_iter().filter(|c| self.column(c).is_none()).collect()
    }

    /// Every reason the target refuses `columns` (a change's, or `cdc check`'s sample values)
    /// before any SQL is sent, in this order: `varchar_length` ([`TargetTable::too_long`]), the
    /// numeric rules ([`TargetTable::numeric_misfits`]), `char_single_byte`
    /// ([`TargetTable::multibyte_in_char`]), `not_null` ([`TargetTable::nulls_in_not_null`]).
    /// Columns the target lacks are not looked at (drift is the loader's to decide).
    pub fn misfits(&self, columns: &[Column<'_>]) -> Vec<Reason> {
        let named = |c: &str, rule| Reason::column(c.into(), rule);
        let mut reasons: Vec<Reason> =
            self.too_long(columns).into_iter().map(|c| named(c, Rule::VarcharLength)).collect();
        reasons.extend(self.numeric_misfits(columns).into_iter().map(|(c, rule)| named(c, rule)));
        reasons.extend(self.multibyte_in_char(columns).into_iter().map(|c| named(c, Rule::CharSingleByte)));
        reasons.extend(self.nulls_in_not_null(columns).into_iter().map(|c| named(c, Rule::NotNull)));
        reasons
    }

    /// Columns whose text is longer (in UTF-8 bytes) than the target allows.
    pub fn too_long<'c>(&self, columns: &'c [Column<'_>]) -> Vec<&'c str> {
        columns
            .iter()
            .filter(|c| {
                let Some(max) = self.column(&c.name).and_then(|t| t.max_bytes) else { return false };
                match &c.value {
                    Value::Null | Value::Unavailable => false,
                    Value::Text(s) => s.len() > max,
                    other => other.text().len() > max,
                }
            })
            .map(|c| c.name.as_ref())
            .collect()
    }

    /// Columns whose text a `CHAR` column cannot hold: "A CHAR column can only contain
    /// single-byte characters" (Redshift Database Developer Guide, "Character types").
    pub fn multibyte_in_char<'c>(&self, columns: &'c [Column<'_>]) -> Vec<&'c str> {
        columns
            .iter()
            .filter(|c| {
                let fixed = self.column(&c.name).is_some_and(|t| is_fixed_character_type(&t.type_name));
                fixed && matches!(&c.value, Value::Text(s) if !s.is_ascii())
            })
            .map(|c| c.name.as_ref())
            .collect()
    }

    /// Columns that set NULL into a NOT NULL column. (A column a change does not carry is not
    /// checked: a stored row keeps its value, a new one takes the DEFAULT.)
    pub fn nulls_in_not_null<'c>(&self, columns: &'c [Column<'_>]) -> Vec<&'c str> {
        columns
            .iter()
            .filter(|c| c.value.is_null() && self.column(&c.name).is_some_and(|t| t.not_null))
            .map(|c| c.name.as_ref())
            .collect()
    }

    /// Numbers the target's column cannot hold exactly, with the rule. Never
    /// rounded: Redshift would round an INSERT into a `DECIMAL(p, s)` or an integer column and
    /// truncate a COPY ("Numeric types", "Data conversion parameters" in the Redshift Database
    /// Developer Guide), and a double keeps 15–17 significant digits.
    ///
    /// | target | rule |
    /// |---|---|
    /// | `DECIMAL(p, s)` | `decimal_scale`: more fractional digits than `s` (trailing zeros dropped: `1.50` fits a scale of 1); `decimal_precision`: more integer digits than `p - s`; `not_a_number`: NaN or ±Infinity |
    /// | `SMALLINT`, `INTEGER`, `BIGINT` | `decimal_scale`: a fraction; `integer_range`: outside the type's range; `not_a_number` |
    /// | `REAL`, `DOUBLE PRECISION` | `float_precision`: a decimal or integer the float does not give back exactly |
    ///
    /// Doubles are taken at their shortest exact decimal form (`1.005`, not its binary
    /// expansion).
    pub fn numeric_misfits<'c>(&self, columns: &'c [Column<'_>]) -> Vec<(&'c str, Rule)> {
        columns.iter().filter_map(|c| Some((c.name.as_ref(), misfit(self.column(&c.name)?, &c.value)?))).collect()
    }
}

/// The number kinds of target columns we check.
enum NumericTarget {
    Decimal { precision: u32, scale: u32 },
    Integer { min: i128, max: i128 },
    Real,
    Double,
}

impl NumericTarget {
    fn of(column: &TargetColumn) -> Option<NumericTarget> {
        if let Some((precision, scale)) = column.numeric {
            return Some(NumericTarget::Decimal { precision, scale });
        }
        let bits = |b: u32| NumericTarget::Integer { min: -(1i128 << (b - 1)), max: (1i128 << (b - 1)) - 1 };
        Some(match column.type_name.to_ascii_lowercase().as_str() {
            "int2" | "smallint" => bits(16),
            "int4" | "integer" | "int" => bits(32),
            "int8" | "bigint" => bits(64),
            "float4" | "real" => NumericTarget::Real,
            "float8" | "double precision" | "float" => NumericTarget::Double,
            _ => return None,
        })
    }
}

/// The rule `value` breaks in `column`, if any (see [`TargetTable::numeric_misfits`]).
fn misfit(column: &TargetColumn, value: &Value<'_>) -> Option<Rule> {
    let target = NumericTarget::of(column)?;
    let exact = match value {
        Value::Int(i) => Decimal { unscaled: i128::from(*i), scale: 0 },
        Value::Decimal(d) => *d,
        // A number sent as text (`decimal.handling.mode=string`): the column would parse and
        // round it just the same. Text that is no number is the database's to refuse.
        Value::Text(t) => Decimal::parse(t.trim())?,
        Value::Float(f) if !f.is_finite() => {
            return matches!(target, NumericTarget::Decimal { .. } | NumericTarget::Integer { .. })
                .then_some(Rule::NotANumber);
        }
        // The shortest decimal that reads back as this double; beyond i128 it fits no
        // DECIMAL or integer.
        Value::Float(f) => match Decimal::parse(&format!("{f:e}")) {
            Some(d) => d,
            None => {
                return matches!(target, NumericTarget::Decimal { .. } | NumericTarget::Integer { .. })
                    .then_some(Rule::DecimalPrecision);
            }
        },
        _ => return None,
    };
    let d = exact.normalized();
    match target {
        NumericTarget::Decimal { precision, scale } => {
            // 19 digits or fewer are a 64-bit integer in Redshift: 9223372036854775807 at most,
            // wherever the point ("Numeric types", Redshift Database Developer Guide).
            let beyond_64_bits = precision <= 19
                && d.rescaled(scale).is_none_or(|r| r.unscaled.unsigned_abs() > u128::from(i64::MAX.unsigned_abs()));
            if d.scale > scale {
                Some(Rule::DecimalScale)
            } else if d.integer_digits() > precision.saturating_sub(scale) || beyond_64_bits {
                Some(Rule::DecimalPrecision)
            } else {
                None
            }
        }
        NumericTarget::Integer { min, max } => {
            if d.scale > 0 {
                Some(Rule::DecimalScale)
            } else if d.unscaled < min || d.unscaled > max {
                Some(Rule::IntegerRange)
            } else {
                None
            }
        }
        // A float column gives back the number when its shortest form is the number: `1.1`
        // (Debezium's FLOAT32 in JSON) fits REAL; 16,777,217 and `1.23456789` do not.
        NumericTarget::Real => {
            let back = d.to_string().parse::<f32>().ok().and_then(|f| Decimal::parse(&format!("{f:e}")));
            (back.map(Decimal::normalized) != Some(d)).then_some(Rule::FloatPrecision)
        }
        NumericTarget::Double => {
            let back = d.to_string().parse::<f64>().ok().and_then(|f| Decimal::parse(&format!("{f:e}")));
            (back.map(Decimal::normalized) != Some(d)).then_some(Rule::FloatPrecision)
        }
    }
}

/// `CHAR(n)`: single-byte characters only.
pub fn is_fixed_character_type(type_name: &str) -> bool {
    matches!(type_name.to_ascii_lowercase().as_str(), "bpchar" | "char" | "character" | "nchar")
}

/// Character types whose length limit we enforce.
pub fn is_character_type(type_name: &str) -> bool {
    matches!(
        type_name.to_ascii_lowercase().as_str(),
        "varchar" | "character varying" | "bpchar" | "char" | "character" | "nvarchar" | "nchar"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TableConfig;
    use crate::debezium::Op;
    use crate::outcome::{Change, Column};
    use std::borrow::Cow;
    use std::sync::Arc;

    fn table() -> TargetTable {
        let col = |name: &str, ty: &str, max: Option<usize>| TargetColumn {
            name: name.into(),
            type_name: ty.into(),
            max_bytes: max,
            numeric: None,
            not_null: false,
        };
        TargetTable::new(
            TableName { schema: "public".into(), table: "t".into() },
            vec![
                col("id", "int4", None),
                col("state", "bpchar", Some(2)),
                col("name", "varchar", Some(4)),
                col("_cdc_position", "varchar", Some(64)),
                col("_cdc_op", "bpchar", Some(1)),
            ],
        )
    }

    #[test]
    fn metadata_and_unknown_columns() {
        let t = table();
        assert!(t.exists());
        assert_eq!(
            t.missing_metadata_columns(),
            vec![
                "_cdc_deleted",
                "_cdc_source_ts",
                "_cdc_loaded_at",
                "_cdc_kafka_topic",
                "_cdc_kafka_partition",
                "_cdc_kafka_offset"
            ]
        );
        assert_eq!(t.unknown(["id", "email", "name"]), vec!["email"]);
        assert!(!TargetTable::new(t.name.clone(), Vec::new()).exists());
    }

    #[test]
    fn numbers_that_would_be_rounded_are_misfits() {
        let col = |ty: &str, numeric: Option<(u32, u32)>| TargetColumn {
            name: "n".into(),
            type_name: ty.into(),
            max_bytes: None,
            numeric,
            not_null: false,
        };
        let dec = |unscaled, scale| Value::Decimal(Decimal { unscaled, scale });
        let cases: Vec<(TargetColumn, Value<'static>, Option<&str>)> = vec![
            (col("numeric", Some((10, 2))), dec(1005, 3), Some("decimal_scale")),
            (col("numeric", Some((10, 2))), dec(1500, 3), None),
            (col("numeric", Some((10, 2))), Value::Float(1.005), Some("decimal_scale")),
            (col("numeric", Some((10, 2))), Value::Float(1.25), None),
            (col("numeric", Some((10, 2))), Value::Float(1e300), Some("decimal_precision")),
            (col("numeric", Some((10, 2))), Value::Float(f64::NAN), Some("not_a_number")),
            (col("numeric", Some((4, 2))), Value::Int(100), Some("decimal_precision")),
            (col("numeric", Some((4, 2))), Value::Int(99), None),
            // DECIMAL(19, s) is 64-bit in Redshift: 19 nines overflow, 2^63 - 1 fits.
            (col("numeric", Some((19, 0))), dec(9_999_999_999_999_999_999, 0), Some("decimal_precision")),
            (col("numeric", Some((19, 0))), dec(9_223_372_036_854_775_807, 0), None),
            (col("numeric", Some((19, 18))), dec(9_223_372_036_854_775_808, 18), Some("decimal_precision")),
            (col("numeric", Some((20, 0))), dec(9_999_999_999_999_999_999, 0), None),
            (col("int4", None), dec(150, 2), Some("decimal_scale")),
            (col("int4", None), dec(200, 2), None),
            (col("int4", None), Value::Float(2.0), None),
            (col("int4", None), Value::Float(2.5), Some("decimal_scale")),
            (col("int4", None), Value::Int(1 << 31), Some("integer_range")),
            (col("int2", None), Value::Int(-32768), None),
            (col("int2", None), Value::Int(-32769), Some("integer_range")),
            (col("int8", None), dec(i128::from(i64::MAX) + 1, 0), Some("integer_range")),
            (col("int8", None), Value::Float(f64::INFINITY), Some("not_a_number")),
            (col("float8", None), Value::Float(0.1), None),
            (col("float8", None), dec(12_345_678_901_234_567_890, 0), Some("float_precision")),
            (col("float8", None), dec(1, 1), None),
            (col("float8", None), Value::Int(1 << 53), None),
            (col("float8", None), Value::Int((1 << 53) + 1), Some("float_precision")),
            (col("float4", None), Value::Float(1.1), None),
            (col("float4", None), Value::Float(1.234_567_89), Some("float_precision")),
            (col("float4", None), Value::Int(16_777_217), Some("float_precision")),
            (col("varchar", None), Value::Float(1.005), None),
            (col("numeric", Some((10, 2))), Value::Text("1.005".into()), Some("decimal_scale")),
            (col("numeric", Some((10, 2))), Value::Text("1.50".into()), None),
            (col("int4", None), Value::Text("7.5".into()), Some("decimal_scale")),
            (col("int4", None), Value::Text("not a number".into()), None),
        ];
        for (column, value, rule) in cases {
            assert_eq!(
                misfit(&column, &value).map(Rule::as_str),
                rule,
                "{value:?} into {}{:?}",
                column.type_name,
                column.numeric
            );
        }
    }

    #[test]
    fn varchar_limits_count_bytes() {
        let change = Change {
            table: Arc::new(TableConfig::default_for_topic("x.t").unwrap()),
            op: Op::Create,
            deleted: false,
            tombstone: false,
            position: crate::debezium::Position::none(),
            source_ts_ms: None,
            kafka: crate::outcome::KafkaOrigin { topic: "x.t".into(), partition: 0, offset: 0 },
            key: vec![],
            key_columns: Arc::from(Vec::new()),
            columns: vec![
                Column { name: "state".into(), value: Value::Text(Cow::Borrowed("CA")) },
                // 3 characters, 6 bytes: over a 4-byte VARCHAR although PostgreSQL would accept it.
                Column { name: "name".into(), value: Value::Text(Cow::Borrowed("éèê")) },
            ],
            masked: vec![],
            detected: Vec::new(),
            row_schema: None,
            filled_from: None,
        };
        assert_eq!(table().too_long(&change.columns), vec!["name"]);
        assert!(is_character_type("VARCHAR") && !is_character_type("int4"));
    }
}
