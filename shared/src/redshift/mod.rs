//! Loading plans into Amazon Redshift through the Redshift Data API.
//!
//! [`loader`] runs plans with bisection and fall-backs against a [`Warehouse`]
//! ([`warehouse`]: the seam), writing in the warehouse's [`Dialect`] ([`dialect`]: identifiers,
//! literals, types, the apply SQL, error classes). Behind the Redshift dialect: [`sql`] renders
//! the apply SQL (pure), [`types`] maps column types, [`error`] classifies failures. [`target`]
//! describes the target table and checks rows against it before any SQL. [`client`] is the
//! Data API warehouse (submit, long-poll, cancel), retrying through [`retry`]'s one loop.
//! [`ddl`] writes `cdc ddl`'s `CREATE TABLE`s.

pub mod client;
pub mod copy;
pub mod ddl;
pub mod dialect;
pub mod error;
pub mod loader;
pub mod retry;
pub mod sql;
pub mod staging;
pub mod target;
pub mod types;
pub mod warehouse;

#[cfg(test)]
mod loader_tests;
#[cfg(test)]
mod scripted;

pub use client::{Auth, DataApi, Target};
pub use dialect::{Dialect, Redshift};
pub use error::{DataApiError, DbErrorClass, StatementEnd, is_retriable};
pub use loader::{LoadError, LoadReject, LoadReport, Loader};
pub use retry::Backoff;
pub use warehouse::{Committed, Warehouse, WarehouseSession};
