//! The access log: one line per event on stderr, written by a thread of its own so a
//! slow terminal or a full pipe never holds up a connection. Lines are queued without
//! waiting (a bounded queue: when it is full, lines are counted as dropped and the
//! count is reported) and written in batches, one `write` per batch.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::Duration;

/// Lines queued before the log starts dropping them rather than wait.
const QUEUE: usize = 65_536;

enum Msg {
    Line(String),
    Flush(mpsc::Sender<()>),
}

#[derive(Clone)]
pub struct Log {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl Log {
    /// Starts the writer thread.
    pub fn start() -> Log {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let d = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("wsconn-log".into())
            .spawn(move || write_loop(rx, d));
        if let Err(e) = spawned {
            eprintln!("warning: no log thread ({e}); access log lines are dropped");
        }
        Log { tx, dropped }
    }

    /// Queues one line (without its newline); never blocks.
    pub fn line(&self, line: String) {
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A line stamped with the current time: `2026-05-16T17:30:27.357Z <text>`.
    pub fn info(&self, text: impl std::fmt::Display) {
        self.line(format!(
            "{} {text}",
            crate::gateway::iso_time(crate::gateway::now_ms())
        ));
    }

    /// Waits (bounded) until every queued line is written.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }
}

fn write_loop(rx: Receiver<Msg>, dropped: Arc<AtomicU64>) {
    let mut buf = String::with_capacity(64 * 1024);
    let mut reported = 0;
    while let Ok(first) = rx.recv() {
        let mut acks = Vec::new();
        let mut next = Some(first);
        // Take whatever else is queued, up to a batch, and write it in one go.
        while let Some(msg) = next {
            match msg {
                Msg::Line(l) => {
                    buf.push_str(&l);
                    buf.push('\n');
                }
                Msg::Flush(ack) => acks.push(ack),
            }
            next = if buf.len() < 256 * 1024 {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let lost = dropped.load(Ordering::Relaxed);
        if lost > reported {
            buf.push_str(&format!(
                "(the log queue was full: {} lines dropped)\n",
                lost - reported
            ));
            reported = lost;
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(buf.as_bytes());
        let _ = err.flush();
        drop(err);
        buf.clear();
        for a in acks {
            let _ = a.send(());
        }
    }
}
