//! The `wsconn` binary: parses the command line, dispatches to one file per command
//! (`wsconn::commands`), and maps errors to one line on stderr and exit codes.

use clap::Parser;
use std::process::ExitCode;
use wsconn::cli::{Cli, Command};
use wsconn::commands;
use wsconn::config;
use wsconn::error::Error;

/// Exit code after SIGINT/SIGTERM, as shells report 128 + SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    // clap exits 2 on a usage error, which `diff` uses for "changes pending": report
    // usage errors with exit 1 like every other error; help and version exit 0.
    let cli = match Cli::try_parse() {
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(Box::pin(run(cli))) {
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

async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let g = &cli.global;
    let file = config::load_file(g.config.as_deref())?;
    let cfg = config::resolve(&cli.overrides(), file)?;
    match &cli.command {
        Command::Deploy {
            engine,
            lock,
            allow_replace,
            ..
        } => commands::deploy::run(g, cfg, engine, lock, *allow_replace).await,
        Command::Diff { engine, .. } => commands::diff::run(g, cfg, engine).await,
        Command::Destroy { engine, lock, .. } => commands::destroy::run(g, cfg, engine, lock).await,
        Command::Outputs { engine, .. } => commands::outputs::run(g, cfg, engine).await,
        Command::Render { args } => commands::render::run(g, cfg, args),
        Command::Smoke { local, timeout, .. } => {
            commands::smoke::run(g, cfg, local.as_deref(), *timeout).await
        }
        Command::Connections { local, action, .. } => {
            commands::connections::run(g, cfg, local.as_deref(), action).await
        }
        Command::Local { local, .. } => commands::local::run(g, cfg, local).await,
    }
}
