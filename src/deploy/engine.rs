//! The reconcile engine: read every kind, plan in pure code, apply as a dependency graph.
//! The rounds that prove convergence are in `super::converge`.
//!
//! Guarantees (for `deploy`, which `super::converge` drives):
//! - **Reads first, and only reads.** [`plan`] and [`plan_destroy`] are pure; the read
//!   before them makes only read calls. A stack in sync is reported after three
//!   round-trip levels with no mutating call and no lock.
//! - **Parallel to the critical path.** [`apply`] runs the plan's graph
//!   (`super::graph`): every step whose needs are met starts, up to `--parallelism`,
//!   with the writes to one API serialised. The table, the roles, the log groups, the
//!   functions' chains and the API's chain run side by side.
//! - **No blind retries of creates.** Creates AWS makes idempotent by name (table, role,
//!   function, log group, stage, statement id) answer "already exists" when resent;
//!   that means "someone just created it": it is re-read, its ownership checked, and
//!   the step finishes as an update. Creates without a name or client token (API,
//!   integration, route, responses, deployment) are sent with the SDK's retry off, and
//!   an unknown outcome is followed by a read by natural key before they are resent
//!   (`resources::create_once`). Throttling is always retried: it means "not done".
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
use super::graph::{self, Graph, serial_of};
use super::kind::{DynResource, Of, Place, Planner, Reader, Scope, Snapshot};
use super::plan::{Plan, ResourceChange};
use super::resources::{
    account::Account, api::Api, api_mapping::ApiMapping, authorizer, authorizer::Authorizer,
    certificate, certificate::Certificate, deployment::Deployment, dns::DnsRecords,
    domain_name::DomainName, function::Function, integration::Integration,
    integration_response::IntegrationResponse, log_group::LogGroup, permission::Permission,
    role::Role, role_policy::RolePolicy, route, route::Route, route_response::RouteResponse,
    stage::Stage, table::Table, version, version::Version,
};
use super::step::Step;
use crate::aws::{Aws, AwsEnv};
use crate::error::{Error, Result};
use crate::stack::Stack;

/// Every resource kind, in planning order: a kind may look at what those before it
/// planned (the API decides whether its children are new; the deployment looks for new
/// integrations and routes; the stage for a new deployment). Reading starts them all at
/// once; destroy plans them in the same order and the graph reverses the edges.
pub const KINDS: &[&dyn DynResource] = &[
    &Of::<Table>::KIND,
    &Of::<Account>::KIND,
    &Of::<Role>::KIND,
    &Of::<RolePolicy>::KIND,
    &Of::<LogGroup>::KIND,
    &Of::<Function>::KIND,
    &Of::<Version>::KIND,
    &Of::<Api>::KIND,
    &Of::<Authorizer>::KIND,
    &Of::<Permission>::KIND,
    &Of::<Integration>::KIND,
    &Of::<IntegrationResponse>::KIND,
    &Of::<Route>::KIND,
    &Of::<RouteResponse>::KIND,
    &Of::<Deployment>::KIND,
    &Of::<Stage>::KIND,
    &Of::<Certificate>::KIND,
    &Of::<DomainName>::KIND,
    &Of::<ApiMapping>::KIND,
    &Of::<DnsRecords>::KIND,
];

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

/// Reads the stack: every kind at once (with `--parallelism 1`, one call at a time), with
/// the credential check beside them unless `env` is already known. Its error wins: an
/// unreachable endpoint or a bad key is one line about that, not about a table.
///
/// A child that answers NotFoundException under a listed API means the API was deleted
/// after the listing (listings lag deletes): the API and its children are then absent.
pub async fn read(aws: &Aws, stack: &Stack, scope: Scope, env: Option<AwsEnv>) -> Result<Snapshot> {
    let reader = Reader::new(aws, stack, scope);
    let identity = async {
        match env {
            Some(e) => Ok(e),
            None => aws.identity().await,
        }
    };
    let reads = futures::future::try_join_all(KINDS.iter().map(|k| k.read(&reader)));
    // The credential check's error is the one reported, whichever fails first: a bad
    // endpoint or key is about the account, not a read. It fails fast, so a read's
    // error waits for it; its own error does not wait for reads still retrying.
    let (env, parts) = match futures::future::select(Box::pin(identity), Box::pin(reads)).await {
        futures::future::Either::Left((env, reads)) => {
            let env = env?;
            (env, reads.await?)
        }
        futures::future::Either::Right((parts, identity)) => {
            let env = identity.await?;
            (env, parts?)
        }
    };
    let parts = if reader.is_api_vanished() {
        KINDS
            .iter()
            .zip(parts)
            .map(|(k, p)| {
                if k.place() == Place::Account {
                    p
                } else {
                    k.empty()
                }
            })
            .collect()
    } else {
        parts
    };
    Ok(Snapshot::new(env, parts))
}

/// The identifiers steps start from: those of the live stack.
pub fn facts(snap: &Snapshot, stack: &Stack) -> Facts {
    let w = route::wiring(snap, stack);
    let api_id = snap.get::<Api>(&stack.api.name).map(|a| a.id);
    Facts {
        api_id: api_id.clone(),
        integration_ids: w.integrations,
        route_ids: w.routes,
        authorizer_id: authorizer::kept(&snap.live::<Authorizer>(), stack),
        deployment_id: snap
            .get::<Stage>(&stack.stage)
            .and_then(|s| s.deployment_id),
        versions: version::wanted(stack, &snap.env, snap, api_id.as_deref())
            .into_iter()
            .filter_map(|(f, v)| Some((f, v?)))
            .collect(),
        certificate_arn: certificate::wanted_arn(stack, &snap.live::<Certificate>()),
        validation_records: stack
            .domain
            .as_ref()
            .and_then(|d| {
                certificate::chosen(&snap.live::<Certificate>(), &stack.name, &d.name)
                    .map(|c| c.validation.clone())
            })
            .unwrap_or_default(),
        domain_target: stack.domain.as_ref().and_then(|d| {
            snap.get::<DomainName>(&d.name)
                .map(|l| (l.target, l.target_zone_id))
        }),
    }
}

/// Every step that makes the live stack match the desired one: each kind's plan, in
/// [`KINDS`] order. Pure: no AWS call. Fails before anything is changed when a resource
/// with a derived name is not the stack's.
pub fn plan(stack: &Stack, env: &AwsEnv, snap: &Snapshot) -> Result<Planned> {
    let mut p = Planner::new(stack, env, snap, route::wiring(snap, stack));
    for kind in KINDS {
        kind.plan(&mut p)?;
    }
    planned(p.steps, &graph::deploy_rules())
}

/// Delete steps for everything the stack owns, as the reverse graph. Deleting the API
/// deletes its children, so they get no steps of their own; deleting a function deletes
/// its resource policy.
pub fn plan_destroy(stack: &Stack, snap: &Snapshot) -> Result<Planned> {
    let mut p = Planner::new(stack, &snap.env, snap, Default::default());
    for kind in KINDS {
        kind.plan_destroy(&mut p)?;
    }
    planned(p.steps, &graph::destroy_rules())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::plan::Action;

    fn env() -> AwsEnv {
        AwsEnv {
            region: "eu-west-1".into(),
            account: "111122223333".into(),
            partition: "aws".into(),
        }
    }

    #[test]
    fn an_empty_account_plans_every_kind_as_a_create() {
        let stack = crate::stack::tests_support::stack("s");
        let snap = Snapshot::new(env(), vec![]);
        let planned = plan(&stack, &env(), &snap).unwrap();
        let plan = planned.plan();
        assert!(plan.changes.iter().all(|c| c.action == Action::Create));
        let resources: Vec<&str> = plan.changes.iter().map(|c| c.resource.as_str()).collect();
        for want in [
            "table s-connections",
            "role s-apigw-dynamodb",
            "role s-default-fn",
            "policy connections-table-write of role s-apigw-dynamodb",
            "policy write-own-logs of role s-default-fn",
            "log group /aws/lambda/s-default",
            "function s-default",
            "api s",
            "version of function s-default",
            "permission wsconn-apigateway-invoke on the new version of function s-default",
            "integration $connect",
            "integration response /200/ of $disconnect",
            "route $default",
            "route response $default of $connect",
            "deployment",
            "stage api",
        ] {
            assert!(
                resources.contains(&want),
                "{want} missing from {resources:?}"
            );
        }
        assert_eq!(plan.summary.create, 23, "{resources:?}");
    }

    #[test]
    fn an_empty_account_has_nothing_to_destroy() {
        let stack = crate::stack::tests_support::stack("s");
        let snap = Snapshot::new(env(), vec![]);
        assert!(plan_destroy(&stack, &snap).unwrap().is_empty());
    }

    #[test]
    fn every_kind_has_a_distinct_name() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
    }
}
