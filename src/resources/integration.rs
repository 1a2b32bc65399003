//! The three integrations, one per route key, with their integration responses.
//!
//! Integrations have no name; wsconn keys each by its description (`wsconn route
//! $connect`). `$connect`/`$disconnect` are AWS service integrations calling DynamoDB with
//! a request template; a non-proxy integration needs an integration response (`/200/`),
//! or calls fail with "No match for output mapping". `$default` is an AWS_PROXY
//! integration to the function, which has no responses.
//! Integrations the stack's API holds under no known key are orphans: the [`Orphans`]
//! kind deletes them after the routes stopped pointing at them.

use super::{Resource, Step, api, api_write};
use crate::aws::Aws;
use crate::engine::Cx;
use crate::error::{self, Result};
use crate::plan::{Action, FieldChange, ResourceChange, created_fields, field};
use aws_sdk_apigatewayv2::types::{Integration, IntegrationType};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const ROUTE_KEYS: [&str; 3] = ["$connect", "$disconnect", "$default"];
const DESCRIPTION_PREFIX: &str = "wsconn route ";
pub const RESPONSE_KEY: &str = "/200/";

/// The route key an integration serves, from its description.
pub fn key_of(i: &Integration) -> Option<&str> {
    i.description()
        .and_then(|d| d.strip_prefix(DESCRIPTION_PREFIX))
        .filter(|k| ROUTE_KEYS.contains(k))
}

pub async fn list(aws: &Aws, api_id: &str) -> Result<Vec<Integration>> {
    super::all_pages(|token| async move {
        let out = aws
            .apigw
            .get_integrations()
            .api_id(api_id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| error::aws(format!("listing integrations of API {api_id}"), e))?;
        Ok((out.items().to_vec(), out.next_token().map(String::from)))
    })
    .await
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

pub fn desired(cx: &Cx) -> Vec<Spec> {
    let env = &cx.aws.env;
    let role = env.role_arn(&cx.names.api_role);
    let dynamo = |key: &'static str, action: &str, template: &str| Spec {
        key,
        integration_type: "AWS".into(),
        method: "POST".into(),
        uri: env.dynamodb_action_uri(action),
        credentials: Some(role.clone()),
        templates: [("$default".to_string(), template.to_string())].into(),
        template_selection_expression: Some("\\$default".into()),
        responses: vec![RESPONSE_KEY.into()],
    };
    vec![
        dynamo("$connect", "PutItem", &cx.assets.connect_template),
        dynamo("$disconnect", "DeleteItem", &cx.assets.disconnect_template),
        Spec {
            key: "$default",
            integration_type: "AWS_PROXY".into(),
            method: "POST".into(),
            uri: env.lambda_invoke_uri(&env.function_arn(&cx.names.function)),
            credentials: None,
            templates: BTreeMap::new(),
            template_selection_expression: None,
            responses: vec![],
        },
    ]
}

/// The compared fields, in display order. Templates are one field each, so a changed
/// template shows as a line diff of that template.
fn fields_of(s: &Spec) -> Vec<(String, Value)> {
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

#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub id: String,
    pub spec: Spec,
}

pub async fn read(cx: &Cx, i: &Integration, key: &'static str) -> Result<Live> {
    let api_id = cx.api_id()?;
    let id = i.integration_id().unwrap_or_default().to_string();
    let out = cx
        .aws
        .apigw
        .get_integration_responses()
        .api_id(&api_id)
        .integration_id(&id)
        .send()
        .await
        .map_err(|e| {
            error::aws(
                format!("reading integration responses of {key} (api {api_id})"),
                e,
            )
        })?;
    let mut responses: Vec<String> = out
        .items()
        .iter()
        .filter_map(|r| r.integration_response_key().map(String::from))
        .collect();
    responses.sort();
    Ok(Live {
        id,
        spec: Spec {
            key,
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
    })
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
pub enum Op {
    Create(&'static str),
    Update {
        key: &'static str,
        id: String,
        settings: bool,
        clear: Clear,
        add_responses: Vec<String>,
        remove_responses: Vec<String>,
    },
}

pub fn diff(spec: &Spec, live: Option<&Live>) -> Option<(ResourceChange, Op)> {
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
            Op::Create(spec.key),
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
    let op = Op::Update {
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

/// Integrations of the stack's API under no known key (or a second one under a key).
fn orphans(cx: &Cx) -> Vec<&Integration> {
    let mut seen = Vec::new();
    cx.found
        .integrations
        .iter()
        .filter(|i| match key_of(i) {
            Some(k) if !seen.contains(&k) => {
                seen.push(k);
                false
            }
            _ => true,
        })
        .collect()
}

pub struct Integrations;

impl Resource for Integrations {
    fn plan<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            let has_api = api::live_api(cx).is_some();
            let specs = desired(cx);
            let lives = futures::future::try_join_all(specs.iter().map(|s| async move {
                let found = if has_api {
                    cx.found
                        .integrations
                        .iter()
                        .find(|i| key_of(i) == Some(s.key))
                } else {
                    None
                };
                match found {
                    Some(i) => read(cx, i, s.key).await.map(Some),
                    None => Ok(None),
                }
            }))
            .await?;
            Ok(specs
                .iter()
                .zip(&lives)
                .filter_map(|(s, l)| diff(s, l.as_ref()))
                .map(|(c, op)| Step::new(c, op))
                .collect())
        })
    }

    fn plan_destroy<'a>(&'a self, _cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async { Ok(vec![]) })
    }

    fn apply<'a>(&'a self, cx: &'a Cx, step: &'a Step) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let api_id = cx.api_id()?;
            let apigw = &cx.aws.apigw;
            let specs = desired(cx);
            let (key, id, settings, clear, add, remove) = match step.op::<Op>() {
                Op::Create(key) => {
                    let s = specs
                        .iter()
                        .find(|s| s.key == *key)
                        .expect("spec for every key");
                    let out = api_write(|| async {
                        apigw
                            .create_integration()
                            .api_id(&api_id)
                            .description(format!("{DESCRIPTION_PREFIX}{key}"))
                            .integration_type(IntegrationType::from(s.integration_type.as_str()))
                            .integration_method(&s.method)
                            .integration_uri(&s.uri)
                            .set_credentials_arn(s.credentials.clone())
                            .set_request_templates(
                                (!s.templates.is_empty())
                                    .then(|| s.templates.clone().into_iter().collect()),
                            )
                            .set_template_selection_expression(
                                s.template_selection_expression.clone(),
                            )
                            .send()
                            .await
                            .map_err(|e| {
                                error::aws(format!("creating integration {key} (api {api_id})"), e)
                            })
                    })
                    .await?;
                    let id = out.integration_id().unwrap_or_default().to_string();
                    cx.facts
                        .lock()
                        .unwrap()
                        .integration_ids
                        .insert(key.to_string(), id.clone());
                    (
                        *key,
                        id,
                        false,
                        Clear::default(),
                        s.responses.clone(),
                        vec![],
                    )
                }
                Op::Update {
                    key,
                    id,
                    settings,
                    clear,
                    add_responses,
                    remove_responses,
                } => (
                    *key,
                    id.clone(),
                    *settings,
                    *clear,
                    add_responses.clone(),
                    remove_responses.clone(),
                ),
            };
            let s = specs
                .iter()
                .find(|s| s.key == key)
                .expect("spec for every key");
            if settings {
                api_write(|| async {
                    apigw
                        .update_integration()
                        .api_id(&api_id)
                        .integration_id(&id)
                        .description(format!("{DESCRIPTION_PREFIX}{key}"))
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
                            error::aws(format!("updating integration {key} (api {api_id})"), e)
                        })
                })
                .await?;
            }
            if !remove.is_empty() {
                let out = apigw
                    .get_integration_responses()
                    .api_id(&api_id)
                    .integration_id(&id)
                    .send()
                    .await
                    .map_err(|e| {
                        error::aws(
                            format!("reading integration responses of {key} (api {api_id})"),
                            e,
                        )
                    })?;
                for r in out.items().iter().filter(|r| {
                    r.integration_response_key()
                        .is_some_and(|k| remove.iter().any(|x| x == k))
                }) {
                    let rid = r.integration_response_id().unwrap_or_default();
                    api_write(|| async {
                        apigw
                            .delete_integration_response()
                            .api_id(&api_id)
                            .integration_id(&id)
                            .integration_response_id(rid)
                            .send()
                            .await
                            .map_err(|e| {
                                error::aws(
                                    format!(
                                        "deleting integration response of {key} (api {api_id})"
                                    ),
                                    e,
                                )
                            })
                    })
                    .await?;
                }
            }
            for r in &add {
                api_write(|| async {
                    apigw
                        .create_integration_response()
                        .api_id(&api_id)
                        .integration_id(&id)
                        .integration_response_key(r)
                        .send()
                        .await
                        .map_err(|e| {
                            error::aws(
                                format!(
                                    "creating integration response {r} of {key} (api {api_id})"
                                ),
                                e,
                            )
                        })
                })
                .await?;
            }
            Ok(())
        })
    }
}

/// Deletes integrations the stack's API holds under no known key, once routes moved off.
pub struct Orphans;

impl Resource for Orphans {
    fn plan<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async move {
            if api::live_api(cx).is_none() {
                return Ok(vec![]);
            }
            Ok(orphans(cx)
                .into_iter()
                .map(|i| {
                    let id = i.integration_id().unwrap_or_default().to_string();
                    let c =
                        ResourceChange::new(format!("integration {id}"), Action::Delete, vec![])
                            .with_reason("no route of this stack uses it (orphan)");
                    Step::new(c, id)
                })
                .collect())
        })
    }

    fn plan_destroy<'a>(&'a self, _cx: &'a Cx) -> BoxFuture<'a, Result<Vec<Step>>> {
        Box::pin(async { Ok(vec![]) })
    }

    fn apply<'a>(&'a self, cx: &'a Cx, step: &'a Step) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let api_id = cx.api_id()?;
            let id = step.op::<String>();
            api_write(|| async {
                match cx
                    .aws
                    .apigw
                    .delete_integration()
                    .api_id(&api_id)
                    .integration_id(id)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_not_found_exception()) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(error::aws(
                        format!("deleting orphan integration {id} (api {api_id})"),
                        e,
                    )),
                }
            })
            .await
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
            responses: vec![RESPONSE_KEY.into()],
        }
    }

    #[test]
    fn in_sync_integration_has_no_change() {
        assert!(
            diff(
                &spec(),
                Some(&Live {
                    id: "i".into(),
                    spec: spec()
                })
            )
            .is_none()
        );
    }

    #[test]
    fn template_and_response_drift_is_field_by_field() {
        let mut l = spec();
        l.templates.insert("$default".into(), "a\nX\n".into());
        l.templates.insert("application/json".into(), "{}".into());
        l.responses.clear();
        let (c, op) = diff(
            &spec(),
            Some(&Live {
                id: "i".into(),
                spec: l,
            }),
        )
        .unwrap();
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
            Op::Update {
                settings,
                add_responses,
                ..
            } => {
                assert!(settings);
                assert_eq!(add_responses, vec![RESPONSE_KEY.to_string()]);
            }
            _ => panic!("expected update"),
        }
    }

    #[test]
    fn only_responses_missing_needs_no_integration_update() {
        let mut l = spec();
        l.responses.clear();
        let (_, op) = diff(
            &spec(),
            Some(&Live {
                id: "i".into(),
                spec: l,
            }),
        )
        .unwrap();
        assert!(matches!(
            op,
            Op::Update {
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
        let mut live = proxy.clone();
        live.uri = "arn:other".into();
        let (_, op) = diff(
            &proxy,
            Some(&Live {
                id: "i".into(),
                spec: live.clone(),
            }),
        )
        .unwrap();
        assert!(matches!(op, Op::Update { clear, .. } if clear == Clear::default()));
        live.credentials = Some("arn:role".into());
        live.template_selection_expression = Some("x".into());
        let (_, op) = diff(
            &proxy,
            Some(&Live {
                id: "i".into(),
                spec: live,
            }),
        )
        .unwrap();
        let want = Clear {
            credentials: true,
            templates: false,
            template_selection_expression: true,
        };
        assert!(matches!(op, Op::Update { clear, .. } if clear == want));
    }

    #[test]
    fn keys_come_from_descriptions() {
        let i = Integration::builder()
            .description("wsconn route $connect")
            .build();
        assert_eq!(key_of(&i), Some("$connect"));
        let i = Integration::builder()
            .description("wsconn route $other")
            .build();
        assert_eq!(key_of(&i), None);
        assert_eq!(key_of(&Integration::builder().build()), None);
    }
}
