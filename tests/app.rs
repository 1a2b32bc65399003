//! The reference application, `examples/chat`, against the emulator: every resource,
//! name, grant and setting the application sections declare, read back with the SDK;
//! drift on each of them seen by diff and repaired by deploy; removing a route and the
//! authorizer; validation before any AWS call; destroy leaving only the account's role.

mod common;

use common::{ACCOUNT, Emulator, OWNER, REGION, changes};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A copy of examples/chat (wsconn.toml and handlers/) to deploy and edit.
fn chat_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = common::repo().join("examples/chat");
    std::fs::copy(src.join("wsconn.toml"), dir.path().join("wsconn.toml")).unwrap();
    for h in ["sendmessage", "authorizer"] {
        let to = dir.path().join("handlers").join(h);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(
            src.join("handlers").join(h).join("index.mjs"),
            to.join("index.mjs"),
        )
        .unwrap();
    }
    dir
}

fn config(dir: &Path) -> String {
    dir.join("wsconn.toml").display().to_string()
}

fn with_config<'a>(cfg: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--config", cfg];
    v.extend_from_slice(args);
    v
}

fn decode(doc: &str) -> Value {
    serde_json::from_str(&urlencoding::decode(doc).unwrap()).unwrap()
}

/// Every inline policy of a role, by name, as parsed documents.
async fn policies(c: &common::Clients, role: &str) -> Vec<(String, Value)> {
    let names = c
        .iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for n in names.policy_names() {
        let d = c
            .iam
            .get_role_policy()
            .role_name(role)
            .policy_name(n)
            .send()
            .await
            .unwrap();
        out.push((n.clone(), decode(d.policy_document())));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn statement(actions: Value, resource: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]})
}

/// GET /account of API Gateway's v1 API on the emulator.
fn account(emu: &Emulator) -> Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", emu.port)).unwrap();
    write!(
        s,
        "GET /account HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/apigateway/aws4_request, SignedHeaders=host, Signature=0\r\nX-Amz-Date: 20260101T000000Z\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (_, body) = resp.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

async fn function_names(c: &common::Clients) -> Vec<String> {
    let mut v: Vec<String> = c
        .lambda
        .list_functions()
        .send()
        .await
        .unwrap()
        .functions()
        .iter()
        .map(|f| f.function_name().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn log_groups(c: &common::Clients) -> Vec<String> {
    let mut v: Vec<String> = c
        .logs
        .describe_log_groups()
        .send()
        .await
        .unwrap()
        .log_groups()
        .iter()
        .map(|g| g.log_group_name().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn role_names(c: &common::Clients) -> Vec<String> {
    let mut v: Vec<String> = c
        .iam
        .list_roles()
        .send()
        .await
        .unwrap()
        .roles()
        .iter()
        .map(|r| r.role_name().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chat_example_deploys_exactly_what_it_declares() {
    let emu = Emulator::start();
    let dir = chat_copy();
    let cfg = config(dir.path());
    emu.wsconn(&with_config(&cfg, &["deploy", "--yes"]))
        .expect(0);
    let c = emu.sdk().await;
    let api_id = c.api_of("chat").await;

    // Functions: the built-in echo stays as it was; the handlers are wired.
    assert_eq!(
        function_names(&c).await,
        ["chat-authorizer", "chat-default", "chat-sendmessage"]
    );
    let f = c
        .lambda
        .get_function_configuration()
        .function_name("chat-sendmessage")
        .send()
        .await
        .unwrap();
    assert_eq!(f.memory_size(), Some(256));
    assert_eq!(f.timeout(), Some(10));
    assert_eq!(f.handler(), Some("index.handler"));
    assert_eq!(
        f.role(),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/chat-sendmessage-fn").as_str())
    );
    let env = f.environment().unwrap().variables().unwrap();
    let mut keys: Vec<&String> = env.keys().collect();
    keys.sort();
    assert_eq!(keys, ["CONNECTIONS_URL", "TABLE_NAME"]);
    assert_eq!(env["TABLE_NAME"], "chat-connections");
    assert_eq!(
        env["CONNECTIONS_URL"],
        format!("https://{api_id}.execute-api.{REGION}.amazonaws.com/api")
    );
    let a = c
        .lambda
        .get_function_configuration()
        .function_name("chat-authorizer")
        .send()
        .await
        .unwrap();
    let aenv = a.environment().unwrap().variables().unwrap();
    assert_eq!(
        aenv.len(),
        1,
        "the authorizer gets neither the table nor @connections: {aenv:?}"
    );
    assert_eq!(aenv["CHAT_TOKEN"], "chat-demo-token");
    let echo = c
        .lambda
        .get_function_configuration()
        .function_name("chat-default")
        .send()
        .await
        .unwrap();
    assert!(
        echo.environment()
            .and_then(|e| e.variables())
            .is_none_or(|v| v.is_empty())
    );

    // IAM, exactly.
    let table_arn = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/chat-connections");
    let logs = |f: &str| {
        json!(format!(
            "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{f}:*"
        ))
    };
    assert_eq!(
        policies(&c, "chat-sendmessage-fn").await,
        vec![
            (
                "manage-connections".to_string(),
                statement(
                    json!("execute-api:ManageConnections"),
                    json!(format!(
                        "arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/api/*/@connections/*"
                    ))
                )
            ),
            (
                "read-connections".to_string(),
                statement(
                    json!([
                        "dynamodb:GetItem",
                        "dynamodb:Query",
                        "dynamodb:Scan",
                        "dynamodb:DeleteItem"
                    ]),
                    json!(table_arn)
                )
            ),
            (
                "write-own-logs".to_string(),
                statement(
                    json!(["logs:CreateLogStream", "logs:PutLogEvents"]),
                    logs("chat-sendmessage")
                )
            ),
        ]
    );
    assert_eq!(
        policies(&c, "chat-authorizer-fn").await,
        vec![(
            "write-own-logs".to_string(),
            statement(
                json!(["logs:CreateLogStream", "logs:PutLogEvents"]),
                logs("chat-authorizer")
            )
        )]
    );
    assert_eq!(
        policies(&c, "chat-default-fn").await,
        vec![(
            "write-own-logs".to_string(),
            statement(
                json!(["logs:CreateLogStream", "logs:PutLogEvents"]),
                logs("chat-default")
            )
        )]
    );
    for role in ["chat-sendmessage-fn", "chat-authorizer-fn"] {
        let r = c
            .iam
            .get_role()
            .role_name(role)
            .send()
            .await
            .unwrap()
            .role
            .unwrap();
        assert!(
            r.tags()
                .iter()
                .any(|t| t.key() == OWNER && t.value() == "chat"),
            "{role}"
        );
        assert_eq!(
            decode(r.assume_role_policy_document().unwrap())["Statement"][0]["Principal"]["Service"],
            "lambda.amazonaws.com"
        );
    }

    // API Gateway: the authorizer, $connect CUSTOM, the custom route's proxy.
    let auths = c
        .apigw
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    assert_eq!(auths.items().len(), 1);
    let auth = &auths.items()[0];
    assert_eq!(auth.name(), Some("chat-authorizer"));
    assert_eq!(auth.authorizer_type().unwrap().as_str(), "REQUEST");
    assert_eq!(auth.identity_source(), ["route.request.querystring.token"]);
    assert!(
        auth.authorizer_uri()
            .unwrap()
            .ends_with("function:chat-authorizer:1/invocations"),
        "the authorizer invokes its published version"
    );
    let routes = c.apigw.get_routes().api_id(&api_id).send().await.unwrap();
    let mut keys: Vec<&str> = routes
        .items()
        .iter()
        .map(|r| r.route_key().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["$connect", "$default", "$disconnect", "sendmessage"]);
    let connect = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("$connect"))
        .unwrap();
    assert_eq!(connect.authorization_type().unwrap().as_str(), "CUSTOM");
    assert_eq!(connect.authorizer_id(), auth.authorizer_id());
    let send = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("sendmessage"))
        .unwrap();
    let integ_id = send.target().unwrap().trim_start_matches("integrations/");
    let integ = c
        .apigw
        .get_integration()
        .api_id(&api_id)
        .integration_id(integ_id)
        .send()
        .await
        .unwrap();
    assert_eq!(integ.integration_type().unwrap().as_str(), "AWS_PROXY");
    assert!(
        integ
            .integration_uri()
            .unwrap()
            .contains("function:chat-sendmessage:1/"),
        "the route invokes its published version"
    );
    let rr = c
        .apigw
        .get_route_responses()
        .api_id(&api_id)
        .route_id(send.route_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rr.items()[0].route_response_key(), Some("$default"));

    // Permissions, on the published versions: the authorizer's is scoped to the
    // authorizer.
    let p = c
        .lambda
        .get_policy()
        .function_name("chat-authorizer")
        .qualifier("1")
        .send()
        .await
        .unwrap();
    let p: Value = serde_json::from_str(p.policy().unwrap()).unwrap();
    assert_eq!(
        p["Statement"][0]["Condition"]["ArnLike"]["AWS:SourceArn"],
        format!(
            "arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/authorizers/{}",
            auth.authorizer_id().unwrap()
        )
    );
    let p = c
        .lambda
        .get_policy()
        .function_name("chat-sendmessage")
        .qualifier("1")
        .send()
        .await
        .unwrap();
    let p: Value = serde_json::from_str(p.policy().unwrap()).unwrap();
    assert_eq!(
        p["Statement"][0]["Condition"]["ArnLike"]["AWS:SourceArn"],
        format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*")
    );

    // The stage's throttling and logs.
    let stage = c
        .apigw
        .get_stage()
        .api_id(&api_id)
        .stage_name("api")
        .send()
        .await
        .unwrap();
    let rs = stage.default_route_settings().unwrap();
    assert_eq!(rs.throttling_burst_limit(), Some(100));
    assert_eq!(rs.throttling_rate_limit(), Some(50.0));
    assert_eq!(rs.logging_level().unwrap().as_str(), "ERROR");
    let access = stage.access_log_settings().unwrap();
    assert_eq!(
        access.destination_arn(),
        Some(
            format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/apigateway/chat/api").as_str()
        )
    );
    let format: Value = serde_json::from_str(access.format().unwrap()).unwrap();
    for k in [
        "requestId",
        "ip",
        "requestTime",
        "eventType",
        "routeKey",
        "status",
        "connectionId",
        "integrationError",
        "authorizerError",
    ] {
        assert!(format.get(k).is_some(), "access log format lacks {k}");
    }
    let groups = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/apigateway/chat/api")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));
    // API Gateway makes the execution log group itself once the stage logs.
    assert_eq!(
        log_groups(&c).await,
        [
            "/aws/apigateway/chat/api".to_string(),
            "/aws/lambda/chat-authorizer".into(),
            "/aws/lambda/chat-default".into(),
            "/aws/lambda/chat-sendmessage".into(),
            format!("API-Gateway-Execution-Logs_{api_id}/api"),
        ]
    );

    // The account's CloudWatch role, created with consent and set.
    assert_eq!(
        account(&emu)["cloudwatchRoleArn"],
        format!("arn:aws:iam::{ACCOUNT}:role/wsconn-apigateway-cloudwatch")
    );
    assert!(
        role_names(&c)
            .await
            .contains(&"wsconn-apigateway-cloudwatch".to_string())
    );

    // Outputs name every function and the access log.
    let out = emu
        .wsconn(&with_config(&cfg, &["outputs", "--output", "json"]))
        .expect(0)
        .json();
    assert_eq!(
        out["functions"],
        json!({"$default": "chat-default", "authorizer": "chat-authorizer", "sendmessage": "chat-sendmessage"})
    );
    assert_eq!(out["access_log_group"], "/aws/apigateway/chat/api");
    assert_eq!(out["table_name"], "chat-connections");

    // A second deploy sends no mutating call, and diff finds nothing.
    emu.reset_calls();
    emu.wsconn(&with_config(&cfg, &["deploy", "--yes"]))
        .expect(0);
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    emu.wsconn(&with_config(&cfg, &["diff"])).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_setting_needs_consent() {
    let emu = Emulator::start();
    let dir = chat_copy();
    let cfg = config(dir.path());
    let r = emu.wsconn(&with_config(&cfg, &["deploy"])).expect(1);
    assert!(r.stderr.contains("account-wide"), "{}", r.stderr);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    // The plan says so, in text and JSON.
    let plan = emu
        .wsconn(&with_config(&cfg, &["diff", "--output", "json"]))
        .expect(2)
        .json();
    let ch = changes(&plan);
    assert!(
        ch.iter()
            .any(|(r, a, _)| r == "role wsconn-apigateway-cloudwatch" && a == "create"),
        "{ch:?}"
    );
    assert!(
        ch.iter().any(|(r, a, f)| r == "API Gateway account setting"
            && a == "update"
            && f == &["cloudwatch_role_arn"]),
        "{ch:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_on_every_new_setting_is_seen_and_repaired() {
    let emu = Emulator::start();
    let dir = chat_copy();
    let cfg = config(dir.path());
    emu.wsconn(&with_config(&cfg, &["deploy", "--yes"]))
        .expect(0);
    let c = emu.sdk().await;
    let api_id = c.api_of("chat").await;
    let routes = c.apigw.get_routes().api_id(&api_id).send().await.unwrap();
    let route = |k: &str| {
        routes
            .items()
            .iter()
            .find(|r| r.route_key() == Some(k))
            .unwrap()
            .clone()
    };
    // A route's target: sendmessage now points at $default's integration.
    c.apigw
        .update_route()
        .api_id(&api_id)
        .route_id(route("sendmessage").route_id().unwrap())
        .target(route("$default").target().unwrap())
        .send()
        .await
        .unwrap();
    // A function's memory and environment.
    c.lambda
        .update_function_configuration()
        .function_name("chat-sendmessage")
        .memory_size(1024)
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .variables("TABLE_NAME", "someone-elses")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A role's grants.
    c.iam
        .put_role_policy()
        .role_name("chat-sendmessage-fn")
        .policy_name("read-connections")
        .policy_document(statement(json!(["dynamodb:*"]), json!("*")).to_string())
        .send()
        .await
        .unwrap();
    // The authorizer's identity sources.
    let auth = c
        .apigw
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    c.apigw
        .update_authorizer()
        .api_id(&api_id)
        .authorizer_id(auth.items()[0].authorizer_id().unwrap())
        .identity_source("route.request.header.X-Other")
        .send()
        .await
        .unwrap();
    // The stage's throttling and access log.
    c.apigw
        .update_stage()
        .api_id(&api_id)
        .stage_name("api")
        .default_route_settings(
            aws_sdk_apigatewayv2::types::RouteSettings::builder()
                .throttling_burst_limit(5000)
                .throttling_rate_limit(10000.0)
                .logging_level(aws_sdk_apigatewayv2::types::LoggingLevel::Error)
                .build(),
        )
        .access_log_settings(
            aws_sdk_apigatewayv2::types::AccessLogSettings::builder()
                .destination_arn(format!(
                    "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:elsewhere"
                ))
                .format("$context.requestId")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let plan = emu
        .wsconn(&with_config(&cfg, &["diff", "--output", "json"]))
        .expect(2)
        .json();
    let ch = changes(&plan);
    let has = |resource: &str, field: &str| {
        ch.iter()
            .any(|(r, _, f)| r.starts_with(resource) && f.iter().any(|x| x == field))
    };
    assert!(has("route sendmessage", "target"), "{ch:?}");
    assert!(has("function chat-sendmessage", "memory_mb"), "{ch:?}");
    assert!(has("function chat-sendmessage", "environment"), "{ch:?}");
    assert!(
        has(
            "policy read-connections of role chat-sendmessage-fn",
            "document"
        ),
        "{ch:?}"
    );
    assert!(
        has("authorizer chat-authorizer", "identity_sources"),
        "{ch:?}"
    );
    assert!(has("stage api", "throttling_burst_limit"), "{ch:?}");
    assert!(has("stage api", "throttling_rate_limit"), "{ch:?}");
    assert!(has("stage api", "access_log_destination"), "{ch:?}");
    assert!(has("stage api", "access_log_format"), "{ch:?}");
    let text = emu.wsconn(&with_config(&cfg, &["diff"])).expect(2);
    assert!(text.stdout.contains("identity_sources"), "{}", text.stdout);

    emu.wsconn(&with_config(&cfg, &["deploy", "--yes"]))
        .expect(0);
    emu.wsconn(&with_config(&cfg, &["diff"])).expect(0);
    let f = c
        .lambda
        .get_function_configuration()
        .function_name("chat-sendmessage")
        .send()
        .await
        .unwrap();
    assert_eq!(f.memory_size(), Some(256));
    assert_eq!(
        f.environment().unwrap().variables().unwrap()["TABLE_NAME"],
        "chat-connections"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_route_and_the_authorizer_converges() {
    let emu = Emulator::start();
    let dir = chat_copy();
    let cfg = config(dir.path());
    emu.wsconn(&with_config(&cfg, &["deploy", "--yes"]))
        .expect(0);
    let c = emu.sdk().await;
    let api_id = c.api_of("chat").await;
    let toml = std::fs::read_to_string(dir.path().join("wsconn.toml")).unwrap();
    let cut = |text: &str, section: &str| -> String {
        // Drops `section` and its keys (up to the next section).
        let mut out = String::new();
        let mut skipping = false;
        for line in text.lines() {
            if line.starts_with('[') {
                skipping = line.starts_with(section);
            }
            if !skipping {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    };
    let edited = cut(&cut(&toml, "[routes.sendmessage]"), "[authorizer]");
    std::fs::write(dir.path().join("wsconn.toml"), edited).unwrap();

    // Deletes need consent.
    let refused = emu.wsconn(&with_config(&cfg, &["deploy"])).expect(1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let plan = emu
        .wsconn(&with_config(&cfg, &["diff", "--output", "json"]))
        .expect(2)
        .json();
    let ch = changes(&plan);
    for want in [
        "function chat-sendmessage",
        "role chat-sendmessage-fn",
        "log group /aws/lambda/chat-sendmessage",
        "function chat-authorizer",
        "role chat-authorizer-fn",
        "log group /aws/lambda/chat-authorizer",
        "authorizer chat-authorizer",
        "route sendmessage",
    ] {
        assert!(
            ch.iter()
                .any(|(r, a, _)| r.starts_with(want) && a == "delete"),
            "{want} not deleted: {ch:?}"
        );
    }
    emu.wsconn(&with_config(&cfg, &["deploy", "--yes"]))
        .expect(0);
    emu.wsconn(&with_config(&cfg, &["diff"])).expect(0);

    assert_eq!(function_names(&c).await, ["chat-default"]);
    let roles = role_names(&c).await;
    assert!(
        !roles
            .iter()
            .any(|r| r == "chat-sendmessage-fn" || r == "chat-authorizer-fn"),
        "{roles:?}"
    );
    let groups = log_groups(&c).await;
    assert!(
        !groups
            .iter()
            .any(|g| g.contains("chat-sendmessage") || g.contains("chat-authorizer")),
        "{groups:?}"
    );
    let routes = c.apigw.get_routes().api_id(&api_id).send().await.unwrap();
    let mut keys: Vec<&str> = routes
        .items()
        .iter()
        .map(|r| r.route_key().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["$connect", "$default", "$disconnect"]);
    let connect = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("$connect"))
        .unwrap();
    assert_eq!(connect.authorization_type().unwrap().as_str(), "NONE");
    let auths = c
        .apigw
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    assert!(auths.items().is_empty());
    let integrations = c
        .apigw
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    assert_eq!(integrations.items().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_leaves_only_the_accounts_cloudwatch_role() {
    let emu = Emulator::start();
    let dir = chat_copy();
    let cfg = config(dir.path());
    emu.wsconn(&with_config(&cfg, &["deploy", "--yes"]))
        .expect(0);
    let c = emu.sdk().await;
    let roles_before = role_names(&c).await;
    emu.wsconn(&with_config(&cfg, &["destroy", "--yes"]))
        .expect(0);
    common::assert_stack_gone(&c, "chat").await;
    assert_eq!(function_names(&c).await, Vec::<String>::new());
    assert_eq!(log_groups(&c).await, Vec::<String>::new());
    assert_eq!(
        role_names(&c).await,
        ["wsconn-apigateway-cloudwatch"],
        "before: {roles_before:?}"
    );
    assert_eq!(
        account(&emu)["cloudwatchRoleArn"],
        format!("arn:aws:iam::{ACCOUNT}:role/wsconn-apigateway-cloudwatch")
    );
}

/// Writes `toml` into a fresh copy of the example and runs `deploy`.
fn deploy_with(emu: &Emulator, edit: impl Fn(&Path)) -> common::Run {
    let dir = chat_copy();
    edit(dir.path());
    let cfg = config(dir.path());
    emu.wsconn(&with_config(&cfg, &["deploy", "--yes"]))
}

fn append(dir: &Path, text: &str) {
    let p: PathBuf = dir.join("wsconn.toml");
    let mut t = std::fs::read_to_string(&p).unwrap();
    t.push_str(text);
    std::fs::write(p, t).unwrap();
}

#[test]
fn bad_applications_are_refused_before_any_aws_call() {
    let emu = Emulator::start();
    type Edit = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "a missing handler directory",
            Box::new(|d: &Path| append(d, "\n[routes.gone]\nhandler = \"handlers/gone\"\n")),
            "wsconn.toml: routes.gone.handler = \"handlers/gone\": no such directory",
        ),
        (
            "a bad route key",
            Box::new(|d: &Path| {
                append(
                    d,
                    "\n[routes.\"send message\"]\nhandler = \"handlers/sendmessage\"\n",
                )
            }),
            "a custom route key is 1 or more of [A-Za-z0-9_-]",
        ),
        (
            "$connect under routes",
            Box::new(|d: &Path| {
                append(
                    d,
                    "\n[routes.\"$connect\"]\nhandler = \"handlers/sendmessage\"\n",
                )
            }),
            "is the pattern's DynamoDB integration",
        ),
        (
            "a reserved variable",
            Box::new(|d: &Path| {
                let p = d.join("wsconn.toml");
                let t = std::fs::read_to_string(&p).unwrap().replace(
                    "handler = \"handlers/sendmessage\"",
                    "handler = \"handlers/sendmessage\"\nenvironment = { AWS_REGION = \"x\" }",
                );
                std::fs::write(p, t).unwrap();
            }),
            "routes.sendmessage.environment.AWS_REGION = (a variable): AWS_REGION is reserved by Lambda",
        ),
        (
            "a wired variable",
            Box::new(|d: &Path| {
                let p = d.join("wsconn.toml");
                let t = std::fs::read_to_string(&p).unwrap().replace(
                    "handler = \"handlers/sendmessage\"",
                    "handler = \"handlers/sendmessage\"\nenvironment = { TABLE_NAME = \"x\" }",
                );
                std::fs::write(p, t).unwrap();
            }),
            "TABLE_NAME is set by wsconn for every handler",
        ),
        (
            "an oversized package",
            Box::new(|d: &Path| {
                let f = std::fs::File::create(d.join("handlers/sendmessage/data.bin")).unwrap();
                f.set_len(51 * 1024 * 1024).unwrap();
            }),
            "over Lambda's 50 MB limit",
        ),
        (
            "dependencies without node_modules",
            Box::new(|d: &Path| {
                std::fs::write(
                    d.join("handlers/sendmessage/package.json"),
                    r#"{"dependencies": {"ulid": "^2"}}"#,
                )
                .unwrap();
            }),
            "run `npm install` in",
        ),
    ];
    for (what, edit, want) in cases {
        emu.reset_calls();
        let r = deploy_with(&emu, edit).expect(1);
        assert!(r.stderr.contains(want), "{what}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim().lines().count(),
            1,
            "{what}: one line: {}",
            r.stderr
        );
        assert!(
            emu.calls().is_empty(),
            "{what}: AWS was called: {:?}",
            emu.calls()
        );
    }
}

#[test]
fn init_writes_applications_that_deploy_and_never_overwrites_in_silence() {
    let emu = Emulator::start();
    let root = tempfile::tempdir().unwrap();
    for (example, dir, functions) in [
        ("echo", "hello", vec!["function hello-default"]),
        (
            "chat",
            "mychat",
            vec![
                "function mychat-authorizer",
                "function mychat-default",
                "function mychat-sendmessage",
            ],
        ),
    ] {
        let r = emu
            .wsconn_in(Some(root.path()), &["init", dir, "--example", example])
            .expect(0);
        assert!(r.stdout.contains(&format!("cd {dir}")), "{}", r.stdout);
        assert!(r.stdout.contains("wsconn local") && r.stdout.contains("wsconn deploy"));
        assert_eq!(
            r.stdout.contains("npm install"),
            example == "chat",
            "{}",
            r.stdout
        );
        let cfg = root.path().join(dir).join("wsconn.toml");
        let cfg = cfg.display().to_string();
        let plan = emu
            .wsconn(&["--config", &cfg, "diff", "--output", "json"])
            .expect(2)
            .json();
        let mut made: Vec<String> = changes(&plan)
            .into_iter()
            .filter(|(r, a, _)| r.starts_with("function ") && a == "create")
            .map(|(r, _, _)| r)
            .collect();
        made.sort();
        assert_eq!(made, functions, "{example}");

        // A second init refuses, lists every file that exists, and writes nothing.
        let toml = root.path().join(dir).join("wsconn.toml");
        std::fs::write(&toml, "# mine\n").unwrap();
        let r = emu
            .wsconn_in(Some(root.path()), &["init", dir, "--example", example])
            .expect(1);
        assert!(
            r.stderr.contains("--force") && r.stderr.contains("wsconn.toml"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("index.mjs"),
            "every existing file is listed: {}",
            r.stderr
        );
        assert_eq!(std::fs::read_to_string(&toml).unwrap(), "# mine\n");
        emu.wsconn_in(
            Some(root.path()),
            &["init", dir, "--example", example, "--force"],
        )
        .expect(0);
        assert!(
            std::fs::read_to_string(&toml)
                .unwrap()
                .contains(&format!("stack = \"{dir}\""))
        );
    }
    assert!(emu.mutating_calls().is_empty());
}

/// The bigger stack keeps the engine's guarantees: a lost answer to each create the
/// application adds is read back, never sent twice into a duplicate; runs killed at
/// spread-out moments converge on the next run; two concurrent deploys both succeed.
#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_kills_and_concurrent_runs_converge_for_the_application() {
    let emu = Emulator::start_with(&["--latency-ms", "10", "--strict"]);
    let dir = chat_copy();
    let cfg = config(dir.path());
    let c = emu.sdk().await;
    for (i, op) in [
        "CreateAuthorizer",
        "CreateRoute",
        "CreateFunction",
        "CreateIntegration",
    ]
    .iter()
    .enumerate()
    {
        let stack = format!("lost{i}");
        emu.reset_calls();
        emu.inject(json!([{"operation": op, "lost": true, "status": 500,
                           "code": "InternalFailure", "message": "We encountered an internal error."}]));
        let out = emu.wsconn(&with_config(&cfg, &["--stack", &stack, "deploy", "--yes"]));
        assert_eq!(out.code, 0, "{op}: {}", out.stderr);
        let lost = emu
            .calls()
            .iter()
            .filter(|call| call.operation == *op && call.fault_kind.as_deref() == Some("lost"))
            .count();
        assert_eq!(lost, 1, "{op}: the lost answer was injected once");
        let api = c.api_of(&stack).await;
        let auths = c.apigw.get_authorizers().api_id(&api).send().await.unwrap();
        assert_eq!(auths.items().len(), 1, "{op}: one authorizer");
        let routes = c.apigw.get_routes().api_id(&api).send().await.unwrap();
        assert_eq!(routes.items().len(), 4, "{op}: one route per key");
        emu.reset_calls();
        emu.wsconn(&with_config(&cfg, &["--stack", &stack, "deploy"]))
            .expect(0);
        assert_eq!(
            emu.mutating_calls(),
            Vec::<String>::new(),
            "{op}: converged"
        );
    }

    // Kills at spread-out moments of a fresh deploy, then a rerun.
    let t0 = std::time::Instant::now();
    emu.wsconn(&with_config(&cfg, &["--stack", "probe", "deploy", "--yes"]))
        .expect(0);
    let deploy_time = t0.elapsed();
    for (i, at) in [0.15, 0.35, 0.55, 0.75, 0.9].iter().enumerate() {
        let stack = format!("kill{i}");
        let args = with_config(&cfg, &["--stack", &stack, "deploy", "--yes"]);
        let mut child = emu.spawn(&args);
        std::thread::sleep(deploy_time.mul_f64(*at));
        let _ = child.kill();
        let _ = child.wait();
        let rerun = emu.wsconn(&args);
        assert_eq!(rerun.code, 0, "kill {i}: {}", rerun.stderr);
        assert_eq!(c.apis_of(&stack).await.len(), 1, "kill {i}: one API");
        emu.reset_calls();
        emu.wsconn(&with_config(&cfg, &["--stack", &stack, "deploy"]))
            .expect(0);
        assert_eq!(
            emu.mutating_calls(),
            Vec::<String>::new(),
            "kill {i}: converged"
        );
    }

    // Two deploys of one new stack at once: one waits for the other's lease.
    let args = with_config(&cfg, &["--stack", "twice", "deploy", "--yes"]);
    let a = emu.spawn(&args);
    let b = emu.spawn(&args);
    for run in [a, b] {
        let r = common::finish(run, std::time::Duration::from_secs(120));
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(c.apis_of("twice").await.len(), 1);
    emu.reset_calls();
    emu.wsconn(&with_config(&cfg, &["--stack", "twice", "deploy"]))
        .expect(0);
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
}
