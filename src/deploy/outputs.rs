//! What `outputs` (and the end of `deploy`) print: what exists now, `null` for what
//! does not. Derived from a snapshot, so deploy needs no extra read to print them.

use super::resources::check_owned;
use super::snapshot::Snapshot;
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
}

impl Outputs {
    pub fn from_snapshot(stack: &Stack, snap: &Snapshot) -> Outputs {
        // A same-named resource the stack does not own is not one of its outputs.
        let owned = |tags| check_owned("", tags, &stack.name).is_ok();
        let table = snap.table.as_ref().filter(|t| owned(&t.tags));
        let function = snap.function.as_ref().filter(|f| owned(&f.tags));
        let api_id = snap.api.as_ref().map(|a| a.found.id.clone());
        let stage = snap
            .api
            .as_ref()
            .and_then(|a| a.children.as_ref())
            .filter(|c| c.stages.iter().any(|s| s.name == stack.stage))
            .map(|_| stack.stage.clone());
        Outputs {
            stack: stack.name.clone(),
            region: snap.env.region.clone(),
            table_name: table.map(|_| stack.table.name.clone()),
            table_arn: table.map(|t| t.arn.clone()),
            function_name: function.map(|_| stack.function.name.clone()),
            function_arn: function.map(|f| f.arn.clone()),
            websocket_url: match (&api_id, &stage) {
                (Some(id), Some(s)) => Some(snap.env.websocket_url(id, s)),
                _ => None,
            },
            api_id,
            stage,
        }
    }

    pub fn to_text(&self) -> String {
        let v = |o: &Option<String>| o.clone().unwrap_or_else(|| "(not deployed)".into());
        format!(
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
        )
    }
}
