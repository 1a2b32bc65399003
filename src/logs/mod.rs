//! `wsconn logs`: a deployed stack's log groups as one stream, ordered by event time.
//!
//! - `sources`: which groups (each function's, the access log, API Gateway's execution
//!   log), found from the stack model as `outputs` finds them;
//! - `read`: FilterLogEvents, page by page: a merge of one page per group for a range,
//!   then polls for `--follow` (deduplicated by event id over an overlap window);
//!   throttling backs off, never drops;
//! - `select`: `--connection` / `--principal`, which ties a handler's invocation (by
//!   Lambda's request id) and an execution log's lines (by API Gateway's request id) to a
//!   connection;
//! - `show`: one line per event (Lambda's START/END/REPORT folded into one, access-log
//!   JSON compacted), or one JSON object per line.
//!
//! Events are streamed: what is held at once is one page per group, the events of the
//! overlap window, and (with a selection) the invocations not yet decided.

pub mod read;
pub mod select;
pub mod show;
pub mod sources;

/// One log event, from one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Epoch milliseconds.
    pub time: i64,
    pub ingestion: i64,
    pub id: String,
    /// Which source it came from (an index into the sources).
    pub source: usize,
    pub stream: String,
    pub message: String,
}

impl Event {
    /// The order events are shown in: time, then ingestion; events equal in both keep
    /// the order FilterLogEvents gave them (sorts and merges here are stable).
    pub fn key(&self) -> (i64, i64) {
        (self.time, self.ingestion)
    }
}
