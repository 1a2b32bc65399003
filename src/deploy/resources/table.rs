//! The DynamoDB table holding one item per live connection.
//!
//! Desired: hash key `connectionid` (S), on-demand billing, TTL enabled on `ttl`, tags.
//! AWS behaviours handled (aws-notes):
//! - CreateTable returns CREATING, so tags go in CreateTable and TTL is set only once the
//!   table is ACTIVE.
//! - CreateTable's ResourceInUseException means "already exists" (another run, or this
//!   run's own first attempt whose answer was lost): the table is re-read and its
//!   ownership checked, never waited on. On every other call the same code means "busy".
//! - UpdateTimeToLive is called only on a real difference (a second change within an
//!   hour fails, and enabling TTL that is enabled is an error).
//! - DeleteTable fails while the table is busy or deletion-protected.

use super::{TagDelta, Tags, check_owned, tags_field, tags_value};
use crate::aws::Aws;
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource};
use crate::deploy::plan::{Action, FieldChange, ResourceChange, Risk, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result, built};
use crate::stack::Stack;
use crate::wait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    Tag, TimeToLiveSpecification, TimeToLiveStatus,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq)]
pub struct LiveTable {
    pub arn: String,
    pub status: String,
    pub key_schema: Value,
    pub billing_mode: String,
    pub ttl: Value,
    pub tags: Tags,
    pub deletion_protection: bool,
}

/// The desired values, as compared.
pub struct Spec {
    pub key_schema: Value,
    pub billing_mode: String,
    pub ttl: Value,
    pub tags: Tags,
}

pub fn desired(stack: &Stack) -> Spec {
    let t = &stack.table;
    Spec {
        key_schema: json!([{"attribute": t.hash_key, "key_type": "HASH", "type": "S"}]),
        billing_mode: t.billing_mode.into(),
        ttl: json!({"enabled": true, "attribute": t.ttl_attribute}),
        tags: stack.tags.clone(),
    }
}

#[derive(Debug)]
pub enum TableOp {
    Create,
    Update {
        billing: bool,
        ttl: bool,
        tags: TagDelta,
    },
    Replace {
        unprotect: bool,
    },
    Delete {
        unprotect: bool,
    },
}

pub fn label(stack: &Stack) -> String {
    format!("table {}", stack.table.name)
}

fn ttl_value(d: Option<&aws_sdk_dynamodb::types::TimeToLiveDescription>) -> Value {
    let enabled = matches!(
        d.and_then(|d| d.time_to_live_status()),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    );
    let attribute = d.and_then(|d| d.attribute_name()).filter(|_| enabled);
    json!({"enabled": enabled, "attribute": attribute})
}

/// DescribeTable and DescribeTimeToLive at once, then the tags (they need the ARN):
/// two round-trip levels. `None` when the table does not exist.
pub async fn read(aws: &Aws, name: &str) -> Result<Option<LiveTable>> {
    let ddb = &aws.ddb;
    let (desc, ttl) = futures::join!(
        aws.gated(ddb.describe_table().table_name(name).send()),
        aws.gated(ddb.describe_time_to_live().table_name(name).send())
    );
    let t = match desc {
        Ok(o) => match o.table {
            Some(t) => t,
            None => return Ok(None),
        },
        Err(e) if error::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(error::aws(format!("reading table {name}"), e)),
    };
    let ttl = match ttl {
        Ok(o) => ttl_value(o.time_to_live_description()),
        // Deleted between the two calls.
        Err(e) if error::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(error::aws(format!("reading TTL of table {name}"), e)),
    };
    let arn = t.table_arn().unwrap_or_default().to_string();
    let tags = match aws
        .gated(ddb.list_tags_of_resource().resource_arn(&arn).send())
        .await
    {
        Ok(out) => out
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect::<Tags>(),
        Err(e) if error::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(error::aws(format!("reading tags of table {name}"), e)),
    };
    let types: std::collections::BTreeMap<_, _> = t
        .attribute_definitions()
        .iter()
        .map(|d| {
            (
                d.attribute_name().to_string(),
                d.attribute_type().as_str().to_string(),
            )
        })
        .collect();
    let key_schema = Value::Array(
        t.key_schema()
            .iter()
            .map(|k| {
                json!({"attribute": k.attribute_name(), "key_type": k.key_type().as_str(),
                       "type": types.get(k.attribute_name()).cloned().unwrap_or_default()})
            })
            .collect(),
    );
    Ok(Some(LiveTable {
        arn,
        status: t
            .table_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        key_schema,
        billing_mode: t
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str().to_string())
            .unwrap_or_else(|| "PROVISIONED".into()),
        ttl,
        tags,
        deletion_protection: t.deletion_protection_enabled().unwrap_or(false),
    }))
}

/// Pure comparison of desired and live.
pub fn diff(
    resource: &str,
    spec: &Spec,
    live: Option<&LiveTable>,
) -> Option<(ResourceChange, TableOp)> {
    let Some(live) = live else {
        let fields = created_fields(vec![
            ("key_schema", spec.key_schema.clone()),
            ("billing_mode", spec.billing_mode.clone().into()),
            ("ttl", spec.ttl.clone()),
            ("tags", tags_value(&spec.tags)),
        ]);
        return Some((
            ResourceChange::new(resource, Action::Create, fields),
            TableOp::Create,
        ));
    };
    if live.key_schema != spec.key_schema {
        let fields = vec![FieldChange {
            field: "key_schema".into(),
            current: live.key_schema.clone(),
            desired: spec.key_schema.clone(),
        }];
        let change = ResourceChange::new(resource, Action::Replace, fields)
            .with_reason(
                "a table's key schema cannot change in place; replacing it deletes every item",
            )
            .with_risk(Some(Risk::LosesData));
        return Some((
            change,
            TableOp::Replace {
                unprotect: live.deletion_protection,
            },
        ));
    }
    let billing = field(
        "billing_mode",
        live.billing_mode.as_str(),
        spec.billing_mode.as_str(),
    );
    let ttl = field("ttl", live.ttl.clone(), spec.ttl.clone());
    let tags = tags_field(&live.tags, &spec.tags);
    let op = TableOp::Update {
        billing: billing.is_some(),
        ttl: ttl.is_some(),
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    let fields: Vec<_> = [billing, ttl, tags].into_iter().flatten().collect();
    (!fields.is_empty()).then(|| (ResourceChange::new(resource, Action::Update, fields), op))
}

/// The kind: the stack's one table, keyed by its name.
pub struct Table;

impl Resource for Table {
    type Live = LiveTable;
    const NAME: &'static str = "table";

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveTable>>> {
        Box::pin(async move {
            let name = &rd.stack.table.name;
            Ok(read(rd.aws, name)
                .await?
                .map(|t| (name.clone(), t))
                .into_iter()
                .collect())
        })
    }

    /// The table's step, after refusing a table the stack does not own.
    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let stack = p.stack;
        let live = p.snap.get::<Table>(&stack.table.name);
        if let Some(l) = &live {
            check_owned(&label(stack), &l.tags, &stack.name)?;
        }
        if let Some((c, op)) = diff(&label(stack), &desired(stack), live.as_ref()) {
            p.push(Node::one(Kind::Table), c, op);
        }
        Ok(())
    }

    fn plan_destroy(p: &mut Planner<'_>) -> Result<()> {
        let stack = p.stack;
        let Some(live) = p.snap.get::<Table>(&stack.table.name) else {
            return Ok(());
        };
        check_owned(&label(stack), &live.tags, &stack.name)?;
        let fields = field("deletion_protection", live.deletion_protection, false)
            .into_iter()
            .collect();
        let change = ResourceChange::new(label(stack), Action::Delete, fields);
        p.push(
            Node::one(Kind::Table),
            change,
            TableOp::Delete {
                unprotect: live.deletion_protection,
            },
        );
        Ok(())
    }
}

async fn wait_active(cx: &Cx) -> Result<()> {
    let name = &cx.stack.table.name;
    wait::until(
        &format!("waiting for table {name} to become ACTIVE"),
        WAIT,
        || async {
            let out = cx
                .aws
                .ddb
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(|e| error::aws(format!("reading table {name}"), e))?;
            let Some(t) = out.table else { return Ok(None) };
            Ok((t.table_status() == Some(&TableStatus::Active)).then_some(()))
        },
    )
    .await
}

fn is_limit_exceeded(e: &Error) -> bool {
    e.code() == Some("LimitExceededException")
}

async fn create(cx: &Cx) -> Result<()> {
    let name = &cx.stack.table.name;
    let key = cx.stack.table.hash_key;
    let mut req = cx
        .aws
        .ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(built(
            "CreateTable",
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build(),
        )?)
        .key_schema(built(
            "CreateTable",
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build(),
        )?);
    for (k, v) in cx.desired_tags() {
        req = req.tags(built(
            "CreateTable",
            Tag::builder().key(k).value(v).build(),
        )?);
    }
    // Too many tables changing at once is worth waiting for; "already exists" is not.
    let created = wait::retrying(WAIT, is_limit_exceeded, || async {
        req.clone()
            .send()
            .await
            .map_err(|e| error::aws(format!("creating table {name}"), e))
    })
    .await;
    match created {
        Ok(_) => {
            wait_active(cx).await?;
            enable_ttl(cx).await
        }
        Err(e) if error::is_already_exists(&e) => adopt(cx).await,
        Err(e) => Err(e),
    }
}

/// CreateTable said the table exists: someone (another run, or this run's own first
/// attempt) just created it. Check that it is the stack's and what the stack wants,
/// then finish the job as an update.
async fn adopt(cx: &Cx) -> Result<()> {
    let stack = &cx.stack;
    let live = read(&cx.aws, &stack.table.name)
        .await?
        .ok_or_else(|| Error::Vanished(label(stack)))?;
    check_owned(&label(stack), &live.tags, &stack.name)?;
    match diff(&label(stack), &desired(stack), Some(&live)) {
        None => wait_active(cx).await,
        Some((_, TableOp::Update { billing, ttl, tags })) => {
            wait_active(cx).await?;
            update(cx, billing, ttl, &tags).await
        }
        Some((c, _)) => Err(Error::Conflict(format!(
            "{} was just created by someone else with a different key schema; wsconn will not replace it during this run: {}",
            c.resource,
            c.fields
                .iter()
                .map(|f| format!("{} is {}", f.field, f.current))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// DescribeTimeToLive first: enabling TTL that is already enabled is an error.
async fn enable_ttl(cx: &Cx) -> Result<()> {
    let name = &cx.stack.table.name;
    let want = cx.stack.table.ttl_attribute;
    let d = cx
        .aws
        .ddb
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| error::aws(format!("reading TTL of table {name}"), e))?;
    let d = d.time_to_live_description();
    let status = d.and_then(|d| d.time_to_live_status()).cloned();
    let attr = d.and_then(|d| d.attribute_name()).map(String::from);
    match status {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            if attr.as_deref() == Some(want) =>
        {
            Ok(())
        }
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
            // Changing the attribute while enabled fails, and a disable followed by an
            // enable within the hour fails too: disable now, the next run enables.
            set_ttl(cx, false, attr.as_deref().unwrap_or(want)).await?;
            Err(Error::Conflict(format!(
                "table {name} had TTL on attribute {:?}; wsconn disabled it. AWS allows one TTL change per hour: run deploy again after that to enable TTL on {want:?}",
                attr.unwrap_or_default()
            )))
        }
        Some(TimeToLiveStatus::Disabling) => Err(Error::Conflict(format!(
            "table {name}: TTL is being disabled; AWS allows one TTL change per hour, run deploy again later"
        ))),
        _ => set_ttl(cx, true, want).await,
    }
}

async fn set_ttl(cx: &Cx, enabled: bool, attribute: &str) -> Result<()> {
    let name = &cx.stack.table.name;
    let spec = built(
        "UpdateTimeToLive",
        TimeToLiveSpecification::builder()
            .enabled(enabled)
            .attribute_name(attribute)
            .build(),
    )?;
    let r = wait::retrying(WAIT, error::is_table_busy, || async {
        cx.aws
            .ddb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec.clone())
            .send()
            .await
            .map_err(|e| error::aws(format!("setting TTL on table {name}"), e))
    })
    .await;
    match r {
        Ok(_) => Ok(()),
        // The SDK resent a call whose first answer was lost, and the first one took
        // effect: "TimeToLive is already enabled". Believe the table, not the error.
        Err(e) if e.code() == Some("ValidationException") => {
            let now = cx
                .aws
                .ddb
                .describe_time_to_live()
                .table_name(name)
                .send()
                .await
                .map_err(|e| error::aws(format!("reading TTL of table {name}"), e))?;
            let want = json!({"enabled": enabled, "attribute": enabled.then_some(attribute)});
            if ttl_value(now.time_to_live_description()) == want {
                Ok(())
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

async fn update(cx: &Cx, billing: bool, ttl: bool, tags: &TagDelta) -> Result<()> {
    let name = &cx.stack.table.name;
    let ddb = &cx.aws.ddb;
    if billing {
        wait::retrying(WAIT, error::is_table_busy, || async {
            ddb.update_table()
                .table_name(name)
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await
                .map_err(|e| error::aws(format!("setting on-demand billing on table {name}"), e))
        })
        .await?;
        wait_active(cx).await?;
    }
    if ttl {
        // A run killed right after CreateTable leaves the table CREATING.
        wait_active(cx).await?;
        enable_ttl(cx).await?;
    }
    if !tags.is_empty() {
        let arn = cx.env.table_arn(name);
        if !tags.remove.is_empty() {
            wait::retrying(WAIT, error::is_table_busy, || async {
                ddb.untag_resource()
                    .resource_arn(&arn)
                    .set_tag_keys(Some(tags.remove.clone()))
                    .send()
                    .await
                    .map_err(|e| error::aws(format!("removing tags from table {name}"), e))
            })
            .await?;
        }
        if !tags.set.is_empty() {
            let mut req = ddb.tag_resource().resource_arn(&arn);
            for (k, v) in &tags.set {
                req = req.tags(built(
                    "TagResource",
                    Tag::builder().key(k).value(v).build(),
                )?);
            }
            wait::retrying(WAIT, error::is_table_busy, || async {
                req.clone()
                    .send()
                    .await
                    .map_err(|e| error::aws(format!("tagging table {name}"), e))
            })
            .await?;
        }
    }
    Ok(())
}

async fn delete(cx: &Cx, unprotect: bool) -> Result<()> {
    let name = &cx.stack.table.name;
    let ddb = &cx.aws.ddb;
    if unprotect {
        wait::retrying(WAIT, error::is_table_busy, || async {
            ddb.update_table()
                .table_name(name)
                .deletion_protection_enabled(false)
                .send()
                .await
                .map_err(|e| {
                    error::aws(
                        format!("turning off deletion protection of table {name}"),
                        e,
                    )
                })
        })
        .await?;
        wait_active(cx).await?;
    }
    let deleted = wait::retrying(WAIT, error::is_table_busy, || async {
        match ddb.delete_table().table_name(name).send().await {
            Ok(_) => Ok(true),
            Err(e) if error::is_not_found(&e) => Ok(false),
            Err(e) => Err(error::aws(format!("deleting table {name}"), e)),
        }
    })
    .await?;
    if deleted {
        // A table being deleted still exists (DELETING); a CreateTable of the same name
        // would fail until it is gone.
        wait::until(
            &format!("waiting for table {name} to be deleted"),
            WAIT,
            || async {
                match ddb.describe_table().table_name(name).send().await {
                    Ok(_) => Ok(None),
                    Err(e) if error::is_not_found(&e) => Ok(Some(())),
                    Err(e) => Err(error::aws(format!("reading table {name}"), e)),
                }
            },
        )
        .await?;
    }
    Ok(())
}

impl Op for TableOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                TableOp::Create => create(cx).await,
                TableOp::Update { billing, ttl, tags } => update(cx, *billing, *ttl, tags).await,
                TableOp::Replace { unprotect } => {
                    delete(cx, *unprotect).await?;
                    create(cx).await
                }
                TableOp::Delete { unprotect } => delete(cx, *unprotect).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            key_schema: json!([{"attribute": "connectionid", "key_type": "HASH", "type": "S"}]),
            billing_mode: "PAY_PER_REQUEST".into(),
            ttl: json!({"enabled": true, "attribute": "ttl"}),
            tags: [("wsconn:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn live() -> LiveTable {
        let s = spec();
        LiveTable {
            arn: "arn".into(),
            status: "ACTIVE".into(),
            key_schema: s.key_schema,
            billing_mode: s.billing_mode,
            ttl: s.ttl,
            tags: s.tags,
            deletion_protection: false,
        }
    }

    #[test]
    fn in_sync_table_has_no_change() {
        assert!(diff("table t", &spec(), Some(&live())).is_none());
    }

    #[test]
    fn missing_table_is_created_with_every_field() {
        let (c, op) = diff("table t", &spec(), None).unwrap();
        assert_eq!(c.action, Action::Create);
        assert!(matches!(op, TableOp::Create));
        let names: Vec<_> = c.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["key_schema", "billing_mode", "ttl", "tags"]);
    }

    #[test]
    fn drifted_fields_are_named() {
        let mut l = live();
        l.billing_mode = "PROVISIONED".into();
        l.ttl = json!({"enabled": false, "attribute": null});
        let (c, op) = diff("table t", &spec(), Some(&l)).unwrap();
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.fields.len(), 2);
        assert!(matches!(
            op,
            TableOp::Update {
                billing: true,
                ttl: true,
                ..
            }
        ));
    }

    #[test]
    fn key_schema_change_is_a_data_losing_replace() {
        let mut l = live();
        l.key_schema = json!([{"attribute": "id", "key_type": "HASH", "type": "S"}]);
        let (c, _) = diff("table t", &spec(), Some(&l)).unwrap();
        assert_eq!(c.action, Action::Replace);
        assert_eq!(c.risk, Some(Risk::LosesData));
        assert!(c.reason.unwrap().contains("key schema"));
    }

    #[test]
    fn ttl_of_a_missing_description_is_disabled() {
        assert_eq!(
            ttl_value(None),
            json!({"enabled": false, "attribute": null})
        );
    }
}
