//! Releases against the emulator: versions, qualified ARNs, one switch; a failure at
//! any step before the switch leaves clients on the old release; rollback and roll
//! forward; pruning; the one-time move of a stack deployed before releases; kills, lost
//! answers and concurrent runs during a release. No test asserts on time: speed lives in
//! `scripts/bench`.

mod common;

use common::{Clients, Emulator, Run, finish};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// An application to release: the built-in `$default` echo and the templates from an
/// assets directory (so the echo's code and connect.vtl can change), and wsconn.toml
/// (so a route can be added).
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn new() -> App {
        let dir = tempfile::tempdir().unwrap();
        let assets = dir.path().join("assets");
        for sub in ["lambda", "mapping-templates"] {
            let to = assets.join(sub);
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(common::repo().join(sub)).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
            }
        }
        let handler = dir.path().join("handlers/ping");
        std::fs::create_dir_all(&handler).unwrap();
        std::fs::write(
            handler.join("index.mjs"),
            "export const handler = async () => ({ statusCode: 200, body: 'pong' });\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("wsconn.toml"), "").unwrap();
        App { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `--config <file> <args…> --assets-dir <dir>`.
    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut v = vec![
            "--config".to_string(),
            self.path("wsconn.toml").display().to_string(),
        ];
        v.extend(args.iter().map(|a| a.to_string()));
        if args
            .iter()
            .any(|a| ["deploy", "diff", "outputs", "releases", "rollback"].contains(a))
        {
            v.push("--assets-dir".into());
            v.push(self.path("assets").display().to_string());
        }
        v
    }

    fn run(&self, emu: &Emulator, args: &[&str]) -> Run {
        let v = self.args(args);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        emu.wsconn(&refs)
    }

    fn spawn(&self, emu: &Emulator, args: &[&str]) -> std::process::Child {
        let v = self.args(args);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        emu.spawn(&refs)
    }

    /// A new version of the echo handler: its code (and so its CodeSha256) changes.
    fn edit_handler(&self, mark: &str) {
        let f = self.path("assets/lambda/index.mjs");
        let mut code = std::fs::read_to_string(&f).unwrap();
        code.push_str(&format!("\n// {mark}\n"));
        std::fs::write(f, code).unwrap();
    }

    fn edit_connect(&self, mark: &str) {
        let f = self.path("assets/mapping-templates/connect.vtl");
        let mut t = std::fs::read_to_string(&f).unwrap();
        t.push_str(&format!("\n## {mark}\n"));
        std::fs::write(f, t).unwrap();
    }

    fn add_route(&self, key: &str) {
        let f = self.path("wsconn.toml");
        let mut t = std::fs::read_to_string(&f).unwrap();
        t.push_str(&format!("\n[routes.{key}]\nhandler = \"handlers/ping\"\n"));
        std::fs::write(f, t).unwrap();
    }

    fn set(&self, toml: &str) {
        let f = self.path("wsconn.toml");
        let mut t = std::fs::read_to_string(&f).unwrap();
        t.push_str(toml);
        std::fs::write(f, t).unwrap();
    }
}

/// The deployment the stage serves, and the function versions its manifest names.
async fn serving(c: &Clients, stack: &str) -> (String, BTreeMap<String, String>) {
    let api = c.api_of(stack).await;
    let stage = c
        .apigw
        .get_stage()
        .api_id(&api)
        .stage_name("api")
        .send()
        .await
        .unwrap();
    let id = stage.deployment_id().unwrap().to_string();
    let d = c
        .apigw
        .get_deployment()
        .api_id(&api)
        .deployment_id(&id)
        .send()
        .await
        .unwrap();
    let desc = d.description().unwrap_or_default().to_string();
    (id, manifest_versions(&desc, stack))
}

/// `default=3 ping=2` in a release's description → {"<stack>-default": "3", …}.
fn manifest_versions(desc: &str, stack: &str) -> BTreeMap<String, String> {
    let (_, list) = desc
        .split_once(" versions")
        .unwrap_or_else(|| panic!("not a release manifest: {desc:?}"));
    list.split_whitespace()
        .map(|w| {
            let (f, v) = w.split_once('=').unwrap();
            (format!("{stack}-{f}"), v.to_string())
        })
        .collect()
}

async fn code_sha(c: &Clients, function: &str, version: &str) -> String {
    c.lambda
        .get_function_configuration()
        .function_name(function)
        .qualifier(version)
        .send()
        .await
        .unwrap()
        .code_sha256()
        .unwrap()
        .to_string()
}

/// Every integration URI of the API that invokes a function.
async fn lambda_uris(c: &Clients, stack: &str) -> Vec<String> {
    let api = c.api_of(stack).await;
    let mut uris: Vec<String> = c
        .apigw
        .get_integrations()
        .api_id(&api)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter_map(|i| i.integration_uri().map(String::from))
        .filter(|u| u.contains(":lambda:path"))
        .collect();
    uris.sort();
    uris
}

/// The statement ids on one version's resource policy.
async fn sids(c: &Clients, function: &str, qualifier: Option<&str>) -> Vec<String> {
    match c
        .lambda
        .get_policy()
        .function_name(function)
        .set_qualifier(qualifier.map(String::from))
        .send()
        .await
    {
        Ok(p) => {
            let doc: Value = serde_json::from_str(p.policy().unwrap()).unwrap();
            doc["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["Sid"].as_str().unwrap().to_string())
                .collect()
        }
        Err(_) => vec![],
    }
}

async fn versions_of(c: &Clients, function: &str) -> Vec<String> {
    c.lambda
        .list_versions_by_function()
        .function_name(function)
        .send()
        .await
        .unwrap()
        .versions()
        .iter()
        .filter_map(|v| v.version().map(String::from))
        .filter(|v| v != "$LATEST")
        .collect()
}

/// Every release the stage may go back to has its versions and their permissions.
async fn assert_kept_releases_invocable(c: &Clients, stack: &str) {
    let api = c.api_of(stack).await;
    let all = c.apigw.get_deployments().api_id(&api).send().await.unwrap();
    for d in all.items() {
        let desc = d.description().unwrap_or_default();
        if !desc.contains(" versions") {
            continue;
        }
        for (f, v) in manifest_versions(desc, stack) {
            assert!(
                versions_of(c, &f).await.contains(&v),
                "{stack}: version {v} of {f} (kept release {:?}) is gone",
                d.deployment_id()
            );
            assert_eq!(
                sids(c, &f, Some(&v)).await,
                ["wsconn-apigateway-invoke"],
                "{stack}: permission of {f}:{v}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_publishes_versions_invokes_them_and_switches_once() {
    let emu = Emulator::start_with(&["--strict"]);
    let c = emu.sdk().await;
    let app = App::new();
    app.run(&emu, &["--stack", "rel", "deploy", "--yes"])
        .expect(0);
    let (first, v1) = serving(&c, "rel").await;
    assert_eq!(v1, BTreeMap::from([("rel-default".into(), "1".into())]));
    assert_eq!(
        lambda_uris(&c, "rel").await,
        [format!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:{}:function:rel-default:1/invocations",
            common::ACCOUNT
        )]
    );
    // The version has its own permission; $LATEST has none.
    assert_eq!(
        sids(&c, "rel-default", Some("1")).await,
        ["wsconn-apigateway-invoke"]
    );
    assert!(sids(&c, "rel-default", None).await.is_empty());

    // No-op: no mutating call, and the reads stay within 3 round-trip levels. (A long
    // round trip, so that moto answering one call at a time cannot make a level.)
    emu.configure(json!({"latency_ms": 250}));
    emu.reset_calls();
    app.run(&emu, &["--stack", "rel", "deploy", "--yes"])
        .expect(0);
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    assert!(
        emu.stats()["levels"].as_u64().unwrap() <= 3,
        "{}",
        emu.stats()
    );
    emu.configure(json!({"latency_ms": 0}));

    // A code change: a version is published and only the stage's UpdateStage switches it.
    app.edit_handler("v2");
    emu.reset_calls();
    let out = app
        .run(&emu, &["--stack", "rel", "deploy", "--yes"])
        .expect(0);
    let (second, v2) = serving(&c, "rel").await;
    assert_ne!(first, second);
    assert_eq!(v2["rel-default"], "2");
    assert!(
        out.stderr
            .contains(&format!("released {second}: api now serves rel-default:2")),
        "{}",
        out.stderr
    );
    let switches: Vec<String> = emu
        .mutating_calls()
        .into_iter()
        .filter(|m| m.contains("UpdateStage") || m.contains("CreateStage"))
        .collect();
    assert_eq!(switches, ["apigateway UpdateStage"]);
    let calls = emu.calls();
    let switch_at = calls
        .iter()
        .position(|c| c.operation == "UpdateStage")
        .unwrap();
    for (i, call) in calls.iter().enumerate() {
        if [
            "PublishVersion",
            "UpdateIntegration",
            "CreateDeployment",
            "AddPermission",
        ]
        .contains(&call.operation.as_str())
        {
            assert!(i < switch_at, "{} after the switch", call.operation);
        }
    }
    // Both versions keep their code: the old release still invokes the old code.
    assert_ne!(
        code_sha(&c, "rel-default", "1").await,
        code_sha(&c, "rel-default", "2").await
    );

    // outputs and releases from the AWS side alone.
    let o = app
        .run(&emu, &["--stack", "rel", "outputs", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(o["release"], second);
    assert_eq!(o["versions"], json!({"rel-default": "2"}));
    let rels = app
        .run(&emu, &["--stack", "rel", "releases", "--output", "json"])
        .expect(0)
        .json();
    let rels = rels.as_array().unwrap();
    assert_eq!(rels.len(), 2);
    assert_eq!(rels[0]["id"], second);
    assert_eq!(rels[0]["live"], true);
    assert_eq!(rels[1]["id"], first);
    assert_eq!(rels[1]["live"], false);
    assert_eq!(rels[1]["versions"], json!({"rel-default": "1"}));
    for r in rels {
        let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["created", "digest", "id", "live", "versions", "wsconn"]
        );
        assert_eq!(r["wsconn"], env!("CARGO_PKG_VERSION"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_restores_the_previous_release_in_one_call_and_deploy_rolls_forward() {
    let emu = Emulator::start_with(&["--strict", "--latency-ms", "20"]);
    let c = emu.sdk().await;
    let app = App::new();
    app.run(&emu, &["--stack", "rb", "deploy", "--yes"])
        .expect(0);
    let (old, _) = serving(&c, "rb").await;
    app.edit_handler("bad");
    app.edit_connect("bad");
    app.add_route("ping");
    app.run(&emu, &["--stack", "rb", "deploy", "--yes"])
        .expect(0);
    let (new, vnew) = serving(&c, "rb").await;
    assert_eq!(vnew.len(), 2, "{vnew:?}");

    // Without consent: refused, the stage untouched.
    let r = app.run(&emu, &["--stack", "rb", "rollback"]).expect(1);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert_eq!(serving(&c, "rb").await.0, new);

    emu.reset_calls();
    let r = app
        .run(&emu, &["--stack", "rb", "rollback", "--yes"])
        .expect(0);
    let calls = emu.calls();
    assert_eq!(serving(&c, "rb").await.0, old);
    assert!(r.stderr.contains("Not restored: roles"), "{}", r.stderr);
    // One switch, inside the lease; after the reads, at most 2 levels: the switch and
    // the release of the lease.
    let mutating: Vec<String> = calls
        .iter()
        .filter(|c| c.mutating)
        .map(|c| format!("{} {}", c.service, c.operation))
        .collect();
    assert_eq!(
        mutating,
        [
            "logs CreateLogGroup",
            "apigateway UpdateStage",
            "logs DeleteLogGroup"
        ]
    );
    let switch = calls
        .iter()
        .position(|c| c.operation == "UpdateStage")
        .unwrap();
    let after: Vec<&str> = calls[switch + 1..]
        .iter()
        .map(|c| c.operation.as_str())
        .collect();
    assert_eq!(
        after,
        ["DeleteLogGroup"],
        "only the lease's release follows the switch"
    );

    // diff sees the stage's release as drift; rollback --to the newer restores it.
    let plan = app
        .run(&emu, &["--stack", "rb", "diff", "--output", "json"])
        .expect(2)
        .json();
    let ch = common::changes(&plan);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert_eq!(ch[0].0, "stage api");
    app.run(&emu, &["--stack", "rb", "rollback", "--to", &new, "--yes"])
        .expect(0);
    assert_eq!(serving(&c, "rb").await.0, new);
    app.run(&emu, &["--stack", "rb", "diff"]).expect(0);

    // Back again, then deploy rolls forward with the switch alone.
    app.run(&emu, &["--stack", "rb", "rollback", "--yes"])
        .expect(0);
    emu.reset_calls();
    app.run(&emu, &["--stack", "rb", "deploy", "--yes"])
        .expect(0);
    assert_eq!(serving(&c, "rb").await.0, new);
    assert_eq!(
        emu.mutating_calls(),
        [
            "logs CreateLogGroup",
            "apigateway UpdateStage",
            "logs DeleteLogGroup"
        ],
        "rolling forward to an existing release is the switch alone"
    );

    // A release whose version is gone is refused, naming it, and nothing switches.
    let old_versions = manifest_versions(
        c.apigw
            .get_deployment()
            .api_id(c.api_of("rb").await)
            .deployment_id(&old)
            .send()
            .await
            .unwrap()
            .description()
            .unwrap(),
        "rb",
    );
    let v = &old_versions["rb-default"];
    c.lambda
        .delete_function()
        .function_name("rb-default")
        .qualifier(v)
        .send()
        .await
        .unwrap();
    let r = app
        .run(&emu, &["--stack", "rb", "rollback", "--to", &old, "--yes"])
        .expect(1);
    assert!(
        r.stderr
            .contains(&format!("version {v} of function rb-default is gone")),
        "{}",
        r.stderr
    );
    assert_eq!(serving(&c, "rb").await.0, new);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_at_any_step_before_the_switch_changes_nothing_clients_get() {
    let emu = Emulator::start_with(&["--strict"]);
    let c = emu.sdk().await;
    // Which calls the change makes, and in what order, from a probe run.
    let probe = App::new();
    probe
        .run(&emu, &["--stack", "probe", "deploy", "--yes"])
        .expect(0);
    probe.edit_handler("v2");
    probe.edit_connect("v2");
    probe.add_route("ping");
    emu.reset_calls();
    probe
        .run(&emu, &["--stack", "probe", "deploy", "--yes"])
        .expect(0);
    let calls = emu.calls();
    let switch = calls
        .iter()
        .position(|c| c.operation == "UpdateStage")
        .unwrap();
    let mut before: Vec<String> = Vec::new();
    for c in &calls[..switch] {
        if c.mutating && !before.contains(&c.operation) {
            before.push(c.operation.clone());
        }
    }
    for op in [
        "UpdateFunctionCode",
        "PublishVersion",
        "AddPermission",
        "CreateFunction",
        "UpdateIntegration",
        "CreateIntegration",
        "CreateRoute",
        "CreateDeployment",
    ] {
        assert!(before.contains(&op.to_string()), "{op} not in {before:?}");
    }

    for (i, op) in before.iter().enumerate() {
        let stack = format!("f{i}");
        let app = App::new();
        app.run(&emu, &["--stack", &stack, "deploy", "--yes"])
            .expect(0);
        let (old, old_v) = serving(&c, &stack).await;
        let old_sha = code_sha(
            &c,
            &format!("{stack}-default"),
            &old_v[&format!("{stack}-default")],
        )
        .await;
        app.edit_handler("v2");
        app.edit_connect("v2");
        app.add_route("ping");
        emu.inject(
            json!([{"operation": op, "status": 400, "code": "InvalidParameterValueException",
                           "message": "injected failure"}]),
        );
        let r = app
            .run(&emu, &["--stack", &stack, "deploy", "--yes"])
            .expect(1);
        assert!(
            r.stderr.contains(&format!(
                "nothing live changed: stage api still serves deployment {old}"
            )),
            "{op}: {}",
            r.stderr
        );
        let (now, now_v) = serving(&c, &stack).await;
        assert_eq!(now, old, "{op}: the stage moved");
        assert_eq!(now_v, old_v, "{op}");
        assert_eq!(
            code_sha(
                &c,
                &format!("{stack}-default"),
                &now_v[&format!("{stack}-default")]
            )
            .await,
            old_sha,
            "{op}: the old release's version kept its code"
        );
        // A rerun converges, reusing what was already published.
        app.run(&emu, &["--stack", &stack, "deploy", "--yes"])
            .expect(0);
        app.run(&emu, &["--stack", &stack, "diff"]).expect(0);
        let (_, v) = serving(&c, &stack).await;
        assert_eq!(
            v[&format!("{stack}-default")],
            "2",
            "{op}: one new version, not two"
        );
        assert_kept_releases_invocable(&c, &stack).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pruning_keeps_the_live_release_and_the_newest_others_and_never_a_foreign_one() {
    let emu = Emulator::start_with(&["--strict"]);
    let c = emu.sdk().await;
    let app = App::new();
    app.set("[releases]\nkeep = 2\n");
    app.run(&emu, &["--stack", "pr", "deploy", "--yes"])
        .expect(0);
    let api = c.api_of("pr").await;
    let hand = c
        .apigw
        .create_deployment()
        .api_id(&api)
        .description("made by hand")
        .send()
        .await
        .unwrap()
        .deployment_id()
        .unwrap()
        .to_string();
    for i in 2..=5 {
        app.edit_handler(&format!("v{i}"));
        app.run(&emu, &["--stack", "pr", "deploy", "--yes"])
            .expect(0);
    }
    let rels = app
        .run(&emu, &["--stack", "pr", "releases", "--output", "json"])
        .expect(0)
        .json();
    let ids: Vec<&str> = rels
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "live + 2 kept + the hand-made one: {rels}");
    assert!(ids.contains(&hand.as_str()));
    let kept: Vec<String> = rels
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["versions"]["pr-default"].as_str().map(String::from))
        .collect();
    assert_eq!(kept, ["5", "4", "3"]);
    let mut have = versions_of(&c, "pr-default").await;
    have.sort();
    assert_eq!(
        have,
        ["3", "4", "5"],
        "versions no kept release references are gone"
    );
    assert_kept_releases_invocable(&c, "pr").await;
    app.run(&emu, &["--stack", "pr", "diff"]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_deployed_before_releases_moves_to_them_in_one_deploy() {
    let emu = Emulator::start_with(&["--strict"]);
    let c = emu.sdk().await;
    let app = App::new();
    app.run(&emu, &["--stack", "up", "deploy", "--yes"])
        .expect(0);
    // Make it what wsconn before releases left: $default invoking $LATEST with the
    // unqualified function's permission, the stage on a "wsconn config" deployment.
    let api = c.api_of("up").await;
    let fn_arn = format!(
        "arn:aws:lambda:us-east-1:{}:function:up-default",
        common::ACCOUNT
    );
    let ints = c
        .apigw
        .get_integrations()
        .api_id(&api)
        .send()
        .await
        .unwrap();
    let default = ints
        .items()
        .iter()
        .find(|i| i.description() == Some("wsconn route $default"))
        .unwrap();
    c.apigw
        .update_integration()
        .api_id(&api)
        .integration_id(default.integration_id().unwrap())
        .integration_uri(format!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn_arn}/invocations"
        ))
        .send()
        .await
        .unwrap();
    c.lambda
        .add_permission()
        .function_name("up-default")
        .statement_id("wsconn-apigateway-invoke")
        .principal("apigateway.amazonaws.com")
        .action("lambda:InvokeFunction")
        .source_arn(format!(
            "arn:aws:execute-api:us-east-1:{}:{api}/*",
            common::ACCOUNT
        ))
        .send()
        .await
        .unwrap();
    let legacy = c
        .apigw
        .create_deployment()
        .api_id(&api)
        .description("wsconn config sha256:0123")
        .send()
        .await
        .unwrap()
        .deployment_id()
        .unwrap()
        .to_string();
    c.apigw
        .update_stage()
        .api_id(&api)
        .stage_name("api")
        .deployment_id(&legacy)
        .send()
        .await
        .unwrap();
    let plan = app
        .run(&emu, &["--stack", "up", "diff", "--output", "json"])
        .expect(2)
        .json();
    let stage = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == "stage api")
        .unwrap();
    assert!(
        stage["reason"]
            .as_str()
            .unwrap()
            .contains("one-time move to releases"),
        "{stage}"
    );
    app.run(&emu, &["--stack", "up", "deploy", "--yes"])
        .expect(0);
    let (id, v) = serving(&c, "up").await;
    assert_ne!(id, legacy);
    assert_eq!(v["up-default"], "1");
    assert!(lambda_uris(&c, "up").await[0].contains("function:up-default:1/invocations"));
    assert!(
        sids(&c, "up-default", None).await.is_empty(),
        "$LATEST's grant is removed after the switch"
    );
    app.run(&emu, &["--stack", "up", "diff"]).expect(0);
}

/// Lost answers on the release's own calls: each converges with one new version, one
/// new deployment and the stage on it.
#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_during_a_release_converge() {
    let emu = Emulator::start_with(&["--strict"]);
    let c = emu.sdk().await;
    for (i, op) in [
        "PublishVersion",
        "AddPermission",
        "UpdateIntegration",
        "CreateDeployment",
        "UpdateStage",
        "DeleteDeployment",
    ]
    .iter()
    .enumerate()
    {
        let stack = format!("lost{i}");
        let app = App::new();
        app.set("[releases]\nkeep = 1\n");
        app.run(&emu, &["--stack", &stack, "deploy", "--yes"])
            .expect(0);
        app.edit_handler("v2");
        app.run(&emu, &["--stack", &stack, "deploy", "--yes"])
            .expect(0);
        app.edit_handler("v3");
        emu.reset_calls();
        emu.inject(json!([{"operation": op, "lost": true, "status": 500,
                           "code": "InternalFailure", "message": "We encountered an internal error."}]));
        let r = app.run(&emu, &["--stack", &stack, "deploy", "--yes"]);
        assert_eq!(r.code, 0, "{op}: {}", r.stderr);
        assert!(
            emu.calls()
                .iter()
                .any(|c| c.operation == *op && c.fault_kind.as_deref() == Some("lost")),
            "{op}: the fault fired"
        );
        let (_, v) = serving(&c, &stack).await;
        assert_eq!(v[&format!("{stack}-default")], "3", "{op}");
        assert_eq!(emu.count("CreateDeployment"), 1, "{op}: one deployment");
        app.run(&emu, &["--stack", &stack, "diff"]).expect(0);
        assert_kept_releases_invocable(&c, &stack).await;
    }
}

/// SIGKILL a code-change deploy at spread-out moments, and two of them at once: the
/// next run converges, one deployment is live, and every kept release can be invoked.
#[tokio::test(flavor = "multi_thread")]
async fn kills_and_concurrent_runs_during_a_release_converge() {
    let emu = Emulator::start_with(&["--latency-ms", "20", "--strict"]);
    let c = emu.sdk().await;
    let app = App::new();
    app.run(&emu, &["--stack", "k", "deploy", "--yes"])
        .expect(0);
    let t0 = std::time::Instant::now();
    app.edit_handler("probe");
    app.run(&emu, &["--stack", "k", "deploy", "--yes"])
        .expect(0);
    let took = t0.elapsed();
    for i in 0..6u32 {
        app.edit_handler(&format!("kill{i}"));
        let mut child = app.spawn(&emu, &["--stack", "k", "deploy", "--yes"]);
        std::thread::sleep(took.mul_f64(f64::from(i + 1) / 7.0));
        let _ = child.kill();
        let _ = child.wait();
        let r = app.run(&emu, &["--stack", "k", "deploy", "--yes"]);
        assert_eq!(r.code, 0, "kill {i}: {}", r.stderr);
        app.run(&emu, &["--stack", "k", "diff"]).expect(0);
        assert_kept_releases_invocable(&c, "k").await;
    }
    app.edit_handler("both");
    let a = app.spawn(&emu, &["--stack", "k", "deploy", "--yes"]);
    let b = app.spawn(&emu, &["--stack", "k", "deploy", "--yes"]);
    for r in [a, b].map(|child| finish(child, Duration::from_secs(120))) {
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    app.run(&emu, &["--stack", "k", "diff"]).expect(0);
    assert_kept_releases_invocable(&c, "k").await;
    assert_eq!(c.apis_of("k").await.len(), 1);
}
