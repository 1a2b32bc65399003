//! IAM roles, keyed by name: the one API Gateway assumes to write the table, and one per
//! function. This kind holds the role itself: who may assume it (the trust policy), its
//! managed policies (none are wanted: any found live are detached) and its tags. What
//! the role allows is in its inline policies, a kind of their own (`role_policy`).
//!
//! - CreateRole's EntityAlreadyExists means someone (another run, or this run's own first
//!   attempt whose answer was lost) just created it: re-read, check ownership, finish as
//!   an update.
//! - DeleteRole fails with DeleteConflict until inline policies are deleted (their own
//!   steps, which the graph runs first) and managed ones detached (done here, first).
//! - Trust policies come back URL-encoded; they are compared as parsed JSON.

use super::{TagDelta, Tags, check_owned, parse_policy, tags_field, tags_value, widens};
use crate::aws::Aws;
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, Risk, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result, built};
use crate::stack::{RoleDef, Stack};
use futures::future::BoxFuture;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: String,
    pub trust_policy: Value,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveRole {
    pub arn: String,
    pub trust_policy: Value,
    pub managed_policies: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug)]
pub enum RoleOp {
    Create(String),
    Update(String, Update),
    /// Detach the managed policies, then DeleteRole (its inline policies are deleted by
    /// their own steps first).
    Delete {
        name: String,
        managed: Vec<String>,
    },
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Update {
    pub trust: bool,
    pub detach: Vec<String>,
    pub tags: TagDelta,
}

/// The trust policy letting `service` assume a role.
pub fn trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    })
}

pub fn spec(stack: &Stack, role: &RoleDef) -> Spec {
    Spec {
        name: role.name.clone(),
        trust_policy: trust(role.service),
        tags: stack.tags.clone(),
    }
}

/// The graph key of a role's steps (and of its policies'): the function it serves, so a
/// function's steps can wait for its own role; the role's name otherwise.
pub fn node_key(role: &RoleDef) -> String {
    role.function.clone().unwrap_or_else(|| role.name.clone())
}

pub fn label(name: &str) -> String {
    format!("role {name}")
}

/// GetRole (which carries the tags) and the managed policies at once: one round-trip
/// level.
pub async fn read(aws: &Aws, name: &str) -> Result<Option<LiveRole>> {
    let iam = &aws.iam;
    let (role, managed) = futures::join!(
        aws.gated(iam.get_role().role_name(name).send()),
        aws.gated(iam.list_attached_role_policies().role_name(name).send()),
    );
    let role = match role {
        Ok(o) => match o.role {
            Some(r) => r,
            None => return Ok(None),
        },
        Err(e) if error::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(error::aws(format!("reading role {name}"), e)),
    };
    // A NoSuchEntity below means the role was deleted between the calls.
    let managed = match managed {
        Ok(o) => o
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(String::from))
            .collect(),
        Err(e) if error::is_not_found(&e) => return Ok(None),
        Err(e) => {
            return Err(error::aws(
                format!("listing managed policies of role {name}"),
                e,
            ));
        }
    };
    let tags = role
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    Ok(Some(LiveRole {
        arn: role.arn().to_string(),
        trust_policy: role
            .assume_role_policy_document()
            .map(|d| parse_policy(d, true))
            .unwrap_or(Value::Null),
        managed_policies: managed,
        tags,
    }))
}

/// Pure comparison; a missing role is a create.
pub fn diff(spec: &Spec, live: Option<&LiveRole>) -> Option<(ResourceChange, RoleOp)> {
    let resource = label(&spec.name);
    let Some(live) = live else {
        let fields = created_fields(vec![
            ("trust_policy", spec.trust_policy.clone()),
            ("managed_policies", json!([])),
            ("tags", tags_value(&spec.tags)),
        ]);
        let c = ResourceChange::new(resource, Action::Create, fields)
            .with_risk(Some(Risk::WidensPermissions));
        return Some((c, RoleOp::Create(spec.name.clone())));
    };
    let trust_f = field(
        "trust_policy",
        live.trust_policy.clone(),
        spec.trust_policy.clone(),
    );
    let managed_f = field("managed_policies", json!(live.managed_policies), json!([]));
    let tags_f = tags_field(&live.tags, &spec.tags);
    let widening = trust_f.is_some() && widens(&live.trust_policy, &spec.trust_policy);
    let update = Update {
        trust: trust_f.is_some(),
        detach: live.managed_policies.clone(),
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    let fields: Vec<_> = [trust_f, managed_f, tags_f].into_iter().flatten().collect();
    if fields.is_empty() {
        return None;
    }
    let c = ResourceChange::new(resource, Action::Update, fields)
        .with_risk(widening.then_some(Risk::WidensPermissions));
    Some((c, RoleOp::Update(spec.name.clone(), update)))
}

/// The kind: every role of the stack, keyed by name.
pub struct Role;

impl Resource for Role {
    type Live = LiveRole;
    const NAME: &'static str = "role";

    /// The declared roles, and the roles of functions the stack no longer declares
    /// (`<function>-fn`) that carry its tag.
    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveRole>>> {
        Box::pin(async move {
            let declared = async {
                futures::future::try_join_all(rd.stack.roles.iter().map(|r| async {
                    Ok::<_, Error>(read(rd.aws, &r.name).await?.map(|l| (r.name.clone(), l)))
                }))
                .await
            };
            let removed = super::log_group::leftovers(
                rd,
                |f| format!("{f}-fn"),
                |n| rd.stack.role(n).is_some(),
                |n| async move { read(rd.aws, &n).await },
                |l: &LiveRole| &l.tags,
            );
            let (a, b) = futures::try_join!(declared, removed)?;
            Ok(a.into_iter().flatten().chain(b).collect())
        })
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        for (name, live) in p.live::<Role>().iter() {
            if p.stack.role(name).is_some() {
                continue;
            }
            let function = name.strip_suffix("-fn").unwrap_or(name);
            p.push(
                Node::new(Kind::RoleCleanup, function),
                ResourceChange::new(label(name), Action::Delete, vec![])
                    .with_reason("wsconn.toml no longer declares its function"),
                RoleOp::Delete {
                    name: name.clone(),
                    managed: live.managed_policies.clone(),
                },
            );
        }
        for role in &p.stack.roles {
            let live = p.snap.get::<Role>(&role.name);
            if let Some(l) = &live {
                check_owned(&label(&role.name), &l.tags, &p.stack.name)?;
            }
            if let Some((c, op)) = diff(&spec(p.stack, role), live.as_ref()) {
                p.push(Node::new(Kind::Role, node_key(role)), c, op);
            }
        }
        Ok(())
    }

    /// Every role of the stack: declared (checked for ownership) or found with its tag.
    fn plan_destroy(p: &mut Planner<'_>) -> Result<()> {
        for (name, live) in p.live::<Role>().iter() {
            check_owned(&label(name), &live.tags, &p.stack.name)?;
            let key = match p.stack.role(name) {
                Some(role) => node_key(role),
                None => name.strip_suffix("-fn").unwrap_or(name).to_string(),
            };
            p.push(
                Node::new(Kind::Role, key),
                ResourceChange::new(label(name), Action::Delete, vec![]),
                RoleOp::Delete {
                    name: name.clone(),
                    managed: live.managed_policies.clone(),
                },
            );
        }
        Ok(())
    }
}

fn iam_tags(op: &str, tags: &Tags) -> Result<Vec<aws_sdk_iam::types::Tag>> {
    tags.iter()
        .map(|(k, v)| {
            built(
                op,
                aws_sdk_iam::types::Tag::builder().key(k).value(v).build(),
            )
        })
        .collect()
}

fn role_of<'a>(cx: &'a Cx, name: &str) -> Result<&'a RoleDef> {
    cx.stack
        .role(name)
        .ok_or_else(|| Error::Conflict(format!("role {name} is not part of the stack")))
}

async fn create(cx: &Cx, name: &str) -> Result<()> {
    let spec = spec(&cx.stack, role_of(cx, name)?);
    let created = cx
        .aws
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(spec.trust_policy.to_string())
        .set_tags(Some(iam_tags("CreateRole", &spec.tags)?))
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = error::aws(format!("creating role {name}"), e);
            if !error::is_already_exists(&e) {
                return Err(e);
            }
            // Someone just created it (or our first attempt did): re-read and finish.
            let live = read(&cx.aws, name)
                .await?
                .ok_or_else(|| Error::Vanished(label(name)))?;
            check_owned(&label(name), &live.tags, &cx.stack.name)?;
            match diff(&spec, Some(&live)) {
                Some((_, RoleOp::Update(_, u))) => update(cx, &spec, &u).await,
                _ => Ok(()),
            }
        }
    }
}

async fn update(cx: &Cx, spec: &Spec, u: &Update) -> Result<()> {
    let iam = &cx.aws.iam;
    let name = &spec.name;
    if u.trust {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(spec.trust_policy.to_string())
            .send()
            .await
            .map_err(|e| error::aws(format!("updating the trust policy of role {name}"), e))?;
    }
    detach(cx, name, &u.detach).await?;
    if !u.tags.remove.is_empty() {
        iam.untag_role()
            .role_name(name)
            .set_tag_keys(Some(u.tags.remove.clone()))
            .send()
            .await
            .map_err(|e| error::aws(format!("removing tags from role {name}"), e))?;
    }
    if !u.tags.set.is_empty() {
        iam.tag_role()
            .role_name(name)
            .set_tags(Some(iam_tags("TagRole", &u.tags.set)?))
            .send()
            .await
            .map_err(|e| error::aws(format!("tagging role {name}"), e))?;
    }
    Ok(())
}

/// Detaches managed policies, all at once; already detached is done.
async fn detach(cx: &Cx, name: &str, managed: &[String]) -> Result<()> {
    let iam = &cx.aws.iam;
    futures::future::try_join_all(managed.iter().map(|arn| async move {
        match iam
            .detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error::is_not_found(&e) => Ok(()),
            Err(e) => Err(error::aws(format!("detaching {arn} from role {name}"), e)),
        }
    }))
    .await?;
    Ok(())
}

/// Deletes every inline policy the role has now (the policies' own steps delete the ones
/// that were there when the stack was read; this catches one added since).
async fn delete_inline_policies(cx: &Cx, name: &str) -> Result<()> {
    let iam = &cx.aws.iam;
    let listed = match iam.list_role_policies().role_name(name).send().await {
        Ok(o) => o.policy_names().to_vec(),
        Err(e) if error::is_not_found(&e) => return Ok(()),
        Err(e) => {
            return Err(error::aws(
                format!("listing inline policies of role {name}"),
                e,
            ));
        }
    };
    futures::future::try_join_all(listed.iter().map(|p| async move {
        match iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(p)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error::is_not_found(&e) => Ok(()),
            Err(e) => Err(error::aws(format!("deleting policy {p} of role {name}"), e)),
        }
    }))
    .await?;
    Ok(())
}

/// DeleteRole; a DeleteConflict means a policy appeared since the read: remove what is
/// there now and try again (a few times at most).
async fn delete_role(cx: &Cx, name: &str, managed: &[String]) -> Result<()> {
    let iam = &cx.aws.iam;
    detach(cx, name, managed).await?;
    for _ in 0..3 {
        match iam.delete_role().role_name(name).send().await {
            Ok(_) => return Ok(()),
            Err(e) if error::is_not_found(&e) => return Ok(()),
            Err(e) if error::code_of(&e) == Some("DeleteConflict") => {
                let Some(live) = read(&cx.aws, name).await? else {
                    return Ok(());
                };
                detach(cx, name, &live.managed_policies).await?;
                delete_inline_policies(cx, name).await?;
            }
            Err(e) => return Err(error::aws(format!("deleting role {name}"), e)),
        }
    }
    iam.delete_role()
        .role_name(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| error::aws(format!("deleting role {name}"), e))
}

impl Op for RoleOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                RoleOp::Create(name) => create(cx, name).await,
                RoleOp::Update(name, u) => {
                    update(cx, &spec(&cx.stack, role_of(cx, name)?), u).await
                }
                RoleOp::Delete { name, managed } => delete_role(cx, name, managed).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            name: "s-role".into(),
            trust_policy: trust("lambda.amazonaws.com"),
            tags: [("wsconn:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn live() -> LiveRole {
        let s = spec();
        LiveRole {
            arn: "arn".into(),
            trust_policy: s.trust_policy,
            managed_policies: vec![],
            tags: s.tags,
        }
    }

    #[test]
    fn in_sync_role_has_no_change() {
        assert!(diff(&spec(), Some(&live())).is_none());
    }

    #[test]
    fn new_role_widens_permissions() {
        let (c, _) = diff(&spec(), None).unwrap();
        assert_eq!(c.action, Action::Create);
        assert_eq!(c.risk, Some(Risk::WidensPermissions));
    }

    #[test]
    fn managed_policies_are_detached_without_widening() {
        let mut l = live();
        l.managed_policies
            .push("arn:aws:iam::aws:policy/AdministratorAccess".into());
        let (c, op) = diff(&spec(), Some(&l)).unwrap();
        let fields: Vec<_> = c.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["managed_policies"]);
        assert_eq!(c.risk, None);
        let RoleOp::Update(_, u) = op else {
            panic!("expected an update")
        };
        assert_eq!(u.detach.len(), 1);
        assert!(!u.trust);
    }

    #[test]
    fn a_trust_policy_for_another_principal_widens() {
        let mut l = live();
        l.trust_policy = trust("ec2.amazonaws.com");
        let (c, op) = diff(&spec(), Some(&l)).unwrap();
        assert_eq!(c.fields[0].field, "trust_policy");
        assert_eq!(c.risk, Some(Risk::WidensPermissions));
        assert!(matches!(op, RoleOp::Update(_, Update { trust: true, .. })));
    }
}
