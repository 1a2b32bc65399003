//! The one interface every resource kind implements, and the values it works with.
//!
//! A kind (`resources/table.rs`, `resources/route.rs`…) has the same verbs as every other:
//! - `read`: every live instance the stack may own, keyed by its natural key (a table
//!   name, a route key, a function name…); an instance that does not exist is absent
//!   (not-found is resolved there, once);
//! - `plan`: the steps that make live match desired, built from the kind's pure `diff`
//!   of one desired instance against one live one (no AWS call);
//! - the steps' operations ([`Op`](super::step::Op)), which apply the changes.
//!
//! The engine holds a list of kinds ([`DynResource`]) and calls the same verbs on each: it
//! names none of them. What kinds share while reading (the API's id, its route listing)
//! goes through [`Reader::shared`]; what they share while planning (is the API new? which
//! integrations are kept?) goes through [`Planner`]. Live instances are kept in the
//! [`Snapshot`], a map typed by kind, so a kind reads another's instances without this
//! module knowing any kind.

use super::graph::{self, Node};
use super::plan::ResourceChange;
use super::step::{Op, Step};
use crate::aws::{Aws, AwsEnv};
use crate::error::Result;
use crate::stack::Stack;
use futures::future::BoxFuture;
use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

/// A kind's live instances by natural key.
pub type Instances<L> = BTreeMap<String, L>;

/// Function name → the version a release serves (`None`: the plan publishes it, and
/// its number is known only then).
pub type Versions = BTreeMap<String, Option<String>>;

/// Where a kind's instances live, which decides two things for the engine: destroy does
/// not read what is inside the API (deleting the API deletes it), and a NotFoundException
/// from inside a listed API means the API itself is gone (listings lag deletes), so the
/// API and everything inside it are then absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Account,
    Api,
    InsideApi,
}

/// One resource kind.
pub trait Resource: Send + Sync + 'static {
    /// One live instance, as read.
    type Live: Clone + Debug + Send + Sync + 'static;
    /// The kind's name, for messages.
    const NAME: &'static str;
    const PLACE: Place = Place::Account;
    /// Every live instance the stack may own, keyed by natural key. Reads start at once;
    /// what another read must answer first (the API's id) is awaited through
    /// [`Reader::shared`], so the phase takes the least number of round trips.
    fn read<'a>(rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Instances<Self::Live>>>;
    /// Adds the steps that make the live instances match the desired ones. Pure. Fails
    /// before anything is changed when a resource with a derived name is not the stack's.
    fn plan(p: &mut Planner<'_>) -> Result<()>;
    /// Adds the steps that delete every instance the stack owns. Pure.
    fn plan_destroy(p: &mut Planner<'_>) -> Result<()>;
}

/// A kind with its types erased, so that one list holds every kind.
pub trait DynResource: Sync {
    fn name(&self) -> &'static str;
    fn place(&self) -> Place;
    /// This kind with no live instance (what it is when the API vanished).
    fn empty(&self) -> Part;
    fn read<'a>(&'a self, rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Part>>;
    fn plan(&self, p: &mut Planner<'_>) -> Result<()>;
    fn plan_destroy(&self, p: &mut Planner<'_>) -> Result<()>;
}

/// The engine's handle on kind `R`: `&Of::<table::Table>::KIND`.
pub struct Of<R>(PhantomData<fn() -> R>);

impl<R: Resource> Of<R> {
    pub const KIND: Of<R> = Of(PhantomData);
}

impl<R: Resource> DynResource for Of<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }
    fn place(&self) -> Place {
        R::PLACE
    }
    fn empty(&self) -> Part {
        Part {
            kind: TypeId::of::<R>(),
            live: Box::new(Instances::<R::Live>::new()),
        }
    }
    fn read<'a>(&'a self, rd: &'a Reader<'a>) -> BoxFuture<'a, Result<Part>> {
        Box::pin(async move {
            let skip = rd.scope == Scope::Destroy && R::PLACE == Place::InsideApi;
            let live = if skip {
                Instances::new()
            } else {
                R::read(rd).await?
            };
            Ok(Part {
                kind: TypeId::of::<R>(),
                live: Box::new(live),
            })
        })
    }
    fn plan(&self, p: &mut Planner<'_>) -> Result<()> {
        R::plan(p)
    }
    fn plan_destroy(&self, p: &mut Planner<'_>) -> Result<()> {
        R::plan_destroy(p)
    }
}

/// One kind's live instances on their way into the snapshot.
pub struct Part {
    kind: TypeId,
    live: Box<dyn Any + Send + Sync>,
}

/// What a read phase found: the account, and every kind's live instances.
#[derive(Debug)]
pub struct Snapshot {
    pub env: AwsEnv,
    parts: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

impl Snapshot {
    pub fn new(env: AwsEnv, parts: Vec<Part>) -> Snapshot {
        Snapshot {
            env,
            parts: parts.into_iter().map(|p| (p.kind, p.live)).collect(),
        }
    }

    /// Kind `R`'s live instances (none when it was not read).
    pub fn live<R: Resource>(&self) -> Cow<'_, Instances<R::Live>> {
        match self
            .parts
            .get(&TypeId::of::<R>())
            .and_then(|p| p.downcast_ref::<Instances<R::Live>>())
        {
            Some(live) => Cow::Borrowed(live),
            None => Cow::Owned(Instances::new()),
        }
    }

    /// One live instance of kind `R`.
    pub fn get<R: Resource>(&self, key: &str) -> Option<R::Live> {
        self.live::<R>().get(key).cloned()
    }

    /// Replaces kind `R`'s instances (tests build snapshots this way).
    pub fn set<R: Resource>(&mut self, live: Instances<R::Live>) {
        self.parts.insert(TypeId::of::<R>(), Box::new(live));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything deploy and diff compare.
    Full,
    /// What destroy needs: deleting the API deletes its children, so they are not read.
    Destroy,
}

/// The reads kinds share, each a `tokio::sync::OnceCell<T>` under its name and type.
type Shared = HashMap<(&'static str, TypeId), Arc<dyn Any + Send + Sync>>;

/// What every kind reads through: the clients, the desired stack (to know which names
/// to read), the scope, and the reads kinds share.
pub struct Reader<'a> {
    pub aws: &'a Aws,
    pub stack: &'a Stack,
    pub scope: Scope,
    shared: Mutex<Shared>,
    api_vanished: std::sync::atomic::AtomicBool,
}

impl<'a> Reader<'a> {
    pub fn new(aws: &'a Aws, stack: &'a Stack, scope: Scope) -> Reader<'a> {
        Reader {
            aws,
            stack,
            scope,
            shared: Mutex::new(HashMap::new()),
            api_vanished: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A read inside the listed API answered NotFoundException: the API was deleted
    /// after it was listed.
    pub fn api_vanished(&self) {
        self.api_vanished
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_api_vanished(&self) -> bool {
        self.api_vanished.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A read several kinds need (the stack's API, the API's route listing): made once,
    /// by whichever kind asks first, while the others wait for its answer. A failed read
    /// is not remembered (the phase ends with its error anyway).
    pub async fn shared<T, F, Fut>(&self, key: &'static str, read: F) -> Result<T>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let cell = {
            let mut map = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            map.entry((key, TypeId::of::<T>()))
                .or_insert_with(|| Arc::new(tokio::sync::OnceCell::<T>::new()))
                .clone()
        };
        // The entry was made for exactly this (key, T), so the downcast cannot fail.
        match cell.downcast::<tokio::sync::OnceCell<T>>() {
            Ok(cell) => cell.get_or_try_init(read).await.cloned(),
            Err(_) => read().await,
        }
    }
}

/// Which live integration and route each route key keeps (the others are duplicates or
/// orphans), by route key: ids that never change during a plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wiring {
    pub integrations: BTreeMap<String, String>,
    pub routes: BTreeMap<String, String>,
}

/// What planning works with: the desired stack, the account, what was read, and the
/// steps planned so far. Kinds are planned in the engine's order, so a kind may look at
/// what the kinds before it decided (the stage looks for new routes).
pub struct Planner<'a> {
    pub stack: &'a Stack,
    pub env: &'a AwsEnv,
    pub snap: &'a Snapshot,
    /// Set by the API kind when this plan creates or replaces the API: its children are
    /// then planned as new, whatever was read under the old one.
    pub fresh_api: bool,
    wiring: Wiring,
    /// Set by the version kind: the version each function serves in the release this
    /// plan makes (planned before the kinds that name versions).
    pub versions: Versions,
    /// Set by the deployment kind: the existing deployment the stage should serve after
    /// this plan (`None` when the plan makes one).
    pub release: Option<String>,
    /// Set by the deployment kind: the manifest of the release the stage serves now
    /// (`None` without a stage, or a deployment wsconn did not make).
    pub serving: Option<crate::deploy::release::Manifest>,
    /// Set by the certificate kind: the ARN the custom domain should use (`None` while
    /// the plan requests the certificate, or without `[domain]`).
    pub certificate: Option<String>,
    pub steps: Vec<Step>,
}

impl<'a> Planner<'a> {
    pub fn new(
        stack: &'a Stack,
        env: &'a AwsEnv,
        snap: &'a Snapshot,
        wiring: Wiring,
    ) -> Planner<'a> {
        Planner {
            stack,
            env,
            snap,
            fresh_api: false,
            wiring,
            versions: Versions::new(),
            release: None,
            certificate: None,
            serving: None,
            steps: Vec::new(),
        }
    }

    /// The kept integrations and routes of the live API (none when the plan makes it).
    pub fn wiring(&self) -> Cow<'_, Wiring> {
        if self.fresh_api {
            Cow::Owned(Wiring::default())
        } else {
            Cow::Borrowed(&self.wiring)
        }
    }

    /// Kind `R`'s live instances.
    pub fn live<R: Resource>(&self) -> Cow<'a, Instances<R::Live>> {
        self.snap.live::<R>()
    }

    /// The live instances of a kind that lives inside the API: none when the plan makes a
    /// new API.
    pub fn live_in_api<R: Resource>(&self) -> Cow<'a, Instances<R::Live>> {
        if self.fresh_api {
            Cow::Owned(Instances::new())
        } else {
            self.snap.live::<R>()
        }
    }

    pub fn push(&mut self, node: Node, change: ResourceChange, op: impl Op + 'static) {
        self.steps.push(Step::new(node, change, op));
    }

    /// Whether a step planned so far creates something of `kind`.
    pub fn creates(&self, kind: graph::Kind) -> bool {
        self.steps.iter().any(|s| {
            s.node.kind == kind
                && s.change
                    .as_ref()
                    .is_some_and(|c| c.action == super::plan::Action::Create)
        })
    }
}
