//! The application sections of wsconn.toml: `[functions]`, `[routes.<key>]`,
//! `[authorizer]`, `[throttling]` and `[logging]`. Parsed by serde (unknown keys are
//! errors), then validated once, before any AWS call: each error names the file, the
//! key and the rule. After this the rest of wsconn sees typed values only.

use super::file::{FileConfig, StatementFile};
use super::names::{self, FunctionNames};
use super::runtime::{self, DEFAULT_ENTRY, DEFAULT_RUNTIME, Entry, Language, Runtime};
use crate::error::Error;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The application declared in wsconn.toml, validated: empty when the file declares
/// none, and the stack is then exactly the pattern's.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct App {
    /// Custom routes, and `$default` when the file replaces the built-in echo.
    pub routes: BTreeMap<String, Handler>,
    pub authorizer: Option<Authorizer>,
    pub throttling: Option<Throttling>,
    pub logging: Option<Logging>,
    pub releases: Releases,
    /// `[domain]`: the custom domain name the API is reached at.
    pub domain: Option<super::Domain>,
    /// The directory of wsconn.toml (handler directories are relative to it): what a
    /// handler may load from above its own directory ends here.
    pub root: PathBuf,
}

/// `[releases]`: deploy keeps the live release and the newest `keep` others (each
/// deployment with the function versions it references), for `wsconn rollback`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Releases {
    pub keep: usize,
}

impl Default for Releases {
    fn default() -> Releases {
        Releases {
            keep: names::DEFAULT_KEEP_RELEASES,
        }
    }
}

/// A handler the file names, with its function's settings resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Handler {
    /// The handler directory (absolute).
    pub dir: PathBuf,
    /// The runtime the function is deployed with (and run with locally).
    pub runtime: &'static Runtime,
    /// Lambda's handler setting as written (`index.handler`, `src/chat.onMessage`).
    pub setting: String,
    /// The setting, split: module and export.
    pub entry: Entry,
    /// The module's file, relative to `dir` (`index.mjs`, `pkg/mod.py`).
    pub module_file: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    /// `[functions].environment` merged under the handler's own.
    pub environment: BTreeMap<String, String>,
    /// Extra IAM statements for its role.
    pub policy: Vec<StatementFile>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Authorizer {
    pub handler: Handler,
    pub identity_sources: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttling {
    pub burst_limit: i32,
    pub rate_limit: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Logging {
    pub access_log: bool,
    /// `OFF`, `ERROR` or `INFO`.
    pub level: String,
}

impl Logging {
    /// Whether API Gateway must write to CloudWatch Logs (the account needs its role).
    pub fn writes_logs(&self) -> bool {
        self.access_log || self.level != "OFF"
    }
}

/// Lambda's limits: memory in MB, timeout in seconds.
const MEMORY_MB: std::ops::RangeInclusive<i64> = 128..=10240;
const TIMEOUT_S: std::ops::RangeInclusive<i64> = 1..=900;
/// Lambda's limit on a function's environment, as JSON.
const MAX_ENV_BYTES: usize = 4096;
/// API Gateway's account-level throttling quotas bound a stage's defaults.
const MAX_BURST: i64 = 5000;
const MAX_RATE: f64 = 10_000.0;
/// Releases kept: each holds a version of every function, and Lambda's code storage
/// (75 GB a region) is shared by all of them.
const MAX_KEEP: i64 = 100;
/// Route keys wsconn gives a function `<stack>-<key>` for; these would collide with the
/// `$default` route's and the authorizer's functions.
const RESERVED_KEYS: [&str; 2] = ["default", "authorizer"];

/// One validation failure: `wsconn.toml: routes.x.memory = 64: Lambda allows 128–10240 MB`.
fn bad(
    file: &str,
    key: &str,
    value: impl std::fmt::Display,
    rule: impl std::fmt::Display,
) -> Error {
    Error::Config(format!("{file}: {key} = {value}: {rule}"))
}

/// Validates the application sections of `file` for stack `stack`.
pub fn resolve(file: &FileConfig, stack: &str) -> Result<App, Error> {
    let path = file
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(super::file::CONFIG_FILE));
    let shown = path.display().to_string();
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let f = &file.functions;
    let default_memory = match f.memory {
        Some(m) => memory(&shown, "functions.memory", m)?,
        None => names::DEFAULT_MEMORY_MB,
    };
    let default_timeout = match f.timeout {
        Some(t) => timeout(&shown, "functions.timeout", t)?,
        None => names::DEFAULT_TIMEOUT_S,
    };
    environment(&shown, "functions.environment", &f.environment)?;
    let today = runtime::today();
    let default_runtime = f.runtime.as_deref().unwrap_or(DEFAULT_RUNTIME);
    runtime::accepted(default_runtime, today).map_err(|e| {
        bad(
            &shown,
            "functions.runtime",
            format!("{default_runtime:?}"),
            e,
        )
    })?;
    let mut routes = BTreeMap::new();
    let mut lowered: BTreeMap<String, &str> = BTreeMap::new();
    for (key, r) in &file.routes {
        let at = format!("routes.{}", toml_key(key));
        route_key(&shown, &at, key)?;
        if let Some(other) = lowered.insert(key.to_lowercase(), key) {
            return Err(bad(
                &shown,
                &at,
                "(a route)",
                format!(
                    "route keys {other:?} and {key:?} differ only in case, and IAM role names are unique ignoring case"
                ),
            ));
        }
        let names = FunctionNames::new(stack, names::function_suffix(key));
        names::validate_function_names(&names)?;
        let mut env = f.environment.clone();
        environment(&shown, &format!("{at}.environment"), &r.environment)?;
        env.extend(r.environment.clone());
        env_size(&shown, &format!("{at}.environment"), &env, true)?;
        for (i, st) in r.policy.iter().enumerate() {
            statement(&shown, &format!("{at}.policy[{i}]"), st)?;
        }
        let code = handler_code(
            &shown,
            &at,
            &base,
            &r.handler,
            r.runtime.as_deref().unwrap_or(default_runtime),
            r.entry.as_deref(),
            today,
        )?;
        routes.insert(
            key.clone(),
            Handler {
                dir: code.dir,
                runtime: code.runtime,
                setting: code.setting,
                entry: code.entry,
                module_file: code.module_file,
                memory_mb: match r.memory {
                    Some(m) => memory(&shown, &format!("{at}.memory"), m)?,
                    None => default_memory,
                },
                timeout_s: match r.timeout {
                    Some(t) => timeout(&shown, &format!("{at}.timeout"), t)?,
                    None => default_timeout,
                },
                environment: env,
                policy: r.policy.clone(),
            },
        );
    }
    let authorizer = match &file.authorizer {
        None => None,
        Some(a) => {
            let names = FunctionNames::new(stack, "authorizer");
            names::validate_function_names(&names)?;
            environment(&shown, "authorizer.environment", &a.environment)?;
            let mut env = f.environment.clone();
            env.extend(a.environment.clone());
            env_size(&shown, "authorizer.environment", &env, false)?;
            let sources = a
                .identity_sources
                .clone()
                .unwrap_or_else(|| vec![names::DEFAULT_IDENTITY_SOURCE.to_string()]);
            if sources.is_empty() {
                return Err(bad(
                    &shown,
                    "authorizer.identity-sources",
                    "[]",
                    "name at least one identity source (API Gateway answers 401 when one is missing)",
                ));
            }
            for s in &sources {
                identity_source(&shown, s)?;
            }
            let code = handler_code(
                &shown,
                "authorizer",
                &base,
                &a.handler,
                a.runtime.as_deref().unwrap_or(default_runtime),
                a.entry.as_deref(),
                today,
            )?;
            Some(Authorizer {
                handler: Handler {
                    dir: code.dir,
                    runtime: code.runtime,
                    setting: code.setting,
                    entry: code.entry,
                    module_file: code.module_file,
                    memory_mb: default_memory,
                    timeout_s: default_timeout,
                    environment: env,
                    policy: vec![],
                },
                identity_sources: sources,
            })
        }
    };
    let throttling = match &file.throttling {
        None => None,
        Some(t) => {
            if !(0..=MAX_BURST).contains(&t.burst_limit) {
                return Err(bad(
                    &shown,
                    "throttling.burst-limit",
                    t.burst_limit,
                    format!("must be 0 to {MAX_BURST} (API Gateway's account quota)"),
                ));
            }
            if !t.rate_limit.is_finite() || !(0.0..=MAX_RATE).contains(&t.rate_limit) {
                return Err(bad(
                    &shown,
                    "throttling.rate-limit",
                    t.rate_limit,
                    format!(
                        "must be 0 to {MAX_RATE} requests per second (API Gateway's account quota)"
                    ),
                ));
            }
            Some(Throttling {
                burst_limit: t.burst_limit as i32,
                rate_limit: t.rate_limit,
            })
        }
    };
    let logging = match &file.logging {
        None => None,
        Some(l) => {
            let level = l.level.clone().unwrap_or_else(|| "OFF".into());
            if !["OFF", "ERROR", "INFO"].contains(&level.as_str()) {
                return Err(bad(
                    &shown,
                    "logging.level",
                    format!("{level:?}"),
                    "must be \"OFF\", \"ERROR\" or \"INFO\"",
                ));
            }
            Some(Logging {
                access_log: l.access_log,
                level,
            })
        }
    };
    let releases = match file.releases.as_ref().and_then(|r| r.keep) {
        None => Releases::default(),
        Some(k) if (1..=MAX_KEEP).contains(&k) => Releases { keep: k as usize },
        Some(k) => {
            return Err(bad(
                &shown,
                "releases.keep",
                k,
                format!(
                    "keep at least 1 earlier release (the one `wsconn rollback` goes back to), at most {MAX_KEEP}"
                ),
            ));
        }
    };
    let domain = file
        .domain
        .as_ref()
        .map(|d| super::domain::resolve(d, &shown))
        .transpose()?;
    Ok(App {
        routes,
        authorizer,
        throttling,
        logging,
        releases,
        domain,
        root: base.canonicalize().unwrap_or(base),
    })
}

/// A key as it is written in TOML: bare when it can be, quoted otherwise (`"$default"`).
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

fn route_key(file: &str, at: &str, key: &str) -> Result<(), Error> {
    match key {
        "$default" => Ok(()),
        "$connect" | "$disconnect" => Err(bad(
            file,
            at,
            "(a handler)",
            format!(
                "{key} is the pattern's DynamoDB integration, not a handler: edit mapping-templates/{}.vtl instead (try `wsconn render '{key}'`, and --assets-dir to deploy your copy)",
                &key[1..]
            ),
        )),
        _ if RESERVED_KEYS.contains(&key) => Err(bad(
            file,
            at,
            "(a route)",
            format!(
                "the key {key:?} would give its function the name of the {} function; choose another key",
                if key == "default" {
                    "$default route's"
                } else {
                    "authorizer's"
                }
            ),
        )),
        _ if !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            Ok(())
        }
        _ => Err(bad(
            file,
            at,
            "(a route)",
            "a custom route key is 1 or more of [A-Za-z0-9_-] (or \"$default\"): it is the \"action\" a message names",
        )),
    }
}

fn memory(file: &str, at: &str, m: i64) -> Result<i32, Error> {
    if MEMORY_MB.contains(&m) {
        Ok(m as i32)
    } else {
        Err(bad(file, at, m, "Lambda allows 128 to 10240 MB"))
    }
}

fn timeout(file: &str, at: &str, t: i64) -> Result<i32, Error> {
    if TIMEOUT_S.contains(&t) {
        Ok(t as i32)
    } else {
        Err(bad(file, at, t, "Lambda allows 1 to 900 seconds"))
    }
}

/// Names Lambda accepts, not reserved by Lambda, and not wsconn's own two.
fn environment(file: &str, at: &str, env: &BTreeMap<String, String>) -> Result<(), Error> {
    for k in env.keys() {
        let key = format!("{at}.{k}");
        let mut chars = k.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(bad(
                file,
                &key,
                "(a variable)",
                "variable names start with a letter and hold letters, digits and '_'",
            ));
        }
        if names::WIRED_ENV.contains(&k.as_str()) {
            return Err(bad(
                file,
                &key,
                "(a variable)",
                format!(
                    "{k} is set by wsconn for every handler (the connection table and the @connections endpoint); name your variable otherwise"
                ),
            ));
        }
        if names::LAMBDA_RESERVED_ENV.contains(&k.as_str()) {
            return Err(bad(
                file,
                &key,
                "(a variable)",
                format!("{k} is reserved by Lambda, which sets it itself"),
            ));
        }
    }
    Ok(())
}

/// Lambda's 4 KB limit on a function's environment (measured as JSON), wsconn's two
/// variables included for a handler (`wired`), with the longest @connections URL.
fn env_size(
    file: &str,
    at: &str,
    env: &BTreeMap<String, String>,
    wired: bool,
) -> Result<(), Error> {
    let mut all = env.clone();
    if wired {
        all.insert("TABLE_NAME".into(), "x".repeat(255));
        all.insert(
            "CONNECTIONS_URL".into(),
            format!(
                "https://0123456789.execute-api.ap-southeast-3.amazonaws.com.cn/{}",
                "x".repeat(128)
            ),
        );
    }
    let size = serde_json::to_string(&all).map(|s| s.len()).unwrap_or(0);
    if size > MAX_ENV_BYTES {
        return Err(bad(
            file,
            at,
            format!("({size} bytes with wsconn's variables)"),
            "Lambda allows 4 KB of environment variables per function",
        ));
    }
    Ok(())
}

fn statement(file: &str, at: &str, st: &StatementFile) -> Result<(), Error> {
    if st.actions.is_empty() || st.resources.is_empty() {
        return Err(bad(
            file,
            at,
            "(a statement)",
            "a statement needs at least one action and one resource",
        ));
    }
    for a in &st.actions {
        let ok = a == "*"
            || a.split_once(':').is_some_and(|(svc, op)| {
                !svc.is_empty()
                    && svc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !op.is_empty()
                    && op
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
            });
        if !ok {
            return Err(bad(
                file,
                &format!("{at}.actions"),
                format!("{a:?}"),
                "an action is service:Operation, such as \"s3:GetObject\" (wildcards * and ? allowed)",
            ));
        }
    }
    for r in &st.resources {
        if r != "*" && !r.starts_with("arn:") {
            return Err(bad(
                file,
                &format!("{at}.resources"),
                format!("{r:?}"),
                "a resource is an ARN (arn:…) or \"*\"",
            ));
        }
    }
    Ok(())
}

/// WebSocket REQUEST authorizers take headers, query-string parameters, stage variables
/// and context variables (the AWS::ApiGatewayV2::Authorizer reference).
fn identity_source(file: &str, s: &str) -> Result<(), Error> {
    let named = |prefix: &str| {
        s.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && !n.contains(char::is_whitespace))
    };
    if named("route.request.header.")
        || named("route.request.querystring.")
        || named("stageVariables.")
        || named("context.")
    {
        Ok(())
    } else {
        Err(bad(
            file,
            "authorizer.identity-sources",
            format!("{s:?}"),
            "an identity source is route.request.header.NAME, route.request.querystring.NAME, stageVariables.NAME or context.NAME",
        ))
    }
}

/// A handler's code as wsconn.toml names it, checked.
struct Code {
    dir: PathBuf,
    runtime: &'static Runtime,
    setting: String,
    entry: Entry,
    module_file: String,
}

/// The handler directory (relative to wsconn.toml), its runtime and Lambda's handler
/// setting, checked as Lambda would load them: the runtime is one Lambda creates
/// functions with, the module's file exists (`.js`, `.mjs` or `.cjs` for Node.js, `.py`
/// for Python) and defines the export (a static look; what it cannot follow is left to
/// the runtime).
fn handler_code(
    file: &str,
    at: &str,
    base: &Path,
    dir: &Path,
    runtime_id: &str,
    entry: Option<&str>,
    today: i64,
) -> Result<Code, Error> {
    let runtime = runtime::accepted(runtime_id, today)
        .map_err(|e| bad(file, &format!("{at}.runtime"), format!("{runtime_id:?}"), e))?;
    let full = base.join(dir);
    let shown_dir = format!("{:?}", dir.display().to_string());
    if !full.is_dir() {
        return Err(bad(
            file,
            &format!("{at}.handler"),
            shown_dir,
            format!(
                "no such directory ({}); handler names the directory, relative to {file}, that holds the function's code",
                full.display()
            ),
        ));
    }
    let full = full.canonicalize().unwrap_or(full);
    let setting = entry.unwrap_or(DEFAULT_ENTRY).to_string();
    let parsed = runtime::parse_entry(&setting, runtime.language)
        .map_err(|e| bad(file, &format!("{at}.entry"), format!("{setting:?}"), e))?;
    let looked_for = match runtime.language {
        Language::Node => format!("{m}.js, {m}.mjs or {m}.cjs", m = parsed.module),
        Language::Python => format!("{m}.py or {m}/__init__.py", m = parsed.module),
    };
    let key = if entry.is_some() {
        format!("{at}.entry")
    } else {
        format!("{at}.handler")
    };
    let shown_key = if entry.is_some() {
        format!("{setting:?}")
    } else {
        shown_dir.clone()
    };
    let Some(module_file) = runtime::module_file(&full, &parsed, runtime.language) else {
        return Err(bad(
            file,
            &key,
            shown_key,
            format!(
                "{} has no {looked_for} for the handler setting {setting} ({})",
                full.display(),
                runtime.id
            ),
        ));
    };
    let source = std::fs::read_to_string(full.join(&module_file)).map_err(|e| {
        Error::Config(format!(
            "{file}: reading {}: {e}",
            full.join(&module_file).display()
        ))
    })?;
    if runtime::defines(&source, &parsed.export, runtime.language) == Some(false) {
        return Err(bad(
            file,
            &key,
            shown_key,
            format!(
                "{} does not define `{}` (the handler setting is {setting})",
                full.join(&module_file).display(),
                parsed.export.split('.').next().unwrap_or(&parsed.export)
            ),
        ));
    }
    Ok(Code {
        dir: full,
        runtime,
        setting,
        entry: parsed,
        module_file,
    })
}
