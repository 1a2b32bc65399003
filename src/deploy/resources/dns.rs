//! The custom domain's DNS records in Route 53 (`[domain] hosted-zone`), keyed by the
//! domain's name: an `A` and an `AAAA` alias record from the name to the domain's
//! regional target, and the ownership record (`super::route53` says how records are
//! owned and written).
//!
//! The zone: `hosted-zone` names a public zone of the account; a missing, private or
//! ambiguous one is refused at plan time. When the domain is removed from wsconn.toml
//! (or destroyed), the records are looked for in the public zone that holds the name.

use super::certificate;
use super::domain_name::{self, DomainName};
use super::route53::{
    Alias, Edit, RecordSet, ZoneRecords, bare, check_ours, claims_of, covering_zone, edits,
    named_zone, owner_name, owner_values, read_name, read_validation, rewrite,
};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource, Scope};
use crate::deploy::plan::{Action, FieldChange, ResourceChange};
use crate::deploy::step::Op;
use crate::error::{Error, Result};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// What was read for one domain name.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveDns {
    Zone(Box<ZoneRecords>),
    /// `hosted-zone` names no public zone of the account (refused at plan time).
    Refused(String),
}

/// Which names to read, and in which zone: the desired domain's (in its `hosted-zone`),
/// and the stack's live domains that are not it (in the zone that holds them). The
/// desired name's zone and records are read beside the domain names and certificates;
/// only the validation CNAMEs wait for the certificate (three levels in all).
async fn read<'a>(rd: &'a Reader<'a>) -> Result<Instances<LiveDns>> {
    let desired = rd.stack.domain.as_ref();
    let wanted = async {
        match desired.and_then(|d| d.zone().map(|z| (d, z))) {
            Some((d, z)) => read_one(rd, d.name.clone(), Some(z.to_string())).await,
            None => Ok(None),
        }
    };
    let others = async {
        let owned = domain_name::owned(rd).await?;
        let names: Vec<String> = owned
            .into_keys()
            .filter(|name| match desired {
                // A domain whose DNS is the user's (`certificate`) is left alone while it
                // is declared; destroy removes whatever records of the stack it finds.
                Some(d) if &d.name == name => d.zone().is_none() && rd.scope == Scope::Destroy,
                _ => true,
            })
            .collect();
        futures::future::try_join_all(names.into_iter().map(|n| read_one(rd, n, None))).await
    };
    let (wanted, others) = futures::try_join!(wanted, others)?;
    Ok(wanted
        .into_iter()
        .chain(others.into_iter().flatten())
        .collect())
}

/// One name's zone and records; `None` when no zone of the account holds it.
async fn read_one(
    rd: &Reader<'_>,
    name: String,
    zone: Option<String>,
) -> Result<Option<(String, LiveDns)>> {
    let zone = match zone {
        Some(z) => match named_zone(rd.aws, &z).await? {
            Ok(z) => Some(z),
            Err(why) if rd.scope == Scope::Full => return Ok(Some((name, LiveDns::Refused(why)))),
            Err(_) => None,
        },
        // No zone given: the records are the stack's only if the zone that holds the
        // name can be read (and a user whose DNS is elsewhere may not be allowed to list
        // Route 53 at all).
        None => match covering_zone(rd.aws, &name).await {
            Ok(z) => z,
            Err(e) if e.code() == Some("AccessDenied") => None,
            Err(e) => return Err(e),
        },
    };
    let Some(zone) = zone else {
        return Ok(None);
    };
    let (mut z, certificates) =
        futures::try_join!(read_name(rd.aws, zone, &name), certificate::listed(rd))?;
    let mut validation: Vec<String> = certificates
        .values()
        .filter(|c| c.domain == name && c.owner.as_deref() == Some(rd.stack.name.as_str()))
        .flat_map(|c| c.validation.iter().map(|(n, _)| bare(n)))
        .chain(claims_of(z.owner.as_ref()))
        .collect();
    validation.sort();
    validation.dedup();
    z.validation = read_validation(rd.aws, &z.zone.id, &validation).await?;
    Ok(Some((name, LiveDns::Zone(Box::new(z)))))
}

/// The alias target the records should name: the live domain's, when the plan keeps it.
fn target_of(p: &Planner<'_>, name: &str) -> Option<Alias> {
    if p.creates(Kind::DomainName) {
        return None;
    }
    let live = p.live::<DomainName>();
    let d = live.get(name)?;
    Some(Alias::to(&d.target, &d.target_zone_id))
}

/// What the plan shows for the two alias records and the ownership record.
pub fn diff(name: &str, stack: &str, z: &ZoneRecords, target: Option<&Alias>) -> Vec<FieldChange> {
    let shown = |r: Option<&RecordSet>| r.map(|r| json!(r.shown())).unwrap_or(Value::Null);
    let mut fields = Vec::new();
    for kind in ["A", "AAAA"] {
        let live = z.record(kind);
        let want = match target {
            Some(t) => RecordSet::alias(name, kind, t).shown(),
            None => format!("{name} {kind} alias (the domain's target, known after apply)"),
        };
        let same = match (live, target) {
            (Some(l), Some(t)) => l.same(&RecordSet::alias(name, kind, t)),
            _ => false,
        };
        if !same {
            fields.push(FieldChange {
                field: kind.to_string(),
                current: shown(live),
                desired: json!(want),
            });
        }
    }
    let want = RecordSet::plain(
        &owner_name(name),
        "TXT",
        owner_values(stack, &claims_of(z.owner.as_ref())),
    );
    if !z.owner.as_ref().is_some_and(|o| o.same(&want)) {
        fields.push(FieldChange {
            field: "ownership TXT".into(),
            current: shown(z.owner.as_ref()),
            desired: json!(want.shown()),
        });
    }
    fields
}

pub fn label(name: &str, zone: &str) -> String {
    format!("dns records of {name} (zone {zone})")
}

#[derive(Debug)]
pub enum DnsOp {
    /// Make the alias and ownership records match.
    Sync { name: String, zone_id: String },
    /// Delete the stack's records of the name (and the validation CNAMEs it created).
    Delete { name: String, zone_id: String },
}

/// The kind: the records of each domain name, by name.
pub struct DnsRecords;

impl Resource for DnsRecords {
    type Live = LiveDns;
    const NAME: &'static str = "dns records";

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<LiveDns>>> {
        Box::pin(read(rd))
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live::<DnsRecords>();
        let desired = p.stack.domain.as_ref().filter(|d| d.zone().is_some());
        if let Some(d) = desired {
            let z = match live.get(&d.name) {
                Some(LiveDns::Zone(z)) => z,
                Some(LiveDns::Refused(why)) => return Err(Error::Conflict(why.clone())),
                None => {
                    return Err(Error::Conflict(format!(
                        "the records of {} were not read",
                        d.name
                    )));
                }
            };
            check_ours(&d.name, &p.stack.name, z)?;
            plan_validation(p, &d.name, z);
            let fields = diff(&d.name, &p.stack.name, z, target_of(p, &d.name).as_ref());
            if !fields.is_empty() {
                let action = if z.record("A").is_none() && z.record("AAAA").is_none() {
                    Action::Create
                } else {
                    Action::Update
                };
                p.push(
                    Node::new(Kind::DnsRecords, d.name.clone()),
                    ResourceChange::new(label(&d.name, &z.zone.name), action, fields),
                    DnsOp::Sync {
                        name: d.name.clone(),
                        zone_id: z.zone.id.clone(),
                    },
                );
            }
        }
        for (name, l) in live.iter() {
            let LiveDns::Zone(z) = l else { continue };
            if desired.is_some_and(|d| &d.name == name)
                || z.owner().as_deref() != Some(&p.stack.name)
            {
                continue;
            }
            let reason = match &p.stack.domain {
                None => "wsconn.toml declares no [domain]".to_string(),
                Some(d) if d.name != *name => format!("the domain is now {}", d.name),
                Some(_) => "[domain] gives a certificate: DNS is yours".to_string(),
            };
            push_delete(p, Kind::DnsRecordsCleanup, name, z, Some(reason));
        }
        Ok(())
    }

    fn plan_destroy(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live::<DnsRecords>();
        for (name, l) in live.iter() {
            if let LiveDns::Zone(z) = l
                && z.owner().as_deref() == Some(&p.stack.name)
            {
                push_delete(p, Kind::DnsRecords, name, z, None);
            }
        }
        Ok(())
    }
}

/// The certificate's validation record, written (and claimed) when it is missing, and
/// the wait until ACM issues the certificate: one step, after the request.
fn plan_validation(p: &mut Planner<'_>, name: &str, z: &ZoneRecords) {
    let certs = p.live::<certificate::Certificate>();
    let pick = certificate::chosen(&certs, &p.stack.name, name).cloned();
    let missing: Vec<(String, String)> = pick
        .iter()
        .flat_map(|c| c.validation.iter())
        .filter(|(n, v)| {
            !z.validation
                .iter()
                .any(|r| r.name == bare(n) && r.values.iter().any(|x| bare(x) == bare(v)))
        })
        .cloned()
        .collect();
    let issued = pick.as_ref().is_some_and(|c| c.status == "ISSUED");
    let node = Node::new(Kind::CertificateValidation, name.to_string());
    let op = certificate::CertificateOp::Validate {
        name: name.to_string(),
        zone_id: z.zone.id.clone(),
    };
    let label = certificate::label(name, pick.as_ref().map(|c| c.arn.as_str()));
    if !missing.is_empty() {
        let fields = missing
            .iter()
            .map(|(n, v)| FieldChange {
                field: "CNAME".into(),
                current: Value::Null,
                desired: json!(format!("{} {v}", bare(n))),
            })
            .collect();
        let resource = format!("validation record of {label} (zone {})", z.zone.name);
        p.push(
            node,
            ResourceChange::new(resource, Action::Create, fields),
            op,
        );
    } else if !issued {
        p.steps.push(crate::deploy::step::Step::internal(
            node,
            format!(
                "validate {} by DNS and wait until ACM issues it (minutes on AWS)",
                certificate::label(name, None)
            ),
            op,
        ));
    }
}

fn push_delete(
    p: &mut Planner<'_>,
    kind: Kind,
    name: &str,
    z: &ZoneRecords,
    reason: Option<String>,
) {
    let claims = claims_of(z.owner.as_ref());
    let gone: Vec<FieldChange> = z
        .at_name
        .iter()
        .filter(|r| r.kind != "CNAME")
        .chain(z.owner.iter())
        .chain(z.validation.iter().filter(|v| claims.contains(&v.name)))
        .map(|r| FieldChange {
            field: r.kind.clone(),
            current: json!(r.shown()),
            desired: Value::Null,
        })
        .collect();
    let mut c = ResourceChange::new(label(name, &z.zone.name), Action::Delete, gone);
    if let Some(r) = reason {
        c = c.with_reason(r);
    }
    p.push(
        Node::new(kind, name.to_string()),
        c,
        DnsOp::Delete {
            name: name.to_string(),
            zone_id: z.zone.id.clone(),
        },
    );
}

/// Rewrites the records of `name` with `plan` (see [`rewrite`]); the validation CNAMEs
/// read are those the stack's certificate names (and those the ownership record claims).
async fn converge<F>(cx: &Cx, name: &str, zone_id: &str, what: &str, plan: F) -> Result<()>
where
    F: FnMut(&ZoneRecords) -> Result<Vec<Edit>>,
{
    let names: Vec<String> = cx
        .facts()
        .validation_records
        .iter()
        .map(|(n, _)| bare(n))
        .collect();
    rewrite(&cx.aws, zone_id, name, &names, what, plan).await
}

async fn sync(cx: &Cx, name: &str, zone_id: &str) -> Result<()> {
    let stack = cx.stack_name().to_string();
    let what = format!("the records of {name}");
    let target = cx
        .facts()
        .domain_target
        .clone()
        .ok_or_else(|| Error::Vanished(format!("custom domain name {name}")))?;
    let alias = Alias::to(&target.0, &target.1);
    converge(cx, name, zone_id, &what, |z| {
        check_ours(name, &stack, z)?;
        let mut out = Vec::new();
        for kind in ["A", "AAAA"] {
            out.extend(edits(
                z.record(kind),
                Some(&RecordSet::alias(name, kind, &alias)),
            ));
        }
        let txt = RecordSet::plain(
            &owner_name(name),
            "TXT",
            owner_values(&stack, &claims_of(z.owner.as_ref())),
        );
        out.extend(edits(z.owner.as_ref(), Some(&txt)));
        Ok(out)
    })
    .await
}

async fn delete(cx: &Cx, name: &str, zone_id: &str) -> Result<()> {
    let stack = cx.stack_name().to_string();
    let what = format!("the records of {name}");
    converge(cx, name, zone_id, &what, |z| {
        if z.owner().as_deref() != Some(stack.as_str()) {
            return Ok(vec![]);
        }
        let claims = claims_of(z.owner.as_ref());
        let mut out: Vec<Edit> = z
            .at_name
            .iter()
            .filter(|r| r.kind != "CNAME" && r.set_identifier.is_none())
            .map(|r| Edit::Delete(r.clone()))
            .collect();
        out.extend(
            z.validation
                .iter()
                .filter(|v| claims.contains(&v.name))
                .map(|v| Edit::Delete(v.clone())),
        );
        out.extend(z.owner.iter().map(|o| Edit::Delete(o.clone())));
        Ok(out)
    })
    .await
}

impl Op for DnsOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                DnsOp::Sync { name, zone_id } => sync(cx, name, zone_id).await,
                DnsOp::Delete { name, zone_id } => delete(cx, name, zone_id).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::route53::fixtures::{target, zone};
    use super::*;

    #[test]
    fn aliases_compare_without_case_or_final_dot() {
        let t = target();
        let live = RecordSet::alias(
            "ws.example.com",
            "A",
            &Alias::to(
                "D-ABC.execute-api.us-east-1.amazonaws.com",
                "Z1UJRXOUMOOFQ8",
            ),
        );
        let z = zone(
            vec![live, RecordSet::alias("ws.example.com", "AAAA", &t)],
            Some("chat"),
        );
        assert!(diff("ws.example.com", "chat", &z, Some(&t)).is_empty());
        let other = Alias::to(
            "d-old.execute-api.us-east-1.amazonaws.com",
            "Z1UJRXOUMOOFQ8",
        );
        let f = diff("ws.example.com", "chat", &z, Some(&other));
        assert_eq!(
            f.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
            ["A", "AAAA"]
        );
        let f = diff("ws.example.com", "chat", &zone(vec![], None), None);
        assert_eq!(f.len(), 3);
        assert!(f[0].desired.as_str().unwrap().contains("known after apply"));
    }
}
