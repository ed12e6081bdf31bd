//! `cdc`: run the msk-redshift-cdc pipeline on a laptop.

mod explain;

use std::path::PathBuf;
use std::process::ExitCode;

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
        /// An MSK event JSON file, as Lambda delivers it.
        event: PathBuf,
    },
}

/// Exit code for input that is not usable (bad event file, bad config, missing key).
pub const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain { config, event } => explain::run(config.as_deref(), &event),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cdc: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
