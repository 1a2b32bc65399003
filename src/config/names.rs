//! The names and constants every part of the configuration shares: what derives from
//! the stack's name (the natural keys that replace a state file), each service's naming
//! rule, and the defaults. Below both the options (`super`) and the application
//! sections (`super::app`), so neither imports the other for them.

use crate::error::Error;

pub const OWNER_TAG: &str = "wsconn:stack";
pub const DEFAULT_STACK: &str = "wsconn";
pub const DEFAULT_STAGE: &str = "api";
pub const DEFAULT_CONNECTION_TTL: u64 = 86_400;
pub const DEFAULT_LOG_RETENTION_DAYS: i32 = 14;
pub const DEFAULT_MEMORY_MB: i32 = 128;
pub const DEFAULT_TIMEOUT_S: i32 = 10;
/// `[releases] keep`: earlier releases deploy keeps besides the live one.
pub const DEFAULT_KEEP_RELEASES: usize = 5;
pub const DEFAULT_IDENTITY_SOURCE: &str = "route.request.header.Authorization";
/// The variables wsconn gives every handler; a user variable may not redefine them.
pub const WIRED_ENV: [&str; 2] = ["TABLE_NAME", "CONNECTIONS_URL"];
/// Lambda's reserved environment variables ("Defined runtime environment variables":
/// setting one is InvalidParameterValueException).
pub const LAMBDA_RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// The suffix of a route's function name: `<stack>-<suffix>` (`default` for `$default`).
pub fn function_suffix(route_key: &str) -> &str {
    if route_key == "$default" {
        "default"
    } else {
        route_key
    }
}

/// Names derived from the stack name: the natural keys that replace a state file.
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    pub table: String,
    /// The role API Gateway's DynamoDB integrations act as, and its one inline policy.
    pub api_role: String,
    pub api_role_policy: String,
    pub api: String,
    /// The `$default` route's function.
    pub default_function: FunctionNames,
}

/// A function's name and the names that follow from it: its role and its log group.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionNames {
    pub function: String,
    pub role: String,
    pub log_group: String,
}

/// The statement id of the permission that lets API Gateway invoke a function.
pub const PERMISSION_SID: &str = "wsconn-apigateway-invoke";
/// The inline policy that lets a function write its own log group.
pub const LOG_POLICY: &str = "write-own-logs";

impl FunctionNames {
    /// `<stack>-<suffix>`, its role `<stack>-<suffix>-fn` and `/aws/lambda/<stack>-<suffix>`.
    pub fn new(stack: &str, suffix: &str) -> FunctionNames {
        let function = format!("{stack}-{suffix}");
        FunctionNames {
            role: format!("{function}-fn"),
            log_group: format!("/aws/lambda/{function}"),
            function,
        }
    }
}

impl Names {
    pub fn for_stack(stack: &str) -> Names {
        Names {
            table: format!("{stack}-connections"),
            api_role: format!("{stack}-apigw-dynamodb"),
            api_role_policy: "connections-table-write".into(),
            api: stack.to_string(),
            default_function: FunctionNames::new(stack, "default"),
        }
    }
}

/// Each service's naming rule, applied to the derived names.
fn too_long(what: &str, name: &str, max: usize) -> Error {
    Error::Config(format!(
        "{what} name {name:?} would be {} characters; the limit is {max}. Use a shorter --stack",
        name.len()
    ))
}

pub fn validate_names(n: &Names) -> Result<(), Error> {
    if n.table.len() < 3 || n.table.len() > 255 {
        return Err(too_long("DynamoDB table", &n.table, 255));
    }
    if !n
        .table
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(Error::Config(format!(
            "table name {:?} may only use [A-Za-z0-9_.-]",
            n.table
        )));
    }
    if n.api_role.len() > 64 {
        return Err(too_long("IAM role", &n.api_role, 64));
    }
    validate_function_names(&n.default_function)
}

/// Lambda allows 64 characters in a function name, IAM 64 in a role name, CloudWatch
/// Logs 512 in a log group name.
pub fn validate_function_names(f: &FunctionNames) -> Result<(), Error> {
    if f.role.len() > 64 {
        return Err(too_long("IAM role", &f.role, 64));
    }
    if f.function.len() > 64 {
        return Err(too_long("Lambda function", &f.function, 64));
    }
    if f.log_group.len() > 512 {
        return Err(too_long("log group", &f.log_group, 512));
    }
    Ok(())
}

/// Where a running `wsconn local` says which stack and stage it runs (a path no stage
/// can take: stage names have no dot); `--local` asks it.
pub const LOCAL_INFO_PATH: &str = "/.well-known/wsconn";
