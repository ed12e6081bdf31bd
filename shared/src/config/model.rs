//! The built, validated configuration every stage reads: [`Config`], [`TableConfig`],
//! [`ColumnConfig`], [`PipelineOptions`], the policies, [`TableName`], [`TopicPattern`],
//! [`Placeholder`], [`Rules`], the `[tables.detect]` settings, and routing
//! ([`Config::table_for_topic`]). Nothing here reads TOML (`parse.rs` does).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;
use serde::Deserialize;

use crate::column_type::ColumnType;
use crate::mask::Mask;
use crate::rule::Rule;
use crate::value::Bound;

/// What to do with an operation the loader does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OpPolicy {
    /// Count it as skipped with a reason (default).
    #[default]
    Skip,
    /// Dead-letter it so an operator sees it.
    Reject,
}

/// A NUL character cannot be stored in Redshift (it truncates) nor in PostgreSQL (it refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NulPolicy {
    /// Reject the record with rule `nul` (default).
    #[default]
    Reject,
    /// Remove NUL characters and load the rest.
    Strip,
}

/// What a delete does to the target row (`delete_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeleteMode {
    /// Keep the row with `_cdc_deleted = true` and the delete's position (default), so that a
    /// late replay of an older change cannot resurrect it.
    #[default]
    Soft,
    /// Remove the row. A replay of an older change *can* bring it back.
    Hard,
}

/// What a record with a column the target lacks does (`drift`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DriftPolicy {
    /// Dead-letter records that carry a column the target lacks (default): a new source
    /// column may hold PII that has no mask yet.
    #[default]
    Dlq,
    /// Drop the unknown column and load the rest.
    Ignore,
    /// `ALTER TABLE … ADD COLUMN` with a type mapped from the Debezium schema.
    Add,
}

/// How a table's rows reach the warehouse (`load`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoadPath {
    /// Stage the rows as one compressed CSV object in S3 and `COPY` it (default): no value in
    /// any SQL text (so none in query history, audit logs or the Data API's statement
    /// history), Redshift's bulk path. Costs an S3 PUT and DELETE per transaction and needs an
    /// IAM role Redshift can assume to read the staging prefix (`REDSHIFT_COPY_ROLE_ARN`).
    #[default]
    Copy,
    /// Values as SQL literals in `INSERT … VALUES` statements (at most 90 KB each): no S3 and no
    /// role, for small PHI-free tables or accounts that cannot give Redshift an S3 role. The
    /// values land in the warehouse's query history.
    Insert,
}

impl LoadPath {
    /// The config and metric name: `copy` or `insert`.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadPath::Copy => "copy",
            LoadPath::Insert => "insert",
        }
    }
}

/// What a tombstone (a record with a null value) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TombstonePolicy {
    /// Delete the key (default), as Debezium's JDBC sink does with `delete.enabled=true`. On a
    /// compacted topic the delete event itself may be gone and only its tombstone left. Kafka
    /// order guards it: it deletes only a row written by an earlier record of its partition,
    /// never one a later change re-created; after its delete it changes nothing.
    #[default]
    Delete,
    /// Skip tombstones (reason `tombstone`): only delete events delete.
    Skip,
}

/// Debezium's `unavailable.value.placeholder`: the value a connector sends for a column it
/// could not read (an unchanged TOASTed PostgreSQL column under `REPLICA IDENTITY DEFAULT`, an
/// unchanged SQL Server `varchar(max)` since 3.6, an Oracle LOB). Such a column keeps the value
/// the target holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// As text (how string, JSON, UUID and `bytea` under `binary.handling.mode=hex` carry it).
    pub text: String,
    /// As bytes (how `bytea`/`varbinary` columns carry it, base64-encoded).
    pub bytes: Vec<u8>,
    /// The JSON texts the JsonConverter writes for it in composite columns.
    pub composite_forms: Vec<String>,
    /// `base64(bytes)`.
    pub base64: String,
}

impl Default for Placeholder {
    fn default() -> Placeholder {
        Placeholder::parse(Placeholder::DEBEZIUM_DEFAULT).expect("the default placeholder is valid")
    }
}

impl Placeholder {
    /// `RelationalDatabaseConnectorConfig.DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER`.
    pub const DEBEZIUM_DEFAULT: &'static str = "__debezium_unavailable_value";

    /// The setting as Debezium takes it: text, or `hex:` and hex octets (PostgreSQL only).
    pub fn parse(setting: &str) -> Result<Placeholder, String> {
        let bytes = match setting.strip_prefix("hex:") {
            Some(hex) => {
                if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err("`hex:` must be followed by an even number of hex digits".into());
                }
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)).collect()
            }
            None if setting.is_empty() => return Err("the placeholder must not be empty".into()),
            None => setting.as_bytes().to_vec(),
        };
        use base64::Engine as _;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let base64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let json = |v: serde_json::Value| v.to_string();
        // PostgreSQL's connector (`UnchangedToastedPlaceholder`): text-like arrays carry one
        // placeholder element, `bytea[]` one element of its bytes, numeric arrays one element
        // per byte, and hstore the map {placeholder: placeholder}, as a map or as JSON text.
        let composite_forms = vec![
            json(serde_json::json!([text])),
            json(serde_json::json!([base64])),
            json(serde_json::Value::from(bytes.iter().map(|b| i64::from(*b)).collect::<Vec<_>>())),
            json(serde_json::json!({ text.clone(): text })),
        ];
        Ok(Placeholder { text, bytes, composite_forms, base64 })
    }

    /// Is this string value (of a column of the given type) the placeholder?
    pub fn matches_text(&self, value: &str, bytes_column: bool) -> bool {
        value == self.text
            || (bytes_column && value == self.base64)
            || (value.len() == self.composite_forms[3].len() && value == self.composite_forms[3])
    }

    /// Is this composite JSON text (an array or a map) the placeholder?
    pub fn matches_composite(&self, json: &str) -> bool {
        self.composite_forms.iter().any(|form| form == json)
    }
}

/// What a record of a topic no table routes does (`unroutable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnroutablePolicy {
    /// Dead-letter it (stage `route`, rule `unroutable`; default).
    #[default]
    Reject,
    /// Count it as skipped (reason `unroutable`).
    Skip,
}

/// `[pipeline]`: settings for every table.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Truncate events (`op` `t`).
    pub on_truncate: OpPolicy,
    /// Logical decoding messages (`op` `m`).
    pub on_message: OpPolicy,
    /// NUL characters in text.
    pub nul: NulPolicy,
    /// Records no table routes.
    pub unroutable: UnroutablePolicy,
}

/// A lowercase `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    /// The schema, lowercase (1 to 127 bytes).
    pub schema: String,
    /// The table, lowercase (1 to 127 bytes).
    pub table: String,
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

impl TableName {
    /// Parse `schema.table` (or `table`, meaning `public.table`), folding to lowercase as
    /// Redshift does. Errors (a message naming the text, which is configuration, not data): an
    /// empty part, one over 127 bytes, a quote, a third part, a control character.
    pub fn parse(text: &str) -> Result<TableName, String> {
        let (schema, table) = text.split_once('.').unwrap_or(("public", text));
        let valid = |part: &str| {
            !part.is_empty()
                && part.len() <= 127
                && !part.contains(['"', '.', '\0'])
                && part.chars().all(|c| !c.is_control())
        };
        if !valid(schema) || !valid(table) {
            return Err(format!(
                "`{text}` is not a valid `schema.table` (1-127 bytes each, no quotes, dots or control characters)"
            ));
        }
        Ok(TableName { schema: schema.to_lowercase(), table: table.to_lowercase() })
    }
}

/// A topic glob: `*` matches any run of characters (dots included), `?` one character.
#[derive(Debug, Clone)]
pub struct TopicPattern {
    /// The glob as configured.
    pub glob: String,
    regex: Regex,
}

impl TopicPattern {
    /// The pattern of `glob`; an error message when it is empty.
    pub fn new(glob: &str) -> Result<TopicPattern, String> {
        if glob.is_empty() {
            return Err("topic pattern is empty".into());
        }
        let mut pattern = String::from("^");
        for c in glob.chars() {
            match c {
                '*' => pattern.push_str(".*"),
                '?' => pattern.push('.'),
                c => pattern.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            }
        }
        pattern.push('$');
        let regex = Regex::new(&pattern).map_err(|e| e.to_string())?;
        Ok(TopicPattern { glob: glob.to_string(), regex })
    }

    /// Whether the whole of `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        self.regex.is_match(topic)
    }
}

/// A column's validation rules (`[tables.columns.<name>]`), checked on raw values by
/// `validate::check`; each key is also the rule's name in a reject.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// The value must not be NULL (every other rule lets NULL pass).
    pub required: bool,
    /// At most this many UTF-8 bytes of text.
    pub max_bytes: Option<usize>,
    /// The canonical text matches this regex somewhere (anchor it with `^…$` to match the
    /// whole text).
    pub pattern: Option<Regex>,
    /// The text is one of these.
    pub one_of: Option<HashSet<String>>,
    /// The value is at least this, inclusive ([`compare_value`](crate::value::compare_value);
    /// a value that cannot be compared with the bound fails).
    pub min: Option<Bound>,
    /// The value is at most this, inclusive (compared as `min` is).
    pub max: Option<Bound>,
    /// A date or timestamp not after the batch's processing time.
    pub not_future: bool,
}

impl Rules {
    /// No rule at all (the column is not checked).
    pub fn is_empty(&self) -> bool {
        !self.required
            && self.max_bytes.is_none()
            && self.pattern.is_none()
            && self.one_of.is_none()
            && self.min.is_none()
            && self.max.is_none()
            && !self.not_future
    }
}

/// What a detected value looked like: the `kinds` of `[tables.detect]` (the scan is
/// `detect.rs`, `Detect::scan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SensitiveKind {
    /// A US Social Security number's shape.
    Ssn,
    /// An e-mail address.
    Email,
    /// A North American or E.164 phone number.
    Phone,
    /// A calendar date written as text (a date of birth).
    Date,
}

impl SensitiveKind {
    /// Every kind, in the order the scan tries them.
    pub const ALL: [SensitiveKind; 4] =
        [SensitiveKind::Ssn, SensitiveKind::Email, SensitiveKind::Phone, SensitiveKind::Date];

    /// The kind's name in the config (`kinds = ["ssn"]`) and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            SensitiveKind::Ssn => "ssn",
            SensitiveKind::Email => "email",
            SensitiveKind::Phone => "phone",
            SensitiveKind::Date => "date",
        }
    }

    /// The reject rule of a finding under `policy = "reject"`: `detected_<kind>`.
    pub fn rule(self) -> Rule {
        match self {
            SensitiveKind::Ssn => Rule::DetectedSsn,
            SensitiveKind::Email => Rule::DetectedEmail,
            SensitiveKind::Phone => Rule::DetectedPhone,
            SensitiveKind::Date => Rule::DetectedDate,
        }
    }

    /// The kind a config name names, if any.
    pub fn parse(name: &str) -> Option<SensitiveKind> {
        SensitiveKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind a reject rule names, if it is a detection rule (`detected_<kind>`).
    pub fn from_rule(rule: Rule) -> Option<SensitiveKind> {
        SensitiveKind::ALL.into_iter().find(|k| k.rule() == rule)
    }
}

/// What happens to a change with a finding.
#[derive(Debug, Clone)]
pub enum DetectPolicy {
    /// Dead-letter the record (stage `validate`, rule `detected_<kind>`).
    Reject,
    /// Apply this mask to the column, then load.
    Mask(Mask),
}

/// A table's `[tables.detect]`.
#[derive(Debug, Clone)]
pub struct Detect {
    /// The kinds sought, sorted, without repeats (default: all).
    pub kinds: Vec<SensitiveKind>,
    /// What a finding does to its change.
    pub policy: DetectPolicy,
    /// Lowercase column names never scanned (free text known to hold, say, phone numbers of
    /// clinics rather than patients).
    pub exempt: HashSet<Arc<str>>,
}

/// `[tables.columns.<name>]`.
#[derive(Debug, Clone, Default)]
pub struct ColumnConfig {
    /// Type hint for messages without a schema (ignored when the message has one).
    pub type_hint: Option<ColumnType>,
    /// Validation rules.
    pub rules: Rules,
    /// The column's mask, applied after validation.
    pub mask: Option<Mask>,
}

/// A table's `[tables.change_schema]`: the counterpart of a Glue job's "Change Schema"
/// (ApplyMapping) step. Source columns are dropped, renamed and cast right after decoding,
/// before the key, the rules, detection and masks see them; everything else in the table's
/// config (`key`, `[tables.columns]`, `cast`) names columns as they come out. All names
/// lowercase.
#[derive(Debug, Clone, Default)]
pub struct ChangeSchema {
    /// Source column → target column (`rename`).
    pub rename: HashMap<Arc<str>, Arc<str>>,
    /// Source columns never loaded, validated or typed (`drop`): a value there cannot reject
    /// its record, and `cdc ddl` leaves the column out.
    pub drop: HashSet<Arc<str>>,
    /// Target column → the type its value is converted to (`cast`, a `type` hint name),
    /// exactly or not at all ([`crate::cast`]).
    pub cast: HashMap<Arc<str>, ColumnType>,
}

impl ChangeSchema {
    /// Whether the table changes nothing.
    pub fn is_empty(&self) -> bool {
        self.rename.is_empty() && self.drop.is_empty() && self.cast.is_empty()
    }

    /// The target name of source column `source` (lowercase), or `None` when it is dropped.
    /// Without a mapping nothing is hashed: this runs for every column of every record.
    pub fn target_name(&self, source: &Arc<str>) -> Option<Arc<str>> {
        if self.drop.is_empty() && self.rename.is_empty() {
            return Some(source.clone());
        }
        if self.drop.contains(source) {
            return None;
        }
        Some(self.rename.get(source).cloned().unwrap_or_else(|| source.clone()))
    }

    /// The type target column `column` is cast to, if any (no hashing without casts).
    pub fn cast_of(&self, column: &str) -> Option<&ColumnType> {
        if self.cast.is_empty() { None } else { self.cast.get(column) }
    }

    /// The source name of target column `target`: the column renamed to it, else itself.
    pub fn source_name<'a>(&'a self, target: &'a str) -> &'a str {
        self.rename.iter().find(|(_, to)| &***to == target).map_or(target, |(from, _)| from)
    }
}

/// One `[[tables]]` entry: which topics it takes, where they go and how.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// The topics routed here (`topic`, an exact name or a glob).
    pub topic: TopicPattern,
    /// The target table (`target`, `schema.table`, lowercase).
    pub target: TableName,
    /// Key columns (lowercase). `None`: the fields of each record's Kafka key.
    pub key: Option<Arc<[Arc<str>]>>,
    /// What a delete does.
    pub delete_mode: DeleteMode,
    /// What a column the target lacks does.
    pub drift: DriftPolicy,
    /// Start each load transaction with `LOCK` on the target and its schema's delete ledger
    /// (default `true`; see README, "Concurrency and `lock`"). Without it, two loads of the
    /// same new key under Redshift's SNAPSHOT isolation each insert a row.
    pub lock: bool,
    /// How rows are loaded: staged `COPY` (default) or `INSERT` literals.
    pub load: LoadPath,
    /// What a tombstone does.
    pub tombstones: TombstonePolicy,
    /// The connector's `unavailable.value.placeholder`.
    pub placeholder: Placeholder,
    /// Per-column settings, by lowercase column name.
    pub columns: HashMap<Arc<str>, ColumnConfig>,
    /// `[tables.detect]`: scan unmasked text columns for sensitive-looking values.
    pub detect: Option<Detect>,
    /// `[tables.change_schema]`: source columns renamed, dropped and cast after decoding.
    pub change_schema: ChangeSchema,
}

impl TableConfig {
    /// The settings of a lowercase column name, if configured.
    pub fn column(&self, name: &str) -> Option<&ColumnConfig> {
        self.columns.get(name)
    }

    /// Every mask the table applies: its columns' (`[tables.columns]`) and `[tables.detect]`'s.
    pub fn masks(&self) -> impl Iterator<Item = &Mask> {
        let detect = match &self.detect {
            Some(Detect { policy: DetectPolicy::Mask(mask), .. }) => Some(mask),
            _ => None,
        };
        self.columns.values().filter_map(|c| c.mask.as_ref()).chain(detect)
    }

    /// Whether a mask of the table needs the masking key ([`Mask::needs_key`]).
    pub fn uses_hmac(&self) -> bool {
        self.masks().any(Mask::needs_key)
    }

    /// The table a topic gets without a config file: `public.<last segment, lowercased>`;
    /// an error message when that is no valid table name.
    pub fn default_for_topic(topic: &str) -> Result<TableConfig, String> {
        let last = topic.rsplit('.').next().unwrap_or(topic);
        Ok(TableConfig {
            topic: TopicPattern::new(&topic.replace(['*', '?'], "_"))?,
            target: TableName::parse(&format!("public.{last}"))?,
            key: None,
            delete_mode: DeleteMode::default(),
            drift: DriftPolicy::default(),
            lock: true,
            load: LoadPath::Copy,
            tombstones: TombstonePolicy::default(),
            placeholder: Placeholder::default(),
            columns: HashMap::new(),
            detect: None,
            change_schema: ChangeSchema::default(),
        })
    }
}

/// The whole configuration: built by [`Config::load`] or [`Config::parse`], or
/// [`Config::default_routing`] without a file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages; `None` for the default routing.
    pub source: Option<PathBuf>,
    /// `[pipeline]`: the policies for special records (truncates, messages, NUL, unroutable
    /// topics); defaults when the section is absent.
    pub pipeline: PipelineOptions,
    /// `[[tables]]`, in file order (the first match routes a topic).
    pub tables: Vec<Arc<TableConfig>>,
}

impl Config {
    /// No config file: every data topic goes to `public.<last topic segment>`, keys come
    /// from the Kafka key, no rules, no masks.
    pub fn default_routing() -> Config {
        Config { source: None, pipeline: PipelineOptions::default(), tables: Vec::new() }
    }

    /// Whether this is [`Config::default_routing`] (no file, no tables).
    pub fn is_default_routing(&self) -> bool {
        self.source.is_none() && self.tables.is_empty()
    }

    /// Whether any table needs the masking key ([`TableConfig::uses_hmac`]).
    pub fn uses_hmac(&self) -> bool {
        self.tables.iter().any(|t| t.uses_hmac())
    }

    /// The first configured table whose topic pattern matches.
    pub fn table_for_topic(&self, topic: &str) -> Option<&Arc<TableConfig>> {
        self.tables.iter().find(|t| t.topic.matches(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routing_uses_last_segment() {
        let table = TableConfig::default_for_topic("sqlsrv.sampledb.dbo.PatientInfo").unwrap();
        assert_eq!(table.target.to_string(), "public.patientinfo");
        assert!(Config::default_routing().is_default_routing());
    }
}
