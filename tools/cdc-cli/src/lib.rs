//! The library half of `cdc` (the binary is `src/main.rs`): what the command does that the
//! Lambdas never do. Its own crate so that the deployed library holds none of it, and so that
//! the integration tests create their tables with the very code `cdc ddl` runs.

pub mod ddl;

use std::path::Path;

use cdc_pipeline::Config;

/// The value of `--config` / `CDC_CONFIG` that asks for the default routing, as the functions
/// read it (`settings::ConfigSource::DefaultRouting`).
pub const DEFAULT_ROUTING: &str = "default";

/// The pipeline config every subcommand reads: a TOML file, or the default routing (every data
/// topic to `public.<last topic segment>`, no rules, no masks) for `default` or no config at
/// all. Errors name the file, line and dotted key path ([`cdc_pipeline::config::ConfigError`]).
pub fn load_config(config: Option<&Path>) -> Result<Config, String> {
    match config {
        None => Ok(Config::default_routing()),
        Some(path) if path.as_os_str() == DEFAULT_ROUTING => Ok(Config::default_routing()),
        Some(path) => Config::load(path).map_err(|e| e.to_string()),
    }
}
