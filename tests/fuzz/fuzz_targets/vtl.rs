#![no_main]
//! Fuzz target: parse and render arbitrary text. The input is split at the first NUL byte:
//! the template, then request data (a header value, a query value and the body), so
//! hostile data is exercised together with hostile templates. Must never panic or hang.

use libfuzzer_sys::fuzz_target;

// The engine itself, by path: wsconn is a binary crate, and src/vtl uses only relative
// paths, so the module compiles here unchanged.
#[path = "../../../src/vtl/mod.rs"]
#[allow(dead_code)]
mod vtl;

use vtl::{Request, Template, render};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (template, rest) = text.split_once('\0').unwrap_or((text, ""));
    let Ok(t) = Template::parse("fuzz.vtl", template) else { return };
    let mut req = Request::new();
    req.set_context("connectionId", "c-1");
    req.set_context("requestTimeEpoch", "1700000000456");
    req.set_context("identity.sourceIp", rest);
    req.headers = vec![("X-Data".into(), rest.into()), ("Host".into(), "h".into())];
    req.querystring = vec![("q".into(), rest.into())];
    req.body = rest.to_string();
    let _ = render(&t, &req);
});
