//! `cdc-pipeline`: everything with logic in msk-redshift-cdc.
//!
//! Data flows one way through the modules: [`event`] (the MSK event) and [`config`] at the
//! bottom, on the leaves it holds ([`column_type`] for type hints, [`mask`] for masks,
//! [`value`] for bounds); [`batch`] and [`debezium`] decode into [`row`]'s columns and reasons
//! (each names a [`rule::Rule`]; [`avro`] turns schema-registry frames into the JSON decoder's
//! input, with schemas [`registry`] fetches); [`validate`] and [`detect`] check, [`mask`] hides;
//! [`transform`] runs them per record into an [`outcome::Outcome`]; [`plan`] collapses the
//! batch per key; [`explain`] shows the result; [`redshift`] loads plans; [`dlq`] stores
//! rejects in S3; [`ingest`] runs a batch and keeps the invariant, [`replay`] re-runs dead
//! letters; [`settings`] and [`wiring`] build it all at cold start. Leaves any module may use:
//! [`digits`], [`temporal`] (with the clock, `temporal::now_micros`), [`value`], [`redact`],
//! [`rule`] (the reject rules) and `lenient` (integers as producers write them); [`metrics`]
//! uses only [`outcome`] (its `Rejected<Stage>` names).
//!
//! Feature `test-util` adds `synth` (synthetic events) and `metrics::Captured`, for tests,
//! benchmarks and fuzzing; the Lambdas build without it.
//!
//! Architecture (data flow, module map with the imports that break this order, contracts, tests):
//! `docs/ARCHITECTURE.md` in the repository.
//!
//! Every public item is documented (`missing_docs` is denied): its shape (what a field holds,
//! units, ranges, case), the errors a function returns and when, and the outside source it
//! follows where correctness depends on one (Debezium, Redshift, the Data API, Lambda, S3).

#![deny(missing_docs)]

pub mod avro;
pub mod batch;
pub mod cast;
pub mod column_type;
pub mod config;
pub mod debezium;
pub mod detect;
pub mod digits;
pub mod dlq;
pub mod event;
pub mod explain;
pub mod ingest;
mod lenient;
pub mod mask;
pub mod metrics;
pub mod outcome;
pub mod plan;
pub mod redact;
pub mod redshift;
pub mod registry;
pub mod replay;
pub mod row;
pub mod rule;
pub mod settings;
#[cfg(feature = "test-util")]
pub mod synth;
pub mod temporal;
pub mod transform;
pub mod validate;
pub mod value;
pub mod wiring;

pub use batch::DecodedBatch;
pub use config::Config;
pub use event::MskEvent;
pub use outcome::{Change, Outcome, Reason, Reject, SkipReason, Stage};
pub use rule::Rule;
pub use transform::{Caches, Pipeline};
