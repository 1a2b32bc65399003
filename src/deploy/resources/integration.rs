//! Integrations, one per route, keyed by route key; their responses are a kind of their
//! own (`integration_response`).
//!
//! Integrations have no name; wsconn keys each by its description (`wsconn route
//! $connect`). `$connect`/`$disconnect` are AWS service integrations calling DynamoDB with
//! a request template; the other routes are AWS_PROXY integrations invoking a function.
//!
//! Duplicates (two integrations for one key, left by a lost answer in an older version
//! or by another tool) are resolved in the same run: the one the route targets is kept
//! (else the lowest id) and the rest are deleted once no route points at them.
//! Integrations under no route of the stack are orphans and are deleted too (with
//! consent).

use super::api;
use super::version::{self, NEW_VERSION, Versions};
use super::{all_pages, api_delete, api_write, create_once, vanished_or};
use crate::aws::{self, Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Place, Planner, Reader, Resource};
use crate::deploy::plan::{Action, FieldChange, ResourceChange, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::{IntegrationDef, Stack};
use aws_sdk_apigatewayv2::types::IntegrationType;
use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::BTreeMap;

const DESCRIPTION_PREFIX: &str = "wsconn route ";

pub fn description(key: &str) -> String {
    format!("{DESCRIPTION_PREFIX}{key}")
}

/// The route key an integration serves, from its description.
pub fn key_of(description: Option<&str>) -> Option<String> {
    description?
        .strip_prefix(DESCRIPTION_PREFIX)
        .filter(|k| !k.is_empty())
        .map(String::from)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub key: String,
    pub integration_type: String,
    pub method: String,
    pub uri: String,
    pub credentials: Option<String>,
    /// Request templates by content type (template selection key).
    pub templates: BTreeMap<String, String>,
    pub template_selection_expression: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveIntegration {
    pub id: String,
    /// From the description; `None` for an integration wsconn does not know.
    pub key: Option<String>,
    pub spec: Spec,
}

/// The integrations the stack wants; a Lambda proxy invokes the version of its
/// function in `versions` ([`NEW_VERSION`] while it is to be published).
pub fn desired(stack: &Stack, env: &AwsEnv, versions: &Versions) -> Vec<Spec> {
    stack
        .routes
        .iter()
        .map(|r| match &r.integration {
            IntegrationDef::DynamoDb {
                action, template, ..
            } => Spec {
                key: r.key.clone(),
                integration_type: "AWS".into(),
                method: "POST".into(),
                uri: env.dynamodb_action_uri(action.as_str()),
                credentials: Some(env.role_arn(&stack.names.api_role)),
                templates: [("$default".to_string(), template.text.clone())].into(),
                template_selection_expression: Some("\\$default".into()),
            },
            IntegrationDef::LambdaProxy { function } => Spec {
                key: r.key.clone(),
                integration_type: "AWS_PROXY".into(),
                method: "POST".into(),
                uri: env.lambda_invoke_uri(&version::qualified_arn(
                    env,
                    function,
                    versions.get(function).cloned().flatten().as_deref(),
                )),
                credentials: None,
                templates: BTreeMap::new(),
                template_selection_expression: None,
            },
        })
        .collect()
}

/// The compared fields, in display order. Templates are one field each, so a changed
/// template shows as a line diff of that template.
pub fn fields_of(s: &Spec) -> Vec<(String, Value)> {
    let mut f = vec![
        ("type".to_string(), Value::from(s.integration_type.clone())),
        ("method".into(), s.method.clone().into()),
        ("uri".into(), s.uri.clone().into()),
        ("credentials".into(), s.credentials.clone().into()),
        (
            "template_selection_expression".into(),
            s.template_selection_expression.clone().into(),
        ),
    ];
    for (k, v) in &s.templates {
        f.push((format!("request_templates.{k}"), v.clone().into()));
    }
    f
}

/// GetIntegrations of the stack's API, shared by the integrations and their responses
/// (one level after GetApis). Empty when there is no API; when the API answers
/// NotFoundException it was deleted after the listing, and the reader is told so.
pub async fn listed(rd: &Reader<'_>) -> Result<Vec<LiveIntegration>> {
    rd.shared("integrations", || async {
        let Some(api) = api::found(rd).await? else {
            return Ok(vec![]);
        };
        let aws = rd.aws;
        let api_id = api.id.as_str();
        match list(aws, api_id).await? {
            Some(v) => Ok(v),
            None => {
                rd.api_vanished();
                Ok(vec![])
            }
        }
    })
    .await
}

/// Every integration of `api_id`; `None` when the API is gone.
async fn list(aws: &Aws, api_id: &str) -> Result<Option<Vec<LiveIntegration>>> {
    let listed = all_pages(|token| async move {
        let out = aws
            .gated(
                aws.apigw
                    .get_integrations()
                    .api_id(api_id)
                    .set_next_token(token)
                    .send(),
            )
            .await;
        match out {
            Ok(out) => Ok((
                out.items().iter().map(|i| Some(live_from(i))).collect(),
                out.next_token().map(String::from),
            )),
            Err(e) if error::is_not_found(&e) => Ok((vec![None], None)),
            Err(e) => Err(error::aws(
                format!("listing integrations of API {api_id}"),
                e,
            )),
        }
    })
    .await?;
    Ok(listed.into_iter().collect())
}

fn live_from(i: &aws_sdk_apigatewayv2::types::Integration) -> LiveIntegration {
    let key = key_of(i.description());
    LiveIntegration {
        id: i.integration_id().unwrap_or_default().to_string(),
        spec: Spec {
            key: key.clone().unwrap_or_default(),
            integration_type: i
                .integration_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            method: i.integration_method().unwrap_or_default().to_string(),
            uri: i.integration_uri().unwrap_or_default().to_string(),
            // An emptied field reads back as "" or not at all: both mean unset.
            credentials: i
                .credentials_arn()
                .filter(|c| !c.is_empty())
                .map(String::from),
            templates: i
                .request_templates()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            template_selection_expression: i
                .template_selection_expression()
                .filter(|t| !t.is_empty())
                .map(String::from),
        },
        key,
    }
}

/// The integration kept for each of `keys`: the one the route with that key targets,
/// else the lowest id. Shared by planning and by the facts steps start from.
pub fn kept<'k>(
    integrations: &[&LiveIntegration],
    route_targets: &BTreeMap<String, String>,
    keys: impl IntoIterator<Item = &'k str>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for key in keys {
        let mut ids: Vec<&str> = integrations
            .iter()
            .filter(|i| i.key.as_deref() == Some(key))
            .map(|i| i.id.as_str())
            .collect();
        ids.sort();
        let targeted = route_targets
            .get(key)
            .and_then(|t| ids.iter().find(|id| **id == t.as_str()));
        if let Some(id) = targeted.or(ids.first()) {
            out.insert(key.to_string(), id.to_string());
        }
    }
    out
}

/// Optional settings set live but absent from the spec: UpdateIntegration leaves an
/// omitted field as it is, so only these are sent as empty values to clear them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Clear {
    pub credentials: bool,
    pub templates: bool,
    pub template_selection_expression: bool,
}

#[derive(Debug)]
pub enum IntegrationOp {
    Create(String),
    Update {
        key: String,
        id: String,
        clear: Clear,
    },
    Delete(String),
}

pub fn diff(
    spec: &Spec,
    live: Option<&LiveIntegration>,
) -> Option<(ResourceChange, IntegrationOp)> {
    let resource = format!("integration {}", spec.key);
    let Some(live) = live else {
        let fields = created_fields(
            fields_of(spec)
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect(),
        );
        return Some((
            ResourceChange::new(resource, Action::Create, fields),
            IntegrationOp::Create(spec.key.clone()),
        ));
    };
    let have: BTreeMap<String, Value> = fields_of(&live.spec).into_iter().collect();
    let want = fields_of(spec);
    let mut fields: Vec<FieldChange> = want
        .iter()
        .filter_map(|(k, v)| field(k, have.get(k).cloned().unwrap_or(Value::Null), v.clone()))
        .collect();
    // Templates present live under keys wsconn does not use.
    for (k, v) in &have {
        if !want.iter().any(|(w, _)| w == k) {
            fields.extend(field(k, v.clone(), Value::Null));
        }
    }
    if fields.is_empty() {
        return None;
    }
    let op = IntegrationOp::Update {
        key: spec.key.clone(),
        id: live.id.clone(),
        clear: Clear {
            credentials: spec.credentials.is_none() && live.spec.credentials.is_some(),
            templates: spec.templates.is_empty() && !live.spec.templates.is_empty(),
            template_selection_expression: spec.template_selection_expression.is_none()
                && live.spec.template_selection_expression.is_some(),
        },
    };
    Some((
        ResourceChange::new(format!("{resource} ({})", live.id), Action::Update, fields),
        op,
    ))
}

/// The kind: the API's integrations (live ones keyed by id: duplicates exist).
pub struct Integration;

impl Resource for Integration {
    type Live = LiveIntegration;
    const NAME: &'static str = "integration";
    const PLACE: Place = Place::InsideApi;

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveIntegration>>> {
        Box::pin(async move {
            Ok(listed(rd)
                .await?
                .into_iter()
                .map(|i| (i.id.clone(), i))
                .collect())
        })
    }

    /// Creates and updates per route key, then deletes of duplicates (housekeeping) and
    /// orphans (destructive).
    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live_in_api::<Integration>();
        let kept = p.wiring().integrations.clone();
        for spec in desired(p.stack, p.env, &p.versions) {
            let keep = kept.get(&spec.key).and_then(|id| live.get(id));
            if let Some((c, op)) = diff(&spec, keep) {
                let node = Node::new(Kind::Integration, spec.key.clone());
                let node = match p
                    .stack
                    .route(&spec.key)
                    .and_then(|r| p.stack.function_of(r))
                {
                    Some(f) => node.linked(f.name.clone()),
                    None => node,
                };
                p.push(node, c, op);
            }
        }
        for i in live.values() {
            if kept.values().any(|id| *id == i.id) {
                continue;
            }
            let mut c =
                ResourceChange::new(format!("integration {}", i.id), Action::Delete, vec![]);
            match i.key.as_deref().filter(|k| p.stack.route(k).is_some()) {
                Some(k) => {
                    // A second integration under one of the stack's own keys: wsconn's own
                    // leftover, removed without asking.
                    c = c.with_reason(format!("a duplicate integration for route {k}"));
                    c.risk = None;
                }
                None => c = c.with_reason("no route of this stack uses it (orphan)"),
            }
            p.push(
                Node::new(Kind::IntegrationCleanup, i.id.clone()),
                c,
                IntegrationOp::Delete(i.id.clone()),
            );
        }
        Ok(())
    }

    /// Deleting the API deletes its integrations.
    fn plan_destroy(_: &mut Planner<'_>) -> Result<()> {
        Ok(())
    }
}

/// The integration ids of `key` on the API, lowest first (read after an unknown outcome).
async fn find(cx: &Cx, api_id: &str, key: &str) -> Result<Option<String>> {
    Ok(list(&cx.aws, api_id)
        .await?
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.key.as_deref() == Some(key))
        .map(|i| i.id)
        .min())
}

/// The integration to write, with the versions this run published or found.
fn spec_for(cx: &Cx, key: &str) -> Result<Spec> {
    let s = desired(&cx.stack, &cx.env, &cx.versions())
        .into_iter()
        .find(|s| s.key == key)
        .ok_or_else(|| Error::Conflict(format!("route {key} is not part of the stack")))?;
    if s.uri.contains(NEW_VERSION) {
        return Err(Error::Conflict(format!(
            "integration {key}: the version it should invoke was not published (its step did not run)"
        )));
    }
    Ok(s)
}

async fn create(cx: &Cx, key: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    let apigw = &cx.aws.apigw;
    let s = spec_for(cx, key)?;
    let doing = format!("creating integration {key} (api {api_id})");
    let id = create_once(
        &doing,
        || async {
            apigw
                .create_integration()
                .api_id(&api_id)
                .description(description(key))
                .integration_type(IntegrationType::from(s.integration_type.as_str()))
                .integration_method(&s.method)
                .integration_uri(&s.uri)
                .set_credentials_arn(s.credentials.clone())
                .set_request_templates(
                    (!s.templates.is_empty()).then(|| s.templates.clone().into_iter().collect()),
                )
                .set_template_selection_expression(s.template_selection_expression.clone())
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| o.integration_id().unwrap_or_default().to_string())
        },
        || find(cx, &api_id, key),
    )
    .await
    .map_err(|e| super::vanish_on_missing_api(e, &api_id))?;
    cx.facts().integration_ids.insert(key.to_string(), id);
    Ok(())
}

async fn update(cx: &Cx, key: &str, id: &str, clear: Clear) -> Result<()> {
    let api_id = cx.api_id()?;
    let apigw = &cx.aws.apigw;
    let s = spec_for(cx, key)?;
    let what = format!("integration {key} ({id})");
    api_write(|| async {
        apigw
            .update_integration()
            .api_id(&api_id)
            .integration_id(id)
            .description(description(key))
            .integration_type(IntegrationType::from(s.integration_type.as_str()))
            .integration_method(&s.method)
            .integration_uri(&s.uri)
            .set_credentials_arn(
                s.credentials
                    .clone()
                    .or(clear.credentials.then(String::new)),
            )
            .set_request_templates(
                (!s.templates.is_empty() || clear.templates)
                    .then(|| s.templates.clone().into_iter().collect()),
            )
            .set_template_selection_expression(
                s.template_selection_expression
                    .clone()
                    .or(clear.template_selection_expression.then(String::new)),
            )
            .send()
            .await
            .map_err(|e| {
                vanished_or(
                    what.clone(),
                    format!("updating integration {key} (api {api_id})"),
                    e,
                )
            })
    })
    .await?;
    Ok(())
}

async fn delete(cx: &Cx, id: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    api_delete(&format!("integration {id} (api {api_id})"), || async {
        cx.aws
            .apigw
            .delete_integration()
            .api_id(&api_id)
            .integration_id(id)
            .send()
            .await
            .map(|_| ())
    })
    .await
}

impl Op for IntegrationOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                IntegrationOp::Create(key) => create(cx, key).await,
                IntegrationOp::Update { key, id, clear } => update(cx, key, id, *clear).await,
                IntegrationOp::Delete(id) => delete(cx, id).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            key: "$connect".into(),
            integration_type: "AWS".into(),
            method: "POST".into(),
            uri: "arn:aws:apigateway:r:dynamodb:action/PutItem".into(),
            credentials: Some("arn:role".into()),
            templates: [("$default".to_string(), "a\nb\n".to_string())].into(),
            template_selection_expression: Some("\\$default".into()),
        }
    }

    fn live(id: &str, key: Option<&str>, spec: Spec) -> LiveIntegration {
        LiveIntegration {
            id: id.into(),
            key: key.map(String::from),
            spec,
        }
    }

    #[test]
    fn in_sync_integration_has_no_change() {
        assert!(diff(&spec(), Some(&live("i", Some("$connect"), spec()))).is_none());
    }

    #[test]
    fn template_drift_is_field_by_field() {
        let mut l = spec();
        l.templates.insert("$default".into(), "a\nX\n".into());
        l.templates.insert("application/json".into(), "{}".into());
        let (c, op) = diff(&spec(), Some(&live("i", Some("$connect"), l))).unwrap();
        let names: Vec<_> = c.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "request_templates.$default",
                "request_templates.application/json"
            ]
        );
        assert!(matches!(op, IntegrationOp::Update { ref id, .. } if id == "i"));
    }

    #[test]
    fn only_settings_set_live_but_not_wanted_are_cleared() {
        let proxy = Spec {
            key: "$default".into(),
            integration_type: "AWS_PROXY".into(),
            method: "POST".into(),
            uri: "arn:fn".into(),
            credentials: None,
            templates: BTreeMap::new(),
            template_selection_expression: None,
        };
        let mut l = proxy.clone();
        l.uri = "arn:other".into();
        let (_, op) = diff(&proxy, Some(&live("i", Some("$default"), l.clone()))).unwrap();
        assert!(matches!(op, IntegrationOp::Update { clear, .. } if clear == Clear::default()));
        l.credentials = Some("arn:role".into());
        l.template_selection_expression = Some("x".into());
        let (_, op) = diff(&proxy, Some(&live("i", Some("$default"), l))).unwrap();
        let want = Clear {
            credentials: true,
            templates: false,
            template_selection_expression: true,
        };
        assert!(matches!(op, IntegrationOp::Update { clear, .. } if clear == want));
    }

    #[test]
    fn keys_come_from_descriptions() {
        assert_eq!(
            key_of(Some("wsconn route $connect")).as_deref(),
            Some("$connect")
        );
        assert_eq!(
            key_of(Some("wsconn route sendmessage")).as_deref(),
            Some("sendmessage")
        );
        assert_eq!(key_of(Some("wsconn route ")), None);
        assert_eq!(key_of(Some("made by hand")), None);
        assert_eq!(key_of(None), None);
    }

    #[test]
    fn the_targeted_duplicate_is_kept_else_the_lowest_id() {
        let l = |id: &str, key| live(id, key, spec());
        let all = [
            l("b2", Some("$connect")),
            l("a1", Some("$connect")),
            l("c3", Some("$disconnect")),
            l("z9", None),
        ];
        let all: Vec<&LiveIntegration> = all.iter().collect();
        let keys = ["$connect", "$disconnect", "$default"];
        let none = BTreeMap::new();
        let k = kept(&all, &none, keys);
        assert_eq!(k.get("$connect").map(String::as_str), Some("a1"));
        assert_eq!(k.get("$disconnect").map(String::as_str), Some("c3"));
        assert_eq!(k.get("$default"), None);
        let targets: BTreeMap<String, String> = [("$connect".to_string(), "b2".to_string())].into();
        assert_eq!(kept(&all, &targets, keys)["$connect"], "b2");
        // A route pointing at an integration that does not exist changes nothing.
        let stale: BTreeMap<String, String> = [("$connect".to_string(), "gone".to_string())].into();
        assert_eq!(kept(&all, &stale, keys)["$connect"], "a1");
    }
}
