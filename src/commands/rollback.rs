//! `wsconn rollback`: the rollback job given to `deploy::run` (lease first, one read,
//! one UpdateStage), with this command's consent and report.

use super::{color_stdout, consent, interrupted};
use crate::cli::{EngineOpts, GlobalOpts, LockOpts, OutputFormat};
use crate::config::Config;
use crate::deploy::engine::Planned;
use crate::deploy::plan::{self, Plan, ResourceChange};
use crate::deploy::progress::{self, Progress};
use crate::deploy::rollback::Rollback;
use crate::deploy::run::{self, Policies};
use crate::deploy::session::Session;
use crate::error::Result;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub async fn run(
    g: &GlobalOpts,
    cfg: Config,
    to: Option<String>,
    engine_opts: &EngineOpts,
    lock_opts: &LockOpts,
) -> Result<ExitCode> {
    let started = Instant::now();
    let json = g.output == OutputFormat::Json;
    let parallelism = usize::from(engine_opts.parallelism);
    let session = Session::open(cfg, parallelism).await?;
    let stage = session.stack.stage.clone();
    let pol = Policies {
        yes: g.yes,
        approve: &|planned: &Planned, _: &[ResourceChange]| {
            let to = planned
                .changes()
                .flat_map(|c| &c.fields)
                .find(|f| f.field == "deployment")
                .and_then(|f| f.desired.as_str().map(String::from))
                .unwrap_or_default();
            consent(
                g.yes,
                &format!(
                    "this switches stage {stage} to deployment {to}: clients get that release's code, routes and templates"
                ),
            )
        },
        asks: &|_: &Planned| true,
        show: &|plan: &Plan| {
            if json {
                println!("{}", plan.to_json());
            } else if plan.is_empty() {
                println!("Stage {stage} already serves that release: nothing to do.");
            } else {
                print!("{}", plan::render_text(plan, color_stdout()));
            }
        },
        progress: &Progress::new,
        parallelism,
        lock_timeout: Duration::from_secs(lock_opts.lock_timeout),
    };
    let outcome = run::run(session, &Rollback { to }, &pol, interrupted()).await?;
    if outcome.report.is_some() {
        let id = outcome.cx.facts().deployment_id.clone().unwrap_or_default();
        let (calls, mutating) = outcome.cx.aws.calls.get();
        progress::note(&format!(
            "Rolled back in {:.1} s: {calls} AWS calls ({mutating} mutating).",
            started.elapsed().as_secs_f64()
        ));
        let versions: Vec<String> = outcome
            .plan
            .changes
            .iter()
            .flat_map(|c| &c.fields)
            .filter(|f| f.field == "versions")
            .filter_map(|f| f.desired.as_object())
            .flat_map(|m| {
                m.iter()
                    .map(|(f, v)| format!("{f}:{}", v.as_str().unwrap_or_default()))
            })
            .collect();
        progress::note(&format!(
            "stage {stage} now serves deployment {id}: {}",
            versions.join(", ")
        ));
        progress::note(
            "Not restored: roles and their policies, the table, and stage settings (throttling, logging) changed since that release. `wsconn diff` now shows the stage's release as drift; `wsconn deploy` rolls forward.",
        );
    }
    Ok(ExitCode::SUCCESS)
}
