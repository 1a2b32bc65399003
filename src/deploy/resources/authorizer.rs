//! The `$connect` authorizer: a Lambda REQUEST authorizer inside the stack's API, named
//! `<stack>-authorizer`. Live authorizers are keyed by id (API Gateway has no unique
//! names): the lowest id with the stack's name is kept, any other authorizer in the
//! stack's API is deleted once no route uses it.
//!
//! AWS behaviours handled (aws-notes): CreateAuthorizer has no client token, so a lost
//! answer is followed by a read by name before it is resent (`create_once`); API
//! Gateway refuses to delete an authorizer a route still uses, so the graph updates
//! `$connect` first; writes to one API are serialised.

use super::version::{self, Versions};
use super::{all_pages, api, api_delete, api_write, create_once, vanished_or};
use crate::aws::{self, Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Place, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::{AuthorizerDef, Stack};
use aws_sdk_apigatewayv2::types::AuthorizerType;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct LiveAuthorizer {
    pub id: String,
    pub name: String,
    pub authorizer_type: String,
    pub uri: Option<String>,
    pub identity_sources: Vec<String>,
}

/// The fields compared, in order.
pub fn fields(
    authorizer_type: &str,
    uri: Option<&str>,
    sources: &[String],
) -> Vec<(&'static str, Value)> {
    vec![
        ("authorizer_type", authorizer_type.into()),
        ("authorizer_uri", uri.into()),
        ("identity_sources", json!(sources)),
    ]
}

/// The authorizer's URI invokes the version of its function in `versions`.
pub fn uri(def: &AuthorizerDef, env: &AwsEnv, versions: &Versions) -> String {
    env.lambda_invoke_uri(&version::qualified_arn(
        env,
        &def.function,
        versions.get(&def.function).cloned().flatten().as_deref(),
    ))
}

pub fn desired(
    def: &AuthorizerDef,
    env: &AwsEnv,
    versions: &Versions,
) -> Vec<(&'static str, Value)> {
    fields(
        "REQUEST",
        Some(&uri(def, env, versions)),
        &def.identity_sources,
    )
}

/// The URI to write, with the version this run published or found.
fn applied_uri(cx: &Cx, d: &AuthorizerDef) -> Result<String> {
    let uri = uri(d, &cx.env, &cx.versions());
    if uri.contains(version::NEW_VERSION) {
        return Err(Error::Conflict(format!(
            "{}: the version it should invoke was not published (its step did not run)",
            label(&d.name, None)
        )));
    }
    Ok(uri)
}

fn fields_of(l: &LiveAuthorizer) -> Vec<(&'static str, Value)> {
    fields(&l.authorizer_type, l.uri.as_deref(), &l.identity_sources)
}

pub fn label(name: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("authorizer {name} ({id})"),
        None => format!("authorizer {name}"),
    }
}

/// The live authorizer the stack keeps: the lowest id with its name.
pub fn kept(live: &Instances<LiveAuthorizer>, stack: &Stack) -> Option<String> {
    let def = stack.authorizer.as_ref()?;
    live.values()
        .filter(|a| a.name == def.name)
        .map(|a| a.id.clone())
        .min()
}

/// The id of the authorizer a plan keeps; `None` while the plan makes one (or a new API).
pub fn kept_id(p: &Planner<'_>) -> Option<String> {
    if p.creates(Kind::Authorizer) {
        return None;
    }
    kept(&p.live_in_api::<Authorizer>(), p.stack)
}

/// GetAuthorizers of `api_id`; `None` when the API is gone.
async fn list(aws: &Aws, api_id: &str) -> Result<Option<Vec<LiveAuthorizer>>> {
    let listed = all_pages(|token| async move {
        let out = aws
            .gated(
                aws.apigw
                    .get_authorizers()
                    .api_id(api_id)
                    .set_next_token(token)
                    .send(),
            )
            .await;
        match out {
            Ok(out) => Ok((
                out.items()
                    .iter()
                    .map(|a| {
                        Some(LiveAuthorizer {
                            id: a.authorizer_id().unwrap_or_default().to_string(),
                            name: a.name().unwrap_or_default().to_string(),
                            authorizer_type: a
                                .authorizer_type()
                                .map(|t| t.as_str().to_string())
                                .unwrap_or_default(),
                            uri: a.authorizer_uri().map(String::from),
                            identity_sources: a.identity_source().to_vec(),
                        })
                    })
                    .collect(),
                out.next_token().map(String::from),
            )),
            Err(e) if error::is_not_found(&e) => Ok((vec![None], None)),
            Err(e) => Err(error::aws(
                format!("listing authorizers of API {api_id}"),
                e,
            )),
        }
    })
    .await?;
    Ok(listed.into_iter().collect())
}

#[derive(Debug)]
pub enum AuthorizerOp {
    Create,
    Update(String),
    Delete(String),
}

/// Pure comparison of the desired authorizer with the kept live one.
pub fn diff(
    def: &AuthorizerDef,
    want: Vec<(&'static str, Value)>,
    live: Option<&LiveAuthorizer>,
) -> Option<(ResourceChange, AuthorizerOp)> {
    let Some(live) = live else {
        let c = ResourceChange::new(label(&def.name, None), Action::Create, created_fields(want));
        return Some((c, AuthorizerOp::Create));
    };
    let changed: Vec<_> = want
        .into_iter()
        .zip(fields_of(live))
        .filter_map(|((name, want), (_, have))| field(name, have, want))
        .collect();
    (!changed.is_empty()).then(|| {
        (
            ResourceChange::new(label(&def.name, Some(&live.id)), Action::Update, changed),
            AuthorizerOp::Update(live.id.clone()),
        )
    })
}

/// The kind: the authorizers of the stack's API, by id.
pub struct Authorizer;

impl Resource for Authorizer {
    type Live = LiveAuthorizer;
    const NAME: &'static str = "authorizer";
    const PLACE: Place = Place::InsideApi;

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveAuthorizer>>> {
        Box::pin(async move {
            let Some(found) = api::found(rd).await? else {
                return Ok(Instances::new());
            };
            match list(rd.aws, &found.id).await? {
                Some(v) => Ok(v.into_iter().map(|a| (a.id.clone(), a)).collect()),
                None => {
                    rd.api_vanished();
                    Ok(Instances::new())
                }
            }
        })
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live_in_api::<Authorizer>();
        let keep = kept(&live, p.stack);
        if let Some(def) = &p.stack.authorizer {
            let have = keep.as_ref().and_then(|id| live.get(id));
            if let Some((c, op)) = diff(def, desired(def, p.env, &p.versions), have) {
                p.push(
                    Node::one(Kind::Authorizer).linked(def.function.clone()),
                    c,
                    op,
                );
            }
        }
        for extra in live.values().filter(|a| Some(&a.id) != keep.as_ref()) {
            let reason = match &p.stack.authorizer {
                Some(d) if d.name == extra.name => "a duplicate of the stack's authorizer",
                Some(_) => "the stack defines no such authorizer",
                None => "wsconn.toml declares no [authorizer]",
            };
            p.push(
                Node::new(Kind::AuthorizerCleanup, extra.id.clone()),
                ResourceChange::new(label(&extra.name, Some(&extra.id)), Action::Delete, vec![])
                    .with_reason(reason),
                AuthorizerOp::Delete(extra.id.clone()),
            );
        }
        Ok(())
    }

    /// Deleting the API deletes its authorizers.
    fn plan_destroy(_: &mut Planner<'_>) -> Result<()> {
        Ok(())
    }
}

fn def(cx: &Cx) -> Result<&AuthorizerDef> {
    cx.stack
        .authorizer
        .as_ref()
        .ok_or_else(|| Error::Conflict("the stack declares no authorizer".into()))
}

async fn find(cx: &Cx, api_id: &str, name: &str) -> Result<Option<String>> {
    Ok(list(&cx.aws, api_id)
        .await?
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.name == name)
        .map(|a| a.id)
        .min())
}

async fn create(cx: &Cx) -> Result<()> {
    let api_id = cx.api_id()?;
    let d = def(cx)?;
    let uri = applied_uri(cx, d)?;
    let apigw = &cx.aws.apigw;
    let id = create_once(
        &format!("creating {} (api {api_id})", label(&d.name, None)),
        || async {
            apigw
                .create_authorizer()
                .api_id(&api_id)
                .name(&d.name)
                .authorizer_type(AuthorizerType::Request)
                .authorizer_uri(&uri)
                .set_identity_source(Some(d.identity_sources.clone()))
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| o.authorizer_id().unwrap_or_default().to_string())
        },
        || find(cx, &api_id, &d.name),
    )
    .await
    .map_err(|e| match e.is_not_found() {
        true => Error::Vanished(format!("WebSocket API {api_id}")),
        false => e,
    })?;
    cx.facts().authorizer_id = Some(id);
    Ok(())
}

async fn update(cx: &Cx, id: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    let d = def(cx)?;
    let uri = applied_uri(cx, d)?;
    api_write(|| async {
        cx.aws
            .apigw
            .update_authorizer()
            .api_id(&api_id)
            .authorizer_id(id)
            .name(&d.name)
            .authorizer_type(AuthorizerType::Request)
            .authorizer_uri(&uri)
            .set_identity_source(Some(d.identity_sources.clone()))
            .send()
            .await
            .map_err(|e| {
                vanished_or(
                    label(&d.name, Some(id)),
                    format!("updating {} (api {api_id})", label(&d.name, Some(id))),
                    e,
                )
            })
    })
    .await?;
    Ok(())
}

async fn delete(cx: &Cx, id: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    api_delete(&format!("authorizer {id} (api {api_id})"), || async {
        cx.aws
            .apigw
            .delete_authorizer()
            .api_id(&api_id)
            .authorizer_id(id)
            .send()
            .await
            .map(|_| ())
    })
    .await
}

impl Op for AuthorizerOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                AuthorizerOp::Create => create(cx).await,
                AuthorizerOp::Update(id) => update(cx, id).await,
                AuthorizerOp::Delete(id) => delete(cx, id).await,
            }
        })
    }
}

/// How a route shows the authorizer it uses: by name when it is one the API holds.
pub fn show(id: Option<&str>, names: &BTreeMap<String, String>) -> String {
    match id {
        None => "(none)".into(),
        Some(id) => match names.get(id) {
            Some(name) => format!("authorizer {name}"),
            None => format!("authorizer {id}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> AwsEnv {
        AwsEnv {
            region: "eu-west-1".into(),
            account: "111122223333".into(),
            partition: "aws".into(),
        }
    }

    fn def() -> AuthorizerDef {
        AuthorizerDef {
            name: "chat-authorizer".into(),
            function: "chat-authorizer".into(),
            identity_sources: vec!["route.request.querystring.token".into()],
        }
    }

    fn live(id: &str, sources: &[&str]) -> LiveAuthorizer {
        LiveAuthorizer {
            id: id.into(),
            name: "chat-authorizer".into(),
            authorizer_type: "REQUEST".into(),
            uri: Some(
                env().lambda_invoke_uri(&format!("{}:4", env().function_arn("chat-authorizer"))),
            ),
            identity_sources: sources.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn v4() -> Versions {
        [("chat-authorizer".to_string(), Some("4".to_string()))].into()
    }

    #[test]
    fn the_desired_authorizer_invokes_the_functions_version_with_the_sources() {
        let want = desired(&def(), &env(), &v4());
        assert_eq!(want[0], ("authorizer_type", json!("REQUEST")));
        assert_eq!(
            want[1].1,
            json!(
                "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:111122223333:function:chat-authorizer:4/invocations"
            )
        );
        assert_eq!(want[2].1, json!(["route.request.querystring.token"]));
    }

    #[test]
    fn changed_identity_sources_are_an_update_of_that_field() {
        let l = live("a1", &["route.request.header.Authorization"]);
        let (c, op) = diff(&def(), desired(&def(), &env(), &v4()), Some(&l)).unwrap();
        assert_eq!(c.fields.len(), 1);
        assert_eq!(c.fields[0].field, "identity_sources");
        assert!(matches!(op, AuthorizerOp::Update(ref id) if id == "a1"));
        let same = live("a1", &["route.request.querystring.token"]);
        assert!(diff(&def(), desired(&def(), &env(), &v4()), Some(&same)).is_none());
        let (c, _) = diff(&def(), desired(&def(), &env(), &v4()), None).unwrap();
        assert_eq!(c.action, Action::Create);
    }

    #[test]
    fn the_lowest_id_with_the_name_is_kept() {
        let mut stack = crate::stack::tests_support::stack("chat");
        let live: Instances<LiveAuthorizer> = [
            ("b".to_string(), live("b", &[])),
            ("a".to_string(), live("a", &[])),
        ]
        .into();
        assert_eq!(kept(&live, &stack), None);
        stack.authorizer = Some(def());
        assert_eq!(kept(&live, &stack).as_deref(), Some("a"));
        let names: BTreeMap<String, String> =
            [("a".to_string(), "chat-authorizer".to_string())].into();
        assert_eq!(show(Some("a"), &names), "authorizer chat-authorizer");
        assert_eq!(show(Some("z"), &names), "authorizer z");
        assert_eq!(show(None, &names), "(none)");
    }
}
