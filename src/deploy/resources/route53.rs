//! Route 53, as the custom domain's kinds use it (`certificate`'s validation record,
//! `dns`'s alias and ownership records): zones, record sets, the ownership record, and
//! conditional change batches.
//!
//! **Records are never taken over.** Route 53 records carry no tags, so wsconn marks its
//! own with a `TXT` record at `_wsconn.<name>` whose first string is
//! `"wsconn:stack=<stack>"` (as external-dns marks its records with a TXT "registry"
//! record). Records at the name are the stack's only when that record names the stack;
//! any other `A`, `AAAA` or `CNAME` there is refused, naming it, with no write. The
//! ownership record also lists the certificate's validation CNAMEs that wsconn created
//! (`"wsconn:validation=<name>"`): ACM uses one validation CNAME for a name in every
//! certificate of the account, so one that was there before is someone else's and stays.
//!
//! Writes are conditional: a record is added with CREATE (refused when one appeared in
//! the meantime) and changed with DELETE of the exact live values plus CREATE, in one
//! change batch that Route 53 applies atomically; no UPSERT. Each write reads the
//! records again first, so a lost answer, a rerun after a kill or a race ends in the
//! same records. wsconn waits until the change is `INSYNC`.

use crate::aws::Aws;
use crate::config::domain::in_zone;
use crate::deploy::context::Cx;
use crate::error::{self, Error, Result};
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord,
    ResourceRecordSet, RrType,
};
use std::collections::BTreeSet;
use std::time::Duration;

/// The ownership record's label: `_wsconn.<name>`.
pub const OWNER_LABEL: &str = "_wsconn";
const OWNER_KEY: &str = "wsconn:stack=";
const CLAIM_KEY: &str = "wsconn:validation=";
/// TTL of the records wsconn writes that are not aliases (ACM's CNAME, the TXT).
const TTL: i64 = 300;
/// How long a change may stay PENDING (Route 53 syncs in about a minute).
const SYNC_LIMIT: Duration = Duration::from_secs(600);

/// A public hosted zone: its id (without `/hostedzone/`) and name (no final dot).
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub id: String,
    pub name: String,
}

/// One record set as Route 53 lists it (names lower case, without the final dot).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSet {
    pub name: String,
    pub kind: String,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    pub alias: Option<Alias>,
    /// A routing policy's record (weighted, latency…): never one of wsconn's.
    pub set_identifier: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub zone_id: String,
    pub dns_name: String,
    pub evaluate_target_health: bool,
}

impl Alias {
    pub fn to(dns_name: &str, zone_id: &str) -> Alias {
        Alias {
            zone_id: zone_id.to_string(),
            dns_name: bare(dns_name),
            evaluate_target_health: false,
        }
    }
    pub fn shown(&self) -> String {
        format!("alias {} (zone {})", self.dns_name, self.zone_id)
    }
}

impl RecordSet {
    pub fn alias(name: &str, kind: &str, to: &Alias) -> RecordSet {
        RecordSet {
            name: name.to_string(),
            kind: kind.to_string(),
            ttl: None,
            values: vec![],
            alias: Some(to.clone()),
            set_identifier: None,
        }
    }
    pub fn plain(name: &str, kind: &str, values: Vec<String>) -> RecordSet {
        RecordSet {
            name: name.to_string(),
            kind: kind.to_string(),
            ttl: Some(TTL),
            values,
            alias: None,
            set_identifier: None,
        }
    }
    /// How the plan and errors show it.
    pub fn shown(&self) -> String {
        match &self.alias {
            Some(a) => format!("{} {} {}", self.name, self.kind, a.shown()),
            None => format!("{} {} {}", self.name, self.kind, self.values.join(" ")),
        }
    }
    /// The same record, compared as DNS compares: names without case or final dot.
    pub fn same(&self, other: &RecordSet) -> bool {
        let norm = |v: &[String]| -> Vec<String> {
            let mut v: Vec<String> = v.iter().map(|s| bare(s)).collect();
            v.sort();
            v
        };
        self.kind == other.kind
            && self.alias == other.alias
            && norm(&self.values) == norm(&other.values)
            && (self.alias.is_some() || self.ttl == other.ttl)
    }
}

/// A DNS name as compared: lower case, no final dot.
pub fn bare(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

pub fn owner_name(name: &str) -> String {
    format!("{OWNER_LABEL}.{name}")
}

/// The ownership record's strings: the stack, then the validation CNAMEs it created.
pub fn owner_values(stack: &str, claims: &BTreeSet<String>) -> Vec<String> {
    std::iter::once(format!("\"{OWNER_KEY}{stack}\""))
        .chain(claims.iter().map(|c| format!("\"{CLAIM_KEY}{c}\"")))
        .collect()
}

/// The stack an ownership record names, if it is one.
pub fn owner_of(txt: &RecordSet) -> Option<String> {
    txt.values.iter().find_map(|v| {
        v.trim_matches('"')
            .strip_prefix(OWNER_KEY)
            .map(String::from)
    })
}

/// The validation CNAMEs an ownership record says wsconn created.
pub fn claims_of(txt: Option<&RecordSet>) -> BTreeSet<String> {
    txt.map(|t| {
        t.values
            .iter()
            .filter_map(|v| v.trim_matches('"').strip_prefix(CLAIM_KEY).map(bare))
            .collect()
    })
    .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZoneRecords {
    pub zone: Zone,
    /// `A`, `AAAA` and `CNAME` record sets named exactly like the domain.
    pub at_name: Vec<RecordSet>,
    /// The ownership record, if there is one.
    pub owner: Option<RecordSet>,
    /// The certificate's validation CNAMEs that exist, by name.
    pub validation: Vec<RecordSet>,
}

impl ZoneRecords {
    /// The stack the ownership record names, if any.
    pub fn owner(&self) -> Option<String> {
        self.owner.as_ref().and_then(owner_of)
    }
    pub fn record(&self, kind: &str) -> Option<&RecordSet> {
        self.at_name.iter().find(|r| r.kind == kind)
    }
}

fn zone_of(z: &aws_sdk_route53::types::HostedZone) -> (Zone, bool) {
    (
        Zone {
            id: z.id().trim_start_matches("/hostedzone/").to_string(),
            name: bare(z.name()),
        },
        z.config().is_some_and(|c| c.private_zone()),
    )
}

/// Hosted zones named exactly `name`, with whether each is private.
async fn zones_named(aws: &Aws, name: &str) -> Result<Vec<(Zone, bool)>> {
    let out = aws
        .gated(
            aws.route53
                .list_hosted_zones_by_name()
                .dns_name(name)
                .max_items(10)
                .send(),
        )
        .await
        .map_err(|e| error::aws(format!("looking up the Route 53 zone {name}"), e))?;
    Ok(out
        .hosted_zones()
        .iter()
        .map(zone_of)
        .filter(|(z, _)| z.name == name)
        .collect())
}

/// The public zone `hosted-zone` names: refused (as a message) when the account has
/// none, only a private one, or more than one public one.
pub async fn named_zone(aws: &Aws, zone: &str) -> Result<std::result::Result<Zone, String>> {
    let found = zones_named(aws, zone).await?;
    let public: Vec<&Zone> = found.iter().filter(|(_, p)| !p).map(|(z, _)| z).collect();
    Ok(match public.as_slice() {
        [one] => Ok((*one).clone()),
        [] if found.is_empty() => Err(format!(
            "[domain] hosted-zone = {zone:?}: this account has no Route 53 hosted zone named {zone} (create it, or give certificate = an ISSUED certificate and manage DNS yourself)"
        )),
        [] => Err(format!(
            "[domain] hosted-zone = {zone:?}: the zone {zone} is private; the domain's records must be public"
        )),
        many => Err(format!(
            "[domain] hosted-zone = {zone:?}: {} public zones are named {zone} ({}); wsconn cannot tell which one the domain's registrar delegates to",
            many.len(),
            many.iter()
                .map(|z| z.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    })
}

/// The public zone that holds `name` (the longest suffix with a zone), if the account
/// has one. Used where no `hosted-zone` is given: a removed `[domain]`, destroy.
pub async fn covering_zone(aws: &Aws, name: &str) -> Result<Option<Zone>> {
    let labels: Vec<&str> = name.split('.').collect();
    let suffixes: Vec<String> = (0..labels.len().saturating_sub(1))
        .map(|i| labels[i..].join("."))
        .collect();
    let found = futures::future::try_join_all(suffixes.iter().map(|s| zones_named(aws, s))).await?;
    Ok(found
        .into_iter()
        .flatten()
        .filter(|(z, private)| !private && in_zone(name, &z.name))
        .map(|(z, _)| z)
        .max_by_key(|z| z.name.len()))
}

fn record_of(r: &ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: bare(r.name()).replace("\\052", "*"),
        kind: r.r#type().as_str().to_string(),
        ttl: r.ttl(),
        values: r
            .resource_records()
            .iter()
            .map(|v| v.value().to_string())
            .collect(),
        alias: r.alias_target().map(|a| Alias {
            zone_id: a.hosted_zone_id().to_string(),
            dns_name: bare(a.dns_name()),
            evaluate_target_health: a.evaluate_target_health(),
        }),
        set_identifier: r.set_identifier().map(String::from),
    }
}

/// Every record set named exactly `name` in the zone.
pub async fn records_named(aws: &Aws, zone_id: &str, name: &str) -> Result<Vec<RecordSet>> {
    let mut all = Vec::new();
    let mut start: (String, Option<RrType>, Option<String>) = (name.to_string(), None, None);
    loop {
        let out = aws
            .gated(
                aws.route53
                    .list_resource_record_sets()
                    .hosted_zone_id(zone_id)
                    .start_record_name(&start.0)
                    .set_start_record_type(start.1.clone())
                    .set_start_record_identifier(start.2.clone())
                    .max_items(20)
                    .send(),
            )
            .await
            .map_err(|e| {
                error::aws(
                    format!("reading the records of {name} in zone {zone_id}"),
                    e,
                )
            })?;
        let page: Vec<RecordSet> = out.resource_record_sets().iter().map(record_of).collect();
        let past = page.iter().any(|r| r.name != name);
        all.extend(page.into_iter().filter(|r| r.name == name));
        match out.next_record_name() {
            Some(next) if out.is_truncated() && !past && bare(next) == name => {
                start = (
                    next.to_string(),
                    out.next_record_type().cloned(),
                    out.next_record_identifier().map(String::from),
                );
            }
            _ => return Ok(all),
        }
    }
}

/// Reads the records of `name` in `zone`: those at the name, the ownership record and
/// the validation CNAMEs named `validation` (one level: all at once).
pub async fn read_zone(
    aws: &Aws,
    zone: Zone,
    name: &str,
    validation: &[String],
) -> Result<ZoneRecords> {
    let id = zone.id.clone();
    let (mut z, checks) = futures::try_join!(
        read_name(aws, zone, name),
        read_validation(aws, &id, validation)
    )?;
    z.validation = checks;
    Ok(z)
}

/// The records at the name and the ownership record.
pub async fn read_name(aws: &Aws, zone: Zone, name: &str) -> Result<ZoneRecords> {
    let owner = owner_name(name);
    let (at_name, owner_sets) = futures::try_join!(
        records_named(aws, &zone.id, name),
        records_named(aws, &zone.id, &owner),
    )?;
    Ok(ZoneRecords {
        at_name: at_name
            .into_iter()
            .filter(|r| ["A", "AAAA", "CNAME"].contains(&r.kind.as_str()))
            .collect(),
        owner: owner_sets.into_iter().find(|r| r.kind == "TXT"),
        validation: Vec::new(),
        zone,
    })
}

/// The validation CNAMEs that exist among `names`.
pub async fn read_validation(aws: &Aws, zone_id: &str, names: &[String]) -> Result<Vec<RecordSet>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let checks =
        futures::future::try_join_all(names.iter().map(|v| records_named(aws, zone_id, v))).await?;
    Ok(checks
        .into_iter()
        .flatten()
        .filter(|r| r.kind == "CNAME")
        .collect())
}

/// Refuses records at the name that the stack did not make.
pub fn check_ours(name: &str, stack: &str, z: &ZoneRecords) -> Result<()> {
    let owner = z.owner();
    if let Some(other) = owner.as_deref().filter(|o| *o != stack) {
        return Err(Error::Conflict(format!(
            "Route 53 zone {} has the record {} naming stack {other:?}: {name} belongs to that stack; wsconn never takes over a record (choose another [domain] name, or destroy that stack first)",
            z.zone.name,
            owner_name(name)
        )));
    }
    let foreign: Vec<String> = z
        .at_name
        .iter()
        .filter(|r| owner.is_none() || r.kind == "CNAME" || r.set_identifier.is_some())
        .map(RecordSet::shown)
        .collect();
    if !foreign.is_empty() {
        return Err(Error::Conflict(format!(
            "Route 53 zone {} already has {} that wsconn did not make (no TXT record {} naming stack {stack:?}); wsconn never takes over a record: delete it yourself, or choose another [domain] name",
            z.zone.name,
            foreign.join(", "),
            owner_name(name)
        )));
    }
    Ok(())
}

// --- Writing ------------------------------------------------------------------------

fn to_sdk(r: &RecordSet) -> Result<ResourceRecordSet> {
    let mut b = ResourceRecordSet::builder()
        .name(&r.name)
        .r#type(RrType::from(r.kind.as_str()));
    if let Some(a) = &r.alias {
        b = b.alias_target(error::built(
            "alias target",
            AliasTarget::builder()
                .hosted_zone_id(&a.zone_id)
                .dns_name(&a.dns_name)
                .evaluate_target_health(a.evaluate_target_health)
                .build(),
        )?);
    } else {
        b = b.set_ttl(r.ttl);
        for v in &r.values {
            b = b.resource_records(error::built(
                "resource record",
                ResourceRecord::builder().value(v).build(),
            )?);
        }
    }
    if let Some(s) = &r.set_identifier {
        b = b.set_identifier(s);
    }
    error::built("record set", b.build())
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    Create(RecordSet),
    Delete(RecordSet),
}

/// The edits that turn `have` into `want` (`None`: remove), as conditional writes.
pub fn edits(have: Option<&RecordSet>, want: Option<&RecordSet>) -> Vec<Edit> {
    match (have, want) {
        (None, None) => vec![],
        (Some(h), Some(w)) if h.same(w) => vec![],
        (None, Some(w)) => vec![Edit::Create(w.clone())],
        (Some(h), None) => vec![Edit::Delete(h.clone())],
        (Some(h), Some(w)) => vec![Edit::Delete(h.clone()), Edit::Create(w.clone())],
    }
}

/// Submits the edits as one atomic change batch and waits until it is INSYNC. An
/// InvalidChangeBatch means the records changed since they were read: `Ok(false)`, so
/// the caller reads again.
pub async fn submit(aws: &Aws, zone_id: &str, edits: &[Edit], what: &str) -> Result<bool> {
    if edits.is_empty() {
        return Ok(true);
    }
    let mut batch = ChangeBatch::builder().comment(format!("wsconn: {what}"));
    for e in edits {
        let (action, r) = match e {
            Edit::Create(r) => (ChangeAction::Create, r),
            Edit::Delete(r) => (ChangeAction::Delete, r),
        };
        batch = batch.changes(error::built(
            "change",
            Change::builder()
                .action(action)
                .resource_record_set(to_sdk(r)?)
                .build(),
        )?);
    }
    let batch = error::built("change batch", batch.build())?;
    let sent = aws
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await;
    let id = match sent {
        Ok(out) => out.change_info().map(|c| c.id().to_string()),
        Err(e) if error::code_of(&e) == Some("InvalidChangeBatch") => return Ok(false),
        Err(e) if error::outcome(&e) == error::Outcome::Unknown => {
            // It may have been applied: the caller reads again and decides.
            return Ok(false);
        }
        Err(e) => return Err(error::aws(format!("changing {what} in zone {zone_id}"), e)),
    };
    if let Some(id) = id {
        wait_in_sync(aws, &id, what).await?;
    }
    Ok(true)
}

/// Waits until a change is INSYNC (Route 53 has propagated it to its servers).
pub async fn wait_in_sync(aws: &Aws, change_id: &str, what: &str) -> Result<()> {
    let id = change_id.trim_start_matches("/change/").to_string();
    crate::wait::until(
        &format!("Route 53 change {id} ({what})"),
        SYNC_LIMIT,
        || async {
            let out = aws
                .route53
                .get_change()
                .id(&id)
                .send()
                .await
                .map_err(|e| error::aws(format!("reading Route 53 change {id}"), e))?;
            Ok(out
                .change_info()
                .is_some_and(|c| c.status() == &ChangeStatus::Insync)
                .then_some(()))
        },
    )
    .await
}

/// Writes the certificate's validation CNAMEs (`records`: name → value) in the zone:
/// those missing are created and claimed in the ownership record, those of the stack
/// with another value replaced, and a different one wsconn did not make refused.
pub async fn write_validation(
    cx: &Cx,
    name: &str,
    zone_id: &str,
    records: &[(String, String)],
) -> Result<()> {
    let stack = cx.stack_name().to_string();
    let what = format!("the certificate validation records of {name}");
    let names: Vec<String> = records.iter().map(|(n, _)| bare(n)).collect();
    rewrite(&cx.aws, zone_id, name, &names, &what, |z| {
        if let Some(other) = z.owner().filter(|o| *o != stack) {
            return Err(Error::Conflict(format!(
                "the record {} names stack {other:?}: {name} belongs to that stack",
                owner_name(name)
            )));
        }
        let mut claims = claims_of(z.owner.as_ref());
        let mut out = Vec::new();
        for (n, value) in records {
            let n = bare(n);
            let want = RecordSet::plain(&n, "CNAME", vec![value.clone()]);
            match z.validation.iter().find(|v| v.name == n) {
                None => {
                    claims.insert(n.clone());
                    out.push(Edit::Create(want));
                }
                Some(have) if have.values.iter().map(|v| bare(v)).eq([bare(value)]) => {}
                Some(have) if claims.contains(&n) => out.extend(edits(Some(have), Some(&want))),
                Some(have) => {
                    return Err(Error::Conflict(format!(
                        "Route 53 zone {zone_id} has {} where ACM needs {n} CNAME {value}, and wsconn did not make it: fix or delete it yourself",
                        have.shown()
                    )));
                }
            }
        }
        if !out.is_empty() {
            let txt = RecordSet::plain(&owner_name(name), "TXT", owner_values(&stack, &claims));
            out.extend(edits(z.owner.as_ref(), Some(&txt)));
        }
        Ok(out)
    })
    .await
}

/// Reads the records of `name` (with the validation CNAMEs `names` and those the
/// ownership record claims), computes the edits with `plan`, and submits them: again
/// while the records change under it (a race, a lost answer), at most a few rounds.
pub async fn rewrite<F>(
    aws: &Aws,
    zone_id: &str,
    name: &str,
    names: &[String],
    what: &str,
    mut plan: F,
) -> Result<()>
where
    F: FnMut(&ZoneRecords) -> Result<Vec<Edit>>,
{
    let zone = Zone {
        id: zone_id.to_string(),
        name: String::new(),
    };
    for _ in 0..5 {
        let mut names = names.to_vec();
        let mut z = read_zone(aws, zone.clone(), name, &names).await?;
        let claims = claims_of(z.owner.as_ref());
        if claims.iter().any(|c| !names.contains(c)) {
            names.extend(claims);
            names.sort();
            names.dedup();
            z = read_zone(aws, zone.clone(), name, &names).await?;
        }
        let edits = plan(&z)?;
        if submit(aws, zone_id, &edits, what).await? {
            return Ok(());
        }
    }
    Err(Error::Conflict(format!(
        "{what}: the records kept changing while wsconn wrote them; run deploy again"
    )))
}

/// Zones and targets the tests of this module and of `super::dns` build on.
#[cfg(test)]
pub mod fixtures {
    use super::*;

    pub fn zone(at_name: Vec<RecordSet>, owner: Option<&str>) -> ZoneRecords {
        ZoneRecords {
            zone: Zone {
                id: "Z1".into(),
                name: "example.com".into(),
            },
            at_name,
            owner: owner.map(|s| {
                RecordSet::plain(
                    "_wsconn.ws.example.com",
                    "TXT",
                    owner_values(s, &BTreeSet::new()),
                )
            }),
            validation: vec![],
        }
    }

    pub fn target() -> Alias {
        Alias::to(
            "d-abc.execute-api.us-east-1.amazonaws.com.",
            "Z1UJRXOUMOOFQ8",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{target, zone};
    use super::*;

    #[test]
    fn the_ownership_record_names_the_stack_and_its_claims() {
        let claims: BTreeSet<String> = ["_x.ws.example.com".to_string()].into();
        let v = owner_values("chat", &claims);
        assert_eq!(
            v,
            [
                "\"wsconn:stack=chat\"",
                "\"wsconn:validation=_x.ws.example.com\""
            ]
        );
        let txt = RecordSet::plain("_wsconn.ws.example.com", "TXT", v);
        assert_eq!(owner_of(&txt).as_deref(), Some("chat"));
        assert_eq!(claims_of(Some(&txt)), claims);
        assert!(claims_of(None).is_empty());
    }

    #[test]
    fn records_without_the_stacks_ownership_record_are_refused() {
        let foreign = RecordSet::plain("ws.example.com", "A", vec!["192.0.2.1".into()]);
        let e = check_ours("ws.example.com", "chat", &zone(vec![foreign.clone()], None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ws.example.com A 192.0.2.1") && e.contains("never takes over"),
            "{e}"
        );
        let e = check_ours("ws.example.com", "chat", &zone(vec![], Some("other")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"other\""), "{e}");
        assert!(check_ours("ws.example.com", "chat", &zone(vec![foreign], Some("chat"))).is_ok());
        let cname = RecordSet::plain("ws.example.com", "CNAME", vec!["x.example.net".into()]);
        assert!(check_ours("ws.example.com", "chat", &zone(vec![cname], Some("chat"))).is_err());
        assert!(check_ours("ws.example.com", "chat", &zone(vec![], None)).is_ok());
    }

    #[test]
    fn edits_are_conditional_writes() {
        let a = RecordSet::alias("ws.example.com", "A", &target());
        let b = RecordSet::alias(
            "ws.example.com",
            "A",
            &Alias::to(
                "d-new.execute-api.us-east-1.amazonaws.com",
                "Z1UJRXOUMOOFQ8",
            ),
        );
        assert_eq!(edits(None, Some(&a)), [Edit::Create(a.clone())]);
        assert!(edits(Some(&a), Some(&a)).is_empty());
        assert_eq!(
            edits(Some(&a), Some(&b)),
            [Edit::Delete(a.clone()), Edit::Create(b)]
        );
        assert_eq!(edits(Some(&a), None), [Edit::Delete(a)]);
    }

    #[test]
    fn names_are_compared_bare() {
        assert_eq!(bare("WS.Example.COM."), "ws.example.com");
        assert_eq!(owner_name("ws.example.com"), "_wsconn.ws.example.com");
    }
}
