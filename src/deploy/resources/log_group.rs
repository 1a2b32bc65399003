//! Log groups, keyed by name: each function's, managed explicitly with a retention so
//! that destroy leaves nothing behind (DeleteFunction leaves `/aws/lambda/<name>` in
//! place). Destroy deletes a function's log group after the function: an invocation
//! still in flight would recreate it.
//! CreateLogGroup's ResourceAlreadyExistsException means someone just created it:
//! re-read, check ownership, continue.

use super::{TagDelta, Tags, check_owned, tags_field, tags_value};
use crate::aws::Aws;
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::Stack;
use futures::future::BoxFuture;

#[derive(Debug, Clone, PartialEq)]
pub struct LiveLogGroup {
    pub arn: String,
    pub retention_days: Option<i32>,
    pub tags: Tags,
    /// Epoch milliseconds.
    pub creation_time: Option<i64>,
}

pub struct Spec {
    pub retention_days: i32,
    pub tags: Tags,
}

#[derive(Debug)]
pub enum LogGroupOp {
    Create(String),
    Update {
        name: String,
        retention: bool,
        tags: TagDelta,
    },
    Delete(String),
}

pub fn label(name: &str) -> String {
    format!("log group {name}")
}

/// The graph key of a log group's steps: the function it belongs to, so destroy deletes
/// it after that function; its own name otherwise.
fn node_key(stack: &Stack, name: &str) -> String {
    stack
        .functions
        .iter()
        .find(|f| f.log_group == name)
        .map(|f| f.name.clone())
        .unwrap_or_else(|| name.to_string())
}

/// The log group named exactly `name`, with its tags: DescribeLogGroups by prefix, then
/// ListTagsForResource by the ARN it returns (two round-trip levels). `None` when it does
/// not exist (or went away between the two calls). The stack's log group and the lock
/// (`super::super::lock`) are both found this way.
pub async fn find(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> Result<Option<LiveLogGroup>> {
    let out = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| error::aws(format!("reading log group {name}"), e))?;
    let Some(g) = out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
    else {
        return Ok(None);
    };
    let arn = g
        .log_group_arn()
        .map(String::from)
        .or_else(|| g.arn().map(|a| a.trim_end_matches(":*").to_string()))
        .unwrap_or_default();
    let tags = match logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
    {
        Ok(o) => o.tags.unwrap_or_default().into_iter().collect(),
        Err(e) if error::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(error::aws(format!("reading tags of log group {name}"), e)),
    };
    Ok(Some(LiveLogGroup {
        arn,
        retention_days: g.retention_in_days(),
        tags,
        creation_time: g.creation_time(),
    }))
}

/// Every log group under `prefix` (all pages), without tags.
async fn list_prefix(aws: &Aws, prefix: &str) -> Result<Vec<(String, LiveLogGroup)>> {
    super::all_pages(|token| async move {
        let out = aws
            .gated(
                aws.logs
                    .describe_log_groups()
                    .log_group_name_prefix(prefix)
                    .set_next_token(token)
                    .send(),
            )
            .await
            .map_err(|e| error::aws(format!("listing log groups under {prefix}"), e))?;
        let groups = out
            .log_groups()
            .iter()
            .map(|g| {
                let name = g.log_group_name().unwrap_or_default().to_string();
                let arn = g
                    .log_group_arn()
                    .map(String::from)
                    .or_else(|| g.arn().map(|a| a.trim_end_matches(":*").to_string()))
                    .unwrap_or_default();
                (
                    name,
                    LiveLogGroup {
                        arn,
                        retention_days: g.retention_in_days(),
                        tags: Tags::new(),
                        creation_time: g.creation_time(),
                    },
                )
            })
            .collect();
        Ok((groups, out.next_token().map(String::from)))
    })
    .await
}

/// Every log group under the stack's two prefixes, without tags: its functions'
/// (`/aws/lambda/<stack>-*`) and its access logs (`/aws/apigateway/<stack>/*`). One
/// listing per prefix, shared by every kind that needs it: the declared log groups are
/// found in it, and so are those of routes removed from wsconn.toml (a function's log
/// group is made before it and deleted after it), by which removed functions and roles
/// are found. Whether an undeclared one is the stack's is decided by its own tag.
async fn listed(rd: &Reader<'_>) -> Result<Vec<(String, LiveLogGroup)>> {
    rd.shared("stack-log-groups", || async {
        let stack = rd.stack;
        let (lambda, apigw) = (
            format!("/aws/lambda/{}-", stack.name),
            format!("/aws/apigateway/{}/", stack.name),
        );
        let (functions, access) =
            futures::try_join!(list_prefix(rd.aws, &lambda), list_prefix(rd.aws, &apigw))?;
        Ok(functions.into_iter().chain(access).collect())
    })
    .await
}

/// The listed log groups the desired stack does not name.
pub async fn undeclared(rd: &Reader<'_>) -> Result<Vec<(String, LiveLogGroup)>> {
    let declared: Vec<&String> = rd.stack.owned_log_groups().collect();
    Ok(listed(rd)
        .await?
        .into_iter()
        .filter(|(n, _)| !declared.contains(&n))
        .collect())
}

/// Names of functions the stack no longer declares, from [`undeclared`] log groups.
pub async fn undeclared_functions(rd: &Reader<'_>) -> Result<Vec<String>> {
    Ok(undeclared(rd)
        .await?
        .into_iter()
        .filter_map(|(n, _)| n.strip_prefix("/aws/lambda/").map(String::from))
        .collect())
}

const EXECUTION_PREFIX: &str = "API-Gateway-Execution-Logs_";

/// The log group API Gateway makes for a stage's execution logs.
pub fn execution_log_group(api_id: &str, stage: &str) -> String {
    format!("{EXECUTION_PREFIX}{api_id}/{stage}")
}

/// One resource per function the stack no longer declares (the function itself, its
/// role): named `name_of(function)`, skipped when `declared`, read with `read`, and kept
/// only when it carries the stack's ownership tag.
pub async fn leftovers<L, F, Fut>(
    rd: &Reader<'_>,
    name_of: fn(&str) -> String,
    declared: impl Fn(&str) -> bool,
    read: F,
    tags: fn(&L) -> &Tags,
) -> Result<Vec<(String, L)>>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<L>>>,
{
    let names: Vec<String> = undeclared_functions(rd)
        .await?
        .iter()
        .map(|f| name_of(f))
        .filter(|n| !declared(n))
        .collect();
    let found = futures::future::try_join_all(names.into_iter().map(|name| {
        let live = read(name.clone());
        async move { Ok::<_, Error>(live.await?.map(|l| (name, l))) }
    }))
    .await?;
    Ok(found
        .into_iter()
        .flatten()
        .filter(|(_, l)| tags(l).get(crate::config::OWNER_TAG) == Some(&rd.stack.name))
        .collect())
}

/// The stack's log group, through the `--parallelism` gate.
pub async fn read(aws: &Aws, name: &str) -> Result<Option<LiveLogGroup>> {
    aws.gated(find(&aws.logs, name)).await
}

pub fn diff(
    name: &str,
    spec: &Spec,
    live: Option<&LiveLogGroup>,
) -> Option<(ResourceChange, LogGroupOp)> {
    let resource = label(name);
    let Some(live) = live else {
        let fields = created_fields(vec![
            ("retention_days", spec.retention_days.into()),
            ("tags", tags_value(&spec.tags)),
        ]);
        return Some((
            ResourceChange::new(resource, Action::Create, fields),
            LogGroupOp::Create(name.to_string()),
        ));
    };
    let retention = field("retention_days", live.retention_days, spec.retention_days);
    let tags = tags_field(&live.tags, &spec.tags);
    let op = LogGroupOp::Update {
        name: name.to_string(),
        retention: retention.is_some(),
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    let fields: Vec<_> = [retention, tags].into_iter().flatten().collect();
    (!fields.is_empty()).then(|| (ResourceChange::new(resource, Action::Update, fields), op))
}

fn spec(stack: &Stack) -> Spec {
    Spec {
        retention_days: stack.log_retention_days,
        tags: stack.tags.clone(),
    }
}

/// The kind: every log group of the stack, keyed by name.
pub struct LogGroup;

impl Resource for LogGroup {
    type Live = LiveLogGroup;
    const NAME: &'static str = "log group";

    /// The declared log groups by name, and the undeclared ones that carry the stack's
    /// tag (a removed route's, a disabled access log): one listing, then each group's
    /// tags (two round-trip levels).
    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveLogGroup>>> {
        Box::pin(async move {
            let found = async {
                let groups = listed(rd).await?;
                futures::future::try_join_all(groups.into_iter().map(|(n, mut l)| async move {
                    match rd
                        .aws
                        .gated(
                            rd.aws
                                .logs
                                .list_tags_for_resource()
                                .resource_arn(&l.arn)
                                .send(),
                        )
                        .await
                    {
                        Ok(o) => {
                            l.tags = o.tags.unwrap_or_default().into_iter().collect();
                            // A declared name is kept whoever owns it: planning refuses
                            // one that is not the stack's.
                            let keep = rd.stack.owned_log_groups().any(|d| *d == n)
                                || l.tags.get(crate::config::OWNER_TAG) == Some(&rd.stack.name);
                            Ok::<_, Error>(keep.then_some((n, l)))
                        }
                        Err(e) if error::is_not_found(&e) => Ok(None),
                        Err(e) => Err(error::aws(format!("reading tags of log group {n}"), e)),
                    }
                }))
                .await
            };
            // API Gateway's own execution log group is named by the API's id (found by
            // the stack's tag), not tagged: destroy removes it when it exists.
            let execution = async {
                if rd.scope != crate::deploy::kind::Scope::Destroy {
                    return Ok(vec![]);
                }
                let Some(api) = super::api::found(rd).await? else {
                    return Ok(vec![]);
                };
                let name = execution_log_group(&api.id, &rd.stack.stage);
                Ok::<_, Error>(
                    list_prefix(rd.aws, &name)
                        .await?
                        .into_iter()
                        .filter(|(n, _)| *n == name)
                        .map(Some)
                        .collect(),
                )
            };
            let (a, b) = futures::try_join!(found, execution)?;
            Ok(a.into_iter().chain(b).flatten().collect())
        })
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let declared: Vec<&String> = p.stack.owned_log_groups().collect();
        // Without [logging], the stage's logging is not managed, so an access log group
        // it may still point at stays (destroy removes it).
        let logging_managed = p.stack.stage_settings.logging_level.is_some();
        for (name, _) in p
            .live::<LogGroup>()
            .iter()
            .filter(|(n, _)| !declared.contains(n))
            .filter(|(n, _)| logging_managed || !n.starts_with("/aws/apigateway/"))
        {
            let key = name.strip_prefix("/aws/lambda/").unwrap_or(name);
            p.push(
                Node::new(Kind::LogGroupCleanup, key),
                ResourceChange::new(label(name), Action::Delete, vec![])
                    .with_reason("wsconn.toml no longer declares it"),
                LogGroupOp::Delete(name.clone()),
            );
        }
        for name in declared {
            let live = p.snap.get::<LogGroup>(name);
            if let Some(l) = &live {
                check_owned(&label(name), &l.tags, &p.stack.name)?;
            }
            if let Some((c, op)) = diff(name, &spec(p.stack), live.as_ref()) {
                p.push(Node::new(Kind::LogGroup, node_key(p.stack, name)), c, op);
            }
        }
        Ok(())
    }

    /// Every log group of the stack: declared (checked for ownership) or found with its
    /// tag.
    fn plan_destroy(p: &mut Planner<'_>) -> Result<()> {
        for (name, live) in p.live::<LogGroup>().iter() {
            if !name.starts_with(EXECUTION_PREFIX) {
                check_owned(&label(name), &live.tags, &p.stack.name)?;
            }
            let key = match name.strip_prefix("/aws/lambda/") {
                Some(f) => f.to_string(),
                None => node_key(p.stack, name),
            };
            p.push(
                Node::new(Kind::LogGroup, key),
                ResourceChange::new(label(name), Action::Delete, vec![]),
                LogGroupOp::Delete(name.clone()),
            );
        }
        Ok(())
    }
}

async fn put_retention(cx: &Cx, name: &str) -> Result<()> {
    cx.aws
        .logs
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(cx.stack.log_retention_days)
        .send()
        .await
        .map_err(|e| error::aws(format!("setting retention of log group {name}"), e))?;
    Ok(())
}

async fn update(cx: &Cx, name: &str, retention: bool, tags: &TagDelta) -> Result<()> {
    let logs = &cx.aws.logs;
    let arn = cx.env.log_group_arn(name);
    if retention {
        put_retention(cx, name).await?;
    }
    if !tags.remove.is_empty() {
        logs.untag_resource()
            .resource_arn(&arn)
            .set_tag_keys(Some(tags.remove.clone()))
            .send()
            .await
            .map_err(|e| error::aws(format!("removing tags from log group {name}"), e))?;
    }
    if !tags.set.is_empty() {
        logs.tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(tags.set.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| error::aws(format!("tagging log group {name}"), e))?;
    }
    Ok(())
}

async fn create(cx: &Cx, name: &str) -> Result<()> {
    let created = cx
        .aws
        .logs
        .create_log_group()
        .log_group_name(name)
        .set_tags(Some(cx.desired_tags().into_iter().collect()))
        .send()
        .await
        .map_err(|e| error::aws(format!("creating log group {name}"), e));
    match created {
        Ok(_) => put_retention(cx, name).await,
        Err(e) if error::is_already_exists(&e) => {
            let live = read(&cx.aws, name)
                .await?
                .ok_or_else(|| Error::Vanished(label(name)))?;
            check_owned(&label(name), &live.tags, &cx.stack.name)?;
            match diff(name, &spec(&cx.stack), Some(&live)) {
                Some((
                    _,
                    LogGroupOp::Update {
                        retention, tags, ..
                    },
                )) => update(cx, name, retention, &tags).await,
                _ => Ok(()),
            }
        }
        Err(e) => Err(e),
    }
}

impl Op for LogGroupOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                LogGroupOp::Create(name) => create(cx, name).await,
                LogGroupOp::Update {
                    name,
                    retention,
                    tags,
                } => update(cx, name, *retention, tags).await,
                LogGroupOp::Delete(name) => {
                    match cx
                        .aws
                        .logs
                        .delete_log_group()
                        .log_group_name(name)
                        .send()
                        .await
                    {
                        Ok(_) => Ok(()),
                        Err(e) if error::is_not_found(&e) => Ok(()),
                        Err(e) => Err(error::aws(format!("deleting log group {name}"), e)),
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(retention: Option<i32>, tags: Tags) -> LiveLogGroup {
        LiveLogGroup {
            arn: "arn".into(),
            retention_days: retention,
            tags,
            creation_time: None,
        }
    }

    #[test]
    fn retention_drift_is_an_update() {
        let tags: Tags = [("wsconn:stack".to_string(), "s".to_string())].into();
        let spec = Spec {
            retention_days: 14,
            tags: tags.clone(),
        };
        assert!(diff("lg", &spec, Some(&live(Some(14), tags.clone()))).is_none());
        let (c, op) = diff("lg", &spec, Some(&live(None, tags))).unwrap();
        assert_eq!(c.fields[0].field, "retention_days");
        assert_eq!(c.fields[0].current, serde_json::Value::Null);
        assert!(matches!(
            op,
            LogGroupOp::Update {
                retention: true,
                ..
            }
        ));
        assert_eq!(diff("lg", &spec, None).unwrap().0.action, Action::Create);
    }
}
