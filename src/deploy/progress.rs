//! Progress a person can follow while steps run in parallel, on stderr.
//!
//! On a terminal: one live line per running step, with a spinner and its elapsed time;
//! finished steps stay as `✓ label (1.2 s)`. Without a terminal: one plain line when a
//! step starts and one when it ends, so CI logs read top to bottom.

use super::graph::Events;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

enum Mode {
    Live(MultiProgress),
    Plain,
}

pub struct Progress {
    mode: Mode,
    labels: Vec<String>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    started: Vec<Option<Instant>>,
    took: Vec<Option<Duration>>,
    bars: Vec<Option<ProgressBar>>,
}

impl Progress {
    /// Progress for steps with these labels; live when stderr is a terminal.
    pub fn new(labels: Vec<String>) -> Progress {
        let live = std::io::stderr().is_terminal();
        let n = labels.len();
        Progress {
            mode: if live {
                Mode::Live(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            } else {
                Mode::Plain
            },
            labels,
            state: Mutex::new(State {
                started: vec![None; n],
                took: vec![None; n],
                bars: vec![None; n],
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slowest finished step and its duration.
    pub fn slowest(&self) -> Option<(String, Duration)> {
        let s = self.state();
        s.took
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|d| (self.labels[i].clone(), d)))
            .max_by_key(|(_, d)| *d)
    }
}

/// A line on stderr that does not tear live progress lines.
pub fn note(msg: &str) {
    eprintln!("{msg}");
}

impl Events for Progress {
    fn started(&self, i: usize) {
        let label = &self.labels[i];
        let mut s = self.state();
        s.started[i] = Some(Instant::now());
        match &self.mode {
            Mode::Live(mp) => {
                let pb = mp.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb.set_message(label.clone());
                pb.enable_steady_tick(Duration::from_millis(100));
                s.bars[i] = Some(pb);
            }
            Mode::Plain => eprintln!("  started  {label}"),
        }
    }

    fn finished(&self, i: usize, ok: bool) {
        let label = &self.labels[i];
        let mut s = self.state();
        let took = s.started[i].map(|t| t.elapsed()).unwrap_or_default();
        s.took[i] = Some(took);
        let line = format!(
            "{} {label} ({:.1} s){}",
            if ok { "✓" } else { "✗" },
            took.as_secs_f64(),
            if ok { "" } else { " failed" }
        );
        match &self.mode {
            Mode::Live(_) => {
                if let Some(pb) = s.bars[i].take() {
                    pb.set_style(
                        ProgressStyle::with_template("{msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.finish_with_message(line);
                }
            }
            Mode::Plain => eprintln!("  {line}"),
        }
    }
}
