//! `wsconn deploy`: the deploy job given to `deploy::run`, which reads, plans, shows,
//! takes the lease when something differs, applies rounds until a fresh read shows the
//! stack in sync, and releases the lease. This file decides only what is the command's:
//! consent, the terminal, the summary and the release line.

use super::{approve, color_stdout, interrupted};
use crate::cli::{EngineOpts, GlobalOpts, LockOpts, OutputFormat};
use crate::config::Config;
use crate::deploy::engine::Planned;
use crate::deploy::outputs::Outputs;
use crate::deploy::plan::{self, Plan, ResourceChange};
use crate::deploy::progress::{self, Progress};
use crate::deploy::run::{self, Outcome, Policies};
use crate::deploy::session::Session;
use crate::error::Result;
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
    let yes = g.yes;
    let pol = Policies {
        yes,
        approve: &|planned: &Planned, agreed: &[ResourceChange]| {
            let changes: Vec<&ResourceChange> = planned.changes().collect();
            let agreed: Vec<&ResourceChange> = agreed.iter().collect();
            let shown = (json && agreed.is_empty()).then(|| planned.plan());
            approve(&changes, &agreed, yes, allow_replace, shown.as_ref())
        },
        asks: &|planned: &Planned| planned.changes().any(|c| c.risk.is_some()),
        show: &|plan: &Plan| {
            if !json {
                print!("{}", plan::render_text(plan, color_stdout()));
            }
        },
        progress: &Progress::new,
        parallelism,
        lock_timeout: Duration::from_secs(lock_opts.lock_timeout),
    };
    let outcome = run::run(session, &run::Deploy, &pol, interrupted()).await?;
    finish(&outcome, json, started)
}

/// The summary line, the release line, and the outputs.
fn finish(o: &Outcome, json: bool, started: Instant) -> Result<ExitCode> {
    let out = Outputs::from_snapshot(&o.cx.stack, &o.snap);
    if let Some(r) = &o.report {
        let (calls, mutating) = o.cx.aws.calls.get();
        let slowest = r
            .slowest
            .as_ref()
            .map(|(l, d)| format!("; slowest step: {l} ({:.1} s)", d.as_secs_f64()))
            .unwrap_or_default();
        progress::note(&format!(
            "Deployed in {:.1} s: {calls} AWS calls ({mutating} mutating), {} round{}{slowest}.",
            started.elapsed().as_secs_f64(),
            r.rounds,
            if r.rounds == 1 { "" } else { "s" },
        ));
        if out.release.is_some() && out.release != o.served_before {
            progress::note(&release_line(&out));
        }
    }
    if json {
        let doc = serde_json::json!({"plan": o.plan, "outputs": out});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("\n{}", out.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

/// `released <id>: <stage> now serves <fn>:<version>, …`
pub fn release_line(out: &Outputs) -> String {
    let versions: Vec<String> = out
        .versions
        .iter()
        .map(|(f, v)| format!("{f}:{v}"))
        .collect();
    format!(
        "released {}: {} now serves {}",
        out.release.as_deref().unwrap_or_default(),
        out.stage.as_deref().unwrap_or_default(),
        versions.join(", ")
    )
}
