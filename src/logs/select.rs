//! `--connection` and `--principal`: only what concerns the chosen connections.
//!
//! What can be matched, and how:
//! - **access log**: a record whose `connectionId` is chosen (with `--principal`, a
//!   record whose `principalId` is the principal chooses its connection too). It also
//!   ties two ids to the connection: API Gateway's `requestId` and the
//!   `integrationRequestId` (the Lambda request id of the handler the request invoked);
//! - **a handler's invocation**: its lines, from `START` to `REPORT`, carry Lambda's
//!   request id; the whole invocation is shown when any of its lines names a chosen
//!   connection id, or when the access log tied its request id to one;
//! - **execution log**: a line that names a chosen connection id, or whose
//!   `(<request id>)` prefix the access log tied to one.
//!
//! Lines are decided in time order, each once its invocation has ended (its `REPORT`)
//! or is older than the hold; under `--follow` also a short grace after it arrived,
//! since the access record comes after the request it describes.

use super::Event;
use super::show::{Facts, Lambda, facts};
use super::sources::Kind;
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

pub struct Selector {
    kinds: Vec<Kind>,
    principal: Option<String>,
    pub connections: HashSet<String>,
    lambda_ids: HashSet<String>,
    api_ids: HashSet<String>,
    /// Invocations whose REPORT has arrived.
    ended: HashSet<String>,
    pending: VecDeque<(Event, Facts, Instant)>,
    newest: i64,
    /// How long after it arrives a line waits for ties (0 for a range read, whose
    /// ties are learnt first from the access log).
    pub grace: Duration,
    /// How far (in log time) an unfinished invocation holds later lines back.
    pub hold_ms: i64,
}

impl Selector {
    pub fn new(
        kinds: Vec<Kind>,
        connections: HashSet<String>,
        principal: Option<String>,
    ) -> Selector {
        Selector {
            kinds,
            principal,
            connections,
            lambda_ids: HashSet::new(),
            api_ids: HashSet::new(),
            ended: HashSet::new(),
            pending: VecDeque::new(),
            newest: i64::MIN,
            grace: Duration::ZERO,
            hold_ms: 60_000,
        }
    }

    fn names_a_connection(&self, msg: &str) -> bool {
        self.connections.iter().any(|c| msg.contains(c.as_str()))
    }

    /// Learns the ties an event makes (without holding it).
    pub fn learn(&mut self, e: &Event) -> Facts {
        let kind = self.kinds[e.source];
        let f = facts(kind, &e.message);
        match kind {
            Kind::Access => {
                if let (Some(p), Some(c)) = (&self.principal, &f.connection_id)
                    && f.principal_id.as_ref() == Some(p)
                {
                    self.connections.insert(c.clone());
                }
                if f.connection_id
                    .as_ref()
                    .is_some_and(|c| self.connections.contains(c))
                {
                    self.api_ids.extend(f.request_id.clone());
                    self.lambda_ids.extend(f.integration_request_id.clone());
                }
            }
            Kind::Function => {
                if let Some(id) = &f.request_id {
                    if self.names_a_connection(&e.message) {
                        self.lambda_ids.insert(id.clone());
                    }
                    if matches!(f.lambda, Some(Lambda::Report { .. })) {
                        self.ended.insert(id.clone());
                    }
                }
            }
            Kind::Execution => {
                if let Some(id) = &f.request_id
                    && self.names_a_connection(&e.message)
                {
                    self.api_ids.insert(id.clone());
                }
            }
        }
        f
    }

    /// Takes an event in; returns those now decided and chosen, in order.
    pub fn push(&mut self, e: Event, now: Instant) -> Vec<Event> {
        let f = self.learn(&e);
        self.newest = self.newest.max(e.time);
        self.pending.push_back((e, f, now));
        self.release(now, false)
    }

    /// Decides what can be decided (`flush`: everything, at the end).
    pub fn release(&mut self, now: Instant, flush: bool) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some((e, f, at)) = self.pending.front() {
            let kind = self.kinds[e.source];
            let waited = now.duration_since(*at) >= self.grace;
            let settled = match (kind, &f.request_id) {
                (Kind::Function, Some(id)) => {
                    self.ended.contains(id) || e.time < self.newest.saturating_sub(self.hold_ms)
                }
                _ => true,
            };
            if !(flush || waited && settled) {
                break;
            }
            let (e, f, _) = self.pending.pop_front().expect("a front was found");
            let chosen = match kind {
                Kind::Access => f
                    .connection_id
                    .as_ref()
                    .is_some_and(|c| self.connections.contains(c)),
                Kind::Function => match &f.request_id {
                    Some(id) => self.lambda_ids.contains(id),
                    None => self.names_a_connection(&e.message),
                },
                Kind::Execution => {
                    f.request_id
                        .as_ref()
                        .is_some_and(|id| self.api_ids.contains(id))
                        || self.names_a_connection(&e.message)
                }
            };
            if matches!(f.lambda, Some(Lambda::Report { .. }))
                && let Some(id) = &f.request_id
            {
                self.ended.remove(id);
            }
            if chosen {
                out.push(e);
            }
        }
        out
    }

    /// Lines waiting for a decision.
    pub fn held(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaa-1b2c-4d5e-8f90-123456789abc";
    const B: &str = "bbbbbbbb-1b2c-4d5e-8f90-123456789abc";

    fn ev(source: usize, time: i64, msg: &str) -> Event {
        Event {
            time,
            ingestion: time,
            id: format!("{time}-{source}"),
            source,
            stream: "s".into(),
            message: msg.into(),
        }
    }

    fn sel(conns: &[&str], principal: Option<&str>) -> Selector {
        Selector::new(
            vec![Kind::Function, Kind::Access, Kind::Execution],
            conns.iter().map(|c| c.to_string()).collect(),
            principal.map(String::from),
        )
    }

    fn run(s: &mut Selector, events: Vec<Event>) -> Vec<String> {
        let now = Instant::now();
        let mut out = Vec::new();
        for e in events {
            out.extend(s.push(e, now));
        }
        out.extend(s.release(now, true));
        out.into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn an_invocation_that_names_the_connection_is_shown_whole_and_others_not() {
        let mut s = sel(&["c1="], None);
        let shown = run(
            &mut s,
            vec![
                ev(0, 1, &format!("START RequestId: {A} Version: 1")),
                ev(0, 2, &format!("START RequestId: {B} Version: 1")),
                ev(
                    0,
                    3,
                    &format!("2026-01-01T00:00:00.003Z\t{B}\tINFO\tfor c2="),
                ),
                ev(
                    0,
                    4,
                    &format!("2026-01-01T00:00:00.004Z\t{A}\tINFO\tevent for c1="),
                ),
                ev(0, 5, &format!("REPORT RequestId: {A}\tDuration: 1 ms")),
                ev(0, 6, &format!("REPORT RequestId: {B}\tDuration: 1 ms")),
            ],
        );
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(shown.iter().all(|m| m.contains(A)), "{shown:?}");
    }

    #[test]
    fn the_access_log_ties_requests_and_a_principal_chooses_connections() {
        let mut s = sel(&[], Some("alice"));
        let connect = r#"{"requestId":"r1","connectionId":"c9=","eventType":"CONNECT","principalId":"alice"}"#;
        let message = format!(
            r#"{{"requestId":"r2","connectionId":"c9=","eventType":"MESSAGE","integrationRequestId":"{B}"}}"#
        );
        let other = r#"{"requestId":"r3","connectionId":"zz=","eventType":"MESSAGE"}"#;
        // A range read learns the ties from the access log first.
        for m in [connect, message.as_str(), other] {
            s.learn(&ev(1, 0, m));
        }
        let shown = run(
            &mut s,
            vec![
                ev(2, 1, "(r2) Received request"),
                ev(2, 2, "(r3) Received request"),
                ev(0, 3, &format!("START RequestId: {B} Version: 1")),
                ev(0, 4, &format!("REPORT RequestId: {B}\tDuration: 1 ms")),
                ev(1, 5, connect),
                ev(1, 6, &message),
                ev(1, 7, other),
            ],
        );
        assert_eq!(shown.len(), 5, "{shown:?}");
        assert!(
            !shown.iter().any(|m| m.contains("r3") || m.contains("zz=")),
            "{shown:?}"
        );
    }

    #[test]
    fn lines_wait_for_their_invocation_to_end_and_keep_their_order() {
        let mut s = sel(&["c1="], None);
        let now = Instant::now();
        assert!(
            s.push(ev(0, 1, &format!("START RequestId: {A} Version: 1")), now)
                .is_empty()
        );
        // An access record after the START waits behind it.
        assert!(
            s.push(ev(1, 2, r#"{"connectionId":"c1="}"#), now)
                .is_empty()
        );
        let out = s.push(
            ev(0, 3, &format!("2026-01-01T00:00:00Z\t{A}\tINFO\tc1= here")),
            now,
        );
        assert!(out.is_empty());
        let out = s.push(
            ev(0, 4, &format!("REPORT RequestId: {A}\tDuration: 1 ms")),
            now,
        );
        let times: Vec<i64> = out.iter().map(|e| e.time).collect();
        assert_eq!(times, [1, 2, 3, 4]);
        assert_eq!(s.held(), 0);
    }
}
