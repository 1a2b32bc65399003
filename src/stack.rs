//! The one model of the stack. `deploy` reconciles it against AWS, `local` serves it on
//! this machine and `render` renders its templates: all three read these values, so the
//! stack's definition (routes, integrations, templates, the function) exists once.
//!
//! Nothing here knows an AWS account or region: ARNs are derived from the model by the
//! deploy engine (`deploy::resources`), and the local runtime needs none.

use crate::assets::{self, Assets};
use crate::config::{Config, Names};
use crate::error::Result;
use std::collections::BTreeMap;

pub type Tags = BTreeMap<String, String>;

/// The desired stack, built from the resolved configuration and the assets.
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
    pub function: FunctionDef,
    pub api: ApiDef,
    /// `$connect`, `$disconnect`, `$default`, in that order.
    pub routes: Vec<RouteDef>,
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

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDef {
    pub name: String,
    pub runtime: &'static str,
    pub handler: &'static str,
    pub memory_mb: i32,
    /// Also the local runtime's limit for one invocation.
    pub timeout_s: i32,
    pub architecture: &'static str,
    /// The execution role's name.
    pub role: String,
    /// `index.mjs` as deployed.
    pub source: String,
    /// The byte-for-byte reproducible deployment package and its base64 SHA-256.
    pub zip: Vec<u8>,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiDef {
    pub name: String,
    pub protocol: &'static str,
    /// Applied to each message's JSON body to pick a route (`$request.body.action`).
    pub route_selection_expression: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteDef {
    pub key: &'static str,
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
    /// An AWS_PROXY integration invoking the stack's function.
    LambdaProxy,
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
pub const ROUTE_KEYS: [&str; 3] = [CONNECT, DISCONNECT, DEFAULT];

impl Stack {
    /// Loads the assets (from `--assets-dir` or the built-in copies) and builds the model.
    pub fn build(cfg: &Config) -> Result<Stack> {
        let names = Names::for_stack(&cfg.stack);
        let assets = assets::load(cfg.assets_dir.as_deref(), &names.table, cfg.connection_ttl)?;
        Ok(Stack::from_parts(cfg, names, assets))
    }

    pub fn from_parts(cfg: &Config, names: Names, assets: Assets) -> Stack {
        let dynamo = |key, action, template: Template| RouteDef {
            key,
            integration: IntegrationDef::DynamoDb {
                action,
                template,
                response_key: "/200/",
            },
            route_response: "$default",
        };
        Stack {
            name: cfg.stack.clone(),
            stage: cfg.stage.clone(),
            connection_ttl: cfg.connection_ttl,
            log_retention_days: cfg.log_retention_days,
            tags: cfg.tags.clone(),
            table: TableDef {
                name: names.table.clone(),
                hash_key: "connectionid",
                ttl_attribute: "ttl",
                billing_mode: "PAY_PER_REQUEST",
            },
            function: FunctionDef {
                name: names.function.clone(),
                runtime: "nodejs24.x",
                handler: "index.handler",
                memory_mb: 128,
                timeout_s: 10,
                // Graviton: cheaper per GB-second, and the echo handler has no native code.
                architecture: "arm64",
                role: names.function_role.clone(),
                source: assets.handler,
                zip: assets.lambda_zip,
                sha256: assets.lambda_sha256,
            },
            api: ApiDef {
                name: names.api.clone(),
                protocol: "WEBSOCKET",
                route_selection_expression: "$request.body.action",
            },
            routes: vec![
                dynamo(
                    CONNECT,
                    DynamoAction::PutItem,
                    Template {
                        file: assets::CONNECT_FILE,
                        text: assets.connect_template,
                    },
                ),
                dynamo(
                    DISCONNECT,
                    DynamoAction::DeleteItem,
                    Template {
                        file: assets::DISCONNECT_FILE,
                        text: assets.disconnect_template,
                    },
                ),
                RouteDef {
                    key: DEFAULT,
                    integration: IntegrationDef::LambdaProxy,
                    route_response: "$default",
                },
            ],
            names,
        }
    }

    pub fn route(&self, key: &str) -> Option<&RouteDef> {
        self.routes.iter().find(|r| r.key == key)
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
            IntegrationDef::LambdaProxy => None,
        }
    }
}

/// A stack built from default options, for tests anywhere in the crate.
#[cfg(test)]
pub mod tests_support {
    use super::*;
    use crate::cli::{GlobalOpts, OutputFormat, StackOpts};
    use crate::config::{FileConfig, resolve};

    pub fn stack(name: &str) -> Stack {
        let g = GlobalOpts {
            stack: Some(name.into()),
            region: None,
            profile: None,
            endpoint_url: None,
            output: OutputFormat::Text,
            yes: false,
            config: None,
        };
        let cfg = resolve(&g, &StackOpts::default(), FileConfig::default()).unwrap();
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
        let keys: Vec<_> = s.routes.iter().map(|r| r.key).collect();
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
        assert_eq!(s.function.role, "chat-default-fn");
        assert_eq!(s.tags.get("wsconn:stack").map(String::as_str), Some("chat"));
    }
}
