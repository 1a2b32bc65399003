//! Statements in the resource policies of the stack's functions and of their published
//! versions, keyed by `function[:version]/statement id`.
//!
//! API Gateway invokes a function's published version (`…:function:<name>:<version>`),
//! and a version's resource policy is its own. So the stack declares one statement per
//! function on the version its release serves: API Gateway may invoke it, scoped by
//! SourceArn to this API (the pattern's template has none, so any API Gateway in any
//! account could invoke the function). Earlier versions keep theirs, so a rollback to
//! them still works. wsconn's own statement on the unqualified function (what releases
//! before versions used) is removed once the stage has switched. Every other statement
//! found on a function or a version is a grant wsconn did not write, such as
//! `lambda add-permission --principal '*'`: it widens who may invoke that code, so
//! `diff` reports it and `deploy` removes it, with consent.
//!
//! AWS behaviours handled (aws-notes): GetPolicy on a function without a policy answers
//! ResourceNotFoundException, meaning "no statements"; AddPermission right after
//! CreateFunction (or PublishVersion) can answer ResourceNotFoundException, so it is
//! retried; a statement cannot be changed in place, so a change is RemovePermission then
//! AddPermission; a statement id that exists answers ResourceConflictException, so after
//! a lost answer the statement is read back and compared. Writes to the functions'
//! policies are serialised by the engine (parallel AddPermission calls conflict).

use super::function::Function;
use super::version::{self, NEW_VERSION};
use crate::aws::{Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, Risk, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::{PermissionDef, Source};
use crate::wait;
use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

pub const PRINCIPAL: &str = "apigateway.amazonaws.com";
pub const ACTION: &str = "lambda:InvokeFunction";
pub use super::UNKNOWN_API;

/// What a statement grants, as compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub principal: Value,
    pub action: Value,
    pub source_arn: Value,
}

/// One statement of one resource policy: a function's, or one version's.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStatement {
    pub function: String,
    /// The version whose policy holds it; `None` for the unqualified function's.
    pub qualifier: Option<String>,
    pub sid: String,
    pub grants: Statement,
}

pub fn key(function: &str, qualifier: Option<&str>, sid: &str) -> String {
    match qualifier {
        Some(q) => format!("{function}:{q}/{sid}"),
        None => format!("{function}/{sid}"),
    }
}

pub fn label(function: &str, qualifier: Option<&str>, sid: &str) -> String {
    match qualifier {
        Some(q) if q == NEW_VERSION => {
            format!("permission {sid} on the new version of function {function}")
        }
        Some(q) => format!("permission {sid} on version {q} of function {function}"),
        None => format!("permission {sid} on function {function}"),
    }
}

/// Shown while the authorizer (and so its id) does not exist yet.
pub const UNKNOWN_AUTHORIZER: &str = "(authorizer id known after apply)";

/// The statement wanted; `api_id` is `None` while the API is still to be created, and
/// `authorizer_id` while the authorizer is.
pub fn desired(
    env: &AwsEnv,
    def: &PermissionDef,
    api_id: Option<&str>,
    authorizer_id: Option<&str>,
) -> Statement {
    let source = match (def.source, api_id, authorizer_id) {
        (Source::Api, Some(id), _) => env.execute_api_arn(id),
        (Source::Api, None, _) => UNKNOWN_API.into(),
        (Source::Authorizer, Some(api), Some(auth)) => format!(
            "arn:{}:execute-api:{}:{}:{api}/authorizers/{auth}",
            env.partition, env.region, env.account
        ),
        (Source::Authorizer, _, _) => UNKNOWN_AUTHORIZER.into(),
    };
    Statement {
        principal: PRINCIPAL.into(),
        action: ACTION.into(),
        source_arn: source.into(),
    }
}

/// Every statement of a Lambda resource policy (a JSON string), by statement id.
pub fn parse_statements(policy: &str) -> Vec<(String, Statement)> {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return vec![];
    };
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => vec![],
    };
    statements
        .iter()
        .map(|st| {
            let sid = st
                .get("Sid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let principal = match st.get("Principal") {
                Some(Value::Object(o)) => o
                    .get("Service")
                    .cloned()
                    .unwrap_or(Value::Object(o.clone())),
                Some(other) => other.clone(),
                None => Value::Null,
            };
            let grants = Statement {
                principal,
                action: st.get("Action").cloned().unwrap_or(Value::Null),
                source_arn: st
                    .pointer("/Condition/ArnLike/AWS:SourceArn")
                    .cloned()
                    .unwrap_or(Value::Null),
            };
            (sid, grants)
        })
        .collect()
}

/// GetPolicy: every statement on `function` (or on its version `qualifier`). No policy
/// (or no function or version yet) means none.
pub async fn read(
    aws: &Aws,
    function: &str,
    qualifier: Option<&str>,
) -> Result<Vec<LiveStatement>> {
    match aws
        .gated(
            aws.lambda
                .get_policy()
                .function_name(function)
                .set_qualifier(qualifier.map(String::from))
                .send(),
        )
        .await
    {
        Ok(o) => Ok(o
            .policy()
            .map(parse_statements)
            .unwrap_or_default()
            .into_iter()
            .map(|(sid, grants)| LiveStatement {
                function: function.to_string(),
                qualifier: qualifier.map(String::from),
                sid,
                grants,
            })
            .collect()),
        Err(e) if error::is_not_found(&e) => Ok(vec![]),
        Err(e) => Err(error::aws(
            format!(
                "reading the resource policy of {}",
                match qualifier {
                    Some(q) => format!("version {q} of function {function}"),
                    None => format!("function {function}"),
                }
            ),
            e,
        )),
    }
}

/// Which resource policy a step writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// The unqualified function's.
    Function,
    /// A published version's.
    Version(String),
    /// The version this run's release serves (published by this run).
    Released,
}

#[derive(Debug)]
pub enum PermissionOp {
    Add {
        function: String,
        policy: Policy,
        sid: String,
    },
    RemoveThenAdd {
        function: String,
        policy: Policy,
        sid: String,
    },
    /// A statement the stack does not declare there.
    Remove {
        function: String,
        policy: Policy,
        sid: String,
    },
}

fn fields_of(s: &Statement) -> Vec<(&'static str, Value)> {
    vec![
        ("principal", s.principal.clone()),
        ("action", s.action.clone()),
        ("source_arn", s.source_arn.clone()),
    ]
}

/// Pure comparison of one statement: `want` is `None` for a statement the stack does not
/// declare, `live` `None` for one that does not exist; `policy` is whose policy holds it.
pub fn diff(
    function: &str,
    policy: Policy,
    sid: &str,
    want: Option<&Statement>,
    live: Option<&Statement>,
) -> Option<(ResourceChange, PermissionOp)> {
    let shown = match &policy {
        Policy::Function => None,
        Policy::Version(v) => Some(v.as_str()),
        Policy::Released => Some(NEW_VERSION),
    };
    let resource = label(function, shown, sid);
    let (function, sid) = (function.to_string(), sid.to_string());
    match (want, live) {
        (None, None) => None,
        (Some(want), None) => {
            let c = ResourceChange::new(resource, Action::Create, created_fields(fields_of(want)))
                .with_risk(Some(Risk::WidensPermissions));
            Some((
                c,
                PermissionOp::Add {
                    function,
                    policy,
                    sid,
                },
            ))
        }
        (Some(want), Some(live)) => {
            let fields: Vec<_> = fields_of(live)
                .into_iter()
                .zip(fields_of(want))
                .filter_map(|((name, have), (_, want))| field(name, have, want))
                .collect();
            (!fields.is_empty()).then(|| {
                let c = ResourceChange::new(resource, Action::Update, fields)
                    .with_reason("a statement cannot change in place: it is removed, then added")
                    .with_risk(Some(Risk::WidensPermissions));
                (
                    c,
                    PermissionOp::RemoveThenAdd {
                        function,
                        policy,
                        sid,
                    },
                )
            })
        }
        (None, Some(live)) => {
            let fields = fields_of(live)
                .into_iter()
                .filter_map(|(name, have)| field(name, have, Value::Null))
                .collect();
            let c = ResourceChange::new(resource, Action::Delete, fields)
                .with_reason("a grant wsconn did not write: it widens who may invoke the function");
            Some((
                c,
                PermissionOp::Remove {
                    function,
                    policy,
                    sid,
                },
            ))
        }
    }
}

/// The kind: every statement on the stack's functions and their published versions.
pub struct Permission;

impl Resource for Permission {
    type Live = LiveStatement;
    const NAME: &'static str = "permission";

    /// One GetPolicy per function and per published version (after the versions'
    /// listing, which the version kind shares).
    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveStatement>>> {
        Box::pin(async move {
            // Deleting a function deletes its resource policies: destroy need not read them.
            if rd.scope == crate::deploy::kind::Scope::Destroy {
                return Ok(Instances::new());
            }
            let unqualified = futures::future::try_join_all(
                rd.stack
                    .functions
                    .iter()
                    .map(|f| read(rd.aws, &f.name, None)),
            );
            let versioned = async {
                let listed = version::listed(rd).await?;
                futures::future::try_join_all(listed.iter().flat_map(|(f, versions)| {
                    versions
                        .iter()
                        .map(move |v| read(rd.aws, f, Some(v.version.as_str())))
                }))
                .await
            };
            let (a, b) = futures::try_join!(unqualified, versioned)?;
            Ok(a.into_iter()
                .chain(b)
                .flatten()
                .map(|s| (key(&s.function, s.qualifier.as_deref(), &s.sid), s))
                .collect())
        })
    }

    /// On the version each function's release serves: the declared statements. On the
    /// unqualified function: wsconn's own statement goes after the switch, any other now.
    /// On any version: a statement wsconn did not write goes.
    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let api_id = super::api::kept_id(p);
        let authorizer_id = super::authorizer::kept_id(p);
        let live = p.live::<Permission>();
        // A function the plan creates has no statements yet, whatever was read.
        let functions = p.live::<Function>();
        for f in &p.stack.functions {
            let exists = functions.contains_key(&f.name);
            let ours: BTreeSet<&str> = f.permissions.iter().map(|d| d.sid.as_str()).collect();
            let on = |q: Option<&str>| {
                live.values()
                    .filter(|s| exists && s.function == f.name && s.qualifier.as_deref() == q)
                    .collect::<Vec<_>>()
            };
            let served = p.versions.get(&f.name).cloned().flatten();
            // The version the release serves: its declared statements.
            let (policy, q) = match &served {
                Some(v) => (Policy::Version(v.clone()), Some(v.as_str())),
                None => (Policy::Released, None),
            };
            let here = if q.is_some() { on(q) } else { vec![] };
            let sids: BTreeSet<&str> = ours
                .iter()
                .copied()
                .chain(here.iter().map(|s| s.sid.as_str()))
                .collect();
            for sid in sids {
                let want = f
                    .permissions
                    .iter()
                    .find(|d| d.sid == sid)
                    .map(|d| desired(p.env, d, api_id.as_deref(), authorizer_id.as_deref()));
                let have = here.iter().find(|s| s.sid == sid).map(|s| &s.grants);
                if let Some((c, op)) = diff(&f.name, policy.clone(), sid, want.as_ref(), have) {
                    p.push(Node::new(Kind::Permission, f.name.clone()), c, op);
                }
            }
            // The unqualified function: invoked by no release any more.
            for s in on(None) {
                let Some((mut c, op)) =
                    diff(&f.name, Policy::Function, &s.sid, None, Some(&s.grants))
                else {
                    continue;
                };
                let node = if ours.contains(s.sid.as_str()) {
                    c.reason = Some(
                        "releases invoke published versions, so $LATEST needs no grant; removed once the stage has switched"
                            .into(),
                    );
                    c.risk = None;
                    Node::new(Kind::PermissionCleanup, f.name.clone())
                } else {
                    Node::new(Kind::Permission, f.name.clone())
                };
                p.push(node, c, op);
            }
            // Other versions keep wsconn's statement (a rollback needs it); a foreign one goes.
            let others: Vec<&LiveStatement> = live
                .values()
                .filter(|s| exists && s.function == f.name)
                .filter(|s| s.qualifier.is_some() && s.qualifier.as_deref() != q)
                .filter(|s| !ours.contains(s.sid.as_str()))
                .collect();
            for s in others {
                let v = s.qualifier.clone().unwrap_or_default();
                if let Some((c, op)) =
                    diff(&f.name, Policy::Version(v), &s.sid, None, Some(&s.grants))
                {
                    p.push(Node::new(Kind::Permission, f.name.clone()), c, op);
                }
            }
        }
        Ok(())
    }

    /// Deleting a function deletes its resource policies: nothing to plan.
    fn plan_destroy(_: &mut Planner<'_>) -> Result<()> {
        Ok(())
    }
}

/// The version a step's policy belongs to (`None`: the unqualified function's).
fn qualifier(cx: &Cx, function: &str, policy: &Policy) -> Result<Option<String>> {
    match policy {
        Policy::Function => Ok(None),
        Policy::Version(v) => Ok(Some(v.clone())),
        Policy::Released => cx
            .facts()
            .versions
            .get(function)
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "function {function}: the version to grant API Gateway was not published (its step did not run)"
                ))
            }),
    }
}

async fn remove(cx: &Cx, function: &str, qualifier: Option<&str>, sid: &str) -> Result<()> {
    match cx
        .aws
        .lambda
        .remove_permission()
        .function_name(function)
        .set_qualifier(qualifier.map(String::from))
        .statement_id(sid)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if error::is_not_found(&e) => Ok(()),
        Err(e) => Err(error::aws(
            format!("removing {}", label(function, qualifier, sid)),
            e,
        )),
    }
}

/// AddPermission answers ResourceNotFoundException until a new function (or version) is
/// visible, and ResourceConflictException while an update is in progress.
fn is_add_retryable(e: &Error) -> bool {
    error::is_function_not_visible_yet(e) || error::is_lambda_retryable(e)
}

async fn send_add(
    cx: &Cx,
    function: &str,
    qualifier: Option<&str>,
    sid: &str,
    source: &str,
) -> Result<()> {
    wait::retrying(Duration::from_secs(60), is_add_retryable, || async {
        cx.aws
            .lambda
            .add_permission()
            .function_name(function)
            .set_qualifier(qualifier.map(String::from))
            .statement_id(sid)
            .principal(PRINCIPAL)
            .action(ACTION)
            .source_arn(source)
            .send()
            .await
            .map_err(|e| error::aws(format!("adding {}", label(function, qualifier, sid)), e))
    })
    .await
    .map(|_| ())
}

fn def<'a>(cx: &'a Cx, function: &str, sid: &str) -> Result<&'a PermissionDef> {
    cx.stack
        .function(function)
        .and_then(|f| f.permissions.iter().find(|d| d.sid == sid))
        .ok_or_else(|| {
            Error::Conflict(format!(
                "{} is not part of the stack",
                label(function, None, sid)
            ))
        })
}

async fn add(cx: &Cx, function: &str, qualifier: Option<&str>, sid: &str) -> Result<()> {
    let authorizer_id = cx.facts().authorizer_id.clone();
    let want = desired(
        &cx.env,
        def(cx, function, sid)?,
        Some(&cx.api_id()?),
        authorizer_id.as_deref(),
    );
    let source = want.source_arn.as_str().unwrap_or_default().to_string();
    match send_add(cx, function, qualifier, sid, &source).await {
        // "The statement id (…) provided already exists": a lost answer, or another
        // writer. Compare what is there; replace it only if it differs.
        Err(e)
            if e.code() == Some("ResourceConflictException")
                && e.message().contains("already exists") =>
        {
            let live = read(&cx.aws, function, qualifier).await?;
            if live.iter().any(|s| s.sid == sid && s.grants == want) {
                return Ok(());
            }
            remove(cx, function, qualifier, sid).await?;
            send_add(cx, function, qualifier, sid, &source).await
        }
        other => other,
    }
}

impl Op for PermissionOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                PermissionOp::Add {
                    function,
                    policy,
                    sid,
                } => {
                    let q = qualifier(cx, function, policy)?;
                    add(cx, function, q.as_deref(), sid).await
                }
                PermissionOp::RemoveThenAdd {
                    function,
                    policy,
                    sid,
                } => {
                    let q = qualifier(cx, function, policy)?;
                    remove(cx, function, q.as_deref(), sid).await?;
                    add(cx, function, q.as_deref(), sid).await
                }
                PermissionOp::Remove {
                    function,
                    policy,
                    sid,
                } => {
                    let q = qualifier(cx, function, policy)?;
                    remove(cx, function, q.as_deref(), sid).await
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"Version":"2012-10-17","Id":"default","Statement":[{"Sid":"other","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction"},{"Sid":"sid","Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"arn:f","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:execute-api:r:1:abc/*"}}}]}"#;

    fn find(sid: &str) -> Option<Statement> {
        parse_statements(POLICY)
            .into_iter()
            .find(|(s, _)| s == sid)
            .map(|(_, st)| st)
    }

    #[test]
    fn every_statement_is_read_with_its_source_arn() {
        let s = find("sid").unwrap();
        assert_eq!(s.principal, PRINCIPAL);
        assert_eq!(s.source_arn, "arn:aws:execute-api:r:1:abc/*");
        let other = find("other").unwrap();
        assert_eq!(other.principal, "*");
        assert_eq!(other.source_arn, Value::Null);
        assert!(find("missing").is_none());
        assert!(parse_statements("not json").is_empty());
    }

    #[test]
    fn a_different_source_arn_is_a_remove_then_add() {
        let want = Statement {
            principal: PRINCIPAL.into(),
            action: ACTION.into(),
            source_arn: "arn:aws:execute-api:r:1:new/*".into(),
        };
        let live = find("sid").unwrap();
        let (c, op) = diff("f", Policy::Function, "sid", Some(&want), Some(&live)).unwrap();
        assert_eq!(c.fields.len(), 1);
        assert_eq!(c.fields[0].field, "source_arn");
        assert!(matches!(op, PermissionOp::RemoveThenAdd { .. }));
        let unscoped = Statement {
            source_arn: Value::Null,
            ..live
        };
        assert_eq!(
            diff("f", Policy::Function, "sid", Some(&want), Some(&unscoped))
                .unwrap()
                .0
                .fields[0]
                .current,
            Value::Null
        );
    }

    #[test]
    fn a_foreign_statement_is_a_delete_that_needs_consent_and_names_what_it_grants() {
        let (c, op) = diff(
            "f",
            Policy::Version("3".into()),
            "other",
            None,
            find("other").as_ref(),
        )
        .unwrap();
        assert_eq!(c.action, Action::Delete);
        assert_eq!(c.resource, "permission other on version 3 of function f");
        assert_eq!(c.risk, Some(Risk::Destructive));
        assert_eq!(c.fields[0].field, "principal");
        assert_eq!(c.fields[0].current, "*");
        assert!(matches!(op, PermissionOp::Remove { ref sid, .. } if sid == "other"));
    }
}
