//! The two IAM roles: one API Gateway assumes to write the table, one the function runs as.
//!
//! Each role has exactly one inline policy and no managed policies; anything extra found
//! live is reported and removed. Documents are compared as parsed JSON because IAM
//! returns them URL-encoded.
//! - CreateRole's EntityAlreadyExists means someone (another run, or this run's own
//!   first attempt whose answer was lost) just created it: re-read, check ownership,
//!   finish as an update.
//! - DeleteRole fails with DeleteConflict until inline policies are deleted and managed
//!   ones detached, so destroy plans those as their own step first.

use super::{TagDelta, Tags, check_owned, parse_policy, tags_field, tags_value, widens};
use crate::aws::{Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::plan::{Action, ResourceChange, Risk, created_fields, field};
use crate::deploy::step::{Op, Step};
use crate::error::{self, Error, Result, built};
use crate::stack::Stack;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Assumed by apigateway.amazonaws.com; PutItem/DeleteItem on the table, nothing else.
    ApiGateway,
    /// Assumed by lambda.amazonaws.com; writes to its own log group, nothing else.
    Function,
}

pub const ROLES: [Role; 2] = [Role::ApiGateway, Role::Function];

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: String,
    pub trust_policy: Value,
    pub inline_policies: BTreeMap<String, Value>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveRole {
    pub arn: String,
    pub trust_policy: Value,
    pub inline_policies: BTreeMap<String, Value>,
    pub managed_policies: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug)]
pub enum RoleOp {
    Create(Role),
    Update(Role, Update),
    /// Destroy, first half: delete inline policies and detach managed ones.
    DeletePolicies {
        name: String,
        inline: Vec<String>,
        managed: Vec<String>,
    },
    /// Destroy, second half.
    Delete(String),
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Update {
    pub trust: bool,
    pub put: Vec<String>,
    pub delete: Vec<String>,
    pub detach: Vec<String>,
    pub tags: TagDelta,
}

fn trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    })
}

impl Role {
    /// The graph key: "api" or "function".
    pub fn key(self) -> &'static str {
        match self {
            Role::ApiGateway => "api",
            Role::Function => "function",
        }
    }

    pub fn name(self, stack: &Stack) -> &str {
        match self {
            Role::ApiGateway => &stack.names.api_role,
            Role::Function => &stack.names.function_role,
        }
    }

    /// The inline policy wsconn keeps on the role (read directly, without listing).
    pub fn policy_name(self, stack: &Stack) -> &str {
        match self {
            Role::ApiGateway => &stack.names.api_role_policy,
            Role::Function => &stack.names.function_role_policy,
        }
    }

    pub fn spec(self, stack: &Stack, env: &AwsEnv) -> Spec {
        let n = &stack.names;
        let (service, policy) = match self {
            Role::ApiGateway => (
                "apigateway.amazonaws.com",
                json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Action": ["dynamodb:PutItem", "dynamodb:DeleteItem"],
                        "Resource": env.table_arn(&n.table)
                    }]
                }),
            ),
            Role::Function => (
                "lambda.amazonaws.com",
                json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": format!("{}:*", env.log_group_arn(&n.log_group))
                    }]
                }),
            ),
        };
        Spec {
            name: self.name(stack).to_string(),
            trust_policy: trust(service),
            inline_policies: [(self.policy_name(stack).to_string(), policy)].into(),
            tags: stack.tags.clone(),
        }
    }
}

fn label(name: &str) -> String {
    format!("role {name}")
}

fn not_found<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    error::code_of(e) == Some("NoSuchEntity")
}

/// GetRole, the policy lists, the tags and the known inline policy all at once (one
/// round-trip level); a second level only for inline policies wsconn does not know.
/// An empty `known_policy` reads every listed policy at the second level.
pub async fn read(aws: &Aws, name: &str, known_policy: &str) -> Result<Option<LiveRole>> {
    let iam = &aws.iam;
    let (role, names, managed, tags, known) = futures::join!(
        aws.gated(iam.get_role().role_name(name).send()),
        aws.gated(iam.list_role_policies().role_name(name).send()),
        aws.gated(iam.list_attached_role_policies().role_name(name).send()),
        aws.gated(iam.list_role_tags().role_name(name).send()),
        async {
            if known_policy.is_empty() {
                return None;
            }
            let call = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(known_policy)
                .send();
            Some(aws.gated(call).await)
        },
    );
    let role = match role {
        Ok(o) => match o.role {
            Some(r) => r,
            None => return Ok(None),
        },
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(error::aws(format!("reading role {name}"), e)),
    };
    // A NoSuchEntity below means the role was deleted between the calls.
    macro_rules! or_gone {
        ($r:expr, $doing:expr) => {
            match $r {
                Ok(o) => o,
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(error::aws($doing, e)),
            }
        };
    }
    let names = or_gone!(names, format!("listing inline policies of role {name}"))
        .policy_names()
        .to_vec();
    let managed = or_gone!(managed, format!("listing managed policies of role {name}"))
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(String::from))
        .collect::<Vec<_>>();
    let tags = or_gone!(tags, format!("reading tags of role {name}"))
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect::<Tags>();
    let mut inline = BTreeMap::new();
    match known {
        None => {}
        Some(Ok(o)) => {
            inline.insert(
                known_policy.to_string(),
                parse_policy(o.policy_document(), true),
            );
        }
        Some(Err(e)) if not_found(&e) => {}
        Some(Err(e)) => {
            return Err(error::aws(
                format!("reading policy {known_policy} of role {name}"),
                e,
            ));
        }
    }
    let extras =
        futures::future::join_all(names.iter().filter(|p| p.as_str() != known_policy).map(
            |p| async move {
                let r = aws
                    .gated(iam.get_role_policy().role_name(name).policy_name(p).send())
                    .await;
                (p.clone(), r)
            },
        ))
        .await;
    for (p, r) in extras {
        match r {
            Ok(o) => {
                inline.insert(p, parse_policy(o.policy_document(), true));
            }
            // Deleted since it was listed.
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(error::aws(format!("reading policy {p} of role {name}"), e)),
        }
    }
    Ok(Some(LiveRole {
        arn: role.arn().to_string(),
        trust_policy: role
            .assume_role_policy_document()
            .map(|d| parse_policy(d, true))
            .unwrap_or(Value::Null),
        inline_policies: inline,
        managed_policies: managed,
        tags,
    }))
}

fn policies_value(p: &BTreeMap<String, Value>) -> Value {
    Value::Object(
        p.iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Map<_, _>>(),
    )
}

/// Pure comparison; `None` when in sync, `Err(())`-free: a missing role is a create.
pub fn diff(spec: &Spec, live: Option<&LiveRole>) -> Option<(ResourceChange, Option<Update>)> {
    let resource = label(&spec.name);
    let Some(live) = live else {
        let fields = created_fields(vec![
            ("trust_policy", spec.trust_policy.clone()),
            ("inline_policies", policies_value(&spec.inline_policies)),
            ("managed_policies", json!([])),
            ("tags", tags_value(&spec.tags)),
        ]);
        let c = ResourceChange::new(resource, Action::Create, fields)
            .with_risk(Some(Risk::WidensPermissions));
        return Some((c, None));
    };
    let trust_f = field(
        "trust_policy",
        live.trust_policy.clone(),
        spec.trust_policy.clone(),
    );
    let inline_f = field(
        "inline_policies",
        policies_value(&live.inline_policies),
        policies_value(&spec.inline_policies),
    );
    let managed_f = field("managed_policies", json!(live.managed_policies), json!([]));
    let tags_f = tags_field(&live.tags, &spec.tags);
    let put: Vec<String> = spec
        .inline_policies
        .iter()
        .filter(|(k, v)| live.inline_policies.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    let delete: Vec<String> = live
        .inline_policies
        .keys()
        .filter(|k| !spec.inline_policies.contains_key(*k))
        .cloned()
        .collect();
    let widening = (trust_f.is_some() && widens(&live.trust_policy, &spec.trust_policy))
        || put.iter().any(|p| {
            widens(
                live.inline_policies.get(p).unwrap_or(&Value::Null),
                &spec.inline_policies[p],
            )
        });
    let update = Update {
        trust: trust_f.is_some(),
        put,
        delete,
        detach: live.managed_policies.clone(),
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    let fields: Vec<_> = [trust_f, inline_f, managed_f, tags_f]
        .into_iter()
        .flatten()
        .collect();
    if fields.is_empty() {
        return None;
    }
    let c = ResourceChange::new(resource, Action::Update, fields)
        .with_risk(widening.then_some(Risk::WidensPermissions));
    Some((c, Some(update)))
}

pub fn plan(stack: &Stack, env: &AwsEnv, role: Role, live: Option<&LiveRole>) -> Result<Vec<Step>> {
    let spec = role.spec(stack, env);
    if let Some(l) = live {
        check_owned(&label(&spec.name), &l.tags, &stack.name)?;
    }
    let node = Node::new(Kind::Role, role.key());
    Ok(match diff(&spec, live) {
        None => vec![],
        Some((c, None)) => vec![Step::new(node, c, RoleOp::Create(role))],
        Some((c, Some(u))) => vec![Step::new(node, c, RoleOp::Update(role, u))],
    })
}

/// Two steps: the policies, then the role (DeleteRole refuses a role with policies).
pub fn plan_destroy(stack: &Stack, role: Role, live: Option<&LiveRole>) -> Result<Vec<Step>> {
    let name = role.name(stack).to_string();
    let Some(live) = live else { return Ok(vec![]) };
    check_owned(&label(&name), &live.tags, &stack.name)?;
    let mut steps = Vec::new();
    let inline: Vec<String> = live.inline_policies.keys().cloned().collect();
    if !inline.is_empty() || !live.managed_policies.is_empty() {
        steps.push(Step::internal(
            Node::new(Kind::RolePolicies, role.key()),
            format!("- policies of role {name}"),
            RoleOp::DeletePolicies {
                name: name.clone(),
                inline,
                managed: live.managed_policies.clone(),
            },
        ));
    }
    steps.push(Step::new(
        Node::new(Kind::Role, role.key()),
        ResourceChange::new(label(&name), Action::Delete, vec![]),
        RoleOp::Delete(name),
    ));
    Ok(steps)
}

async fn put_policy(cx: &Cx, spec: &Spec, name: &str) -> Result<()> {
    let doc = spec.inline_policies[name].to_string();
    cx.aws
        .iam
        .put_role_policy()
        .role_name(&spec.name)
        .policy_name(name)
        .policy_document(doc)
        .send()
        .await
        .map_err(|e| error::aws(format!("writing policy {name} of role {}", spec.name), e))?;
    Ok(())
}

async fn create(cx: &Cx, role: Role) -> Result<()> {
    let spec = role.spec(&cx.stack, &cx.env);
    let name = &spec.name;
    let mut req = cx
        .aws
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(spec.trust_policy.to_string());
    for (k, v) in &spec.tags {
        req = req.tags(built(
            "CreateRole",
            aws_sdk_iam::types::Tag::builder().key(k).value(v).build(),
        )?);
    }
    match req.send().await {
        Ok(_) => {
            futures::future::try_join_all(
                spec.inline_policies
                    .keys()
                    .map(|p| put_policy(cx, &spec, p)),
            )
            .await?;
            Ok(())
        }
        Err(e) => {
            let e = error::aws(format!("creating role {name}"), e);
            if !error::is_already_exists(&e) {
                return Err(e);
            }
            // Someone just created it (or our first attempt did): re-read and finish.
            let live = read(&cx.aws, name, role.policy_name(&cx.stack))
                .await?
                .ok_or_else(|| Error::Vanished(label(name)))?;
            check_owned(&label(name), &live.tags, &cx.stack.name)?;
            match diff(&spec, Some(&live)) {
                Some((_, Some(u))) => update(cx, &spec, &u).await,
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
    for p in &u.put {
        put_policy(cx, spec, p).await?;
    }
    delete_policies(cx, name, &u.delete, &u.detach).await?;
    if !u.tags.remove.is_empty() {
        iam.untag_role()
            .role_name(name)
            .set_tag_keys(Some(u.tags.remove.clone()))
            .send()
            .await
            .map_err(|e| error::aws(format!("removing tags from role {name}"), e))?;
    }
    if !u.tags.set.is_empty() {
        let mut req = iam.tag_role().role_name(name);
        for (k, v) in &u.tags.set {
            req = req.tags(built(
                "TagRole",
                aws_sdk_iam::types::Tag::builder().key(k).value(v).build(),
            )?);
        }
        req.send()
            .await
            .map_err(|e| error::aws(format!("tagging role {name}"), e))?;
    }
    Ok(())
}

/// Deletes inline policies and detaches managed ones, all at once; already gone is done.
async fn delete_policies(cx: &Cx, name: &str, inline: &[String], managed: &[String]) -> Result<()> {
    let iam = &cx.aws.iam;
    let deletes = inline.iter().map(|p| async move {
        match iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(p)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(error::aws(format!("deleting policy {p} of role {name}"), e)),
        }
    });
    let detaches = managed.iter().map(|arn| async move {
        match iam
            .detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(error::aws(format!("detaching {arn} from role {name}"), e)),
        }
    });
    futures::try_join!(
        futures::future::try_join_all(deletes),
        futures::future::try_join_all(detaches)
    )?;
    Ok(())
}

/// DeleteRole; a DeleteConflict means a policy appeared since the read: remove what is
/// there now and try again (a few times at most).
async fn delete_role(cx: &Cx, name: &str) -> Result<()> {
    let iam = &cx.aws.iam;
    for _ in 0..3 {
        match iam.delete_role().role_name(name).send().await {
            Ok(_) => return Ok(()),
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) if error::code_of(&e) == Some("DeleteConflict") => {
                let live = match read(&cx.aws, name, "").await? {
                    Some(l) => l,
                    None => return Ok(()),
                };
                let inline: Vec<String> = live.inline_policies.keys().cloned().collect();
                delete_policies(cx, name, &inline, &live.managed_policies).await?;
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
                RoleOp::Create(role) => create(cx, *role).await,
                RoleOp::Update(role, u) => update(cx, &role.spec(&cx.stack, &cx.env), u).await,
                RoleOp::DeletePolicies {
                    name,
                    inline,
                    managed,
                } => delete_policies(cx, name, inline, managed).await,
                RoleOp::Delete(name) => delete_role(cx, name).await,
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
            inline_policies: [("p".to_string(), json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}]}))].into(),
            tags: [("wsconn:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn live() -> LiveRole {
        let s = spec();
        LiveRole {
            arn: "arn".into(),
            trust_policy: s.trust_policy,
            inline_policies: s.inline_policies,
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
    fn extra_inline_and_managed_policies_are_removed_without_widening() {
        let mut l = live();
        l.inline_policies
            .insert("extra".into(), json!({"Statement": []}));
        l.managed_policies
            .push("arn:aws:iam::aws:policy/AdministratorAccess".into());
        let (c, op) = diff(&spec(), Some(&l)).unwrap();
        let fields: Vec<_> = c.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["inline_policies", "managed_policies"]);
        assert_eq!(c.risk, None);
        let u = op.expect("an update");
        assert_eq!(u.delete, vec!["extra".to_string()]);
        assert_eq!(u.detach.len(), 1);
        assert!(u.put.is_empty());
    }

    #[test]
    fn a_deleted_inline_policy_is_put_back_and_counts_as_widening() {
        let mut l = live();
        l.inline_policies.clear();
        let (c, op) = diff(&spec(), Some(&l)).unwrap();
        assert_eq!(c.risk, Some(Risk::WidensPermissions));
        assert_eq!(op.unwrap().put, vec!["p".to_string()]);
    }
}
