//! `wsconn smoke`: check a deployed stack (or a running `wsconn local`) end to end.

use crate::cli::{GlobalOpts, OutputFormat, SmokeArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ops::{Target, smoke};
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(
    g: &GlobalOpts,
    cfg: Config,
    local: Option<&str>,
    timeout: u64,
    execute_api: bool,
    check: &SmokeArgs,
) -> Result<ExitCode> {
    let json = g.output == OutputFormat::Json;
    let target = Target::resolve(cfg, local, execute_api).await?;
    if !json {
        println!(
            "Smoke test of {}: {} (@connections at {})",
            target.describe, target.websocket_url, target.connections_url
        );
    }
    let opts = smoke::Options {
        query: check.query.clone(),
        headers: check.headers.clone(),
        send: check.send.clone().zip(check.expect.clone()),
    };
    let results = smoke::run(&target, &opts, Duration::from_secs(timeout), &|r| {
        if !json {
            let mark = match r.status {
                "passed" => "✓",
                "failed" => "✗",
                _ => "-",
            };
            println!("{mark} {:<13} {:>5.2} s  {}", r.step, r.seconds, r.detail);
        }
    })
    .await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
    }
    match results.iter().find(|r| r.status == "failed") {
        None => {
            if !json {
                let passed = results.iter().filter(|r| r.status == "passed").count();
                if passed == results.len() {
                    println!("All {passed} steps passed.");
                } else {
                    println!("{passed} steps passed, {} skipped.", results.len() - passed);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(f) => Err(Error::Conflict(format!(
            "smoke step {:?} failed: {}",
            f.step, f.detail
        ))),
    }
}
