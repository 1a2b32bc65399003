//! `wsconn deploy`: read, plan, show; then, when something differs, take the lease and
//! let `deploy::converge` apply rounds until a fresh read shows the stack in sync. This
//! file decides only what is the command's: consent, the terminal, the summary.

use super::{approve, color_stdout, interrupted};
use crate::cli::{EngineOpts, GlobalOpts, LockOpts, OutputFormat};
use crate::config::Config;
use crate::deploy::context::Cx;
use crate::deploy::converge::{self, Report};
use crate::deploy::engine::{self, Planned};
use crate::deploy::kind::{Scope, Snapshot};
use crate::deploy::lock::Lock;
use crate::deploy::outputs::Outputs;
use crate::deploy::plan::{self, Plan, ResourceChange};
use crate::deploy::progress::{self, Progress};
use crate::deploy::session::Session;
use crate::error::{Error, Result};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    let mut session = Session::open(cfg, parallelism).await?;
    // Handler directories are zipped before any AWS call: a package Lambda would refuse
    // stops here.
    session.stack.package()?;
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
    let yes = g.yes;
    let ask_again = move |planned: &Planned, agreed: &[ResourceChange]| {
        let changes: Vec<&ResourceChange> = planned.changes().collect();
        let agreed: Vec<&ResourceChange> = agreed.iter().collect();
        approve(&changes, &agreed, yes, allow_replace, None)
    };
    let work = converge::converge(&cx, &shown, parallelism, &ask_again, &Progress::new);
    let result = tokio::select! {
        r = work => r,
        signal = interrupted() => Err(Error::Interrupted(signal)),
    };
    let released = lock.release().await;
    let (snap, report) = result?;
    released?;
    finish(&cx, &snap, &shown, json, Some(report), started)
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
