//! Property tests: decoding never panics, whatever the bytes; decimals decode exactly.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cdc_pipeline::debezium::{ColumnType, convert};
use cdc_pipeline::synth::{RecordSpec, msk_event_text};
use cdc_pipeline::{Caches, Config, DecodedBatch, MskEvent, Outcome, Pipeline};
use proptest::prelude::*;
use serde_json::value::RawValue;

fn pipeline() -> Pipeline {
    let config = Config::parse(
        "[[tables]]\ntopic = \"*\"\ntarget = \"public.t\"\n[tables.columns.a]\nrequired = true\nmask = \"hmac\"\n[tables.columns.b]\nmask = \"year\"\n",
        "test.toml",
    )
    .unwrap();
    Pipeline::new(Arc::new(config), Some(b"property-tests-masking-key-0123456789abcdef")).unwrap()
}

fn run(records: &[RecordSpec]) -> usize {
    let text = msk_event_text(records);
    let event = MskEvent::parse(text.as_bytes()).expect("synthetic events parse");
    let batch = DecodedBatch::from_event(&event);
    let outcomes = pipeline().transform(&batch, &mut Caches::default(), 0);
    assert_eq!(outcomes.len(), records.len());
    outcomes.iter().filter(|o| matches!(o, Outcome::Reject(_))).count()
}

/// Arbitrary JSON values, nested a few levels, biased toward envelope field names.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| serde_json::json!(f)),
        ".{0,12}".prop_map(serde_json::Value::String),
        prop_oneof![Just("r"), Just("c"), Just("u"), Just("d"), Just("t"), Just("x")]
            .prop_map(|s| serde_json::json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("op".to_string()),
                        Just("after".into()),
                        Just("before".into()),
                        Just("source".into()),
                        Just("schema".into()),
                        Just("payload".into()),
                        Just("a".into()),
                        Just("b".into()),
                        "[a-z]{1,6}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|entries| serde_json::Value::Object(entries.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(key in proptest::option::of(prop::collection::vec(any::<u8>(), 0..64)),
                                   value in proptest::option::of(prop::collection::vec(any::<u8>(), 0..256))) {
        let mut record = RecordSpec::new("s.db.dbo.t", 0, 1, 1, None, None);
        record.key = key;
        record.value = value;
        run(&[record]);
    }

    #[test]
    fn arbitrary_json_never_panics(key in json(), value in json()) {
        let record = RecordSpec::new("s.db.dbo.t", 0, 1, 1, Some(&key.to_string()), Some(&value.to_string()));
        run(&[record]);
    }

    #[test]
    fn arbitrary_envelopes_never_panic(op in prop_oneof![Just("c"), Just("u"), Just("d"), Just("r")],
                                       a in json(), b in json(), source in json()) {
        let value = serde_json::json!({"before": {"a": a, "b": b}, "after": {"a": a, "b": b}, "source": source, "op": op});
        let record = RecordSpec::new("s.db.dbo.t", 0, 1, 1, Some(r#"{"a":1}"#), Some(&value.to_string()));
        run(&[record]);
    }

    /// Kafka Connect Decimal bytes (Java `BigInteger.toByteArray`: minimal big-endian two's
    /// complement) decode to the exact value at the schema's scale.
    #[test]
    fn decimal_bytes_match_i128_reference(unscaled in -(10i128.pow(38) - 1)..10i128.pow(38), scale in 0u32..38) {
        let bytes = unscaled.to_be_bytes();
        // Drop redundant sign bytes, as BigInteger.toByteArray does.
        let mut start = 0;
        while start < 15
            && ((bytes[start] == 0x00 && bytes[start + 1] & 0x80 == 0) || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
        {
            start += 1;
        }
        let json = format!("\"{}\"", BASE64.encode(&bytes[start..]));
        let raw: Box<RawValue> = RawValue::from_string(json).unwrap();
        let value = convert(&raw, &ColumnType::Decimal { scale, precision: None }, Default::default(), None).unwrap();
        let magnitude = unscaled.unsigned_abs();
        let divisor = 10u128.pow(scale);
        let sign = if unscaled < 0 { "-" } else { "" };
        let reference = if scale == 0 {
            format!("{sign}{magnitude}")
        } else {
            format!("{sign}{}.{:0width$}", magnitude / divisor, magnitude % divisor, width = scale as usize)
        };
        prop_assert_eq!(value.text(), reference);
    }
}
