//! `[domain]` against the emulator (ACM, Route 53, API Gateway domain names): what
//! deploy makes, read back with the SDK; drift seen and repaired; records wsconn did not
//! make refused with no write; a certificate the user gives kept by destroy; the stack
//! live on execute-api while the certificate is pending; lost answers, a kill and two
//! concurrent deploys ending with one certificate, one domain and one mapping. No test
//! asserts on time: the domain deploy's wall time is measured in `scripts/bench`.

mod common;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, HostedZoneConfig, ResourceRecord, ResourceRecordSet, RrType,
};
use common::{Clients, Emulator, Run};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ZONE: &str = "example.com";
const NAME: &str = "ws.example.com";

struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn new(toml: &str) -> App {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wsconn.toml"), toml).unwrap();
        App { dir }
    }
    fn zone(base_path: &str) -> App {
        App::new(&format!(
            "[domain]\nname = \"{NAME}\"\nhosted-zone = \"{ZONE}\"\nbase-path = \"{base_path}\"\n"
        ))
    }
    fn write(&self, toml: &str) {
        std::fs::write(self.config(), toml).unwrap();
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("wsconn.toml")
    }
    fn run(&self, emu: &Emulator, stack: &str, args: &[&str]) -> Run {
        let config = self.config().display().to_string();
        let mut v = vec!["--config", &config, "--stack", stack];
        v.extend(args);
        emu.wsconn(&v)
    }
    fn spawn(&self, emu: &Emulator, stack: &str, args: &[&str]) -> std::process::Child {
        let config = self.config().display().to_string();
        let mut v = vec!["--config", &config, "--stack", stack];
        v.extend(args);
        emu.spawn(&v)
    }
}

async fn create_zone(c: &Clients, name: &str, private: bool) -> String {
    let mut req = c
        .route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("{name}-{private}-{:?}", Instant::now()));
    if private {
        req = req
            .hosted_zone_config(HostedZoneConfig::builder().private_zone(true).build())
            .vpc(
                aws_sdk_route53::types::Vpc::builder()
                    .vpc_id("vpc-12345678")
                    .vpc_region(aws_sdk_route53::types::VpcRegion::UsEast1)
                    .build(),
            );
    }
    let out = req.send().await.unwrap();
    out.hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

/// UPSERTs a plain record (out of band: the user's own records, or drift).
async fn put(c: &Clients, zone: &str, name: &str, kind: &str, values: &[&str]) {
    let mut set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::from(kind))
        .ttl(60);
    for v in values {
        set = set.resource_records(ResourceRecord::builder().value(*v).build().unwrap());
    }
    let change = Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(set.build().unwrap())
        .build()
        .unwrap();
    c.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .unwrap();
}

/// Every record of the zone as "name type value…" (aliases as "alias DNS ZONE").
async fn records(c: &Clients, zone: &str) -> Vec<String> {
    let out = c
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    let mut v: Vec<String> = out
        .resource_record_sets()
        .iter()
        .map(|r| {
            let what = match r.alias_target() {
                Some(a) => format!(
                    "alias {} {}",
                    a.dns_name().trim_end_matches('.'),
                    a.hosted_zone_id()
                ),
                None => r
                    .resource_records()
                    .iter()
                    .map(|v| v.value().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            format!(
                "{} {} {what}",
                r.name().trim_end_matches('.'),
                r.r#type().as_str()
            )
        })
        .collect();
    v.sort();
    v
}

/// The certificates of the account for `name`: (ARN, status, the stack tag).
async fn certificates(c: &Clients, name: &str) -> Vec<(String, String, Option<String>)> {
    let out = c.acm.list_certificates().send().await.unwrap();
    let mut v = Vec::new();
    for s in out.certificate_summary_list() {
        if s.domain_name() != Some(name) {
            continue;
        }
        let arn = s.certificate_arn().unwrap().to_string();
        let d = c
            .acm
            .describe_certificate()
            .certificate_arn(&arn)
            .send()
            .await
            .unwrap();
        let tags = c
            .acm
            .list_tags_for_certificate()
            .certificate_arn(&arn)
            .send()
            .await
            .unwrap();
        let owner = tags
            .tags()
            .iter()
            .find(|t| t.key() == "wsconn:stack")
            .and_then(|t| t.value().map(String::from));
        let status = d
            .certificate()
            .unwrap()
            .status()
            .unwrap()
            .as_str()
            .to_string();
        v.push((arn, status, owner));
    }
    v
}

/// The domain's (endpoint type, security policy, certificate, target, target zone, tags).
async fn domain(
    c: &Clients,
    name: &str,
) -> Option<(String, String, String, String, String, Value)> {
    let d = c
        .apigw
        .get_domain_name()
        .domain_name(name)
        .send()
        .await
        .ok()?;
    let cfg = d.domain_name_configurations().first().unwrap();
    Some((
        cfg.endpoint_type().unwrap().as_str().into(),
        cfg.security_policy().unwrap().as_str().into(),
        cfg.certificate_arn().unwrap().into(),
        cfg.api_gateway_domain_name().unwrap().into(),
        cfg.hosted_zone_id().unwrap().into(),
        json!(d.tags()),
    ))
}

/// The domain's mappings: (api, stage, key).
async fn mappings(c: &Clients, name: &str) -> Vec<(String, String, String)> {
    match c.apigw.get_api_mappings().domain_name(name).send().await {
        Ok(out) => out
            .items()
            .iter()
            .map(|m| {
                (
                    m.api_id().unwrap().to_string(),
                    m.stage().unwrap().to_string(),
                    m.api_mapping_key().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        Err(_) => vec![],
    }
}

fn mutating(emu: &Emulator) -> Vec<String> {
    emu.mutating_calls()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_is_deployed_read_back_kept_in_sync_and_removed_leaving_the_zone_as_it_was() {
    let emu = Emulator::start_with(&["--strict", "--acm-validation-wait-s", "0"]);
    let c = emu.sdk().await;
    let zone = create_zone(&c, ZONE, false).await;
    // The user's own records: never touched.
    put(&c, &zone, "www.example.com", "A", &["192.0.2.10"]).await;
    put(&c, &zone, "example.com", "MX", &["10 mail.example.com"]).await;
    put(
        &c,
        &zone,
        "_other.ws.example.com",
        "TXT",
        &["\"someone else's\""],
    )
    .await;
    let before = records(&c, &zone).await;

    let app = App::zone("");
    let r = app.run(&emu, "dom", &["deploy", "--yes"]).expect(0);
    assert!(
        r.stdout.contains("websocket_url  wss://ws.example.com"),
        "{}",
        r.stdout
    );
    let api = c.api_of("dom").await;

    // The certificate: one, the stack's, ISSUED, with its validation CNAME in the zone.
    let certs = certificates(&c, NAME).await;
    assert_eq!(certs.len(), 1, "{certs:?}");
    let (arn, status, owner) = &certs[0];
    assert_eq!((status.as_str(), owner.as_deref()), ("ISSUED", Some("dom")));
    let detail = c
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .unwrap();
    let detail = detail.certificate().unwrap();
    assert_eq!(detail.domain_name(), Some(NAME));
    let validation = detail.domain_validation_options()[0]
        .resource_record()
        .unwrap();
    let cname = format!(
        "{} CNAME {}",
        validation.name().trim_end_matches('.'),
        validation.value()
    );

    // The domain: REGIONAL, TLS_1_2, the certificate, the stack's tag.
    let (endpoint, policy, cert, target, target_zone, tags) = domain(&c, NAME).await.unwrap();
    assert_eq!(
        (endpoint.as_str(), policy.as_str(), cert.as_str()),
        ("REGIONAL", "TLS_1_2", arn.as_str())
    );
    assert_eq!(tags["wsconn:stack"], "dom");
    assert_eq!(
        mappings(&c, NAME).await,
        [(api.clone(), "api".into(), "".into())]
    );

    // The zone: what was there, plus exactly the alias records, the ownership record and
    // the validation CNAME.
    let mut want = before.clone();
    want.push(format!("ws.example.com A alias {target} {target_zone}"));
    want.push(format!("ws.example.com AAAA alias {target} {target_zone}"));
    want.push(format!(
        "_wsconn.ws.example.com TXT \"wsconn:stack=dom\" \"wsconn:validation={}\"",
        validation.name().trim_end_matches('.')
    ));
    want.push(cname.clone());
    want.sort();
    assert_eq!(records(&c, &zone).await, want);

    let out = app
        .run(&emu, "dom", &["outputs", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(out["websocket_url"], "wss://ws.example.com");
    assert_eq!(
        out["execute_api_url"],
        format!("wss://{api}.execute-api.us-east-1.amazonaws.com/api")
    );
    assert_eq!(
        out["domain"],
        json!({"name": NAME, "target": target, "certificate": arn, "status": "AVAILABLE"})
    );

    // In sync: nothing to do, and nothing sent.
    emu.reset_calls();
    app.run(&emu, "dom", &["deploy", "--yes"]).expect(0);
    assert!(mutating(&emu).is_empty(), "{:?}", mutating(&emu));
    app.run(&emu, "dom", &["diff"]).expect(0);

    // Drift, each seen by diff and repaired by deploy.
    // 1. The mapping moved to another stage and key.
    let live = c
        .apigw
        .get_stage()
        .api_id(&api)
        .stage_name("api")
        .send()
        .await
        .unwrap();
    c.apigw
        .create_stage()
        .api_id(&api)
        .stage_name("other")
        .deployment_id(live.deployment_id().unwrap())
        .send()
        .await
        .unwrap();
    let id = c
        .apigw
        .get_api_mappings()
        .domain_name(NAME)
        .send()
        .await
        .unwrap()
        .items()[0]
        .api_mapping_id()
        .unwrap()
        .to_string();
    c.apigw
        .update_api_mapping()
        .domain_name(NAME)
        .api_mapping_id(&id)
        .api_id(&api)
        .stage("other")
        .api_mapping_key("moved")
        .send()
        .await
        .unwrap();
    // 2. The domain on another certificate with an older policy (strict mode would refuse
    // TLS_1_0 on a WebSocket domain: AWS would too, so the drift is made with it off).
    let other = c
        .acm
        .request_certificate()
        .domain_name(NAME)
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string();
    emu.configure(json!({"strict": false}));
    c.apigw
        .update_domain_name()
        .domain_name(NAME)
        .domain_name_configurations(
            aws_sdk_apigatewayv2::types::DomainNameConfiguration::builder()
                .certificate_arn(&other)
                .endpoint_type(aws_sdk_apigatewayv2::types::EndpointType::Regional)
                .security_policy(aws_sdk_apigatewayv2::types::SecurityPolicy::Tls10)
                .build(),
        )
        .send()
        .await
        .unwrap();
    emu.configure(json!({"strict": true}));
    // 3. The A record pointed elsewhere (the ownership record still says it is ours).
    let a_alias = format!("ws.example.com A alias {target} {target_zone}");
    c.route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Delete)
                        .resource_record_set(
                            ResourceRecordSet::builder()
                                .name(NAME)
                                .r#type(RrType::A)
                                .alias_target(
                                    aws_sdk_route53::types::AliasTarget::builder()
                                        .hosted_zone_id(&target_zone)
                                        .dns_name(&target)
                                        .evaluate_target_health(false)
                                        .build()
                                        .unwrap(),
                                )
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    put(&c, &zone, NAME, "A", &["192.0.2.99"]).await;

    let d = app
        .run(&emu, "dom", &["diff", "--output", "json"])
        .expect(2)
        .json();
    let changes = common::changes(&d);
    let fields_of = |prefix: &str| -> Vec<String> {
        changes
            .iter()
            .find(|(r, _, _)| r.starts_with(prefix))
            .map(|(_, _, f)| f.clone())
            .unwrap_or_else(|| panic!("no change to {prefix}: {changes:?}"))
    };
    assert_eq!(fields_of("api mapping"), ["stage", "key"]);
    assert_eq!(
        fields_of("custom domain name"),
        ["security_policy", "certificate"]
    );
    assert_eq!(fields_of("dns records"), ["A"]);
    app.run(&emu, "dom", &["deploy", "--yes"]).expect(0);
    app.run(&emu, "dom", &["diff"]).expect(0);
    let (_, policy, cert, _, _, _) = domain(&c, NAME).await.unwrap();
    assert_eq!((policy.as_str(), cert.as_str()), ("TLS_1_2", arn.as_str()));
    assert_eq!(
        mappings(&c, NAME).await,
        [(api.clone(), "api".into(), "".into())]
    );
    assert!(records(&c, &zone).await.contains(&a_alias));
    c.acm
        .delete_certificate()
        .certificate_arn(&other)
        .send()
        .await
        .unwrap();

    // A base path is a change of the mapping's key, and the URL follows it.
    app.write(&format!(
        "[domain]\nname = \"{NAME}\"\nhosted-zone = \"{ZONE}\"\nbase-path = \"v1\"\n"
    ));
    app.run(&emu, "dom", &["deploy", "--yes"]).expect(0);
    assert_eq!(
        mappings(&c, NAME).await,
        [(api.clone(), "api".into(), "v1".into())]
    );
    let out = app
        .run(&emu, "dom", &["outputs", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(out["websocket_url"], "wss://ws.example.com/v1");

    // Removing [domain]: deletes that need consent, then the zone is as it was.
    app.write("");
    let d = app
        .run(&emu, "dom", &["diff", "--output", "json"])
        .expect(2)
        .json();
    let deletes: Vec<String> = common::changes(&d)
        .into_iter()
        .filter(|(_, a, _)| a == "delete")
        .map(|(r, _, _)| r)
        .collect();
    assert_eq!(deletes.len(), 4, "{deletes:?}");
    let refused = app.run(&emu, "dom", &["deploy"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(domain(&c, NAME).await.is_some());
    app.run(&emu, "dom", &["deploy", "--yes"]).expect(0);
    assert!(domain(&c, NAME).await.is_none());
    assert!(certificates(&c, NAME).await.is_empty());
    assert_eq!(records(&c, &zone).await, before);
    let out = app
        .run(&emu, "dom", &["outputs", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(out["domain"], Value::Null);
    assert_eq!(out["websocket_url"], out["execute_api_url"]);
    app.run(&emu, "dom", &["destroy", "--yes"]).expect(0);
    common::assert_stack_gone(&c, "dom").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn records_and_inputs_wsconn_cannot_use_are_refused_in_one_line_with_no_write() {
    let emu = Emulator::start_with(&["--strict", "--acm-validation-wait-s", "0"]);
    let c = emu.sdk().await;
    let zone = create_zone(&c, ZONE, false).await;
    create_zone(&c, "private.test", true).await;
    let refused = |r: &Run, needles: &[&str]| {
        assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
        let line = r.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{line}");
        for n in needles {
            assert!(line.contains(n), "{n:?} missing from: {line}");
        }
    };
    let check = |app: &App, needles: &[&str]| {
        emu.reset_calls();
        let r = app.run(&emu, "dom", &["deploy", "--yes"]);
        refused(&r, needles);
        assert!(mutating(&emu).is_empty(), "{:?}", mutating(&emu));
    };
    // A record of the name that wsconn did not make.
    put(&c, &zone, NAME, "A", &["192.0.2.1"]).await;
    check(
        &App::zone(""),
        &["ws.example.com A 192.0.2.1", "never takes over"],
    );
    // An ownership record naming another stack.
    put(
        &c,
        &zone,
        "_wsconn.ws2.example.com",
        "TXT",
        &["\"wsconn:stack=theirs\""],
    )
    .await;
    check(
        &App::new("[domain]\nname = \"ws2.example.com\"\nhosted-zone = \"example.com\"\n"),
        &["_wsconn.ws2.example.com", "\"theirs\""],
    );
    // No such zone, and a private one.
    check(
        &App::new("[domain]\nname = \"ws.nowhere.test\"\nhosted-zone = \"nowhere.test\"\n"),
        &["hosted-zone = \"nowhere.test\"", "no Route 53 hosted zone"],
    );
    check(
        &App::new("[domain]\nname = \"ws.private.test\"\nhosted-zone = \"private.test\"\n"),
        &["private"],
    );
    // A certificate of the user's that is not ISSUED, or for another name.
    emu.configure(json!({"acm_validation_wait_s": 600}));
    let pending = c
        .acm
        .request_certificate()
        .domain_name("ws.other.test")
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string();
    check(
        &App::new(&format!(
            "[domain]\nname = \"ws.other.test\"\ncertificate = \"{pending}\"\n"
        )),
        &["PENDING_VALIDATION", "ISSUED"],
    );
    emu.configure(json!({"acm_validation_wait_s": 0}));
    check(
        &App::new(&format!(
            "[domain]\nname = \"api.other.test\"\ncertificate = \"{pending}\"\n"
        )),
        &["does not cover api.other.test"],
    );
    // Found before any call: the region, and the file's own rules.
    let elsewhere = pending.replace("us-east-1", "eu-west-1");
    for (toml, needle) in [
        (
            format!("[domain]\nname = \"ws.other.test\"\ncertificate = \"{elsewhere}\"\n"),
            "it is in eu-west-1",
        ),
        (
            "[domain]\nname = \"ws.example.com\"\nhosted-zone = \"other.com\"\n".to_string(),
            "does not end with .other.com",
        ),
        (
            format!("[domain]\nname = \"ws.example.com\"\nhosted-zone = \"example.com\"\ncertificate = \"{pending}\"\n"),
            "exactly one of hosted-zone",
        ),
        (
            "[domain]\nname = \"ws_1.example.com\"\nhosted-zone = \"example.com\"\n".to_string(),
            "domain.name",
        ),
        (
            "[domain]\nname = \"ws.example.com\"\nhosted-zone = \"example.com\"\nbase-path = \"a/b\"\n".to_string(),
            "domain.base-path",
        ),
    ] {
        emu.reset_calls();
        let r = App::new(&toml).run(&emu, "dom", &["diff"]);
        refused(&r, &[needle]);
        assert!(emu.calls().is_empty(), "{needle}: {:?}", emu.calls());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_the_user_gives_is_used_and_kept_and_dns_is_left_to_the_user() {
    let emu = Emulator::start_with(&["--strict", "--acm-validation-wait-s", "0"]);
    let c = emu.sdk().await;
    // No emulated zone covers the name: ACM counts it as validated elsewhere.
    let arn = c
        .acm
        .request_certificate()
        .domain_name("ws.yours.test")
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string();
    let app = App::new(&format!(
        "[domain]\nname = \"ws.yours.test\"\ncertificate = \"{arn}\"\n"
    ));
    emu.reset_calls();
    app.run(&emu, "given", &["deploy", "--yes"]).expect(0);
    let (endpoint, policy, cert, target, _, _) = domain(&c, "ws.yours.test").await.unwrap();
    assert_eq!(
        (endpoint.as_str(), policy.as_str(), cert.as_str()),
        ("REGIONAL", "TLS_1_2", arn.as_str())
    );
    assert_eq!(emu.count("ChangeResourceRecordSets"), 0);
    assert_eq!(emu.count("RequestCertificate"), 0);
    let out = app
        .run(&emu, "given", &["outputs", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(out["domain"]["target"], target.as_str());
    assert_eq!(out["domain"]["certificate"], arn.as_str());
    emu.reset_calls();
    app.run(&emu, "given", &["destroy", "--yes"]).expect(0);
    assert!(domain(&c, "ws.yours.test").await.is_none());
    assert_eq!(emu.count("DeleteCertificate"), 0);
    let kept = c
        .acm
        .describe_certificate()
        .certificate_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        kept.certificate().unwrap().status().unwrap().as_str(),
        "ISSUED"
    );
}

/// The certificate stays pending for 60 s (the emulator's ACM clock): the stage switches
/// to the new release long before the domain's steps, which alone wait for it.
#[tokio::test(flavor = "multi_thread")]
async fn the_stack_goes_live_on_execute_api_while_the_certificate_is_pending() {
    let emu = Emulator::start_with(&["--strict", "--acm-validation-wait-s", "60"]);
    let c = emu.sdk().await;
    create_zone(&c, ZONE, false).await;
    let app = App::zone("");
    let r = app.run(&emu, "slow", &["deploy", "--yes"]).expect(0);
    assert!(
        r.stderr
            .contains("waiting for ACM to issue certificate for ws.example.com"),
        "{}",
        r.stderr
    );
    let calls = emu.calls();
    let last = |op: &str| {
        calls
            .iter()
            .filter(|c| c.operation == op)
            .map(|c| c.end)
            .fold(0.0, f64::max)
    };
    let first = |op: &str| {
        calls
            .iter()
            .filter(|c| c.operation == op)
            .map(|c| c.start)
            .fold(f64::MAX, f64::min)
    };
    let live = last("CreateStage").max(last("UpdateStage"));
    let requested = first("RequestCertificate");
    let domain_made = first("CreateDomainName");
    assert!(live > 0.0 && domain_made < f64::MAX);
    // The release is live before the certificate is anywhere near issued; the domain
    // is made only once it is.
    assert!(
        live < requested + 30.0,
        "stage at {live}, certificate requested at {requested}"
    );
    assert!(
        domain_made > requested + 59.0,
        "domain at {domain_made}, requested at {requested}"
    );
    let out = app
        .run(&emu, "slow", &["outputs", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(out["domain"]["status"], "AVAILABLE");
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_a_kill_and_two_deploys_end_with_one_certificate_domain_and_mapping() {
    let emu = Emulator::start_with(&["--strict", "--realism", "--acm-validation-wait-s", "0"]);
    let c = emu.sdk().await;
    let zone = create_zone(&c, ZONE, false).await;
    let one_of_each = |stack: &'static str| {
        let c = &c;
        async move {
            let certs = certificates(c, NAME).await;
            assert_eq!(certs.len(), 1, "{certs:?}");
            assert_eq!(certs[0].2.as_deref(), Some(stack));
            let api = c.api_of(stack).await;
            assert_eq!(mappings(c, NAME).await, [(api, "api".into(), "".into())]);
            let (_, _, cert, _, _, _) = domain(c, NAME).await.unwrap();
            assert_eq!(cert, certs[0].0);
        }
    };

    // Every write of the domain's answers lost once: each took effect, and the retry
    // (the SDK's, or the step's read-back) finds it.
    emu.inject(json!([
        {"operation": "RequestCertificate", "lost": true, "code": "InternalFailure"},
        {"operation": "CreateDomainName", "lost": true, "code": "InternalFailure"},
        {"operation": "CreateApiMapping", "lost": true, "code": "InternalFailure"},
        {"operation": "ChangeResourceRecordSets", "lost": true, "code": "InternalFailure", "count": 2},
    ]));
    let app = App::zone("");
    app.run(&emu, "lost", &["deploy", "--yes"]).expect(0);
    let lost: Vec<String> = emu
        .calls()
        .into_iter()
        .filter(|c| c.fault_kind.as_deref() == Some("lost"))
        .map(|c| c.operation)
        .collect();
    assert_eq!(lost.len(), 5, "every lost answer was given: {lost:?}");
    one_of_each("lost").await;
    app.run(&emu, "lost", &["diff"]).expect(0);
    app.run(&emu, "lost", &["destroy", "--yes"]).expect(0);
    assert!(certificates(&c, NAME).await.is_empty());
    assert_eq!(
        records(&c, &zone).await.len(),
        2,
        "{:?}",
        records(&c, &zone).await
    );

    // Killed while waiting for the certificate: the next deploy continues with it.
    emu.configure(json!({"acm_validation_wait_s": 600}));
    emu.reset_calls();
    let mut child = app.spawn(&emu, "kill", &["deploy", "--yes"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while emu.count("ChangeResourceRecordSets") == 0 {
        assert!(
            Instant::now() < deadline,
            "the validation record was never written"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(certificates(&c, NAME).await.len(), 1);
    emu.configure(json!({"acm_validation_wait_s": 0}));
    app.run(&emu, "kill", &["deploy", "--yes"]).expect(0);
    one_of_each("kill").await;
    app.run(&emu, "kill", &["destroy", "--yes"]).expect(0);

    // Two deploys at once: the lease makes one wait for the other.
    let a = app.spawn(&emu, "twice", &["deploy", "--yes"]);
    let b = app.spawn(&emu, "twice", &["deploy", "--yes"]);
    for child in [a, b] {
        let r = common::finish(child, Duration::from_secs(240));
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    one_of_each("twice").await;
    app.run(&emu, "twice", &["destroy", "--yes"]).expect(0);
    assert!(domain(&c, NAME).await.is_none());
    assert_eq!(records(&c, &zone).await.len(), 2);
}
