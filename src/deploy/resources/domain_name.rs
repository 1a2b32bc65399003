//! The API Gateway custom domain name (`[domain] name`), keyed by name. For a WebSocket
//! API API Gateway allows only a REGIONAL endpoint with the TLS_1_2 policy, and the
//! certificate must be in the API's region.
//!
//! Domain names are unique, so the name is the natural key: one that exists without the
//! stack's tag is refused. CreateDomainName answering that the name exists (a lost
//! answer, a rerun) is read back and its ownership checked. The stack's other domain
//! names (the name changed, `[domain]` removed) are found by their tag in the listing.

use super::{TagDelta, Tags, api_write, apply_apigw_tags, check_owned, tags_field, tags_value};
use crate::config::OWNER_TAG;
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use aws_sdk_apigatewayv2::types::{DomainNameConfiguration, EndpointType, SecurityPolicy};
use futures::future::BoxFuture;
use serde_json::json;

/// Said wherever a certificate or domain is created.
pub const FREE: &str = "free: ACM public certificates and API Gateway custom domain names cost nothing (the hosted zone is billed monthly, and wsconn never creates one)";

pub const ENDPOINT: &str = "REGIONAL";
pub const POLICY: &str = "TLS_1_2";

#[derive(Debug, Clone, PartialEq)]
pub struct LiveDomain {
    pub name: String,
    /// The regional endpoint DNS points at (`d-xxxx.execute-api.<region>.amazonaws.com`).
    pub target: String,
    /// The hosted zone of that endpoint, for alias records.
    pub target_zone_id: String,
    pub endpoint_type: String,
    pub security_policy: String,
    pub certificate_arn: String,
    /// AVAILABLE, UPDATING, PENDING_CERTIFICATE_REIMPORT…
    pub status: String,
    pub tags: Tags,
}

impl LiveDomain {
    fn owner(&self) -> Option<&str> {
        self.tags.get(OWNER_TAG).map(String::as_str)
    }
}

pub fn label(name: &str) -> String {
    format!("custom domain name {name}")
}

/// A domain as GetDomainNames and GetDomainName give it: its first configuration (a
/// REGIONAL domain has one) and its tags.
fn live_from(
    name: &str,
    configs: &[DomainNameConfiguration],
    tags: Option<&std::collections::HashMap<String, String>>,
) -> LiveDomain {
    let c = configs.first();
    let text = |v: Option<&str>| v.unwrap_or_default().to_string();
    LiveDomain {
        name: name.to_ascii_lowercase(),
        target: text(c.and_then(|c| c.api_gateway_domain_name())),
        target_zone_id: text(c.and_then(|c| c.hosted_zone_id())),
        endpoint_type: text(c.and_then(|c| c.endpoint_type()).map(|e| e.as_str())),
        security_policy: text(c.and_then(|c| c.security_policy()).map(|e| e.as_str())),
        certificate_arn: text(c.and_then(|c| c.certificate_arn())),
        status: text(c.and_then(|c| c.domain_name_status()).map(|e| e.as_str())),
        tags: tags.cloned().unwrap_or_default().into_iter().collect(),
    }
}

fn live_of(d: &aws_sdk_apigatewayv2::types::DomainName) -> LiveDomain {
    live_from(
        d.domain_name().unwrap_or_default(),
        d.domain_name_configurations(),
        d.tags(),
    )
}

/// The domain names the stack may own: the desired name (whoever owns it) and every
/// one tagged with the stack (GetDomainNames, all pages; shared).
async fn listed(rd: &Reader<'_>) -> Result<Instances<LiveDomain>> {
    rd.shared("domain-names", || async {
        let aws = rd.aws;
        let all = super::all_pages(|token| async move {
            let out = aws
                .gated(aws.apigw.get_domain_names().set_next_token(token).send())
                .await
                .map_err(|e| error::aws("listing API Gateway custom domain names", e))?;
            Ok((
                out.items().iter().map(live_of).collect::<Vec<_>>(),
                out.next_token().map(String::from),
            ))
        })
        .await?;
        let desired = rd.stack.domain.as_ref().map(|d| d.name.as_str());
        Ok(all
            .into_iter()
            .filter(|d| {
                d.owner() == Some(rd.stack.name.as_str()) || Some(d.name.as_str()) == desired
            })
            .map(|d| (d.name.clone(), d))
            .collect())
    })
    .await
}

/// The stack's live domain names (tagged with it), by name.
pub async fn owned(rd: &Reader<'_>) -> Result<Instances<LiveDomain>> {
    let stack = rd.stack.name.as_str();
    Ok(listed(rd)
        .await?
        .into_iter()
        .filter(|(_, d)| d.owner() == Some(stack))
        .collect())
}

#[derive(Debug)]
pub enum DomainOp {
    Create(String),
    Update {
        name: String,
        config: bool,
        tags: TagDelta,
    },
    Delete(String),
}

/// The kind: domain names by name.
pub struct DomainName;

impl Resource for DomainName {
    type Live = LiveDomain;
    const NAME: &'static str = "custom domain name";

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveDomain>>> {
        Box::pin(listed(rd))
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live::<DomainName>();
        let stack = p.stack.name.clone();
        if let Some(d) = &p.stack.domain {
            // Decided by the certificate kind, planned before this one.
            let cert = p
                .certificate
                .clone()
                .unwrap_or_else(|| "(the new certificate, known after apply)".to_string());
            match live.get(&d.name) {
                None => {
                    let fields = created_fields(vec![
                        ("endpoint_type", json!(ENDPOINT)),
                        ("security_policy", json!(POLICY)),
                        ("certificate", json!(cert)),
                        ("tags", tags_value(&p.stack.tags)),
                    ]);
                    p.push(
                        Node::new(Kind::DomainName, d.name.clone()),
                        ResourceChange::new(label(&d.name), Action::Create, fields)
                            .with_reason(FREE),
                        DomainOp::Create(d.name.clone()),
                    );
                }
                Some(l) => {
                    check_owned(&label(&d.name), &l.tags, &stack)?;
                    let config: Vec<_> = [
                        field("endpoint_type", l.endpoint_type.as_str(), ENDPOINT),
                        field("security_policy", l.security_policy.as_str(), POLICY),
                        field("certificate", l.certificate_arn.as_str(), cert.as_str()),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    let tags = tags_field(&l.tags, &p.stack.tags);
                    if !config.is_empty() || tags.is_some() {
                        let op = DomainOp::Update {
                            name: d.name.clone(),
                            config: !config.is_empty(),
                            tags: TagDelta::between(&l.tags, &p.stack.tags),
                        };
                        let fields = config.into_iter().chain(tags).collect();
                        p.push(
                            Node::new(Kind::DomainName, d.name.clone()),
                            ResourceChange::new(label(&d.name), Action::Update, fields),
                            op,
                        );
                    }
                }
            }
        }
        for l in live.values() {
            if l.owner() != Some(stack.as_str())
                || p.stack.domain.as_ref().is_some_and(|d| d.name == l.name)
            {
                continue;
            }
            let reason = match &p.stack.domain {
                None => "wsconn.toml declares no [domain]".to_string(),
                Some(d) => format!("the domain is now {}", d.name),
            };
            p.push(
                Node::new(Kind::DomainNameCleanup, l.name.clone()),
                ResourceChange::new(label(&l.name), Action::Delete, vec![]).with_reason(reason),
                DomainOp::Delete(l.name.clone()),
            );
        }
        Ok(())
    }

    fn plan_destroy(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live::<DomainName>();
        for l in live
            .values()
            .filter(|l| l.owner() == Some(p.stack.name.as_str()))
        {
            p.push(
                Node::new(Kind::DomainName, l.name.clone()),
                ResourceChange::new(label(&l.name), Action::Delete, vec![]),
                DomainOp::Delete(l.name.clone()),
            );
        }
        Ok(())
    }
}

fn configuration(cx: &Cx) -> Result<DomainNameConfiguration> {
    let arn = cx
        .facts()
        .certificate_arn
        .clone()
        .ok_or_else(|| Error::Vanished("the domain's certificate".into()))?;
    Ok(DomainNameConfiguration::builder()
        .certificate_arn(arn)
        .endpoint_type(EndpointType::Regional)
        .security_policy(SecurityPolicy::Tls12)
        .build())
}

/// GetDomainName; `None` when it does not exist.
async fn get(cx: &Cx, name: &str) -> Result<Option<LiveDomain>> {
    match cx
        .aws
        .apigw
        .get_domain_name()
        .domain_name(name)
        .send()
        .await
    {
        Ok(d) => Ok(Some(live_from(
            name,
            d.domain_name_configurations(),
            d.tags(),
        ))),
        Err(e) if error::is_not_found(&e) => Ok(None),
        Err(e) => Err(error::aws(format!("reading {}", label(name)), e)),
    }
}

fn learn(cx: &Cx, d: &LiveDomain) {
    cx.facts().domain_target = Some((d.target.clone(), d.target_zone_id.clone()));
}

async fn create(cx: &Cx, name: &str) -> Result<()> {
    let config = configuration(cx)?;
    let sent = api_write(|| async {
        cx.aws
            .apigw
            .create_domain_name()
            .domain_name(name)
            .domain_name_configurations(config.clone())
            .set_tags(Some(cx.stack.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| error::aws(format!("creating {}", label(name)), e))
    })
    .await;
    match sent {
        Ok(out) => {
            learn(cx, &live_from(name, out.domain_name_configurations(), None));
            Ok(())
        }
        // It exists: this run's own lost answer, or a rerun. Ours only with the tag.
        Err(e) if error::is_already_exists(&e) || e.code() == Some("ConflictException") => {
            let Some(d) = get(cx, name).await? else {
                return Err(e);
            };
            check_owned(&label(name), &d.tags, cx.stack_name())?;
            update(cx, name, true, &TagDelta::between(&d.tags, &cx.stack.tags)).await
        }
        Err(e) => Err(e),
    }
}

async fn update(cx: &Cx, name: &str, config: bool, tags: &TagDelta) -> Result<()> {
    if config {
        let c = configuration(cx)?;
        api_write(|| async {
            cx.aws
                .apigw
                .update_domain_name()
                .domain_name(name)
                .domain_name_configurations(c.clone())
                .send()
                .await
                .map_err(|e| {
                    super::vanished_or(label(name), format!("updating {}", label(name)), e)
                })
        })
        .await?;
    }
    apply_apigw_tags(cx, &cx.env.domain_name_arn(name), &label(name), tags).await?;
    let d = get(cx, name)
        .await?
        .ok_or_else(|| Error::Vanished(label(name)))?;
    learn(cx, &d);
    Ok(())
}

async fn delete(cx: &Cx, name: &str) -> Result<()> {
    super::api_delete(&label(name), || async {
        cx.aws
            .apigw
            .delete_domain_name()
            .domain_name(name)
            .send()
            .await
            .map(|_| ())
    })
    .await
}

impl Op for DomainOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                DomainOp::Create(name) => create(cx, name).await,
                DomainOp::Update { name, config, tags } => update(cx, name, *config, tags).await,
                DomainOp::Delete(name) => delete(cx, name).await,
            }
        })
    }
}
