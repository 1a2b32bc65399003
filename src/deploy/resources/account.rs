//! The API Gateway account's CloudWatch role: the one account-wide setting wsconn may
//! touch. A WebSocket stage writes access or execution logs only when the account's
//! `cloudwatchRoleArn` (`apigateway get-account`) names a role API Gateway can assume.
//!
//! When the stack's stage logs and the account has no such role, deploy plans to create
//! `wsconn-apigateway-cloudwatch` (trusted by apigateway.amazonaws.com, allowed what
//! AWS's AmazonAPIGatewayPushToCloudWatchLogs allows) and to set it. That changes every
//! API of the account and region, so it needs consent, and the plan says so. A role the
//! account already has is left alone, and destroy never removes either: other APIs of
//! the account rely on them.
//!
//! AWS behaviours handled (aws-notes): UpdateAccount answers BadRequestException until
//! the new role has propagated, so it is retried for as long as IAM propagation takes;
//! CreateRole's EntityAlreadyExists means another run made it.

use super::Tags;
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, Risk, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result, built};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;

pub const ROLE_NAME: &str = "wsconn-apigateway-cloudwatch";
pub const ROLE_POLICY: &str = "push-to-cloudwatch-logs";
const KEY: &str = "account";
const PROPAGATION: Duration = Duration::from_secs(300);

/// The actions of AWS's managed policy AmazonAPIGatewayPushToCloudWatchLogs.
pub const PUSH_ACTIONS: [&str; 7] = [
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
];

#[derive(Debug, Clone, PartialEq)]
pub struct LiveAccount {
    /// The account's `cloudwatchRoleArn`, when set.
    pub cloudwatch_role_arn: Option<String>,
    /// Whether `wsconn-apigateway-cloudwatch` exists.
    pub role_exists: bool,
}

pub fn trust_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
}

pub fn push_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": PUSH_ACTIONS, "Resource": "*"}]})
}

/// GetAccount's `cloudwatchRoleArn`.
async fn read_setting(cx_aws: &crate::aws::Aws) -> Result<Option<String>> {
    let v = cx_aws
        .apigw_v1
        .call(
            "GET",
            "/account",
            None,
            "reading the API Gateway account (apigateway:GetAccount)",
        )
        .await?;
    Ok(v.get("cloudwatchRoleArn")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(String::from))
}

#[derive(Debug)]
pub enum AccountOp {
    CreateRole,
    SetRole,
}

/// Pure planning: nothing unless the stage logs and the account has no role.
pub fn diff(live: Option<&LiveAccount>, role_arn: &str) -> Vec<(Node, ResourceChange, AccountOp)> {
    let Some(live) = live else {
        return vec![];
    };
    if live.cloudwatch_role_arn.is_some() {
        return vec![];
    }
    let mut out = Vec::new();
    if !live.role_exists {
        out.push((
            Node::one(Kind::AccountRole),
            ResourceChange::new(
                format!("role {ROLE_NAME}"),
                Action::Create,
                created_fields(vec![
                    ("trusted_by", "apigateway.amazonaws.com".into()),
                    ("allows", json!(PUSH_ACTIONS)),
                ]),
            )
            .with_reason("API Gateway writes a stage's logs as this role; it serves every API of the account, and destroy leaves it")
            .with_risk(Some(Risk::AccountWide)),
            AccountOp::CreateRole,
        ));
    }
    out.push((
        Node::one(Kind::AccountSetting),
        ResourceChange::new(
            "API Gateway account setting",
            Action::Update,
            field("cloudwatch_role_arn", Value::Null, role_arn)
                .into_iter()
                .collect(),
        )
        .with_reason("an account-wide setting: logging needs it, and every API of the account and region uses it")
        .with_risk(Some(Risk::AccountWide)),
        AccountOp::SetRole,
    ));
    out
}

/// The kind: the API Gateway account's CloudWatch role setting (read only when the
/// stack's stage logs).
pub struct Account;

impl Resource for Account {
    type Live = LiveAccount;
    const NAME: &'static str = "account setting";

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveAccount>>> {
        Box::pin(async move {
            if !rd.stack.stage_settings.writes_logs()
                || rd.scope == crate::deploy::kind::Scope::Destroy
            {
                return Ok(Instances::new());
            }
            let (setting, role) =
                futures::try_join!(read_setting(rd.aws), super::role::read(rd.aws, ROLE_NAME))?;
            Ok([(
                KEY.to_string(),
                LiveAccount {
                    cloudwatch_role_arn: setting,
                    role_exists: role.is_some(),
                },
            )]
            .into())
        })
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.snap.get::<Account>(KEY);
        for (node, c, op) in diff(live.as_ref(), &p.env.role_arn(ROLE_NAME)) {
            p.push(node, c, op);
        }
        Ok(())
    }

    /// Never: other APIs of the account rely on it.
    fn plan_destroy(_: &mut Planner<'_>) -> Result<()> {
        Ok(())
    }
}

async fn create_role(cx: &Cx) -> Result<()> {
    let iam = &cx.aws.iam;
    let tags: Tags = cx.desired_tags();
    let tags = tags
        .iter()
        .map(|(k, v)| {
            built(
                "CreateRole",
                aws_sdk_iam::types::Tag::builder().key(k).value(v).build(),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    match iam
        .create_role()
        .role_name(ROLE_NAME)
        .assume_role_policy_document(trust_policy().to_string())
        .description("API Gateway's account-wide CloudWatch Logs role (set by wsconn; other APIs may use it)")
        .set_tags(Some(tags))
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if error::code_of(&e) == Some("EntityAlreadyExists") => {}
        Err(e) => return Err(error::aws(format!("creating role {ROLE_NAME}"), e)),
    }
    iam.put_role_policy()
        .role_name(ROLE_NAME)
        .policy_name(ROLE_POLICY)
        .policy_document(push_policy().to_string())
        .send()
        .await
        .map_err(|e| {
            error::aws(
                format!("writing policy {ROLE_POLICY} of role {ROLE_NAME}"),
                e,
            )
        })?;
    Ok(())
}

/// BadRequestException "The role ARN does not have required permissions…" or "…is not
/// valid" while the role propagates.
fn is_propagating(e: &Error) -> bool {
    e.code() == Some("BadRequestException")
}

async fn set_role(cx: &Cx) -> Result<()> {
    let arn = cx.env.role_arn(ROLE_NAME);
    let body = json!({"patchOperations": [
        {"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}]});
    crate::wait::retrying(PROPAGATION, is_propagating, || async {
        cx.aws
            .apigw_v1
            .call(
                "PATCH",
                "/account",
                Some(&body),
                "setting the API Gateway account's CloudWatch role (apigateway:UpdateAccount)",
            )
            .await
    })
    .await?;
    Ok(())
}

impl Op for AccountOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                AccountOp::CreateRole => create_role(cx).await,
                AccountOp::SetRole => set_role(cx).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:iam::111122223333:role/wsconn-apigateway-cloudwatch";

    #[test]
    fn an_account_with_a_role_is_left_alone() {
        let live = LiveAccount {
            cloudwatch_role_arn: Some("arn:aws:iam::111122223333:role/theirs".into()),
            role_exists: false,
        };
        assert!(diff(Some(&live), ARN).is_empty());
        assert!(diff(None, ARN).is_empty());
    }

    #[test]
    fn an_account_without_one_gets_wsconns_with_consent() {
        let live = LiveAccount {
            cloudwatch_role_arn: None,
            role_exists: false,
        };
        let steps = diff(Some(&live), ARN);
        assert_eq!(steps.len(), 2);
        assert!(
            steps
                .iter()
                .all(|(_, c, _)| c.risk == Some(Risk::AccountWide))
        );
        assert_eq!(steps[1].1.fields[0].desired, ARN);
        let existing = LiveAccount {
            role_exists: true,
            ..live
        };
        let steps = diff(Some(&existing), ARN);
        assert_eq!(steps.len(), 1);
        assert!(matches!(steps[0].2, AccountOp::SetRole));
    }

    #[test]
    fn the_role_allows_what_the_managed_policy_allows() {
        let p = push_policy();
        assert_eq!(p["Statement"][0]["Resource"], "*");
        assert_eq!(p["Statement"][0]["Action"].as_array().unwrap().len(), 7);
        assert_eq!(
            trust_policy()["Statement"][0]["Principal"]["Service"],
            "apigateway.amazonaws.com"
        );
    }
}
