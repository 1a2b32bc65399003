//! The dependency graph, as data, and the executor that runs it.
//!
//! Every step of a plan is a [`Node`] (a kind plus a key: a route key, a role, a
//! resource id). Which steps wait for which is not written into the steps: it comes from
//! the rule tables below, each rule naming the AWS behaviour that forces it. A rule
//! whose prerequisite is not in the plan (already in sync) is simply satisfied.
//!
//! Destroy runs the reverse graph: every deploy rule turned around, plus the few rules
//! only deletion has.
//!
//! The executor starts every step whose needs are done, at most `parallelism` at once,
//! and never two steps with the same [`Serial`] key at once: API Gateway answers
//! concurrent writes to one API with ConflictException "concurrent modification", and
//! parallel AddPermission calls on one function conflict the same way.

use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeSet;
use std::future::Future;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Table,
    Role,
    /// An inline policy of a role.
    RolePolicy,
    LogGroup,
    Function,
    /// Waiting until the function is Active with no update in progress.
    FunctionReady,
    /// Publishing a function's version (or waiting until a published one is Active).
    Version,
    /// Deleting a version no kept release references.
    VersionCleanup,
    Api,
    Integration,
    IntegrationResponse,
    Route,
    RouteResponse,
    /// Deleting an orphan or duplicate integration.
    IntegrationCleanup,
    /// Deleting an extra or duplicate route.
    RouteCleanup,
    /// A statement of a function's (or a version's) resource policy.
    Permission,
    /// Removing a statement only an earlier release needed (`$LATEST`'s, once the stage
    /// invokes versions).
    PermissionCleanup,
    /// Narrowing or deleting an inline policy: what only the release being replaced may
    /// still use.
    RolePolicyCleanup,
    Deployment,
    Stage,
    /// Deleting a stage the stack does not define.
    StageCleanup,
    /// Deleting a deployment no stage serves.
    DeploymentCleanup,
    /// The `$connect` authorizer.
    Authorizer,
    /// Deleting an authorizer the stack does not define.
    AuthorizerCleanup,
    /// Deleting the function of a route (or authorizer) removed from wsconn.toml, its
    /// role (with its policies) and its log group; keyed by the function's name.
    FunctionCleanup,
    RoleCleanup,
    LogGroupCleanup,
    /// The API Gateway account's CloudWatch role (an account-wide setting).
    AccountRole,
    AccountSetting,
    /// `[domain]`: the ACM certificate wsconn requests (keyed by the domain's name), or
    /// deleting it (destroy; keyed by ARN).
    Certificate,
    /// Writing the certificate's validation record and waiting until it is ISSUED.
    CertificateValidation,
    /// Deleting a certificate the stack no longer uses.
    CertificateCleanup,
    /// The API Gateway custom domain name.
    DomainName,
    DomainNameCleanup,
    /// The mapping of the stage onto the domain.
    ApiMapping,
    ApiMappingCleanup,
    /// The domain's alias and ownership records in Route 53.
    DnsRecords,
    DnsRecordsCleanup,
}

/// One step's identity in the graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub kind: Kind,
    /// What the step belongs to, so that rules can link one route's or one function's
    /// steps: a route key (integration, route, their responses), a function name (the
    /// function, its role, its role's policies, its log group, its permissions, its
    /// version), a resource id for clean-ups; "" for singletons.
    pub key: String,
    /// Another step's key this one refers to, for [`Pair::Linked`] rules: the function a
    /// route's integration (or the authorizer) invokes. "" when none.
    pub link: String,
}

impl Node {
    pub fn new(kind: Kind, key: impl Into<String>) -> Node {
        Node {
            kind,
            key: key.into(),
            link: String::new(),
        }
    }
    pub fn one(kind: Kind) -> Node {
        Node::new(kind, "")
    }
    /// This node, referring to the step keyed `link` (a function's name).
    pub fn linked(mut self, link: impl Into<String>) -> Node {
        self.link = link.into();
        self
    }
}

/// Which planned steps of a rule's prerequisite kind a step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pair {
    /// Every one.
    Any,
    /// Those with the same key (a route's own integration).
    SameKey,
    /// Those whose key is the step's link (the version of the function an integration
    /// invokes).
    Linked,
}

impl Pair {
    /// Whether `step` waits for `needed` under this pairing.
    fn pairs(self, step: &Node, needed: &Node) -> bool {
        match self {
            Pair::Any => true,
            Pair::SameKey => needed.key == step.key,
            Pair::Linked => !step.link.is_empty() && needed.key == step.link,
        }
    }
}

/// Steps with the same key never run at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Serial {
    /// Writes to the stack's API Gateway API.
    Api,
    /// Writes to the functions' resource policies.
    FunctionPolicy,
    /// Route 53 change batches (one zone answers PriorRequestNotComplete to overlapping
    /// ones).
    Dns,
}

/// Which serial key a kind's steps take.
pub fn serial_of(kind: Kind) -> Option<Serial> {
    match kind {
        Kind::Api
        | Kind::Integration
        | Kind::IntegrationResponse
        | Kind::Route
        | Kind::RouteResponse
        | Kind::IntegrationCleanup
        | Kind::RouteCleanup
        | Kind::Deployment
        | Kind::Stage
        | Kind::StageCleanup
        | Kind::DeploymentCleanup
        | Kind::Authorizer
        | Kind::AuthorizerCleanup => Some(Serial::Api),
        Kind::Permission | Kind::PermissionCleanup => Some(Serial::FunctionPolicy),
        Kind::CertificateValidation | Kind::DnsRecords | Kind::DnsRecordsCleanup => {
            Some(Serial::Dns)
        }
        _ => None,
    }
}

/// `step` waits for every planned step matching `needs`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub step: (Kind, Option<&'static str>),
    pub needs: (Kind, Option<&'static str>),
    /// Which planned steps of the prerequisite's kind the step waits for.
    pub pair: Pair,
    /// The AWS rule that forces the edge.
    pub why: &'static str,
}

const fn rule(
    step: (Kind, Option<&'static str>),
    needs: (Kind, Option<&'static str>),
    pair: Pair,
    why: &'static str,
) -> Rule {
    Rule {
        step,
        needs,
        pair,
        why,
    }
}

use Kind::*;
use Pair::*;

/// The deploy graph. The table, the roles, the log groups and the API have no
/// prerequisite: ARNs are derived from names, so nothing waits for IAM or Lambda unless
/// AWS itself requires it, and every role is created in the first wave.
pub const DEPLOY_RULES: &[Rule] = &[
    rule(
        (Function, None),
        (Role, None),
        SameKey,
        "CreateFunction answers InvalidParameterValueException until its execution role exists and Lambda can assume it",
    ),
    rule(
        (RolePolicy, None),
        (Role, None),
        SameKey,
        "PutRolePolicy answers NoSuchEntity until the role exists",
    ),
    rule(
        (FunctionReady, None),
        (Function, None),
        SameKey,
        "a function becomes Active only after it is created or updated",
    ),
    rule(
        (Permission, None),
        (Function, None),
        SameKey,
        "AddPermission answers ResourceNotFoundException until the function exists",
    ),
    rule(
        (Version, None),
        (FunctionReady, None),
        SameKey,
        "PublishVersion publishes $LATEST, whose last update must be Successful (ResourceConflictException while it is in progress)",
    ),
    rule(
        (Version, None),
        (Function, None),
        SameKey,
        "PublishVersion publishes what $LATEST holds: the code and configuration this deploy puts there",
    ),
    rule(
        (Permission, None),
        (Version, None),
        SameKey,
        "AddPermission with a Qualifier answers ResourceNotFoundException until the version exists",
    ),
    rule(
        (Integration, None),
        (Version, None),
        Linked,
        "a Lambda integration's URI names the version it invokes",
    ),
    rule(
        (Permission, None),
        (Api, None),
        Any,
        "the statement's SourceArn names the API's id",
    ),
    rule(
        (Integration, None),
        (Api, None),
        Any,
        "an integration is created inside the API and needs its id",
    ),
    rule(
        (IntegrationResponse, None),
        (Integration, None),
        SameKey,
        "an integration response is created inside its integration and needs its id",
    ),
    rule(
        (Route, None),
        (Api, None),
        Any,
        "a route is created inside the API and needs its id",
    ),
    rule(
        (Route, None),
        (Integration, None),
        SameKey,
        "a route's target is its integration's id",
    ),
    rule(
        (RouteResponse, None),
        (Route, None),
        SameKey,
        "a route response is created inside its route and needs its id",
    ),
    rule(
        (IntegrationCleanup, None),
        (Route, None),
        Any,
        "API Gateway refuses to delete an integration that a route still targets",
    ),
    rule(
        (Deployment, None),
        (Api, None),
        Any,
        "a deployment is made inside the API",
    ),
    rule(
        (Deployment, None),
        (Integration, None),
        Any,
        "a deployment snapshots the integrations as they are when it is made",
    ),
    rule(
        (Deployment, None),
        (IntegrationResponse, None),
        Any,
        "a deployment snapshots the integration responses as they are when it is made",
    ),
    rule(
        (Deployment, None),
        (Route, None),
        Any,
        "a deployment snapshots the routes as they are when it is made",
    ),
    rule(
        (Deployment, None),
        (RouteResponse, None),
        Any,
        "a deployment snapshots the route responses as they are when it is made",
    ),
    rule(
        (Deployment, None),
        (RouteCleanup, None),
        Any,
        "a route deleted after the deployment is made would stay live in it",
    ),
    rule(
        (Stage, None),
        (Deployment, None),
        Any,
        "the stage points at the new deployment's id",
    ),
    rule(
        (Stage, None),
        (Api, None),
        Any,
        "a stage is created inside the API",
    ),
    rule(
        (DeploymentCleanup, None),
        (Stage, None),
        Any,
        "a deployment a stage still points at cannot be deleted (BadRequestException)",
    ),
    rule(
        (DeploymentCleanup, None),
        (StageCleanup, None),
        Any,
        "a deployment a stage still points at cannot be deleted (BadRequestException)",
    ),
    rule(
        (CertificateValidation, None),
        (Certificate, None),
        Any,
        "the validation record is the one ACM names for the requested certificate",
    ),
    rule(
        (DomainName, None),
        (Certificate, None),
        Any,
        "CreateDomainName names the certificate's ARN",
    ),
    rule(
        (DomainName, None),
        (CertificateValidation, None),
        Any,
        "CreateDomainName answers BadRequestException until the certificate is ISSUED",
    ),
    rule(
        (ApiMapping, None),
        (DomainName, None),
        Any,
        "a mapping is made on the domain name",
    ),
    rule(
        (ApiMapping, None),
        (Api, None),
        Any,
        "a mapping names the API's id",
    ),
    rule(
        (ApiMapping, None),
        (Stage, None),
        Any,
        "CreateApiMapping answers NotFoundException \"Invalid stage identifier\" until the stage exists",
    ),
    rule(
        (DnsRecords, None),
        (DomainName, None),
        Any,
        "the alias records name the domain's regional target and its hosted zone, which CreateDomainName returns",
    ),
];

/// Rules of deploy that destroy does not reverse: they order creates by what a created
/// resource names, and deleting in the reverse order would only lengthen destroy; and
/// they order what is not versioned (roles, grants, the table) around the stage's
/// switch, the one call that changes what clients get: what a new release needs is in
/// place before it, and what only the release it replaces used goes after it.
pub const DEPLOY_ONLY_RULES: &[Rule] = &[
    rule(
        (Authorizer, None),
        (Version, None),
        Linked,
        "the authorizer's URI names the version it invokes",
    ),
    rule(
        (Stage, None),
        (Permission, None),
        Any,
        "after the switch API Gateway invokes the new versions: each one's resource policy must allow it first",
    ),
    rule(
        (Stage, None),
        (RolePolicy, None),
        Any,
        "a grant a new version needs is in place before clients reach that version",
    ),
    rule(
        (Stage, None),
        (Table, None),
        Any,
        "the new templates write items as the table is now: its settings (TTL) change before clients reach them",
    ),
    rule(
        (PermissionCleanup, None),
        (Stage, None),
        Any,
        "the release being replaced invokes $LATEST until the stage has switched",
    ),
    rule(
        (RolePolicyCleanup, None),
        (Stage, None),
        Any,
        "a grant only the release being replaced uses is removed after the stage has switched",
    ),
    rule(
        (VersionCleanup, None),
        (Stage, None),
        Any,
        "a version the live release invokes is deleted only after the stage has switched",
    ),
    rule(
        (FunctionCleanup, None),
        (Stage, None),
        Any,
        "the live release invokes a removed route's function until the stage has switched",
    ),
    rule(
        (Function, None),
        (Api, None),
        Any,
        "a handler's CONNECTIONS_URL names the API's id",
    ),
    rule(
        (RolePolicy, None),
        (Api, None),
        Any,
        "a handler's manage-connections policy names the API's id",
    ),
    rule(
        (Authorizer, None),
        (Api, None),
        Any,
        "an authorizer is created inside the API and needs its id",
    ),
    rule(
        (Route, None),
        (Authorizer, None),
        Any,
        "the $connect route names the authorizer's id",
    ),
    rule(
        (Permission, None),
        (Authorizer, None),
        Any,
        "the authorizer's permission is scoped by SourceArn to the authorizer's id",
    ),
    rule(
        (Deployment, None),
        (Authorizer, None),
        Any,
        "a deployment snapshots the authorizer as it is when it is made",
    ),
    rule(
        (AuthorizerCleanup, None),
        (Route, None),
        Any,
        "API Gateway refuses to delete an authorizer that a route still uses",
    ),
    rule(
        (Deployment, None),
        (AuthorizerCleanup, None),
        Any,
        "an authorizer deleted after the deployment is made would stay live in it",
    ),
    rule(
        (FunctionCleanup, None),
        (RouteCleanup, None),
        Any,
        "a removed route stops invoking its function before the function goes",
    ),
    rule(
        (FunctionCleanup, None),
        (AuthorizerCleanup, None),
        Any,
        "a removed authorizer stops invoking its function before the function goes",
    ),
    rule(
        (RoleCleanup, None),
        (FunctionCleanup, None),
        SameKey,
        "a function keeps working until it is deleted, so its role goes after it",
    ),
    rule(
        (LogGroupCleanup, None),
        (FunctionCleanup, None),
        SameKey,
        "an invocation still in flight recreates /aws/lambda/<name> after the log group is deleted",
    ),
    rule(
        (AccountSetting, None),
        (AccountRole, None),
        Any,
        "API Gateway checks that it can assume the role it is given (BadRequestException until IAM propagates)",
    ),
    rule(
        (Stage, None),
        (AccountSetting, None),
        Any,
        "a stage with logging answers BadRequestException \"CloudWatch Logs role ARN must be set in account settings\" until it is",
    ),
    rule(
        (Stage, None),
        (LogGroup, None),
        Any,
        "the access log's destination is the log group's ARN",
    ),
    rule(
        (CertificateCleanup, None),
        (DomainName, None),
        Any,
        "ACM refuses to delete a certificate a domain name uses (ResourceInUseException) until the domain has switched",
    ),
    rule(
        (CertificateCleanup, None),
        (DomainNameCleanup, None),
        Any,
        "ACM refuses to delete a certificate a domain name uses (ResourceInUseException)",
    ),
    rule(
        (DnsRecordsCleanup, None),
        (ApiMappingCleanup, None),
        Any,
        "a removed domain goes in AWS's order: mapping, records, domain, certificate",
    ),
    rule(
        (DomainNameCleanup, None),
        (DnsRecordsCleanup, None),
        Any,
        "records that alias a domain go before it",
    ),
    rule(
        (DomainNameCleanup, None),
        (ApiMappingCleanup, None),
        Any,
        "a domain's mappings go before it",
    ),
];

/// The deploy graph's rules: [`DEPLOY_RULES`] and [`DEPLOY_ONLY_RULES`].
pub fn deploy_rules() -> Vec<Rule> {
    DEPLOY_RULES
        .iter()
        .chain(DEPLOY_ONLY_RULES)
        .copied()
        .collect()
}

/// Rules only deletion has (on top of the reversed deploy rules, which already delete a
/// role's policies before the role: DeleteRole answers DeleteConflict until they are).
pub const DESTROY_ONLY_RULES: &[Rule] = &[
    rule(
        (LogGroup, None),
        (Function, None),
        SameKey,
        "an invocation still in flight recreates /aws/lambda/<name> after the log group is deleted",
    ),
    rule(
        (DnsRecords, None),
        (ApiMapping, None),
        Any,
        "the domain goes in order: mapping, records, domain, then the certificate",
    ),
];

/// The destroy graph: every deploy rule reversed, plus [`DESTROY_ONLY_RULES`].
pub fn destroy_rules() -> Vec<Rule> {
    DEPLOY_RULES
        .iter()
        .map(|r| Rule {
            step: r.needs,
            needs: r.step,
            ..*r
        })
        .chain(DESTROY_ONLY_RULES.iter().copied())
        .collect()
}

fn matches(pattern: (Kind, Option<&str>), node: &Node) -> bool {
    pattern.0 == node.kind && pattern.1.is_none_or(|k| k == node.key)
}

/// Each step's prerequisites, as indices with the rule's reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub needs: Vec<Vec<(usize, &'static str)>>,
}

/// Builds the edges for `nodes` from `rules`, and refuses a cycle.
pub fn build(nodes: &[Node], rules: &[Rule]) -> Result<Graph, String> {
    let needs: Vec<Vec<(usize, &'static str)>> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut v: Vec<(usize, &'static str)> = Vec::new();
            for r in rules.iter().filter(|r| matches(r.step, n)) {
                for (j, m) in nodes.iter().enumerate() {
                    if j != i
                        && matches(r.needs, m)
                        && r.pair.pairs(n, m)
                        && !v.iter().any(|(k, _)| *k == j)
                    {
                        v.push((j, r.why));
                    }
                }
            }
            v
        })
        .collect();
    let g = Graph { needs };
    if let Some(i) = g.cycle() {
        return Err(format!(
            "the step graph has a cycle through {:?} {:?}",
            nodes[i].kind, nodes[i].key
        ));
    }
    Ok(g)
}

impl Graph {
    pub fn len(&self) -> usize {
        self.needs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.needs.is_empty()
    }

    /// A step on a cycle, if there is one (Kahn's algorithm).
    fn cycle(&self) -> Option<usize> {
        let n = self.len();
        let mut indegree: Vec<usize> = self.needs.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut seen = 0;
        while let Some(j) = ready.pop() {
            seen += 1;
            for (i, needs) in self.needs.iter().enumerate() {
                if needs.iter().any(|(k, _)| *k == j) {
                    indegree[i] -= 1;
                    if indegree[i] == 0 {
                        ready.push(i);
                    }
                }
            }
        }
        (seen < n).then(|| (0..n).find(|&i| indegree[i] > 0).unwrap_or(0))
    }

    /// The number of steps on the longest chain (1 for independent steps).
    #[cfg(test)]
    pub fn depth(&self) -> usize {
        let n = self.len();
        let mut memo = vec![0usize; n];
        fn go(g: &Graph, i: usize, memo: &mut [usize]) -> usize {
            if memo[i] == 0 {
                memo[i] = 1 + g.needs[i]
                    .iter()
                    .map(|(j, _)| go(g, *j, memo))
                    .max()
                    .unwrap_or(0);
            }
            memo[i]
        }
        (0..n).map(|i| go(self, i, &mut memo)).max().unwrap_or(0)
    }
}

/// What the executor reports as steps start and end.
pub trait Events: Sync {
    fn started(&self, step: usize);
    fn finished(&self, step: usize, ok: bool);
}

/// No reporting (tests).
#[cfg(test)]
pub struct Silent;
#[cfg(test)]
impl Events for Silent {
    fn started(&self, _: usize) {}
    fn finished(&self, _: usize, _: bool) {}
}

/// Runs the graph: every step whose needs are done starts, in plan order, while fewer
/// than `parallelism` run and its serial key is free. After the first failure no new
/// step starts; running ones finish. Returns every failure, by step.
pub async fn execute<E, F, Fut>(
    graph: &Graph,
    serial: &[Option<Serial>],
    parallelism: usize,
    events: &dyn Events,
    run: F,
) -> Result<(), Vec<(usize, E)>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Waiting,
        Running,
        Done,
        Failed,
    }
    let n = graph.len();
    let parallelism = parallelism.max(1);
    let mut state = vec![State::Waiting; n];
    let mut busy: BTreeSet<Serial> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    let mut errors = Vec::new();
    loop {
        if errors.is_empty() {
            for i in 0..n {
                if running.len() >= parallelism {
                    break;
                }
                let ready = state[i] == State::Waiting
                    && graph.needs[i].iter().all(|(j, _)| state[*j] == State::Done)
                    && serial[i].is_none_or(|s| !busy.contains(&s));
                if ready {
                    state[i] = State::Running;
                    if let Some(s) = serial[i] {
                        busy.insert(s);
                    }
                    events.started(i);
                    let fut = run(i);
                    running.push(async move { (i, fut.await) });
                }
            }
        }
        let Some((i, result)) = running.next().await else {
            break;
        };
        if let Some(s) = serial[i] {
            busy.remove(&s);
        }
        events.finished(i, result.is_ok());
        match result {
            Ok(()) => state[i] = State::Done,
            Err(e) => {
                state[i] = State::Failed;
                errors.push((i, e));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Every kind a deploy can plan, with the keys a fresh stack and a repair use.
    fn deploy_nodes() -> Vec<Node> {
        let mut v = vec![
            Node::one(Table),
            Node::new(Role, "s-apigw-dynamodb"),
            Node::new(Role, "s-default"),
            Node::new(RolePolicy, "s-apigw-dynamodb"),
            Node::new(RolePolicy, "s-default"),
            Node::new(LogGroup, "s-default"),
            Node::new(Function, "s-default"),
            Node::new(FunctionReady, "s-default"),
            Node::new(Version, "s-default"),
            Node::new(Version, "s-authorizer"),
            Node::one(Api),
        ];
        for k in ["$connect", "$disconnect"] {
            v.push(Node::new(Integration, k));
        }
        v.push(Node::new(Integration, "$default").linked("s-default"));
        for k in ["$connect", "$disconnect"] {
            v.push(Node::new(IntegrationResponse, k));
        }
        for k in ["$connect", "$disconnect", "$default"] {
            v.push(Node::new(Route, k));
            v.push(Node::new(RouteResponse, k));
        }
        v.push(Node::new(IntegrationCleanup, "orphan1"));
        v.push(Node::new(RouteCleanup, "route9"));
        v.push(Node::new(Permission, "s-default"));
        v.push(Node::one(Deployment));
        v.push(Node::one(Stage));
        v.push(Node::new(StageCleanup, "old"));
        v.push(Node::new(DeploymentCleanup, "d1"));
        v.push(Node::one(Authorizer).linked("s-authorizer"));
        v.push(Node::new(AuthorizerCleanup, "a9"));
        v.push(Node::new(PermissionCleanup, "s-default"));
        v.push(Node::new(RolePolicyCleanup, "s-default"));
        v.push(Node::new(VersionCleanup, "s-default:1"));
        v.push(Node::new(FunctionCleanup, "s-old"));
        v.push(Node::new(RoleCleanup, "s-old"));
        v.push(Node::new(LogGroupCleanup, "s-old"));
        v.push(Node::one(AccountRole));
        v.push(Node::one(AccountSetting));
        v
    }

    fn destroy_nodes() -> Vec<Node> {
        vec![
            Node::one(Api),
            Node::new(Function, "s-default"),
            Node::new(LogGroup, "s-default"),
            Node::new(RolePolicy, "s-apigw-dynamodb"),
            Node::new(RolePolicy, "s-default"),
            Node::new(Role, "s-apigw-dynamodb"),
            Node::new(Role, "s-default"),
            Node::one(Table),
        ]
    }

    fn needs_of(nodes: &[Node], g: &Graph, node: &Node) -> Vec<Node> {
        let i = nodes.iter().position(|n| n == node).unwrap();
        let mut v: Vec<Node> = g.needs[i].iter().map(|(j, _)| nodes[*j].clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn the_rule_tables_have_no_cycle_for_any_plan() {
        let nodes = deploy_nodes();
        let g = build(&nodes, &deploy_rules()).expect("deploy graph is acyclic");
        // Every subset of kinds is a possible plan (in-sync kinds drop out): check a
        // sliding family of subsets as well as the whole.
        for skip in 0..nodes.len() {
            let sub: Vec<Node> = nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| i % (skip + 2) != 0)
                .map(|(_, n)| n.clone())
                .collect();
            build(&sub, &deploy_rules()).expect("subset acyclic");
        }
        build(&destroy_nodes(), &destroy_rules()).expect("destroy graph is acyclic");
        assert!(g.depth() >= 5, "the API chain is deep: {}", g.depth());
    }

    #[test]
    fn a_cycle_is_refused() {
        let nodes = vec![Node::one(Api), Node::one(Deployment)];
        let rules = [
            rule((Api, None), (Deployment, None), Any, "a"),
            rule((Deployment, None), (Api, None), Any, "b"),
        ];
        let e = build(&nodes, &rules).unwrap_err();
        assert!(e.contains("cycle"), "{e}");
    }

    #[test]
    fn edges_follow_the_aws_rules() {
        let nodes = deploy_nodes();
        let g = build(&nodes, &deploy_rules()).unwrap();
        // Independent roots: nothing waits for IAM unless Lambda requires it, and every
        // role is created in the first wave.
        for root in [
            Node::one(Table),
            Node::new(Role, "s-apigw-dynamodb"),
            Node::new(Role, "s-default"),
            Node::new(LogGroup, "s-default"),
            Node::one(Api),
        ] {
            assert!(needs_of(&nodes, &g, &root).is_empty(), "{root:?}");
        }
        // A function waits for its own role, and for the API whose id its
        // CONNECTIONS_URL holds (one call, made beside the roles); so do the policies.
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(Function, "s-default")),
            [Node::new(Role, "s-default"), Node::one(Api)]
        );
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(RolePolicy, "s-apigw-dynamodb")),
            [Node::new(Role, "s-apigw-dynamodb"), Node::one(Api)]
        );
        // The authorizer before $connect and the permission that names it; a removed
        // route's function after its route, its role and log group after the function.
        assert_eq!(
            needs_of(&nodes, &g, &Node::one(Authorizer).linked("s-authorizer")),
            [Node::new(Version, "s-authorizer"), Node::one(Api)]
        );
        assert!(
            needs_of(&nodes, &g, &Node::new(Route, "$default"))
                .contains(&Node::one(Authorizer).linked("s-authorizer"))
        );
        assert!(
            needs_of(&nodes, &g, &Node::new(AuthorizerCleanup, "a9"))
                .contains(&Node::new(Route, "$connect"))
        );
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(FunctionCleanup, "s-old")),
            [
                Node::new(RouteCleanup, "route9"),
                Node::one(Stage),
                Node::new(AuthorizerCleanup, "a9")
            ]
        );
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(RoleCleanup, "s-old")),
            [Node::new(FunctionCleanup, "s-old")]
        );
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(LogGroupCleanup, "s-old")),
            [Node::new(FunctionCleanup, "s-old")]
        );
        assert_eq!(
            needs_of(&nodes, &g, &Node::one(AccountSetting)),
            [Node::one(AccountRole)]
        );
        assert!(needs_of(&nodes, &g, &Node::one(Stage)).contains(&Node::one(AccountSetting)));
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(Route, "$connect")),
            [
                Node::one(Api),
                Node::new(Integration, "$connect"),
                Node::one(Authorizer).linked("s-authorizer")
            ]
        );
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(RouteResponse, "$connect")),
            [Node::new(Route, "$connect")]
        );
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(IntegrationResponse, "$disconnect")),
            [Node::new(Integration, "$disconnect")]
        );
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(Permission, "s-default")),
            [
                Node::new(Function, "s-default"),
                Node::new(Version, "s-default"),
                Node::one(Api),
                Node::one(Authorizer).linked("s-authorizer")
            ]
        );
        let dep = needs_of(&nodes, &g, &Node::one(Deployment));
        assert!(dep.contains(&Node::new(RouteCleanup, "route9")));
        assert_eq!(dep.iter().filter(|n| n.kind == Route).count(), 3);
        assert_eq!(dep.iter().filter(|n| n.kind == RouteResponse).count(), 3);
        assert_eq!(
            dep.iter().filter(|n| n.kind == IntegrationResponse).count(),
            2
        );
        // The reasons are the AWS rules, one line each.
        for needs in &g.needs {
            for (_, why) in needs {
                assert!(!why.is_empty() && !why.contains('\n'));
            }
        }
    }

    #[test]
    fn the_switch_is_ordered_around_what_is_not_versioned() {
        let nodes = deploy_nodes();
        let g = build(&nodes, &deploy_rules()).unwrap();
        // A version is published from $LATEST once it is ready; only the integration
        // of the function it serves waits for it.
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(Version, "s-default")),
            [
                Node::new(Function, "s-default"),
                Node::new(FunctionReady, "s-default")
            ]
        );
        assert!(
            needs_of(
                &nodes,
                &g,
                &Node::new(Integration, "$default").linked("s-default")
            )
            .contains(&Node::new(Version, "s-default"))
        );
        assert!(
            !needs_of(&nodes, &g, &Node::new(Integration, "$connect"))
                .iter()
                .any(|n| n.kind == Version)
        );
        // Before the switch: grants, the table, every new version's permission.
        let stage = needs_of(&nodes, &g, &Node::one(Stage));
        for before in [
            Node::new(Permission, "s-default"),
            Node::new(RolePolicy, "s-default"),
            Node::new(RolePolicy, "s-apigw-dynamodb"),
            Node::one(Table),
            Node::one(Deployment),
        ] {
            assert!(stage.contains(&before), "{before:?} not before the switch");
        }
        // After it: what only the replaced release used.
        for after in [
            Node::new(PermissionCleanup, "s-default"),
            Node::new(RolePolicyCleanup, "s-default"),
            Node::new(VersionCleanup, "s-default:1"),
            Node::new(FunctionCleanup, "s-old"),
            Node::new(DeploymentCleanup, "d1"),
        ] {
            assert!(
                needs_of(&nodes, &g, &after).contains(&Node::one(Stage)),
                "{after:?} not after the switch"
            );
        }
    }

    #[test]
    fn destroy_reverses_the_deploy_graph() {
        let nodes = destroy_nodes();
        let g = build(&nodes, &destroy_rules()).unwrap();
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(Role, "s-default")),
            [
                Node::new(RolePolicy, "s-default"),
                Node::new(Function, "s-default")
            ]
        );
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(Role, "s-apigw-dynamodb")),
            [Node::new(RolePolicy, "s-apigw-dynamodb")]
        );
        assert_eq!(
            needs_of(&nodes, &g, &Node::new(LogGroup, "s-default")),
            [Node::new(Function, "s-default")]
        );
        assert!(needs_of(&nodes, &g, &Node::one(Api)).is_empty());
        assert!(needs_of(&nodes, &g, &Node::one(Table)).is_empty());
        // Three deletes deep: policies → role, function → role / log group.
        assert_eq!(g.depth(), 2);
    }

    /// Runs `nodes` with fake steps that take `ms` each and records (start, end) times.
    async fn run_fake(nodes: &[Node], rules: &[Rule], parallelism: usize) -> Vec<(u128, u128)> {
        let g = build(nodes, rules).unwrap();
        let serial: Vec<_> = nodes.iter().map(|n| serial_of(n.kind)).collect();
        let t0 = std::time::Instant::now();
        let log = Mutex::new(vec![(0u128, 0u128); nodes.len()]);
        execute::<(), _, _>(&g, &serial, parallelism, &Silent, |i| {
            let log = &log;
            async move {
                let start = t0.elapsed().as_micros();
                tokio::time::sleep(Duration::from_millis(5)).await;
                log.lock().unwrap()[i] = (start, t0.elapsed().as_micros());
                Ok(())
            }
        })
        .await
        .unwrap();
        log.into_inner().unwrap()
    }

    #[tokio::test]
    async fn every_need_is_done_before_a_step_starts_and_api_writes_never_overlap() {
        let nodes = deploy_nodes();
        let g = build(&nodes, &deploy_rules()).unwrap();
        for parallelism in [1, 2, 8] {
            let times = run_fake(&nodes, &deploy_rules(), parallelism).await;
            for (i, needs) in g.needs.iter().enumerate() {
                for (j, _) in needs {
                    assert!(
                        times[*j].1 <= times[i].0,
                        "{:?} started before {:?} ended",
                        nodes[i],
                        nodes[*j]
                    );
                }
            }
            let api: Vec<(u128, u128)> = nodes
                .iter()
                .zip(&times)
                .filter(|(n, _)| serial_of(n.kind) == Some(Serial::Api))
                .map(|(_, t)| *t)
                .collect();
            for (a, x) in api.iter().enumerate() {
                for y in &api[a + 1..] {
                    assert!(x.1 <= y.0 || y.1 <= x.0, "API writes overlap: {x:?} {y:?}");
                }
            }
            // Never more than `parallelism` at once.
            for t in &times {
                let at_once = times.iter().filter(|u| u.0 <= t.0 && t.0 < u.1).count();
                assert!(at_once <= parallelism, "{at_once} > {parallelism}");
            }
        }
    }

    #[tokio::test]
    async fn independent_roots_start_together() {
        // Each root's step waits until every root has started: run one after another,
        // the first would wait forever, and the deadline fails the test.
        let nodes = deploy_nodes();
        let g = build(&nodes, &deploy_rules()).unwrap();
        let serial: Vec<_> = nodes.iter().map(|n| serial_of(n.kind)).collect();
        let roots = [0, 1, 2, 5, 10]; // table, roles, log group, API
        let barrier = tokio::sync::Barrier::new(roots.len());
        let all = execute::<(), _, _>(&g, &serial, 8, &Silent, |i| {
            let barrier = &barrier;
            async move {
                if roots.contains(&i) {
                    barrier.wait().await;
                }
                Ok(())
            }
        });
        tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .expect("roots ran one after another")
            .unwrap();
    }

    #[tokio::test]
    async fn a_failure_stops_new_steps_and_dependents_never_start() {
        let nodes = deploy_nodes();
        let g = build(&nodes, &deploy_rules()).unwrap();
        let serial: Vec<_> = nodes.iter().map(|n| serial_of(n.kind)).collect();
        let started = Mutex::new(Vec::new());
        let api = nodes.iter().position(|n| n.kind == Api).unwrap();
        let r = execute(&g, &serial, 1, &Silent, |i| {
            started.lock().unwrap().push(i);
            async move { if i == api { Err("boom") } else { Ok(()) } }
        })
        .await;
        let errors = r.unwrap_err();
        assert_eq!(errors, vec![(api, "boom")]);
        let started = started.into_inner().unwrap();
        assert!(!started.iter().any(|&i| nodes[i].kind == Integration));
        assert_eq!(
            *started.last().unwrap(),
            api,
            "nothing started after the failure"
        );
    }
}
