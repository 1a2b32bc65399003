//! The WebSocket API. Its name is not unique, so it is found by its `wsconn:stack` tag
//! (see `engine::discover`); deleting it deletes its routes, integrations and stages.

use super::{Resource, Step, TagDelta, Tags, api_write, apply_apigw_tags, tags_field, tags_value};
use crate::engine::{Cx, FoundApi};
use crate::error::{self, Result};
use crate::plan::{Action, ResourceChange, created_fields, field};
use aws_sdk_apigatewayv2::types::ProtocolType;
use futures::future::BoxFuture;

pub const PROTOCOL: &str = "WEBSOCKET";
pub const ROUTE_SELECTION: &str = "$request.body.action";

pub struct Api;

pub struct Spec {
    pub name: String,
    pub protocol: String,
    pub route_selection_expression: String,
    pub tags: Tags,
}

pub fn desired(cx: &Cx) -> Spec {
    Spec {
        name: cx.names.api.clone(),
        protocol: PROTOCOL.into(),
        route_selection_expression: ROUTE_SELECTION.into(),
        tags: cx.desired_tags(),
    }
}

#[derive(Debug)]
pub enum Op {
    Create,
    Update { settings: bool, tags: TagDelta },
    Replace,
    Delete,
}

/// The API found by tag, unless the plan replaces it (then its children start afresh).
pub fn live_api(cx: &Cx) -> Option<&FoundApi> {
    cx.found.api.as_ref().filter(|a| a.protocol == PROTOCOL)
}

fn label(cx: &Cx, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("api {} ({id})", cx.names.api),
        None => format!("api {}", cx.names.api),
    }
}

pub fn diff(resource: &str, spec: &Spec, live: Option<&FoundApi>) -> Option<(ResourceChange, Op)> {
    let Some(live) = live else {
        let fields = created_fields(vec![
            ("name", spec.name.clone().into()),
            ("protocol", spec.protocol.clone().into()),
            (
                "route_selection_expression",
                spec.route_selection_expression.clone().into(),
            ),
            ("tags", tags_value(&spec.tags)),
        ]);
        return Some((
            ResourceChange::new(resource, Action::Create, fields),
            Op::Create,
        ));
    };
    if live.protocol != spec.protocol {
        let f = field("protocol", live.protocol.as_str(), spec.protocol.as_str())
            .into_iter()
            .collect();
        let c = ResourceChange::new(resource, Action::Replace, f)
            .with_reason("an API's protocol cannot change in place");
        return Some((c, Op::Replace));
    }
    let name = field("name", live.name.as_str(), spec.name.as_str());
    let rse = field(
        "route_selection_expression",
        live.route_selection_expression.as_str(),
        spec.route_selection_expression.as_str(),
    );
    let tags = tags_field(&live.tags, &spec.tags);
    let op = Op::Update {
        settings: name.is_some() || rse.is_some(),
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    let fields: Vec<_> = [name, rse, tags].into_iter().flatten().collect();
    (!fields.is_empty()).then(|| (ResourceChange::new(resource, Action::Update, fields), op))
}

async fn create(cx: &Cx) -> Result<()> {
    let spec = desired(cx);
    let out = cx
        .aws
        .apigw
        .create_api()
        .name(&spec.name)
        .protocol_type(ProtocolType::Websocket)
        .route_selection_expression(&spec.route_selection_expression)
        .set_tags(Some(spec.tags.into_iter().collect()))
        .send()
        .await
        .map_err(|e| error::aws(format!("creating WebSocket API {}", spec.name), e))?;
    let mut facts = cx.facts.lock().unwrap();
    facts.api_id = out.api_id().map(String::from);
    facts.integration_ids.clear();
    Ok(())
}

async fn delete(cx: &Cx, id: &str) -> Result<()> {
    api_write(|| async {
        match cx.aws.apigw.delete_api().api_id(id).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(error::aws(format!("deleting WebSocket API {id}"), e)),
        }
    })
    .await
}

impl Resource for Api {
    fn plan<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let live = cx.found.api.as_ref();
            let label = label(cx, live.map(|a| a.id.as_str()));
            Ok(diff(&label, &desired(cx), live)
                .map(|(c, op)| Step::new(c, op))
                .into_iter()
                .collect())
        })
    }

    fn plan_destroy<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let Some(live) = &cx.found.api else {
                return Ok(vec![]);
            };
            let c = ResourceChange::new(label(cx, Some(&live.id)), Action::Delete, vec![])
                .with_reason("its routes, integrations, deployments and stage go with it");
            Ok(vec![Step::new(c, Op::Delete)])
        })
    }

    fn apply<'a>(&'a self, cx: &'a Cx, step: &'a Step) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match step.op::<Op>() {
                Op::Create => create(cx).await,
                Op::Replace => {
                    delete(cx, &cx.api_id()?).await?;
                    create(cx).await
                }
                Op::Delete => delete(cx, &cx.api_id()?).await,
                Op::Update { settings, tags } => {
                    let id = cx.api_id()?;
                    let spec = desired(cx);
                    let apigw = &cx.aws.apigw;
                    if *settings {
                        apigw
                            .update_api()
                            .api_id(&id)
                            .name(&spec.name)
                            .route_selection_expression(&spec.route_selection_expression)
                            .send()
                            .await
                            .map_err(|e| error::aws(format!("updating WebSocket API {id}"), e))?;
                    }
                    let arn = cx.aws.env.api_arn(&id);
                    apply_apigw_tags(cx, &arn, &format!("WebSocket API {id}"), tags).await
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(protocol: &str) -> FoundApi {
        FoundApi {
            id: "abc".into(),
            name: "s".into(),
            protocol: protocol.into(),
            route_selection_expression: ROUTE_SELECTION.into(),
            tags: [("wsconn:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn spec() -> Spec {
        Spec {
            name: "s".into(),
            protocol: PROTOCOL.into(),
            route_selection_expression: ROUTE_SELECTION.into(),
            tags: found(PROTOCOL).tags,
        }
    }

    #[test]
    fn api_diff() {
        assert!(diff("api", &spec(), Some(&found(PROTOCOL))).is_none());
        let (c, _) = diff("api", &spec(), Some(&found("HTTP"))).unwrap();
        assert_eq!(c.action, Action::Replace);
        let mut f = found(PROTOCOL);
        f.route_selection_expression = "$request.body.x".into();
        let (c, op) = diff("api", &spec(), Some(&f)).unwrap();
        assert_eq!(c.fields[0].field, "route_selection_expression");
        assert!(matches!(op, Op::Update { settings: true, .. }));
    }
}
