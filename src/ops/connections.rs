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

/// The targets of `send`/`disconnect`: the ids given, or every tracked one.
pub async fn targets(t: &Target, ids: &[String], all: bool) -> Result<Vec<String>> {
    match (ids.is_empty(), all) {
        (false, false) => Ok(ids.to_vec()),
        (true, true) => Ok(scan(t).await?.into_iter().map(|c| c.id).collect()),
        (false, true) => Err(Error::Config(
            "give connection ids or --all, not both".into(),
        )),
        (true, false) => Err(Error::Config(
            "which connections? give their ids, or --all (see `wsconn connections list`)".into(),
        )),
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
        assert!(Connection::from_item(&HashMap::new(), "connectionid").is_none());
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
