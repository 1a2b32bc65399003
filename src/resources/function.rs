//! The `$default` route's Lambda function (it echoes the event).
//!
//! AWS behaviours handled (aws-notes): a fresh role "cannot be assumed by Lambda" for a
//! while, so CreateFunction is retried; a function is usable only once `State=Active`,
//! and while `LastUpdateStatus=InProgress` further updates fail, so the order is create →
//! wait Active → update code → wait → update configuration → wait. A function that
//! reaches `Failed` with `InsufficientRolePermissions` is deleted and created again.

use super::{Resource, Step, TagDelta, Tags, check_owned, tags_field, tags_value};
use crate::engine::Cx;
use crate::error::{self, Error, Result};
use crate::plan::{Action, ResourceChange, created_fields, field};
use crate::wait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, LastUpdateStatus, Runtime, State,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;

pub const RUNTIME: &str = "nodejs24.x";
pub const HANDLER: &str = "index.handler";
pub const MEMORY_MB: i32 = 128;
pub const TIMEOUT_S: i32 = 10;
/// Graviton: cheaper per GB-second, and the echo handler has no native code.
pub const ARCHITECTURE: &str = "arm64";
/// Terraform's provider retries IAM propagation for up to 5 minutes.
const PROPAGATION: Duration = Duration::from_secs(300);
const READY: Duration = Duration::from_secs(300);

pub struct Function;

#[derive(Debug, Clone, PartialEq)]
pub struct LiveFunction {
    pub arn: String,
    pub fields: Vec<(&'static str, Value)>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub fields: Vec<(&'static str, Value)>,
    pub tags: Tags,
}

/// Fields set by UpdateFunctionCode; the rest go through UpdateFunctionConfiguration.
const CODE_FIELDS: &[&str] = &["code_sha256", "architecture"];

pub fn desired(cx: &Cx) -> Spec {
    Spec {
        fields: vec![
            ("runtime", RUNTIME.into()),
            ("handler", HANDLER.into()),
            ("memory_mb", MEMORY_MB.into()),
            ("timeout_s", TIMEOUT_S.into()),
            ("role", cx.aws.env.role_arn(&cx.names.function_role).into()),
            ("code_sha256", cx.assets.lambda_sha256.clone().into()),
            ("architecture", ARCHITECTURE.into()),
            ("environment", json!({})),
        ],
        tags: cx.desired_tags(),
    }
}

#[derive(Debug)]
pub enum Op {
    Create,
    Update {
        code: bool,
        config: bool,
        tags: TagDelta,
    },
    Delete,
}

fn label(cx: &Cx) -> String {
    format!("function {}", cx.names.function)
}

pub async fn read(cx: &Cx) -> Result<Option<LiveFunction>> {
    let name = &cx.names.function;
    let out = match cx
        .aws
        .lambda
        .get_function()
        .function_name(name)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
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
    }))
}

pub fn diff(
    resource: &str,
    spec: &Spec,
    live: Option<&LiveFunction>,
) -> Option<(ResourceChange, Op)> {
    let Some(live) = live else {
        let mut f = spec.fields.clone();
        f.push(("tags", tags_value(&spec.tags)));
        return Some((
            ResourceChange::new(resource, Action::Create, created_fields(f)),
            Op::Create,
        ));
    };
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
    let op = Op::Update {
        code,
        config,
        tags: TagDelta::between(&live.tags, &spec.tags),
    };
    (!fields.is_empty()).then(|| (ResourceChange::new(resource, Action::Update, fields), op))
}

/// Waits until the function is Active and no update is in progress.
async fn wait_ready(cx: &Cx) -> Result<()> {
    let name = &cx.names.function;
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
    let name = &cx.names.function;
    let role = cx.aws.env.role_arn(&cx.names.function_role);
    let code = FunctionCode::builder()
        .zip_file(Blob::new(cx.assets.lambda_zip.clone()))
        .build();
    let req = cx
        .aws
        .lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::from(RUNTIME))
        .handler(HANDLER)
        .memory_size(MEMORY_MB)
        .timeout(TIMEOUT_S)
        .role(role)
        .architectures(Architecture::from(ARCHITECTURE))
        .environment(Environment::builder().build())
        .code(code)
        .set_tags(Some(cx.desired_tags().into_iter().collect()));
    wait::retrying(PROPAGATION, error::is_lambda_retryable, || async {
        req.clone()
            .send()
            .await
            .map_err(|e| error::aws(format!("creating function {name}"), e))
    })
    .await?;
    wait_ready(cx).await
}

async fn delete(cx: &Cx) -> Result<()> {
    let name = &cx.names.function;
    match cx
        .aws
        .lambda
        .delete_function()
        .function_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(error::aws(format!("deleting function {name}"), e)),
    }
}

async fn update(cx: &Cx, code: bool, config: bool, tags: &TagDelta) -> Result<()> {
    let name = &cx.names.function;
    let lambda = &cx.aws.lambda;
    wait_ready(cx).await?;
    if code {
        wait::retrying(PROPAGATION, error::is_lambda_retryable, || async {
            lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(cx.assets.lambda_zip.clone()))
                .architectures(Architecture::from(ARCHITECTURE))
                .send()
                .await
                .map_err(|e| error::aws(format!("updating the code of function {name}"), e))
        })
        .await?;
        wait_ready(cx).await?;
    }
    if config {
        wait::retrying(PROPAGATION, error::is_lambda_retryable, || async {
            lambda
                .update_function_configuration()
                .function_name(name)
                .runtime(Runtime::from(RUNTIME))
                .handler(HANDLER)
                .memory_size(MEMORY_MB)
                .timeout(TIMEOUT_S)
                .role(cx.aws.env.role_arn(&cx.names.function_role))
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
        wait_ready(cx).await?;
    }
    let arn = cx.aws.env.function_arn(name);
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

impl Resource for Function {
    fn plan<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let live = read(cx).await?;
            if let Some(l) = &live {
                check_owned(&label(cx), &l.tags, cx.stack())?;
            }
            Ok(diff(&label(cx), &desired(cx), live.as_ref())
                .map(|(c, op)| Step::new(c, op))
                .into_iter()
                .collect())
        })
    }

    fn plan_destroy<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let Some(live) = read(cx).await? else {
                return Ok(vec![]);
            };
            check_owned(&label(cx), &live.tags, cx.stack())?;
            Ok(vec![Step::new(
                ResourceChange::new(label(cx), Action::Delete, vec![]),
                Op::Delete,
            )])
        })
    }

    fn apply<'a>(&'a self, cx: &'a Cx, step: &'a Step) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match step.op::<Op>() {
                Op::Create => match create(cx).await {
                    // A function created before its role's permissions propagated can end
                    // up Failed/InsufficientRolePermissions; the only remedy is recreating it.
                    Err(e) if e.code() == Some("InsufficientRolePermissions") => {
                        delete(cx).await?;
                        create(cx).await
                    }
                    other => other,
                },
                Op::Update { code, config, tags } => update(cx, *code, *config, tags).await,
                Op::Delete => delete(cx).await,
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
                ("runtime", RUNTIME.into()),
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
        };
        assert!(diff("f", &s, Some(&live)).is_none());
        let mut l = live.clone();
        l.fields[1].1 = "def".into();
        let (c, op) = diff("f", &s, Some(&l)).unwrap();
        assert_eq!(c.fields[0].field, "code_sha256");
        assert!(matches!(
            op,
            Op::Update {
                code: true,
                config: false,
                ..
            }
        ));
        let mut l = live;
        l.fields[0].1 = "nodejs16.x".into();
        let (_, op) = diff("f", &s, Some(&l)).unwrap();
        assert!(matches!(
            op,
            Op::Update {
                code: false,
                config: true,
                ..
            }
        ));
    }
}
