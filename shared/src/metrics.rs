//! CloudWatch Embedded Metric Format: one JSON line per invocation, written to stdout, which
//! Lambda ships to CloudWatch Logs and CloudWatch turns into metrics. Counts and durations
//! only — never a column value.
//!
//! The names of the counts ingest and replay share are here, derived from what they count
//! ([`RecordCount`], [`rejected`] for a [`Stage`]); the replay's object counts are next to
//! their enum (`replay::ObjectOutcome`). `scripts/check_template_policy.py` reads the names
//! the template's alarms and dashboard use from the `Metric::count("…"` calls.
//!
//! The document shape follows CloudWatch's [embedded metric format
//! specification](https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
//! Nothing here decides what to count (ingest and replay do) or does I/O beyond the
//! [`MetricsSink`] it is given.

use serde_json::{Map, Value, json};

use crate::outcome::Stage;

/// One metric of a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's name, UpperCamelCase (`RecordsLoaded`); the template's alarms and
    /// dashboard name it exactly.
    pub name: &'static str,
    /// The CloudWatch unit: `Count` or `Milliseconds`.
    pub unit: &'static str,
    /// The value in `unit` (a whole number for counts).
    pub value: f64,
}

impl Metric {
    /// A count (unit `Count`) of `value` things: records, objects, calls.
    pub fn count(name: &'static str, value: usize) -> Metric {
        Metric { name, unit: "Count", value: value as f64 }
    }

    /// A duration of `value` milliseconds (unit `Milliseconds`).
    pub fn millis(name: &'static str, value: f64) -> Metric {
        Metric { name, unit: "Milliseconds", value }
    }
}

/// What became of records: one word per count, the same in ingest's and replay's metrics
/// (README "Observability"). Their responses name the same counts (`IngestSummary`'s
/// `loaded`, `ReplayResponse`'s `records_loaded`, …), with one exception kept for existing
/// users: replay's `records_rejected` is [`RecordCount::DeadLettered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordCount {
    /// Every record of the batch (`RecordsReceived`).
    Received,
    /// Committed to the target (`RecordsLoaded`).
    Loaded,
    /// Not written: the target already held this change or a newer one (`RecordsStale`).
    Stale,
    /// Replaced by a later change of the same key in the batch (`RecordsSuperseded`).
    Superseded,
    /// Consumed without loading, for a [`SkipReason`](crate::outcome::SkipReason)
    /// (`RecordsSkipped`).
    Skipped,
    /// Written to the dead-letter store, quarantined ones included (`RecordsDeadLettered`).
    DeadLettered,
    /// Dead-lettered under the quarantine prefix, past the attempts cap
    /// (`RecordsQuarantined`).
    Quarantined,
}

impl RecordCount {
    /// `Records<Count>`, a count.
    pub fn metric(self, records: usize) -> Metric {
        match self {
            RecordCount::Received => Metric::count("RecordsReceived", records),
            RecordCount::Loaded => Metric::count("RecordsLoaded", records),
            RecordCount::Stale => Metric::count("RecordsStale", records),
            RecordCount::Superseded => Metric::count("RecordsSuperseded", records),
            RecordCount::Skipped => Metric::count("RecordsSkipped", records),
            RecordCount::DeadLettered => Metric::count("RecordsDeadLettered", records),
            RecordCount::Quarantined => Metric::count("RecordsQuarantined", records),
        }
    }
}

/// A target the loader cannot load into until an operator runs DDL: why a batch failed (the
/// loader's `LoadError::TargetTableMissing` and `LoadError::MetadataColumnsMissing`; this
/// module names metrics and imports nothing of the loader).
/// Each failed invocation counts 1 in its metric, next to `BatchesFailed`: an alarm on it
/// tells a missing table from Redshift trouble. The log line names the table; the metric
/// carries no table dimension, so that one alarm covers every table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetNotReady {
    /// The target table does not exist (`TargetTableMissing`).
    TableMissing,
    /// The target lacks `_cdc_*` metadata columns (`TargetMetadataColumnsMissing`).
    MetadataColumnsMissing,
}

impl TargetNotReady {
    /// Its metric: a count of 1 (one failed batch or replayed object).
    pub fn metric(self) -> Metric {
        match self {
            TargetNotReady::TableMissing => Metric::count("TargetTableMissing", 1),
            TargetNotReady::MetadataColumnsMissing => Metric::count("TargetMetadataColumnsMissing", 1),
        }
    }
}

/// Every stage, in pipeline order: the `Rejected<Stage>` metrics an ingest line carries, each
/// even when zero, so that the dashboard's graphs have data points. A new [`Stage`] fails to
/// compile in [`rejected`] until it has a name; add it here too.
pub const STAGES: [Stage; 5] = [Stage::Decode, Stage::Route, Stage::Validate, Stage::Drift, Stage::Load];

/// `Rejected<Stage>`: records dead-lettered by `stage`.
pub fn rejected(stage: Stage, records: usize) -> Metric {
    match stage {
        Stage::Decode => Metric::count("RejectedDecode", records),
        Stage::Route => Metric::count("RejectedRoute", records),
        Stage::Validate => Metric::count("RejectedValidate", records),
        Stage::Drift => Metric::count("RejectedDrift", records),
        Stage::Load => Metric::count("RejectedLoad", records),
    }
}

/// An EMF document on one line: `_aws` metadata (`Timestamp`: `timestamp_ms`, ms since the
/// Unix epoch; one metric directive with `namespace` and one dimension set of every
/// `dimensions` name), dimension values and metric values at the top level. The names of
/// `metrics` must be distinct and none may be a dimension's.
pub fn emf_line(namespace: &str, dimensions: &[(&str, &str)], metrics: &[Metric], timestamp_ms: i64) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|m| json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (key, value) in dimensions {
        root.insert((*key).into(), Value::String((*value).into()));
    }
    for metric in metrics {
        root.insert(metric.name.into(), json!(metric.value));
    }
    Value::Object(root).to_string()
}

/// Where metric lines go: stdout in Lambda, a buffer in tests.
pub trait MetricsSink: Send + Sync + std::fmt::Debug {
    /// Write one EMF line (`line` has no newline; the sink ends it).
    fn emit(&self, line: &str);
}

/// Lines to stdout, where Lambda ships them to CloudWatch Logs (the functions' sink).
#[derive(Debug, Default)]
pub struct Stdout;

impl MetricsSink for Stdout {
    fn emit(&self, line: &str) {
        println!("{line}");
    }
}

/// For `cdc`, whose stdout is the handler's response.
#[derive(Debug, Default)]
pub struct Stderr;

impl MetricsSink for Stderr {
    fn emit(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// Keeps lines in memory (tests; feature `test-util`).
#[cfg(feature = "test-util")]
#[derive(Debug, Default)]
pub struct Captured(pub std::sync::Mutex<Vec<String>>);

#[cfg(feature = "test-util")]
impl MetricsSink for Captured {
    fn emit(&self, line: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line.to_string());
    }
}

#[cfg(feature = "test-util")]
impl Captured {
    /// A copy of every line emitted so far, in order.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_has_its_own_rejected_metric() {
        let names: std::collections::BTreeSet<&str> = STAGES.iter().map(|&s| rejected(s, 0).name).collect();
        assert_eq!(names.len(), STAGES.len());
        for stage in STAGES {
            let name = rejected(stage, 1).name;
            assert_eq!(name.strip_prefix("Rejected").map(str::to_lowercase), Some(stage.as_str().to_string()));
        }
    }

    #[test]
    fn emf_document_shape() {
        let line = emf_line(
            "MskRedshiftCdc",
            &[("FunctionName", "ingest")],
            &[Metric::count("RecordsReceived", 10), Metric::millis("BatchDuration", 12.5)],
            1_795_521_600_000,
        );
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_521_600_000i64);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "MskRedshiftCdc");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "BatchDuration", "Unit": "Milliseconds"})
        );
        assert_eq!(doc["FunctionName"], "ingest");
        assert_eq!(doc["RecordsReceived"], 10.0);
    }
}
