//! API Gateway's run-time conventions, shared by `render` and `local`: the form of its
//! ids, its time formats, and the `$context` of a WebSocket event.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh id in API Gateway's form: 16 characters, the base64 of 11 random bytes
/// (`SOqGjdZioAMCEeg=`), as connection, request and message ids look.
pub fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{nanos}/{n}/{}", std::process::id());
    let digest = Sha256::digest(seed.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..11])
}

/// (year, month, day, hour, minute, second) of Unix seconds, UTC.
pub fn utc(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `2022-05-16T17:30:17Z`.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d, hh, mm, ss) = utc(secs);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// `16/May/2022:17:30:27 +0000`, the common log format of `$context.requestTime`.
pub fn clf(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, hh, mm, ss) = utc(ms.div_euclid(1000));
    format!(
        "{d:02}/{}/{y:04}:{hh:02}:{mm:02}:{ss:02} +0000",
        MONTHS[(m - 1) as usize]
    )
}

/// The event type API Gateway gives a route key.
pub fn event_type(route: &str) -> &'static str {
    match route {
        crate::stack::CONNECT => "CONNECT",
        crate::stack::DISCONNECT => "DISCONNECT",
        _ => "MESSAGE",
    }
}

/// Every `$context` variable of a WebSocket event, with values that look like AWS's,
/// as (dotted name, value) pairs. `api_id` and `domain` name the API.
pub fn default_context(
    route: &str,
    stage: &str,
    api_id: &str,
    domain: &str,
) -> Vec<(&'static str, String)> {
    let now = now_ms();
    let mut v = vec![
        ("connectionId", new_id()),
        ("connectedAt", now.to_string()),
        ("requestTimeEpoch", now.to_string()),
        ("requestTime", clf(now)),
        ("requestId", new_id()),
        ("extendedRequestId", new_id()),
        ("eventType", event_type(route).to_string()),
        ("messageDirection", "IN".to_string()),
        ("routeKey", route.to_string()),
        ("stage", stage.to_string()),
        ("domainName", domain.to_string()),
        ("apiId", api_id.to_string()),
        ("identity.sourceIp", "192.0.2.1".to_string()),
        ("identity.userAgent", "wsconn".to_string()),
    ];
    if event_type(route) == "MESSAGE" {
        v.push(("messageId", new_id()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_api_gateways_form_and_differ() {
        let a = new_id();
        assert_eq!(a.len(), 16);
        assert!(a.ends_with('='));
        assert_ne!(a, new_id());
    }

    #[test]
    fn times_format_as_aws_does() {
        assert_eq!(clf(1_652_722_227_357), "16/May/2022:17:30:27 +0000");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(clf(-1), "31/Dec/1969:23:59:59 +0000");
    }

    #[test]
    fn the_default_context_is_complete() {
        let c = default_context("$connect", "api", "abc", "abc.example");
        let names: Vec<_> = c.iter().map(|(k, _)| *k).collect();
        for want in [
            "connectionId",
            "connectedAt",
            "requestTimeEpoch",
            "requestTime",
            "requestId",
            "extendedRequestId",
            "eventType",
            "routeKey",
            "stage",
            "domainName",
            "apiId",
            "identity.sourceIp",
            "identity.userAgent",
        ] {
            assert!(names.contains(&want), "{want}");
        }
        assert!(!names.contains(&"messageId"));
        assert!(
            default_context("$default", "api", "a", "d")
                .iter()
                .any(|(k, _)| *k == "messageId")
        );
    }
}
