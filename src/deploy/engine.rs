//! The reconcile engine: read, plan in pure code, apply as a dependency graph, then read
//! again to prove the stack converged.
//!
//! Guarantees (for `deploy`, which `commands::deploy` drives):
//! - **Reads first, and only reads.** [`plan`] and [`plan_destroy`] are pure; the
//!   snapshot before them makes only read calls. A stack in sync is reported after
//!   three round-trip levels with no mutating call and no lock.
//! - **Parallel to the critical path.** [`apply`] runs the plan's graph
//!   (`super::graph`): every step whose needs are met starts, up to `--parallelism`,
//!   with the writes to one API serialised. The table, the roles, the log group, the
//!   function's chain and the API's chain run side by side.
//! - **No blind retries of creates.** Creates AWS makes idempotent by name (table, role,
//!   function, log group, stage, statement id) answer "already exists" when resent;
//!   that means "someone just created it": it is re-read, its ownership checked, and
//!   the step finishes as an update. Creates without a name or client token (API,
//!   integration, route, responses, deployment) are sent with the SDK's retry off, and
//!   an unknown outcome is followed by a read by natural key before they are resent
//!   (`resources::create_once`). Throttling is always retried: it means "not done".
//! - **Converged or an error.** After applying, the stack is read again; anything that
//!   still differs is planned and applied again, at most [`ROUNDS`] rounds. `deploy`
//!   exits 0 only when a fresh read shows the stack in sync, and otherwise names what
//!   still differs. Duplicates found by reading (two integrations or routes for one
//!   key, a second deployment) are resolved in the same run.
//! - **Vanished is absent.** A resource deleted between the read and a write, or an
//!   API whose children answer NotFound after it was listed, is treated as absent by
//!   the next round, not as a failure.
//! - **Kills converge.** Every step is idempotent with respect to a rerun, so a run
//!   killed at any moment converges when run again: the next run reads what exists.
//!
//! ## Two runs of one stack at once
//! Two CI jobs deploying one stack would otherwise race: API Gateway has no unique
//! names, so both could create an API, and "create then check with a deterministic
//! winner" needs a total order of creation that API Gateway's second-resolution
//! `createdDate` cannot give (two creates in one second, each run having listed before
//! the other created, leave both runs believing they won). So mutating runs take a
//! **lease** instead (`super::lock`): a CloudWatch Logs log group
//! `/wsconn/<stack>/lock`, which CreateLogGroup creates atomically or refuses with
//! ResourceAlreadyExistsException. The holder tags it with its process, host, command
//! and start time, and refreshes a heartbeat tag every 15 s; it deletes the group when
//! it finishes (also on an error or Ctrl-C). A second run waits for the holder (up to
//! `--lock-timeout`), then reads again under the lease: the plan it applies is always
//! made from a read taken while it held the lease. A lease whose holder is gone (same
//! host and its process no longer exists, or no heartbeat for 60 s) is taken over, so
//! a SIGKILLed run never blocks the next one for long. `diff`, `outputs` and a deploy
//! that finds nothing to change take no lease, so they make no mutating call.

use super::context::{Cx, Facts};
use super::graph::{self, Graph, Kind, serial_of};
use super::plan::{Action, Plan, ResourceChange};
use super::resources::{
    api, function, integration, log_group, permission,
    role::{self, Role},
    route, stage, table,
};
use super::snapshot::Snapshot;
use super::step::Step;
use crate::aws::AwsEnv;
use crate::error::{Error, Result};
use crate::stack::Stack;
use std::collections::BTreeMap;

/// Deploy applies and re-reads at most this many times before it gives up.
pub const ROUNDS: usize = 3;

/// A plan's steps and the graph that orders them.
pub struct Planned {
    pub steps: Vec<Step>,
    pub graph: Graph,
}

impl Planned {
    /// The changes people see (steps that only wait are left out).
    pub fn plan(&self) -> Plan {
        Plan::new(self.changes().cloned().collect())
    }
    pub fn changes(&self) -> impl Iterator<Item = &ResourceChange> {
        self.steps.iter().filter_map(|s| s.change.as_ref())
    }
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

fn planned(steps: Vec<Step>, rules: &[graph::Rule]) -> Result<Planned> {
    let nodes: Vec<_> = steps.iter().map(|s| s.node.clone()).collect();
    let graph = graph::build(&nodes, rules).map_err(Error::Conflict)?;
    Ok(Planned { steps, graph })
}

/// The kept integrations and routes of the live API (none when the plan creates it).
struct Wiring {
    integrations: BTreeMap<String, String>,
    routes: BTreeMap<String, String>,
}

fn wiring(snap: &Snapshot) -> Wiring {
    match snap.api.as_ref().and_then(|a| a.children.as_ref()) {
        Some(c) => Wiring {
            integrations: integration::kept(&c.integrations, &route::targets(&c.routes)),
            routes: route::kept(&c.routes),
        },
        None => Wiring {
            integrations: BTreeMap::new(),
            routes: BTreeMap::new(),
        },
    }
}

/// The identifiers steps start from: those of the live stack.
pub fn facts(snap: &Snapshot, stack: &Stack) -> Facts {
    let w = wiring(snap);
    let children = snap.api.as_ref().and_then(|a| a.children.as_ref());
    Facts {
        api_id: snap.api.as_ref().map(|a| a.found.id.clone()),
        integration_ids: w.integrations,
        route_ids: w.routes,
        deployment_id: children.and_then(|c| {
            c.stages
                .iter()
                .find(|s| s.name == stack.stage)
                .and_then(|s| s.deployment_id.clone())
        }),
    }
}

/// Every step that makes the live stack match the desired one. Pure: no AWS call. Fails
/// before anything is changed when a resource with a derived name is not the stack's.
pub fn plan(stack: &Stack, env: &AwsEnv, snap: &Snapshot) -> Result<Planned> {
    let mut steps = Vec::new();
    steps.extend(table::plan(stack, snap.table.as_ref())?);
    for r in role::ROLES {
        steps.extend(role::plan(stack, env, r, snap.role(r))?);
    }
    steps.extend(log_group::plan(stack, snap.log_group.as_ref())?);
    steps.extend(function::plan(stack, env, snap.function.as_ref())?);

    let (api_steps, fresh) = api::plan(stack, snap.api.as_ref().map(|a| &a.found));
    steps.extend(api_steps);
    let children = if fresh {
        None
    } else {
        snap.api.as_ref().and_then(|a| a.children.as_ref())
    };
    let w = if fresh {
        Wiring {
            integrations: BTreeMap::new(),
            routes: BTreeMap::new(),
        }
    } else {
        wiring(snap)
    };
    steps.extend(integration::plan(
        stack,
        env,
        children.map(|c| c.integrations.as_slice()),
        &w.integrations,
    ));
    steps.extend(route::plan(
        stack,
        children.map(|c| c.routes.as_slice()),
        &w.integrations,
    ));
    let api_id = if fresh {
        None
    } else {
        snap.api.as_ref().map(|a| a.found.id.as_str())
    };
    steps.extend(permission::plan(
        stack,
        env,
        snap.permission.as_ref(),
        api_id,
    ));
    // New integrations or routes get new ids, so the deployed configuration's hash is
    // known only after they exist.
    let creates_children = steps.iter().any(|s| {
        matches!(s.node.kind, Kind::Integration | Kind::Route)
            && s.change
                .as_ref()
                .is_some_and(|c| c.action == Action::Create)
    });
    let ids = (!fresh && !creates_children).then_some((&w.integrations, &w.routes));
    steps.extend(stage::plan(
        stack,
        env,
        children.map(|c| (c.stages.as_slice(), c.deployments.as_slice())),
        ids,
    ));
    planned(steps, graph::DEPLOY_RULES)
}

/// Delete steps for everything the stack owns, as the reverse graph. Deleting the API
/// deletes its children, so they get no steps of their own; deleting the function
/// deletes its resource policy.
pub fn plan_destroy(stack: &Stack, snap: &Snapshot) -> Result<Planned> {
    let mut steps = Vec::new();
    steps.extend(api::plan_destroy(
        stack,
        snap.api.as_ref().map(|a| &a.found),
    ));
    steps.extend(function::plan_destroy(stack, snap.function.as_ref())?);
    steps.extend(log_group::plan_destroy(stack, snap.log_group.as_ref())?);
    for r in [Role::Function, Role::ApiGateway] {
        steps.extend(role::plan_destroy(stack, r, snap.role(r))?);
    }
    steps.extend(table::plan_destroy(stack, snap.table.as_ref())?);
    planned(steps, &graph::destroy_rules())
}

/// How applying went when no step failed for real.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// Some resource disappeared under a step; the next round reads and plans again.
    Vanished(Vec<String>),
}

/// Runs the plan's graph. A step that failed for real ends the run with its error (and
/// how many other steps failed); steps that found their resource gone do not.
pub async fn apply(
    cx: &Cx,
    planned: &Planned,
    parallelism: usize,
    events: &dyn graph::Events,
) -> Result<Applied> {
    let serial: Vec<_> = planned
        .steps
        .iter()
        .map(|s| serial_of(s.node.kind))
        .collect();
    let result = graph::execute(&planned.graph, &serial, parallelism, events, |i| {
        planned.steps[i].op.apply(cx)
    })
    .await;
    let Err(errors) = result else {
        return Ok(Applied::Done);
    };
    let (vanished, failed): (Vec<_>, Vec<_>) = errors
        .into_iter()
        .partition(|(_, e)| matches!(e, Error::Vanished(_)));
    let others = failed.len().saturating_sub(1);
    match failed.into_iter().next() {
        Some((_, e)) if others == 0 => Err(e),
        Some((_, e)) => Err(Error::Conflict(format!(
            "{e} (and {others} other step{} failed)",
            if others == 1 { "" } else { "s" }
        ))),
        None => Ok(Applied::Vanished(
            vanished.into_iter().map(|(_, e)| e.to_string()).collect(),
        )),
    }
}
