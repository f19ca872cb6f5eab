//! Figures and how they are printed: latency summaries, ratios, the gateway tables and the
//! goal lines. Pure functions, so the formatting is tested without running anything.

use std::{collections::BTreeMap, fmt::Write as _};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::cpu::CpuFigures;

/// The goal for the latency the gateway adds to a request when it is not loaded.
pub const ADDED_P50_GOAL_US: i64 = 100;

/// Percentiles of a latency histogram recorded in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl LatencySummary {
    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min_us: h.min(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

/// `87 µs`, `1.24 ms`, `2.10 s`.
pub fn format_micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// A latency difference with its sign: `+65 µs`, `-12 µs`, `+1.20 ms`.
pub fn format_signed_micros(us: i64) -> String {
    let sign = if us < 0 { '-' } else { '+' };
    format!("{sign}{}", format_micros(us.unsigned_abs()))
}

/// A count rounded to a whole number, with thousands separators: `123,457`.
pub fn format_count(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let rounded = value.round().abs() as u64;
    let digits = rounded.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value.round() < 0.0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `value / baseline`, or `None` when there is no usable baseline.
pub fn ratio(value: f64, baseline: Option<f64>) -> Option<f64> {
    let baseline = baseline?;
    (baseline > 0.0 && baseline.is_finite() && value.is_finite()).then(|| value / baseline)
}

/// `1.23×`, or `-` when there is no ratio.
pub fn format_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}×"))
}

/// The outcome of a goal, as measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skipped,
}

impl Verdict {
    pub fn from_bool(ok: bool) -> Verdict {
        if ok {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "SKIPPED",
        }
    }
}

/// One goal line: what was compared and how it came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goal {
    pub goal: String,
    pub verdict: Verdict,
    pub detail: String,
}

impl Goal {
    pub fn line(&self) -> String {
        format!("{}: {} ({})", self.goal, self.verdict.as_str(), self.detail)
    }
}

/// The targets of the gateway bench, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Direct,
    GatewayPublic,
    GatewayAuth,
    Nginx,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct (upstream)",
            Target::GatewayPublic => "gateway (public route)",
            Target::GatewayAuth => "gateway (JWT + rate limit)",
            Target::Nginx => "nginx proxy_pass",
        }
    }
}

/// What the closed-loop run of one target measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadFigures {
    /// 2xx responses completed inside the measured window.
    pub requests_ok: u64,
    pub requests_per_second: f64,
    /// Latency of the 2xx responses.
    pub latency: LatencySummary,
    /// Non-2xx responses and failed requests inside the measured window.
    pub errors: u64,
    /// `"503"`, `"io"`, … → count.
    pub error_breakdown: BTreeMap<String, u64>,
    /// CPU of the server under test (the upstream for direct, else the proxy alone).
    pub server_cpu: Option<CpuFigures>,
}

/// What the unloaded run (one connection, sequential requests) of one target measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnloadedFigures {
    pub requests_ok: u64,
    pub latency: LatencySummary,
    pub errors: u64,
    pub error_breakdown: BTreeMap<String, u64>,
}

/// One target's figures, or why it was skipped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    pub target: Target,
    pub skipped: Option<String>,
    pub load: Option<LoadFigures>,
    pub unloaded: Option<UnloadedFigures>,
}

/// How the gateway bench was run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewaySettings {
    pub connections: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub workers: usize,
    pub unloaded_requests: u64,
    pub tokens: usize,
    pub cpus: usize,
}

/// One row of the result, with the ratios filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetReport {
    pub target: Target,
    pub label: &'static str,
    pub skipped: Option<String>,
    pub load: Option<LoadFigures>,
    pub unloaded: Option<UnloadedFigures>,
    /// Requests/s relative to nginx.
    pub ratio_to_nginx: Option<f64>,
    /// Requests/s relative to the upstream served directly.
    pub ratio_to_direct: Option<f64>,
    /// Unloaded p50 minus the direct unloaded p50, in µs.
    pub added_p50_us: Option<i64>,
}

/// Everything `bazaar bench gateway` found; printed as tables or as one JSON object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayReport {
    pub settings: GatewaySettings,
    pub targets: Vec<TargetReport>,
    pub goals: Vec<Goal>,
}

impl GatewayReport {
    pub fn build(settings: GatewaySettings, measured: Vec<Measured>) -> GatewayReport {
        let rps = |t: Target| {
            measured
                .iter()
                .find(|m| m.target == t)
                .and_then(|m| m.load.as_ref())
                .map(|l| l.requests_per_second)
        };
        let unloaded_p50 = |t: Target| {
            measured
                .iter()
                .find(|m| m.target == t)
                .and_then(|m| m.unloaded.as_ref())
                .filter(|u| u.requests_ok > 0)
                .map(|u| u.latency.p50_us as i64)
        };
        let direct_p50 = unloaded_p50(Target::Direct);
        let targets: Vec<TargetReport> = measured
            .iter()
            .map(|m| {
                let own = m.load.as_ref().map(|l| l.requests_per_second);
                TargetReport {
                    target: m.target,
                    label: m.target.label(),
                    skipped: m.skipped.clone(),
                    load: m.load.clone(),
                    unloaded: m.unloaded.clone(),
                    ratio_to_nginx: own.and_then(|v| ratio(v, rps(Target::Nginx))),
                    ratio_to_direct: own.and_then(|v| ratio(v, rps(Target::Direct))),
                    added_p50_us: match (unloaded_p50(m.target), direct_p50) {
                        (Some(p), Some(d)) if m.target != Target::Direct => Some(p - d),
                        _ => None,
                    },
                }
            })
            .collect();
        let added = |t: Target| {
            targets
                .iter()
                .find(|r| r.target == t)
                .and_then(|r| r.added_p50_us)
        };
        let goals = vec![
            throughput_goal(rps(Target::GatewayAuth), rps(Target::Nginx)),
            added_latency_goal(added(Target::GatewayPublic), added(Target::GatewayAuth)),
        ];
        GatewayReport {
            settings,
            targets,
            goals,
        }
    }

    /// The tables and goal lines, as printed on a terminal.
    pub fn render(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Gateway benchmark: {} connections, {} s measured after {} s warm-up, {} worker threads per server, {} CPUs",
            s.connections, s.duration_s, s.warmup_s, s.workers, s.cpus
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<28} {:>10} {:>10} {:>10} {:>8} {:>9} {:>10} {:>10} {:>6}",
            "TARGET", "REQ/S", "P50", "P99", "ERRORS", "VS NGINX", "VS DIRECT", "CPU/REQ", "CORES"
        );
        for t in &self.targets {
            match (&t.skipped, &t.load) {
                (Some(reason), _) => {
                    let _ = writeln!(out, "{:<28} skipped: {reason}", t.label);
                }
                (None, Some(l)) => {
                    let (per_request, cores) = l.server_cpu.map_or_else(
                        || ("-".to_owned(), "-".to_owned()),
                        |c| {
                            (
                                format_micros(c.us_per_request.round() as u64),
                                format!("{:.2}", c.cores),
                            )
                        },
                    );
                    let _ = writeln!(
                        out,
                        "{:<28} {:>10} {:>10} {:>10} {:>8} {:>9} {:>10} {:>10} {:>6}",
                        t.label,
                        format_count(l.requests_per_second),
                        format_micros(l.latency.p50_us),
                        format_micros(l.latency.p99_us),
                        format_count(l.errors as f64),
                        format_ratio(t.ratio_to_nginx),
                        format_ratio(t.ratio_to_direct),
                        per_request,
                        cores,
                    );
                }
                (None, None) => {
                    let _ = writeln!(out, "{:<28} not measured", t.label);
                }
            }
        }
        for t in &self.targets {
            if let Some(l) = t.load.as_ref().filter(|l| l.errors > 0) {
                let _ = writeln!(
                    out,
                    "  {} errors: {}",
                    t.label,
                    breakdown(&l.error_breakdown)
                );
            }
        }
        let _ = writeln!(
            out,
            "CPU/REQ and CORES: CPU time of the server under test (the upstream for direct, the proxy alone otherwise)."
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Unloaded: 1 connection, {} sequential requests",
            format_count(s.unloaded_requests as f64)
        );
        let _ = writeln!(
            out,
            "{:<28} {:>10} {:>10} {:>8} {:>12}",
            "TARGET", "P50", "P99", "ERRORS", "ADDED P50"
        );
        for t in &self.targets {
            if let Some(u) = &t.unloaded {
                let added = t
                    .added_p50_us
                    .map_or_else(|| "-".to_owned(), format_signed_micros);
                let _ = writeln!(
                    out,
                    "{:<28} {:>10} {:>10} {:>8} {:>12}",
                    t.label,
                    format_micros(u.latency.p50_us),
                    format_micros(u.latency.p99_us),
                    format_count(u.errors as f64),
                    added
                );
            }
        }
        let added = |target: Target| {
            self.targets
                .iter()
                .find(|t| t.target == target)
                .and_then(|t| t.added_p50_us)
                .map_or_else(|| "-".to_owned(), format_signed_micros)
        };
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Latency the gateway adds unloaded (p50 minus direct p50): public route {}, JWT + rate limit {}",
            added(Target::GatewayPublic),
            added(Target::GatewayAuth)
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "Goals (as measured):");
        for g in &self.goals {
            let _ = writeln!(out, "  {}", g.line());
        }
        out
    }
}

fn throughput_goal(auth: Option<f64>, nginx: Option<f64>) -> Goal {
    let goal = "gateway with auth+rate limit ≥ nginx req/s".to_owned();
    match (auth, nginx) {
        (Some(a), Some(n)) => Goal {
            goal,
            verdict: Verdict::from_bool(a >= n),
            detail: format!(
                "{} vs {} req/s, {}",
                format_count(a),
                format_count(n),
                format_ratio(ratio(a, Some(n)))
            ),
        },
        (_, None) => Goal {
            goal,
            verdict: Verdict::Skipped,
            detail: "nginx was not measured".into(),
        },
        (None, _) => Goal {
            goal,
            verdict: Verdict::Skipped,
            detail: "the gateway was not measured".into(),
        },
    }
}

fn added_latency_goal(public: Option<i64>, auth: Option<i64>) -> Goal {
    let goal = format!("gateway adds ≤ {ADDED_P50_GOAL_US} µs p50 unloaded");
    match (public, auth) {
        (Some(p), Some(a)) => Goal {
            goal,
            verdict: Verdict::from_bool(p <= ADDED_P50_GOAL_US && a <= ADDED_P50_GOAL_US),
            detail: format!(
                "public {}, JWT + rate limit {}",
                format_signed_micros(p),
                format_signed_micros(a)
            ),
        },
        _ => Goal {
            goal,
            verdict: Verdict::Skipped,
            detail: "not measured".into(),
        },
    }
}

/// `503: 12, io: 3`.
pub fn breakdown(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in values {
            h.record(*v).unwrap();
        }
        h
    }

    fn load(rps: f64, p50: u64) -> LoadFigures {
        LoadFigures {
            requests_ok: (rps * 10.0) as u64,
            requests_per_second: rps,
            latency: LatencySummary {
                p50_us: p50,
                p99_us: p50 * 3,
                ..LatencySummary::default()
            },
            errors: 0,
            error_breakdown: BTreeMap::new(),
            server_cpu: CpuFigures::new(
                std::time::Duration::from_secs(15),
                std::time::Duration::from_secs(10),
                (rps * 10.0) as u64,
            ),
        }
    }

    fn unloaded(p50: u64) -> UnloadedFigures {
        UnloadedFigures {
            requests_ok: 3000,
            latency: LatencySummary {
                count: 3000,
                p50_us: p50,
                p99_us: p50 * 2,
                ..LatencySummary::default()
            },
            errors: 0,
            error_breakdown: BTreeMap::new(),
        }
    }

    fn measured(target: Target, rps: f64, p50: u64) -> Measured {
        Measured {
            target,
            skipped: None,
            load: Some(load(rps, 900)),
            unloaded: Some(unloaded(p50)),
        }
    }

    fn settings() -> GatewaySettings {
        GatewaySettings {
            connections: 64,
            duration_s: 20.0,
            warmup_s: 2.0,
            workers: 2,
            unloaded_requests: 3000,
            tokens: 1000,
            cpus: 2,
        }
    }

    #[test]
    fn a_histogram_summary_reports_its_percentiles() {
        let values: Vec<u64> = (1..=1000).collect();
        let s = LatencySummary::from_histogram(&histogram(&values));
        assert_eq!(s.count, 1000);
        assert_eq!(s.min_us, 1);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p99_us, 990);
        assert_eq!(s.max_us, 1000);
        assert!((s.mean_us - 500.5).abs() < 1.0);
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        assert_eq!(
            LatencySummary::from_histogram(&histogram(&[])),
            LatencySummary::default()
        );
    }

    #[test]
    fn micros_are_printed_in_the_unit_that_fits() {
        assert_eq!(format_micros(87), "87 µs");
        assert_eq!(format_micros(999), "999 µs");
        assert_eq!(format_micros(1_240), "1.24 ms");
        assert_eq!(format_micros(2_100_000), "2.10 s");
        assert_eq!(format_signed_micros(65), "+65 µs");
        assert_eq!(format_signed_micros(-12), "-12 µs");
        assert_eq!(format_signed_micros(0), "+0 µs");
    }

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(format_count(0.0), "0");
        assert_eq!(format_count(999.4), "999");
        assert_eq!(format_count(1_000.0), "1,000");
        assert_eq!(format_count(123_456.7), "123,457");
        assert_eq!(format_count(12_345_678.0), "12,345,678");
        assert_eq!(format_count(-1_500.0), "-1,500");
        assert_eq!(format_count(f64::NAN), "-");
    }

    #[test]
    fn a_ratio_needs_a_positive_baseline() {
        assert_eq!(ratio(150.0, Some(100.0)), Some(1.5));
        assert_eq!(ratio(150.0, Some(0.0)), None);
        assert_eq!(ratio(150.0, None), None);
        assert_eq!(format_ratio(Some(1.5)), "1.50×");
        assert_eq!(format_ratio(None), "-");
    }

    #[test]
    fn the_report_relates_every_target_to_nginx_and_to_direct() {
        let report = GatewayReport::build(
            settings(),
            vec![
                measured(Target::Direct, 40_000.0, 50),
                measured(Target::GatewayPublic, 30_000.0, 110),
                measured(Target::GatewayAuth, 20_000.0, 140),
                measured(Target::Nginx, 25_000.0, 90),
            ],
        );
        let auth = report
            .targets
            .iter()
            .find(|t| t.target == Target::GatewayAuth)
            .unwrap();
        assert_eq!(auth.ratio_to_nginx, Some(0.8));
        assert_eq!(auth.ratio_to_direct, Some(0.5));
        assert_eq!(auth.added_p50_us, Some(90));
        let direct = report
            .targets
            .iter()
            .find(|t| t.target == Target::Direct)
            .unwrap();
        assert_eq!(direct.added_p50_us, None);
        assert_eq!(report.goals[0].verdict, Verdict::Fail);
        // Public adds 60 µs and auth 90 µs: both within the goal.
        assert_eq!(report.goals[1].verdict, Verdict::Pass);
    }

    #[test]
    fn goals_pass_when_the_gateway_is_at_least_as_fast_as_nginx_and_adds_little() {
        let report = GatewayReport::build(
            settings(),
            vec![
                measured(Target::Direct, 40_000.0, 50),
                measured(Target::GatewayPublic, 30_000.0, 110),
                measured(Target::GatewayAuth, 26_000.0, 150),
                measured(Target::Nginx, 25_000.0, 90),
            ],
        );
        assert_eq!(report.goals[0].verdict, Verdict::Pass);
        assert_eq!(report.goals[1].verdict, Verdict::Pass);
        let text = report.render();
        assert!(
            text.contains(
                "gateway with auth+rate limit ≥ nginx req/s: PASS (26,000 vs 25,000 req/s, 1.04×)"
            ),
            "{text}"
        );
        assert!(text.contains("gateway adds ≤ 100 µs p50 unloaded: PASS (public +60 µs, JWT + rate limit +100 µs)"), "{text}");
    }

    #[test]
    fn a_skipped_nginx_skips_the_throughput_goal_and_leaves_no_ratio() {
        let report = GatewayReport::build(
            settings(),
            vec![
                measured(Target::Direct, 40_000.0, 50),
                measured(Target::GatewayPublic, 30_000.0, 110),
                measured(Target::GatewayAuth, 26_000.0, 150),
                Measured {
                    target: Target::Nginx,
                    skipped: Some("nginx not installed (apt-get install nginx)".into()),
                    load: None,
                    unloaded: None,
                },
            ],
        );
        assert!(report.targets.iter().all(|t| t.ratio_to_nginx.is_none()));
        assert_eq!(report.goals[0].verdict, Verdict::Skipped);
        let text = report.render();
        assert!(
            text.contains("nginx proxy_pass             skipped: nginx not installed"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["goals"][0]["verdict"], "skipped");
        assert_eq!(json["targets"][3]["target"], "nginx");
    }

    #[test]
    fn the_table_shows_rates_latencies_errors_and_ratios() {
        let mut public = measured(Target::GatewayPublic, 30_000.0, 110);
        if let Some(l) = public.load.as_mut() {
            l.errors = 3;
            l.error_breakdown.insert("503".into(), 3);
        }
        let report = GatewayReport::build(
            settings(),
            vec![
                measured(Target::Direct, 40_000.0, 50),
                public,
                measured(Target::Nginx, 25_000.0, 90),
            ],
        );
        let text = report.render();
        let row = text
            .lines()
            .find(|l| l.starts_with("gateway (public route)"))
            .unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells[3..],
            ["30,000", "900", "µs", "2.70", "ms", "3", "1.20×", "0.75×", "50", "µs", "1.50"]
        );
        assert!(
            text.contains("gateway (public route) errors: 503: 3"),
            "{text}"
        );
        assert!(
            text.contains("public route +60 µs, JWT + rate limit -"),
            "{text}"
        );
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
