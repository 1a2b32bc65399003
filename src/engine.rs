//! The reconcile engine: read everything, diff in pure code, plan, then apply in
//! dependency order (destroy in reverse).
//!
//! Guarantees:
//! - `plan` and `plan_destroy` make only read calls.
//! - `apply` runs steps one at a time, in order, so writes to one API are serialised
//!   (API Gateway answers parallel writes with "concurrent modification").
//! - Every step is idempotent with respect to a rerun: a deploy killed partway through
//!   converges when run again, because the next run reads what exists.

use crate::assets::{self, Assets};
use crate::aws::Aws;
use crate::config::{Config, Names, OWNER_TAG};
use crate::error::{self, Error, Result};
use crate::plan::{Plan, ResourceChange};
use crate::resources::{self, Resource, Step, Tags};
use aws_sdk_apigatewayv2::types::{Integration, Route};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// Everything a resource kind needs to plan and apply.
pub struct Cx {
    pub cfg: Config,
    pub names: Names,
    pub aws: Aws,
    pub assets: Assets,
    pub found: Found,
    pub facts: Mutex<Facts>,
}

/// The stack's API and its children, discovered once by tag before planning.
#[derive(Debug, Default)]
pub struct Found {
    pub api: Option<FoundApi>,
    pub integrations: Vec<Integration>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone)]
pub struct FoundApi {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub route_selection_expression: String,
    pub tags: Tags,
}

/// Identifiers learnt while applying (a new API's id, new integration ids…).
#[derive(Debug, Default)]
pub struct Facts {
    pub api_id: Option<String>,
    /// Integration id by the route key it serves.
    pub integration_ids: BTreeMap<String, String>,
    pub deployment_id: Option<String>,
}

impl Cx {
    pub fn stack(&self) -> &str {
        &self.cfg.stack
    }
    pub fn api_id(&self) -> Result<String> {
        self.facts.lock().unwrap().api_id.clone().ok_or_else(|| {
            Error::Conflict(
                "the stack's WebSocket API does not exist (was it deleted during the deploy?)"
                    .into(),
            )
        })
    }
    pub fn known_api_id(&self) -> Option<String> {
        self.facts.lock().unwrap().api_id.clone()
    }
    pub fn desired_tags(&self) -> Tags {
        self.cfg.tags.clone()
    }
}

/// Connects, loads the assets and discovers the stack's API.
pub async fn load(cfg: Config) -> Result<Cx> {
    let names = Names::for_stack(&cfg.stack);
    let assets = assets::load(cfg.assets_dir.as_deref(), &names.table, cfg.connection_ttl)?;
    let aws = Aws::connect(&cfg).await?;
    let found = discover(&aws, &cfg.stack).await?;
    let mut facts = Facts::default();
    if let Some(api) = &found.api {
        facts.api_id = Some(api.id.clone());
        for i in &found.integrations {
            if let (Some(key), Some(id)) = (resources::integration::key_of(i), i.integration_id()) {
                facts
                    .integration_ids
                    .insert(key.to_string(), id.to_string());
            }
        }
    }
    Ok(Cx {
        cfg,
        names,
        aws,
        assets,
        found,
        facts: Mutex::new(facts),
    })
}

/// API names are not unique, so the stack's API is the one tagged with the stack.
/// Two such APIs is an error to report, not a choice to make.
async fn discover(aws: &Aws, stack: &str) -> Result<Found> {
    let apis = resources::all_pages(|token| async move {
        let out = aws
            .apigw
            .get_apis()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| error::aws("listing WebSocket APIs (apigateway:GetApis)", e))?;
        Ok((out.items().to_vec(), out.next_token().map(String::from)))
    })
    .await?;
    let mut mine = Vec::new();
    for a in &apis {
        let tags: Tags = a.tags().cloned().unwrap_or_default().into_iter().collect();
        if tags.get(OWNER_TAG).map(String::as_str) == Some(stack) {
            mine.push(FoundApi {
                id: a.api_id().unwrap_or_default().to_string(),
                name: a.name().unwrap_or_default().to_string(),
                protocol: a
                    .protocol_type()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                route_selection_expression: a
                    .route_selection_expression()
                    .unwrap_or_default()
                    .to_string(),
                tags,
            });
        }
    }
    if mine.len() > 1 {
        let ids: Vec<_> = mine.iter().map(|a| a.id.as_str()).collect();
        return Err(Error::Conflict(format!(
            "{} APIs carry the tag {OWNER_TAG}={stack} ({}); wsconn will not guess which is the stack's. Delete or untag the extra one",
            mine.len(),
            ids.join(", ")
        )));
    }
    let Some(api) = mine.pop() else {
        return Ok(Found::default());
    };
    let (integrations, routes) = futures::try_join!(
        resources::integration::list(aws, &api.id),
        resources::route::list(aws, &api.id)
    )?;
    Ok(Found {
        api: Some(api),
        integrations,
        routes,
    })
}

pub struct Planned {
    pub kinds: Vec<Box<dyn Resource>>,
    pub steps: Vec<(usize, Step)>,
}

impl Planned {
    pub fn plan(&self) -> Plan {
        Plan::new(self.steps.iter().map(|(_, s)| s.change.clone()).collect())
    }
    pub fn changes(&self) -> impl Iterator<Item = &ResourceChange> {
        self.steps.iter().map(|(_, s)| &s.change)
    }
}

/// Reads every kind concurrently (reads only) and collects their steps in kind order.
pub async fn plan(cx: &Cx) -> Result<Planned> {
    let kinds = resources::kinds();
    let per_kind = futures::future::try_join_all(kinds.iter().map(|k| k.plan(cx))).await?;
    let steps = per_kind
        .into_iter()
        .enumerate()
        .flat_map(|(i, steps)| steps.into_iter().map(move |s| (i, s)))
        .collect();
    Ok(Planned { kinds, steps })
}

/// Delete steps for everything the stack owns, in reverse dependency order.
pub async fn plan_destroy(cx: &Cx) -> Result<Planned> {
    let kinds = resources::kinds();
    let per_kind = futures::future::try_join_all(kinds.iter().map(|k| k.plan_destroy(cx))).await?;
    let steps = per_kind
        .into_iter()
        .enumerate()
        .rev()
        .flat_map(|(i, steps)| steps.into_iter().map(move |s| (i, s)))
        .collect();
    Ok(Planned { kinds, steps })
}

/// Applies the steps one by one, reporting progress on stderr.
pub async fn apply(cx: &Cx, planned: &Planned) -> Result<()> {
    let total = planned.steps.len();
    for (n, (kind, step)) in planned.steps.iter().enumerate() {
        let c = &step.change;
        eprint!(
            "[{}/{}] {} {} … ",
            n + 1,
            total,
            c.action.symbol(),
            c.resource
        );
        let start = Instant::now();
        match planned.kinds[*kind].apply(cx, step).await {
            Ok(()) => eprintln!("done ({:.1} s)", start.elapsed().as_secs_f64()),
            Err(e) => {
                eprintln!("failed");
                return Err(e);
            }
        }
    }
    Ok(())
}

/// `wsconn outputs`: what exists now, `null` for what does not.
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

pub async fn outputs(cx: &Cx) -> Result<Outputs> {
    let api_id = cx.known_api_id();
    let (table, function, stage) = futures::try_join!(
        resources::table::read(cx),
        resources::function::read(cx),
        async {
            match &api_id {
                Some(id) => resources::stage::read_stage(cx, id).await,
                None => Ok(None),
            }
        }
    )?;
    // A same-named resource the stack does not own is not one of its outputs.
    let owned = |tags: &Tags| tags.get(OWNER_TAG).map(String::as_str) == Some(cx.stack());
    let table = table.filter(|t| owned(&t.tags));
    let function = function.filter(|f| owned(&f.tags));
    let env = &cx.aws.env;
    let stage = stage.map(|_| cx.cfg.stage.clone());
    Ok(Outputs {
        stack: cx.cfg.stack.clone(),
        region: env.region.clone(),
        table_name: table.as_ref().map(|_| cx.names.table.clone()),
        table_arn: table.map(|t| t.arn),
        function_name: function.as_ref().map(|_| cx.names.function.clone()),
        function_arn: function.map(|f| f.arn),
        websocket_url: match (&api_id, &stage) {
            (Some(id), Some(s)) => Some(env.websocket_url(id, s)),
            _ => None,
        },
        api_id,
        stage,
    })
}

impl Outputs {
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
