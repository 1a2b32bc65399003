//! `wsconn local` running an application declared in wsconn.toml: examples/chat end to
//! end with the real wscat and the AWS SDK for JavaScript its handlers import (installed
//! with `npm ci` into a copy of the example), and a test application whose handlers show
//! what each function's worker is (its pid, environment, timeout, reload) and whose
//! authorizer answers every way API Gateway distinguishes. Waits are deadlines on
//! observable state; no test asserts a duration.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::local::*;
use common::{assets_copy, repo};
use futures::SinkExt as _;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use tokio_tungstenite::tungstenite::{self, Message};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() == "node_modules" {
            continue;
        }
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A copy of examples/chat with its dependencies installed by `npm ci` (the AWS SDK
/// clients its handlers import), as a user would run it.
fn chat_app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/chat"), dir.path());
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("running npm ci (Node.js brings npm)");
    assert!(
        out.status.success(),
        "npm ci in a copy of examples/chat failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.path()
            .join("node_modules/@aws-sdk/client-dynamodb")
            .is_dir()
    );
    dir
}

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

/// What wscat printed for a message: its line without the prompt.
fn message(line: &str) -> &str {
    line.trim_start_matches(['>', '<', ' '])
}

/// examples/chat under `wsconn local`, unchanged: the authorizer guards `$connect`, two
/// clients with the token both receive a `sendmessage`, the sendmessage handler reaches
/// the table and @connections through the AWS SDK with its AWS configuration (`new
/// DynamoDBClient({})`, `CONNECTIONS_URL`), and prunes a stale item on 410.
#[tokio::test(flavor = "multi_thread")]
async fn chat_example_end_to_end_with_wscat_and_the_aws_sdk() {
    let app = chat_app();
    let config = app.path().join("wsconn.toml");
    let local = Local::start_stack("chat", &["--config", config.to_str().unwrap()], &[]);
    let url = local.ws_url();
    let table = local.table();
    assert_eq!(table, "chat-connections");

    // No token: 401 from the identity source, without calling the function.
    let (code, said) = Wscat::refused(&url);
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("Unexpected server response: 401"), "{said}");
    local.wait_log(&[
        "CONNECT $connect 401",
        "identity source route.request.querystring.token is missing; the function was not called",
    ]);
    // A wrong token: the function denies, 403.
    let (_, said) = Wscat::refused(&format!("{url}?token=wrong&user=mallory"));
    assert!(said.contains("Unexpected server response: 403"), "{said}");
    local.wait_log(&["CONNECT $connect 403", "explicit Deny", "\"mallory\""]);
    local.wait_log(&["[chat-authorizer pid ", "] deny ", "(wrong token)"]);

    // A stale item: a connection that no longer exists.
    let ddb = local.ddb().await;
    let stale = "StaleConnXXXXXX=";
    ddb.put_item()
        .table_name(&table)
        .item("connectionid", AttributeValue::S(stale.into()))
        .send()
        .await
        .unwrap();

    // (wscat prints nothing on connecting when its input is not a terminal: the
    // access log says when each handshake is through.)
    let alice = Wscat::connect(&format!("{url}?token=chat-demo-token&user=alice"));
    local.wait_log(&[
        "CONNECT $connect 200",
        "(authorizer chat-authorizer: allowed principalId \"alice\")",
    ]);
    let bob = Wscat::connect(&format!("{url}?token=chat-demo-token&user=bob"));
    local.wait_log(&[
        "CONNECT $connect 200",
        "(authorizer chat-authorizer: allowed principalId \"bob\")",
    ]);
    local.wait_log(&["[chat-authorizer pid ", "] allow ", "user=\"bob\""]);

    // Each item holds its user as principalId.
    let items = ddb
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let principals: BTreeSet<String> = items
        .iter()
        .filter_map(|i| i.get("principalId").map(|p| p.as_s().unwrap().clone()))
        .collect();
    assert_eq!(
        principals,
        BTreeSet::from(["alice".to_string(), "bob".to_string()])
    );
    assert_eq!(items.len(), 3, "alice, bob and the stale item: {items:?}");

    let mut alice = alice;
    alice.type_line(r#"{"action":"sendmessage","data":"hi"}"#);
    assert_eq!(message(&alice.read_line_containing("hi")), "hi");
    assert_eq!(message(&bob.read_line_containing("hi")), "hi");

    // The handler's own console.log, prefixed with its function's name.
    local.wait_log(&[
        "[chat-sendmessage pid ",
        "] sendmessage from ",
        ": 3 connections, sent 2, gone 1 (deleted), failed 0",
    ]);
    local.wait_log(&["MESSAGE sendmessage 200"]);
    local.wait_log(&[stale, "@connections POST 410"]);
    assert!(
        get_item(&ddb, &table, stale).await.is_none(),
        "the stale item is deleted by the handler's 410 handling"
    );
    assert_eq!(count(&ddb, &table).await, 2);

    alice.quit();
    bob.quit();
    let deadline = std::time::Instant::now() + DEADLINE;
    while count(&ddb, &table).await != 0 {
        assert!(std::time::Instant::now() < deadline, "items left behind");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The AWS SDK for JavaScript v3, configured as on AWS, against wsconn local: signed
/// PostToConnection, GetConnection and DeleteConnection on `<CONNECTIONS_URL>`,
/// GoneException on a closed id, and Scan / DeleteItem on the DynamoDB endpoint.
#[tokio::test(flavor = "multi_thread")]
async fn the_javascript_sdk_reaches_connections_and_the_table() {
    let app = chat_app();
    let config = app.path().join("wsconn.toml");
    let local = Local::start_stack("chat", &["--config", config.to_str().unwrap()], &[]);
    let (mut ws, id, _) = connect_with_id(&format!(
        "{}?token=chat-demo-token&user=carol",
        local.ws_url()
    ))
    .await;
    let script = app.path().join("sdk-check.mjs");
    std::fs::write(&script, SDK_CHECK).unwrap();
    let out = Command::new("node")
        .arg(&script)
        .arg(&id)
        .current_dir(app.path())
        .env("CONNECTIONS_URL", local.management_endpoint())
        .env("AWS_ENDPOINT_URL_DYNAMODB", local.get("dynamodb_endpoint"))
        .env("TABLE_NAME", local.table())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(said.lines().last().unwrap()).unwrap();
    assert_eq!(v["posted"], 200, "{v}");
    assert_eq!(v["get"]["identity"]["sourceIp"], "127.0.0.1", "{v}");
    assert!(v["get"]["connectedAt"].is_string(), "{v}");
    assert_eq!(v["scanned"], json!([id]), "{v}");
    assert_eq!(v["deleteItem"], 200, "{v}");
    assert_eq!(v["deleted"], 204, "{v}");
    assert_eq!(v["afterDelete"], "GoneException", "{v}");
    assert_eq!(next_text(&mut ws).await, Ok("from the sdk".to_string()));
    assert_eq!(next_text(&mut ws).await, Err(Some(1000)));
    local.wait_log(&[&id, "@connections GET 200"]);
    local.wait_log(&[&id, "@connections DELETE 204"]);
}

const SDK_CHECK: &str = r#"
import { DynamoDBClient, ScanCommand, DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import { ApiGatewayManagementApiClient, PostToConnectionCommand, GetConnectionCommand,
  DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
const id = process.argv[2];
const ddb = new DynamoDBClient({});
const api = new ApiGatewayManagementApiClient({ endpoint: process.env.CONNECTIONS_URL });
const out = {};
const posted = await api.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'from the sdk' }));
out.posted = posted.$metadata.httpStatusCode;
const got = await api.send(new GetConnectionCommand({ ConnectionId: id }));
out.get = { connectedAt: got.ConnectedAt?.toISOString(), identity: { sourceIp: got.Identity?.SourceIp } };
const scan = await ddb.send(new ScanCommand({ TableName: process.env.TABLE_NAME }));
out.scanned = scan.Items.map((i) => i.connectionid.S);
const del = await ddb.send(new DeleteItemCommand({ TableName: process.env.TABLE_NAME, Key: { connectionid: { S: 'nobody' } } }));
out.deleteItem = del.$metadata.httpStatusCode;
const gone = await api.send(new DeleteConnectionCommand({ ConnectionId: id }));
out.deleted = gone.$metadata.httpStatusCode;
try {
  await api.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'late' }));
  out.afterDelete = 'delivered';
} catch (e) {
  out.afterDelete = e.name;
}
console.log(JSON.stringify(out));
"#;

/// An application of three functions and an authorizer, with handlers that tell what
/// their worker is.
fn test_app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let write = |rel: &str, text: &str| {
        let f = p.join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    };
    write(
        "wsconn.toml",
        r#"stack = "apps"

[functions]
timeout = 1

[routes.slow]
handler = "handlers/slow"

[routes.env]
handler = "handlers/env"
memory = 192
environment = { GREETING = "hello" }

[authorizer]
handler = "handlers/auth"
identity-sources = ["route.request.querystring.mode"]
"#,
    );
    write(
        "handlers/slow/index.mjs",
        r#"export const handler = async (event) => {
  const { ms } = JSON.parse(event.body);
  console.log(`sleeping ${ms} ms`);
  await new Promise((r) => setTimeout(r, ms));
  return { statusCode: 200, body: JSON.stringify({ pid: process.pid }) };
};
"#,
    );
    write("handlers/env/index.mjs", &env_handler(1));
    write(
        "handlers/auth/index.mjs",
        r#"const policy = (effect, resource, extra = {}) => ({
  principalId: 'alice',
  policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }] },
  ...extra,
});
export const handler = async (event) => {
  const mode = event.queryStringParameters.mode;
  console.log(`authorizing ${mode} for ${event.methodArn}`);
  switch (mode) {
    case 'allow':
      return policy('Allow', event.methodArn, { context: { tenant: 'acme', n: 3 } });
    case 'wildcard':
      return policy('Allow', 'arn:aws:execute-api:*:*:*/api/$conn?ct');
    case 'deny':
      return policy('Deny', event.methodArn);
    case 'other':
      return policy('Allow', event.methodArn.replace('/api/', '/prod/'));
    case 'explicitdeny': {
      const p = policy('Allow', '*');
      p.policyDocument.Statement.push({ Action: 'execute-api:*', Effect: 'Deny', Resource: event.methodArn });
      return p;
    }
    case 'throw':
      throw new Error('authorizer exploded');
    case 'hang':
      return new Promise(() => {});
    case 'notpolicy':
      return { allowed: true };
    default:
      return policy('Deny', '*');
  }
};
"#,
    );
    dir
}

fn env_handler(version: u32) -> String {
    format!(
        r#"export const handler = async (event) => {{
  const keys = ['TABLE_NAME', 'CONNECTIONS_URL', 'GREETING', 'AWS_REGION', 'AWS_ENDPOINT_URL_DYNAMODB',
    'AWS_ACCESS_KEY_ID', 'AWS_LAMBDA_FUNCTION_NAME', 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'HOME'];
  const env = Object.fromEntries(keys.map((k) => [k, process.env[k] ?? null]));
  return {{ statusCode: 200, body: JSON.stringify({{ version: {version}, pid: process.pid, env,
    execArgv: process.execArgv, requestContext: event.requestContext }}) }};
}};
"#
    )
}

async fn ask(ws: &mut Ws, body: Value) -> Value {
    ws.send(Message::Text(body.to_string().into()))
        .await
        .unwrap();
    let t = next_text(ws).await.expect("an answer");
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
}

/// Every function runs in a worker of its own with Lambda's environment pointed at this
/// process; one function's timeout kills its worker only; an edit of one handler
/// directory reloads that function alone; the authorizer's context reaches `$connect`'s
/// template and every later event.
#[tokio::test(flavor = "multi_thread")]
async fn each_function_has_its_own_worker_environment_and_timeout() {
    let app = test_app();
    // connect.vtl also stores $context.authorizer.tenant.
    let assets = assets_copy();
    let connect = assets.path().join("mapping-templates/connect.vtl");
    let vtl = std::fs::read_to_string(&connect).unwrap().replace(
        "#if($principalId != \"\")",
        "    \"tenant\": {\"S\": \"$!context.authorizer.tenant\"},\n#if($principalId != \"\")",
    );
    std::fs::write(&connect, vtl).unwrap();
    let local = Local::start_stack(
        "apps",
        &[
            "--config",
            app.path().join("wsconn.toml").to_str().unwrap(),
            "--assets-dir",
            assets.path().to_str().unwrap(),
        ],
        &[],
    );
    let url = format!("{}?mode=allow", local.ws_url());
    let (mut a, id_a, echo_a) = connect_with_id(&url).await;
    let (mut b, _, _) = connect_with_id(&url).await;

    // The authorizer's context: in the template's item, and in every later event.
    let item = get_item(&local.ddb().await, &local.table(), &id_a)
        .await
        .unwrap();
    assert_eq!(s(&item, "principalId"), "alice");
    assert_eq!(s(&item, "tenant"), "acme");
    let expected = json!({"principalId": "alice", "tenant": "acme", "n": "3"});
    assert_eq!(echo_a["requestContext"]["authorizer"], expected);
    assert_eq!(echo_a["requestContext"]["routeKey"], "$default");

    let env = ask(&mut a, json!({"action": "env"})).await;
    assert_eq!(env["version"], 1);
    assert_eq!(env["requestContext"]["routeKey"], "env");
    assert_eq!(env["requestContext"]["authorizer"], expected);
    assert_eq!(
        env["env"],
        json!({
            "TABLE_NAME": local.table(),
            "CONNECTIONS_URL": local.management_endpoint(),
            "GREETING": "hello",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_DYNAMODB": local.get("dynamodb_endpoint"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_LAMBDA_FUNCTION_NAME": "apps-env",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "192",
            "HOME": null,
        })
    );
    assert_eq!(env["execArgv"][0], "--max-old-space-size=192");
    let env_pid = env["pid"].as_i64().unwrap();
    let slow_pid = ask(&mut a, json!({"action": "slow", "ms": 0})).await["pid"]
        .as_i64()
        .unwrap();
    assert_ne!(env_pid, slow_pid, "each function has a worker of its own");

    // slow runs past its 1 s timeout while env keeps answering from the same worker.
    a.send(Message::Text(
        json!({"action": "slow", "ms": 60000}).to_string().into(),
    ))
    .await
    .unwrap();
    local.wait_log(&[&format!("[apps-slow pid {slow_pid}] sleeping 60000 ms")]);
    let during = ask(&mut b, json!({"action": "env"})).await;
    assert_eq!(during["pid"], env_pid);
    let frame: Value = serde_json::from_str(&next_text(&mut a).await.unwrap()).unwrap();
    assert_eq!(frame["message"], "Internal server error");
    local.wait_log(&["MESSAGE slow 504", "handler timed out after 1000 ms"]);
    let after = ask(&mut b, json!({"action": "env"})).await;
    assert_eq!(
        after["pid"], env_pid,
        "env's worker outlived slow's timeout"
    );
    let new_slow = ask(&mut a, json!({"action": "slow", "ms": 0})).await["pid"]
        .as_i64()
        .unwrap();
    assert_ne!(new_slow, slow_pid, "the timed-out worker is replaced");

    // Editing env's handler reloads env alone.
    std::fs::write(app.path().join("handlers/env/index.mjs"), env_handler(2)).unwrap();
    local.wait_log(&["handlers/env changed; a new worker runs apps-env"]);
    let deadline = std::time::Instant::now() + DEADLINE;
    let reloaded = loop {
        let v = ask(&mut b, json!({"action": "env"})).await;
        if v["version"] == 2 {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "env never reloaded");
    };
    assert_ne!(reloaded["pid"], env_pid);
    // A route's worker starts on demand: the new one at the first message after the edit.
    local.wait_log(&[
        "node apps-env: cold start: worker pid",
        "(192 MB, timeout 1000 ms)",
    ]);
    let slow_again = ask(&mut a, json!({"action": "slow", "ms": 0})).await["pid"]
        .as_i64()
        .unwrap();
    assert_eq!(slow_again, new_slow, "slow kept its worker");
    assert!(
        !local.log().contains("a new worker runs apps-slow"),
        "{}",
        local.log()
    );
}

/// The authorizer's outcomes are API Gateway's, and the access log names each.
#[tokio::test(flavor = "multi_thread")]
async fn authorizer_outcomes_are_api_gateways() {
    let app = test_app();
    let local = Local::start_stack(
        "apps",
        &["--config", app.path().join("wsconn.toml").to_str().unwrap()],
        &[],
    );
    let ws = local.ws_url();
    let cases: &[(&str, Result<(), u16>, &str)] = &[
        (
            "",
            Err(401),
            "identity source route.request.querystring.mode is missing",
        ),
        (
            "?mode=",
            Err(401),
            "identity source route.request.querystring.mode is missing",
        ),
        ("?mode=allow", Ok(()), "allowed principalId \"alice\""),
        ("?mode=wildcard", Ok(()), "allowed principalId \"alice\""),
        ("?mode=deny", Err(403), "an explicit Deny matches"),
        ("?mode=explicitdeny", Err(403), "an explicit Deny matches"),
        (
            "?mode=other",
            Err(403),
            "no Allow of execute-api:Invoke matches",
        ),
        (
            "?mode=throw",
            Err(500),
            "it threw Error: authorizer exploded",
        ),
        ("?mode=hang", Err(500), "it timed out after 1000 ms"),
        (
            "?mode=notpolicy",
            Err(500),
            "the answer is not a policy: the answer has no principalId",
        ),
    ];
    for (query, expected, logged) in cases {
        let got = handshake_status(&format!("{ws}{query}")).await;
        assert_eq!(&got, expected, "{query}");
        let status = match expected {
            Ok(()) => 200,
            Err(s) => *s,
        };
        local.wait_log(&[&format!("CONNECT $connect {status} "), logged]);
    }
    local.wait_log(&[
        "[apps-authorizer pid ",
        "authorizing allow for arn:aws:execute-api:us-east-1:000000000000:",
        "/api/$connect",
    ]);
    assert!(
        !local.log().contains("authorizing  for") && !local.log().contains("authorizing undefined"),
        "the function is not called without the identity source\n{}",
        local.log()
    );
}

/// A newcomer's path, exactly: `wsconn init chat --example chat && cd chat && npm install
/// && wsconn local`; then `wsconn smoke --local` with the authorizer's token and a
/// sendmessage step passes, and its item holds the principal.
#[test]
fn a_newcomer_goes_from_init_to_a_running_chat_and_smoke_passes() {
    let root = tempfile::tempdir().unwrap();
    let out = wsconn_command()
        .args(["init", "chat", "--example", "chat"])
        .current_dir(root.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("cd chat") && said.contains("npm install") && said.contains("wsconn local"),
        "{said}"
    );
    let dir = root.path().join("chat");
    let npm = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("running npm install (Node.js brings npm)");
    assert!(
        npm.status.success(),
        "npm install: {}",
        String::from_utf8_lossy(&npm.stderr)
    );
    let local = Local::start_in(&dir);
    assert_eq!(local.table(), "chat-connections");
    let addr = local
        .ws_url()
        .trim_start_matches("ws://")
        .trim_end_matches("/api")
        .to_string();
    let out = wsconn_command()
        .args([
            "smoke",
            "--local",
            &addr,
            "--query",
            "token=chat-demo-token",
            "--query",
            "user=smoke",
            "--send",
            r#"{"action":"sendmessage","data":"hi from smoke"}"#,
            "--expect",
            "hi from smoke",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "connect",
        "echo",
        "send",
        "item",
        "@connections",
        "disconnect",
    ] {
        assert!(
            said.lines().any(|l| l.starts_with(&format!("✓ {step}"))),
            "{step}: {said}"
        );
    }
    assert!(said.contains("principalId smoke"), "{said}");
    assert!(said.contains("All 6 steps passed."), "{said}");
    // Without the token the authorizer refuses, and smoke says so at once.
    let out = wsconn_command()
        .args(["smoke", "--local", &addr, "--timeout", "5"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 401") && err.contains("--query"), "{err}");
}

/// `connections` on an application: `list` shows each item's principalId, and `send
/// --principal` reaches that principal's connections only.
#[tokio::test(flavor = "multi_thread")]
async fn connections_list_the_principal_and_send_to_one_principal_only() {
    let app = chat_app();
    let config = app.path().join("wsconn.toml");
    let config = config.to_str().unwrap();
    let local = Local::start_stack("chat", &["--config", config], &[]);
    let url = local.ws_url();
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/api")
        .to_string();
    let mut alice = connect(&format!("{url}?token=chat-demo-token&user=alice")).await;
    let mut alice2 = connect(&format!("{url}?token=chat-demo-token&user=alice")).await;
    let mut bob = connect(&format!("{url}?token=chat-demo-token&user=bob")).await;
    let run = |args: &[&str]| {
        let out = wsconn_command()
            .args(["--config", config, "connections"])
            .args(args)
            .args(["--local", &addr])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        said
    };
    let list = run(&["list"]);
    assert!(list.lines().next().unwrap().contains("PRINCIPAL"), "{list}");
    assert_eq!(
        list.lines().filter(|l| l.contains(" alice ")).count(),
        2,
        "{list}"
    );
    assert_eq!(
        list.lines().filter(|l| l.contains(" bob ")).count(),
        1,
        "{list}"
    );
    let sent = run(&["send", "--principal", "alice", "--message", "only-alice"]);
    assert!(sent.contains("sent 2, gone 0"), "{sent}");
    assert_eq!(next_text(&mut alice).await.unwrap(), "only-alice");
    assert_eq!(next_text(&mut alice2).await.unwrap(), "only-alice");
    // Frames arrive in order: bob's first is the one sent to him, not alice's.
    let sent = run(&["send", "--principal", "bob", "--message", "for-bob"]);
    assert!(sent.contains("sent 1, gone 0"), "{sent}");
    assert_eq!(next_text(&mut bob).await.unwrap(), "for-bob");
}
