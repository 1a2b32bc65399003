//! `wsconn destroy`: delete everything the stack owns, and nothing else: the destroy
//! job given to `deploy::run`, which takes the lease first (beside the credential
//! check), reads under it, and deletes as the reverse graph: lock, two levels of reads,
//! two of deletes (policies before roles, the function before its role and log group),
//! release.

use super::{color_stdout, consent, interrupted};
use crate::cli::{EngineOpts, GlobalOpts, LockOpts, OutputFormat};
use crate::config::Config;
use crate::deploy::engine::Planned;
use crate::deploy::plan::{self, Plan, ResourceChange};
use crate::deploy::progress::{self, Progress};
use crate::deploy::run::{self, Policies};
use crate::deploy::session::Session;
use crate::error::Result;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub async fn run(
    g: &GlobalOpts,
    cfg: Config,
    engine_opts: &EngineOpts,
    lock_opts: &LockOpts,
) -> Result<ExitCode> {
    let started = Instant::now();
    let json = g.output == OutputFormat::Json;
    let parallelism = usize::from(engine_opts.parallelism);
    let session = Session::open(cfg, parallelism).await?;
    let name = session.stack.name.clone();
    let what = format!("this deletes every resource of stack {name}");
    let pol = Policies {
        yes: g.yes,
        approve: &|_: &Planned, _: &[ResourceChange]| consent(g.yes, &what),
        asks: &|_: &Planned| true,
        show: &|plan: &Plan| {
            if json {
                println!("{}", plan.to_json());
            } else if plan.is_empty() {
                println!("Nothing to destroy: stack {name} has no resources.");
            } else {
                print!("{}", plan::render_text(plan, color_stdout()));
            }
        },
        progress: &Progress::new,
        parallelism,
        lock_timeout: Duration::from_secs(lock_opts.lock_timeout),
    };
    let outcome = run::run(session, &run::Destroy, &pol, interrupted()).await?;
    if outcome.report.is_some() {
        let (calls, mutating) = outcome.cx.aws.calls.get();
        progress::note(&format!(
            "Destroyed in {:.1} s: {calls} AWS calls ({mutating} mutating).",
            started.elapsed().as_secs_f64()
        ));
        if !json {
            println!("Stack {name} destroyed.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
