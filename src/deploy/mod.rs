//! Deploying the stack to AWS: one file per resource kind, the one interface they share,
//! the engine that reads, plans and applies them, the rounds that prove convergence,
//! the lease, and the outputs.
//!
//! Layering, bottom up; nothing below imports what is above it:
//! - `context` (what steps run in), `step`, `plan` (the one plan type), `graph` (the
//!   dependency rules as data, and the executor), `progress`;
//! - `kind`: the interface every kind implements, the snapshot, reader and planner;
//! - `resources`: one file per kind;
//! - `engine`: the list of kinds, and read / plan / apply over it;
//! - `session` (what a command opens), `lock` (the lease), `converge` (the rounds),
//!   `outputs` (what exists now).

pub mod context;
pub mod converge;
pub mod engine;
pub mod graph;
pub mod kind;
pub mod lock;
pub mod outputs;
pub mod plan;
pub mod progress;
pub mod release;
pub mod resources;
pub mod rollback;
pub mod run;
pub mod session;
pub mod step;
