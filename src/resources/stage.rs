//! The stage and its deployments.
//!
//! A deployment is a snapshot of routes, integrations and responses; a change goes live
//! only when a new deployment is made and the stage points at it. wsconn records a
//! SHA-256 of the desired API configuration in each deployment's description and makes a
//! new deployment exactly when the stage's deployment does not carry the desired hash
//! (or there is no stage). Deployments the stage no longer uses are deleted.

use super::{
    Resource, Step, TagDelta, Tags, all_pages, api, api_write, apply_apigw_tags, integration,
    route, tags_field, tags_value,
};
use crate::assets::sha256_hex;
use crate::engine::Cx;
use crate::error::{self, Error, Result};
use crate::plan::{Action, ResourceChange, created_fields, field};
use crate::wait;
use aws_sdk_apigatewayv2::types::{Deployment, DeploymentStatus};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;

const HASH_PREFIX: &str = "wsconn config sha256:";
pub const NEW_DEPLOYMENT: &str = "(new deployment)";

pub struct Stage;

/// The hash of everything a deployment snapshots, from the desired specs only (route
/// targets by integration key, so random ids never change it).
pub fn config_hash(cx: &Cx) -> String {
    let integrations: Vec<Value> = integration::desired(cx)
        .iter()
        .map(|s| json!({"key": s.key, "type": s.integration_type, "method": s.method, "uri": s.uri,
                        "credentials": s.credentials, "templates": s.templates,
                        "template_selection_expression": s.template_selection_expression, "responses": s.responses}))
        .collect();
    let routes: Vec<Value> = route::desired()
        .iter()
        .map(|r| json!({"key": r.key, "fields": route::fields_of(r).into_iter().collect::<Vec<_>>()}))
        .collect();
    let doc = json!({"route_selection_expression": api::ROUTE_SELECTION, "integrations": integrations, "routes": routes});
    sha256_hex(doc.to_string().as_bytes())
}

pub fn hash_of(d: &Deployment) -> Option<&str> {
    d.description().and_then(|s| s.strip_prefix(HASH_PREFIX))
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveStage {
    pub deployment_id: Option<String>,
    pub description: Option<String>,
    pub tags: Tags,
}

pub async fn read_stage(cx: &Cx, api_id: &str) -> Result<Option<LiveStage>> {
    let name = &cx.cfg.stage;
    match cx
        .aws
        .apigw
        .get_stage()
        .api_id(api_id)
        .stage_name(name)
        .send()
        .await
    {
        Ok(s) => Ok(Some(LiveStage {
            deployment_id: s.deployment_id().map(String::from),
            description: s.description().map(String::from),
            tags: s.tags().cloned().unwrap_or_default().into_iter().collect(),
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(error::aws(
            format!("reading stage {name} (api {api_id})"),
            e,
        )),
    }
}

/// Names of the API's stages other than the stack's own.
async fn read_other_stages(cx: &Cx, api_id: &str) -> Result<Vec<String>> {
    let stages = all_pages(|token| async move {
        let out = cx
            .aws
            .apigw
            .get_stages()
            .api_id(api_id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| error::aws(format!("listing stages of API {api_id}"), e))?;
        Ok((out.items().to_vec(), out.next_token().map(String::from)))
    })
    .await?;
    Ok(stages
        .iter()
        .filter_map(|s| s.stage_name())
        .filter(|n| *n != cx.cfg.stage)
        .map(String::from)
        .collect())
}

async fn read_deployments(cx: &Cx, api_id: &str) -> Result<Vec<Deployment>> {
    all_pages(|token| async move {
        let out = cx
            .aws
            .apigw
            .get_deployments()
            .api_id(api_id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| error::aws(format!("listing deployments of API {api_id}"), e))?;
        Ok((out.items().to_vec(), out.next_token().map(String::from)))
    })
    .await
}

#[derive(Debug)]
pub enum Op {
    Deploy,
    CreateStage,
    UpdateStage { settings: bool, tags: TagDelta },
    DeleteStage(String),
    DeleteDeployment(String),
}

pub struct Desired {
    pub hash: String,
    pub description: String,
    pub tags: Tags,
}

/// Pure planning of deployment, stage and stale deployments.
pub fn diff(
    stage: &str,
    want: &Desired,
    live: Option<&LiveStage>,
    other_stages: &[String],
    deployments: &[Deployment],
) -> Vec<(ResourceChange, Op)> {
    let current = live
        .and_then(|s| s.deployment_id.as_deref())
        .and_then(|id| deployments.iter().find(|d| d.deployment_id() == Some(id)));
    let current_hash = current.and_then(hash_of);
    let redeploy = current_hash != Some(want.hash.as_str());
    let mut out = Vec::new();
    if redeploy {
        let f = field("config_sha256", current_hash, want.hash.as_str())
            .into_iter()
            .collect();
        out.push((
            ResourceChange::new("deployment", Action::Create, f),
            Op::Deploy,
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
                ResourceChange::new(resource, Action::Create, fields),
                Op::CreateStage,
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
            let op = Op::UpdateStage {
                settings: dep.is_some() || desc.is_some(),
                tags: TagDelta::between(&l.tags, &want.tags),
            };
            let fields: Vec<_> = [dep, desc, tags].into_iter().flatten().collect();
            if !fields.is_empty() {
                out.push((ResourceChange::new(resource, Action::Update, fields), op));
            }
        }
    }
    // Stages the stack does not define (a previous --stage, one made by hand) go first,
    // so that no stage still points at a deployment about to be deleted.
    for name in other_stages {
        let c = ResourceChange::new(format!("stage {name}"), Action::Delete, vec![])
            .with_reason(format!("the stack defines stage {stage} only"));
        out.push((c, Op::DeleteStage(name.clone())));
    }
    for d in deployments {
        let id = d.deployment_id().unwrap_or_default();
        if Some(id) != keep {
            let mut c = ResourceChange::new(format!("deployment {id}"), Action::Delete, vec![])
                .with_reason("no stage serves it any more");
            // Superseded snapshots are housekeeping, not a destructive change to consent to.
            c.risk = None;
            out.push((c, Op::DeleteDeployment(id.to_string())));
        }
    }
    out
}

fn want(cx: &Cx) -> Desired {
    Desired {
        hash: config_hash(cx),
        description: format!("WebSocket stage of wsconn stack {}", cx.stack()),
        tags: cx.desired_tags(),
    }
}

async fn deploy(cx: &Cx, api_id: &str) -> Result<()> {
    let apigw = &cx.aws.apigw;
    let description = format!("{HASH_PREFIX}{}", config_hash(cx));
    let out = api_write(|| async {
        apigw
            .create_deployment()
            .api_id(api_id)
            .description(&description)
            .send()
            .await
            .map_err(|e| error::aws(format!("creating a deployment (api {api_id})"), e))
    })
    .await?;
    let id = out.deployment_id().unwrap_or_default().to_string();
    let failed = |msg: Option<&str>| Error::Aws {
        doing: format!("deployment {id} (api {api_id})"),
        code: Some("FAILED".into()),
        message: msg.unwrap_or("deployment failed").to_string(),
    };
    match out.deployment_status() {
        Some(DeploymentStatus::Failed) => return Err(failed(out.deployment_status_message())),
        Some(DeploymentStatus::Pending) => {
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
                            error::aws(format!("reading deployment {id} (api {api_id})"), e)
                        })?;
                    match d.deployment_status() {
                        Some(DeploymentStatus::Failed) => {
                            Err(failed(d.deployment_status_message()))
                        }
                        Some(DeploymentStatus::Pending) => Ok(None),
                        _ => Ok(Some(())),
                    }
                },
            )
            .await?;
        }
        _ => {}
    }
    cx.facts.lock().unwrap().deployment_id = Some(id);
    Ok(())
}

impl Resource for Stage {
    fn plan<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let (live, others, deployments) = match api::live_api(cx) {
                Some(a) => futures::try_join!(
                    read_stage(cx, &a.id),
                    read_other_stages(cx, &a.id),
                    read_deployments(cx, &a.id)
                )?,
                None => (None, vec![], vec![]),
            };
            if let Some(id) = live.as_ref().and_then(|l| l.deployment_id.clone()) {
                cx.facts.lock().unwrap().deployment_id = Some(id);
            }
            Ok(diff(
                &cx.cfg.stage,
                &want(cx),
                live.as_ref(),
                &others,
                &deployments,
            )
            .into_iter()
            .map(|(c, op)| Step::new(c, op))
            .collect())
        })
    }

    /// Deleting the API deletes its stages and deployments.
    fn plan_destroy<'a>(&'a self, _cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async { Ok(vec![]) })
    }

    fn apply<'a>(&'a self, cx: &'a Cx, step: &'a Step) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let api_id = cx.api_id()?;
            let apigw = &cx.aws.apigw;
            let stage = &cx.cfg.stage;
            let w = want(cx);
            let deployment = || cx.facts.lock().unwrap().deployment_id.clone();
            match step.op::<Op>() {
                Op::Deploy => deploy(cx, &api_id).await,
                Op::CreateStage => {
                    api_write(|| async {
                        apigw
                            .create_stage()
                            .api_id(&api_id)
                            .stage_name(stage)
                            .set_deployment_id(deployment())
                            .description(&w.description)
                            .set_tags(Some(w.tags.clone().into_iter().collect()))
                            .send()
                            .await
                            .map_err(|e| {
                                error::aws(format!("creating stage {stage} (api {api_id})"), e)
                            })
                    })
                    .await?;
                    Ok(())
                }
                Op::UpdateStage { settings, tags } => {
                    if *settings {
                        api_write(|| async {
                            apigw
                                .update_stage()
                                .api_id(&api_id)
                                .stage_name(stage)
                                .set_deployment_id(deployment())
                                .description(&w.description)
                                .send()
                                .await
                                .map_err(|e| {
                                    error::aws(format!("updating stage {stage} (api {api_id})"), e)
                                })
                        })
                        .await?;
                    }
                    let arn = cx.aws.env.stage_arn(&api_id, stage);
                    apply_apigw_tags(cx, &arn, &format!("stage {stage} (api {api_id})"), tags).await
                }
                Op::DeleteStage(name) => {
                    api_write(|| async {
                        match apigw
                            .delete_stage()
                            .api_id(&api_id)
                            .stage_name(name)
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
                            Err(e) => Err(error::aws(
                                format!("deleting extra stage {name} (api {api_id})"),
                                e,
                            )),
                        }
                    })
                    .await
                }
                Op::DeleteDeployment(id) => {
                    api_write(|| async {
                        match apigw
                            .delete_deployment()
                            .api_id(&api_id)
                            .deployment_id(id)
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
                            Err(e) => Err(error::aws(
                                format!("deleting stale deployment {id} (api {api_id})"),
                                e,
                            )),
                        }
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
            hash: "h1".into(),
            description: "d".into(),
            tags: Tags::new(),
        }
    }

    fn live(id: &str) -> LiveStage {
        LiveStage {
            deployment_id: Some(id.into()),
            description: Some("d".into()),
            tags: Tags::new(),
        }
    }

    #[test]
    fn matching_hash_means_no_deployment() {
        assert!(diff("api", &want(), Some(&live("a")), &[], &[dep("a", "h1")]).is_empty());
    }

    #[test]
    fn changed_hash_deploys_moves_the_stage_and_removes_the_old_deployment() {
        let steps = diff("api", &want(), Some(&live("a")), &[], &[dep("a", "h0")]);
        let kinds: Vec<_> = steps
            .iter()
            .map(|(c, _)| (c.resource.as_str(), c.action))
            .collect();
        assert_eq!(
            kinds,
            [
                ("deployment", Action::Create),
                ("stage api", Action::Update),
                ("deployment a", Action::Delete)
            ]
        );
        assert_eq!(steps[1].0.fields[0].desired, NEW_DEPLOYMENT);
    }

    #[test]
    fn stale_deployments_are_removed_even_in_sync() {
        let steps = diff(
            "api",
            &want(),
            Some(&live("a")),
            &[],
            &[dep("a", "h1"), dep("b", "h0")],
        );
        assert_eq!(steps.len(), 1);
        assert!(matches!(steps[0].1, Op::DeleteDeployment(ref id) if id == "b"));
    }

    #[test]
    fn a_hand_made_deployment_without_hash_is_replaced() {
        let d = Deployment::builder()
            .deployment_id("m")
            .description("manual")
            .build();
        let steps = diff("api", &want(), Some(&live("m")), &[], &[d]);
        assert_eq!(steps[0].0.action, Action::Create);
    }

    #[test]
    fn other_stages_go_before_their_deployments_and_cleanup_needs_no_consent() {
        let steps = diff(
            "api",
            &want(),
            Some(&live("a")),
            &["old".to_string()],
            &[dep("a", "h1"), dep("b", "h0")],
        );
        assert!(matches!(steps[0].1, Op::DeleteStage(ref n) if n == "old"));
        assert!(steps[0].0.risk.is_some());
        assert!(matches!(steps[1].1, Op::DeleteDeployment(ref id) if id == "b"));
        assert_eq!(steps[1].0.risk, None);
    }

    #[test]
    fn missing_stage_is_created_on_a_new_deployment() {
        let steps = diff("api", &want(), None, &[], &[]);
        assert_eq!(steps.len(), 2);
        assert!(matches!(steps[1].1, Op::CreateStage));
    }
}
