//! Loading plans into Amazon Redshift through the Redshift Data API.
//!
//! [`sql`] renders the apply SQL (pure), [`types`] maps column types, [`target`] describes the
//! target table and checks rows against it, [`client`] talks to the Data API (polling and
//! retries), [`error`] classifies failures, and [`loader`] runs plans with bisection.

pub mod client;
pub mod ddl;
pub mod error;
pub mod loader;
pub mod retry;
pub mod sql;
pub mod target;
pub mod types;

pub use client::{Auth, DataApi, Target};
pub use error::{DataApiError, DbErrorClass, is_retriable};
pub use loader::{LoadError, LoadReject, LoadReport, Loader};
pub use retry::Backoff;
