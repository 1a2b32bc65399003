//! A running `wsconn local` and the clients tests talk to it with.

use super::repo;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn wscat() -> PathBuf {
    let p = repo().join("target/node-tools/node_modules/.bin/wscat");
    assert!(
        p.exists(),
        "{} is missing: run scripts/node-tools (scripts/test does)",
        p.display()
    );
    p
}

/// wscat's stdout, line by line.
pub struct Wscat {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Wscat {
    pub fn connect(url: &str) -> Wscat {
        let mut child = Command::new(wscat())
            .args(["-c", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wscat");
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Wscat {
            child,
            stdin,
            lines,
        }
    }

    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line holding a JSON object, parsed (wscat prefixes a prompt).
    pub fn read_json(&self) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let l = self
                .lines
                .recv_timeout(left)
                .expect("wscat printed the echo in time");
            if let Some(start) = l.find('{') {
                return serde_json::from_str(&l[start..])
                    .unwrap_or_else(|e| panic!("wscat line is not JSON ({e}): {l}"));
            }
        }
    }

    /// The next line of its output that contains `part`.
    pub fn read_line_containing(&self, part: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let l = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("wscat printed no line with {part:?} in time"));
            if l.contains(part) {
                return l;
            }
        }
    }

    /// wscat against a URL that refuses the handshake: its exit status and what it
    /// printed (stdout and stderr), with stdin held open as a user's terminal would.
    pub fn refused(url: &str) -> (Option<i32>, String) {
        let mut child = Command::new(wscat())
            .args(["-c", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wscat");
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("wscat stayed connected to {url}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut text = String::new();
        use std::io::Read as _;
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        (status.code(), text)
    }

    /// Ends input, as a user closing wscat; wscat disconnects and exits.
    pub fn quit(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + DEADLINE;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "wscat did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Wscat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
pub type Item = HashMap<String, AttributeValue>;

pub fn unique_stack(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A running `wsconn local`.
pub struct Local {
    pub child: Option<Child>,
    pub ready: Value,
    pub stderr: Arc<Mutex<String>>,
}

impl Local {
    pub fn start(args: &[&str]) -> Local {
        Local::start_env(args, &[])
    }

    /// `wsconn --output json --stack <unique> local --port 0 ARGS`, waiting for its
    /// one JSON line.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Local {
        Local::start_stack(&unique_stack("t"), args, env)
    }

    pub fn start_stack(stack: &str, args: &[&str], env: &[(&str, &str)]) -> Local {
        let mut cmd = wsconn_command();
        cmd.args(["--output", "json", "--stack", stack, "local", "--port", "0"])
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Local::spawn(cmd)
    }

    /// `wsconn --output json local --port 0` run in `dir`, as a user runs it there (the
    /// stack and everything else from that directory's wsconn.toml).
    pub fn start_in(dir: &std::path::Path) -> Local {
        let mut cmd = wsconn_command();
        cmd.args(["--output", "json", "local", "--port", "0"])
            .current_dir(dir);
        Local::spawn(cmd)
    }

    /// Starts a prepared `wsconn … local` command (it must print the ready line).
    pub fn spawn_command(cmd: Command) -> Local {
        Local::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Local {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting wsconn local");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut e = err.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            if let Some(Ok(l)) = lines.next() {
                let _ = tx.send(l);
            }
            for _ in lines {}
        });
        let line = match rx.recv_timeout(DEADLINE) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "wsconn local printed no ready line\n--- stderr\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("ready line is not JSON ({e}): {line}"));
        Local {
            child: Some(child),
            ready,
            stderr,
        }
    }

    pub fn get(&self, key: &str) -> String {
        self.ready[key].as_str().unwrap().to_string()
    }

    pub fn ws_url(&self) -> String {
        self.get("websocket_url")
    }

    pub fn table(&self) -> String {
        self.get("table_name")
    }

    /// The management API's endpoint, as the SDK wants it: `http://HOST:PORT/<stage>`.
    pub fn management_endpoint(&self) -> String {
        self.get("connections_url")
            .trim_end_matches("/@connections")
            .to_string()
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a log line containing every one of `parts`; returns it.
    pub fn wait_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(l) = self
                .log()
                .lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {parts:?}\n--- stderr\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGTERM, then the exit code (bounded).
    pub fn terminate(&mut self) -> i32 {
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("wsconn local did not exit after SIGTERM\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub async fn ddb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&sdk_config(&self.get("dynamodb_endpoint")).await)
    }

    pub async fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        aws_sdk_apigatewaymanagement::Client::new(&sdk_config(&self.management_endpoint()).await)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn wsconn_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsconn"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        // One cache (the provided SDK) and one local CA for every test, kept between runs.
        .env("WSCONN_CACHE_DIR", repo().join("target/test-cache"))
        .env("WSCONN_DATA_DIR", repo().join("target/test-data"))
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    cmd
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    wsconn::aws::sdk_loader()
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

pub async fn get_item(ddb: &aws_sdk_dynamodb::Client, table: &str, id: &str) -> Option<Item> {
    ddb.get_item()
        .table_name(table)
        .key("connectionid", AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

pub async fn count(ddb: &aws_sdk_dynamodb::Client, table: &str) -> i32 {
    ddb.scan()
        .table_name(table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .unwrap()
        .count
}

pub async fn wait_gone(ddb: &aws_sdk_dynamodb::Client, table: &str, id: &str) {
    let deadline = Instant::now() + DEADLINE;
    while get_item(ddb, table, id).await.is_some() {
        assert!(Instant::now() < deadline, "item {id} was never removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn s(item: &Item, k: &str) -> String {
    item.get(k)
        .unwrap_or_else(|| panic!("no attribute {k} in {item:?}"))
        .as_s()
        .unwrap()
        .clone()
}

pub fn n(item: &Item, k: &str) -> i64 {
    item.get(k).unwrap().as_n().unwrap().parse().unwrap()
}

pub fn m(item: &Item, k: &str) -> HashMap<String, String> {
    item.get(k)
        .unwrap()
        .as_m()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_s().unwrap().clone()))
        .collect()
}

pub async fn connect(url: &str) -> Ws {
    tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake in time")
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
        .0
}

/// The next data frame (skipping control frames), as text; a close is `Err(code)`.
pub async fn next_text(ws: &mut Ws) -> Result<String, Option<u16>> {
    loop {
        let m = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a frame in time");
        match m {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Binary(b))) => return Ok(String::from_utf8_lossy(&b).into_owned()),
            Some(Ok(Message::Close(f))) => return Err(f.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// Sends `body` and returns the handler's echo of the event.
pub async fn echo(ws: &mut Ws, body: &str) -> Value {
    ws.send(Message::Text(body.into())).await.unwrap();
    let t = next_text(ws).await.expect("an echo");
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("echo is not JSON ({e}): {t}"))
}

/// Connects and learns the connection id from an echo.
pub async fn connect_with_id(url: &str) -> (Ws, String, Value) {
    let mut ws = connect(url).await;
    let ev = echo(&mut ws, "hello").await;
    let id = ev["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string();
    (ws, id, ev)
}
