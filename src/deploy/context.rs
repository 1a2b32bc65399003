//! The shared context every step and resource kind works in. It sits below both the
//! engine and the resource kinds, so neither imports the other to reach it.

use crate::aws::{Aws, AwsEnv};
use crate::error::{Error, Result};
use crate::stack::{Stack, Tags};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub struct Cx {
    pub stack: Stack,
    pub aws: Aws,
    /// Account, region and partition, from the credential check.
    pub env: AwsEnv,
    pub facts: Mutex<Facts>,
}

/// Identifiers known from the last read or learnt while applying (a new API's id, new
/// integration ids…). Steps that run later read them here.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    pub api_id: Option<String>,
    /// Integration id by the route key it serves.
    pub integration_ids: BTreeMap<String, String>,
    /// Route id by route key.
    pub route_ids: BTreeMap<String, String>,
    /// The stack's authorizer, once it exists.
    pub authorizer_id: Option<String>,
    /// The deployment the stage should point at.
    pub deployment_id: Option<String>,
    /// The version each function serves in the release being made: known from the read
    /// when a published version matches, learnt when a step publishes one.
    pub versions: BTreeMap<String, String>,
    /// `[domain]`: the certificate the domain uses (the user's, or the stack's).
    pub certificate_arn: Option<String>,
    /// Its DNS validation CNAMEs, name → value.
    pub validation_records: Vec<(String, String)>,
    /// The domain's regional target and that target's hosted zone id.
    pub domain_target: Option<(String, String)>,
}

impl Cx {
    pub fn stack_name(&self) -> &str {
        &self.stack.name
    }
    pub fn desired_tags(&self) -> Tags {
        self.stack.tags.clone()
    }
    pub fn facts(&self) -> std::sync::MutexGuard<'_, Facts> {
        self.facts.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// The stack's API id; an error when no step created or found it.
    pub fn api_id(&self) -> Result<String> {
        self.facts().api_id.clone().ok_or_else(|| {
            Error::Vanished(format!("the WebSocket API of stack {}", self.stack.name))
        })
    }
    /// The versions this run's release serves, as far as they are known.
    pub fn versions(&self) -> BTreeMap<String, Option<String>> {
        self.facts()
            .versions
            .iter()
            .map(|(f, v)| (f.clone(), Some(v.clone())))
            .collect()
    }
    pub fn integration_id(&self, key: &str) -> Result<String> {
        self.facts()
            .integration_ids
            .get(key)
            .cloned()
            .ok_or_else(|| Error::Vanished(format!("integration {key}")))
    }
}
