//! Operating a stack: `smoke` checks it end to end, `connections` lists, messages and
//! disconnects its clients. Both work against a deployed stack (endpoint and table from
//! the stack, as `outputs` finds them) and against a running `wsconn local`.

pub mod connections;
pub mod smoke;

use crate::aws::AwsEnv;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::stack::Stack;
use aws_config::Region;
use std::time::Duration;

/// Where a stack answers: its WebSocket URL, its @connections API and its table.
pub struct Target {
    pub websocket_url: String,
    /// The management API's base URL (`…/<stage>`); the SDK appends `/@connections/<id>`.
    pub connections_url: String,
    pub table: String,
    pub hash_key: &'static str,
    pub connection_ttl: u64,
    pub ddb: aws_sdk_dynamodb::Client,
    pub mgmt: aws_sdk_apigatewaymanagement::Client,
    /// "local at 127.0.0.1:8080" or "stack chat (api a1b2c3d4e5, eu-west-1)".
    pub describe: String,
    /// Whether `$default` is the built-in echo (smoke's echo step needs it).
    pub builtin_echo: bool,
}

fn builtin_echo(stack: &Stack) -> bool {
    stack
        .default_function()
        .is_some_and(|f| matches!(f.code, crate::stack::Code::Builtin { .. }))
}

impl Target {
    /// A running `wsconn local`: everything on one port, no credentials needed (the
    /// local server accepts unsigned and SigV4-signed requests alike).
    ///
    /// The stack and stage are the ones that `wsconn local` runs (it says so at
    /// `/.well-known/wsconn`); one given explicitly that disagrees is an error naming both.
    pub async fn local(cfg: &Config, addr: &str) -> Result<Target> {
        if addr.contains('/') || !addr.contains(':') {
            return Err(Error::Config(format!(
                "--local {addr:?}: expected HOST:PORT, the address `wsconn local` prints (for example 127.0.0.1:8080)"
            )));
        }
        let info = local_info(addr).await?;
        let cfg = agree(cfg, addr, &info)?;
        let cfg = &cfg;
        let stack = Stack::build(cfg)?;
        let base = format!("http://{addr}");
        let sdk = crate::aws::sdk_loader()
            .region(Region::new(
                cfg.region.clone().unwrap_or_else(|| "us-east-1".into()),
            ))
            .credentials_provider(aws_credential_types::Credentials::new(
                "local",
                "local",
                None,
                None,
                "wsconn-local",
            ))
            .load()
            .await;
        Ok(Target {
            websocket_url: format!("ws://{addr}/{}", stack.stage),
            connections_url: format!("{base}/{}", stack.stage),
            table: stack.table.name.clone(),
            hash_key: stack.table.hash_key,
            connection_ttl: stack.connection_ttl,
            ddb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .endpoint_url(&base)
                    .build(),
            ),
            mgmt: mgmt_client(&sdk, &format!("{base}/{}", stack.stage)),
            describe: format!("wsconn local at {addr}"),
            builtin_echo: builtin_echo(&stack),
        })
    }

    /// A deployed stack, found as `outputs` finds it: through its custom domain when one
    /// serves the stage, unless `execute_api`.
    pub async fn deployed(cfg: Config, execute_api: bool) -> Result<Target> {
        let (session, out) = crate::deploy::outputs::read(cfg, 8).await?;
        let (Some(api_id), Some(stage), Some(url), Some(table)) = (
            out.api_id.as_deref(),
            out.stage.as_deref(),
            if execute_api {
                out.execute_api_url.clone()
            } else {
                out.websocket_url.clone()
            },
            out.table_name.clone(),
        ) else {
            return Err(Error::Config(format!(
                "stack {} is not deployed (no API with stage {}, or no table): run `wsconn deploy`, or pass --local for a running `wsconn local`",
                session.stack.name, session.stack.stage
            )));
        };
        let env = AwsEnv {
            region: out.region.clone(),
            account: String::new(),
            partition: if out.region.starts_with("cn-") {
                "aws-cn".into()
            } else {
                "aws".into()
            },
        };
        let connections_url = env.connections_url(api_id, stage);
        let mut loader = crate::aws::sdk_loader().region(Region::new(out.region.clone()));
        if let Some(p) = &session.cfg.profile {
            loader = loader.profile_name(p);
        }
        let sdk = loader.load().await;
        // An --endpoint-url (an emulator) serves the table too; @connections lives on
        // the API's own host.
        let ddb = match &session.cfg.endpoint_url {
            Some(u) => aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .endpoint_url(u)
                    .build(),
            ),
            None => aws_sdk_dynamodb::Client::new(&sdk),
        };
        Ok(Target {
            websocket_url: url,
            mgmt: mgmt_client(&sdk, &connections_url),
            connections_url,
            hash_key: session.stack.table.hash_key,
            connection_ttl: session.stack.connection_ttl,
            describe: format!(
                "stack {} (api {api_id}, {})",
                session.stack.name, out.region
            ),
            builtin_echo: builtin_echo(&session.stack),
            table,
            ddb,
        })
    }

    /// `--local [HOST:PORT]` or the deployed stack.
    pub async fn resolve(cfg: Config, local: Option<&str>, execute_api: bool) -> Result<Target> {
        match local {
            Some(addr) => Target::local(&cfg, addr).await,
            None => Target::deployed(cfg, execute_api).await,
        }
    }
}

/// What a running `wsconn local` says it runs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct LocalInfo {
    pub stack: String,
    pub stage: String,
}

/// `GET /.well-known/wsconn` of the `wsconn local` at `addr` (plain HTTP: its port
/// speaks both).
pub async fn local_info(addr: &str) -> Result<LocalInfo> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let unreachable = |why: String| {
        Error::Access(format!(
            "--local {addr}: no wsconn local answers there ({why}); start one with `wsconn local`, or give the address it printed"
        ))
    };
    let talk = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
            crate::config::LOCAL_INFO_PATH
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let mut buf = Vec::new();
        s.take(64 * 1024)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok::<_, Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), talk)
        .await
        .map_err(|_| unreachable("no answer in 10 s".into()))??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(unreachable(format!(
            "it answered {:?} to {}, so it is not a wsconn local of this version",
            head.lines().next().unwrap_or(""),
            crate::config::LOCAL_INFO_PATH
        )));
    }
    serde_json::from_str(body.trim())
        .map_err(|e| unreachable(format!("its answer is not wsconn's: {e}")))
}

/// The configuration for the stack `wsconn local` runs: its stack and stage, unless
/// given explicitly, in which case they must agree.
pub fn agree(cfg: &Config, addr: &str, info: &LocalInfo) -> Result<Config> {
    for (what, given, mine, theirs) in [
        ("stack", cfg.stack_given, &cfg.stack, &info.stack),
        ("stage", cfg.stage_given, &cfg.stage, &info.stage),
    ] {
        if given && mine != theirs {
            return Err(Error::Config(format!(
                "the wsconn local at {addr} runs {what} {theirs:?}, and this command was given {what} {mine:?} (by --{what}, its environment variable or wsconn.toml): drop it to use the running one, or point --local at the one that runs {mine:?}"
            )));
        }
    }
    let mut cfg = cfg.clone();
    cfg.stack = info.stack.clone();
    cfg.stage = info.stage.clone();
    Ok(cfg)
}

fn mgmt_client(sdk: &aws_config::SdkConfig, url: &str) -> aws_sdk_apigatewaymanagement::Client {
    aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(url)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .build(),
    )
}
