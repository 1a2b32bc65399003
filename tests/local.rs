//! `wsconn local` end to end: the real binary, real clients (wscat, tokio-tungstenite,
//! the AWS SDK's DynamoDB and API Gateway Management clients), nothing mocked. Waits
//! are deadlines on observable state, never sleeps; no test asserts a duration.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::local::*;
use common::{Emulator, assets_copy};
use futures::SinkExt as _;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

/// The README's Testing section of the pattern, with the real wscat.
#[tokio::test(flavor = "multi_thread")]
async fn pattern_testing_section_end_to_end_with_wscat() {
    let local = Local::start(&[]);
    let keys: Vec<&String> = local.ready.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "connections_url",
            "dynamodb_endpoint",
            "stage",
            "table_name",
            "websocket_url"
        ]
    );
    let url = local.ws_url();
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert_ne!(port, "0", "the real port is printed");
    assert_eq!(url, format!("ws://127.0.0.1:{port}/api"));
    assert_eq!(local.get("stage"), "api");
    assert!(local.table().ends_with("-connections"));

    let mut wscat = Wscat::connect(&format!("{url}?foo=bar"));
    // wscat drops what is typed before it is connected: wait for $connect.
    local.wait_log(&[" CONNECT $connect 200 "]);
    let payload = r#"{"first_name" : "Jane", "last_name" : "Doe"}"#;
    wscat.type_line(payload);
    let ev = wscat.read_json();
    let rc = &ev["requestContext"];
    assert_eq!(rc["routeKey"], "$default");
    assert_eq!(ev["body"], payload);
    assert_eq!(ev["isBase64Encoded"], false);
    assert_eq!(rc["eventType"], "MESSAGE");
    assert_eq!(rc["messageDirection"], "IN");
    assert_eq!(rc["stage"], "api");
    assert_eq!(rc["identity"], serde_json::json!({"sourceIp": "127.0.0.1"}));
    let ctx_keys: Vec<&String> = rc.as_object().unwrap().keys().collect();
    let mut expected = vec![
        "apiId",
        "connectedAt",
        "connectionId",
        "domainName",
        "eventType",
        "extendedRequestId",
        "identity",
        "messageDirection",
        "messageId",
        "requestId",
        "requestTime",
        "requestTimeEpoch",
        "routeKey",
        "stage",
    ];
    expected.sort();
    assert_eq!(ctx_keys, expected);
    let id = rc["connectionId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 16);
    assert!(id.ends_with('='));
    let connected_at = rc["connectedAt"].as_i64().unwrap();

    // The item, read through the DynamoDB endpoint with the SDK.
    let ddb = local.ddb().await;
    let item = get_item(&ddb, &local.table(), &id).await.expect("the item");
    assert_eq!(s(&item, "connectionid"), id);
    assert_eq!(
        m(&item, "querystring"),
        HashMap::from([("foo".to_string(), "bar".to_string())])
    );
    // Epoch seconds: $connect's requestTimeEpoch (= connectedAt) / 1000 + 86400.
    assert_eq!(n(&item, "ttl"), connected_at / 1000 + 86_400);
    assert_eq!(n(&item, "connectedAt"), connected_at);
    assert_eq!(s(&item, "sourceIp"), "127.0.0.1");
    assert_eq!(s(&item, "stage"), "api");
    let headers = m(&item, "headers");
    assert_eq!(headers["Host"], format!("127.0.0.1:{port}"));
    assert_eq!(headers["Sec-WebSocket-Version"], "13");
    assert_eq!(headers["X-Forwarded-For"], "127.0.0.1");
    assert!(!headers.contains_key("Connection") && !headers.contains_key("Upgrade"));

    wscat.quit();
    wait_gone(&ddb, &local.table(), &id).await;
    local.wait_log(&[&id, " DISCONNECT $disconnect 200 "]);
}

/// Quotes, backslashes, tabs, non-ASCII, `$` and `#` in headers and the query string
/// are stored exactly.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_handshakes_are_stored_exactly() {
    let local = Local::start(&[]);
    let headers: [(&str, &str); 6] = [
        ("x-quote", r#"say "hi" and 'bye'"#),
        ("x-backslash", r"C:\path\to\"),
        ("x-tab", "a\tb"),
        ("x-unicode", "héllo – 日本 🎉"),
        (
            "x-dollar$#",
            "$context.connectionId #set($x = 1) ${x} $!y ## #* *#",
        ),
        ("user-agent", r#"agent "007" \ ok"#),
    ];
    let query = concat!(
        "q=%22quoted%22&b=back%5Cslash&u=%C3%A9t%C3%A9%20%F0%9F%8E%89",
        "&%24d%23=%24context.stage%20%23if(&ctl=%01%1F%7F&json=%7D%7D%2C%22x%22%3A%7B&empty"
    );
    let mut req = format!("{}?{query}", local.ws_url())
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let ev = echo(&mut ws, "x").await;
    let id = ev["requestContext"]["connectionId"].as_str().unwrap();
    assert_eq!(
        ev["requestContext"]["identity"]["userAgent"],
        r#"agent "007" \ ok"#
    );
    let item = get_item(&local.ddb().await, &local.table(), id)
        .await
        .unwrap();
    // Named as the client spelled them (this client sends lowercase names), as API
    // Gateway passes them on.
    let h = m(&item, "headers");
    assert_eq!(h["x-quote"], r#"say "hi" and 'bye'"#);
    assert_eq!(h["x-backslash"], r"C:\path\to\");
    assert_eq!(h["x-tab"], "a\tb");
    assert_eq!(h["x-unicode"], "héllo – 日本 🎉");
    assert_eq!(
        h["x-dollar$#"],
        "$context.connectionId #set($x = 1) ${x} $!y ## #* *#"
    );
    assert_eq!(h["user-agent"], r#"agent "007" \ ok"#);
    assert_eq!(s(&item, "userAgent"), r#"agent "007" \ ok"#);
    let q = m(&item, "querystring");
    assert_eq!(
        q,
        HashMap::from(
            [
                ("q", "\"quoted\""),
                ("b", r"back\slash"),
                ("u", "été 🎉"),
                ("$d#", "$context.stage #if("),
                ("ctl", "\u{1}\u{1f}\u{7f}"),
                ("json", r#"}},"x":{"#),
                ("empty", ""),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        )
    );
    assert_eq!(s(&item, "connectionid"), id);
}

/// A client cannot reach another connection's item through its handshake.
#[tokio::test(flavor = "multi_thread")]
async fn injection_cannot_overwrite_another_connection() {
    let local = Local::start(&[]);
    let ddb = local.ddb().await;
    let (_a, victim, _) = connect_with_id(&local.ws_url()).await;
    let before = get_item(&ddb, &local.table(), &victim).await.unwrap();

    let inject = format!(
        r#"x"}}}}}}, "connectionid": {{"S": "{victim}"}}, "ttl": {{"N": "1"}}, "z": {{"M": {{"a": {{"S": "y"#
    );
    let mut req = format!(
        "{}?connectionid={}&x=%22%7D%7D%2C%22connectionid%22%3A%7B%22S%22%3A%22{}%22%7D",
        local.ws_url(),
        urlencoding::encode(&victim),
        urlencoding::encode(&victim)
    )
    .into_client_request()
    .unwrap();
    req.headers_mut()
        .insert("x-inject", HeaderValue::from_str(&inject).unwrap());
    req.headers_mut()
        .insert("connectionid", HeaderValue::from_str(&victim).unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let ev = echo(&mut ws, "x").await;
    let attacker = ev["requestContext"]["connectionId"].as_str().unwrap();
    assert_ne!(attacker, victim);

    let after = get_item(&ddb, &local.table(), &victim).await.unwrap();
    assert_eq!(before, after, "the victim's item is untouched");
    let mine = get_item(&ddb, &local.table(), attacker).await.unwrap();
    assert_eq!(s(&mine, "connectionid"), attacker);
    assert_eq!(m(&mine, "headers")["x-inject"], inject);
    assert_eq!(m(&mine, "headers")["connectionid"], victim);
    assert_eq!(m(&mine, "querystring")["connectionid"], victim);
    assert!(n(&mine, "ttl") > 1);
    assert!(!mine.contains_key("z"));
    assert_eq!(count(&ddb, &local.table()).await, 2);
}

/// POST, GET and DELETE on @connections, and 410 for unknown and closed ids, through
/// the AWS SDK's apigatewaymanagementapi client (it signs; wsconn does not check).
#[tokio::test(flavor = "multi_thread")]
async fn connections_api_through_the_aws_sdk() {
    let local = Local::start(&[]);
    let api = local.management().await;
    let mut req = local.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("user-agent", HeaderValue::from_static("tests/1.0"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let ev = echo(&mut ws, "hi").await;
    let id = ev["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string();

    api.post_to_connection()
        .connection_id(&id)
        .data(aws_smithy_types::Blob::new("from the backend: \"ünïcode\""))
        .send()
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut ws).await.unwrap(),
        "from the backend: \"ünïcode\""
    );

    let got = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.connected_at().unwrap().to_millis().unwrap(),
        ev["requestContext"]["connectedAt"].as_i64().unwrap()
    );
    let identity = got.identity().unwrap();
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("tests/1.0"));
    assert!(got.last_active_at().unwrap() >= got.connected_at().unwrap());

    api.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, Err(Some(1000)));
    wait_gone(&local.ddb().await, &local.table(), &id).await;
    local.wait_log(&[
        &id,
        "DISCONNECT $disconnect 200",
        "deleted through @connections",
    ]);

    // A closed id and one that never existed are both gone.
    for gone in [id.as_str(), "AAAAAAAAAAAAAAA="] {
        let e = api
            .post_to_connection()
            .connection_id(gone)
            .data(aws_smithy_types::Blob::new("x"))
            .send()
            .await
            .unwrap_err();
        assert!(
            e.as_service_error().is_some_and(|e| e.is_gone_exception()),
            "{e:?}"
        );
        let e = api
            .get_connection()
            .connection_id(gone)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.as_service_error().is_some_and(|e| e.is_gone_exception()),
            "{e:?}"
        );
        let e = api
            .delete_connection()
            .connection_id(gone)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.as_service_error().is_some_and(|e| e.is_gone_exception()),
            "{e:?}"
        );
    }
}

const TEST_HANDLER: &str = r#"
export const handler = async (event) => {
  if (event.body === 'throw') throw new Error('boom');
  if (event.body === 'sleep') await new Promise((r) => setTimeout(r, 60000));
  if (event.body === 'hang') {
    console.log('hanging');
    await new Promise((r) => setTimeout(r, 60000));
  }
  if (event.body === 'pid') return { statusCode: 200, body: String(process.pid) };
  return { statusCode: 200, body: JSON.stringify(event) };
};
"#;

fn assets_with_handler(handler: &str) -> tempfile::TempDir {
    let dir = assets_copy();
    std::fs::write(dir.path().join("lambda/index.mjs"), handler).unwrap();
    dir
}

fn assert_error_frame(frame: &str, id: &str) {
    let v: Value = serde_json::from_str(frame).unwrap();
    assert_eq!(v["message"], "Internal server error", "{frame}");
    assert_eq!(v["connectionId"], id, "{frame}");
    assert_eq!(v["requestId"].as_str().unwrap().len(), 16, "{frame}");
    assert_eq!(v.as_object().unwrap().len(), 3, "{frame}");
}

async fn worker_pid(ws: &mut Ws) -> i32 {
    ws.send(Message::Text("pid".into())).await.unwrap();
    next_text(ws).await.unwrap().parse().unwrap()
}

/// A handler that throws, one that runs past the timeout (the worker is killed and a
/// new one serves the next message), and a worker killed in the middle of a message.
#[tokio::test(flavor = "multi_thread")]
async fn handler_failures_get_api_gateways_error_frame_and_the_worker_recovers() {
    let assets = assets_with_handler(TEST_HANDLER);
    let dir = assets.path().to_str().unwrap();
    let local = Local::start(&["--assets-dir", dir, "--function-timeout-ms", "1500"]);
    let (mut ws, id, _) = connect_with_id(&local.ws_url()).await;

    ws.send(Message::Text("throw".into())).await.unwrap();
    assert_error_frame(&next_text(&mut ws).await.unwrap(), &id);
    local.wait_log(&[&id, "MESSAGE $default 502", "handler error: Error: boom"]);

    let first = worker_pid(&mut ws).await;
    ws.send(Message::Text("sleep".into())).await.unwrap();
    assert_error_frame(&next_text(&mut ws).await.unwrap(), &id);
    local.wait_log(&[
        &id,
        "MESSAGE $default 504",
        "handler timed out after 1500 ms",
    ]);
    let second = worker_pid(&mut ws).await;
    assert_ne!(first, second, "a timed-out worker is replaced");
    assert_eq!(
        echo(&mut ws, "after timeout").await["body"],
        "after timeout"
    );

    ws.send(Message::Text("hang".into())).await.unwrap();
    local.wait_log(&[&format!("-default pid {second}] hanging")]);
    unsafe {
        libc::kill(second, libc::SIGKILL);
    }
    assert_error_frame(&next_text(&mut ws).await.unwrap(), &id);
    assert_eq!(echo(&mut ws, "after kill").await["body"], "after kill");
    let third = worker_pid(&mut ws).await;
    assert_ne!(third, second);
    local.wait_log(&[&format!("worker (pid {second}) exited")]);
}

const BROKEN_TEMPLATE: &str = "#set($x = \n{\"TableName\": \"@@TABLE_NAME@@\"}\n";

async fn handshake_status(url: &str) -> Result<(), u16> {
    match tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
        .await
        .expect("an answer in time")
    {
        Ok(_) => Ok(()),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("handshake failed unexpectedly: {e}"),
    }
}

/// A template that fails to parse refuses connections with the reason in the log;
/// fixing the file makes the next connection work, without a restart.
#[tokio::test(flavor = "multi_thread")]
async fn broken_template_refuses_until_fixed_without_restart() {
    let assets = assets_copy();
    let file = assets.path().join("mapping-templates/connect.vtl");
    let good = std::fs::read_to_string(&file).unwrap();
    let local = Local::start(&["--assets-dir", assets.path().to_str().unwrap()]);
    let url = local.ws_url();
    assert_eq!(handshake_status(&url).await, Ok(()));

    std::fs::write(&file, BROKEN_TEMPLATE).unwrap();
    local.wait_log(&["reload: mapping-templates/connect.vtl changed; template error: mapping-templates/connect.vtl:"]);
    assert_eq!(handshake_status(&url).await, Err(500));
    let refused = local.wait_log(&[
        "CONNECT $connect 500",
        "refused: template error: mapping-templates/connect.vtl:",
    ]);
    assert!(refused.contains("refused"), "{refused}");

    std::fs::write(&file, &good).unwrap();
    local.wait_log(&["reload: mapping-templates/connect.vtl changed; now in effect"]);
    assert_eq!(handshake_status(&url).await, Ok(()));
}

/// Integration failures refuse the handshake: output that is not JSON, and a DynamoDB
/// error (the stack's condition stops a second item under the same key); the log shows
/// the rendered request and DynamoDB's error.
#[tokio::test(flavor = "multi_thread")]
async fn integration_failures_refuse_the_handshake_and_log_why() {
    let assets = assets_copy();
    let file = assets.path().join("mapping-templates/connect.vtl");
    let good = std::fs::read_to_string(&file).unwrap();
    // Every connection gets the same key: the second one fails the condition.
    let fixed = good.replace(
        "#set($connectionId = \"$!context.connectionId\")",
        "#set($connectionId = \"fixed-id\")",
    );
    assert_ne!(fixed, good);
    std::fs::write(&file, &fixed).unwrap();
    let local = Local::start(&["--assets-dir", assets.path().to_str().unwrap()]);
    let url = local.ws_url();
    assert_eq!(handshake_status(&url).await, Ok(()));
    assert_eq!(handshake_status(&url).await, Err(500));
    local.wait_log(&[
        "CONNECT $connect 500",
        "DynamoDB PutItem answered 400: ConditionalCheckFailedException",
        "request: {",
        "\"connectionid\": {\"S\": \"fixed-id\"}",
    ]);

    std::fs::write(
        &file,
        "{\"TableName\": \"@@TABLE_NAME@@\", $context.stage }",
    )
    .unwrap();
    local.wait_log(&["reload: mapping-templates/connect.vtl changed; now in effect"]);
    assert_eq!(handshake_status(&url).await, Err(500));
    local.wait_log(&[
        "CONNECT $connect 500",
        "rendered a body that is not JSON",
        "api }",
    ]);
}

/// SIGTERM disconnects every client through $disconnect and exits 0; with --data-dir
/// the table outlives the process, so a restart shows it is empty.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_disconnects_everyone_and_removes_every_item() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let mut local = Local::start(&["--data-dir", data_dir]);
    let ddb = local.ddb().await;
    let table = local.table();
    // Something written straight to the table survives, showing the directory persists.
    ddb.put_item()
        .table_name(&table)
        .item("connectionid", AttributeValue::S("kept".into()))
        .send()
        .await
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(connect_with_id(&local.ws_url()).await);
    }
    assert_eq!(count(&ddb, &table).await, 6);

    assert_eq!(local.terminate(), 0, "{}", local.log());
    for (ws, id, _) in &mut clients {
        assert_eq!(next_text(ws).await, Err(Some(1001)));
        assert!(
            local.log().lines().any(|l| l.contains(id.as_str())
                && l.contains("DISCONNECT $disconnect 200 ")
                && l.contains("(server shutdown)")),
            "{}",
            local.log()
        );
    }

    let stack = local.table().trim_end_matches("-connections").to_string();
    let again = Local::start_stack(&stack, &["--data-dir", data_dir], &[]);
    let ddb = again.ddb().await;
    assert_eq!(count(&ddb, &table).await, 1);
    assert!(get_item(&ddb, &table, "kept").await.is_some());
}

/// Over 32 KB in one frame, or over 128 KB in one message, closes with 1009 (and
/// `$disconnect` runs); 120 KB in 30 KB frames is fine.
#[tokio::test(flavor = "multi_thread")]
async fn frames_over_32kb_and_messages_over_128kb_close_with_1009() {
    use tungstenite::protocol::frame::Frame;
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    let local = Local::start(&[]);
    let ddb = local.ddb().await;

    let (mut ws, id, _) = connect_with_id(&local.ws_url()).await;
    let body = "a".repeat(120 * 1024);
    for (i, chunk) in body.as_bytes().chunks(30 * 1024).enumerate() {
        let last = (i + 1) * 30 * 1024 >= body.len();
        let op = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        ws.send(Message::Frame(Frame::message(chunk.to_vec(), op, last)))
            .await
            .unwrap();
    }
    let ev: Value = serde_json::from_str(&next_text(&mut ws).await.unwrap()).unwrap();
    assert_eq!(ev["body"].as_str().unwrap().len(), body.len());

    // 5 frames of 30 KB: 150 KB.
    for i in 0..5 {
        let op = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let _ = ws
            .send(Message::Frame(Frame::message(
                vec![b'b'; 30 * 1024],
                op,
                i == 4,
            )))
            .await;
    }
    assert_eq!(next_text(&mut ws).await, Err(Some(1009)));
    wait_gone(&ddb, &local.table(), &id).await;

    // One 40 KB frame.
    let (mut ws, id, _) = connect_with_id(&local.ws_url()).await;
    let _ = ws.send(Message::Text("c".repeat(40 * 1024).into())).await;
    assert_eq!(next_text(&mut ws).await, Err(Some(1009)));
    wait_gone(&ddb, &local.table(), &id).await;
    local.wait_log(&[&id, "DISCONNECT $disconnect 200", "message too big (1009)"]);
}

/// The idle timeout and the maximum connection duration close the connection (1001)
/// and run `$disconnect` (both shortened through hidden flags).
#[tokio::test(flavor = "multi_thread")]
async fn idle_and_maximum_duration_close_the_connection() {
    let local = Local::start(&["--idle-timeout-ms", "1000"]);
    let (mut ws, id, _) = connect_with_id(&local.ws_url()).await;
    assert_eq!(next_text(&mut ws).await, Err(Some(1001)));
    wait_gone(&local.ddb().await, &local.table(), &id).await;
    local.wait_log(&[&id, "DISCONNECT $disconnect 200", "(idle timeout)"]);

    let local = Local::start(&["--max-connection-ms", "1500"]);
    let (mut ws, id, _) = connect_with_id(&local.ws_url()).await;
    // Busy all along: only the maximum duration can end it.
    let closed = loop {
        if ws.send(Message::Text("still here".into())).await.is_err() {
            break next_text(&mut ws).await;
        }
        match next_text(&mut ws).await {
            Ok(_) => continue,
            Err(code) => break Err(code),
        }
    };
    assert_eq!(closed, Err(Some(1001)));
    wait_gone(&local.ddb().await, &local.table(), &id).await;
    local.wait_log(&[
        &id,
        "DISCONNECT $disconnect 200",
        "(maximum connection duration)",
    ]);
}

/// Expired items are really removed from the embedded table by the TTL sweep, and only
/// they: an item that has not expired and one without a ttl stay, and the connection whose
/// item was swept stays open (nothing else removed it).
#[tokio::test(flavor = "multi_thread")]
async fn expired_items_are_swept() {
    let local = Local::start(&["--connection-ttl", "2", "--ttl-sweep-interval", "1"]);
    let ddb = local.ddb().await;
    let table = local.table();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let kept = ["not-expired", "no-ttl"];
    for (id, ttl) in kept.into_iter().zip([Some(now + 3600), None]) {
        let mut put = ddb
            .put_item()
            .table_name(&table)
            .item("connectionid", AttributeValue::S(id.into()));
        if let Some(ttl) = ttl {
            put = put.item("ttl", AttributeValue::N(ttl.to_string()));
        }
        put.send().await.unwrap();
    }

    let mut ws = connect(&local.ws_url()).await;
    // $connect wrote the item during the handshake; with --connection-ttl 2 it expires
    // one to two seconds after connectedAt, so it is read at once.
    let items = ddb
        .scan()
        .table_name(&table)
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let item = items
        .into_iter()
        .find(|i| !kept.contains(&s(i, "connectionid").as_str()))
        .expect("the connection's item, read before it expired");
    let id = s(&item, "connectionid");
    assert_eq!(n(&item, "ttl"), n(&item, "connectedAt") / 1000 + 2);

    // Still connected: only the sweep can remove it.
    wait_gone(&ddb, &table, &id).await;
    local.wait_log(&["ttl: removed 1 expired item(s)"]);
    assert_eq!(echo(&mut ws, "still here").await["body"], "still here");
    assert!(
        !local
            .log()
            .lines()
            .any(|l| l.contains(&id) && l.contains("DISCONNECT")),
        "{}",
        local.log()
    );
    for id in kept {
        assert!(
            get_item(&ddb, &table, id).await.is_some(),
            "{id} was swept\n{}",
            local.log()
        );
    }
}

/// `--dynamodb-endpoint` against the moto emulator: the table is created there (with
/// TTL), items land there, and the proxy endpoint reads the same table.
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_endpoint_uses_another_dynamodb() {
    let emu = Emulator::start();
    let local = Local::start(&["--dynamodb-endpoint", &emu.url]);
    let direct = emu.sdk().await.ddb;
    let table = local.table();
    let ttl = direct
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    assert_eq!(ttl.time_to_live_status().unwrap().as_str(), "ENABLED");

    let (ws, id, _) = connect_with_id(&format!("{}?foo=bar", local.ws_url())).await;
    let in_moto = get_item(&direct, &table, &id).await.expect("item in moto");
    assert_eq!(
        m(&in_moto, "querystring"),
        HashMap::from([("foo".to_string(), "bar".to_string())])
    );
    let through_wsconn = get_item(&local.ddb().await, &table, &id).await.unwrap();
    assert_eq!(in_moto, through_wsconn);

    drop(ws);
    wait_gone(&direct, &table, &id).await;
}

/// A missing Node.js is a clear one-line error at start.
#[test]
fn missing_node_is_a_clear_error() {
    let out = wsconn_command()
        .args(["local", "--port", "0", "--node", "/nonexistent/node"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: --node /nonexistent/node: no such file; pass the path of a Node.js binary\n"
    );
    let empty = tempfile::tempdir().unwrap();
    let out = wsconn_command()
        .env("PATH", empty.path())
        .args(["local", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: node: not found on PATH;") && err.lines().count() == 1,
        "{err}"
    );
}

/// Editing the handler in --assets-dir takes effect without a restart (a new worker);
/// `--stage` names the path, and another path is refused as on AWS (403); a binary
/// message reaches the handler base64-encoded.
#[tokio::test(flavor = "multi_thread")]
async fn handler_edits_take_effect_and_the_stage_names_the_path() {
    let assets = assets_copy();
    let handler = assets.path().join("lambda/index.mjs");
    let local = Local::start(&[
        "--assets-dir",
        assets.path().to_str().unwrap(),
        "--stage",
        "dev",
    ]);
    let url = local.ws_url();
    assert!(url.ends_with("/dev"), "{url}");
    assert_eq!(local.get("stage"), "dev");
    let other = url.replace("/dev", "/api");
    assert_eq!(handshake_status(&other).await, Err(403));

    let (mut ws, _, ev) = connect_with_id(&url).await;
    assert_eq!(ev["requestContext"]["stage"], "dev");
    ws.send(Message::Binary(vec![0u8, 0xff, b'a'].into()))
        .await
        .unwrap();
    let ev: Value = serde_json::from_str(&next_text(&mut ws).await.unwrap()).unwrap();
    assert_eq!(ev["isBase64Encoded"], true);
    assert_eq!(ev["body"], "AP9h");
    assert_eq!(ev["requestContext"]["routeKey"], "$default");

    std::fs::write(
        &handler,
        "export const handler = async (event) => ({ statusCode: 200, body: `edited: ${event.body}` });\n",
    )
    .unwrap();
    local.wait_log(&["reload: lambda/index.mjs changed; starting a new Node.js worker for "]);
    local.wait_log(&["-default: worker pid", "index.mjs"]);
    // The same connection, a new handler.
    let deadline = Instant::now() + DEADLINE;
    loop {
        ws.send(Message::Text("x".into())).await.unwrap();
        let reply = next_text(&mut ws).await.unwrap();
        if reply == "edited: x" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edited handler never answered: {reply}"
        );
    }
}
