//! The function's log group, managed explicitly with a retention so that destroy leaves
//! nothing behind (DeleteFunction leaves `/aws/lambda/<name>` in place).

use super::{Resource, Step, TagDelta, Tags, check_owned, tags_field, tags_value};
use crate::engine::Cx;
use crate::error::{self, Result};
use crate::plan::{Action, ResourceChange, created_fields, field};
use futures::future::BoxFuture;

pub struct LogGroup;

#[derive(Debug, Clone, PartialEq)]
pub struct LiveLogGroup {
    pub retention_days: Option<i32>,
    pub tags: Tags,
}

pub struct Spec {
    pub retention_days: i32,
    pub tags: Tags,
}

#[derive(Debug)]
pub enum Op {
    Create,
    Update { retention: bool, tags: TagDelta },
    Delete,
}

fn label(cx: &Cx) -> String {
    format!("log group {}", cx.names.log_group)
}

pub async fn read(cx: &Cx) -> Result<Option<LiveLogGroup>> {
    let name = &cx.names.log_group;
    let out = cx
        .aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| error::aws(format!("reading log group {name}"), e))?;
    let Some(g) = out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name.as_str()))
    else {
        return Ok(None);
    };
    let tags = cx
        .aws
        .logs
        .list_tags_for_resource()
        .resource_arn(cx.aws.env.log_group_arn(name))
        .send()
        .await
        .map_err(|e| error::aws(format!("reading tags of log group {name}"), e))?
        .tags
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(Some(LiveLogGroup {
        retention_days: g.retention_in_days(),
        tags,
    }))
}

pub fn diff(
    resource: &str,
    spec: &Spec,
    live: Option<&LiveLogGroup>,
) -> Option<(ResourceChange, Op)> {
    let Some(live) = live else {
        let fields = created_fields(vec![
            ("retention_days", spec.retention_days.into()),
            ("tags", tags_value(&spec.tags)),
        ]);
        return Some((
            ResourceChange::new(resource, Action::Create, fields),
            Op::Create,
        ));
    };
    let retention = field("retention_days", live.retention_days, spec.retention_days);
    let tags = tags_field(&live.tags, &spec.tags);
    let op = Op::Update {
        retention: retention.is_some(),
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    let fields: Vec<_> = [retention, tags].into_iter().flatten().collect();
    (!fields.is_empty()).then(|| (ResourceChange::new(resource, Action::Update, fields), op))
}

async fn put_retention(cx: &Cx) -> Result<()> {
    let name = &cx.names.log_group;
    cx.aws
        .logs
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(cx.cfg.log_retention_days)
        .send()
        .await
        .map_err(|e| error::aws(format!("setting retention of log group {name}"), e))?;
    Ok(())
}

impl Resource for LogGroup {
    fn plan<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let live = read(cx).await?;
            if let Some(l) = &live {
                check_owned(&label(cx), &l.tags, cx.stack())?;
            }
            let spec = Spec {
                retention_days: cx.cfg.log_retention_days,
                tags: cx.desired_tags(),
            };
            Ok(diff(&label(cx), &spec, live.as_ref())
                .map(|(c, op)| Step::new(c, op))
                .into_iter()
                .collect())
        })
    }

    fn plan_destroy<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let Some(live) = read(cx).await? else {
                return Ok(vec![]);
            };
            check_owned(&label(cx), &live.tags, cx.stack())?;
            Ok(vec![Step::new(
                ResourceChange::new(label(cx), Action::Delete, vec![]),
                Op::Delete,
            )])
        })
    }

    fn apply<'a>(&'a self, cx: &'a Cx, step: &'a Step) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let name = &cx.names.log_group;
            let logs = &cx.aws.logs;
            let arn = cx.aws.env.log_group_arn(name);
            match step.op::<Op>() {
                Op::Create => {
                    logs.create_log_group()
                        .log_group_name(name)
                        .set_tags(Some(cx.desired_tags().into_iter().collect()))
                        .send()
                        .await
                        .map_err(|e| error::aws(format!("creating log group {name}"), e))?;
                    put_retention(cx).await
                }
                Op::Update { retention, tags } => {
                    if *retention {
                        put_retention(cx).await?;
                    }
                    if !tags.remove.is_empty() {
                        logs.untag_resource()
                            .resource_arn(&arn)
                            .set_tag_keys(Some(tags.remove.clone()))
                            .send()
                            .await
                            .map_err(|e| {
                                error::aws(format!("removing tags from log group {name}"), e)
                            })?;
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
                Op::Delete => match logs.delete_log_group().log_group_name(name).send().await {
                    Ok(_) => Ok(()),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(error::aws(format!("deleting log group {name}"), e)),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_drift_is_an_update() {
        let tags: Tags = [("wsconn:stack".to_string(), "s".to_string())].into();
        let spec = Spec {
            retention_days: 14,
            tags: tags.clone(),
        };
        assert!(
            diff(
                "lg",
                &spec,
                Some(&LiveLogGroup {
                    retention_days: Some(14),
                    tags: tags.clone()
                })
            )
            .is_none()
        );
        let (c, op) = diff(
            "lg",
            &spec,
            Some(&LiveLogGroup {
                retention_days: None,
                tags,
            }),
        )
        .unwrap();
        assert_eq!(c.fields[0].field, "retention_days");
        assert_eq!(c.fields[0].current, serde_json::Value::Null);
        assert!(matches!(
            op,
            Op::Update {
                retention: true,
                ..
            }
        ));
        assert_eq!(diff("lg", &spec, None).unwrap().0.action, Action::Create);
    }
}
