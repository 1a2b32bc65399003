//! Published versions of the stack's functions, keyed by function name.
//!
//! Integrations and the authorizer invoke a version (`…:function:<name>:<version>`),
//! never `$LATEST`, so a deploy that brings `$LATEST` to new code changes nothing that
//! clients get: only the stage's switch to a deployment naming the new version does.
//!
//! The version a plan wants for a function is the newest published version whose code
//! and configuration are the desired ones; when none is, the plan publishes one.
//!
//! AWS behaviours handled (aws-notes, "Releases"):
//! - PublishVersion publishes whatever `$LATEST` holds, and needs its last update to be
//!   Successful. It is sent with `CodeSha256` and `RevisionId` as guards, after checking
//!   that `$LATEST` is what this deploy put there, so code someone else put on `$LATEST`
//!   is never published (PreconditionFailedException otherwise).
//! - When nothing changed since the last version, PublishVersion returns that version:
//!   a resent publish (a lost answer) makes no second version.
//! - A new version is Pending, and usable once Active.
//! - DeleteFunction with `Qualifier` deletes one version (and its resource policy).

use super::function::{self, LiveFunction};
use crate::aws::{Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource, Snapshot};
use crate::deploy::plan::{Action, ResourceChange, field};
use crate::deploy::step::{Op, Step};
use crate::error::{self, Error, Result};
use crate::stack::{FunctionDef, Stack};
use crate::wait;
use aws_sdk_lambda::types::State;
use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub use crate::deploy::kind::Versions;

/// Shown where a version number is known only once it is published.
pub const NEW_VERSION: &str = "(new version)";

const ACTIVE: Duration = Duration::from_secs(300);

/// One published version of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveVersion {
    pub version: String,
    /// The compared fields, as [`function::config_fields`] gives them.
    pub fields: Vec<(&'static str, Value)>,
    /// Pending, Active, Inactive or Failed.
    pub state: String,
}

pub fn label(function: &str) -> String {
    format!("version of function {function}")
}

/// `<function ARN>:<version>`, or with [`NEW_VERSION`] while it is to be published.
pub fn qualified_arn(env: &AwsEnv, function: &str, version: Option<&str>) -> String {
    format!(
        "{}:{}",
        env.function_arn(function),
        version.unwrap_or(NEW_VERSION)
    )
}

/// ListVersionsByFunction, every page: the published versions, oldest first (`$LATEST`
/// left out). None when the function does not exist.
pub async fn list(aws: &Aws, function: &str) -> Result<Vec<LiveVersion>> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = match aws
            .gated(
                aws.lambda
                    .list_versions_by_function()
                    .function_name(function)
                    .set_marker(marker.clone())
                    .send(),
            )
            .await
        {
            Ok(p) => p,
            Err(e) if error::is_not_found(&e) => return Ok(vec![]),
            Err(e) => {
                return Err(error::aws(
                    format!("listing the versions of function {function}"),
                    e,
                ));
            }
        };
        for c in page.versions() {
            let Some(v) = c.version().filter(|v| *v != "$LATEST") else {
                continue;
            };
            out.push(LiveVersion {
                version: v.to_string(),
                fields: function::config_fields(c),
                state: c
                    .state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "Active".into()),
            });
        }
        marker = page.next_marker().map(String::from);
        if marker.is_none() {
            break;
        }
    }
    out.sort_by_key(|v| number(&v.version));
    Ok(out)
}

fn number(version: &str) -> u64 {
    version.parse().unwrap_or(0)
}

/// The published versions of every declared function, read once for the kinds that
/// need them (the versions themselves, and the permissions on each).
pub async fn listed(rd: &Reader<'_>) -> Result<BTreeMap<String, Vec<LiveVersion>>> {
    rd.shared("versions", || async {
        let all = futures::future::try_join_all(
            rd.stack
                .functions
                .iter()
                .map(|f| async { Ok::<_, Error>((f.name.clone(), list(rd.aws, &f.name).await?)) }),
        )
        .await?;
        Ok(all.into_iter().collect())
    })
    .await
}

/// Pure: the newest version whose code and configuration are `want`'s (a Failed one
/// never serves).
pub fn matching<'v>(
    want: &[(&'static str, Value)],
    versions: &'v [LiveVersion],
) -> Option<&'v LiveVersion> {
    versions
        .iter()
        .filter(|v| v.state != "Failed")
        .filter(|v| {
            want.iter().all(|(name, w)| {
                let have = v
                    .fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, h)| h.clone())
                    .unwrap_or(Value::Null);
                field(name, have, w.clone()).is_none()
            })
        })
        .max_by_key(|v| number(&v.version))
}

/// The version each function of `stack` should serve, from what was read: a published
/// version that matches, or `None` (the plan publishes one). `api_id` is the API the
/// plan keeps (a handler's CONNECTIONS_URL holds it).
pub fn wanted(stack: &Stack, env: &AwsEnv, snap: &Snapshot, api_id: Option<&str>) -> Versions {
    stack
        .functions
        .iter()
        .map(|f| {
            let live = snap.get::<Version>(&f.name).unwrap_or_default();
            let want = function::desired(stack, f, env, api_id).fields;
            (
                f.name.clone(),
                matching(&want, &live).map(|v| v.version.clone()),
            )
        })
        .collect()
}

#[derive(Debug)]
pub enum VersionOp {
    /// Publish `$LATEST` of this function (which the function's step brought to the
    /// desired code and configuration), and wait until the version is Active.
    Publish(String),
    /// Wait until this version is Active.
    Ready(String, String),
    /// Delete a version no kept release references.
    Delete(String, String),
}

/// The kind: every declared function's published versions.
pub struct Version;

impl Resource for Version {
    type Live = Vec<LiveVersion>;
    const NAME: &'static str = "version";

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<Vec<LiveVersion>>>> {
        Box::pin(async move {
            // Deleting a function deletes its versions: destroy need not read them.
            if rd.scope == crate::deploy::kind::Scope::Destroy {
                return Ok(Instances::new());
            }
            listed(rd).await
        })
    }

    /// A version to publish for each function that has none matching the desired code
    /// and configuration (after its `$LATEST` is brought there); a matching one still
    /// Pending (a run stopped right after publishing) is waited for.
    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let api_id = super::api::kept_id(p);
        p.versions = wanted(p.stack, p.env, p.snap, api_id.as_deref());
        for f in &p.stack.functions {
            let live = p.snap.get::<Version>(&f.name).unwrap_or_default();
            let want = function::desired(p.stack, f, p.env, api_id.as_deref());
            match matching(&want.fields, &live) {
                Some(v) if v.state == "Pending" => p.steps.push(Step::internal(
                    Node::new(Kind::Version, f.name.clone()),
                    format!(
                        "  version {} of function {} becoming Active",
                        v.version, f.name
                    ),
                    VersionOp::Ready(f.name.clone(), v.version.clone()),
                )),
                Some(_) => {}
                None => {
                    let code = want
                        .fields
                        .iter()
                        .find(|(n, _)| *n == "code_sha256")
                        .map(|(_, v)| v.clone())
                        .unwrap_or(Value::Null);
                    let newest = live.last().map(|v| v.version.clone());
                    let fields = [
                        field("version", newest, NEW_VERSION),
                        field("code_sha256", Value::Null, code),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    let reason = if live.is_empty() {
                        "its first version: integrations invoke published versions, never $LATEST"
                    } else {
                        "no published version has the desired code and configuration"
                    };
                    p.push(
                        Node::new(Kind::Version, f.name.clone()),
                        ResourceChange::new(label(&f.name), Action::Create, fields)
                            .with_reason(reason),
                        VersionOp::Publish(f.name.clone()),
                    );
                }
            }
        }
        Ok(())
    }

    /// Deleting a function deletes its versions: nothing to plan.
    fn plan_destroy(_: &mut Planner<'_>) -> Result<()> {
        Ok(())
    }
}

/// Steps that delete every version of the stack's functions that neither `keep` (the
/// versions the kept releases reference) nor `wanted` names. Planned by the deployment
/// kind, which knows which releases are kept.
pub fn plan_prune(
    p: &mut Planner<'_>,
    keep: &BTreeMap<String, BTreeSet<String>>,
    wanted: &Versions,
) {
    let live = p.live::<Version>();
    for (function, versions) in live.iter() {
        for v in versions {
            let referenced = keep.get(function).is_some_and(|k| k.contains(&v.version));
            let wanted = wanted.get(function).and_then(|w| w.as_deref()) == Some(&v.version);
            if referenced || wanted {
                continue;
            }
            let mut c = ResourceChange::new(
                format!("version {} of function {function}", v.version),
                Action::Delete,
                vec![],
            )
            .with_reason("no kept release references it ([releases] keep)");
            // Old code no release can go back to: housekeeping, not a change to agree to.
            c.risk = None;
            p.push(
                Node::new(Kind::VersionCleanup, format!("{function}:{}", v.version)),
                c,
                VersionOp::Delete(function.clone(), v.version.clone()),
            );
        }
    }
}

fn def<'a>(cx: &'a Cx, name: &str) -> Result<&'a FunctionDef> {
    cx.stack
        .function(name)
        .ok_or_else(|| Error::Conflict(format!("function {name} is not part of the stack")))
}

/// Waits until `version` of `name` is Active; Failed is an error with its reason.
async fn wait_active(cx: &Cx, name: &str, version: &str) -> Result<()> {
    wait::until(
        &format!("waiting for version {version} of function {name} to become Active"),
        ACTIVE,
        || async {
            let c = cx
                .aws
                .lambda
                .get_function_configuration()
                .function_name(name)
                .qualifier(version)
                .send()
                .await
                .map_err(|e| {
                    error::aws(format!("reading version {version} of function {name}"), e)
                })?;
            match c.state() {
                Some(State::Failed) => Err(Error::Aws {
                    doing: format!("version {version} of function {name}"),
                    code: c.state_reason_code().map(|r| r.as_str().to_string()),
                    message: c.state_reason().unwrap_or("entered state Failed").into(),
                }),
                Some(State::Pending) => Ok(None),
                _ => Ok(Some(())),
            }
        },
    )
    .await
}

/// Publishes `$LATEST` once it is what this deploy put there.
async fn publish(cx: &Cx, name: &str) -> Result<()> {
    let f = def(cx, name)?;
    // The function's own step waited for its update; read once, and wait only if it is
    // still busy (someone else's update).
    let read = || async {
        function::read(&cx.aws, name)
            .await?
            .ok_or_else(|| Error::Vanished(function::label(name)))
    };
    let mut live: LiveFunction = read().await?;
    if live.busy {
        function::wait_ready(cx, name).await?;
        live = read().await?;
    }
    let api_id = cx.facts().api_id.clone();
    let want = function::desired(&cx.stack, f, &cx.env, api_id.as_deref());
    let differs: Vec<&str> = want
        .fields
        .iter()
        .filter(|(n, w)| {
            let have = live
                .fields
                .iter()
                .find(|(h, _)| h == n)
                .map(|(_, v)| v.clone());
            field(n, have.unwrap_or(Value::Null), w.clone()).is_some()
        })
        .map(|(n, _)| *n)
        .collect();
    if !differs.is_empty() {
        return Err(Error::Conflict(format!(
            "function {name}: $LATEST is not what this deploy put there ({} differ); someone else changed it, so nothing was published from it. Run wsconn deploy again",
            differs.join(", ")
        )));
    }
    let sha = want
        .fields
        .iter()
        .find(|(n, _)| *n == "code_sha256")
        .and_then(|(_, v)| v.as_str().map(String::from));
    let published = wait::retrying(ACTIVE, error::is_lambda_retryable, || async {
        cx.aws
            .lambda
            .publish_version()
            .function_name(name)
            .set_code_sha256(sha.clone())
            .set_revision_id(live.revision_id.clone())
            .send()
            .await
            .map_err(|e| error::aws(format!("publishing a version of function {name}"), e))
    })
    .await
    .map(|p| {
        (
            p.version().filter(|v| *v != "$LATEST").map(String::from),
            p.state() == Some(&State::Active),
        )
    });
    let (version, active) = match published {
        Ok(p) => p,
        // The guards no longer match. After a lost answer (the SDK resent the call)
        // that is this very publish: the version it made has the desired code and
        // configuration. Anything else is someone else's change.
        Err(e) if is_guard_refusal(&e) => {
            match matching(&want.fields, &list(&cx.aws, name).await?) {
                Some(v) => (Some(v.version.clone()), v.state == "Active"),
                None => {
                    return Err(Error::Conflict(format!(
                        "function {name}: $LATEST changed just before wsconn published it ({}); someone else is changing it, so nothing was published from it. Run wsconn deploy again",
                        e.message()
                    )));
                }
            }
        }
        Err(e) => return Err(e),
    };
    let version = version.ok_or_else(|| Error::Aws {
        doing: format!("publishing a version of function {name}"),
        code: None,
        message: "the answer named no version".into(),
    })?;
    if !active {
        wait_active(cx, name, &version).await?;
    }
    cx.facts().versions.insert(name.to_string(), version);
    Ok(())
}

/// PublishVersion's guards refused: a stale `RevisionId` is PreconditionFailedException,
/// a `CodeSha256` that is not `$LATEST`'s is InvalidParameterValueException "CodeSHA256
/// (…) is different from current CodeSHA256 in $LATEST" (seen through CloudFormation).
fn is_guard_refusal(e: &Error) -> bool {
    match e.code() {
        Some("PreconditionFailedException") => true,
        Some("InvalidParameterValueException") => e.message().contains("CodeSHA256"),
        _ => false,
    }
}

async fn delete(cx: &Cx, name: &str, version: &str) -> Result<()> {
    let r = wait::retrying(ACTIVE, error::is_lambda_retryable, || async {
        cx.aws
            .lambda
            .delete_function()
            .function_name(name)
            .qualifier(version)
            .send()
            .await
            .map_err(|e| error::aws(format!("deleting version {version} of function {name}"), e))
    })
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

impl Op for VersionOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                VersionOp::Publish(name) => publish(cx, name).await,
                VersionOp::Ready(name, version) => {
                    wait_active(cx, name, version).await?;
                    cx.facts().versions.insert(name.clone(), version.clone());
                    Ok(())
                }
                VersionOp::Delete(name, version) => delete(cx, name, version).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(version: &str, sha: &str, state: &str) -> LiveVersion {
        LiveVersion {
            version: version.into(),
            fields: vec![("code_sha256", sha.into()), ("memory_mb", 128.into())],
            state: state.into(),
        }
    }

    #[test]
    fn the_newest_matching_version_serves() {
        let want = vec![("code_sha256", Value::from("a")), ("memory_mb", 128.into())];
        let all = [
            v("1", "a", "Active"),
            v("2", "b", "Active"),
            v("10", "a", "Active"),
        ];
        assert_eq!(matching(&want, &all).unwrap().version, "10");
        let other = vec![("code_sha256", Value::from("c")), ("memory_mb", 128.into())];
        assert!(matching(&other, &all).is_none());
        // A configuration difference is a different version too.
        let bigger = vec![("code_sha256", Value::from("b")), ("memory_mb", 256.into())];
        assert!(matching(&bigger, &all).is_none());
        // A Failed version never serves.
        assert!(matching(&want, &[v("3", "a", "Failed")]).is_none());
    }

    #[test]
    fn an_arn_names_its_version() {
        let env = AwsEnv {
            region: "r".into(),
            account: "1".into(),
            partition: "aws".into(),
        };
        assert_eq!(
            qualified_arn(&env, "f", Some("3")),
            "arn:aws:lambda:r:1:function:f:3"
        );
        assert!(qualified_arn(&env, "f", None).ends_with(":f:(new version)"));
    }
}
