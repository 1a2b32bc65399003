//! Benchmark of the template engine (run by scripts/bench: `cargo bench --bench vtl`):
//! renders per second of the stack's connect.vtl with 20 headers and 5 query parameters
//! on one thread, and the parse time of a 300 KB template. Figures only: nothing here is
//! a pass/fail test.

use std::hint::black_box;
use std::time::{Duration, Instant};
use wsconn::vtl::{self, Request, Template, render};

const CONNECT: &str = include_str!("../../mapping-templates/connect.vtl");

fn request(quoted: bool) -> Request {
    let mut req = Request::new();
    for (k, v) in [
        ("connectionId", "L0SM9cOFvHcCIhw="),
        ("connectedAt", "1700000000123"),
        ("requestTimeEpoch", "1700000000456"),
        ("identity.sourceIp", "192.0.2.10"),
        ("identity.userAgent", "Mozilla/5.0 (X11; Linux x86_64)"),
        ("stage", "prod"),
        ("domainName", "abc123.execute-api.us-east-1.amazonaws.com"),
        ("apiId", "abc123"),
    ] {
        req.set_context(k, v);
    }
    for i in 0..20 {
        let value = if quoted {
            format!("value {i} with 'quote' and é")
        } else {
            format!("value-{i}")
        };
        req.headers.push((format!("X-Header-{i:02}"), value));
    }
    for i in 0..5 {
        req.querystring.push((format!("q{i}"), format!("v{i}")));
    }
    req
}

/// Renders per second over about `secs` seconds, after a warm-up.
fn rate(t: &Template, req: &Request, secs: u64) -> f64 {
    for _ in 0..2_000 {
        black_box(render(t, req).unwrap());
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        for _ in 0..1_000 {
            black_box(render(t, req).unwrap());
        }
        n += 1_000;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let src = CONNECT
        .replace("@@TABLE_NAME@@", "bench-connections")
        .replace("@@CONNECTION_TTL_SECONDS@@", "86400");
    let t = Template::parse("connect.vtl", &src).unwrap();
    let plain = rate(&t, &request(false), 3);
    let quoted = rate(&t, &request(true), 3);
    println!(
        "connect.vtl, 20 headers + 5 query parameters, plain values: {plain:.0} renders/s ({:.2} µs each)",
        1e6 / plain
    );
    println!(
        "connect.vtl, 20 headers + 5 query parameters, values with ' and é: {quoted:.0} renders/s ({:.2} µs each)",
        1e6 / quoted
    );

    // A 300 KB template: connect.vtl's body repeated (still under API Gateway's limit).
    let mut big = String::new();
    while big.len() + src.len() < vtl::MAX_TEMPLATE_BYTES {
        big.push_str(&src);
    }
    let runs = 20;
    let start = Instant::now();
    for _ in 0..runs {
        black_box(Template::parse("big.vtl", &big).unwrap());
    }
    let parse = start.elapsed() / runs;
    println!(
        "parse of a {} KB template: {:.1} ms ({:.0} MB/s)",
        big.len() / 1024,
        parse.as_secs_f64() * 1e3,
        big.len() as f64 / parse.as_secs_f64() / 1e6
    );
}
