//! Test harness: a fresh emulator per test (moto server with the gap-filling launcher),
//! the real `wsconn` binary, SDK clients for out-of-band reads and changes, and the
//! launcher's call recorder.

#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

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
        let port = free_port();
        let child = Command::new(python())
            .arg(repo().join("tests/emulator/launcher.py"))
            .args(["--port", &port.to_string()])
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
        resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
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

    pub fn wsconn_in(&self, dir: Option<&Path>, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsconn"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
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
        let out = cmd.output().expect("running wsconn");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn sdk(&self) -> Clients {
        let cfg: SdkConfig = aws_config::defaults(BehaviorVersion::latest())
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
