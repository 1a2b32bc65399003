//! How an event is shown: one line with its time and source (a stable colour per source
//! on a terminal), or one JSON object. What is known of each line (Lambda's request id,
//! a connection id, API Gateway's request id) is read here, for `select` too.

use super::Event;
use super::sources::{Kind, Source};
use owo_colors::OwoColorize;
use serde_json::{Value, json};

/// What a line tells about itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// Lambda's request id (function lines), or API Gateway's (access, execution).
    pub request_id: Option<String>,
    pub connection_id: Option<String>,
    /// Access log: the authorizer's principal, and the Lambda request id of the proxy
    /// integration the request invoked.
    pub principal_id: Option<String>,
    pub integration_request_id: Option<String>,
    pub lambda: Option<Lambda>,
}

/// Lambda's own lines.
#[derive(Debug, Clone, PartialEq)]
pub enum Lambda {
    Start,
    End,
    /// REPORT: duration, billed duration, memory size, max memory used, init duration.
    Report {
        duration: String,
        billed: String,
        memory: String,
        used: String,
        init: Option<String>,
    },
}

fn looks_like_request_id(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The value after `"key":"` (JSON written by hand or by a logger), up to the quote.
fn json_field(msg: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    let at = msg.find(&needle)? + needle.len();
    let rest = msg[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_string()).filter(|v| !v.is_empty())
}

/// `REPORT RequestId: … Duration: 1.23 ms …` → its fields.
fn report(msg: &str) -> Lambda {
    let get = |key: &str| -> Option<String> {
        msg.split('\t')
            .find_map(|part| part.trim().strip_prefix(key).map(|v| v.trim().to_string()))
    };
    Lambda::Report {
        duration: get("Duration:").unwrap_or_default(),
        billed: get("Billed Duration:").unwrap_or_default(),
        memory: get("Memory Size:").unwrap_or_default(),
        used: get("Max Memory Used:").unwrap_or_default(),
        init: get("Init Duration:"),
    }
}

/// What a line of a function's group tells: Lambda's START/END/REPORT (`RequestId:`),
/// the runtime's text lines (`<time>\t<request id>\t<LEVEL>\t…`) or JSON lines
/// (`"requestId"`), and a `"connectionId"` the handler logged.
pub fn function_facts(msg: &str) -> Facts {
    let mut f = Facts {
        connection_id: json_field(msg, "connectionId"),
        ..Default::default()
    };
    for (prefix, kind) in [
        ("START ", Lambda::Start),
        ("END ", Lambda::End),
        ("REPORT ", Lambda::End),
    ] {
        if let Some(rest) = msg.strip_prefix(prefix)
            && let Some(id) = rest.strip_prefix("RequestId: ")
        {
            f.request_id = id.split_whitespace().next().map(String::from);
            f.lambda = Some(if prefix == "REPORT " {
                report(msg)
            } else {
                kind
            });
            return f;
        }
    }
    let mut parts = msg.splitn(4, '\t');
    let (_, id) = (parts.next(), parts.next());
    f.request_id = id
        .filter(|id| looks_like_request_id(id))
        .map(String::from)
        .or_else(|| json_field(msg, "requestId").or_else(|| json_field(msg, "awsRequestId")));
    f
}

/// An access-log record (wsconn's format, JSON).
pub fn access_facts(msg: &str) -> Facts {
    let v: Value = serde_json::from_str(msg).unwrap_or(Value::Null);
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && *s != "-")
            .map(String::from)
    };
    Facts {
        request_id: s("requestId"),
        connection_id: s("connectionId"),
        principal_id: s("principalId"),
        integration_request_id: s("integrationRequestId"),
        lambda: None,
    }
}

/// An execution-log line: `(<API Gateway request id>) …`.
pub fn execution_facts(msg: &str) -> Facts {
    let request_id = msg
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .map(|(id, _)| id.to_string())
        .filter(|id| !id.is_empty() && !id.contains(' '));
    Facts {
        request_id,
        connection_id: json_field(msg, "connectionId").or_else(|| {
            msg.split("connectionId: ")
                .nth(1)
                .and_then(|r| r.split(|c: char| c.is_whitespace() || c == ',').next())
                .map(String::from)
        }),
        ..Default::default()
    }
}

pub fn facts(kind: Kind, msg: &str) -> Facts {
    match kind {
        Kind::Function => function_facts(msg),
        Kind::Access => access_facts(msg),
        Kind::Execution => execution_facts(msg),
    }
}

/// `HH:MM:SS.mmm` (UTC) of epoch milliseconds.
pub fn clock(ms: i64) -> String {
    let day_ms = ms.rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{}Z", clock(ms))
}

/// The text after the time and the source: Lambda's lines folded (START and END
/// dropped, REPORT as one line), the runtime's prefix shortened, access JSON compacted.
/// `None`: the line is not shown (START, END).
pub fn body(kind: Kind, msg: &str, f: &Facts) -> Option<String> {
    let short = |id: &str| id.chars().take(8).collect::<String>();
    match kind {
        Kind::Function => match &f.lambda {
            Some(Lambda::Start | Lambda::End) => None,
            Some(Lambda::Report {
                duration,
                billed,
                memory,
                used,
                init,
            }) => Some(format!(
                "{} REPORT {duration} (billed {billed}), {used} of {memory} used{}",
                short(f.request_id.as_deref().unwrap_or("")),
                init.as_ref()
                    .map(|i| format!(", init {i}"))
                    .unwrap_or_default()
            )),
            None => {
                let mut parts = msg.splitn(4, '\t');
                let (_, id, level, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
                Some(match (id, level, rest) {
                    (Some(id), Some(level), Some(rest)) if looks_like_request_id(id) => {
                        format!("{} {level} {}", short(id), rest.trim_end())
                    }
                    _ => msg.trim_end().to_string(),
                })
            }
        },
        Kind::Access => {
            let v: Value = match serde_json::from_str(msg) {
                Ok(v) => v,
                Err(_) => return Some(msg.trim_end().to_string()),
            };
            let s = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty() && *s != "-")
                    .map(String::from)
            };
            let mut out = format!(
                "{} {} {} {}",
                s("connectionId").unwrap_or_else(|| "-".into()),
                s("eventType").unwrap_or_else(|| "-".into()),
                s("routeKey").unwrap_or_else(|| "-".into()),
                s("status").unwrap_or_else(|| "-".into())
            );
            if let Some(p) = s("principalId") {
                out.push_str(&format!(" principal={p}"));
            }
            for (k, label) in [
                ("integrationError", "integration error"),
                ("authorizerError", "authorizer error"),
            ] {
                if let Some(e) = s(k) {
                    out.push_str(&format!(" {label}: {e}"));
                }
            }
            Some(out)
        }
        Kind::Execution => Some(msg.trim_end().to_string()),
    }
}

/// A stable colour per source name.
fn paint(name: &str, text: &str) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    match h % 6 {
        0 => text.cyan().to_string(),
        1 => text.magenta().to_string(),
        2 => text.yellow().to_string(),
        3 => text.green().to_string(),
        4 => text.blue().to_string(),
        _ => text.bright_red().to_string(),
    }
}

/// Renders events for one output format.
pub struct Shower {
    pub sources: Vec<Source>,
    pub json: bool,
    pub color: bool,
    width: usize,
}

impl Shower {
    pub fn new(sources: Vec<Source>, json: bool, color: bool) -> Shower {
        let width = sources.iter().map(|s| s.name.len()).max().unwrap_or(0);
        Shower {
            sources,
            json,
            color,
            width,
        }
    }

    /// The line for `e` (`None`: not shown, a folded START or END).
    pub fn line(&self, e: &Event) -> Option<String> {
        let s = &self.sources[e.source];
        let f = facts(s.kind, &e.message);
        if self.json {
            let mut o = json!({
                "time": rfc3339(e.time),
                "source": s.name,
                "group": s.group,
                "stream": e.stream,
                "message": e.message.trim_end(),
            });
            if let Some(c) = &f.connection_id {
                o["connectionId"] = json!(c);
            }
            if let Some(r) = &f.request_id {
                o["requestId"] = json!(r);
            }
            return Some(o.to_string());
        }
        let body = body(s.kind, &e.message, &f)?;
        let name = format!("{:<w$}", s.name, w = self.width);
        let name = if self.color {
            paint(&s.name, &name)
        } else {
            name
        };
        Some(format!("{} {name} {body}", clock(e.time)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8f5e2c1a-1b2c-4d5e-8f90-123456789abc";

    #[test]
    fn lambdas_lines_give_their_request_id_and_fold() {
        let start = format!("START RequestId: {ID} Version: 3\n");
        let f = function_facts(&start);
        assert_eq!(f.request_id.as_deref(), Some(ID));
        assert_eq!(body(Kind::Function, &start, &f), None);
        let report = format!(
            "REPORT RequestId: {ID}\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\tInit Duration: 150.50 ms\t\n"
        );
        let f = function_facts(&report);
        assert_eq!(
            body(Kind::Function, &report, &f).unwrap(),
            "8f5e2c1a REPORT 1.23 ms (billed 2 ms), 70 MB of 128 MB used, init 150.50 ms"
        );
        let text =
            format!("2026-12-07T10:00:00.000Z\t{ID}\tINFO\tgot {{\"connectionId\":\"abc=\"}}\n");
        let f = function_facts(&text);
        assert_eq!(
            (f.request_id.as_deref(), f.connection_id.as_deref()),
            (Some(ID), Some("abc="))
        );
        assert_eq!(
            body(Kind::Function, &text, &f).unwrap(),
            "8f5e2c1a INFO got {\"connectionId\":\"abc=\"}"
        );
        let json_line = format!("{{\"level\":\"INFO\",\"requestId\":\"{ID}\",\"message\":\"x\"}}");
        assert_eq!(function_facts(&json_line).request_id.as_deref(), Some(ID));
    }

    #[test]
    fn access_records_are_compacted_and_give_their_ties() {
        let msg = r#"{"requestId":"r1","eventType":"MESSAGE","routeKey":"sendmessage","status":"200","connectionId":"c1=","integrationError":"-","authorizerError":"","principalId":"alice","integrationRequestId":"L1"}"#;
        let f = access_facts(msg);
        assert_eq!(f.request_id.as_deref(), Some("r1"));
        assert_eq!(f.principal_id.as_deref(), Some("alice"));
        assert_eq!(f.integration_request_id.as_deref(), Some("L1"));
        assert_eq!(
            body(Kind::Access, msg, &f).unwrap(),
            "c1= MESSAGE sendmessage 200 principal=alice"
        );
        let bad = r#"{"connectionId":"c","eventType":"CONNECT","routeKey":"$connect","status":"500","integrationError":"boom"}"#;
        assert!(
            body(Kind::Access, bad, &access_facts(bad))
                .unwrap()
                .ends_with("integration error: boom")
        );
    }

    #[test]
    fn execution_lines_give_api_gateways_request_id() {
        let f = execution_facts("(r1) Received request. connectionId: c1=, route: x");
        assert_eq!(f.request_id.as_deref(), Some("r1"));
        assert_eq!(f.connection_id.as_deref(), Some("c1="));
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(clock(0), "00:00:00.000");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn json_lines_carry_the_source_and_ids() {
        let sources = vec![Source {
            name: "access".into(),
            group: "/aws/apigateway/s/api".into(),
            kind: Kind::Access,
        }];
        let sh = Shower::new(sources, true, false);
        let e = Event {
            time: 1_700_000_000_123,
            ingestion: 0,
            id: "1".into(),
            source: 0,
            stream: "st".into(),
            message: r#"{"requestId":"r1","connectionId":"c1="}"#.into(),
        };
        let v: Value = serde_json::from_str(&sh.line(&e).unwrap()).unwrap();
        assert_eq!(v["source"], "access");
        assert_eq!(v["connectionId"], "c1=");
        assert_eq!(v["requestId"], "r1");
        assert_eq!(v["time"], "2023-11-14T22:13:20.123Z");
    }
}
