//! The one owner of a run that changes the stack: read, plan, show, consent, lease,
//! apply, prove, release. `deploy`, `destroy` and `rollback` are three [`Job`]s given to
//! [`run`]; what the runner must not decide itself (the consent rules and the terminal,
//! the progress display, the signal that stops it) comes in as [`Policies`], the way
//! kube-rs's `Controller::run` takes a reconciler and an error policy. No command wires
//! a lease or a `select!` of its own.
//!
//! Guarantees:
//! - **Nothing to do, nothing sent.** A plan with no step ends the run after its reads:
//!   no lease, no mutating call.
//! - **One read when nobody else runs.** A job that always changes something (destroy,
//!   rollback) takes the lease first, beside the credential check, and reads once under
//!   it. A deploy reads first (a no-op must not take the lease), and with the lease's
//!   state in that same read: when no other run held the lease then, none takes it
//!   before this one, and no prompt made the user wait, the plan made from that read is
//!   applied as it is. Otherwise the stack is read again under the lease, and a plan
//!   that changed is shown and agreed to again (`super::converge`).
//! - **The lease is released** on success, on an error and on Ctrl-C.
//! - **A failure says what clients get.** Before the stage's switch nothing clients get
//!   has changed, and the error says which deployment the stage still serves; after it,
//!   the error says the release is live and what is left to do.

use super::context::Cx;
use super::converge::{self, Report, RoundProgress};
use super::engine::{self, Applied, Planned};
use super::graph::{Events, Kind};
use super::kind::{Scope, Snapshot};
use super::lock::{self, Lock};
use super::plan::{Plan, ResourceChange};
use super::progress;
use super::resources::{deployment::Deployment, stage::Stage};
use super::session::Session;
use crate::error::{Error, Result};
use crate::stack::Stack;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What a run does with what it read.
pub trait Job: Sync {
    /// The command, as the lease records it.
    fn command(&self) -> &'static str;
    /// What the read covers.
    fn scope(&self) -> Scope;
    /// The steps that make the change, from what was read. Pure.
    fn plan(&self, stack: &Stack, snap: &Snapshot) -> Result<Planned>;
    /// Whether the job always changes something (so the lease comes first).
    fn lease_first(&self) -> bool;
    /// Whether applying is proved by reading again until nothing is left to plan (deploy),
    /// or applied once (destroy, rollback).
    fn proves(&self) -> bool;
}

/// What the command decides for the runner.
pub struct Policies<'a, P> {
    /// `--yes`: consent is given, no prompt will make the user wait.
    pub yes: bool,
    /// Whether a plan may be applied: `(planned, agreed so far)`.
    pub approve: &'a (dyn Fn(&Planned, &[ResourceChange]) -> Result<()> + Sync),
    /// Whether approving `planned` would ask on the terminal.
    pub asks: &'a (dyn Fn(&Planned) -> bool + Sync),
    /// Shows the plan (the command's format).
    pub show: &'a (dyn Fn(&Plan) + Sync),
    /// The display one round's steps report to.
    pub progress: &'a (dyn Fn(Vec<String>) -> P + Sync),
    pub parallelism: usize,
    pub lock_timeout: Duration,
}

/// How a run ended.
pub struct Outcome {
    pub cx: Cx,
    /// The last read: the stack as it is now.
    pub snap: Snapshot,
    /// The plan that was shown (and agreed to).
    pub plan: Plan,
    /// `None` when there was nothing to do.
    pub report: Option<Report>,
    /// The deployment the stage served before the run, and whether it switched.
    pub served_before: Option<String>,
}

/// The deployment the stack's stage serves in `snap`, with its creation time.
pub fn serving(stack: &Stack, snap: &Snapshot) -> Option<(String, Option<String>)> {
    let id = snap.get::<Stage>(&stack.stage)?.deployment_id?;
    let created = snap
        .get::<Deployment>(&id)
        .and_then(|d| d.created_date().map(|t| crate::gateway::rfc3339(t.secs())));
    Some((id, created))
}

/// Runs `job`: see the module's guarantees. `shutdown` resolves with a signal's name.
pub async fn run<P: RoundProgress>(
    session: Session,
    job: &dyn Job,
    pol: &Policies<'_, P>,
    shutdown: impl Future<Output = &'static str>,
) -> Result<Outcome> {
    let stack_name = session.stack.name.clone();
    let timeout = pol.lock_timeout;

    // The first read, and the lease when it comes first.
    let (snap, lock, read_again) = if job.lease_first() {
        let (env, lock) = tokio::join!(
            session.aws.identity(),
            Lock::acquire(
                &session.aws,
                &stack_name,
                job.command(),
                timeout,
                &progress::note
            )
        );
        // A bad credential or endpoint is the error to report, even if the lock failed.
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
        match session.read(job.scope(), Some(env)).await {
            Ok(snap) => (snap, Some(lock), false),
            Err(e) => {
                let _ = lock.release().await;
                return Err(e);
            }
        }
    } else {
        let (snap, held) = tokio::join!(
            session.read(job.scope(), None),
            lock::held(&session.aws, &stack_name)
        );
        (snap?, None, held?)
    };

    let planned = job.plan(&session.stack, &snap)?;
    let shown = planned.plan();
    (pol.show)(&shown);
    let served_before = serving(&session.stack, &snap).map(|(id, _)| id);
    let cx = session.into_cx(&snap);
    if planned.is_empty() {
        if let Some(l) = lock {
            l.release().await?;
        }
        return Ok(Outcome {
            cx,
            snap,
            plan: shown,
            report: None,
            served_before,
        });
    }
    let prompted = !pol.yes && (pol.asks)(&planned);
    if let Err(e) = (pol.approve)(&planned, &[]) {
        if let Some(l) = lock {
            let _ = l.release().await;
        }
        return Err(e);
    }
    let (lock, contended) = match lock {
        Some(l) => (l, false),
        None => {
            let taken = Lock::acquire(
                &cx.aws,
                &stack_name,
                job.command(),
                timeout,
                &progress::note,
            )
            .await;
            match taken {
                Ok(l) => {
                    let contended = l.contended();
                    (l, contended)
                }
                Err(e) => {
                    let watch = Watch::default();
                    watch.round(&planned, ());
                    return Err(explain(e, &cx, &watch, served_before.as_deref(), job));
                }
            }
        }
    };
    let read_again = read_again || contended || prompted;

    let watch = Watch::default();
    let round = |planned: &Planned| watch.round(planned, (pol.progress)(labels(planned)));
    let work = async {
        if job.proves() {
            converge::converge(
                &cx,
                &shown,
                (!read_again).then_some((snap, planned)),
                pol.parallelism,
                pol.approve,
                &round,
            )
            .await
        } else {
            let shown_progress = round(&planned);
            if let Applied::Vanished(what) =
                engine::apply(&cx, &planned, pol.parallelism, &shown_progress).await?
            {
                progress::note(&what.join("; "));
            }
            let report = Report {
                rounds: 1,
                slowest: shown_progress.slowest(),
            };
            Ok((snap, report))
        }
    };
    let result = tokio::select! {
        r = work => r,
        signal = shutdown => Err(Error::Interrupted(signal)),
    };
    let released = lock.release().await;
    match result {
        Ok((snap, report)) => {
            released?;
            Ok(Outcome {
                cx,
                snap,
                plan: shown,
                report: Some(report),
                served_before,
            })
        }
        Err(e) => Err(explain(e, &cx, &watch, served_before.as_deref(), job)),
    }
}

fn labels(planned: &Planned) -> Vec<String> {
    planned.steps.iter().map(|s| s.label()).collect()
}

/// The error, with what clients get now: unchanged before the switch, the new release
/// after it.
fn explain(e: Error, cx: &Cx, watch: &Watch, before: Option<&str>, job: &dyn Job) -> Error {
    if job.command() == "destroy"
        || !watch.planned_switch.load(Ordering::Relaxed)
        || matches!(e, Error::Interrupted(_))
    {
        return e;
    }
    let stage = &cx.stack.stage;
    if watch.switched.load(Ordering::Relaxed) {
        let id = cx.facts().deployment_id.clone().unwrap_or_default();
        return Error::AfterSwitch(format!(
            "{e}. The release is live: stage {stage} serves deployment {id}; what failed came after the switch (clean-up of what the previous release used): run wsconn {} again to finish",
            job.command()
        ));
    }
    let serves = match before {
        Some(id) => format!("stage {stage} still serves deployment {id}"),
        None => format!("stage {stage} does not exist yet"),
    };
    Error::BeforeSwitch(format!("{e}; nothing live changed: {serves}"))
}

/// Whether a step is the stage's switch: the stage made, or pointed at another
/// deployment.
fn is_switch(step: &super::step::Step) -> bool {
    step.node.kind == Kind::Stage
        && step.change.as_ref().is_some_and(|c| {
            c.action == super::plan::Action::Create
                || c.fields.iter().any(|f| f.field == "deployment")
        })
}

/// Watches the steps of every round for the stage's switch.
#[derive(Default)]
struct Watch {
    /// A planned step switches the stage.
    planned_switch: AtomicBool,
    /// That step finished.
    switched: AtomicBool,
}

impl Watch {
    /// One round's display, reporting the switch here too.
    fn round<P>(&self, planned: &Planned, inner: P) -> Watched<'_, P> {
        let switch: Vec<bool> = planned.steps.iter().map(is_switch).collect();
        if switch.contains(&true) {
            self.planned_switch.store(true, Ordering::Relaxed);
        }
        Watched {
            inner,
            switch,
            watch: self,
        }
    }
}

/// A round's display, reporting to the [`Watch`] too.
struct Watched<'w, P> {
    inner: P,
    switch: Vec<bool>,
    watch: &'w Watch,
}

impl<P: RoundProgress> Events for Watched<'_, P> {
    fn started(&self, step: usize) {
        self.inner.started(step)
    }
    fn finished(&self, step: usize, ok: bool) {
        if ok && self.switch.get(step).copied().unwrap_or(false) {
            self.watch.switched.store(true, Ordering::Relaxed);
        }
        self.inner.finished(step, ok)
    }
}

impl<P: RoundProgress> RoundProgress for Watched<'_, P> {
    fn slowest(&self) -> Option<(String, Duration)> {
        self.inner.slowest()
    }
}

/// `deploy`: make the stack what is declared, proved by reading again.
pub struct Deploy;

impl Job for Deploy {
    fn command(&self) -> &'static str {
        "deploy"
    }
    fn scope(&self) -> Scope {
        Scope::Full
    }
    fn plan(&self, stack: &Stack, snap: &Snapshot) -> Result<Planned> {
        engine::plan(stack, &snap.env, snap)
    }
    fn lease_first(&self) -> bool {
        false
    }
    fn proves(&self) -> bool {
        true
    }
}

/// `destroy`: delete everything the stack owns, once.
pub struct Destroy;

impl Job for Destroy {
    fn command(&self) -> &'static str {
        "destroy"
    }
    fn scope(&self) -> Scope {
        Scope::Destroy
    }
    fn plan(&self, stack: &Stack, snap: &Snapshot) -> Result<Planned> {
        engine::plan_destroy(stack, snap)
    }
    fn lease_first(&self) -> bool {
        true
    }
    fn proves(&self) -> bool {
        false
    }
}
