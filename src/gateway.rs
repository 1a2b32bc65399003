//! API Gateway's run-time semantics, read from the stack model and shared by `local` and
//! `render`: the form of its ids, its time formats, the `$context` of each event, route
//! selection, the mapping-template (service) integrations, the Lambda proxy event and the
//! frames API Gateway sends when an integration fails.
//!
//! Nothing here holds a second copy of the stack: routes, templates, the DynamoDB action
//! and the route-selection expression all come from [`Stack`].

use crate::stack::{DynamoAction, IntegrationDef, RouteDef, Stack};
use crate::vtl;
use base64::Engine as _;
use serde::Serialize;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The stack with its mapping templates parsed once (never per request).
pub struct Api {
    pub stack: Arc<Stack>,
    /// Parsed template per route key with a service integration; a template that fails
    /// to parse keeps its reason, and the route refuses until the file is fixed.
    templates: Vec<(String, Result<vtl::Template, String>)>,
}

impl Api {
    pub fn compile(stack: Arc<Stack>) -> Api {
        let templates = stack
            .routes
            .iter()
            .filter_map(|r| match &r.integration {
                IntegrationDef::DynamoDb { template, .. } => Some((
                    r.key.clone(),
                    vtl::Template::parse(template.file, &template.text).map_err(|e| e.to_string()),
                )),
                IntegrationDef::LambdaProxy { .. } => None,
            })
            .collect();
        Api { stack, templates }
    }

    /// The stack as it was, with every template replaced by `reason` (the assets could
    /// not be loaded, so no template can be trusted).
    pub fn broken(stack: Arc<Stack>, reason: &str) -> Api {
        let templates = stack
            .routes
            .iter()
            .filter(|r| matches!(r.integration, IntegrationDef::DynamoDb { .. }))
            .map(|r| (r.key.clone(), Err(reason.to_string())))
            .collect();
        Api { stack, templates }
    }

    /// The parse errors, one per broken template.
    pub fn template_errors(&self) -> Vec<&str> {
        self.templates
            .iter()
            .filter_map(|(_, t)| t.as_ref().err().map(String::as_str))
            .collect()
    }

    pub fn template(&self, route_key: &str) -> Option<&Result<vtl::Template, String>> {
        self.templates
            .iter()
            .find(|(k, _)| *k == route_key)
            .map(|(_, t)| t)
    }

    /// API Gateway's route selection for a message: the route-selection expression
    /// (`$request.body.action`) is evaluated on a JSON body; a string naming a route wins,
    /// anything else (no JSON, no such field, an unknown key) goes to `$default`.
    /// `$connect` and `$disconnect` are never selected by a message.
    pub fn select_route(&self, body: Option<&str>) -> Option<&RouteDef> {
        let selected = body
            .and_then(|b| select_key(self.stack.api.route_selection_expression, b))
            .filter(|k| k != crate::stack::CONNECT && k != crate::stack::DISCONNECT)
            .and_then(|k| self.stack.routes.iter().find(|r| r.key == k));
        selected.or_else(|| self.stack.route(crate::stack::DEFAULT))
    }
}

/// Evaluates `$request.body.a.b` on a JSON text; `None` when the body is not JSON or the
/// field is absent or not a string.
pub fn select_key(expression: &str, body: &str) -> Option<String> {
    let path = expression.strip_prefix("$request.body")?;
    let mut v: serde_json::Value = serde_json::from_str(body).ok()?;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        v = v.get_mut(part)?.take();
    }
    v.as_str().map(str::to_string)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An identifier of API Gateway's form: 11 random bytes in URL-safe base64, 16
/// characters ending in `=` (`SOqGjdZioAMCEeg=`). Connection ids, request ids,
/// extended request ids and message ids all look like this.
pub fn new_id() -> String {
    let bytes: [u8; 11] = rand::random();
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
}

fn civil(ms: i64) -> Civil {
    let secs = ms.div_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod % 3600 / 60,
        second: sod % 60,
        millis: ms.rem_euclid(1000),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `$context.requestTime`: Common Log Format, `16/May/2022:17:30:27 +0000`.
pub fn clf_time(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// RFC 3339 to the second, UTC, for Unix seconds: `2022-05-16T17:30:27Z`.
pub fn rfc3339(secs: i64) -> String {
    let c = civil(secs.saturating_mul(1000));
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// ISO 8601 with milliseconds, UTC: `2022-05-16T17:30:27.357Z`.
pub fn iso_time(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// What API Gateway knows about a connection from its handshake on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub connection_id: String,
    pub connected_at: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub domain_name: String,
    pub api_id: String,
    pub stage: String,
}

/// The per-event part of `$context`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Connect,
    Message,
    Disconnect,
}

impl EventType {
    /// The event a route key is delivered as.
    pub fn of_route(key: &str) -> EventType {
        match key {
            crate::stack::CONNECT => EventType::Connect,
            crate::stack::DISCONNECT => EventType::Disconnect,
            _ => EventType::Message,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Connect => "CONNECT",
            EventType::Message => "MESSAGE",
            EventType::Disconnect => "DISCONNECT",
        }
    }
}

/// One event's identity: its ids and its time.
#[derive(Debug, Clone)]
pub struct EventIds {
    pub request_id: String,
    pub extended_request_id: String,
    pub message_id: Option<String>,
    pub request_time_epoch: i64,
}

impl EventIds {
    pub fn new(event: EventType, now: i64) -> EventIds {
        let request_id = new_id();
        EventIds {
            // API Gateway reports the same value for both on WebSocket events.
            extended_request_id: request_id.clone(),
            request_id,
            message_id: (event == EventType::Message).then(new_id),
            request_time_epoch: now,
        }
    }
}

/// The mapping template's view of one event: `$context` complete, `$input.params()`
/// with the handshake's headers and query string (`$connect` only, as on AWS).
pub fn template_request(
    conn: &ConnInfo,
    event: EventType,
    route_key: &str,
    ids: &EventIds,
    headers: &[(String, String)],
    query: &[(String, String)],
    body: &str,
) -> vtl::Request {
    let mut req = vtl::Request::new();
    let c = |req: &mut vtl::Request, k: &str, v: &str| req.set_context(k, v);
    c(&mut req, "connectionId", &conn.connection_id);
    c(&mut req, "connectedAt", &conn.connected_at.to_string());
    c(
        &mut req,
        "requestTimeEpoch",
        &ids.request_time_epoch.to_string(),
    );
    c(&mut req, "requestTime", &clf_time(ids.request_time_epoch));
    c(&mut req, "requestId", &ids.request_id);
    c(&mut req, "extendedRequestId", &ids.extended_request_id);
    c(&mut req, "eventType", event.as_str());
    c(&mut req, "routeKey", route_key);
    c(&mut req, "stage", &conn.stage);
    c(&mut req, "domainName", &conn.domain_name);
    c(&mut req, "apiId", &conn.api_id);
    c(&mut req, "identity.sourceIp", &conn.source_ip);
    if let Some(ua) = &conn.user_agent {
        c(&mut req, "identity.userAgent", ua);
    }
    if let Some(m) = &ids.message_id {
        c(&mut req, "messageId", m);
    }
    if event == EventType::Message {
        c(&mut req, "messageDirection", "IN");
    }
    req.headers = headers.to_vec();
    req.querystring = query.to_vec();
    req.body = body.to_string();
    req
}

/// The Lambda proxy event of a WebSocket MESSAGE, field for field and in AWS's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyEvent<'a> {
    pub request_context: ProxyContext<'a>,
    pub body: &'a str,
    pub is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyContext<'a> {
    pub route_key: &'a str,
    /// What the `$connect` authorizer allowed the connection with (`principalId` and
    /// its context), on every event of a connection that passed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<Ordered<'a>>,
    pub message_id: &'a str,
    pub event_type: &'static str,
    pub extended_request_id: &'a str,
    pub request_time: String,
    pub message_direction: &'static str,
    pub stage: &'a str,
    pub connected_at: i64,
    pub request_time_epoch: i64,
    pub identity: ProxyIdentity<'a>,
    pub request_id: &'a str,
    pub domain_name: &'a str,
    pub connection_id: &'a str,
    pub api_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyIdentity<'a> {
    pub source_ip: &'a str,
    /// Absent when the client sent no User-Agent (as in the pattern's example).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
}

/// String pairs serialized as one JSON object, in their order.
pub struct Ordered<'a>(pub &'a [(String, String)]);

impl Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The event JSON for a message on `route_key`. Binary messages arrive base64-encoded.
pub fn proxy_event(
    conn: &ConnInfo,
    route_key: &str,
    ids: &EventIds,
    body: &str,
    base64: bool,
) -> String {
    proxy_event_authorized(conn, route_key, ids, body, base64, None)
}

/// [`proxy_event`] for a connection a `$connect` authorizer allowed: `authorizer` (the
/// `principalId`, then the context's keys) becomes `requestContext.authorizer`.
pub fn proxy_event_authorized(
    conn: &ConnInfo,
    route_key: &str,
    ids: &EventIds,
    body: &str,
    base64: bool,
    authorizer: Option<&[(String, String)]>,
) -> String {
    let ev = ProxyEvent {
        request_context: ProxyContext {
            route_key,
            authorizer: authorizer.map(Ordered),
            message_id: ids.message_id.as_deref().unwrap_or(""),
            event_type: EventType::Message.as_str(),
            extended_request_id: &ids.extended_request_id,
            request_time: clf_time(ids.request_time_epoch),
            message_direction: "IN",
            stage: &conn.stage,
            connected_at: conn.connected_at,
            request_time_epoch: ids.request_time_epoch,
            identity: ProxyIdentity {
                source_ip: &conn.source_ip,
                user_agent: conn.user_agent.as_deref(),
            },
            request_id: &ids.request_id,
            domain_name: &conn.domain_name,
            connection_id: &conn.connection_id,
            api_id: &conn.api_id,
        },
        body,
        is_base64_encoded: base64,
    };
    serde_json::to_string(&ev).unwrap_or_default()
}

/// The frame API Gateway sends when a message's integration fails.
pub fn internal_error_frame(connection_id: &str, request_id: &str) -> String {
    serde_json::json!({
        "message": "Internal server error",
        "connectionId": connection_id,
        "requestId": request_id,
    })
    .to_string()
}

/// What a Lambda proxy result sends back through the route response: its `body`
/// (a string as is, anything else as JSON), decoded when `isBase64Encoded`.
pub enum Reply {
    None,
    Text(String),
    Binary(Vec<u8>),
}

pub fn proxy_reply(result: &serde_json::Value) -> Result<Reply, String> {
    let Some(obj) = result.as_object() else {
        return Ok(Reply::None);
    };
    let body = match obj.get("body") {
        None | Some(serde_json::Value::Null) => return Ok(Reply::None),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if obj.get("isBase64Encoded") == Some(&serde_json::Value::Bool(true)) {
        return base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map(Reply::Binary)
            .map_err(|e| format!("isBase64Encoded body is not base64: {e}"));
    }
    Ok(Reply::Text(body))
}

/// A service integration that failed, with what was sent, for the log.
#[derive(Debug)]
pub struct IntegrationFailure {
    pub reason: String,
    /// The rendered request, when rendering got that far.
    pub request: Option<String>,
}

impl std::fmt::Display for IntegrationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)?;
        if let Some(r) = &self.request {
            write!(f, "; request: {}", one_line(r))?;
        }
        Ok(())
    }
}

/// Collapses a rendered template onto one log line.
pub fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renders a route's template and checks the output is JSON: the first half of an AWS
/// service integration. The caller sends the result as `action`.
pub fn render_service_request(
    api: &Api,
    route: &RouteDef,
    req: &vtl::Request,
) -> Result<(DynamoAction, String), IntegrationFailure> {
    let IntegrationDef::DynamoDb { action, .. } = &route.integration else {
        return Err(IntegrationFailure {
            reason: format!("route {} has no service integration", route.key),
            request: None,
        });
    };
    let template = match api.template(&route.key) {
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            return Err(IntegrationFailure {
                reason: format!("template error: {e}"),
                request: None,
            });
        }
        None => {
            return Err(IntegrationFailure {
                reason: format!("route {} has no template", route.key),
                request: None,
            });
        }
    };
    let body = vtl::render(template, req).map_err(|e| IntegrationFailure {
        reason: format!("template error: {e}"),
        request: None,
    })?;
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&body) {
        return Err(IntegrationFailure {
            reason: format!(
                "{} rendered a body that is not JSON ({e}); DynamoDB would answer SerializationException",
                template.file()
            ),
            request: Some(body),
        });
    }
    Ok((*action, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::tests_support::stack;

    fn conn() -> ConnInfo {
        ConnInfo {
            connection_id: "SOqGjdZioAMCEeg=".into(),
            connected_at: 1652722217711,
            source_ip: "203.0.113.7".into(),
            user_agent: None,
            domain_name: "127.0.0.1:8080".into(),
            api_id: "abcdef1234".into(),
            stage: "api".into(),
        }
    }

    #[test]
    fn rfc3339_and_event_types() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(EventType::of_route("$connect"), EventType::Connect);
        assert_eq!(EventType::of_route("$disconnect"), EventType::Disconnect);
        assert_eq!(EventType::of_route("$default"), EventType::Message);
        assert_eq!(EventType::of_route("sendmessage"), EventType::Message);
    }

    #[test]
    fn ids_have_api_gateways_form() {
        for _ in 0..100 {
            let id = new_id();
            assert_eq!(id.len(), 16, "{id}");
            assert!(id.ends_with('='), "{id}");
            assert!(
                id[..15]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{id}"
            );
        }
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn times_format_as_clf_and_iso() {
        assert_eq!(clf_time(1652722227357), "16/May/2022:17:30:27 +0000");
        assert_eq!(iso_time(1652722227357), "2022-05-16T17:30:27.357Z");
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_time(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn route_selection_reads_the_expression_from_the_stack() {
        let api = Api::compile(Arc::new(stack("t")));
        assert_eq!(
            api.stack.api.route_selection_expression,
            "$request.body.action"
        );
        let key = |b: Option<&str>| api.select_route(b).map(|r| r.key.as_str());
        assert_eq!(key(Some(r#"{"first_name": "Jane"}"#)), Some("$default"));
        assert_eq!(key(Some(r#"{"action": "nope"}"#)), Some("$default"));
        assert_eq!(key(Some(r#"{"action": "$connect"}"#)), Some("$default"));
        assert_eq!(key(Some("not json")), Some("$default"));
        assert_eq!(key(None), Some("$default"));
        assert_eq!(
            select_key("$request.body.action", r#"{"action":"send"}"#).as_deref(),
            Some("send")
        );
        assert_eq!(
            select_key("$request.body.a.b", r#"{"a":{"b":"x"}}"#).as_deref(),
            Some("x")
        );
        assert_eq!(select_key("$request.body.action", r#"{"action":1}"#), None);
    }

    #[test]
    fn proxy_event_has_exactly_awss_fields_in_order() {
        let ids = EventIds {
            request_id: "SOqIDEacoAMFaHQ=".into(),
            extended_request_id: "SOqIDEacoAMFaHQ=".into(),
            message_id: Some("SOqIDdzSoAMCEeg=".into()),
            request_time_epoch: 1652722227357,
        };
        let ev = proxy_event(&conn(), "$default", &ids, r#"{"a":1}"#, false);
        assert_eq!(
            ev,
            concat!(
                r#"{"requestContext":{"routeKey":"$default","messageId":"SOqIDdzSoAMCEeg=","#,
                r#""eventType":"MESSAGE","extendedRequestId":"SOqIDEacoAMFaHQ=","#,
                r#""requestTime":"16/May/2022:17:30:27 +0000","messageDirection":"IN","#,
                r#""stage":"api","connectedAt":1652722217711,"requestTimeEpoch":1652722227357,"#,
                r#""identity":{"sourceIp":"203.0.113.7"},"requestId":"SOqIDEacoAMFaHQ=","#,
                r#""domainName":"127.0.0.1:8080","connectionId":"SOqGjdZioAMCEeg=","#,
                r#""apiId":"abcdef1234"},"body":"{\"a\":1}","isBase64Encoded":false}"#
            )
        );
    }

    #[test]
    fn connect_template_renders_a_put_item_from_the_stack() {
        let api = Api::compile(Arc::new(stack("t")));
        assert!(api.template_errors().is_empty());
        let route = api.stack.route(crate::stack::CONNECT).unwrap();
        let ids = EventIds::new(EventType::Connect, 1652722217999);
        let req = template_request(
            &conn(),
            EventType::Connect,
            "$connect",
            &ids,
            &[("Host".into(), "x".into())],
            &[("foo".into(), "bar".into())],
            "",
        );
        let (action, body) = render_service_request(&api, route, &req).unwrap();
        assert_eq!(action, DynamoAction::PutItem);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["TableName"], "t-connections");
        assert_eq!(v["Item"]["connectionid"]["S"], "SOqGjdZioAMCEeg=");
        assert_eq!(v["Item"]["ttl"]["N"], "1652808617");
        assert_eq!(v["Item"]["querystring"]["M"]["foo"]["S"], "bar");
        assert_eq!(v["Item"]["userAgent"]["S"], "");
    }

    #[test]
    fn proxy_replies_send_the_body() {
        let text = |v: serde_json::Value| match proxy_reply(&v).unwrap() {
            Reply::Text(t) => Some(t),
            _ => None,
        };
        assert_eq!(
            text(serde_json::json!({"statusCode": 200, "body": "hi"})).as_deref(),
            Some("hi")
        );
        assert_eq!(
            text(serde_json::json!({"body": {"a": 1}})).as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert!(text(serde_json::json!({"statusCode": 200})).is_none());
        assert!(matches!(
            proxy_reply(&serde_json::json!({"body": "aGk=", "isBase64Encoded": true})).unwrap(),
            Reply::Binary(b) if b == b"hi"
        ));
    }
}
