//! The three integrations, one per route key, with their integration responses.
//!
//! Integrations have no name; wsconn keys each by its description (`wsconn route
//! $connect`). `$connect`/`$disconnect` are AWS service integrations calling DynamoDB with
//! a request template; a non-proxy integration needs an integration response (`/200/`),
//! or calls fail with "No match for output mapping". `$default` is an AWS_PROXY
//! integration to the function, which has no responses.
//!
//! Duplicates (two integrations for one key, left by a lost answer in an older version
//! or by another tool) are resolved in the same run: the one the route targets is kept
//! (else the lowest id) and the rest are deleted once no route points at them.
//! Integrations under no known key are orphans and are deleted too (with consent).

use super::{all_pages, api_delete, api_write, create_once, vanished_or};
use crate::aws::{self, Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::plan::{Action, FieldChange, ResourceChange, created_fields, field};
use crate::deploy::step::{Op, Step};
use crate::error::{self, Result};
use crate::stack::{IntegrationDef, ROUTE_KEYS, Stack};
use aws_sdk_apigatewayv2::types::IntegrationType;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const DESCRIPTION_PREFIX: &str = "wsconn route ";

pub fn description(key: &str) -> String {
    format!("{DESCRIPTION_PREFIX}{key}")
}

/// The route key an integration serves, from its description.
pub fn key_of(description: Option<&str>) -> Option<&'static str> {
    let k = description?.strip_prefix(DESCRIPTION_PREFIX)?;
    ROUTE_KEYS.iter().find(|r| **r == k).copied()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub key: &'static str,
    pub integration_type: String,
    pub method: String,
    pub uri: String,
    pub credentials: Option<String>,
    /// Request templates by content type (template selection key).
    pub templates: BTreeMap<String, String>,
    pub template_selection_expression: Option<String>,
    pub responses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveIntegration {
    pub id: String,
    /// From the description; `None` for an integration wsconn does not know.
    pub key: Option<&'static str>,
    pub spec: Spec,
}

pub fn desired(stack: &Stack, env: &AwsEnv) -> Vec<Spec> {
    stack
        .routes
        .iter()
        .map(|r| match &r.integration {
            IntegrationDef::DynamoDb {
                action,
                template,
                response_key,
            } => Spec {
                key: r.key,
                integration_type: "AWS".into(),
                method: "POST".into(),
                uri: env.dynamodb_action_uri(action.as_str()),
                credentials: Some(env.role_arn(&stack.names.api_role)),
                templates: [("$default".to_string(), template.text.clone())].into(),
                template_selection_expression: Some("\\$default".into()),
                responses: vec![response_key.to_string()],
            },
            IntegrationDef::LambdaProxy => Spec {
                key: r.key,
                integration_type: "AWS_PROXY".into(),
                method: "POST".into(),
                uri: env.lambda_invoke_uri(&env.function_arn(&stack.function.name)),
                credentials: None,
                templates: BTreeMap::new(),
                template_selection_expression: None,
                responses: vec![],
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
    f.push(("integration_responses".into(), json!(s.responses)));
    f
}

/// GetIntegrations, then every integration's responses at once: two levels.
/// `None` when the API vanished under the listing (NotFoundException).
pub async fn read_all(aws: &Aws, api_id: &str) -> Result<Option<Vec<LiveIntegration>>> {
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
                out.items().iter().map(|i| Some(i.clone())).collect(),
                out.next_token().map(String::from),
            )),
            Err(e) if error::code_of(&e) == Some("NotFoundException") => Ok((vec![None], None)),
            Err(e) => Err(error::aws(
                format!("listing integrations of API {api_id}"),
                e,
            )),
        }
    })
    .await?;
    let Some(listed) = listed.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    let lives = futures::future::try_join_all(listed.iter().map(|i| async move {
        let id = i.integration_id().unwrap_or_default().to_string();
        let out = aws
            .gated(
                aws.apigw
                    .get_integration_responses()
                    .api_id(api_id)
                    .integration_id(&id)
                    .send(),
            )
            .await;
        let responses = match out {
            Ok(o) => o
                .items()
                .iter()
                .filter_map(|r| r.integration_response_key().map(String::from))
                .collect::<Vec<_>>(),
            // The integration (or the whole API) went away after the listing.
            Err(e) if error::code_of(&e) == Some("NotFoundException") => return Ok(None),
            Err(e) => {
                return Err(error::aws(
                    format!("reading integration responses of {id} (api {api_id})"),
                    e,
                ));
            }
        };
        Ok(Some(live_from(i, responses)))
    }))
    .await?;
    // A vanished child means a vanished API only if the API itself is gone; a single
    // deleted integration is simply absent.
    Ok(Some(lives.into_iter().flatten().collect()))
}

fn live_from(
    i: &aws_sdk_apigatewayv2::types::Integration,
    mut responses: Vec<String>,
) -> LiveIntegration {
    responses.sort();
    let key = key_of(i.description());
    LiveIntegration {
        id: i.integration_id().unwrap_or_default().to_string(),
        key,
        spec: Spec {
            key: key.unwrap_or(""),
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
            responses,
        },
    }
}

/// The integration kept for each route key: the one the route with that key targets,
/// else the lowest id. Shared by planning and by the facts steps start from.
pub fn kept(
    integrations: &[LiveIntegration],
    route_targets: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for key in ROUTE_KEYS {
        let mut ids: Vec<&str> = integrations
            .iter()
            .filter(|i| i.key == Some(key))
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
    Create(&'static str),
    Update {
        key: &'static str,
        id: String,
        settings: bool,
        clear: Clear,
        add_responses: Vec<String>,
        remove_responses: Vec<String>,
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
            IntegrationOp::Create(spec.key),
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
    let settings = fields.iter().any(|f| f.field != "integration_responses");
    let op = IntegrationOp::Update {
        key: spec.key,
        id: live.id.clone(),
        settings,
        clear: Clear {
            credentials: spec.credentials.is_none() && live.spec.credentials.is_some(),
            templates: spec.templates.is_empty() && !live.spec.templates.is_empty(),
            template_selection_expression: spec.template_selection_expression.is_none()
                && live.spec.template_selection_expression.is_some(),
        },
        add_responses: spec
            .responses
            .iter()
            .filter(|r| !live.spec.responses.contains(r))
            .cloned()
            .collect(),
        remove_responses: live
            .spec
            .responses
            .iter()
            .filter(|r| !spec.responses.contains(r))
            .cloned()
            .collect(),
    };
    Some((
        ResourceChange::new(format!("{resource} ({})", live.id), Action::Update, fields),
        op,
    ))
}

/// Steps for the integrations: creates and updates per key, then deletes of duplicates
/// (housekeeping) and orphans (destructive). `live` is `None` when the API is new.
pub fn plan(
    stack: &Stack,
    env: &AwsEnv,
    live: Option<&[LiveIntegration]>,
    kept: &BTreeMap<String, String>,
) -> Vec<Step> {
    let live = live.unwrap_or(&[]);
    let mut steps = Vec::new();
    for spec in desired(stack, env) {
        let keep = kept
            .get(spec.key)
            .and_then(|id| live.iter().find(|i| &i.id == id));
        if let Some((c, op)) = diff(&spec, keep) {
            steps.push(Step::new(Node::new(Kind::Integration, spec.key), c, op));
        }
    }
    for i in live {
        if kept.values().any(|id| *id == i.id) {
            continue;
        }
        let mut c = ResourceChange::new(format!("integration {}", i.id), Action::Delete, vec![]);
        match i.key {
            Some(k) => {
                // A second integration under one of the stack's own keys: wsconn's own
                // leftover, removed without asking.
                c = c.with_reason(format!("a duplicate integration for route {k}"));
                c.risk = None;
            }
            None => c = c.with_reason("no route of this stack uses it (orphan)"),
        }
        steps.push(Step::new(
            Node::new(Kind::IntegrationCleanup, i.id.clone()),
            c,
            IntegrationOp::Delete(i.id.clone()),
        ));
    }
    steps
}

/// The integration ids of `key` on the API, lowest first (read after an unknown outcome).
async fn find(cx: &Cx, api_id: &str, key: &str) -> Result<Option<String>> {
    Ok(read_all(&cx.aws, api_id)
        .await?
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.key == Some(key))
        .map(|i| i.id)
        .min())
}

async fn create(cx: &Cx, key: &'static str) -> Result<()> {
    let api_id = cx.api_id()?;
    let apigw = &cx.aws.apigw;
    let specs = desired(&cx.stack, &cx.env);
    let s = specs
        .iter()
        .find(|s| s.key == key)
        .expect("a spec for every route key");
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
    .map_err(|e| vanish_on_missing_api(e, &api_id))?;
    cx.facts()
        .integration_ids
        .insert(key.to_string(), id.clone());
    for r in &s.responses {
        create_response(cx, &api_id, &id, key, r).await?;
    }
    Ok(())
}

/// NotFoundException on a create inside the API: the API is gone.
fn vanish_on_missing_api(e: error::Error, api_id: &str) -> error::Error {
    if e.code() == Some("NotFoundException") {
        error::Error::Vanished(format!("WebSocket API {api_id}"))
    } else {
        e
    }
}

async fn create_response(cx: &Cx, api_id: &str, id: &str, key: &str, r: &str) -> Result<()> {
    let apigw = &cx.aws.apigw;
    create_once(
        &format!("creating integration response {r} of {key} (api {api_id})"),
        || async {
            apigw
                .create_integration_response()
                .api_id(api_id)
                .integration_id(id)
                .integration_response_key(r)
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| o.integration_response_id().unwrap_or_default().to_string())
        },
        || async {
            let out = apigw
                .get_integration_responses()
                .api_id(api_id)
                .integration_id(id)
                .send()
                .await
                .map_err(|e| {
                    vanished_or(
                        format!("integration {key}"),
                        format!("reading integration responses of {key} (api {api_id})"),
                        e,
                    )
                })?;
            Ok(out
                .items()
                .iter()
                .find(|x| x.integration_response_key() == Some(r))
                .and_then(|x| x.integration_response_id().map(String::from)))
        },
    )
    .await
    .map_err(|e| vanish_on_missing_api(e, api_id))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn update(
    cx: &Cx,
    key: &'static str,
    id: &str,
    settings: bool,
    clear: Clear,
    add: &[String],
    remove: &[String],
) -> Result<()> {
    let api_id = cx.api_id()?;
    let apigw = &cx.aws.apigw;
    let specs = desired(&cx.stack, &cx.env);
    let s = specs
        .iter()
        .find(|s| s.key == key)
        .expect("a spec for every route key");
    let what = format!("integration {key} ({id})");
    if settings {
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
    }
    if !remove.is_empty() {
        let out = apigw
            .get_integration_responses()
            .api_id(&api_id)
            .integration_id(id)
            .send()
            .await
            .map_err(|e| {
                vanished_or(
                    what.clone(),
                    format!("reading integration responses of {key} (api {api_id})"),
                    e,
                )
            })?;
        for r in out.items().iter().filter(|r| {
            r.integration_response_key()
                .is_some_and(|k| remove.iter().any(|x| x == k))
        }) {
            let rid = r.integration_response_id().unwrap_or_default();
            let what = format!("integration response {rid} of {key} (api {api_id})");
            api_delete(&what, || async {
                apigw
                    .delete_integration_response()
                    .api_id(&api_id)
                    .integration_id(id)
                    .integration_response_id(rid)
                    .send()
                    .await
                    .map(|_| ())
            })
            .await?;
        }
    }
    for r in add {
        create_response(cx, &api_id, id, key, r).await?;
    }
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
                IntegrationOp::Update {
                    key,
                    id,
                    settings,
                    clear,
                    add_responses,
                    remove_responses,
                } => {
                    update(
                        cx,
                        key,
                        id,
                        *settings,
                        *clear,
                        add_responses,
                        remove_responses,
                    )
                    .await
                }
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
            key: "$connect",
            integration_type: "AWS".into(),
            method: "POST".into(),
            uri: "arn:aws:apigateway:r:dynamodb:action/PutItem".into(),
            credentials: Some("arn:role".into()),
            templates: [("$default".to_string(), "a\nb\n".to_string())].into(),
            template_selection_expression: Some("\\$default".into()),
            responses: vec!["/200/".into()],
        }
    }

    fn live(id: &str, key: Option<&'static str>, spec: Spec) -> LiveIntegration {
        LiveIntegration {
            id: id.into(),
            key,
            spec,
        }
    }

    #[test]
    fn in_sync_integration_has_no_change() {
        assert!(diff(&spec(), Some(&live("i", Some("$connect"), spec()))).is_none());
    }

    #[test]
    fn template_and_response_drift_is_field_by_field() {
        let mut l = spec();
        l.templates.insert("$default".into(), "a\nX\n".into());
        l.templates.insert("application/json".into(), "{}".into());
        l.responses.clear();
        let (c, op) = diff(&spec(), Some(&live("i", Some("$connect"), l))).unwrap();
        let names: Vec<_> = c.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "request_templates.$default",
                "integration_responses",
                "request_templates.application/json"
            ]
        );
        match op {
            IntegrationOp::Update {
                settings,
                add_responses,
                ..
            } => {
                assert!(settings);
                assert_eq!(add_responses, vec!["/200/".to_string()]);
            }
            _ => panic!("expected update"),
        }
    }

    #[test]
    fn only_responses_missing_needs_no_integration_update() {
        let mut l = spec();
        l.responses.clear();
        let (_, op) = diff(&spec(), Some(&live("i", Some("$connect"), l))).unwrap();
        assert!(matches!(
            op,
            IntegrationOp::Update {
                settings: false,
                ..
            }
        ));
    }

    #[test]
    fn only_settings_set_live_but_not_wanted_are_cleared() {
        let proxy = Spec {
            key: "$default",
            integration_type: "AWS_PROXY".into(),
            method: "POST".into(),
            uri: "arn:fn".into(),
            credentials: None,
            templates: BTreeMap::new(),
            template_selection_expression: None,
            responses: vec![],
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
        assert_eq!(key_of(Some("wsconn route $connect")), Some("$connect"));
        assert_eq!(key_of(Some("wsconn route $other")), None);
        assert_eq!(key_of(None), None);
    }

    #[test]
    fn the_targeted_duplicate_is_kept_else_the_lowest_id() {
        let l = |id: &str, key| live(id, key, spec());
        let all = vec![
            l("b2", Some("$connect")),
            l("a1", Some("$connect")),
            l("c3", Some("$disconnect")),
            l("z9", None),
        ];
        let none = BTreeMap::new();
        let k = kept(&all, &none);
        assert_eq!(k.get("$connect").map(String::as_str), Some("a1"));
        assert_eq!(k.get("$disconnect").map(String::as_str), Some("c3"));
        assert_eq!(k.get("$default"), None);
        let targets: BTreeMap<String, String> = [("$connect".to_string(), "b2".to_string())].into();
        assert_eq!(kept(&all, &targets)["$connect"], "b2");
        // A route pointing at an integration that does not exist changes nothing.
        let stale: BTreeMap<String, String> = [("$connect".to_string(), "gone".to_string())].into();
        assert_eq!(kept(&all, &stale)["$connect"], "a1");
    }
}
