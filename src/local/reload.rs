//! Edits in `--assets-dir` take effect without a restart: the files' modification
//! times (and sizes) are polled every 500 ms; on a change the stack is rebuilt with
//! [`Stack::build`], its templates parsed once, and swapped in. A template that fails
//! to parse refuses connections, with its reason in the log, until it is fixed; a
//! changed handler gets a fresh Node.js worker.
//!
//! Each handler directory named in wsconn.toml is watched the same way (every file in
//! it, except `node_modules` and dotfiles): a change there starts a fresh worker for that
//! function alone; the others keep theirs.

use super::App;
use super::functions::handler_spec;
use super::worker::HandlerSpec;
use crate::assets::{CONNECT_FILE, DISCONNECT_FILE, HANDLER_FILE};
use crate::config::Config;
use crate::gateway::Api;
use crate::stack::{Code, Stack};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const POLL: Duration = Duration::from_millis(500);
const FILES: [&str; 3] = [CONNECT_FILE, DISCONNECT_FILE, HANDLER_FILE];

type Stamp = Option<(SystemTime, u64)>;

fn stamps(dir: &Path) -> Vec<Stamp> {
    FILES
        .iter()
        .map(|f| {
            std::fs::metadata(dir.join(f))
                .ok()
                .and_then(|m| m.modified().ok().map(|t| (t, m.len())))
        })
        .collect()
}

pub fn spawn(app: Arc<App>, cfg: Config, dir: PathBuf) {
    tokio::spawn(async move {
        let mut seen = stamps(&dir);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = stamps(&dir);
            if now == seen {
                continue;
            }
            let changed: Vec<&str> = FILES
                .iter()
                .zip(now.iter().zip(seen.iter()))
                .filter(|(_, (a, b))| a != b)
                .map(|(f, _)| *f)
                .collect();
            seen = now;
            let build_cfg = cfg.clone();
            let built = tokio::task::spawn_blocking(move || Stack::build(&build_cfg)).await;
            let old = app.api();
            let what = changed.join(", ");
            match built {
                Ok(Ok(stack)) => {
                    let source = |s: &Stack| s.default_function().map(|f| f.code.clone());
                    let handler_changed = source(&stack) != source(&old.stack);
                    let api = Api::compile(Arc::new(stack));
                    let errors: Vec<String> = api
                        .template_errors()
                        .into_iter()
                        .map(str::to_string)
                        .collect();
                    app.set_api(api);
                    if errors.is_empty() {
                        app.log
                            .info(format!("reload: {what} changed; now in effect"));
                    } else {
                        for e in errors {
                            app.log.info(format!(
                                "reload: {what} changed; template error: {e}; connections are refused until it is fixed"
                            ));
                        }
                    }
                    let builtin = stack_default_builtin(&app.api().stack);
                    if handler_changed && let Some(name) = builtin {
                        app.log.info(format!(
                            "reload: {HANDLER_FILE} changed; starting a new Node.js worker for {name}"
                        ));
                        if let Some(rt) = app.functions.get(&name) {
                            rt.reload(HandlerSpec::file(&dir.join(HANDLER_FILE))).await;
                        }
                    }
                }
                Ok(Err(e)) => {
                    app.set_api(Api::broken(old.stack.clone(), &e.to_string()));
                    app.log.info(format!(
                        "reload: {what} changed; {e}; connections are refused until it is fixed"
                    ));
                }
                Err(_) => {}
            }
        }
    });
}

/// The `$default` function's name when it is the built-in echo (the one `--assets-dir`
/// supplies).
fn stack_default_builtin(stack: &Stack) -> Option<String> {
    stack
        .default_function()
        .filter(|f| matches!(f.code, Code::Builtin { .. }))
        .map(|f| f.name.clone())
}

/// Every file under `dir` (but `node_modules` and dotfiles), with its modification time
/// and size, sorted: equal stamps mean nothing changed.
fn tree_stamp(dir: &Path) -> Vec<(PathBuf, Stamp)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(path),
                Ok(_) => {
                    let stamp = std::fs::metadata(&path)
                        .ok()
                        .and_then(|m| m.modified().ok().map(|t| (t, m.len())));
                    out.push((path, stamp));
                }
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Watches each function's handler directory; a change reloads that function alone.
pub fn spawn_handlers(app: Arc<App>, stack: Arc<Stack>) {
    let dirs: Vec<(String, PathBuf, HandlerSpec)> = stack
        .functions
        .iter()
        .filter_map(|f| match &f.code {
            Code::Dir { dir, .. } => Some((f.name.clone(), dir.clone(), handler_spec(f, None))),
            Code::Builtin { .. } => None,
        })
        .collect();
    if dirs.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let scan = |dirs: Vec<(String, PathBuf, HandlerSpec)>| async move {
            tokio::task::spawn_blocking(move || {
                dirs.iter()
                    .map(|(_, d, _)| tree_stamp(d))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default()
        };
        let mut seen = scan(dirs.clone()).await;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = scan(dirs.clone()).await;
            if now.len() != dirs.len() {
                continue;
            }
            for (i, (name, dir, spec)) in dirs.iter().enumerate() {
                if seen.get(i) == now.get(i) {
                    continue;
                }
                app.log.info(format!(
                    "reload: {} changed; a new worker runs {name} (the other functions keep theirs)",
                    dir.display()
                ));
                if let Some(rt) = app.functions.get(name) {
                    rt.reload(spec.clone()).await;
                }
            }
            seen = now;
        }
    });
}
