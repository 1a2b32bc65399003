//! The stage and its deployments.
//!
//! A deployment is a snapshot of routes, integrations and responses; a change goes live
//! only when a new deployment is made and the stage points at it. wsconn records a
//! SHA-256 of the deployed configuration in each deployment's description: the desired
//! routes, integrations and templates, and the ids of the integrations and routes they
//! were wired to (a recreated integration has a new id, so it redeploys too). A new
//! deployment is made exactly when the stage's deployment does not carry the desired
//! hash (or there is no stage). Deployments no stage serves are deleted afterwards.
//! CreateDeployment has no client token: after a lost answer the deployment is looked
//! up by that description before it is ever sent again.

use super::{
    TagDelta, Tags, all_pages, api_delete, api_write, apply_apigw_tags, create_once, integration,
    route, tags_field, tags_value, vanished_or,
};
use crate::assets::sha256_hex;
use crate::aws::{self, Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::{Op, Step};
use crate::error::{self, Error, Result};
use crate::stack::Stack;
use crate::wait;
use aws_sdk_apigatewayv2::types::{Deployment, DeploymentStatus};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const HASH_PREFIX: &str = "wsconn config sha256:";
pub const NEW_DEPLOYMENT: &str = "(new deployment)";
pub const HASH_AFTER_APPLY: &str = "(known after apply)";

#[derive(Debug, Clone, PartialEq)]
pub struct LiveStage {
    pub name: String,
    pub deployment_id: Option<String>,
    pub description: Option<String>,
    pub tags: Tags,
}

/// The hash of everything a deployment snapshots: the desired routes and integrations,
/// and the ids of the integrations and routes that carry them.
pub fn config_hash(
    stack: &Stack,
    env: &AwsEnv,
    integration_ids: &BTreeMap<String, String>,
    route_ids: &BTreeMap<String, String>,
) -> String {
    let integrations: Vec<Value> = integration::desired(stack, env)
        .iter()
        .map(|s| {
            json!({"key": s.key, "id": integration_ids.get(s.key), "type": s.integration_type,
                        "method": s.method, "uri": s.uri, "credentials": s.credentials,
                        "templates": s.templates,
                        "template_selection_expression": s.template_selection_expression,
                        "responses": s.responses})
        })
        .collect();
    let routes: Vec<Value> = route::desired(stack)
        .iter()
        .map(|r| {
            json!({"key": r.key, "id": route_ids.get(&r.key),
                        "fields": route::fields_of(r).into_iter().collect::<Vec<_>>()})
        })
        .collect();
    let doc = json!({"route_selection_expression": stack.api.route_selection_expression,
                     "integrations": integrations, "routes": routes});
    sha256_hex(doc.to_string().as_bytes())
}

pub fn hash_of(d: &Deployment) -> Option<&str> {
    d.description().and_then(|s| s.strip_prefix(HASH_PREFIX))
}

/// GetStages (one call gives the stack's stage and any other). `None`: the API vanished.
pub async fn read_all(aws: &Aws, api_id: &str) -> Result<Option<Vec<LiveStage>>> {
    let pages = all_pages(|token| async move {
        match aws
            .gated(
                aws.apigw
                    .get_stages()
                    .api_id(api_id)
                    .set_next_token(token)
                    .send(),
            )
            .await
        {
            Ok(out) => Ok((
                out.items()
                    .iter()
                    .map(|s| {
                        Some(LiveStage {
                            name: s.stage_name().unwrap_or_default().to_string(),
                            deployment_id: s.deployment_id().map(String::from),
                            description: s.description().map(String::from),
                            tags: s.tags().cloned().unwrap_or_default().into_iter().collect(),
                        })
                    })
                    .collect(),
                out.next_token().map(String::from),
            )),
            Err(e) if error::code_of(&e) == Some("NotFoundException") => Ok((vec![None], None)),
            Err(e) => Err(error::aws(format!("listing stages of API {api_id}"), e)),
        }
    })
    .await?;
    Ok(pages.into_iter().collect())
}

/// GetDeployments. `None`: the API vanished.
pub async fn read_deployments(aws: &Aws, api_id: &str) -> Result<Option<Vec<Deployment>>> {
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
            Err(e) if error::code_of(&e) == Some("NotFoundException") => Ok((vec![None], None)),
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
pub enum StageOp {
    Deploy,
    CreateStage,
    UpdateStage { settings: bool, tags: TagDelta },
    DeleteStage(String),
    DeleteDeployment(String),
}

pub struct Desired {
    /// `None` while integrations or routes are still to be created (their ids, and so
    /// the hash, are known only after apply).
    pub hash: Option<String>,
    pub description: String,
    pub tags: Tags,
}

pub fn description(stack: &Stack) -> String {
    format!("WebSocket stage of wsconn stack {}", stack.name)
}

/// Pure planning of deployment, stage, other stages and stale deployments.
pub fn diff(
    stage: &str,
    want: &Desired,
    stages: &[LiveStage],
    deployments: &[Deployment],
) -> Vec<(Node, ResourceChange, StageOp)> {
    let live = stages.iter().find(|s| s.name == stage);
    let current = live
        .and_then(|s| s.deployment_id.as_deref())
        .and_then(|id| deployments.iter().find(|d| d.deployment_id() == Some(id)));
    let current_hash = current.and_then(hash_of);
    let redeploy = want.hash.is_none() || current_hash != want.hash.as_deref();
    let mut out = Vec::new();
    if redeploy {
        let desired = want.hash.as_deref().unwrap_or(HASH_AFTER_APPLY);
        let f = field("config_sha256", current_hash, desired)
            .into_iter()
            .collect();
        out.push((
            Node::one(Kind::Deployment),
            ResourceChange::new("deployment", Action::Create, f),
            StageOp::Deploy,
        ));
    }
    let keep = if redeploy {
        None
    } else {
        current.and_then(|d| d.deployment_id())
    };
    let desired_deployment: Value = match keep {
        Some(id) => id.into(),
        None => NEW_DEPLOYMENT.into(),
    };
    let resource = format!("stage {stage}");
    match live {
        None => {
            let fields = created_fields(vec![
                ("deployment", desired_deployment),
                ("description", want.description.clone().into()),
                ("tags", tags_value(&want.tags)),
            ]);
            out.push((
                Node::one(Kind::Stage),
                ResourceChange::new(resource, Action::Create, fields),
                StageOp::CreateStage,
            ));
        }
        Some(l) => {
            let dep = field("deployment", l.deployment_id.clone(), desired_deployment);
            let desc = field(
                "description",
                l.description.clone(),
                want.description.clone(),
            );
            let tags = tags_field(&l.tags, &want.tags);
            let op = StageOp::UpdateStage {
                settings: dep.is_some() || desc.is_some(),
                tags: TagDelta::between(&l.tags, &want.tags),
            };
            let fields: Vec<_> = [dep, desc, tags].into_iter().flatten().collect();
            if !fields.is_empty() {
                out.push((
                    Node::one(Kind::Stage),
                    ResourceChange::new(resource, Action::Update, fields),
                    op,
                ));
            }
        }
    }
    // Stages the stack does not define (a previous --stage, one made by hand).
    for other in stages.iter().filter(|s| s.name != stage) {
        let c = ResourceChange::new(format!("stage {}", other.name), Action::Delete, vec![])
            .with_reason(format!("the stack defines stage {stage} only"));
        out.push((
            Node::new(Kind::StageCleanup, other.name.clone()),
            c,
            StageOp::DeleteStage(other.name.clone()),
        ));
    }
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
                StageOp::DeleteDeployment(id.to_string()),
            ));
        }
    }
    out
}

/// Integration ids and route ids by route key.
pub type Ids<'a> = (&'a BTreeMap<String, String>, &'a BTreeMap<String, String>);

/// `live`: the API's stages and deployments (`None` for a new API); `ids`: the kept
/// integration and route ids when no integration or route is created by this plan.
pub fn plan(
    stack: &Stack,
    env: &AwsEnv,
    live: Option<(&[LiveStage], &[Deployment])>,
    ids: Option<Ids<'_>>,
) -> Vec<Step> {
    let want = Desired {
        hash: ids.map(|(i, r)| config_hash(stack, env, i, r)),
        description: description(stack),
        tags: stack.tags.clone(),
    };
    let (stages, deployments) = live.unwrap_or((&[], &[]));
    diff(&stack.stage, &want, stages, deployments)
        .into_iter()
        .map(|(node, c, op)| Step::new(node, c, op))
        .collect()
}

async fn deploy(cx: &Cx, api_id: &str) -> Result<()> {
    let apigw = &cx.aws.apigw;
    let hash = {
        let f = cx.facts();
        config_hash(&cx.stack, &cx.env, &f.integration_ids, &f.route_ids)
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
            Ok(read_deployments(&cx.aws, api_id)
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
        if e.code() == Some("NotFoundException") {
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

async fn update_stage(cx: &Cx, api_id: &str, settings: bool, tags: &TagDelta) -> Result<()> {
    let stage = &cx.stack.stage;
    if settings {
        let deployment = cx.facts().deployment_id.clone();
        api_write(|| async {
            cx.aws
                .apigw
                .update_stage()
                .api_id(api_id)
                .stage_name(stage)
                .set_deployment_id(deployment.clone())
                .description(description(&cx.stack))
                .send()
                .await
                .map_err(|e| {
                    vanished_or(
                        format!("stage {stage}"),
                        format!("updating stage {stage} (api {api_id})"),
                        e,
                    )
                })
        })
        .await?;
    }
    let arn = cx.env.stage_arn(api_id, stage);
    apply_apigw_tags(cx, &arn, &format!("stage {stage} (api {api_id})"), tags).await
}

async fn create_stage(cx: &Cx, api_id: &str) -> Result<()> {
    let apigw = &cx.aws.apigw;
    let stage = &cx.stack.stage;
    let deployment = cx.facts().deployment_id.clone();
    let created = create_once(
        &format!("creating stage {stage} (api {api_id})"),
        || async {
            apigw
                .create_stage()
                .api_id(api_id)
                .stage_name(stage)
                .set_deployment_id(deployment.clone())
                .description(description(&cx.stack))
                .set_tags(Some(cx.desired_tags().into_iter().collect()))
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| o.stage_name().unwrap_or_default().to_string())
        },
        || async {
            Ok(read_all(&cx.aws, api_id)
                .await?
                .unwrap_or_default()
                .into_iter()
                .find(|s| &s.name == stage)
                .map(|s| s.name))
        },
    )
    .await;
    match created {
        Ok(_) => Ok(()),
        // Someone made it just now: make it what the stack wants.
        Err(e) if error::is_already_exists(&e) => {
            let tags = TagDelta {
                set: cx.desired_tags(),
                remove: vec![],
            };
            update_stage(cx, api_id, true, &tags).await
        }
        Err(e) if e.code() == Some("NotFoundException") => {
            Err(Error::Vanished(format!("WebSocket API {api_id}")))
        }
        Err(e) => Err(e),
    }
}

impl Op for StageOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let api_id = cx.api_id()?;
            let apigw = &cx.aws.apigw;
            match self {
                StageOp::Deploy => deploy(cx, &api_id).await,
                StageOp::CreateStage => create_stage(cx, &api_id).await,
                StageOp::UpdateStage { settings, tags } => {
                    update_stage(cx, &api_id, *settings, tags).await
                }
                StageOp::DeleteStage(name) => {
                    api_delete(&format!("extra stage {name} (api {api_id})"), || async {
                        apigw
                            .delete_stage()
                            .api_id(&api_id)
                            .stage_name(name)
                            .send()
                            .await
                            .map(|_| ())
                    })
                    .await
                }
                StageOp::DeleteDeployment(id) => {
                    api_delete(&format!("stale deployment {id} (api {api_id})"), || async {
                        apigw
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

    fn dep(id: &str, hash: &str) -> Deployment {
        Deployment::builder()
            .deployment_id(id)
            .description(format!("{HASH_PREFIX}{hash}"))
            .build()
    }

    fn want() -> Desired {
        Desired {
            hash: Some("h1".into()),
            description: "d".into(),
            tags: Tags::new(),
        }
    }

    fn live(id: &str) -> LiveStage {
        LiveStage {
            name: "api".into(),
            deployment_id: Some(id.into()),
            description: Some("d".into()),
            tags: Tags::new(),
        }
    }

    fn other(name: &str) -> LiveStage {
        LiveStage {
            name: name.into(),
            ..live("a")
        }
    }

    #[test]
    fn matching_hash_means_no_deployment() {
        assert!(diff("api", &want(), &[live("a")], &[dep("a", "h1")]).is_empty());
    }

    #[test]
    fn unknown_ids_always_redeploy() {
        let w = Desired {
            hash: None,
            ..want()
        };
        let steps = diff("api", &w, &[live("a")], &[dep("a", "h1")]);
        assert_eq!(steps[0].1.resource, "deployment");
        assert_eq!(steps[0].1.fields[0].desired, HASH_AFTER_APPLY);
    }

    #[test]
    fn changed_hash_deploys_moves_the_stage_and_removes_the_old_deployment() {
        let steps = diff("api", &want(), &[live("a")], &[dep("a", "h0")]);
        let kinds: Vec<_> = steps
            .iter()
            .map(|(_, c, _)| (c.resource.as_str(), c.action))
            .collect();
        assert_eq!(
            kinds,
            [
                ("deployment", Action::Create),
                ("stage api", Action::Update),
                ("deployment a", Action::Delete)
            ]
        );
        assert_eq!(steps[1].1.fields[0].desired, NEW_DEPLOYMENT);
    }

    #[test]
    fn stale_deployments_are_removed_even_in_sync() {
        let steps = diff(
            "api",
            &want(),
            &[live("a")],
            &[dep("a", "h1"), dep("b", "h0")],
        );
        assert_eq!(steps.len(), 1);
        assert!(matches!(steps[0].2, StageOp::DeleteDeployment(ref id) if id == "b"));
    }

    #[test]
    fn a_hand_made_deployment_without_hash_is_replaced() {
        let d = Deployment::builder()
            .deployment_id("m")
            .description("manual")
            .build();
        let steps = diff("api", &want(), &[live("m")], &[d]);
        assert_eq!(steps[0].1.action, Action::Create);
    }

    #[test]
    fn other_stages_are_deleted_and_deployment_cleanup_needs_no_consent() {
        let steps = diff(
            "api",
            &want(),
            &[live("a"), other("old")],
            &[dep("a", "h1"), dep("b", "h0")],
        );
        assert!(matches!(steps[0].2, StageOp::DeleteStage(ref n) if n == "old"));
        assert!(steps[0].1.risk.is_some());
        assert!(matches!(steps[1].2, StageOp::DeleteDeployment(ref id) if id == "b"));
        assert_eq!(steps[1].1.risk, None);
    }

    #[test]
    fn missing_stage_is_created_on_a_new_deployment() {
        let steps = diff("api", &want(), &[], &[]);
        assert_eq!(steps.len(), 2);
        assert!(matches!(steps[1].2, StageOp::CreateStage));
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
        let a = config_hash(&stack, &env, &ids, &none);
        assert_eq!(a, config_hash(&stack, &env, &ids, &none));
        let other: BTreeMap<String, String> = [("$connect".to_string(), "i2".to_string())].into();
        assert_ne!(a, config_hash(&stack, &env, &other, &none));
        let mut edited = stack.clone();
        if let crate::stack::IntegrationDef::DynamoDb { template, .. } =
            &mut edited.routes[0].integration
        {
            template.text.push_str("\n## edit");
        }
        assert_ne!(a, config_hash(&edited, &env, &ids, &none));
    }
}
