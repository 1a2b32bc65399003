//! `wsconn diff`: live vs desired, field by field. Reads only; exit 0 in sync, 2 when
//! changes are pending, 1 on error.

use super::{EXIT_CHANGES, color_stdout};
use crate::cli::{EngineOpts, GlobalOpts, OutputFormat};
use crate::config::Config;
use crate::deploy::engine;
use crate::deploy::kind::Scope;
use crate::deploy::plan;
use crate::deploy::session::Session;
use crate::error::Result;
use std::process::ExitCode;

pub async fn run(g: &GlobalOpts, cfg: Config, engine_opts: &EngineOpts) -> Result<ExitCode> {
    let mut session = Session::open(cfg, usize::from(engine_opts.parallelism)).await?;
    // Handler directories are zipped before any AWS call: a package Lambda would refuse
    // stops here.
    session.stack.package()?;
    let snap = session.read(Scope::Full, None).await?;
    let planned = engine::plan(&session.stack, &snap.env, &snap)?;
    let plan = planned.plan();
    if g.output == OutputFormat::Json {
        println!("{}", plan.to_json());
    } else {
        print!("{}", plan::render_text(&plan, color_stdout()));
    }
    Ok(if planned.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CHANGES)
    })
}
