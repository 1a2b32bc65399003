//! End-to-end tests: the real `wsconn` binary against a fresh emulator each.

mod common;

use common::{ACCOUNT, Clients, Emulator, REGION, assets_copy, changes};
use serde_json::{Value, json};

const OWNER: &str = "wsconn:stack";

/// Reads the whole stack back with the SDK and checks every field wsconn manages.
async fn assert_stack_complete(c: &Clients, stack: &str, stage: &str) -> String {
    let table = format!("{stack}-connections");
    let t = c.ddb.describe_table().table_name(&table).send().await.unwrap().table.unwrap();
    assert_eq!(t.key_schema()[0].attribute_name(), "connectionid");
    assert_eq!(t.key_schema()[0].key_type().as_str(), "HASH");
    assert_eq!(t.attribute_definitions()[0].attribute_type().as_str(), "S");
    assert_eq!(t.billing_mode_summary().unwrap().billing_mode().unwrap().as_str(), "PAY_PER_REQUEST");
    let ttl = c.ddb.describe_time_to_live().table_name(&table).send().await.unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.time_to_live_status().unwrap().as_str(), "ENABLED");
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    let tags = c.ddb.list_tags_of_resource().resource_arn(t.table_arn().unwrap()).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == OWNER && t.value() == stack));

    // Roles: trust, exactly one inline policy, no managed policies, tagged.
    for (role, service, policy, actions, resource) in [
        (format!("{stack}-apigw-dynamodb"), "apigateway.amazonaws.com", "connections-table-write",
         json!(["dynamodb:PutItem", "dynamodb:DeleteItem"]), json!(t.table_arn().unwrap())),
        (format!("{stack}-default-fn"), "lambda.amazonaws.com", "write-own-logs",
         json!(["logs:CreateLogStream", "logs:PutLogEvents"]),
         json!(format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{stack}-default:*"))),
    ] {
        let r = c.iam.get_role().role_name(&role).send().await.unwrap().role.unwrap();
        let trust: Value = serde_json::from_str(&urlencoding::decode(r.assume_role_policy_document().unwrap()).unwrap()).unwrap();
        assert_eq!(trust["Statement"][0]["Principal"]["Service"], service, "{role}");
        let names = c.iam.list_role_policies().role_name(&role).send().await.unwrap();
        assert_eq!(names.policy_names(), [policy.to_string()], "{role}");
        let doc = c.iam.get_role_policy().role_name(&role).policy_name(policy).send().await.unwrap();
        let doc: Value = serde_json::from_str(&urlencoding::decode(doc.policy_document()).unwrap()).unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(doc["Statement"][0]["Action"], actions, "{role}");
        assert_eq!(doc["Statement"][0]["Resource"], resource, "{role}");
        let managed = c.iam.list_attached_role_policies().role_name(&role).send().await.unwrap();
        assert!(managed.attached_policies().is_empty(), "{role}");
        let tags = c.iam.list_role_tags().role_name(&role).send().await.unwrap();
        assert!(tags.tags().iter().any(|t| t.key() == OWNER && t.value() == stack), "{role}");
    }

    let group = format!("/aws/lambda/{stack}-default");
    let lg = c.logs.describe_log_groups().log_group_name_prefix(&group).send().await.unwrap();
    let lg = lg.log_groups().iter().find(|g| g.log_group_name() == Some(group.as_str())).expect("log group");
    assert_eq!(lg.retention_in_days(), Some(14));

    let function = format!("{stack}-default");
    let f = c.lambda.get_function().function_name(&function).send().await.unwrap();
    let conf = f.configuration().unwrap();
    assert_eq!(conf.runtime().unwrap().as_str(), "nodejs24.x");
    assert_eq!(conf.handler(), Some("index.handler"));
    assert_eq!(conf.role(), Some(format!("arn:aws:iam::{ACCOUNT}:role/{stack}-default-fn").as_str()));
    assert!(!conf.code_sha256().unwrap_or_default().is_empty());
    assert_eq!(f.tags().unwrap().get(OWNER).map(String::as_str), Some(stack));

    // The API and its children.
    let api_id = c.api_of(stack).await;
    let api = c.apigw.get_api().api_id(&api_id).send().await.unwrap();
    assert_eq!(api.protocol_type().unwrap().as_str(), "WEBSOCKET");
    assert_eq!(api.route_selection_expression(), Some("$request.body.action"));
    let integrations = c.apigw.get_integrations().api_id(&api_id).send().await.unwrap();
    let integrations = integrations.items();
    let routes = c.apigw.get_routes().api_id(&api_id).send().await.unwrap();
    let routes = routes.items();
    let mut keys: Vec<_> = routes.iter().map(|r| r.route_key().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["$connect", "$default", "$disconnect"]);
    let mut targeted = Vec::new();
    for r in routes {
        let target = r.target().unwrap().strip_prefix("integrations/").unwrap();
        let i = integrations.iter().find(|i| i.integration_id() == Some(target))
            .unwrap_or_else(|| panic!("route {} targets a missing integration", r.route_key().unwrap()));
        targeted.push(target.to_string());
        let rr = c.apigw.get_route_responses().api_id(&api_id).route_id(r.route_id().unwrap()).send().await.unwrap();
        assert_eq!(rr.items().iter().map(|x| x.route_response_key().unwrap()).collect::<Vec<_>>(), ["$default"]);
        assert_eq!(r.route_response_selection_expression(), Some("$default"));
        let key = r.route_key().unwrap();
        match key {
            "$default" => {
                assert_eq!(i.integration_type().unwrap().as_str(), "AWS_PROXY");
                assert_eq!(i.integration_uri().unwrap(), format!(
                    "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/arn:aws:lambda:{REGION}:{ACCOUNT}:function:{stack}-default/invocations"));
            }
            _ => {
                let action = if key == "$connect" { "PutItem" } else { "DeleteItem" };
                assert_eq!(i.integration_type().unwrap().as_str(), "AWS");
                assert_eq!(i.integration_method(), Some("POST"));
                assert_eq!(i.integration_uri().unwrap(), format!("arn:aws:apigateway:{REGION}:dynamodb:action/{action}"));
                assert_eq!(i.credentials_arn().unwrap(), format!("arn:aws:iam::{ACCOUNT}:role/{stack}-apigw-dynamodb"));
                assert_eq!(i.template_selection_expression(), Some("\\$default"));
                let template = &i.request_templates().unwrap()["$default"];
                assert!(template.contains(&format!("\"TableName\": \"{stack}-connections\"")), "{template}");
                assert!(!template.contains("@@"));
                let ir = c.apigw.get_integration_responses().api_id(&api_id).integration_id(target).send().await.unwrap();
                assert_eq!(ir.items().iter().map(|x| x.integration_response_key().unwrap()).collect::<Vec<_>>(), ["/200/"]);
            }
        }
    }
    assert_eq!(integrations.len(), 3, "no orphan integrations");
    targeted.sort();
    targeted.dedup();
    assert_eq!(targeted.len(), 3, "each route has its own integration");

    let st = c.apigw.get_stage().api_id(&api_id).stage_name(stage).send().await.unwrap();
    let deployment = st.deployment_id().expect("stage points at a deployment");
    c.apigw.get_deployment().api_id(&api_id).deployment_id(deployment).send().await.expect("the stage's deployment exists");

    let policy = c.lambda.get_policy().function_name(&function).send().await.unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let st = &policy["Statement"][0];
    assert_eq!(st["Condition"]["ArnLike"]["AWS:SourceArn"], format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*"));
    assert_eq!(st["Action"], "lambda:InvokeFunction");
    api_id
}

async fn assert_stack_gone(c: &Clients, stack: &str) {
    let table = format!("{stack}-connections");
    assert!(c.ddb.describe_table().table_name(&table).send().await.is_err(), "table left");
    for role in [format!("{stack}-apigw-dynamodb"), format!("{stack}-default-fn")] {
        assert!(c.iam.get_role().role_name(&role).send().await.is_err(), "{role} left");
    }
    assert!(c.lambda.get_function().function_name(format!("{stack}-default")).send().await.is_err(), "function left");
    let group = format!("/aws/lambda/{stack}-default");
    let lg = c.logs.describe_log_groups().log_group_name_prefix(&group).send().await.unwrap();
    assert!(lg.log_groups().iter().all(|g| g.log_group_name() != Some(group.as_str())), "log group left");
    assert!(c.apis_of(stack).await.is_empty(), "API left");
}

#[tokio::test]
async fn deploy_reads_back_complete_is_idempotent_and_destroys_cleanly() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    emu.wsconn(&["diff"]).expect(2);
    let out = emu.wsconn(&["deploy", "--yes"]).expect(0);
    assert!(out.stdout.contains("Plan: 15 to create"), "{}", out.stdout);
    let api_id = assert_stack_complete(&c, "wsconn", "api").await;
    assert!(out.stdout.contains(&format!("wss://{api_id}.execute-api.{REGION}.amazonaws.com/api")));

    // Nothing changed, nothing sent.
    emu.reset_calls();
    let again = emu.wsconn(&["deploy"]).expect(0);
    assert!(again.stdout.contains("No changes. The stack matches its definition."), "{}", again.stdout);
    assert!(!emu.calls().is_empty(), "the recorder saw the reads");
    assert_eq!(emu.mutating_calls(), Vec::<String>::new(), "second deploy must not mutate");
    emu.wsconn(&["diff"]).expect(0);
    let diff = emu.wsconn(&["diff", "--output", "json"]).expect(0).json();
    assert_eq!(diff, json!({"changes": [], "summary": {"create": 0, "update": 0, "replace": 0, "delete": 0}}));

    let outputs = emu.wsconn(&["outputs", "--output", "json"]).expect(0).json();
    assert_eq!(outputs, json!({
        "stack": "wsconn", "region": REGION,
        "table_name": "wsconn-connections",
        "table_arn": format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/wsconn-connections"),
        "function_name": "wsconn-default",
        "function_arn": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:wsconn-default"),
        "api_id": api_id, "stage": "api",
        "websocket_url": format!("wss://{api_id}.execute-api.{REGION}.amazonaws.com/api"),
    }));

    let refused = emu.wsconn(&["destroy"]).expect(1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_stack_complete(&c, "wsconn", "api").await;
    emu.wsconn(&["destroy", "--yes"]).expect(0);
    assert_stack_gone(&c, "wsconn").await;
    let second = emu.wsconn(&["destroy", "--yes"]).expect(0);
    assert!(second.stdout.contains("Nothing to destroy"), "{}", second.stdout);
    emu.wsconn(&["diff"]).expect(2);
    let outputs = emu.wsconn(&["outputs", "--output", "json"]).expect(0).json();
    assert_eq!(outputs["api_id"], Value::Null);
    assert_eq!(outputs["websocket_url"], Value::Null);
    assert_eq!(outputs["table_name"], Value::Null);
}

#[tokio::test]
async fn foreign_resources_with_colliding_names_are_never_touched() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    // Someone else's table and role carry the names stack "shared" would use.
    c.ddb.create_table().table_name("shared-connections")
        .attribute_definitions(aws_sdk_dynamodb::types::AttributeDefinition::builder().attribute_name("pk").attribute_type("S".into()).build().unwrap())
        .key_schema(aws_sdk_dynamodb::types::KeySchemaElement::builder().attribute_name("pk").key_type("HASH".into()).build().unwrap())
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send().await.unwrap();
    emu.reset_calls();
    let out = emu.wsconn(&["--stack", "shared", "deploy", "--yes"]).expect(1);
    assert!(out.stderr.contains("table shared-connections") && out.stderr.contains("not owned"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    let out = emu.wsconn(&["--stack", "shared", "destroy", "--yes"]).expect(1);
    assert!(out.stderr.contains("table shared-connections"), "{}", out.stderr);
    let t = c.ddb.describe_table().table_name("shared-connections").send().await.unwrap().table.unwrap();
    assert_eq!(t.key_schema()[0].attribute_name(), "pk", "foreign table untouched");

    // A role tagged for another stack is just as foreign.
    c.ddb.delete_table().table_name("shared-connections").send().await.unwrap();
    c.iam.create_role().role_name("shared-default-fn").assume_role_policy_document("{}")
        .tags(aws_sdk_iam::types::Tag::builder().key(OWNER).value("other").build().unwrap())
        .send().await.unwrap();
    emu.reset_calls();
    let out = emu.wsconn(&["--stack", "shared", "deploy", "--yes"]).expect(1);
    assert!(out.stderr.contains("role shared-default-fn") && out.stderr.contains("wsconn:stack=other"), "{}", out.stderr);
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    assert!(c.iam.get_role().role_name("shared-default-fn").send().await.is_ok());
}

#[tokio::test]
async fn template_change_makes_exactly_one_deployment() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    let assets = assets_copy();
    let dir = assets.path().to_str().unwrap().to_string();
    emu.wsconn(&["deploy", "--yes", "--assets-dir", &dir]).expect(0);
    let api_id = c.api_of("wsconn").await;
    let before = c.apigw.get_stage().api_id(&api_id).stage_name("api").send().await.unwrap().deployment_id().unwrap().to_string();

    let path = assets.path().join("mapping-templates/connect.vtl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"Item\": {", "\"Item\": {\n    \"marker\": {\"S\": \"v2\"},", 1)).unwrap();

    let plan = emu.wsconn(&["diff", "--output", "json", "--assets-dir", &dir]).expect(2).json();
    let ch = changes(&plan);
    assert!(ch.contains(&("integration $connect".to_string() + &format!(" ({})", integration_id(&c, &api_id, "$connect").await), "update".into(), vec!["request_templates.$default".into()])), "{ch:?}");
    assert!(ch.iter().any(|(r, a, _)| r == "deployment" && a == "create"), "{ch:?}");

    emu.reset_calls();
    emu.wsconn(&["deploy", "--yes", "--assets-dir", &dir]).expect(0);
    assert_eq!(emu.count("CreateDeployment"), 1);
    let after = c.apigw.get_stage().api_id(&api_id).stage_name("api").send().await.unwrap().deployment_id().unwrap().to_string();
    assert_ne!(before, after, "the stage moved to the new deployment");
    let deployments = c.apigw.get_deployments().api_id(&api_id).send().await.unwrap();
    let ids: Vec<_> = deployments.items().iter().map(|d| d.deployment_id().unwrap()).collect();
    assert_eq!(ids, [after.as_str()], "old deployments are cleaned up");
    let i = c.apigw.get_integration().api_id(&api_id).integration_id(integration_id(&c, &api_id, "$connect").await).send().await.unwrap();
    assert!(i.request_templates().unwrap()["$default"].contains("\"marker\""));

    emu.reset_calls();
    emu.wsconn(&["deploy", "--yes", "--assets-dir", &dir]).expect(0);
    assert_eq!(emu.count("CreateDeployment"), 0, "no change, no deployment");
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    emu.wsconn(&["diff", "--assets-dir", &dir]).expect(0);
    // Back to the built-in template: one more deployment.
    emu.reset_calls();
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    assert_eq!(emu.count("CreateDeployment"), 1);
}

async fn integration_id(c: &Clients, api_id: &str, key: &str) -> String {
    let routes = c.apigw.get_routes().api_id(api_id).send().await.unwrap();
    let r = routes.items().iter().find(|r| r.route_key() == Some(key)).unwrap();
    r.target().unwrap().strip_prefix("integrations/").unwrap().to_string()
}

#[tokio::test]
async fn two_stacks_side_by_side_are_independent() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    emu.wsconn(&["--stack", "alpha", "deploy", "--yes"]).expect(0);
    emu.wsconn(&["--stack", "beta", "deploy", "--yes", "--stage", "prod"]).expect(0);
    emu.wsconn(&["--stack", "alpha", "diff"]).expect(0);
    emu.wsconn(&["--stack", "beta", "diff", "--stage", "prod"]).expect(0);
    emu.wsconn(&["--stack", "alpha", "destroy", "--yes"]).expect(0);
    assert_stack_gone(&c, "alpha").await;
    emu.wsconn(&["--stack", "beta", "diff", "--stage", "prod"]).expect(0);
    assert_stack_complete(&c, "beta", "prod").await;
}

#[tokio::test]
async fn interrupted_deploy_converges_without_a_duplicate_api() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    // As if a deploy was killed right after creating the API: roles, table and API
    // exist, routes, integrations and stage do not.
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    let api_id = c.api_of("wsconn").await;
    let routes = c.apigw.get_routes().api_id(&api_id).send().await.unwrap();
    for r in routes.items() {
        c.apigw.delete_route().api_id(&api_id).route_id(r.route_id().unwrap()).send().await.unwrap();
    }
    for i in c.apigw.get_integrations().api_id(&api_id).send().await.unwrap().items() {
        c.apigw.delete_integration().api_id(&api_id).integration_id(i.integration_id().unwrap()).send().await.unwrap();
    }
    c.apigw.delete_stage().api_id(&api_id).stage_name("api").send().await.unwrap();
    c.lambda.remove_permission().function_name("wsconn-default").statement_id("wsconn-apigateway-invoke").send().await.unwrap();
    emu.wsconn(&["diff"]).expect(2);
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    assert_eq!(c.api_of("wsconn").await, api_id, "the same API, no duplicate");
    assert_stack_complete(&c, "wsconn", "api").await;
    emu.wsconn(&["diff"]).expect(0);

    // And a run killed before anything of the API half existed: only the API is there.
    emu.wsconn(&["destroy", "--yes"]).expect(0);
    c.apigw.create_api().name("wsconn").protocol_type("WEBSOCKET".into()).route_selection_expression("$request.body.action")
        .tags(OWNER, "wsconn").send().await.unwrap();
    let lone = c.api_of("wsconn").await;
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    assert_eq!(c.api_of("wsconn").await, lone);
    assert_stack_complete(&c, "wsconn", "api").await;
}

#[tokio::test]
async fn two_apis_tagged_for_one_stack_is_an_error() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    for _ in 0..2 {
        c.apigw.create_api().name("dup").protocol_type("WEBSOCKET".into()).route_selection_expression("$request.body.action")
            .tags(OWNER, "dup").send().await.unwrap();
    }
    emu.reset_calls();
    let out = emu.wsconn(&["--stack", "dup", "deploy", "--yes"]).expect(1);
    assert!(out.stderr.contains("2 APIs carry the tag wsconn:stack=dup"), "{}", out.stderr);
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    emu.wsconn(&["--stack", "dup", "diff"]).expect(1);
}
