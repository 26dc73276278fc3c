//! Counters and last latencies, as `:Zeke status` and the benchmarks read them. Times are in
//! milliseconds (f64) measured with `Instant`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latencies of the most recent completion that reached the editor.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// Request received → first suggestion delivered to the editor.
    pub ttft_ms: f64,
    /// Request received → last event delivered.
    pub total_ms: f64,
    /// Zeke's own share of `ttft_ms`: everything but the provider's time to first event.
    pub overhead_ms: f64,
}

#[derive(Default)]
pub struct Stats {
    pub completions_started: AtomicU64,
    pub completions_finished: AtomicU64,
    pub completions_cancelled: AtomicU64,
    pub completions_failed: AtomicU64,
    pub explains_started: AtomicU64,
    pub explains_finished: AtomicU64,
    /// Buffer events applied to the mirrors, and the time spent applying them (ns): Zeke's cost
    /// per keystroke in an attached buffer.
    pub mirror_events: AtomicU64,
    pub mirror_ns: AtomicU64,
    /// Mirrors dropped and re-read because an event did not fit (`:Zeke status`).
    pub mirror_resyncs: AtomicU64,
    last: Mutex<Option<Latency>>,
}

impl Stats {
    pub fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn last(&self) -> Option<Latency> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the first delivery of a completion.
    pub fn record_first(&self, ttft_ms: f64, overhead_ms: f64) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Latency {
            ttft_ms,
            total_ms: ttft_ms,
            overhead_ms,
        });
    }

    /// Records the final delivery of a completion.
    pub fn record_total(&self, total_ms: f64) {
        if let Some(l) = self.last.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            l.total_ms = total_ms;
        }
    }
}
