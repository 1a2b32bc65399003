//! `wsconn local`: the whole WebSocket API on this machine, from the same stack model
//! `deploy` reconciles. One port serves the WebSocket API (`/<stage>`), the management
//! API (`/<stage>/@connections/<id>`) and the table's DynamoDB API (`/`).
//!
//! - [`server`]: the router, one handler per endpoint, the connection task, shutdown;
//! - [`connections`]: the registry of open connections;
//! - [`gateway`]: API Gateway's semantics (`$context`, route selection, integrations);
//! - [`store`]: the table (embedded dynoxide, or any DynamoDB endpoint);
//! - [`functions`]: every function of the stack, each in a worker of its own (started
//!   on demand, or warm), and the environment its handler sees;
//! - [`worker`]: one function's worker, Node.js or Python (one protocol, two launchers);
//! - [`authorizer`]: the `$connect` REQUEST authorizer (identity sources, event, policy);
//! - [`reload`]: picks up edited templates (`--assets-dir`) and handler directories;
//! - [`log`]: the access log, written off the request path.

mod authorizer;
mod connections;
mod functions;
mod listen;
mod log;
mod reload;
pub mod sdk;
mod server;
mod store;
mod tls;
mod worker;

pub use functions::Policy as WorkerPolicy;
pub use store::StoreKind;

use crate::cli::OutputFormat;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::gateway::Api;
use crate::stack::Stack;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How `wsconn local` runs (from its flags).
#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub port: u16,
    pub store: StoreKind,
    pub node: Option<PathBuf>,
    /// `--python`: the Python for Python handlers (default `python3` on PATH).
    pub python: Option<PathBuf>,
    /// Which workers stay warm, and when the others stop.
    pub workers: functions::Policy,
    /// `--tls`: clients are given `wss://` (the port speaks TLS either way).
    pub tls: bool,
    /// How often expired items are removed from the embedded table.
    pub ttl_sweep: Duration,
    pub limits: Limits,
    /// The function's timeout; None: the function's own (`FunctionDef::timeout_s`).
    pub function_timeout: Option<Duration>,
    pub output: OutputFormat,
}

/// API Gateway's connection limits (shortened only by tests).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// No message for this long closes the connection (API Gateway: 10 minutes).
    pub idle: Duration,
    /// A connection lasts at most this long (API Gateway: 2 hours).
    pub max_duration: Duration,
}

/// What every handler shares.
pub struct App {
    api: RwLock<Arc<Api>>,
    store: store::Store,
    functions: functions::Functions,
    /// The `$connect` authorizer's `methodArn`.
    method_arn: String,
    registry: connections::Registry,
    log: log::Log,
    /// Every connection's task, from its upgrade to the end of its `$disconnect`.
    tracker: tokio_util::task::TaskTracker,
    limits: Limits,
    api_id: String,
    stage: String,
    addr: SocketAddr,
    shutting_down: AtomicBool,
}

impl App {
    /// The stack and its parsed templates as they are now (reload swaps them).
    fn api(&self) -> Arc<Api> {
        match self.api.read() {
            Ok(a) => a.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_api(&self, api: Api) {
        match self.api.write() {
            Ok(mut a) => *a = Arc::new(api),
            Err(p) => *p.into_inner() = Arc::new(api),
        }
    }

    fn stage(&self) -> &str {
        &self.stage
    }
}

/// A stable, API-Gateway-looking id (10 lowercase characters) for the stack.
fn api_id(stack: &str) -> String {
    crate::assets::sha256_hex(format!("wsconn local {stack}").as_bytes())[..10].to_string()
}

#[derive(serde::Serialize)]
struct Ready<'a> {
    websocket_url: String,
    connections_url: String,
    dynamodb_endpoint: String,
    table_name: &'a str,
    stage: &'a str,
}

/// Runs until `shutdown` resolves (with the name of what stopped it, such as
/// "SIGTERM"); every client is disconnected (through `$disconnect`) before it returns.
pub async fn run(
    cfg: Config,
    opts: Options,
    shutdown: impl std::future::Future<Output = &'static str>,
) -> Result<()> {
    let local = |e: String| Error::Local(e);
    let stack = Arc::new(Stack::build(&cfg)?);
    let (interpreters, notes) = interpreters(&stack, &opts).await.map_err(local)?;
    // A handler loads locally only what its deployment package will hold.
    for f in &stack.functions {
        if let (crate::stack::Code::Dir { dir, .. }, crate::config::runtime::Language::Node) =
            (&f.code, f.language)
        {
            crate::package::node::check_boundary(dir, &stack.app_root).map_err(|e| {
                Error::Local(
                    e.to_string()
                        .trim_start_matches("configuration: ")
                        .to_string(),
                )
            })?;
        }
    }
    let log = log::Log::start();
    let api = Api::compile(stack.clone());
    for e in api.template_errors() {
        log.info(format!(
            "template error: {e}; connections are refused until the file is fixed"
        ));
    }
    let store = store::Store::open(&opts.store, cfg.region.as_deref(), cfg.profile.as_deref())
        .await
        .map_err(local)?;
    store
        .ensure_table(&stack.table)
        .await
        .map_err(|e| Error::Local(format!("{}: {e}", store.description)))?;
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port))
        .await
        .map_err(|e| Error::Local(format!("listening on {}:{}: {e}", opts.host, opts.port)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Local(format!("reading the listening address: {e}")))?;
    let region = cfg.region.clone().unwrap_or_else(|| "us-east-1".into());
    let api_id = api_id(&stack.name);
    // AWS's hostnames the handlers build (the @connections endpoint from the event's
    // apiId and the region; DynamoDB's regional endpoint), which reach this port from
    // inside the workers, over TLS.
    let aws_hosts = vec![
        format!("{api_id}.execute-api.{region}.amazonaws.com"),
        format!("dynamodb.{region}.amazonaws.com"),
    ];
    let tls = {
        let note = |m: &str| log.info(m);
        let made = tls::data_dir()
            .ok_or_else(|| "no data directory for the local certificate authority (HOME is not set); set WSCONN_DATA_DIR".to_string())
            .and_then(|d| tls::LocalCa::load_or_make(&d, &note))
            .and_then(|ca| {
                let mut names = aws_hosts.clone();
                names.extend(["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()]);
                names.push(addr.ip().to_string());
                names.push(opts.host.trim_matches(['[', ']']).to_string());
                names.retain(|n| n != "0.0.0.0" && n != "::");
                Ok((ca.server_config(&names)?, ca.cert_file))
            });
        match made {
            Ok(t) => Some(t),
            Err(e) if opts.tls => return Err(Error::Local(format!("--tls: {e}"))),
            Err(e) => {
                log.info(format!(
                    "TLS is off ({e}): handlers that build AWS's own endpoints will not reach this process"
                ));
                None
            }
        }
    };
    let site = functions::Site {
        base_url: format!("http://{}", loopback(addr)),
        stage: stack.stage.clone(),
        region: region.clone(),
        credentials: caller_credentials(),
        path: std::env::var("PATH").ok(),
        ca_file: tls.as_ref().map(|(_, f)| f.clone()),
        redirect_hosts: if tls.is_some() { aws_hosts } else { Vec::new() },
        redirect_to: loopback(addr),
    };
    let provided = {
        let log = log.clone();
        sdk::provide(&stack, interpreters.python.as_deref(), &move |m| {
            log.info(m)
        })
        .await
        .map_err(local)?
    };
    let mut extras = functions::Extras::new();
    for (name, _) in &provided.users {
        let Some(f) = stack.function(name) else {
            continue;
        };
        let var = match f.language {
            crate::config::runtime::Language::Node => provided
                .node_modules
                .as_ref()
                .map(|p| ("WSCONN_SDK_NODE_MODULES", p)),
            crate::config::runtime::Language::Python => provided
                .site_packages
                .as_ref()
                .map(|p| ("WSCONN_PYTHON_SDK", p)),
        };
        if let Some((k, v)) = var {
            extras.insert(name.clone(), vec![(k.to_string(), v.display().to_string())]);
        }
    }
    let mut notes = notes;
    if let Some(d) = &stack.domain {
        notes.push(format!(
            "[domain] {} is ignored here: the API is served at this address (deploy sets up the domain)",
            d.name
        ));
    }
    // One line per function for a few; past that, one line for all of them (an
    // application of 50 routes would otherwise open with 50 notes).
    if provided.users.len() <= 3 {
        for (name, packages) in &provided.users {
            notes.push(format!(
                "{name} uses the runtime's SDK as Lambda provides it, from wsconn's cache ({})",
                packages.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    } else {
        let names: Vec<&str> = provided.users.iter().map(|(n, _)| n.as_str()).collect();
        let mut packages: Vec<String> = provided
            .users
            .iter()
            .flat_map(|(_, p)| p.iter().cloned())
            .collect();
        packages.sort();
        packages.dedup();
        notes.push(format!(
            "{} functions use the runtime's SDK as Lambda provides it, from wsconn's cache ({}): {}",
            names.len(),
            packages.join(", "),
            names.join(", ")
        ));
    }
    let functions = functions::Functions::start(
        &stack,
        &interpreters,
        cfg.assets_dir.as_deref(),
        opts.function_timeout,
        &site,
        &extras,
        opts.workers,
        &log,
    )
    .await;
    let app = Arc::new(App {
        api: RwLock::new(Arc::new(api)),
        store,
        functions,
        method_arn: authorizer::method_arn(
            &region,
            functions::LOCAL_ACCOUNT,
            &api_id,
            &stack.stage,
        ),
        registry: connections::Registry::default(),
        log: log.clone(),
        tracker: tokio_util::task::TaskTracker::new(),
        limits: opts.limits,
        api_id,
        stage: stack.stage.clone(),
        addr,
        shutting_down: AtomicBool::new(false),
    });
    if let Some(db) = app.store.embedded() {
        spawn_ttl_sweep(db, opts.ttl_sweep, log.clone());
    }
    if let Some(dir) = &cfg.assets_dir {
        reload::spawn(app.clone(), cfg.clone(), dir.clone());
    }
    reload::spawn_handlers(app.clone(), stack.clone());
    let ca_file = tls.as_ref().map(|(_, f)| f.clone());
    announce(&opts, &stack, addr, &app, &notes, ca_file.as_deref());
    let acceptor = tls.map(|(cfg, _)| tokio_rustls::TlsAcceptor::from(cfg));
    let served = server::serve(listener, app.clone(), acceptor, shutdown).await;
    app.functions.shutdown().await;
    app.store.close().await;
    log.info("stopped");
    log.flush();
    served.map_err(local)
}

/// Where the handlers reach this process: the listening address, with a wildcard
/// address replaced by loopback.
fn loopback(addr: SocketAddr) -> String {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => format!("[::1]:{}", addr.port()),
        _ => addr.to_string(),
    }
}

/// The caller's credentials from the environment, passed on to the handlers when set
/// (they may call other AWS services); placeholders otherwise.
fn caller_credentials() -> Option<(String, String, Option<String>)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Some((
        var("AWS_ACCESS_KEY_ID")?,
        var("AWS_SECRET_ACCESS_KEY")?,
        var("AWS_SESSION_TOKEN"),
    ))
}

/// What a newcomer needs on start: the URLs, the table, and a first command to try.
fn announce(
    opts: &Options,
    stack: &Stack,
    addr: SocketAddr,
    app: &App,
    notes: &[String],
    ca: Option<&std::path::Path>,
) {
    use std::io::Write as _;
    let host = if addr.ip().is_ipv6() {
        format!("[{}]", opts.host.trim_matches(|c| c == '[' || c == ']'))
    } else {
        opts.host.clone()
    };
    let base = format!("{host}:{}", addr.port());
    let secure = opts.tls && ca.is_some();
    let (ws, http) = if secure {
        ("wss", "https")
    } else {
        ("ws", "http")
    };
    let ready = Ready {
        websocket_url: format!("{ws}://{base}/{}", stack.stage),
        connections_url: format!("{http}://{base}/{}/@connections", stack.stage),
        dynamodb_endpoint: format!("{http}://{base}"),
        table_name: &stack.table.name,
        stage: &stack.stage,
    };
    let text = if opts.output == OutputFormat::Json {
        // The banner's notes go to the log: stdout is the one JSON line.
        for n in notes {
            app.log.info(format!("note: {n}"));
        }
        serde_json::to_string(&ready).unwrap_or_default() + "\n"
    } else {
        format!(
            "wsconn local: stack {stack_name}, stage {stage}\n\
             \n  WebSocket API     {ws}\
             \n  @connections      {conns}/{{connectionId}}\
             \n  DynamoDB          {ddb}  (table {table}; {store})\
             \n\nFunctions ({workers}):\n{functions}{notes}\
             \n\nTry it:\
             \n  {wscat}\
             \n  aws dynamodb scan --endpoint-url {ddb} --table-name {table}\
             \n\nCtrl-C stops it; every client is disconnected through $disconnect first.\n\n",
            stack_name = stack.name,
            stage = stack.stage,
            ws = ready.websocket_url,
            conns = ready.connections_url,
            ddb = ready.dynamodb_endpoint,
            table = stack.table.name,
            store = app.store.description,
            functions = function_lines(stack, app),
            workers = if opts.workers.warm_all {
                "one warm worker each".to_string()
            } else {
                match opts.workers.idle {
                    Some(idle) => format!(
                        "a worker each; * warm, the others start on demand and stop after {} s idle",
                        idle.as_secs()
                    ),
                    None => "a worker each; * warm, the others start on demand".to_string(),
                }
            },
            notes = notes
                .iter()
                .map(|n| format!("\n  note: {n}"))
                .collect::<String>(),
            wscat = match (secure, ca) {
                (true, Some(ca)) => wscat_hint(stack, &ready.websocket_url).replacen(
                    "wscat -c",
                    &format!("wscat --ca {} -c", ca.display()),
                    1
                ),
                _ => wscat_hint(stack, &ready.websocket_url),
            },
        )
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// One line per function: what it serves, its name, memory and timeout.
/// The first command to try: a wscat handshake that carries what the `$connect`
/// authorizer reads (a placeholder per identity source), or `?foo=bar` without one.
fn wscat_hint(stack: &Stack, ws: &str) -> String {
    let Some(a) = &stack.authorizer else {
        return format!("wscat -c \"{ws}?foo=bar\"");
    };
    let mut query = Vec::new();
    let mut headers = String::new();
    for source in &a.identity_sources {
        if let Some(name) = source.strip_prefix("route.request.querystring.") {
            query.push(format!("{name}=<{name}>"));
        } else if let Some(name) = source.strip_prefix("route.request.header.") {
            headers.push_str(&format!(" -H \"{name}: <{name}>\""));
        }
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    format!("wscat -c \"{ws}{query}\"{headers}    # what the $connect authorizer reads")
}

fn function_lines(stack: &Stack, app: &App) -> String {
    let mut out = Vec::new();
    for f in &stack.functions {
        let serves = if f.serves == crate::stack::AUTHORIZER {
            "$connect authorizer".to_string()
        } else {
            f.serves.clone()
        };
        let timeout = app
            .functions
            .get(&f.name)
            .map(|rt| rt.timeout().as_secs_f64())
            .unwrap_or(f.timeout_s as f64);
        let warm = app.functions.get(&f.name).is_some_and(|rt| rt.is_warm());
        out.push(format!(
            "{} {serves:<20} {}  ({}, {} MB, timeout {timeout} s)",
            if warm { "*" } else { " " },
            f.name,
            f.runtime,
            f.memory_mb
        ));
    }
    out.join("\n")
}

/// The interpreters the stack's functions need (`node` for Node.js runtimes, `python3`
/// for Python ones), and a note for each whose version differs from the runtime's.
async fn interpreters(
    stack: &Stack,
    opts: &Options,
) -> std::result::Result<(functions::Interpreters, Vec<String>), String> {
    use crate::config::runtime::{self, Language};
    let mut out = functions::Interpreters::default();
    let mut notes = Vec::new();
    let today = runtime::today();
    for (language, flag, name, what) in [
        (
            Language::Node,
            "--node",
            "node",
            "the stack's Node.js functions (the $default route's lambda/index.mjs at least) run in Node.js",
        ),
        (
            Language::Python,
            "--python",
            "python3",
            "the stack's Python functions run in Python",
        ),
    ] {
        let uses: Vec<&crate::stack::FunctionDef> = stack
            .functions
            .iter()
            .filter(|f| f.language == language)
            .collect();
        if uses.is_empty() {
            continue;
        }
        let explicit = match language {
            Language::Node => opts.node.as_deref(),
            Language::Python => opts.python.as_deref(),
        };
        let path = worker::find_program(explicit, name, flag, what)?;
        let version = worker::version(&path).await?;
        let have = version
            .trim_start_matches('v')
            .trim_start_matches("Python ")
            .to_string();
        let mut runtimes: Vec<&str> = uses.iter().map(|f| f.runtime).collect();
        runtimes.sort();
        runtimes.dedup();
        for id in runtimes {
            let Some(rt) = runtime::find(id) else {
                continue;
            };
            let want = rt.version;
            let same = match language {
                Language::Node => have.split('.').next() == Some(want),
                Language::Python => have == want || have.starts_with(&format!("{want}.")),
            };
            if !same {
                notes.push(format!(
                    "{id} functions run in {} {have} here (Lambda runs {want}); pass {flag} PATH to use a matching one",
                    if language == Language::Node { "Node.js" } else { "Python" },
                ));
            }
            if let Some(d) = rt.deprecation_note(today) {
                notes.push(d);
            }
        }
        match language {
            Language::Node => out.node = Some(path),
            Language::Python => out.python = Some(path),
        }
    }
    Ok((out, notes))
}

/// dynoxide removes expired items only when asked: sweep every `every`, off the async
/// threads (a sweep holds the database a page at a time).
fn spawn_ttl_sweep(db: dynoxide::Database, every: Duration, log: log::Log) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let db = db.clone();
            match tokio::task::spawn_blocking(move || db.sweep_ttl()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => log.info(format!("ttl: removed {n} expired item(s)")),
                Ok(Err(e)) => log.info(format!("ttl: the sweep failed: {e}")),
                Err(_) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_carries_the_authorizers_identity_sources() {
        let mut stack = crate::stack::tests_support::stack("s");
        assert_eq!(
            wscat_hint(&stack, "ws://h/api"),
            "wscat -c \"ws://h/api?foo=bar\""
        );
        stack.authorizer = Some(crate::stack::AuthorizerDef {
            name: "s-authorizer".into(),
            function: "s-authorizer".into(),
            identity_sources: vec![
                "route.request.querystring.token".into(),
                "route.request.header.Authorization".into(),
            ],
        });
        let hint = wscat_hint(&stack, "ws://h/api");
        assert!(
            hint.starts_with(
                "wscat -c \"ws://h/api?token=<token>\" -H \"Authorization: <Authorization>\""
            ),
            "{hint}"
        );
    }
}
