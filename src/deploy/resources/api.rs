//! The WebSocket API. Its name is not unique, so it is found by its `wsconn:stack` tag;
//! two tagged APIs is an error to report, not a choice to make. Deleting it deletes its
//! routes, integrations, deployments and stages, so destroy deletes nothing else under it.
//!
//! CreateApi has no client token: a create whose answer is lost is followed by a read
//! by tag before it is ever sent again (`create_once`).

use super::{
    TagDelta, Tags, api_delete, api_write, apply_apigw_tags, create_once, tags_field, tags_value,
};
use crate::aws::{self, Aws};
use crate::config::OWNER_TAG;
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Place, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::Stack;
use aws_sdk_apigatewayv2::types::ProtocolType;
use futures::future::BoxFuture;

#[derive(Debug, Clone, PartialEq)]
pub struct FoundApi {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub route_selection_expression: String,
    pub tags: Tags,
}

pub struct Spec {
    pub name: String,
    pub protocol: String,
    pub route_selection_expression: String,
    pub tags: Tags,
}

pub fn desired(stack: &Stack) -> Spec {
    Spec {
        name: stack.api.name.clone(),
        protocol: stack.api.protocol.into(),
        route_selection_expression: stack.api.route_selection_expression.into(),
        tags: stack.tags.clone(),
    }
}

#[derive(Debug)]
pub enum ApiOp {
    Create,
    Update { settings: bool, tags: TagDelta },
    Replace,
    Delete,
}

pub fn label(stack: &Stack, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("api {} ({id})", stack.api.name),
        None => format!("api {}", stack.api.name),
    }
}

/// Every API carrying `wsconn:stack=<stack>` (GetApis, one level per page).
pub async fn find_tagged(aws: &Aws, stack: &str) -> Result<Vec<FoundApi>> {
    let apis = super::all_pages(|token| async move {
        let out = aws
            .gated(aws.apigw.get_apis().set_next_token(token).send())
            .await
            .map_err(|e| error::aws("listing WebSocket APIs", e))?;
        Ok((out.items().to_vec(), out.next_token().map(String::from)))
    })
    .await?;
    Ok(apis
        .iter()
        .filter_map(|a| {
            let tags: Tags = a.tags().cloned().unwrap_or_default().into_iter().collect();
            (tags.get(OWNER_TAG).map(String::as_str) == Some(stack)).then(|| FoundApi {
                id: a.api_id().unwrap_or_default().to_string(),
                name: a.name().unwrap_or_default().to_string(),
                protocol: a
                    .protocol_type()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                route_selection_expression: a
                    .route_selection_expression()
                    .unwrap_or_default()
                    .to_string(),
                tags,
            })
        })
        .collect())
}

/// The stack's API, or `None`; two tagged APIs is an error.
pub async fn discover(aws: &Aws, stack: &str) -> Result<Option<FoundApi>> {
    let mut mine = find_tagged(aws, stack).await?;
    if mine.len() > 1 {
        let ids: Vec<_> = mine.iter().map(|a| a.id.as_str()).collect();
        return Err(Error::Conflict(format!(
            "{} APIs carry the tag {OWNER_TAG}={stack} ({}); wsconn will not guess which is the stack's. Delete or untag the extra one",
            mine.len(),
            ids.join(", ")
        )));
    }
    Ok(mine.pop())
}

pub fn diff(
    resource: &str,
    spec: &Spec,
    live: Option<&FoundApi>,
) -> Option<(ResourceChange, ApiOp)> {
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
            ApiOp::Create,
        ));
    };
    if live.protocol != spec.protocol {
        let f = field("protocol", live.protocol.as_str(), spec.protocol.as_str())
            .into_iter()
            .collect();
        let c = ResourceChange::new(resource, Action::Replace, f)
            .with_reason("an API's protocol cannot change in place");
        return Some((c, ApiOp::Replace));
    }
    let name = field("name", live.name.as_str(), spec.name.as_str());
    let rse = field(
        "route_selection_expression",
        live.route_selection_expression.as_str(),
        spec.route_selection_expression.as_str(),
    );
    let tags = tags_field(&live.tags, &spec.tags);
    let op = ApiOp::Update {
        settings: name.is_some() || rse.is_some(),
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    let fields: Vec<_> = [name, rse, tags].into_iter().flatten().collect();
    (!fields.is_empty()).then(|| (ResourceChange::new(resource, Action::Update, fields), op))
}

/// The stack's API, read once per phase and shared: every kind inside the API needs its
/// id (GetApis, one level per page).
pub async fn found(rd: &Reader<'_>) -> Result<Option<FoundApi>> {
    rd.shared("api", || discover(rd.aws, &rd.stack.name)).await
}

/// The id of the API a plan keeps: the live one's, or `None` when the plan makes a new
/// one (its id is known only after apply).
pub fn kept_id(p: &Planner<'_>) -> Option<String> {
    if p.fresh_api {
        None
    } else {
        p.snap.get::<Api>(&p.stack.api.name).map(|a| a.id)
    }
}

/// The kind: the stack's one WebSocket API, found by its tag, keyed by its name.
pub struct Api;

impl Resource for Api {
    type Live = FoundApi;
    const NAME: &'static str = "api";
    const PLACE: Place = Place::Api;

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<FoundApi>>> {
        Box::pin(async move {
            Ok(found(rd)
                .await?
                .map(|a| (rd.stack.api.name.clone(), a))
                .into_iter()
                .collect())
        })
    }

    /// The API's step, if any. When the plan creates (or replaces) it, its children are
    /// planned as new (`Planner::fresh_api`).
    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.snap.get::<Api>(&p.stack.api.name);
        let label = label(p.stack, live.as_ref().map(|a| a.id.as_str()));
        if let Some((c, op)) = diff(&label, &desired(p.stack), live.as_ref()) {
            p.fresh_api = matches!(op, ApiOp::Create | ApiOp::Replace);
            p.push(Node::one(Kind::Api), c, op);
        }
        Ok(())
    }

    fn plan_destroy(p: &mut Planner<'_>) -> Result<()> {
        let Some(live) = p.snap.get::<Api>(&p.stack.api.name) else {
            return Ok(());
        };
        let c = ResourceChange::new(label(p.stack, Some(&live.id)), Action::Delete, vec![])
            .with_reason("its routes, integrations, deployments and stage go with it");
        p.push(Node::one(Kind::Api), c, ApiOp::Delete);
        Ok(())
    }
}

async fn create(cx: &Cx) -> Result<()> {
    let spec = desired(&cx.stack);
    let apigw = &cx.aws.apigw;
    let doing = format!("creating WebSocket API {}", spec.name);
    let id = create_once(
        &doing,
        || async {
            apigw
                .create_api()
                .name(&spec.name)
                .protocol_type(ProtocolType::Websocket)
                .route_selection_expression(&spec.route_selection_expression)
                .set_tags(Some(spec.tags.clone().into_iter().collect()))
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| o.api_id().unwrap_or_default().to_string())
        },
        // The answer was lost: if the API was made, it carries the stack's tag.
        || async { Ok(discover(&cx.aws, &cx.stack.name).await?.map(|a| a.id)) },
    )
    .await?;
    let mut facts = cx.facts();
    facts.api_id = Some(id);
    facts.integration_ids.clear();
    facts.route_ids.clear();
    facts.deployment_id = None;
    Ok(())
}

async fn delete(cx: &Cx, id: &str) -> Result<()> {
    api_delete(&format!("WebSocket API {id}"), || async {
        cx.aws
            .apigw
            .delete_api()
            .api_id(id)
            .send()
            .await
            .map(|_| ())
    })
    .await
}

impl Op for ApiOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                ApiOp::Create => create(cx).await,
                ApiOp::Replace => {
                    delete(cx, &cx.api_id()?).await?;
                    create(cx).await
                }
                ApiOp::Delete => delete(cx, &cx.api_id()?).await,
                ApiOp::Update { settings, tags } => {
                    let id = cx.api_id()?;
                    let spec = desired(&cx.stack);
                    if *settings {
                        api_write(|| async {
                            cx.aws
                                .apigw
                                .update_api()
                                .api_id(&id)
                                .name(&spec.name)
                                .route_selection_expression(&spec.route_selection_expression)
                                .send()
                                .await
                                .map_err(|e| {
                                    super::vanished_or(
                                        format!("WebSocket API {id}"),
                                        format!("updating WebSocket API {id}"),
                                        e,
                                    )
                                })
                        })
                        .await?;
                    }
                    let arn = cx.env.api_arn(&id);
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
            route_selection_expression: "$request.body.action".into(),
            tags: [("wsconn:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn spec() -> Spec {
        Spec {
            name: "s".into(),
            protocol: "WEBSOCKET".into(),
            route_selection_expression: "$request.body.action".into(),
            tags: found("WEBSOCKET").tags,
        }
    }

    #[test]
    fn api_diff() {
        assert!(diff("api", &spec(), Some(&found("WEBSOCKET"))).is_none());
        let (c, _) = diff("api", &spec(), Some(&found("HTTP"))).unwrap();
        assert_eq!(c.action, Action::Replace);
        let mut f = found("WEBSOCKET");
        f.route_selection_expression = "$request.body.x".into();
        let (c, op) = diff("api", &spec(), Some(&f)).unwrap();
        assert_eq!(c.fields[0].field, "route_selection_expression");
        assert!(matches!(op, ApiOp::Update { settings: true, .. }));
    }
}
