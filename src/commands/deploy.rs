//! `wsconn deploy`: read, plan, show; then, when something differs, take the lease, read
//! again under it, apply, and read again until the stack is in sync.

use super::{approve, color_stdout, interrupted};
use crate::cli::{EngineOpts, GlobalOpts, LockOpts, OutputFormat};
use crate::config::Config;
use crate::deploy::context::Cx;
use crate::deploy::engine::{self, Applied, Planned, ROUNDS};
use crate::deploy::lock::Lock;
use crate::deploy::outputs::Outputs;
use crate::deploy::plan::{self, Plan, ResourceChange};
use crate::deploy::progress::{self, Progress};
use crate::deploy::session::{self, Session};
use crate::deploy::snapshot::{Scope, Snapshot};
use crate::error::{Error, Result};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What converging took, for the summary line.
#[derive(Default)]
struct Report {
    rounds: usize,
    slowest: Option<(String, Duration)>,
}

pub async fn run(
    g: &GlobalOpts,
    cfg: Config,
    engine_opts: &EngineOpts,
    lock_opts: &LockOpts,
    allow_replace: bool,
) -> Result<ExitCode> {
    let started = Instant::now();
    let json = g.output == OutputFormat::Json;
    let parallelism = usize::from(engine_opts.parallelism);
    let session = Session::open(cfg, parallelism).await?;
    let snap = session.read(Scope::Full, None).await?;
    let cx = session.into_cx(&snap);
    let planned = engine::plan(&cx.stack, &cx.env, &snap)?;
    let shown = planned.plan();
    if !json {
        print!("{}", plan::render_text(&shown, color_stdout()));
    }
    if planned.is_empty() {
        return finish(&cx, &snap, &shown, json, None, started);
    }
    let changes: Vec<&ResourceChange> = planned.changes().collect();
    approve(&changes, &[], g.yes, allow_replace, json.then_some(&shown))?;

    let lock = Lock::acquire(
        &cx.aws,
        cx.stack_name(),
        "deploy",
        Duration::from_secs(lock_opts.lock_timeout),
        &progress::note,
    )
    .await?;
    let work = converge(&cx, &shown, g.yes, allow_replace, parallelism);
    let result = tokio::select! {
        r = work => r,
        signal = interrupted() => Err(Error::Interrupted(signal)),
    };
    let released = lock.release().await;
    let (snap, report) = result?;
    released?;
    finish(&cx, &snap, &shown, json, Some(report), started)
}

/// Reads under the lease and applies until a fresh read shows nothing to do.
async fn converge(
    cx: &Cx,
    shown: &Plan,
    yes: bool,
    allow_replace: bool,
    parallelism: usize,
) -> Result<(Snapshot, Report)> {
    let mut report = Report::default();
    let mut snap = session::refresh(cx, Scope::Full).await?;
    let mut planned = engine::plan(&cx.stack, &cx.env, &snap)?;
    let agreed: Vec<ResourceChange> = shown.changes.clone();
    if planned.plan() != *shown {
        if planned.is_empty() {
            progress::note(
                "Nothing left to do: the stack changed while this run waited, and it is in sync now.",
            );
            return Ok((snap, report));
        }
        progress::note("The stack changed since it was read (another run?). The plan is now:");
        eprint!("{}", plan::render_text(&planned.plan(), false));
        ask_again(&planned, &agreed, yes, allow_replace)?;
    }
    for round in 1..=ROUNDS {
        report.rounds = round;
        let labels = planned.steps.iter().map(|s| s.label()).collect();
        let progress = Progress::new(labels);
        if let Applied::Vanished(what) = engine::apply(cx, &planned, parallelism, &progress).await?
        {
            progress::note(&format!("{}; reading again", what.join("; ")));
        }
        if let Some(s) = progress.slowest()
            && report.slowest.as_ref().is_none_or(|(_, d)| s.1 > *d)
        {
            report.slowest = Some(s);
        }
        // Prove it: a fresh read, and nothing left to plan.
        snap = session::refresh(cx, Scope::Full).await?;
        planned = engine::plan(&cx.stack, &cx.env, &snap)?;
        if planned.is_empty() {
            return Ok((snap, report));
        }
        let still = planned.plan();
        if round == ROUNDS {
            let what: Vec<String> = still
                .changes
                .iter()
                .map(|c| {
                    let fields: Vec<&str> = c.fields.iter().map(|f| f.field.as_str()).collect();
                    if fields.is_empty() {
                        format!("{} {}", c.action.symbol(), c.resource)
                    } else {
                        format!(
                            "{} {} ({})",
                            c.action.symbol(),
                            c.resource,
                            fields.join(", ")
                        )
                    }
                })
                .collect();
            return Err(Error::Conflict(format!(
                "the stack still differs after {ROUNDS} rounds of applying: {}. Something else is changing it, or AWS does not keep what wsconn sets; run `wsconn diff` to see it",
                what.join("; ")
            )));
        }
        progress::note(&format!(
            "After round {round} a fresh read still differs; applying again:"
        ));
        eprint!("{}", plan::render_text(&still, false));
        ask_again(&planned, &agreed, yes, allow_replace)?;
    }
    unreachable!("the loop returns in its last round")
}

fn ask_again(
    planned: &Planned,
    agreed: &[ResourceChange],
    yes: bool,
    allow_replace: bool,
) -> Result<()> {
    let changes: Vec<&ResourceChange> = planned.changes().collect();
    let agreed: Vec<&ResourceChange> = agreed.iter().collect();
    approve(&changes, &agreed, yes, allow_replace, None)
}

fn finish(
    cx: &Cx,
    snap: &Snapshot,
    shown: &Plan,
    json: bool,
    report: Option<Report>,
    started: Instant,
) -> Result<ExitCode> {
    let out = Outputs::from_snapshot(&cx.stack, snap);
    if let Some(r) = report {
        let (calls, mutating) = cx.aws.calls.get();
        let slowest = r
            .slowest
            .map(|(l, d)| format!("; slowest step: {l} ({:.1} s)", d.as_secs_f64()))
            .unwrap_or_default();
        progress::note(&format!(
            "Deployed in {:.1} s: {calls} AWS calls ({mutating} mutating), {} round{}{slowest}.",
            started.elapsed().as_secs_f64(),
            r.rounds,
            if r.rounds == 1 { "" } else { "s" },
        ));
    }
    if json {
        let doc = serde_json::json!({"plan": shown, "outputs": out});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("\n{}", out.to_text());
    }
    Ok(ExitCode::SUCCESS)
}
