//! Every function of the stack, each warm in a Node.js worker of its own: the `$default`
//! route's, each custom route's and the authorizer's, started together at launch. The
//! environment a handler sees is built here, as Lambda builds it, pointed at this
//! process: the table's DynamoDB API and @connections are on wsconn's own port.

use super::log::Log;
use super::node::{FunctionSpec, HandlerSpec, NodeRuntime};
use crate::stack::{Code, EnvValue, FunctionDef, Stack};
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
    set("_HANDLER", f.handler.to_string());
    if let Code::Dir { dir, .. } = &f.code {
        set("LAMBDA_TASK_ROOT", dir.display().to_string());
    }
    env
}

/// Where a function's module is loaded from: its handler directory's entry file; for
/// the built-in echo, `--assets-dir`'s copy or the compiled-in one.
pub fn handler_spec(f: &FunctionDef, assets_dir: Option<&Path>) -> HandlerSpec {
    match (&f.code, assets_dir) {
        (Code::Dir { dir, entry }, _) => HandlerSpec::file(&dir.join(entry)),
        (Code::Builtin { .. }, Some(d)) => HandlerSpec::file(&d.join(crate::assets::HANDLER_FILE)),
        (Code::Builtin { source }, None) => HandlerSpec::inline(source),
    }
}

/// The stack's functions, by name, each in its own warm worker.
pub struct Functions {
    by_name: HashMap<String, Arc<NodeRuntime>>,
}

impl Functions {
    /// Starts one worker per function, all at once.
    pub async fn start(
        stack: &Stack,
        node: &Path,
        assets_dir: Option<&Path>,
        timeout_override: Option<Duration>,
        site: &Site,
        log: &Log,
    ) -> Functions {
        let starts = stack.functions.iter().map(|f| {
            let timeout =
                timeout_override.unwrap_or(Duration::from_secs(f.timeout_s.max(1) as u64));
            let cwd: Option<PathBuf> = match &f.code {
                Code::Dir { dir, .. } => Some(dir.clone()),
                Code::Builtin { .. } => None,
            };
            let spec = FunctionSpec {
                node: node.to_path_buf(),
                handler: handler_spec(f, assets_dir),
                function: f,
                timeout,
                env: function_env(f, site),
                cwd,
            };
            NodeRuntime::start(spec, log.clone())
        });
        let runtimes = futures::future::join_all(starts).await;
        let by_name = runtimes
            .into_iter()
            .map(|rt| (rt.function_name.clone(), rt))
            .collect();
        Functions { by_name }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<NodeRuntime>> {
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
        }
    }

    fn function(env: &[(&str, EnvValue)]) -> FunctionDef {
        let mut s = crate::stack::tests_support::stack("chat");
        let mut f = s.functions.remove(0);
        f.name = "chat-sendmessage".into();
        f.memory_mb = 256;
        f.code = Code::Dir {
            dir: PathBuf::from("/app/handlers/sendmessage"),
            entry: "index.mjs".into(),
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
