//! SDK clients and the facts every resource needs: region, account and partition.

use crate::config::Config;
use crate::error::{self, Error, Result};
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::ProvideCredentials;
use std::time::Duration;

pub struct Aws {
    pub ddb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigw: aws_sdk_apigatewayv2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub env: AwsEnv,
}

/// Where the stack lives. ARNs are derived from these, never hard-coded to "aws".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsEnv {
    pub region: String,
    pub account: String,
    pub partition: String,
}

impl AwsEnv {
    pub fn table_arn(&self, table: &str) -> String {
        format!(
            "arn:{}:dynamodb:{}:{}:table/{table}",
            self.partition, self.region, self.account
        )
    }
    pub fn role_arn(&self, role: &str) -> String {
        format!("arn:{}:iam::{}:role/{role}", self.partition, self.account)
    }
    pub fn function_arn(&self, function: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{function}",
            self.partition, self.region, self.account
        )
    }
    pub fn log_group_arn(&self, group: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{group}",
            self.partition, self.region, self.account
        )
    }
    pub fn api_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:apigateway:{}::/apis/{api_id}",
            self.partition, self.region
        )
    }
    pub fn stage_arn(&self, api_id: &str, stage: &str) -> String {
        format!(
            "arn:{}:apigateway:{}::/apis/{api_id}/stages/{stage}",
            self.partition, self.region
        )
    }
    pub fn execute_api_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{api_id}/*",
            self.partition, self.region, self.account
        )
    }
    pub fn dynamodb_action_uri(&self, action: &str) -> String {
        format!(
            "arn:{}:apigateway:{}:dynamodb:action/{action}",
            self.partition, self.region
        )
    }
    pub fn lambda_invoke_uri(&self, function_arn: &str) -> String {
        format!(
            "arn:{}:apigateway:{}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
            self.partition, self.region
        )
    }
    pub fn websocket_url(&self, api_id: &str, stage: &str) -> String {
        let suffix = if self.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!(
            "wss://{api_id}.execute-api.{}.{suffix}/{stage}",
            self.region
        )
    }
}

/// The partition from an ARN such as `arn:aws-cn:sts::123:assumed-role/x`.
pub fn partition_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(1).filter(|p| !p.is_empty())
}

impl Aws {
    /// Loads the SDK configuration, then checks credentials and the endpoint once, so a
    /// missing credential or an unreachable endpoint is one clear line, before any plan.
    pub async fn connect(cfg: &Config) -> Result<Aws> {
        // Throttling (TooManyRequestsException, 429) is retried by the SDK's standard
        // mode; API Gateway's control plane allows ~10 requests/s per account, so give
        // it enough attempts and backoff.
        let retry = RetryConfig::standard()
            .with_max_attempts(8)
            .with_initial_backoff(Duration::from_millis(500))
            .with_max_backoff(Duration::from_secs(20));
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry);
        if let Some(r) = &cfg.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &cfg.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &cfg.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let sdk = loader.load().await;
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
            Error::Config(
                "no AWS region: pass --region or set AWS_REGION (or a region in the profile)"
                    .into(),
            )
        })?;
        let provider = sdk
            .credentials_provider()
            .ok_or_else(|| Error::Access(error::no_credentials_message()))?;
        provider
            .provide_credentials()
            .await
            .map_err(|_| Error::Access(error::no_credentials_message()))?;
        let sts = aws_sdk_sts::Client::new(&sdk);
        let who = sts
            .get_caller_identity()
            .customize()
            // One retry only: an unreachable endpoint should fail in seconds, not minutes.
            .config_override(
                aws_sdk_sts::config::Builder::default()
                    .retry_config(RetryConfig::standard().with_max_attempts(2)),
            )
            .send()
            .await
            .map_err(|e| error::aws("checking credentials (sts:GetCallerIdentity)", e))?;
        let account = who.account().unwrap_or_default().to_string();
        let partition = who
            .arn()
            .and_then(partition_of)
            .unwrap_or("aws")
            .to_string();
        Ok(Aws {
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            apigw: aws_sdk_apigatewayv2::Client::new(&sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
            env: AwsEnv {
                region,
                account,
                partition,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(partition: &str) -> AwsEnv {
        AwsEnv {
            region: "eu-west-1".into(),
            account: "111122223333".into(),
            partition: partition.into(),
        }
    }

    #[test]
    fn arns_use_the_partition() {
        let e = env("aws-cn");
        assert_eq!(
            e.table_arn("t"),
            "arn:aws-cn:dynamodb:eu-west-1:111122223333:table/t"
        );
        assert_eq!(e.role_arn("r"), "arn:aws-cn:iam::111122223333:role/r");
        assert_eq!(
            e.execute_api_arn("abc"),
            "arn:aws-cn:execute-api:eu-west-1:111122223333:abc/*"
        );
        assert_eq!(
            e.api_arn("abc"),
            "arn:aws-cn:apigateway:eu-west-1::/apis/abc"
        );
        assert_eq!(
            e.websocket_url("abc", "api"),
            "wss://abc.execute-api.eu-west-1.amazonaws.com.cn/api"
        );
    }

    #[test]
    fn integration_uris_follow_the_documented_forms() {
        let e = env("aws");
        assert_eq!(
            e.dynamodb_action_uri("PutItem"),
            "arn:aws:apigateway:eu-west-1:dynamodb:action/PutItem"
        );
        assert_eq!(
            e.lambda_invoke_uri("arn:aws:lambda:eu-west-1:111122223333:function:f"),
            "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:111122223333:function:f/invocations"
        );
        assert_eq!(
            e.websocket_url("abc", "api"),
            "wss://abc.execute-api.eu-west-1.amazonaws.com/api"
        );
    }

    #[test]
    fn partition_is_read_from_arns() {
        assert_eq!(
            partition_of("arn:aws-us-gov:sts::1:user/x"),
            Some("aws-us-gov")
        );
        assert_eq!(partition_of("garbage"), None);
    }
}
