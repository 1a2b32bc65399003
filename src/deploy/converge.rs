//! The rounds of a deploy: read under the lease, apply, read again, until a fresh read
//! shows the stack in sync.
//!
//! Like kube-rs's `Controller::run`, which takes a reconciler and an error policy, this
//! loop takes what it must not decide itself: `approve` says whether a plan may be
//! applied (the command's consent rules and terminal prompt), and `progress` makes the
//! display one round's steps report to.
//!
//! - **Converged or an error.** Anything that still differs after applying is planned
//!   and applied again, at most [`ROUNDS`] rounds. The result is a snapshot in which the
//!   stack is in sync; otherwise the error names what still differs. Duplicates found
//!   by reading (two integrations or routes for one key, a second deployment) are
//!   resolved in the same run.
//! - **Nothing unagreed.** The plan the user agreed to is passed in; a later round
//!   that plans something new asks `approve` again with what was agreed.

use super::context::Cx;
use super::engine::{self, Applied, Planned};
use super::graph::Events;
use super::kind::{Scope, Snapshot};
use super::plan::{self, Plan, ResourceChange};
use super::progress;
use super::session;
use crate::error::{Error, Result};
use std::time::Duration;

/// Deploy applies and re-reads at most this many times before it gives up.
pub const ROUNDS: usize = 3;

/// What converging took, for the summary line.
#[derive(Debug, Default)]
pub struct Report {
    pub rounds: usize,
    pub slowest: Option<(String, Duration)>,
}

/// Shows one round's steps and says which was slowest.
pub trait RoundProgress: Events {
    fn slowest(&self) -> Option<(String, Duration)>;
}

impl RoundProgress for progress::Progress {
    fn slowest(&self) -> Option<(String, Duration)> {
        progress::Progress::slowest(self)
    }
}

/// Applies until a fresh read shows nothing to do. `agreed` is the plan the user
/// consented to; `approve(planned, agreed)` decides on any other. `read`: the read and
/// plan taken under the lease, when the first one still holds (see `super::run`);
/// `None` reads again first.
pub async fn converge<P: RoundProgress>(
    cx: &Cx,
    agreed: &Plan,
    read: Option<(Snapshot, Planned)>,
    parallelism: usize,
    approve: &(dyn Fn(&Planned, &[ResourceChange]) -> Result<()> + Sync),
    progress: &(dyn Fn(&Planned) -> P + Sync),
) -> Result<(Snapshot, Report)> {
    let mut report = Report::default();
    let (mut snap, mut planned) = match read {
        Some(r) => r,
        None => {
            let snap = session::refresh(cx, Scope::Full).await?;
            let planned = engine::plan(&cx.stack, &cx.env, &snap)?;
            (snap, planned)
        }
    };
    if planned.plan() != *agreed {
        if planned.is_empty() {
            progress::note(
                "Nothing left to do: the stack changed while this run waited, and it is in sync now.",
            );
            return Ok((snap, report));
        }
        progress::note("The stack changed since it was read (another run?). The plan is now:");
        eprint!("{}", plan::render_text(&planned.plan(), false));
        approve(&planned, &agreed.changes)?;
    }
    let mut round = 0;
    loop {
        round += 1;
        report.rounds = round;
        let shown = progress(&planned);
        if let Applied::Vanished(what) = engine::apply(cx, &planned, parallelism, &shown).await? {
            progress::note(&format!("{}; reading again", what.join("; ")));
        }
        if let Some(s) = shown.slowest()
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
        if round >= ROUNDS {
            return Err(Error::Conflict(format!(
                "the stack still differs after {ROUNDS} rounds of applying: {}. Something else is changing it, or AWS does not keep what wsconn sets; run `wsconn diff` to see it",
                still_differs(&still)
            )));
        }
        progress::note(&format!(
            "After round {round} a fresh read still differs; applying again:"
        ));
        eprint!("{}", plan::render_text(&still, false));
        approve(&planned, &agreed.changes)?;
    }
}

/// `~ stage api (description); + deployment`: what a plan still changes, in one line.
pub fn still_differs(plan: &Plan) -> String {
    plan.changes
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
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::plan::{Action, field};

    #[test]
    fn what_still_differs_names_resources_and_fields() {
        let plan = Plan::new(vec![
            ResourceChange::new(
                "stage api",
                Action::Update,
                field("description", "a", "b").into_iter().collect(),
            ),
            ResourceChange::new("deployment", Action::Create, vec![]),
        ]);
        assert_eq!(
            still_differs(&plan),
            "~ stage api (description); + deployment"
        );
    }
}
