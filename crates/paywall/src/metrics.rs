//! What the paywall did, counted per outcome, with the time settlements took, in Prometheus' text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not priced: passed through.
    Free,
    /// Priced and unpaid: 402.
    Required,
    /// A payment header that is not a payment: 400.
    Malformed,
    /// A payment for other terms or another resource: 402.
    Unmatched,
    /// A payment used already: 402.
    Replayed,
    /// A payment the facilitator found invalid: 402.
    Invalid,
    /// Paid, settled and served.
    Paid,
    /// Settlement failed: 402.
    NotSettled,
    /// The handler answered an error: not settled, passed on.
    HandlerFailed,
    /// No verdict from the facilitator, or the replay guard full: 503.
    Unavailable,
    /// Verified and served; settling in the background.
    Deferred,
    /// Paid with a channel voucher and served.
    ChannelPaid,
    /// A channel voucher refused: 402.
    ChannelRefused,
}

const OUTCOMES: [(Outcome, &str); 13] = [
    (Outcome::Free, "free"),
    (Outcome::Required, "payment_required"),
    (Outcome::Malformed, "malformed"),
    (Outcome::Unmatched, "unmatched"),
    (Outcome::Replayed, "replayed"),
    (Outcome::Invalid, "invalid"),
    (Outcome::Paid, "paid"),
    (Outcome::NotSettled, "not_settled"),
    (Outcome::HandlerFailed, "handler_failed"),
    (Outcome::Unavailable, "unavailable"),
    (Outcome::Deferred, "deferred"),
    (Outcome::ChannelPaid, "channel_paid"),
    (Outcome::ChannelRefused, "channel_refused"),
];

/// Upper bounds of the settlement time histogram, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The counters, shared by every request of one layer.
#[derive(Debug, Default)]
pub struct Metrics {
    outcomes: [AtomicU64; OUTCOMES.len()],
    settle_buckets: [AtomicU64; BUCKETS.len()],
    settle_count: AtomicU64,
    settle_micros: AtomicU64,
    deferred_pending: AtomicU64,
    deferred_settled: AtomicU64,
    deferred_failed: AtomicU64,
}

impl Metrics {
    /// Counts one request's outcome.
    pub fn count(&self, outcome: Outcome) {
        if let Some(index) = OUTCOMES.iter().position(|(o, _)| *o == outcome) {
            self.outcomes[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many requests ended in `outcome`.
    pub fn outcome(&self, outcome: Outcome) -> u64 {
        OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .map_or(0, |i| self.outcomes[i].load(Ordering::Relaxed))
    }

    /// Records how long a settlement took.
    pub fn settled_in(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.settle_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.settle_count.fetch_add(1, Ordering::Relaxed);
        self.settle_micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// A deferred settlement started.
    pub fn deferred_started(&self) {
        self.deferred_pending.fetch_add(1, Ordering::Relaxed);
    }

    /// A deferred settlement ended, settled or not.
    pub fn deferred_done(&self, settled: bool) {
        self.deferred_pending.fetch_sub(1, Ordering::Relaxed);
        let counter = if settled { &self.deferred_settled } else { &self.deferred_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Deferred settlements not finished yet.
    pub fn deferred_pending(&self) -> u64 {
        self.deferred_pending.load(Ordering::Relaxed)
    }

    /// The counters in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP x402_paywall_requests_total Priced and unpriced requests by outcome.\n");
        out.push_str("# TYPE x402_paywall_requests_total counter\n");
        for ((_, name), count) in OUTCOMES.iter().zip(&self.outcomes) {
            let _ = writeln!(
                out,
                "x402_paywall_requests_total{{outcome=\"{name}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP x402_paywall_settle_seconds Time the facilitator took to settle.\n");
        out.push_str("# TYPE x402_paywall_settle_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.settle_buckets) {
            let _ = writeln!(
                out,
                "x402_paywall_settle_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.settle_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "x402_paywall_settle_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.settle_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "x402_paywall_settle_seconds_sum {sum}");
        let _ = writeln!(out, "x402_paywall_settle_seconds_count {count}");
        out.push_str("# HELP x402_paywall_deferred_pending Deferred settlements not finished.\n");
        out.push_str("# TYPE x402_paywall_deferred_pending gauge\n");
        let _ = writeln!(out, "x402_paywall_deferred_pending {}", self.deferred_pending());
        out.push_str("# HELP x402_paywall_deferred_total Deferred settlements by result.\n");
        out.push_str("# TYPE x402_paywall_deferred_total counter\n");
        let settled = self.deferred_settled.load(Ordering::Relaxed);
        let failed = self.deferred_failed.load(Ordering::Relaxed);
        let _ = writeln!(out, "x402_paywall_deferred_total{{result=\"settled\"}} {settled}");
        let _ = writeln!(out, "x402_paywall_deferred_total{{result=\"failed\"}} {failed}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_settle_times_are_rendered() {
        let metrics = Metrics::default();
        metrics.count(Outcome::Paid);
        metrics.count(Outcome::Paid);
        metrics.settled_in(Duration::from_millis(30));
        let text = metrics.render();
        assert!(text.contains("x402_paywall_requests_total{outcome=\"paid\"} 2"), "{text}");
        assert!(text.contains("x402_paywall_settle_seconds_bucket{le=\"0.025\"} 0"), "{text}");
        assert!(text.contains("x402_paywall_settle_seconds_bucket{le=\"0.05\"} 1"), "{text}");
        assert!(text.contains("x402_paywall_settle_seconds_count 1"), "{text}");
        assert_eq!(metrics.outcome(Outcome::Paid), 2);
    }
}
