//! `wsconn logs`: the stack's log groups as one stream (see `crate::logs`).

use crate::cli::{GlobalOpts, LogsArgs, OutputFormat};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::logs::read::{self, Fetcher, Seen};
use crate::logs::select::Selector;
use crate::logs::show::Shower;
use crate::logs::sources::{self, Kind, Narrow};
use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `10m`, `2h`, `1d` before `now`, or an RFC 3339 time: epoch milliseconds.
pub fn parse_when(s: &str, now_ms: i64) -> std::result::Result<i64, String> {
    let s = s.trim();
    if let Some(days) = s.strip_suffix('d').and_then(|d| d.parse::<f64>().ok()) {
        return Ok(now_ms - (days * 86_400_000.0) as i64);
    }
    if let Ok(d) = crate::cli::parse_duration(s)
        && s.chars().next().is_some_and(|c| c.is_ascii_digit())
        && !s.contains('-')
        && !s.contains(':')
    {
        return Ok(now_ms - d.as_millis() as i64);
    }
    aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime)
        .map_err(|_| format!("{s:?}: give a duration before now (10m, 2h, 1d) or an RFC 3339 time (2026-12-07T10:00:00Z)"))
        .and_then(|t| t.to_millis().map_err(|e| e.to_string()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The connections of `principal` that the table tracks (a Scan, all pages).
async fn principal_connections(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    hash_key: &str,
    principal: &str,
) -> Result<HashSet<String>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut found = HashSet::new();
    let mut start = None;
    loop {
        let out = ddb
            .scan()
            .table_name(table)
            .filter_expression("principalId = :p")
            .expression_attribute_values(":p", AttributeValue::S(principal.to_string()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| {
                crate::error::aws(
                    format!("scanning table {table} for principal {principal}"),
                    e,
                )
            })?;
        for item in out.items() {
            if let Some(AttributeValue::S(id)) = item.get(hash_key) {
                found.insert(id.clone());
            }
        }
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(found),
        }
    }
}

pub async fn run(g: &GlobalOpts, cfg: Config, a: &LogsArgs) -> Result<ExitCode> {
    let now = now_ms();
    let since = parse_when(&a.since, now).map_err(|e| Error::Config(format!("--since {e}")))?;
    let until = a
        .until
        .as_deref()
        .map(|u| parse_when(u, now))
        .transpose()
        .map_err(|e| Error::Config(format!("--until {e}")))?;
    if until.is_some_and(|u| u < since) {
        return Err(Error::Config("--until is before --since".into()));
    }
    let (session, out) = crate::deploy::outputs::read(cfg, 8).await?;
    let stack = &session.stack;
    if out.api_id.is_none() && out.functions.is_empty() {
        return Err(Error::Config(format!(
            "stack {} is not deployed in {} (no API, no function): nothing has logs yet",
            stack.name, out.region
        )));
    }
    let narrow = Narrow {
        routes: a.routes.clone(),
        authorizer: a.authorizer,
        access: a.access,
        execution: a.execution,
    };
    let (list, missing) = sources::wanted(stack, out.api_id.as_deref(), &narrow)?;
    for m in &missing {
        eprintln!("note: {m}");
    }
    let json = g.output == OutputFormat::Json;
    let shower = Shower::new(list.clone(), json, super::color_stdout());
    let note = |m: &str| eprintln!("note: {m}");
    let fetcher = Fetcher::new(&session.aws.logs, a.filter.clone(), &note);
    let groups: Vec<(usize, String)> = list
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.group.clone()))
        .collect();

    // --connection / --principal: the chosen connections, and what the access log ties
    // to them over the range (read first, so ties that come after the lines they tie are
    // known when those lines are decided).
    let selecting = !a.connections.is_empty() || a.principal.is_some();
    let mut selector = if selecting {
        let mut conns: HashSet<String> = a.connections.iter().cloned().collect();
        if let (Some(p), Some(table)) = (&a.principal, &out.table_name) {
            conns.extend(
                principal_connections(&session.aws.ddb, table, stack.table.hash_key, p).await?,
            );
        }
        let mut sel = Selector::new(
            list.iter().map(|s| s.kind).collect(),
            conns,
            a.principal.clone(),
        );
        sel.hold_ms = i64::from(
            stack
                .functions
                .iter()
                .map(|f| f.timeout_s)
                .max()
                .unwrap_or(10),
        ) * 1000
            + 5_000;
        let access: Vec<(usize, String)> = groups
            .iter()
            .filter(|(i, _)| list[*i].kind == Kind::Access)
            .cloned()
            .collect();
        // First the principal's records (they name its connections), then every chosen
        // connection's (they tie request ids to it).
        let quoted = |t: &String| format!("?\"{}\"", t.replace('"', ""));
        let rounds: Vec<Option<Vec<String>>> =
            vec![a.principal.as_ref().map(|p| vec![quoted(p)]), None];
        for round in rounds {
            let terms = match round {
                Some(t) => t,
                None => sel.connections.iter().map(quoted).collect(),
            };
            if access.is_empty() || terms.is_empty() {
                continue;
            }
            let pre = Fetcher::new(&session.aws.logs, Some(terms.join(" ")), &note);
            read::range(&pre, &access, since, until, &mut |e| {
                sel.learn(&e);
                true
            })
            .await?;
        }
        if a.follow {
            sel.grace = Duration::from_secs(3);
        }
        Some(sel)
    } else {
        None
    };

    let stdout = std::io::stdout();
    let mut open = true;
    let emit = |e: crate::logs::Event, open: &mut bool| {
        if let Some(line) = shower.line(&e) {
            let mut o = stdout.lock();
            if writeln!(o, "{line}").and_then(|_| o.flush()).is_err() {
                *open = false;
            }
        }
    };
    let mut seen = Seen::default();
    let absent = {
        let mut sink = |e: crate::logs::Event| -> bool {
            if a.follow {
                seen.first_time(&e);
                // The catch-up keeps only the ids the polls can return again.
                if seen.held() % 4096 == 0 {
                    seen.prune(since);
                }
            }
            match selector.as_mut() {
                Some(sel) => {
                    for e in sel.push(e, Instant::now()) {
                        emit(e, &mut open);
                    }
                }
                None => emit(e, &mut open),
            }
            open
        };
        read::range(&fetcher, &groups, since, until, &mut sink).await?
    };
    let mut named: HashSet<usize> = HashSet::new();
    for i in absent {
        named.insert(i);
        eprintln!("note: {}", sources::why_absent(stack, &list[i]));
    }
    if !a.follow {
        if let Some(sel) = selector.as_mut() {
            for e in sel.release(Instant::now(), true) {
                emit(e, &mut open);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    // --follow: poll until Ctrl-C (which ends it with exit 0).
    let follow = async {
        let mut next = tokio::time::Instant::now();
        while open {
            next += a.poll;
            tokio::time::sleep_until(next).await;
            let fresh = read::poll(&fetcher, &groups, &mut seen, since).await?;
            let now = Instant::now();
            for e in fresh {
                match selector.as_mut() {
                    Some(sel) => {
                        for e in sel.push(e, now) {
                            emit(e, &mut open);
                        }
                    }
                    None => emit(e, &mut open),
                }
            }
            if let Some(sel) = selector.as_mut() {
                for e in sel.release(now, false) {
                    emit(e, &mut open);
                }
            }
        }
        Ok::<_, Error>(())
    };
    tokio::select! {
        r = follow => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_is_a_duration_before_now_or_a_time() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_when("10m", now).unwrap(), now - 600_000);
        assert_eq!(parse_when("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_when("1d", now).unwrap(), now - 86_400_000);
        assert_eq!(
            parse_when("2023-11-14T22:13:20Z", now).unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_when("2023-11-14T22:13:20.5Z", now).unwrap(),
            1_700_000_000_500
        );
        let e = parse_when("yesterday", now).unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
    }
}
