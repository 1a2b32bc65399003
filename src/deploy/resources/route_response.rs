//! Route responses, keyed by route key and response key. A route response `$default`
//! (with the route's response selection `$default`) is what lets the backend's answer
//! reach the client. Responses the stack does not declare are deleted (wsconn's own
//! sub-resources: no consent). CreateRouteResponse has no client token, so after a lost
//! answer the response is looked up by its key before it is sent again.

use super::route::{self, Route};
use super::{api_delete, create_once};
use crate::aws::{self, Aws};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Place, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use futures::future::BoxFuture;

#[derive(Debug, Clone, PartialEq)]
pub struct LiveResponse {
    pub route_id: String,
    pub id: String,
    pub key: String,
}

pub fn label(route: &str, response: &str) -> String {
    format!("route response {response} of {route}")
}

/// GetRouteResponses of one route; `None` when the route is gone.
async fn read(aws: &Aws, api_id: &str, route_id: &str) -> Result<Option<Vec<LiveResponse>>> {
    let out = aws
        .gated(
            aws.apigw
                .get_route_responses()
                .api_id(api_id)
                .route_id(route_id)
                .send(),
        )
        .await;
    match out {
        Ok(o) => Ok(Some(
            o.items()
                .iter()
                .map(|r| LiveResponse {
                    route_id: route_id.to_string(),
                    id: r.route_response_id().unwrap_or_default().to_string(),
                    key: r.route_response_key().unwrap_or_default().to_string(),
                })
                .collect(),
        )),
        // The route went away after the listing: it is simply absent.
        Err(e) if error::is_not_found(&e) => Ok(None),
        Err(e) => Err(error::aws(
            format!("reading route responses of route {route_id} (api {api_id})"),
            e,
        )),
    }
}

#[derive(Debug)]
pub enum ResponseOp {
    Create {
        route: String,
        key: String,
    },
    Delete {
        route: String,
        route_id: String,
        id: String,
    },
}

/// The kind: the responses of the API's routes, keyed `route id/response key`.
pub struct RouteResponse;

impl Resource for RouteResponse {
    type Live = LiveResponse;
    const NAME: &'static str = "route response";
    const PLACE: Place = Place::InsideApi;

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveResponse>>> {
        Box::pin(async move {
            let listed = route::listed(rd).await?;
            let Some(api) = super::api::found(rd).await? else {
                return Ok(Instances::new());
            };
            let all =
                futures::future::try_join_all(listed.iter().map(|r| read(rd.aws, &api.id, &r.id)))
                    .await?;
            Ok(all
                .into_iter()
                .flatten()
                .flatten()
                .map(|r| (format!("{}/{}", r.route_id, r.key), r))
                .collect())
        })
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live_in_api::<RouteResponse>();
        let kept = p.wiring().routes.clone();
        let routes = p.live_in_api::<Route>();
        for r in &p.stack.routes {
            let want = [r.route_response];
            // The kept route's responses; none when it is to be created.
            let have: Vec<&LiveResponse> = kept
                .get(&r.key)
                .filter(|id| routes.contains_key(*id))
                .map(|id| live.values().filter(|x| &x.route_id == id).collect())
                .unwrap_or_default();
            for key in want {
                if !have.iter().any(|x| x.key == key) {
                    p.push(
                        Node::new(Kind::RouteResponse, r.key.clone()),
                        ResourceChange::new(label(&r.key, key), Action::Create, vec![]),
                        ResponseOp::Create {
                            route: r.key.clone(),
                            key: key.to_string(),
                        },
                    );
                }
            }
            for x in have.iter().filter(|x| !want.contains(&x.key.as_str())) {
                let mut c = ResourceChange::new(label(&r.key, &x.key), Action::Delete, vec![])
                    .with_reason("the stack does not declare it");
                c.risk = None;
                p.push(
                    Node::new(Kind::RouteResponse, r.key.clone()),
                    c,
                    ResponseOp::Delete {
                        route: r.key.clone(),
                        route_id: x.route_id.clone(),
                        id: x.id.clone(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Deleting the API deletes them.
    fn plan_destroy(_: &mut Planner<'_>) -> Result<()> {
        Ok(())
    }
}

fn route_id(cx: &Cx, route: &str) -> Result<String> {
    cx.facts()
        .route_ids
        .get(route)
        .cloned()
        .ok_or_else(|| Error::Vanished(format!("route {route}")))
}

async fn create(cx: &Cx, route: &str, key: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    let id = route_id(cx, route)?;
    let (apigw, aws) = (&cx.aws.apigw, &cx.aws);
    create_once(
        &format!("creating {} (api {api_id})", label(route, key)),
        || async {
            apigw
                .create_route_response()
                .api_id(&api_id)
                .route_id(&id)
                .route_response_key(key)
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| o.route_response_id().unwrap_or_default().to_string())
        },
        || async {
            let found = read(aws, &api_id, &id)
                .await?
                .ok_or_else(|| Error::Vanished(format!("route {route}")))?;
            Ok(found.into_iter().find(|r| r.key == key).map(|r| r.id))
        },
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        if e.is_not_found() {
            Error::Vanished(format!("route {route}"))
        } else {
            e
        }
    })
}

impl Op for ResponseOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                ResponseOp::Create { route, key } => create(cx, route, key).await,
                ResponseOp::Delete {
                    route,
                    route_id,
                    id,
                } => {
                    let api_id = cx.api_id()?;
                    let what = format!("route response {id} of {route} (api {api_id})");
                    api_delete(&what, || async {
                        cx.aws
                            .apigw
                            .delete_route_response()
                            .api_id(&api_id)
                            .route_id(route_id)
                            .route_response_id(id)
                            .send()
                            .await
                            .map(|_| ())
                    })
                    .await
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_route_and_the_response() {
        assert_eq!(
            label("$connect", "$default"),
            "route response $default of $connect"
        );
    }
}
