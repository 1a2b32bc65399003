//! The API mapping that puts the stack's stage on its custom domain, keyed by the
//! domain's name. The domain is the stack's (by its tag), so every mapping on it is the
//! stack's to set: one maps the stage at `[domain] base-path`; another of the stack's
//! API is removed; a mapping of another API on the same key is pointed at this one.
//! Mappings of other APIs on other keys are left alone.

use super::domain_name::{self, DomainName};
use super::{all_pages, api, api_delete, api_write};
use crate::deploy::context::Cx;
use crate::deploy::graph::{Kind, Node};
use crate::deploy::kind::{Instances, Planner, Reader, Resource};
use crate::deploy::plan::{Action, ResourceChange, created_fields, field};
use crate::deploy::step::Op;
use crate::error::{self, Result};
use futures::future::BoxFuture;
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub id: String,
    pub api_id: String,
    pub stage: String,
    /// "" for the root.
    pub key: String,
}

pub fn label(domain: &str, key: &str) -> String {
    if key.is_empty() {
        format!("api mapping {domain}/ (the root)")
    } else {
        format!("api mapping {domain}/{key}")
    }
}

/// GetApiMappings of one domain; `None` when the domain is gone.
async fn list(cx_aws: &crate::aws::Aws, domain: &str) -> Result<Option<Vec<Mapping>>> {
    let pages = all_pages(|token| async move {
        let out = cx_aws
            .gated(
                cx_aws
                    .apigw
                    .get_api_mappings()
                    .domain_name(domain)
                    .set_next_token(token)
                    .send(),
            )
            .await;
        match out {
            Ok(o) => Ok((
                o.items()
                    .iter()
                    .map(|m| {
                        Some(Mapping {
                            id: m.api_mapping_id().unwrap_or_default().into(),
                            api_id: m.api_id().unwrap_or_default().into(),
                            stage: m.stage().unwrap_or_default().into(),
                            key: m.api_mapping_key().unwrap_or_default().into(),
                        })
                    })
                    .collect(),
                o.next_token().map(String::from),
            )),
            Err(e) if error::is_not_found(&e) => Ok((vec![None], None)),
            Err(e) => Err(error::aws(
                format!("listing the API mappings of {domain}"),
                e,
            )),
        }
    })
    .await?;
    Ok(pages.into_iter().collect())
}

#[derive(Debug)]
pub enum MappingOp {
    Create { domain: String },
    Update { domain: String, id: String },
    Delete { domain: String, id: String },
}

/// A change to make for the stack's stage: why (when it takes over another API's key),
/// the mapping to update (`None`: make one), and the fields (name, live, desired).
#[derive(Debug)]
pub struct Change {
    pub why: Option<&'static str>,
    pub existing: Option<Mapping>,
    pub fields: Vec<(&'static str, serde_json::Value, serde_json::Value)>,
}

/// What one domain's mappings need: the change for the stack's stage (`None`: in
/// sync), and the stack's mappings to delete. Pure.
pub fn diff(
    mappings: &[Mapping],
    api_id: Option<&str>,
    stage: &str,
    key: &str,
) -> (Option<Change>, Vec<Mapping>) {
    let ours: Vec<&Mapping> = mappings
        .iter()
        .filter(|m| api_id.is_some_and(|a| a == m.api_id))
        .collect();
    let shown_api = api_id.unwrap_or(super::UNKNOWN_API);
    let want = |m: &Mapping| -> Vec<(&'static str, serde_json::Value, serde_json::Value)> {
        [
            ("api", json!(m.api_id), json!(shown_api)),
            ("stage", json!(m.stage), json!(stage)),
            ("key", json!(m.key), json!(key)),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .collect()
    };
    // The mapping to keep: the stack's API on the key, else the stack's API on another
    // key, else whatever holds the key.
    let keep = ours
        .iter()
        .find(|m| m.key == key)
        .or_else(|| ours.first())
        .copied()
        .or_else(|| mappings.iter().find(|m| m.key == key));
    let extra: Vec<Mapping> = ours
        .iter()
        .filter(|m| Some(m.id.as_str()) != keep.map(|k| k.id.as_str()))
        .map(|m| (*m).clone())
        .collect();
    let change = match keep {
        None => Some(Change {
            why: None,
            existing: None,
            fields: vec![],
        }),
        Some(m) => {
            let fields = want(m);
            (!fields.is_empty()).then(|| Change {
                why: (m.api_id != shown_api
                    && api_id.is_some()
                    && !ours.iter().any(|o| o.id == m.id))
                .then_some("the key maps another API, and the domain is the stack's"),
                existing: Some(m.clone()),
                fields,
            })
        }
    };
    (change, extra)
}

/// The kind: each domain's mappings, by the domain's name.
pub struct ApiMapping;

impl Resource for ApiMapping {
    type Live = Vec<Mapping>;
    const NAME: &'static str = "api mapping";

    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<Vec<Mapping>>>> {
        Box::pin(async move {
            let owned = domain_name::owned(rd).await?;
            let found = futures::future::try_join_all(owned.keys().map(|name| async move {
                Ok::<_, error::Error>(list(rd.aws, name).await?.map(|m| (name.clone(), m)))
            }))
            .await?;
            Ok(found.into_iter().flatten().collect())
        })
    }

    fn plan(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live::<ApiMapping>();
        let api_id = api::kept_id(p);
        if let Some(d) = &p.stack.domain {
            // A domain the plan creates has no mapping yet.
            let mappings =
                if p.creates(Kind::DomainName) || !p.live::<DomainName>().contains_key(&d.name) {
                    Vec::new()
                } else {
                    live.get(&d.name).cloned().unwrap_or_default()
                };
            let (change, extra) = diff(&mappings, api_id.as_deref(), &p.stack.stage, &d.base_path);
            if let Some(Change {
                why,
                existing,
                fields,
            }) = change
            {
                let domain = d.name.clone();
                match existing {
                    None => {
                        let fields = created_fields(vec![
                            (
                                "api",
                                json!(api_id.as_deref().unwrap_or(super::UNKNOWN_API)),
                            ),
                            ("stage", json!(p.stack.stage)),
                            ("key", json!(d.base_path)),
                        ]);
                        p.push(
                            Node::new(Kind::ApiMapping, domain.clone()),
                            ResourceChange::new(
                                label(&domain, &d.base_path),
                                Action::Create,
                                fields,
                            ),
                            MappingOp::Create { domain },
                        );
                    }
                    Some(m) => {
                        let fields = fields
                            .into_iter()
                            .filter_map(|(n, a, b)| field(n, a, b))
                            .collect();
                        let mut c = ResourceChange::new(
                            format!("{} ({})", label(&domain, &m.key), m.id),
                            Action::Update,
                            fields,
                        );
                        if let Some(why) = why {
                            c = c.with_reason(why);
                        }
                        p.push(
                            Node::new(Kind::ApiMapping, domain.clone()),
                            c,
                            MappingOp::Update { domain, id: m.id },
                        );
                    }
                }
            }
            for m in extra {
                push_delete(
                    p,
                    Kind::ApiMappingCleanup,
                    &d.name,
                    &m,
                    Some("another mapping of the stack's API"),
                );
            }
        }
        for (domain, mappings) in live.iter() {
            if p.stack.domain.as_ref().is_some_and(|d| &d.name == domain) {
                continue;
            }
            for m in mappings
                .iter()
                .filter(|m| api_id.as_deref() == Some(m.api_id.as_str()))
            {
                push_delete(
                    p,
                    Kind::ApiMappingCleanup,
                    domain,
                    m,
                    Some("the domain is no longer the stack's"),
                );
            }
        }
        Ok(())
    }

    /// The mappings of the stack's domains go first (then the records, the domain and
    /// its certificate).
    fn plan_destroy(p: &mut Planner<'_>) -> Result<()> {
        let live = p.live::<ApiMapping>();
        for (domain, mappings) in live.iter() {
            for m in mappings {
                push_delete(p, Kind::ApiMapping, domain, m, None);
            }
        }
        Ok(())
    }
}

fn push_delete(p: &mut Planner<'_>, kind: Kind, domain: &str, m: &Mapping, why: Option<&str>) {
    let mut c = ResourceChange::new(
        format!("{} ({})", label(domain, &m.key), m.id),
        Action::Delete,
        vec![],
    );
    if let Some(w) = why {
        c = c.with_reason(w);
    }
    p.push(
        Node::new(kind, format!("{domain}/{}", m.id)),
        c,
        MappingOp::Delete {
            domain: domain.to_string(),
            id: m.id.clone(),
        },
    );
}

async fn create(cx: &Cx, domain: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    let d = cx
        .stack
        .domain
        .as_ref()
        .ok_or_else(|| error::Error::Conflict("the stack declares no [domain]".into()))?;
    let sent = api_write(|| async {
        cx.aws
            .apigw
            .create_api_mapping()
            .domain_name(domain)
            .api_id(&api_id)
            .stage(&cx.stack.stage)
            .api_mapping_key(&d.base_path)
            .send()
            .await
            .map_err(|e| error::aws(format!("creating {}", label(domain, &d.base_path)), e))
    })
    .await;
    match sent {
        Ok(_) => Ok(()),
        // The key is taken: by this run's own lost answer, or by someone since the read.
        Err(e) if e.code() == Some("ConflictException") => {
            let mappings = list(&cx.aws, domain).await?.unwrap_or_default();
            match mappings.iter().find(|m| m.key == d.base_path) {
                Some(m) if m.api_id == api_id && m.stage == cx.stack.stage => Ok(()),
                Some(m) => update(cx, domain, &m.id).await,
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

async fn update(cx: &Cx, domain: &str, id: &str) -> Result<()> {
    let api_id = cx.api_id()?;
    let key = cx
        .stack
        .domain
        .as_ref()
        .map(|d| d.base_path.clone())
        .unwrap_or_default();
    api_write(|| async {
        cx.aws
            .apigw
            .update_api_mapping()
            .domain_name(domain)
            .api_mapping_id(id)
            .api_id(&api_id)
            .stage(&cx.stack.stage)
            .api_mapping_key(&key)
            .send()
            .await
            .map_err(|e| {
                super::vanished_or(
                    label(domain, &key),
                    format!("updating {}", label(domain, &key)),
                    e,
                )
            })
    })
    .await?;
    Ok(())
}

async fn delete(cx: &Cx, domain: &str, id: &str) -> Result<()> {
    api_delete(&format!("api mapping {id} of {domain}"), || async {
        cx.aws
            .apigw
            .delete_api_mapping()
            .domain_name(domain)
            .api_mapping_id(id)
            .send()
            .await
            .map(|_| ())
    })
    .await
}

impl Op for MappingOp {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                MappingOp::Create { domain } => create(cx, domain).await,
                MappingOp::Update { domain, id } => update(cx, domain, id).await,
                MappingOp::Delete { domain, id } => delete(cx, domain, id).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, api: &str, stage: &str, key: &str) -> Mapping {
        Mapping {
            id: id.into(),
            api_id: api.into(),
            stage: stage.into(),
            key: key.into(),
        }
    }

    #[test]
    fn no_mapping_is_a_create_and_the_right_one_is_in_sync() {
        let (c, extra) = diff(&[], Some("a1"), "api", "");
        assert!(c.is_some_and(|c| c.existing.is_none() && c.why.is_none()));
        assert!(extra.is_empty());
        let (c, extra) = diff(&[m("x", "a1", "api", "")], Some("a1"), "api", "");
        assert!(c.is_none() && extra.is_empty());
    }

    #[test]
    fn drift_of_stage_and_key_is_an_update_of_those_fields() {
        let live = [m("x", "a1", "old", "v1")];
        let (c, _) = diff(&live, Some("a1"), "api", "");
        let c = c.unwrap();
        assert_eq!(c.existing.unwrap().id, "x");
        let names: Vec<&str> = c.fields.iter().map(|f| f.0).collect();
        assert_eq!(names, ["stage", "key"]);
    }

    #[test]
    fn another_apis_mapping_on_the_key_is_repointed_and_extra_ones_of_ours_go() {
        let live = [
            m("x", "other", "prod", ""),
            m("y", "a1", "api", "v2"),
            m("z", "a1", "api", ""),
        ];
        let (c, extra) = diff(&live, Some("a1"), "api", "");
        assert!(c.is_none(), "z is the stack's mapping on the key");
        assert_eq!(
            extra.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            ["y"]
        );
        let (c, extra) = diff(&[m("x", "other", "prod", "")], Some("a1"), "api", "");
        let c = c.unwrap();
        assert!(c.why.is_some() && c.existing.unwrap().id == "x" && c.fields.len() == 2);
        assert!(extra.is_empty());
        // Another API on another key is left alone.
        let (c, extra) = diff(&[m("x", "other", "prod", "v9")], Some("a1"), "api", "");
        assert!(c.is_some_and(|c| c.existing.is_none()) && extra.is_empty());
    }
}
