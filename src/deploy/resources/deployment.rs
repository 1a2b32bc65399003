//! Deployments: snapshots of routes, integrations (their URIs, naming function
//! versions, and templates) and the authorizer. A change goes live only when a new
//! deployment is made and the stage points at it: each deployment wsconn makes is a
//! release (`super::super::release`), and its description records what it serves.
//!
//! The release's digest covers the desired routes, integrations, responses, templates
//! and authorizer, the versions they invoke, and the ids they were wired to (a
//! recreated integration has a new id, so it redeploys too). A new deployment is made
//! exactly when no deployment of the API carries the desired digest; when one does (the
//! release a rollback left behind), the stage switches back to it and nothing is made.
//! wsconn-made deployments beyond the live one and the newest `[releases] keep` others
//! are deleted after the switch, with the function versions only they referenced; a
//! deployment wsconn did not make is never deleted. CreateDeployment has no client
//! token: after a lost answer the deployment is looked up by its description before it
//! is ever sent again.

use super::stage::Stage;
use super::version::{self, Versions};
use super::{
    all_pages, api, api_delete, create_once, integration, integration_response, route, vanished_or,
};
use crate::assets::sha256_hex;
use crate::aws::{self, Aws, AwsEnv};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Place, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, field};
use crate::deploy::release::{self, MAX_DESCRIPTION, Manifest, Release};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::Stack;
use crate::wait;
use aws_sdk_apigatewayv2::types::DeploymentStatus;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

pub use aws_sdk_apigatewayv2::types::Deployment as LiveDeployment;

pub const HASH_AFTER_APPLY: &str = "(known after apply)";

/// What a release's digest covers besides the desired stack: the ids its integrations,
/// routes and authorizer were wired to, and the function versions it invokes.
#[derive(Debug, Clone, Copy)]
pub struct Wired<'a> {
    pub integration_ids: &'a BTreeMap<String, String>,
    pub route_ids: &'a BTreeMap<String, String>,
    pub authorizer_id: Option<&'a str>,
    pub versions: &'a Versions,
}

/// The digest of everything a deployment snapshots: the desired routes and integrations
/// with their responses, the authorizer, the versions they invoke, and the ids of what
/// carries them.
pub fn config_hash(stack: &Stack, env: &AwsEnv, w: Wired<'_>) -> String {
    let integrations: Vec<Value> = integration::desired(stack, env, w.versions)
        .iter()
        .map(|s| {
            let responses = stack
                .route(&s.key)
                .map(integration_response::desired)
                .unwrap_or_default();
            json!({"key": s.key, "id": w.integration_ids.get(&s.key), "type": s.integration_type,
                        "method": s.method, "uri": s.uri, "credentials": s.credentials,
                        "templates": s.templates,
                        "template_selection_expression": s.template_selection_expression,
                        "responses": responses})
        })
        .collect();
    let routes: Vec<Value> = route::desired(stack)
        .iter()
        .map(|r| {
            let mut fields: Vec<(&str, Value)> = route::fields_of(r);
            fields.retain(|(name, v)| !(*name == "authorizer" && v == "(none)"));
            let responses: Vec<&str> = stack
                .route(&r.key)
                .map(|d| vec![d.route_response])
                .unwrap_or_default();
            fields.push(("route_responses", json!(responses)));
            json!({"key": r.key, "id": w.route_ids.get(&r.key), "fields": fields})
        })
        .collect();
    let mut doc = json!({"route_selection_expression": stack.api.route_selection_expression,
                     "integrations": integrations, "routes": routes});
    if let Some(a) = &stack.authorizer {
        doc["authorizer"] = json!({"id": w.authorizer_id,
                                   "fields": super::authorizer::desired(a, env, w.versions)});
    }
    sha256_hex(doc.to_string().as_bytes())
}

/// The release a deployment records, when wsconn made it.
pub fn manifest_of(d: &LiveDeployment, stack: &str) -> Option<Manifest> {
    Manifest::parse(d.description()?, stack)
}

/// A live deployment as a release: its id, creation time and manifest.
pub fn release_of(d: &LiveDeployment, stack: &str) -> Release {
    Release {
        id: d.deployment_id().unwrap_or_default().to_string(),
        created: d.created_date().map(|t| t.secs()),
        manifest: manifest_of(d, stack),
    }
}

/// Refuses, before any change, a stack whose release manifest cannot fit a deployment's
/// description (measured with 4-digit versions where they are not known yet).
fn check_manifest_fits(stack: &Stack, versions: &Versions) -> Result<()> {
    let known: BTreeMap<String, String> = versions
        .iter()
        .map(|(f, v)| (f.clone(), v.clone().unwrap_or_else(|| "9999".into())))
        .collect();
    let text = manifest(stack, &"0".repeat(64), &known).describe(&stack.name);
    if text.len() > MAX_DESCRIPTION {
        return Err(Error::Config(format!(
            "the release manifest of {} functions needs about {} characters, and a deployment's description holds {MAX_DESCRIPTION}: use shorter route keys or fewer routes",
            stack.functions.len(),
            text.len()
        )));
    }
    Ok(())
}

/// The manifest of the release this run makes: the digest, and every function's
/// version (all known by the time the deployment is made).
fn manifest(stack: &Stack, digest: &str, versions: &BTreeMap<String, String>) -> Manifest {
    Manifest::new(
        digest,
        stack
            .functions
            .iter()
            .filter_map(|f| Some((f.name.clone(), versions.get(&f.name)?.clone())))
            .collect(),
    )
}

/// GetDeployments of the stack's API. `None`: the API vanished.
pub async fn list(aws: &Aws, api_id: &str) -> Result<Option<Vec<LiveDeployment>>> {
    let pages = all_pages(|token| async move {
        match aws
            .gated(
                aws.apigw
                    .get_deployments()
                    .api_id(api_id)
                    .set_next_token(token)
                    .send(),
            )
            .await
        {
            Ok(out) => Ok((
                out.items().iter().map(|d| Some(d.clone())).collect(),
                out.next_token().map(String::from),
            )),
            Err(e) if error::is_not_found(&e) => Ok((vec![None], None)),
            Err(e) => Err(error::aws(
                format!("listing deployments of API {api_id}"),
                e,
            )),
        }
    })
    .await?;
    Ok(pages.into_iter().collect())
}

#[derive(Debug)]
pub enum DeploymentOp {
    Deploy,
    Delete(String),
}

/// What the stage should serve after this plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// An existing deployment with the desired digest (the current one, or the release
    /// a rollback left behind).
    Existing(String),
    /// A deployment this plan makes.
    New,
}

/// Pure planning: the deployment the stage serves after this plan (`want_digest` is
/// `None` while ids or versions are still to be made), preferring the current one.
pub fn target(want_digest: Option<&str>, current: Option<&str>, releases: &[Release]) -> Target {
    let Some(want) = want_digest else {
        return Target::New;
    };
    let has = |r: &&Release| r.manifest.as_ref().is_some_and(|m| m.digest == want);
    if let Some(c) = releases
        .iter()
        .filter(has)
        .find(|r| Some(r.id.as_str()) == current)
    {
        return Target::Existing(c.id.clone());
    }
    let mut same: Vec<&Release> = releases.iter().filter(has).collect();
    same.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
    match same.first() {
        Some(r) => Target::Existing(r.id.clone()),
        None => Target::New,
    }
}

/// The kind: the API's deployments, keyed by id.
pub struct Deployment;

impl Resource for Deployment {
    type Live = LiveDeployment;
    const NAME: &'static str = "deployment";
    const PLACE: Place = Place::InsideApi;

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveDeployment>>> {
        Box::pin(async move {
            let Some(found) = api::found(rd).await? else {
                return Ok(Instances::new());
            };
            let Some(all) = list(rd.aws, &found.id).await? else {
                rd.api_vanished();
                return Ok(Instances::new());
            };
            Ok(all
                .into_iter()
                .map(|d| (d.deployment_id().unwrap_or_default().to_string(), d))
                .collect())
        })
    }

    /// New integrations, routes or versions get their ids (numbers) only when made, so
    /// the release's digest is known only after they exist: the kinds that make them
    /// are planned first. Then: reuse a deployment with the digest or make one, and prune
    /// what `[releases] keep` does not keep.
    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let fresh_ids = p.fresh_api
            || p.creates(Kind::Integration)
            || p.creates(Kind::Route)
            || p.creates(Kind::Authorizer)
            || p.creates(Kind::Version);
        let authorizer_id = super::authorizer::kept_id(p);
        let want = (!fresh_ids).then(|| {
            let w = p.wiring();
            config_hash(
                p.stack,
                p.env,
                Wired {
                    integration_ids: &w.integrations,
                    route_ids: &w.routes,
                    authorizer_id: authorizer_id.as_deref(),
                    versions: &p.versions,
                },
            )
        });
        let releases: Vec<Release> = p
            .live_in_api::<Deployment>()
            .values()
            .map(|d| release_of(d, &p.stack.name))
            .collect();
        let current = p
            .live_in_api::<Stage>()
            .get(&p.stack.stage)
            .and_then(|s| s.deployment_id.clone());
        // The release the stage serves now, for the stage's plan (the switch shows each
        // function's version before and after).
        p.serving = releases
            .iter()
            .find(|r| Some(&r.id) == current.as_ref())
            .and_then(|r| r.manifest.clone());
        let current_digest = p.serving.as_ref().map(|m| m.digest.clone());
        let target = target(want.as_deref(), current.as_deref(), &releases);
        if target == Target::New {
            check_manifest_fits(p.stack, &p.versions)?;
            let versions: BTreeMap<&str, &str> = p
                .versions
                .iter()
                .map(|(f, v)| (f.as_str(), v.as_deref().unwrap_or(version::NEW_VERSION)))
                .collect();
            let fields = [
                field(
                    "digest",
                    current_digest,
                    want.as_deref().unwrap_or(HASH_AFTER_APPLY),
                ),
                field("versions", Value::Null, json!(versions)),
            ]
            .into_iter()
            .flatten()
            .collect();
            p.push(
                Node::one(Kind::Deployment),
                ResourceChange::new("deployment", Action::Create, fields).with_reason(
                    "a new release: routes, integrations and the authorizer as they will be, with the versions they invoke",
                ),
                DeploymentOp::Deploy,
            );
        }
        let live_after = match &target {
            Target::Existing(id) => Some(id.as_str()),
            Target::New => None,
        };
        p.release = live_after.map(String::from);
        let keep = p.stack.keep_releases;
        for r in release::pruned(&releases, live_after, keep) {
            let mut c = ResourceChange::new(format!("deployment {}", r.id), Action::Delete, vec![])
                .with_reason(format!(
                    "an older release than the {keep} kept for rollback ([releases] keep)"
                ));
            // Superseded snapshots are housekeeping, not a destructive change to consent to.
            c.risk = None;
            p.push(
                Node::new(Kind::DeploymentCleanup, r.id.clone()),
                c,
                DeploymentOp::Delete(r.id.clone()),
            );
        }
        let referenced = release::referenced(release::kept(&releases, live_after, keep));
        let wanted = p.versions.clone();
        version::plan_prune(p, &referenced, &wanted);
        Ok(())
    }

    /// Deleting the API deletes its deployments.
    fn plan_destroy(_: &mut Planner<'_>) -> Result<()> {
        Ok(())
    }
}

async fn deploy(cx: &Cx, api_id: &str) -> Result<()> {
    let apigw = &cx.aws.apigw;
    let versions = cx.versions();
    let (hash, known) = {
        let f = cx.facts();
        let hash = config_hash(
            &cx.stack,
            &cx.env,
            Wired {
                integration_ids: &f.integration_ids,
                route_ids: &f.route_ids,
                authorizer_id: f.authorizer_id.as_deref(),
                versions: &versions,
            },
        );
        (hash, f.versions.clone())
    };
    let description = manifest(&cx.stack, &hash, &known).describe(&cx.stack.name);
    if description.len() > MAX_DESCRIPTION {
        return Err(Error::Config(format!(
            "the release's manifest needs {} characters, and a deployment's description holds {MAX_DESCRIPTION}: use shorter route keys or fewer routes",
            description.len()
        )));
    }
    // (id, still PENDING?)
    let (id, pending) = create_once(
        &format!("creating a deployment (api {api_id})"),
        || async {
            apigw
                .create_deployment()
                .api_id(api_id)
                .description(&description)
                .customize()
                .config_override(aws::apigw_no_retry())
                .send()
                .await
                .map(|o| {
                    (
                        o.deployment_id().unwrap_or_default().to_string(),
                        o.deployment_status() != Some(&DeploymentStatus::Deployed),
                    )
                })
        },
        || async {
            Ok(list(&cx.aws, api_id)
                .await?
                .unwrap_or_default()
                .iter()
                .filter(|d| d.description() == Some(description.as_str()))
                .filter_map(|d| d.deployment_id().map(|id| (id.to_string(), true)))
                .min())
        },
    )
    .await
    .map_err(|e| {
        if e.is_not_found() {
            Error::Vanished(format!("WebSocket API {api_id}"))
        } else {
            e
        }
    })?;
    let failed = |msg: Option<&str>| Error::Aws {
        doing: format!("deployment {id} (api {api_id})"),
        code: Some("FAILED".into()),
        message: msg.unwrap_or("deployment failed").to_string(),
    };
    // CreateDeployment answers PENDING, DEPLOYED or FAILED; only PENDING is polled.
    if pending {
        wait::until(
            &format!("waiting for deployment {id} (api {api_id})"),
            Duration::from_secs(120),
            || async {
                let d = apigw
                    .get_deployment()
                    .api_id(api_id)
                    .deployment_id(&id)
                    .send()
                    .await
                    .map_err(|e| {
                        vanished_or(
                            format!("deployment {id}"),
                            format!("reading deployment {id} (api {api_id})"),
                            e,
                        )
                    })?;
                match d.deployment_status() {
                    Some(DeploymentStatus::Failed) => Err(failed(d.deployment_status_message())),
                    Some(DeploymentStatus::Pending) => Ok(None),
                    _ => Ok(Some(())),
                }
            },
        )
        .await?;
    }
    cx.facts().deployment_id = Some(id);
    Ok(())
}

impl Op for DeploymentOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let api_id = cx.api_id()?;
            match self {
                DeploymentOp::Deploy => deploy(cx, &api_id).await,
                DeploymentOp::Delete(id) => {
                    api_delete(&format!("stale deployment {id} (api {api_id})"), || async {
                        cx.aws
                            .apigw
                            .delete_deployment()
                            .api_id(&api_id)
                            .deployment_id(id)
                            .send()
                            .await
                            .map(|_| ())
                    })
                    .await
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(id: &str, created: i64, digest: &str) -> Release {
        Release {
            id: id.into(),
            created: Some(created),
            manifest: Some(Manifest {
                wsconn: Some("0.1.0".into()),
                digest: digest.into(),
                versions: BTreeMap::new(),
            }),
        }
    }

    #[test]
    fn the_current_deployment_with_the_digest_is_kept() {
        let all = [rel("a", 1, "h1"), rel("b", 2, "h1")];
        assert_eq!(
            target(Some("h1"), Some("a"), &all),
            Target::Existing("a".into())
        );
    }

    #[test]
    fn unknown_ids_or_versions_always_make_a_release() {
        let all = [rel("a", 1, "h1")];
        assert_eq!(target(None, Some("a"), &all), Target::New);
    }

    #[test]
    fn after_a_rollback_the_newest_release_with_the_digest_is_switched_back_to() {
        // The stage serves "old" (rolled back); "b" and "c" both carry the desired
        // digest: the newest is reused and nothing is made.
        let all = [rel("old", 1, "h0"), rel("b", 2, "h1"), rel("c", 3, "h1")];
        assert_eq!(
            target(Some("h1"), Some("old"), &all),
            Target::Existing("c".into())
        );
        assert_eq!(target(Some("h2"), Some("old"), &all), Target::New);
    }

    #[test]
    fn a_hand_made_deployment_is_never_the_target() {
        let hand = Release {
            id: "m".into(),
            created: Some(5),
            manifest: None,
        };
        assert_eq!(target(Some("h1"), Some("m"), &[hand]), Target::New);
    }

    #[test]
    fn the_digest_covers_templates_ids_and_versions() {
        let stack = crate::stack::tests_support::stack("h");
        let env = AwsEnv {
            region: "r".into(),
            account: "1".into(),
            partition: "aws".into(),
        };
        let ids: BTreeMap<String, String> = [("$connect".to_string(), "i1".to_string())].into();
        let none = BTreeMap::new();
        let v1: Versions = [("h-default".to_string(), Some("1".to_string()))].into();
        let w = |ids, versions| Wired {
            integration_ids: ids,
            route_ids: &none,
            authorizer_id: None,
            versions,
        };
        let a = config_hash(&stack, &env, w(&ids, &v1));
        assert_eq!(a, config_hash(&stack, &env, w(&ids, &v1)));
        let other: BTreeMap<String, String> = [("$connect".to_string(), "i2".to_string())].into();
        assert_ne!(a, config_hash(&stack, &env, w(&other, &v1)));
        let v2: Versions = [("h-default".to_string(), Some("2".to_string()))].into();
        assert_ne!(a, config_hash(&stack, &env, w(&ids, &v2)));
        let mut edited = stack.clone();
        if let crate::stack::IntegrationDef::DynamoDb { template, .. } =
            &mut edited.routes[0].integration
        {
            template.text.push_str("\n## edit");
        }
        assert_ne!(a, config_hash(&edited, &env, w(&ids, &v1)));
    }

    #[test]
    fn the_manifest_names_every_functions_version() {
        let stack = crate::stack::tests_support::stack("h");
        let known: BTreeMap<String, String> = [("h-default".to_string(), "7".to_string())].into();
        let m = manifest(&stack, "abc", &known);
        assert_eq!(
            m.describe("h"),
            format!(
                "wsconn {} sha256:abc versions default=7",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
