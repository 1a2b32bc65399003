//! Every function of the stack, each in a worker of its own (Node.js or Python, by its
//! runtime): the `$default` route's, each custom route's and the authorizer's. The
//! authorizer and `$default` (every function with `--warm`) start at launch and stay
//! warm; the others start on their first invocation and stop when idle, as Lambda's
//! execution environments do. The environment a handler sees is built here, as Lambda
//! builds it, pointed at this process: the table's DynamoDB API and @connections are on
//! wsconn's own port, and AWS's own hostnames for them reach it too.

use super::log::Log;
use super::worker::{FunctionRuntime, FunctionSpec, HandlerSpec, Launcher};
use crate::config::runtime::Language;
use crate::stack::{AUTHORIZER, Code, DEFAULT, EnvValue, FunctionDef, Stack};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The account id in the ARNs wsconn local makes up (`methodArn`, the function's ARN).
pub const LOCAL_ACCOUNT: &str = "000000000000";

/// What the environment of every function is pointed at.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// `http://HOST:PORT`: the DynamoDB API, and @connections under `/<stage>`.
    pub base_url: String,
    pub stage: String,
    pub region: String,
    /// The caller's credentials, when wsconn has them in its environment (id, secret,
    /// session token); placeholders otherwise (the local endpoints do not check them).
    pub credentials: Option<(String, String, Option<String>)>,
    /// PATH, for handlers that start programs.
    pub path: Option<String>,
    /// wsconn's local certificate authority (PEM), which the workers trust.
    pub ca_file: Option<PathBuf>,
    /// AWS's hostnames that reach this process from inside the workers (the API's
    /// `execute-api` host, DynamoDB's regional endpoint), and where they go.
    pub redirect_hosts: Vec<String>,
    pub redirect_to: String,
}

impl Site {
    pub fn connections_url(&self) -> String {
        format!("{}/{}", self.base_url, self.stage)
    }
}

/// The whole environment of a function's worker: Lambda's defined variables, the
/// function's own (with `CONNECTIONS_URL` pointed at this process), credentials, the
/// region, and `AWS_ENDPOINT_URL_DYNAMODB` so `new DynamoDBClient({})` reaches the local
/// table. Nothing else of wsconn's environment leaks in.
pub fn function_env(f: &FunctionDef, site: &Site) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v));
    };
    if let Some(p) = &site.path {
        set("PATH", p.clone());
    }
    set("LANG", "en_US.UTF-8".into());
    set("TZ", "UTC".into());
    for (k, v) in &f.environment {
        let v = match v {
            EnvValue::Text(t) => t.clone(),
            EnvValue::ConnectionsUrl => site.connections_url(),
        };
        set(k, v);
    }
    let (id, secret, token) = site
        .credentials
        .clone()
        .unwrap_or_else(|| ("local".into(), "local".into(), None));
    set("AWS_ACCESS_KEY_ID", id);
    set("AWS_SECRET_ACCESS_KEY", secret);
    if let Some(t) = token {
        set("AWS_SESSION_TOKEN", t);
    }
    set("AWS_REGION", site.region.clone());
    set("AWS_DEFAULT_REGION", site.region.clone());
    set("AWS_ENDPOINT_URL_DYNAMODB", site.base_url.clone());
    set("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", f.runtime));
    set("AWS_LAMBDA_FUNCTION_NAME", f.name.clone());
    set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string());
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into());
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into());
    set("AWS_LAMBDA_LOG_GROUP_NAME", f.log_group.clone());
    set("AWS_LAMBDA_LOG_STREAM_NAME", "local".into());
    set("_HANDLER", f.handler.clone());
    if let Code::Dir { dir, .. } = &f.code {
        set("LAMBDA_TASK_ROOT", dir.display().to_string());
    }
    // AWS's own hostnames reach this process, only inside the workers: the workers
    // redirect connections to them here, and trust wsconn's local CA for TLS.
    if !site.redirect_hosts.is_empty() {
        set("WSCONN_REDIRECT_HOSTS", site.redirect_hosts.join(","));
        set("WSCONN_REDIRECT_TO", site.redirect_to.clone());
    }
    if let Some(ca) = &site.ca_file {
        let ca = ca.display().to_string();
        match f.language {
            Language::Node => set("NODE_EXTRA_CA_CERTS", ca),
            // The worker adds it to the system's CAs and points botocore, requests and
            // urllib at that bundle (AWS_CA_BUNDLE alone would replace them, and TLS to
            // every host not redirected here would fail).
            Language::Python => set("WSCONN_EXTRA_CA_CERTS", ca),
        }
    }
    if f.language == Language::Python {
        set("PYTHONDONTWRITEBYTECODE", "1".into());
    }
    env
}

/// Where a function's module is loaded from: its handler directory's module file; for
/// the built-in echo, `--assets-dir`'s copy or the compiled-in one.
pub fn handler_spec(f: &FunctionDef, assets_dir: Option<&Path>) -> HandlerSpec {
    match (&f.code, assets_dir) {
        (
            Code::Dir {
                dir, module_file, ..
            },
            _,
        ) if f.language == Language::Python => HandlerSpec::python(dir, module_file),
        (
            Code::Dir {
                dir, module_file, ..
            },
            _,
        ) => HandlerSpec::file(&dir.join(module_file)),
        (Code::Builtin { .. }, Some(d)) => HandlerSpec::file(&d.join(crate::assets::HANDLER_FILE)),
        (Code::Builtin { source }, None) => HandlerSpec::inline(source),
    }
}

/// The interpreters: `node` (with `--node`) and `python3` (with `--python`), each found
/// only when a function needs it.
#[derive(Debug, Clone, Default)]
pub struct Interpreters {
    pub node: Option<PathBuf>,
    pub python: Option<PathBuf>,
}

/// Which workers stay warm, and when the others stop.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Every function starts at launch and stays (`--warm`).
    pub warm_all: bool,
    /// An on-demand worker unused this long is stopped (`--idle-workers`; `None`: never).
    pub idle: Option<Duration>,
}

/// Whether a function starts at launch and stays warm: the authorizer (every handshake
/// needs it) and `$default` (every unrouted message), or all with `--warm`.
pub fn is_warm(f: &FunctionDef, policy: Policy) -> bool {
    policy.warm_all || f.serves == AUTHORIZER || f.serves == DEFAULT
}

/// What one function's worker needs besides the stack: the runtime's SDK, when wsconn
/// provides it (`WSCONN_SDK_NODE_MODULES` / `WSCONN_PYTHON_SDK`).
pub type Extras = HashMap<String, Vec<(String, String)>>;

/// The stack's functions, by name, each with its own runtime.
pub struct Functions {
    by_name: HashMap<String, Arc<FunctionRuntime>>,
}

impl Functions {
    /// Builds every function's runtime; the warm ones start their worker now, all at once.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        stack: &Stack,
        interpreters: &Interpreters,
        assets_dir: Option<&Path>,
        timeout_override: Option<Duration>,
        site: &Site,
        extras: &Extras,
        policy: Policy,
        log: &Log,
    ) -> Functions {
        let starts = stack.functions.iter().filter_map(|f| {
            let timeout =
                timeout_override.unwrap_or(Duration::from_secs(f.timeout_s.max(1) as u64));
            let cwd: Option<PathBuf> = match &f.code {
                Code::Dir { dir, .. } => Some(dir.clone()),
                Code::Builtin { .. } => None,
            };
            let export = match &f.code {
                Code::Dir { export, .. } => export.clone(),
                Code::Builtin { .. } => "handler".to_string(),
            };
            let launcher = match f.language {
                Language::Node => Launcher::Node(interpreters.node.clone()?),
                Language::Python => Launcher::Python(interpreters.python.clone()?),
            };
            let mut env = function_env(f, site);
            env.extend(extras.get(&f.name).cloned().unwrap_or_default());
            let warm = is_warm(f, policy);
            let spec = FunctionSpec {
                launcher,
                handler: handler_spec(f, assets_dir),
                function: f,
                export,
                region: site.region.clone(),
                timeout,
                env,
                cwd,
                warm,
                idle: if warm { None } else { policy.idle },
            };
            Some(FunctionRuntime::start(spec, log.clone()))
        });
        let runtimes = futures::future::join_all(starts).await;
        let by_name = runtimes
            .into_iter()
            .map(|rt| (rt.function_name.clone(), rt))
            .collect();
        Functions { by_name }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<FunctionRuntime>> {
        self.by_name.get(name)
    }

    pub async fn shutdown(&self) {
        futures::future::join_all(self.by_name.values().map(|rt| rt.shutdown())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn site() -> Site {
        Site {
            base_url: "http://127.0.0.1:8080".into(),
            stage: "api".into(),
            region: "eu-west-1".into(),
            credentials: None,
            path: Some("/usr/bin".into()),
            ca_file: Some(PathBuf::from("/data/local-ca/ca.pem")),
            redirect_hosts: vec!["abc.execute-api.eu-west-1.amazonaws.com".into()],
            redirect_to: "127.0.0.1:8080".into(),
        }
    }

    fn function(env: &[(&str, EnvValue)]) -> FunctionDef {
        let mut s = crate::stack::tests_support::stack("chat");
        let mut f = s.functions.remove(0);
        f.name = "chat-sendmessage".into();
        f.memory_mb = 256;
        f.code = Code::Dir {
            dir: PathBuf::from("/app/handlers/sendmessage"),
            module_file: "index.mjs".into(),
            export: "handler".into(),
        };
        f.environment = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>();
        f
    }

    fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn handlers_reach_the_local_table_and_connections() {
        let f = function(&[
            ("TABLE_NAME", EnvValue::Text("chat-connections".into())),
            ("CONNECTIONS_URL", EnvValue::ConnectionsUrl),
            ("GREETING", EnvValue::Text("hi".into())),
        ]);
        let env = function_env(&f, &site());
        assert_eq!(get(&env, "TABLE_NAME"), Some("chat-connections"));
        assert_eq!(
            get(&env, "CONNECTIONS_URL"),
            Some("http://127.0.0.1:8080/api")
        );
        assert_eq!(get(&env, "GREETING"), Some("hi"));
        assert_eq!(
            get(&env, "AWS_ENDPOINT_URL_DYNAMODB"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(get(&env, "AWS_REGION"), Some("eu-west-1"));
        assert_eq!(get(&env, "AWS_DEFAULT_REGION"), Some("eu-west-1"));
        assert_eq!(get(&env, "AWS_ACCESS_KEY_ID"), Some("local"));
        assert_eq!(get(&env, "AWS_SECRET_ACCESS_KEY"), Some("local"));
        assert_eq!(get(&env, "AWS_SESSION_TOKEN"), None);
        assert_eq!(
            get(&env, "AWS_LAMBDA_FUNCTION_NAME"),
            Some("chat-sendmessage")
        );
        assert_eq!(get(&env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("256"));
        assert_eq!(get(&env, "AWS_LAMBDA_FUNCTION_VERSION"), Some("$LATEST"));
        assert_eq!(
            get(&env, "AWS_EXECUTION_ENV"),
            Some("AWS_Lambda_nodejs24.x")
        );
        assert_eq!(
            get(&env, "LAMBDA_TASK_ROOT"),
            Some("/app/handlers/sendmessage")
        );
        assert_eq!(get(&env, "_HANDLER"), Some("index.handler"));
        // AWS's own hostnames reach this process, over TLS with wsconn's CA.
        assert_eq!(
            get(&env, "WSCONN_REDIRECT_HOSTS"),
            Some("abc.execute-api.eu-west-1.amazonaws.com")
        );
        assert_eq!(get(&env, "WSCONN_REDIRECT_TO"), Some("127.0.0.1:8080"));
        assert_eq!(
            get(&env, "NODE_EXTRA_CA_CERTS"),
            Some("/data/local-ca/ca.pem")
        );
        assert_eq!(get(&env, "WSCONN_EXTRA_CA_CERTS"), None);
        assert_eq!(get(&env, "PATH"), Some("/usr/bin"));
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "each variable once: {names:?}");
    }

    #[test]
    fn the_callers_credentials_are_passed_on_when_set() {
        let mut s = site();
        s.credentials = Some(("AKID".into(), "secret".into(), Some("tok".into())));
        let env = function_env(&function(&[]), &s);
        assert_eq!(get(&env, "AWS_ACCESS_KEY_ID"), Some("AKID"));
        assert_eq!(get(&env, "AWS_SECRET_ACCESS_KEY"), Some("secret"));
        assert_eq!(get(&env, "AWS_SESSION_TOKEN"), Some("tok"));
    }

    #[test]
    fn the_built_in_echo_has_no_table_or_task_root() {
        let s = crate::stack::tests_support::stack("chat");
        let env = function_env(s.default_function().unwrap(), &site());
        assert_eq!(get(&env, "TABLE_NAME"), None);
        assert_eq!(get(&env, "CONNECTIONS_URL"), None);
        assert_eq!(get(&env, "LAMBDA_TASK_ROOT"), None);
        assert_eq!(get(&env, "AWS_LAMBDA_FUNCTION_NAME"), Some("chat-default"));
        assert_eq!(get(&env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("128"));
    }
}
