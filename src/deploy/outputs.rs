//! What `outputs` (and the end of `deploy`) print: what exists now, `null` for what
//! does not. Derived from a snapshot, so deploy needs no extra read to print them.

use super::kind::{Scope, Snapshot};
use super::resources::{
    api::Api, check_owned, deployment, deployment::Deployment, function::Function,
    log_group::LogGroup, stage::Stage, table::Table,
};
use super::session::Session;
use crate::config::Config;
use crate::error::Result;
use crate::stack::Stack;
use serde::Serialize;

#[derive(Debug, Serialize, PartialEq)]
pub struct Outputs {
    pub stack: String,
    pub region: String,
    pub table_name: Option<String>,
    pub table_arn: Option<String>,
    pub function_name: Option<String>,
    pub function_arn: Option<String>,
    pub api_id: Option<String>,
    pub stage: Option<String>,
    pub websocket_url: Option<String>,
    /// Each deployed function by what it serves: a route key, or `authorizer`.
    pub functions: std::collections::BTreeMap<String, String>,
    /// The stage's access log group, when it exists.
    pub access_log_group: Option<String>,
    /// The deployment the stage serves (the live release).
    pub release: Option<String>,
    /// Function name → the version the live release serves (empty for a deployment made
    /// before releases, which invoked `$LATEST`).
    pub versions: std::collections::BTreeMap<String, String>,
}

/// Reads the stack and returns its outputs (`outputs`, and `smoke`/`connections` to find
/// a deployed stack).
pub async fn read(cfg: Config, parallelism: usize) -> Result<(Session, Outputs)> {
    let session = Session::open(cfg, parallelism).await?;
    let snap = session.read(Scope::Full, None).await?;
    let out = Outputs::from_snapshot(&session.stack, &snap);
    Ok((session, out))
}

impl Outputs {
    pub fn from_snapshot(stack: &Stack, snap: &Snapshot) -> Outputs {
        // A same-named resource the stack does not own is not one of its outputs.
        let owned = |tags: &crate::stack::Tags| check_owned("", tags, &stack.name).is_ok();
        let table = snap
            .get::<Table>(&stack.table.name)
            .filter(|t| owned(&t.tags));
        let default = stack.default_function();
        let function = default
            .and_then(|f| snap.get::<Function>(&f.name))
            .filter(|f| owned(&f.tags));
        let functions = stack
            .functions
            .iter()
            .filter(|f| {
                snap.get::<Function>(&f.name)
                    .is_some_and(|l| owned(&l.tags))
            })
            .map(|f| (f.serves.clone(), f.name.clone()))
            .collect();
        let access_log_group = stack
            .stage_settings
            .access_log_group
            .clone()
            .filter(|g| snap.get::<LogGroup>(g).is_some_and(|l| owned(&l.tags)));
        let api_id = snap.get::<Api>(&stack.api.name).map(|a| a.id);
        let live_stage = snap.get::<Stage>(&stack.stage);
        let stage = live_stage.as_ref().map(|_| stack.stage.clone());
        let release = live_stage.and_then(|s| s.deployment_id);
        let versions = release
            .as_ref()
            .and_then(|id| snap.get::<Deployment>(id))
            .and_then(|d| deployment::manifest_of(&d, &stack.name))
            .map(|m| m.versions)
            .unwrap_or_default();
        Outputs {
            stack: stack.name.clone(),
            region: snap.env.region.clone(),
            table_name: table.as_ref().map(|_| stack.table.name.clone()),
            table_arn: table.as_ref().map(|t| t.arn.clone()),
            function_name: function.as_ref().and(default).map(|f| f.name.clone()),
            function_arn: function.map(|f| f.arn.clone()),
            websocket_url: match (&api_id, &stage) {
                (Some(id), Some(s)) => Some(snap.env.websocket_url(id, s)),
                _ => None,
            },
            api_id,
            stage,
            functions,
            access_log_group,
            release,
            versions,
        }
    }

    pub fn to_text(&self) -> String {
        let v = |o: &Option<String>| o.clone().unwrap_or_else(|| "(not deployed)".into());
        let mut extra = String::new();
        for (serves, name) in &self.functions {
            extra.push_str(&format!("function       {serves} -> {name}\n"));
        }
        if let Some(g) = &self.access_log_group {
            extra.push_str(&format!("access_log     {g}\n"));
        }
        if let Some(r) = &self.release {
            extra.push_str(&format!("release        {r}\n"));
        }
        for (f, v) in &self.versions {
            extra.push_str(&format!("version        {f}:{v}\n"));
        }
        let base = format!(
            "stack          {}\nregion         {}\ntable_name     {}\ntable_arn      {}\nfunction_name  {}\nfunction_arn   {}\napi_id         {}\nstage          {}\nwebsocket_url  {}\n",
            self.stack,
            self.region,
            v(&self.table_name),
            v(&self.table_arn),
            v(&self.function_name),
            v(&self.function_arn),
            v(&self.api_id),
            v(&self.stage),
            v(&self.websocket_url)
        );
        base + &extra
    }
}
