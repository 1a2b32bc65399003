//! Integration responses, keyed by route key and response key.
//!
//! A non-proxy (AWS service) integration needs an integration response, or calls fail
//! with "No match for output mapping and no default output mapping configured": the
//! DynamoDB integrations get `/200/`. Proxy integrations have none. Responses found on a
//! kept integration that the stack does not declare are deleted (wsconn's own
//! sub-resources: no consent). CreateIntegrationResponse has no client token, so after a
//! lost answer the response is looked up by its key before it is sent again.

use super::integration::{self, Integration};
use super::{api_delete, create_once, vanish_on_missing_api};
use crate::aws::{self, Aws};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Place, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::{IntegrationDef, RouteDef};
use futures::future::BoxFuture;

#[derive(Debug, Clone, PartialEq)]
pub struct LiveResponse {
    pub integration_id: String,
    pub id: String,
    /// The response key (a status regex such as `/200/`, or `$default`).
    pub key: String,
}

pub fn label(route: &str, response: &str) -> String {
    format!("integration response {response} of {route}")
}

/// The responses a route's integration needs.
pub fn desired(route: &RouteDef) -> Vec<&'static str> {
    match &route.integration {
        IntegrationDef::DynamoDb { response_key, .. } => vec![*response_key],
        IntegrationDef::LambdaProxy { .. } => vec![],
    }
}

/// GetIntegrationResponses of one integration; `None` when it is gone.
async fn read(aws: &Aws, api_id: &str, integration_id: &str) -> Result<Option<Vec<LiveResponse>>> {
    let out = aws
        .gated(
            aws.apigw
                .get_integration_responses()
                .api_id(api_id)
                .integration_id(integration_id)
                .send(),
        )
        .await;
    match out {
        Ok(o) => Ok(Some(
            o.items()
                .iter()
                .map(|r| LiveResponse {
                    integration_id: integration_id.to_string(),
                    id: r.integration_response_id().unwrap_or_default().to_string(),
                    key: r.integration_response_key().unwrap_or_default().to_string(),
                })
                .collect(),
        )),
        // The integration went away after the listing: it is simply absent.
        Err(e) if error::is_not_found(&e) => Ok(None),
        Err(e) => Err(error::aws(
            format!("reading integration responses of {integration_id} (api {api_id})"),
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
        integration_id: String,
        id: String,
    },
}

/// The kind: the responses of the API's integrations, keyed `integration id/response key`.
pub struct IntegrationResponse;

impl Resource for IntegrationResponse {
    type Live = LiveResponse;
    const NAME: &'static str = "integration response";
    const PLACE: Place = Place::InsideApi;

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveResponse>>> {
        Box::pin(async move {
            let listed = integration::listed(rd).await?;
            let Some(api) = super::api::found(rd).await? else {
                return Ok(Instances::new());
            };
            let all =
                futures::future::try_join_all(listed.iter().map(|i| read(rd.aws, &api.id, &i.id)))
                    .await?;
            Ok(all
                .into_iter()
                .flatten()
                .flatten()
                .map(|r| (format!("{}/{}", r.integration_id, r.key), r))
                .collect())
        })
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live_in_api::<IntegrationResponse>();
        let kept = p.wiring().integrations.clone();
        let integrations = p.live_in_api::<Integration>();
        for route in &p.stack.routes {
            let want = desired(route);
            // The kept integration's responses; none when it is to be created.
            let have: Vec<&LiveResponse> = kept
                .get(&route.key)
                .filter(|id| integrations.contains_key(*id))
                .map(|id| live.values().filter(|r| &r.integration_id == id).collect())
                .unwrap_or_default();
            for key in &want {
                if !have.iter().any(|r| r.key == *key) {
                    p.push(
                        Node::new(Kind::IntegrationResponse, route.key.clone()),
                        ResourceChange::new(label(&route.key, key), Action::Create, vec![]),
                        ResponseOp::Create {
                            route: route.key.clone(),
                            key: key.to_string(),
                        },
                    );
                }
            }
            for r in have.iter().filter(|r| !want.contains(&r.key.as_str())) {
                let mut c = ResourceChange::new(label(&route.key, &r.key), Action::Delete, vec![])
                    .with_reason("the stack does not declare it");
                c.risk = None;
                p.push(
                    Node::new(Kind::IntegrationResponse, route.key.clone()),
                    c,
                    ResponseOp::Delete {
                        route: route.key.clone(),
                        integration_id: r.integration_id.clone(),
                        id: r.id.clone(),
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

async fn create(cx: &Cx, route: &str, key: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    let id = cx.integration_id(route)?;
    let (apigw, aws) = (&cx.aws.apigw, &cx.aws);
    create_once(
        &format!("creating {} (api {api_id})", label(route, key)),
        || async {
            apigw
                .create_integration_response()
                .api_id(&api_id)
                .integration_id(&id)
                .integration_response_key(key)
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| o.integration_response_id().unwrap_or_default().to_string())
        },
        || async {
            let found = read(aws, &api_id, &id)
                .await?
                .ok_or_else(|| Error::Vanished(format!("integration {route}")))?;
            Ok(found.into_iter().find(|r| r.key == key).map(|r| r.id))
        },
    )
    .await
    .map_err(|e| vanish_on_missing_api(e, &api_id))?;
    Ok(())
}

impl Op for ResponseOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                ResponseOp::Create { route, key } => create(cx, route, key).await,
                ResponseOp::Delete {
                    route,
                    integration_id,
                    id,
                } => {
                    let api_id = cx.api_id()?;
                    let what = format!("integration response {id} of {route} (api {api_id})");
                    api_delete(&what, || async {
                        cx.aws
                            .apigw
                            .delete_integration_response()
                            .api_id(&api_id)
                            .integration_id(integration_id)
                            .integration_response_id(id)
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
    use crate::stack::tests_support::stack;

    #[test]
    fn service_integrations_need_a_response_and_proxies_none() {
        let s = stack("s");
        assert_eq!(desired(s.route("$connect").unwrap()), ["/200/"]);
        assert_eq!(desired(s.route("$disconnect").unwrap()), ["/200/"]);
        assert!(desired(s.route("$default").unwrap()).is_empty());
    }
}
