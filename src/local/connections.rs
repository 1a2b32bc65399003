//! The registry of open connections: what `@connections` reads and writes, and what
//! shutdown walks. Each entry is a handle to the connection's task: a queue of frames
//! to send and a way to ask it to close.

use crate::gateway::ConnInfo;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// A frame for the connection's writer.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
}

/// Why a connection ended; also its close frame when the server ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent a close frame (its code and reason) or went away.
    Client(Option<(u16, String)>),
    /// `DELETE @connections/{id}`.
    Deleted,
    /// No message for the idle timeout (API Gateway: 10 minutes).
    Idle,
    /// Connected for the maximum duration (API Gateway: 2 hours).
    MaxDuration,
    /// A frame over 32 KB or a message over 128 KB (close code 1009).
    TooBig,
    /// wsconn is stopping.
    Shutdown,
    /// The socket failed.
    Error(String),
}

impl CloseReason {
    /// The close frame the server sends, if it is the one closing.
    pub fn frame(&self) -> Option<(u16, &'static str)> {
        match self {
            CloseReason::Client(_) | CloseReason::Error(_) => None,
            CloseReason::Deleted => Some((1000, "")),
            CloseReason::Idle | CloseReason::MaxDuration => Some((1001, "Going away")),
            CloseReason::TooBig => Some((1009, "Message too big")),
            CloseReason::Shutdown => Some((1001, "Going away")),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            CloseReason::Client(Some((code, reason))) if reason.is_empty() => {
                format!("client closed ({code})")
            }
            CloseReason::Client(Some((code, reason))) => {
                format!(
                    "client closed ({code} {})",
                    crate::gateway::one_line(reason)
                )
            }
            CloseReason::Client(None) => "client went away".into(),
            CloseReason::Deleted => "deleted through @connections".into(),
            CloseReason::Idle => "idle timeout".into(),
            CloseReason::MaxDuration => "maximum connection duration".into(),
            CloseReason::TooBig => "message too big (1009)".into(),
            CloseReason::Shutdown => "server shutdown".into(),
            CloseReason::Error(e) => format!("socket error: {e}"),
        }
    }
}

pub struct Conn {
    pub info: ConnInfo,
    /// What the `$connect` authorizer allowed it with (`principalId`, then its context).
    pub authorizer: Option<Arc<super::authorizer::Grant>>,
    /// Epoch milliseconds of the last message in either direction.
    last_active: AtomicI64,
    out: mpsc::UnboundedSender<Outbound>,
    close: watch::Sender<Option<CloseReason>>,
}

impl Conn {
    pub fn new(
        info: ConnInfo,
        authorizer: Option<Arc<super::authorizer::Grant>>,
        out: mpsc::UnboundedSender<Outbound>,
    ) -> (Arc<Conn>, watch::Receiver<Option<CloseReason>>) {
        let (close, closed) = watch::channel(None);
        let at = info.connected_at;
        (
            Arc::new(Conn {
                info,
                authorizer,
                last_active: AtomicI64::new(at),
                out,
                close,
            }),
            closed,
        )
    }

    pub fn touch(&self, now_ms: i64) {
        self.last_active.fetch_max(now_ms, Ordering::Relaxed);
    }

    pub fn last_active(&self) -> i64 {
        self.last_active.load(Ordering::Relaxed)
    }

    /// Queues a frame; false when the connection is already closing.
    pub fn send(&self, frame: Outbound) -> bool {
        self.close.borrow().is_none() && self.out.send(frame).is_ok()
    }

    /// Asks the connection's task to close it (the first reason wins).
    pub fn close(&self, reason: CloseReason) {
        self.close.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        });
    }
}

#[derive(Default)]
pub struct Registry {
    map: Mutex<HashMap<String, Arc<Conn>>>,
}

impl Registry {
    pub fn insert(&self, conn: Arc<Conn>) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(conn.info.connection_id.clone(), conn);
        }
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Conn>> {
        self.map.lock().ok().and_then(|m| m.get(id).cloned())
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Asks every connection to close; returns how many there were.
    pub fn close_all(&self, reason: CloseReason) -> usize {
        let all: Vec<Arc<Conn>> = match self.map.lock() {
            Ok(m) => m.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        for c in &all {
            c.close(reason.clone());
        }
        all.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_log_names_the_clients_close_code_and_reason() {
        assert_eq!(
            CloseReason::Client(Some((4001, "bye\nnow".into()))).describe(),
            "client closed (4001 bye now)"
        );
        assert_eq!(
            CloseReason::Client(Some((1000, String::new()))).describe(),
            "client closed (1000)"
        );
        assert_eq!(CloseReason::Client(None).describe(), "client went away");
    }
}
