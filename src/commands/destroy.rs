//! `wsconn destroy`: delete everything the stack owns, and nothing else.
//!
//! The lease is taken first (beside the credential check), then the stack is read
//! under it: deleting needs no "read first to see if anything changes" pass, and this
//! keeps a destroy within six round-trip levels: lock, two levels of reads, two of
//! deletes (policies before roles, the function before its role and log group), release.

use super::{color_stdout, consent, interrupted};
use crate::cli::{EngineOpts, GlobalOpts, LockOpts, OutputFormat};
use crate::config::Config;
use crate::deploy::engine::{self, Applied};
use crate::deploy::kind::Scope;
use crate::deploy::lock::Lock;
use crate::deploy::plan;
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
) -> Result<ExitCode> {
    let started = Instant::now();
    let json = g.output == OutputFormat::Json;
    let parallelism = usize::from(engine_opts.parallelism);
    let session = Session::open(cfg, parallelism).await?;
    let timeout = Duration::from_secs(lock_opts.lock_timeout);
    let (env, lock) = tokio::join!(
        session.aws.identity(),
        Lock::acquire(
            &session.aws,
            &session.stack.name,
            "destroy",
            timeout,
            &progress::note
        )
    );
    // A bad credential or endpoint is the error to report, even if the lock failed too.
    let env = match env {
        Ok(e) => e,
        Err(e) => {
            if let Ok(l) = lock {
                let _ = l.release().await;
            }
            return Err(e);
        }
    };
    let lock = lock?;
    let work = async move {
        let snap = session.read(Scope::Destroy, Some(env)).await?;
        let planned = engine::plan_destroy(&session.stack, &snap)?;
        let plan = planned.plan();
        if json {
            println!("{}", plan.to_json());
        } else if planned.is_empty() {
            println!(
                "Nothing to destroy: stack {} has no resources.",
                session.stack.name
            );
        } else {
            print!("{}", plan::render_text(&plan, color_stdout()));
        }
        if planned.is_empty() {
            return Ok(false);
        }
        consent(
            g.yes,
            &format!(
                "this deletes every resource of stack {}",
                session.stack.name
            ),
        )?;
        let name = session.stack.name.clone();
        let cx = session.into_cx(&snap);
        let progress = Progress::new(planned.steps.iter().map(|s| s.label()).collect());
        if let Applied::Vanished(what) =
            engine::apply(&cx, &planned, parallelism, &progress).await?
        {
            // Something went away on its own: it is gone either way.
            progress::note(&what.join("; "));
        }
        let (calls, mutating) = cx.aws.calls.get();
        progress::note(&format!(
            "Destroyed in {:.1} s: {calls} AWS calls ({mutating} mutating).",
            started.elapsed().as_secs_f64()
        ));
        if !json {
            println!("Stack {name} destroyed.");
        }
        Ok::<bool, Error>(true)
    };
    let result = tokio::select! {
        r = work => r,
        signal = interrupted() => Err(Error::Interrupted(signal)),
    };
    let released = lock.release().await;
    result?;
    released?;
    Ok(ExitCode::SUCCESS)
}
