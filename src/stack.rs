//! The one model of the stack. `deploy` reconciles it against AWS, `local` serves it on
//! this machine and `render` renders its templates: all three read these values, so the
//! stack's definition (routes, integrations, templates, the function) exists once.
//!
//! Nothing here knows an AWS account or region: ARNs are derived from the model by the
//! deploy engine (`deploy::resources`), and the local runtime needs none.

use crate::assets::{self, Assets, Package};
use crate::config::runtime::Language;
use crate::config::{
    Config, FunctionNames, Handler, LOG_POLICY, Names, PERMISSION_SID, StatementFile, Throttling,
    function_suffix,
};
use crate::error::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub type Tags = BTreeMap<String, String>;

/// The desired stack, built from the resolved configuration and the assets.
///
/// Everything that occurs more than once is a list keyed by its natural key: functions
/// by name, routes by route key, roles by name, log groups by name. Adding a route or a
/// function means adding a value here; `deploy`, `local` and `render` follow.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub stage: String,
    pub connection_ttl: u64,
    pub log_retention_days: i32,
    /// User tags plus the ownership tag `wsconn:stack=<name>`.
    pub tags: Tags,
    pub names: Names,
    pub table: TableDef,
    pub api: ApiDef,
    /// Every IAM role: the one API Gateway's DynamoDB integrations act as, then one per
    /// function.
    pub roles: Vec<RoleDef>,
    /// Every log group the stack manages (one per function).
    pub log_groups: Vec<String>,
    /// Every Lambda function, by name.
    pub functions: Vec<FunctionDef>,
    /// `$connect`, `$disconnect`, `$default`, then the custom routes by key.
    pub routes: Vec<RouteDef>,
    /// The `$connect` authorizer, when wsconn.toml declares one.
    pub authorizer: Option<AuthorizerDef>,
    pub stage_settings: StageSettings,
    /// `[releases] keep`: earlier releases deploy keeps for `wsconn rollback`.
    pub keep_releases: usize,
    /// `[domain]`: the custom domain name the API is reached at (deploy only: `local`
    /// serves its own address).
    pub domain: Option<crate::config::Domain>,
    /// The directory of wsconn.toml: packages end here (see `crate::package::node`).
    pub app_root: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub name: String,
    /// Partition key, type S.
    pub hash_key: &'static str,
    /// Top-level Number attribute holding the expiry in epoch seconds.
    pub ttl_attribute: &'static str,
    pub billing_mode: &'static str,
}

/// An IAM role the stack owns: who may assume it, and what its inline policies allow.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleDef {
    pub name: String,
    /// The service principal that assumes it (`lambda.amazonaws.com`…).
    pub service: &'static str,
    /// The function it serves (`None` for the integrations' role): the graph runs a
    /// function's steps after its role's.
    pub function: Option<String>,
    pub policies: Vec<PolicyDef>,
}

/// One inline policy: a name and the grants it holds, one statement each.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDef {
    pub name: String,
    pub grants: Vec<Grant>,
}

/// `actions` allowed on one resource of the stack. ARNs are derived by `deploy` (they
/// need the account); the model names what, not where.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub actions: Vec<String>,
    pub on: Target,
}

impl Grant {
    pub fn new(actions: &[&str], on: Target) -> Grant {
        Grant {
            actions: actions.iter().map(|a| a.to_string()).collect(),
            on,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The connections table.
    Table,
    /// The log streams of a log group (`<group ARN>:*`).
    LogStreams(String),
    /// Every connection of the stack's stage, through @connections
    /// (`arn:…:execute-api:<region>:<account>:<api-id>/<stage>/*/@connections/*`).
    Connections,
    /// ARNs the user named (a route's `policy`).
    Arns(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDef {
    pub name: String,
    /// What it serves: a route key, or [`AUTHORIZER`].
    pub serves: String,
    /// Lambda's runtime identifier (`nodejs24.x`, `python3.13`).
    pub runtime: &'static str,
    pub language: Language,
    /// Lambda's handler setting (`index.handler`, `app.lambda_handler`).
    pub handler: String,
    pub memory_mb: i32,
    /// Also the local runtime's limit for one invocation.
    pub timeout_s: i32,
    pub architecture: &'static str,
    /// The execution role's name.
    pub role: String,
    /// Its log group.
    pub log_group: String,
    /// Environment variables (none for the built-in echo).
    pub environment: BTreeMap<String, EnvValue>,
    pub code: Code,
    /// The deployment package: the built-in echo's always; a handler directory's once
    /// [`Stack::package`] has zipped it (deploy and diff do; local and render need none).
    pub package: Option<Package>,
    /// The resource-policy statements API Gateway needs to invoke it.
    pub permissions: Vec<PermissionDef>,
}

impl FunctionDef {
    /// Whether its handler comes from the user (and so is wired to the table and to
    /// @connections, unless it is the authorizer).
    pub fn is_user_code(&self) -> bool {
        matches!(self.code, Code::Dir { .. })
    }
}

/// Where a function's code comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Code {
    /// The built-in echo (`lambda/index.mjs`, or `--assets-dir`'s copy): its source.
    Builtin { source: String },
    /// A handler directory named in wsconn.toml, the module's file in it (`index.mjs`,
    /// `src/chat.mjs`, `pkg/mod.py`) and what it exports (`handler`).
    Dir {
        dir: PathBuf,
        module_file: String,
        export: String,
    },
}

/// An environment variable's value. The @connections URL holds the API's id, which
/// exists only once the API does: deploy fills it in (`https://<id>.execute-api…`),
/// local with its own address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum EnvValue {
    Text(String),
    ConnectionsUrl,
}

/// A statement in a function's resource policy: API Gateway (the principal) may invoke
/// the function when the call comes from `source`.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionDef {
    pub sid: String,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Any route of the stack's API (`<api-id>/*`).
    Api,
    /// The stack's authorizer (`<api-id>/authorizers/<authorizer-id>`).
    Authorizer,
}

/// The `$connect` authorizer: a Lambda REQUEST authorizer.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizerDef {
    pub name: String,
    pub function: String,
    pub identity_sources: Vec<String>,
}

/// The stage's settings beyond its deployment: each is managed only when declared.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StageSettings {
    pub throttling: Option<Throttling>,
    /// `DefaultRouteSettings.LoggingLevel` (`OFF`, `ERROR`, `INFO`), when `[logging]` is.
    pub logging_level: Option<String>,
    /// The access log's group (`/aws/apigateway/<stack>/<stage>`) when it is on.
    pub access_log_group: Option<String>,
}

impl StageSettings {
    /// Whether API Gateway writes to CloudWatch Logs for this stage, which needs the
    /// account's CloudWatch role.
    pub fn writes_logs(&self) -> bool {
        self.access_log_group.is_some() || self.logging_level.as_deref().is_some_and(|l| l != "OFF")
    }
}

/// The access log's format: one JSON object per line, with the fields a WebSocket API
/// can log ($context variables). `principalId` and `integrationRequestId` (the Lambda
/// request id of a proxy integration) let `wsconn logs` tie records to a principal and to
/// the handler invocation a request made.
pub const ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime","eventType":"$context.eventType","routeKey":"$context.routeKey","status":"$context.status","connectionId":"$context.connectionId","integrationError":"$context.integrationErrorMessage","authorizerError":"$context.authorizer.error","principalId":"$context.authorizer.principalId","integrationRequestId":"$context.integration.requestId"}"#;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiDef {
    pub name: String,
    pub protocol: &'static str,
    /// Applied to each message's JSON body to pick a route (`$request.body.action`).
    pub route_selection_expression: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteDef {
    pub key: String,
    pub integration: IntegrationDef,
    /// A route response makes the backend's answer reach the client.
    pub route_response: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IntegrationDef {
    /// An AWS service integration calling DynamoDB `action` with the rendered template,
    /// as the role `names.api_role`.
    DynamoDb {
        action: DynamoAction,
        template: Template,
        /// The integration response's key (a status regex).
        response_key: &'static str,
    },
    /// An AWS_PROXY integration invoking a function of the stack.
    LambdaProxy { function: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamoAction {
    PutItem,
    DeleteItem,
}

impl DynamoAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DynamoAction::PutItem => "PutItem",
            DynamoAction::DeleteItem => "DeleteItem",
        }
    }

    /// Whether a rendered request has the shape this action requires: a `TableName`,
    /// and an `Item` (PutItem) or `Key` (DeleteItem) of typed attribute values that
    /// holds the partition key `hash_key` as a string. The error says what is wrong.
    pub fn check_request(self, request: &serde_json::Value, hash_key: &str) -> Result<(), String> {
        use serde_json::Value;
        let Some(obj) = request.as_object() else {
            return Err("the request is not a JSON object".into());
        };
        match obj.get("TableName") {
            Some(Value::String(t)) if !t.is_empty() => {}
            Some(_) => return Err("TableName is not a non-empty string".into()),
            None => return Err("TableName is missing".into()),
        }
        let member = match self {
            DynamoAction::PutItem => "Item",
            DynamoAction::DeleteItem => "Key",
        };
        let Some(attrs) = obj.get(member).and_then(Value::as_object) else {
            return Err(format!(
                "{member} is missing or not an object ({} requires it)",
                self.as_str()
            ));
        };
        for (name, v) in attrs {
            check_attribute(v).map_err(|e| format!("{member}.{name}: {e}"))?;
        }
        match attrs.get(hash_key).and_then(|v| v.get("S")) {
            Some(Value::String(_)) => Ok(()),
            _ => Err(format!(
                "{member} has no string partition key {hash_key:?} ({{\"S\": \"...\"}})"
            )),
        }
    }
}

/// One DynamoDB attribute value: an object with exactly one type descriptor.
fn check_attribute(v: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    let Some(o) = v.as_object() else {
        return Err("an attribute value must be an object such as {\"S\": \"x\"}".into());
    };
    if o.len() != 1 {
        return Err(format!(
            "an attribute value needs exactly one type, found {}",
            o.len()
        ));
    }
    let (ty, inner) = o.iter().next().expect("one entry");
    match (ty.as_str(), inner) {
        ("S" | "N" | "B", Value::String(_)) => Ok(()),
        ("BOOL", Value::Bool(_)) | ("NULL", Value::Bool(true)) => Ok(()),
        ("SS" | "NS" | "BS", Value::Array(a)) if a.iter().all(Value::is_string) => Ok(()),
        ("M", Value::Object(m)) => m.values().try_for_each(check_attribute),
        ("L", Value::Array(a)) => a.iter().try_for_each(check_attribute),
        (t, _) => Err(format!(
            "{t:?} with a value of the wrong kind, or an unknown type"
        )),
    }
}

/// A mapping template with its deploy-time placeholders filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Its path relative to the assets directory, for messages.
    pub file: &'static str,
    pub text: String,
}

pub const CONNECT: &str = "$connect";
pub const DISCONNECT: &str = "$disconnect";
pub const DEFAULT: &str = "$default";
/// The routes every stack has.
pub const ROUTE_KEYS: [&str; 3] = [CONNECT, DISCONNECT, DEFAULT];

/// What a function serves when it is the `$connect` authorizer.
pub const AUTHORIZER: &str = "authorizer";
/// The inline policies of a user handler's role, besides [`LOG_POLICY`].
pub const READ_POLICY: &str = "read-connections";
pub const CONNECTIONS_POLICY: &str = "manage-connections";
pub const ROUTE_POLICY: &str = "route-policy";
const RUNTIME: &str = crate::config::runtime::DEFAULT_RUNTIME;

const LAMBDA: &str = "lambda.amazonaws.com";
const APIGATEWAY: &str = "apigateway.amazonaws.com";

impl Stack {
    /// Loads the assets (from `--assets-dir` or the built-in copies) and builds the model.
    pub fn build(cfg: &Config) -> Result<Stack> {
        let names = Names::for_stack(&cfg.stack);
        let assets = assets::load(cfg.assets_dir.as_deref(), &names.table, cfg.connection_ttl)?;
        Ok(Stack::from_parts(cfg, names, assets))
    }

    pub fn from_parts(cfg: &Config, names: Names, assets: Assets) -> Stack {
        let dynamo = |key: &str, action, template: Template| RouteDef {
            key: key.to_string(),
            integration: IntegrationDef::DynamoDb {
                action,
                template,
                response_key: "/200/",
            },
            route_response: "$default",
        };
        let Assets {
            connect_template,
            disconnect_template,
            handler,
            lambda_zip,
            lambda_sha256,
        } = assets;
        let table = TableDef {
            name: names.table.clone(),
            hash_key: "connectionid",
            ttl_attribute: "ttl",
            billing_mode: "PAY_PER_REQUEST",
        };
        let app = &cfg.app;
        let mut functions = Vec::new();
        match app.routes.get(DEFAULT) {
            Some(h) => functions.push(user_function(&cfg.stack, DEFAULT, h, &table.name)),
            None => functions.push(echo_function(
                &names.default_function,
                handler,
                Package {
                    zip: lambda_zip,
                    sha256: lambda_sha256,
                },
            )),
        }
        for (key, h) in app.routes.iter().filter(|(k, _)| k.as_str() != DEFAULT) {
            functions.push(user_function(&cfg.stack, key, h, &table.name));
        }
        let authorizer = app.authorizer.as_ref().map(|a| {
            let mut f = user_function(&cfg.stack, AUTHORIZER, &a.handler, &table.name);
            // The authorizer decides who connects: it gets neither the table nor
            // @connections, and only the authorizer may invoke it.
            f.environment
                .retain(|k, _| !crate::config::WIRED_ENV.contains(&k.as_str()));
            f.permissions = vec![PermissionDef {
                sid: PERMISSION_SID.to_string(),
                source: Source::Authorizer,
            }];
            let def = AuthorizerDef {
                name: format!("{}-{AUTHORIZER}", cfg.stack),
                function: f.name.clone(),
                identity_sources: a.identity_sources.clone(),
            };
            functions.push(f);
            def
        });
        let connect = Template {
            file: assets::CONNECT_FILE,
            text: connect_template,
        };
        let disconnect = Template {
            file: assets::DISCONNECT_FILE,
            text: disconnect_template,
        };
        let integrations_role = RoleDef {
            name: names.api_role.clone(),
            service: APIGATEWAY,
            function: None,
            policies: vec![PolicyDef {
                name: names.api_role_policy.clone(),
                grants: vec![Grant::new(
                    &["dynamodb:PutItem", "dynamodb:DeleteItem"],
                    Target::Table,
                )],
            }],
        };
        let mut roles = vec![integrations_role];
        roles.extend(functions.iter().map(|f| {
            let policy = match app.routes.get(&f.serves) {
                Some(h) if f.serves != AUTHORIZER => h.policy.as_slice(),
                _ => &[],
            };
            function_role(f, policy)
        }));
        let mut routes = vec![
            dynamo(CONNECT, DynamoAction::PutItem, connect),
            dynamo(DISCONNECT, DynamoAction::DeleteItem, disconnect),
        ];
        routes.extend(
            functions
                .iter()
                .filter(|f| f.serves != AUTHORIZER)
                .map(|f| RouteDef {
                    key: f.serves.clone(),
                    integration: IntegrationDef::LambdaProxy {
                        function: f.name.clone(),
                    },
                    route_response: "$default",
                }),
        );
        let stage_settings = StageSettings {
            throttling: app.throttling,
            logging_level: app.logging.as_ref().map(|l| l.level.clone()),
            access_log_group: app
                .logging
                .as_ref()
                .filter(|l| l.access_log)
                .map(|_| access_log_group(&cfg.stack, &cfg.stage)),
        };
        Stack {
            name: cfg.stack.clone(),
            stage: cfg.stage.clone(),
            connection_ttl: cfg.connection_ttl,
            log_retention_days: cfg.log_retention_days,
            tags: cfg.tags.clone(),
            table,
            api: ApiDef {
                name: names.api.clone(),
                protocol: "WEBSOCKET",
                route_selection_expression: "$request.body.action",
            },
            roles,
            log_groups: functions.iter().map(|f| f.log_group.clone()).collect(),
            routes,
            functions,
            authorizer,
            stage_settings,
            keep_releases: app.releases.keep,
            domain: app.domain.clone(),
            app_root: app.root.clone(),
            names,
        }
    }

    /// Zips every handler directory that is not packaged yet (deploy and diff compare
    /// `CodeSha256`). Fails before any AWS call on a package Lambda would refuse.
    pub fn package(&mut self) -> Result<()> {
        for f in &mut self.functions {
            if let (Code::Dir { dir, .. }, None) = (&f.code, &f.package) {
                f.package = Some(crate::package::package_dir(
                    dir,
                    f.language,
                    f.runtime,
                    &self.app_root,
                )?);
            }
        }
        Ok(())
    }

    /// Every log group the stack owns: its functions', and the access log's.
    pub fn owned_log_groups(&self) -> impl Iterator<Item = &String> {
        self.log_groups
            .iter()
            .chain(self.stage_settings.access_log_group.iter())
    }

    pub fn route(&self, key: &str) -> Option<&RouteDef> {
        self.routes.iter().find(|r| r.key == key)
    }

    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.name == name)
    }

    pub fn role(&self, name: &str) -> Option<&RoleDef> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The function a route invokes (`None` for a service integration).
    pub fn function_of(&self, route: &RouteDef) -> Option<&FunctionDef> {
        match &route.integration {
            IntegrationDef::LambdaProxy { function } => self.function(function),
            IntegrationDef::DynamoDb { .. } => None,
        }
    }

    /// The `$default` route's function.
    pub fn default_function(&self) -> Option<&FunctionDef> {
        self.function_of(self.route(DEFAULT)?)
    }

    /// Parses every mapping template with the template engine, so a syntax error stops a
    /// deploy before any AWS call (API Gateway accepts a broken template and fails only
    /// at run time). The error is `FILE:LINE:COL: message`.
    pub fn check_templates(&self, assets_dir: Option<&std::path::Path>) -> Result<()> {
        for r in &self.routes {
            if let IntegrationDef::DynamoDb { template, .. } = &r.integration {
                let file = match assets_dir {
                    Some(d) => d.join(template.file).display().to_string(),
                    None => template.file.to_string(),
                };
                crate::vtl::Template::parse(&file, &template.text)
                    .map_err(|e| crate::error::Error::Template(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// The mapping template of a route with a service integration.
    pub fn template(&self, key: &str) -> Option<&Template> {
        match &self.route(key)?.integration {
            IntegrationDef::DynamoDb { template, .. } => Some(template),
            IntegrationDef::LambdaProxy { .. } => None,
        }
    }
}

/// The built-in `$default` handler: it echoes the event, has no environment, and its
/// role may write its own logs and nothing else.
fn echo_function(names: &FunctionNames, source: String, package: Package) -> FunctionDef {
    FunctionDef {
        name: names.function.clone(),
        serves: DEFAULT.to_string(),
        runtime: RUNTIME,
        language: Language::Node,
        handler: "index.handler".into(),
        memory_mb: crate::config::DEFAULT_MEMORY_MB,
        timeout_s: crate::config::DEFAULT_TIMEOUT_S,
        // Graviton: cheaper per GB-second, and the echo handler has no native code.
        architecture: "arm64",
        role: names.role.clone(),
        log_group: names.log_group.clone(),
        environment: BTreeMap::new(),
        code: Code::Builtin { source },
        package: Some(package),
        permissions: vec![PermissionDef {
            sid: PERMISSION_SID.to_string(),
            source: Source::Api,
        }],
    }
}

/// A function whose handler the user wrote (`serves`: its route key, or [`AUTHORIZER`]):
/// `<stack>-<key>`, with the connection table's name and the @connections URL in its
/// environment, under the user's variables.
fn user_function(stack: &str, serves: &str, h: &Handler, table: &str) -> FunctionDef {
    let names = FunctionNames::new(stack, function_suffix(serves));
    let mut environment: BTreeMap<String, EnvValue> = h
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), EnvValue::Text(v.clone())))
        .collect();
    environment.insert("TABLE_NAME".into(), EnvValue::Text(table.to_string()));
    environment.insert("CONNECTIONS_URL".into(), EnvValue::ConnectionsUrl);
    FunctionDef {
        name: names.function,
        serves: serves.to_string(),
        runtime: h.runtime.id,
        language: h.runtime.language,
        handler: h.setting.clone(),
        memory_mb: h.memory_mb,
        timeout_s: h.timeout_s,
        // x86_64: a handler's node_modules may hold native code built on this machine.
        architecture: "x86_64",
        role: names.role,
        log_group: names.log_group,
        environment,
        code: Code::Dir {
            dir: h.dir.clone(),
            module_file: h.module_file.clone(),
            export: h.entry.export.clone(),
        },
        package: None,
        permissions: vec![PermissionDef {
            sid: PERMISSION_SID.to_string(),
            source: Source::Api,
        }],
    }
}

/// A function's role: assumed by Lambda, allowed to write its own log group's streams;
/// a user's handler also reads and prunes the connection table, posts to @connections,
/// and has its route's extra statements. The authorizer has logs only.
fn function_role(f: &FunctionDef, extra: &[StatementFile]) -> RoleDef {
    let mut policies = vec![PolicyDef {
        name: LOG_POLICY.to_string(),
        grants: vec![Grant::new(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            Target::LogStreams(f.log_group.clone()),
        )],
    }];
    if f.is_user_code() && f.serves != AUTHORIZER {
        policies.push(PolicyDef {
            name: READ_POLICY.to_string(),
            grants: vec![Grant::new(
                &[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "dynamodb:DeleteItem",
                ],
                Target::Table,
            )],
        });
        policies.push(PolicyDef {
            name: CONNECTIONS_POLICY.to_string(),
            grants: vec![Grant::new(
                &["execute-api:ManageConnections"],
                Target::Connections,
            )],
        });
    }
    if !extra.is_empty() {
        policies.push(PolicyDef {
            name: ROUTE_POLICY.to_string(),
            grants: extra
                .iter()
                .map(|st| Grant {
                    actions: st.actions.clone(),
                    on: Target::Arns(st.resources.clone()),
                })
                .collect(),
        });
    }
    RoleDef {
        name: f.role.clone(),
        service: LAMBDA,
        function: Some(f.name.clone()),
        policies,
    }
}

/// `/aws/apigateway/<stack>/<stage>`: the stage's access log.
pub fn access_log_group(stack: &str, stage: &str) -> String {
    format!("/aws/apigateway/{stack}/{stage}")
}

/// A stack built from default options, for tests anywhere in the crate.
#[cfg(test)]
pub mod tests_support {
    use super::*;
    use crate::config::{FileConfig, Overrides, resolve};

    pub fn stack(name: &str) -> Stack {
        let o = Overrides {
            stack: Some(name.into()),
            ..Default::default()
        };
        let cfg = resolve(&o, FileConfig::default()).unwrap();
        Stack::build(&cfg).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::stack;
    use super::*;

    #[test]
    fn request_shapes_are_checked_per_action() {
        use serde_json::json;
        let put = DynamoAction::PutItem;
        let ok = json!({"TableName": "t", "Item": {"connectionid": {"S": "a"}, "ttl": {"N": "1"},
                        "headers": {"M": {"h": {"S": "v"}}}}});
        assert_eq!(put.check_request(&ok, "connectionid"), Ok(()));
        let no_table = json!({"Item": {"connectionid": {"S": "a"}}});
        assert!(
            put.check_request(&no_table, "connectionid")
                .unwrap_err()
                .contains("TableName")
        );
        let key_not_item = json!({"TableName": "t", "Key": {"connectionid": {"S": "a"}}});
        assert!(
            put.check_request(&key_not_item, "connectionid")
                .unwrap_err()
                .contains("Item")
        );
        assert_eq!(
            DynamoAction::DeleteItem.check_request(&key_not_item, "connectionid"),
            Ok(())
        );
        let untyped = json!({"TableName": "t", "Item": {"connectionid": {"S": "a"}, "x": "raw"}});
        assert!(
            put.check_request(&untyped, "connectionid")
                .unwrap_err()
                .contains("Item.x")
        );
        let nested = json!({"TableName": "t", "Item": {"connectionid": {"S": "a"},
                            "m": {"M": {"bad": {"S": 1}}}}});
        assert!(put.check_request(&nested, "connectionid").is_err());
        let no_key = json!({"TableName": "t", "Item": {"id": {"S": "a"}}});
        assert!(
            put.check_request(&no_key, "connectionid")
                .unwrap_err()
                .contains("partition key")
        );
        assert!(put.check_request(&json!([1]), "connectionid").is_err());
    }

    #[test]
    fn the_shipped_templates_parse() {
        assert!(stack("s").check_templates(None).is_ok());
        let mut broken = stack("s");
        if let IntegrationDef::DynamoDb { template, .. } = &mut broken.routes[1].integration {
            template.text = "line one\n#if($x\n".into();
        }
        let e = broken.check_templates(None).unwrap_err().to_string();
        assert!(
            e.starts_with("mapping-templates/disconnect.vtl:3:1: ") && e.contains("expected"),
            "{e}"
        );
    }

    #[test]
    fn routes_templates_and_names_come_from_one_model() {
        let s = stack("chat");
        let keys: Vec<_> = s.routes.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ROUTE_KEYS);
        let t = s.template(CONNECT).unwrap();
        assert_eq!(t.file, "mapping-templates/connect.vtl");
        assert!(t.text.contains("\"TableName\": \"chat-connections\""));
        assert!(s.template(DEFAULT).is_none());
        assert!(matches!(
            s.route(DISCONNECT).unwrap().integration,
            IntegrationDef::DynamoDb {
                action: DynamoAction::DeleteItem,
                ..
            }
        ));
        assert_eq!(s.default_function().unwrap().role, "chat-default-fn");
        assert_eq!(
            s.role("chat-default-fn").unwrap().service,
            "lambda.amazonaws.com"
        );
        assert_eq!(s.log_groups, ["/aws/lambda/chat-default"]);
        assert_eq!(s.tags.get("wsconn:stack").map(String::as_str), Some("chat"));
    }
}
