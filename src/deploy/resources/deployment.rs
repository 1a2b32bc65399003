//! Deployments: snapshots of routes, integrations and their responses. A change goes
//! live only when a new deployment is made and the stage points at it.
//!
//! wsconn records a SHA-256 of the deployed configuration in each deployment's
//! description: the desired routes, integrations, responses and templates, and the ids
//! of the integrations and routes they were wired to (a recreated integration has a new
//! id, so it redeploys too). A new deployment is made exactly when the stage's
//! deployment does not carry the desired hash (or there is no stage). Deployments no
//! stage serves are deleted afterwards. CreateDeployment has no client token: after a
//! lost answer the deployment is looked up by that description before it is ever sent
//! again.

use super::stage::Stage;
use super::{
    all_pages, api, api_delete, create_once, integration, integration_response, route, vanished_or,
};
use crate::assets::sha256_hex;
use crate::aws::{self, Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Place, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::Stack;
use crate::wait;
use aws_sdk_apigatewayv2::types::DeploymentStatus;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

pub use aws_sdk_apigatewayv2::types::Deployment as LiveDeployment;

const HASH_PREFIX: &str = "wsconn config sha256:";
pub const HASH_AFTER_APPLY: &str = "(known after apply)";

/// The hash of everything a deployment snapshots: the desired routes and integrations
/// with their responses, and the ids of the integrations and routes that carry them.
pub fn config_hash(
    stack: &Stack,
    env: &AwsEnv,
    integration_ids: &BTreeMap<String, String>,
    route_ids: &BTreeMap<String, String>,
    authorizer_id: Option<&str>,
) -> String {
    let integrations: Vec<Value> = integration::desired(stack, env)
        .iter()
        .map(|s| {
            let responses = stack
                .route(&s.key)
                .map(integration_response::desired)
                .unwrap_or_default();
            json!({"key": s.key, "id": integration_ids.get(&s.key), "type": s.integration_type,
                        "method": s.method, "uri": s.uri, "credentials": s.credentials,
                        "templates": s.templates,
                        "template_selection_expression": s.template_selection_expression,
                        "responses": responses})
        })
        .collect();
    let routes: Vec<Value> = route::desired(stack)
        .iter()
        .map(|r| {
            let mut fields: Vec<(&str, Value)> = route::fields_of(r);
            // A route without an authorizer hashes as it did before routes had one, so
            // a stack deployed by an earlier wsconn is not redeployed for nothing.
            fields.retain(|(name, v)| !(*name == "authorizer" && v == "(none)"));
            let responses: Vec<&str> = stack
                .route(&r.key)
                .map(|d| vec![d.route_response])
                .unwrap_or_default();
            fields.push(("route_responses", json!(responses)));
            json!({"key": r.key, "id": route_ids.get(&r.key), "fields": fields})
        })
        .collect();
    let mut doc = json!({"route_selection_expression": stack.api.route_selection_expression,
                     "integrations": integrations, "routes": routes});
    if let Some(a) = &stack.authorizer {
        doc["authorizer"] =
            json!({"id": authorizer_id, "fields": super::authorizer::desired(a, env)});
    }
    sha256_hex(doc.to_string().as_bytes())
}

pub fn hash_of(d: &LiveDeployment) -> Option<&str> {
    d.description().and_then(|s| s.strip_prefix(HASH_PREFIX))
}

/// GetDeployments of the stack's API. `None`: the API vanished.
pub async fn list(aws: &Aws, api_id: &str) -> Result<Option<Vec<LiveDeployment>>> {
    let pages = all_pages(|token| async move {
        match aws
            .gated(
                aws.apigw
                    .get_deployments()
                    .api_id(api_id)
                    .set_next_token(token)
                    .send(),
            )
            .await
        {
            Ok(out) => Ok((
                out.items().iter().map(|d| Some(d.clone())).collect(),
                out.next_token().map(String::from),
            )),
            Err(e) if error::is_not_found(&e) => Ok((vec![None], None)),
            Err(e) => Err(error::aws(
                format!("listing deployments of API {api_id}"),
                e,
            )),
        }
    })
    .await?;
    Ok(pages.into_iter().collect())
}

#[derive(Debug)]
pub enum DeploymentOp {
    Deploy,
    Delete(String),
}

/// Pure planning: whether to make a new deployment (`want_hash` is `None` while ids are
/// still to be created), and which deployments to delete. `current` is the deployment
/// the stage points at now. Returns the steps and the deployment the stage keeps.
pub fn diff<'d>(
    want_hash: Option<&str>,
    current: Option<&'d LiveDeployment>,
    deployments: &'d [LiveDeployment],
) -> (Vec<(Node, ResourceChange, DeploymentOp)>, Option<&'d str>) {
    let current_hash = current.and_then(hash_of);
    let redeploy = want_hash.is_none() || current_hash != want_hash;
    let mut out = Vec::new();
    if redeploy {
        let f = field(
            "config_sha256",
            current_hash,
            want_hash.unwrap_or(HASH_AFTER_APPLY),
        )
        .into_iter()
        .collect();
        out.push((
            Node::one(Kind::Deployment),
            ResourceChange::new("deployment", Action::Create, f),
            DeploymentOp::Deploy,
        ));
    }
    let keep = if redeploy {
        None
    } else {
        current.and_then(|d| d.deployment_id())
    };
    for d in deployments {
        let id = d.deployment_id().unwrap_or_default();
        if Some(id) != keep {
            let mut c = ResourceChange::new(format!("deployment {id}"), Action::Delete, vec![])
                .with_reason("no stage serves it any more");
            // Superseded snapshots are housekeeping, not a destructive change to consent to.
            c.risk = None;
            out.push((
                Node::new(Kind::DeploymentCleanup, id),
                c,
                DeploymentOp::Delete(id.to_string()),
            ));
        }
    }
    (out, keep)
}

/// The kind: the API's deployments, keyed by id.
pub struct Deployment;

impl Resource for Deployment {
    type Live = LiveDeployment;
    const NAME: &'static str = "deployment";
    const PLACE: Place = Place::InsideApi;

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveDeployment>>> {
        Box::pin(async move {
            let Some(found) = api::found(rd).await? else {
                return Ok(Instances::new());
            };
            let Some(all) = list(rd.aws, &found.id).await? else {
                rd.api_vanished();
                return Ok(Instances::new());
            };
            Ok(all
                .into_iter()
                .map(|d| (d.deployment_id().unwrap_or_default().to_string(), d))
                .collect())
        })
    }

    /// New integrations or routes get new ids, so the deployed configuration's hash is
    /// known only after they exist: the kinds that make them are planned first.
    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let fresh_ids = p.fresh_api
            || p.creates(Kind::Integration)
            || p.creates(Kind::Route)
            || p.creates(Kind::Authorizer);
        let authorizer_id = super::authorizer::kept_id(p);
        let want = (!fresh_ids).then(|| {
            let w = p.wiring();
            config_hash(
                p.stack,
                p.env,
                &w.integrations,
                &w.routes,
                authorizer_id.as_deref(),
            )
        });
        let deployments: Vec<LiveDeployment> =
            p.live_in_api::<Deployment>().values().cloned().collect();
        let current = p
            .live_in_api::<Stage>()
            .get(&p.stack.stage)
            .and_then(|s| s.deployment_id.clone())
            .and_then(|id| {
                deployments
                    .iter()
                    .find(|d| d.deployment_id() == Some(id.as_str()))
                    .cloned()
            });
        let (steps, _) = diff(want.as_deref(), current.as_ref(), &deployments);
        for (node, c, op) in steps {
            p.push(node, c, op);
        }
        Ok(())
    }

    /// Deleting the API deletes its deployments.
    fn plan_destroy(_: &mut Planner<'_>) -> Result<()> {
        Ok(())
    }
}

async fn deploy(cx: &Cx, api_id: &str) -> Result<()> {
    let apigw = &cx.aws.apigw;
    let hash = {
        let f = cx.facts();
        config_hash(
            &cx.stack,
            &cx.env,
            &f.integration_ids,
            &f.route_ids,
            f.authorizer_id.as_deref(),
        )
    };
    let description = format!("{HASH_PREFIX}{hash}");
    // (id, still PENDING?)
    let (id, pending) = create_once(
        &format!("creating a deployment (api {api_id})"),
        || async {
            apigw
                .create_deployment()
                .api_id(api_id)
                .description(&description)
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| {
                    (
                        o.deployment_id().unwrap_or_default().to_string(),
                        o.deployment_status() != Some(&DeploymentStatus::Deployed),
                    )
                })
        },
        || async {
            Ok(list(&cx.aws, api_id)
                .await?
                .unwrap_or_default()
                .iter()
                .filter(|d| d.description() == Some(description.as_str()))
                .filter_map(|d| d.deployment_id().map(|id| (id.to_string(), true)))
                .min())
        },
    )
    .await
    .map_err(|e| {
        if e.is_not_found() {
            Error::Vanished(format!("WebSocket API {api_id}"))
        } else {
            e
        }
    })?;
    let failed = |msg: Option<&str>| Error::Aws {
        doing: format!("deployment {id} (api {api_id})"),
        code: Some("FAILED".into()),
        message: msg.unwrap_or("deployment failed").to_string(),
    };
    // CreateDeployment answers PENDING, DEPLOYED or FAILED; only PENDING is polled.
    if pending {
        wait::until(
            &format!("waiting for deployment {id} (api {api_id})"),
            Duration::from_secs(120),
            || async {
                let d = apigw
                    .get_deployment()
                    .api_id(api_id)
                    .deployment_id(&id)
                    .send()
                    .await
                    .map_err(|e| {
                        vanished_or(
                            format!("deployment {id}"),
                            format!("reading deployment {id} (api {api_id})"),
                            e,
                        )
                    })?;
                match d.deployment_status() {
                    Some(DeploymentStatus::Failed) => Err(failed(d.deployment_status_message())),
                    Some(DeploymentStatus::Pending) => Ok(None),
                    _ => Ok(Some(())),
                }
            },
        )
        .await?;
    }
    cx.facts().deployment_id = Some(id);
    Ok(())
}

impl Op for DeploymentOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let api_id = cx.api_id()?;
            match self {
                DeploymentOp::Deploy => deploy(cx, &api_id).await,
                DeploymentOp::Delete(id) => {
                    api_delete(&format!("stale deployment {id} (api {api_id})"), || async {
                        cx.aws
                            .apigw
                            .delete_deployment()
                            .api_id(&api_id)
                            .deployment_id(id)
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

    fn dep(id: &str, hash: &str) -> LiveDeployment {
        LiveDeployment::builder()
            .deployment_id(id)
            .description(format!("{HASH_PREFIX}{hash}"))
            .build()
    }

    fn kinds(steps: &[(Node, ResourceChange, DeploymentOp)]) -> Vec<(&str, Action)> {
        steps
            .iter()
            .map(|(_, c, _)| (c.resource.as_str(), c.action))
            .collect()
    }

    #[test]
    fn matching_hash_means_no_deployment() {
        let all = [dep("a", "h1")];
        let (steps, keep) = diff(Some("h1"), Some(&all[0]), &all);
        assert!(steps.is_empty());
        assert_eq!(keep, Some("a"));
    }

    #[test]
    fn unknown_ids_always_redeploy() {
        let all = [dep("a", "h1")];
        let (steps, keep) = diff(None, Some(&all[0]), &all);
        assert_eq!(steps[0].1.resource, "deployment");
        assert_eq!(steps[0].1.fields[0].desired, HASH_AFTER_APPLY);
        assert_eq!(keep, None);
    }

    #[test]
    fn changed_hash_deploys_and_removes_the_old_deployment_without_consent() {
        let all = [dep("a", "h0")];
        let (steps, _) = diff(Some("h1"), Some(&all[0]), &all);
        assert_eq!(
            kinds(&steps),
            [
                ("deployment", Action::Create),
                ("deployment a", Action::Delete)
            ]
        );
        assert_eq!(steps[1].1.risk, None);
    }

    #[test]
    fn stale_deployments_are_removed_even_in_sync() {
        let all = [dep("a", "h1"), dep("b", "h0")];
        let (steps, _) = diff(Some("h1"), Some(&all[0]), &all);
        assert_eq!(steps.len(), 1);
        assert!(matches!(steps[0].2, DeploymentOp::Delete(ref id) if id == "b"));
    }

    #[test]
    fn a_hand_made_deployment_without_hash_is_replaced() {
        let d = LiveDeployment::builder()
            .deployment_id("m")
            .description("manual")
            .build();
        let all = [d];
        let (steps, _) = diff(Some("h1"), Some(&all[0]), &all);
        assert_eq!(steps[0].1.action, Action::Create);
    }

    #[test]
    fn the_hash_covers_templates_and_ids() {
        let stack = crate::stack::tests_support::stack("h");
        let env = AwsEnv {
            region: "r".into(),
            account: "1".into(),
            partition: "aws".into(),
        };
        let ids: BTreeMap<String, String> = [("$connect".to_string(), "i1".to_string())].into();
        let none = BTreeMap::new();
        let a = config_hash(&stack, &env, &ids, &none, None);
        assert_eq!(a, config_hash(&stack, &env, &ids, &none, None));
        let other: BTreeMap<String, String> = [("$connect".to_string(), "i2".to_string())].into();
        assert_ne!(a, config_hash(&stack, &env, &other, &none, None));
        let mut edited = stack.clone();
        if let crate::stack::IntegrationDef::DynamoDb { template, .. } =
            &mut edited.routes[0].integration
        {
            template.text.push_str("\n## edit");
        }
        assert_ne!(a, config_hash(&edited, &env, &ids, &none, None));
    }
}
