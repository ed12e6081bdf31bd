//! `cdc`: run the msk-redshift-cdc pipeline on a laptop.

mod check;
mod connector_config;
mod dlq;
mod explain;
mod make_event;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use cdc_cli::ddl;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cdc", version, about = "Run the msk-redshift-cdc pipeline locally")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print, per Kafka record of an MSK event, what the pipeline would do (JSON lines).
    ///
    /// The HMAC masking key is read from the MASKING_KEY environment variable.
    Explain {
        /// Pipeline configuration (TOML). Without it, every data topic goes to
        /// public.<last topic segment> with no rules and no masks.
        #[arg(long, env = "CDC_CONFIG")]
        config: Option<PathBuf>,
        /// A directory of schema-registry schemas for Avro records, one file each:
        /// `confluent-<id>.avsc` or `glue-<schema version uuid>.avsc`. Without it, a
        /// registry-framed record is rejected (converter_binary).
        #[arg(long, value_name = "DIR")]
        schemas: Option<PathBuf>,
        /// An MSK event JSON file, as Lambda delivers it.
        event: PathBuf,
    },
    /// Run the ingest handler in-process on an MSK event file, against the endpoints and
    /// settings in the environment, and print its JSON response.
    Ingest {
        /// Pipeline configuration (TOML); default: the CDC_CONFIG environment variable.
        #[arg(long)]
        config: Option<PathBuf>,
        event: PathBuf,
    },
    /// Run the replay handler in-process on a replay request file and print its response.
    Replay {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Call the handler again from each response's `next_key` until none is left, with a
        /// progress line per call on stderr; print the totals.
        #[arg(long)]
        all: bool,
        request: PathBuf,
    },
    /// Check, per routed table, that the target the environment points at can be loaded:
    /// the table, its metadata columns, the configured columns and their types, the delete
    /// ledger, the identity's privileges. One line per check; exit 0 only when all hold.
    Check {
        /// Pipeline configuration (TOML), or `default`; default: the CDC_CONFIG environment
        /// variable.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Check the table this topic routes to (repeatable); needed with the default routing,
        /// which names no table. Without it: every table of the config.
        #[arg(long = "topic", value_name = "TOPIC")]
        topics: Vec<String>,
        /// The database user whose privileges to check, e.g. `IAMR:<ingest role name>` (the
        /// stack's IngestDatabaseUser output); default: the identity `cdc check` runs as.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// List and inspect dead-letter objects: coordinates, stages, rules and attempts, never a
    /// value.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Print CREATE TABLE statements for the configured targets and every target the events
    /// route to (and views and GRANTs on request).
    Ddl {
        #[arg(long, env = "CDC_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "redshift")]
        dialect: DialectArg,
        /// Also print a current-state view per table (soft-deleted rows left out) and example
        /// analytics views: counts per `one_of` column, age bands of `year`-masked dates,
        /// data-quality counts.
        #[arg(long)]
        views: bool,
        /// Also print the GRANTs this database user needs, e.g. `IAMR:<ingest role name>`
        /// (the stack's IngestDatabaseUser output).
        #[arg(long, value_name = "USER")]
        grants: Option<String>,
        /// MSK events whose records give the columns and types: every column of every record
        /// (rules are not applied to the sample).
        events: Vec<PathBuf>,
    },
    /// Print the Debezium source connector configuration for MSK Connect (key=value lines)
    /// that writes what the pipeline reads, for the tables the config routes.
    ConnectorConfig(connector_config::Args),
    /// Turn kcat -J lines, {"key","value"} documents or Debezium value documents into an MSK
    /// event (JSON) for `cdc explain` and `cdc ingest`.
    MakeEvent(make_event::Args),
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Objects under a prefix with their records and attempts, and record counts by table,
    /// stage and rule.
    List {
        /// Pipeline configuration (routes topics to tables); default: CDC_CONFIG.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Key prefix (default: DLQ_PREFIX; `quarantine/`, `archive/` or `aws/lambda/` name
        /// those).
        #[arg(long)]
        prefix: Option<String>,
        /// Only objects last modified at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
    /// One object: each record's coordinates, stage, reasons and attempts.
    Show {
        /// Pipeline configuration (routes topics to tables); default: CDC_CONFIG.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The object's key in DLQ_BUCKET.
        key: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DialectArg {
    Redshift,
    Postgres,
}

/// Exit code for input that is not usable (bad event file, bad config, missing key).
pub const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain { config, schemas, event } => explain::run(config.as_deref(), schemas.as_deref(), &event),
        Command::Ddl { config, dialect, views, grants, events } => {
            let dialect = match dialect {
                DialectArg::Redshift => cdc_pipeline::redshift::types::DdlFlavor::Redshift,
                DialectArg::Postgres => cdc_pipeline::redshift::types::DdlFlavor::Postgres,
            };
            ddl::run(config.as_deref(), dialect, &events, &ddl::Options { views, grants })
        }
        Command::ConnectorConfig(args) => connector_config::run(&args),
        Command::MakeEvent(args) => make_event::run(&args),
        Command::Ingest { config, event } => return handler(run::ingest(config.as_deref(), &event)),
        Command::Replay { config, all, request } => return handler(run::replay(config.as_deref(), &request, all)),
        Command::Check { config, topics, user } => {
            return handler(check::run(config.as_deref(), &topics, user.as_deref()));
        }
        Command::Dlq { command: DlqCommand::List { config, prefix, since } } => {
            return handler(dlq::list(config.as_deref(), prefix.as_deref(), since.as_deref()));
        }
        Command::Dlq { command: DlqCommand::Show { config, key } } => {
            return handler(dlq::show(config.as_deref(), &key));
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cdc: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Exit code when the handler itself returned an error (the Lambda would fail the batch).
pub const EXIT_HANDLER_ERROR: u8 = 1;

fn handler(result: Result<(), run::RunError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(run::RunError::Setup(message)) => {
            eprintln!("cdc: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(run::RunError::Handler(message)) => {
            eprintln!("cdc: handler error: {message}");
            ExitCode::from(EXIT_HANDLER_ERROR)
        }
        Err(run::RunError::Failed(message)) => {
            eprintln!("cdc: {message}");
            ExitCode::from(EXIT_HANDLER_ERROR)
        }
    }
}
