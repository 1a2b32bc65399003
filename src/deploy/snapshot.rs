//! The read phase: everything the stack owns, read at the least depth.
//!
//! Every read that does not depend on another starts at once: the credential check,
//! GetApis, the table, both roles (with their known policies read directly), the log
//! group, the function and its policy. Only what needs an answer waits for it: the
//! table's and log group's tags (they need the ARN), the API's children (they need its
//! id), and the children's responses. A deploy or diff of a stack in sync therefore
//! takes three sequential round-trip levels. Each resource's read (six of them) takes a
//! permit from the `--parallelism` gate, and `--parallelism 1` also makes the calls
//! inside one resource's read go one at a time: the old sequential order.
//!
//! A child that answers NotFoundException under a listed API means the API was deleted
//! after the listing (listings lag deletes): the API is then absent, not an error.

use super::resources::{
    api::{self, FoundApi},
    function::{self, LiveFunction},
    integration::{self, LiveIntegration},
    log_group::{self, LiveLogGroup},
    permission::{self, Statement},
    role::{self, LiveRole, Role},
    route::{self, LiveRoute},
    stage::{self, LiveStage},
    table::{self, LiveTable},
};
use crate::aws::{Aws, AwsEnv};
use crate::error::Result;
use crate::stack::Stack;
use aws_sdk_apigatewayv2::types::Deployment;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything deploy and diff compare.
    Full,
    /// What destroy needs: deleting the API deletes its children, so they are not read.
    Destroy,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub env: AwsEnv,
    pub table: Option<LiveTable>,
    pub api_role: Option<LiveRole>,
    pub function_role: Option<LiveRole>,
    pub log_group: Option<LiveLogGroup>,
    pub function: Option<LiveFunction>,
    pub permission: Option<Statement>,
    pub api: Option<LiveApi>,
}

#[derive(Debug, Clone)]
pub struct LiveApi {
    pub found: FoundApi,
    /// `None` in the destroy scope.
    pub children: Option<Children>,
}

#[derive(Debug, Clone, Default)]
pub struct Children {
    pub integrations: Vec<LiveIntegration>,
    pub routes: Vec<LiveRoute>,
    pub stages: Vec<LiveStage>,
    pub deployments: Vec<Deployment>,
}

impl Snapshot {
    pub fn role(&self, role: Role) -> Option<&LiveRole> {
        match role {
            Role::ApiGateway => self.api_role.as_ref(),
            Role::Function => self.function_role.as_ref(),
        }
    }
}

/// The API's children; `None` when the API vanished under the listing.
async fn read_children(aws: &Aws, api_id: &str) -> Result<Option<Children>> {
    let (integrations, routes, stages, deployments) = futures::try_join!(
        Box::pin(integration::read_all(aws, api_id)),
        Box::pin(route::read_all(aws, api_id)),
        Box::pin(stage::read_all(aws, api_id)),
        Box::pin(stage::read_deployments(aws, api_id)),
    )?;
    Ok(match (integrations, routes, stages, deployments) {
        (Some(integrations), Some(routes), Some(stages), Some(deployments)) => Some(Children {
            integrations,
            routes,
            stages,
            deployments,
        }),
        _ => None,
    })
}

async fn read_api(aws: &Aws, stack: &Stack, scope: Scope) -> Result<Option<LiveApi>> {
    let Some(found) = api::discover(aws, &stack.name).await? else {
        return Ok(None);
    };
    if scope == Scope::Destroy {
        return Ok(Some(LiveApi {
            found,
            children: None,
        }));
    }
    Ok(read_children(aws, &found.id)
        .await?
        .map(|children| LiveApi {
            found,
            children: Some(children),
        }))
}

/// Reads the stack. `env` is the account already known (destroy checks credentials
/// beside taking the lock); otherwise the credential check runs beside the reads, and
/// its error wins: an unreachable endpoint or a bad key is one line about that.
pub async fn read(aws: &Aws, stack: &Stack, scope: Scope, env: Option<AwsEnv>) -> Result<Snapshot> {
    let n = &stack.names;
    let identity = async {
        match env {
            Some(e) => Ok(e),
            None => aws.identity().await,
        }
    };
    let reads = async {
        futures::try_join!(
            aws.unit(Box::pin(table::read(aws, &n.table))),
            aws.unit(Box::pin(role::read(aws, &n.api_role, &n.api_role_policy))),
            aws.unit(Box::pin(role::read(
                aws,
                &n.function_role,
                &n.function_role_policy
            ))),
            aws.unit(Box::pin(log_group::read(aws, &n.log_group))),
            aws.unit(Box::pin(async {
                if scope == Scope::Destroy {
                    return Ok((function::read(aws, &n.function).await?, None));
                }
                futures::try_join!(
                    function::read(aws, &n.function),
                    permission::read(aws, &n.function, &n.permission_sid)
                )
            })),
            aws.unit(Box::pin(read_api(aws, stack, scope))),
        )
    };
    // try_join: the first error ends the phase; the credential check retries least, so
    // when everything fails it fails first.
    let (env, (table, api_role, function_role, log_group, (function, permission), api)) =
        futures::try_join!(identity, Box::pin(reads))?;
    Ok(Snapshot {
        env,
        table,
        api_role,
        function_role,
        log_group,
        function,
        permission,
        api,
    })
}
