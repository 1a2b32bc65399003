//! One file per resource kind, each implementing [`Resource`](super::kind::Resource):
//! `read` (not-found resolved there, reads at the least depth), `plan` built on a pure
//! `diff` of one desired instance against one live one, and operations implementing
//! [`Op`](super::step::Op) (create, update, delete). This module holds what they share:
//! ownership, tags, policy documents, and the API Gateway write helpers. Adding a kind
//! means a file here, an entry in the engine's list (`super::engine::KINDS`) and, where
//! it waits for others, a rule in `super::graph`.

pub mod account;
pub mod api;
pub mod api_mapping;
pub mod authorizer;
pub mod certificate;
pub mod deployment;
pub mod dns;
pub mod domain_name;
pub mod function;
pub mod integration;
pub mod integration_response;
pub mod log_group;
pub mod permission;
pub mod role;
pub mod role_policy;
pub mod route;
pub mod route53;
pub mod route_response;
pub mod stage;
pub mod table;
pub mod version;

use super::context::Cx;
use super::plan::FieldChange;
use crate::config::OWNER_TAG;
use crate::error::{self, Error, Outcome, Result};
use crate::wait::Schedule;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

pub use crate::stack::Tags;

/// Shown where a value holds the API's id while the API does not exist yet (a
/// permission's SourceArn, a handler's CONNECTIONS_URL, a policy's @connections ARN).
pub const UNKNOWN_API: &str = "(API id known after apply)";

/// Refuses to touch a resource found by name that lacks the stack's tag.
pub fn check_owned(resource: &str, tags: &Tags, stack: &str) -> Result<()> {
    match tags.get(OWNER_TAG) {
        Some(v) if v == stack => Ok(()),
        Some(other) => Err(Error::NotOwned {
            resource: resource.to_string(),
            stack: stack.to_string(),
            why: format!("it is tagged {OWNER_TAG}={other}"),
        }),
        None => Err(Error::NotOwned {
            resource: resource.to_string(),
            stack: stack.to_string(),
            why: format!("it has no {OWNER_TAG} tag"),
        }),
    }
}

/// Tags AWS manages itself (`aws:*`) cannot be set or removed by users: compare the rest.
pub fn user_visible(tags: &Tags) -> Tags {
    tags.iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn tags_value(tags: &Tags) -> Value {
    serde_json::to_value(tags).unwrap_or(Value::Null)
}

pub fn tags_field(live: &Tags, desired: &Tags) -> Option<FieldChange> {
    super::plan::field("tags", tags_value(&user_visible(live)), tags_value(desired))
}

/// What to send to make `live` tags equal `desired`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TagDelta {
    pub set: Tags,
    pub remove: Vec<String>,
}

impl TagDelta {
    pub fn between(live: &Tags, desired: &Tags) -> TagDelta {
        let live = user_visible(live);
        TagDelta {
            set: desired
                .iter()
                .filter(|(k, v)| live.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            remove: live
                .keys()
                .filter(|k| !desired.contains_key(*k))
                .cloned()
                .collect(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// Parses an IAM or resource policy document. IAM returns documents URL-encoded, so
/// `url_encoded` decodes first. Comparison is on JSON values, never text.
pub fn parse_policy(doc: &str, url_encoded: bool) -> Value {
    let text = if url_encoded {
        urlencoding::decode(doc)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| doc.to_string())
    } else {
        doc.to_string()
    };
    normalise_policy(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// IAM accepts a single string where a list is allowed, and a single statement object:
/// bring both forms to one shape so equal policies compare equal.
pub fn normalise_policy(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("Statement", Value::Object(o)) => {
                            Value::Array(vec![normalise_policy(Value::Object(o))])
                        }
                        ("Action" | "NotAction" | "Resource" | "NotResource", Value::Array(a))
                            if a.len() == 1 =>
                        {
                            a.into_iter().next().unwrap_or(Value::Null)
                        }
                        (_, other) => normalise_policy(other),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(normalise_policy).collect()),
        other => other,
    }
}

/// True when `desired` grants a statement `current` does not: the change widens access.
pub fn widens(current: &Value, desired: &Value) -> bool {
    let statements = |v: &Value| -> Vec<Value> {
        v.get("Statement")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let have = statements(current);
    statements(desired).iter().any(|s| !have.contains(s))
}

/// Writes to one API are serialised by the engine; real AWS may still answer
/// ConflictException "concurrent modification" (another writer, or its own lag), so
/// every API Gateway write goes through this retry.
pub async fn api_write<T, F, Fut>(op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    crate::wait::retrying(
        Duration::from_secs(120),
        error::is_concurrent_modification,
        op,
    )
    .await
}

/// Deletes something in API Gateway (the API, or a child of it) through [`api_write`];
/// NotFoundException means it is gone already, which is what was wanted. `what` names it
/// in errors ("integration abc (api xyz)").
pub async fn api_delete<E, F, Fut>(what: &str, mut call: F) -> Result<()>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    F: FnMut() -> Fut,
    Fut: Future<
        Output = std::result::Result<(), SdkError<E, aws_smithy_runtime_api::http::Response>>,
    >,
{
    api_write(|| {
        let sent = call();
        async move {
            match sent.await {
                Ok(()) => Ok(()),
                Err(e) if error::is_not_found(&e) => Ok(()),
                Err(e) => Err(error::aws(format!("deleting {what}"), e)),
            }
        }
    })
    .await
}

/// NotFoundException on a create inside the API: the API is gone.
pub fn vanish_on_missing_api(e: Error, api_id: &str) -> Error {
    if e.is_not_found() {
        Error::Vanished(format!("WebSocket API {api_id}"))
    } else {
        e
    }
}

/// A NotFoundException on a write under the stack's API: the API (or the child) was
/// deleted after it was read. Not fatal: the next round reads again.
pub fn vanished_or<E, R>(what: String, doing: String, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: error::HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    if error::is_not_found(&e) {
        Error::Vanished(what)
    } else {
        error::aws(doing, e)
    }
}

/// Runs a create that AWS does not make idempotent (CreateApi, CreateIntegration,
/// CreateRoute, their responses, CreateDeployment: no name, no client token), with the
/// SDK's automatic retry off for it (`aws::apigw_no_retry`), classifying each failure:
/// - refused (4xx): reported, except "concurrent modification", which is retried;
/// - throttled: the call did not happen, so it is sent again after a pause;
/// - unknown (5xx, timeout, dropped connection): it may have taken effect, so `find`
///   reads by the natural key (the stack tag, the description, the route key…) and the
///   create is sent again only if nothing was created.
///
/// `send` and `find` return what the caller needs of the created resource (its id).
pub async fn create_once<T, E, R, S, SFut, F, FFut>(
    doing: &str,
    mut send: S,
    mut find: F,
) -> Result<T>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static + error::HttpStatus,
    S: FnMut() -> SFut,
    SFut: Future<Output = std::result::Result<T, SdkError<E, R>>>,
    F: FnMut() -> FFut,
    FFut: Future<Output = Result<Option<T>>>,
{
    let mut schedule = Schedule::new(Duration::from_secs(120));
    let mut unknown = 0;
    loop {
        let e = match send().await {
            Ok(id) => return Ok(id),
            Err(e) => e,
        };
        let outcome = error::outcome(&e);
        let err = error::aws(doing, e);
        match outcome {
            Outcome::Throttled => {}
            Outcome::Unknown => {
                unknown += 1;
                if let Some(id) = find().await? {
                    return Ok(id);
                }
                if unknown >= 6 {
                    return Err(err);
                }
            }
            Outcome::Refused => {
                if !error::is_concurrent_modification(&err) {
                    return Err(err);
                }
            }
        }
        if !schedule.sleep().await {
            return Err(err);
        }
    }
}

/// Applies a tag delta to an API Gateway resource (an API or a stage); `what` names it in
/// errors. Tag writes are API writes too, so they share the concurrent-modification retry.
pub async fn apply_apigw_tags(cx: &Cx, arn: &str, what: &str, tags: &TagDelta) -> Result<()> {
    let apigw = &cx.aws.apigw;
    if !tags.remove.is_empty() {
        api_write(|| async {
            apigw
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(tags.remove.clone()))
                .send()
                .await
                .map_err(|e| vanished_or(what.into(), format!("removing tags from {what}"), e))
        })
        .await?;
    }
    if !tags.set.is_empty() {
        api_write(|| async {
            apigw
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags.set.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| vanished_or(what.into(), format!("tagging {what}"), e))
        })
        .await?;
    }
    Ok(())
}

/// Collects every page of an API Gateway list call: `page(token)` returns one page's
/// items and the next token (API Gateway v2 has no SDK paginators).
pub async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = page(token).await?;
        all.extend(items);
        match next {
            Some(t) => token = Some(t),
            None => return Ok(all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ownership_requires_the_exact_tag() {
        assert!(check_owned("table t", &tags(&[(OWNER_TAG, "s")]), "s").is_ok());
        let e = check_owned("table t", &tags(&[(OWNER_TAG, "other")]), "s")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("table t") && e.contains("wsconn:stack=other"),
            "{e}"
        );
        let e = check_owned("role r", &Tags::new(), "s")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("role r") && e.contains("no wsconn:stack tag"),
            "{e}"
        );
    }

    #[test]
    fn tag_delta_sets_changed_and_removes_extra_but_ignores_aws_tags() {
        let live = tags(&[
            ("a", "1"),
            ("b", "2"),
            ("aws:cloudformation:stack-name", "x"),
        ]);
        let desired = tags(&[("a", "1"), ("b", "3"), ("c", "4")]);
        let d = TagDelta::between(&live, &desired);
        assert_eq!(d.set, tags(&[("b", "3"), ("c", "4")]));
        assert!(d.remove.is_empty());
        let d = TagDelta::between(&tags(&[("x", "1")]), &Tags::new());
        assert_eq!(d.remove, vec!["x".to_string()]);
        assert!(tags_field(&tags(&[("a", "1"), ("aws:x", "y")]), &tags(&[("a", "1")])).is_none());
    }

    #[test]
    fn policies_compare_as_normalised_json() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22s3%3AGetObject%22%5D%2C%22Resource%22%3A%22*%22%7D%7D";
        let plain = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]});
        assert_eq!(parse_policy(encoded, true), plain);
        assert_eq!(parse_policy(&plain.to_string(), false), plain);
    }

    #[tokio::test]
    async fn all_pages_follows_next_tokens_to_the_end() {
        let pages = all_pages(|token: Option<String>| async move {
            Ok(match token.as_deref() {
                None => (vec![1, 2], Some("a".to_string())),
                Some("a") => (vec![3], Some("b".to_string())),
                _ => (vec![4], None),
            })
        })
        .await
        .unwrap();
        assert_eq!(pages, [1, 2, 3, 4]);
        let failed: Result<Vec<u8>> =
            all_pages(|_| async { Err(Error::Conflict("no".into())) }).await;
        assert!(failed.is_err());
    }

    type Sdk =
        SdkError<aws_smithy_types::error::ErrorMetadata, aws_smithy_runtime_api::http::Response>;

    fn sdk_err(status: u16, code: &str, message: &str) -> Sdk {
        use aws_smithy_runtime_api::client::result::ServiceError;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        let raw = Response::new(
            StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        let meta = aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message(message)
            .build();
        SdkError::ServiceError(ServiceError::builder().source(meta).raw(raw).build())
    }

    /// Runs create_once with scripted answers; returns (result, sends, finds).
    async fn scripted(
        answers: Vec<std::result::Result<String, Sdk>>,
        found: Option<String>,
    ) -> (Result<String>, usize, usize) {
        let answers = std::sync::Mutex::new(answers.into_iter());
        let (sends, finds) = (
            std::sync::atomic::AtomicUsize::new(0),
            std::sync::atomic::AtomicUsize::new(0),
        );
        let r = create_once(
            "creating x",
            || {
                sends.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let next = answers.lock().unwrap().next().unwrap();
                async move { next }
            },
            || {
                finds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let f = found.clone();
                async move { Ok(f) }
            },
        )
        .await;
        (r, sends.into_inner(), finds.into_inner())
    }

    #[tokio::test]
    async fn create_once_reads_back_after_an_unknown_outcome_before_resending() {
        // Lost answer, and the read finds what the first call made: no second create.
        let (r, sends, finds) = scripted(
            vec![Err(sdk_err(500, "InternalFailure", "x"))],
            Some("made".into()),
        )
        .await;
        assert_eq!((r.unwrap(), sends, finds), ("made".to_string(), 1, 1));
        // A 503 before effect: nothing found, so it is sent again.
        let (r, sends, finds) = scripted(
            vec![
                Err(sdk_err(503, "ServiceUnavailable", "x")),
                Ok("new".into()),
            ],
            None,
        )
        .await;
        assert_eq!((r.unwrap(), sends, finds), ("new".to_string(), 2, 1));
    }

    #[tokio::test]
    async fn create_once_resends_after_throttling_and_conflicts_without_reading() {
        let (r, sends, finds) = scripted(
            vec![
                Err(sdk_err(429, "TooManyRequestsException", "slow down")),
                Err(sdk_err(
                    409,
                    "ConflictException",
                    "Unable to complete operation due to concurrent modification. Please try again later.",
                )),
                Ok("id".into()),
            ],
            Some("never".into()),
        )
        .await;
        assert_eq!((r.unwrap(), sends, finds), ("id".to_string(), 3, 0));
    }

    #[tokio::test]
    async fn create_once_reports_a_refusal_at_once() {
        let (r, sends, finds) =
            scripted(vec![Err(sdk_err(400, "BadRequestException", "no"))], None).await;
        let e = r.unwrap_err();
        assert_eq!(e.to_string(), "creating x: no (BadRequestException)");
        assert_eq!((sends, finds), (1, 0));
    }

    #[test]
    fn widening_means_a_new_statement() {
        let a = json!({"Statement":[{"Effect":"Allow","Action":"a","Resource":"*"}]});
        let ab = json!({"Statement":[{"Effect":"Allow","Action":"a","Resource":"*"},{"Effect":"Allow","Action":"b","Resource":"*"}]});
        assert!(widens(&a, &ab));
        assert!(!widens(&ab, &a));
        assert!(widens(&Value::Null, &a));
    }
}
