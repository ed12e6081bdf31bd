//! `redshift-data-local`: serve the Redshift Data API emulator (see the crate README).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use redshift_data_local::{EmulatorConfig, FaultSpec, Isolation, serve};

/// A local Amazon Redshift Data API emulator that runs statements on PostgreSQL.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4599")]
    listen: SocketAddr,
    /// PostgreSQL URL; each request's Database replaces its database name.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Faults to inject, e.g. `throttle=0.1,server_error=0.05,serialization=0.05,disk_full=0.01,latency_ms=50,seed=7`.
    #[arg(long, env = "REDSHIFT_DATA_LOCAL_FAULTS", default_value = "")]
    faults: FaultSpec,
    /// Isolation level of BatchExecuteStatement transactions: snapshot (PostgreSQL REPEATABLE
    /// READ) or serializable.
    #[arg(long, env = "REDSHIFT_DATA_LOCAL_ISOLATION", default_value = "snapshot")]
    isolation: Isolation,
    /// Statements running on PostgreSQL at once; others wait in PICKED.
    #[arg(long, default_value_t = redshift_data_local::MAX_RUNNING)]
    max_running: usize,
    /// Append every received SQL statement to FILE as a JSON line `{"sql": "..."}` (also taken
    /// from REDSHIFT_DATA_LOCAL_RECORD).
    #[arg(long, value_name = "FILE")]
    record: Option<std::path::PathBuf>,
    /// The S3 endpoint COPY reads from (default: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL,
    /// then AWS), e.g. a local S3 server's http://127.0.0.1:PORT.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// Log filter (tracing env-filter syntax), e.g. `debug`.
    #[arg(long, env = "REDSHIFT_DATA_LOCAL_LOG", default_value = "info")]
    log_level: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log_level) {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("redshift-data-local: invalid --log-level {:?}: {error}", args.log_level);
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let result = async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let config = EmulatorConfig::new(args.database_url)
            .with_faults(args.faults)
            .with_isolation(args.isolation)
            .with_max_running(args.max_running);
        // Without --record, EmulatorConfig::new took REDSHIFT_DATA_LOCAL_RECORD.
        let config = match args.record {
            Some(path) => config.with_record(Some(path)),
            None => config,
        };
        let config = match args.s3_endpoint {
            Some(endpoint) => config.with_s3_endpoint(endpoint),
            None => config,
        };
        tokio::select! {
            served = serve(listener, config) => served.map_err(Into::into),
            _ = tokio::signal::ctrl_c() => Ok::<(), Box<dyn std::error::Error>>(()),
        }
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("redshift-data-local: {error}");
            ExitCode::FAILURE
        }
    }
}
