//! The three routes with their route responses. A route is keyed by its route key
//! (unique per API); its target is shown by the integration's key, never by a random id.
//! A route response `$default` (with route response selection `$default`) is what lets
//! the backend's answer reach the client. Routes under other keys are deleted.

use super::{Resource, Step, api, api_write, integration::ROUTE_KEYS};
use crate::aws::Aws;
use crate::engine::Cx;
use crate::error::{self, Result};
use crate::plan::{Action, ResourceChange, created_fields, field};
use aws_sdk_apigatewayv2::types::{AuthorizationType, Route};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const RESPONSE_KEY: &str = "$default";

pub async fn list(aws: &Aws, api_id: &str) -> Result<Vec<Route>> {
    super::all_pages(|token| async move {
        let out = aws
            .apigw
            .get_routes()
            .api_id(api_id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| error::aws(format!("listing routes of API {api_id}"), e))?;
        Ok((out.items().to_vec(), out.next_token().map(String::from)))
    })
    .await
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub key: String,
    /// `integration <route key>` for integrations the stack knows, else the raw target.
    pub target: String,
    pub authorization_type: String,
    pub route_response_selection_expression: Option<String>,
    pub responses: Vec<String>,
}

pub fn desired() -> Vec<Spec> {
    ROUTE_KEYS
        .iter()
        .map(|k| Spec {
            key: k.to_string(),
            target: format!("integration {k}"),
            authorization_type: "NONE".into(),
            route_response_selection_expression: Some(RESPONSE_KEY.into()),
            responses: vec![RESPONSE_KEY.into()],
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

/// `integrations/<id>` → `integration <key>` using the ids the stack knows.
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

#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub id: String,
    pub spec: Spec,
}

async fn read(cx: &Cx, api_id: &str, r: &Route, ids: &BTreeMap<String, String>) -> Result<Live> {
    let id = r.route_id().unwrap_or_default().to_string();
    let key = r.route_key().unwrap_or_default().to_string();
    let out = cx
        .aws
        .apigw
        .get_route_responses()
        .api_id(api_id)
        .route_id(&id)
        .send()
        .await
        .map_err(|e| {
            error::aws(
                format!("reading route responses of {key} (api {api_id})"),
                e,
            )
        })?;
    let mut responses: Vec<String> = out
        .items()
        .iter()
        .filter_map(|r| r.route_response_key().map(String::from))
        .collect();
    responses.sort();
    Ok(Live {
        id,
        spec: Spec {
            target: show_target(r.target(), ids),
            authorization_type: r
                .authorization_type()
                .map(|a| a.as_str().to_string())
                .unwrap_or_else(|| "NONE".into()),
            route_response_selection_expression: r
                .route_response_selection_expression()
                .map(String::from),
            responses,
            key,
        },
    })
}

#[derive(Debug)]
pub enum Op {
    Create(String),
    Update {
        key: String,
        id: String,
        settings: bool,
        add_responses: Vec<String>,
    },
    Delete(String),
}

pub fn diff(spec: &Spec, live: Option<&Live>) -> Option<(ResourceChange, Op)> {
    let resource = format!("route {}", spec.key);
    let Some(live) = live else {
        let c = ResourceChange::new(resource, Action::Create, created_fields(fields_of(spec)));
        return Some((c, Op::Create(spec.key.clone())));
    };
    let have = fields_of(&live.spec);
    let fields: Vec<_> = fields_of(spec)
        .into_iter()
        .zip(have)
        .filter_map(|((name, want), (_, have))| field(name, have, want))
        .collect();
    if fields.is_empty() {
        return None;
    }
    let op = Op::Update {
        key: spec.key.clone(),
        id: live.id.clone(),
        settings: fields.iter().any(|f| f.field != "route_responses"),
        add_responses: spec
            .responses
            .iter()
            .filter(|r| !live.spec.responses.contains(r))
            .cloned()
            .collect(),
    };
    Some((
        ResourceChange::new(format!("{resource} ({})", live.id), Action::Update, fields),
        op,
    ))
}

pub struct Routes;

impl Resource for Routes {
    fn plan<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let specs = desired();
            let Some(api) = api::live_api(cx) else {
                return Ok(specs
                    .iter()
                    .filter_map(|s| diff(s, None))
                    .map(|(c, op)| Step::new(c, op))
                    .collect());
            };
            let ids = cx.facts.lock().unwrap().integration_ids.clone();
            let lives = futures::future::try_join_all(
                cx.found.routes.iter().map(|r| read(cx, &api.id, r, &ids)),
            )
            .await?;
            let mut steps: Vec<Step> = specs
                .iter()
                .filter_map(|s| diff(s, lives.iter().find(|l| l.spec.key == s.key)))
                .map(|(c, op)| Step::new(c, op))
                .collect();
            for extra in lives
                .iter()
                .filter(|l| !ROUTE_KEYS.contains(&l.spec.key.as_str()))
            {
                let c = ResourceChange::new(
                    format!("route {} ({})", extra.spec.key, extra.id),
                    Action::Delete,
                    vec![],
                )
                .with_reason("the stack defines no such route");
                steps.push(Step::new(c, Op::Delete(extra.id.clone())));
            }
            Ok(steps)
        })
    }

    fn plan_destroy<'a>(&'a self, _cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async { Ok(vec![]) })
    }

    fn apply<'a>(&'a self, cx: &'a Cx, step: &'a Step) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let api_id = cx.api_id()?;
            let apigw = &cx.aws.apigw;
            let target = |key: &str| -> Result<String> {
                cx.facts
                    .lock()
                    .unwrap()
                    .integration_ids
                    .get(key)
                    .map(|id| format!("integrations/{id}"))
                    .ok_or_else(|| {
                        crate::error::Error::Conflict(format!(
                            "route {key}: its integration does not exist (api {api_id})"
                        ))
                    })
            };
            let (key, id, add) = match step.op::<Op>() {
                Op::Create(key) => {
                    let t = target(key)?;
                    let out = api_write(|| async {
                        apigw
                            .create_route()
                            .api_id(&api_id)
                            .route_key(key)
                            .target(&t)
                            .authorization_type(AuthorizationType::None)
                            .route_response_selection_expression(RESPONSE_KEY)
                            .send()
                            .await
                            .map_err(|e| {
                                error::aws(format!("creating route {key} (api {api_id})"), e)
                            })
                    })
                    .await?;
                    (
                        key.clone(),
                        out.route_id().unwrap_or_default().to_string(),
                        vec![RESPONSE_KEY.to_string()],
                    )
                }
                Op::Update {
                    key,
                    id,
                    settings,
                    add_responses,
                } => {
                    if *settings {
                        let t = target(key)?;
                        api_write(|| async {
                            apigw
                                .update_route()
                                .api_id(&api_id)
                                .route_id(id)
                                .target(&t)
                                .authorization_type(AuthorizationType::None)
                                .route_response_selection_expression(RESPONSE_KEY)
                                .send()
                                .await
                                .map_err(|e| {
                                    error::aws(format!("updating route {key} (api {api_id})"), e)
                                })
                        })
                        .await?;
                    }
                    (key.clone(), id.clone(), add_responses.clone())
                }
                Op::Delete(id) => {
                    return api_write(|| async {
                        match apigw
                            .delete_route()
                            .api_id(&api_id)
                            .route_id(id)
                            .send()
                            .await
                        {
                            Ok(_) => Ok(()),
                            Err(e)
                                if e.as_service_error()
                                    .is_some_and(|s| s.is_not_found_exception()) =>
                            {
                                Ok(())
                            }
                            Err(e) => {
                                Err(error::aws(format!("deleting route {id} (api {api_id})"), e))
                            }
                        }
                    })
                    .await;
                }
            };
            for r in &add {
                api_write(|| async {
                    apigw
                        .create_route_response()
                        .api_id(&api_id)
                        .route_id(&id)
                        .route_response_key(r)
                        .send()
                        .await
                        .map_err(|e| {
                            error::aws(
                                format!("creating route response {r} of {key} (api {api_id})"),
                                e,
                            )
                        })
                })
                .await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let spec = desired().remove(0);
        let mut live = spec.clone();
        live.target = "integration $disconnect".into();
        live.responses.clear();
        let (c, op) = diff(
            &spec,
            Some(&Live {
                id: "r1".into(),
                spec: live,
            }),
        )
        .unwrap();
        assert_eq!(c.fields[0].field, "target");
        assert_eq!(c.fields[0].current, "integration $disconnect");
        assert_eq!(c.fields[1].field, "route_responses");
        assert!(
            matches!(op, Op::Update { settings: true, ref add_responses, .. } if add_responses.len() == 1)
        );
        assert!(
            diff(
                &spec,
                Some(&Live {
                    id: "r1".into(),
                    spec: spec.clone()
                })
            )
            .is_none()
        );
    }
}
