//! The function's resource policy statement letting API Gateway invoke it, scoped by
//! SourceArn to this API (the pattern's template has none, so any API Gateway in any
//! account could invoke the function).
//!
//! AWS behaviours handled (aws-notes): GetPolicy on a function without a policy answers
//! ResourceNotFoundException, meaning "no statements"; AddPermission right after
//! CreateFunction can answer ResourceNotFoundException, so it is retried; a statement
//! cannot be changed in place, so a change is RemovePermission then AddPermission.

use super::{Resource, Step, api};
use crate::engine::Cx;
use crate::error::{self, Result};
use crate::plan::{Action, ResourceChange, Risk, created_fields, field};
use crate::wait;
use futures::future::BoxFuture;
use serde_json::Value;
use std::time::Duration;

pub const PRINCIPAL: &str = "apigateway.amazonaws.com";
pub const ACTION: &str = "lambda:InvokeFunction";
/// Shown while the API (and so its id) does not exist yet.
pub const UNKNOWN_API: &str = "(API id known after apply)";

pub struct Permission;

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub principal: Value,
    pub action: Value,
    pub source_arn: Value,
}

pub fn desired(cx: &Cx) -> Statement {
    let source = match api::live_api(cx) {
        Some(a) => cx.aws.env.execute_api_arn(&a.id),
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

pub async fn read(cx: &Cx) -> Result<Option<Statement>> {
    let name = &cx.names.function;
    match cx.aws.lambda.get_policy().function_name(name).send().await {
        Ok(o) => Ok(o
            .policy()
            .and_then(|p| parse_statement(p, &cx.names.permission_sid))),
        // No policy (or no function yet) means no statements.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(error::aws(
            format!("reading the resource policy of function {name}"),
            e,
        )),
    }
}

#[derive(Debug)]
pub enum Op {
    Add,
    RemoveThenAdd,
}

pub fn diff(
    resource: &str,
    want: &Statement,
    live: Option<&Statement>,
) -> Option<(ResourceChange, Op)> {
    let Some(live) = live else {
        let fields = created_fields(vec![
            ("principal", want.principal.clone()),
            ("action", want.action.clone()),
            ("source_arn", want.source_arn.clone()),
        ]);
        let c = ResourceChange::new(resource, Action::Create, fields)
            .with_risk(Some(Risk::WidensPermissions));
        return Some((c, Op::Add));
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
        (c, Op::RemoveThenAdd)
    })
}

fn label(cx: &Cx) -> String {
    format!(
        "permission {} on function {}",
        cx.names.permission_sid, cx.names.function
    )
}

impl Resource for Permission {
    fn plan<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let live = read(cx).await?;
            Ok(diff(&label(cx), &desired(cx), live.as_ref())
                .map(|(c, op)| Step::new(c, op))
                .into_iter()
                .collect())
        })
    }

    /// Deleting the function deletes its policy.
    fn plan_destroy<'a>(&'a self, _cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async { Ok(vec![]) })
    }

    fn apply<'a>(&'a self, cx: &'a Cx, step: &'a Step) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let name = &cx.names.function;
            let sid = &cx.names.permission_sid;
            let lambda = &cx.aws.lambda;
            if matches!(step.op::<Op>(), Op::RemoveThenAdd) {
                match lambda
                    .remove_permission()
                    .function_name(name)
                    .statement_id(sid)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) => {}
                    Err(e) => {
                        return Err(error::aws(
                            format!("removing permission {sid} from function {name}"),
                            e,
                        ));
                    }
                }
            }
            let source = cx.aws.env.execute_api_arn(&cx.api_id()?);
            wait::retrying(
                Duration::from_secs(60),
                error::is_function_not_visible_yet,
                || async {
                    lambda
                        .add_permission()
                        .function_name(name)
                        .statement_id(sid)
                        .principal(PRINCIPAL)
                        .action(ACTION)
                        .source_arn(&source)
                        .send()
                        .await
                        .map_err(|e| {
                            error::aws(format!("adding permission {sid} to function {name}"), e)
                        })
                },
            )
            .await?;
            Ok(())
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
        assert!(matches!(op, Op::RemoveThenAdd));
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
