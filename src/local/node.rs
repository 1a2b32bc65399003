//! One function of the stack, run warm in a Node.js process of its own ([`worker.mjs`]):
//! started at launch, reused by every invocation, restarted when it dies or overruns the
//! function's timeout, and replaced when its handler changes. Each function has its own
//! runtime (its own process, environment, memory limit and timeout), as separate Lambda
//! functions do, so one function's timeout never touches another's invocations.
//!
//! Invocations are multiplexed over the worker's stdin and stdout, one JSON line each
//! way with a request id, so many are in flight at once (the handler is async). Unlike
//! Lambda, which gives each concurrent invocation an execution environment of its own,
//! the invocations of one function share its process: a timeout kills the worker, and
//! with it that function's invocations that were in flight on it.

use super::log::Log;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::{mpsc, oneshot};

const WORKER: &str = include_str!("worker.mjs");
/// How long a new worker may take to load the handler.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// What one invocation came to.
#[derive(Debug)]
pub enum Outcome {
    /// The handler returned this value.
    Returned(serde_json::Value),
    /// The handler threw (or its module failed to load).
    Threw(String),
    /// It ran past the function's timeout; the worker was killed.
    TimedOut,
    /// The worker died, or could not be started.
    Failed(String),
}

/// Where the handler's module comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerSpec {
    /// An import URL: the file in `--assets-dir` (so its relative imports work), or a
    /// `data:` URL of the built-in copy.
    pub url: String,
    /// For messages: the file, or "the built-in lambda/index.mjs".
    pub label: String,
}

impl HandlerSpec {
    pub fn file(path: &Path) -> HandlerSpec {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        HandlerSpec {
            url: format!("file://{}", encode_path(&abs.to_string_lossy())),
            label: abs.display().to_string(),
        }
    }

    pub fn inline(source: &str) -> HandlerSpec {
        use base64::Engine as _;
        HandlerSpec {
            url: format!(
                "data:text/javascript;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(source)
            ),
            label: "the built-in lambda/index.mjs".into(),
        }
    }
}

/// Percent-encodes what a file URL's path cannot hold literally.
fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One running Node.js process.
struct Worker {
    pid: u32,
    /// The way to its stdin; taken (closing stdin) when the worker is retired.
    tx: Mutex<Option<mpsc::UnboundedSender<String>>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
    next_id: AtomicU64,
    dead: AtomicBool,
}

impl Worker {
    /// Marks the worker dead and fails every invocation in flight on it.
    fn die(&self, why: &str) {
        self.dead.store(true, Ordering::SeqCst);
        let drained: Vec<_> = match self.pending.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(_) => Vec::new(),
        };
        for (_, tx) in drained {
            let _ = tx.send(Outcome::Failed(why.to_string()));
        }
    }

    fn send(&self, line: String) -> bool {
        match self.tx.lock() {
            Ok(tx) => tx.as_ref().is_some_and(|t| t.send(line).is_ok()),
            Err(_) => false,
        }
    }

    fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        // SAFETY: kill(2) on a pid this process spawned; at worst it is already gone.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

enum Slot {
    Empty,
    Ready(Arc<Worker>),
    /// The handler's module failed to load; every invocation fails with this until the
    /// handler changes.
    LoadFailed(String),
}

pub struct NodeRuntime {
    /// Itself, for the tasks that start a replacement worker.
    me: std::sync::Weak<NodeRuntime>,
    /// Set on shutdown: no more replacements.
    stopping: AtomicBool,
    node: PathBuf,
    spec: Mutex<HandlerSpec>,
    slot: tokio::sync::Mutex<Slot>,
    timeout: Duration,
    pub function_name: String,
    memory_mb: i32,
    export: String,
    /// The worker's whole environment (nothing is inherited from wsconn's).
    env: Vec<(String, String)>,
    /// Its working directory (the handler's directory, as Lambda's `/var/task`).
    cwd: Option<PathBuf>,
    log: Log,
}

/// How to run one function.
pub struct FunctionSpec<'a> {
    pub node: PathBuf,
    pub handler: HandlerSpec,
    pub function: &'a crate::stack::FunctionDef,
    pub timeout: Duration,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

/// Finds `node`: `--node PATH`, or the first `node` on PATH.
pub fn find_node(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(format!(
            "--node {}: no such file; pass the path of a Node.js binary",
            p.display()
        ));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("node");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err("node: not found on PATH; the stack's functions (the $default route's lambda/index.mjs at least) run in Node.js, so install Node.js (18 or newer) or pass --node PATH".into())
}

/// `node --version`, which also checks that the binary is Node.js.
pub async fn node_version(node: &Path) -> Result<String, String> {
    let out = tokio::process::Command::new(node)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("running {} --version: {e}", node.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --version failed ({}); is it Node.js?",
            node.display(),
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl NodeRuntime {
    /// Starts the function's first worker, so its first invocation is served warm. A
    /// handler that fails to load is reported but does not stop wsconn.
    pub async fn start(spec: FunctionSpec<'_>, log: Log) -> Arc<NodeRuntime> {
        let function = spec.function;
        let export = function
            .handler
            .rsplit('.')
            .next()
            .unwrap_or("handler")
            .to_string();
        let rt = Arc::new_cyclic(|me| NodeRuntime {
            me: me.clone(),
            stopping: AtomicBool::new(false),
            node: spec.node,
            spec: Mutex::new(spec.handler),
            slot: tokio::sync::Mutex::new(Slot::Empty),
            timeout: spec.timeout,
            function_name: function.name.clone(),
            memory_mb: function.memory_mb,
            export,
            env: spec.env,
            cwd: spec.cwd,
            log,
        });
        let _ = rt.ensure_worker().await;
        rt
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs the handler on one event (its JSON text).
    pub async fn invoke(&self, event_json: &str) -> Outcome {
        let worker = match self.ensure_worker().await {
            Ok(w) => w,
            Err(e) => return Outcome::Failed(e),
        };
        let id = worker.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = worker.pending.lock() {
            p.insert(id, tx);
        }
        // `die` sets `dead` before it drains: either it saw this entry, or we see `dead`.
        if worker.dead.load(Ordering::SeqCst) {
            self.forget(&worker, id);
            return Outcome::Failed(format!("the Node.js worker (pid {}) exited", worker.pid));
        }
        let line = format!(
            "{{\"id\":{id},\"timeoutMs\":{},\"event\":{event_json}}}\n",
            self.timeout.as_millis()
        );
        if !worker.send(line) {
            self.forget(&worker, id);
            return Outcome::Failed(format!("the Node.js worker (pid {}) exited", worker.pid));
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => {
                Outcome::Failed(format!("the Node.js worker (pid {}) exited", worker.pid))
            }
            Err(_) => {
                self.forget(&worker, id);
                self.log.info(format!(
                    "node {}: an invocation ran past the function's {} ms timeout; killing its worker (pid {}) and starting a new one",
                    self.function_name,
                    self.timeout.as_millis(),
                    worker.pid
                ));
                worker.kill();
                self.restart_soon();
                Outcome::TimedOut
            }
        }
    }

    /// Starts a replacement worker in the background, so the next message is served
    /// warm.
    fn restart_soon(&self) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        if let Some(rt) = self.me.upgrade() {
            tokio::spawn(async move {
                let _ = rt.ensure_worker().await;
            });
        }
    }

    fn forget(&self, worker: &Worker, id: u64) {
        if let Ok(mut p) = worker.pending.lock() {
            p.remove(&id);
        }
    }

    /// The live worker, starting one if there is none (or it died).
    async fn ensure_worker(&self) -> Result<Arc<Worker>, String> {
        let mut slot = self.slot.lock().await;
        match &*slot {
            Slot::Ready(w) if !w.dead.load(Ordering::SeqCst) => return Ok(w.clone()),
            Slot::LoadFailed(e) => return Err(e.clone()),
            Slot::Ready(w) => self.log.info(format!(
                "node {}: the worker (pid {}) is gone; starting a new one",
                self.function_name, w.pid
            )),
            Slot::Empty => {}
        }
        let spec = self
            .spec
            .lock()
            .map(|s| s.clone())
            .map_err(|e| e.to_string())?;
        match self.spawn(&spec).await {
            Ok(w) => {
                self.log.info(format!(
                    "node {}: worker pid {} loaded {} ({} MB, timeout {} ms)",
                    self.function_name,
                    w.pid,
                    spec.label,
                    self.memory_mb,
                    self.timeout.as_millis()
                ));
                *slot = Slot::Ready(w.clone());
                Ok(w)
            }
            Err(SpawnError::Load(e)) => {
                self.log.info(format!(
                    "node {}: the handler failed to load: {e}; its invocations fail until it is fixed",
                    self.function_name
                ));
                *slot = Slot::LoadFailed(e.clone());
                Err(e)
            }
            Err(SpawnError::Start(e)) => {
                self.log.info(format!("node {}: {e}", self.function_name));
                *slot = Slot::Empty;
                Err(e)
            }
        }
    }

    /// The handler changed: later messages go to a new worker loaded from `spec`; the
    /// old one finishes what it has in flight (bounded by the timeout), then exits.
    pub async fn reload(&self, spec: HandlerSpec) {
        if let Ok(mut s) = self.spec.lock() {
            *s = spec;
        }
        let old = std::mem::replace(&mut *self.slot.lock().await, Slot::Empty);
        if let Slot::Ready(w) = old {
            retire(w, self.timeout);
        }
        let _ = self.ensure_worker().await;
    }

    /// Kills the worker (on shutdown).
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Slot::Ready(w) = std::mem::replace(&mut *self.slot.lock().await, Slot::Empty) {
            w.kill();
        }
    }

    async fn spawn(&self, spec: &HandlerSpec) -> Result<Arc<Worker>, SpawnError> {
        let mut cmd = tokio::process::Command::new(&self.node);
        // Lambda's memory setting bounds the whole environment; the V8 heap is what a
        // handler can grow, so that is what is bounded here.
        cmd.arg(format!("--max-old-space-size={}", self.memory_mb.max(16)))
            .args(["--input-type=module", "-e", WORKER])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SpawnError::Start(format!("starting {}: {e}", self.node.display())))?;
        let pid = child.id().unwrap_or(0);
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => return Err(SpawnError::Start("the Node.js worker has no pipes".into())),
            };
        let (tx, rx) = mpsc::unbounded_channel::<String>();
        let worker = Arc::new(Worker {
            pid,
            tx: Mutex::new(Some(tx)),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            dead: AtomicBool::new(false),
        });
        tokio::spawn(write_loop(stdin, rx));
        let log = self.log.clone();
        let name = self.function_name.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                log.info(format!("[{name} pid {pid}] {l}"));
            }
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(read_loop(stdout, worker.clone(), ready_tx));
        let w = worker.clone();
        let log = self.log.clone();
        let me = self.me.clone();
        let name = self.function_name.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let why = match status {
                Ok(s) => format!("the Node.js worker (pid {pid}) exited ({s})"),
                Err(e) => format!("the Node.js worker (pid {pid}) was lost: {e}"),
            };
            let unexpected = !w.dead.swap(true, Ordering::SeqCst);
            if unexpected {
                log.info(format!("node {name}: {why}"));
            }
            w.die(&why);
            if unexpected && let Some(rt) = me.upgrade() {
                rt.restart_soon();
            }
        });
        let init = serde_json::json!({"init": {
            "url": spec.url,
            "export": self.export,
            "functionName": self.function_name,
            "memoryMb": self.memory_mb,
        }});
        worker.send(format!("{init}\n"));
        match tokio::time::timeout(LOAD_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(worker),
            Ok(Ok(Err(e))) => {
                worker.kill();
                Err(SpawnError::Load(e))
            }
            Ok(Err(_)) => Err(SpawnError::Start(format!(
                "the Node.js worker (pid {pid}) exited before loading {}",
                spec.label
            ))),
            Err(_) => {
                worker.kill();
                Err(SpawnError::Start(format!(
                    "the Node.js worker (pid {pid}) did not load {} within {} s",
                    spec.label,
                    LOAD_TIMEOUT.as_secs()
                )))
            }
        }
    }
}

enum SpawnError {
    Start(String),
    Load(String),
}

/// Closes a replaced worker's stdin so it exits when idle; kills it if it has not
/// after `grace`.
fn retire(w: Arc<Worker>, grace: Duration) {
    tokio::spawn(async move {
        // Dropping the sender ends the write loop, which closes stdin.
        if let Ok(mut tx) = w.tx.lock() {
            tx.take();
        }
        tokio::time::sleep(grace).await;
        if !w.dead.load(Ordering::SeqCst) {
            w.kill();
        }
    });
}

async fn write_loop(
    mut stdin: tokio::process::ChildStdin,
    mut rx: mpsc::UnboundedReceiver<String>,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        buf.extend_from_slice(first.as_bytes());
        // Everything already queued goes out in the same write.
        while buf.len() < 1 << 20 {
            match rx.try_recv() {
                Ok(l) => buf.extend_from_slice(l.as_bytes()),
                Err(_) => break,
            }
        }
        if stdin.write_all(&buf).await.is_err() {
            break;
        }
        buf.clear();
    }
}

async fn read_loop(
    stdout: tokio::process::ChildStdout,
    worker: Arc<Worker>,
    ready: oneshot::Sender<Result<(), String>>,
) {
    let mut ready = Some(ready);
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(ok) = v.get("ready").and_then(|r| r.as_bool()) {
            if let Some(tx) = ready.take() {
                let _ = tx.send(if ok {
                    Ok(())
                } else {
                    Err(describe_error(&v["error"]))
                });
            }
            continue;
        }
        let Some(id) = v.get("id").and_then(|i| i.as_u64()) else {
            continue;
        };
        let tx = worker.pending.lock().ok().and_then(|mut p| p.remove(&id));
        if let Some(tx) = tx {
            let outcome = match v.get("error") {
                Some(e) if !e.is_null() => Outcome::Threw(describe_error(e)),
                _ => {
                    let mut v = v;
                    Outcome::Returned(v.get_mut("result").map(|r| r.take()).unwrap_or_default())
                }
            };
            let _ = tx.send(outcome);
        }
    }
}

/// `Type: message` of an error the worker reported.
fn describe_error(e: &serde_json::Value) -> String {
    let ty = e["errorType"].as_str().unwrap_or("Error");
    let msg = e["errorMessage"].as_str().unwrap_or("");
    format!("{ty}: {msg}")
}
