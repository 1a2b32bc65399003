//! Python handlers (issue 23): examples/chat-python deployed to the emulator (runtime,
//! handler, architecture, the package's exact entries, a no-op second deploy with no
//! pip run) and run under `wsconn local` with real wscat clients (a message to two
//! clients, 410 pruning, the authorizer's 401/403/500/allow); a Python timeout that
//! leaves a Node.js function answering; packaging safety; each bad input in one line.

mod common;

use common::local::{DEADLINE, Local, Wscat, count, wait_gone};
use common::{Emulator, changes};
use std::path::Path;
use std::time::{Duration, Instant};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "__pycache__" {
            continue;
        }
        if p.is_dir() {
            copy_tree(&p, &to.join(name));
        } else {
            std::fs::copy(&p, to.join(name)).unwrap();
        }
    }
}

/// A copy of examples/chat-python.
fn chat() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&common::repo().join("examples/chat-python"), dir.path());
    dir
}

fn cfg(dir: &Path) -> String {
    dir.join("wsconn.toml").display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_chat_runs_locally_with_its_authorizer() {
    let dir = chat();
    // The authorizer raises for one token: API Gateway answers 500.
    let auth = dir.path().join("handlers/authorizer/app.py");
    let src = std::fs::read_to_string(&auth).unwrap().replace(
        "    query = event.get(\"queryStringParameters\") or {}\n",
        "    query = event.get(\"queryStringParameters\") or {}\n    if query.get(\"token\") == \"boom\":\n        raise RuntimeError(\"boom\")\n",
    );
    std::fs::write(&auth, src).unwrap();
    let local = Local::start_in(dir.path());
    let url = local.ws_url();
    // 401: no identity source (the function is not called); 403: Deny; 500: raised.
    let (_, text) = Wscat::refused(&url);
    assert!(text.contains("401"), "{text}");
    let (_, text) = Wscat::refused(&format!("{url}?token=wrong"));
    assert!(text.contains("403"), "{text}");
    let (_, text) = Wscat::refused(&format!("{url}?token=boom"));
    assert!(text.contains("500"), "{text}");
    local.wait_log(&["CONNECT $connect 500", "RuntimeError: boom"]);
    // Allowed: two clients both get a message one of them sent.
    let mut alice = Wscat::connect(&format!("{url}?token=chat-demo-token&user=alice"));
    let bob = Wscat::connect(&format!("{url}?token=chat-demo-token&user=bob"));
    let ddb = local.ddb().await;
    let deadline = Instant::now() + DEADLINE;
    while count(&ddb, &local.table()).await < 2 {
        assert!(Instant::now() < deadline, "the two clients never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ddb.put_item()
        .table_name(local.table())
        .item(
            "connectionid",
            aws_sdk_dynamodb::types::AttributeValue::S("stalepython=".into()),
        )
        .send()
        .await
        .unwrap();
    alice.type_line(r#"{"action":"sendmessage","data":"hi from python"}"#);
    alice.read_line_containing("hi from python");
    bob.read_line_containing("hi from python");
    wait_gone(&ddb, &local.table(), "stalepython=").await;
    local.wait_log(&[
        "[chat-sendmessage pid",
        "3 connections, sent 2, gone 1 (deleted)",
    ]);
    local.wait_log(&["python chat-sendmessage: cold start: worker pid"]);
    // The allowed user is the item's principalId, as with the Node.js authorizer.
    let items = ddb.scan().table_name(local.table()).send().await.unwrap();
    let principals: Vec<String> = items
        .items()
        .iter()
        .filter_map(|i| i.get("principalId").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    assert!(principals.contains(&"alice".to_string()), "{principals:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_timeout_leaves_a_nodejs_function_answering() {
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("handlers/slow");
    std::fs::create_dir_all(&slow).unwrap();
    std::fs::write(
        slow.join("index.py"),
        "import time\n\ndef handler(event, context):\n    time.sleep(30)\n    return {'statusCode': 200, 'body': 'late'}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wsconn.toml"),
        "stack = \"mixed\"\n\n[routes.slow]\nhandler = \"handlers/slow\"\nruntime = \"python3.13\"\ntimeout = 1\n",
    )
    .unwrap();
    let local = Local::start_in(dir.path());
    let mut ws = common::local::connect(&local.ws_url()).await;
    use futures::SinkExt as _;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        r#"{"action":"slow"}"#.into(),
    ))
    .await
    .unwrap();
    // The Python worker overruns its 1 s: killed alone; the Node.js echo still answers.
    local.wait_log(&["python mixed-slow: an invocation ran past the function's 1000 ms timeout"]);
    // The client first gets API Gateway's error frame for the timed-out message.
    let frame = common::local::next_text(&mut ws).await.unwrap();
    assert!(frame.contains("Internal server error"), "{frame}");
    let ev = common::local::echo(&mut ws, "still here").await;
    assert_eq!(ev["body"], "still here");
    assert!(
        !local.log().contains("node mixed-default: the worker"),
        "the Node.js worker was not touched\n{}",
        local.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_chat_deploys_exactly_and_a_second_deploy_runs_no_pip() {
    let emu = Emulator::start_with(&["--strict"]);
    let c = emu.sdk().await;
    let dir = chat();
    // A dependency of the route's own.
    std::fs::write(
        dir.path().join("handlers/sendmessage/requirements.txt"),
        "six==1.16.0\n",
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let env_cache = cache.path().to_str().unwrap().to_string();
    let run = |args: &[&str], extra: &[(&str, &str)]| {
        let mut v = vec!["--config".to_string(), cfg(dir.path())];
        v.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        let mut env: Vec<(&str, &str)> = vec![("WSCONN_CACHE_DIR", env_cache.as_str())];
        env.extend_from_slice(extra);
        emu.wsconn_env(&refs, &env)
    };
    run(&["deploy", "--yes"], &[]).expect(0);
    for (name, handler) in [
        ("chat-sendmessage", "app.lambda_handler"),
        ("chat-authorizer", "app.lambda_handler"),
    ] {
        let f = c
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .unwrap();
        assert_eq!(f.runtime().unwrap().as_str(), "python3.13", "{name}");
        assert_eq!(f.handler(), Some(handler), "{name}");
        assert_eq!(
            f.architectures()
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>(),
            ["x86_64"],
            "{name}"
        );
    }
    // The package holds the module and the requirement, installed for Lambda's
    // platform; not boto3, which the runtime provides; no bytecode.
    let names = emu.lambda_zip_names("chat-sendmessage", None);
    assert!(names.contains(&"app.py".to_string()), "{names:?}");
    assert!(names.contains(&"requirements.txt".to_string()), "{names:?}");
    assert!(names.contains(&"six.py".to_string()), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("six-1.16.0.dist-info/")),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("boto3") || n.starts_with("botocore")),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("__pycache__") || n.ends_with(".pyc")),
        "{names:?}"
    );
    assert_eq!(emu.lambda_zip_names("chat-authorizer", None), ["app.py"]);
    // A second deploy: no mutating call, and pip never runs (it would fail here).
    emu.reset_calls();
    run(
        &["deploy", "--yes"],
        &[("WSCONN_DEPLOY_PYTHON", "/nonexistent/python3")],
    )
    .expect(0);
    assert_eq!(emu.mutating_calls(), Vec::<String>::new());
    // A changed requirement runs pip again (so the test above would see one).
    std::fs::write(
        dir.path().join("handlers/sendmessage/requirements.txt"),
        "six==1.16.0\n# changed\n",
    )
    .unwrap();
    let r = run(
        &["diff"],
        &[("WSCONN_DEPLOY_PYTHON", "/nonexistent/python3")],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("needs Python with pip"), "{}", r.stderr);
    // With pip, the change is the route's code alone (the stack mixes a Node.js echo
    // with Python functions).
    let plan = run(&["diff", "--output", "json"], &[]).expect(2).json();
    let functions: Vec<String> = changes(&plan)
        .into_iter()
        .filter(|(r, _, _)| r.starts_with("function "))
        .map(|(r, _, _)| r)
        .collect();
    assert_eq!(functions, ["function chat-sendmessage"]);
}

#[test]
fn packaging_never_uploads_what_is_outside_and_stops_at_the_limit() {
    let emu = Emulator::start_with(&["--strict"]);
    let dir = chat();
    let h = dir.path().join("handlers/sendmessage");
    // A link to a secret outside the handler directory.
    std::fs::write(dir.path().join("outside-secret.txt"), "s3cr3t").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside-secret.txt"), h.join("config.txt"))
        .unwrap();
    let r = emu
        .wsconn(&["--config", &cfg(dir.path()), "deploy", "--yes"])
        .expect(1);
    assert!(
        r.stderr.contains("config.txt leads to") && r.stderr.contains("outside"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1
    );
    assert!(emu.calls().is_empty(), "no AWS call at all");
    std::fs::remove_file(h.join("config.txt")).unwrap();
    // A link (inside) to a 3 GB tree: counted from metadata, refused at the limit.
    let big = h.join("data");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..3 {
        std::fs::File::create(big.join(format!("part{i}.bin")))
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
    }
    std::os::unix::fs::symlink(&big, h.join("more")).unwrap();
    let r = emu
        .wsconn(&["--config", &cfg(dir.path()), "diff"])
        .expect(1);
    assert!(
        r.stderr.contains("over Lambda's 50 MB limit"),
        "{}",
        r.stderr
    );
    assert!(emu.calls().is_empty(), "no AWS call at all");
}

/// Each bad input is one line naming it, and no AWS call is made.
#[test]
fn bad_python_input_is_one_line_with_no_aws_call() {
    let emu = Emulator::start();
    type Case<'a> = (
        &'a str,
        Box<dyn Fn(&Path)>,
        Vec<(&'a str, &'a str)>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "missing module",
            Box::new(|d: &Path| {
                std::fs::remove_file(d.join("handlers/sendmessage/app.py")).unwrap()
            }),
            vec![],
            "has no app.py or app/__init__.py",
        ),
        (
            "missing function",
            Box::new(|d: &Path| {
                let f = d.join("handlers/sendmessage/app.py");
                let s = std::fs::read_to_string(&f)
                    .unwrap()
                    .replace("def lambda_handler(", "def other_handler(");
                std::fs::write(f, s).unwrap();
            }),
            vec![],
            "does not define `lambda_handler`",
        ),
        (
            "unknown runtime",
            Box::new(|d: &Path| {
                let f = d.join("wsconn.toml");
                let s = std::fs::read_to_string(&f)
                    .unwrap()
                    .replace("python3.13", "python4.0");
                std::fs::write(f, s).unwrap();
            }),
            vec![],
            "functions.runtime = \"python4.0\": not a Lambda runtime wsconn deploys",
        ),
        (
            "no wheel for Lambda",
            Box::new(|d: &Path| {
                std::fs::write(
                    d.join("handlers/sendmessage/requirements.txt"),
                    "wsconn-no-such-package==9.9.9\n",
                )
                .unwrap()
            }),
            vec![],
            "wsconn-no-such-package==9.9.9 has no wheel for Lambda's platform",
        ),
        (
            "pip missing",
            Box::new(|d: &Path| {
                std::fs::write(
                    d.join("handlers/sendmessage/requirements.txt"),
                    "six==1.16.0\n",
                )
                .unwrap()
            }),
            vec![("WSCONN_DEPLOY_PYTHON", "/nonexistent/python3")],
            "needs Python with pip",
        ),
        (
            "unparsable requirements.txt",
            Box::new(|d: &Path| {
                std::fs::write(
                    d.join("handlers/sendmessage/requirements.txt"),
                    "==oops!!\n",
                )
                .unwrap()
            }),
            vec![],
            "pip cannot parse it",
        ),
    ];
    for (what, edit, env, want) in cases {
        let dir = chat();
        edit(dir.path());
        let cache = tempfile::tempdir().unwrap();
        let mut env = env;
        let c = cache.path().to_str().unwrap().to_string();
        env.push(("WSCONN_CACHE_DIR", &c));
        emu.reset_calls();
        let r = emu.wsconn_env(&["--config", &cfg(dir.path()), "deploy", "--yes"], &env);
        assert_eq!(r.code, 1, "{what}: {}", r.stderr);
        let errors: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{what}: {}", r.stderr);
        assert!(errors[0].contains(want), "{what}: {}", errors[0]);
        assert!(emu.calls().is_empty(), "{what}: no AWS call");
    }
}
