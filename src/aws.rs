//! SDK clients and the facts every resource needs: region, account and partition.
//!
//! Building the clients makes no network call; the credential check
//! (`sts:GetCallerIdentity`) is [`Aws::identity`], which the engine runs beside its first
//! reads rather than before them, so it costs no round trip of its own.

use crate::config::Config;
use crate::error::{self, Error, Result};
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long the credential check retries throttling and 5xx (the other calls' SDK retry
/// allows about as long: 10 attempts, backing off to 5 s).
pub const IDENTITY_RETRY: Duration = Duration::from_secs(60);

/// Whether a failed GetCallerIdentity is worth sending again: throttled or a 5xx (the
/// call did not happen, or may not have), but not an endpoint nobody answers on, and not
/// credentials STS refused.
pub fn retry_identity<E, R>(e: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
    R: error::HttpStatus,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => false,
        SdkError::ServiceError(s) if s.raw().status_code() < 500 => {
            error::outcome(e) == error::Outcome::Throttled
        }
        SdkError::ServiceError(_) => true,
        // Not the service's protocol at all: asking again will not change that.
        _ => false,
    }
}

pub struct Aws {
    pub ddb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigw: aws_sdk_apigatewayv2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// `[domain]`: the certificate (ACM, in the stack's region) and the DNS records
    /// (Route 53, a global service: its SDK picks the global endpoint).
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
    sts: aws_sdk_sts::Client,
    pub region: String,
    pub calls: Arc<CallCounter>,
    /// API Gateway's v1 REST API, for the account's settings only (no SDK crate: its
    /// build would cost more than these two calls).
    pub apigw_v1: RestV1,
    /// With `--parallelism 1`, one read call at a time (the sequential order); otherwise
    /// the read phase sends its calls at once: they are a bounded set (a listing or a few
    /// reads per resource), and each level waits only for what it needs.
    one_call: Option<Arc<Semaphore>>,
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
    /// A custom domain name's ARN (tags are set on it).
    pub fn domain_name_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:apigateway:{}::/domainnames/{name}",
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
    fn dns_suffix(&self) -> &'static str {
        if self.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }
    }
    pub fn websocket_url(&self, api_id: &str, stage: &str) -> String {
        format!(
            "wss://{api_id}.execute-api.{}.{}/{stage}",
            self.region,
            self.dns_suffix()
        )
    }
    /// The @connections management endpoint of a stage.
    pub fn connections_url(&self, api_id: &str, stage: &str) -> String {
        format!(
            "https://{api_id}.execute-api.{}.{}/{stage}",
            self.region,
            self.dns_suffix()
        )
    }
}

/// The partition from an ARN such as `arn:aws-cn:sts::123:assumed-role/x`.
pub fn partition_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(1).filter(|p| !p.is_empty())
}

/// Counts every HTTP request the SDK sends (retries included), for the summary line.
#[derive(Debug, Default)]
pub struct CallCounter {
    all: AtomicUsize,
    mutating: AtomicUsize,
}

impl CallCounter {
    /// (all calls, mutating calls) so far.
    pub fn get(&self) -> (usize, usize) {
        (
            self.all.load(Ordering::Relaxed),
            self.mutating.load(Ordering::Relaxed),
        )
    }
}

/// Read-only operations by name: everything else changes something.
pub fn is_read_only(operation: &str) -> bool {
    ["Get", "List", "Describe", "Head"]
        .iter()
        .any(|p| operation.starts_with(p))
}

#[derive(Debug, Clone)]
struct Counting(Arc<CallCounter>);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "wsconn call counter"
    }
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.all.fetch_add(1, Ordering::Relaxed);
        if cfg
            .load::<Metadata>()
            .is_some_and(|m| !is_read_only(m.name()))
        {
            self.0.mutating.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Aws {
    /// Loads the SDK configuration and builds the clients. Makes no AWS call: the only
    /// check is that a region and credentials can be found, so a missing one is one
    /// clear line before anything else.
    pub async fn connect(cfg: &Config, parallelism: usize) -> Result<Aws> {
        // Throttling (TooManyRequestsException, 429) and 5xx are retried by the SDK's
        // standard mode; API Gateway's control plane allows ~10 requests/s per account,
        // so give it enough attempts. Creates that are not idempotent switch this off
        // per call (see `deploy::resources::create_once`).
        let retry = RetryConfig::standard()
            .with_max_attempts(10)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(5));
        let mut loader = sdk_loader().retry_config(retry);
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
        // The standard retry's token bucket stops retrying after a burst of failures;
        // a deploy under heavy throttling must keep retrying (each call is bounded by
        // max_attempts), so this client set gets its own, unlimited bucket.
        let partition = RetryPartition::custom("wsconn")
            .token_bucket(TokenBucket::unlimited())
            .build();
        let calls = Arc::new(CallCounter::default());
        let counting = Counting(calls.clone());
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&sdk)
                        .retry_partition(partition.clone())
                        .interceptor(counting.clone())
                        .build(),
                )
            };
        }
        let v1_endpoint = cfg
            .endpoint_url
            .clone()
            .or_else(|| sdk.endpoint_url().map(String::from))
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_API_GATEWAY").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                let suffix = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://apigateway.{region}.{suffix}")
            });
        let apigw_v1 = RestV1 {
            endpoint: v1_endpoint.trim_end_matches('/').to_string(),
            region: region.clone(),
            credentials: provider.clone(),
            calls: calls.clone(),
            client: tokio::sync::OnceCell::new(),
        };
        Ok(Aws {
            apigw_v1,
            ddb: client!(aws_sdk_dynamodb),
            iam: client!(aws_sdk_iam),
            lambda: client!(aws_sdk_lambda),
            apigw: client!(aws_sdk_apigatewayv2),
            logs: client!(aws_sdk_cloudwatchlogs),
            acm: client!(aws_sdk_acm),
            route53: client!(aws_sdk_route53),
            sts: client!(aws_sdk_sts),
            region,
            calls,
            one_call: (parallelism <= 1).then(|| Arc::new(Semaphore::new(1))),
        })
    }

    /// Checks the credentials and learns the account and partition.
    ///
    /// Throttling and 5xx are retried on the same dense schedule as every other call
    /// (for up to [`IDENTITY_RETRY`]): a busy account must not fail a deploy here. Two
    /// answers end it at once: an endpoint that cannot be reached at all (no one to
    /// retry with; the SDK's own retry would only delay that message by seconds) and
    /// credentials STS refuses (InvalidClientTokenId, SignatureDoesNotMatch,
    /// ExpiredToken…: a 4xx).
    pub async fn identity(&self) -> Result<AwsEnv> {
        let mut schedule = crate::wait::Schedule::new(IDENTITY_RETRY);
        let who = loop {
            let sent = self
                .sts
                .get_caller_identity()
                .customize()
                .config_override(
                    aws_sdk_sts::config::Builder::default().retry_config(RetryConfig::disabled()),
                )
                .send()
                .await;
            let e = match sent {
                Ok(who) => break who,
                Err(e) => e,
            };
            let again = retry_identity(&e);
            let e = error::aws("checking credentials", e);
            if !again || !schedule.sleep().await {
                return Err(e);
            }
        };
        Ok(AwsEnv {
            region: self.region.clone(),
            account: who.account().unwrap_or_default().to_string(),
            partition: who
                .arn()
                .and_then(partition_of)
                .unwrap_or("aws")
                .to_string(),
        })
    }

    /// One read call; with `--parallelism 1` calls go one at a time.
    pub async fn gated<T>(&self, call: impl Future<Output = T>) -> T {
        let _permit = match &self.one_call {
            Some(s) => Some(s.acquire().await),
            None => None,
        };
        call.await
    }
}

/// A signed JSON call to API Gateway's v1 REST API (`GET /account`, `PATCH /account`).
pub struct RestV1 {
    endpoint: String,
    region: String,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
    calls: Arc<CallCounter>,
    /// Built once, off the async workers: loading the platform's trusted roots reads
    /// and parses every certificate file, which must not stall other steps.
    client: tokio::sync::OnceCell<V1Client>,
}

type V1Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

impl RestV1 {
    /// Sends `method path` with `body`, retrying throttling and 5xx for up to a minute;
    /// `doing` names it in errors (`reading the API Gateway account (apigateway:GetAccount)`).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        doing: &str,
    ) -> Result<serde_json::Value> {
        let mut schedule = crate::wait::Schedule::new(IDENTITY_RETRY);
        loop {
            match self.once(method, path, body, doing).await {
                Err((e, true)) if schedule.sleep().await => {
                    let _ = e;
                }
                Err((e, _)) => return Err(e),
                Ok(v) => return Ok(v),
            }
        }
    }

    /// One attempt; the flag says whether it is worth another.
    async fn once(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        doing: &str,
    ) -> std::result::Result<serde_json::Value, (Error, bool)> {
        use http_body_util::{BodyExt as _, Full};
        let fail = |m: String| {
            (
                Error::Aws {
                    doing: doing.to_string(),
                    code: None,
                    message: m,
                },
                false,
            )
        };
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let uri = format!("{}{path}", self.endpoint);
        let mut req = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(bytes::Bytes::from(bytes.clone())))
            .map_err(|e| fail(format!("building the request to {uri}: {e}")))?;
        if let Some(host) = req.uri().authority().map(|a| a.to_string()) {
            req.headers_mut().insert(
                http::header::HOST,
                http::HeaderValue::from_str(&host).map_err(|e| fail(e.to_string()))?,
            );
        }
        sign_v4(
            &mut req,
            bytes.as_bytes(),
            &self.region,
            "apigateway",
            &self.credentials,
        )
        .await
        .map_err(|e| fail(format!("signing the request: {e}")))?;
        self.calls.all.fetch_add(1, Ordering::Relaxed);
        if method != "GET" {
            self.calls.mutating.fetch_add(1, Ordering::Relaxed);
        }
        let client = self
            .client
            .get_or_try_init(|| async {
                let connector = tokio::task::spawn_blocking(|| {
                    hyper_rustls::HttpsConnectorBuilder::new()
                        .with_native_roots()
                        .map(|b| b.https_or_http().enable_http1().build())
                })
                .await
                .map_err(|e| format!("loading the platform's trusted roots: {e}"))?
                .map_err(|e| format!("loading the platform's trusted roots: {e}"))?;
                Ok::<_, String>(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build::<_, Full<bytes::Bytes>>(connector),
                )
            })
            .await
            .map_err(fail)?;
        let sent = tokio::time::timeout(Duration::from_secs(30), client.request(req)).await;
        let resp = match sent {
            Err(_) => return Err((fail(format!("{uri} did not answer within 30 s")).0, true)),
            Ok(Err(e)) => return Err(fail(format!("calling {uri}: {e}"))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        let error_type = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|t| t.split(':').next().unwrap_or(t).to_string());
        let text = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .map_err(|e| fail(format!("reading the answer from {uri}: {e}")))?;
        let json = serde_json::from_str::<serde_json::Value>(&text).ok();
        if (200..300).contains(&status) {
            return match json {
                Some(v) => Ok(v),
                None if text.trim().is_empty() => Ok(serde_json::Value::Null),
                None => Err((error::not_aws(doing.to_string(), status, &text), false)),
            };
        }
        let Some(json) = json else {
            return Err((
                error::not_aws(doing.to_string(), status, &text),
                status >= 500,
            ));
        };
        let message = json
            .get("message")
            .or_else(|| json.get("Message"))
            .and_then(|m| m.as_str())
            .unwrap_or("no message")
            .to_string();
        let code = error_type.or_else(|| {
            json.get("__type")
                .and_then(|t| t.as_str())
                .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
        });
        let again = status == 429 || status >= 500;
        Err((
            Error::Aws {
                doing: doing.to_string(),
                code,
                message,
            },
            again,
        ))
    }
}

/// Signs `req` (whose body is `body`) with SigV4 for `service`, replacing any signature it
/// carries: the v1 account calls, and local's forwards to another DynamoDB endpoint.
pub async fn sign_v4(
    req: &mut http::Request<http_body_util::Full<bytes::Bytes>>,
    body: &[u8],
    region: &str,
    service: &str,
    credentials: &aws_credential_types::provider::SharedCredentialsProvider,
) -> std::result::Result<(), String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    const SIGNATURE: [&str; 4] = [
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    ];
    let creds = credentials
        .provide_credentials()
        .await
        .map_err(|e| format!("loading AWS credentials: {e}"))?;
    let identity = creds.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    for k in SIGNATURE {
        req.headers_mut().remove(k);
    }
    let uri = req.uri().to_string();
    let method = req.method().as_str().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect();
    let signable = SignableRequest::new(
        &method,
        &uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

/// The SDK's configuration loader with wsconn's one HTTP client: hyper 1 and rustls with
/// the ring provider (the SDK's default features would build a second, legacy stack and
/// a second crypto library). Every AWS client wsconn makes starts here.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client())
}

/// HTTPS (and plain HTTP, for emulators) with the platform's trusted roots.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Per-call override for API Gateway creates that AWS does not make idempotent: no
/// automatic retry, because a retried CreateIntegration after a lost answer makes a
/// second integration. `create_once` classifies the failure itself.
pub fn apigw_no_retry() -> aws_sdk_apigatewayv2::config::Builder {
    aws_sdk_apigatewayv2::config::Builder::default().retry_config(RetryConfig::disabled())
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
        assert_eq!(
            e.connections_url("abc", "api"),
            "https://abc.execute-api.eu-west-1.amazonaws.com.cn/api"
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

    #[test]
    fn the_credential_check_retries_throttling_and_5xx_only() {
        use aws_smithy_runtime_api::client::result::{SdkError, ServiceError};
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;
        let err = |status: u16, code: &str| -> SdkError<ErrorMetadata, Response> {
            let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
            let meta = ErrorMetadata::builder().code(code).build();
            SdkError::ServiceError(ServiceError::builder().source(meta).raw(raw).build())
        };
        assert!(retry_identity(&err(400, "Throttling")));
        assert!(retry_identity(&err(429, "TooManyRequestsException")));
        assert!(retry_identity(&err(500, "InternalFailure")));
        assert!(retry_identity(&err(503, "ServiceUnavailable")));
        assert!(!retry_identity(&err(403, "InvalidClientTokenId")));
        assert!(!retry_identity(&err(403, "SignatureDoesNotMatch")));
        assert!(!retry_identity(&err(400, "ExpiredToken")));
        let refused: SdkError<ErrorMetadata, Response> = SdkError::dispatch_failure(
            aws_smithy_runtime_api::client::result::ConnectorError::io("refused".into()),
        );
        assert!(!retry_identity(&refused));
        let timeout: SdkError<ErrorMetadata, Response> = SdkError::timeout_error("slow");
        assert!(!retry_identity(&timeout));
    }

    #[test]
    fn read_only_operations_are_recognised_by_name() {
        assert!(is_read_only("GetIntegrations"));
        assert!(is_read_only("DescribeTable"));
        assert!(is_read_only("ListRoleTags"));
        assert!(!is_read_only("CreateIntegration"));
        assert!(!is_read_only("TagResource"));
    }
}
