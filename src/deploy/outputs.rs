//! What `outputs` (and the end of `deploy`) print: what exists now, `null` for what
//! does not. Derived from a snapshot, so deploy needs no extra read to print them.

use super::kind::{Scope, Snapshot};
use super::resources::{
    api::Api, api_mapping::ApiMapping, certificate, certificate::Certificate, check_owned,
    deployment, deployment::Deployment, domain_name::DomainName, function::Function,
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
    /// Through the custom domain once it serves the stage (`wss://<name>[/<base-path>]`),
    /// else the execute-api URL.
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
    /// The stage on API Gateway's own host: @connections is always called there.
    pub execute_api_url: Option<String>,
    /// `[domain]`, when declared (or the stack still has one).
    pub domain: Option<DomainOut>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct DomainOut {
    pub name: String,
    /// The regional endpoint to point DNS at (a CNAME, when DNS is yours).
    pub target: Option<String>,
    pub certificate: Option<String>,
    /// The domain's status (AVAILABLE…), or the certificate's while the domain waits
    /// for it (PENDING_VALIDATION), or `null` when neither exists.
    pub status: Option<String>,
}

/// The domain as deployed: its name, target, certificate and status; the URL through it
/// when it maps the stack's stage.
fn domain_of(
    stack: &Stack,
    snap: &Snapshot,
    api_id: Option<&str>,
) -> (Option<DomainOut>, Option<String>) {
    let domains = snap.live::<DomainName>();
    let owned = |t: &crate::stack::Tags| check_owned("", t, &stack.name).is_ok();
    let live = match &stack.domain {
        Some(d) => domains.get(&d.name).filter(|l| owned(&l.tags)),
        None => domains.values().find(|l| owned(&l.tags)),
    };
    let name = match (&stack.domain, live) {
        (Some(d), _) => d.name.clone(),
        (None, Some(l)) => l.name.clone(),
        (None, None) => return (None, None),
    };
    let certs = snap.live::<Certificate>();
    let pending = stack
        .domain
        .as_ref()
        .and_then(|d| certificate::chosen(&certs, &stack.name, &d.name))
        .map(|c| (c.arn.clone(), c.status.clone()));
    let mapped = live.is_some()
        && snap.live::<ApiMapping>().get(&name).is_some_and(|ms| {
            ms.iter()
                .any(|m| Some(m.api_id.as_str()) == api_id && m.stage == stack.stage)
        });
    let url = match (&stack.domain, mapped) {
        (Some(d), true) if d.name == name => {
            let key = snap
                .live::<ApiMapping>()
                .get(&name)
                .and_then(|ms| {
                    ms.iter()
                        .find(|m| Some(m.api_id.as_str()) == api_id)
                        .map(|m| m.key.clone())
                })
                .unwrap_or_default();
            Some(if key.is_empty() {
                format!("wss://{name}")
            } else {
                format!("wss://{name}/{key}")
            })
        }
        _ => None,
    };
    let out = DomainOut {
        name,
        target: live.map(|l| l.target.clone()),
        certificate: live
            .map(|l| l.certificate_arn.clone())
            .or_else(|| {
                stack
                    .domain
                    .as_ref()
                    .and_then(|d| d.given_certificate().map(String::from))
            })
            .or_else(|| pending.as_ref().map(|p| p.0.clone())),
        status: live
            .map(|l| {
                if l.status.is_empty() {
                    "AVAILABLE".to_string()
                } else {
                    l.status.clone()
                }
            })
            .or_else(|| pending.map(|p| p.1)),
    };
    (Some(out), url)
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
        let execute_api_url = match (&api_id, &stage) {
            (Some(id), Some(s)) => Some(snap.env.websocket_url(id, s)),
            _ => None,
        };
        let (domain, domain_url) = domain_of(stack, snap, api_id.as_deref());
        Outputs {
            stack: stack.name.clone(),
            region: snap.env.region.clone(),
            table_name: table.as_ref().map(|_| stack.table.name.clone()),
            table_arn: table.as_ref().map(|t| t.arn.clone()),
            function_name: function.as_ref().and(default).map(|f| f.name.clone()),
            function_arn: function.map(|f| f.arn.clone()),
            websocket_url: domain_url.or_else(|| execute_api_url.clone()),
            execute_api_url,
            domain,
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
        if self.execute_api_url != self.websocket_url
            && let Some(u) = &self.execute_api_url
        {
            extra.push_str(&format!("execute_api_url {u}\n"));
        }
        if let Some(d) = &self.domain {
            let v = |o: &Option<String>| o.clone().unwrap_or_else(|| "(not yet)".into());
            extra.push_str(&format!(
                "domain         {} -> {} ({}; certificate {})\n",
                d.name,
                v(&d.target),
                v(&d.status),
                v(&d.certificate)
            ));
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
