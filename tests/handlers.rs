//! Handler code written for AWS runs unchanged under `wsconn local` (issue 22): AWS's
//! chat sample's sendmessage handler (tests/fixtures/aws-sample-chat: `app.mjs` and a
//! CommonJS `app.js`, no dependencies of their own, the @connections endpoint built from
//! the event's apiId and the region or from its domainName, a DynamoDB client with no
//! endpoint), driven by real wscat clients; nothing leaves the machine; workers start on
//! demand; header names keep the client's spelling; TLS for clients; the bad input a
//! user can give, each one line.

mod common;

use common::local::{DEADLINE, Local, Wscat, count, get_item, wait_gone, wsconn_command};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A copy of tests/fixtures/aws-sample-chat (no node_modules anywhere).
fn sample() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(
        &common::repo().join("tests/fixtures/aws-sample-chat"),
        dir.path(),
    );
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_sample_handlers_run_unchanged_and_prune_stale_connections() {
    let dir = sample();
    let local = Local::start_in(dir.path());
    let url = local.ws_url();
    // The runtime's SDK is provided, and said so.
    local.wait_log(&["sample-sendmessage uses the runtime's SDK"]);
    let ddb = local.ddb().await;
    let table = local.table();
    for route in ["sendmessage", "senddomain", "sendcjs"] {
        let mut a = Wscat::connect(&url);
        let b = Wscat::connect(&url);
        let deadline = Instant::now() + DEADLINE;
        while count(&ddb, &table).await < 2 {
            assert!(Instant::now() < deadline, "the two clients never connected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A stale item: a connection that is gone. The handler's 410 handling prunes it.
        let stale = format!("stale{route}=");
        ddb.put_item()
            .table_name(&table)
            .item(
                "connectionid",
                aws_sdk_dynamodb::types::AttributeValue::S(stale.clone()),
            )
            .send()
            .await
            .unwrap();
        let data = format!("hi from {route}");
        a.type_line(&format!(r#"{{"action":"{route}","data":"{data}"}}"#));
        a.read_line_containing(&data);
        b.read_line_containing(&data);
        wait_gone(&ddb, &table, &stale).await;
        a.quit();
        b.quit();
        let deadline = Instant::now() + DEADLINE;
        while count(&ddb, &table).await > 0 {
            assert!(Instant::now() < deadline, "the clients' items stayed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The handlers' own log lines, prefixed with their function.
    local.wait_log(&[
        "[sample-sendmessage pid",
        "Found stale connection, deleting stalesendmessage=",
    ]);
    // Routes' workers start on their first message (a cold start, said so).
    local.wait_log(&["node sample-senddomain: cold start: worker pid"]);
}

/// The same, inside a network namespace of its own (nothing can leave the machine: no
/// interface but loopback, no DNS), with every proxy variable pointed at a closed port.
#[test]
fn nothing_leaves_the_machine() {
    let can_unshare = std::process::Command::new("unshare")
        .args(["-rn", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let dir = sample();
    // The runtime's SDK is installed once, with network (the first run of the sample);
    // inside the namespace it is used offline, from the cache.
    drop(Local::start_in(dir.path()));
    let ws = common::repo().join("target/node-tools/node_modules/ws/package.json");
    assert!(ws.is_file(), "run scripts/node-tools (scripts/test does)");
    let bin = env!("CARGO_BIN_EXE_wsconn");
    let clients = common::repo().join("tests/fixtures/aws-sample-chat/clients.mjs");
    // Inside: loopback up, DNS for AWS's names failing (checked), wsconn local, then the
    // two clients over each route.
    let script = format!(
        r#"set -e
ip link set lo up 2>/dev/null || true
if getent hosts abc123.execute-api.us-east-1.amazonaws.com >/dev/null 2>&1; then echo "DNS RESOLVES"; exit 3; fi
{bin} --output json local --port 0 > ready.json 2> local.log &
pid=$!
i=0; while [ ! -s ready.json ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
url=$(sed -n 's/.*"websocket_url":"\([^"]*\)".*/\1/p' ready.json)
WS_PACKAGE={ws} node {clients} "$url" sendmessage senddomain sendcjs
kill $pid; wait $pid || true
"#,
        ws = ws.display(),
        clients = clients.display(),
    );
    let mut cmd = if can_unshare {
        let mut c = std::process::Command::new("unshare");
        c.args(["-rn", "sh", "-c", &script]);
        c
    } else {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    let home = wsconn_command()
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
        .collect::<Vec<_>>();
    for (k, v) in home {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    for proxy in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env(proxy, "http://127.0.0.1:9");
    }
    let out = cmd.current_dir(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(dir.path().join("local.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "namespace: {can_unshare}\n--- stdout\n{stdout}\n--- stderr\n{}\n--- local\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    for route in ["sendmessage", "senddomain", "sendcjs"] {
        assert!(
            stdout.contains(&format!("{route}: both received")),
            "{stdout}"
        );
    }
    if !can_unshare {
        eprintln!(
            "note: unshare -rn is not available here: ran without a network namespace (DNS for AWS's names was checked to fail)"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn header_names_keep_the_clients_spelling() {
    let local = Local::start(&[]);
    let url = local.ws_url();
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let stage = url.rsplit('/').next().unwrap().to_string();
    // A handshake written by hand, so the names' case is exactly what is sent.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read as _, Write as _};
    write!(
        s,
        "GET /{stage} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nx-lower-case: low\r\nX-camelCase: camel\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    let ddb = local.ddb().await;
    let deadline = Instant::now() + DEADLINE;
    let item = loop {
        let all = ddb.scan().table_name(local.table()).send().await.unwrap();
        if let Some(i) = all.items().first() {
            break i.clone();
        }
        assert!(Instant::now() < deadline, "no item");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let id = common::local::s(&item, "connectionid");
    let item = get_item(&ddb, &local.table(), &id).await.unwrap();
    let h = common::local::m(&item, "headers");
    assert_eq!(
        h.get("x-lower-case").map(String::as_str),
        Some("low"),
        "{h:?}"
    );
    assert_eq!(
        h.get("X-camelCase").map(String::as_str),
        Some("camel"),
        "{h:?}"
    );
    assert!(
        !h.contains_key("X-Lower-Case") && !h.contains_key("X-Camelcase"),
        "{h:?}"
    );
    drop(s);
    // The close code and the client's reason, in the access log.
    let mut w = common::local::connect(&url).await;
    use futures::SinkExt as _;
    w.send(tokio_tungstenite::tungstenite::Message::Close(Some(
        tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 4001.into(),
            reason: "done here".into(),
        },
    )))
    .await
    .unwrap();
    local.wait_log(&[
        "DISCONNECT $disconnect 200",
        "(client closed (4001 done here))",
    ]);
}

#[test]
fn workers_start_on_demand_and_stop_when_idle() {
    let dir = sample();
    let mut cmd = wsconn_command();
    cmd.args([
        "--output",
        "json",
        "local",
        "--port",
        "0",
        "--idle-workers",
        "1s",
    ])
    .current_dir(dir.path());
    let local = common::local::Local::spawn_command(cmd);
    // Only $default is warm: no route's worker ran yet.
    local.wait_log(&["node sample-default: worker pid"]);
    assert!(
        !local.log().contains("sample-sendmessage: cold start"),
        "{}",
        local.log()
    );
    let mut a = Wscat::connect(&local.ws_url());
    // wscat drops what is typed before it is connected: wait for $connect.
    local.wait_log(&[" CONNECT $connect 200 "]);
    a.type_line(r#"{"action":"sendmessage","data":"wake"}"#);
    a.read_line_containing("wake");
    local.wait_log(&["node sample-sendmessage: cold start: worker pid"]);
    local.wait_log(&["node sample-sendmessage: stopping its worker", "idle"]);
    // The next message starts it again.
    a.type_line(r#"{"action":"sendmessage","data":"again"}"#);
    a.read_line_containing("again");
    let starts = local
        .log()
        .matches("node sample-sendmessage: cold start")
        .count();
    assert_eq!(starts, 2, "{}", local.log());
}

#[test]
fn tls_serves_wss_with_the_local_ca() {
    let local = Local::start(&["--tls"]);
    let url = local.ws_url();
    assert!(url.starts_with("wss://"), "{url}");
    let ca = common::repo().join("target/test-data/local-ca/ca.pem");
    let mut w = std::process::Command::new(common::local::wscat())
        .args(["--ca", ca.to_str().unwrap(), "-c", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    local.wait_log(&[" CONNECT $connect 200 "]);
    use std::io::Write as _;
    writeln!(w.stdin.as_mut().unwrap(), r#"{{"hello": "tls"}}"#).unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        if local.log().contains("MESSAGE $default 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no echo over TLS\n{}",
            local.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = w.kill();
    let _ = w.wait();
    // Without the CA, the handshake fails: nothing was installed system-wide.
    let (_, all) = Wscat::refused(&url);
    assert!(all.to_lowercase().contains("certificate"), "{all}");
}

/// Each bad input is one line that says what to do, and nothing is half-written.
#[test]
fn bad_input_is_one_line() {
    let one_line = |args: &[&str], dir: &Path, env: &[(&str, &str)]| -> String {
        let mut cmd = wsconn_command();
        cmd.args(args).current_dir(dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        errors[0].to_string()
    };
    // An entry that names no export: refused before local starts, and before deploy.
    let dir = sample();
    let toml = dir.path().join("wsconn.toml");
    let t = std::fs::read_to_string(&toml).unwrap().replace(
        "entry = \"app.handler\"\n\n[routes.senddomain]",
        "entry = \"app.onMessage\"\n\n[routes.senddomain]",
    );
    std::fs::write(&toml, t).unwrap();
    for cmd in [&["local", "--port", "0"][..], &["diff"][..]] {
        let e = one_line(cmd, dir.path(), &[]);
        assert!(
            e.contains("routes.sendmessage.entry = \"app.onMessage\"")
                && e.contains("does not define `onMessage`"),
            "{e}"
        );
    }
    // A missing module file names what was looked for.
    let t = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("app.onMessage", "src/chat.onMessage");
    std::fs::write(&toml, t).unwrap();
    let e = one_line(&["local", "--port", "0"], dir.path(), &[]);
    assert!(
        e.contains("has no src/chat.js, src/chat.mjs or src/chat.cjs"),
        "{e}"
    );

    // A runtime Lambda no longer creates functions with.
    let dir = sample();
    let toml = dir.path().join("wsconn.toml");
    let t = std::fs::read_to_string(&toml).unwrap().replace(
        "stack = \"sample\"\n",
        "stack = \"sample\"\n\n[functions]\nruntime = \"python3.11\"\n",
    );
    std::fs::write(&toml, t).unwrap();
    let e = one_line(&["local", "--port", "0"], dir.path(), &[]);
    assert!(
        e.contains("functions.runtime = \"python3.11\"")
            && e.contains("creation blocked since 2026-08-31")
            && e.contains("use python3.14"),
        "{e}"
    );

    // --tls on a port in use.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let e = one_line(
        &["local", "--tls", "--port", &port],
        &std::env::temp_dir(),
        &[],
    );
    assert!(
        e.contains(&format!("listening on 127.0.0.1:{port}"))
            && e.to_lowercase().contains("in use"),
        "{e}"
    );

    // An unwritable cache, with a handler that needs the provided SDK.
    let dir = sample();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let e = one_line(
        &["local", "--port", "0"],
        dir.path(),
        &[("WSCONN_CACHE_DIR", file.to_str().unwrap())],
    );
    assert!(
        e.contains("WSCONN_CACHE_DIR") && e.contains("@aws-sdk/client-dynamodb"),
        "{e}"
    );

    // No network for the first install: names the package and the command.
    let empty = tempfile::tempdir().unwrap();
    let e = one_line(
        &["local", "--port", "0"],
        dir.path(),
        &[
            ("WSCONN_CACHE_DIR", empty.path().to_str().unwrap()),
            ("npm_config_registry", "http://127.0.0.1:9/"),
            (
                "npm_config_cache",
                empty.path().join("npm").to_str().unwrap(),
            ),
            ("npm_config_fetch_retries", "0"),
        ],
    );
    assert!(
        e.contains("@aws-sdk/client-apigatewaymanagementapi")
            && e.contains("With network access, run: npm ci --prefix"),
        "{e}"
    );
    // Nothing half-written: no installation that looks complete.
    let sdk = empty.path().join("node-sdk");
    let complete = std::fs::read_dir(&sdk)
        .map(|d| {
            d.flatten()
                .any(|e| e.path().join(".wsconn-complete").exists())
        })
        .unwrap_or(false);
    assert!(!complete);
}

/// An expired CA in the data directory is replaced, atomically, and said so.
#[test]
fn an_expired_ca_is_replaced_and_said_so() {
    let data = tempfile::tempdir().unwrap();
    let ca = data.path().join("local-ca");
    std::fs::create_dir_all(&ca).unwrap();
    // A certificate that expired in 2000, with its key.
    write_expired_ca(&ca);
    let mut cmd = wsconn_command();
    cmd.args(["--output", "json", "--stack", "ca", "local", "--port", "0"])
        .env("WSCONN_DATA_DIR", data.path());
    let local = common::local::Local::spawn_command(cmd);
    local.wait_log(&["made a new local certificate authority in", "expired"]);
    let pem = std::fs::read_to_string(ca.join("ca.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let left: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["local-ca"]);
}

/// Writes an expired self-signed CA, made with Python's `cryptography` (the emulator's
/// virtualenv has it): the test's own, not wsconn's code.
fn write_expired_ca(dir: &Path) {
    let py = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(datetime.datetime(1999, 1, 1))
        .not_valid_after(datetime.datetime(2000, 1, 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256()))
open(sys.argv[1] + "/ca.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[1] + "/ca.key", "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"#;
    let python = std::env::var_os("WSCONN_EMULATOR_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| common::repo().join("target/emulator-venv/bin/python"));
    let ok = std::process::Command::new(python)
        .args(["-c", py, dir.to_str().unwrap()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "writing the expired CA");
}
