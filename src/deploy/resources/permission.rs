//! The function's resource policy statement letting API Gateway invoke it, scoped by
//! SourceArn to this API (the pattern's template has none, so any API Gateway in any
//! account could invoke the function).
//!
//! AWS behaviours handled (aws-notes): GetPolicy on a function without a policy answers
//! ResourceNotFoundException, meaning "no statements"; AddPermission right after
//! CreateFunction can answer ResourceNotFoundException, so it is retried; a statement
//! cannot be changed in place, so a change is RemovePermission then AddPermission; a
//! statement id that exists answers ResourceConflictException, so after a lost answer
//! the statement is read back and compared. Writes to one function's policy are
//! serialised by the engine (parallel AddPermission calls conflict).

use crate::aws::{Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::plan::{Action, ResourceChange, Risk, created_fields, field};
use crate::deploy::step::{Op, Step};
use crate::error::{self, Error, Result};
use crate::stack::Stack;
use crate::wait;
use futures::future::BoxFuture;
use serde_json::Value;
use std::time::Duration;

pub const PRINCIPAL: &str = "apigateway.amazonaws.com";
pub const ACTION: &str = "lambda:InvokeFunction";
/// Shown while the API (and so its id) does not exist yet.
pub const UNKNOWN_API: &str = "(API id known after apply)";

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub principal: Value,
    pub action: Value,
    pub source_arn: Value,
}

/// The statement wanted; `api_id` is `None` while the API is still to be created.
pub fn desired(env: &AwsEnv, api_id: Option<&str>) -> Statement {
    let source = match api_id {
        Some(id) => env.execute_api_arn(id),
        None => UNKNOWN_API.into(),
    };
    Statement {
        principal: PRINCIPAL.into(),
        action: ACTION.into(),
        source_arn: source.into(),
    }
}

/// Finds statement `sid` in a Lambda resource policy (a JSON string).
pub fn parse_statement(policy: &str, sid: &str) -> Option<Statement> {
    let doc: Value = serde_json::from_str(policy).ok()?;
    let st = doc
        .get("Statement")?
        .as_array()?
        .iter()
        .find(|s| s.get("Sid").and_then(Value::as_str) == Some(sid))?;
    let principal = match st.get("Principal") {
        Some(Value::Object(o)) => o
            .get("Service")
            .cloned()
            .unwrap_or(Value::Object(o.clone())),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    Some(Statement {
        principal,
        action: st.get("Action").cloned().unwrap_or(Value::Null),
        source_arn: st
            .pointer("/Condition/ArnLike/AWS:SourceArn")
            .cloned()
            .unwrap_or(Value::Null),
    })
}

pub async fn read(aws: &Aws, function: &str, sid: &str) -> Result<Option<Statement>> {
    match aws
        .gated(aws.lambda.get_policy().function_name(function).send())
        .await
    {
        Ok(o) => Ok(o.policy().and_then(|p| parse_statement(p, sid))),
        // No policy (or no function yet) means no statements.
        Err(e) if error::code_of(&e) == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(error::aws(
            format!("reading the resource policy of function {function}"),
            e,
        )),
    }
}

#[derive(Debug)]
pub enum PermissionOp {
    Add,
    RemoveThenAdd,
}

pub fn diff(
    resource: &str,
    want: &Statement,
    live: Option<&Statement>,
) -> Option<(ResourceChange, PermissionOp)> {
    let Some(live) = live else {
        let fields = created_fields(vec![
            ("principal", want.principal.clone()),
            ("action", want.action.clone()),
            ("source_arn", want.source_arn.clone()),
        ]);
        let c = ResourceChange::new(resource, Action::Create, fields)
            .with_risk(Some(Risk::WidensPermissions));
        return Some((c, PermissionOp::Add));
    };
    let fields: Vec<_> = [
        field("principal", live.principal.clone(), want.principal.clone()),
        field("action", live.action.clone(), want.action.clone()),
        field(
            "source_arn",
            live.source_arn.clone(),
            want.source_arn.clone(),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!fields.is_empty()).then(|| {
        let c = ResourceChange::new(resource, Action::Update, fields)
            .with_reason("a statement cannot change in place: it is removed, then added")
            .with_risk(Some(Risk::WidensPermissions));
        (c, PermissionOp::RemoveThenAdd)
    })
}

pub fn label(stack: &Stack) -> String {
    format!(
        "permission {} on function {}",
        stack.names.permission_sid, stack.function.name
    )
}

/// `api_id`: the live API the plan keeps, `None` when the plan creates it.
pub fn plan(
    stack: &Stack,
    env: &AwsEnv,
    live: Option<&Statement>,
    api_id: Option<&str>,
) -> Vec<Step> {
    diff(&label(stack), &desired(env, api_id), live)
        .map(|(c, op)| Step::new(Node::one(Kind::Permission), c, op))
        .into_iter()
        .collect()
}

fn not_found<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    error::code_of(e) == Some("ResourceNotFoundException")
}

async fn remove(cx: &Cx) -> Result<()> {
    let name = &cx.stack.function.name;
    let sid = &cx.stack.names.permission_sid;
    match cx
        .aws
        .lambda
        .remove_permission()
        .function_name(name)
        .statement_id(sid)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(error::aws(
            format!("removing permission {sid} from function {name}"),
            e,
        )),
    }
}

/// AddPermission answers ResourceNotFoundException until a new function is visible,
/// and ResourceConflictException while an update is in progress.
fn is_add_retryable(e: &Error) -> bool {
    error::is_function_not_visible_yet(e) || error::is_lambda_retryable(e)
}

async fn send_add(cx: &Cx, source: &str) -> Result<()> {
    let name = &cx.stack.function.name;
    let sid = &cx.stack.names.permission_sid;
    wait::retrying(Duration::from_secs(60), is_add_retryable, || async {
        cx.aws
            .lambda
            .add_permission()
            .function_name(name)
            .statement_id(sid)
            .principal(PRINCIPAL)
            .action(ACTION)
            .source_arn(source)
            .send()
            .await
            .map_err(|e| error::aws(format!("adding permission {sid} to function {name}"), e))
    })
    .await
    .map(|_| ())
}

async fn add(cx: &Cx) -> Result<()> {
    let want = desired(&cx.env, Some(&cx.api_id()?));
    let source = want.source_arn.as_str().unwrap_or_default().to_string();
    match send_add(cx, &source).await {
        // "The statement id (…) provided already exists": a lost answer, or another
        // writer. Compare what is there; replace it only if it differs.
        Err(e)
            if e.code() == Some("ResourceConflictException")
                && e.message().contains("already exists") =>
        {
            let live = read(
                &cx.aws,
                &cx.stack.function.name,
                &cx.stack.names.permission_sid,
            )
            .await?;
            if live.as_ref() == Some(&want) {
                return Ok(());
            }
            remove(cx).await?;
            send_add(cx, &source).await
        }
        other => other,
    }
}

impl Op for PermissionOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if matches!(self, PermissionOp::RemoveThenAdd) {
                remove(cx).await?;
            }
            add(cx).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"Version":"2012-10-17","Id":"default","Statement":[{"Sid":"other","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction"},{"Sid":"sid","Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"arn:f","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:execute-api:r:1:abc/*"}}}]}"#;

    #[test]
    fn statement_is_found_by_sid_with_its_source_arn() {
        let s = parse_statement(POLICY, "sid").unwrap();
        assert_eq!(s.principal, PRINCIPAL);
        assert_eq!(s.source_arn, "arn:aws:execute-api:r:1:abc/*");
        assert!(parse_statement(POLICY, "missing").is_none());
        assert!(parse_statement("not json", "sid").is_none());
    }

    #[test]
    fn a_different_source_arn_is_a_remove_then_add() {
        let want = Statement {
            principal: PRINCIPAL.into(),
            action: ACTION.into(),
            source_arn: "arn:aws:execute-api:r:1:new/*".into(),
        };
        let live = parse_statement(POLICY, "sid").unwrap();
        let (c, op) = diff("p", &want, Some(&live)).unwrap();
        assert_eq!(c.fields.len(), 1);
        assert_eq!(c.fields[0].field, "source_arn");
        assert!(matches!(op, PermissionOp::RemoveThenAdd));
        let unscoped = Statement {
            source_arn: Value::Null,
            ..live
        };
        assert_eq!(
            diff("p", &want, Some(&unscoped)).unwrap().0.fields[0].current,
            Value::Null
        );
    }
}
