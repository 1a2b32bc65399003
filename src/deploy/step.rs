//! A step: one planned change, its place in the graph, and the operation that applies it.

use super::context::Cx;
use super::graph::Node;
use super::plan::ResourceChange;
use crate::error::Result;
use futures::future::BoxFuture;

/// Applies one step. Each resource kind implements it for its own operation type.
pub trait Op: Send + Sync {
    fn apply<'a>(&'a self, cx: &'a Cx) -> BoxFuture<'a, Result<()>>;
}

pub struct Step {
    pub node: Node,
    /// What the plan shows; `None` for steps that only wait (a function becoming Active).
    pub change: Option<ResourceChange>,
    /// What progress shows for a step without a change.
    pub note: String,
    pub op: Box<dyn Op>,
}

impl Step {
    pub fn new(node: Node, change: ResourceChange, op: impl Op + 'static) -> Step {
        Step {
            node,
            change: Some(change),
            note: String::new(),
            op: Box::new(op),
        }
    }
    pub fn internal(node: Node, note: impl Into<String>, op: impl Op + 'static) -> Step {
        Step {
            node,
            change: None,
            note: note.into(),
            op: Box::new(op),
        }
    }
    /// The label progress shows.
    pub fn label(&self) -> String {
        match &self.change {
            Some(c) => format!("{} {}", c.action.symbol(), c.resource),
            None => self.note.clone(),
        }
    }
}
