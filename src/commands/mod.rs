//! One file per subcommand, each a thin layer over its capability; this module holds
//! the dispatch from the parsed command line, and what the commands share: the terminal
//! prompt and the consent rules.

pub mod connections;
pub mod deploy;
pub mod destroy;
pub mod diff;
pub mod init;
pub mod local;
pub mod logs;
pub mod outputs;
pub mod releases;
pub mod render;
pub mod rollback;
pub mod smoke;

use crate::cli::{Cli, Command};
use crate::config;
use crate::deploy::plan::{Plan, ResourceChange, Risk};
use crate::error::{Error, Result};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

/// Runs the command on a multi-threaded runtime: the binary's whole life after parsing.
/// (The dispatch lives here rather than in `main.rs` so the binary instantiates none of
/// the commands' async code: that is compiled once, in the library.)
pub fn run(cli: Cli) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Local(format!("starting the async runtime: {e}")))?;
    runtime.block_on(Box::pin(dispatch(cli)))
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    // init writes wsconn.toml: it must not need (or trip over) one.
    if let Command::Init {
        dir,
        example,
        force,
        ..
    } = &cli.command
    {
        return init::run(g, dir.as_deref(), *example, *force);
    }
    if let Command::Completions { shell } = &cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(*shell, &mut cmd, "wsconn", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    let file = config::load_file(g.config.as_deref())?;
    let cfg = config::resolve(&cli.overrides(), file)?;
    match &cli.command {
        Command::Deploy {
            engine,
            lock,
            allow_replace,
            ..
        } => deploy::run(g, cfg, engine, lock, *allow_replace).await,
        Command::Diff { engine, .. } => diff::run(g, cfg, engine).await,
        Command::Destroy { engine, lock, .. } => destroy::run(g, cfg, engine, lock).await,
        Command::Outputs { engine, .. } => outputs::run(g, cfg, engine).await,
        Command::Logs { args, .. } => logs::run(g, cfg, args).await,
        Command::Completions { .. } => Ok(ExitCode::SUCCESS),
        Command::Releases { engine, .. } => releases::run(g, cfg, engine).await,
        Command::Rollback {
            to, engine, lock, ..
        } => rollback::run(g, cfg, to.clone(), engine, lock).await,
        Command::Render { args } => render::run(g, cfg, args),
        Command::Smoke {
            local,
            timeout,
            execute_api,
            check,
            ..
        } => smoke::run(g, cfg, local.as_deref(), *timeout, *execute_api, check).await,
        Command::Connections { local, action, .. } => {
            connections::run(g, cfg, local.as_deref(), action).await
        }
        Command::Local { local, .. } => local::run(g, cfg, local).await,
        Command::Init { .. } => Err(Error::Local("init is dispatched above".into())),
    }
}

/// `diff` exit codes, as `terraform plan -detailed-exitcode`.
pub const EXIT_CHANGES: u8 = 2;

pub fn color_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Asks on the terminal; anything but y/yes is no.
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Gate for changes that need consent: `--yes`, or a "yes" on a terminal.
pub fn consent(yes: bool, what: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    if std::io::stdin().is_terminal() {
        if confirm(&format!("{what}. Apply?")) {
            return Ok(());
        }
        return Err(Error::Declined("nothing was changed".into()));
    }
    Err(Error::Declined(format!(
        "{what}; stdin is not a terminal, so pass --yes to apply it"
    )))
}

/// The consent rules of deploy: replacing the table needs `--allow-replace`; deletes,
/// replacements and widened permissions need `--yes` or a "y". Changes already agreed
/// to (`agreed`) are not asked about again.
pub fn approve(
    changes: &[&ResourceChange],
    agreed: &[&ResourceChange],
    yes: bool,
    allow_replace: bool,
    plan_for_prompt: Option<&Plan>,
) -> Result<()> {
    let new: Vec<&&ResourceChange> = changes
        .iter()
        .filter(|c| c.risk.is_some())
        .filter(|c| {
            !agreed
                .iter()
                .any(|a| a.resource == c.resource && a.action == c.action)
        })
        .collect();
    if let Some(c) = new.iter().find(|c| c.risk == Some(Risk::LosesData))
        && !allow_replace
    {
        return Err(Error::Declined(format!(
            "{} would be replaced ({}); pass --allow-replace to accept losing its data",
            c.resource,
            c.reason.as_deref().unwrap_or("it cannot change in place")
        )));
    }
    if new.is_empty() {
        return Ok(());
    }
    if let Some(plan) = plan_for_prompt
        && !yes
        && std::io::stdin().is_terminal()
    {
        eprint!("{}", crate::deploy::plan::render_text(plan, false));
    }
    let names: Vec<&str> = new.iter().map(|c| c.resource.as_str()).collect();
    let account = new.iter().any(|c| c.risk == Some(Risk::AccountWide));
    consent(
        yes,
        &format!(
            "the plan deletes, replaces or widens permissions of: {}{}",
            names.join(", "),
            if account {
                " (the API Gateway account setting is account-wide: every API of this account and region uses it)"
            } else {
                ""
            }
        ),
    )
}

/// Resolves on SIGINT or SIGTERM, with the signal's name.
pub async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return "SIGINT";
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
