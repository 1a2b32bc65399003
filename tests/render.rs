//! `wsconn render` through the real binary: exact output, exit codes, errors with
//! positions, and a round trip of hostile input through DynamoDB (the emulator's), read
//! back with the AWS SDK.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{Emulator, assets_copy};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::process::Command;

fn render(args: &[&str]) -> common::Run {
    let out = Command::new(env!("CARGO_BIN_EXE_wsconn"))
        .args(["render"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir())
        .output()
        .expect("running wsconn render");
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// DynamoDB JSON → the SDK's attribute values.
fn to_attr(v: &Value) -> AttributeValue {
    let (ty, inner) = v.as_object().unwrap().iter().next().unwrap();
    match ty.as_str() {
        "S" => AttributeValue::S(inner.as_str().unwrap().into()),
        "N" => AttributeValue::N(inner.as_str().unwrap().into()),
        "M" => AttributeValue::M(
            inner
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), to_attr(v)))
                .collect(),
        ),
        other => panic!("unexpected type {other}"),
    }
}

fn from_attr(a: &AttributeValue) -> Value {
    match a {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::M(m) => {
            let o: Map<String, Value> = m.iter().map(|(k, v)| (k.clone(), from_attr(v))).collect();
            json!({"M": o})
        }
        other => panic!("unexpected {other:?}"),
    }
}

const FIXED: [&str; 8] = [
    "--context",
    "connectionId=SOqGjdZioAMCEeg=",
    "--context",
    "requestTimeEpoch=1652722217999",
    "--context",
    "connectedAt=1652722217711",
    "--context",
    "identity.sourceIp=203.0.113.7",
];

#[test]
fn connect_renders_the_documented_item_exactly() {
    let mut args = vec!["$connect", "--query", "foo=bar"];
    args.extend(FIXED);
    let out = render(&args).expect(0);
    assert_eq!(out.stderr, "");
    let req: Value = serde_json::from_str(&out.stdout).expect("strict JSON");
    assert_eq!(req["TableName"], "wsconn-connections");
    assert_eq!(
        req["ConditionExpression"],
        "attribute_not_exists(connectionid)"
    );
    let item = &req["Item"];
    assert_eq!(item["connectionid"], json!({"S": "SOqGjdZioAMCEeg="}));
    // requestTimeEpoch / 1000 + 86400, in seconds.
    assert_eq!(item["ttl"], json!({"N": "1652808617"}));
    assert_eq!(item["connectedAt"], json!({"N": "1652722217711"}));
    assert_eq!(item["sourceIp"], json!({"S": "203.0.113.7"}));
    assert_eq!(item["querystring"], json!({"M": {"foo": {"S": "bar"}}}));
    assert_eq!(item["headers"], json!({"M": {}}));
    // --connection-ttl and --stack fill the placeholders as deploy does.
    let mut args = vec!["$connect", "--stack", "chat", "--connection-ttl", "60"];
    args.extend(FIXED);
    let req: Value = serde_json::from_str(&render(&args).expect(0).stdout).unwrap();
    assert_eq!(req["TableName"], "chat-connections");
    assert_eq!(req["Item"]["ttl"], json!({"N": "1652722277"}));
}

#[test]
fn json_output_carries_route_template_output_and_request() {
    let out = render(&[
        "disconnect",
        "--context",
        "connectionId=abc=",
        "--output",
        "json",
    ])
    .expect(0);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["route"], "$disconnect");
    assert_eq!(doc["template"], "mapping-templates/disconnect.vtl");
    let request: Value = serde_json::from_str(doc["output"].as_str().unwrap()).unwrap();
    assert_eq!(request, doc["request"]);
    assert_eq!(
        doc["request"],
        json!({"TableName": "wsconn-connections", "Key": {"connectionid": {"S": "abc="}}})
    );
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4);
}

#[test]
fn defaults_fill_every_context_variable_and_now_is_in_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("ctx.vtl");
    std::fs::write(
        &t,
        "$context.connectionId|$context.requestTimeEpoch|$context.connectedAt|$context.requestTime|$context.requestId|$context.extendedRequestId|$context.eventType|$context.routeKey|$context.stage|$context.domainName|$context.apiId|$context.identity.sourceIp|$context.identity.userAgent",
    )
    .unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let out = render(&[
        "connect",
        "--template",
        t.to_str().unwrap(),
        "--stage",
        "prod",
    ]);
    // Not DynamoDB's shape: a warning and exit 3, but stdout is the text exactly.
    assert_eq!(out.code, 3, "{}", out.stderr);
    let f: Vec<&str> = out.stdout.split('|').collect();
    assert_eq!(f.len(), 13);
    for (i, v) in f.iter().enumerate() {
        assert!(
            !v.is_empty() && !v.starts_with("$context"),
            "field {i} unset: {v}"
        );
    }
    assert_eq!(f[0].len(), 16);
    let epoch: i64 = f[1].parse().unwrap();
    assert!(
        epoch >= before && epoch < before + 60_000,
        "ms since the epoch: {epoch}"
    );
    assert_eq!(&f[6..9], ["CONNECT", "$connect", "prod"]);
    assert!(f[3].ends_with(" +0000") && f[3].contains('/'), "{}", f[3]);
}

#[test]
fn errors_name_file_line_and_column_and_bad_shapes_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.vtl");
    std::fs::write(&bad, "{\n  \"a\": \"$x\"\n  #foreach($i in [1..3]\n}\n").unwrap();
    let out = render(&["--template", bad.to_str().unwrap()]).expect(1);
    assert!(
        out.stderr
            .starts_with(&format!("error: {}:4:1: syntax error", bad.display())),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
    assert_eq!(out.stdout, "");

    let not_json = dir.path().join("text.vtl");
    std::fs::write(&not_json, "hello $context.stage").unwrap();
    // Without a route, any text is fine.
    let out = render(&["--template", not_json.to_str().unwrap()]).expect(0);
    assert_eq!(out.stdout, "hello api");
    // With a route, the output must be that route's DynamoDB request.
    let out = render(&["$connect", "--template", not_json.to_str().unwrap()]).expect(3);
    assert_eq!(out.stdout, "hello api");
    assert!(out.stderr.contains("not JSON"), "{}", out.stderr);
    let wrong = dir.path().join("wrong.vtl");
    std::fs::write(
        &wrong,
        r#"{"TableName": "t", "Key": {"connectionid": {"S": "x"}}}"#,
    )
    .unwrap();
    let out = render(&["$connect", "--template", wrong.to_str().unwrap()]).expect(3);
    assert!(out.stderr.contains("Item is missing"), "{}", out.stderr);
    render(&["$disconnect", "--template", wrong.to_str().unwrap()]).expect(0);
    // Usage: a route render does not know.
    let out = render(&["$default"]).expect(1);
    assert!(
        out.stderr.contains("$connect and $disconnect"),
        "{}",
        out.stderr
    );
}

#[test]
fn assets_dir_is_honoured_and_data_is_never_code() {
    let assets = assets_copy();
    let path = assets.path().join("mapping-templates/connect.vtl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen(
            "\"Item\": {",
            "\"Item\": {\n    \"marker\": {\"S\": \"edited\"},",
            1,
        ),
    )
    .unwrap();
    let mut args = vec![
        "$connect",
        "--assets-dir",
        assets.path().to_str().unwrap(),
        "--header",
        "X-Evil=$context.connectionId #set($x = 1) ${x}",
    ];
    args.extend(FIXED);
    let out = render(&args).expect(0);
    let req: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(req["Item"]["marker"], json!({"S": "edited"}));
    assert_eq!(
        req["Item"]["headers"]["M"]["X-Evil"],
        json!({"S": "$context.connectionId #set($x = 1) ${x}"})
    );
}

/// Hostile handshakes: rendered by wsconn, accepted by DynamoDB, read back byte for byte.
#[tokio::test]
async fn hostile_input_round_trips_through_dynamodb() {
    let emu = Emulator::start();
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    let c = emu.sdk().await;
    type Pairs = Vec<(&'static str, &'static str)>;
    let cases: Vec<(&str, Pairs, Pairs)> = vec![
        (
            "quotes",
            vec![("X-Q", "say \"hi\" and 'bye'")],
            vec![("q", "\"'")],
        ),
        (
            "backslashes",
            vec![("X-B", "C:\\path\\to\\ \\\\ \\u0041")],
            vec![("b", "\\")],
        ),
        (
            "control",
            vec![("X-C", "tab\there\u{1}\u{1f}")],
            vec![("c", "line\nbreak\r")],
        ),
        (
            "unicode",
            vec![("X-U", "héllo wörld ✓ 日本")],
            vec![("emoji", "🎉👍")],
        ),
        (
            "velocity",
            vec![("X-V", "$context.stage #if(true)x#end ## c")],
            vec![("d", "${x}$!y#")],
        ),
        (
            "injection",
            vec![(
                "X-I",
                "\"}}, \"connectionid\": {\"S\": \"victim\"}, \"x\": {\"S\": \"",
            )],
            vec![("\"}", "{\"S\": \"x\"}")],
        ),
        (
            "slashes",
            vec![("X-S", "</script> a/b")],
            vec![("u", "https://x/y?z=1&w")],
        ),
    ];
    for (i, (name, headers, query)) in cases.iter().enumerate() {
        let id = format!("case{i}=");
        let ctx = format!("connectionId={id}");
        let mut args: Vec<String> = vec!["$connect".into(), "--context".into(), ctx];
        for (k, v) in headers {
            args.push("--header".into());
            args.push(format!("{k}={v}"));
        }
        for (k, v) in query {
            args.push("--query".into());
            args.push(format!("{k}={v}"));
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = render(&argv).expect(0);
        let req: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: not JSON ({e}):\n{}", out.stdout));
        let item: HashMap<String, AttributeValue> = req["Item"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), to_attr(v)))
            .collect();
        c.ddb
            .put_item()
            .table_name("wsconn-connections")
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(connectionid)")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: DynamoDB refused: {e:?}"));
        let got = c
            .ddb
            .get_item()
            .table_name("wsconn-connections")
            .key("connectionid", AttributeValue::S(id.clone()))
            .send()
            .await
            .unwrap();
        let got = got.item().unwrap_or_else(|| panic!("{name}: no item"));
        for (k, v) in headers {
            assert_eq!(
                from_attr(&got["headers"]),
                json!({"M": {*k: {"S": *v}}}),
                "{name}: header {k}"
            );
            let _ = v;
        }
        let qs: Map<String, Value> = query
            .iter()
            .map(|(k, v)| (k.to_string(), json!({"S": v})))
            .collect();
        assert_eq!(from_attr(&got["querystring"]), json!({"M": qs}), "{name}");
    }
    // The injection attempt did not write or overwrite anyone else's item.
    let victim = c
        .ddb
        .get_item()
        .table_name("wsconn-connections")
        .key("connectionid", AttributeValue::S("victim".into()))
        .send()
        .await
        .unwrap();
    assert!(victim.item().is_none());
}

#[test]
fn deploy_and_diff_stop_on_a_broken_template_before_any_aws_call() {
    let emu = Emulator::start();
    let assets = assets_copy();
    let path = assets.path().join("mapping-templates/disconnect.vtl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "#set($connectionId = \"$!context.connectionId\")",
            "#set($connectionId = \"$!context.connectionId\"",
        ),
    )
    .unwrap();
    let dir = assets.path().to_str().unwrap();
    for cmd in ["diff", "deploy"] {
        emu.reset_calls();
        let out = emu.wsconn(&[cmd, "--yes", "--assets-dir", dir]).expect(1);
        assert!(
            out.stderr
                .starts_with(&format!("error: {dir}/mapping-templates/disconnect.vtl:")),
            "{cmd}: {}",
            out.stderr
        );
        assert!(
            emu.calls().is_empty(),
            "{cmd} made AWS calls: {:?}",
            emu.calls()
        );
    }
}
