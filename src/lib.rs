//! wsconn: the API Gateway WebSocket connection-tracking pattern (DynamoDB service
//! integrations for `$connect`/`$disconnect`, Lambda handlers for the other routes),
//! deployed to AWS by direct SDK calls, run on this machine, and operated.
//!
//! The modules, from the top down; each imports only what is below it:
//! - [`commands`]: one file per subcommand, each a thin layer over a capability;
//! - [`cli`]: the command line (clap), turned into [`config::Overrides`];
//! - the capabilities: [`deploy`] (reconcile AWS to the stack), [`local`] (run it on this
//!   machine), [`ops`] (smoke-test and operate a running stack), [`logs`] (read the
//!   stack's log groups as one stream);
//! - [`gateway`]: API Gateway's run-time semantics, shared by `local` and `render`;
//! - [`aws`]: SDK clients and the account's facts (region, account, partition);
//! - [`stack`] and [`assets`]: the one model of the stack, built from the configuration;
//! - [`package`]: handler directories' deployment packages (what goes in, the zip);
//! - [`config`]: flags over environment over `wsconn.toml` over defaults, validated;
//! - [`wait`] and [`error`]: bounded waiting, and errors a user can act on;
//! - [`vtl`]: the Velocity template engine, which depends on nothing else here.
//!
//! Without the default feature `app` only [`vtl`] is built, for the fuzz target.

pub mod vtl;

#[cfg(feature = "app")]
pub mod assets;
#[cfg(feature = "app")]
pub mod aws;
#[cfg(feature = "app")]
pub mod cli;
#[cfg(feature = "app")]
pub mod commands;
#[cfg(feature = "app")]
pub mod config;
#[cfg(feature = "app")]
pub mod deploy;
#[cfg(feature = "app")]
pub mod error;
#[cfg(feature = "app")]
pub mod gateway;
#[cfg(feature = "app")]
pub mod local;
#[cfg(feature = "app")]
pub mod logs;
#[cfg(feature = "app")]
pub mod ops;
#[cfg(feature = "app")]
pub mod package;
#[cfg(feature = "app")]
pub mod stack;
#[cfg(feature = "app")]
pub mod wait;
