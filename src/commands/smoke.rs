//! `wsconn smoke`: check a deployed stack (or a running `wsconn local`) end to end.

use crate::cli::{GlobalOpts, OutputFormat};
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
) -> Result<ExitCode> {
    let json = g.output == OutputFormat::Json;
    let target = Target::resolve(cfg, local).await?;
    if !json {
        println!(
            "Smoke test of {}: {} (@connections at {})",
            target.describe, target.websocket_url, target.connections_url
        );
    }
    let results = smoke::run(&target, Duration::from_secs(timeout), &|r| {
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
                println!("All {} steps passed.", results.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(f) => Err(Error::Conflict(format!(
            "smoke step {:?} failed: {}",
            f.step, f.detail
        ))),
    }
}
