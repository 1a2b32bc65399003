//! `wsconn rollback`: point the stage at an earlier release, in one UpdateStage.
//!
//! The releases are the API's deployments (`super::release`), read from AWS, so this
//! works from any machine with credentials. The plan is one step, the switch, and it is
//! refused, naming what is missing, when a version the target invokes or its permission
//! is gone: a stage switched to it would answer clients with errors. What is not in a
//! deployment (roles, the table, the stage's settings) is not restored, and the command
//! says so.

use super::engine::Planned;
use super::graph::{self, Kind, Node};
use super::kind::{Scope, Snapshot};
use super::plan::{Action, ResourceChange, field};
use super::release::{self, Release};
use super::resources::{
    api::Api,
    authorizer::{self, Authorizer},
    deployment::{self, Deployment},
    permission::{self, Permission},
    stage::{Stage, StageOp},
    version::Version,
};
use super::run::Job;
use super::step::Step;
use crate::error::{Error, Result};
use crate::stack::Stack;
use serde_json::json;

/// Rolls the stage back to `to`, or to the release before the live one.
pub struct Rollback {
    pub to: Option<String>,
}

/// The stack's releases as read, and the one the stage serves.
pub fn releases(stack: &Stack, snap: &Snapshot) -> (Vec<Release>, Option<String>) {
    let mut all: Vec<Release> = snap
        .live::<Deployment>()
        .values()
        .map(|d| deployment::release_of(d, &stack.name))
        .collect();
    release::newest_first(&mut all);
    let live = snap
        .get::<Stage>(&stack.stage)
        .and_then(|s| s.deployment_id);
    (all, live)
}

impl Rollback {
    /// The release to go back to, checked: every version it invokes exists, with
    /// wsconn's permission for this API.
    pub fn target<'r>(
        &self,
        stack: &Stack,
        snap: &Snapshot,
        all: &'r [Release],
        live: &str,
    ) -> Result<&'r Release> {
        let target = match &self.to {
            Some(id) => all.iter().find(|r| &r.id == id).ok_or_else(|| {
                Error::Conflict(format!(
                    "deployment {id} is not a deployment of stack {}'s API; `wsconn releases` lists them",
                    stack.name
                ))
            })?,
            None => release::previous(all, live).ok_or_else(|| {
                Error::Conflict(format!(
                    "stage {} serves deployment {live}, and no earlier release is kept ([releases] keep); `wsconn releases` lists what there is",
                    stack.stage
                ))
            })?,
        };
        let Some(m) = target.manifest.as_ref().filter(|m| m.is_release()) else {
            return Err(Error::Conflict(format!(
                "deployment {} is not a release wsconn made with published versions (it invoked $LATEST, or another tool made it): rolling back to it would not restore its code",
                target.id
            )));
        };
        let api_id = snap.get::<Api>(&stack.api.name).map(|a| a.id);
        let authorizer_id = authorizer::kept(&snap.live::<Authorizer>(), stack);
        let statements = snap.live::<Permission>();
        let mut missing = Vec::new();
        for (f, v) in &m.versions {
            let Some(def) = stack.function(f) else {
                missing.push(format!(
                    "function {f} (version {v}) is no longer part of the stack"
                ));
                continue;
            };
            let published = snap
                .get::<Version>(f)
                .unwrap_or_default()
                .iter()
                .any(|l| &l.version == v);
            if !published {
                missing.push(format!("version {v} of function {f} is gone"));
                continue;
            }
            for p in &def.permissions {
                let want =
                    permission::desired(&snap.env, p, api_id.as_deref(), authorizer_id.as_deref());
                let have = statements.get(&permission::key(f, Some(v), &p.sid));
                if have.is_none_or(|s| s.grants != want) {
                    missing.push(format!(
                        "{} is missing or differs",
                        permission::label(f, Some(v), &p.sid)
                    ));
                }
            }
        }
        if !missing.is_empty() {
            return Err(Error::Conflict(format!(
                "cannot roll back to deployment {}: {}. Nothing was changed",
                target.id,
                missing.join("; ")
            )));
        }
        Ok(target)
    }
}

impl Job for Rollback {
    fn command(&self) -> &'static str {
        "rollback"
    }
    fn scope(&self) -> Scope {
        Scope::Full
    }
    fn plan(&self, stack: &Stack, snap: &Snapshot) -> Result<Planned> {
        let (all, live) = releases(stack, snap);
        let Some(live) = live else {
            return Err(Error::Conflict(format!(
                "stack {} has no stage {} serving a release: nothing to roll back (run wsconn deploy)",
                stack.name, stack.stage
            )));
        };
        let target = self.target(stack, snap, &all, &live)?;
        if target.id == live {
            return Ok(Planned {
                steps: vec![],
                graph: graph::build(&[], &[]).map_err(Error::Conflict)?,
            });
        }
        let before = all
            .iter()
            .find(|r| r.id == live)
            .and_then(|r| r.manifest.as_ref())
            .map(|m| json!(m.versions));
        let after = target.manifest.as_ref().map(|m| json!(m.versions));
        let fields = [
            field("deployment", live.as_str(), target.id.as_str()),
            field("versions", before, after),
        ]
        .into_iter()
        .flatten()
        .collect();
        let created = target
            .created
            .map(crate::gateway::rfc3339)
            .unwrap_or_else(|| "an unknown time".into());
        let change = ResourceChange::new(format!("stage {}", stack.stage), Action::Update, fields)
            .with_reason(format!(
                "rollback to the release made at {created}: the one call that changes what clients get"
            ));
        let steps = vec![Step::new(
            Node::one(Kind::Stage),
            change,
            StageOp::Switch(target.id.clone()),
        )];
        let nodes: Vec<Node> = steps.iter().map(|s| s.node.clone()).collect();
        Ok(Planned {
            steps,
            graph: graph::build(&nodes, &[]).map_err(Error::Conflict)?,
        })
    }
    fn lease_first(&self) -> bool {
        true
    }
    fn proves(&self) -> bool {
        false
    }
}
