//! `wsconn connections list|send|disconnect`: the clients a stack tracks.

use crate::cli::{ConnectionsAction, GlobalOpts, OutputFormat};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::gateway::{now_ms, rfc3339};
use crate::ops::Target;
use crate::ops::connections::{self, Outcome, Selection, age};
use serde_json::json;
use std::process::ExitCode;
use std::time::Instant;

pub async fn run(
    g: &GlobalOpts,
    cfg: Config,
    local: Option<&str>,
    action: &ConnectionsAction,
) -> Result<ExitCode> {
    let json = g.output == OutputFormat::Json;
    // The flags first: a selection that makes no sense is reported before anything is
    // contacted.
    match action {
        ConnectionsAction::Send {
            ids,
            all,
            principal,
            ..
        }
        | ConnectionsAction::Disconnect {
            ids,
            all,
            principal,
            ..
        } => {
            Selection::from_flags(ids, *all, principal.as_deref())?;
        }
        ConnectionsAction::List { .. } => {}
    }
    let t = Target::resolve(cfg, local, false).await?;
    match action {
        ConnectionsAction::List { check } => {
            let mut conns = connections::scan(&t).await?;
            if *check {
                connections::check(&t, &mut conns).await;
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&conns).unwrap_or_default()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let now = now_ms();
            let dash = || "-".to_string();
            // The principal column only when some item has one (an authorizer's stack).
            let principals = conns.iter().any(|c| c.principal_id.is_some());
            let principal = |p: Option<&str>| {
                if principals {
                    format!(" {:<16}", p.unwrap_or("-"))
                } else {
                    String::new()
                }
            };
            println!(
                "{:<18}{} {:<21} {:>7}  {:<15} {:<24} {:<21}{}",
                "ID",
                principal(Some("PRINCIPAL")),
                "CONNECTED AT",
                "AGE",
                "SOURCE IP",
                "USER AGENT",
                "EXPIRES",
                if *check { " LIVE" } else { "" }
            );
            for c in &conns {
                let ua: String = c
                    .user_agent
                    .clone()
                    .unwrap_or_default()
                    .chars()
                    .take(24)
                    .collect();
                println!(
                    "{:<18}{} {:<21} {:>7}  {:<15} {:<24} {:<21}{}",
                    c.id,
                    principal(c.principal_id.as_deref()),
                    c.connected_at
                        .map(|m| rfc3339(m / 1000))
                        .unwrap_or_else(dash),
                    c.connected_at.map(|m| age(now - m)).unwrap_or_else(dash),
                    c.source_ip.clone().unwrap_or_else(dash),
                    if ua.is_empty() { dash() } else { ua },
                    c.expires_at.map(rfc3339).unwrap_or_else(dash),
                    match c.live {
                        Some(true) => " live",
                        Some(false) => " gone",
                        None => "",
                    }
                );
            }
            println!(
                "{} connection{} in {}.",
                conns.len(),
                if conns.len() == 1 { "" } else { "s" },
                t.table
            );
            Ok(ExitCode::SUCCESS)
        }
        ConnectionsAction::Send {
            ids,
            all,
            principal,
            message,
            file,
        } => {
            let sel = Selection::from_flags(ids, *all, principal.as_deref())?;
            let data = match (message, file) {
                (Some(m), None) => m.clone().into_bytes(),
                (None, Some(f)) => std::fs::read(f)
                    .map_err(|e| Error::Config(format!("reading {}: {e}", f.display())))?,
                _ => {
                    return Err(Error::Config(
                        "give the message with --message TEXT or --file F".into(),
                    ));
                }
            };
            let targets = connections::targets(&t, &sel).await?;
            let start = Instant::now();
            let results = connections::send(&t, targets, &data).await;
            report(json, "sent", &results, start)
        }
        ConnectionsAction::Disconnect {
            ids,
            all,
            principal,
        } => {
            let sel = Selection::from_flags(ids, *all, principal.as_deref())?;
            let targets = connections::targets(&t, &sel).await?;
            let start = Instant::now();
            let results = connections::disconnect(&t, targets).await;
            report(json, "disconnected", &results, start)
        }
    }
}

/// Per-connection lines for what was not plain success, then the summary.
fn report(
    json: bool,
    verb: &str,
    results: &[(String, Outcome)],
    start: Instant,
) -> Result<ExitCode> {
    let ok: Vec<&str> = pick(results, |o| *o == Outcome::Ok);
    let gone: Vec<&str> = pick(results, |o| matches!(o, Outcome::Gone { .. }));
    let failed: Vec<(&str, &str)> = results
        .iter()
        .filter_map(|(id, o)| match o {
            Outcome::Failed(e) => Some((id.as_str(), e.as_str())),
            _ => None,
        })
        .collect();
    let uncleaned = results
        .iter()
        .filter(|(_, o)| *o == Outcome::Gone { cleaned: false })
        .count();
    if json {
        let doc = json!({
            verb: ok,
            "gone": gone,
            "failed": failed.iter().map(|(id, e)| json!({"id": id, "error": e})).collect::<Vec<_>>(),
            "seconds": start.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for id in &gone {
            println!("gone    {id} (its stale item was deleted)");
        }
        for (id, e) in &failed {
            println!("failed  {id}: {e}");
        }
        println!(
            "{verb} {}, gone {} (cleaned{}), failed {} — in {:.2} s",
            ok.len(),
            gone.len(),
            if uncleaned > 0 {
                format!("; {uncleaned} items could not be deleted")
            } else {
                String::new()
            },
            failed.len(),
            start.elapsed().as_secs_f64()
        );
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Error::Conflict(format!(
            "{} of {} connections failed",
            failed.len(),
            results.len()
        )))
    }
}

fn pick(results: &[(String, Outcome)], f: impl Fn(&Outcome) -> bool) -> Vec<&str> {
    results
        .iter()
        .filter(|(_, o)| f(o))
        .map(|(id, _)| id.as_str())
        .collect()
}
