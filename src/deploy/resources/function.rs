//! The `$default` route's Lambda function (it echoes the event).
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
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::{Op, Step};
use crate::error::{self, Error, Result};
use crate::stack::Stack;
use crate::wait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, LastUpdateStatus, Runtime, State,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub fields: Vec<(&'static str, Value)>,
    pub tags: Tags,
}

/// Fields set by UpdateFunctionCode; the rest go through UpdateFunctionConfiguration.
const CODE_FIELDS: &[&str] = &["code_sha256", "architecture"];

pub fn desired(stack: &Stack, env: &AwsEnv) -> Spec {
    let f = &stack.function;
    Spec {
        fields: vec![
            ("runtime", f.runtime.into()),
            ("handler", f.handler.into()),
            ("memory_mb", f.memory_mb.into()),
            ("timeout_s", f.timeout_s.into()),
            ("role", env.role_arn(&f.role).into()),
            ("code_sha256", f.sha256.clone().into()),
            ("architecture", f.architecture.into()),
            ("environment", json!({})),
        ],
        tags: stack.tags.clone(),
    }
}

#[derive(Debug)]
pub enum FunctionOp {
    Create,
    Update {
        code: bool,
        config: bool,
        tags: TagDelta,
    },
    Replace,
    /// Wait until Active with no update in progress.
    Ready,
    Delete,
}

pub fn label(stack: &Stack) -> String {
    format!("function {}", stack.function.name)
}

fn not_found<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    error::code_of(e) == Some("ResourceNotFoundException")
}

/// GetFunction: configuration, state and tags in one call.
pub async fn read(aws: &Aws, name: &str) -> Result<Option<LiveFunction>> {
    let out = match aws
        .gated(aws.lambda.get_function().function_name(name).send())
        .await
    {
        Ok(o) => o,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(error::aws(format!("reading function {name}"), e)),
    };
    let Some(c) = out.configuration() else {
        return Ok(None);
    };
    let env: serde_json::Map<String, Value> = c
        .environment()
        .and_then(|e| e.variables())
        .map(|v| {
            v.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    let fields = vec![
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
    ];
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
        state_reason: c
            .state_reason_code()
            .map(|r| r.as_str().to_string())
            .or_else(|| c.state_reason().map(String::from)),
    }))
}

pub fn diff(
    resource: &str,
    spec: &Spec,
    live: Option<&LiveFunction>,
) -> Option<(ResourceChange, FunctionOp)> {
    let Some(live) = live else {
        let mut f = spec.fields.clone();
        f.push(("tags", tags_value(&spec.tags)));
        return Some((
            ResourceChange::new(resource, Action::Create, created_fields(f)),
            FunctionOp::Create,
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
        return Some((c, FunctionOp::Replace));
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
        code,
        config,
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    (!fields.is_empty()).then(|| (ResourceChange::new(resource, Action::Update, fields), op))
}

/// The function's step and, when it creates or updates, the wait until it is Active.
pub fn plan(stack: &Stack, env: &AwsEnv, live: Option<&LiveFunction>) -> Result<Vec<Step>> {
    if let Some(l) = live {
        check_owned(&label(stack), &l.tags, &stack.name)?;
    }
    let Some((c, op)) = diff(&label(stack), &desired(stack, env), live) else {
        return Ok(vec![]);
    };
    let update_only_tags = matches!(
        &op,
        FunctionOp::Update {
            code: false,
            config: false,
            ..
        }
    );
    let mut steps = vec![Step::new(Node::one(Kind::Function), c, op)];
    if !update_only_tags {
        steps.push(Step::internal(
            Node::one(Kind::FunctionReady),
            format!("  function {} becoming Active", stack.function.name),
            FunctionOp::Ready,
        ));
    }
    Ok(steps)
}

pub fn plan_destroy(stack: &Stack, live: Option<&LiveFunction>) -> Result<Vec<Step>> {
    let Some(live) = live else { return Ok(vec![]) };
    check_owned(&label(stack), &live.tags, &stack.name)?;
    Ok(vec![Step::new(
        Node::one(Kind::Function),
        ResourceChange::new(label(stack), Action::Delete, vec![])
            .with_reason("its resource policy (the permission) goes with it"),
        FunctionOp::Delete,
    )])
}

/// Waits until the function is Active and no update is in progress; Failed is an error
/// carrying the state reason code.
async fn wait_ready(cx: &Cx) -> Result<()> {
    let name = &cx.stack.function.name;
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

async fn create(cx: &Cx) -> Result<()> {
    let f = &cx.stack.function;
    let name = &f.name;
    let code = FunctionCode::builder()
        .zip_file(Blob::new(f.zip.clone()))
        .build();
    let req = cx
        .aws
        .lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::from(f.runtime))
        .handler(f.handler)
        .memory_size(f.memory_mb)
        .timeout(f.timeout_s)
        .role(cx.env.role_arn(&f.role))
        .architectures(Architecture::from(f.architecture))
        .environment(Environment::builder().build())
        .code(code)
        .set_tags(Some(cx.desired_tags().into_iter().collect()));
    let created = wait::retrying(PROPAGATION, error::is_lambda_retryable, || async {
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
                .ok_or_else(|| Error::Vanished(label(&cx.stack)))?;
            check_owned(&label(&cx.stack), &live.tags, &cx.stack.name)?;
            match diff(&label(&cx.stack), &desired(&cx.stack, &cx.env), Some(&live)) {
                Some((_, FunctionOp::Update { code, config, tags })) => {
                    update(cx, code, config, &tags).await
                }
                Some((_, FunctionOp::Replace)) => {
                    delete(cx).await?;
                    Box::pin(create(cx)).await
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(e),
    }
}

async fn delete(cx: &Cx) -> Result<()> {
    let name = &cx.stack.function.name;
    match cx
        .aws
        .lambda
        .delete_function()
        .function_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(error::aws(format!("deleting function {name}"), e)),
    }
}

async fn update(cx: &Cx, code: bool, config: bool, tags: &TagDelta) -> Result<()> {
    let f = &cx.stack.function;
    let name = &f.name;
    let lambda = &cx.aws.lambda;
    if code {
        wait_ready(cx).await?;
        wait::retrying(PROPAGATION, error::is_lambda_retryable, || async {
            lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(f.zip.clone()))
                .architectures(Architecture::from(f.architecture))
                .send()
                .await
                .map_err(|e| error::aws(format!("updating the code of function {name}"), e))
        })
        .await?;
    }
    if config {
        wait_ready(cx).await?;
        wait::retrying(PROPAGATION, error::is_lambda_retryable, || async {
            lambda
                .update_function_configuration()
                .function_name(name)
                .runtime(Runtime::from(f.runtime))
                .handler(f.handler)
                .memory_size(f.memory_mb)
                .timeout(f.timeout_s)
                .role(cx.env.role_arn(&f.role))
                .environment(
                    Environment::builder()
                        .set_variables(Some(Default::default()))
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
                FunctionOp::Create => create(cx).await,
                FunctionOp::Update { code, config, tags } => update(cx, *code, *config, tags).await,
                FunctionOp::Replace => {
                    delete(cx).await?;
                    create(cx).await
                }
                FunctionOp::Ready => match wait_ready(cx).await {
                    // Created before its role's permissions propagated: the only remedy
                    // is recreating it.
                    Err(e) if e.code() == Some("InsufficientRolePermissions") => {
                        delete(cx).await?;
                        create(cx).await?;
                        wait_ready(cx).await
                    }
                    other => other,
                },
                FunctionOp::Delete => delete(cx).await,
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
        assert!(matches!(op, FunctionOp::Replace));
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
