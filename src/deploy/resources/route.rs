//! The three routes with their route responses. A route is keyed by its route key; its
//! target is shown by the integration's key, never by a random id. A route response
//! `$default` (with route response selection `$default`) is what lets the backend's
//! answer reach the client.
//!
//! Real AWS refuses a second route with one key, but wsconn does not rely on that: two
//! routes under one key (a lost answer to CreateRoute in an older version, another tool)
//! are resolved in the same run by keeping the lowest id and deleting the rest.
//! Routes under keys the stack does not define are deleted (with consent).

use super::{all_pages, api_delete, api_write, create_once, vanished_or};
use crate::aws::{self, Aws};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::{Op, Step};
use crate::error::{self, Error, Result};
use crate::stack::{ROUTE_KEYS, Stack};
use aws_sdk_apigatewayv2::types::AuthorizationType;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub key: String,
    /// `integration <route key>` for integrations the stack knows, else the raw target.
    pub target: String,
    pub authorization_type: String,
    pub route_response_selection_expression: Option<String>,
    pub responses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveRoute {
    pub id: String,
    pub key: String,
    /// The raw target (`integrations/<id>`), if any.
    pub target: Option<String>,
    pub authorization_type: String,
    pub route_response_selection_expression: Option<String>,
    pub responses: Vec<String>,
}

pub fn desired(stack: &Stack) -> Vec<Spec> {
    stack
        .routes
        .iter()
        .map(|r| Spec {
            key: r.key.to_string(),
            target: format!("integration {}", r.key),
            authorization_type: "NONE".into(),
            route_response_selection_expression: Some(r.route_response.into()),
            responses: vec![r.route_response.into()],
        })
        .collect()
}

pub fn fields_of(s: &Spec) -> Vec<(&'static str, Value)> {
    vec![
        ("target", s.target.clone().into()),
        ("authorization_type", s.authorization_type.clone().into()),
        (
            "route_response_selection_expression",
            s.route_response_selection_expression.clone().into(),
        ),
        ("route_responses", json!(s.responses)),
    ]
}

/// `integrations/<id>` → `integration <key>` using the ids the stack keeps.
pub fn show_target(target: Option<&str>, ids: &BTreeMap<String, String>) -> String {
    let Some(t) = target else {
        return "(none)".into();
    };
    let id = t.strip_prefix("integrations/").unwrap_or(t);
    ids.iter()
        .find(|(_, v)| v.as_str() == id)
        .map(|(k, _)| format!("integration {k}"))
        .unwrap_or_else(|| t.to_string())
}

/// The integration id a route targets, from `integrations/<id>`.
pub fn target_id(target: Option<&str>) -> Option<&str> {
    target.map(|t| t.strip_prefix("integrations/").unwrap_or(t))
}

fn spec_of(live: &LiveRoute, ids: &BTreeMap<String, String>) -> Spec {
    Spec {
        key: live.key.clone(),
        target: show_target(live.target.as_deref(), ids),
        authorization_type: live.authorization_type.clone(),
        route_response_selection_expression: live.route_response_selection_expression.clone(),
        responses: live.responses.clone(),
    }
}

/// GetRoutes, then every route's responses at once: two levels. `None` when the API
/// vanished under the listing.
pub async fn read_all(aws: &Aws, api_id: &str) -> Result<Option<Vec<LiveRoute>>> {
    let listed = all_pages(|token| async move {
        let out = aws
            .gated(
                aws.apigw
                    .get_routes()
                    .api_id(api_id)
                    .set_next_token(token)
                    .send(),
            )
            .await;
        match out {
            Ok(out) => Ok((
                out.items().iter().map(|r| Some(r.clone())).collect(),
                out.next_token().map(String::from),
            )),
            Err(e) if error::code_of(&e) == Some("NotFoundException") => Ok((vec![None], None)),
            Err(e) => Err(error::aws(format!("listing routes of API {api_id}"), e)),
        }
    })
    .await?;
    let Some(listed) = listed.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    let lives = futures::future::try_join_all(listed.iter().map(|r| async move {
        let id = r.route_id().unwrap_or_default().to_string();
        let key = r.route_key().unwrap_or_default().to_string();
        let out = aws
            .gated(
                aws.apigw
                    .get_route_responses()
                    .api_id(api_id)
                    .route_id(&id)
                    .send(),
            )
            .await;
        let mut responses = match out {
            Ok(o) => o
                .items()
                .iter()
                .filter_map(|r| r.route_response_key().map(String::from))
                .collect::<Vec<_>>(),
            Err(e) if error::code_of(&e) == Some("NotFoundException") => return Ok(None),
            Err(e) => {
                return Err(error::aws(
                    format!("reading route responses of {key} (api {api_id})"),
                    e,
                ));
            }
        };
        responses.sort();
        Ok::<_, Error>(Some(LiveRoute {
            id,
            key,
            target: r.target().map(String::from),
            authorization_type: r
                .authorization_type()
                .map(|a| a.as_str().to_string())
                .unwrap_or_else(|| "NONE".into()),
            route_response_selection_expression: r
                .route_response_selection_expression()
                .map(String::from),
            responses,
        }))
    }))
    .await?;
    Ok(Some(lives.into_iter().flatten().collect()))
}

/// The route kept for each of the stack's keys: the lowest id.
pub fn kept(routes: &[LiveRoute]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for r in routes {
        if ROUTE_KEYS.contains(&r.key.as_str()) {
            let e = out.entry(r.key.clone()).or_insert_with(|| r.id.clone());
            if r.id < *e {
                *e = r.id.clone();
            }
        }
    }
    out
}

/// Raw targets of the kept routes, by key (which integration each route uses).
pub fn targets(routes: &[LiveRoute]) -> BTreeMap<String, String> {
    let kept = kept(routes);
    routes
        .iter()
        .filter(|r| kept.get(&r.key) == Some(&r.id))
        .filter_map(|r| Some((r.key.clone(), target_id(r.target.as_deref())?.to_string())))
        .collect()
}

#[derive(Debug)]
pub enum RouteOp {
    Create(String),
    Update {
        key: String,
        id: String,
        settings: bool,
        add_responses: Vec<String>,
    },
    Delete(String),
}

pub fn diff(
    spec: &Spec,
    live: Option<&LiveRoute>,
    integration_ids: &BTreeMap<String, String>,
) -> Option<(ResourceChange, RouteOp)> {
    let resource = format!("route {}", spec.key);
    let Some(live) = live else {
        let c = ResourceChange::new(resource, Action::Create, created_fields(fields_of(spec)));
        return Some((c, RouteOp::Create(spec.key.clone())));
    };
    let have = fields_of(&spec_of(live, integration_ids));
    let fields: Vec<_> = fields_of(spec)
        .into_iter()
        .zip(have)
        .filter_map(|((name, want), (_, have))| field(name, have, want))
        .collect();
    if fields.is_empty() {
        return None;
    }
    let op = RouteOp::Update {
        key: spec.key.clone(),
        id: live.id.clone(),
        settings: fields.iter().any(|f| f.field != "route_responses"),
        add_responses: spec
            .responses
            .iter()
            .filter(|r| !live.responses.contains(r))
            .cloned()
            .collect(),
    };
    Some((
        ResourceChange::new(format!("{resource} ({})", live.id), Action::Update, fields),
        op,
    ))
}

/// `live` is `None` when the API is new; `integration_ids` are the kept integrations.
pub fn plan(
    stack: &Stack,
    live: Option<&[LiveRoute]>,
    integration_ids: &BTreeMap<String, String>,
) -> Vec<Step> {
    let live = live.unwrap_or(&[]);
    let kept = kept(live);
    let mut steps: Vec<Step> = desired(stack)
        .iter()
        .filter_map(|s| {
            let keep = kept
                .get(&s.key)
                .and_then(|id| live.iter().find(|r| &r.id == id));
            diff(s, keep, integration_ids)
                .map(|(c, op)| Step::new(Node::new(Kind::Route, s.key.clone()), c, op))
        })
        .collect();
    for extra in live.iter().filter(|r| kept.get(&r.key) != Some(&r.id)) {
        let mut c = ResourceChange::new(
            format!("route {} ({})", extra.key, extra.id),
            Action::Delete,
            vec![],
        );
        if ROUTE_KEYS.contains(&extra.key.as_str()) {
            c = c.with_reason(format!("a duplicate route for key {}", extra.key));
            c.risk = None;
        } else {
            c = c.with_reason("the stack defines no such route");
        }
        steps.push(Step::new(
            Node::new(Kind::RouteCleanup, extra.id.clone()),
            c,
            RouteOp::Delete(extra.id.clone()),
        ));
    }
    steps
}

async fn find(cx: &Cx, api_id: &str, key: &str) -> Result<Option<String>> {
    Ok(read_all(&cx.aws, api_id)
        .await?
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.key == key)
        .map(|r| r.id)
        .min())
}

fn target(cx: &Cx, key: &str) -> Result<String> {
    Ok(format!("integrations/{}", cx.integration_id(key)?))
}

async fn create(cx: &Cx, key: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    let apigw = &cx.aws.apigw;
    let t = target(cx, key)?;
    let response = cx
        .stack
        .route(key)
        .map(|r| r.route_response)
        .unwrap_or("$default");
    let id = create_once(
        &format!("creating route {key} (api {api_id})"),
        || async {
            apigw
                .create_route()
                .api_id(&api_id)
                .route_key(key)
                .target(&t)
                .authorization_type(AuthorizationType::None)
                .route_response_selection_expression(response)
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| o.route_id().unwrap_or_default().to_string())
        },
        || find(cx, &api_id, key),
    )
    .await;
    let id = match id {
        Ok(id) => id,
        // "Route with key … already exists for this API": someone made it just now.
        Err(e)
            if e.code() == Some("ConflictException") && e.message().contains("already exists") =>
        {
            match find(cx, &api_id, key).await? {
                Some(id) => {
                    update(cx, key, &id, true, &[]).await?;
                    id
                }
                None => return Err(e),
            }
        }
        Err(e) if e.code() == Some("NotFoundException") => {
            return Err(Error::Vanished(format!("WebSocket API {api_id}")));
        }
        Err(e) => return Err(e),
    };
    cx.facts().route_ids.insert(key.to_string(), id.clone());
    create_response(cx, &api_id, &id, key, response).await
}

async fn create_response(cx: &Cx, api_id: &str, id: &str, key: &str, r: &str) -> Result<()> {
    let apigw = &cx.aws.apigw;
    create_once(
        &format!("creating route response {r} of {key} (api {api_id})"),
        || async {
            apigw
                .create_route_response()
                .api_id(api_id)
                .route_id(id)
                .route_response_key(r)
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| o.route_response_id().unwrap_or_default().to_string())
        },
        || async {
            let out = apigw
                .get_route_responses()
                .api_id(api_id)
                .route_id(id)
                .send()
                .await
                .map_err(|e| {
                    vanished_or(
                        format!("route {key}"),
                        format!("reading route responses of {key} (api {api_id})"),
                        e,
                    )
                })?;
            Ok(out
                .items()
                .iter()
                .find(|x| x.route_response_key() == Some(r))
                .and_then(|x| x.route_response_id().map(String::from)))
        },
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        if e.code() == Some("NotFoundException") {
            Error::Vanished(format!("route {key}"))
        } else {
            e
        }
    })
}

async fn update(cx: &Cx, key: &str, id: &str, settings: bool, add: &[String]) -> Result<()> {
    let api_id = cx.api_id()?;
    let apigw = &cx.aws.apigw;
    if settings {
        let t = target(cx, key)?;
        let response = cx
            .stack
            .route(key)
            .map(|r| r.route_response)
            .unwrap_or("$default");
        api_write(|| async {
            apigw
                .update_route()
                .api_id(&api_id)
                .route_id(id)
                .target(&t)
                .authorization_type(AuthorizationType::None)
                .route_response_selection_expression(response)
                .send()
                .await
                .map_err(|e| {
                    vanished_or(
                        format!("route {key} ({id})"),
                        format!("updating route {key} (api {api_id})"),
                        e,
                    )
                })
        })
        .await?;
    }
    for r in add {
        create_response(cx, &api_id, id, key, r).await?;
    }
    Ok(())
}

async fn delete(cx: &Cx, id: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    api_delete(&format!("route {id} (api {api_id})"), || async {
        cx.aws
            .apigw
            .delete_route()
            .api_id(&api_id)
            .route_id(id)
            .send()
            .await
            .map(|_| ())
    })
    .await
}

impl Op for RouteOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                RouteOp::Create(key) => create(cx, key).await,
                RouteOp::Update {
                    key,
                    id,
                    settings,
                    add_responses,
                } => update(cx, key, id, *settings, add_responses).await,
                RouteOp::Delete(id) => delete(cx, id).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(id: &str, key: &str, target: &str) -> LiveRoute {
        LiveRoute {
            id: id.into(),
            key: key.into(),
            target: Some(format!("integrations/{target}")),
            authorization_type: "NONE".into(),
            route_response_selection_expression: Some("$default".into()),
            responses: vec!["$default".into()],
        }
    }

    fn spec(key: &str) -> Spec {
        Spec {
            key: key.into(),
            target: format!("integration {key}"),
            authorization_type: "NONE".into(),
            route_response_selection_expression: Some("$default".into()),
            responses: vec!["$default".into()],
        }
    }

    #[test]
    fn targets_are_shown_by_integration_key() {
        let ids: BTreeMap<String, String> = [("$connect".to_string(), "abc".to_string())].into();
        assert_eq!(
            show_target(Some("integrations/abc"), &ids),
            "integration $connect"
        );
        assert_eq!(
            show_target(Some("integrations/zzz"), &ids),
            "integrations/zzz"
        );
        assert_eq!(show_target(None, &ids), "(none)");
    }

    #[test]
    fn retargeted_route_and_missing_response_are_reported() {
        let ids: BTreeMap<String, String> = [
            ("$connect".to_string(), "i1".to_string()),
            ("$disconnect".to_string(), "i2".to_string()),
        ]
        .into();
        let mut l = live("r1", "$connect", "i2");
        l.responses.clear();
        let (c, op) = diff(&spec("$connect"), Some(&l), &ids).unwrap();
        assert_eq!(c.fields[0].field, "target");
        assert_eq!(c.fields[0].current, "integration $disconnect");
        assert_eq!(c.fields[1].field, "route_responses");
        assert!(
            matches!(op, RouteOp::Update { settings: true, ref add_responses, .. } if add_responses.len() == 1)
        );
        assert!(diff(&spec("$connect"), Some(&live("r1", "$connect", "i1")), &ids).is_none());
    }

    #[test]
    fn duplicates_keep_the_lowest_id_and_foreign_keys_are_extra() {
        let routes = vec![
            live("r9", "$connect", "i1"),
            live("r2", "$connect", "i1"),
            live("r5", "sendmessage", "i7"),
        ];
        let k = kept(&routes);
        assert_eq!(k.get("$connect").map(String::as_str), Some("r2"));
        assert_eq!(k.get("sendmessage"), None);
        assert_eq!(
            targets(&routes).get("$connect").map(String::as_str),
            Some("i1")
        );
    }
}
