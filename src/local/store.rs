//! The connections table: where the `$connect` and `$disconnect` integrations write and
//! what the DynamoDB endpoint on wsconn's port serves.
//!
//! Both kinds of store speak DynamoDB's JSON protocol over HTTP, so the integrations
//! send the rendered template as the request body, exactly as API Gateway's AWS
//! integration does, and the public endpoint forwards requests unchanged:
//!
//! - **Embedded** (default): dynoxide, in memory or in `--data-dir`. dynoxide's router is
//!   private, and its request checks (serialisation, validation, error shapes) live
//!   inside its HTTP layer, so wsconn runs dynoxide's own server on a private loopback
//!   port and forwards to it. Expired items are swept every `--ttl-sweep-interval`.
//! - **Remote** (`--dynamodb-endpoint URL`): any DynamoDB. Every request is signed anew
//!   with SigV4 from the default credential chain (the caller signed for wsconn's host,
//!   not the endpoint's).

use crate::stack::TableDef;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::path::PathBuf;
use std::time::Duration;

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// A DynamoDB call that takes longer than this is reported as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the table lives.
#[derive(Debug, Clone)]
pub enum StoreKind {
    Memory,
    Dir(PathBuf),
    Endpoint(String),
}

/// An answer from DynamoDB, success or error.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// `Type: message` of an error answer (`__type` without its namespace).
    pub fn error(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        let ty = v["__type"].as_str().unwrap_or("");
        let ty = ty.rsplit('#').next().unwrap_or(ty);
        let msg = v["message"]
            .as_str()
            .or_else(|| v["Message"].as_str())
            .unwrap_or("");
        match (ty.is_empty(), msg.is_empty()) {
            (true, true) => format!(
                "HTTP {}: {}",
                self.status.as_u16(),
                String::from_utf8_lossy(&self.body)
            ),
            (false, true) => ty.to_string(),
            (true, false) => msg.to_string(),
            (false, false) => format!("{ty}: {msg}"),
        }
    }

    fn error_type(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        let ty = v["__type"].as_str().unwrap_or("");
        ty.rsplit('#').next().unwrap_or(ty).to_string()
    }
}

/// The embedded server's handles, taken on close.
struct Embedded {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// How requests to a remote endpoint are signed.
struct Signing {
    region: String,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
}

pub struct Store {
    /// `http://127.0.0.1:<private port>` or the remote endpoint.
    base: Uri,
    client: HttpClient,
    /// Remote only: every request is signed.
    signing: Option<Signing>,
    /// Embedded only: the private server, stopped on close.
    embedded: std::sync::Mutex<Embedded>,
    /// For the embedded store: the database, for the TTL sweep.
    db: Option<dynoxide::Database>,
    pub description: String,
}

fn http_client() -> Result<HttpClient, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    // Without the system's roots an https endpoint cannot be verified; plain http (the
    // embedded store, an emulator) still works, and an https call fails with a
    // certificate error that says so.
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider.clone())
    {
        Ok(b) => b,
        Err(_) => {
            let cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("setting up TLS: {e}"))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(cfg)
        }
    };
    let connector = builder.https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build(connector))
}

impl Store {
    /// Opens the store: starts the embedded database, or checks the remote endpoint's
    /// URL and loads credentials.
    pub async fn open(
        kind: &StoreKind,
        region: Option<&str>,
        profile: Option<&str>,
    ) -> Result<Store, String> {
        let client = http_client()?;
        match kind {
            StoreKind::Memory | StoreKind::Dir(_) => {
                let (db, description) = match kind {
                    StoreKind::Dir(dir) => {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            format!("creating the data directory {}: {e}", dir.display())
                        })?;
                        let file = dir.join("wsconn-local.sqlite");
                        let db = dynoxide::Database::new(&file.to_string_lossy())
                            .map_err(|e| format!("opening the database {}: {e}", file.display()))?;
                        (db, format!("embedded DynamoDB in {}", file.display()))
                    }
                    _ => (
                        dynoxide::Database::memory()
                            .map_err(|e| format!("starting the in-memory database: {e}"))?,
                        "embedded DynamoDB, in memory".to_string(),
                    ),
                };
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                    .await
                    .map_err(|e| format!("binding the embedded DynamoDB's loopback port: {e}"))?;
                let addr = listener
                    .local_addr()
                    .map_err(|e| format!("reading the embedded DynamoDB's port: {e}"))?;
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let server_db = db.clone();
                let server = tokio::spawn(async move {
                    let _ = dynoxide::server::serve_with_shutdown(listener, server_db, async {
                        let _ = stopped.await;
                    })
                    .await;
                });
                let base: Uri = format!("http://{addr}")
                    .parse()
                    .map_err(|e| format!("embedded DynamoDB address {addr}: {e}"))?;
                Ok(Store {
                    base,
                    client,
                    signing: None,
                    embedded: std::sync::Mutex::new(Embedded {
                        stop: Some(stop),
                        server: Some(server),
                    }),
                    db: Some(db),
                    description,
                })
            }
            StoreKind::Endpoint(url) => {
                let base: Uri = url
                    .parse()
                    .map_err(|e| format!("--dynamodb-endpoint {url:?}: not a URL ({e})"))?;
                if !matches!(base.scheme_str(), Some("http") | Some("https"))
                    || base.authority().is_none()
                {
                    return Err(format!(
                        "--dynamodb-endpoint {url:?}: expected http://HOST:PORT or https://HOST"
                    ));
                }
                let region = region.unwrap_or("us-east-1").to_string();
                let mut loader =
                    crate::aws::sdk_loader().region(aws_config::Region::new(region.clone()));
                if let Some(p) = profile {
                    loader = loader.profile_name(p);
                }
                let sdk = loader.load().await;
                let credentials = sdk.credentials_provider().ok_or_else(|| {
                    format!("--dynamodb-endpoint {url}: no AWS credentials provider is configured")
                })?;
                Ok(Store {
                    base,
                    client,
                    signing: Some(Signing {
                        region,
                        credentials,
                    }),
                    embedded: std::sync::Mutex::new(Embedded {
                        stop: None,
                        server: None,
                    }),
                    db: None,
                    description: format!("DynamoDB at {url}"),
                })
            }
        }
    }

    /// The embedded database, for the TTL sweep.
    pub fn embedded(&self) -> Option<dynoxide::Database> {
        self.db.clone()
    }

    /// Calls `operation` with a JSON body.
    pub async fn call(&self, operation: &str, body: impl Into<Bytes>) -> Result<Answer, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        );
        let target = HeaderValue::from_str(&format!("{TARGET_PREFIX}{operation}"))
            .map_err(|e| format!("operation name {operation:?}: {e}"))?;
        headers.insert("x-amz-target", target);
        self.send(headers, body.into()).await
    }

    /// Forwards a request made to wsconn's DynamoDB endpoint (its own headers, its body).
    pub async fn forward(&self, incoming: &HeaderMap, body: Bytes) -> Result<Answer, String> {
        let mut headers = HeaderMap::new();
        for (k, v) in incoming {
            // Hop-by-hop and host headers belong to the first leg only.
            if matches!(
                k.as_str(),
                "host"
                    | "connection"
                    | "content-length"
                    | "transfer-encoding"
                    | "keep-alive"
                    | "expect"
            ) {
                continue;
            }
            headers.append(k.clone(), v.clone());
        }
        self.send(headers, body).await
    }

    async fn send(&self, mut headers: HeaderMap, body: Bytes) -> Result<Answer, String> {
        let uri = self.base.clone();
        if self.signing.is_none() && !headers.contains_key(http::header::AUTHORIZATION) {
            // dynoxide checks that auth material is present (as DynamoDB does) but never
            // verifies it: give the integrations' own calls some.
            headers.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_static(
                    "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000",
                ),
            );
            headers.insert("x-amz-date", HeaderValue::from_static("20260101T000000Z"));
        }
        let mut req = Request::builder()
            .method("POST")
            .uri(uri.clone())
            .body(Full::new(body.clone()))
            .map_err(|e| format!("building a request to {uri}: {e}"))?;
        *req.headers_mut() = headers;
        if let Some(host) = uri.authority()
            && let Ok(v) = HeaderValue::from_str(host.as_str())
        {
            req.headers_mut().insert(http::header::HOST, v);
        }
        if let Some(signing) = &self.signing {
            // Re-signed for the endpoint: the caller's signature was for wsconn's host.
            crate::aws::sign_v4(
                &mut req,
                &body,
                &signing.region,
                "dynamodb",
                &signing.credentials,
            )
            .await
            .map_err(|e| format!("signing a DynamoDB request: {e}"))?;
        }
        let sent = tokio::time::timeout(CALL_TIMEOUT, self.client.request(req)).await;
        let resp = match sent {
            Err(_) => {
                return Err(format!(
                    "DynamoDB at {uri} did not answer within {} s",
                    CALL_TIMEOUT.as_secs()
                ));
            }
            Ok(Err(e)) => return Err(format!("calling DynamoDB at {uri}: {}", error_chain(&e))),
            Ok(Ok(r)) => r,
        };
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("reading DynamoDB's answer from {uri}: {e}"))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Creates the stack's table when it is missing (hash key and TTL from the stack
    /// model) and waits until it is ACTIVE with TTL enabled.
    pub async fn ensure_table(&self, table: &TableDef) -> Result<(), String> {
        let name = &table.name;
        let describe = serde_json::json!({ "TableName": name }).to_string();
        let a = self.call("DescribeTable", describe.clone()).await?;
        if a.status.is_success() {
            let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
            let key = v["Table"]["KeySchema"]
                .as_array()
                .and_then(|k| k.iter().find(|e| e["KeyType"] == "HASH"))
                .and_then(|e| e["AttributeName"].as_str())
                .unwrap_or("");
            if key != table.hash_key {
                return Err(format!(
                    "table {name} exists with hash key {key:?}, but the stack's is {:?}; delete it or use another --stack",
                    table.hash_key
                ));
            }
        } else if a.error_type() == "ResourceNotFoundException" {
            let create = serde_json::json!({
                "TableName": name,
                "KeySchema": [{"AttributeName": table.hash_key, "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": table.hash_key, "AttributeType": "S"}],
                "BillingMode": table.billing_mode,
            })
            .to_string();
            let c = self.call("CreateTable", create).await?;
            if !c.status.is_success() && c.error_type() != "ResourceInUseException" {
                return Err(format!("creating table {name}: {}", c.error()));
            }
        } else {
            return Err(format!("describing table {name}: {}", a.error()));
        }
        // A real table takes seconds to become ACTIVE; the embedded one is at once.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let a = self.call("DescribeTable", describe.clone()).await?;
            let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
            if v["Table"]["TableStatus"] == "ACTIVE" {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("table {name} is not ACTIVE after 120 s"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let ttl = self.call("DescribeTimeToLive", describe.clone()).await?;
        let v: serde_json::Value = serde_json::from_slice(&ttl.body).unwrap_or_default();
        let d = &v["TimeToLiveDescription"];
        let enabled = matches!(
            d["TimeToLiveStatus"].as_str(),
            Some("ENABLED") | Some("ENABLING")
        );
        if enabled && d["AttributeName"] == table.ttl_attribute {
            return Ok(());
        }
        if enabled {
            return Err(format!(
                "table {name} has TTL on {:?}, but the stack's items expire on {:?}",
                d["AttributeName"].as_str().unwrap_or(""),
                table.ttl_attribute
            ));
        }
        let update = serde_json::json!({
            "TableName": name,
            "TimeToLiveSpecification": {"Enabled": true, "AttributeName": table.ttl_attribute},
        })
        .to_string();
        let u = self.call("UpdateTimeToLive", update).await?;
        if !u.status.is_success() {
            return Err(format!("enabling TTL on table {name}: {}", u.error()));
        }
        Ok(())
    }

    /// Stops the embedded server (the remote store has nothing to stop).
    pub async fn close(&self) {
        let (stop, server) = match self.embedded.lock() {
            Ok(mut e) => (e.stop.take(), e.server.take()),
            Err(_) => (None, None),
        };
        if let Some(s) = stop {
            let _ = s.send(());
        }
        if let Some(task) = server {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}
