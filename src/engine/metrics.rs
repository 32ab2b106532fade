//! The engine's counters, gauges and histograms, rendered as Prometheus text at /metrics (after
//! the HTTP layer's request counts, which `server` keeps). Plain atomics: no exporter crate,
//! nothing to configure.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A Prometheus histogram with fixed buckets (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(value.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let total = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }
}

const TTFT_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const TOKEN_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

pub struct Metrics {
    pub prompt_tokens: AtomicU64,
    pub prompt_tokens_evaluated: AtomicU64,
    pub prompt_tokens_reused: AtomicU64,
    /// The part of `prompt_tokens_reused` kept in runs moved to a new position after an edit.
    pub prompt_tokens_reused_shifted: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub decode_steps: AtomicU64,
    pub decode_sequences: AtomicU64,
    pub queue_depth: AtomicU64,
    pub busy_slots: AtomicU64,
    pub slots: AtomicU64,
    pub time_to_first_token: Histogram,
    pub time_per_output_token: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            prompt_tokens: AtomicU64::new(0),
            prompt_tokens_evaluated: AtomicU64::new(0),
            prompt_tokens_reused: AtomicU64::new(0),
            prompt_tokens_reused_shifted: AtomicU64::new(0),
            generated_tokens: AtomicU64::new(0),
            decode_steps: AtomicU64::new(0),
            decode_sequences: AtomicU64::new(0),
            queue_depth: AtomicU64::new(0),
            busy_slots: AtomicU64::new(0),
            slots: AtomicU64::new(0),
            time_to_first_token: Histogram::new(TTFT_BUCKETS),
            time_per_output_token: Histogram::new(TOKEN_BUCKETS),
        }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                "duo_selfhost_prompt_tokens_total",
                "Prompt tokens of admitted requests.",
                &self.prompt_tokens,
            ),
            (
                "duo_selfhost_prompt_tokens_evaluated_total",
                "Prompt tokens run through the model (the rest came from the KV cache).",
                &self.prompt_tokens_evaluated,
            ),
            (
                "duo_selfhost_prompt_tokens_reused_total",
                "Prompt tokens reused from a slot's KV cache (common prefix and shifted runs).",
                &self.prompt_tokens_reused,
            ),
            (
                "duo_selfhost_prompt_tokens_reused_shifted_total",
                "Prompt tokens reused from runs of the cache moved to a new position after an edit.",
                &self.prompt_tokens_reused_shifted,
            ),
            (
                "duo_selfhost_generated_tokens_total",
                "Tokens generated.",
                &self.generated_tokens,
            ),
            (
                "duo_selfhost_decode_steps_total",
                "Batched decode calls.",
                &self.decode_steps,
            ),
            (
                "duo_selfhost_decode_sequences_total",
                "Sequences summed over decode calls (divided by steps: the mean batch width).",
                &self.decode_sequences,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let gauges = [
            (
                "duo_selfhost_queue_depth",
                "Requests waiting for a free slot.",
                &self.queue_depth,
            ),
            (
                "duo_selfhost_busy_slots",
                "Slots generating now.",
                &self.busy_slots,
            ),
            ("duo_selfhost_slots", "Slots (--parallel).", &self.slots),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        self.time_to_first_token.render(
            &mut out,
            "duo_selfhost_time_to_first_token_seconds",
            "From admission to the first generated token.",
        );
        self.time_per_output_token.render(
            &mut out,
            "duo_selfhost_time_per_output_token_seconds",
            "Between consecutive generated tokens of one request.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.time_to_first_token.observe(Duration::from_millis(30));
        m.time_to_first_token.observe(Duration::from_secs(3));
        let text = m.render();
        assert!(text.contains("duo_selfhost_time_to_first_token_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("duo_selfhost_time_to_first_token_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("duo_selfhost_time_to_first_token_seconds_count 2"));
    }
}
