//! Edits in `--assets-dir` take effect without a restart: the files' modification
//! times (and sizes) are polled every 500 ms; on a change the stack is rebuilt with
//! [`Stack::build`], its templates parsed once, and swapped in. A template that fails
//! to parse refuses connections, with its reason in the log, until it is fixed; a
//! changed handler gets a fresh Node.js worker.

use super::App;
use super::node::HandlerSpec;
use crate::assets::{CONNECT_FILE, DISCONNECT_FILE, HANDLER_FILE};
use crate::config::Config;
use crate::gateway::Api;
use crate::stack::Stack;
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
                    if handler_changed {
                        app.log.info(format!(
                            "reload: {HANDLER_FILE} changed; starting a new Node.js worker"
                        ));
                        app.node
                            .reload(HandlerSpec::file(&dir.join(HANDLER_FILE)))
                            .await;
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
