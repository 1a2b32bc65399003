//! The stage: where the API is served (`wss://…/<stage>`), pointing at a deployment.
//! Stages the stack does not define (a previous `--stage`, one made by hand) are deleted,
//! with consent. A stage with its deployment's hash is current; whether a new
//! deployment is made is the deployment kind's decision, planned before this one.

use super::version::NEW_VERSION;
use super::{
    TagDelta, Tags, all_pages, api, api_delete, api_write, apply_apigw_tags, create_once,
    tags_field, tags_value, vanished_or,
};
use crate::aws::{self, Aws};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Place, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::Stack;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const NEW_DEPLOYMENT: &str = "(new deployment)";

#[derive(Debug, Clone, PartialEq)]
pub struct LiveStage {
    pub name: String,
    pub deployment_id: Option<String>,
    pub description: Option<String>,
    pub tags: Tags,
    /// Throttling, logging level and access log, as [`settings`] names them.
    pub settings: Vec<(&'static str, Value)>,
}

pub fn description(stack: &Stack) -> String {
    format!("WebSocket stage of wsconn stack {}", stack.name)
}

/// GetStages (one call gives the stack's stage and any other). `None`: the API vanished.
pub async fn list(aws: &Aws, api_id: &str) -> Result<Option<Vec<LiveStage>>> {
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
                            settings: live_settings(s),
                        })
                    })
                    .collect(),
                out.next_token().map(String::from),
            )),
            Err(e) if error::is_not_found(&e) => Ok((vec![None], None)),
            Err(e) => Err(error::aws(format!("listing stages of API {api_id}"), e)),
        }
    })
    .await?;
    Ok(pages.into_iter().collect())
}

/// The stage settings wsconn.toml declares, by field: only what a section names is
/// managed (without `[throttling]`, throttling is left as it is).
pub fn settings(stack: &Stack, env: &crate::aws::AwsEnv) -> Vec<(&'static str, Value)> {
    let s = &stack.stage_settings;
    let mut out = Vec::new();
    if let Some(t) = s.throttling {
        out.push(("throttling_burst_limit", t.burst_limit.into()));
        out.push(("throttling_rate_limit", t.rate_limit.into()));
    }
    if let Some(level) = &s.logging_level {
        out.push(("logging_level", level.clone().into()));
        let (dest, format) = match &s.access_log_group {
            Some(g) => (
                Value::from(env.log_group_arn(g)),
                Value::from(crate::stack::ACCESS_LOG_FORMAT),
            ),
            None => (Value::Null, Value::Null),
        };
        out.push(("access_log_destination", dest));
        out.push(("access_log_format", format));
    }
    out
}

fn live_settings(s: &aws_sdk_apigatewayv2::types::Stage) -> Vec<(&'static str, Value)> {
    let r = s.default_route_settings();
    let access = s.access_log_settings();
    vec![
        (
            "throttling_burst_limit",
            r.and_then(|r| r.throttling_burst_limit()).into(),
        ),
        (
            "throttling_rate_limit",
            r.and_then(|r| r.throttling_rate_limit()).into(),
        ),
        (
            "logging_level",
            r.and_then(|r| r.logging_level())
                .map(|l| l.as_str().to_string())
                .unwrap_or_else(|| "OFF".into())
                .into(),
        ),
        (
            "access_log_destination",
            access
                .and_then(|a| a.destination_arn())
                .filter(|d| !d.is_empty())
                .into(),
        ),
        (
            "access_log_format",
            access
                .and_then(|a| a.format())
                .filter(|f| !f.is_empty())
                .into(),
        ),
    ]
}

/// Fields wanted and had, for the fields wanted.
fn settings_fields(
    want: &[(&'static str, Value)],
    have: &[(&'static str, Value)],
) -> Vec<crate::deploy::plan::FieldChange> {
    want.iter()
        .filter_map(|(name, w)| {
            let h = have
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            let same = match (w.as_f64(), h.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                _ => *w == h,
            };
            if same {
                None
            } else {
                field(name, h, w.clone())
            }
        })
        .collect()
}

#[derive(Debug)]
pub enum StageOp {
    /// `deployment`: an existing deployment to serve; `None` for the one this run makes.
    CreateStage {
        deployment: Option<String>,
    },
    UpdateStage {
        deployment: Option<String>,
        settings: bool,
        tags: TagDelta,
    },
    DeleteStage(String),
    /// Only point the stage at this deployment (`wsconn rollback`): the stage's settings
    /// stay as they are.
    Switch(String),
}

pub struct Desired {
    /// The deployment the stage should point at: the current one's id, or
    /// [`NEW_DEPLOYMENT`] when this plan makes one.
    pub deployment: Value,
    pub description: String,
    pub tags: Tags,
    pub settings: Vec<(&'static str, Value)>,
}

/// Pure planning of the stack's stage and the other stages.
pub fn diff(
    stage: &str,
    want: &Desired,
    stages: &[&LiveStage],
) -> Vec<(Node, ResourceChange, StageOp)> {
    let mut out = Vec::new();
    let resource = format!("stage {stage}");
    let deployment = want
        .deployment
        .as_str()
        .filter(|d| *d != NEW_DEPLOYMENT)
        .map(String::from);
    match stages.iter().find(|s| s.name == stage) {
        None => {
            let mut fields = vec![
                ("deployment", want.deployment.clone()),
                ("description", want.description.clone().into()),
            ];
            fields.extend(want.settings.iter().cloned());
            fields.push(("tags", tags_value(&want.tags)));
            let fields = created_fields(fields);
            out.push((
                Node::one(Kind::Stage),
                ResourceChange::new(resource, Action::Create, fields),
                StageOp::CreateStage { deployment },
            ));
        }
        Some(l) => {
            let dep = field(
                "deployment",
                l.deployment_id.clone(),
                want.deployment.clone(),
            );
            let desc = field(
                "description",
                l.description.clone(),
                want.description.clone(),
            );
            let tags = tags_field(&l.tags, &want.tags);
            let changed = settings_fields(&want.settings, &l.settings);
            let op = StageOp::UpdateStage {
                deployment,
                settings: dep.is_some() || desc.is_some() || !changed.is_empty(),
                tags: TagDelta::between(&l.tags, &want.tags),
            };
            let mut fields: Vec<_> = [dep, desc].into_iter().flatten().collect();
            fields.extend(changed);
            fields.extend(tags);
            if !fields.is_empty() {
                out.push((
                    Node::one(Kind::Stage),
                    ResourceChange::new(resource, Action::Update, fields),
                    op,
                ));
            }
        }
    }
    for other in stages.iter().filter(|s| s.name != stage) {
        let c = ResourceChange::new(format!("stage {}", other.name), Action::Delete, vec![])
            .with_reason(format!("the stack defines stage {stage} only"));
        out.push((
            Node::new(Kind::StageCleanup, other.name.clone()),
            c,
            StageOp::DeleteStage(other.name.clone()),
        ));
    }
    out
}

/// The kind: the API's stages, keyed by name.
pub struct Stage;

impl Resource for Stage {
    type Live = LiveStage;
    const NAME: &'static str = "stage";
    const PLACE: Place = Place::InsideApi;

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveStage>>> {
        Box::pin(async move {
            let Some(found) = api::found(rd).await? else {
                return Ok(Instances::new());
            };
            let Some(all) = list(rd.aws, &found.id).await? else {
                rd.api_vanished();
                return Ok(Instances::new());
            };
            Ok(all.into_iter().map(|s| (s.name.clone(), s)).collect())
        })
    }

    /// Planned after the deployment kind: a new deployment moves the stage.
    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live_in_api::<Stage>();
        let current = live
            .get(&p.stack.stage)
            .and_then(|s| s.deployment_id.clone());
        let deployment: Value = match p.release.clone().or(current.clone()) {
            Some(id) if !p.creates(Kind::Deployment) => id.into(),
            _ => NEW_DEPLOYMENT.into(),
        };
        let want = Desired {
            deployment,
            description: description(p.stack),
            tags: p.stack.tags.clone(),
            settings: settings(p.stack, p.env),
        };
        let stages: Vec<&LiveStage> = live.values().collect();
        // What the switch changes, shown on the switch itself: each function's version
        // before (as the live release records it) and after.
        // Set by the deployment kind, planned before this one.
        let serving = p.serving.clone();
        let after: BTreeMap<String, String> = p
            .versions
            .iter()
            .map(|(f, v)| (f.clone(), v.clone().unwrap_or_else(|| NEW_VERSION.into())))
            .collect();
        for (node, mut c, op) in diff(&p.stack.stage, &want, &stages) {
            if node.kind == Kind::Stage && c.fields.iter().any(|f| f.field == "deployment") {
                let before = serving.as_ref().map(|m| json!(m.versions));
                c.fields.extend(field("versions", before, json!(after)));
                if serving.as_ref().is_some_and(|m| !m.is_release()) {
                    c = c.with_reason(
                        "the one-time move to releases: from this switch on the stage serves published versions, never $LATEST, and wsconn rollback can switch it back",
                    );
                } else {
                    c = c.with_reason("the switch: the one call that changes what clients get");
                }
            }
            p.push(node, c, op);
        }
        Ok(())
    }

    /// Deleting the API deletes its stages.
    fn plan_destroy(_: &mut Planner<'_>) -> Result<()> {
        Ok(())
    }
}

/// `DefaultRouteSettings` when wsconn.toml declares throttling or logging; `None` leaves
/// them as they are (and a stack without those sections sends exactly what it did).
fn route_settings(stack: &Stack) -> Option<aws_sdk_apigatewayv2::types::RouteSettings> {
    use aws_sdk_apigatewayv2::types::{LoggingLevel, RouteSettings};
    let s = &stack.stage_settings;
    if s.throttling.is_none() && s.logging_level.is_none() {
        return None;
    }
    Some(
        RouteSettings::builder()
            .set_throttling_burst_limit(s.throttling.map(|t| t.burst_limit))
            .set_throttling_rate_limit(s.throttling.map(|t| t.rate_limit))
            .set_logging_level(s.logging_level.as_deref().map(LoggingLevel::from))
            .build(),
    )
}

/// `AccessLogSettings` when `[logging]` is declared: the access log group, or none (an
/// empty setting turns a live access log off).
fn access_log(cx: &Cx) -> Option<aws_sdk_apigatewayv2::types::AccessLogSettings> {
    use aws_sdk_apigatewayv2::types::AccessLogSettings;
    let s = &cx.stack.stage_settings;
    s.logging_level.as_ref()?;
    Some(match &s.access_log_group {
        Some(g) => AccessLogSettings::builder()
            .destination_arn(cx.env.log_group_arn(g))
            .format(crate::stack::ACCESS_LOG_FORMAT)
            .build(),
        None => AccessLogSettings::builder().build(),
    })
}

/// UpdateStage: the switch to `deployment` (or to the one this run made), with the
/// stage's settings in the same call.
async fn update_stage(
    cx: &Cx,
    api_id: &str,
    deployment: Option<&str>,
    settings: bool,
    tags: &TagDelta,
) -> Result<()> {
    let stage = &cx.stack.stage;
    if settings {
        let deployment = deployment
            .map(String::from)
            .or_else(|| cx.facts().deployment_id.clone());
        api_write(|| async {
            cx.aws
                .apigw
                .update_stage()
                .api_id(api_id)
                .stage_name(stage)
                .set_deployment_id(deployment.clone())
                .description(description(&cx.stack))
                .set_default_route_settings(route_settings(&cx.stack))
                .set_access_log_settings(access_log(cx))
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

async fn create_stage(cx: &Cx, api_id: &str, serve: Option<&str>) -> Result<()> {
    let apigw = &cx.aws.apigw;
    let stage = &cx.stack.stage;
    let deployment = serve
        .map(String::from)
        .or_else(|| cx.facts().deployment_id.clone());
    let created = create_once(
        &format!("creating stage {stage} (api {api_id})"),
        || async {
            apigw
                .create_stage()
                .api_id(api_id)
                .stage_name(stage)
                .set_deployment_id(deployment.clone())
                .description(description(&cx.stack))
                .set_default_route_settings(route_settings(&cx.stack))
                .set_access_log_settings(access_log(cx))
                .set_tags(Some(cx.desired_tags().into_iter().collect()))
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| o.stage_name().unwrap_or_default().to_string())
        },
        || async {
            Ok(list(&cx.aws, api_id)
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
            update_stage(cx, api_id, deployment.as_deref(), true, &tags).await
        }
        Err(e) if e.is_not_found() => Err(Error::Vanished(format!("WebSocket API {api_id}"))),
        Err(e) => Err(e),
    }
}

impl Op for StageOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let api_id = cx.api_id()?;
            match self {
                StageOp::CreateStage { deployment } => {
                    create_stage(cx, &api_id, deployment.as_deref()).await
                }
                StageOp::UpdateStage {
                    deployment,
                    settings,
                    tags,
                } => update_stage(cx, &api_id, deployment.as_deref(), *settings, tags).await,
                StageOp::Switch(id) => {
                    let stage = &cx.stack.stage;
                    api_write(|| async {
                        cx.aws
                            .apigw
                            .update_stage()
                            .api_id(&api_id)
                            .stage_name(stage)
                            .deployment_id(id)
                            .send()
                            .await
                            .map_err(|e| {
                                vanished_or(
                                    format!("stage {stage}"),
                                    format!(
                                        "switching stage {stage} to deployment {id} (api {api_id})"
                                    ),
                                    e,
                                )
                            })
                    })
                    .await?;
                    cx.facts().deployment_id = Some(id.clone());
                    Ok(())
                }
                StageOp::DeleteStage(name) => {
                    api_delete(&format!("extra stage {name} (api {api_id})"), || async {
                        cx.aws
                            .apigw
                            .delete_stage()
                            .api_id(&api_id)
                            .stage_name(name)
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

    fn want(deployment: &str) -> Desired {
        Desired {
            deployment: deployment.into(),
            description: "d".into(),
            tags: Tags::new(),
            settings: vec![],
        }
    }

    fn live(id: &str) -> LiveStage {
        LiveStage {
            name: "api".into(),
            deployment_id: Some(id.into()),
            description: Some("d".into()),
            tags: Tags::new(),
            settings: vec![],
        }
    }

    fn other(name: &str) -> LiveStage {
        LiveStage {
            name: name.into(),
            ..live("a")
        }
    }

    #[test]
    fn a_stage_on_its_deployment_is_in_sync() {
        assert!(diff("api", &want("a"), &[&live("a")]).is_empty());
    }

    #[test]
    fn a_new_deployment_moves_the_stage() {
        let steps = diff("api", &want(NEW_DEPLOYMENT), &[&live("a")]);
        assert_eq!(steps[0].1.resource, "stage api");
        assert_eq!(steps[0].1.fields[0].desired, NEW_DEPLOYMENT);
        assert!(matches!(
            steps[0].2,
            StageOp::UpdateStage { settings: true, .. }
        ));
    }

    #[test]
    fn other_stages_are_deleted_with_consent() {
        let steps = diff("api", &want("a"), &[&live("a"), &other("old")]);
        assert!(matches!(steps[0].2, StageOp::DeleteStage(ref n) if n == "old"));
        assert!(steps[0].1.risk.is_some());
    }

    #[test]
    fn declared_settings_are_compared_field_by_field() {
        let mut w = want("a");
        w.settings = vec![
            ("throttling_burst_limit", 100.into()),
            ("throttling_rate_limit", 50.0.into()),
        ];
        let mut l = live("a");
        l.settings = vec![
            ("throttling_burst_limit", 100.into()),
            ("throttling_rate_limit", 50.into()),
            ("logging_level", "INFO".into()),
        ];
        // 50 and 50.0 are the same rate; an undeclared level is not compared.
        assert!(diff("api", &w, &[&l]).is_empty());
        l.settings[0].1 = 5000.into();
        let steps = diff("api", &w, &[&l]);
        assert_eq!(steps[0].1.fields.len(), 1);
        assert_eq!(steps[0].1.fields[0].field, "throttling_burst_limit");
        assert!(matches!(
            steps[0].2,
            StageOp::UpdateStage { settings: true, .. }
        ));
    }

    #[test]
    fn a_missing_stage_is_created() {
        let steps = diff("api", &want(NEW_DEPLOYMENT), &[]);
        assert_eq!(steps.len(), 1);
        assert!(matches!(
            steps[0].2,
            StageOp::CreateStage { deployment: None }
        ));
    }
}
