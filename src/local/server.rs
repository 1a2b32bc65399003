//! One axum router on one port: the WebSocket API at `/<stage>`, the management API at
//! `/<stage>/@connections/<id>`, and the table's DynamoDB endpoint at `/`. Shared state
//! lives in one [`App`] behind an `Arc`; each endpoint has one handler; shutdown comes
//! from the caller's future (SIGINT/SIGTERM) and disconnects every client first.

use super::connections::{CloseReason, Conn, Outbound};
use super::listen::{Secure, Spelling};
use super::worker::Outcome;
use super::{App, authorizer};
use crate::gateway::{self, ConnInfo, EventIds, EventType, IntegrationFailure, Reply, now_ms};
use crate::stack::{self, IntegrationDef};
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// API Gateway's WebSocket limits: 32 KB per frame, 128 KB per message.
pub const MAX_FRAME: usize = 32 * 1024;
pub const MAX_MESSAGE: usize = 128 * 1024;
/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 8 * 1024;
/// DynamoDB accepts request bodies up to 16 MB.
const MAX_DYNAMODB_BODY: usize = 16 * 1024 * 1024;
/// How long shutdown waits for every client's `$disconnect`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// `GET /.well-known/wsconn`: the stack this server runs, so that `smoke --local` and
/// `connections --local` need not be told again.
async fn info(State(app): State<Arc<App>>) -> Response {
    let api = app.api();
    let body = serde_json::json!({
        "stack": api.stack.name,
        "stage": app.stage(),
        "table_name": api.stack.table.name,
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/",
            post(dynamodb)
                .get(root)
                .layer(DefaultBodyLimit::max(MAX_DYNAMODB_BODY)),
        )
        .route(crate::config::LOCAL_INFO_PATH, get(info))
        .route("/{stage}", get(websocket))
        .route(
            "/{stage}/@connections/{id}",
            post(post_to_connection)
                .get(get_connection)
                .delete(delete_connection)
                .layer(DefaultBodyLimit::max(MAX_MESSAGE + 1)),
        )
        .fallback(not_found)
        .with_state(app)
}

/// Serves until `shutdown` resolves (with the signal's name, for the log), then
/// disconnects every client (running `$disconnect` for each) and returns. As in axum's
/// graceful-shutdown example, the signal is the caller's: this module knows no signals.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = &'static str>,
) -> Result<(), String> {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let router = router(app.clone());
    let server = tokio::spawn(super::listen::serve(
        listener,
        router,
        tls,
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(5),
    ));
    let signal = shutdown.await;
    app.shutting_down.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(());
    let n = app.registry.close_all(CloseReason::Shutdown);
    app.log.info(format!(
        "{signal}: stopping; disconnecting {n} client(s), each through $disconnect"
    ));
    app.tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, app.tracker.wait())
        .await
        .is_err()
    {
        app.log.info(format!(
            "gave up waiting for {} connection(s) to finish $disconnect after {} s",
            app.registry.len(),
            SHUTDOWN_GRACE.as_secs()
        ));
    }
    let _ = tokio::time::timeout(Duration::from_secs(6), server).await;
    Ok(())
}

/// An error as the AWS SDKs read it from a REST-JSON service: the type in
/// `x-amzn-ErrorType`, the text in `{"message": ...}`.
fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let mut r = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(error_type) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

fn forbidden() -> Response {
    aws_error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden")
}

async fn not_found(State(app): State<Arc<App>>) -> Response {
    aws_error(
        StatusCode::NOT_FOUND,
        "NotFoundException",
        &format!(
            "Not Found: wsconn local serves ws://HOST:PORT/{0}, /{0}/@connections/<id> and the DynamoDB API at /",
            app.stage()
        ),
    )
}

async fn root(State(app): State<Arc<App>>) -> String {
    format!(
        "wsconn local: stack {}, WebSocket API at /{}\n",
        app.api().stack.name,
        app.stage()
    )
}

/// `POST /` with `X-Amz-Target: DynamoDB_20120810.*`: the DynamoDB API of the table.
async fn dynamodb(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    match app.store.forward(&headers, body).await {
        Ok(a) => {
            let mut r = (a.status, a.body).into_response();
            for name in ["content-type", "x-amzn-requestid", "x-amz-crc32"] {
                if let Some(v) = a.headers.get(name) {
                    r.headers_mut().insert(name, v.clone());
                }
            }
            r
        }
        Err(e) => {
            app.log.info(format!("DynamoDB endpoint: {e}"));
            (
                StatusCode::BAD_GATEWAY,
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/x-amz-json-1.0",
                )],
                serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                    "message": e,
                })
                .to_string(),
            )
                .into_response()
        }
    }
}

fn log_event(
    app: &App,
    id: &str,
    event: EventType,
    route: &str,
    status: u16,
    started: Instant,
    detail: &str,
) {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let sep = if detail.is_empty() { "" } else { " " };
    app.log.line(format!(
        "{} {id} {} {route} {status} {ms:.1}ms{sep}{detail}",
        gateway::iso_time(now_ms()),
        event.as_str()
    ));
}

/// Header names as API Gateway passes them on: the registered spelling of the headers a
/// WebSocket handshake uses, Title-Case for the rest (the HTTP stack hands wsconn
/// lowercase names, so a client's own casing is not kept).
pub fn canonical_header(lower: &str) -> String {
    const KNOWN: &[&str] = &[
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Protocol",
        "X-Amzn-Trace-Id",
        "X-Forwarded-For",
        "X-Forwarded-Port",
        "X-Forwarded-Proto",
    ];
    if let Some(k) = KNOWN.iter().find(|k| k.eq_ignore_ascii_case(lower)) {
        return (*k).to_string();
    }
    lower
        .split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Header bytes as text: UTF-8 when they are, ISO-8859-1 otherwise.
fn header_text(v: &HeaderValue) -> String {
    match std::str::from_utf8(v.as_bytes()) {
        Ok(s) => s.to_string(),
        Err(_) => v.as_bytes().iter().map(|&b| b as char).collect(),
    }
}

/// The headers `$connect` sees: the client's, named as the client spelled them (API
/// Gateway passes them on so), less hop-by-hop ones, plus the `X-Forwarded-*` and
/// `X-Amzn-Trace-Id` headers API Gateway adds.
pub fn handshake_headers(
    headers: &HeaderMap,
    spelling: &Spelling,
    secure: bool,
    peer: SocketAddr,
    port: u16,
    now: i64,
) -> Vec<(String, String)> {
    const HOP_BY_HOP: &[&str] = &[
        "connection",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "x-forwarded-for",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-amzn-trace-id",
    ];
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !HOP_BY_HOP.contains(&k.as_str()))
        .map(|(k, v)| (spelling.of(k.as_str()).to_string(), header_text(v)))
        .collect();
    let forwarded = match headers.get("x-forwarded-for").map(header_text) {
        Some(prior) => format!("{prior}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    let trace: [u8; 12] = rand::random();
    let trace: String = trace.iter().map(|b| format!("{b:02x}")).collect();
    out.push((
        "X-Amzn-Trace-Id".into(),
        format!("Root=1-{:08x}-{trace}", now / 1000),
    ));
    out.push(("X-Forwarded-For".into(), forwarded));
    out.push(("X-Forwarded-Port".into(), port.to_string()));
    out.push((
        "X-Forwarded-Proto".into(),
        if secure { "https" } else { "http" }.into(),
    ));
    out
}

/// `a=1&b=x%20y` → [(a, 1), (b, x y)]; a name without `=` has the value "".
pub fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    let decode =
        |s: &str| String::from_utf8_lossy(&urlencoding::decode_binary(s.as_bytes())).into_owned();
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Runs a route's service integration: renders its template and sends the result to
/// DynamoDB as the integration's action. Any answer but 2xx is a failure.
async fn run_service(
    app: &App,
    api: &gateway::Api,
    route: &stack::RouteDef,
    req: &crate::vtl::Request,
) -> Result<bytes::Bytes, IntegrationFailure> {
    let (action, body) = gateway::render_service_request(api, route, req)?;
    let answer = app
        .store
        .call(action.as_str(), body.clone())
        .await
        .map_err(|e| IntegrationFailure {
            reason: e,
            request: Some(body.clone()),
        })?;
    if !answer.status.is_success() {
        return Err(IntegrationFailure {
            reason: format!(
                "DynamoDB {} answered {}: {}",
                action.as_str(),
                answer.status.as_u16(),
                answer.error()
            ),
            request: Some(body),
        });
    }
    Ok(answer.body)
}

/// `GET /<stage>` with a WebSocket handshake: runs `$connect`, and upgrades only if its
/// integration succeeded (otherwise HTTP 500, with the reason in the log).
#[allow(clippy::too_many_arguments)] // one axum extractor per part of the handshake
async fn websocket(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(stage): Path<String>,
    RawQuery(query): RawQuery,
    spelling: Option<Extension<Spelling>>,
    secure: Option<Extension<Secure>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let spelling = spelling.map(|Extension(s)| s).unwrap_or_default();
    let secure = secure.is_some_and(|Extension(s)| s.0);
    if stage != app.stage() {
        return forbidden();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    if app.shutting_down.load(Ordering::SeqCst) {
        return aws_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "wsconn local is shutting down",
        );
    }
    let started = Instant::now();
    let now = now_ms();
    let domain_name = headers
        .get(axum::http::header::HOST)
        .map(header_text)
        .unwrap_or_else(|| app.addr.to_string());
    let info = ConnInfo {
        connection_id: gateway::new_id(),
        connected_at: now,
        source_ip: peer.ip().to_string(),
        user_agent: headers.get(axum::http::header::USER_AGENT).map(header_text),
        domain_name,
        api_id: app.api_id.clone(),
        stage: app.stage().to_string(),
    };
    let ids = EventIds::new(EventType::Connect, now);
    let hs = handshake_headers(&headers, &spelling, secure, peer, app.addr.port(), now);
    let qs = parse_query(query.as_deref());
    let api = app.api();
    let Some(route) = api.stack.route(stack::CONNECT) else {
        return aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            "Internal server error",
        );
    };
    let mut req =
        gateway::template_request(&info, EventType::Connect, &route.key, &ids, &hs, &qs, "");
    let mut allowed = String::new();
    let grant = match &api.stack.authorizer {
        None => None,
        Some(a) => match authorize(&app, a, &info, &ids, &headers, &hs, &qs, &req).await {
            Ok(g) => {
                allowed = format!(
                    "(authorizer {}: allowed principalId {:?})",
                    a.function,
                    g.first().map(|(_, v)| v.as_str()).unwrap_or("")
                );
                set_authorizer_context(&mut req, &g);
                Some(Arc::new(g))
            }
            Err((status, detail)) => {
                log_event(
                    &app,
                    &info.connection_id,
                    EventType::Connect,
                    &route.key,
                    status.as_u16(),
                    started,
                    &format!("refused by the authorizer {}: {detail}", a.function),
                );
                return authorizer_refusal(status);
            }
        },
    };
    if let Err(f) = run_service(&app, &api, route, &req).await {
        log_event(
            &app,
            &info.connection_id,
            EventType::Connect,
            &route.key,
            500,
            started,
            &format!("refused: {f}"),
        );
        return aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            "Internal server error",
        );
    }
    log_event(
        &app,
        &info.connection_id,
        EventType::Connect,
        &route.key,
        200,
        started,
        &allowed,
    );
    let token = app.tracker.token();
    let failed = (
        app.clone(),
        info.clone(),
        grant.clone(),
        app.tracker.token(),
    );
    // tungstenite's default buffers (128 KiB each way) would cost 1,000 idle
    // connections 256 MB; messages are small and capped at 128 KB anyway.
    ws.max_frame_size(MAX_FRAME)
        .max_message_size(MAX_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_failed_upgrade(move |e: axum::Error| {
            let (app, info, grant, token) = failed;
            tokio::spawn(async move {
                let reason = CloseReason::Error(e.to_string());
                run_disconnect(&app, &info, grant.as_deref(), &reason).await;
                drop(token);
            });
        })
        .on_upgrade(move |socket| async move {
            run_connection(app, info, grant, socket).await;
            drop(token);
        })
}

/// `$context.authorizer.principalId` and `$context.authorizer.<key>` for a template.
fn set_authorizer_context(req: &mut crate::vtl::Request, grant: &[(String, String)]) {
    for (k, v) in grant {
        req.set_context(&format!("authorizer.{k}"), v);
    }
}

/// `$context.<dotted name>` as text (a map or null is absent).
fn context_text(ctx: &[(String, crate::vtl::apigw::ContextValue)], name: &str) -> Option<String> {
    use crate::vtl::apigw::ContextValue as C;
    let (first, rest) = match name.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (name, None),
    };
    let v = &ctx.iter().find(|(k, _)| k == first)?.1;
    match (v, rest) {
        (C::Map(m), Some(r)) => context_text(m, r),
        (C::Str(s), None) => Some(s.clone()),
        (C::Long(n), None) => Some(n.to_string()),
        (C::Int(n), None) => Some(n.to_string()),
        _ => None,
    }
}

/// API Gateway's answers when the authorizer does not let a handshake through.
fn authorizer_refusal(status: StatusCode) -> Response {
    match status {
        StatusCode::UNAUTHORIZED => aws_error(status, "UnauthorizedException", "Unauthorized"),
        StatusCode::FORBIDDEN => aws_error(status, "ForbiddenException", "Forbidden"),
        _ => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            "Internal server error",
        ),
    }
}

/// Runs the `$connect` authorizer: the identity sources first (401 without calling the
/// function), then the function; its policy decides (403 unless it allows invoking the
/// methodArn; 500 when it throws, times out or answers something that is not a policy).
#[allow(clippy::too_many_arguments)]
async fn authorize(
    app: &App,
    a: &stack::AuthorizerDef,
    info: &ConnInfo,
    ids: &EventIds,
    raw: &HeaderMap,
    hs: &[(String, String)],
    qs: &[(String, String)],
    req: &crate::vtl::Request,
) -> Result<authorizer::Grant, (StatusCode, String)> {
    let context = |name: &str| context_text(&req.context, name);
    let shake = authorizer::Handshake {
        headers: hs,
        query: qs,
        stage_variables: &[],
    };
    if let Some(missing) =
        authorizer::missing_identity_source(&a.identity_sources, &shake, &context)
    {
        return Err((
            StatusCode::UNAUTHORIZED,
            format!("identity source {missing} is missing; the function was not called"),
        ));
    }
    // The authorizer sees the handshake as sent: Connection and Upgrade included.
    let mut all = hs.to_vec();
    for name in ["connection", "upgrade"] {
        for v in raw.get_all(name) {
            all.push((canonical_header(name), header_text(v)));
        }
    }
    let shake = authorizer::Handshake {
        headers: &all,
        ..shake
    };
    let event = authorizer::event(info, ids, &app.method_arn, &shake).to_string();
    let Some(rt) = app.functions.get(&a.function) else {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no function {}", a.function),
        ));
    };
    let fail = |d: String| Err((StatusCode::INTERNAL_SERVER_ERROR, d));
    match rt.invoke(&event).await {
        Outcome::Returned(v) => match authorizer::evaluate(&v, &app.method_arn) {
            authorizer::Decision::Allow(g) => Ok(g),
            authorizer::Decision::Deny(why) => Err((StatusCode::FORBIDDEN, why)),
            authorizer::Decision::Invalid(why) => {
                fail(format!("the answer is not a policy: {why}"))
            }
        },
        Outcome::Threw(e) => fail(format!("it threw {e}")),
        Outcome::TimedOut => fail(format!(
            "it timed out after {} ms",
            rt.timeout().as_millis()
        )),
        Outcome::Failed(e) => fail(e),
    }
}

/// One connection from its upgrade to its `$disconnect`.
async fn run_connection(
    app: Arc<App>,
    info: ConnInfo,
    grant: Option<Arc<authorizer::Grant>>,
    socket: WebSocket,
) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outbound>();
    let (conn, mut closed) = Conn::new(info.clone(), grant.clone(), out_tx);
    app.registry.insert(conn.clone());
    // A connection that arrives while shutdown walks the registry closes at once.
    if app.shutting_down.load(Ordering::SeqCst) {
        conn.close(CloseReason::Shutdown);
    }
    let (fin_tx, mut fin_rx) = oneshot::channel::<Option<(u16, &'static str)>>();
    let writer = tokio::spawn(async move {
        let frame = |o: Outbound| match o {
            Outbound::Text(t) => Message::Text(t.into()),
            Outbound::Binary(b) => Message::Binary(b.into()),
        };
        loop {
            tokio::select! {
                biased;
                o = out_rx.recv() => match o {
                    Some(o) => if sink.send(frame(o)).await.is_err() { break },
                    None => break,
                },
                fin = &mut fin_rx => {
                    while let Ok(o) = out_rx.try_recv() {
                        if sink.send(frame(o)).await.is_err() { break; }
                    }
                    if let Ok(Some((code, reason))) = fin {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    }
                    // Sends the close frame (or answers the client's) and flushes.
                    let _ = sink.close().await;
                    break;
                }
            }
        }
    });

    let idle_ms = app.limits.idle.as_millis() as i64;
    let max_deadline = tokio::time::Instant::now() + app.limits.max_duration;
    let reason = loop {
        let idle_left = (conn.last_active() + idle_ms - now_ms()).max(0) as u64;
        let idle_deadline = tokio::time::Instant::now() + Duration::from_millis(idle_left);
        tokio::select! {
            m = stream.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    conn.touch(now_ms());
                    tokio::spawn(on_message(app.clone(), conn.clone(), Incoming::Text(t.to_string())));
                }
                Some(Ok(Message::Binary(b))) => {
                    conn.touch(now_ms());
                    tokio::spawn(on_message(app.clone(), conn.clone(), Incoming::Binary(b.to_vec())));
                }
                Some(Ok(Message::Close(f))) => {
                    break CloseReason::Client(f.map(|f| (f.code, f.reason.to_string())))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break classify(e),
                None => break CloseReason::Client(None),
            },
            _ = tokio::time::sleep_until(idle_deadline) => {
                if now_ms() - conn.last_active() >= idle_ms {
                    break CloseReason::Idle;
                }
            }
            _ = tokio::time::sleep_until(max_deadline) => break CloseReason::MaxDuration,
            changed = closed.changed() => {
                let r = closed.borrow().clone();
                match (changed, r) {
                    (_, Some(r)) => break r,
                    (Err(_), None) => break CloseReason::Shutdown,
                    (Ok(()), None) => {}
                }
            }
        }
    };
    conn.close(reason.clone());
    app.registry.remove(&info.connection_id);
    let _ = fin_tx.send(reason.frame());
    if reason.frame().is_some() {
        // The closing handshake: wait (bounded) for the client's close frame, so the
        // socket is not dropped with unread data, which would reset it and could lose
        // the close frame (and its code) on the way to the client.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    drop(stream);
    run_disconnect(&app, &info, grant.as_deref(), &reason).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

/// Frames over 32 KB and messages over 128 KB close the connection with 1009.
fn classify(e: axum::Error) -> CloseReason {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => CloseReason::TooBig,
        Some(tungstenite::Error::ConnectionClosed)
        | Some(tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        )) => CloseReason::Client(None),
        _ => CloseReason::Error(inner.to_string()),
    }
}

enum Incoming {
    Text(String),
    Binary(Vec<u8>),
}

/// One message: route selection, then the route's integration; the answer (or API
/// Gateway's error frame) goes back to the client.
async fn on_message(app: Arc<App>, conn: Arc<Conn>, msg: Incoming) {
    let started = Instant::now();
    let now = now_ms();
    let ids = EventIds::new(EventType::Message, now);
    let api = app.api();
    let text = match &msg {
        Incoming::Text(t) => Some(t.as_str()),
        Incoming::Binary(_) => None,
    };
    let Some(route) = api.select_route(text) else {
        return;
    };
    let id = &conn.info.connection_id;
    let error_frame = || gateway::internal_error_frame(id, &ids.request_id);
    let answers = !route.route_response.is_empty();
    match &route.integration {
        IntegrationDef::LambdaProxy { function } => {
            let (body, b64) = match &msg {
                Incoming::Text(t) => (std::borrow::Cow::Borrowed(t.as_str()), false),
                Incoming::Binary(b) => (
                    std::borrow::Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b)),
                    true,
                ),
            };
            let event = gateway::proxy_event_authorized(
                &conn.info,
                &route.key,
                &ids,
                &body,
                b64,
                conn.authorizer.as_deref().map(Vec::as_slice),
            );
            let Some(rt) = app.functions.get(function) else {
                conn.send(Outbound::Text(error_frame()));
                let detail = format!("no function {function}");
                log_event(
                    &app,
                    id,
                    EventType::Message,
                    &route.key,
                    500,
                    started,
                    &detail,
                );
                return;
            };
            let outcome = rt.invoke(&event).await;
            let (status, detail, frame) = match outcome {
                Outcome::Returned(v) => match gateway::proxy_reply(&v) {
                    Ok(Reply::Text(t)) => (200, String::new(), Some(Outbound::Text(t))),
                    Ok(Reply::Binary(b)) => (200, String::new(), Some(Outbound::Binary(b))),
                    Ok(Reply::None) => (200, "(no body)".into(), None),
                    Err(e) => (
                        502,
                        format!("bad handler result: {e}"),
                        Some(Outbound::Text(error_frame())),
                    ),
                },
                Outcome::Threw(e) => (
                    502,
                    format!("handler error: {e}"),
                    Some(Outbound::Text(error_frame())),
                ),
                Outcome::TimedOut => (
                    504,
                    format!("handler timed out after {} ms", rt.timeout().as_millis()),
                    Some(Outbound::Text(error_frame())),
                ),
                Outcome::Failed(e) => (502, e, Some(Outbound::Text(error_frame()))),
            };
            if let Some(f) = frame.filter(|_| answers || status != 200) {
                conn.touch(now_ms());
                conn.send(f);
            }
            log_event(
                &app,
                id,
                EventType::Message,
                &route.key,
                status,
                started,
                &detail,
            );
        }
        IntegrationDef::DynamoDb { .. } => {
            let mut req = gateway::template_request(
                &conn.info,
                EventType::Message,
                &route.key,
                &ids,
                &[],
                &[],
                text.unwrap_or(""),
            );
            if let Some(g) = &conn.authorizer {
                set_authorizer_context(&mut req, g);
            }
            match run_service(&app, &api, route, &req).await {
                Ok(body) => {
                    if answers {
                        conn.send(Outbound::Text(String::from_utf8_lossy(&body).into_owned()));
                    }
                    log_event(&app, id, EventType::Message, &route.key, 200, started, "");
                }
                Err(f) => {
                    conn.send(Outbound::Text(error_frame()));
                    log_event(
                        &app,
                        id,
                        EventType::Message,
                        &route.key,
                        500,
                        started,
                        &f.to_string(),
                    );
                }
            }
        }
    }
}

/// `$disconnect`: its template becomes DeleteItem. Runs once per connection, however
/// it ended.
async fn run_disconnect(
    app: &App,
    info: &ConnInfo,
    grant: Option<&authorizer::Grant>,
    reason: &CloseReason,
) {
    let started = Instant::now();
    let ids = EventIds::new(EventType::Disconnect, now_ms());
    let api = app.api();
    let Some(route) = api.stack.route(stack::DISCONNECT) else {
        return;
    };
    let mut req =
        gateway::template_request(info, EventType::Disconnect, &route.key, &ids, &[], &[], "");
    if let Some(g) = grant {
        set_authorizer_context(&mut req, g);
    }
    let why = format!("({})", reason.describe());
    match run_service(app, &api, route, &req).await {
        Ok(_) => log_event(
            app,
            &info.connection_id,
            EventType::Disconnect,
            &route.key,
            200,
            started,
            &why,
        ),
        Err(f) => log_event(
            app,
            &info.connection_id,
            EventType::Disconnect,
            &route.key,
            500,
            started,
            &format!("{why} failed: {f}"),
        ),
    }
}

fn gone(id: &str) -> Response {
    aws_error(
        StatusCode::GONE,
        "GoneException",
        &format!("connection {id} is gone (it is not connected)"),
    )
}

fn log_management(app: &App, method: &str, id: &str, status: u16, started: Instant) {
    app.log.line(format!(
        "{} {id} @connections {method} {status} {:.1}ms",
        gateway::iso_time(now_ms()),
        started.elapsed().as_secs_f64() * 1000.0
    ));
}

/// `POST @connections/{id}`: sends the body to the client.
async fn post_to_connection(
    State(app): State<Arc<App>>,
    Path((stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if stage != app.stage() {
        return forbidden();
    }
    let started = Instant::now();
    let Some(conn) = app.registry.get(&id) else {
        log_management(&app, "POST", &id, 410, started);
        return gone(&id);
    };
    if body.len() > MAX_MESSAGE {
        log_management(&app, "POST", &id, 413, started);
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            &format!("{} bytes is over the 128 KB message limit", body.len()),
        );
    }
    let frame = match String::from_utf8(body.to_vec()) {
        Ok(t) => Outbound::Text(t),
        Err(e) => Outbound::Binary(e.into_bytes()),
    };
    conn.touch(now_ms());
    if !conn.send(frame) {
        log_management(&app, "POST", &id, 410, started);
        return gone(&id);
    }
    log_management(&app, "POST", &id, 200, started);
    StatusCode::OK.into_response()
}

/// `GET @connections/{id}`: when it connected, who it is, when it was last active.
async fn get_connection(
    State(app): State<Arc<App>>,
    Path((stage, id)): Path<(String, String)>,
) -> Response {
    if stage != app.stage() {
        return forbidden();
    }
    let started = Instant::now();
    let Some(conn) = app.registry.get(&id) else {
        log_management(&app, "GET", &id, 410, started);
        return gone(&id);
    };
    let mut identity = serde_json::json!({ "sourceIp": conn.info.source_ip });
    if let Some(ua) = &conn.info.user_agent {
        identity["userAgent"] = serde_json::json!(ua);
    }
    let body = serde_json::json!({
        "connectedAt": gateway::iso_time(conn.info.connected_at),
        "identity": identity,
        "lastActiveAt": gateway::iso_time(conn.last_active()),
    });
    log_management(&app, "GET", &id, 200, started);
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `DELETE @connections/{id}`: closes the connection; `$disconnect` follows.
async fn delete_connection(
    State(app): State<Arc<App>>,
    Path((stage, id)): Path<(String, String)>,
) -> Response {
    if stage != app.stage() {
        return forbidden();
    }
    let started = Instant::now();
    let Some(conn) = app.registry.get(&id) else {
        log_management(&app, "DELETE", &id, 410, started);
        return gone(&id);
    };
    conn.close(CloseReason::Deleted);
    log_management(&app, "DELETE", &id, 204, started);
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(canonical_header("sec-websocket-key"), "Sec-WebSocket-Key");
        assert_eq!(canonical_header("host"), "Host");
        assert_eq!(canonical_header("x-custom-thing"), "X-Custom-Thing");
        assert_eq!(canonical_header("x-$weird#"), "X-$weird#");
    }

    #[test]
    fn query_strings_are_percent_decoded() {
        assert_eq!(
            parse_query(Some("foo=bar&a=%22x%5C&flag&=v&b=c=d&p=1+2")),
            vec![
                ("foo".into(), "bar".into()),
                ("a".into(), "\"x\\".into()),
                ("flag".into(), "".into()),
                ("".into(), "v".into()),
                ("b".into(), "c=d".into()),
                ("p".into(), "1+2".into()),
            ]
        );
        assert!(parse_query(None).is_empty());
    }

    #[test]
    fn handshake_headers_drop_hop_by_hop_and_add_forwarding() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("sec-websocket-version", HeaderValue::from_static("13"));
        h.insert("x-lower-case", HeaderValue::from_static("1"));
        h.insert("x-camelcase", HeaderValue::from_static("2"));
        let peer: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        // As the client wrote them: API Gateway keeps the spelling.
        let spelling = Spelling(std::sync::Arc::new(
            [
                "Host",
                "Connection",
                "Upgrade",
                "Sec-WebSocket-Version",
                "x-lower-case",
                "X-camelCase",
            ]
            .map(String::from)
            .to_vec(),
        ));
        let out = handshake_headers(&h, &spelling, true, peer, 8080, 1652722217711);
        let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Host",
                "Sec-WebSocket-Version",
                "x-lower-case",
                "X-camelCase",
                "X-Amzn-Trace-Id",
                "X-Forwarded-For",
                "X-Forwarded-Port",
                "X-Forwarded-Proto"
            ]
        );
        assert_eq!(out[5].1, "127.0.0.1");
        assert!(out[4].1.starts_with("Root=1-62828a29-"), "{}", out[4].1);
        assert_eq!(out[7].1, "https");
    }
}
