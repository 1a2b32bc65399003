//! `wsconn smoke` and `wsconn connections` against a running `wsconn local` (the emulator
//! has no WebSocket data plane): real clients, the real binary, nothing mocked.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::assets_copy;
use common::local::*;
use serde_json::Value;

/// `wsconn --stack <stack> ARGS` (against the local server at `addr`).
fn wsconn(args: &[&str]) -> common::Run {
    let out = wsconn_command()
        .args(args)
        .output()
        .expect("running wsconn");
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn addr(l: &Local) -> String {
    l.ws_url()
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// The stack name a Local was started with (from its table name).
fn stack(l: &Local) -> String {
    l.table().trim_end_matches("-connections").to_string()
}

#[test]
fn smoke_passes_on_a_healthy_local_stack() {
    let l = Local::start(&[]);
    let (a, s) = (addr(&l), stack(&l));
    let out = wsconn(&["--stack", &s, "smoke", "--local", &a]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for step in ["connect", "echo", "item", "@connections", "disconnect"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("✓ {step}"))),
            "{step}: {}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("5 steps passed, 1 skipped."),
        "{}",
        out.stdout
    );
    // The item held the nonce and a TTL in epoch seconds; the disconnect removed it.
    assert!(
        out.stdout
            .contains("querystring.smoke and the header hold the nonce")
    );
    // JSON: the same steps as an array.
    let out = wsconn(&["--stack", &s, "--output", "json", "smoke", "--local", &a]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let steps: Value = serde_json::from_str(&out.stdout).unwrap();
    let steps = steps.as_array().unwrap();
    assert_eq!(steps.len(), 6);
    for s in steps {
        let want = if s["step"] == "send" {
            "skipped"
        } else {
            "passed"
        };
        assert_eq!(s["status"], want, "{s}");
        assert!(s["seconds"].is_number());
    }
    assert_eq!(steps[2]["detail"], "no --send/--expect given");
    assert_eq!(steps[4]["step"], "@connections");
}

#[test]
fn smoke_names_the_item_step_when_the_connect_template_stores_nothing() {
    let assets = assets_copy();
    let path = assets.path().join("mapping-templates/connect.vtl");
    let text = std::fs::read_to_string(&path).unwrap();
    // A valid PutItem that stores someone else's item: the connect succeeds, the echo
    // works, but the connection has no item.
    let broken = text.replace(
        "\"connectionid\": {\"S\": \"$util.escapeJavaScript($connectionId).replaceAll(\"\\\\'\",\"'\")\"},",
        "\"connectionid\": {\"S\": \"nobody\"},",
    );
    assert_ne!(broken, text, "the template still has the expected line");
    let broken = broken.replace(
        "\"ConditionExpression\": \"attribute_not_exists(connectionid)\",\n",
        "",
    );
    std::fs::write(&path, broken).unwrap();
    let l = Local::start(&["--assets-dir", assets.path().to_str().unwrap()]);
    let out = wsconn(&[
        "--stack",
        &stack(&l),
        "smoke",
        "--local",
        &addr(&l),
        "--timeout",
        "5",
    ]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("✓ connect")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.lines().any(|l| l.starts_with("✓ echo")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.lines().any(|l| l.starts_with("✗ item")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.lines().any(|l| l.starts_with("- disconnect")),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .starts_with("error: smoke step \"item\" failed: no item with connectionid"),
        "{}",
        out.stderr
    );
}

#[test]
fn smoke_names_the_echo_step_when_the_handler_does_not_echo() {
    let assets = assets_copy();
    std::fs::write(
        assets.path().join("lambda/index.mjs"),
        "export const handler = async () => ({ statusCode: 200, body: 'pong' });\n",
    )
    .unwrap();
    let l = Local::start(&["--assets-dir", assets.path().to_str().unwrap()]);
    let out = wsconn(&["--stack", &stack(&l), "smoke", "--local", &addr(&l)]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("✗ echo")),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("smoke step \"echo\" failed: the answer is not the echoed event: pong"),
        "{}",
        out.stderr
    );
}

#[test]
fn smoke_fails_connect_when_nothing_listens() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = wsconn(&["smoke", "--local", &free, "--timeout", "1"]);
    assert_eq!(out.code, 1);
    // --local first asks what runs there: nothing answers, and that is the one line.
    assert!(
        out.stderr
            .contains(&format!("--local {free}: no wsconn local answers there")),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

/// Opens `n` clients and returns them with their ids.
async fn clients(l: &Local, n: usize) -> Vec<(Ws, String)> {
    let mut v = Vec::new();
    for _ in 0..n {
        let (ws, id, _) = connect_with_id(&l.ws_url()).await;
        v.push((ws, id));
    }
    v
}

#[tokio::test]
async fn connections_list_send_and_disconnect_on_three_live_clients() {
    let l = Local::start(&[]);
    let (a, s) = (addr(&l), stack(&l));
    let mut cs = clients(&l, 3).await;
    let ids: Vec<String> = cs.iter().map(|(_, id)| id.clone()).collect();

    // list: the three, with their details; --check asks @connections.
    let out = wsconn(&["--stack", &s, "connections", "list", "--local", &a]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for id in &ids {
        assert!(out.stdout.contains(id.as_str()), "{id}: {}", out.stdout);
    }
    assert!(out.stdout.contains("3 connections in"), "{}", out.stdout);
    let out = wsconn(&[
        "--stack",
        &s,
        "--output",
        "json",
        "connections",
        "list",
        "--check",
        "--local",
        &a,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed: Value = serde_json::from_str(&out.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for c in listed {
        assert!(ids.contains(&c["id"].as_str().unwrap().to_string()));
        assert_eq!(c["live"], true);
        assert_eq!(c["source_ip"], "127.0.0.1");
        let expires = c["expires_at"].as_i64().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            expires > now && expires <= now + 86_400 + 60,
            "epoch seconds: {expires}"
        );
    }

    // send to two of them by id: exactly those receive it.
    let out = wsconn(&[
        "--stack",
        &s,
        "connections",
        "send",
        "--message",
        "hello two",
        "--local",
        &a,
        // Ids may start with '-' (base64): after `--` they are never flags.
        "--",
        &ids[0],
        &ids[1],
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("sent 2, gone 0"), "{}", out.stdout);
    for (ws, _) in cs.iter_mut().take(2) {
        assert_eq!(next_text(ws).await.unwrap(), "hello two");
    }
    // --file sends the file's bytes to all.
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "{\"from\": \"file\"}").unwrap();
    let out = wsconn(&[
        "--stack",
        &s,
        "connections",
        "send",
        "--all",
        "--file",
        f.path().to_str().unwrap(),
        "--local",
        &a,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("sent 3, gone 0"), "{}", out.stdout);
    for (ws, _) in cs.iter_mut() {
        assert_eq!(next_text(ws).await.unwrap(), "{\"from\": \"file\"}");
    }

    // disconnect one by id, then the rest with --all: every client gets a normal close
    // (1000, as DeleteConnection gives) and every item goes ($disconnect ran).
    let out = wsconn(&[
        "--stack",
        &s,
        "connections",
        "disconnect",
        "--local",
        &a,
        "--",
        &ids[2],
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("disconnected 1, gone 0"),
        "{}",
        out.stdout
    );
    assert_eq!(next_text(&mut cs[2].0).await, Err(Some(1000)));
    let ddb = l.ddb().await;
    wait_gone(&ddb, &l.table(), &ids[2]).await;
    let out = wsconn(&[
        "--stack",
        &s,
        "--output",
        "json",
        "connections",
        "disconnect",
        "--all",
        "--local",
        &a,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let mut disconnected: Vec<&str> = doc["disconnected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    disconnected.sort();
    let mut rest = [ids[0].as_str(), ids[1].as_str()];
    rest.sort();
    assert_eq!(disconnected, rest, "{doc}");
    for (ws, id) in cs.iter_mut().take(2) {
        assert_eq!(next_text(ws).await, Err(Some(1000)));
        wait_gone(&ddb, &l.table(), id).await;
    }
    // A disconnected id is gone now.
    let out = wsconn(&[
        "--stack",
        &s,
        "connections",
        "send",
        "--message",
        "x",
        "--local",
        &a,
        "--",
        &ids[0],
    ]);
    assert_eq!(out.code, 0, "gone is not a failure: {}", out.stderr);
    assert!(out.stdout.contains("sent 0, gone 1"), "{}", out.stdout);
}

#[tokio::test]
async fn send_all_cleans_a_stale_item_and_reaches_the_live_clients() {
    let l = Local::start(&[]);
    let (a, s) = (addr(&l), stack(&l));
    let mut cs = clients(&l, 3).await;
    // An item whose client is gone without $disconnect (AWS delivers it best-effort).
    let ddb = l.ddb().await;
    ddb.put_item()
        .table_name(l.table())
        .item("connectionid", AttributeValue::S("StaleStaleStal=".into()))
        .item("connectedAt", AttributeValue::N("1652722217711".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(count(&ddb, &l.table()).await, 4);
    let out = wsconn(&[
        "--stack",
        &s,
        "connections",
        "send",
        "--all",
        "--message",
        "news",
        "--local",
        &a,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("gone    StaleStaleStal= (its stale item was deleted)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("sent 3, gone 1 (cleaned), failed 0"),
        "{}",
        out.stdout
    );
    for (ws, _) in cs.iter_mut() {
        assert_eq!(next_text(ws).await.unwrap(), "news");
    }
    assert!(
        get_item(&ddb, &l.table(), "StaleStaleStal=")
            .await
            .is_none()
    );
    assert_eq!(count(&ddb, &l.table()).await, 3);
}

#[test]
fn usage_errors_are_one_line() {
    let out = wsconn(&[
        "connections",
        "send",
        "--message",
        "x",
        "--local",
        "127.0.0.1:1",
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("give their ids, --all, or --principal ID"),
        "{}",
        out.stderr
    );
    let out = wsconn(&["connections", "list", "--local=localhost"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("expected HOST:PORT"), "{}", out.stderr);
}
