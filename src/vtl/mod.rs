//! A Velocity Template Language engine with API Gateway's semantics.
//!
//! The language is Apache Velocity 1.7's, matched byte for byte on the differential corpus:
//! a port of its lexer states and grammar ([`lexer`], [`parser`]) builds a syntax tree
//! ([`ast`]) whose nodes carry line:column spans, and [`eval`] renders it over one
//! [`Value`] type with Java semantics ([`value`]). API Gateway's objects (`$context`,
//! `$input`, `$util`, `$stageVariables`) live apart in [`apigw`]; Java's regular
//! expressions in [`javaregex`].
//!
//! ```ignore
//! use crate::vtl::{render, Request, Template};
//! let t = Template::parse("t.vtl", "Hello $context.identity.sourceIp!").unwrap();
//! let mut req = Request::new();
//! req.set_context("identity.sourceIp", "192.0.2.1");
//! assert_eq!(render(&t, &req).unwrap(), "Hello 192.0.2.1!");
//! ```
//!
//! Limits: a template is at most [`MAX_TEMPLATE_BYTES`]; `#foreach` stops after 1,000
//! iterations (as Velocity's `directive.foreach.maxloops = 1000`, `$foreach.hasNext` is
//! still true on the last one when more items remain); nesting is limited to
//! [`parser::MAX_NESTING`] levels; a render may take at most [`eval::MAX_STEPS`] steps and
//! build strings of at most [`value::MAX_STRING`] bytes; ranges outside `#foreach` at most
//! [`eval::MAX_RANGE`] elements. Input data is never parsed as template code.
//!
//! Not supported (an error): `#macro`, `#define`, `#literal`, `#evaluate`, `#include`,
//! `#parse`. Java regex support is described in [`javaregex`].

pub mod apigw;
pub mod ast;
pub mod error;
pub mod eval;
pub mod javaregex;
pub mod lexer;
pub mod parser;
pub mod value;

pub use apigw::Request;
pub use error::Error;

/// API Gateway's limit on a mapping template: 300 KB.
pub const MAX_TEMPLATE_BYTES: usize = 300 * 1024;

/// A parsed template. Parse once, render many times; `Template` is `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Template {
    file: String,
    root: ast::Block,
    slots: parser::Slots,
    foreach_slot: u32,
    count_slot: u32,
    has_next_slot: u32,
}

impl Template {
    /// Parses `source`; `file` names it in error messages.
    pub fn parse(file: &str, source: &str) -> Result<Template, Error> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(Error::new(
                file,
                1,
                1,
                format!(
                    "template is {} bytes; API Gateway allows at most {} bytes (300 KB)",
                    source.len(),
                    MAX_TEMPLATE_BYTES
                ),
            ));
        }
        let mut slots = parser::Slots::default();
        let foreach_slot = slots.slot("foreach");
        let count_slot = slots.slot("velocityCount");
        let has_next_slot = slots.slot("velocityHasNext");
        let root = parser::parse_template(file, source, &mut slots)?;
        Ok(Template {
            file: file.to_string(),
            root,
            slots,
            foreach_slot,
            count_slot,
            has_next_slot,
        })
    }

    /// The file name given to [`Template::parse`].
    pub fn file(&self) -> &str {
        &self.file
    }
}

// Templates are shared between threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<Request>();
};

/// Renders a template for one request.
pub fn render(t: &Template, req: &Request) -> Result<String, Error> {
    let mut r = eval::Renderer::new(
        &t.file,
        t.slots.names.len(),
        t.slots.lits as usize,
        t.foreach_slot,
        t.count_slot,
        t.has_next_slot,
    );
    for (slot, v) in apigw::roots(req, &t.slots) {
        r.vars[slot as usize] = v;
    }
    let mut out = String::with_capacity(256);
    r.render_root(&t.root, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;

/// Runs `f` on its own thread and waits at most 30 s for its result, so a hang fails the
/// test that asked instead of stalling the whole run (the stuck thread is abandoned; the
/// test binary exits anyway). The bound is a deadline, not a speed claim: what it guards
/// takes well under a second.
#[cfg(test)]
pub(crate) fn within_deadline<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    use std::sync::mpsc::RecvTimeoutError;
    let limit = std::time::Duration::from_secs(30);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: no result within {limit:?} (a hang)"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: the thread panicked"),
    }
}
