//! `wsconn local`: runs the stack on this machine. A thin layer over [`crate::local`].

use crate::cli::{GlobalOpts, LocalOpts};
use crate::config::Config;
use crate::error::Result;
use crate::local::{self, Limits, Options, StoreKind};
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(g: &GlobalOpts, cfg: Config, o: &LocalOpts) -> Result<ExitCode> {
    let store = match (&o.dynamodb_endpoint, &o.data_dir) {
        (Some(url), _) => StoreKind::Endpoint(url.clone()),
        (None, Some(dir)) => StoreKind::Dir(dir.clone()),
        (None, None) => StoreKind::Memory,
    };
    let opts = Options {
        host: o.host.clone(),
        port: o.port,
        store,
        node: o.node.clone(),
        python: o.python.clone(),
        workers: local::WorkerPolicy {
            warm_all: o.warm,
            idle: (!o.warm && !o.idle_workers.is_zero()).then_some(o.idle_workers),
        },
        tls: o.tls,
        ttl_sweep: Duration::from_secs(o.ttl_sweep_interval),
        limits: Limits {
            idle: Duration::from_millis(o.idle_timeout_ms.max(1)),
            max_duration: Duration::from_millis(o.max_connection_ms.max(1)),
        },
        function_timeout: o
            .function_timeout_ms
            .map(|ms| Duration::from_millis(ms.max(1))),
        output: g.output,
    };
    local::run(cfg, opts, super::interrupted()).await?;
    Ok(ExitCode::SUCCESS)
}
