//! Routes, keyed by route key; their route responses are a kind of their own
//! (`route_response`). A route's target is shown by the integration's key, never by a
//! random id.
//!
//! Real AWS refuses a second route with one key, but wsconn does not rely on that: two
//! routes under one key (a lost answer to CreateRoute in an older version, another tool)
//! are resolved in the same run by keeping the lowest id and deleting the rest.
//! Routes under keys the stack does not define are deleted (with consent).

use super::api;
use super::integration::{self, Integration};
use super::{all_pages, api_delete, api_write, create_once, vanished_or};
use crate::aws::{self, Aws};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Place, Planner, Reader, Resource, Snapshot, Wiring};
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::Stack;
use aws_sdk_apigatewayv2::types::AuthorizationType;
use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub key: String,
    /// `integration <route key>` for integrations the stack knows, else the raw target.
    pub target: String,
    pub authorization_type: String,
    /// `authorizer <name>` for the stack's authorizer, `(none)` without one.
    pub authorizer: String,
    pub route_response_selection_expression: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveRoute {
    pub id: String,
    pub key: String,
    /// The raw target (`integrations/<id>`), if any.
    pub target: Option<String>,
    pub authorization_type: String,
    pub authorizer_id: Option<String>,
    pub route_response_selection_expression: Option<String>,
}

/// The authorizer a route uses: the stack's, on `$connect` only (WebSocket APIs
/// authorize the handshake).
fn authorizer_of<'s>(stack: &'s Stack, key: &str) -> Option<&'s crate::stack::AuthorizerDef> {
    stack
        .authorizer
        .as_ref()
        .filter(|_| key == crate::stack::CONNECT)
}

pub fn desired(stack: &Stack) -> Vec<Spec> {
    stack
        .routes
        .iter()
        .map(|r| {
            let auth = authorizer_of(stack, &r.key);
            Spec {
                key: r.key.clone(),
                target: format!("integration {}", r.key),
                authorization_type: if auth.is_some() { "CUSTOM" } else { "NONE" }.into(),
                authorizer: auth
                    .map(|a| format!("authorizer {}", a.name))
                    .unwrap_or_else(|| "(none)".into()),
                route_response_selection_expression: Some(r.route_response.into()),
            }
        })
        .collect()
}

pub fn fields_of(s: &Spec) -> Vec<(&'static str, Value)> {
    vec![
        ("target", s.target.clone().into()),
        ("authorization_type", s.authorization_type.clone().into()),
        ("authorizer", s.authorizer.clone().into()),
        (
            "route_response_selection_expression",
            s.route_response_selection_expression.clone().into(),
        ),
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

fn spec_of(
    live: &LiveRoute,
    ids: &BTreeMap<String, String>,
    authorizers: &BTreeMap<String, String>,
) -> Spec {
    let authorizer_id = live
        .authorizer_id
        .as_deref()
        .filter(|id| !id.is_empty() && live.authorization_type != "NONE");
    Spec {
        key: live.key.clone(),
        target: show_target(live.target.as_deref(), ids),
        authorization_type: live.authorization_type.clone(),
        authorizer: super::authorizer::show(authorizer_id, authorizers),
        route_response_selection_expression: live.route_response_selection_expression.clone(),
    }
}

/// GetRoutes of the stack's API, shared by the routes and their responses (one level
/// after GetApis). Empty when there is no API; NotFoundException means the API is gone.
pub async fn listed(rd: &Reader<'_>) -> Result<Vec<LiveRoute>> {
    rd.shared("routes", || async {
        let Some(api) = api::found(rd).await? else {
            return Ok(vec![]);
        };
        match list(rd.aws, &api.id).await? {
            Some(v) => Ok(v),
            None => {
                rd.api_vanished();
                Ok(vec![])
            }
        }
    })
    .await
}

/// Every route of `api_id`; `None` when the API is gone.
async fn list(aws: &Aws, api_id: &str) -> Result<Option<Vec<LiveRoute>>> {
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
                out.items()
                    .iter()
                    .map(|r| {
                        Some(LiveRoute {
                            id: r.route_id().unwrap_or_default().to_string(),
                            key: r.route_key().unwrap_or_default().to_string(),
                            target: r.target().map(String::from),
                            authorization_type: r
                                .authorization_type()
                                .map(|a| a.as_str().to_string())
                                .unwrap_or_else(|| "NONE".into()),
                            authorizer_id: r.authorizer_id().map(String::from),
                            route_response_selection_expression: r
                                .route_response_selection_expression()
                                .map(String::from),
                        })
                    })
                    .collect(),
                out.next_token().map(String::from),
            )),
            Err(e) if error::is_not_found(&e) => Ok((vec![None], None)),
            Err(e) => Err(error::aws(format!("listing routes of API {api_id}"), e)),
        }
    })
    .await?;
    Ok(listed.into_iter().collect())
}

/// The route kept for each route key the stack defines: the lowest id.
pub fn kept(routes: &[&LiveRoute], stack: &Stack) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for r in routes.iter().filter(|r| stack.route(&r.key).is_some()) {
        let e = out.entry(r.key.clone()).or_insert_with(|| r.id.clone());
        if r.id < *e {
            *e = r.id.clone();
        }
    }
    out
}

/// Which integration and route each of the stack's route keys keeps, from a snapshot:
/// the ids steps start from, and what planning compares targets with.
pub fn wiring(snap: &Snapshot, stack: &Stack) -> Wiring {
    let routes = snap.live::<Route>();
    let routes: Vec<&LiveRoute> = routes.values().collect();
    let kept_routes = kept(&routes, stack);
    let targets: BTreeMap<String, String> = routes
        .iter()
        .filter(|r| kept_routes.get(&r.key) == Some(&r.id))
        .filter_map(|r| Some((r.key.clone(), target_id(r.target.as_deref())?.to_string())))
        .collect();
    let integrations = snap.live::<Integration>();
    let integrations: Vec<_> = integrations.values().collect();
    Wiring {
        integrations: integration::kept(
            &integrations,
            &targets,
            stack.routes.iter().map(|r| r.key.as_str()),
        ),
        routes: kept_routes,
    }
}

#[derive(Debug)]
pub enum RouteOp {
    Create(String),
    Update { key: String, id: String },
    Delete(String),
}

/// `authorizers`: the name of each live authorizer the stack keeps, by id.
pub fn diff(
    spec: &Spec,
    live: Option<&LiveRoute>,
    integration_ids: &BTreeMap<String, String>,
    authorizers: &BTreeMap<String, String>,
) -> Option<(ResourceChange, RouteOp)> {
    let resource = format!("route {}", spec.key);
    let Some(live) = live else {
        let c = ResourceChange::new(resource, Action::Create, created_fields(fields_of(spec)));
        return Some((c, RouteOp::Create(spec.key.clone())));
    };
    let have = fields_of(&spec_of(live, integration_ids, authorizers));
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
    };
    Some((
        ResourceChange::new(format!("{resource} ({})", live.id), Action::Update, fields),
        op,
    ))
}

/// The kind: the API's routes (live ones keyed by id: duplicates exist).
pub struct Route;

impl Resource for Route {
    type Live = LiveRoute;
    const NAME: &'static str = "route";
    const PLACE: Place = Place::InsideApi;

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveRoute>>> {
        Box::pin(async move {
            Ok(listed(rd)
                .await?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect())
        })
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live_in_api::<Route>();
        let wiring = p.wiring().into_owned();
        let authorizers = p.live_in_api::<super::authorizer::Authorizer>();
        let authorizer_names: BTreeMap<String, String> =
            super::authorizer::kept(&authorizers, p.stack)
                .and_then(|id| authorizers.get(&id))
                .map(|a| (a.id.clone(), a.name.clone()))
                .into_iter()
                .collect();
        for s in desired(p.stack) {
            let keep = wiring.routes.get(&s.key).and_then(|id| live.get(id));
            if let Some((c, op)) = diff(&s, keep, &wiring.integrations, &authorizer_names) {
                p.push(Node::new(Kind::Route, s.key.clone()), c, op);
            }
        }
        for extra in live
            .values()
            .filter(|r| wiring.routes.get(&r.key) != Some(&r.id))
        {
            let mut c = ResourceChange::new(
                format!("route {} ({})", extra.key, extra.id),
                Action::Delete,
                vec![],
            );
            if p.stack.route(&extra.key).is_some() {
                c = c.with_reason(format!("a duplicate route for key {}", extra.key));
                c.risk = None;
            } else {
                c = c.with_reason("the stack defines no such route");
            }
            p.push(
                Node::new(Kind::RouteCleanup, extra.id.clone()),
                c,
                RouteOp::Delete(extra.id.clone()),
            );
        }
        Ok(())
    }

    /// Deleting the API deletes its routes.
    fn plan_destroy(_: &mut Planner<'_>) -> Result<()> {
        Ok(())
    }
}

async fn find(cx: &Cx, api_id: &str, key: &str) -> Result<Option<String>> {
    Ok(list(&cx.aws, api_id)
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

/// The authorization a route is written with: `CUSTOM` and the authorizer's id, or `NONE`.
fn authorization(cx: &Cx, key: &str) -> Result<(AuthorizationType, Option<String>)> {
    match authorizer_of(&cx.stack, key) {
        Some(a) => {
            let id = cx
                .facts()
                .authorizer_id
                .clone()
                .ok_or_else(|| Error::Vanished(super::authorizer::label(&a.name, None)))?;
            Ok((AuthorizationType::Custom, Some(id)))
        }
        None => Ok((AuthorizationType::None, None)),
    }
}

fn route_response(cx: &Cx, key: &str) -> &'static str {
    cx.stack
        .route(key)
        .map(|r| r.route_response)
        .unwrap_or("$default")
}

async fn create(cx: &Cx, key: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    let apigw = &cx.aws.apigw;
    let t = target(cx, key)?;
    let response = route_response(cx, key);
    let (auth, authorizer_id) = authorization(cx, key)?;
    let id = create_once(
        &format!("creating route {key} (api {api_id})"),
        || async {
            apigw
                .create_route()
                .api_id(&api_id)
                .route_key(key)
                .target(&t)
                .authorization_type(auth.clone())
                .set_authorizer_id(authorizer_id.clone())
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
                    update(cx, key, &id).await?;
                    id
                }
                None => return Err(e),
            }
        }
        Err(e) if e.is_not_found() => {
            return Err(Error::Vanished(format!("WebSocket API {api_id}")));
        }
        Err(e) => return Err(e),
    };
    cx.facts().route_ids.insert(key.to_string(), id);
    Ok(())
}

async fn update(cx: &Cx, key: &str, id: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    let t = target(cx, key)?;
    let response = route_response(cx, key);
    let (auth, authorizer_id) = authorization(cx, key)?;
    api_write(|| async {
        cx.aws
            .apigw
            .update_route()
            .api_id(&api_id)
            .route_id(id)
            .target(&t)
            .authorization_type(auth.clone())
            .set_authorizer_id(authorizer_id.clone())
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
                RouteOp::Update { key, id } => update(cx, key, id).await,
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
            authorizer_id: None,
            route_response_selection_expression: Some("$default".into()),
        }
    }

    fn spec(key: &str) -> Spec {
        Spec {
            key: key.into(),
            target: format!("integration {key}"),
            authorization_type: "NONE".into(),
            authorizer: "(none)".into(),
            route_response_selection_expression: Some("$default".into()),
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
    fn a_retargeted_route_is_reported_by_integration_key() {
        let ids: BTreeMap<String, String> = [
            ("$connect".to_string(), "i1".to_string()),
            ("$disconnect".to_string(), "i2".to_string()),
        ]
        .into();
        let (c, op) = diff(
            &spec("$connect"),
            Some(&live("r1", "$connect", "i2")),
            &ids,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(c.fields.len(), 1);
        assert_eq!(c.fields[0].field, "target");
        assert_eq!(c.fields[0].current, "integration $disconnect");
        assert!(matches!(op, RouteOp::Update { ref id, .. } if id == "r1"));
        assert!(
            diff(
                &spec("$connect"),
                Some(&live("r1", "$connect", "i1")),
                &ids,
                &BTreeMap::new()
            )
            .is_none()
        );
    }

    #[test]
    fn duplicates_keep_the_lowest_id_and_foreign_keys_are_extra() {
        let stack = crate::stack::tests_support::stack("s");
        let routes = [
            live("r9", "$connect", "i1"),
            live("r2", "$connect", "i1"),
            live("r5", "sendmessage", "i7"),
        ];
        let routes: Vec<&LiveRoute> = routes.iter().collect();
        let k = kept(&routes, &stack);
        assert_eq!(k.get("$connect").map(String::as_str), Some("r2"));
        assert_eq!(k.get("sendmessage"), None);
    }

    #[test]
    fn wiring_keeps_the_integration_the_kept_route_targets() {
        let stack = crate::stack::tests_support::stack("s");
        let env = crate::aws::AwsEnv {
            region: "r".into(),
            account: "1".into(),
            partition: "aws".into(),
        };
        let mut snap = Snapshot::new(env, vec![]);
        snap.set::<Route>([("r2".to_string(), live("r2", "$connect", "i9"))].into());
        let integ = |id: &str| integration::LiveIntegration {
            id: id.into(),
            key: Some("$connect".into()),
            spec: integration::desired(&stack, &snap.env, &Default::default())[0].clone(),
        };
        snap.set::<Integration>(
            [
                ("i1".to_string(), integ("i1")),
                ("i9".to_string(), integ("i9")),
            ]
            .into(),
        );
        let w = wiring(&snap, &stack);
        assert_eq!(w.routes["$connect"], "r2");
        assert_eq!(w.integrations["$connect"], "i9");
    }
}
