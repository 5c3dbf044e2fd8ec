//! Prometheus metrics, kept as plain counters: syncs, bytes, errors and a latency histogram.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug, Default)]
pub struct Metrics {
    syncs: AtomicU64,
    errors: AtomicU64,
    docs_stored: AtomicU64,
    /// Merges done again because another server process wrote a document at the same moment.
    merges_retried: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
}

impl Metrics {
    /// Records one sync request; `bytes_out` is None when it failed.
    pub fn sync_finished(&self, bytes_in: usize, bytes_out: Option<usize>, took: Duration) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes_in as u64, Ordering::Relaxed);
        match bytes_out {
            Some(n) => self.bytes_out.fetch_add(n as u64, Ordering::Relaxed),
            None => self.errors.fetch_add(1, Ordering::Relaxed),
        };
        let secs = took.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Documents whose new changes a sync stored (a retried push stores nothing twice).
    pub fn docs_stored(&self, n: usize) {
        self.docs_stored.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn merge_retried(&self) {
        self.merges_retried.fetch_add(1, Ordering::Relaxed);
    }

    pub fn merges_retried(&self) -> u64 {
        self.merges_retried.load(Ordering::Relaxed)
    }

    pub fn stored_total(&self) -> u64 {
        self.docs_stored.load(Ordering::Relaxed)
    }

    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(&mut out, "outpost_syncs_total", "Sync requests answered.", self.syncs());
        counter(
            &mut out,
            "outpost_sync_errors_total",
            "Sync requests that failed.",
            self.errors.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "outpost_sync_bytes_received_total",
            "Sync request bytes.",
            self.bytes_in.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "outpost_sync_bytes_sent_total",
            "Sync response bytes.",
            self.bytes_out.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "outpost_merges_retried_total",
            "Merges done again because another server process wrote a document at the same moment.",
            self.merges_retried(),
        );
        let name = "outpost_sync_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to answer a sync request.\n# TYPE {name} histogram"
        );
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}
