//! The `wsconn` binary: parses the command line, runs the command (`wsconn::commands`,
//! one file per command), and maps errors to one line on stderr and exit codes.

use clap::Parser;
use std::process::ExitCode;
use wsconn::cli::Cli;
use wsconn::error::Error;

/// Exit code after SIGINT/SIGTERM, as shells report 128 + SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    // clap exits 2 on a usage error, which `diff` uses for "changes pending": report
    // usage errors with exit 1 like every other error; help and version exit 0.
    let cli = match Cli::try_parse_from(wsconn::cli::normalize_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match wsconn::commands::run(cli) {
        Ok(code) => code,
        Err(e @ Error::Interrupted(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
