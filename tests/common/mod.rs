//! Test harness: a fresh emulator per test (moto server with the gap-filling launcher),
//! the real `wsconn` binary, SDK clients for out-of-band reads and changes, and the
//! launcher's call recorder.

#![allow(dead_code)]

pub mod local;

use aws_config::{Region, SdkConfig};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
pub const OWNER: &str = "wsconn:stack";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let p = std::env::var_os("WSCONN_EMULATOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/emulator-venv/bin/python"));
    assert!(
        p.exists(),
        "emulator python {} is missing: run scripts/test, which creates it",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Emulator {
    child: Child,
    pub port: u16,
    pub url: String,
}

/// One recorded AWS call.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub mutating: bool,
    /// For an injected fault: queued, lost, throttle, error, realism, raw, not_aws…
    #[serde(default)]
    pub fault_kind: Option<String>,
    /// When the call arrived and when its answer left (the emulator's monotonic clock).
    #[serde(default)]
    pub start: f64,
    #[serde(default)]
    pub end: f64,
}

/// The result of one `wsconn` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Emulator {
    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    /// Starts the launcher with extra flags (`--latency-ms 50`, `--realism`, `--strict`…).
    pub fn start_with(flags: &[&str]) -> Emulator {
        let port = free_port();
        let child = Command::new(python())
            .arg(repo().join("tests/emulator/launcher.py"))
            .args(["--port", &port.to_string()])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the emulator");
        let emu = Emulator {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if emu
                .try_http("GET", "/_wsconn/health")
                .is_some_and(|b| b == "ok")
            {
                return emu;
            }
            assert!(
                Instant::now() < deadline,
                "emulator did not become healthy on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn try_http(&self, method: &str, path: &str) -> Option<String> {
        self.try_http_body(method, path, "")
    }

    /// The body of a 200 answer from the launcher; `None` when it cannot be reached.
    /// Any other status is a broken test set-up (a refused setting, a bad fault list).
    fn try_http_body(&self, method: &str, path: &str, body: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let (head, body) = resp.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1).unwrap_or_default();
        assert_eq!(status, "200", "{method} {path} answered {head}: {body}");
        Some(body.to_string())
    }

    /// The names in the deployment package a function (or one of its versions) holds.
    pub fn lambda_zip_names(&self, function: &str, qualifier: Option<&str>) -> Vec<String> {
        let mut path = format!("/_wsconn/lambda-code?function={function}");
        if let Some(q) = qualifier {
            path.push_str(&format!("&qualifier={q}"));
        }
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&resp[..split]).to_string();
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(resp[split..].to_vec())).unwrap();
        let mut names: Vec<String> = (0..zip.len())
            .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    pub fn calls(&self) -> Vec<Call> {
        serde_json::from_str(&self.try_http("GET", "/_wsconn/calls").expect("recorder"))
            .expect("recorder JSON")
    }

    pub fn reset_calls(&self) {
        self.try_http("POST", "/_wsconn/calls/reset")
            .expect("recorder reset");
    }

    /// Queues failures the emulator answers instead of moto (see the launcher's
    /// /_wsconn/faults): stand-ins for real-AWS delays moto does not reproduce.
    pub fn inject(&self, faults: Value) {
        self.try_http_body("POST", "/_wsconn/faults", &faults.to_string())
            .expect("fault injection");
    }

    /// Merges settings into the emulator's (latency, realism, chaos…).
    pub fn configure(&self, settings: Value) {
        let r = self
            .try_http_body("POST", "/_wsconn/config", &settings.to_string())
            .expect("emulator config");
        assert!(r.contains('{'), "config refused: {r}");
    }

    /// {"calls", "mutating", "levels", "faults"} since the last reset.
    pub fn stats(&self) -> Value {
        serde_json::from_str(&self.try_http("GET", "/_wsconn/stats").expect("stats"))
            .expect("stats JSON")
    }

    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.mutating)
            .map(|c| format!("{} {}", c.service, c.operation))
            .collect()
    }

    pub fn count(&self, operation: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.operation == operation)
            .count()
    }

    /// Runs the real binary against this emulator, with no terminal on stdin.
    pub fn wsconn(&self, args: &[&str]) -> Run {
        self.wsconn_in(None, args)
    }

    /// Starts the real binary without waiting (for concurrent runs and kills).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(None, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wsconn")
    }

    /// Runs the real binary with extra environment variables.
    pub fn wsconn_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(None, args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("running wsconn");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn wsconn_in(&self, dir: Option<&Path>, args: &[&str]) -> Run {
        let out = self.command(dir, args).output().expect("running wsconn");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn command(&self, dir: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsconn"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("WSCONN_CACHE_DIR", repo().join("target/test-cache"))
            .env("WSCONN_DATA_DIR", repo().join("target/test-data"))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd.current_dir(
            dir.map(Path::to_path_buf)
                .unwrap_or_else(std::env::temp_dir),
        );
        cmd
    }

    pub async fn sdk(&self) -> Clients {
        let cfg: SdkConfig = wsconn::aws::sdk_loader()
            .region(Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await;
        Clients {
            ddb: aws_sdk_dynamodb::Client::new(&cfg),
            iam: aws_sdk_iam::Client::new(&cfg),
            lambda: aws_sdk_lambda::Client::new(&cfg),
            apigw: aws_sdk_apigatewayv2::Client::new(&cfg),
            logs: aws_sdk_cloudwatchlogs::Client::new(&cfg),
            acm: aws_sdk_acm::Client::new(&cfg),
            route53: aws_sdk_route53::Client::new(&cfg),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// "Another client": the SDK, used to read back and to change things out of band.
pub struct Clients {
    pub ddb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigw: aws_sdk_apigatewayv2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
}

impl Clients {
    /// Ids of APIs tagged `wsconn:stack=<stack>`.
    pub async fn apis_of(&self, stack: &str) -> Vec<String> {
        let out = self.apigw.get_apis().send().await.unwrap();
        out.items()
            .iter()
            .filter(|a| {
                a.tags()
                    .and_then(|t| t.get("wsconn:stack"))
                    .map(String::as_str)
                    == Some(stack)
            })
            .map(|a| a.api_id().unwrap().to_string())
            .collect()
    }

    pub async fn api_of(&self, stack: &str) -> String {
        let ids = self.apis_of(stack).await;
        assert_eq!(ids.len(), 1, "exactly one API tagged for {stack}: {ids:?}");
        ids[0].clone()
    }
}

/// Waits for a spawned run, killing it after `limit`.
pub fn finish(child: Child, limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = child;
    loop {
        if child.try_wait().expect("polling wsconn").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("collecting wsconn");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Reads the whole stack back with the SDK and checks every field wsconn manages.
pub async fn assert_stack_complete(c: &Clients, stack: &str, stage: &str) -> String {
    let table = format!("{stack}-connections");
    let t = c
        .ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(t.key_schema()[0].attribute_name(), "connectionid");
    assert_eq!(t.key_schema()[0].key_type().as_str(), "HASH");
    assert_eq!(t.attribute_definitions()[0].attribute_type().as_str(), "S");
    assert_eq!(
        t.billing_mode_summary()
            .unwrap()
            .billing_mode()
            .unwrap()
            .as_str(),
        "PAY_PER_REQUEST"
    );
    let ttl = c
        .ddb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.time_to_live_status().unwrap().as_str(), "ENABLED");
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    let tags = c
        .ddb
        .list_tags_of_resource()
        .resource_arn(t.table_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == OWNER && t.value() == stack)
    );

    // Roles: trust, exactly one inline policy, no managed policies, tagged.
    for (role, service, policy, actions, resource) in [
        (
            format!("{stack}-apigw-dynamodb"),
            "apigateway.amazonaws.com",
            "connections-table-write",
            json!(["dynamodb:PutItem", "dynamodb:DeleteItem"]),
            json!(t.table_arn().unwrap()),
        ),
        (
            format!("{stack}-default-fn"),
            "lambda.amazonaws.com",
            "write-own-logs",
            json!(["logs:CreateLogStream", "logs:PutLogEvents"]),
            json!(format!(
                "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{stack}-default:*"
            )),
        ),
    ] {
        let r = c
            .iam
            .get_role()
            .role_name(&role)
            .send()
            .await
            .unwrap()
            .role
            .unwrap();
        let trust: Value = serde_json::from_str(
            &urlencoding::decode(r.assume_role_policy_document().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            trust["Statement"][0]["Principal"]["Service"], service,
            "{role}"
        );
        let names = c
            .iam
            .list_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap();
        assert_eq!(names.policy_names(), [policy.to_string()], "{role}");
        let doc = c
            .iam
            .get_role_policy()
            .role_name(&role)
            .policy_name(policy)
            .send()
            .await
            .unwrap();
        let doc: Value =
            serde_json::from_str(&urlencoding::decode(doc.policy_document()).unwrap()).unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(doc["Statement"][0]["Action"], actions, "{role}");
        assert_eq!(doc["Statement"][0]["Resource"], resource, "{role}");
        let managed = c
            .iam
            .list_attached_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap();
        assert!(managed.attached_policies().is_empty(), "{role}");
        let tags = c
            .iam
            .list_role_tags()
            .role_name(&role)
            .send()
            .await
            .unwrap();
        assert!(
            tags.tags()
                .iter()
                .any(|t| t.key() == OWNER && t.value() == stack),
            "{role}"
        );
    }

    let group = format!("/aws/lambda/{stack}-default");
    let lg = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&group)
        .send()
        .await
        .unwrap();
    let lg = lg
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(group.as_str()))
        .expect("log group");
    assert_eq!(lg.retention_in_days(), Some(14));

    let function = format!("{stack}-default");
    let f = c
        .lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    let conf = f.configuration().unwrap();
    assert_eq!(conf.runtime().unwrap().as_str(), "nodejs24.x");
    assert_eq!(conf.handler(), Some("index.handler"));
    assert_eq!(
        conf.role(),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/{stack}-default-fn").as_str())
    );
    assert!(!conf.code_sha256().unwrap_or_default().is_empty());
    assert_eq!(
        f.tags().unwrap().get(OWNER).map(String::as_str),
        Some(stack)
    );

    // The API and its children.
    let api_id = c.api_of(stack).await;
    let api = c.apigw.get_api().api_id(&api_id).send().await.unwrap();
    assert_eq!(api.protocol_type().unwrap().as_str(), "WEBSOCKET");
    assert_eq!(
        api.route_selection_expression(),
        Some("$request.body.action")
    );
    let integrations = c
        .apigw
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    let integrations = integrations.items();
    let routes = c.apigw.get_routes().api_id(&api_id).send().await.unwrap();
    let routes = routes.items();
    let mut keys: Vec<_> = routes.iter().map(|r| r.route_key().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["$connect", "$default", "$disconnect"]);
    let mut targeted = Vec::new();
    let mut invoked: Option<String> = None;
    for r in routes {
        let target = r.target().unwrap().strip_prefix("integrations/").unwrap();
        let i = integrations
            .iter()
            .find(|i| i.integration_id() == Some(target))
            .unwrap_or_else(|| {
                panic!(
                    "route {} targets a missing integration",
                    r.route_key().unwrap()
                )
            });
        targeted.push(target.to_string());
        let rr = c
            .apigw
            .get_route_responses()
            .api_id(&api_id)
            .route_id(r.route_id().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            rr.items()
                .iter()
                .map(|x| x.route_response_key().unwrap())
                .collect::<Vec<_>>(),
            ["$default"]
        );
        assert_eq!(r.route_response_selection_expression(), Some("$default"));
        let key = r.route_key().unwrap();
        match key {
            "$default" => {
                assert_eq!(i.integration_type().unwrap().as_str(), "AWS_PROXY");
                // It invokes a published version of the function, never $LATEST.
                let uri = i.integration_uri().unwrap();
                let prefix = format!(
                    "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/arn:aws:lambda:{REGION}:{ACCOUNT}:function:{stack}-default:"
                );
                let v = uri
                    .strip_prefix(&prefix)
                    .and_then(|r| r.strip_suffix("/invocations"))
                    .unwrap_or_else(|| panic!("{uri} does not invoke a version"));
                assert!(v.parse::<u32>().is_ok(), "{uri}");
                invoked = Some(v.to_string());
            }
            _ => {
                let action = if key == "$connect" {
                    "PutItem"
                } else {
                    "DeleteItem"
                };
                assert_eq!(i.integration_type().unwrap().as_str(), "AWS");
                assert_eq!(i.integration_method(), Some("POST"));
                assert_eq!(
                    i.integration_uri().unwrap(),
                    format!("arn:aws:apigateway:{REGION}:dynamodb:action/{action}")
                );
                assert_eq!(
                    i.credentials_arn().unwrap(),
                    format!("arn:aws:iam::{ACCOUNT}:role/{stack}-apigw-dynamodb")
                );
                assert_eq!(i.template_selection_expression(), Some("\\$default"));
                let template = &i.request_templates().unwrap()["$default"];
                assert!(
                    template.contains(&format!("\"TableName\": \"{stack}-connections\"")),
                    "{template}"
                );
                assert!(!template.contains("@@"));
                let ir = c
                    .apigw
                    .get_integration_responses()
                    .api_id(&api_id)
                    .integration_id(target)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    ir.items()
                        .iter()
                        .map(|x| x.integration_response_key().unwrap())
                        .collect::<Vec<_>>(),
                    ["/200/"]
                );
            }
        }
    }
    let invoked = invoked.expect("$default has an integration");
    assert_eq!(integrations.len(), 3, "no orphan integrations");
    targeted.sort();
    targeted.dedup();
    assert_eq!(targeted.len(), 3, "each route has its own integration");

    let st = c
        .apigw
        .get_stage()
        .api_id(&api_id)
        .stage_name(stage)
        .send()
        .await
        .unwrap();
    let deployment = st.deployment_id().expect("stage points at a deployment");
    let d = c
        .apigw
        .get_deployment()
        .api_id(&api_id)
        .deployment_id(deployment)
        .send()
        .await
        .expect("the stage's deployment exists");
    // The live release records the version its integration invokes.
    let desc = d.description().unwrap_or_default();
    assert!(
        desc.starts_with("wsconn ") && desc.ends_with(&format!(" versions default={invoked}")),
        "{desc}"
    );

    // The version's own resource policy lets this API invoke it; $LATEST has none.
    let none = c.lambda.get_policy().function_name(&function).send().await;
    assert!(
        none.is_err_and(|e| e
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception())),
        "$LATEST has no policy"
    );
    let policy = c
        .lambda
        .get_policy()
        .function_name(&function)
        .qualifier(&invoked)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let st = &policy["Statement"][0];
    assert_eq!(
        st["Condition"]["ArnLike"]["AWS:SourceArn"],
        format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*")
    );
    assert_eq!(st["Action"], "lambda:InvokeFunction");
    api_id
}

/// Every resource of the stack answers "not found" (not just any error).
pub async fn assert_stack_gone(c: &Clients, stack: &str) {
    let table = format!("{stack}-connections");
    let e = c
        .ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect_err("table left");
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{table}: {e:?}"
    );
    for role in [
        format!("{stack}-apigw-dynamodb"),
        format!("{stack}-default-fn"),
    ] {
        let e = c
            .iam
            .get_role()
            .role_name(&role)
            .send()
            .await
            .expect_err("role left");
        assert!(
            e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()),
            "{role}: {e:?}"
        );
    }
    let e = c
        .lambda
        .get_function()
        .function_name(format!("{stack}-default"))
        .send()
        .await
        .expect_err("function left");
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "function: {e:?}"
    );
    let group = format!("/aws/lambda/{stack}-default");
    let lg = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&group)
        .send()
        .await
        .unwrap();
    assert!(
        lg.log_groups()
            .iter()
            .all(|g| g.log_group_name() != Some(group.as_str())),
        "log group left"
    );
    assert!(c.apis_of(stack).await.is_empty(), "API left");
    let lock = format!("/wsconn/{stack}/lock");
    let groups = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&lock)
        .send()
        .await
        .unwrap();
    assert!(groups.log_groups().is_empty(), "lock left");
}

/// The API's children, counted: (integrations, routes, deployments, stages).
pub async fn shape(c: &Clients, api_id: &str) -> (usize, usize, usize, usize) {
    let a = &c.apigw;
    let i = a.get_integrations().api_id(api_id).send().await.unwrap();
    let r = a.get_routes().api_id(api_id).send().await.unwrap();
    let d = a.get_deployments().api_id(api_id).send().await.unwrap();
    let s = a.get_stages().api_id(api_id).send().await.unwrap();
    (
        i.items().len(),
        r.items().len(),
        d.items().len(),
        s.items().len(),
    )
}

/// Copies mapping-templates/ and lambda/ into a fresh directory for editing.
pub fn assets_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["mapping-templates", "lambda"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(repo().join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).unwrap();
        }
    }
    dir
}

/// The changes of a JSON plan, as (resource, action, [fields]).
pub fn changes(plan: &Value) -> Vec<(String, String, Vec<String>)> {
    plan["changes"]
        .as_array()
        .expect("changes array")
        .iter()
        .map(|c| {
            (
                c["resource"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["field"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}
