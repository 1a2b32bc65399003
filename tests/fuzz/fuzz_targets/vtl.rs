#![no_main]
//! Fuzz target: parse and render arbitrary text. The input is split at the first NUL byte:
//! the template, then request data (a header value, a query value and the body), so
//! hostile data is exercised together with hostile templates. Must never panic or hang.

use libfuzzer_sys::fuzz_target;

// The engine from wsconn's library, without the `app` feature: the engine and its four
// dependencies, none of the AWS or server crates.
use wsconn::vtl::{Request, Template, render};

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
