//! `wsconn outputs`: the endpoint and names of what exists now. Reads only.

use crate::cli::{EngineOpts, GlobalOpts, OutputFormat};
use crate::config::Config;
use crate::deploy::outputs;
use crate::error::Result;
use std::process::ExitCode;

pub async fn run(g: &GlobalOpts, cfg: Config, engine_opts: &EngineOpts) -> Result<ExitCode> {
    let (_, out) = outputs::read(cfg, usize::from(engine_opts.parallelism)).await?;
    if g.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print!("{}", out.to_text());
    }
    Ok(ExitCode::SUCCESS)
}
