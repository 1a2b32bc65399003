//! `wsconn local`: the whole WebSocket API on this machine, from the same stack model
//! `deploy` reconciles. One port serves the WebSocket API (`/<stage>`), the management
//! API (`/<stage>/@connections/<id>`) and the table's DynamoDB API (`/`).
//!
//! - [`server`]: the router, one handler per endpoint, the connection task, shutdown;
//! - [`connections`]: the registry of open connections;
//! - [`gateway`]: API Gateway's semantics (`$context`, route selection, integrations);
//! - [`store`]: the table (embedded dynoxide, or any DynamoDB endpoint);
//! - [`functions`]: every function of the stack, each in a warm Node.js worker of its
//!   own, and the environment its handler sees;
//! - [`node`]: one function's warm Node.js worker;
//! - [`authorizer`]: the `$connect` REQUEST authorizer (identity sources, event, policy);
//! - [`reload`]: picks up edited templates (`--assets-dir`) and handler directories;
//! - [`log`]: the access log, written off the request path.

mod authorizer;
mod connections;
mod functions;
mod log;
mod node;
mod reload;
mod server;
mod store;

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
    let node_path = node::find_node(opts.node.as_deref()).map_err(local)?;
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
    let node_version = node::node_version(&node_path).await.map_err(local)?;
    let region = cfg.region.clone().unwrap_or_else(|| "us-east-1".into());
    let site = functions::Site {
        base_url: format!("http://{}", loopback(addr)),
        stage: stack.stage.clone(),
        region: region.clone(),
        credentials: caller_credentials(),
        path: std::env::var("PATH").ok(),
    };
    let functions = functions::Functions::start(
        &stack,
        &node_path,
        cfg.assets_dir.as_deref(),
        opts.function_timeout,
        &site,
        &log,
    )
    .await;
    let api_id = api_id(&stack.name);
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
    announce(&opts, &stack, addr, &app, &node_version);
    let served = server::serve(listener, app.clone(), shutdown).await;
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
fn announce(opts: &Options, stack: &Stack, addr: SocketAddr, app: &App, node_version: &str) {
    use std::io::Write as _;
    let host = if addr.ip().is_ipv6() {
        format!("[{}]", opts.host.trim_matches(|c| c == '[' || c == ']'))
    } else {
        opts.host.clone()
    };
    let base = format!("{host}:{}", addr.port());
    let ready = Ready {
        websocket_url: format!("ws://{base}/{}", stack.stage),
        connections_url: format!("http://{base}/{}/@connections", stack.stage),
        dynamodb_endpoint: format!("http://{base}"),
        table_name: &stack.table.name,
        stage: &stack.stage,
    };
    let text = if opts.output == OutputFormat::Json {
        serde_json::to_string(&ready).unwrap_or_default() + "\n"
    } else {
        format!(
            "wsconn local: stack {stack_name}, stage {stage}\n\
             \n  WebSocket API     {ws}\
             \n  @connections      {conns}/{{connectionId}}\
             \n  DynamoDB          {ddb}  (table {table}; {store})\
             \n\nFunctions (Node.js {node_version}, one warm worker each):\n{functions}\
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
            wscat = wscat_hint(stack, &ready.websocket_url),
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
        out.push(format!(
            "  {serves:<20} {}  ({} MB, timeout {timeout} s)",
            f.name, f.memory_mb
        ));
    }
    out.join("\n")
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
