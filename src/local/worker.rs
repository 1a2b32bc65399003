//! One function of the stack, run warm in a process of its own: a Node.js worker
//! ([`worker.mjs`]) or a Python one ([`worker.py`]), which speak one protocol, so this
//! file knows "a worker" and asks a [`Launcher`] per runtime to start one. A worker is
//! reused by every invocation, restarted when it dies or overruns the function's
//! timeout, and replaced when its handler changes. Each function has its own runtime
//! (its own process, environment, memory limit and timeout), as separate Lambda
//! functions do, so one function's timeout never touches another's invocations.
//!
//! Workers start on demand, as Lambda's execution environments do: a function's first
//! invocation starts its worker (a local cold start, said so in the log), and a worker
//! idle for `--idle-workers` is stopped. Warm functions (the authorizer, `$default`, or
//! all of them with `--warm`) start at launch and stay.
//!
//! Invocations are multiplexed over the worker's stdin and stdout, one JSON line each
//! way with a request id, so many are in flight at once (Node.js handlers are async;
//! the Python worker runs them in threads). Unlike Lambda, which gives each concurrent
//! invocation an execution environment of its own, the invocations of one function
//! share its process: a timeout kills the worker, and with it that function's
//! invocations that were in flight on it.

use super::log::Log;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::{mpsc, oneshot};

const NODE_WORKER: &str = include_str!("worker.mjs");
const PYTHON_WORKER: &str = include_str!("worker.py");
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
pub enum HandlerSpec {
    Node {
        /// An import URL: the file in the handler directory or `--assets-dir` (so its
        /// relative imports work), or a `data:` URL of the built-in copy.
        url: String,
        /// For messages: the file, or "the built-in lambda/index.mjs".
        label: String,
    },
    Python {
        /// The handler directory, first on `sys.path`.
        root: PathBuf,
        /// The dotted module (`app`, `pkg.mod`).
        module: String,
        label: String,
    },
}

impl HandlerSpec {
    pub fn file(path: &Path) -> HandlerSpec {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        HandlerSpec::Node {
            url: format!("file://{}", encode_path(&abs.to_string_lossy())),
            label: abs.display().to_string(),
        }
    }

    pub fn inline(source: &str) -> HandlerSpec {
        use base64::Engine as _;
        HandlerSpec::Node {
            url: format!(
                "data:text/javascript;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(source)
            ),
            label: "the built-in lambda/index.mjs".into(),
        }
    }

    /// A Python module file (`pkg/mod.py`, `pkg/__init__.py`) under `root`.
    pub fn python(root: &Path, module_file: &str) -> HandlerSpec {
        let module = module_file
            .trim_end_matches(".py")
            .trim_end_matches("/__init__")
            .replace('/', ".");
        HandlerSpec::Python {
            root: root.to_path_buf(),
            module,
            label: root.join(module_file).display().to_string(),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            HandlerSpec::Node { label, .. } | HandlerSpec::Python { label, .. } => label,
        }
    }
}

/// How a runtime's worker is started: the interpreter, its arguments, and the init line
/// that loads the handler.
#[derive(Debug, Clone, PartialEq)]
pub enum Launcher {
    Node(PathBuf),
    Python(PathBuf),
}

impl Launcher {
    /// `node` or `python`, for log lines.
    pub fn name(&self) -> &'static str {
        match self {
            Launcher::Node(_) => "node",
            Launcher::Python(_) => "python",
        }
    }

    fn binary(&self) -> &Path {
        match self {
            Launcher::Node(p) | Launcher::Python(p) => p,
        }
    }

    /// The worker's command line. Node.js: Lambda's memory setting bounds the whole
    /// environment, and the V8 heap is what a handler can grow, so that is what is
    /// bounded. Python: the worker bounds its own address space (`RLIMIT_AS`), best
    /// effort.
    fn command(&self, memory_mb: i32) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(self.binary());
        match self {
            Launcher::Node(_) => {
                cmd.arg(format!("--max-old-space-size={}", memory_mb.max(16)))
                    .args(["--input-type=module", "-e", NODE_WORKER]);
            }
            Launcher::Python(_) => {
                cmd.args(["-u", "-c", PYTHON_WORKER]);
            }
        }
        cmd
    }

    /// The worker's first line: what to load and the function's facts.
    fn init(&self, spec: &HandlerSpec, rt: &FunctionRuntime) -> serde_json::Value {
        match spec {
            HandlerSpec::Node { url, .. } => serde_json::json!({"init": {
                "url": url,
                "export": rt.export,
                "functionName": rt.function_name,
                "memoryMb": rt.memory_mb,
                "region": rt.region,
            }}),
            HandlerSpec::Python { root, module, .. } => serde_json::json!({"init": {
                "root": root,
                "module": module,
                "export": rt.export,
                "functionName": rt.function_name,
                "functionVersion": "$LATEST",
                "memoryMb": rt.memory_mb,
                "region": rt.region,
                "logGroupName": format!("/aws/lambda/{}", rt.function_name),
                "logStreamName": "local",
            }}),
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

pub struct FunctionRuntime {
    /// Itself, for the tasks that start a replacement worker.
    me: std::sync::Weak<FunctionRuntime>,
    /// Set on shutdown: no more replacements.
    stopping: AtomicBool,
    launcher: Launcher,
    spec: Mutex<HandlerSpec>,
    slot: tokio::sync::Mutex<Slot>,
    timeout: Duration,
    pub function_name: String,
    memory_mb: i32,
    /// What the handler module exports (`handler`; a dotted path for Node.js).
    export: String,
    /// The function's region (`context.invokedFunctionArn`).
    region: String,
    /// The worker's whole environment (nothing is inherited from wsconn's).
    env: Vec<(String, String)>,
    /// Its working directory (the handler's directory, as Lambda's `/var/task`).
    cwd: Option<PathBuf>,
    /// Started at launch and never stopped for idleness.
    warm: bool,
    /// A worker unused this long is stopped (`None`: never).
    idle: Option<Duration>,
    /// When the last invocation ended (or the worker started).
    last_used: Mutex<Instant>,
    log: Log,
}

/// How to run one function.
pub struct FunctionSpec<'a> {
    pub launcher: Launcher,
    pub handler: HandlerSpec,
    pub function: &'a crate::stack::FunctionDef,
    /// The export to call (`handler`).
    pub export: String,
    pub region: String,
    pub timeout: Duration,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub warm: bool,
    pub idle: Option<Duration>,
}

/// Finds a program: `explicit`, or the first `name` on PATH; `what` says what needs it.
pub fn find_program(
    explicit: Option<&Path>,
    name: &str,
    flag: &str,
    what: &str,
) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        let kind = if name == "node" {
            "a Node.js"
        } else {
            "a Python"
        };
        return Err(format!(
            "{flag} {}: no such file; pass the path of {kind} binary",
            p.display()
        ));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "{name}: not found on PATH; {what}, so install it or pass {flag} PATH"
    ))
}

/// `<binary> --version` (`v20.20.2`, `Python 3.11.7`), which also checks what it is.
pub async fn version(binary: &Path) -> Result<String, String> {
    let out = tokio::process::Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("running {} --version: {e}", binary.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --version failed ({})",
            binary.display(),
            out.status
        ));
    }
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    Ok(String::from_utf8_lossy(&text).trim().to_string())
}

impl FunctionRuntime {
    /// A function's runtime. A warm one starts its worker now, so its first invocation
    /// is served warm; the others start on their first invocation. A handler that fails
    /// to load is reported but does not stop wsconn.
    pub async fn start(spec: FunctionSpec<'_>, log: Log) -> Arc<FunctionRuntime> {
        let function = spec.function;
        let rt = Arc::new_cyclic(|me| FunctionRuntime {
            me: me.clone(),
            stopping: AtomicBool::new(false),
            launcher: spec.launcher,
            spec: Mutex::new(spec.handler),
            slot: tokio::sync::Mutex::new(Slot::Empty),
            timeout: spec.timeout,
            function_name: function.name.clone(),
            memory_mb: function.memory_mb,
            export: spec.export,
            region: spec.region,
            env: spec.env,
            cwd: spec.cwd,
            warm: spec.warm,
            idle: spec.idle,
            last_used: Mutex::new(Instant::now()),
            log,
        });
        if rt.warm {
            let _ = rt.ensure_worker(false).await;
        }
        if let Some(idle) = rt.idle.filter(|_| !rt.warm) {
            spawn_idle_reaper(Arc::downgrade(&rt), idle);
        }
        rt
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn is_warm(&self) -> bool {
        self.warm
    }

    fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }

    /// Runs the handler on one event (its JSON text).
    pub async fn invoke(&self, event_json: &str) -> Outcome {
        let worker = match self.ensure_worker(true).await {
            Ok(w) => w,
            Err(e) => return Outcome::Failed(e),
        };
        self.touch();
        let outcome = self.invoke_on(&worker, event_json).await;
        self.touch();
        outcome
    }

    async fn invoke_on(&self, worker: &Arc<Worker>, event_json: &str) -> Outcome {
        let what = self.launcher.name();
        let id = worker.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = worker.pending.lock() {
            p.insert(id, tx);
        }
        // `die` sets `dead` before it drains: either it saw this entry, or we see `dead`.
        if worker.dead.load(Ordering::SeqCst) {
            self.forget(worker, id);
            return Outcome::Failed(format!("the {what} worker (pid {}) exited", worker.pid));
        }
        let line = format!(
            "{{\"id\":{id},\"timeoutMs\":{},\"event\":{event_json}}}\n",
            self.timeout.as_millis()
        );
        if !worker.send(line) {
            self.forget(worker, id);
            return Outcome::Failed(format!("the {what} worker (pid {}) exited", worker.pid));
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Failed(format!("the {what} worker (pid {}) exited", worker.pid)),
            Err(_) => {
                self.forget(worker, id);
                self.log.info(format!(
                    "{what} {}: an invocation ran past the function's {} ms timeout; killing its worker (pid {}){}",
                    self.function_name,
                    self.timeout.as_millis(),
                    worker.pid,
                    if self.warm { " and starting a new one" } else { "; the next invocation starts a new one" }
                ));
                worker.kill();
                self.restart_soon();
                Outcome::TimedOut
            }
        }
    }

    /// Starts a replacement worker in the background (warm functions only), so the next
    /// message is served warm.
    fn restart_soon(&self) {
        if self.stopping.load(Ordering::SeqCst) || !self.warm {
            return;
        }
        if let Some(rt) = self.me.upgrade() {
            tokio::spawn(async move {
                let _ = rt.ensure_worker(false).await;
            });
        }
    }

    fn forget(&self, worker: &Worker, id: u64) {
        if let Ok(mut p) = worker.pending.lock() {
            p.remove(&id);
        }
    }

    /// The live worker, starting one if there is none (or it died). `on_demand`: an
    /// invocation is waiting, so a start is a cold start, and the log says so.
    async fn ensure_worker(&self, on_demand: bool) -> Result<Arc<Worker>, String> {
        let what = self.launcher.name();
        let mut slot = self.slot.lock().await;
        match &*slot {
            Slot::Ready(w) if !w.dead.load(Ordering::SeqCst) => return Ok(w.clone()),
            Slot::LoadFailed(e) => return Err(e.clone()),
            Slot::Ready(w) => self.log.info(format!(
                "{what} {}: the worker (pid {}) is gone; starting a new one",
                self.function_name, w.pid
            )),
            Slot::Empty => {}
        }
        let spec = self
            .spec
            .lock()
            .map(|s| s.clone())
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        match self.spawn(&spec).await {
            Ok(w) => {
                self.log.info(format!(
                    "{what} {}: {}worker pid {} loaded {} in {} ms ({} MB, timeout {} ms)",
                    self.function_name,
                    if on_demand { "cold start: " } else { "" },
                    w.pid,
                    spec.label(),
                    started.elapsed().as_millis(),
                    self.memory_mb,
                    self.timeout.as_millis()
                ));
                self.touch();
                *slot = Slot::Ready(w.clone());
                Ok(w)
            }
            Err(SpawnError::Load(e)) => {
                self.log.info(format!(
                    "{what} {}: the handler failed to load: {e}; its invocations fail until it is fixed",
                    self.function_name
                ));
                *slot = Slot::LoadFailed(e.clone());
                Err(e)
            }
            Err(SpawnError::Start(e)) => {
                self.log.info(format!("{what} {}: {e}", self.function_name));
                *slot = Slot::Empty;
                Err(e)
            }
        }
    }

    /// The handler changed: later messages go to a new worker loaded from `spec`; the
    /// old one finishes what it has in flight (bounded by the timeout), then exits. A
    /// warm function starts the new worker now; another on its next invocation.
    pub async fn reload(&self, spec: HandlerSpec) {
        if let Ok(mut s) = self.spec.lock() {
            *s = spec;
        }
        let old = std::mem::replace(&mut *self.slot.lock().await, Slot::Empty);
        if let Slot::Ready(w) = old {
            retire(w, self.timeout);
        }
        if self.warm {
            let _ = self.ensure_worker(false).await;
        }
    }

    /// Stops the worker if it has been idle for `idle` with nothing in flight.
    async fn stop_if_idle(&self, idle: Duration) {
        let since = self
            .last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default();
        if since < idle {
            return;
        }
        let mut slot = self.slot.lock().await;
        let Slot::Ready(w) = &*slot else {
            return;
        };
        let busy = w.pending.lock().map(|p| !p.is_empty()).unwrap_or(true);
        if busy || w.dead.load(Ordering::SeqCst) {
            return;
        }
        self.log.info(format!(
            "{} {}: stopping its worker (pid {}), idle for {} s; the next invocation starts a new one",
            self.launcher.name(),
            self.function_name,
            w.pid,
            since.as_secs()
        ));
        if let Slot::Ready(w) = std::mem::replace(&mut *slot, Slot::Empty) {
            retire(w, self.timeout);
        }
    }

    /// Kills the worker (on shutdown).
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Slot::Ready(w) = std::mem::replace(&mut *self.slot.lock().await, Slot::Empty) {
            w.kill();
        }
    }

    async fn spawn(&self, spec: &HandlerSpec) -> Result<Arc<Worker>, SpawnError> {
        let what = self.launcher.name();
        let mut cmd = self.launcher.command(self.memory_mb);
        cmd.env_clear().envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                SpawnError::Start(format!(
                    "starting {}: {e}",
                    self.launcher.binary().display()
                ))
            })?;
        let pid = child.id().unwrap_or(0);
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => return Err(SpawnError::Start(format!("the {what} worker has no pipes"))),
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
                Ok(s) => format!("the {what} worker (pid {pid}) exited ({s})"),
                Err(e) => format!("the {what} worker (pid {pid}) was lost: {e}"),
            };
            let unexpected = !w.dead.swap(true, Ordering::SeqCst);
            if unexpected {
                log.info(format!("{what} {name}: {why}"));
            }
            w.die(&why);
            if unexpected && let Some(rt) = me.upgrade() {
                rt.restart_soon();
            }
        });
        let init = self.launcher.init(spec, self);
        worker.send(format!("{init}\n"));
        match tokio::time::timeout(LOAD_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(worker),
            Ok(Ok(Err(e))) => {
                worker.kill();
                Err(SpawnError::Load(e))
            }
            Ok(Err(_)) => Err(SpawnError::Start(format!(
                "the {what} worker (pid {pid}) exited before loading {}",
                spec.label()
            ))),
            Err(_) => {
                worker.kill();
                Err(SpawnError::Start(format!(
                    "the {what} worker (pid {pid}) did not load {} within {} s",
                    spec.label(),
                    LOAD_TIMEOUT.as_secs()
                )))
            }
        }
    }
}

/// Checks now and then whether the function's worker has been idle long enough to stop.
fn spawn_idle_reaper(rt: std::sync::Weak<FunctionRuntime>, idle: Duration) {
    let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(rt) = rt.upgrade() else {
                return;
            };
            if rt.stopping.load(Ordering::SeqCst) {
                return;
            }
            rt.stop_if_idle(idle).await;
        }
    });
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
