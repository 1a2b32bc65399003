//! Deploying the stack to AWS: the reconcile engine, its plan, its graph, the read
//! phase, the lease, and one file per resource kind.
//!
//! Layering, bottom up: `context` and `step` (shared by everyone) → `resources` (one
//! file per kind) → `snapshot` (reads) → `engine` (plan and apply) → `session` (what a
//! command opens). Nothing below imports what is above it.

pub mod context;
pub mod engine;
pub mod graph;
pub mod lock;
pub mod outputs;
pub mod plan;
pub mod progress;
pub mod resources;
pub mod session;
pub mod snapshot;
pub mod step;
