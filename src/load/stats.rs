//! Figures per operation from attempts: counts by answer class, retries and latency
//! percentiles. The same code sums a run as it goes and any time window of a record.

use std::{collections::BTreeMap, fmt::Write as _};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::record::{Attempt, Op};

/// The largest latency a histogram holds, in µs (one hour); longer ones count as one hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// The figures of one operation (or of all of them) over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpStats {
    /// Requests (their final answers).
    pub count: u64,
    /// Final answers by class.
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    /// Requests whose final attempt got no HTTP answer (timeout, refused, reset…).
    pub transport_errors: u64,
    /// Attempts after the first one (re-sent after an error, a 429 or a 401).
    pub retries: u64,
    /// Latency percentiles in ms, from when each request was due to its final answer.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// The figures of a window of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WindowStats {
    /// The window: requests due in `[from_ms, to_ms)` after t = 0.
    pub from_ms: f64,
    pub to_ms: f64,
    /// Per operation (`place_order`, `browse`, …); operations with no request are left out.
    pub operations: BTreeMap<String, OpStats>,
    /// Every operation together.
    pub total: OpStats,
    /// Final answers that were a 5xx or a transport error.
    pub errors: u64,
    /// `errors` over all final answers, in percent (0 when there were none).
    pub errors_pct: f64,
}

/// A running sum of attempts.
#[derive(Debug, Clone)]
pub struct Aggregator {
    ops: BTreeMap<Op, Acc>,
    total: Acc,
}

#[derive(Debug, Clone)]
struct Acc {
    stats: OpStats,
    latency_us: Histogram<u64>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            stats: OpStats::default(),
            latency_us: latency_histogram(),
        }
    }

    fn add(&mut self, a: &Attempt) {
        if a.attempt > 1 {
            self.stats.retries += 1;
        }
        if !a.is_final {
            return;
        }
        let s = &mut self.stats;
        s.count += 1;
        match a.status {
            None => s.transport_errors += 1,
            Some(500..) => s.s5xx += 1,
            Some(400..=499) => s.s4xx += 1,
            Some(300..=399) => s.s3xx += 1,
            Some(_) => s.s2xx += 1,
        }
        let us = (a.latency_ms * 1000.0).round().max(1.0) as u64;
        self.latency_us.saturating_record(us);
    }

    fn stats(&self) -> OpStats {
        let h = &self.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let mut s = self.stats.clone();
        if !h.is_empty() {
            s.p50_ms = ms(h.value_at_quantile(0.50));
            s.p90_ms = ms(h.value_at_quantile(0.90));
            s.p99_ms = ms(h.value_at_quantile(0.99));
            s.p999_ms = ms(h.value_at_quantile(0.999));
            s.max_ms = ms(h.max());
        }
        s
    }
}

/// A histogram of µs from 1 µs to an hour at 3 significant digits.
#[allow(
    clippy::expect_used,
    reason = "constant bounds that hdrhistogram accepts (low ≥ 1, high ≥ 2·low, 3 digits)"
)]
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

impl Default for Aggregator {
    fn default() -> Aggregator {
        Aggregator::new()
    }
}

impl Aggregator {
    pub fn new() -> Aggregator {
        Aggregator {
            ops: BTreeMap::new(),
            total: Acc::new(),
        }
    }

    /// Counts one attempt (only final ones count as requests; later ones as retries).
    pub fn add(&mut self, a: &Attempt) {
        self.ops.entry(a.op).or_insert_with(Acc::new).add(a);
        self.total.add(a);
    }

    /// Final answers so far that were a 5xx or a transport error.
    pub fn errors(&self) -> u64 {
        self.total.stats.s5xx + self.total.stats.transport_errors
    }

    /// The p99 of every final answer so far, in ms (0 before the first).
    pub fn p99_ms(&self) -> f64 {
        if self.total.latency_us.is_empty() {
            0.0
        } else {
            self.total.latency_us.value_at_quantile(0.99) as f64 / 1000.0
        }
    }

    /// The figures, labelled as the window `[from_ms, to_ms)`.
    pub fn stats(&self, from_ms: f64, to_ms: f64) -> WindowStats {
        let total = self.total.stats();
        let errors = total.s5xx + total.transport_errors;
        WindowStats {
            from_ms,
            to_ms,
            operations: self
                .ops
                .iter()
                .map(|(op, acc)| (op.as_str().to_owned(), acc.stats()))
                .collect(),
            errors,
            errors_pct: if total.count == 0 {
                0.0
            } else {
                errors as f64 * 100.0 / total.count as f64
            },
            total,
        }
    }
}

/// The figures of the requests of a record that were due in `[from_ms, to_ms)` after t = 0:
/// the same as a run reports, for a phase of it (before, during and after a fault).
#[allow(dead_code, reason = "phases of a record for `bazaar chaos`")]
pub fn summarize(attempts: &[Attempt], from_ms: f64, to_ms: f64) -> WindowStats {
    let mut agg = Aggregator::new();
    for a in attempts
        .iter()
        .filter(|a| a.t_ms >= from_ms && a.t_ms < to_ms)
    {
        agg.add(a);
    }
    agg.stats(from_ms, to_ms)
}

impl WindowStats {
    /// The table of operations and a total line, latencies in ms.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>8} {:>6} {:>6} {:>6} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "OPERATION",
            "COUNT",
            "2XX",
            "3XX",
            "4XX",
            "5XX",
            "ERR",
            "RETRIES",
            "P50 ms",
            "P90 ms",
            "P99 ms",
            "MAX ms"
        );
        let row = |out: &mut String, name: &str, s: &OpStats| {
            let _ = writeln!(
                out,
                "{:<12} {:>8} {:>8} {:>6} {:>6} {:>6} {:>6} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                name,
                s.count,
                s.s2xx,
                s.s3xx,
                s.s4xx,
                s.s5xx,
                s.transport_errors,
                s.retries,
                s.p50_ms,
                s.p90_ms,
                s.p99_ms,
                s.max_ms
            );
        };
        for op in Op::ALL {
            if let Some(s) = self.operations.get(op.as_str()) {
                row(&mut out, op.as_str(), s);
            }
        }
        row(&mut out, "total", &self.total);
        let _ = writeln!(
            out,
            "errors (final answer 5xx or no answer): {} of {} ({:.2} %)",
            self.errors, self.total.count, self.errors_pct
        );
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::load::{mix::Scenario, retry::TransportError};

    fn attempt(t_ms: f64, op: Op, n: u32, is_final: bool, status: Option<u16>, ms: f64) -> Attempt {
        Attempt {
            t_ms,
            op,
            scenario: Scenario::OrderVisa,
            attempt: n,
            is_final,
            status,
            error: status.is_none().then_some(TransportError::Timeout),
            latency_ms: ms,
            user: None,
            key: None,
            order_id: None,
            token: None,
            postal_code: None,
            items: None,
            sku: None,
            quantity: None,
            replayed: None,
        }
    }

    fn record() -> Vec<Attempt> {
        vec![
            // A placement that got a 503, then a 201.
            attempt(0.0, Op::PlaceOrder, 1, false, Some(503), 10.0),
            attempt(0.0, Op::PlaceOrder, 2, true, Some(201), 150.0),
            // A placement that timed out six times.
            attempt(100.0, Op::PlaceOrder, 6, true, None, 60_000.0),
            attempt(200.0, Op::Browse, 1, true, Some(200), 5.0),
            attempt(300.0, Op::Cancel, 1, true, Some(409), 7.0),
            attempt(1500.0, Op::Browse, 1, true, Some(200), 3.0),
        ]
    }

    #[test]
    fn final_answers_are_counted_by_class_and_later_attempts_as_retries() {
        let w = summarize(&record(), 0.0, f64::INFINITY);
        let place = &w.operations["place_order"];
        assert_eq!(place.count, 2);
        assert_eq!(place.s2xx, 1);
        assert_eq!(place.s5xx, 0, "the 503 was not final");
        assert_eq!(place.transport_errors, 1);
        assert_eq!(place.retries, 2);
        assert!((place.max_ms - 60_000.0).abs() < 60.0, "{}", place.max_ms);
        assert_eq!(w.operations["cancel"].s4xx, 1);
        assert_eq!(w.total.count, 5);
        assert_eq!(w.errors, 1);
        assert!((w.errors_pct - 20.0).abs() < 1e-9);
        assert!(!w.operations.contains_key("restock"));
    }

    #[test]
    fn a_window_takes_the_requests_due_inside_it() {
        let w = summarize(&record(), 100.0, 1500.0);
        assert_eq!(w.total.count, 3);
        assert_eq!(w.operations["browse"].count, 1);
        assert!((w.operations["browse"].p50_ms - 5.0).abs() < 0.01);
        let late = summarize(&record(), 1000.0, 2000.0);
        assert_eq!(late.total.count, 1);
        assert_eq!(late.errors_pct, 0.0);
        let empty = summarize(&record(), 5000.0, 6000.0);
        assert_eq!(empty.total, OpStats::default());
    }

    #[test]
    fn percentiles_come_from_the_latency_histogram() {
        let attempts: Vec<Attempt> = (1..=1000)
            .map(|i| attempt(i as f64, Op::Browse, 1, true, Some(200), i as f64))
            .collect();
        let s = summarize(&attempts, 0.0, 2000.0).total;
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{}", s.p50_ms);
        assert!((s.p90_ms - 900.0).abs() < 1.0, "{}", s.p90_ms);
        assert!((s.p99_ms - 990.0).abs() < 1.0, "{}", s.p99_ms);
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{}", s.max_ms);
    }

    #[test]
    fn the_table_lists_operations_in_order_with_a_total() {
        let text = summarize(&record(), 0.0, f64::INFINITY).render_table();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("OPERATION"));
        assert!(lines[1].starts_with("place_order"));
        assert!(lines[2].starts_with("cancel"));
        assert!(lines[3].starts_with("browse"));
        let total: Vec<&str> = lines[4].split_whitespace().collect();
        assert_eq!(total[..8], ["total", "5", "3", "0", "1", "0", "1", "2"]);
        assert!(text.contains("1 of 5 (20.00 %)"), "{text}");
    }
}
