//! wsconn's error taxonomy: a few categories a user can act on. Messages say what was
//! being done and to which resource; no Debug dumps reach the user.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad flag, file or derived name. Fix the configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// No credentials, or the endpoint cannot be reached.
    #[error("{0}")]
    Access(String),
    /// A resource with the stack's name that the stack does not own.
    #[error(
        "{resource} exists but is not owned by stack {stack:?} ({why}); wsconn never changes or deletes a resource without the tag wsconn:stack={stack}. Rename the stack (--stack) or remove that resource yourself"
    )]
    NotOwned {
        resource: String,
        stack: String,
        why: String,
    },
    /// Live state wsconn cannot resolve on its own (two APIs with one stack's tag…).
    #[error("{0}")]
    Conflict(String),
    /// AWS refused an operation.
    #[error("{doing}: {message}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Aws {
        doing: String,
        code: Option<String>,
        message: String,
    },
    /// A bounded wait ran out.
    #[error("{what}: still not done after {secs} s")]
    Timeout { what: String, secs: u64 },
    /// The user (or the lack of a terminal) declined a risky change.
    #[error("{0}")]
    Declined(String),
    /// A resource disappeared between reading it and writing it (someone deleted it, or
    /// a listing lagged a delete). Not fatal: the next round reads again and plans it
    /// as absent.
    #[error("{0} disappeared while wsconn was changing it")]
    Vanished(String),
    /// Another wsconn run holds the stack's lock.
    #[error("{0}")]
    Locked(String),
    /// A mapping template that does not parse: `FILE:LINE:COL: message`.
    #[error("{0}")]
    Template(String),
    /// `wsconn local` could not start or serve (the message names what and why).
    #[error("{0}")]
    Local(String),
    /// A step failed before the stage's switch: the message says which deployment the
    /// stage still serves.
    #[error("{0}")]
    BeforeSwitch(String),
    /// A step failed after the switch: the release is live; the message says what is
    /// left to do.
    #[error("{0}")]
    AfterSwitch(String),
    /// SIGINT or SIGTERM arrived while changing the stack.
    #[error(
        "interrupted by {0}: the stack may be partly changed; run the command again to converge"
    )]
    Interrupted(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }
    /// The "does not exist" answer of any service (see [`is_not_found`]).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code(),
            Some("NotFoundException" | "ResourceNotFoundException" | "NoSuchEntity")
        )
    }
    pub fn message(&self) -> &str {
        match self {
            Error::Aws { message, .. } => message,
            _ => "",
        }
    }
}

/// Converts an SDK error into [`Error`]. `doing` says what was being done to which
/// resource; the service and operation are added from the error's type
/// (`creating table t (dynamodb:CreateTable): …`). An answer that is not the service's
/// protocol (an HTML page from a proxy or a wrong `--endpoint-url`) becomes one line with
/// its HTTP status and the start of its body, never the SDK's Debug structures.
pub fn aws<E, R>(doing: impl Into<String>, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    // Generic over every operation's error type, so it only takes the answer apart; the
    // wording is in `from_answer`, compiled once.
    let answer = match &err {
        SdkError::DispatchFailure(d) => Answer::Unsent {
            unreachable: d.is_io() || d.is_timeout(),
            cause: d
                .as_connector_error()
                .map(|c| root_cause(c))
                .unwrap_or_else(|| "the request was not sent".into()),
        },
        SdkError::TimeoutError(_) => Answer::TimedOut,
        SdkError::ServiceError(s) => match s.err().code() {
            None => Answer::NotAws {
                status: s.raw().status_code(),
                body: s.raw().body_text(),
            },
            Some(code) => Answer::Refused {
                code: code.to_string(),
                message: s
                    .err()
                    .message()
                    .map(String::from)
                    .unwrap_or_else(|| root_cause(s.err())),
            },
        },
        SdkError::ResponseError(r) => Answer::NotAws {
            status: r.raw().status_code(),
            body: r.raw().body_text(),
        },
        _ => Answer::Unsent {
            unreachable: false,
            cause: std::error::Error::source(&err)
                .map(root_cause)
                .unwrap_or_else(|| "the request could not be built".into()),
        },
    };
    from_answer(
        with_operation(doing.into(), std::any::type_name::<E>()),
        answer,
    )
}

/// What an SDK call's failure says, in plain values.
enum Answer {
    /// Never sent, or no answer: `unreachable` when the endpoint could not be reached.
    Unsent {
        unreachable: bool,
        cause: String,
    },
    TimedOut,
    /// Something that is not the service's protocol.
    NotAws {
        status: u16,
        body: String,
    },
    /// The service said no, in its own words.
    Refused {
        code: String,
        message: String,
    },
}

fn from_answer(doing: String, answer: Answer) -> Error {
    match answer {
        Answer::Unsent {
            unreachable: true,
            cause,
        } => Error::Access(format!(
            "{doing}: cannot reach the AWS endpoint ({cause}). Check the network, or set --endpoint-url / AWS_ENDPOINT_URL for an emulator"
        )),
        Answer::Unsent { cause, .. }
            if cause.contains("credentials") || cause.contains("identity") =>
        {
            Error::Access(no_credentials_message())
        }
        Answer::Unsent { cause, .. } => Error::Aws {
            doing,
            code: None,
            message: cause,
        },
        Answer::TimedOut => Error::Access(format!(
            "{doing}: the AWS endpoint did not answer in time. Check the network or --endpoint-url"
        )),
        Answer::NotAws { status, body } => not_aws(doing, status, &body),
        Answer::Refused { code, message } => Error::Aws {
            doing,
            code: Some(code),
            message,
        },
    }
}

/// An answer the SDK could not read as the service's protocol.
pub fn not_aws(doing: String, status: u16, body: &str) -> Error {
    let start: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let shown = if start.is_empty() {
        "an empty body".to_string()
    } else if start.chars().count() > 60 {
        format!(
            "{:?}",
            format!("{}…", start.chars().take(60).collect::<String>())
        )
    } else {
        format!("{start:?}")
    };
    Error::Aws {
        doing,
        code: None,
        message: format!(
            "HTTP {status} that is not an AWS answer: {shown}; is --endpoint-url right?"
        ),
    }
}

/// `doing` with the service and operation of the error type `type_name` appended, unless
/// already there.
fn with_operation(doing: String, type_name: &str) -> String {
    match operation_of(type_name) {
        Some(op) if doing.is_empty() => op,
        Some(op) if !doing.contains(&op) => format!("{doing} ({op})"),
        _ => doing,
    }
}

/// `aws_sdk_dynamodb::operation::create_table::CreateTableError` → `dynamodb:CreateTable`:
/// the service's IAM prefix and the operation, as IAM policies and AWS's docs name it.
pub fn operation_of(type_name: &str) -> Option<String> {
    let krate = type_name.split("::").next()?;
    let service = match krate {
        "aws_sdk_apigatewayv2" | "aws_sdk_apigateway" => "apigateway",
        "aws_sdk_apigatewaymanagement" => "execute-api",
        "aws_sdk_cloudwatchlogs" => "logs",
        "aws_sdk_dynamodb" => "dynamodb",
        "aws_sdk_iam" => "iam",
        "aws_sdk_lambda" => "lambda",
        "aws_sdk_sts" => "sts",
        _ => return None,
    };
    let last = type_name.rsplit("::").next()?;
    let op = last.strip_suffix("Error")?;
    (!op.is_empty()).then(|| format!("{service}:{op}"))
}

/// The innermost cause's own words ("Connection refused (os error 111)"), not a Debug dump.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut e = err;
    while let Some(next) = e.source() {
        e = next;
    }
    e.to_string()
}

pub fn no_credentials_message() -> String {
    "no AWS credentials found: set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()
}

/// The one "does not exist" predicate, for every service wsconn calls: API Gateway says
/// NotFoundException, DynamoDB, Lambda and CloudWatch Logs ResourceNotFoundException,
/// IAM NoSuchEntity.
pub fn is_not_found<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(
        code_of(err),
        Some("NotFoundException" | "ResourceNotFoundException" | "NoSuchEntity")
    )
}

/// The SDK error code of `err` when it is a service error.
pub fn code_of<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// What a failed call says about whether it took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// AWS refused it: nothing happened.
    Refused,
    /// Throttled (429, Throttling…): the call did not happen; send it again.
    Throttled,
    /// A 5xx, a timeout, a dropped connection or an unreadable answer: the call may or
    /// may not have taken effect.
    Unknown,
}

/// Error codes AWS uses for throttling (the SDK's standard retry list).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
];

/// Classifies a failed call: did it happen, not happen, or is that unknown?
pub fn outcome<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Outcome
where
    R: HttpStatus,
{
    match err {
        SdkError::ServiceError(s) => {
            let status = s.raw().status_code();
            if status == 429
                || s.err()
                    .code()
                    .is_some_and(|c| THROTTLING_CODES.contains(&c))
            {
                Outcome::Throttled
            } else if status >= 500 {
                Outcome::Unknown
            } else {
                Outcome::Refused
            }
        }
        SdkError::ConstructionFailure(_) => Outcome::Refused,
        // Timeouts, connection failures after sending, unparseable answers.
        _ => Outcome::Unknown,
    }
}

/// What wsconn reads of a raw response (implemented for the SDK's response type).
pub trait HttpStatus {
    fn status_code(&self) -> u16;
    /// The body as text, when it was read into memory (error answers are).
    fn body_text(&self) -> String {
        String::new()
    }
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
    fn body_text(&self) -> String {
        self.body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
}

/// IAM → Lambda propagation (aws-notes): a fresh role "cannot be assumed by Lambda" or
/// "does not have permissions" for seconds to minutes; Terraform retries both, and any
/// ResourceConflictException (function update in progress).
pub fn is_lambda_retryable(e: &Error) -> bool {
    let m = e.message();
    match e.code() {
        Some("InvalidParameterValueException") => {
            m.contains("cannot be assumed by Lambda")
                || m.contains("execution role does not have permissions")
        }
        Some("ResourceConflictException") => {
            m.contains("update is in progress") || m.contains("Pending")
        }
        _ => false,
    }
}

/// AddPermission right after CreateFunction can answer ResourceNotFoundException
/// "Function not found" (terraform-provider-aws PR 7327).
pub fn is_function_not_visible_yet(e: &Error) -> bool {
    e.code() == Some("ResourceNotFoundException")
}

/// API Gateway serialises writes per API: parallel writes get ConflictException
/// "Unable to complete operation due to concurrent modification" (tf-provider-aws 18018).
pub fn is_concurrent_modification(e: &Error) -> bool {
    e.code() == Some("ConflictException") && e.message().contains("concurrent modification")
}

/// DynamoDB answers ResourceInUseException while a table is CREATING/UPDATING, and
/// LimitExceededException when too many tables change at once. (On CreateTable the same
/// ResourceInUseException means "already exists": see [`is_already_exists`].)
pub fn is_table_busy(e: &Error) -> bool {
    matches!(
        e.code(),
        Some("ResourceInUseException") | Some("LimitExceededException")
    )
}

/// "Someone (another run, or this call's own first attempt whose answer was lost) has
/// just created it": CreateTable's ResourceInUseException, CreateRole's
/// EntityAlreadyExists, CreateFunction's ResourceConflictException "already exist",
/// CreateLogGroup's ResourceAlreadyExistsException, CreateStage's ConflictException.
/// Never a reason to wait: re-read, check ownership, and continue.
pub fn is_already_exists(e: &Error) -> bool {
    let m = e.message();
    match e.code() {
        Some("ResourceInUseException") => {
            m.contains("already exists") || m.contains("Table already")
        }
        Some("EntityAlreadyExists" | "ResourceAlreadyExistsException") => true,
        Some("ResourceConflictException") => m.contains("already exist"),
        Some("ConflictException") => m.contains("already exists"),
        _ => false,
    }
}

/// Request builders only fail when a required field is missing: a bug, reported plainly.
pub fn built<T, E: std::fmt::Display>(what: &str, r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::Aws {
        doing: format!("building the {what} request"),
        code: None,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_err(code: &str, message: &str) -> Error {
        Error::Aws {
            doing: "x".into(),
            code: Some(code.into()),
            message: message.into(),
        }
    }

    #[test]
    fn lambda_propagation_messages_are_retryable() {
        assert!(is_lambda_retryable(&aws_err(
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda."
        )));
        assert!(is_lambda_retryable(&aws_err(
            "ResourceConflictException",
            "The operation cannot be performed at this time. An update is in progress for resource: arn"
        )));
        assert!(!is_lambda_retryable(&aws_err(
            "InvalidParameterValueException",
            "Bad runtime"
        )));
    }

    #[test]
    fn concurrent_modification_is_recognised_by_code_and_text() {
        assert!(is_concurrent_modification(&aws_err(
            "ConflictException",
            "Unable to complete operation due to concurrent modification. Please try again later."
        )));
        assert!(!is_concurrent_modification(&aws_err(
            "ConflictException",
            "Route with key $connect already exists for this API"
        )));
    }

    #[test]
    fn already_exists_is_told_apart_from_busy() {
        assert!(is_already_exists(&aws_err(
            "ResourceInUseException",
            "Table already exists: t"
        )));
        assert!(!is_already_exists(&aws_err(
            "ResourceInUseException",
            "Attempt to change a resource which is still in use: Table is being created: t"
        )));
        assert!(is_already_exists(&aws_err(
            "ResourceConflictException",
            "Function already exist: f"
        )));
        assert!(!is_already_exists(&aws_err(
            "ResourceConflictException",
            "The operation cannot be performed at this time. An update is in progress for resource: f"
        )));
        assert!(is_already_exists(&aws_err(
            "EntityAlreadyExists",
            "Role with name r already exists."
        )));
        assert!(is_already_exists(&aws_err(
            "ConflictException",
            "Stage already exists: api"
        )));
    }

    #[test]
    fn outcomes_separate_refused_throttled_and_unknown() {
        use aws_smithy_runtime_api::client::result::ServiceError;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;
        let err = |status: u16, code: &str| -> SdkError<ErrorMetadata, Response> {
            let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
            let meta = ErrorMetadata::builder().code(code).build();
            SdkError::ServiceError(ServiceError::builder().source(meta).raw(raw).build())
        };
        assert_eq!(outcome(&err(400, "ValidationException")), Outcome::Refused);
        assert_eq!(outcome(&err(429, "Whatever")), Outcome::Throttled);
        assert_eq!(
            outcome(&err(400, "ThrottlingException")),
            Outcome::Throttled
        );
        assert_eq!(outcome(&err(500, "InternalFailure")), Outcome::Unknown);
        assert_eq!(outcome(&err(503, "ServiceUnavailable")), Outcome::Unknown);
        let timeout: SdkError<ErrorMetadata, Response> = SdkError::timeout_error("read timed out");
        assert_eq!(outcome(&timeout), Outcome::Unknown);
    }

    #[test]
    fn operations_are_named_from_the_sdk_error_type() {
        assert_eq!(
            operation_of("aws_sdk_apigatewayv2::operation::get_apis::GetApisError").as_deref(),
            Some("apigateway:GetApis")
        );
        assert_eq!(
            operation_of("aws_sdk_dynamodb::operation::create_table::CreateTableError").as_deref(),
            Some("dynamodb:CreateTable")
        );
        assert_eq!(
            operation_of(
                "aws_sdk_cloudwatchlogs::operation::put_retention_policy::PutRetentionPolicyError"
            )
            .as_deref(),
            Some("logs:PutRetentionPolicy")
        );
        assert_eq!(operation_of("aws_smithy_types::error::ErrorMetadata"), None);
        // The real type names, as the compiler spells them today.
        assert_eq!(
            operation_of(std::any::type_name::<
                aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError,
            >())
            .as_deref(),
            Some("sts:GetCallerIdentity")
        );
    }

    fn html(
        status: u16,
        body: &str,
    ) -> SdkError<
        aws_sdk_apigatewayv2::operation::get_apis::GetApisError,
        aws_smithy_runtime_api::http::Response,
    > {
        use aws_smithy_runtime_api::client::result::ServiceError;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        let raw = Response::new(
            StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::from(body.to_string()),
        );
        let unhandled = aws_sdk_apigatewayv2::operation::get_apis::GetApisError::generic(
            aws_smithy_types::error::ErrorMetadata::builder().build(),
        );
        SdkError::ServiceError(ServiceError::builder().source(unhandled).raw(raw).build())
    }

    #[test]
    fn an_answer_that_is_not_aws_is_one_line_with_status_and_body() {
        let page = "<!doctype html>\n<title>404 Not Found</title>\n<h1>Not Found</h1><p>The requested URL was not found on this server.</p>";
        let e = aws("listing WebSocket APIs", html(404, page)).to_string();
        assert_eq!(
            e,
            "listing WebSocket APIs (apigateway:GetApis): HTTP 404 that is not an AWS answer: \"<!doctype html> <title>404 Not Found</title> <h1>Not Found</…\"; is --endpoint-url right?"
        );
        assert!(!e.contains("ServiceError") && !e.contains('\n'));
        let empty = aws("listing WebSocket APIs", html(502, "")).to_string();
        assert!(
            empty.contains("HTTP 502 that is not an AWS answer: an empty body"),
            "{empty}"
        );
    }

    #[test]
    fn one_not_found_predicate_covers_every_service() {
        for code in [
            "NotFoundException",
            "ResourceNotFoundException",
            "NoSuchEntity",
        ] {
            assert!(aws_err(code, "gone").is_not_found(), "{code}");
        }
        assert!(!aws_err("ResourceInUseException", "busy").is_not_found());
    }

    #[test]
    fn aws_errors_name_the_operation_and_code() {
        let e = aws_err("AccessDenied", "nope");
        assert_eq!(e.to_string(), "x: nope (AccessDenied)");
    }
}
