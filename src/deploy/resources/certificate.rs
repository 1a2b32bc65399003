//! The custom domain's ACM certificate, in the stack's region (API Gateway takes a
//! REGIONAL domain's certificate from there), keyed by ARN.
//!
//! With `[domain] hosted-zone`, wsconn requests it: DNS validation, the stack's tags
//! (its ownership: ACM has no names), and an idempotency token derived from the stack
//! and the name, so a resent or concurrent request gets the same certificate. Then the
//! validation step writes ACM's CNAME in the zone and waits for `ISSUED`: minutes on
//! AWS, so only the domain's own steps wait for it; the rest of the stack goes live on
//! the execute-api URL meanwhile. A deploy stopped during the wait continues it next
//! time: the certificate is found by its tag.
//!
//! With `[domain] certificate`, the user's certificate is read and checked (ISSUED,
//! covering the name, in the stack's region) and never changed or deleted.
//!
//! Deleting a certificate API Gateway has just stopped using answers
//! ResourceInUseException for a while (aws-notes): the delete is retried.

use super::{TagDelta, Tags, tags_value};
use crate::config::OWNER_TAG;
use crate::config::domain::{Dns, certificate_arn};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, created_fields};
use crate::deploy::step::Op;
use crate::error::{self, Error, Result};
use crate::stack::Stack;
use aws_sdk_acm::types::{CertificateStatus, Tag, ValidationMethod};
use futures::future::BoxFuture;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// How long deploy waits for ACM to issue a certificate. AWS: "a few minutes", up to
/// about 30; the request itself stays pending for 72 hours, and the next deploy resumes.
const ISSUE_LIMIT: Duration = Duration::from_secs(3600);
/// How long ACM may take to name the validation record after the request.
const RECORD_LIMIT: Duration = Duration::from_secs(300);
/// How long a delete is retried while ACM still says the certificate is in use.
const RELEASE_LIMIT: Duration = Duration::from_secs(600);
/// Every this long a line says the wait goes on (on a terminal the spinner shows it too).
const NOTE_EVERY: Duration = Duration::from_secs(30);

pub use super::domain_name::FREE;

#[derive(Debug, Clone, PartialEq)]
pub struct LiveCertificate {
    pub arn: String,
    /// The certificate's domain name (lower case).
    pub domain: String,
    pub sans: Vec<String>,
    /// ACM's status: PENDING_VALIDATION, ISSUED, FAILED…
    pub status: String,
    /// The stack its ownership tag names.
    pub owner: Option<String>,
    pub tags: Tags,
    pub in_use_by: Vec<String>,
    /// The DNS validation CNAMEs, name → value (once ACM has made them).
    pub validation: Vec<(String, String)>,
    /// Epoch seconds.
    pub created: i64,
}

impl LiveCertificate {
    /// Whether it serves `name`: its domain or a name it lists, or a wildcard one
    /// level up.
    pub fn covers(&self, name: &str) -> bool {
        let parent = name.split_once('.').map(|(_, p)| format!("*.{p}"));
        std::iter::once(&self.domain)
            .chain(&self.sans)
            .any(|n| n.eq_ignore_ascii_case(name) || Some(n.to_ascii_lowercase()) == parent)
    }
    fn usable(&self) -> bool {
        matches!(self.status.as_str(), "ISSUED" | "PENDING_VALIDATION")
    }
}

pub fn label(name: &str, arn: Option<&str>) -> String {
    match arn {
        Some(arn) => format!("certificate for {name} ({})", short(arn)),
        None => format!("certificate for {name}"),
    }
}

/// An ARN's last part, for labels.
fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The idempotency token of the `attempt`-th request for `name`: ACM's `\w+`, at most
/// 32 characters, the same for every run of the stack.
pub fn token(stack: &str, name: &str, attempt: usize) -> String {
    let digest = Sha256::digest(format!("wsconn\n{stack}\n{name}\n{attempt}"));
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..32]
        .to_string()
}

/// The stack's certificate for `name` that the domain uses: ISSUED before pending, the
/// newest first. Failed, expired or revoked ones are never chosen.
pub fn chosen<'a>(
    live: &'a Instances<LiveCertificate>,
    stack: &str,
    name: &str,
) -> Option<&'a LiveCertificate> {
    live.values()
        .filter(|c| c.owner.as_deref() == Some(stack) && c.domain == name && c.usable())
        .max_by_key(|c| (c.status == "ISSUED", c.created, c.arn.clone()))
}

/// The ARN the domain should use: the user's, or the stack's chosen one; `None` when
/// the plan requests one.
pub fn wanted_arn(stack: &Stack, live: &Instances<LiveCertificate>) -> Option<String> {
    let d = stack.domain.as_ref()?;
    match &d.dns {
        Dns::Certificate(arn) => Some(arn.clone()),
        Dns::Zone(_) => chosen(live, &stack.name, &d.name).map(|c| c.arn.clone()),
    }
}

fn status_of(s: Option<&CertificateStatus>) -> String {
    s.map(|s| s.as_str().to_string()).unwrap_or_default()
}

/// DescribeCertificate and ListTagsForCertificate of one ARN; `None` when it is gone.
async fn describe(aws: &crate::aws::Aws, arn: &str, tags: bool) -> Result<Option<LiveCertificate>> {
    let d = aws.gated(aws.acm.describe_certificate().certificate_arn(arn).send());
    let t = async {
        if tags {
            aws.gated(
                aws.acm
                    .list_tags_for_certificate()
                    .certificate_arn(arn)
                    .send(),
            )
            .await
            .map(Some)
        } else {
            Ok(None)
        }
    };
    let (d, t) = futures::join!(d, t);
    let d = match d {
        Ok(d) => d,
        Err(e) if error::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(error::aws(format!("reading certificate {arn}"), e)),
    };
    let tags: Tags = match t {
        Ok(Some(t)) => t
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        Ok(None) => Tags::new(),
        Err(e) if error::is_not_found(&e) => return Ok(None),
        Err(e) => {
            return Err(error::aws(
                format!("reading the tags of certificate {arn}"),
                e,
            ));
        }
    };
    let Some(c) = d.certificate() else {
        return Ok(None);
    };
    Ok(Some(LiveCertificate {
        arn: arn.to_string(),
        domain: c.domain_name().unwrap_or_default().to_ascii_lowercase(),
        sans: c
            .subject_alternative_names()
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        status: status_of(c.status()),
        owner: tags.get(OWNER_TAG).cloned(),
        tags,
        in_use_by: c.in_use_by().to_vec(),
        validation: c
            .domain_validation_options()
            .iter()
            .filter_map(|v| v.resource_record())
            .map(|r| (r.name().to_string(), r.value().to_string()))
            .collect(),
        created: c.created_at().map(|t| t.secs()).unwrap_or_default(),
    }))
}

/// Every certificate of the account in the region named like the desired domain or one
/// of the stack's live domains (ListCertificates, then each one's details and tags),
/// and the user's certificate; read once and shared with the DNS kind.
pub async fn listed(rd: &Reader<'_>) -> Result<Instances<LiveCertificate>> {
    rd.shared("certificates", || async {
        let aws = rd.aws;
        let list_all = || {
            super::all_pages(|token| async move {
                let out = aws
                    .gated(
                        aws.acm
                            .list_certificates()
                            .set_certificate_statuses(Some(vec![
                                CertificateStatus::PendingValidation,
                                CertificateStatus::Issued,
                                CertificateStatus::Inactive,
                                CertificateStatus::Expired,
                                CertificateStatus::ValidationTimedOut,
                                CertificateStatus::Revoked,
                                CertificateStatus::Failed,
                            ]))
                            .set_next_token(token)
                            .send(),
                    )
                    .await
                    .map_err(|e| error::aws("listing ACM certificates", e))?;
                Ok((
                    out.certificate_summary_list().to_vec(),
                    out.next_token().map(String::from),
                ))
            })
        };
        // With [domain], the listing goes beside the domain names' (one level); without
        // it, ACM is read only when the stack still has a domain (and a stack that never
        // had one needs no ACM permission).
        let (owned, listed) = if rd.stack.domain.is_some() {
            futures::try_join!(super::domain_name::owned(rd), list_all())?
        } else {
            let owned = super::domain_name::owned(rd).await?;
            if owned.is_empty() {
                return Ok(Instances::new());
            }
            (owned, list_all().await?)
        };
        let mut names: Vec<String> = owned.into_keys().collect();
        let mut arns: Vec<String> = Vec::new();
        if let Some(d) = &rd.stack.domain {
            names.push(d.name.clone());
            if let Some(arn) = d.given_certificate()
                && certificate_arn(arn).ok().as_deref() == Some(rd.aws.region.as_str())
            {
                arns.push(arn.to_string());
            }
        }
        for c in listed {
            let domain = c.domain_name().unwrap_or_default().to_ascii_lowercase();
            if let Some(arn) = c.certificate_arn()
                && names.contains(&domain)
                && !arns.iter().any(|a| a == arn)
            {
                arns.push(arn.to_string());
            }
        }
        let found =
            futures::future::try_join_all(arns.iter().map(|a| describe(aws, a, true))).await?;
        Ok(found
            .into_iter()
            .flatten()
            .map(|c| (c.arn.clone(), c))
            .collect())
    })
    .await
}

#[derive(Debug)]
pub enum CertificateOp {
    /// RequestCertificate for the name, with the token of this attempt.
    Request {
        name: String,
        attempt: usize,
    },
    Tags {
        arn: String,
        tags: TagDelta,
    },
    /// Writes the validation records in the zone and waits for ISSUED.
    Validate {
        name: String,
        zone_id: String,
    },
    Delete(String),
}

/// The user's certificate, checked: it must exist in the stack's region, be ISSUED and
/// cover the name. The message names the certificate and the rule.
pub fn check_given(
    arn: &str,
    name: &str,
    region: &str,
    live: &Instances<LiveCertificate>,
) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::Conflict(format!(
            "[domain] certificate = {arn:?}: {why}"
        )))
    };
    let at = certificate_arn(arn).unwrap_or_default();
    if at != region {
        return refuse(format!(
            "it is in {at}, and API Gateway takes a regional domain's certificate from the API's region, {region} (request or import one there)"
        ));
    }
    let Some(c) = live.get(arn) else {
        return refuse(format!("ACM has no such certificate in {region}"));
    };
    if c.status != "ISSUED" {
        return refuse(format!(
            "it is {}, and a domain needs an ISSUED certificate",
            c.status
        ));
    }
    if !c.covers(name) {
        return refuse(format!(
            "it is for {} and does not cover {name}",
            std::iter::once(&c.domain)
                .chain(&c.sans)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// The kind: the stack's certificates (and the user's), by ARN.
pub struct Certificate;

impl Resource for Certificate {
    type Live = LiveCertificate;
    const NAME: &'static str = "certificate";

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveCertificate>>> {
        Box::pin(listed(rd))
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live::<Certificate>();
        let stack = p.stack.name.clone();
        let mut keep: Option<String> = None;
        if let Some(d) = p.stack.domain.clone() {
            match &d.dns {
                Dns::Certificate(arn) => {
                    check_given(arn, &d.name, &p.env.region, &live)?;
                }
                Dns::Zone(_) => {
                    let pick = chosen(&live, &stack, &d.name).cloned();
                    match &pick {
                        None => {
                            let attempt = live
                                .values()
                                .filter(|c| {
                                    c.owner.as_deref() == Some(stack.as_str()) && c.domain == d.name
                                })
                                .count();
                            let fields = created_fields(vec![
                                ("domain_name", json!(d.name)),
                                ("validation", json!("DNS")),
                                ("tags", tags_value(&p.stack.tags)),
                            ]);
                            p.push(
                                Node::new(Kind::Certificate, d.name.clone()),
                                ResourceChange::new(label(&d.name, None), Action::Create, fields)
                                    .with_reason(FREE),
                                CertificateOp::Request {
                                    name: d.name.clone(),
                                    attempt,
                                },
                            );
                        }
                        Some(c) => {
                            keep = Some(c.arn.clone());
                            if let Some(f) = super::tags_field(&c.tags, &p.stack.tags) {
                                p.push(
                                    Node::new(Kind::Certificate, d.name.clone()),
                                    ResourceChange::new(
                                        label(&d.name, Some(&c.arn)),
                                        Action::Update,
                                        vec![f],
                                    ),
                                    CertificateOp::Tags {
                                        arn: c.arn.clone(),
                                        tags: TagDelta::between(&c.tags, &p.stack.tags),
                                    },
                                );
                            }
                        }
                    }
                    // The validation record and the wait for ISSUED are planned by
                    // `super::dns`, which reads the zone.
                }
            }
        }
        // The ARN the domain name should use (`None`: the plan requests one).
        p.certificate = match p.stack.domain.as_ref().map(|d| &d.dns) {
            Some(Dns::Certificate(arn)) => Some(arn.clone()),
            _ => keep.clone(),
        };
        for c in live
            .values()
            .filter(|c| c.owner.as_deref() == Some(stack.as_str()))
        {
            if keep.as_deref() == Some(c.arn.as_str()) {
                continue;
            }
            let reason = match &p.stack.domain {
                None => "wsconn.toml declares no [domain]".to_string(),
                Some(d) if d.name != c.domain => format!("the domain is now {}", d.name),
                Some(d) if d.given_certificate().is_some() => {
                    "[domain] gives a certificate of yours".to_string()
                }
                Some(_) if !c.usable() => format!("a request that ended {}", c.status),
                Some(_) => "a duplicate of the stack's certificate".to_string(),
            };
            p.push(
                Node::new(Kind::CertificateCleanup, c.arn.clone()),
                ResourceChange::new(label(&c.domain, Some(&c.arn)), Action::Delete, vec![])
                    .with_reason(reason),
                CertificateOp::Delete(c.arn.clone()),
            );
        }
        Ok(())
    }

    /// Deletes the certificates wsconn requested; a certificate the user gave is kept.
    fn plan_destroy(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live::<Certificate>();
        for c in live
            .values()
            .filter(|c| c.owner.as_deref() == Some(p.stack.name.as_str()))
        {
            p.push(
                Node::new(Kind::Certificate, c.arn.clone()),
                ResourceChange::new(label(&c.domain, Some(&c.arn)), Action::Delete, vec![]),
                CertificateOp::Delete(c.arn.clone()),
            );
        }
        Ok(())
    }
}

async fn request(cx: &Cx, name: &str, attempt: usize) -> Result<()> {
    let tags: Vec<Tag> = cx
        .stack
        .tags
        .iter()
        .map(|(k, v)| error::built("tag", Tag::builder().key(k).value(v).build()))
        .collect::<Result<_>>()?;
    // The token makes a resent request (the SDK's retry after a lost answer, a rerun,
    // a concurrent deploy) return the same certificate.
    let out = cx
        .aws
        .acm
        .request_certificate()
        .domain_name(name)
        .validation_method(ValidationMethod::Dns)
        .idempotency_token(token(cx.stack_name(), name, attempt))
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| error::aws(format!("requesting {}", label(name, None)), e))?;
    let arn = out.certificate_arn().unwrap_or_default().to_string();
    cx.facts().certificate_arn = Some(arn);
    Ok(())
}

async fn retag(cx: &Cx, arn: &str, delta: &TagDelta) -> Result<()> {
    let acm = &cx.aws.acm;
    let tag = |k: &str, v: Option<&str>| {
        error::built(
            "tag",
            Tag::builder().key(k).set_value(v.map(String::from)).build(),
        )
    };
    if !delta.remove.is_empty() {
        let tags = delta
            .remove
            .iter()
            .map(|k| tag(k, None))
            .collect::<Result<Vec<_>>>()?;
        acm.remove_tags_from_certificate()
            .certificate_arn(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| error::aws(format!("removing tags from certificate {arn}"), e))?;
    }
    if !delta.set.is_empty() {
        let tags = delta
            .set
            .iter()
            .map(|(k, v)| tag(k, Some(v)))
            .collect::<Result<Vec<_>>>()?;
        acm.add_tags_to_certificate()
            .certificate_arn(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| error::aws(format!("tagging certificate {arn}"), e))?;
    }
    Ok(())
}

/// A minute-and-second duration: `2m05s`, `40s`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

async fn validate(cx: &Cx, name: &str, zone_id: &str) -> Result<()> {
    let arn = cx
        .facts()
        .certificate_arn
        .clone()
        .ok_or_else(|| Error::Vanished(label(name, None)))?;
    let what = label(name, Some(&arn));
    // ACM names the validation record a few seconds after the request.
    let records = crate::wait::until(
        &format!("{what}: its DNS validation record"),
        RECORD_LIMIT,
        || async {
            let c = describe(&cx.aws, &arn, false)
                .await?
                .ok_or_else(|| Error::Vanished(what.clone()))?;
            Ok((!c.validation.is_empty()).then_some(c.validation))
        },
    )
    .await?;
    cx.facts().validation_records = records.clone();
    super::route53::write_validation(cx, name, zone_id, &records).await?;
    let start = Instant::now();
    let mut noted = Instant::now();
    let mut schedule = crate::wait::Schedule::new(ISSUE_LIMIT);
    loop {
        let c = describe(&cx.aws, &arn, false)
            .await?
            .ok_or_else(|| Error::Vanished(what.clone()))?;
        match c.status.as_str() {
            "ISSUED" => return Ok(()),
            "PENDING_VALIDATION" => {}
            other => {
                return Err(Error::Conflict(format!(
                    "{what} is {other}: ACM did not issue it (see its status in the ACM console); the next deploy requests a new one"
                )));
            }
        }
        if noted.elapsed() >= NOTE_EVERY {
            noted = Instant::now();
            crate::deploy::progress::note(&format!(
                "  … waiting for ACM to issue {what}: {} so far (DNS validation takes a few minutes on AWS; Ctrl-C is safe, the next deploy continues)",
                clock(start.elapsed())
            ));
        }
        if !schedule.sleep().await {
            return Err(Error::Timeout {
                what: format!(
                    "{what}: still PENDING_VALIDATION (run deploy again to keep waiting)"
                ),
                secs: ISSUE_LIMIT.as_secs(),
            });
        }
    }
}

async fn delete(cx: &Cx, arn: &str) -> Result<()> {
    crate::wait::retrying(
        RELEASE_LIMIT,
        |e| e.code() == Some("ResourceInUseException"),
        || async {
            match cx
                .aws
                .acm
                .delete_certificate()
                .certificate_arn(arn)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if error::is_not_found(&e) => Ok(()),
                Err(e) => Err(error::aws(format!("deleting certificate {arn}"), e)),
            }
        },
    )
    .await
}

impl Op for CertificateOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                CertificateOp::Request { name, attempt } => request(cx, name, *attempt).await,
                CertificateOp::Tags { arn, tags } => retag(cx, arn, tags).await,
                CertificateOp::Validate { name, zone_id } => validate(cx, name, zone_id).await,
                CertificateOp::Delete(arn) => delete(cx, arn).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(arn: &str, status: &str, owner: Option<&str>, created: i64) -> LiveCertificate {
        LiveCertificate {
            arn: arn.into(),
            domain: "ws.example.com".into(),
            sans: vec!["ws.example.com".into()],
            status: status.into(),
            owner: owner.map(String::from),
            tags: Tags::new(),
            in_use_by: vec![],
            validation: vec![],
            created,
        }
    }

    #[test]
    fn tokens_are_stable_word_characters_of_acms_length() {
        let t = token("chat", "ws.example.com", 0);
        assert_eq!(t.len(), 32);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(t, token("chat", "ws.example.com", 0));
        assert_ne!(t, token("chat", "ws.example.com", 1));
        assert_ne!(t, token("other", "ws.example.com", 0));
    }

    #[test]
    fn the_stacks_issued_certificate_is_chosen_over_pending_and_failed_ones() {
        let live: Instances<LiveCertificate> = [
            cert("a", "ISSUED", Some("chat"), 1),
            cert("b", "PENDING_VALIDATION", Some("chat"), 5),
            cert("c", "FAILED", Some("chat"), 9),
            cert("d", "ISSUED", Some("other"), 9),
            cert("e", "ISSUED", None, 9),
        ]
        .into_iter()
        .map(|c| (c.arn.clone(), c))
        .collect();
        assert_eq!(chosen(&live, "chat", "ws.example.com").unwrap().arn, "a");
        assert!(chosen(&live, "chat", "other.example.com").is_none());
        let pending: Instances<LiveCertificate> = [(
            "b".to_string(),
            cert("b", "PENDING_VALIDATION", Some("chat"), 5),
        )]
        .into();
        assert_eq!(chosen(&pending, "chat", "ws.example.com").unwrap().arn, "b");
    }

    #[test]
    fn a_certificate_covers_its_names_and_one_wildcard_level() {
        let mut c = cert("a", "ISSUED", None, 0);
        assert!(c.covers("ws.example.com"));
        assert!(!c.covers("x.ws.example.com"));
        c.sans.push("*.example.com".into());
        assert!(c.covers("api.example.com"));
        assert!(!c.covers("a.b.example.com"));
    }

    #[test]
    fn a_given_certificate_must_be_issued_cover_the_name_and_be_in_the_region() {
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
        let mut live: Instances<LiveCertificate> = Instances::new();
        let e = check_given(arn, "ws.example.com", "eu-west-1", &live)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("it is in us-east-1") && e.contains("eu-west-1"),
            "{e}"
        );
        let e = check_given(arn, "ws.example.com", "us-east-1", &live)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such certificate"), "{e}");
        live.insert(arn.into(), cert(arn, "PENDING_VALIDATION", None, 0));
        let e = check_given(arn, "ws.example.com", "us-east-1", &live)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PENDING_VALIDATION"), "{e}");
        live.insert(arn.into(), cert(arn, "ISSUED", None, 0));
        let e = check_given(arn, "api.example.com", "us-east-1", &live)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not cover api.example.com"), "{e}");
        assert!(check_given(arn, "ws.example.com", "us-east-1", &live).is_ok());
    }

    #[test]
    fn clock_shows_minutes_and_seconds() {
        assert_eq!(clock(Duration::from_secs(40)), "40s");
        assert_eq!(clock(Duration::from_secs(125)), "2m05s");
    }
}
