//! Inline policies of the stack's roles, keyed by `role/policy`: what each role allows.
//!
//! The documents are derived from the model's grants ([`crate::stack::Grant`]): the
//! model says what (the table, a log group's streams), this file says where (the ARNs,
//! which need the account). Anything else found on a role is reported and deleted:
//! removing a grant nobody declared only narrows access, so it needs no consent, while
//! adding or widening one does. IAM returns documents URL-encoded; they are compared as
//! parsed JSON.

use super::role::{Role, label as role_label, node_key};
use super::{parse_policy, widens};
use crate::aws::{Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, Risk, created_fields, field};
use crate::deploy::step::{Op, Step};
use crate::error::{self, Error, Result};
use crate::stack::{Grant, PolicyDef, Stack, Target};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct LivePolicy {
    pub role: String,
    pub name: String,
    pub document: Value,
}

/// `role/policy`: the natural key.
pub fn key(role: &str, policy: &str) -> String {
    format!("{role}/{policy}")
}

pub fn label(role: &str, policy: &str) -> String {
    format!("policy {policy} of role {role}")
}

/// The ARN (or ARNs) a grant's target resolves to in this account. The @connections
/// ARN holds the API's id: `api_id` is `None` while the API is still to be made.
fn resource(on: &Target, stack: &Stack, env: &AwsEnv, api_id: Option<&str>) -> Value {
    match on {
        Target::Table => env.table_arn(&stack.table.name).into(),
        Target::LogStreams(group) => format!("{}:*", env.log_group_arn(group)).into(),
        Target::Connections => format!(
            "arn:{}:execute-api:{}:{}:{}/{}/*/@connections/*",
            env.partition,
            env.region,
            env.account,
            api_id.unwrap_or(super::UNKNOWN_API),
            stack.stage
        )
        .into(),
        Target::Arns(arns) => json!(arns),
    }
}

fn statement(g: &Grant, stack: &Stack, env: &AwsEnv, api_id: Option<&str>) -> Value {
    json!({"Effect": "Allow", "Action": g.actions, "Resource": resource(&g.on, stack, env, api_id)})
}

/// The IAM document of one of the model's policies: one statement per grant.
pub fn document(policy: &PolicyDef, stack: &Stack, env: &AwsEnv, api_id: Option<&str>) -> Value {
    super::normalise_policy(json!({
        "Version": "2012-10-17",
        "Statement": policy.grants.iter().map(|g| statement(g, stack, env, api_id)).collect::<Vec<_>>(),
    }))
}

/// Whether a policy names the API (and so waits for its id).
pub fn needs_api(policy: &PolicyDef) -> bool {
    policy.grants.iter().any(|g| g.on == Target::Connections)
}

/// ListRolePolicies and GetRolePolicy of the known policies at once (one round-trip
/// level); a second level only for policies the stack does not declare. `None` when the
/// role does not exist.
pub async fn read(aws: &Aws, role: &str, known: &[&str]) -> Result<Option<Vec<LivePolicy>>> {
    let iam = &aws.iam;
    let get = |p: String| async move {
        let r = aws
            .gated(iam.get_role_policy().role_name(role).policy_name(&p).send())
            .await;
        (p, r)
    };
    let (listed, known) = futures::join!(
        aws.gated(iam.list_role_policies().role_name(role).send()),
        futures::future::join_all(known.iter().map(|p| get(p.to_string()))),
    );
    let listed = match listed {
        Ok(o) => o.policy_names().to_vec(),
        Err(e) if error::is_not_found(&e) => return Ok(None),
        Err(e) => {
            return Err(error::aws(
                format!("listing inline policies of role {role}"),
                e,
            ));
        }
    };
    let extras = futures::future::join_all(
        listed
            .iter()
            .filter(|p| !known.iter().any(|(k, _)| k == *p))
            .map(|p| get(p.clone())),
    )
    .await;
    let mut out = Vec::new();
    for (name, r) in known.into_iter().chain(extras) {
        match r {
            Ok(o) => out.push(LivePolicy {
                role: role.to_string(),
                document: parse_policy(o.policy_document(), true),
                name,
            }),
            // Not there (or deleted since it was listed).
            Err(e) if error::is_not_found(&e) => {}
            Err(e) => {
                return Err(error::aws(
                    format!("reading policy {name} of role {role}"),
                    e,
                ));
            }
        }
    }
    Ok(Some(out))
}

#[derive(Debug)]
pub enum PolicyOp {
    Put {
        role: String,
        name: String,
    },
    /// Puts the union of the live and the desired statements: before the stage's switch,
    /// an update that both adds and removes grants adds them this way (the release being
    /// replaced keeps what it uses), and a `Put` narrows it after the switch.
    Widen {
        role: String,
        name: String,
        live: Value,
    },
    Delete {
        role: String,
        name: String,
    },
}

/// Statements in `a` or in `b`, `a`'s first.
pub fn union(a: &Value, b: &Value) -> Value {
    let statements = |v: &Value| -> Vec<Value> {
        v.get("Statement")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut all = statements(a);
    for s in statements(b) {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    let mut doc = b.clone();
    if let Some(o) = doc.as_object_mut() {
        o.insert("Statement".into(), Value::Array(all));
    }
    doc
}

/// Pure comparison of one policy: `want` is the desired document (`None`: not declared).
pub fn diff(
    role: &str,
    name: &str,
    want: Option<&Value>,
    live: Option<&Value>,
) -> Option<(ResourceChange, PolicyOp)> {
    let resource = label(role, name);
    let put = PolicyOp::Put {
        role: role.to_string(),
        name: name.to_string(),
    };
    match (want, live) {
        (None, None) => None,
        (Some(want), None) => {
            let c = ResourceChange::new(
                resource,
                Action::Create,
                created_fields(vec![("document", want.clone())]),
            )
            .with_risk(Some(Risk::WidensPermissions));
            Some((c, put))
        }
        (Some(want), Some(have)) => {
            let f = field("document", have.clone(), want.clone())?;
            let c = ResourceChange::new(resource, Action::Update, vec![f])
                .with_risk(widens(have, want).then_some(Risk::WidensPermissions));
            Some((c, put))
        }
        (None, Some(_)) => {
            let mut c = ResourceChange::new(resource, Action::Delete, vec![])
                .with_reason("the stack does not declare it; deleting it only narrows access");
            c.risk = None;
            Some((
                c,
                PolicyOp::Delete {
                    role: role.to_string(),
                    name: name.to_string(),
                },
            ))
        }
    }
}

/// The kind: every inline policy of the stack's roles.
pub struct RolePolicy;

impl Resource for RolePolicy {
    type Live = LivePolicy;
    const NAME: &'static str = "role policy";

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LivePolicy>>> {
        Box::pin(async move {
            let found = futures::future::try_join_all(rd.stack.roles.iter().map(|r| async {
                let known: Vec<&str> = r.policies.iter().map(|p| p.name.as_str()).collect();
                Ok::<_, Error>(read(rd.aws, &r.name, &known).await?.unwrap_or_default())
            }))
            .await?;
            Ok(found
                .into_iter()
                .flatten()
                .map(|p| (key(&p.role, &p.name), p))
                .collect())
        })
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live::<RolePolicy>();
        let api_id = super::api::kept_id(p);
        for role in &p.stack.roles {
            let want: BTreeMap<&str, Value> = role
                .policies
                .iter()
                .map(|d| {
                    (
                        d.name.as_str(),
                        document(d, p.stack, p.env, api_id.as_deref()),
                    )
                })
                .collect();
            let have: BTreeMap<&str, &Value> = live
                .values()
                .filter(|l| l.role == role.name)
                .map(|l| (l.name.as_str(), &l.document))
                .collect();
            let names: std::collections::BTreeSet<&str> =
                want.keys().chain(have.keys()).copied().collect();
            for name in names {
                let w = want.get(name);
                let h = have.get(name).copied();
                let Some((c, op)) = diff(&role.name, name, w, h) else {
                    continue;
                };
                // Roles are not versioned: what a new release needs is granted before
                // the stage switches, what only the release it replaces used is taken
                // away after.
                let narrows = match (w, h) {
                    (Some(w), Some(h)) => widens(w, h),
                    (None, Some(_)) => true,
                    _ => false,
                };
                let wider = matches!((w, h), (Some(w), Some(h)) if widens(h, w)) || h.is_none();
                let key = node_key(role);
                match (wider, narrows) {
                    (true, true) => {
                        let live = h.cloned().unwrap_or(Value::Null);
                        p.push(
                            Node::new(Kind::RolePolicy, key.clone()),
                            c,
                            PolicyOp::Widen {
                                role: role.name.clone(),
                                name: name.to_string(),
                                live,
                            },
                        );
                        p.steps.push(Step::internal(
                            Node::new(Kind::RolePolicyCleanup, key),
                            format!("  {} narrowed after the switch", label(&role.name, name)),
                            op,
                        ));
                    }
                    (false, true) => p.push(Node::new(Kind::RolePolicyCleanup, key), c, op),
                    _ => p.push(Node::new(Kind::RolePolicy, key), c, op),
                }
            }
        }
        Ok(())
    }

    /// Every inline policy of a role the stack owns: DeleteRole refuses a role that has
    /// any, so they are deleted first.
    fn plan_destroy(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live::<RolePolicy>();
        for role in &p.stack.roles {
            if p.snap.get::<Role>(&role.name).is_none() {
                continue;
            }
            for l in live.values().filter(|l| l.role == role.name) {
                p.push(
                    Node::new(Kind::RolePolicy, node_key(role)),
                    ResourceChange::new(label(&l.role, &l.name), Action::Delete, vec![])
                        .with_reason(format!(
                            "{} cannot be deleted while it has policies",
                            role_label(&role.name)
                        )),
                    PolicyOp::Delete {
                        role: l.role.clone(),
                        name: l.name.clone(),
                    },
                );
            }
        }
        Ok(())
    }
}

/// The document wsconn.toml declares, with the ids this run knows.
fn applied_document(cx: &Cx, role: &str, name: &str) -> Result<Value> {
    let def = cx
        .stack
        .role(role)
        .and_then(|r| r.policies.iter().find(|p| p.name == name))
        .ok_or_else(|| {
            Error::Conflict(format!("{} is not part of the stack", label(role, name)))
        })?;
    let api_id = match needs_api(def) {
        true => Some(cx.api_id()?),
        false => None,
    };
    Ok(document(def, &cx.stack, &cx.env, api_id.as_deref()))
}

async fn put(cx: &Cx, role: &str, name: &str, doc: &Value) -> Result<()> {
    cx.aws
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(doc.to_string())
        .send()
        .await
        .map_err(|e| error::aws(format!("writing {}", label(role, name)), e))?;
    Ok(())
}

async fn delete(cx: &Cx, role: &str, name: &str) -> Result<()> {
    match cx
        .aws
        .iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if error::is_not_found(&e) => Ok(()),
        Err(e) => Err(error::aws(format!("deleting {}", label(role, name)), e)),
    }
}

impl Op for PolicyOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                PolicyOp::Put { role, name } => {
                    put(cx, role, name, &applied_document(cx, role, name)?).await
                }
                PolicyOp::Widen { role, name, live } => {
                    let doc = union(live, &applied_document(cx, role, name)?);
                    put(cx, role, name, &doc).await
                }
                PolicyOp::Delete { role, name } => delete(cx, role, name).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(action: &str) -> Value {
        json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[action],"Resource":"*"}]})
    }

    #[test]
    fn in_sync_policy_has_no_change() {
        assert!(diff("r", "p", Some(&doc("a:B")), Some(&doc("a:B"))).is_none());
    }

    #[test]
    fn a_missing_or_changed_grant_widens_and_an_extra_one_is_deleted_without_consent() {
        let (c, op) = diff("r", "p", Some(&doc("a:B")), None).unwrap();
        assert_eq!(
            (c.action, c.risk),
            (Action::Create, Some(Risk::WidensPermissions))
        );
        assert!(matches!(op, PolicyOp::Put { .. }));
        let (c, _) = diff("r", "p", Some(&doc("a:B")), Some(&doc("a:C"))).unwrap();
        assert_eq!(
            (c.action, c.risk),
            (Action::Update, Some(Risk::WidensPermissions))
        );
        assert_eq!(c.fields[0].field, "document");
        let (c, op) = diff("r", "extra", None, Some(&doc("*"))).unwrap();
        assert_eq!((c.action, c.risk), (Action::Delete, None));
        assert_eq!(c.resource, "policy extra of role r");
        assert!(matches!(op, PolicyOp::Delete { .. }));
    }

    #[test]
    fn documents_follow_the_grants_with_the_accounts_arns() {
        let stack = crate::stack::tests_support::stack("s");
        let env = AwsEnv {
            region: "eu-west-1".into(),
            account: "111122223333".into(),
            partition: "aws".into(),
        };
        let logs = &stack.role("s-default-fn").unwrap().policies[0];
        assert_eq!(
            document(logs, &stack, &env, None),
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
                "Action":["logs:CreateLogStream","logs:PutLogEvents"],
                "Resource":"arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/s-default:*"}]})
        );
        let table = &stack.role("s-apigw-dynamodb").unwrap().policies[0];
        assert_eq!(
            document(table, &stack, &env, None),
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
                "Action":["dynamodb:PutItem","dynamodb:DeleteItem"],
                "Resource":"arn:aws:dynamodb:eu-west-1:111122223333:table/s-connections"}]})
        );
    }
}
