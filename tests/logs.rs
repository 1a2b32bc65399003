//! `wsconn logs` against the emulator: events seeded with PutLogEvents into a deployed
//! stack's groups (two handlers, the access log, the execution log) at known times;
//! the range read in time order, narrowed, and following one connection or principal;
//! `--follow` over three batches (one larger than a FilterLogEvents page), with and
//! without 30% throttled answers. Speed and memory are measured in `scripts/bench`.

mod common;

use common::{Clients, Emulator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const STACK: &str = "lg";
const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const Z: &str = "cccccccc-0000-4000-8000-000000000003";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A deployed application with a route, an authorizer and both logs.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn deploy(emu: &Emulator) -> App {
        let dir = tempfile::tempdir().unwrap();
        for h in ["sendmessage", "authorizer"] {
            let d = dir.path().join("handlers").join(h);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("index.mjs"),
                "export const handler = async (event) => { console.log(JSON.stringify(event)); return { statusCode: 200 }; };\n",
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("wsconn.toml"),
            "[routes.sendmessage]\nhandler = \"handlers/sendmessage\"\n\n[authorizer]\nhandler = \"handlers/authorizer\"\nidentity-sources = [\"route.request.querystring.token\"]\n\n[logging]\naccess-log = true\nlevel = \"INFO\"\n",
        )
        .unwrap();
        let app = App { dir };
        app.run(emu, &["deploy", "--yes"]).expect(0);
        app
    }
    fn args<'a>(&'a self, config: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--config", config, "--stack", STACK];
        v.extend(args);
        v
    }
    fn config(&self) -> String {
        self.dir.path().join("wsconn.toml").display().to_string()
    }
    fn run(&self, emu: &Emulator, args: &[&str]) -> common::Run {
        let c = self.config();
        emu.wsconn(&self.args(&c, args))
    }
    fn spawn(&self, emu: &Emulator, args: &[&str]) -> std::process::Child {
        let c = self.config();
        emu.spawn(&self.args(&c, args))
    }
}

async fn put(c: &Clients, group: &str, stream: &str, events: &[(i64, String)]) {
    let _ = c.logs.create_log_group().log_group_name(group).send().await;
    let _ = c
        .logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await;
    let events: Vec<_> = events
        .iter()
        .map(|(t, m)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(*t)
                .message(m)
                .build()
                .unwrap()
        })
        .collect();
    c.logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
}

fn access(request: &str, conn: &str, event: &str, route: &str, extra: &str) -> String {
    format!(
        r#"{{"requestId":"{request}","eventType":"{event}","routeKey":"{route}","status":"200","connectionId":"{conn}"{extra}}}"#
    )
}

fn lambda_lines(id: &str, body: &str) -> Vec<String> {
    vec![
        format!("START RequestId: {id} Version: 1\n"),
        format!("2026-12-07T10:00:00.000Z\t{id}\tINFO\t{body}\n"),
        format!("END RequestId: {id}\n"),
        format!(
            "REPORT RequestId: {id}\tDuration: 2.50 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB\t\n"
        ),
    ]
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Seeds a known story: c1 (alice) connects through the authorizer and sends two
/// messages (invocation A names it; invocation Z does not, and the access log's
/// integrationRequestId ties it); c2 sends one (invocation B). One access record and
/// one execution line share a millisecond.
async fn seed(c: &Clients, api: &str, base: i64) {
    let mut fn_events = Vec::new();
    let mut auth_events = Vec::new();
    let mut t = base;
    let mut at = |lines: Vec<String>, into: &mut Vec<(i64, String)>| {
        for l in lines {
            t += 10;
            into.push((t, l));
        }
    };
    at(
        lambda_lines(
            "dddddddd-0000-4000-8000-000000000004",
            r#"{"requestContext":{"connectionId":"c1="}}"#,
        ),
        &mut auth_events,
    );
    at(
        lambda_lines(A, r#"got {"connectionId":"c1="}"#),
        &mut fn_events,
    );
    at(
        lambda_lines(B, r#"got {"connectionId":"c2="}"#),
        &mut fn_events,
    );
    at(
        lambda_lines(Z, "a line that names no connection"),
        &mut fn_events,
    );
    let access_events = vec![
        (
            base + 500,
            access(
                "r0",
                "c1=",
                "CONNECT",
                "$connect",
                r#","principalId":"alice""#,
            ),
        ),
        (
            base + 510,
            access(
                "r1",
                "c1=",
                "MESSAGE",
                "sendmessage",
                &format!(r#","integrationRequestId":"{A}""#),
            ),
        ),
        (
            base + 520,
            access(
                "r2",
                "c2=",
                "MESSAGE",
                "sendmessage",
                &format!(r#","integrationRequestId":"{B}""#),
            ),
        ),
        (
            base + 530,
            access(
                "r3",
                "c1=",
                "MESSAGE",
                "sendmessage",
                &format!(r#","integrationRequestId":"{Z}""#),
            ),
        ),
    ];
    let exec_events = vec![
        (
            base + 490,
            "(r0) Received request. connectionId: c1=".to_string(),
        ),
        (
            base + 505,
            "(r1) Endpoint request body after transformations".to_string(),
        ),
        (
            base + 520,
            "(r2) Endpoint request body after transformations".to_string(),
        ),
    ];
    put(
        c,
        &format!("/aws/lambda/{STACK}-sendmessage"),
        "2026/12/07/[1]a",
        &fn_events,
    )
    .await;
    put(
        c,
        &format!("/aws/lambda/{STACK}-authorizer"),
        "2026/12/07/[1]b",
        &auth_events,
    )
    .await;
    put(
        c,
        &format!("/aws/apigateway/{STACK}/api"),
        "access",
        &access_events,
    )
    .await;
    put(
        c,
        &format!("API-Gateway-Execution-Logs_{api}/api"),
        "exec",
        &exec_events,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn seeded_logs_read_back_in_order_narrowed_and_by_connection_or_principal() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    let app = App::deploy(&emu);
    // Realism from here on: FilterLogEvents' first page is empty with a nextToken.
    emu.configure(json!({"realism": true}));
    let api = c.api_of(STACK).await;
    let base = now_ms() - 120_000;
    seed(&c, &api, base).await;
    let seeded = 4 * 4 + 4 + 3;

    let r = app
        .run(&emu, &["logs", "--since", "10m", "--output", "json"])
        .expect(0);
    let all = json_lines(&r.stdout);
    assert_eq!(all.len(), seeded, "{}", r.stdout);
    let times: Vec<&str> = all.iter().map(|v| v["time"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "in time order");
    let same_ms: Vec<&Value> = all
        .iter()
        .filter(|v| v["message"].as_str().unwrap().contains("r2"))
        .collect();
    assert_eq!(
        same_ms.len(),
        2,
        "both events of one millisecond, from two groups"
    );
    assert_eq!(same_ms[0]["time"], same_ms[1]["time"]);
    for v in &all {
        for k in ["time", "source", "group", "stream", "message"] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
    }
    let sources: std::collections::BTreeSet<&str> =
        all.iter().map(|v| v["source"].as_str().unwrap()).collect();
    assert_eq!(
        sources.into_iter().collect::<Vec<_>>(),
        ["access", "authorizer", "execution", "sendmessage"]
    );

    // Text: START and END folded away, REPORT one line with its figures.
    let r = app.run(&emu, &["logs", "--since", "10m"]).expect(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), seeded - 2 * 4, "{}", r.stdout);
    assert!(!r.stdout.contains("START RequestId"), "{}", r.stdout);
    assert!(
        lines.iter().any(|l| l.contains("sendmessage")
            && l.contains("aaaaaaaa REPORT 2.50 ms (billed 3 ms), 64 MB of 128 MB used")),
        "{}",
        r.stdout
    );
    assert!(lines.iter().any(|l| l.contains("access") && l.contains("c1= CONNECT $connect 200 principal=alice")));

    // Narrowing.
    let r = app
        .run(
            &emu,
            &[
                "logs",
                "--since",
                "10m",
                "--route",
                "sendmessage",
                "--output",
                "json",
            ],
        )
        .expect(0);
    let v = json_lines(&r.stdout);
    assert_eq!(v.len(), 12);
    assert!(v.iter().all(|e| e["source"] == "sendmessage"));
    let r = app
        .run(
            &emu,
            &["logs", "--since", "10m", "--access", "--output", "json"],
        )
        .expect(0);
    let v = json_lines(&r.stdout);
    assert_eq!(v.len(), 4);
    assert!(v.iter().all(|e| e["source"] == "access"));

    // One connection: its access records, invocation A (names it) and Z (tied by the
    // access log), the authorizer's (names it), its execution lines; nothing of c2's.
    let want_c1 = |v: &[Value]| {
        let msgs: Vec<&str> = v.iter().map(|e| e["message"].as_str().unwrap()).collect();
        assert!(
            !msgs
                .iter()
                .any(|m| m.contains("c2=") || m.contains(B) || m.contains("(r2)")),
            "{msgs:#?}"
        );
        assert_eq!(
            msgs.iter().filter(|m| m.contains(A)).count(),
            5,
            "{msgs:#?}"
        );
        assert_eq!(
            msgs.iter().filter(|m| m.contains(Z)).count(),
            5,
            "{msgs:#?}"
        );
        assert_eq!(
            msgs.iter().filter(|m| m.contains("dddddddd")).count(),
            4,
            "{msgs:#?}"
        );
        assert_eq!(
            msgs.iter()
                .filter(|m| m.starts_with("(r0)") || m.starts_with("(r1)"))
                .count(),
            2
        );
        assert_eq!(v.len(), 4 + 4 + 4 + 3 + 2, "{msgs:#?}");
    };
    let r = app
        .run(
            &emu,
            &[
                "logs",
                "--since",
                "10m",
                "--connection",
                "c1=",
                "--output",
                "json",
            ],
        )
        .expect(0);
    want_c1(&json_lines(&r.stdout));
    // A principal: the access log names alice's connection.
    let r = app
        .run(
            &emu,
            &[
                "logs",
                "--since",
                "10m",
                "--principal",
                "alice",
                "--output",
                "json",
            ],
        )
        .expect(0);
    want_c1(&json_lines(&r.stdout));
    // --until before the story: nothing.
    let iso = wsconn::logs::show::rfc3339(base - 60_000);
    let r = app
        .run(&emu, &["logs", "--since", "1h", "--until", &iso])
        .expect(0);
    assert_eq!(r.stdout, "", "nothing before {iso}");
    // Errors are one line.
    let r = app.run(&emu, &["logs", "--route", "nope"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.trim().lines().count() == 1 && r.stderr.contains("\"nope\""),
        "{}",
        r.stderr
    );
    let r = emu.wsconn(&["--stack", "never", "logs"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not deployed"), "{}", r.stderr);
}

/// Runs `logs --follow`, writes three batches (the second larger than one
/// FilterLogEvents page: 1 MB), and checks each event shows once, in order.
async fn follow_three_batches(emu: &Emulator, app: &App, c: &Clients) -> String {
    let mut child = app.spawn(
        emu,
        &[
            "logs", "--follow", "--since", "1s", "--access", "--output", "json",
        ],
    );
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let group = format!("/aws/apigateway/{STACK}/api");
    let pad = "x".repeat(2000);
    let mut written: Vec<(String, Instant)> = Vec::new();
    for (batch, n) in [(0, 5), (1, 600), (2, 5)] {
        let t = now_ms();
        let events: Vec<(i64, String)> = (0..n)
            .map(|i| {
                (
                    t + i as i64,
                    access(
                        &format!("b{batch}-{i}"),
                        "cf=",
                        "MESSAGE",
                        "x",
                        &format!(r#","pad":"{pad}""#),
                    ),
                )
            })
            .collect();
        put(c, &group, "follow", &events).await;
        let at = Instant::now();
        written.extend((0..n).map(|i| (format!("b{batch}-{i}"), at)));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen: Vec<(Instant, String)> = Vec::new();
    while seen.len() < written.len() && Instant::now() < deadline {
        if let Ok((at, line)) = rx.recv_timeout(Duration::from_millis(200)) {
            let v: Value = serde_json::from_str(&line).unwrap();
            let msg: Value = serde_json::from_str(v["message"].as_str().unwrap()).unwrap();
            seen.push((at, msg["requestId"].as_str().unwrap().to_string()));
        }
    }
    // Ctrl-C ends it with exit 0.
    // SIGINT, as Ctrl-C sends it.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = common::finish(child, Duration::from_secs(10));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    let want: Vec<&str> = written.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, want, "every event once, in order");
    for ((at, id), (_, written_at)) in seen.iter().zip(&written) {
        // Within the poll (1 s) and a read; the 2 s figure is measured in scripts/bench.
        let lag = at.saturating_duration_since(*written_at);
        assert!(
            lag < Duration::from_secs(6),
            "{id} showed {lag:?} after it was written"
        );
    }
    out.stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_shows_three_batches_once_in_order_even_when_throttled() {
    let emu = Emulator::start();
    let c = emu.sdk().await;
    let app = App::deploy(&emu);
    emu.configure(json!({"realism": true}));
    let stderr = follow_three_batches(&emu, &app, &c).await;
    assert!(!stderr.contains("throttling"), "{stderr}");
    // 30% of FilterLogEvents answers throttled: nothing lost, and said once.
    emu.configure(json!({"seed": 11, "throttle_rate": 0.3, "chaos_exclude": ["PutLogEvents", "CreateLogStream", "CreateLogGroup"]}));
    let stderr = follow_three_batches(&emu, &app, &c).await;
    assert_eq!(
        stderr.matches("throttling FilterLogEvents").count(),
        1,
        "{stderr}"
    );
    let faults = emu
        .calls()
        .iter()
        .filter(|c| c.operation == "FilterLogEvents" && c.fault_kind.as_deref() == Some("throttle"))
        .count();
    assert!(faults > 0, "the emulator throttled nothing");
}
