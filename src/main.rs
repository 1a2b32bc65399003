//! wsconn: deploys the API Gateway WebSocket connection-tracking pattern by direct SDK
//! calls, runs it locally, and operates it. `main` parses, dispatches to one file per
//! command (`commands/`), and maps errors to one line on stderr and exit codes.

mod assets;
mod aws;
mod cli;
mod commands;
mod config;
mod deploy;
mod error;
mod gateway;
mod local;
mod ops;
mod stack;
mod vtl;
mod wait;

use clap::Parser;
use cli::{Cli, Command};
use error::Error;
use std::process::ExitCode;

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
    let cfg = config::resolve(g, cli.command.stack_opts(), file)?;
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
