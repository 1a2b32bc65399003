//! `wsconn connections`: the connections the table tracks, and messages to them.
//!
//! A `GoneException` from @connections means the item is stale (the client is gone but
//! `$disconnect` never ran — AWS delivers it on a best-effort basis): the item is
//! deleted and reported. This is the cleanup the pattern's documentation recommends.

use super::Target;
use crate::error::{self, Error, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::collections::HashMap;

/// How many @connections calls run at once.
pub const CONCURRENCY: usize = 64;

/// One tracked connection, from its item.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Connection {
    pub id: String,
    /// Epoch milliseconds (`connectedAt`).
    pub connected_at: Option<i64>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Epoch seconds (`ttl`).
    pub expires_at: Option<i64>,
    /// The `$connect` authorizer's `principalId`, when the item holds one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// From @connections GET, with `--check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<bool>,
}

impl Connection {
    pub fn from_item(item: &HashMap<String, AttributeValue>, hash_key: &str) -> Option<Connection> {
        let n = |k: &str| item.get(k)?.as_n().ok()?.parse::<i64>().ok();
        let s = |k: &str| item.get(k)?.as_s().ok().cloned();
        Some(Connection {
            id: s(hash_key)?,
            connected_at: n("connectedAt"),
            source_ip: s("sourceIp"),
            user_agent: s("userAgent"),
            expires_at: n("ttl"),
            principal_id: s("principalId"),
            live: None,
        })
    }
}

/// Every item, by a paginated Scan (consistent, so a just-connected client shows).
pub async fn scan(t: &Target) -> Result<Vec<Connection>> {
    let mut out = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = t
            .ddb
            .scan()
            .table_name(&t.table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| error::aws(format!("scanning table {}", t.table), e))?;
        out.extend(
            page.items()
                .iter()
                .filter_map(|i| Connection::from_item(i, t.hash_key)),
        );
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    out.sort_by(|a, b| a.connected_at.cmp(&b.connected_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// What a call to @connections said about one connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok,
    /// GoneException: the client is gone; `cleaned` when its stale item was deleted.
    Gone {
        cleaned: bool,
    },
    Failed(String),
}

fn is_gone<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    error::code_of(e) == Some("GoneException")
}

/// Deletes the item of a connection @connections says is gone.
async fn clean(t: &Target, id: &str) -> bool {
    t.ddb
        .delete_item()
        .table_name(&t.table)
        .key(t.hash_key, AttributeValue::S(id.to_string()))
        .send()
        .await
        .is_ok()
}

/// @connections GET for each, with bounded concurrency: is it live?
pub async fn check(t: &Target, conns: &mut [Connection]) {
    let ids: Vec<String> = conns.iter().map(|c| c.id.clone()).collect();
    let live: HashMap<String, bool> = stream::iter(ids)
        .map(|id| async move {
            let r = t.mgmt.get_connection().connection_id(&id).send().await;
            let live = r.is_ok();
            (id, live)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for c in conns {
        c.live = live.get(&c.id).copied();
    }
}

/// Runs one @connections call per id, [`CONCURRENCY`] at a time; a GoneException means
/// the item is stale, so it is deleted.
async fn each<E, F, Fut>(t: &Target, ids: Vec<String>, call: F) -> Vec<(String, Outcome)>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<
            Output = (
                String,
                std::result::Result<(), aws_sdk_apigatewaymanagement::error::SdkError<E>>,
            ),
        >,
{
    stream::iter(ids)
        .map(|id| {
            let call = call(id);
            async move {
                let (id, r) = call.await;
                let outcome = match r {
                    Ok(()) => Outcome::Ok,
                    Err(e) if is_gone(&e) => Outcome::Gone {
                        cleaned: clean(t, &id).await,
                    },
                    Err(e) => Outcome::Failed(
                        error::aws("", e)
                            .to_string()
                            .trim_start_matches(": ")
                            .to_string(),
                    ),
                };
                (id, outcome)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// POST `data` to each id.
pub async fn send(t: &Target, ids: Vec<String>, data: &[u8]) -> Vec<(String, Outcome)> {
    each(t, ids, |id| async move {
        let r = t
            .mgmt
            .post_to_connection()
            .connection_id(&id)
            .data(aws_smithy_types::Blob::new(data.to_vec()))
            .send()
            .await
            .map(|_| ());
        (id, r)
    })
    .await
}

/// DELETE each id (the server disconnects it and `$disconnect` removes its item).
pub async fn disconnect(t: &Target, ids: Vec<String>) -> Vec<(String, Outcome)> {
    each(t, ids, |id| async move {
        let r = t
            .mgmt
            .delete_connection()
            .connection_id(&id)
            .send()
            .await
            .map(|_| ());
        (id, r)
    })
    .await
}

/// Which connections `send`/`disconnect` address: ids, every tracked one, or those of
/// one principal (the `$connect` authorizer's `principalId`).
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Ids(Vec<String>),
    All,
    Principal(String),
}

impl Selection {
    /// From the flags; exactly one way of choosing.
    pub fn from_flags(ids: &[String], all: bool, principal: Option<&str>) -> Result<Selection> {
        match (ids.is_empty(), all, principal) {
            (false, false, None) => Ok(Selection::Ids(ids.to_vec())),
            (true, true, None) => Ok(Selection::All),
            (true, false, Some(p)) => Ok(Selection::Principal(p.to_string())),
            (true, false, None) => Err(Error::Config(
                "which connections? give their ids, --all, or --principal ID (see `wsconn connections list`)".into(),
            )),
            _ => Err(Error::Config(
                "choose connections one way: ids, --all or --principal, not several".into(),
            )),
        }
    }

    /// The connection ids chosen from the tracked ones.
    pub fn pick(&self, tracked: &[Connection]) -> Vec<String> {
        match self {
            Selection::Ids(ids) => ids.clone(),
            Selection::All => tracked.iter().map(|c| c.id.clone()).collect(),
            Selection::Principal(p) => tracked
                .iter()
                .filter(|c| c.principal_id.as_deref() == Some(p.as_str()))
                .map(|c| c.id.clone())
                .collect(),
        }
    }
}

/// The targets of `send`/`disconnect` (a Scan only when the selection needs the items).
pub async fn targets(t: &Target, sel: &Selection) -> Result<Vec<String>> {
    match sel {
        Selection::Ids(ids) => Ok(ids.clone()),
        other => Ok(other.pick(&scan(t).await?)),
    }
}

/// `1h02m`, `3m05s`, `42s`.
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        s if s >= 86_400 => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_become_connections() {
        let item = HashMap::from([
            ("connectionid".to_string(), AttributeValue::S("abc=".into())),
            (
                "connectedAt".to_string(),
                AttributeValue::N("1652722217711".into()),
            ),
            ("ttl".to_string(), AttributeValue::N("1652808617".into())),
            (
                "sourceIp".to_string(),
                AttributeValue::S("203.0.113.7".into()),
            ),
        ]);
        let c = Connection::from_item(&item, "connectionid").unwrap();
        assert_eq!(c.id, "abc=");
        assert_eq!(c.connected_at, Some(1_652_722_217_711));
        assert_eq!(c.expires_at, Some(1_652_808_617));
        assert_eq!(c.user_agent, None);
        assert_eq!(c.principal_id, None);
        let mut with = item.clone();
        with.insert("principalId".into(), AttributeValue::S("alice".into()));
        assert_eq!(
            Connection::from_item(&with, "connectionid")
                .unwrap()
                .principal_id
                .as_deref(),
            Some("alice")
        );
        assert!(Connection::from_item(&HashMap::new(), "connectionid").is_none());
    }

    #[test]
    fn selections_pick_ids_all_or_one_principals_connections() {
        let c = |id: &str, p: Option<&str>| Connection {
            id: id.into(),
            connected_at: None,
            source_ip: None,
            user_agent: None,
            expires_at: None,
            principal_id: p.map(String::from),
            live: None,
        };
        let tracked = [
            c("a", Some("alice")),
            c("b", Some("bob")),
            c("c", Some("alice")),
            c("d", None),
        ];
        let p = Selection::from_flags(&[], false, Some("alice")).unwrap();
        assert_eq!(p.pick(&tracked), ["a", "c"]);
        assert_eq!(
            Selection::from_flags(&[], true, None)
                .unwrap()
                .pick(&tracked)
                .len(),
            4
        );
        let ids = Selection::from_flags(&["x".into()], false, None).unwrap();
        assert_eq!(ids.pick(&tracked), ["x"]);
        assert!(Selection::from_flags(&[], true, Some("a")).is_err());
        assert!(Selection::from_flags(&["x".into()], true, None).is_err());
        let e = Selection::from_flags(&[], false, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--principal"), "{e}");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(42_000), "42s");
        assert_eq!(age(185_000), "3m05s");
        assert_eq!(age(3_720_000), "1h02m");
        assert_eq!(age(90_000_000), "1d01h");
        assert_eq!(age(-5), "0s");
    }
}
