//! The library half of `cdc` (the binary is `src/main.rs`): what the command does that the
//! Lambdas never do. Its own crate so that the deployed library holds none of it, and so that
//! the integration tests create their tables with the very code `cdc ddl` runs.

pub mod ddl;
