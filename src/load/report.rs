//! What `bazaar load` reports: the run, the figures per operation and the SLOs.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use super::{slo::SloResult, stats::WindowStats};

/// The result of a load run; printed as a table or as one JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The base URL the load went to.
    pub target: String,
    pub seed: u64,
    /// Scenario starts per second asked for.
    pub rate: f64,
    /// The planned length of the schedule, in seconds.
    pub duration_s: f64,
    /// The mix that ran, `name=weight,…`.
    pub mix: String,
    /// Customers registered for the run.
    pub users: usize,
    /// Products found in the catalog.
    pub products: usize,
    /// Arrivals in the schedule.
    pub scheduled: u64,
    /// Arrivals started.
    pub started: u64,
    /// Arrivals not started because too many scenarios were in flight.
    pub dropped: u64,
    /// Whether the run was stopped before the end of its schedule.
    pub stopped_early: bool,
    /// How long the schedule ran, in seconds.
    pub schedule_s: f64,
    /// Arrivals started per second of schedule.
    pub achieved_rate: f64,
    /// From t = 0 until the last scenario ended, in seconds.
    pub elapsed_s: f64,
    /// Arrivals started per scenario.
    pub scenarios: BTreeMap<String, u64>,
    /// The figures per operation over the whole run.
    #[serde(flatten)]
    pub stats: WindowStats,
    /// How each `--slo` came out.
    pub slos: Vec<SloResult>,
    /// Things the run changed or could not do (e.g. a scenario dropped from the mix).
    pub notices: Vec<String>,
    /// The record file, when there was one.
    pub record: Option<String>,
}

impl LoadReport {
    /// Whether every SLO was met (true without SLOs).
    pub fn slos_met(&self) -> bool {
        self.slos.iter().all(|s| s.met)
    }

    /// The report as printed on a terminal.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Load on {}: {} scenarios/s for {:.1} s, seed {}, {} customers, {} products",
            self.target,
            trim_float(self.rate),
            self.duration_s,
            self.seed,
            self.users,
            self.products
        );
        let _ = writeln!(
            out,
            "Scenarios: {} scheduled, {} started ({:.2}/s achieved over {:.1} s{}), {} dropped; the last ended {:.1} s after the start",
            self.scheduled,
            self.started,
            self.achieved_rate,
            self.schedule_s,
            if self.stopped_early { ", stopped early" } else { "" },
            self.dropped,
            self.elapsed_s
        );
        let per_scenario: Vec<String> = self
            .scenarios
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        if !per_scenario.is_empty() {
            let _ = writeln!(out, "  {}", per_scenario.join(", "));
        }
        let _ = writeln!(out);
        out.push_str(&self.stats.render_table());
        let _ = writeln!(
            out,
            "Latency: from when each request was due (its arrival, or the end of the step before), retries and waits included."
        );
        let _ = writeln!(
            out,
            "COUNT: requests (final answers); ERR: no answer (timeout, refused, reset); RETRIES: attempts after the first."
        );
        for n in &self.notices {
            let _ = writeln!(out, "Note: {n}");
        }
        if let Some(r) = &self.record {
            let _ = writeln!(out, "Recorded every attempt in {r}");
        }
        if !self.slos.is_empty() {
            let _ = writeln!(out);
            for s in &self.slos {
                let _ = writeln!(out, "{}", s.line());
            }
        }
        out
    }
}

/// `20`, `2.5`, `0.125`.
fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::load::{
        mix::Scenario,
        record::{Attempt, Op},
        slo::parse_slos,
        stats::summarize,
    };

    fn report() -> LoadReport {
        let mut a = crate::load::client::blank_attempt(Op::PlaceOrder, None);
        a.scenario = Scenario::OrderVisa;
        a.status = Some(201);
        a.latency_ms = 12.0;
        let b = Attempt {
            op: Op::Browse,
            status: Some(503),
            latency_ms: 30.0,
            ..a.clone()
        };
        let stats = summarize(&[a, b], 0.0, 1000.0);
        let slos = parse_slos("p99<20ms,errors<60%")
            .unwrap()
            .iter()
            .map(|s| s.check(&stats))
            .collect();
        LoadReport {
            target: "http://127.0.0.1:8080".into(),
            seed: 1,
            rate: 2.5,
            duration_s: 1.0,
            mix: "browse=1,order_visa=1".into(),
            users: 3,
            products: 24,
            scheduled: 3,
            started: 2,
            dropped: 1,
            stopped_early: false,
            schedule_s: 1.0,
            achieved_rate: 2.0,
            elapsed_s: 1.2,
            scenarios: [("browse".to_owned(), 1), ("order_visa".to_owned(), 1)].into(),
            stats,
            slos,
            notices: vec!["restock dropped".into()],
            record: None,
        }
    }

    #[test]
    fn the_report_prints_the_run_the_table_and_the_slos() {
        let r = report();
        assert!(!r.slos_met());
        let text = r.render_table();
        assert!(
            text.starts_with("Load on http://127.0.0.1:8080: 2.5 scenarios/s for 1.0 s, seed 1"),
            "{text}"
        );
        assert!(
            text.contains("3 scheduled, 2 started (2.00/s achieved over 1.0 s), 1 dropped"),
            "{text}"
        );
        assert!(text.contains("\nplace_order "), "{text}");
        assert!(text.contains("\ntotal "), "{text}");
        assert!(
            text.contains("SLO p99<20ms: MISSED (p99 30.0 ms)"),
            "{text}"
        );
        assert!(
            text.contains("SLO errors<60%: met (errors 50.00 %)"),
            "{text}"
        );
        assert!(text.contains("Note: restock dropped"), "{text}");
    }

    #[test]
    fn the_json_report_has_operations_by_name_with_status_classes() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["operations"]["place_order"]["2xx"], 1);
        assert_eq!(json["operations"]["browse"]["5xx"], 1);
        assert_eq!(json["total"]["count"], 2);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["slos"][0]["met"], false);
        assert_eq!(json["slos"][1]["slo"], "errors<60%");
        assert_eq!(json["scenarios"]["browse"], 1);
    }
}
