//! Reading log groups with FilterLogEvents.
//!
//! - A range (`--since`/`--until`) is a merge: one page per group is held, the earliest
//!   head is shown next, and a group's next page is fetched when its page runs out. A
//!   page may be empty with a `nextToken` ("a returned page might only be partially full,
//!   or even empty"): the token is followed until it is absent.
//! - `--follow` reads the range up to now, then polls each group from a little before
//!   the newest event it has seen (events of one millisecond can span pages, and a
//!   late-ingested event can carry an earlier time), and drops what it has shown by
//!   event id. The ids kept are those inside that overlap window, so memory does not
//!   grow with the events shown.
//! - ThrottlingException (and a 5xx) is retried with a growing pause, the same request
//!   again, so no page is skipped; the first time, one line says so.

use super::Event;
use crate::error::{self, Error, Result};
use aws_config::retry::RetryConfig;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How far behind the newest event seen each poll starts again.
pub const OVERLAP_MS: i64 = 10_000;
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// One FilterLogEvents page: events and the next token.
type Page = (Vec<Event>, Option<String>);

/// FilterLogEvents with wsconn's own retry.
pub struct Fetcher<'a> {
    pub logs: &'a aws_sdk_cloudwatchlogs::Client,
    /// `--filter`: CloudWatch Logs' filter pattern, applied by the service.
    pub pattern: Option<String>,
    /// Events per page (FilterLogEvents' `limit`; `None`: the service's 10,000).
    pub limit: Option<i32>,
    throttled: AtomicBool,
    /// Called once, the first time the service throttles.
    note: &'a (dyn Fn(&str) + Sync),
}

impl<'a> Fetcher<'a> {
    pub fn new(
        logs: &'a aws_sdk_cloudwatchlogs::Client,
        pattern: Option<String>,
        note: &'a (dyn Fn(&str) + Sync),
    ) -> Fetcher<'a> {
        Fetcher {
            logs,
            pattern,
            limit: None,
            throttled: AtomicBool::new(false),
            note,
        }
    }

    /// One page of `group` between `start` and `end` (epoch ms); `None` when the group
    /// does not exist.
    pub async fn page(
        &self,
        source: usize,
        group: &str,
        start: i64,
        end: Option<i64>,
        token: Option<String>,
    ) -> Result<Option<Page>> {
        let mut pause = FIRST_PAUSE;
        loop {
            let sent = self
                .logs
                .filter_log_events()
                .log_group_name(group)
                .start_time(start)
                .set_end_time(end)
                .set_filter_pattern(self.pattern.clone())
                .set_limit(self.limit)
                .set_next_token(token.clone())
                .customize()
                .config_override(
                    aws_sdk_cloudwatchlogs::config::Builder::default()
                        .retry_config(RetryConfig::disabled()),
                )
                .send()
                .await;
            let e = match sent {
                Ok(out) => {
                    let events = out
                        .events()
                        .iter()
                        .map(|e| Event {
                            time: e.timestamp().unwrap_or_default(),
                            ingestion: e.ingestion_time().unwrap_or_default(),
                            id: e.event_id().unwrap_or_default().to_string(),
                            source,
                            stream: e.log_stream_name().unwrap_or_default().to_string(),
                            message: e.message().unwrap_or_default().to_string(),
                        })
                        .collect();
                    return Ok(Some((events, out.next_token().map(String::from))));
                }
                Err(e) => e,
            };
            if error::is_not_found(&e) {
                return Ok(None);
            }
            let again = match error::outcome(&e) {
                error::Outcome::Throttled => {
                    if !self.throttled.swap(true, Ordering::Relaxed) {
                        (self.note)(
                            "CloudWatch Logs is throttling FilterLogEvents: backing off and asking again (no event is skipped)",
                        );
                    }
                    true
                }
                error::Outcome::Unknown => true,
                error::Outcome::Refused => false,
            };
            let err = error::aws(
                format!("reading log group {group} (logs:FilterLogEvents)"),
                e,
            );
            if !again {
                return Err(err);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}

/// One group's place in a merge: the page it holds and where the next one starts.
struct Cursor {
    source: usize,
    group: String,
    token: Option<String>,
    done: bool,
    absent: bool,
    buf: VecDeque<Event>,
}

impl Cursor {
    async fn fill(&mut self, f: &Fetcher<'_>, start: i64, end: Option<i64>) -> Result<()> {
        while self.buf.is_empty() && !self.done {
            match f
                .page(self.source, &self.group, start, end, self.token.take())
                .await?
            {
                None => {
                    self.done = true;
                    self.absent = true;
                }
                Some((events, next)) => {
                    self.buf.extend(events);
                    self.done = next.is_none();
                    self.token = next;
                }
            }
        }
        Ok(())
    }
}

/// Reads every group between `start` and `end`, handing each event to `sink` in
/// time order; stops early when `sink` returns false. Returns the sources whose group
/// does not exist.
pub async fn range(
    f: &Fetcher<'_>,
    groups: &[(usize, String)],
    start: i64,
    end: Option<i64>,
    sink: &mut dyn FnMut(Event) -> bool,
) -> Result<Vec<usize>> {
    let mut cursors: Vec<Cursor> = groups
        .iter()
        .map(|(source, group)| Cursor {
            source: *source,
            group: group.clone(),
            token: None,
            done: false,
            absent: false,
            buf: VecDeque::new(),
        })
        .collect();
    loop {
        futures::future::try_join_all(
            cursors
                .iter_mut()
                .filter(|c| c.buf.is_empty() && !c.done)
                .map(|c| c.fill(f, start, end)),
        )
        .await?;
        let next = cursors
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.buf.front().map(|e| (i, e.key())))
            .min_by(|a, b| a.1.cmp(&b.1))
            .map(|(i, _)| i);
        let Some(i) = next else {
            break;
        };
        let e = cursors[i].buf.pop_front().expect("a head was found");
        if !sink(e) {
            break;
        }
    }
    Ok(cursors
        .iter()
        .filter(|c| c.absent)
        .map(|c| c.source)
        .collect())
}

/// What `--follow` remembers: per group the newest event time seen, and the ids shown
/// inside the overlap window.
#[derive(Debug, Default)]
pub struct Seen {
    newest: HashMap<usize, i64>,
    /// Event id → (its group, its time).
    ids: HashMap<String, (usize, i64)>,
}

impl Seen {
    /// Records an event; false when it was shown already.
    pub fn first_time(&mut self, e: &Event) -> bool {
        if self.ids.contains_key(&e.id) {
            return false;
        }
        self.ids.insert(e.id.clone(), (e.source, e.time));
        let n = self.newest.entry(e.source).or_insert(e.time);
        *n = (*n).max(e.time);
        true
    }
    /// Where a poll of `source` starts: a little before the newest event seen.
    pub fn start(&self, source: usize, since: i64) -> i64 {
        self.newest
            .get(&source)
            .map(|t| (t - OVERLAP_MS).max(since))
            .unwrap_or(since)
    }
    /// Forgets ids that no poll of their group can return again (each group by its own
    /// window, so a quiet group keeps no other group's ids).
    pub fn prune(&mut self, since: i64) {
        let newest = &self.newest;
        self.ids.retain(|_, (source, t)| {
            let start = newest
                .get(source)
                .map(|n| (n - OVERLAP_MS).max(since))
                .unwrap_or(since);
            *t >= start
        });
    }
    pub fn held(&self) -> usize {
        self.ids.len()
    }
}

/// All of one poll's new events of `groups` since each one's start, in time order.
pub async fn poll(
    f: &Fetcher<'_>,
    groups: &[(usize, String)],
    seen: &mut Seen,
    since: i64,
) -> Result<Vec<Event>> {
    let reads = groups.iter().map(|(source, group)| {
        let start = seen.start(*source, since);
        async move {
            let mut out = Vec::new();
            let mut token = None;
            loop {
                match f.page(*source, group, start, None, token).await? {
                    None => return Ok::<_, Error>(out),
                    Some((events, next)) => {
                        out.extend(events);
                        match next {
                            Some(t) => token = Some(t),
                            None => return Ok(out),
                        }
                    }
                }
            }
        }
    });
    let pages = futures::future::try_join_all(reads).await?;
    let mut fresh: Vec<Event> = pages
        .into_iter()
        .flatten()
        .filter(|e| seen.first_time(e))
        .collect();
    fresh.sort_by_key(|e| e.key());
    seen.prune(since);
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(source: usize, time: i64, id: &str) -> Event {
        Event {
            time,
            ingestion: time,
            id: id.into(),
            source,
            stream: "s".into(),
            message: String::new(),
        }
    }

    #[test]
    fn seen_drops_repeats_and_forgets_what_is_behind_the_window() {
        let mut s = Seen::default();
        assert!(s.first_time(&ev(0, 100_000, "a")));
        assert!(!s.first_time(&ev(0, 100_000, "a")));
        assert!(s.first_time(&ev(1, 50_000, "b")));
        assert_eq!(s.start(0, 0), 100_000 - OVERLAP_MS);
        assert_eq!(
            s.start(2, 7),
            7,
            "a group with nothing seen starts at --since"
        );
        assert!(s.first_time(&ev(0, 200_000, "c")));
        s.prune(0);
        // Each group keeps the ids of its own window: "a" is behind group 0's, "b" is
        // group 1's newest.
        assert_eq!(s.held(), 2);
        assert!(s.first_time(&ev(0, 100_000, "a")), "forgotten");
        assert!(!s.first_time(&ev(1, 50_000, "b")));
        assert!(!s.first_time(&ev(0, 200_000, "c")));
    }
}
