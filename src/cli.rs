//! Command-line interface: subcommands, global options and desired-state options.

use crate::config::Overrides;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Where `--local` looks for a running `wsconn local` when given no address.
pub const DEFAULT_LOCAL: &str = "127.0.0.1:8080";

/// The API Gateway WebSocket connection-tracking pattern (DynamoDB service integrations
/// for $connect/$disconnect, a Lambda for $default): run it on this machine, deploy it to
/// AWS by direct SDK calls, and operate it.
///
/// AWS is the state: resources are found by name and by the `wsconn:stack=<stack>` tag,
/// so there is no state file to lose. `local` and `render` need no AWS account.
#[derive(Debug, Parser)]
#[command(
    name = "wsconn",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("WSCONN_COMMIT"), ")"),
    propagate_version = true
)]
#[command(
    after_help = "Examples:\n  wsconn local                      # the whole API on this machine (no AWS)\n  wsconn render '$connect'          # what $connect sends to DynamoDB, offline\n  wsconn diff                       # what would change (exit 2 if anything)\n  wsconn deploy --yes               # create or repair the stack\n  wsconn smoke                      # check it end to end (--local for wsconn local)\n  wsconn connections list --check   # who is connected\n  wsconn outputs --output json      # endpoint and names for scripts\n  wsconn destroy --yes              # remove everything the stack owns"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// Stack name; every derived resource name starts with it.
    #[arg(long, global = true, env = "WSCONN_STACK")]
    pub stack: Option<String>,
    /// AWS region (default: from AWS_REGION or the profile).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Named profile from ~/.aws/config.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (an emulator, for instance).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Answer yes to confirmation questions (needed without a terminal for risky changes).
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// Configuration file (default: ./wsconn.toml when it exists).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// Options that shape the desired stack; they may also come from wsconn.toml.
#[derive(Debug, Args, Default, Clone)]
pub struct StackOpts {
    /// WebSocket stage name.
    #[arg(long, global = true, env = "WSCONN_STAGE")]
    pub stage: Option<String>,
    /// Seconds a connection record lives before DynamoDB TTL removes it.
    #[arg(
        long,
        global = true,
        env = "WSCONN_CONNECTION_TTL",
        value_name = "SECONDS"
    )]
    pub connection_ttl: Option<u64>,
    /// Extra tag for every taggable resource, KEY=VALUE (repeatable).
    #[arg(long = "tag", global = true, value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Days the function's log group keeps events.
    #[arg(
        long,
        global = true,
        env = "WSCONN_LOG_RETENTION_DAYS",
        value_name = "DAYS"
    )]
    pub log_retention_days: Option<i32>,
    /// Directory holding mapping-templates/ and lambda/ to deploy instead of the copies
    /// built into wsconn (for editing templates or the handler).
    #[arg(long, global = true, env = "WSCONN_ASSETS_DIR", value_name = "DIR")]
    pub assets_dir: Option<PathBuf>,
}

/// How the engine runs (deploy, diff, destroy, outputs).
#[derive(Debug, Args, Clone)]
pub struct EngineOpts {
    /// How many steps run at once; 1 runs everything in sequence, reads included.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
}

/// Options of the commands that change AWS.
#[derive(Debug, Args, Clone)]
pub struct LockOpts {
    /// Seconds to wait for another wsconn run that holds the stack's lock (0: fail at once).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub lock_timeout: u64,
}

/// `500ms`, `30s`, `5m`, `2h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with a unit, such as 30s or 5m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: the unit is ms, s, m or h")),
    };
    if !secs.is_finite() || !(0.0..=7.0 * 86_400.0).contains(&secs) {
        return Err(format!("{s:?}: between 0 and 7 days"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Whether `s` is an address `--local` takes: `HOST:PORT` (`[::1]:PORT` for IPv6).
pub fn looks_like_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.starts_with('-')
                && port.parse::<u16>().is_ok()
                && !s.contains('/')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// The command line with `--local HOST:PORT` written as `--local=HOST:PORT`: `--local`
/// takes the next word only when it is an address, so `connections --local list` means
/// the default address and the `list` subcommand.
pub fn normalize_args<I: IntoIterator<Item = std::ffi::OsString>>(
    args: I,
) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        if a == "--local"
            && let Some(next) = it.peek()
            && next.to_str().is_some_and(looks_like_host_port)
        {
            let mut joined = std::ffi::OsString::from("--local=");
            joined.push(it.next().unwrap_or_default());
            out.push(joined);
            continue;
        }
        if a == "--" {
            out.push(a);
            out.extend(it);
            break;
        }
        out.push(a);
    }
    out
}

/// `NAME=VALUE`, split at the first `=` (the value may contain `=`; either may be empty,
/// as a template may be tested against an empty header name).
pub fn pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// What `render` renders, and for which request.
#[derive(Debug, Args, Clone, Default)]
pub struct RenderArgs {
    /// The route whose template to render: $connect or $disconnect (also connect,
    /// disconnect). Quote it in a shell: '$connect'.
    #[arg(value_name = "ROUTE")]
    pub route: Option<String>,
    /// Render this template file instead of the stack's (with ROUTE, the output is
    /// still checked against that route's DynamoDB action).
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// A handshake header, NAME=VALUE (repeatable, kept in order).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = pair, allow_hyphen_values = true)]
    pub headers: Vec<(String, String)>,
    /// A query-string parameter, NAME=VALUE (repeatable, kept in order).
    #[arg(long = "query", value_name = "NAME=VALUE", value_parser = pair, allow_hyphen_values = true)]
    pub query: Vec<(String, String)>,
    /// The request body ($input.body, $input.json(...)).
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub body: Option<String>,
    /// A $context variable, NAME=VALUE; dotted names reach nested ones
    /// (identity.sourceIp=203.0.113.7). Overrides the defaults (repeatable).
    #[arg(long = "context", value_name = "NAME=VALUE", value_parser = pair, allow_hyphen_values = true)]
    pub context: Vec<(String, String)>,
    /// A stage variable, NAME=VALUE (repeatable).
    #[arg(long = "stage-variable", value_name = "NAME=VALUE", value_parser = pair, allow_hyphen_values = true)]
    pub stage_variables: Vec<(String, String)>,
    /// A value the $connect authorizer returned, NAME=VALUE: sets
    /// $context.authorizer.NAME (principalId, or a key of its context) (repeatable).
    #[arg(long = "authorizer", value_name = "NAME=VALUE", value_parser = pair, allow_hyphen_values = true)]
    pub authorizer: Vec<(String, String)>,
    #[command(flatten)]
    pub opts: StackOpts,
}

/// What `wsconn smoke` adds to the handshake, and the application's own step.
#[derive(Debug, Args, Clone, Default)]
pub struct SmokeArgs {
    /// A query-string parameter for the handshake, NAME=VALUE (repeatable): what a
    /// $connect authorizer reads, such as token=….
    #[arg(long = "query", value_name = "NAME=VALUE", value_parser = pair, allow_hyphen_values = true)]
    pub query: Vec<(String, String)>,
    /// A handshake header, NAME=VALUE (repeatable), such as Authorization=….
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = pair, allow_hyphen_values = true)]
    pub headers: Vec<(String, String)>,
    /// A step of your own: send TEXT, then wait for a frame that contains --expect.
    #[arg(
        long,
        value_name = "TEXT",
        requires = "expect",
        allow_hyphen_values = true
    )]
    pub send: Option<String>,
    /// The text a frame must contain after --send.
    #[arg(
        long,
        value_name = "TEXT",
        requires = "send",
        allow_hyphen_values = true
    )]
    pub expect: Option<String>,
}

/// Options of `wsconn local`.
#[derive(Debug, Args, Clone)]
pub struct LocalOpts {
    /// Address to listen on (0.0.0.0 to accept other machines).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port for everything: WebSocket, @connections and DynamoDB (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Keep the embedded table in DIR (default: in memory, gone when wsconn stops).
    #[arg(long, value_name = "DIR", conflicts_with = "dynamodb_endpoint")]
    pub data_dir: Option<PathBuf>,
    /// Use this DynamoDB instead of the embedded one (DynamoDB Local, moto, a real
    /// table); requests are signed with the default credential chain, and the table is
    /// created there if it is missing.
    #[arg(long, value_name = "URL")]
    pub dynamodb_endpoint: Option<String>,
    /// Node.js binary for Node.js handlers (default: `node` on PATH); give one whose
    /// major version is the runtime's (`nodejs22.x`: Node.js 22).
    #[arg(long, value_name = "PATH")]
    pub node: Option<PathBuf>,
    /// Python binary for Python handlers (default: `python3` on PATH).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Give clients wss:// (the port speaks TLS either way, with a certificate from
    /// wsconn's local CA; the banner prints `wscat --ca <file>`). Nothing is installed
    /// into the system's trust store.
    #[arg(long)]
    pub tls: bool,
    /// Start every function's worker at launch and keep it (default: the authorizer and
    /// $default are warm, the others start on their first invocation).
    #[arg(long)]
    pub warm: bool,
    /// Stop an on-demand worker after this long without an invocation (`30s`, `5m`, `1h`;
    /// `0` keeps them once started).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub idle_workers: std::time::Duration,
    /// Seconds between sweeps that delete expired items from the embedded table.
    #[arg(long, default_value_t = 2, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ttl_sweep_interval: u64,
    /// Idle timeout in milliseconds (API Gateway: 10 minutes). For tests.
    #[arg(long, hide = true, default_value_t = 600_000)]
    pub idle_timeout_ms: u64,
    /// Maximum connection duration in milliseconds (API Gateway: 2 hours). For tests.
    #[arg(long, hide = true, default_value_t = 7_200_000)]
    pub max_connection_ms: u64,
    /// The function's timeout in milliseconds (default: the stack's, 10 s). For tests.
    #[arg(long, hide = true)]
    pub function_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reconcile live AWS to the desired stack: read, plan, show, apply, prove, print outputs.
    ///
    /// Reads everything at once, prints the plan, and when something differs takes the
    /// stack's lock, applies the changes as a dependency graph (independent resources in
    /// parallel), then reads again and repeats until the stack is in sync (at most 3
    /// rounds). When nothing differs it says so and makes no mutating call. Deletes,
    /// replacements, IAM widening and the account-wide API Gateway CloudWatch role
    /// setting need confirmation (a terminal prompt, or --yes). With wsconn.toml's
    /// application sections it deploys your routes, handlers and $connect authorizer.
    #[command(
        after_help = "Examples:\n  wsconn deploy --yes\n  wsconn deploy --stack chat --stage prod --tag team=rt\n  wsconn deploy --parallelism 1        # one step at a time"
    )]
    Deploy {
        #[command(flatten)]
        opts: StackOpts,
        #[command(flatten)]
        engine: EngineOpts,
        #[command(flatten)]
        lock: LockOpts,
        /// Allow replacing resources that hold data (the DynamoDB table).
        #[arg(long)]
        allow_replace: bool,
    },
    /// Show live vs desired, field by field. Exit 0 in sync, 2 changes pending, 1 error.
    Diff {
        #[command(flatten)]
        opts: StackOpts,
        #[command(flatten)]
        engine: EngineOpts,
    },
    /// Delete every resource the stack owns (and nothing it does not). Idempotent.
    Destroy {
        #[command(flatten)]
        opts: StackOpts,
        #[command(flatten)]
        engine: EngineOpts,
        #[command(flatten)]
        lock: LockOpts,
    },
    /// Show the stack's logs as one stream: each handler's, the authorizer's, the access
    /// log and API Gateway's execution log, interleaved by time.
    ///
    /// Each line is prefixed by its source (`sendmessage`, `authorizer`, `access`,
    /// `execution`). Lambda's START, END and REPORT lines are folded into one line with
    /// the duration, billed duration and memory used; access-log records are shown as
    /// connection, event, route, status and errors. --connection and --principal follow
    /// one connection (or one principal's) across all of them. --output json prints one
    /// object per line. Reads only (logs:FilterLogEvents).
    #[command(
        after_help = "Examples:\n  wsconn logs --since 1h\n  wsconn logs --follow\n  wsconn logs --connection 'SOqGjdZioAMCEeg=' --since 2h\n  wsconn logs --principal alice --follow\n  wsconn logs --route sendmessage --filter ERROR\n  wsconn logs --access --output json | jq .message"
    )]
    Logs {
        #[command(flatten)]
        args: LogsArgs,
        #[command(flatten)]
        opts: StackOpts,
    },
    /// Print a shell completion script: bash, zsh, fish or powershell.
    #[command(
        after_help = "Examples:\n  wsconn completions bash > ~/.local/share/bash-completion/completions/wsconn\n  wsconn completions zsh > ~/.zfunc/_wsconn      # with fpath=(~/.zfunc $fpath) before compinit\n  wsconn completions fish > ~/.config/fish/completions/wsconn.fish\n  wsconn completions powershell >> $PROFILE"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Render what API Gateway would send to a route's DynamoDB integration, offline.
    ///
    /// Runs the stack's own mapping template (placeholders filled as deploy fills them,
    /// --assets-dir honoured) or --template FILE through wsconn's Velocity engine, with
    /// API Gateway's $context, $input and $util. Every $context variable has a default
    /// (requestTimeEpoch and connectedAt: now, in ms) that --context overrides. stdout is
    /// exactly the rendered text. With a ROUTE the output is checked: not JSON, or not
    /// the shape its DynamoDB action needs, is a warning and exit code 3. A syntax or
    /// evaluation error is `error: FILE:LINE:COL: message` and exit 1. Makes no AWS call.
    #[command(
        after_help = "Examples:\n  wsconn render '$connect' --query foo=bar --header 'User-Agent=wscat'\n  wsconn render '$connect' --context connectionId=abc= --context requestTimeEpoch=1652722217999\n  wsconn render '$connect' --authorizer principalId=alice --authorizer tenant=acme\n  wsconn render --template my.vtl --body '{\"action\":\"x\"}' --output json\n  wsconn render disconnect --assets-dir ./assets"
    )]
    Render {
        #[command(flatten)]
        args: RenderArgs,
    },
    /// Check a stack end to end: connect, echo, your step, the item, @connections, disconnect.
    ///
    /// The pattern's Testing section, automated. Each step prints ✓ or ✗ with its
    /// duration and what it saw; exit 0 when every step passes, else 1 naming the
    /// failed step. The echo step runs when $default is the built-in echo (otherwise it
    /// is skipped, and the connection is found in the table by the smoke nonce); an
    /// authorizer's token goes in with --query or --header; --send/--expect checks a
    /// route of your application. Works against the deployed stack (endpoint and table as `outputs`
    /// finds them) or a running `wsconn local` with --local.
    #[command(
        after_help = "Examples:\n  wsconn smoke                          # the deployed stack\n  wsconn smoke --execute-api            # past the custom domain, on execute-api\n  wsconn smoke --local                  # wsconn local on 127.0.0.1:8080\n  wsconn smoke --local 127.0.0.1:9000 --output json\n  wsconn smoke --local --query token=chat-demo-token --query user=smoke \\\n      --send '{\"action\":\"sendmessage\",\"data\":\"hi\"}' --expect hi"
    )]
    Smoke {
        /// Check a running `wsconn local` at HOST:PORT (default 127.0.0.1:8080).
        #[arg(long, value_name = "HOST:PORT", num_args = 0..=1, require_equals = true, default_missing_value = DEFAULT_LOCAL)]
        local: Option<String>,
        /// Seconds to keep retrying the connect (a fresh deploy's integration role can take
        /// a moment), and to wait for the item to go after the disconnect.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        timeout: u64,
        /// Connect to the stage on API Gateway's own host (execute-api) even when a
        /// [domain] serves it: tells a DNS or certificate problem from a stack problem.
        #[arg(long, conflicts_with = "local")]
        execute_api: bool,
        #[command(flatten)]
        check: SmokeArgs,
        #[command(flatten)]
        opts: StackOpts,
    },
    /// List, message and disconnect the clients the stack's table tracks.
    #[command(
        after_help = "Examples:\n  wsconn connections list --check\n  wsconn connections send --all --message '{\"news\":1}'\n  wsconn connections send --principal alice --message 'hi alice'\n  wsconn connections send SOqGjdZioAMCEeg= --file payload.json\n  wsconn connections disconnect --all --local"
    )]
    Connections {
        /// Work against a running `wsconn local` at HOST:PORT (default 127.0.0.1:8080).
        #[arg(long, global = true, value_name = "HOST:PORT", num_args = 0..=1, require_equals = true, default_missing_value = DEFAULT_LOCAL)]
        local: Option<String>,
        #[command(subcommand)]
        action: ConnectionsAction,
        #[command(flatten)]
        opts: StackOpts,
    },
    /// List the stage's releases, newest first: id, time, versions, and which is live.
    ///
    /// Each deployment wsconn makes is a release: its description records the wsconn
    /// version, a digest of the desired stack and the version of every function it
    /// invokes. The list is read from AWS (no state file), so it works from any machine
    /// with credentials. Deployments wsconn did not make are listed too, marked so.
    #[command(
        after_help = "Examples:\n  wsconn releases\n  wsconn releases --output json | jq '.[] | select(.live)'"
    )]
    Releases {
        #[command(flatten)]
        opts: StackOpts,
        #[command(flatten)]
        engine: EngineOpts,
    },
    /// Point the stage back at the previous release (or --to one), in one call.
    ///
    /// The switch restores the release's code (the function versions it invokes), routes,
    /// mapping templates and authorizer together. It is refused, naming what is
    /// missing, when a version or its permission is gone. Roles, the table and stage
    /// settings changed since are not restored. It changes what clients get, so it
    /// needs consent (a terminal prompt, or --yes). Afterwards `wsconn diff` shows the
    /// stage's release as drift and `wsconn deploy` rolls forward.
    #[command(
        after_help = "Examples:\n  wsconn rollback --yes\n  wsconn rollback --to a1b2c3 --yes     # an id from `wsconn releases`"
    )]
    Rollback {
        /// The deployment to go back to (default: the release before the live one).
        #[arg(long, value_name = "DEPLOYMENT_ID")]
        to: Option<String>,
        #[command(flatten)]
        opts: StackOpts,
        #[command(flatten)]
        engine: EngineOpts,
        #[command(flatten)]
        lock: LockOpts,
    },
    /// Print the endpoint and resource names (null for what does not exist yet).
    Outputs {
        #[command(flatten)]
        opts: StackOpts,
        #[command(flatten)]
        engine: EngineOpts,
    },
    /// Write a working starting point: wsconn.toml and handlers, from copies in wsconn.
    ///
    /// The stack is named after DIR when that is a valid stack name. Files that exist
    /// are listed and nothing is written, unless --force. Prints the next commands.
    #[command(
        after_help = "Examples:\n  wsconn init chat --example chat && cd chat && npm install && wsconn local\n  wsconn init                     # the echo example in the current directory"
    )]
    Init {
        /// Where to write (created if missing; default: the current directory).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Which starting point.
        #[arg(long, value_enum, default_value = "echo")]
        example: Example,
        /// Overwrite files that exist.
        #[arg(long)]
        force: bool,
        /// (init takes no stack options: it writes the file that holds them)
        #[arg(skip)]
        opts: StackOpts,
    },
    /// Run the whole WebSocket API on this machine: no AWS account, only Node.js.
    ///
    /// One port serves the WebSocket API (ws://HOST:PORT/<stage>), the @connections
    /// management API (http://HOST:PORT/<stage>/@connections/<id>) and the DynamoDB API
    /// of the connections table (http://HOST:PORT). The routes, mapping templates and
    /// handlers are the stack's own: $connect renders connect.vtl into a PutItem,
    /// $disconnect renders disconnect.vtl into a DeleteItem, $default runs
    /// lambda/index.mjs (or your handler), and each route and the $connect authorizer
    /// of wsconn.toml runs its handler, each function in a warm Node.js worker of its
    /// own with Lambda's environment pointed at this port (TABLE_NAME, CONNECTIONS_URL,
    /// AWS_ENDPOINT_URL_DYNAMODB). Edits to a handler directory (and, with
    /// --assets-dir, to the templates) take effect without a restart. Ctrl-C disconnects
    /// every client (running $disconnect) and exits 0.
    #[command(
        after_help = "Examples:\n  wsconn local                                  # then, in another terminal:\n  wscat -c 'ws://127.0.0.1:8080/api?foo=bar'     # type {\"first_name\": \"Jane\"}\n  aws dynamodb scan --endpoint-url http://127.0.0.1:8080 --table-name wsconn-connections\n  aws apigatewaymanagementapi post-to-connection --endpoint-url http://127.0.0.1:8080/api \\\n      --connection-id <id> --data hello\n\n  wsconn local --assets-dir . --port 9000        # serve your edited templates and handler\n  wsconn local --data-dir .wsconn                # keep the table between runs\n  wsconn local --dynamodb-endpoint http://localhost:8000   # DynamoDB Local instead\n  wsconn --output json local --port 0            # one JSON line with the URLs, for scripts"
    )]
    Local {
        #[command(flatten)]
        opts: StackOpts,
        #[command(flatten)]
        local: LocalOpts,
    },
}

/// What `wsconn logs` reads and shows.
#[derive(Debug, Args, Clone)]
pub struct LogsArgs {
    /// Keep reading new events until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// From this long ago (`10m`, `2h`, `1d`) or this time (RFC 3339,
    /// `2026-12-07T10:00:00Z`).
    #[arg(long, value_name = "WHEN", default_value = "10m")]
    pub since: String,
    /// Up to this long ago or this time (default: now; not with --follow).
    #[arg(long, value_name = "WHEN", conflicts_with = "follow")]
    pub until: Option<String>,
    /// Only this route's handler (repeatable): `sendmessage`, `$default`.
    #[arg(long = "route", value_name = "KEY")]
    pub routes: Vec<String>,
    /// Only the $connect authorizer's log.
    #[arg(long)]
    pub authorizer: bool,
    /// Only the stage's access log.
    #[arg(long)]
    pub access: bool,
    /// Only API Gateway's execution log.
    #[arg(long)]
    pub execution: bool,
    /// Only what concerns this connection: its access and execution records and the
    /// handler invocations of its events (repeatable).
    #[arg(long = "connection", value_name = "ID", allow_hyphen_values = true)]
    pub connections: Vec<String>,
    /// Only what concerns this principal's connections (the $connect authorizer's
    /// principalId, from the access log and the table).
    #[arg(long, value_name = "ID")]
    pub principal: Option<String>,
    /// A CloudWatch Logs filter pattern, applied by the service (`ERROR`, `"timed out"`).
    #[arg(long, value_name = "PATTERN", allow_hyphen_values = true)]
    pub filter: Option<String>,
    /// How often --follow asks for new events.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub poll: std::time::Duration,
}

/// A starting point `wsconn init` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Example {
    /// wsconn.toml and a $default handler of your own that echoes.
    Echo,
    /// AWS's WebSocket chat: a sendmessage route, a $connect authorizer, throttling
    /// and access logs (examples/chat).
    Chat,
    /// The chat with its route and authorizer in Python, using the runtime's boto3
    /// (examples/chat-python): nothing to install.
    ChatPython,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsAction {
    /// A paginated Scan of the table: id, principal (when an authorizer set one),
    /// connected at, age, source IP, user agent, expiry.
    List {
        /// Also ask @connections whether each is still live (in parallel).
        #[arg(long)]
        check: bool,
    },
    /// Send a message to connections through @connections. A connection that is gone
    /// (GoneException) has a stale item: it is deleted and reported.
    Send {
        /// Connection ids (put them after `--` when one starts with '-').
        #[arg(value_name = "ID")]
        ids: Vec<String>,
        /// Every connection in the table.
        #[arg(long)]
        all: bool,
        /// The connections of this principal (the `principalId` the $connect
        /// authorizer returned, stored in each item).
        #[arg(long, value_name = "ID")]
        principal: Option<String>,
        /// The message text.
        #[arg(long, value_name = "TEXT", conflicts_with = "file")]
        message: Option<String>,
        /// Send this file's bytes.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Disconnect connections through @connections (their $disconnect deletes the items).
    Disconnect {
        /// Connection ids (put them after `--` when one starts with '-').
        #[arg(value_name = "ID")]
        ids: Vec<String>,
        /// Every connection in the table.
        #[arg(long)]
        all: bool,
        /// The connections of this principal (the $connect authorizer's principalId).
        #[arg(long, value_name = "ID")]
        principal: Option<String>,
    },
}

impl Cli {
    /// What the command line says about the stack, for `config::resolve`.
    pub fn overrides(&self) -> Overrides {
        let (g, o) = (&self.global, self.command.stack_opts());
        Overrides {
            stack: g.stack.clone(),
            region: g.region.clone(),
            profile: g.profile.clone(),
            endpoint_url: g.endpoint_url.clone(),
            stage: o.stage.clone(),
            connection_ttl: o.connection_ttl,
            tags: o.tags.clone(),
            log_retention_days: o.log_retention_days,
            assets_dir: o.assets_dir.clone(),
        }
    }
}

static NO_STACK_OPTS: StackOpts = StackOpts {
    stage: None,
    connection_ttl: None,
    tags: Vec::new(),
    log_retention_days: None,
    assets_dir: None,
};

impl Command {
    pub fn stack_opts(&self) -> &StackOpts {
        match self {
            Command::Deploy { opts, .. }
            | Command::Diff { opts, .. }
            | Command::Destroy { opts, .. }
            | Command::Outputs { opts, .. }
            | Command::Releases { opts, .. }
            | Command::Rollback { opts, .. }
            | Command::Local { opts, .. } => opts,
            Command::Render { args } => &args.opts,
            Command::Smoke { opts, .. }
            | Command::Connections { opts, .. }
            | Command::Init { opts, .. }
            | Command::Logs { opts, .. } => opts,
            Command::Completions { .. } => &NO_STACK_OPTS,
        }
    }
}
