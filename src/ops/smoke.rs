//! `wsconn smoke`: the pattern's Testing section, automated, as a checklist.
//!
//! 1. connect with `?smoke=<nonce>` and a header `X-Wsconn-Smoke: <nonce>`, plus the
//!    `--query`/`--header` an authorizer needs (retried: right after a first deploy API
//!    Gateway may not yet assume the integration role);
//! 2. echo: a JSON payload comes back from `$default` with the same body (only when
//!    `$default` is the built-in echo; otherwise skipped, with the reason);
//! 3. send: `--send TEXT` and a frame containing `--expect` (skipped without them);
//! 4. the item: the connection's item holds the nonce, the header, a TTL in epoch
//!    seconds and the schema's other attributes (and the authorizer's principalId);
//! 5. @connections: GET shows the connection and a POST reaches the client;
//! 6. disconnect, and the item disappears.

use super::Target;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One checklist line.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: &'static str,
    /// "passed", "failed" or "skipped".
    pub status: &'static str,
    pub seconds: f64,
    pub detail: String,
}

pub const STEPS: [&str; 6] = [
    "connect",
    "echo",
    "send",
    "item",
    "@connections",
    "disconnect",
];

/// What the command line adds: handshake parameters and the application's own step.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// (text to send, text a frame must contain).
    pub send: Option<(String, String)>,
}

/// Runs the checklist; `report` is called as each step ends.
pub async fn run(
    t: &Target,
    opts: &Options,
    timeout: Duration,
    report: &dyn Fn(&StepResult),
) -> Vec<StepResult> {
    let nonce = crate::gateway::new_id()
        .trim_end_matches('=')
        .replace(['+', '/'], "x");
    let mut results = Vec::new();
    let mut push = |r: StepResult| {
        report(&r);
        results.push(r);
    };
    let mut failed = false;
    let mut socket: Option<Socket> = None;
    let mut connection_id = String::new();
    for step in STEPS {
        if failed {
            push(StepResult {
                step,
                status: "skipped",
                seconds: 0.0,
                detail: "an earlier step failed".into(),
            });
            continue;
        }
        let skip = match step {
            "echo" if !t.builtin_echo => Some(
                "$default runs your handler, not the built-in echo; the connection is found in the table by the smoke nonce".to_string(),
            ),
            "send" if opts.send.is_none() => Some("no --send/--expect given".to_string()),
            _ => None,
        };
        if let Some(detail) = skip {
            push(StepResult {
                step,
                status: "skipped",
                seconds: 0.0,
                detail,
            });
            continue;
        }
        let start = Instant::now();
        if matches!(step, "item" | "@connections") && connection_id.is_empty() {
            match find_by_nonce(t, &nonce).await {
                Ok(id) => connection_id = id,
                Err(e) => {
                    failed = true;
                    push(StepResult {
                        step,
                        status: "failed",
                        seconds: start.elapsed().as_secs_f64(),
                        detail: e,
                    });
                    continue;
                }
            }
        }
        let outcome = match step {
            "connect" => connect(t, opts, &nonce, timeout).await.map(|(s, d)| {
                socket = Some(s);
                d
            }),
            "send" => match (socket.as_mut(), &opts.send) {
                (Some(s), Some((text, expect))) => send(s, text, expect).await,
                _ => Err("no connection".into()),
            },
            "echo" => match socket.as_mut() {
                Some(s) => echo(s, &nonce).await.map(|id| {
                    let d = format!("$default echoed the payload; connectionId {id}");
                    connection_id = id;
                    d
                }),
                None => Err("no connection".into()),
            },
            "item" => item(t, &connection_id, &nonce).await,
            "@connections" => match socket.as_mut() {
                Some(s) => management(t, s, &connection_id, &nonce).await,
                None => Err("no connection".into()),
            },
            _ => match socket.take() {
                Some(s) => disconnect(t, s, &connection_id, timeout).await,
                None => Err("no connection".into()),
            },
        };
        failed = outcome.is_err();
        let (status, detail) = match outcome {
            Ok(d) => ("passed", d),
            Err(d) => ("failed", d),
        };
        push(StepResult {
            step,
            status,
            seconds: start.elapsed().as_secs_f64(),
            detail,
        });
    }
    if let Some(mut s) = socket {
        let _ = s.close(None).await;
    }
    results
}

/// The handshake URL: the nonce, then `--query` parameters, percent-encoded.
pub fn handshake_url(base: &str, nonce: &str, query: &[(String, String)]) -> String {
    let mut url = format!("{base}?smoke={nonce}");
    for (k, v) in query {
        url.push_str(&format!(
            "&{}={}",
            urlencoding::encode(k),
            urlencoding::encode(v)
        ));
    }
    url
}

async fn connect(
    t: &Target,
    opts: &Options,
    nonce: &str,
    timeout: Duration,
) -> Result<(Socket, String), String> {
    let url = handshake_url(&t.websocket_url, nonce, &opts.query);
    let deadline = Instant::now() + timeout;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("{url}: {e}"))?;
        req.headers_mut().insert(
            "X-Wsconn-Smoke",
            HeaderValue::from_str(nonce).map_err(|e| e.to_string())?,
        );
        for (k, v) in &opts.headers {
            let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("--header {k}: {e}"))?;
            req.headers_mut().insert(
                name,
                HeaderValue::from_str(v).map_err(|e| format!("--header {k}: {e}"))?,
            );
        }
        match tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(req),
        )
        .await
        {
            Ok(Ok((s, resp))) => {
                return Ok((
                    s,
                    format!(
                        "connected to {url} (HTTP {}, attempt {attempts})",
                        resp.status().as_u16()
                    ),
                ));
            }
            // An authorizer's answer (401, 403) will not change by asking again.
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp)))
                if matches!(resp.status().as_u16(), 401 | 403) =>
            {
                return Err(format!(
                    "{url}: the handshake was refused with HTTP {} (the $connect authorizer's answer; pass its token with --query or --header)",
                    resp.status().as_u16()
                ));
            }
            Ok(Err(e)) if Instant::now() < deadline => {
                let _ = e;
            }
            Ok(Err(e)) => return Err(format!("{url}: {e} (after {attempts} attempts)")),
            Err(_) if Instant::now() < deadline => {}
            Err(_) => {
                return Err(format!(
                    "{url}: no handshake answer (after {attempts} attempts)"
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The next text frame, within `limit`.
async fn next_text(s: &mut Socket, limit: Duration) -> Result<String, String> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.next()).await {
            Err(_) => return Err(format!("nothing arrived within {} s", limit.as_secs())),
            Ok(None) => return Err("the server closed the connection".into()),
            Ok(Some(Err(e))) => return Err(format!("the connection failed: {e}")),
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t.to_string()),
            Ok(Some(Ok(Message::Binary(b)))) => {
                return Ok(String::from_utf8_lossy(&b).into_owned());
            }
            Ok(Some(Ok(Message::Close(c)))) => {
                let why = match c {
                    Some(f) if f.reason.is_empty() => format!(" (code {})", u16::from(f.code)),
                    Some(f) => format!(" (code {}: {})", u16::from(f.code), f.reason),
                    None => String::new(),
                };
                return Err(format!("the server closed the connection{why}"));
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn echo(s: &mut Socket, nonce: &str) -> Result<String, String> {
    let payload = json!({"smoke": nonce, "hello": "wsconn"}).to_string();
    s.send(Message::Text(payload.clone().into()))
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let text = next_text(s, Duration::from_secs(15)).await?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|_| format!("the answer is not the echoed event: {}", clip(&text)))?;
    let route = v
        .pointer("/requestContext/routeKey")
        .and_then(Value::as_str);
    if route != Some("$default") {
        return Err(format!(
            "requestContext.routeKey is {route:?}, not \"$default\": {}",
            clip(&text)
        ));
    }
    if v.get("body").and_then(Value::as_str) != Some(payload.as_str()) {
        return Err(format!(
            "the echoed body differs from the payload: {}",
            clip(&text)
        ));
    }
    v.pointer("/requestContext/connectionId")
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| format!("no requestContext.connectionId: {}", clip(&text)))
}

/// Sends `text` and waits for a frame that contains `expect` (other frames are skipped).
async fn send(s: &mut Socket, text: &str, expect: &str) -> Result<String, String> {
    s.send(Message::Text(text.to_string().into()))
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_text(s, left).await {
            Ok(frame) if frame.contains(expect) => {
                return Ok(format!("sent {}; received {}", clip(text), clip(&frame)));
            }
            Ok(frame) => seen.push(clip(&frame)),
            Err(e) => {
                return Err(format!(
                    "no frame containing {expect:?} ({e}); received {}",
                    if seen.is_empty() {
                        "nothing".to_string()
                    } else {
                        seen.join(", ")
                    }
                ));
            }
        }
    }
}

/// The connection whose item holds the smoke nonce (when no echo told its id).
async fn find_by_nonce(t: &Target, nonce: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut start = None;
        loop {
            let page = t
                .ddb
                .scan()
                .table_name(&t.table)
                .consistent_read(true)
                .filter_expression("#q.#s = :n")
                .expression_attribute_names("#q", "querystring")
                .expression_attribute_names("#s", "smoke")
                .expression_attribute_values(":n", AttributeValue::S(nonce.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| crate::error::aws(format!("scanning {}", t.table), e).to_string())?;
            if let Some(id) = page
                .items()
                .iter()
                .find_map(|i| i.get(t.hash_key).and_then(|v| v.as_s().ok()).cloned())
            {
                return Ok(id);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no item in {} holds querystring.smoke = {nonce:?} ($connect did not write it)",
                t.table
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

fn now_s() -> i64 {
    crate::gateway::now_ms() / 1000
}

/// Checks the item against the README's schema; returns what was seen.
pub fn check_item(
    item: &HashMap<String, AttributeValue>,
    nonce: &str,
    ttl_seconds: u64,
    now: i64,
) -> Result<String, String> {
    let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let map = |name: &str| item.get(name).and_then(|v| v.as_m().ok()).cloned();
    let query = map("querystring").ok_or("no querystring map (M)")?;
    match query.get("smoke").and_then(|v| v.as_s().ok()) {
        Some(v) if v == nonce => {}
        other => return Err(format!("querystring.smoke is {other:?}, not {nonce:?}")),
    }
    let headers = map("headers").ok_or("no headers map (M)")?;
    let header = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("X-Wsconn-Smoke"))
        .and_then(|(_, v)| v.as_s().ok());
    if header.map(String::as_str) != Some(nonce) {
        return Err(format!(
            "headers X-Wsconn-Smoke is {header:?}, not {nonce:?}"
        ));
    }
    let ttl: i64 = item
        .get("ttl")
        .and_then(|v| v.as_n().ok())
        .ok_or("no ttl number (N)")?
        .parse()
        .map_err(|_| "ttl is not an integer (epoch seconds)".to_string())?;
    let latest = now + ttl_seconds as i64 + 60;
    if ttl < now - 5 || ttl > latest {
        return Err(format!(
            "ttl {ttl} is not epoch seconds within [now, now + {ttl_seconds} + 60] = [{now}, {latest}]"
        ));
    }
    if item
        .get("connectedAt")
        .and_then(|v| v.as_n().ok())
        .is_none()
    {
        return Err("no connectedAt number (N)".into());
    }
    for name in ["sourceIp", "userAgent", "stage", "domainName", "apiId"] {
        if s(name).is_none() {
            return Err(format!("no {name} string (S)"));
        }
    }
    let principal = s("principalId")
        .map(|p| format!("; principalId {p}"))
        .unwrap_or_default();
    Ok(format!(
        "querystring.smoke and the header hold the nonce; ttl {ttl} (in {} s); connectedAt, sourceIp {}, userAgent, stage {}, domainName, apiId{principal}",
        ttl - now,
        s("sourceIp").unwrap_or_default(),
        s("stage").unwrap_or_default()
    ))
}

async fn get_item(t: &Target, id: &str) -> Result<Option<HashMap<String, AttributeValue>>, String> {
    t.ddb
        .get_item()
        .table_name(&t.table)
        .key(t.hash_key, AttributeValue::S(id.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map(|o| o.item)
        .map_err(|e| {
            format!(
                "GetItem on {}: {}",
                t.table,
                crate::error::aws("reading the item", e)
            )
        })
}

async fn item(t: &Target, id: &str, nonce: &str) -> Result<String, String> {
    let item = get_item(t, id)
        .await?
        .ok_or_else(|| format!("no item with {} = {id:?} in {}", t.hash_key, t.table))?;
    check_item(&item, nonce, t.connection_ttl, now_s())
}

async fn management(t: &Target, s: &mut Socket, id: &str, nonce: &str) -> Result<String, String> {
    let got = t
        .mgmt
        .get_connection()
        .connection_id(id)
        .send()
        .await
        .map_err(|e| format!("GET @connections/{id}: {}", crate::error::aws("", e)))?;
    let since = got
        .connected_at()
        .map(|d| d.to_string())
        .ok_or("GET @connections has no connectedAt")?;
    let text = json!({"smoke": nonce, "via": "@connections"}).to_string();
    t.mgmt
        .post_to_connection()
        .connection_id(id)
        .data(aws_smithy_types::Blob::new(text.clone()))
        .send()
        .await
        .map_err(|e| format!("POST @connections/{id}: {}", crate::error::aws("", e)))?;
    // Other frames (an application's own messages) may come first.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = next_text(s, left)
            .await
            .map_err(|e| format!("the posted message did not arrive: {e}"))?;
        if received == text {
            break;
        }
    }
    Ok(format!(
        "GET shows it (connectedAt {since}); a POST reached the client"
    ))
}

async fn disconnect(
    t: &Target,
    mut s: Socket,
    id: &str,
    timeout: Duration,
) -> Result<String, String> {
    let start = Instant::now();
    s.close(None).await.map_err(|e| format!("closing: {e}"))?;
    // Drain until the server's close frame (or the end).
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = s.next().await {}
    })
    .await;
    loop {
        if get_item(t, id).await?.is_none() {
            return Ok(format!(
                "closed; the item was gone after {:.1} s",
                start.elapsed().as_secs_f64()
            ));
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "the item of {id} is still in {} {} s after the disconnect ($disconnect did not delete it)",
                t.table,
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// wss:// goes through rustls with the webpki roots: the TLS client is built (one
    /// crypto provider, no OpenSSL) and a failed handshake is an error, not a panic.
    #[tokio::test]
    async fn wss_sets_up_tls_and_fails_cleanly() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            if let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        });
        let r = tokio_tungstenite::connect_async(format!("wss://localhost:{port}/api")).await;
        // The handshake was tried and met a closed connection: an I/O (or TLS) error.
        // Without TLS compiled in, connect_async refuses the URL before connecting
        // (Error::Url(TlsFeatureNotEnabled)), which this tells apart.
        let e = r.expect_err("no TLS server there");
        assert!(
            matches!(
                e,
                tokio_tungstenite::tungstenite::Error::Io(_)
                    | tokio_tungstenite::tungstenite::Error::Tls(_)
            ),
            "{e:?}"
        );
    }

    fn item(nonce: &str, ttl: i64) -> HashMap<String, AttributeValue> {
        let s = |v: &str| AttributeValue::S(v.into());
        HashMap::from([
            ("connectionid".into(), s("id")),
            ("ttl".into(), AttributeValue::N(ttl.to_string())),
            ("connectedAt".into(), AttributeValue::N("1".into())),
            ("sourceIp".into(), s("127.0.0.1")),
            ("userAgent".into(), s("")),
            ("stage".into(), s("api")),
            ("domainName".into(), s("d")),
            ("apiId".into(), s("a")),
            (
                "headers".into(),
                AttributeValue::M(HashMap::from([("x-wsconn-smoke".into(), s(nonce))])),
            ),
            (
                "querystring".into(),
                AttributeValue::M(HashMap::from([("smoke".into(), s(nonce))])),
            ),
        ])
    }

    #[test]
    fn handshake_urls_carry_the_nonce_and_encoded_parameters() {
        assert_eq!(handshake_url("ws://h/api", "n", &[]), "ws://h/api?smoke=n");
        let q = vec![
            ("token".to_string(), "a b&c".to_string()),
            ("user".to_string(), "alice".to_string()),
        ];
        assert_eq!(
            handshake_url("ws://h/api", "n", &q),
            "ws://h/api?smoke=n&token=a%20b%26c&user=alice"
        );
    }

    #[test]
    fn the_item_check_accepts_the_schema_and_names_what_is_wrong() {
        let now = 1_700_000_000;
        assert!(check_item(&item("n", now + 86_400), "n", 86_400, now).is_ok());
        let e = check_item(&item("other", now + 10), "n", 86_400, now).unwrap_err();
        assert!(e.contains("querystring.smoke"), "{e}");
        // Milliseconds are far beyond now + TTL.
        let e = check_item(&item("n", now * 1000), "n", 86_400, now).unwrap_err();
        assert!(e.contains("epoch seconds"), "{e}");
        let mut missing = item("n", now + 10);
        missing.remove("apiId");
        assert!(
            check_item(&missing, "n", 86_400, now)
                .unwrap_err()
                .contains("apiId")
        );
        let mut untyped = item("n", now + 10);
        untyped.insert("ttl".into(), AttributeValue::S("1".into()));
        assert!(
            check_item(&untyped, "n", 86_400, now)
                .unwrap_err()
                .contains("ttl")
        );
    }
}
