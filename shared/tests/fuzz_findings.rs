//! Inputs the fuzz targets (`fuzz/`) found or pinned down, as ordinary tests: each was a
//! defect, and each must stay a clear per-record reject (or error), never a panic or bad SQL.

use std::sync::Arc;

use cdc_pipeline::synth::{RecordSpec, msk_event_text};
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Outcome, Pipeline};

fn pipeline(toml: &str) -> Pipeline {
    Pipeline::new(
        Arc::new(Config::parse(toml, "test.toml").unwrap()),
        Some(b"property-tests-masking-key-0123456789abcdef"),
    )
    .unwrap()
}

/// The reasons (as `column: rule`) of one record, or its outcome kind when not rejected.
fn reasons(pipeline: &Pipeline, key: &str, value: &str) -> Vec<String> {
    let spec = RecordSpec::new("db.dbo.t", 0, 1, 1, Some(key), Some(value));
    let text = msk_event_text(&[spec]);
    let event = MskEvent::parse(text.as_bytes()).unwrap();
    let batch = DecodedBatch::from_event(&event);
    match &pipeline.transform(&batch, &mut Caches::default(), 0)[0] {
        Outcome::Reject(reject) => reject.reasons.iter().map(ToString::to_string).collect(),
        other => vec![format!("not rejected: {other:?}")],
    }
}

fn envelope(after: &str) -> String {
    format!(r#"{{"op":"c","after":{after},"source":{{"connector":"sqlserver"}}}}"#)
}

const DEFAULT: &str = "[[tables]]\ntopic = \"*\"\ntarget = \"public.t\"\n";

#[test]
fn a_nul_in_a_column_name_is_a_reject_not_an_identifier() {
    let got = reasons(&pipeline(DEFAULT), r#"{"id":1}"#, &envelope(r#"{"id":1,"\u0000x":2}"#));
    assert_eq!(got, ["\\u{0}x: column_name"]);
}

#[test]
fn names_redshift_cannot_hold_are_rejects() {
    let long = "c".repeat(128);
    let got = reasons(&pipeline(DEFAULT), r#"{"id":1}"#, &envelope(&format!(r#"{{"id":1,"{long}":2,"":3}}"#)));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|r| r.ends_with(": column_name")), "{got:?}");
    let fits = "c".repeat(127);
    let got = reasons(&pipeline(DEFAULT), r#"{"id":1}"#, &envelope(&format!(r#"{{"id":1,"{fits}":2}}"#)));
    assert!(got[0].starts_with("not rejected"), "127 bytes is Redshift's limit: {got:?}");
}

#[test]
fn fields_that_lowercase_to_one_column_are_a_reject() {
    let got = reasons(&pipeline(DEFAULT), r#"{"id":1}"#, &envelope(r#"{"id":1,"Name":"a","NAME":"b"}"#));
    assert_eq!(got, ["name: duplicate_column"]);
}

#[test]
fn a_kafka_key_column_cannot_be_masked_into_null_or_merged() {
    for mask in ["\"null\"", "{ type = \"redact\", with = \"x\" }", "{ type = \"partial\", keep_last = 1 }"] {
        let toml = format!("{DEFAULT}[tables.columns.secret]\nmask = {mask}\n");
        let got = reasons(&pipeline(&toml), r#"{"secret":"a"}"#, &envelope(r#"{"secret":"a","v":1}"#));
        assert_eq!(got, ["secret: mask_on_key"], "mask {mask}");
    }
    // hmac keeps keys distinct, so it may mask a key.
    let toml = format!("{DEFAULT}[tables.columns.secret]\nmask = \"hmac\"\n");
    let got = reasons(&pipeline(&toml), r#"{"secret":"a"}"#, &envelope(r#"{"secret":"a","v":1}"#));
    assert!(got[0].starts_with("not rejected"), "{got:?}");
}

#[test]
fn trailing_bytes_after_the_event_are_an_error() {
    let err = MskEvent::parse(br#"{"records":{}}x"#).unwrap_err();
    assert!(err.to_string().contains("trailing characters"), "{err}");
}

/// A source column named like the pipeline's metadata (`_cdc_op`, `_CDC_POSITION` once
/// lowercased) would be written twice in one row, or overwrite the position the apply SQL
/// orders by: a reject naming the column, whose remedy is a `[tables.change_schema] rename`.
#[test]
fn a_source_column_named_like_the_metadata_is_a_reject() {
    let got = reasons(&pipeline(DEFAULT), r#"{"id":1}"#, &envelope(r#"{"id":1,"_cdc_op":"x","_CDC_Position":"y"}"#));
    assert_eq!(got, ["_cdc_op: column_name", "_cdc_position: column_name"]);
    let renamed = format!("{DEFAULT}[tables.change_schema]\nrename = {{ _cdc_op = \"source_cdc_op\" }}\n");
    let got = reasons(&pipeline(&renamed), r#"{"id":1}"#, &envelope(r#"{"id":1,"_cdc_op":"x"}"#));
    assert!(got[0].starts_with("not rejected"), "renamed, it loads: {got:?}");
}
