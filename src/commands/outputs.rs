//! `wsconn outputs`: the endpoint and names of what exists now. Reads only.

use crate::cli::{EngineOpts, GlobalOpts, OutputFormat};
use crate::config::Config;
use crate::deploy::outputs::Outputs;
use crate::deploy::session::Session;
use crate::deploy::snapshot::Scope;
use crate::error::Result;
use std::process::ExitCode;

/// Reads the stack and returns its outputs (also used by `smoke` and `connections`).
pub async fn read(cfg: Config, parallelism: usize) -> Result<(Session, Outputs)> {
    let session = Session::open(cfg, parallelism).await?;
    let snap = session.read(Scope::Full, None).await?;
    let out = Outputs::from_snapshot(&session.stack, &snap);
    Ok((session, out))
}

pub async fn run(g: &GlobalOpts, cfg: Config, engine_opts: &EngineOpts) -> Result<ExitCode> {
    let (_, out) = read(cfg, usize::from(engine_opts.parallelism)).await?;
    if g.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print!("{}", out.to_text());
    }
    Ok(ExitCode::SUCCESS)
}
