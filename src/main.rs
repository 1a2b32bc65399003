//! wsconn: deploys the API Gateway WebSocket connection-tracking pattern by direct SDK
//! calls. `main` is the edge: it maps errors to one line on stderr and exit codes.

mod assets;
mod aws;
mod cli;
mod config;
mod engine;
mod error;
mod plan;
mod resources;
mod wait;

use clap::Parser;
use cli::{Cli, Command, OutputFormat};
use error::Error;
use plan::Risk;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

/// `diff` exit codes, as `terraform plan -detailed-exitcode`.
const EXIT_CHANGES: u8 = 2;

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
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn color_stdout() -> bool {
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
fn consent(yes: bool, what: &str) -> Result<(), Error> {
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

async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let g = &cli.global;
    let file = config::load_file(g.config.as_deref())?;
    let cfg = config::resolve(g, cli.command.stack_opts(), file)?;
    let json = g.output == OutputFormat::Json;
    let cx = engine::load(cfg).await?;
    match &cli.command {
        Command::Diff { .. } => {
            let plan = engine::plan(&cx).await?.plan();
            if json {
                println!("{}", plan.to_json());
            } else {
                print!("{}", plan::render_text(&plan, color_stdout()));
            }
            Ok(if plan.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_CHANGES)
            })
        }
        Command::Deploy { allow_replace, .. } => {
            let planned = engine::plan(&cx).await?;
            let plan = planned.plan();
            if !json {
                print!("{}", plan::render_text(&plan, color_stdout()));
            }
            if let Some(c) = planned.changes().find(|c| c.risk == Some(Risk::LosesData)) {
                if !allow_replace {
                    return Err(Error::Declined(format!(
                        "{} would be replaced ({}); pass --allow-replace to accept losing its data",
                        c.resource,
                        c.reason.as_deref().unwrap_or("it cannot change in place")
                    )));
                }
            }
            let risky: Vec<&str> = planned
                .changes()
                .filter(|c| c.risk.is_some())
                .map(|c| c.resource.as_str())
                .collect();
            if !risky.is_empty() {
                if json && !g.yes && std::io::stdin().is_terminal() {
                    eprint!("{}", plan::render_text(&plan, false));
                }
                consent(
                    g.yes,
                    &format!(
                        "the plan deletes, replaces or widens permissions of: {}",
                        risky.join(", ")
                    ),
                )?;
            }
            engine::apply(&cx, &planned).await?;
            let out = engine::outputs(&cx).await?;
            if json {
                let doc = serde_json::json!({"plan": plan, "outputs": out});
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                print!("\n{}", out.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Destroy { .. } => {
            let planned = engine::plan_destroy(&cx).await?;
            let plan = planned.plan();
            if json {
                println!("{}", plan.to_json());
            } else if plan.is_empty() {
                println!("Nothing to destroy: stack {} has no resources.", cx.stack());
            } else {
                print!("{}", plan::render_text(&plan, color_stdout()));
            }
            if plan.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            consent(
                g.yes,
                &format!("this deletes every resource of stack {}", cx.stack()),
            )?;
            engine::apply(&cx, &planned).await?;
            if !json {
                println!("Stack {} destroyed.", cx.stack());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Outputs { .. } => {
            let out = engine::outputs(&cx).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                print!("{}", out.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
