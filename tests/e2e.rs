//! End-to-end tests: the real `wsconn` binary against a fresh emulator each.

mod common;

use common::{
    ACCOUNT, Clients, Emulator, OWNER, REGION, assert_stack_complete, assert_stack_gone,
    assets_copy, changes,
};
use serde_json::{Value, json};

#[tokio::test]
async fn deploy_reads_back_complete_is_idempotent_and_destroys_cleanly() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    emu.wsconn(&["diff"]).expect(2);
    let out = emu.wsconn(&["deploy", "--yes"]).expect(0);
    assert!(out.stdout.contains("Plan: 23 to create"), "{}", out.stdout);
    let api_id = assert_stack_complete(&c, "wsconn", "api").await;
    assert!(out.stdout.contains(&format!(
        "wss://{api_id}.execute-api.{REGION}.amazonaws.com/api"
    )));

    // Nothing changed, nothing sent.
    emu.reset_calls();
    let again = emu.wsconn(&["deploy"]).expect(0);
    assert!(
        again
            .stdout
            .contains("No changes. The stack matches its definition."),
        "{}",
        again.stdout
    );
    assert!(!emu.calls().is_empty(), "the recorder saw the reads");
    assert_eq!(
        emu.mutating_calls(),
        Vec::<String>::new(),
        "second deploy must not mutate"
    );
    emu.wsconn(&["diff"]).expect(0);
    let diff = emu.wsconn(&["diff", "--output", "json"]).expect(0).json();
    assert_eq!(
        diff,
        json!({"changes": [], "summary": {"create": 0, "update": 0, "replace": 0, "delete": 0}})
    );

    let outputs = emu
        .wsconn(&["outputs", "--output", "json"])
        .expect(0)
        .json();
    let release = c
        .apigw
        .get_stage()
        .api_id(&api_id)
        .stage_name("api")
        .send()
        .await
        .unwrap()
        .deployment_id()
        .unwrap()
        .to_string();
    assert_eq!(
        outputs,
        json!({
            "stack": "wsconn", "region": REGION,
            "table_name": "wsconn-connections",
            "table_arn": format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/wsconn-connections"),
            "function_name": "wsconn-default",
            "function_arn": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:wsconn-default"),
            "api_id": api_id, "stage": "api",
            "websocket_url": format!("wss://{api_id}.execute-api.{REGION}.amazonaws.com/api"),
            "functions": {"$default": "wsconn-default"},
            "access_log_group": null,
            "release": release,
            "versions": {"wsconn-default": "1"},
            "execute_api_url": format!("wss://{api_id}.execute-api.{REGION}.amazonaws.com/api"),
            "domain": null,
        })
    );

    let refused = emu.wsconn(&["destroy"]).expect(1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_stack_complete(&c, "wsconn", "api").await;
    emu.wsconn(&["destroy", "--yes"]).expect(0);
    assert_stack_gone(&c, "wsconn").await;
    let second = emu.wsconn(&["destroy", "--yes"]).expect(0);
    assert!(
        second.stdout.contains("Nothing to destroy"),
        "{}",
        second.stdout
    );
    emu.wsconn(&["diff"]).expect(2);
    let outputs = emu
        .wsconn(&["outputs", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(outputs["api_id"], Value::Null);
    assert_eq!(outputs["websocket_url"], Value::Null);
    assert_eq!(outputs["table_name"], Value::Null);
}

#[tokio::test]
async fn foreign_resources_with_colliding_names_are_never_touched() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    // Someone else's table and role carry the names stack "shared" would use.
    c.ddb
        .create_table()
        .table_name("shared-connections")
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type("S".into())
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type("HASH".into())
                .build()
                .unwrap(),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    emu.reset_calls();
    let out = emu
        .wsconn(&["--stack", "shared", "deploy", "--yes"])
        .expect(1);
    assert!(
        out.stderr.contains("table shared-connections") && out.stderr.contains("not owned"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    let out = emu
        .wsconn(&["--stack", "shared", "destroy", "--yes"])
        .expect(1);
    assert!(
        out.stderr.contains("table shared-connections"),
        "{}",
        out.stderr
    );
    let t = c
        .ddb
        .describe_table()
        .table_name("shared-connections")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(
        t.key_schema()[0].attribute_name(),
        "pk",
        "foreign table untouched"
    );

    // A role tagged for another stack is just as foreign.
    c.ddb
        .delete_table()
        .table_name("shared-connections")
        .send()
        .await
        .unwrap();
    c.iam
        .create_role()
        .role_name("shared-default-fn")
        .assume_role_policy_document("{}")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(OWNER)
                .value("other")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    emu.reset_calls();
    let out = emu
        .wsconn(&["--stack", "shared", "deploy", "--yes"])
        .expect(1);
    assert!(
        out.stderr.contains("role shared-default-fn") && out.stderr.contains("wsconn:stack=other"),
        "{}",
        out.stderr
    );
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    assert!(
        c.iam
            .get_role()
            .role_name("shared-default-fn")
            .send()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn template_change_makes_exactly_one_deployment() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    let assets = assets_copy();
    let dir = assets.path().to_str().unwrap().to_string();
    emu.wsconn(&["deploy", "--yes", "--assets-dir", &dir])
        .expect(0);
    let api_id = c.api_of("wsconn").await;
    let before = c
        .apigw
        .get_stage()
        .api_id(&api_id)
        .stage_name("api")
        .send()
        .await
        .unwrap()
        .deployment_id()
        .unwrap()
        .to_string();

    let path = assets.path().join("mapping-templates/connect.vtl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen(
            "\"Item\": {",
            "\"Item\": {\n    \"marker\": {\"S\": \"v2\"},",
            1,
        ),
    )
    .unwrap();

    let plan = emu
        .wsconn(&["diff", "--output", "json", "--assets-dir", &dir])
        .expect(2)
        .json();
    let ch = changes(&plan);
    assert!(
        ch.contains(&(
            "integration $connect".to_string()
                + &format!(" ({})", integration_id(&c, &api_id, "$connect").await),
            "update".into(),
            vec!["request_templates.$default".into()]
        )),
        "{ch:?}"
    );
    assert!(
        ch.iter()
            .any(|(r, a, _)| r == "deployment" && a == "create"),
        "{ch:?}"
    );

    emu.reset_calls();
    emu.wsconn(&["deploy", "--yes", "--assets-dir", &dir])
        .expect(0);
    assert_eq!(emu.count("CreateDeployment"), 1);
    let after = c
        .apigw
        .get_stage()
        .api_id(&api_id)
        .stage_name("api")
        .send()
        .await
        .unwrap()
        .deployment_id()
        .unwrap()
        .to_string();
    assert_ne!(before, after, "the stage moved to the new deployment");
    let deployments = c
        .apigw
        .get_deployments()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = deployments
        .items()
        .iter()
        .map(|d| d.deployment_id().unwrap())
        .collect();
    // The previous release is kept for `wsconn rollback` ([releases] keep).
    let mut want = vec![before.as_str(), after.as_str()];
    want.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(ids, want, "the previous release is kept, nothing else made");
    let i = c
        .apigw
        .get_integration()
        .api_id(&api_id)
        .integration_id(integration_id(&c, &api_id, "$connect").await)
        .send()
        .await
        .unwrap();
    assert!(i.request_templates().unwrap()["$default"].contains("\"marker\""));

    emu.reset_calls();
    emu.wsconn(&["deploy", "--yes", "--assets-dir", &dir])
        .expect(0);
    assert_eq!(emu.count("CreateDeployment"), 0, "no change, no deployment");
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    emu.wsconn(&["diff", "--assets-dir", &dir]).expect(0);
    // Back to the built-in template: the first release has exactly that digest, so the
    // stage switches back to it and no deployment is made.
    emu.reset_calls();
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    assert_eq!(emu.count("CreateDeployment"), 0);
    let back = c
        .apigw
        .get_stage()
        .api_id(&api_id)
        .stage_name("api")
        .send()
        .await
        .unwrap();
    assert_eq!(back.deployment_id(), Some(before.as_str()));
}

async fn integration_id(c: &Clients, api_id: &str, key: &str) -> String {
    let routes = c.apigw.get_routes().api_id(api_id).send().await.unwrap();
    let r = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some(key))
        .unwrap();
    r.target()
        .unwrap()
        .strip_prefix("integrations/")
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn two_stacks_side_by_side_are_independent() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    emu.wsconn(&["--stack", "alpha", "deploy", "--yes"])
        .expect(0);
    emu.wsconn(&["--stack", "beta", "deploy", "--yes", "--stage", "prod"])
        .expect(0);
    emu.wsconn(&["--stack", "alpha", "diff"]).expect(0);
    emu.wsconn(&["--stack", "beta", "diff", "--stage", "prod"])
        .expect(0);
    emu.wsconn(&["--stack", "alpha", "destroy", "--yes"])
        .expect(0);
    assert_stack_gone(&c, "alpha").await;
    emu.wsconn(&["--stack", "beta", "diff", "--stage", "prod"])
        .expect(0);
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
        c.apigw
            .delete_route()
            .api_id(&api_id)
            .route_id(r.route_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    for i in c
        .apigw
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .unwrap()
        .items()
    {
        c.apigw
            .delete_integration()
            .api_id(&api_id)
            .integration_id(i.integration_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    c.apigw
        .delete_stage()
        .api_id(&api_id)
        .stage_name("api")
        .send()
        .await
        .unwrap();
    c.lambda
        .remove_permission()
        .function_name("wsconn-default")
        .qualifier("1")
        .statement_id("wsconn-apigateway-invoke")
        .send()
        .await
        .unwrap();
    emu.wsconn(&["diff"]).expect(2);
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    assert_eq!(
        c.api_of("wsconn").await,
        api_id,
        "the same API, no duplicate"
    );
    assert_stack_complete(&c, "wsconn", "api").await;
    emu.wsconn(&["diff"]).expect(0);

    // And a run killed before anything of the API half existed: only the API is there.
    emu.wsconn(&["destroy", "--yes"]).expect(0);
    c.apigw
        .create_api()
        .name("wsconn")
        .protocol_type("WEBSOCKET".into())
        .route_selection_expression("$request.body.action")
        .tags(OWNER, "wsconn")
        .send()
        .await
        .unwrap();
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
        c.apigw
            .create_api()
            .name("dup")
            .protocol_type("WEBSOCKET".into())
            .route_selection_expression("$request.body.action")
            .tags(OWNER, "dup")
            .send()
            .await
            .unwrap();
    }
    emu.reset_calls();
    let out = emu.wsconn(&["--stack", "dup", "deploy", "--yes"]).expect(1);
    assert!(
        out.stderr.contains("2 APIs carry the tag wsconn:stack=dup"),
        "{}",
        out.stderr
    );
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    emu.wsconn(&["--stack", "dup", "diff"]).expect(1);
}

/// One out-of-band change per case, made with the SDK: what diff must name.
async fn drift(
    c: &Clients,
    api_id: &str,
    case: &str,
) -> (&'static str, &'static str, &'static str) {
    let table_arn = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/wsconn-connections");
    let fn_arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:wsconn-default");
    match case {
        "table tag" => {
            c.ddb
                .tag_resource()
                .resource_arn(&table_arn)
                .tags(
                    aws_sdk_dynamodb::types::Tag::builder()
                        .key("extra")
                        .value("1")
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            ("table wsconn-connections", "update", "tags")
        }
        "table ttl" => {
            c.ddb
                .update_time_to_live()
                .table_name("wsconn-connections")
                .time_to_live_specification(
                    aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                        .enabled(false)
                        .attribute_name("ttl")
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            ("table wsconn-connections", "update", "ttl")
        }
        "extra inline policy" => {
            c.iam.put_role_policy().role_name("wsconn-apigw-dynamodb").policy_name("extra")
                .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}]}"#)
                .send().await.unwrap();
            ("policy extra of role wsconn-apigw-dynamodb", "delete", "")
        }
        "deleted inline policy" => {
            c.iam
                .delete_role_policy()
                .role_name("wsconn-default-fn")
                .policy_name("write-own-logs")
                .send()
                .await
                .unwrap();
            (
                "policy write-own-logs of role wsconn-default-fn",
                "create",
                "document",
            )
        }
        "attached managed policy" => {
            c.iam
                .attach_role_policy()
                .role_name("wsconn-default-fn")
                .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
                .send()
                .await
                .unwrap();
            ("role wsconn-default-fn", "update", "managed_policies")
        }
        "trust policy" => {
            c.iam.update_assume_role_policy().role_name("wsconn-default-fn")
                .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
                .send().await.unwrap();
            ("role wsconn-default-fn", "update", "trust_policy")
        }
        "log retention" => {
            c.logs
                .put_retention_policy()
                .log_group_name("/aws/lambda/wsconn-default")
                .retention_in_days(30)
                .send()
                .await
                .unwrap();
            (
                "log group /aws/lambda/wsconn-default",
                "update",
                "retention_days",
            )
        }
        "function memory" => {
            c.lambda
                .update_function_configuration()
                .function_name("wsconn-default")
                .memory_size(256)
                .send()
                .await
                .unwrap();
            ("function wsconn-default", "update", "memory_mb")
        }
        "function tag" => {
            c.lambda
                .tag_resource()
                .resource(&fn_arn)
                .tags("extra", "1")
                .send()
                .await
                .unwrap();
            ("function wsconn-default", "update", "tags")
        }
        "deleted permission" => {
            c.lambda
                .remove_permission()
                .function_name("wsconn-default")
                .qualifier("1")
                .statement_id("wsconn-apigateway-invoke")
                .send()
                .await
                .unwrap();
            (
                "permission wsconn-apigateway-invoke",
                "create",
                "source_arn",
            )
        }
        "api route selection" => {
            c.apigw
                .update_api()
                .api_id(api_id)
                .route_selection_expression("$request.body.type")
                .send()
                .await
                .unwrap();
            ("api wsconn", "update", "route_selection_expression")
        }
        "api tag" => {
            c.apigw
                .tag_resource()
                .resource_arn(format!("arn:aws:apigateway:{REGION}::/apis/{api_id}"))
                .tags("extra", "1")
                .send()
                .await
                .unwrap();
            ("api wsconn", "update", "tags")
        }
        "integration template" => {
            let id = integration_id(c, api_id, "$connect").await;
            c.apigw
                .update_integration()
                .api_id(api_id)
                .integration_id(id)
                .request_templates("$default", "{\"TableName\": \"x\"}")
                .send()
                .await
                .unwrap();
            (
                "integration $connect",
                "update",
                "request_templates.$default",
            )
        }
        "integration uri" => {
            let id = integration_id(c, api_id, "$disconnect").await;
            c.apigw
                .update_integration()
                .api_id(api_id)
                .integration_id(id)
                .integration_uri(format!(
                    "arn:aws:apigateway:{REGION}:dynamodb:action/PutItem"
                ))
                .send()
                .await
                .unwrap();
            ("integration $disconnect", "update", "uri")
        }
        "proxy integration given credentials" => {
            let id = integration_id(c, api_id, "$default").await;
            c.apigw
                .update_integration()
                .api_id(api_id)
                .integration_id(id)
                .credentials_arn(format!("arn:aws:iam::{ACCOUNT}:role/wsconn-apigw-dynamodb"))
                .send()
                .await
                .unwrap();
            ("integration $default", "update", "credentials")
        }
        "deleted integration response" => {
            let id = integration_id(c, api_id, "$disconnect").await;
            let rs = c
                .apigw
                .get_integration_responses()
                .api_id(api_id)
                .integration_id(&id)
                .send()
                .await
                .unwrap();
            let rid = rs.items()[0].integration_response_id().unwrap();
            c.apigw
                .delete_integration_response()
                .api_id(api_id)
                .integration_id(&id)
                .integration_response_id(rid)
                .send()
                .await
                .unwrap();
            ("integration response /200/ of $disconnect", "create", "")
        }
        "deleted route" => {
            let routes = c.apigw.get_routes().api_id(api_id).send().await.unwrap();
            let r = routes
                .items()
                .iter()
                .find(|r| r.route_key() == Some("$default"))
                .unwrap();
            c.apigw
                .delete_route()
                .api_id(api_id)
                .route_id(r.route_id().unwrap())
                .send()
                .await
                .unwrap();
            ("route $default", "create", "target")
        }
        "retargeted route" => {
            let to = integration_id(c, api_id, "$disconnect").await;
            let routes = c.apigw.get_routes().api_id(api_id).send().await.unwrap();
            let r = routes
                .items()
                .iter()
                .find(|r| r.route_key() == Some("$connect"))
                .unwrap();
            c.apigw
                .update_route()
                .api_id(api_id)
                .route_id(r.route_id().unwrap())
                .target(format!("integrations/{to}"))
                .send()
                .await
                .unwrap();
            ("route $connect", "update", "target")
        }
        "deleted route response" => {
            let routes = c.apigw.get_routes().api_id(api_id).send().await.unwrap();
            let r = routes
                .items()
                .iter()
                .find(|r| r.route_key() == Some("$connect"))
                .unwrap();
            let rid = r.route_id().unwrap();
            let rr = c
                .apigw
                .get_route_responses()
                .api_id(api_id)
                .route_id(rid)
                .send()
                .await
                .unwrap();
            c.apigw
                .delete_route_response()
                .api_id(api_id)
                .route_id(rid)
                .route_response_id(rr.items()[0].route_response_id().unwrap())
                .send()
                .await
                .unwrap();
            ("route response $default of $connect", "create", "")
        }
        "extra route" => {
            let to = integration_id(c, api_id, "$default").await;
            c.apigw
                .create_route()
                .api_id(api_id)
                .route_key("sneaky")
                .target(format!("integrations/{to}"))
                .send()
                .await
                .unwrap();
            ("route sneaky", "delete", "")
        }
        "orphan integration" => {
            c.apigw
                .create_integration()
                .api_id(api_id)
                .integration_type("MOCK".into())
                .send()
                .await
                .unwrap();
            ("integration ", "delete", "")
        }
        "stage description" => {
            c.apigw
                .update_stage()
                .api_id(api_id)
                .stage_name("api")
                .description("edited by hand")
                .send()
                .await
                .unwrap();
            ("stage api", "update", "description")
        }
        "stage moved to a hand-made deployment" => {
            let d = c
                .apigw
                .create_deployment()
                .api_id(api_id)
                .description("manual")
                .send()
                .await
                .unwrap();
            c.apigw
                .update_stage()
                .api_id(api_id)
                .stage_name("api")
                .deployment_id(d.deployment_id().unwrap())
                .send()
                .await
                .unwrap();
            // The stage switches back to the live release: nothing is made.
            ("stage api", "update", "deployment")
        }
        other => panic!("unknown drift case {other}"),
    }
}

const DRIFT_CASES: &[&str] = &[
    "table tag",
    "table ttl",
    "extra inline policy",
    "deleted inline policy",
    "attached managed policy",
    "trust policy",
    "log retention",
    "function memory",
    "function tag",
    "deleted permission",
    "api route selection",
    "api tag",
    "integration template",
    "integration uri",
    "proxy integration given credentials",
    "deleted integration response",
    "deleted route",
    "retargeted route",
    "deleted route response",
    "extra route",
    "orphan integration",
    "stage description",
    "stage moved to a hand-made deployment",
];

#[tokio::test]
async fn every_out_of_band_change_is_reported_then_repaired() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    let api_id = c.api_of("wsconn").await;
    for case in DRIFT_CASES {
        let (resource, action, field) = drift(&c, &api_id, case).await;
        let plan = emu.wsconn(&["diff", "--output", "json"]).expect(2).json();
        let ch = changes(&plan);
        assert!(
            ch.iter().any(|(r, a, f)| r.starts_with(resource)
                && a == action
                && (field.is_empty() || f.iter().any(|x| x == field))),
            "{case}: expected {action} {resource} naming {field:?}, got {ch:?}"
        );
        let text = emu.wsconn(&["diff"]).expect(2);
        assert!(
            text.stdout.contains(resource),
            "{case}: text plan names the resource:\n{}",
            text.stdout
        );
        emu.wsconn(&["deploy", "--yes"]).expect(0);
        let after = emu.wsconn(&["diff", "--output", "json"]).json();
        assert_eq!(
            changes(&after),
            vec![],
            "{case}: deploy repaired everything"
        );
    }
    assert_eq!(c.api_of("wsconn").await, api_id);
    assert_stack_complete(&c, "wsconn", "api").await;
}

#[tokio::test]
async fn risky_changes_need_consent_without_a_terminal() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    // A first deploy creates roles: that widens IAM permissions.
    emu.reset_calls();
    let out = emu.wsconn(&["deploy"]).expect(1);
    assert!(
        out.stderr.contains("--yes") && out.stderr.contains("role wsconn-apigw-dynamodb"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("Plan: 23 to create"),
        "the plan is shown first:\n{}",
        out.stdout
    );
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    emu.wsconn(&["deploy", "--yes"]).expect(0);

    // Harmless drift (log retention) proceeds without --yes.
    c.logs
        .put_retention_policy()
        .log_group_name("/aws/lambda/wsconn-default")
        .retention_in_days(30)
        .send()
        .await
        .unwrap();
    emu.wsconn(&["deploy"]).expect(0);
    emu.wsconn(&["diff"]).expect(0);

    // Re-adding the invoke permission widens access; deleting an extra route deletes.
    c.lambda
        .remove_permission()
        .function_name("wsconn-default")
        .qualifier("1")
        .statement_id("wsconn-apigateway-invoke")
        .send()
        .await
        .unwrap();
    emu.reset_calls();
    let out = emu.wsconn(&["deploy"]).expect(1);
    assert!(
        out.stderr.contains("permission wsconn-apigateway-invoke"),
        "{}",
        out.stderr
    );
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    emu.wsconn(&["deploy", "--yes"]).expect(0);

    // A table whose key schema changed must be replaced: that needs --allow-replace.
    emu.wsconn(&["destroy", "--yes"]).expect(0);
    c.ddb
        .create_table()
        .table_name("wsconn-connections")
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type("S".into())
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("id")
                .key_type("HASH".into())
                .build()
                .unwrap(),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .tags(
            aws_sdk_dynamodb::types::Tag::builder()
                .key(OWNER)
                .value("wsconn")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let plan = emu.wsconn(&["diff", "--output", "json"]).expect(2).json();
    let table = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == "table wsconn-connections")
        .unwrap();
    assert_eq!(table["action"], "replace");
    assert!(table["reason"].as_str().unwrap().contains("key schema"));
    emu.reset_calls();
    let out = emu.wsconn(&["deploy", "--yes"]).expect(1);
    assert!(out.stderr.contains("--allow-replace"), "{}", out.stderr);
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    emu.wsconn(&["deploy", "--yes", "--allow-replace"])
        .expect(0);
    assert_stack_complete(&c, "wsconn", "api").await;
}

#[tokio::test]
async fn plans_are_snapshotted_fresh_in_sync_and_drifted() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    let args = ["--stack", "snap"];
    let run = |extra: &[&str], code| {
        let mut a = args.to_vec();
        a.extend_from_slice(extra);
        emu.wsconn(&a).expect(code)
    };
    insta::assert_snapshot!("fresh_text", run(&["diff"], 2).stdout);
    insta::assert_json_snapshot!("fresh_json", run(&["diff", "--output", "json"], 2).json());
    run(&["deploy", "--yes"], 0);
    insta::assert_snapshot!("in_sync_text", run(&["diff"], 0).stdout);
    insta::assert_json_snapshot!("in_sync_json", run(&["diff", "--output", "json"], 0).json());
    c.logs
        .put_retention_policy()
        .log_group_name("/aws/lambda/snap-default")
        .retention_in_days(30)
        .send()
        .await
        .unwrap();
    c.lambda
        .update_function_configuration()
        .function_name("snap-default")
        .memory_size(256)
        .send()
        .await
        .unwrap();
    c.ddb
        .tag_resource()
        .resource_arn(format!(
            "arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/snap-connections"
        ))
        .tags(
            aws_sdk_dynamodb::types::Tag::builder()
                .key("owner")
                .value("someone")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    c.iam.put_role_policy().role_name("snap-default-fn").policy_name("write-own-logs")
        .policy_document(format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:*"}}]}}"#))
        .send().await.unwrap();
    insta::assert_snapshot!("drifted_text", run(&["diff"], 2).stdout);
    insta::assert_json_snapshot!("drifted_json", run(&["diff", "--output", "json"], 2).json());
}

#[test]
fn unreachable_endpoint_missing_credentials_and_bad_options_are_one_line_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = |args: &[&str], creds: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wsconn"));
        cmd.args(args)
            .env_clear()
            .env("HOME", std::env::temp_dir().join("wsconn-no-home"))
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}"))
            .stdin(std::process::Stdio::null());
        if creds {
            cmd.env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing");
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["diff"], true);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot reach the AWS endpoint") && err.contains("--endpoint-url"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, err) = run(&["diff"], false);
    assert_eq!(code, 1);
    assert!(
        err.contains("no AWS credentials found") && err.contains("AWS_PROFILE"),
        "{err}"
    );
    // Usage errors are errors (1), never "changes pending" (2); help succeeds.
    let (code, err) = run(&["diff", "--no-such-flag"], true);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");
    assert_eq!(run(&["--help"], true).0, 0);
    for (args, needle) in [
        (vec!["--stack", "9lives", "diff"], "stack name"),
        (vec!["diff", "--tag", "novalue"], "KEY=VALUE"),
        (vec!["diff", "--stage", "$default"], "stage"),
        (vec!["diff", "--connection-ttl", "0"], "connection-ttl"),
        (vec!["--stack", &"x".repeat(60), "diff"], "64"),
    ] {
        let (code, err) = run(&args, true);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            err.starts_with("error: configuration:") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test]
async fn changing_the_stage_replaces_the_old_one() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    let plan = emu
        .wsconn(&["diff", "--output", "json", "--stage", "prod"])
        .expect(2)
        .json();
    let ch = changes(&plan);
    assert!(
        ch.iter()
            .any(|(r, a, _)| r == "stage prod" && a == "create"),
        "{ch:?}"
    );
    assert!(
        ch.iter().any(|(r, a, _)| r == "stage api" && a == "delete"),
        "{ch:?}"
    );
    // Deleting the old stage needs consent.
    emu.wsconn(&["deploy", "--stage", "prod"]).expect(1);
    let out = emu
        .wsconn(&["deploy", "--yes", "--stage", "prod"])
        .expect(0);
    let api_id = c.api_of("wsconn").await;
    assert!(
        out.stdout.contains(&format!(
            "wss://{api_id}.execute-api.{REGION}.amazonaws.com/prod"
        )),
        "{}",
        out.stdout
    );
    let stages = c.apigw.get_stages().api_id(&api_id).send().await.unwrap();
    assert_eq!(
        stages
            .items()
            .iter()
            .map(|s| s.stage_name().unwrap())
            .collect::<Vec<_>>(),
        ["prod"]
    );
    emu.wsconn(&["diff", "--stage", "prod"]).expect(0);
    assert_stack_complete(&c, "wsconn", "prod").await;
}

/// Runs wsconn on a pseudo-terminal (util-linux `script`), typing `answer`.
fn on_terminal(emu: &Emulator, args: &str, answer: &str, no_color: bool) -> (i32, String) {
    use std::io::Write as _;
    let cmd = format!(
        "{} --endpoint-url {} {args}",
        env!("CARGO_BIN_EXE_wsconn"),
        emu.url
    );
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let mut child = c
        .spawn()
        .expect("util-linux `script` runs wsconn on a terminal");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn on_a_terminal_destroy_asks_and_plans_are_coloured_unless_no_color() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    let (code, out) = on_terminal(&emu, "destroy", "n\n", false);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Apply? [y/N]") && out.contains("nothing was changed"),
        "{out}"
    );
    assert!(out.contains("\u{1b}["), "colour on a terminal: {out}");
    assert_stack_complete(&c, "wsconn", "api").await;
    let (code, out) = on_terminal(&emu, "destroy", "n\n", true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert!(!out.contains("\u{1b}["), "NO_COLOR turns colour off: {out}");
    assert_stack_complete(&c, "wsconn", "api").await;
    let (code, out) = on_terminal(&emu, "destroy", "y\n", false);
    assert_eq!(code, 0, "{out}");
    assert_stack_gone(&c, "wsconn").await;
}

/// Real AWS answers these while IAM propagates, a table is created, or writes race
/// (shared/aws-notes.md); moto never does, so the emulator injects them.
#[tokio::test]
async fn real_aws_delays_are_retried_and_real_errors_are_reported() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    emu.inject(json!([
        {"operation": "CreateFunction", "code": "InvalidParameterValueException",
         "message": "The role defined for the function cannot be assumed by Lambda.", "count": 2},
        {"operation": "CreateRoute", "code": "ConflictException", "status": 409,
         "message": "Unable to complete operation due to concurrent modification. Please try again later.", "count": 1},
        {"operation": "AddPermission", "code": "ResourceNotFoundException", "status": 404,
         "message": "Function not found: arn:aws:lambda:us-east-1:123456789012:function:wsconn-default", "count": 1},
        {"operation": "CreateDeployment", "code": "TooManyRequestsException", "status": 429,
         "message": "Too Many Requests", "count": 1},
        {"operation": "UpdateTimeToLive", "code": "ResourceInUseException",
         "message": "Attempt to change a resource which is still in use: Table is being created", "count": 1},
    ]));
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    assert_eq!(
        emu.count("CreateFunction"),
        3,
        "retried while the role propagates"
    );
    assert_eq!(emu.count("CreateRoute"), 4, "three routes, one retried");
    assert_eq!(emu.count("AddPermission"), 2);
    assert_eq!(
        emu.count("CreateDeployment"),
        2,
        "throttling retried by the SDK"
    );
    assert_eq!(emu.count("UpdateTimeToLive"), 2);
    assert_stack_complete(&c, "wsconn", "api").await;
    emu.wsconn(&["diff"]).expect(0);

    // An error that is not a propagation delay is reported at once, in one line.
    emu.wsconn(&["destroy", "--yes"]).expect(0);
    emu.reset_calls();
    emu.inject(json!([{"operation": "CreateFunction", "code": "InvalidParameterValueException",
                       "message": "The runtime parameter of nodejs24.x is not supported.", "count": 5}]));
    let out = emu.wsconn(&["deploy", "--yes"]).expect(1);
    assert_eq!(emu.count("CreateFunction"), 1, "not retried");
    assert!(
        out.stderr.contains(
            "error: creating function wsconn-default (lambda:CreateFunction): The runtime parameter"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("(InvalidParameterValueException)"),
        "{}",
        out.stderr
    );
}

/// Issue 14, defect 1: the credential check rides out a throttled or failing STS as
/// every other call does, but refused credentials end the run at once, in one line.
#[tokio::test]
async fn the_credential_check_rides_out_throttling_but_not_refused_credentials() {
    let emu = Emulator::start();
    emu.inject(json!([
        {"operation": "GetCallerIdentity", "code": "Throttling", "message": "Rate exceeded", "count": 3},
        {"operation": "GetCallerIdentity", "code": "ServiceUnavailable", "status": 503,
         "message": "The request has failed due to a temporary failure of the server.", "count": 1},
    ]));
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    assert_eq!(
        emu.count("GetCallerIdentity"),
        5,
        "4 refusals, then the answer"
    );
    emu.reset_calls();
    emu.inject(
        json!([{"operation": "GetCallerIdentity", "code": "Throttling",
                       "message": "Rate exceeded", "count": 3}]),
    );
    emu.wsconn(&["destroy", "--yes"]).expect(0);
    assert_eq!(emu.count("GetCallerIdentity"), 4);

    emu.reset_calls();
    emu.inject(json!([{"operation": "GetCallerIdentity", "code": "InvalidClientTokenId", "status": 403,
                       "message": "The security token included in the request is invalid.", "count": 5}]));
    let out = emu.wsconn(&["diff"]).expect(1);
    assert_eq!(
        emu.count("GetCallerIdentity"),
        1,
        "refused credentials are not retried"
    );
    assert_eq!(
        out.stderr.trim(),
        "error: checking credentials (sts:GetCallerIdentity): The security token included in the request is invalid. (InvalidClientTokenId)"
    );
}

/// Issue 14, defect 2: a statement wsconn did not write on a function's resource
/// policy is drift that widens access: diff reports it, deploy removes it only with
/// consent, and wsconn's own statement stays.
#[tokio::test]
async fn a_foreign_grant_on_the_function_is_reported_and_removed_only_with_consent() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    c.lambda
        .add_permission()
        .function_name("wsconn-default")
        .qualifier("1")
        .statement_id("open-to-everyone")
        .principal("*")
        .action("lambda:InvokeFunction")
        .send()
        .await
        .unwrap();
    let plan = emu.wsconn(&["diff", "--output", "json"]).expect(2).json();
    assert_eq!(
        changes(&plan),
        vec![(
            "permission open-to-everyone on version 1 of function wsconn-default".to_string(),
            "delete".to_string(),
            vec!["principal".to_string(), "action".to_string()]
        )]
    );
    let text = emu.wsconn(&["diff"]).expect(2).stdout;
    assert!(
        text.contains("- permission open-to-everyone on version 1 of function wsconn-default")
            && text.contains("principal: * → (none)")
            && text.contains("widens who may invoke the function"),
        "{text}"
    );

    // Without a terminal and without --yes: refused, nothing sent.
    emu.reset_calls();
    let out = emu.wsconn(&["deploy"]).expect(1);
    assert!(
        out.stderr.contains("permission open-to-everyone") && out.stderr.contains("--yes"),
        "{}",
        out.stderr
    );
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());

    emu.reset_calls();
    emu.wsconn(&["deploy", "--yes"]).expect(0);
    // The lease (a log group created, then deleted) and the removal: nothing else.
    assert_eq!(
        emu.mutating_calls(),
        [
            "logs CreateLogGroup",
            "lambda RemovePermission",
            "logs DeleteLogGroup"
        ]
    );
    let policy = c
        .lambda
        .get_policy()
        .function_name("wsconn-default")
        .qualifier("1")
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let sids: Vec<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, ["wsconn-apigateway-invoke"]);
    emu.wsconn(&["diff"]).expect(0);
}

/// Issue 14, defect 3: an endpoint that answers with something that is not the service's
/// protocol (a proxy's HTML page, a wrong --endpoint-url) gives one line naming the
/// operation, the HTTP status and the start of the body, never the SDK's Debug dump.
#[tokio::test]
async fn an_answer_that_is_not_aws_is_one_line_with_the_operation_status_and_body() {
    let emu = Emulator::start();
    emu.inject(
        json!([{"operation": "GetApis", "raw": {"status": 404, "content_type": "text/html",
        "body": "<!doctype html><title>404 Not Found</title>"}}]),
    );
    let out = emu.wsconn(&["diff"]).expect(1);
    assert_eq!(
        out.stderr.trim(),
        "error: listing WebSocket APIs (apigateway:GetApis): HTTP 404 that is not an AWS answer: \"<!doctype html><title>404 Not Found</title>\"; is --endpoint-url right?"
    );

    // An endpoint that is not AWS at all: the first answer (the credential check) says so.
    emu.configure(json!({"not_aws": {}}));
    let out = emu.wsconn(&["deploy", "--yes"]).expect(1);
    let err = out.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("(sts:GetCallerIdentity): HTTP 404 that is not an AWS answer: \"")
            && err.ends_with("; is --endpoint-url right?"),
        "{err}"
    );
    for dump in ["ServiceError", "Unhandled", "DeserializeError", "{ "] {
        assert!(!err.contains(dump), "{err}");
    }
}
