//! What a deploy-side command opens: the resolved configuration, the stack model and the
//! SDK clients; then, once the account is known, the context steps run in.

use super::context::Cx;
use super::engine;
use super::kind::{Scope, Snapshot};
use crate::aws::{Aws, AwsEnv};
use crate::config::Config;
use crate::error::Result;
use crate::stack::Stack;
use std::sync::Mutex;

pub struct Session {
    pub cfg: Config,
    pub stack: Stack,
    pub aws: Aws,
}

impl Session {
    /// Builds the stack model (assets included), parses its templates, and builds the
    /// clients; no AWS call.
    pub async fn open(cfg: Config, parallelism: usize) -> Result<Session> {
        let stack = Stack::build(&cfg)?;
        stack.check_templates(cfg.assets_dir.as_deref())?;
        let aws = Aws::connect(&cfg, parallelism).await?;
        // Known before any call: the region the clients were built for.
        if let Some(arn) = stack.domain.as_ref().and_then(|d| d.given_certificate())
            && let Ok(region) = crate::config::domain::certificate_arn(arn)
            && region != aws.region
        {
            return Err(crate::error::Error::Config(format!(
                "[domain] certificate = {arn:?}: it is in {region}, and the stack is in {}; API Gateway takes a regional domain's certificate from the API's region (request or import it there)",
                aws.region
            )));
        }
        Ok(Session { cfg, stack, aws })
    }

    /// The first read: the credential check runs beside it (unless `env` is known).
    pub async fn read(&self, scope: Scope, env: Option<AwsEnv>) -> Result<Snapshot> {
        engine::read(&self.aws, &self.stack, scope, env).await
    }

    pub fn into_cx(self, snap: &Snapshot) -> Cx {
        let facts = engine::facts(snap, &self.stack);
        Cx {
            stack: self.stack,
            aws: self.aws,
            env: snap.env.clone(),
            facts: Mutex::new(facts),
        }
    }
}

/// Reads the stack again and makes its identifiers the ones steps start from.
pub async fn refresh(cx: &Cx, scope: Scope) -> Result<Snapshot> {
    let snap = engine::read(&cx.aws, &cx.stack, scope, Some(cx.env.clone())).await?;
    *cx.facts() = engine::facts(&snap, &cx.stack);
    Ok(snap)
}
