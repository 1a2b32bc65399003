//! Lambda functions, keyed by name: the `$default` route's (the built-in echo by
//! default) and, as the stack declares them, one per route.
//!
//! AWS behaviours handled (aws-notes):
//! - A fresh role "cannot be assumed by Lambda" for a while, so CreateFunction and
//!   configuration updates are retried on a dense schedule.
//! - CreateFunction's ResourceConflictException "already exist" means someone just
//!   created it (another run, or this run's own first attempt): re-read, check
//!   ownership, finish as an update.
//! - A function is usable only once `State=Active`, and while `LastUpdateStatus` is
//!   InProgress further updates fail, so an update is: wait → code → wait →
//!   configuration; the final wait is its own step ([`Kind::FunctionReady`]) so the
//!   permission (which needs the function to exist, not to be Active) runs beside it.
//! - A function that reaches `Failed` (InsufficientRolePermissions, when it was created
//!   before its role propagated) is deleted and created again.

use super::{TagDelta, Tags, check_owned, tags_field, tags_value};
use crate::aws::{Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::{Op, Step};
use crate::error::{self, Error, Result};
use crate::stack::{EnvValue, FunctionDef, Stack};
use crate::wait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, Runtime,
    State,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Terraform's provider retries IAM propagation for up to 5 minutes.
const PROPAGATION: Duration = Duration::from_secs(300);
const READY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
pub struct LiveFunction {
    pub arn: String,
    pub fields: Vec<(&'static str, Value)>,
    pub tags: Tags,
    /// Pending, Active, Inactive or Failed.
    pub state: String,
    pub state_reason: Option<String>,
    /// Changes with every update of `$LATEST`: PublishVersion's guard.
    pub revision_id: Option<String>,
    /// Pending, or an update in progress: not yet ready to publish or update.
    pub busy: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub fields: Vec<(&'static str, Value)>,
    pub tags: Tags,
}

/// Fields set by UpdateFunctionCode; the rest go through UpdateFunctionConfiguration.
const CODE_FIELDS: &[&str] = &["code_sha256", "architecture"];

/// The function's variables as Lambda holds them: the @connections URL is filled in
/// from the API's id (`api_id`: `None` while the API is still to be made).
pub fn variables(
    stack: &Stack,
    f: &FunctionDef,
    env: &AwsEnv,
    api_id: Option<&str>,
) -> BTreeMap<String, String> {
    f.environment
        .iter()
        .map(|(k, v)| {
            let v = match (v, api_id) {
                (EnvValue::Text(t), _) => t.clone(),
                (EnvValue::ConnectionsUrl, Some(id)) => env.connections_url(id, &stack.stage),
                (EnvValue::ConnectionsUrl, None) => super::UNKNOWN_API.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The package's `CodeSha256`, or what is shown when it was not packaged (a bug).
fn code_sha256(f: &FunctionDef) -> String {
    f.package
        .as_ref()
        .map(|p| p.sha256.clone())
        .unwrap_or_else(|| "(not packaged)".into())
}

pub fn desired(stack: &Stack, f: &FunctionDef, env: &AwsEnv, api_id: Option<&str>) -> Spec {
    Spec {
        fields: vec![
            ("runtime", f.runtime.into()),
            ("handler", f.handler.clone().into()),
            ("memory_mb", f.memory_mb.into()),
            ("timeout_s", f.timeout_s.into()),
            ("role", env.role_arn(&f.role).into()),
            ("code_sha256", code_sha256(f).into()),
            ("architecture", f.architecture.into()),
            ("environment", json!(variables(stack, f, env, api_id))),
        ],
        tags: stack.tags.clone(),
    }
}

#[derive(Debug)]
pub enum FunctionOp {
    Create(String),
    Update {
        name: String,
        code: bool,
        config: bool,
        tags: TagDelta,
    },
    Replace(String),
    /// Wait until Active with no update in progress.
    Ready(String),
    Delete(String),
}

pub fn label(name: &str) -> String {
    format!("function {name}")
}

/// The compared fields of a function's configuration ($LATEST's, or a published
/// version's), in the order [`desired`] gives them.
pub fn config_fields(c: &FunctionConfiguration) -> Vec<(&'static str, Value)> {
    let env: serde_json::Map<String, Value> = c
        .environment()
        .and_then(|e| e.variables())
        .map(|v| {
            v.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    vec![
        (
            "runtime",
            c.runtime().map(|r| r.as_str().to_string()).into(),
        ),
        ("handler", c.handler().into()),
        ("memory_mb", c.memory_size().into()),
        ("timeout_s", c.timeout().into()),
        ("role", c.role().into()),
        ("code_sha256", c.code_sha256().into()),
        (
            "architecture",
            c.architectures()
                .first()
                .map(|a| a.as_str().to_string())
                .unwrap_or_else(|| "x86_64".into())
                .into(),
        ),
        ("environment", Value::Object(env)),
    ]
}

/// GetFunction: configuration, state and tags in one call.
pub async fn read(aws: &Aws, name: &str) -> Result<Option<LiveFunction>> {
    let out = match aws
        .gated(aws.lambda.get_function().function_name(name).send())
        .await
    {
        Ok(o) => o,
        Err(e) if error::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(error::aws(format!("reading function {name}"), e)),
    };
    let Some(c) = out.configuration() else {
        return Ok(None);
    };
    let fields = config_fields(c);
    Ok(Some(LiveFunction {
        arn: c.function_arn().unwrap_or_default().to_string(),
        fields,
        tags: out
            .tags()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        state: c
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "Active".into()),
        revision_id: c.revision_id().map(String::from),
        busy: c.state() == Some(&State::Pending)
            || c.last_update_status() == Some(&LastUpdateStatus::InProgress),
        state_reason: c
            .state_reason_code()
            .map(|r| r.as_str().to_string())
            .or_else(|| c.state_reason().map(String::from)),
    }))
}

pub fn diff(
    name: &str,
    spec: &Spec,
    live: Option<&LiveFunction>,
) -> Option<(ResourceChange, FunctionOp)> {
    let resource = label(name);
    let Some(live) = live else {
        let mut f = spec.fields.clone();
        f.push(("tags", tags_value(&spec.tags)));
        return Some((
            ResourceChange::new(resource, Action::Create, created_fields(f)),
            FunctionOp::Create(name.to_string()),
        ));
    };
    if live.state == "Failed" {
        let f = field("state", live.state.as_str(), "Active")
            .into_iter()
            .collect();
        let c = ResourceChange::new(resource, Action::Replace, f).with_reason(format!(
            "the function is Failed ({}); the only remedy is to create it again",
            live.state_reason.as_deref().unwrap_or("no reason given")
        ));
        return Some((c, FunctionOp::Replace(name.to_string())));
    }
    let mut fields = Vec::new();
    let (mut code, mut config) = (false, false);
    for (name, want) in &spec.fields {
        let have = live
            .fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        if let Some(f) = field(name, have, want.clone()) {
            if CODE_FIELDS.contains(name) {
                code = true
            } else {
                config = true
            }
            fields.push(f);
        }
    }
    fields.extend(tags_field(&live.tags, &spec.tags));
    let op = FunctionOp::Update {
        name: name.to_string(),
        code,
        config,
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    (!fields.is_empty()).then(|| (ResourceChange::new(resource, Action::Update, fields), op))
}

/// The kind: every function of the stack, keyed by name.
pub struct Function;

impl Resource for Function {
    type Live = LiveFunction;
    const NAME: &'static str = "function";

    /// The declared functions, and those the stack no longer declares (found by their
    /// log groups) that carry its tag.
    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveFunction>>> {
        Box::pin(async move {
            let declared = async {
                futures::future::try_join_all(rd.stack.functions.iter().map(|f| async {
                    Ok::<_, Error>(read(rd.aws, &f.name).await?.map(|l| (f.name.clone(), l)))
                }))
                .await
            };
            let removed = super::log_group::leftovers(
                rd,
                |f| f.to_string(),
                |n| rd.stack.function(n).is_some(),
                |n| async move { read(rd.aws, &n).await },
                |l: &LiveFunction| &l.tags,
            );
            let (a, b) = futures::try_join!(declared, removed)?;
            Ok(a.into_iter().flatten().chain(b).collect())
        })
    }

    /// Each function's step and, when it creates or updates, the wait until it is Active.
    /// A function the stack no longer declares is deleted (its resource policy with it).
    fn plan(p: &mut Planner<'_>) -> Result<()> {
        for name in p.live::<Function>().keys() {
            if p.stack.function(name).is_none() {
                p.push(
                    Node::new(Kind::FunctionCleanup, name.clone()),
                    ResourceChange::new(label(name), Action::Delete, vec![])
                        .with_reason("wsconn.toml no longer declares its route"),
                    FunctionOp::Delete(name.clone()),
                );
            }
        }
        for f in &p.stack.functions {
            let live = p.snap.get::<Function>(&f.name);
            if let Some(l) = &live {
                check_owned(&label(&f.name), &l.tags, &p.stack.name)?;
            }
            let api_id = super::api::kept_id(p);
            let want = desired(p.stack, f, p.env, api_id.as_deref());
            let Some((c, op)) = diff(&f.name, &want, live.as_ref()) else {
                continue;
            };
            let update_only_tags = matches!(
                &op,
                FunctionOp::Update {
                    code: false,
                    config: false,
                    ..
                }
            );
            p.push(Node::new(Kind::Function, f.name.clone()), c, op);
            if !update_only_tags {
                p.steps.push(Step::internal(
                    Node::new(Kind::FunctionReady, f.name.clone()),
                    format!("  function {} becoming Active", f.name),
                    FunctionOp::Ready(f.name.clone()),
                ));
            }
        }
        Ok(())
    }

    /// Every function of the stack: declared (checked for ownership) or found with its
    /// tag.
    fn plan_destroy(p: &mut Planner<'_>) -> Result<()> {
        for (name, live) in p.live::<Function>().iter() {
            check_owned(&label(name), &live.tags, &p.stack.name)?;
            p.push(
                Node::new(Kind::Function, name.clone()),
                ResourceChange::new(label(name), Action::Delete, vec![])
                    .with_reason("its resource policy (the permission) goes with it"),
                FunctionOp::Delete(name.clone()),
            );
        }
        Ok(())
    }
}

fn def<'a>(cx: &'a Cx, name: &str) -> Result<&'a FunctionDef> {
    cx.stack
        .function(name)
        .ok_or_else(|| Error::Conflict(format!("function {name} is not part of the stack")))
}

/// Waits until the function is Active and no update is in progress; Failed is an error
/// carrying the state reason code.
pub async fn wait_ready(cx: &Cx, name: &str) -> Result<()> {
    wait::until(
        &format!("waiting for function {name} to become Active"),
        READY,
        || async {
            let c = cx
                .aws
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .map_err(|e| error::aws(format!("reading function {name}"), e))?;
            if c.state() == Some(&State::Failed)
                || c.last_update_status() == Some(&LastUpdateStatus::Failed)
            {
                return Err(Error::Aws {
                    doing: format!("function {name}"),
                    code: c
                        .state_reason_code()
                        .map(|r| r.as_str().to_string())
                        .or_else(|| {
                            c.last_update_status_reason_code()
                                .map(|r| r.as_str().to_string())
                        }),
                    message: c
                        .state_reason()
                        .or(c.last_update_status_reason())
                        .unwrap_or("entered state Failed")
                        .to_string(),
                });
            }
            let busy = c.state() == Some(&State::Pending)
                || c.last_update_status() == Some(&LastUpdateStatus::InProgress);
            Ok((!busy).then_some(()))
        },
    )
    .await
}

/// The function's variables with the API's id as this run knows it (only a handler's
/// CONNECTIONS_URL needs it).
fn applied_variables(cx: &Cx, f: &FunctionDef) -> Result<BTreeMap<String, String>> {
    let needs_api = f
        .environment
        .values()
        .any(|v| *v == EnvValue::ConnectionsUrl);
    let api_id = if needs_api { Some(cx.api_id()?) } else { None };
    Ok(variables(&cx.stack, f, &cx.env, api_id.as_deref()))
}

/// The environment as Lambda takes it: none at all when there are no variables (the
/// built-in echo is created exactly as before functions had variables).
fn environment(cx: &Cx, f: &FunctionDef) -> Result<Environment> {
    let vars = applied_variables(cx, f)?;
    Ok(Environment::builder()
        .set_variables((!vars.is_empty()).then(|| vars.into_iter().collect()))
        .build())
}

/// The function's package; every function is packaged before a plan is made.
fn package(f: &FunctionDef) -> Result<&crate::assets::Package> {
    f.package.as_ref().ok_or_else(|| {
        Error::Conflict(format!("function {}: its handler was not packaged", f.name))
    })
}

async fn create(cx: &Cx, name: &str) -> Result<()> {
    let f = def(cx, name)?;
    let pkg = package(f)?;
    let code = FunctionCode::builder()
        .zip_file(Blob::new(pkg.zip.clone()))
        .build();
    let req = cx
        .aws
        .lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::from(f.runtime))
        .handler(&f.handler)
        .memory_size(f.memory_mb)
        .timeout(f.timeout_s)
        .role(cx.env.role_arn(&f.role))
        .architectures(Architecture::from(f.architecture))
        .environment(environment(cx, f)?)
        .code(code)
        .set_tags(Some(cx.desired_tags().into_iter().collect()));
    let spacing = wait::upload_spacing(pkg.zip.len());
    let created =
        wait::retrying_spaced(PROPAGATION, spacing, error::is_lambda_retryable, || async {
            req.clone()
                .send()
                .await
                .map_err(|e| error::aws(format!("creating function {name}"), e))
        })
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if error::is_already_exists(&e) => {
            let live = read(&cx.aws, name)
                .await?
                .ok_or_else(|| Error::Vanished(label(name)))?;
            check_owned(&label(name), &live.tags, &cx.stack.name)?;
            let api_id = cx.facts().api_id.clone();
            match diff(
                name,
                &desired(&cx.stack, f, &cx.env, api_id.as_deref()),
                Some(&live),
            ) {
                Some((
                    _,
                    FunctionOp::Update {
                        code, config, tags, ..
                    },
                )) => update(cx, name, code, config, &tags).await,
                Some((_, FunctionOp::Replace(_))) => {
                    delete(cx, name).await?;
                    Box::pin(create(cx, name)).await
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(e),
    }
}

async fn delete(cx: &Cx, name: &str) -> Result<()> {
    match cx
        .aws
        .lambda
        .delete_function()
        .function_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if error::is_not_found(&e) => Ok(()),
        Err(e) => Err(error::aws(format!("deleting function {name}"), e)),
    }
}

async fn update(cx: &Cx, name: &str, code: bool, config: bool, tags: &TagDelta) -> Result<()> {
    let f = def(cx, name)?;
    let lambda = &cx.aws.lambda;
    if code {
        wait_ready(cx, name).await?;
        let pkg = package(f)?;
        let spacing = wait::upload_spacing(pkg.zip.len());
        wait::retrying_spaced(PROPAGATION, spacing, error::is_lambda_retryable, || async {
            lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(pkg.zip.clone()))
                .architectures(Architecture::from(f.architecture))
                .send()
                .await
                .map_err(|e| error::aws(format!("updating the code of function {name}"), e))
        })
        .await?;
    }
    if config {
        wait_ready(cx, name).await?;
        let vars = applied_variables(cx, f)?;
        wait::retrying(PROPAGATION, error::is_lambda_retryable, || async {
            lambda
                .update_function_configuration()
                .function_name(name)
                .runtime(Runtime::from(f.runtime))
                .handler(&f.handler)
                .memory_size(f.memory_mb)
                .timeout(f.timeout_s)
                .role(cx.env.role_arn(&f.role))
                // An empty map clears variables someone set by hand.
                .environment(
                    Environment::builder()
                        .set_variables(Some(vars.clone().into_iter().collect()))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    error::aws(format!("updating the configuration of function {name}"), e)
                })
        })
        .await?;
    }
    let arn = cx.env.function_arn(name);
    if !tags.remove.is_empty() {
        lambda
            .untag_resource()
            .resource(&arn)
            .set_tag_keys(Some(tags.remove.clone()))
            .send()
            .await
            .map_err(|e| error::aws(format!("removing tags from function {name}"), e))?;
    }
    if !tags.set.is_empty() {
        lambda
            .tag_resource()
            .resource(&arn)
            .set_tags(Some(tags.set.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| error::aws(format!("tagging function {name}"), e))?;
    }
    Ok(())
}

impl Op for FunctionOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                FunctionOp::Create(name) => create(cx, name).await,
                FunctionOp::Update {
                    name,
                    code,
                    config,
                    tags,
                } => update(cx, name, *code, *config, tags).await,
                FunctionOp::Replace(name) => {
                    delete(cx, name).await?;
                    create(cx, name).await
                }
                FunctionOp::Ready(name) => match wait_ready(cx, name).await {
                    // Created before its role's permissions propagated: the only remedy
                    // is recreating it.
                    Err(e) if e.code() == Some("InsufficientRolePermissions") => {
                        delete(cx, name).await?;
                        create(cx, name).await?;
                        wait_ready(cx, name).await
                    }
                    other => other,
                },
                FunctionOp::Delete(name) => delete(cx, name).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            fields: vec![
                ("runtime", "nodejs24.x".into()),
                ("code_sha256", "abc".into()),
                ("memory_mb", 128.into()),
            ],
            tags: Tags::new(),
        }
    }

    #[test]
    fn code_and_configuration_changes_are_told_apart() {
        let s = spec();
        let live = LiveFunction {
            arn: "a".into(),
            fields: s.fields.clone(),
            tags: Tags::new(),
            state: "Active".into(),
            state_reason: None,
            revision_id: None,
            busy: false,
        };
        assert!(diff("f", &s, Some(&live)).is_none());
        let mut l = live.clone();
        l.fields[1].1 = "def".into();
        let (c, op) = diff("f", &s, Some(&l)).unwrap();
        assert_eq!(c.fields[0].field, "code_sha256");
        assert!(matches!(
            op,
            FunctionOp::Update {
                code: true,
                config: false,
                ..
            }
        ));
        let mut failed = live.clone();
        failed.state = "Failed".into();
        failed.state_reason = Some("InsufficientRolePermissions".into());
        let (c, op) = diff("f", &s, Some(&failed)).unwrap();
        assert_eq!(c.action, Action::Replace);
        assert!(c.reason.unwrap().contains("InsufficientRolePermissions"));
        assert!(matches!(op, FunctionOp::Replace(_)));
        let mut l = live;
        l.fields[0].1 = "nodejs16.x".into();
        let (_, op) = diff("f", &s, Some(&l)).unwrap();
        assert!(matches!(
            op,
            FunctionOp::Update {
                code: false,
                config: true,
                ..
            }
        ));
    }
}
