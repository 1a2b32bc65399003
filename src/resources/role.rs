//! The two IAM roles: one API Gateway assumes to write the table, one the function runs as.
//!
//! Each role has exactly one inline policy and no managed policies; anything extra found
//! live is reported and removed. Documents are compared as parsed JSON because IAM
//! returns them URL-encoded. DeleteRole fails with DeleteConflict until inline policies
//! are deleted and managed ones detached, so delete does both first.

use super::{
    Resource, Step, TagDelta, Tags, check_owned, parse_policy, tags_field, tags_value, widens,
};
use crate::engine::Cx;
use crate::error::{self, Result, built};
use crate::plan::{Action, ResourceChange, Risk, created_fields, field};
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
pub enum Op {
    Create,
    Update {
        trust: bool,
        put: Vec<String>,
        delete: Vec<String>,
        detach: Vec<String>,
        tags: TagDelta,
    },
    Delete {
        inline: Vec<String>,
        managed: Vec<String>,
    },
}

fn trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    })
}

impl Role {
    pub fn spec(self, cx: &Cx) -> Spec {
        let n = &cx.names;
        let env = &cx.aws.env;
        let (name, service, policy_name, policy) = match self {
            Role::ApiGateway => (
                n.api_role.clone(),
                "apigateway.amazonaws.com",
                n.api_role_policy.clone(),
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
                n.function_role.clone(),
                "lambda.amazonaws.com",
                n.function_role_policy.clone(),
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
            name,
            trust_policy: trust(service),
            inline_policies: [(policy_name, policy)].into(),
            tags: cx.desired_tags(),
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

pub async fn read(cx: &Cx, name: &str) -> Result<Option<LiveRole>> {
    let iam = &cx.aws.iam;
    let role = match iam.get_role().role_name(name).send().await {
        Ok(o) => o.role,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(error::aws(format!("reading role {name}"), e)),
    };
    let Some(role) = role else { return Ok(None) };
    let (names, managed, tags) = futures::try_join!(
        async {
            iam.list_role_policies()
                .role_name(name)
                .send()
                .await
                .map(|o| o.policy_names().to_vec())
                .map_err(|e| error::aws(format!("listing inline policies of role {name}"), e))
        },
        async {
            iam.list_attached_role_policies()
                .role_name(name)
                .send()
                .await
                .map(|o| {
                    o.attached_policies()
                        .iter()
                        .filter_map(|p| p.policy_arn().map(String::from))
                        .collect::<Vec<_>>()
                })
                .map_err(|e| error::aws(format!("listing managed policies of role {name}"), e))
        },
        async {
            iam.list_role_tags()
                .role_name(name)
                .send()
                .await
                .map(|o| {
                    o.tags()
                        .iter()
                        .map(|t| (t.key().to_string(), t.value().to_string()))
                        .collect::<Tags>()
                })
                .map_err(|e| error::aws(format!("reading tags of role {name}"), e))
        }
    )?;
    let docs = futures::future::try_join_all(names.iter().map(|p| async move {
        let o = iam
            .get_role_policy()
            .role_name(name)
            .policy_name(p)
            .send()
            .await
            .map_err(|e| error::aws(format!("reading policy {p} of role {name}"), e))?;
        Ok::<_, crate::error::Error>((p.clone(), parse_policy(o.policy_document(), true)))
    }))
    .await?;
    Ok(Some(LiveRole {
        arn: role.arn().to_string(),
        trust_policy: role
            .assume_role_policy_document()
            .map(|d| parse_policy(d, true))
            .unwrap_or(Value::Null),
        inline_policies: docs.into_iter().collect(),
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

pub fn diff(spec: &Spec, live: Option<&LiveRole>) -> Option<(ResourceChange, Op)> {
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
        return Some((c, Op::Create));
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
    let op = Op::Update {
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
    Some((c, op))
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

async fn delete_role(cx: &Cx, name: &str, inline: &[String], managed: &[String]) -> Result<()> {
    let iam = &cx.aws.iam;
    for p in inline {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(p)
            .send()
            .await
            .map_err(|e| error::aws(format!("deleting policy {p} of role {name}"), e))?;
    }
    for arn in managed {
        iam.detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| error::aws(format!("detaching {arn} from role {name}"), e))?;
    }
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(error::aws(format!("deleting role {name}"), e)),
    }
}

impl Resource for Role {
    fn plan<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let spec = self.spec(cx);
            let live = read(cx, &spec.name).await?;
            if let Some(l) = &live {
                check_owned(&label(&spec.name), &l.tags, cx.stack())?;
            }
            Ok(diff(&spec, live.as_ref())
                .map(|(c, op)| Step::new(c, op))
                .into_iter()
                .collect())
        })
    }

    fn plan_destroy<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let spec = self.spec(cx);
            let Some(live) = read(cx, &spec.name).await? else {
                return Ok(vec![]);
            };
            check_owned(&label(&spec.name), &live.tags, cx.stack())?;
            let op = Op::Delete {
                inline: live.inline_policies.keys().cloned().collect(),
                managed: live.managed_policies,
            };
            Ok(vec![Step::new(
                ResourceChange::new(label(&spec.name), Action::Delete, vec![]),
                op,
            )])
        })
    }

    fn apply<'a>(&'a self, cx: &'a Cx, step: &'a Step) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let spec = self.spec(cx);
            let iam = &cx.aws.iam;
            let name = &spec.name;
            match step.op::<Op>() {
                Op::Create => {
                    let mut req = iam
                        .create_role()
                        .role_name(name)
                        .assume_role_policy_document(spec.trust_policy.to_string());
                    for (k, v) in &spec.tags {
                        req = req.tags(built(
                            "CreateRole",
                            aws_sdk_iam::types::Tag::builder().key(k).value(v).build(),
                        )?);
                    }
                    req.send()
                        .await
                        .map_err(|e| error::aws(format!("creating role {name}"), e))?;
                    for p in spec.inline_policies.keys() {
                        put_policy(cx, &spec, p).await?;
                    }
                }
                Op::Update {
                    trust,
                    put,
                    delete,
                    detach,
                    tags,
                } => {
                    if *trust {
                        iam.update_assume_role_policy()
                            .role_name(name)
                            .policy_document(spec.trust_policy.to_string())
                            .send()
                            .await
                            .map_err(|e| {
                                error::aws(format!("updating the trust policy of role {name}"), e)
                            })?;
                    }
                    for p in put {
                        put_policy(cx, &spec, p).await?;
                    }
                    for p in delete {
                        iam.delete_role_policy()
                            .role_name(name)
                            .policy_name(p)
                            .send()
                            .await
                            .map_err(|e| {
                                error::aws(format!("deleting extra policy {p} of role {name}"), e)
                            })?;
                    }
                    for arn in detach {
                        iam.detach_role_policy()
                            .role_name(name)
                            .policy_arn(arn)
                            .send()
                            .await
                            .map_err(|e| {
                                error::aws(format!("detaching {arn} from role {name}"), e)
                            })?;
                    }
                    if !tags.remove.is_empty() {
                        iam.untag_role()
                            .role_name(name)
                            .set_tag_keys(Some(tags.remove.clone()))
                            .send()
                            .await
                            .map_err(|e| {
                                error::aws(format!("removing tags from role {name}"), e)
                            })?;
                    }
                    if !tags.set.is_empty() {
                        let mut req = iam.tag_role().role_name(name);
                        for (k, v) in &tags.set {
                            req = req.tags(built(
                                "TagRole",
                                aws_sdk_iam::types::Tag::builder().key(k).value(v).build(),
                            )?);
                        }
                        req.send()
                            .await
                            .map_err(|e| error::aws(format!("tagging role {name}"), e))?;
                    }
                }
                Op::Delete { inline, managed } => delete_role(cx, name, inline, managed).await?,
            }
            Ok(())
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
        match op {
            Op::Update {
                delete,
                detach,
                put,
                ..
            } => {
                assert_eq!(delete, vec!["extra".to_string()]);
                assert_eq!(detach.len(), 1);
                assert!(put.is_empty());
            }
            _ => panic!("expected update"),
        }
    }

    #[test]
    fn a_deleted_inline_policy_is_put_back_and_counts_as_widening() {
        let mut l = live();
        l.inline_policies.clear();
        let (c, op) = diff(&spec(), Some(&l)).unwrap();
        assert_eq!(c.risk, Some(Risk::WidensPermissions));
        assert!(matches!(op, Op::Update { ref put, .. } if put == &vec!["p".to_string()]));
    }
}
