//! The DynamoDB table holding one item per live connection.
//!
//! Desired: hash key `connectionid` (S), on-demand billing, TTL enabled on `ttl`, tags.
//! AWS behaviours handled (aws-notes): CreateTable returns CREATING, so tags go in
//! CreateTable and TTL is set only once the table is ACTIVE; UpdateTimeToLive is called
//! only on a real difference (a second change within an hour fails); DeleteTable fails
//! while the table is busy or deletion-protected.

use super::{Resource, Step, TagDelta, Tags, check_owned, tags_field, tags_value};
use crate::engine::Cx;
use crate::error::{self, Error, Result, built};
use crate::plan::{Action, FieldChange, ResourceChange, Risk, created_fields, field};
use crate::wait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    Tag, TimeToLiveSpecification, TimeToLiveStatus,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;

pub const HASH_KEY: &str = "connectionid";
pub const TTL_ATTRIBUTE: &str = "ttl";
const WAIT: Duration = Duration::from_secs(600);

pub struct Table;

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

pub fn desired(cx: &Cx) -> Spec {
    Spec {
        key_schema: json!([{"attribute": HASH_KEY, "key_type": "HASH", "type": "S"}]),
        billing_mode: "PAY_PER_REQUEST".into(),
        ttl: json!({"enabled": true, "attribute": TTL_ATTRIBUTE}),
        tags: cx.desired_tags(),
    }
}

#[derive(Debug)]
pub enum Op {
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

fn label(cx: &Cx) -> String {
    format!("table {}", cx.names.table)
}

/// DescribeTable + tags + TTL; `None` when the table does not exist.
pub async fn read(cx: &Cx) -> Result<Option<LiveTable>> {
    let name = &cx.names.table;
    let ddb = &cx.aws.ddb;
    let t = match ddb.describe_table().table_name(name).send().await {
        Ok(o) => match o.table {
            Some(t) => t,
            None => return Ok(None),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(error::aws(format!("reading table {name}"), e)),
    };
    let arn = t.table_arn().unwrap_or_default().to_string();
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
    let billing_mode = t
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map(|b| b.as_str().to_string())
        .unwrap_or_else(|| "PROVISIONED".into());
    let (tags, ttl) = futures::try_join!(
        async {
            let out = ddb
                .list_tags_of_resource()
                .resource_arn(&arn)
                .send()
                .await
                .map_err(|e| error::aws(format!("reading tags of table {name}"), e))?;
            Ok::<_, Error>(
                out.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect::<Tags>(),
            )
        },
        async {
            let out = ddb
                .describe_time_to_live()
                .table_name(name)
                .send()
                .await
                .map_err(|e| error::aws(format!("reading TTL of table {name}"), e))?;
            let d = out.time_to_live_description();
            let enabled = matches!(
                d.and_then(|d| d.time_to_live_status()),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            );
            let attribute = d.and_then(|d| d.attribute_name()).filter(|_| enabled);
            Ok::<_, Error>(json!({"enabled": enabled, "attribute": attribute}))
        }
    )?;
    Ok(Some(LiveTable {
        arn,
        status: t
            .table_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        key_schema,
        billing_mode,
        ttl,
        tags,
        deletion_protection: t.deletion_protection_enabled().unwrap_or(false),
    }))
}

/// Pure comparison of desired and live.
pub fn diff(resource: &str, spec: &Spec, live: Option<&LiveTable>) -> Option<(ResourceChange, Op)> {
    let Some(live) = live else {
        let fields = created_fields(vec![
            ("key_schema", spec.key_schema.clone()),
            ("billing_mode", spec.billing_mode.clone().into()),
            ("ttl", spec.ttl.clone()),
            ("tags", tags_value(&spec.tags)),
        ]);
        return Some((
            ResourceChange::new(resource, Action::Create, fields),
            Op::Create,
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
            Op::Replace {
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
    let op = Op::Update {
        billing: billing.is_some(),
        ttl: ttl.is_some(),
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    let fields: Vec<_> = [billing, ttl, tags].into_iter().flatten().collect();
    (!fields.is_empty()).then(|| (ResourceChange::new(resource, Action::Update, fields), op))
}

async fn wait_active(cx: &Cx) -> Result<String> {
    let name = &cx.names.table;
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
            Ok((t.table_status() == Some(&TableStatus::Active))
                .then(|| t.table_arn().unwrap_or_default().to_string()))
        },
    )
    .await
}

async fn create(cx: &Cx) -> Result<()> {
    let name = &cx.names.table;
    let mut req = cx
        .aws
        .ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(built(
            "CreateTable",
            AttributeDefinition::builder()
                .attribute_name(HASH_KEY)
                .attribute_type(ScalarAttributeType::S)
                .build(),
        )?)
        .key_schema(built(
            "CreateTable",
            KeySchemaElement::builder()
                .attribute_name(HASH_KEY)
                .key_type(KeyType::Hash)
                .build(),
        )?);
    for (k, v) in cx.desired_tags() {
        req = req.tags(built(
            "CreateTable",
            Tag::builder().key(k).value(v).build(),
        )?);
    }
    wait::retrying(WAIT, error::is_table_busy, || async {
        req.clone()
            .send()
            .await
            .map_err(|e| error::aws(format!("creating table {name}"), e))
    })
    .await?;
    wait_active(cx).await?;
    enable_ttl(cx).await
}

/// DescribeTimeToLive first: enabling TTL that is already enabled is an error.
async fn enable_ttl(cx: &Cx) -> Result<()> {
    let name = &cx.names.table;
    let ddb = &cx.aws.ddb;
    let d = ddb
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
            if attr.as_deref() == Some(TTL_ATTRIBUTE) =>
        {
            Ok(())
        }
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
            // Changing the attribute while enabled fails, and a disable followed by an
            // enable within the hour fails too: disable now, the next run enables.
            set_ttl(cx, false, attr.as_deref().unwrap_or(TTL_ATTRIBUTE)).await?;
            Err(Error::Conflict(format!(
                "table {name} had TTL on attribute {:?}; wsconn disabled it. AWS allows one TTL change per hour: run deploy again after that to enable TTL on {TTL_ATTRIBUTE:?}",
                attr.unwrap_or_default()
            )))
        }
        Some(TimeToLiveStatus::Disabling) => Err(Error::Conflict(format!(
            "table {name}: TTL is being disabled; AWS allows one TTL change per hour, run deploy again later"
        ))),
        _ => set_ttl(cx, true, TTL_ATTRIBUTE).await,
    }
}

async fn set_ttl(cx: &Cx, enabled: bool, attribute: &str) -> Result<()> {
    let name = &cx.names.table;
    let spec = built(
        "UpdateTimeToLive",
        TimeToLiveSpecification::builder()
            .enabled(enabled)
            .attribute_name(attribute)
            .build(),
    )?;
    wait::retrying(WAIT, error::is_table_busy, || async {
        cx.aws
            .ddb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec.clone())
            .send()
            .await
            .map_err(|e| error::aws(format!("setting TTL on table {name}"), e))
    })
    .await
    .map(|_| ())
}

async fn update(cx: &Cx, billing: bool, ttl: bool, tags: &TagDelta) -> Result<()> {
    let name = &cx.names.table;
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
        enable_ttl(cx).await?;
    }
    if !tags.is_empty() {
        let arn = cx.aws.env.table_arn(name);
        if !tags.remove.is_empty() {
            ddb.untag_resource()
                .resource_arn(&arn)
                .set_tag_keys(Some(tags.remove.clone()))
                .send()
                .await
                .map_err(|e| error::aws(format!("removing tags from table {name}"), e))?;
        }
        if !tags.set.is_empty() {
            let mut req = ddb.tag_resource().resource_arn(&arn);
            for (k, v) in &tags.set {
                req = req.tags(built(
                    "TagResource",
                    Tag::builder().key(k).value(v).build(),
                )?);
            }
            req.send()
                .await
                .map_err(|e| error::aws(format!("tagging table {name}"), e))?;
        }
    }
    Ok(())
}

async fn delete(cx: &Cx, unprotect: bool) -> Result<()> {
    let name = &cx.names.table;
    let ddb = &cx.aws.ddb;
    if unprotect {
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
            })?;
        wait_active(cx).await?;
    }
    let deleted = wait::retrying(WAIT, error::is_table_busy, || async {
        match ddb.delete_table().table_name(name).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(error::aws(format!("deleting table {name}"), e)),
        }
    })
    .await?;
    if deleted {
        wait::until(
            &format!("waiting for table {name} to be deleted"),
            WAIT,
            || async { Ok(read_exists(cx).await?.not().then_some(())) },
        )
        .await?;
    }
    Ok(())
}

async fn read_exists(cx: &Cx) -> Result<bool> {
    let name = &cx.names.table;
    match cx.aws.ddb.describe_table().table_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(error::aws(format!("reading table {name}"), e)),
    }
}

use std::ops::Not;

impl Resource for Table {
    fn plan<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let live = read(cx).await?;
            if let Some(l) = &live {
                check_owned(&label(cx), &l.tags, cx.stack())?;
            }
            Ok(diff(&label(cx), &desired(cx), live.as_ref())
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
            let fields = field("deletion_protection", live.deletion_protection, false)
                .into_iter()
                .collect();
            let change = ResourceChange::new(label(cx), Action::Delete, fields);
            Ok(vec![Step::new(
                change,
                Op::Delete {
                    unprotect: live.deletion_protection,
                },
            )])
        })
    }

    fn apply<'a>(&'a self, cx: &'a Cx, step: &'a Step) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match step.op::<Op>() {
                Op::Create => create(cx).await,
                Op::Update { billing, ttl, tags } => update(cx, *billing, *ttl, tags).await,
                Op::Replace { unprotect } => {
                    delete(cx, *unprotect).await?;
                    create(cx).await
                }
                Op::Delete { unprotect } => delete(cx, *unprotect).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            key_schema: json!([{"attribute": HASH_KEY, "key_type": "HASH", "type": "S"}]),
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
        assert!(matches!(op, Op::Create));
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
            Op::Update {
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
}
